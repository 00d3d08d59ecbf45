package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

var (
	_ WindowStore = (*pebbleWindowStore)(nil)
	_ Restorable  = (*pebbleWindowStore)(nil)
)

// The Pebble keys of a window store's metadata, besides appliedKey: the
// observed stream time and the segment interval, each an int64 big-endian.
var (
	observedKey = []byte{metaPrefix, 'o', 'b', 's', 'e', 'r', 'v', 'e', 'd'}
	intervalKey = []byte{metaPrefix, 's', 'e', 'g', 'm', 'e', 'n', 't', '-', 'i', 'n', 't', 'e', 'r', 'v', 'a', 'l'}
)

// pebbleWindowStore is the persistent WindowStore: a Pebble database laid
// out as window_layout.go says. The key-value store it is built on owns the
// database, its locks, its life (Flush, Close, the Env's bookkeeping and
// memory accounting) and the applied offset; the window store writes its
// own keys through it.
//
// Every write is one Pebble batch holding the window in both orders, the
// observed time when it moves and the range deletions of the segments it
// expires, so that what survives a crash is always a consistent prefix of
// the writes (see pebble.go).
type pebbleWindowStore struct {
	kv        *pebbleStore
	retention time.Duration
	interval  int64 // ms; fixed when the store was created

	// Guarded by kv.wmu.
	clock windowClock
	segs  []int64 // the segments that may hold windows, sorted
	wkey  []byte  // scratch for the Pebble keys of writes

	minLive      atomic.Int64 // clock.minLive(), for readers
	rangeDeletes atomic.Int64 // segments dropped so far, for tests
}

// openPebbleWindow makes the window store of kv, a database just opened
// with kind "window": it reads or sets the segment interval, reads the
// observed time, finds the segments and drops those expired (the retention
// may have shrunk since the store was last open).
func openPebbleWindow(kv *pebbleStore, retention time.Duration) (*pebbleWindowStore, error) {
	ms := retentionMillis(retention)
	s := &pebbleWindowStore{kv: kv, retention: retention}
	interval, ok, err := s.readMeta(intervalKey)
	switch {
	case err != nil:
		return nil, kv.fail("open", err)
	case ok && interval < minSegmentInterval:
		return nil, kv.fail("open", fmt.Errorf("segment interval %d ms in the store: want at least %d", interval, minSegmentInterval))
	case !ok:
		interval = segmentIntervalOf(ms)
		// Written before any window: a crash cannot keep windows without it.
		if err := kv.db.Set(intervalKey, binary.BigEndian.AppendUint64(nil, uint64(interval)), pebble.NoSync); err != nil {
			return nil, kv.fail("open", err)
		}
		kv.dirty = true
	}
	s.interval = interval
	s.clock = windowClock{retention: ms, interval: interval}
	observed, ok, err := s.readMeta(observedKey)
	if err != nil {
		return nil, kv.fail("open", err)
	}
	if ok {
		s.clock = s.clock.advance(observed)
	}
	if s.segs, err = s.findSegments(); err != nil {
		return nil, kv.fail("open", err)
	}
	b := kv.db.NewBatch()
	defer b.Close()
	n, err := s.dropExpired(b, s.clock.minLiveSegment())
	if err == nil && n > 0 {
		err = b.Commit(pebble.NoSync)
	}
	if err != nil {
		return nil, kv.fail("open", err)
	}
	s.dropped(n)
	s.minLive.Store(s.clock.minLive())
	return s, nil
}

// readMeta reads an int64 kept under key.
func (s *pebbleWindowStore) readMeta(key []byte) (int64, bool, error) {
	v, closer, err := s.kv.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, false, fmt.Errorf("%s has %d bytes, want 8", key[1:], len(v))
	}
	return int64(binary.BigEndian.Uint64(v)), true, nil
}

// findSegments returns the segments that hold windows: one seek per
// segment.
func (s *pebbleWindowStore) findSegments() ([]int64, error) {
	it, err := s.kv.db.NewIter(&pebble.IterOptions{LowerBound: []byte{dataPrefix}, UpperBound: []byte{dataPrefix + 1}})
	if err != nil {
		return nil, err
	}
	var segs []int64
	for ok := it.First(); ok; ok = it.SeekGE(appendSegment(nil, segs[len(segs)-1]+1)) {
		segs = append(segs, segmentOfKey(it.Key()))
	}
	err = it.Error()
	if cerr := it.Close(); err == nil {
		err = cerr
	}
	return segs, err
}

// appendSegment appends the prefix of the Pebble keys of segment seg.
func appendSegment(dst []byte, seg int64) []byte {
	return appendSortable(append(dst, dataPrefix), seg)
}

