package state

import (
	"slices"
	"sync"
	"time"
)

var (
	_ WindowStore = (*memWindowStore)(nil)
	_ Restorable  = (*memWindowStore)(nil)
)

// memWindowStore is the in-memory WindowStore: a map of segments, each two
// B-trees of the same windows, by key and by time (see window_layout.go).
// It behaves as the in-memory key-value store does: it copies what it is
// given, returns slices it never changes, and its iterators walk snapshots
// taken in O(1) per segment when they are opened.
//
// mu guards everything; iterators read their snapshots without it.
type memWindowStore struct {
	name      string
	retention time.Duration

	mu        sync.RWMutex
	closed    bool
	clock     windowClock
	segs      map[int64]*memSegment
	ids       []int64 // the keys of segs, sorted
	applied   int64   // the applied changelog offset, if hasOffset
	hasOffset bool
}

// memSegment holds the windows of one segment, twice: byKey is keyed by
// appendByKey, byTime by appendByTime. Both hold the same value slices.
type memSegment struct {
	byKey, byTime btree
}

// newMemWindowStore returns an empty in-memory window store.
func newMemWindowStore(name string, retention time.Duration) *memWindowStore {
	ms := retentionMillis(retention)
	return &memWindowStore{
		name:      name,
		retention: retention,
		clock:     windowClock{retention: ms, interval: segmentIntervalOf(ms)},
		segs:      map[int64]*memSegment{},
	}
}

func (s *memWindowStore) fail(op string, err error) error {
	return &storeError{store: s.name, op: op, err: err}
}

func (s *memWindowStore) Name() string { return s.name }

func (s *memWindowStore) Retention() time.Duration { return s.retention }

func (s *memWindowStore) Flush() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return s.fail("flush", ErrClosed)
	}
	return nil
}

// Close drops the data; open iterators keep their snapshots.
func (s *memWindowStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return s.fail("close", ErrClosed)
	}
	s.closed = true
	s.segs, s.ids = nil, nil
	return nil
}

// ownedWindow holds a window's two tree keys and its value, copied in one
// allocation. For a deletion, value is nil.
type ownedWindow struct {
	byKey, byTime, value []byte
}

// ownWindow copies key's window at start, and value, for the trees.
func ownWindow(key []byte, start int64, value []byte) ownedWindow {
	n1, n2 := byKeyLen(key), 8+len(key)
	buf := make([]byte, 0, n1+n2+len(value))
	buf = appendByKey(buf, key, start)
	buf = appendByTime(buf, key, start)
	w := ownedWindow{byKey: buf[:n1:n1], byTime: buf[n1 : n1+n2 : n1+n2]}
	if value != nil {
		w.value = append(buf[n1+n2:], value...) // not nil, even when empty
	}
	return w
}

func (s *memWindowStore) Put(key []byte, start int64, value []byte) error {
	if key == nil {
		return s.fail("put", ErrNilKey)
	}
	w := ownWindow(key, start, value)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return s.fail("put", ErrClosed)
	}
	c := s.clock.advance(start)
	if start < c.minLive() {
		return nil // expired: ignored
	}
	s.clock = c
	s.dropExpired()
	s.apply(segmentOf(start, c.interval), w)
	return nil
}

// apply writes w to segment seg. mu must be held for writing.
func (s *memWindowStore) apply(seg int64, w ownedWindow) {
	g := s.segs[seg]
	if w.value == nil {
		if g == nil {
			return
		}
		g.byKey.delete(w.byKey)
		g.byTime.delete(w.byTime)
		if g.byKey.count == 0 {
			s.dropSegment(seg)
		}
		return
	}
	if g == nil {
		g = &memSegment{}
		s.segs[seg] = g
		i, _ := slices.BinarySearch(s.ids, seg)
		s.ids = slices.Insert(s.ids, i, seg)
	}
	g.byKey.put(w.byKey, w.value)
	g.byTime.put(w.byTime, w.value)
}

// dropExpired lets go of every segment older than the clock's earliest live
// one. mu must be held for writing.
func (s *memWindowStore) dropExpired() {
	minSeg := s.clock.minLiveSegment()
	n := 0
	for n < len(s.ids) && s.ids[n] < minSeg {
		delete(s.segs, s.ids[n])
		n++
	}
	if n > 0 {
		s.ids = slices.Delete(s.ids, 0, n)
	}
}

// dropSegment lets go of segment seg. mu must be held for writing.
func (s *memWindowStore) dropSegment(seg int64) {
	delete(s.segs, seg)
	if i, ok := slices.BinarySearch(s.ids, seg); ok {
		s.ids = slices.Delete(s.ids, i, i+1)
	}
}

func (s *memWindowStore) Fetch(key []byte, start int64) ([]byte, error) {
	if key == nil {
		return nil, s.fail("fetch", ErrNilKey)
	}
	bp := keyPool.Get().(*[]byte)
	k := appendByKey((*bp)[:0], key, start)
	defer func() {
		if cap(k) <= maxPooledKey {
			*bp = k
			keyPool.Put(bp)
		}
	}()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, s.fail("fetch", ErrClosed)
	}
	if start < s.clock.minLive() {
		return nil, nil
	}
	g := s.segs[segmentOf(start, s.clock.interval)]
	if g == nil {
		return nil, nil
	}
	return g.byKey.get(k), nil
}

