package state

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
)

// A persistent key-value store is a Pebble database in its own directory,
// opened by [Env.OpenKeyValue], whose documentation says how it differs
// from the in-memory store and what holds after a crash.
//
// # Layout
//
// Every Pebble key starts with one byte: dataPrefix for the store's keys,
// metaPrefix for what the store keeps about itself (the applied changelog
// offset). Iterators are bounded to dataPrefix, so they never see metadata,
// and a user key is the Pebble key without its first byte: no copy.
//
// # Durability
//
// With the write-ahead log off, what is on disk after a crash is what the
// last flush installed. Pebble flushes memtables oldest first, each flush
// (of one or more memtables) is installed in one version edit, and a batch
// is never split across memtables. So what survives is a prefix of the
// batches in commit order: a Restore batch (records + offset) is all there
// or not at all, and a write made after a Checkpoint's offset can survive
// only with that offset.
const (
	metaPrefix byte = 0x00
	dataPrefix byte = 0x01
)

// appliedKey is the Pebble key of the applied changelog offset, an int64
// big-endian.
var appliedKey = []byte{metaPrefix, 'a', 'p', 'p', 'l', 'i', 'e', 'd'}

const (
	// entryOverhead estimates the memtable bytes of an entry beyond its key
	// and value: the skiplist node and the internal key trailer.
	entryOverhead = 48
	// chargeStep is how many bytes a store writes before it tells the Env.
	chargeStep = 64 << 10
	// maxPooledKey is the largest key buffer kept in keyPool.
	maxPooledKey = 4 << 10
)

// pebbleFormat is the Pebble format major version of new stores, pinned so
// that upgrading Pebble does not silently change the files it writes.
const pebbleFormat = pebble.FormatValueSeparation

var (
	_ KeyValueStore = (*pebbleStore)(nil)
	_ Restorable    = (*pebbleStore)(nil)
)

// pebbleStore is the persistent KeyValueStore.
//
// Locks, in the order they are taken: mu (every operation holds it for
// reading, Close for writing), wmu (writes), Env.mu; an iterator's mu, then
// imu. Nothing holds imu while taking an iterator's mu.
type pebbleStore struct {
	name string
	dir  string
	env  *Env
	db   *pebble.DB

	mu     sync.RWMutex
	closed bool

	wmu     sync.Mutex
	wkey    []byte // scratch for the Pebble keys of writes
	pending int64  // bytes written and not yet charged to env
	dirty   bool   // written since the last flush made here

	charged  atomic.Int64 // bytes charged to env since the last flush began
	memCount atomic.Int64 // keys set minus keys deleted since the last flush began

	applied    atomic.Int64
	hasApplied atomic.Bool

	imu   sync.Mutex
	iters map[*pebbleIter]struct{} // open iterators, closed by Close
}

// keyPool holds buffers for the Pebble keys of reads, which may run
// concurrently.
var keyPool = sync.Pool{New: func() any { b := make([]byte, 0, 64); return &b }}