// segmentOfKey returns the segment of a window's Pebble key.
func segmentOfKey(k []byte) int64 { return sortableInt64(k[1:9]) }

// byKeyKey appends the Pebble key of key's window at start in the by-key
// order.
func (s *pebbleWindowStore) byKeyKey(dst, key []byte, start int64) []byte {
	dst = append(appendSegment(dst, segmentOf(start, s.interval)), byKeyFamily)
	return appendByKey(dst, key, start)
}

// byTimeKey appends the Pebble key of key's window at start in the by-time
// order.
func (s *pebbleWindowStore) byTimeKey(dst, key []byte, start int64) []byte {
	dst = append(appendSegment(dst, segmentOf(start, s.interval)), byTimeFamily)
	return appendByTime(dst, key, start)
}

// write adds key's window at start, in both orders, to b. wmu must be held.
func (s *pebbleWindowStore) write(b *pebble.Batch, key []byte, start int64, value []byte) error {
	s.wkey = s.byKeyKey(s.wkey[:0], key, start)
	var err error
	if value == nil {
		err = b.Delete(s.wkey, nil)
	} else {
		err = b.Set(s.wkey, value, nil)
	}
	if err != nil {
		return err
	}
	s.wkey = s.byTimeKey(s.wkey[:0], key, start)
	if value == nil {
		return b.Delete(s.wkey, nil)
	}
	return b.Set(s.wkey, value, nil)
}

// advanceTo adds to b what moving the clock to c writes: the observed time,
// and a range deletion for each segment c expires. It returns how many
// segments those are. wmu must be held.
func (s *pebbleWindowStore) advanceTo(b *pebble.Batch, c windowClock) (int, error) {
	if c == s.clock {
		return 0, nil
	}
	if err := b.Set(observedKey, binary.BigEndian.AppendUint64(nil, uint64(c.observed)), nil); err != nil {
		return 0, err
	}
	return s.dropExpired(b, c.minLiveSegment())
}