func (s *memWindowStore) FetchRange(key []byte, from, to int64) (WindowIterator, error) {
	if key == nil {
		return nil, s.fail("fetch range", ErrNilKey)
	}
	return s.iterate("fetch range", key, from, to)
}

func (s *memWindowStore) FetchAll(from, to int64) (WindowIterator, error) {
	return s.iterate("fetch all", nil, from, to)
}

// iterate opens an iterator over the live windows with start in [from,
// to] of every segment that may hold some: key's windows in the by-key
// trees, or, for a nil key, every window in the by-time trees.
func (s *memWindowStore) iterate(op string, key []byte, from, to int64) (WindowIterator, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, s.fail(op, ErrClosed)
	}
	it := &memWindowIter{store: s.name}
	from = max(from, s.clock.minLive())
	if from > to {
		return it, nil
	}
	var lower, upper []byte
	if key == nil {
		// [from, past every key at to); nil (open) for the largest to.
		lower = appendSortable(nil, from)
		upper = prefixEnd(appendSortable(nil, to))
	} else {
		// [key at from, key at to + 0x00): the least greater than key at to.
		lower = appendByKey(nil, key, from)
		upper = append(appendByKey(nil, key, to), 0)
		n := len(lower) - 8
		it.key1 = lower[n-len(key) : n : n]
	}
	first, last := segmentOf(from, s.clock.interval), segmentOf(to, s.clock.interval)
	i, _ := slices.BinarySearch(s.ids, first)
	for ; i < len(s.ids) && s.ids[i] <= last; i++ {
		g := s.segs[s.ids[i]]
		t := &g.byTime
		if key != nil {
			t = &g.byKey
		}
		it.iters = append(it.iters, newSnapshotIter(s.name, t, lower, upper))
	}
	return it, nil
}

// newSnapshotIter returns an iterator over [from, to) of a snapshot of t,
// which it owns. It must be called with the lock that keeps out t's writer.
func newSnapshotIter(store string, t *btree, from, to []byte) *memIter {
	it := &memIter{store: store, tree: t, from: from, to: to}
	it.stack = it.buf[:0]
	it.seekFirst(t.snapshot())
	return it
}

// memWindowIter walks the snapshots of segments, one after another.
type memWindowIter struct {
	store  string
	iters  []*memIter // the segments left, the current first
	key1   []byte     // the key of FetchRange; nil for FetchAll
	closed bool
	err    error

	key, value []byte
	start      int64
}

func (it *memWindowIter) Next() bool {
	if it.closed {
		it.err = &storeError{store: it.store, op: "next", err: iteratorClosed{}}
		return false
	}
	for len(it.iters) > 0 {
		if si := it.iters[0]; si.Next() {
			if it.key1 != nil {
				k := si.Key()
				it.key, it.start = it.key1, sortableInt64(k[len(k)-8:])
			} else {
				it.key, it.start = parseByTime(si.Key())
			}
			it.value = si.Value()
			return true
		}
		it.iters[0] = nil // finished: its snapshot is released
		it.iters = it.iters[1:]
	}
	it.key, it.value, it.start = nil, nil, 0
	return false
}

func (it *memWindowIter) Key() []byte   { return it.key }
func (it *memWindowIter) Start() int64  { return it.start }
func (it *memWindowIter) Value() []byte { return it.value }
func (it *memWindowIter) Err() error    { return it.err }

// Close ends the iteration and releases the snapshots; closing again does
// nothing. Next after Close returns false and makes Err report ErrClosed.
func (it *memWindowIter) Close() error {
	it.closed = true
	for _, si := range it.iters {
		si.Close()
	}
	it.iters = nil
	it.key, it.value, it.start = nil, nil, 0
	return nil
}

// AppliedOffset returns the changelog offset last recorded by Restore or
// Checkpoint.
func (s *memWindowStore) AppliedOffset() (int64, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, false, s.fail("applied offset", ErrClosed)
	}
	return s.applied, s.hasOffset, nil
}

// Restore applies records, whose keys are [WindowKey]s, and records
// lastOffset, all under the write lock: readers see the store before or
// after all of it. The records advance the observed time as Puts do;
// those expired by the end of the batch are skipped.
func (s *memWindowStore) Restore(records []ChangelogRecord, lastOffset int64) error {
	recs, err := decodeWindowRecords(records)
	if err != nil {
		return s.fail("restore", err)
	}
	// Copy outside the lock.
	owned := make([]ownedWindow, len(recs))
	for i, r := range recs {
		owned[i] = ownWindow(r.key, r.start, r.value)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return s.fail("restore", ErrClosed)
	}
	c := s.clock
	for _, r := range recs {
		c = c.advance(r.start)
	}
	s.clock = c
	s.dropExpired()
	minLive := c.minLive()
	for i, r := range recs {
		if r.start >= minLive {
			s.apply(segmentOf(r.start, c.interval), owned[i])
		}
	}
	s.applied, s.hasOffset = lastOffset, true
	return nil
}

// Checkpoint records offset as applied. There is nothing to make durable.
func (s *memWindowStore) Checkpoint(offset int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return s.fail("checkpoint", ErrClosed)
	}
	s.applied, s.hasOffset = offset, true
	return nil
}