// openPebble opens, or creates, the store in dir.
func (e *Env) openPebble(dir string, meta storeMeta) (*pebbleStore, error) {
	create, err := checkStoreDir(dir, meta)
	if err != nil {
		return nil, err
	}
	if create {
		if err := createStoreDir(dir, meta); err != nil {
			return nil, fmt.Errorf("state: store %q in %s: create: %w", meta.Store, dir, err)
		}
	}
	s := &pebbleStore{name: meta.Store, dir: dir, env: e, iters: map[*pebbleIter]struct{}{}}
	logger := e.logger.With("store", meta.Store, "dir", dir)
	opts := &pebble.Options{
		Cache:              e.cache,
		FileCache:          e.sharedFileCache(),
		DisableWAL:         true,
		MemTableSize:       e.memTableSize,
		FormatMajorVersion: pebbleFormat,
		Logger:             pebbleLogger{logger},
		EventListener: &pebble.EventListener{
			FlushBegin: func(pebble.FlushInfo) {
				s.memCount.Store(0)
				e.flushed(s)
			},
			BackgroundError: func(err error) {
				logger.Error("state: pebble background error", "err", err)
			},
			WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
				logger.Warn("state: writes stalled", "reason", info.Reason)
			},
			WriteStallEnd: func() {
				logger.Info("state: writes resumed")
			},
		},
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("state: store %q in %s: open: %w", meta.Store, dir, err)
	}
	s.db = db
	v, closer, err := db.Get(appliedKey)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		db.Close()
		return nil, fmt.Errorf("state: store %q in %s: read applied offset: %w", meta.Store, dir, err)
	case len(v) != 8:
		closer.Close()
		db.Close()
		return nil, fmt.Errorf("state: store %q in %s: applied offset has %d bytes, want 8", meta.Store, dir, len(v))
	default:
		s.setApplied(int64(binary.BigEndian.Uint64(v)))
		closer.Close()
	}
	off, ok := s.applied.Load(), s.hasApplied.Load()
	logger.Debug("state: opened store", "created", create, "applied_offset", off, "has_applied_offset", ok)
	return s, nil
}

func (s *pebbleStore) fail(op string, err error) error {
	return &storeError{store: s.name, op: op, err: err}
}

func (s *pebbleStore) setApplied(offset int64) {
	s.applied.Store(offset)
	s.hasApplied.Store(true)
}

// begin takes mu for reading and fails if the store is closed; on success
// the caller must call s.mu.RUnlock.
func (s *pebbleStore) begin(op string) error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return s.fail(op, ErrClosed)
	}
	return nil
}

// wkeyOf returns the Pebble key of key in the writers' scratch buffer. wmu
// must be held; the slice is valid until the next call.
func (s *pebbleStore) wkeyOf(key []byte) []byte {
	s.wkey = append(append(s.wkey[:0], dataPrefix), key...)
	return s.wkey
}

// account records n bytes written. wmu must be held.
func (s *pebbleStore) account(n int64) {
	s.dirty = true
	s.pending += n
	if s.pending >= chargeStep {
		s.env.charge(s, s.pending)
		s.pending = 0
	}
}

func (s *pebbleStore) Name() string { return s.name }

// Flush makes every write so far durable by flushing Pebble's memtable to
// an sstable.
func (s *pebbleStore) Flush() error {
	if err := s.begin("flush"); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.db.Flush(); err != nil {
		return s.fail("flush", err)
	}
	s.dirty = false
	return nil
}

// Close closes the iterators still open, flushes the writes not yet
// flushed and closes the Pebble database.
func (s *pebbleStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return s.fail("close", ErrClosed)
	}
	s.closed = true
	s.imu.Lock()
	iters := make([]*pebbleIter, 0, len(s.iters))
	for it := range s.iters {
		iters = append(iters, it)
	}
	s.iters = nil
	s.imu.Unlock()
	for _, it := range iters {
		it.mu.Lock()
		it.release(true)
		it.mu.Unlock()
	}
	var errs []error
	if s.dirty {
		if err := s.db.Flush(); err != nil {
			errs = append(errs, err)
		}
	}
	closed := s.env.unregister(s)
	if err := s.db.Close(); err != nil {
		errs = append(errs, err)
	}
	closed()
	if err := errors.Join(errs...); err != nil {
		return s.fail("close", err)
	}
	return nil
}

// closeDB closes the database of a store never handed out.
func (s *pebbleStore) closeDB() {
	s.closed = true
	s.db.Close()
}

// Get returns a copy of the value of key, which the caller owns, or nil.
func (s *pebbleStore) Get(key []byte) ([]byte, error) {
	if key == nil {
		return nil, s.fail("get", ErrNilKey)
	}
	if err := s.begin("get"); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	v, err := s.get(key)
	if err != nil {
		return nil, s.fail("get", err)
	}
	return v, nil
}

