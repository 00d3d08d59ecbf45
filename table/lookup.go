package table

import (
	"fmt"

	"github.com/riffle-streams/riffle/state"
)

// Maybe is a value that may be absent: the side of a left or outer join
// that has no match is a Maybe with OK false.
type Maybe[V any] struct {
	// Value is the value, if OK.
	Value V
	// OK says whether there is a value.
	OK bool
}

// Some returns a Maybe holding v.
func Some[V any](v V) Maybe[V] { return Maybe[V]{Value: v, OK: true} }

// Stored returns t with its current values kept in a key-value store, as a
// join needs to look them up: t itself if it keeps one already (a source
// table, an aggregation, a materialized operator), else t's updates passed
// through a node that keeps them. That node is named by [Named] (by
// default after t's node) and its store by [Materialized] (by default
// after the node).
func (t Table[K, V]) Stored(opts ...Option) Table[K, V] {
	if t.store != "" {
		return t
	}
	o := collect(opts)
	name := o.nameFor(t.b, t.node, "store")
	if o.store == "" {
		o.store = name
	}
	return derive(t, name, o, func(_ K, c Change[V]) (Change[V], bool) { return c, true }, t.values)
}

// Reader returns a reader of t's current values, for a processor that t's
// store ([Table.StoreName]) is connected to (topology.Builder.ConnectStore):
// ctx is the processor's Context. Call it from the processor's Init. t must
// keep a store (see [Table.Stored]).
func (t Table[K, V]) Reader(ctx interface {
	Store(string) (state.Store, error)
}) (*state.TypedReader[K, V], error) {
	if t.store == "" {
		return nil, fmt.Errorf("table: the table of node %q keeps no store to read", t.node)
	}
	s, err := ctx.Store(t.store)
	if err != nil {
		return nil, err
	}
	kv, ok := s.(state.ReadOnlyKeyValueStore)
	if !ok {
		return nil, fmt.Errorf("table: store %q is a %T, not a key-value store", t.store, s)
	}
	return state.TypedRead(kv, t.keys, t.values), nil
}
