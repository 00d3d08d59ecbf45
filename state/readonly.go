package state

import "fmt"

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
func (r readOnly) Close() error {
	return fmt.Errorf("state: store %q: close: a read-only view cannot close the store", r.kv.Name())
}