// get returns a copy of the value of key, or nil.
func (s *pebbleStore) get(key []byte) ([]byte, error) {
	bp := keyPool.Get().(*[]byte)
	k := append(append((*bp)[:0], dataPrefix), key...)
	v, closer, err := s.db.Get(k)
	if cap(k) <= maxPooledKey {
		*bp = k
		keyPool.Put(bp)
	}
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]byte, len(v)) // not nil, even when empty
	copy(out, v)
	return out, closer.Close()
}

// Put sets key to value; a nil value deletes key.
func (s *pebbleStore) Put(key, value []byte) error {
	if key == nil {
		return s.fail("put", ErrNilKey)
	}
	if err := s.begin("put"); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if value == nil {
		if err := s.db.Delete(s.wkeyOf(key), pebble.NoSync); err != nil {
			return s.fail("put", err)
		}
		s.memCount.Add(-1)
		s.account(int64(1+len(key)) + entryOverhead)
		return nil
	}
	if err := s.db.Set(s.wkeyOf(key), value, pebble.NoSync); err != nil {
		return s.fail("put", err)
	}
	s.memCount.Add(1)
	s.account(int64(1+len(key)+len(value)) + entryOverhead)
	return nil
}

// PutIfAbsent sets key to value if key is absent, and returns a copy of
// the value already there, or nil.
func (s *pebbleStore) PutIfAbsent(key, value []byte) ([]byte, error) {
	if key == nil {
		return nil, s.fail("put if absent", ErrNilKey)
	}
	if err := s.begin("put if absent"); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	old, err := s.get(key)
	if err != nil {
		return nil, s.fail("put if absent", err)
	}
	if old != nil || value == nil {
		return old, nil
	}
	if err := s.db.Set(s.wkeyOf(key), value, pebble.NoSync); err != nil {
		return nil, s.fail("put if absent", err)
	}
	s.memCount.Add(1)
	s.account(int64(1+len(key)+len(value)) + entryOverhead)
	return nil, nil
}

// Delete removes key and returns a copy of the value it had, or nil.
func (s *pebbleStore) Delete(key []byte) ([]byte, error) {
	if key == nil {
		return nil, s.fail("delete", ErrNilKey)
	}
	if err := s.begin("delete"); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	old, err := s.get(key)
	if err != nil {
		return nil, s.fail("delete", err)
	}
	if old == nil {
		return nil, nil // nothing to delete
	}
	if err := s.db.Delete(s.wkeyOf(key), pebble.NoSync); err != nil {
		return nil, s.fail("delete", err)
	}
	s.memCount.Add(-1)
	s.account(int64(1+len(key)) + entryOverhead)
	return old, nil
}

// AppliedOffset returns the changelog offset last recorded by Restore or
// Checkpoint, in this process or before.
func (s *pebbleStore) AppliedOffset() (int64, bool, error) {
	if err := s.begin("applied offset"); err != nil {
		return 0, false, err
	}
	defer s.mu.RUnlock()
	return s.applied.Load(), s.hasApplied.Load(), nil
}

// Restore writes records and lastOffset in one Pebble batch: after a crash,
// the store holds all of it or none of it.
func (s *pebbleStore) Restore(records []ChangelogRecord, lastOffset int64) error {
	for _, r := range records {
		if r.Key == nil {
			return s.fail("restore", ErrNilKey)
		}
	}
	if err := s.begin("restore"); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	b := s.db.NewBatch()
	defer b.Close()
	var delta int64
	for _, r := range records {
		var err error
		if r.Value == nil {
			err = b.Delete(s.wkeyOf(r.Key), nil)
			delta--
		} else {
			err = b.Set(s.wkeyOf(r.Key), r.Value, nil)
			delta++
		}
		if err != nil {
			return s.fail("restore", err)
		}
	}
	var off [8]byte
	binary.BigEndian.PutUint64(off[:], uint64(lastOffset))
	if err := b.Set(appliedKey, off[:], nil); err != nil {
		return s.fail("restore", err)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return s.fail("restore", err)
	}
	s.setApplied(lastOffset)
	s.memCount.Add(delta)
	s.account(int64(b.Len()) + int64(len(records)+1)*entryOverhead)
	return nil
}

