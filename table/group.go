package table

import (
	"bytes"
	"fmt"

	"github.com/riffle-streams/riffle/internal/dsl"
	"github.com/riffle-streams/riffle/internal/null"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/topology"
)

// Grouped is a table re-grouped by a new key, to be aggregated. Its records
// go through a repartition topic so each group is aggregated by the task
// that owns its key.
type Grouped[K, V any] struct {
	b      *topology.Builder
	node   string // the selector, which forwards Record[K, Change[V]]
	name   string // of the grouping, if named
	keys   serde.Serde[K]
	values serde.Serde[V]
	source string // the repartition topic's source, once made
}

// GroupBy re-groups t by the key and value fn gives each entry. When an
// entry changes, its old value is subtracted from the group it was in and
// its new value added to the group it is in now, in that order; an entry
// that stays in its group makes one update, not two. [Named] names the
// repartition topic "<name>-repartition"; otherwise it takes the name of the
// first aggregation.
func GroupBy[K, V, K2, V2 any](t Table[K, V], fn func(K, V) (K2, V2), opts ...Option) *Grouped[K2, V2] {
	o := collect(opts)
	node := o.nameFor(t.b, t.node, "groupby")
	dsl.CheckFn(t.b, "table", node, fn == nil)
	op := fmt.Sprintf("group-by %q", node)
	ks := dsl.SerdeFor(t.b, "table", o.keySerde, dsl.OutSerde[K2](t.b, "table", nil, t.keys, node, "key"), op, "key")
	vs := dsl.SerdeFor(t.b, "table", o.valueSerde, dsl.OutSerde[V2](t.b, "table", nil, t.values, node, "value"), op, "value")
	g := &Grouped[K2, V2]{b: t.b, node: node, name: o.name, keys: ks, values: vs}
	topology.AddProcessor(t.b, node, func() topology.Processor[K, Change[V], K2, Change[V2]] {
		return &regroup[K, V, K2, V2]{fn: fn, keys: ks, nilKey: null.For[K2]()}
	}, t.node)
	return g
}

// repartitioned returns the source of the grouping's repartition topic,
// adding it the first time, named after the grouping or else after agg.
func (g *Grouped[K, V]) repartitioned(agg string) string {
	if g.source == "" && g.keys != nil && g.values != nil {
		name := g.name
		if name == "" {
			name = agg
		}
		g.source = topology.AddRepartition(g.b, name, g.keys, groupSerde[V]{g.values}, 0, g.node)
	}
	return g.source
}

// regroup maps each change of a table to the changes of the groups it
// leaves and joins.
type regroup[K, V, K2, V2 any] struct {
	ctx    topology.Context[K2, Change[V2]]
	fn     func(K, V) (K2, V2)
	keys   serde.Serde[K2]
	nilKey null.Checker[K2]
}

func (p *regroup[K, V, K2, V2]) Init(ctx topology.Context[K2, Change[V2]]) error {
	p.ctx = ctx
	return nil
}

func (p *regroup[K, V, K2, V2]) Close() error { return nil }

func (p *regroup[K, V, K2, V2]) Process(r topology.Record[K, Change[V]]) error {
	c := r.Value
	var oldKey, newKey K2
	var oldVal, newVal V2
	hasOld, hasNew := c.HasOld, c.HasNew
	if hasOld {
		oldKey, oldVal = p.fn(r.Key, c.Old)
		if p.nilKey.IsNil(oldKey) {
			hasOld = false // it was never counted in a group
		}
	}
	if hasNew {
		newKey, newVal = p.fn(r.Key, c.New)
		if p.nilKey.IsNil(newKey) {
			p.ctx.SkipRecord("null group key")
			hasNew = false
		}
	}
	out := topology.Record[K2, Change[V2]]{Timestamp: r.Timestamp, Headers: r.Headers}
	if hasOld && hasNew {
		same, err := p.sameKey(oldKey, newKey)
		if err != nil {
			return err
		}
		if same {
			out.Key = newKey
			out.Value = Change[V2]{New: newVal, HasNew: true, Old: oldVal, HasOld: true}
			return p.ctx.Forward(out)
		}
	}
	if hasOld {
		out.Key, out.Value = oldKey, Change[V2]{Old: oldVal, HasOld: true}
		if err := p.ctx.Forward(out); err != nil {
			return err
		}
	}
	if hasNew {
		out.Key, out.Value = newKey, Change[V2]{New: newVal, HasNew: true}
		return p.ctx.Forward(out)
	}
	return nil
}

// sameKey reports whether a and b are the same group: the same bytes, as
// partitioning sees them.
func (p *regroup[K, V, K2, V2]) sameKey(a, b K2) (bool, error) {
	ab, err := p.keys.Encode(a)
	if err != nil {
		return false, fmt.Errorf("encode group key: %w", err)
	}
	bb, err := p.keys.Encode(b)
	if err != nil {
		return false, fmt.Errorf("encode group key: %w", err)
	}
	return bytes.Equal(ab, bb), nil
}

