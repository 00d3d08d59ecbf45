package state

import (
	"bytes"
	"container/list"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
)

// CacheBudget bounds the bytes held by every record cache of a process
// together. It is safe for concurrent use.
type CacheBudget struct {
	limit int64
	used  atomic.Int64
}

// NewCacheBudget returns a budget of limit bytes.
func NewCacheBudget(limit int64) *CacheBudget { return &CacheBudget{limit: limit} }

// Limit returns the budget's size in bytes.
func (b *CacheBudget) Limit() int64 { return b.limit }

// Used returns the bytes the caches hold now.
func (b *CacheBudget) Used() int64 { return b.used.Load() }

// FlushListener is told, when a cache writes a key through to its store,
// the key's new value (nil: deleted) and the value it replaces there (nil:
// none). Slices are valid during the call only.
type FlushListener func(key, newValue, oldValue []byte) error

// CachingStore is a record cache over a key-value store: writes stay in the
// cache, and consecutive writes to a key become one write to the store (and
// so to its changelog) when the cache is flushed, at a commit, or when the
// budget runs out. Reads see the cache's writes. A processor that forwards
// its store's updates (an aggregation) registers a FlushListener and
// forwards when the cache flushes, so it sends one update per key per
// flush: fewer intermediate updates, the same final results.
type CachingStore interface {
	KeyValueStore
	// SetFlushListener sets the listener told of each key written through.
	SetFlushListener(FlushListener)
}

// Cached returns kv with a record cache in front, drawing on budget.
func Cached(kv KeyValueStore, budget *CacheBudget) CachingStore {
	return &cache{KeyValueStore: kv, budget: budget, entries: map[string]*list.Element{}, order: list.New()}
}

type cacheEntry struct {
	key   string
	value []byte // nil: deleted
}

// cache is a CachingStore. mu guards the entries: the task writes, queries
// may read from other goroutines.
type cache struct {
	KeyValueStore
	budget   *CacheBudget
	listener FlushListener

	mu       sync.RWMutex
	entries  map[string]*list.Element // of *cacheEntry, dirty
	order    *list.List               // least recently written first
	used     int64
	flushing bool
}

// entrySize is what an entry costs the budget: its bytes and bookkeeping.
func entrySize(key string, value []byte) int64 { return int64(len(key) + len(value) + 64) }

func (c *cache) SetFlushListener(l FlushListener) { c.listener = l }

// FlushedView returns the store beneath the cache, which holds what has
// been flushed, and reports whether a flush listener is set: whether the
// values there are those the store's processor has forwarded. A join that
// reads another table this way computes its old results from exactly the
// values it was told of before.
func (c *cache) FlushedView() (KeyValueStore, bool) { return c.KeyValueStore, c.listener != nil }

// Get implements KeyValueStore.
func (c *cache) Get(key []byte) ([]byte, error) {
	if key == nil {
		return nil, &storeError{store: c.Name(), op: "get", err: ErrNilKey}
	}
	c.mu.RLock()
	e, ok := c.entries[string(key)]
	var v []byte
	if ok {
		v = e.Value.(*cacheEntry).value
	}
	c.mu.RUnlock()
	if ok {
		return v, nil
	}
	return c.KeyValueStore.Get(key)
}

// Put implements KeyValueStore.
func (c *cache) Put(key, value []byte) error {
	if key == nil {
		return &storeError{store: c.Name(), op: "put", err: ErrNilKey}
	}
	if value != nil {
		value = append([]byte{}, value...)
	}
	c.mu.Lock()
	k := string(key)
	if e, ok := c.entries[k]; ok {
		ce := e.Value.(*cacheEntry)
		c.charge(entrySize(k, value) - entrySize(k, ce.value))
		ce.value = value
		c.order.MoveToBack(e)
	} else {
		c.entries[k] = c.order.PushBack(&cacheEntry{key: k, value: value})
		c.charge(entrySize(k, value))
	}
	c.mu.Unlock()
	return c.maybeEvict()
}