// Checkpoint writes offset and then flushes the memtable, so the writes
// made so far and offset are durable together.
func (s *pebbleStore) Checkpoint(offset int64) error {
	if err := s.begin("checkpoint"); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	var off [8]byte
	binary.BigEndian.PutUint64(off[:], uint64(offset))
	if err := s.db.Set(appliedKey, off[:], pebble.NoSync); err != nil {
		return s.fail("checkpoint", err)
	}
	s.setApplied(offset)
	if err := s.db.Flush(); err != nil {
		return s.fail("checkpoint", err)
	}
	s.dirty = false
	return nil
}

// ApproximateCount estimates the number of keys from the properties of
// the sstables, as RocksDB does (entries minus twice the deletions, each
// deletion taken to remove one older entry), plus the keys set minus the
// keys deleted since the last flush began. Overwrites count twice until
// they are flushed or compacted together; deletions of absent keys by Put
// with a nil value count as removals. It is exact for keys put once each
// and flushed, and costs a walk over the sstables' cached properties.
func (s *pebbleStore) ApproximateCount() (int64, error) {
	if err := s.begin("approximate count"); err != nil {
		return 0, err
	}
	defer s.mu.RUnlock()
	levels, err := s.db.SSTables(pebble.WithProperties())
	if err != nil {
		return 0, s.fail("approximate count", err)
	}
	n := s.memCount.Load()
	for _, level := range levels {
		for _, t := range level {
			if t.Properties == nil {
				continue
			}
			n += int64(t.Properties.NumEntries) - 2*int64(t.Properties.NumDeletions)
			if k := t.Smallest.UserKey; len(k) > 0 && k[0] == metaPrefix {
				n-- // the applied offset
			}
		}
	}
	return max(n, 0), nil
}

func (s *pebbleStore) Range(from, to []byte) (Iterator, error) {
	if from != nil && to != nil && bytes.Compare(from, to) >= 0 {
		return s.emptyIter("range")
	}
	lower, upper := boundsOf(from, to)
	return s.iterate("range", lower, upper, false)
}

func (s *pebbleStore) ReverseRange(from, to []byte) (Iterator, error) {
	if from != nil && to != nil && bytes.Compare(from, to) >= 0 {
		return s.emptyIter("reverse range")
	}
	lower, upper := boundsOf(from, to)
	return s.iterate("reverse range", lower, upper, true)
}

func (s *pebbleStore) PrefixScan(prefix []byte) (Iterator, error) {
	lower, _ := boundsOf(prefix, nil)
	// prefixEnd of a key that starts with dataPrefix (not 0xff) is never
	// nil; for an empty or all-0xff prefix it is dataPrefix+1.
	return s.iterate("prefix scan", lower, prefixEnd(lower), false)
}

// boundsOf returns the Pebble bounds of the user keys in [from, to), in
// one allocation; nil bounds are open.
func boundsOf(from, to []byte) (lower, upper []byte) {
	buf := make([]byte, 0, 2+len(from)+len(to))
	buf = append(append(buf, dataPrefix), from...)
	lower = buf[:len(buf):len(buf)]
	if to == nil {
		buf = append(buf, dataPrefix+1)
	} else {
		buf = append(append(buf, dataPrefix), to...)
	}
	upper = buf[len(lower):]
	return lower, upper
}

// emptyIter returns an iterator with nothing to walk.
func (s *pebbleStore) emptyIter(op string) (Iterator, error) {
	if err := s.begin(op); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	return &pebbleIter{store: s, done: true}, nil
}

