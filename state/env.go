package state

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
)

// DefaultMemoryBudget is the memory budget of an [Env] made without
// [WithMemoryBudget]: 64 MiB.
const DefaultMemoryBudget int64 = 64 << 20

// MinMemoryBudget is the smallest memory budget [WithMemoryBudget] accepts:
// 1 MiB.
const MinMemoryBudget int64 = 1 << 20

// Env owns what the state stores of one process share: the state
// directory, one memory budget and the Pebble block cache and file cache
// sized from it. A process makes one Env, opens every task's stores through
// it, and closes it last.
//
// # Memory
//
// The memory budget B (see [WithMemoryBudget]) is the one budget of all
// stores of the process, however many there are:
//
//   - A quarter of B is for record caches ([Env.RecordCacheBudget]), shared
//     by every cached store.
//   - One Pebble block cache of the other three quarters, P, is shared by
//     every persistent store. Pebble
//     charges each memtable it allocates to that cache, so cached blocks and
//     memtables come out of the same P: as memtables grow, blocks are
//     evicted.
//   - Memtables (write buffers) are kept to about B/4 of data in all. Each
//     store's memtable grows to at most B/8 (clamped to [256 KiB, 64 MiB]),
//     and the Env counts the bytes written to each store since its last
//     flush; when the sum over all stores passes B/4, the Env flushes the
//     store that has the most, in the background. Their memory is charged
//     to the block cache. So adding stores does not
//     add write buffers, and blocks keep the rest of P.
//   - The floor: each open persistent store holds at least Pebble's
//     smallest memtable (256 KiB) and may keep one more for reuse, so about
//     0.5 MiB a store in memtables. This too is charged to the cache, so P
//     holds as long as the stores' floors fit in it (about 100 stores for
//     the default 64 MiB); beyond that each store adds its floor, and the
//     block cache is left nothing. Give a process with many stores a larger
//     budget.
//   - Open sstable files are shared through one file cache of about 1000
//     files, however many stores there are.
//
// A Restore batch larger than half a memtable (B/16, but at least 128 KiB
// and at most 32 MiB) is written by Pebble as a memtable of its own and
// flushed at once; keep batches smaller.
//
// # Closing
//
// Stores must be closed by their owners before the Env. [Env.Close] closes
// any persistent store still open (so nothing leaks) and then reports them
// by name in its error. In-memory stores own nothing of the Env's and are
// not tracked.
//
// An Env is safe for concurrent use.
type Env struct {
	dir     string
	budget  int64
	records *CacheBudget
	logger  *slog.Logger

	cache        *pebble.Cache
	fileCache    *pebble.FileCache // made with the first persistent store
	memTableSize uint64

	// unflushed is the estimate of bytes written to the open stores and not
	// yet flushed; past flushAt the Env flushes the store with the most.
	unflushed atomic.Int64
	flushAt   int64

	mu     sync.Mutex
	closed bool
	open   map[string]*pebbleStore // by store directory; nil while opening or wiping
	// closing holds, by store directory, a channel closed once the store
	// that was open there has closed its files: opening it again waits.
	closing map[string]chan struct{}
}

// EnvOption configures an [Env].
type EnvOption func(*envConfig)

type envConfig struct {
	budget    int64
	budgetSet bool
	logger    *slog.Logger
}

// WithMemoryBudget sets the memory budget of all persistent stores of the
// process, in bytes; see [Env] for how it is split. It must be at least
// [MinMemoryBudget]. The default is [DefaultMemoryBudget].
func WithMemoryBudget(bytes int64) EnvOption {
	return func(c *envConfig) { c.budget, c.budgetSet = bytes, true }
}

// WithLogger sets the logger of the Env and of Pebble. Pebble's
// informational messages are logged at debug level. The default, and what a
// nil logger means, is [slog.Default].
func WithLogger(l *slog.Logger) EnvOption {
	return func(c *envConfig) { c.logger = l }
}

// NewEnv returns an Env that keeps persistent stores under dir. dir is
// created when the first persistent store is opened. An empty dir makes an
// Env for in-memory stores only: opening a persistent store in it is an
// error.
func NewEnv(dir string, opts ...EnvOption) (*Env, error) {
	c := envConfig{budget: DefaultMemoryBudget}
	for _, o := range opts {
		o(&c)
	}
	if c.budgetSet && c.budget < MinMemoryBudget {
		return nil, fmt.Errorf("state: memory budget of %d bytes: it must be at least %d (1 MiB)", c.budget, MinMemoryBudget)
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	if dir != "" {
		dir = filepath.Clean(dir)
		if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
			return nil, fmt.Errorf("state: state directory %s is not a directory", dir)
		}
	}
	records := c.budget / 4
	p := c.budget - records
	e := &Env{
		dir:     dir,
		budget:  c.budget,
		records: NewCacheBudget(records),
		logger:  c.logger,
		cache:   pebble.NewCache(p),
		flushAt: c.budget / 4,
		open:    map[string]*pebbleStore{},
		closing: map[string]chan struct{}{},
	}
	// Memtables are sized from the whole budget, but Pebble charges them to
	// the block cache, so blocks and memtables together stay within P.
	e.memTableSize = uint64(min(max(c.budget/8, 256<<10), 64<<20))
	return e, nil
}