// dropExpired adds to b a range deletion for each segment before minSeg,
// and returns how many. wmu must be held.
func (s *pebbleWindowStore) dropExpired(b *pebble.Batch, minSeg int64) (int, error) {
	n := 0
	for ; n < len(s.segs) && s.segs[n] < minSeg; n++ {
		seg := s.segs[n]
		if err := b.DeleteRange(appendSegment(nil, seg), appendSegment(nil, seg+1), nil); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// dropped forgets the first n segments, dropped by a batch now committed.
// wmu must be held.
func (s *pebbleWindowStore) dropped(n int) {
	if n > 0 {
		s.segs = slices.Delete(s.segs, 0, n)
		s.rangeDeletes.Add(int64(n))
	}
}

// addSegment notes that segment seg holds windows. wmu must be held.
func (s *pebbleWindowStore) addSegment(seg int64) {
	if i, ok := slices.BinarySearch(s.segs, seg); !ok {
		s.segs = slices.Insert(s.segs, i, seg)
	}
}

// setClock keeps c, which a committed batch wrote. wmu must be held.
func (s *pebbleWindowStore) setClock(c windowClock) {
	s.clock = c
	s.minLive.Store(c.minLive())
}

func (s *pebbleWindowStore) Name() string { return s.kv.name }

func (s *pebbleWindowStore) Retention() time.Duration { return s.retention }

// Flush makes every write so far durable.
func (s *pebbleWindowStore) Flush() error { return s.kv.Flush() }

// Close closes the iterators still open, flushes the writes not yet
// flushed and closes the database.
func (s *pebbleWindowStore) Close() error { return s.kv.Close() }

// Put writes key's window at start in both orders, with the observed time
// and the expiry of older segments if it moves them, in one batch.
func (s *pebbleWindowStore) Put(key []byte, start int64, value []byte) error {
	if key == nil {
		return s.kv.fail("put", ErrNilKey)
	}
	if err := s.kv.begin("put"); err != nil {
		return err
	}
	defer s.kv.mu.RUnlock()
	s.kv.wmu.Lock()
	defer s.kv.wmu.Unlock()
	c := s.clock.advance(start)
	if start < c.minLive() {
		return nil // expired: ignored
	}
	b := s.kv.db.NewBatch()
	defer b.Close()
	if err := s.write(b, key, start, value); err != nil {
		return s.kv.fail("put", err)
	}
	n, err := s.advanceTo(b, c)
	if err == nil {
		err = b.Commit(pebble.NoSync)
	}
	if err != nil {
		return s.kv.fail("put", err)
	}
	s.setClock(c)
	s.dropped(n)
	if value != nil {
		s.addSegment(segmentOf(start, s.interval))
	}
	s.kv.account(int64(b.Len()) + int64(b.Count())*entryOverhead)
	return nil
}

// Fetch returns a copy of the value of key's window at start, which the
// caller owns, or nil.
func (s *pebbleWindowStore) Fetch(key []byte, start int64) ([]byte, error) {
	if key == nil {
		return nil, s.kv.fail("fetch", ErrNilKey)
	}
	if err := s.kv.begin("fetch"); err != nil {
		return nil, err
	}
	defer s.kv.mu.RUnlock()
	if start < s.minLive.Load() {
		return nil, nil
	}
	bp := keyPool.Get().(*[]byte)
	k := s.byKeyKey((*bp)[:0], key, start)
	v, closer, err := s.kv.db.Get(k)
	if cap(k) <= maxPooledKey {
		*bp = k
		keyPool.Put(bp)
	}
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, s.kv.fail("fetch", err)
	}
	out := make([]byte, len(v)) // not nil, even when empty
	copy(out, v)
	if err := closer.Close(); err != nil {
		return nil, s.kv.fail("fetch", err)
	}
	return out, nil
}

// FetchRange iterates key's windows with one seek per segment in range.
func (s *pebbleWindowStore) FetchRange(key []byte, from, to int64) (WindowIterator, error) {
	if key == nil {
		return nil, s.kv.fail("fetch range", ErrNilKey)
	}
	return s.iterate("fetch range", key, from, to)
}

// FetchAll iterates the windows in the by-time order with one seek per
// segment in range.
func (s *pebbleWindowStore) FetchAll(from, to int64) (WindowIterator, error) {
	return s.iterate("fetch all", nil, from, to)
}

// iterate opens an iterator over the live windows with start in [from,
// to]: key's, in the by-key order, or every key's for a nil key, in the
// by-time order. Its Pebble iterator spans the segments in range; it seeks
// into each in turn.
func (s *pebbleWindowStore) iterate(op string, key []byte, from, to int64) (WindowIterator, error) {
	if err := s.kv.begin(op); err != nil {
		return nil, err
	}
	defer s.kv.mu.RUnlock()
	it := &pebbleWindowIter{base: &pebbleIter{store: s.kv}, byKey: key != nil}
	from = max(from, s.minLive.Load())
	if from > to {
		it.base.done = true
		return it, nil
	}
	if it.byKey {
		it.key = bytes.Clone(key)
	}
	it.from, it.to = from, to
	it.seg, it.last = segmentOf(from, s.interval), segmentOf(to, s.interval)
	pit, err := s.kv.db.NewIter(&pebble.IterOptions{
		LowerBound: appendSegment(nil, it.seg),
		UpperBound: appendSegment(nil, it.last+1),
	})
	if err != nil {
		return nil, s.kv.fail(op, err)
	}
	it.base.iter = pit
	s.kv.imu.Lock()
	s.kv.iters[it.base] = struct{}{}
	s.kv.imu.Unlock()
	return it, nil
}

// pebbleWindowIter walks the windows of a range, segment by segment, with
// one Pebble iterator. Its base is registered with the store like a
// key-value iterator, and its mu guards the Pebble iterator, so that the
// store's Close stops it.
type pebbleWindowIter struct {
	base     *pebbleIter
	byKey    bool // FetchRange, of key; else FetchAll
	key      []byte
	from, to int64 // the range of starts, inclusive
	seg      int64 // the segment being walked
	last     int64 // the last segment in range
	target   []byte
	end      []byte // [target, end) is the range in seg

	wkey, value []byte
	start       int64
}

// bounds sets target and end to the range in seg.
func (it *pebbleWindowIter) bounds() {
	if it.byKey {
		it.target = appendByKey(append(appendSegment(it.target[:0], it.seg), byKeyFamily), it.key, it.from)
		// The least key greater than key's window at to.
		it.end = append(appendByKey(append(appendSegment(it.end[:0], it.seg), byKeyFamily), it.key, it.to), 0)
		return
	}
	it.target = appendSortable(append(appendSegment(it.target[:0], it.seg), byTimeFamily), it.from)
	// The least key greater than every key's window at to.
	it.end = appendSortable(append(appendSegment(it.end[:0], it.seg), byTimeFamily), it.to)
	for i := len(it.end) - 1; i >= 0; i-- {
		if it.end[i] != 0xff {
			it.end[i]++
			it.end = it.end[:i+1]
			break
		}
	}
}

// settle moves the Pebble iterator, positioned by a Next or seek that
// returned valid, to the first entry in range at or after it, seeking into
// later segments as needed, and reports whether there is one.
func (it *pebbleWindowIter) settle(valid bool) bool {
	pit := it.base.iter
	for valid {
		k := pit.Key()
		if seg := segmentOfKey(k); seg != it.seg {
			// A segment in between holds nothing: seek into the one found.
			it.seg = seg
		} else if bytes.Compare(k, it.end) < 0 {
			return true
		} else if it.seg++; it.seg > it.last {
			return false
		}
		it.bounds()
		valid = pit.SeekGE(it.target)
	}
	return false
}

func (it *pebbleWindowIter) Next() bool {
	b := it.base
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		b.err = &storeError{store: b.store.name, op: "next", err: iteratorClosed{}}
		return false
	case b.stopped:
		b.err = &storeError{store: b.store.name, op: "next", err: ErrClosed}
		return false
	case b.done:
		return false
	}
	pit := b.iter
	var valid bool
	if !b.started {
		b.started = true
		it.bounds()
		valid = pit.SeekGE(it.target)
	} else {
		valid = pit.Next()
	}
	valid = it.settle(valid)
	var v []byte
	var err error
	if valid {
		v, err = pit.ValueAndErr()
	}
	if !valid || err != nil {
		if err == nil {
			err = pit.Error()
		}
		if err != nil {
			b.err = &storeError{store: b.store.name, op: "next", err: err}
		}
		it.wkey, it.value, it.start = nil, nil, 0
		b.release(false)
		return false
	}
	k := pit.Key()
	if it.byKey {
		it.wkey, it.start = it.key, sortableInt64(k[len(k)-8:])
	} else {
		it.wkey, it.start = parseByTime(k[10:])
	}
	if v == nil {
		v = emptyValue
	}
	it.value = v[:len(v):len(v)]
	return true
}