// iterate opens an iterator over the Pebble keys in [lower, upper), which
// it keeps: Pebble uses them while the iterator is open.
func (s *pebbleStore) iterate(op string, lower, upper []byte, reverse bool) (Iterator, error) {
	if err := s.begin(op); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	pit, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, s.fail(op, err)
	}
	it := &pebbleIter{store: s, iter: pit, reverse: reverse}
	s.imu.Lock()
	s.iters[it] = struct{}{}
	s.imu.Unlock()
	return it, nil
}

// pebbleIter walks a Pebble iterator. mu guards everything but key and
// value, which only the iterator's user touches, so that the store's Close
// can close it from another goroutine.
type pebbleIter struct {
	store   *pebbleStore
	mu      sync.Mutex
	iter    *pebble.Iterator // nil once released
	reverse bool
	started bool
	done    bool // no more entries
	closed  bool // closed by its user
	stopped bool // closed by the store's Close
	err     error

	key, value []byte
}

// emptyValue is the value of an entry stored with an empty value.
var emptyValue = []byte{}

func (it *pebbleIter) Next() bool {
	it.mu.Lock()
	defer it.mu.Unlock()
	switch {
	case it.closed:
		it.err = &storeError{store: it.store.name, op: "next", err: iteratorClosed{}}
		return false
	case it.stopped:
		it.err = &storeError{store: it.store.name, op: "next", err: ErrClosed}
		return false
	case it.done:
		return false
	}
	var ok bool
	switch {
	case !it.started && it.reverse:
		ok = it.iter.Last()
	case !it.started:
		ok = it.iter.First()
	case it.reverse:
		ok = it.iter.Prev()
	default:
		ok = it.iter.Next()
	}
	it.started = true
	var v []byte
	var err error
	if ok {
		v, err = it.iter.ValueAndErr()
	}
	if !ok || err != nil {
		if err == nil {
			err = it.iter.Error()
		}
		if err != nil {
			it.err = &storeError{store: it.store.name, op: "next", err: err}
		}
		it.key, it.value = nil, nil
		it.release(false)
		return false
	}
	k := it.iter.Key()[1:]
	it.key = k[:len(k):len(k)]
	if v == nil {
		v = emptyValue
	}
	it.value = v[:len(v):len(v)]
	return true
}

// release closes the Pebble iterator, once. it.mu must be held. byStore
// says the store's Close is closing it (and has forgotten it already).
func (it *pebbleIter) release(byStore bool) error {
	it.done = true
	if byStore {
		it.stopped = true
	}
	if it.iter == nil {
		return nil
	}
	var err error
	if cerr := it.iter.Close(); cerr != nil {
		err = &storeError{store: it.store.name, op: "close iterator", err: cerr}
		if it.err == nil {
			it.err = err
		}
	}
	it.iter = nil
	if !byStore {
		s := it.store
		s.imu.Lock()
		delete(s.iters, it) // a no-op once Close has set s.iters to nil
		s.imu.Unlock()
	}
	return err
}

func (it *pebbleIter) Key() []byte { return it.key }

func (it *pebbleIter) Value() []byte { return it.value }

func (it *pebbleIter) Err() error {
	it.mu.Lock()
	defer it.mu.Unlock()
	return it.err
}

// Close ends the iteration; closing again does nothing. Next after Close
// returns false and makes Err report ErrClosed.
func (it *pebbleIter) Close() error {
	it.mu.Lock()
	defer it.mu.Unlock()
	if it.closed {
		return nil
	}
	it.closed = true
	it.key, it.value = nil, nil
	return it.release(false)
}

// pebbleLogger logs Pebble's messages to slog: information at debug level.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	if p.l.Enabled(context.Background(), slog.LevelDebug) {
		p.l.Debug("pebble: " + fmt.Sprintf(format, args...))
	}
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error("pebble: " + fmt.Sprintf(format, args...))
}

// Fatalf logs and panics: Pebble calls it when it cannot go on.
func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := "pebble: " + fmt.Sprintf(format, args...)
	p.l.Error(msg)
	panic(msg)
}