func (c *cache) charge(n int64) {
	c.used += n
	c.budget.used.Add(n)
}

// maybeEvict writes the least recently written entries through while the
// budget is exceeded and this cache holds anything.
func (c *cache) maybeEvict() error {
	if c.flushing {
		return nil
	}
	for c.budget.used.Load() > c.budget.limit {
		c.mu.Lock()
		e := c.order.Front()
		c.mu.Unlock()
		if e == nil {
			return nil
		}
		if err := c.writeThrough(e); err != nil {
			return err
		}
	}
	return nil
}

// writeThrough writes one entry to the store, tells the listener and drops
// the entry from the cache.
func (c *cache) writeThrough(e *list.Element) error {
	ce := e.Value.(*cacheEntry)
	key := []byte(ce.key)
	old, err := c.KeyValueStore.Get(key)
	if err != nil {
		return err
	}
	if ce.value == nil {
		if old != nil {
			_, err = c.KeyValueStore.Delete(key)
		}
	} else {
		err = c.KeyValueStore.Put(key, ce.value)
	}
	if err == nil && c.listener != nil && !(ce.value == nil && old == nil) {
		err = c.listener(key, ce.value, old)
	}
	c.mu.Lock()
	c.order.Remove(e)
	delete(c.entries, ce.key)
	c.charge(-entrySize(ce.key, ce.value))
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("state: store %q: write cached %q through: %w", c.Name(), key, err)
	}
	return nil
}

// PutIfAbsent implements KeyValueStore.
func (c *cache) PutIfAbsent(key, value []byte) ([]byte, error) {
	old, err := c.Get(key)
	if err != nil || old != nil || value == nil {
		return old, err
	}
	return nil, c.Put(key, value)
}

// Delete implements KeyValueStore.
func (c *cache) Delete(key []byte) ([]byte, error) {
	old, err := c.Get(key)
	if err != nil || old == nil {
		return old, err
	}
	return old, c.Put(key, nil)
}

// Flush writes every cached entry through, oldest first, then flushes the
// store.
func (c *cache) Flush() error {
	if err := c.flushEntries(); err != nil {
		return err
	}
	return c.KeyValueStore.Flush()
}

func (c *cache) flushEntries() error {
	c.flushing = true
	defer func() { c.flushing = false }()
	for {
		c.mu.Lock()
		e := c.order.Front()
		c.mu.Unlock()
		if e == nil {
			return nil
		}
		if err := c.writeThrough(e); err != nil {
			return err
		}
	}
}

// AppliedOffset implements Restorable for a store that does.
func (c *cache) AppliedOffset() (int64, bool, error) {
	r, err := restorable(c.KeyValueStore)
	if err != nil {
		return 0, false, err
	}
	return r.AppliedOffset()
}

// Restore implements Restorable, writing to the store under the cache: a
// task restores before it processes, so the cache is empty.
func (c *cache) Restore(records []ChangelogRecord, lastOffset int64) error {
	r, err := restorable(c.KeyValueStore)
	if err != nil {
		return err
	}
	return r.Restore(records, lastOffset)
}

// Checkpoint implements Restorable: it writes the cache through first.
func (c *cache) Checkpoint(offset int64) error {
	r, err := restorable(c.KeyValueStore)
	if err != nil {
		return err
	}
	if err := c.flushEntries(); err != nil {
		return err
	}
	return r.Checkpoint(offset)
}

// Close flushes the cache and closes the store.
func (c *cache) Close() error {
	return errors.Join(c.flushEntries(), c.KeyValueStore.Close())
}

// Range implements KeyValueStore: the store's entries merged with the
// cache's, the cache winning.
func (c *cache) Range(from, to []byte) (Iterator, error) {
	return c.merged(func() (Iterator, error) { return c.KeyValueStore.Range(from, to) }, func(k []byte) bool {
		return (from == nil || bytes.Compare(k, from) >= 0) && (to == nil || bytes.Compare(k, to) < 0)
	}, false)
}

