package state

import (
	"fmt"
	"time"
)

// ReadOnlyKeyValueStore is the reading half of a KeyValueStore: what code
// outside a topology (tests, queries) may do with a task's store.
//
// It is a Store so processors can be handed one, but a view does not own
// its store: its Flush does nothing and its Close refuses.
type ReadOnlyKeyValueStore interface {
	Store
	// Get returns the value of key, or nil if key is absent.
	Get(key []byte) ([]byte, error)
	// Range iterates the keys in [from, to) in ascending order; nil bounds
	// are open.
	Range(from, to []byte) (Iterator, error)
	// ReverseRange iterates the keys in [from, to) in descending order.
	ReverseRange(from, to []byte) (Iterator, error)
	// PrefixScan iterates, in ascending order, the keys that start with
	// prefix.
	PrefixScan(prefix []byte) (Iterator, error)
	// ApproximateCount returns an estimate of the number of keys.
	ApproximateCount() (int64, error)
}

// ReadOnly returns a view of kv that can only read it. The view cannot be
// turned back into the writable store by a type assertion.
func ReadOnly(kv KeyValueStore) ReadOnlyKeyValueStore { return readOnly{kv: kv} }

type readOnly struct{ kv KeyValueStore }

func (r readOnly) Name() string                                   { return r.kv.Name() }
func (r readOnly) Get(key []byte) ([]byte, error)                 { return r.kv.Get(key) }
func (r readOnly) Range(from, to []byte) (Iterator, error)        { return r.kv.Range(from, to) }
func (r readOnly) ReverseRange(from, to []byte) (Iterator, error) { return r.kv.ReverseRange(from, to) }
func (r readOnly) PrefixScan(prefix []byte) (Iterator, error)     { return r.kv.PrefixScan(prefix) }
func (r readOnly) ApproximateCount() (int64, error)               { return r.kv.ApproximateCount() }

// Flush does nothing: the view writes nothing.
func (r readOnly) Flush() error { return nil }

// Close refuses: the view does not own the store.
func (r readOnly) Close() error { return refuseClose(r.kv.Name()) }

// ReadOnlyWindowStore is the reading half of a [WindowStore]: what code
// outside a topology (tests, queries) may do with a task's window store.
//
// Like [ReadOnlyKeyValueStore], a view does not own its store: its Flush
// does nothing and its Close refuses.
type ReadOnlyWindowStore interface {
	Store
	// Fetch returns the value of key's window starting at start, or nil.
	Fetch(key []byte, start int64) ([]byte, error)
	// FetchRange iterates key's windows whose start is in [from, to], in
	// ascending order of start.
	FetchRange(key []byte, from, to int64) (WindowIterator, error)
	// FetchAll iterates every key's windows whose start is in [from, to],
	// in ascending order of start, then key.
	FetchAll(from, to int64) (WindowIterator, error)
	// Retention returns how long windows are kept.
	Retention() time.Duration
}

// ReadOnlyWindow returns a view of ws that can only read it. The view
// cannot be turned back into the writable store by a type assertion.
func ReadOnlyWindow(ws WindowStore) ReadOnlyWindowStore { return readOnlyWindow{ws: ws} }

type readOnlyWindow struct{ ws WindowStore }

func (r readOnlyWindow) Name() string                                  { return r.ws.Name() }
func (r readOnlyWindow) Fetch(key []byte, start int64) ([]byte, error) { return r.ws.Fetch(key, start) }
func (r readOnlyWindow) FetchRange(key []byte, from, to int64) (WindowIterator, error) {
	return r.ws.FetchRange(key, from, to)
}
func (r readOnlyWindow) FetchAll(from, to int64) (WindowIterator, error) {
	return r.ws.FetchAll(from, to)
}
func (r readOnlyWindow) Retention() time.Duration { return r.ws.Retention() }

// Flush does nothing: the view writes nothing.
func (r readOnlyWindow) Flush() error { return nil }

// Close refuses: the view does not own the store.
func (r readOnlyWindow) Close() error { return refuseClose(r.ws.Name()) }

// ReadOnlySessionStore is the reading half of a [SessionStore]: what code
// outside a topology (tests, queries) may do with a task's session store.
//
// Like [ReadOnlyKeyValueStore], a view does not own its store: its Flush
// does nothing and its Close refuses.
type ReadOnlySessionStore interface {
	Store
	// Fetch returns the value of key's session [start, end], or nil.
	Fetch(key []byte, start, end int64) ([]byte, error)
	// FindSessions iterates key's sessions that end at or after
	// earliestEnd and start at or before latestStart, in ascending order
	// of end.
	FindSessions(key []byte, earliestEnd, latestStart int64) (SessionIterator, error)
	// FetchAll iterates every key's sessions whose end is in [from, to],
	// in ascending order of end, then key.
	FetchAll(from, to int64) (SessionIterator, error)
	// Retention returns how long sessions are kept after they end.
	Retention() time.Duration
}

// ReadOnlySession returns a view of ss that can only read it. The view
// cannot be turned back into the writable store by a type assertion.
func ReadOnlySession(ss SessionStore) ReadOnlySessionStore { return readOnlySession{ss: ss} }

type readOnlySession struct{ ss SessionStore }

func (r readOnlySession) Name() string { return r.ss.Name() }
func (r readOnlySession) Fetch(key []byte, start, end int64) ([]byte, error) {
	return r.ss.Fetch(key, start, end)
}
func (r readOnlySession) FindSessions(key []byte, earliestEnd, latestStart int64) (SessionIterator, error) {
	return r.ss.FindSessions(key, earliestEnd, latestStart)
}
func (r readOnlySession) FetchAll(from, to int64) (SessionIterator, error) {
	return r.ss.FetchAll(from, to)
}
func (r readOnlySession) Retention() time.Duration { return r.ss.Retention() }

// Flush does nothing: the view writes nothing.
func (r readOnlySession) Flush() error { return nil }

// Close refuses: the view does not own the store.
func (r readOnlySession) Close() error { return refuseClose(r.ss.Name()) }

// refuseClose is the error of a read-only view's Close.
func refuseClose(name string) error {
	return fmt.Errorf("state: store %q: close: a read-only view cannot close the store", name)
}