// Dir returns the state directory; it is empty for an Env of in-memory
// stores only.
func (e *Env) Dir() string { return e.dir }

// MemoryBudget returns the memory budget of the process's stores, in bytes.
func (e *Env) MemoryBudget() int64 { return e.budget }

// RecordCacheBudget returns the budget the record caches of the process's
// stores share: a quarter of the memory budget.
func (e *Env) RecordCacheBudget() *CacheBudget { return e.records }

// StoreDir returns the directory of a persistent store:
// <dir>/<appID>/<task>/<store>.
func (e *Env) StoreDir(appID, task, store string) string {
	return filepath.Join(e.dir, appID, task, store)
}

// OpenKeyValue opens the key-value store spec declares, for task of the
// application appID (a task is written like "0_3"). The store it returns
// implements [Restorable].
//
// An in-memory store is new and empty. A persistent store lives in
// [Env.StoreDir]; it is created if the directory does not exist, and
// reopened with its data and applied offset if the same application made
// it. A directory made by another application, by another format version of
// Riffle, or not by Riffle at all is refused, and nothing in it is touched.
//
// A persistent store is a Pebble database. It behaves as the in-memory
// store does (see [NewInMemoryKeyValue]), except that:
//
//   - Get, PutIfAbsent and Delete return copies, which the caller owns. An
//     iterator's Key and Value are Pebble's: valid until the next call to
//     Next or the Close of the iterator or the store, and not to be changed.
//   - An iterator sees a snapshot of the store as of when it was opened.
//     Closing the store closes the iterators still open: they then stop,
//     and Err reports ErrClosed.
//   - ApproximateCount is an estimate from Pebble's table properties and
//     the writes not yet flushed: exact for keys put once each, off by
//     overwrites and deletions until they are flushed and compacted.
//   - Close flushes the writes not yet flushed, so a clean close keeps them.
//
// Its write-ahead log is off: the changelog is the log of record. Writes
// reach disk when a memtable is flushed (by Flush, Checkpoint, Close, or
// when memtables fill), and those made since are lost in a crash. What
// survives a crash is always a prefix of the writes, in the order they were
// made; so after a crash:
//
//   - Restore writes its records and its offset in one atomic batch: the
//     data and the applied offset agree exactly.
//   - Checkpoint writes its offset and then flushes: the writes before it
//     and the offset are durable together when it returns. Writes made by
//     Put, PutIfAbsent and Delete between checkpoints may reach disk before
//     the next checkpoint does, so the data may be ahead of the applied
//     offset, but never behind it. Replaying the changelog from the applied
//     offset is idempotent and yields the right state.
func (e *Env) OpenKeyValue(appID, task string, spec Spec) (KeyValueStore, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if spec.Kind != KindKeyValue {
		return nil, fmt.Errorf("state: store %q: is a %v store, not key-value", spec.Name, spec.Kind)
	}
	if spec.Backend == InMemoryBackend {
		return NewInMemoryKeyValue(spec.Name), nil
	}
	s, err := e.openPebbleOf(appID, task, spec)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// checkIDs checks that an application id and a task can name directories.
func checkIDs(store, appID, task string) error {
	for _, id := range []struct{ what, v string }{{"application id", appID}, {"task", task}} {
		if id.v == "" {
			return fmt.Errorf("state: store %q: the %s is empty", store, id.what)
		}
		if !validName(id.v) || id.v == "." || id.v == ".." {
			return fmt.Errorf("state: store %q: %s %q: it may hold only ASCII letters, digits, '.', '_' and '-'", store, id.what, id.v)
		}
	}
	return nil
}

// Wipe deletes the directory of one persistent store, so that it is
// restored from scratch when next opened. It is the only function of the
// package that deletes anything. It refuses to delete a store that is open,
// or a directory that is neither empty nor a Riffle store of application
// appID. Wiping a store that does not exist does nothing.
func (e *Env) Wipe(appID, task, store string) error {
	if err := checkIDs(store, appID, task); err != nil {
		return err
	}
	if !validName(store) {
		return fmt.Errorf("state: store %q: wipe: not a valid store name", store)
	}
	if e.dir == "" {
		return fmt.Errorf("state: store %q: wipe: the state directory is not set", store)
	}
	path := e.StoreDir(appID, task, store)
	e.lockDir(path)
	if _, ok := e.open[path]; ok {
		e.mu.Unlock()
		return fmt.Errorf("state: store %q in %s: wipe: the store is open", store, path)
	}
	e.open[path] = nil // keep the store from being opened meanwhile
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.open, path)
		e.mu.Unlock()
	}()
	meta, empty, err := readStoreMeta(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("state: store %q in %s: wipe: %w", store, path, err)
	case meta == nil && !empty:
		return fmt.Errorf("state: store %q in %s: wipe: refusing to delete a directory that has no %s file", store, path, metaFile)
	case meta != nil && meta.Application != appID:
		return fmt.Errorf("state: store %q in %s: wipe: refusing to delete a directory of application %q", store, path, meta.Application)
	}
	if err := os.RemoveAll(path); err != nil {
		return fmt.Errorf("state: store %q in %s: wipe: %w", store, path, err)
	}
	e.logger.Info("state: wiped store", "store", store, "dir", path)
	return nil
}