// Aggregate folds each group's values into one: init starts a group, adder
// adds a value to it and subtractor takes one out. The result is a table
// kept in a store named after the operator (or by [Materialized]).
func Aggregate[K, V, VA any](g *Grouped[K, V], init func() VA, adder, subtractor func(K, V, VA) VA, opts ...Option) Table[K, VA] {
	o := collect(opts)
	name := o.nameFor(g.b, g.node, "aggregate")
	dsl.CheckFn(g.b, "table", name, init == nil || adder == nil || subtractor == nil)
	return aggregate(g, name, o, func() aggFuncs[K, V, VA] {
		return aggFuncs[K, V, VA]{
			add:  func(k K, v V, agg VA, _ bool) VA { return adder(k, v, agg) },
			sub:  subtractor,
			init: init,
		}
	})
}

// Count counts the entries of each group.
func (g *Grouped[K, V]) Count(opts ...Option) Table[K, int64] {
	o := collect(append([]Option{WithValueSerde(serde.Int64())}, opts...))
	name := o.nameFor(g.b, g.node, "count")
	return aggregate(g, name, o, func() aggFuncs[K, V, int64] {
		return aggFuncs[K, V, int64]{
			init: func() int64 { return 0 },
			add:  func(_ K, _ V, n int64, _ bool) int64 { return n + 1 },
			sub:  func(_ K, _ V, n int64) int64 { return n - 1 },
		}
	})
}

// Reduce combines each group's values with adder, and takes one out with
// subtractor. A group's first value is its aggregate.
func (g *Grouped[K, V]) Reduce(adder, subtractor func(agg, v V) V, opts ...Option) Table[K, V] {
	o := collect(opts)
	name := o.nameFor(g.b, g.node, "reduce")
	dsl.CheckFn(g.b, "table", name, adder == nil || subtractor == nil)
	return aggregate(g, name, o, func() aggFuncs[K, V, V] {
		return aggFuncs[K, V, V]{
			add: func(_ K, v V, agg V, had bool) V {
				if !had {
					return v
				}
				return adder(agg, v)
			},
			sub: func(_ K, v V, agg V) V { return subtractor(agg, v) },
		}
	})
}

// aggFuncs are an aggregation's functions. add is told whether the group
// had an aggregate; init, if set, starts a group that had none.
type aggFuncs[K, V, VA any] struct {
	init func() VA
	add  func(k K, v V, agg VA, had bool) VA
	sub  func(k K, v V, agg VA) VA
}

func aggregate[K, V, VA any](g *Grouped[K, V], name string, o options, funcs func() aggFuncs[K, V, VA]) Table[K, VA] {
	op := fmt.Sprintf("aggregate %q", name)
	// An aggregate of the grouped values' own type (Reduce) keeps their serde.
	vs := dsl.SerdeFor(g.b, "table", o.valueSerde, dsl.OutSerde[VA](g.b, "table", nil, g.values, name, "value"), op, "value")
	src := g.repartitioned(name)
	if src == "" || vs == nil {
		return Table[K, VA]{b: g.b, node: name}
	}
	spec := o.storeSpec(name)
	ks := g.keys
	topology.AddProcessor(g.b, name, func() topology.Processor[K, Change[V], K, Change[VA]] {
		return &tableAggregate[K, V, VA]{store: spec.Name, keys: ks, values: vs, f: funcs()}
	}, src)
	g.b.AddStore(spec, name)
	queryable(g.b, spec.Name, ks, vs)
	return Table[K, VA]{b: g.b, node: name, keys: ks, values: vs, store: spec.Name}
}

// tableAggregate applies re-grouped changes to their group's aggregate:
// subtract the old value, add the new one, forward the aggregate's change.
type tableAggregate[K, V, VA any] struct {
	ctx    topology.Context[K, Change[VA]]
	store  string
	keys   serde.Serde[K]
	values serde.Serde[VA]
	f      aggFuncs[K, V, VA]
	kv     *state.TypedKeyValue[K, VA]
	cached bool
}

func (p *tableAggregate[K, V, VA]) Init(ctx topology.Context[K, Change[VA]]) error {
	p.ctx = ctx
	kv, err := topology.KeyValueStore(ctx, p.store)
	if err != nil {
		return err
	}
	p.kv = state.Typed(kv, p.keys, p.values)
	p.cached = forwardOnFlush(ctx, kv, p.keys, p.values)
	return nil
}

func (p *tableAggregate[K, V, VA]) Close() error { return nil }

func (p *tableAggregate[K, V, VA]) Process(r topology.Record[K, Change[V]]) error {
	old, had, err := p.kv.Get(r.Key)
	if err != nil {
		return err
	}
	agg, has := old, had
	if r.Value.HasOld && has {
		agg = p.f.sub(r.Key, r.Value.Old, agg)
	}
	if r.Value.HasNew {
		if !has && p.f.init != nil {
			agg = p.f.init()
		}
		agg = p.f.add(r.Key, r.Value.New, agg, has)
		has = true
	}
	if !has {
		return nil // only a subtraction from a group that has nothing
	}
	if err := p.kv.Put(r.Key, agg); err != nil || p.cached {
		return err
	}
	return p.ctx.Forward(topology.Record[K, Change[VA]]{
		Key: r.Key, Value: Change[VA]{New: agg, HasNew: true, Old: old, HasOld: had},
		Timestamp: r.Timestamp, Headers: r.Headers,
	})
}
