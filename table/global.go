package table

import (
	"fmt"

	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/topology"
)

// GlobalTable is a full copy of a topic on every instance, read by key from
// any task: no co-partitioning is needed to look a key up. It is kept as the
// topic's bytes and decoded when read.
type GlobalTable[K, V any] struct {
	store  string
	keys   serde.Serde[K]
	values serde.Serde[V]
}

// Global returns the global table of topic. Its store is named after the
// topic ("global-<topic>") unless [Materialized] names it; it is not
// logged, since the topic itself is its changelog.
func Global[K, V any](b *topology.Builder, topic string, opts ...Option) GlobalTable[K, V] {
	o := collect(opts)
	name := o.store
	if name == "" {
		name = o.name
	}
	if name == "" {
		name = "global-" + topic
	}
	op := fmt.Sprintf("global table %q", name)
	ks := serdeFor[K](b, o.keySerde, nil, op, "key")
	vs := serdeFor[V](b, o.valueSerde, nil, op, "value")
	b.AddGlobalStore(state.KeyValue(name, o.storeOpts...), topic)
	return GlobalTable[K, V]{store: name, keys: ks, values: vs}
}

// StoreName returns the name of the global store.
func (g GlobalTable[K, V]) StoreName() string { return g.store }

// KeySerde returns the table's key serde.
func (g GlobalTable[K, V]) KeySerde() serde.Serde[K] { return g.keys }

// ValueSerde returns the table's value serde.
func (g GlobalTable[K, V]) ValueSerde() serde.Serde[V] { return g.values }

// Get looks k up from within a processor: ctx is the processor's Context.
// It reports false if the table has no value for k.
func (g GlobalTable[K, V]) Get(ctx interface {
	Store(string) (state.Store, error)
}, k K) (V, bool, error) {
	var zero V
	s, err := ctx.Store(g.store)
	if err != nil {
		return zero, false, err
	}
	ro, ok := s.(state.ReadOnlyKeyValueStore)
	if !ok {
		return zero, false, fmt.Errorf("table: global store %q is a %T, not a key-value store", g.store, s)
	}
	return state.TypedRead(ro, g.keys, g.values).Get(k)
}
