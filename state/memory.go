package state

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// ErrNilKey is returned by a store asked to get, put or delete a nil key. A
// nil key is a Kafka null, which a store cannot hold; an empty key
// ([]byte{}) is a key like any other.
var ErrNilKey = errors.New("state: nil key")

// storeError says which store failed at what. It unwraps to the cause, so
// errors.Is(err, ErrClosed) works.
type storeError struct {
	store string
	op    string
	err   error
}

func (e *storeError) Error() string {
	// Causes from this package start with "state: " too; say it once.
	return fmt.Sprintf("state: store %q: %s: %s", e.store, e.op, strings.TrimPrefix(e.err.Error(), "state: "))
}

func (e *storeError) Unwrap() error { return e.err }

// iteratorClosed is ErrClosed as said of an iterator.
type iteratorClosed struct{}

func (iteratorClosed) Error() string        { return "iterator is closed" }
func (iteratorClosed) Is(target error) bool { return target == ErrClosed }

// NewInMemoryKeyValue returns an empty in-memory key-value store named name.
// It also implements [Restorable]: its applied changelog offset is kept in
// memory with the data and is lost with it.
//
// Its keys are sorted bytewise, as in a persistent store, in a B-tree: Get,
// Put and Delete take O(log n) time, and ApproximateCount is exact.
//
// The store copies the keys and values it is given, so callers may reuse
// their buffers. The slices it returns are never changed by the store; they
// must not be changed by callers either.
//
// It is safe for one writer and any number of concurrent readers. An
// iterator walks a snapshot of the store taken when it was opened, in O(1)
// time: it holds no lock, never blocks the writer, and sees none of the
// writes made after it was opened. While any iterator is open, the writer
// copies the nodes it changes instead of changing them in place, so close
// iterators promptly (an iterator walked to its end needs no Close for
// this). An iterator opened before the store was closed can still be walked
// to its end after.
func NewInMemoryKeyValue(name string) KeyValueStore {
	return &memStore{name: name}
}

var (
	_ KeyValueStore = (*memStore)(nil)
	_ Restorable    = (*memStore)(nil)
)

// memStore is the in-memory KeyValueStore. mu guards closed, the tree and
// the applied offset; iterators read their snapshots without it (see
// btree).
type memStore struct {
	name      string
	mu        sync.RWMutex
	closed    bool
	tree      btree
	applied   int64 // the applied changelog offset, if hasOffset
	hasOffset bool
}

func (s *memStore) fail(op string, err error) error {
	return &storeError{store: s.name, op: op, err: err}
}

func (s *memStore) Name() string { return s.name }

func (s *memStore) Flush() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return s.fail("flush", ErrClosed)
	}
	return nil
}

func (s *memStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return s.fail("close", ErrClosed)
	}
	s.closed = true
	s.tree.root, s.tree.count = nil, 0 // open iterators keep their snapshot
	return nil
}

func (s *memStore) Get(key []byte) ([]byte, error) {
	if key == nil {
		return nil, s.fail("get", ErrNilKey)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, s.fail("get", ErrClosed)
	}
	return s.tree.get(key), nil
}

// own returns copies of key and value in one allocation. value must not be
// nil; the copy of an empty value is empty and not nil.
func own(key, value []byte) ([]byte, []byte) {
	buf := make([]byte, len(key)+len(value))
	n := copy(buf, key)
	copy(buf[n:], value)
	return buf[:n:n], buf[n:]
}

func (s *memStore) Put(key, value []byte) error {
	if value == nil {
		_, err := s.remove("put", key)
		return err
	}
	if key == nil {
		return s.fail("put", ErrNilKey)
	}
	k, v := own(key, value)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return s.fail("put", ErrClosed)
	}
	s.tree.put(k, v)
	return nil
}

func (s *memStore) PutIfAbsent(key, value []byte) ([]byte, error) {
	if key == nil {
		return nil, s.fail("put if absent", ErrNilKey)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, s.fail("put if absent", ErrClosed)
	}
	if old := s.tree.get(key); old != nil {
		return old, nil
	}
	if value != nil { // putting nil to an absent key changes nothing
		s.tree.put(own(key, value))
	}
	return nil, nil
}

func (s *memStore) Delete(key []byte) ([]byte, error) {
	return s.remove("delete", key)
}

func (s *memStore) remove(op string, key []byte) ([]byte, error) {
	if key == nil {
		return nil, s.fail(op, ErrNilKey)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, s.fail(op, ErrClosed)
	}
	return s.tree.delete(key), nil
}

// AppliedOffset returns the changelog offset last recorded by Restore or
// Checkpoint.
func (s *memStore) AppliedOffset() (int64, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, false, s.fail("applied offset", ErrClosed)
	}
	return s.applied, s.hasOffset, nil
}

// Restore applies records and records lastOffset, all under the write lock:
// readers see the store either before or after all of it.
func (s *memStore) Restore(records []ChangelogRecord, lastOffset int64) error {
	// Copy outside the lock, and refuse a nil key before changing anything.
	owned := make([]item, len(records))
	for i, r := range records {
		if r.Key == nil {
			return s.fail("restore", ErrNilKey)
		}
		if r.Value == nil {
			owned[i] = item{key: r.Key} // a deletion; the key is only looked up
			continue
		}
		owned[i].key, owned[i].value = own(r.Key, r.Value)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return s.fail("restore", ErrClosed)
	}
	for _, x := range owned {
		if x.value == nil {
			s.tree.delete(x.key)
		} else {
			s.tree.put(x.key, x.value)
		}
	}
	s.applied, s.hasOffset = lastOffset, true
	return nil
}