func (it *pebbleWindowIter) Key() []byte   { return it.wkey }
func (it *pebbleWindowIter) Start() int64  { return it.start }
func (it *pebbleWindowIter) Value() []byte { return it.value }
func (it *pebbleWindowIter) Err() error    { return it.base.Err() }

// Close ends the iteration; closing again does nothing. Next after Close
// returns false and makes Err report ErrClosed.
func (it *pebbleWindowIter) Close() error {
	it.wkey, it.value, it.start = nil, nil, 0
	return it.base.Close()
}

// AppliedOffset returns the changelog offset last recorded by Restore or
// Checkpoint, in this process or before.
func (s *pebbleWindowStore) AppliedOffset() (int64, bool, error) { return s.kv.AppliedOffset() }

// Checkpoint writes offset and then flushes the memtable, so the writes
// made so far and offset are durable together.
func (s *pebbleWindowStore) Checkpoint(offset int64) error { return s.kv.Checkpoint(offset) }

// Restore writes records, whose keys are [WindowKey]s, with the observed
// time they advance to, the range deletions of the segments they expire and
// lastOffset, in one Pebble batch. Records expired by the end of the batch
// are skipped.
func (s *pebbleWindowStore) Restore(records []ChangelogRecord, lastOffset int64) error {
	recs, err := decodeWindowRecords(records)
	if err != nil {
		return s.kv.fail("restore", err)
	}
	if err := s.kv.begin("restore"); err != nil {
		return err
	}
	defer s.kv.mu.RUnlock()
	s.kv.wmu.Lock()
	defer s.kv.wmu.Unlock()
	c := s.clock
	for _, r := range recs {
		c = c.advance(r.start)
	}
	minLive := c.minLive()
	b := s.kv.db.NewBatch()
	defer b.Close()
	var segs []int64 // of the windows set
	for _, r := range recs {
		if r.start < minLive {
			continue
		}
		if err := s.write(b, r.key, r.start, r.value); err != nil {
			return s.kv.fail("restore", err)
		}
		if r.value != nil {
			if seg := segmentOf(r.start, s.interval); len(segs) == 0 || segs[len(segs)-1] != seg {
				segs = append(segs, seg)
			}
		}
	}
	n, err := s.advanceTo(b, c)
	if err == nil {
		err = b.Set(appliedKey, binary.BigEndian.AppendUint64(nil, uint64(lastOffset)), nil)
	}
	if err == nil {
		err = b.Commit(pebble.NoSync)
	}
	if err != nil {
		return s.kv.fail("restore", err)
	}
	s.setClock(c)
	s.dropped(n)
	for _, seg := range segs {
		s.addSegment(seg)
	}
	s.kv.setApplied(lastOffset)
	s.kv.account(int64(b.Len()) + int64(b.Count())*entryOverhead)
	return nil
}