// ReverseRange implements KeyValueStore.
func (c *cache) ReverseRange(from, to []byte) (Iterator, error) {
	return c.merged(func() (Iterator, error) { return c.KeyValueStore.ReverseRange(from, to) }, func(k []byte) bool {
		return (from == nil || bytes.Compare(k, from) >= 0) && (to == nil || bytes.Compare(k, to) < 0)
	}, true)
}

// PrefixScan implements KeyValueStore.
func (c *cache) PrefixScan(prefix []byte) (Iterator, error) {
	return c.merged(func() (Iterator, error) { return c.KeyValueStore.PrefixScan(prefix) }, func(k []byte) bool {
		return bytes.HasPrefix(k, prefix)
	}, false)
}

// ApproximateCount implements KeyValueStore: the store's count, plus the
// cached keys it does not have, minus those the cache deletes.
func (c *cache) ApproximateCount() (int64, error) {
	n, err := c.KeyValueStore.ApproximateCount()
	if err != nil {
		return 0, err
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	for k, e := range c.entries {
		old, err := c.KeyValueStore.Get([]byte(k))
		if err != nil {
			return 0, err
		}
		switch v := e.Value.(*cacheEntry).value; {
		case v != nil && old == nil:
			n++
		case v == nil && old != nil:
			n--
		}
	}
	return n, nil
}

// merged iterates the store (from open) merged with a snapshot of the cached
// entries that in accepts, in order (descending if reverse).
func (c *cache) merged(open func() (Iterator, error), in func([]byte) bool, reverse bool) (Iterator, error) {
	c.mu.RLock()
	var snap []cacheEntry
	for k, e := range c.entries {
		if in([]byte(k)) {
			snap = append(snap, *e.Value.(*cacheEntry))
		}
	}
	c.mu.RUnlock()
	sort.Slice(snap, func(i, j int) bool { return (snap[i].key < snap[j].key) != reverse })
	it, err := open()
	if err != nil {
		return nil, err
	}
	m := &mergeIter{store: it, cached: snap, reverse: reverse}
	m.storeOK = it.Next()
	return m, nil
}

// mergeIter merges a store iterator with sorted cached entries; a cached
// entry hides the store's entry of the same key, and a cached deletion hides
// it altogether.
type mergeIter struct {
	store      Iterator
	storeOK    bool
	advance    bool // the store's current entry was returned: move on first
	cached     []cacheEntry
	reverse    bool
	key, value []byte
}

func (m *mergeIter) Next() bool {
	if m.advance {
		// Moved only now: the store's Key and Value stay valid until then.
		m.storeOK, m.advance = m.store.Next(), false
	}
	for {
		haveCache := len(m.cached) > 0
		if !haveCache && !m.storeOK {
			return false
		}
		cmp := 0
		switch {
		case !haveCache:
			cmp = 1 // the store's is next
		case !m.storeOK:
			cmp = -1
		default:
			cmp = bytes.Compare([]byte(m.cached[0].key), m.store.Key())
			if m.reverse {
				cmp = -cmp
			}
		}
		if cmp > 0 {
			m.key, m.value = m.store.Key(), m.store.Value()
			m.advance = true
			return true
		}
		ce := m.cached[0]
		m.cached = m.cached[1:]
		if cmp == 0 {
			m.storeOK = m.store.Next()
		}
		if ce.value == nil {
			continue // deleted in the cache
		}
		m.key, m.value = []byte(ce.key), ce.value
		return true
	}
}

func (m *mergeIter) Key() []byte   { return m.key }
func (m *mergeIter) Value() []byte { return m.value }
func (m *mergeIter) Err() error    { return m.store.Err() }
func (m *mergeIter) Close() error  { return m.store.Close() }
