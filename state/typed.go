package state

import (
	"fmt"

	"github.com/riffle-streams/riffle/serde"
)

// TypedKeyValue is a typed view of a [KeyValueStore]: it encodes keys and
// values with serdes on the way in and decodes them on the way out. It holds
// no state of its own, so any number of views may share a store.
//
// Entries are ordered by their encoded keys, bytewise. That is the natural
// order for strings and non-negative big-endian integers, but not for
// negative integers, floats or JSON.
type TypedKeyValue[K, V any] struct {
	TypedReader[K, V]
	w KeyValueStore
}

// TypedReader is the reading half of a TypedKeyValue, over a store that may
// be read-only: Get, Range and All.
type TypedReader[K, V any] struct {
	store  ReadOnlyKeyValueStore
	keys   serde.Serde[K]
	values serde.Serde[V]
}

// Typed returns a view of store that encodes keys with keys and values with
// values.
func Typed[K, V any](store KeyValueStore, keys serde.Serde[K], values serde.Serde[V]) *TypedKeyValue[K, V] {
	return &TypedKeyValue[K, V]{TypedReader: TypedReader[K, V]{store: store, keys: keys, values: values}, w: store}
}

// TypedRead returns a view of store that only reads, decoding keys with keys
// and values with values.
func TypedRead[K, V any](store ReadOnlyKeyValueStore, keys serde.Serde[K], values serde.Serde[V]) *TypedReader[K, V] {
	return &TypedReader[K, V]{store: store, keys: keys, values: values}
}

// Store returns the byte store under the view.
func (kv *TypedKeyValue[K, V]) Store() KeyValueStore { return kv.w }

func (kv *TypedReader[K, V]) fail(op, what string, err error) error {
	return &storeError{store: kv.store.Name(), op: op, err: fmt.Errorf("%s: %w", what, err)}
}

// Get returns the value of k and true, or V's zero value and false if k is
// absent.
func (kv *TypedReader[K, V]) Get(k K) (V, bool, error) {
	var zero V
	key, err := kv.keys.Encode(k)
	if err != nil {
		return zero, false, kv.fail("get", "encode key", err)
	}
	data, err := kv.store.Get(key)
	if err != nil || data == nil {
		return zero, false, err
	}
	v, err := kv.values.Decode(data)
	if err != nil {
		return zero, false, kv.fail("get", "decode value", err)
	}
	return v, true, nil
}

// Put sets k to v. If v encodes to nil bytes (a tombstone), Put deletes k.
func (kv *TypedKeyValue[K, V]) Put(k K, v V) error {
	key, value, err := kv.encode("put", k, v)
	if err != nil {
		return err
	}
	return kv.w.Put(key, value)
}

// PutIfAbsent sets k to v only if k is absent. If k is present it returns
// the value there and true, and changes nothing. If v encodes to nil bytes
// nothing is put.
func (kv *TypedKeyValue[K, V]) PutIfAbsent(k K, v V) (V, bool, error) {
	var zero V
	key, value, err := kv.encode("put if absent", k, v)
	if err != nil {
		return zero, false, err
	}
	old, err := kv.w.PutIfAbsent(key, value)
	if err != nil || old == nil {
		return zero, false, err
	}
	ov, err := kv.values.Decode(old)
	if err != nil {
		return zero, true, kv.fail("put if absent", "decode value", err)
	}
	return ov, true, nil
}

// Delete removes k. Deleting an absent key is not an error.
func (kv *TypedKeyValue[K, V]) Delete(k K) error {
	key, err := kv.keys.Encode(k)
	if err != nil {
		return kv.fail("delete", "encode key", err)
	}
	_, err = kv.w.Delete(key)
	return err
}

func (kv *TypedKeyValue[K, V]) encode(op string, k K, v V) ([]byte, []byte, error) {
	key, err := kv.keys.Encode(k)
	if err != nil {
		return nil, nil, kv.fail(op, "encode key", err)
	}
	value, err := kv.values.Encode(v)
	if err != nil {
		return nil, nil, kv.fail(op, "encode value", err)
	}
	return key, value, nil
}

// Range iterates, in ascending order, the entries whose encoded keys are in
// [encoded from, encoded to). A bound that encodes to nil bytes is open.
func (kv *TypedReader[K, V]) Range(from, to K) (*TypedIterator[K, V], error) {
	lo, err := kv.keys.Encode(from)
	if err != nil {
		return nil, kv.fail("range", "encode from", err)
	}
	hi, err := kv.keys.Encode(to)
	if err != nil {
		return nil, kv.fail("range", "encode to", err)
	}
	it, err := kv.store.Range(lo, hi)
	if err != nil {
		return nil, err
	}
	return &TypedIterator[K, V]{kv: kv, it: it}, nil
}

// All iterates every entry in ascending order of encoded keys.
func (kv *TypedReader[K, V]) All() (*TypedIterator[K, V], error) {
	it, err := kv.store.Range(nil, nil)
	if err != nil {
		return nil, err
	}
	return &TypedIterator[K, V]{kv: kv, it: it}, nil
}

// TypedIterator walks the entries of a [TypedReader], decoding each. It
// must be closed. An entry that does not decode ends the iteration, and Err
// reports why.
type TypedIterator[K, V any] struct {
	kv    *TypedReader[K, V]
	it    Iterator
	key   K
	value V
	err   error
}

// Next moves to the next entry and reports whether there is one.
func (t *TypedIterator[K, V]) Next() bool {
	var zk K
	var zv V
	t.key, t.value = zk, zv
	if t.err != nil || !t.it.Next() {
		return false
	}
	k, err := t.kv.keys.Decode(t.it.Key())
	if err != nil {
		t.err = t.kv.fail("iterator", fmt.Sprintf("decode key %q", t.it.Key()), err)
		return false
	}
	v, err := t.kv.values.Decode(t.it.Value())
	if err != nil {
		t.err = t.kv.fail("iterator", fmt.Sprintf("decode value of key %q", t.it.Key()), err)
		return false
	}
	t.key, t.value = k, v
	return true
}

// Key returns the current key.
func (t *TypedIterator[K, V]) Key() K { return t.key }

// Value returns the current value.
func (t *TypedIterator[K, V]) Value() V { return t.value }

// Err returns the error that stopped the iteration, if any.
func (t *TypedIterator[K, V]) Err() error {
	if t.err != nil {
		return t.err
	}
	return t.it.Err()
}

// Close releases the iterator.
func (t *TypedIterator[K, V]) Close() error { return t.it.Close() }
