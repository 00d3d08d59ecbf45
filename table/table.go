// Package table is the typed DSL for tables: Table[K, V], the latest value
// of every key, updated as records arrive, and GlobalTable[K, V], a full copy
// of a topic on every instance.
//
// A table's updates travel between operators as a [Change]: the key's new
// value and the one it replaces. That is how a filter retracts a key that no
// longer passes, and how a re-grouping aggregation subtracts a value from
// the group it leaves. A deletion (a tombstone: nil bytes in the topic)
// removes the key, and is passed on as a Change with no new value; it works
// for every value type, even one with no nil.
//
// Operators that keep the key and value types are methods (t.Filter,
// t.FilterNot, t.To); those that change a type are package functions
// (table.MapValues, table.GroupBy, table.Aggregate). Streams and tables meet
// in package stream, which builds on this one: stream aggregations return
// tables, and stream.ToStream turns a table back into a stream of its
// updates.
//
// As in package stream, each operator adds nodes to a topology.Builder, and
// mistakes are reported by its Build, naming the operator.
package table

import (
	"github.com/riffle-streams/riffle/internal/dsl"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/topology"
)

// Change is an update of one key of a table: its new value and the value it
// replaces. Between a table GroupBy and its aggregation, Old is the value to
// subtract from the group and New the value to add.
type Change[V any] struct {
	// New is the key's new value, if HasNew.
	New V
	// Old is the value it replaces, if HasOld.
	Old V
	// HasNew is false when the key was deleted.
	HasNew bool
	// HasOld is false when the key had no value before.
	HasOld bool
}

// Table is a typed table whose updates come out of one node of a topology.
// It is a small value: copy it freely.
type Table[K, V any] struct {
	b      *topology.Builder
	node   string
	keys   serde.Serde[K]
	values serde.Serde[V]
	store  string
}

// FromNode returns the Table whose updates are the records node forwards,
// of type Record[K, Change[V]]; store names the key-value store that holds
// the table's current values ("" if none does). It joins the Processor API
// to the DSL, and is how package stream makes tables.
func FromNode[K, V any](b *topology.Builder, node string, keys serde.Serde[K], values serde.Serde[V], store string) Table[K, V] {
	return Table[K, V]{b: b, node: node, keys: keys, values: values, store: store}
}

// Builder returns the builder the table adds nodes to.
func (t Table[K, V]) Builder() *topology.Builder { return t.b }

// Name returns the name of the node whose output the table is.
func (t Table[K, V]) Name() string { return t.node }

// StoreName returns the name of the store that holds the table's current
// values, or "" if the table is not materialized. Read it from outside the
// topology through the driver or the App.
func (t Table[K, V]) StoreName() string { return t.store }

// KeySerde returns the table's key serde, or nil if none is known yet.
func (t Table[K, V]) KeySerde() serde.Serde[K] { return t.keys }

// ValueSerde returns the table's value serde, or nil if none is known yet.
func (t Table[K, V]) ValueSerde() serde.Serde[V] { return t.values }

// Option configures a table operator.
type Option func(*options)

type options struct {
	name       string
	store      string
	keySerde   any
	valueSerde any
	storeOpts  []state.Option
}

func collect(opts []Option) options {
	var o options
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	return o
}

// Named names the operator's node. Stores and internal topics made for it
// take their names from it unless [Materialized] names the store.
func Named(name string) Option { return func(o *options) { o.name = name } }

// Materialized keeps the operator's results in a key-value store named
// store, which can be read from outside the topology; opts choose how it is
// kept (state.InMemory, state.WithoutLogging). A source table and every
// aggregation always keep a store; Materialized names it.
func Materialized(store string, opts ...state.Option) Option {
	return func(o *options) { o.store, o.storeOpts = store, opts }
}

// WithKeySerde sets the serde of the operator's keys.
func WithKeySerde[K any](s serde.Serde[K]) Option { return func(o *options) { o.keySerde = s } }

// WithValueSerde sets the serde of the operator's values.
func WithValueSerde[V any](s serde.Serde[V]) Option { return func(o *options) { o.valueSerde = s } }

func (o *options) nameFor(b *topology.Builder, parent, kind string) string {
	if o.name != "" {
		return o.name
	}
	return b.NewName(parent, kind)
}

// serdeFor returns the serde for T by the DSL's rules (see dsl.SerdeFor).
func serdeFor[T any](b *topology.Builder, opt any, known serde.Serde[T], op, part string) serde.Serde[T] {
	return dsl.SerdeFor(b, "table", opt, known, op, part)
}

// storeSpec returns the spec of the store an operator named name keeps.
func (o *options) storeSpec(name string) state.Spec {
	store := o.store
	if store == "" {
		store = name
	}
	return state.KeyValue(store, o.storeOpts...)
}