// Close closes the Env. Stores should be closed first; Close closes any
// persistent store still open and returns an error naming them.
func (e *Env) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return errors.New("state: environment is already closed")
	}
	e.closed = true
	var left []*pebbleStore
	for _, s := range e.open {
		if s != nil {
			left = append(left, s)
		}
	}
	var closing []chan struct{}
	for _, ch := range e.closing {
		closing = append(closing, ch)
	}
	e.mu.Unlock()
	for _, ch := range closing {
		<-ch // stores closed elsewhere still use the caches
	}

	slices.SortFunc(left, func(a, b *pebbleStore) int { return cmp.Compare(a.dir, b.dir) })
	var errs []error
	if len(left) > 0 {
		names := make([]string, len(left))
		for i, s := range left {
			names[i] = s.dir
		}
		errs = append(errs, fmt.Errorf("state: environment closed with %d stores still open, now closed: %s", len(left), strings.Join(names, ", ")))
	}
	for _, s := range left {
		if err := s.Close(); err != nil && !errors.Is(err, ErrClosed) {
			errs = append(errs, err)
		}
	}
	e.cache.Unref()
	if e.fileCache != nil {
		e.fileCache.Unref()
	}
	return errors.Join(errs...)
}

// sharedFileCache returns the file cache of all stores, making it the
// first time. e.mu must not be held.
func (e *Env) sharedFileCache() *pebble.FileCache {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fileCache == nil {
		e.fileCache = pebble.NewFileCache(runtime.GOMAXPROCS(0), pebble.FileCacheSize(1000))
	}
	return e.fileCache
}

// unregister forgets s, which is closing, and releases what it had
// charged. Until the returned func is called (once s's files are closed),
// opening or wiping its directory waits.
func (e *Env) unregister(s *pebbleStore) (closed func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.open[s.dir] == s {
		delete(e.open, s.dir)
	}
	e.unflushed.Add(-s.charged.Swap(0))
	ch := make(chan struct{})
	e.closing[s.dir] = ch
	return func() {
		e.mu.Lock()
		if e.closing[s.dir] == ch {
			delete(e.closing, s.dir)
		}
		e.mu.Unlock()
		close(ch)
	}
}

// lockDir waits until no store is closing in dir, and returns with e.mu
// held.
func (e *Env) lockDir(dir string) {
	for {
		e.mu.Lock()
		ch := e.closing[dir]
		if ch == nil {
			return
		}
		e.mu.Unlock()
		<-ch
	}
}

// charge adds n bytes written to s and not yet flushed. Past the limit of
// all stores, it flushes the store that has the most.
func (e *Env) charge(s *pebbleStore, n int64) {
	s.charged.Add(n)
	if e.unflushed.Add(n) <= e.flushAt {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.unflushed.Load() <= e.flushAt {
		return // another writer flushed one
	}
	var most *pebbleStore
	var n0 int64
	for _, t := range e.open {
		if t == nil {
			continue
		}
		if c := t.charged.Load(); c > n0 {
			most, n0 = t, c
		}
	}
	if most == nil {
		return
	}
	e.unflushed.Add(-most.charged.Swap(0))
	// most is registered, so it is not closed: its db is open. Closing
	// unregisters first, under e.mu.
	if _, err := most.db.AsyncFlush(); err != nil {
		e.logger.Error("state: flushing store to stay within the memory budget", "store", most.name, "dir", most.dir, "err", err)
	}
}

// flushed releases what s had charged: a flush of s has begun.
func (e *Env) flushed(s *pebbleStore) {
	e.unflushed.Add(-s.charged.Swap(0))
}