// Checkpoint records offset as applied. There is nothing to make durable.
func (s *memStore) Checkpoint(offset int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return s.fail("checkpoint", ErrClosed)
	}
	s.applied, s.hasOffset = offset, true
	return nil
}

func (s *memStore) Range(from, to []byte) (Iterator, error) {
	return s.iterate("range", from, to, false)
}

func (s *memStore) ReverseRange(from, to []byte) (Iterator, error) {
	return s.iterate("reverse range", from, to, true)
}

func (s *memStore) PrefixScan(prefix []byte) (Iterator, error) {
	return s.iterate("prefix scan", prefix, prefixEnd(prefix), false)
}

// prefixEnd returns the least key greater than every key that starts with
// prefix, or nil if there is none (prefix is empty or all 0xff).
func prefixEnd(prefix []byte) []byte {
	for i := len(prefix) - 1; i >= 0; i-- {
		if prefix[i] != 0xff {
			end := bytes.Clone(prefix[:i+1])
			end[i]++
			return end
		}
	}
	return nil
}

func (s *memStore) ApproximateCount() (int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, s.fail("approximate count", ErrClosed)
	}
	return int64(s.tree.count), nil
}

// iterate opens an iterator over [from, to) of a snapshot.
func (s *memStore) iterate(op string, from, to []byte, reverse bool) (Iterator, error) {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, s.fail(op, ErrClosed)
	}
	root := s.tree.snapshot()
	s.mu.RUnlock()

	it := &memIter{store: s.name, tree: &s.tree, reverse: reverse}
	it.stack = it.buf[:0]
	// Keep copies of the bounds: the caller may reuse its buffers.
	if from != nil {
		it.from = bytes.Clone(from)
	}
	if to != nil {
		it.to = bytes.Clone(to)
	}
	if reverse {
		it.seekLast(root)
	} else {
		it.seekFirst(root)
	}
	return it, nil
}

// frame is a node on an iterator's path and the index of the next item to
// visit in it: items[i] going up, items[i-1] going down.
type frame struct {
	n *node
	i int
}

// memIter walks [from, to) of a frozen tree with a stack of frames: the
// top frame is where the next item is; the frames below it are its
// ancestors, each with the item to visit once the subtree above is done.
type memIter struct {
	store      string
	tree       *btree // to release the snapshot; nil once released
	reverse    bool
	from, to   []byte // nil is open
	stack      []frame
	buf        [8]frame // deep enough for billions of keys
	key, value []byte
	done       bool // no more items
	closed     bool
	err        error
}

// seekFirst pushes the path to the first item not less than from.
func (it *memIter) seekFirst(n *node) {
	for n != nil {
		i, found := n.search(it.from)
		it.stack = append(it.stack, frame{n, i})
		if found || n.leaf() {
			return
		}
		n = n.children[i]
	}
}

// seekLast pushes the path to the last item less than to.
func (it *memIter) seekLast(n *node) {
	for n != nil {
		i := len(n.items)
		if it.to != nil {
			i, _ = n.search(it.to)
		}
		it.stack = append(it.stack, frame{n, i})
		if n.leaf() {
			return
		}
		n = n.children[i]
	}
}

// ascend returns the next item going up.
func (it *memIter) ascend() (item, bool) {
	for len(it.stack) > 0 {
		f := &it.stack[len(it.stack)-1]
		if f.i < len(f.n.items) {
			x := f.n.items[f.i]
			f.i++
			if !f.n.leaf() {
				// Next come the items of the subtree right of x.
				for n := f.n.children[f.i]; ; n = n.children[0] {
					it.stack = append(it.stack, frame{n, 0})
					if n.leaf() {
						break
					}
				}
			}
			return x, true
		}
		it.stack = it.stack[:len(it.stack)-1]
	}
	return item{}, false
}

// descend returns the next item going down.
func (it *memIter) descend() (item, bool) {
	for len(it.stack) > 0 {
		f := &it.stack[len(it.stack)-1]
		if f.i > 0 {
			f.i--
			x := f.n.items[f.i]
			if !f.n.leaf() {
				// Next come the items of the subtree left of x.
				for n := f.n.children[f.i]; ; n = n.children[len(n.children)-1] {
					it.stack = append(it.stack, frame{n, len(n.items)})
					if n.leaf() {
						break
					}
				}
			}
			return x, true
		}
		it.stack = it.stack[:len(it.stack)-1]
	}
	return item{}, false
}

func (it *memIter) Next() bool {
	if it.closed {
		it.err = &storeError{store: it.store, op: "next", err: iteratorClosed{}}
		return false
	}
	if it.done {
		return false
	}
	var x item
	var ok bool
	if it.reverse {
		x, ok = it.descend()
		ok = ok && bytes.Compare(x.key, it.from) >= 0
	} else {
		x, ok = it.ascend()
		ok = ok && (it.to == nil || bytes.Compare(x.key, it.to) < 0)
	}
	if !ok {
		it.finish()
		return false
	}
	it.key, it.value = x.key, x.value
	return true
}

// finish ends the iteration and releases the snapshot.
func (it *memIter) finish() {
	if it.tree != nil {
		it.tree.release()
		it.tree = nil
	}
	it.done = true
	it.key, it.value = nil, nil
	it.stack = nil
	it.buf = [len(it.buf)]frame{}
}

func (it *memIter) Key() []byte { return it.key }

func (it *memIter) Value() []byte { return it.value }

func (it *memIter) Err() error { return it.err }

// Close ends the iteration; closing again does nothing. Next after Close
// returns false and makes Err report ErrClosed.
func (it *memIter) Close() error {
	it.closed = true
	it.finish()
	return nil
}
