package stream

import (
	"fmt"

	"github.com/riffle-streams/riffle/internal/dsl"
	"github.com/riffle-streams/riffle/internal/null"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/table"
	"github.com/riffle-streams/riffle/topology"
)

// Materialized names the store an aggregation keeps its results in (by
// default, the operator's name), which can be read from outside the
// topology; opts choose how it is kept (state.InMemory,
// state.WithoutLogging).
//
// For a windowed or session aggregation, and for a windowed join's
// stores, state.WithRetention keeps windows longer than the windows need
// (by default, a time window is kept for its size plus grace after its
// start, a sliding window for twice its time difference plus grace, and a
// session for its gap plus grace after its end), so that past windows can
// still be queried. A retention shorter than the windows need
// fails Build, naming the operator and the store. The key-value stores
// such an operator keeps beside its window stores (for EmitFinal, or the
// unmatched records of an outer join) take the other options but no
// retention. On a key-value aggregation, state.WithRetention fails Build.
func Materialized(store string, opts ...state.Option) Option {
	return func(o *options) { o.store, o.storeOpts = store, opts }
}

// storeSpec returns the spec of the store an operator named name keeps.
func (o *options) storeSpec(name string) state.Spec {
	store := o.store
	if store == "" {
		store = name
	}
	return state.KeyValue(store, o.storeOpts...)
}

// Grouped is a stream grouped by key, to be aggregated. If its key was
// changed upstream, its records go through a repartition topic first, so
// each key is aggregated by the task that owns it; the topic is made once,
// however many aggregations the grouping has.
type Grouped[K, V any] struct {
	s      Stream[K, V]
	name   string
	keys   serde.Serde[K]
	values serde.Serde[V]
	input  *Stream[K, V] // once resolved
}

// GroupByKey groups the records by their key. [Named] names the repartition
// topic, if one is needed ("<name>-repartition"); otherwise it takes the
// name of the first aggregation. [WithKeySerde] and [WithValueSerde] set the
// serdes of the grouped records and of the repartition topic.
func (s Stream[K, V]) GroupByKey(opts ...Option) *Grouped[K, V] {
	o := collect(opts)
	op := "group-by-key of " + fmt.Sprintf("%q", s.node)
	return &Grouped[K, V]{
		s:      s,
		name:   o.name,
		keys:   serdeFor[K](s.b, o.keySerde, s.keys, op, "key"),
		values: serdeFor[V](s.b, o.valueSerde, s.values, op, "value"),
	}
}

// GroupBy groups the records by the key fn gives each; the records are
// repartitioned by it before they are aggregated.
func GroupBy[K, V, K2 any](s Stream[K, V], fn func(K, V) K2, opts ...Option) *Grouped[K2, V] {
	o := collect(opts)
	sel := []Option{}
	if o.name != "" {
		sel = append(sel, Named(o.name+"-selectkey"))
	}
	return SelectKey(s, fn, sel...).GroupByKey(opts...)
}

// stream returns the grouped records, repartitioned first if the key was
// changed upstream; the topic is named after the grouping, or else agg.
func (g *Grouped[K, V]) stream(agg string) Stream[K, V] {
	if g.input != nil {
		return *g.input
	}
	in := g.s
	if in.rekeyed && g.keys != nil && g.values != nil {
		name := g.name
		if name == "" {
			name = agg
		}
		in = in.Repartition(Named(name), WithKeySerde(g.keys), WithValueSerde(g.values))
	}
	g.input = &in
	return in
}

// Count counts the records of each key. Records with a null key or value
// are skipped and counted.
func (g *Grouped[K, V]) Count(opts ...Option) table.Table[K, int64] {
	o := collect(append([]Option{WithValueSerde(serde.Int64())}, opts...))
	name := o.nameFor(g.s.b, g.s.node, "count")
	return aggregate(g, name, o, func(K, V, int64, bool) int64 { return 0 }, func(_ K, _ V, n int64, _ bool) int64 { return n + 1 })
}

// Reduce combines the values of each key with fn; a key's first value is its
// aggregate. Records with a null key or value are skipped and counted.
func (g *Grouped[K, V]) Reduce(fn func(agg, v V) V, opts ...Option) table.Table[K, V] {
	o := collect(opts)
	name := o.nameFor(g.s.b, g.s.node, "reduce")
	checkFn(g.s.b, name, fn == nil)
	if o.valueSerde == nil && g.values != nil {
		o.valueSerde = g.values
	}
	return aggregate(g, name, o, nil, func(_ K, v V, agg V, had bool) V {
		if !had {
			return v
		}
		return fn(agg, v)
	})
}

// Aggregate folds the values of each key into an aggregate: init starts it,
// fn adds a value. Records with a null key or value are skipped and counted.
func Aggregate[K, V, VA any](g *Grouped[K, V], init func() VA, fn func(K, V, VA) VA, opts ...Option) table.Table[K, VA] {
	o := collect(opts)
	name := o.nameFor(g.s.b, g.s.node, "aggregate")
	checkFn(g.s.b, name, init == nil || fn == nil)
	return aggregate(g, name, o, func(K, V, VA, bool) VA { return init() }, func(k K, v V, agg VA, _ bool) VA { return fn(k, v, agg) })
}

// aggregate adds the processor of an aggregation: start, if set, makes a
// key's first aggregate; step adds a value to it.
func aggregate[K, V, VA any](g *Grouped[K, V], name string, o options, start, step func(K, V, VA, bool) VA) table.Table[K, VA] {
	b := g.s.b
	vs := dsl.SerdeFor[VA](b, "stream", o.valueSerde, nil, fmt.Sprintf("aggregate %q", name), "value")
	in := g.stream(name)
	spec := o.storeSpec(name)
	if g.keys == nil || vs == nil {
		return table.FromNode[K, VA](b, name, g.keys, vs, "")
	}
	ks := g.keys
	topology.AddProcessor(b, name, func() topology.Processor[K, V, K, table.Change[VA]] {
		return &streamAggregate[K, V, VA]{store: spec.Name, keys: ks, values: vs, start: start, step: step}
	}, in.node)
	b.AddStore(spec, name)
	topology.Queryable(b, spec.Name, ks, vs)
	return table.FromNode(b, name, ks, vs, spec.Name)
}

// streamAggregate adds each record to its key's aggregate and forwards the
// aggregate's change.
type streamAggregate[K, V, VA any] struct {
	ctx         topology.Context[K, table.Change[VA]]
	store       string
	keys        serde.Serde[K]
	values      serde.Serde[VA]
	start, step func(K, V, VA, bool) VA
	kv          *state.TypedKeyValue[K, VA]
	nilKey      null.Checker[K]
	nilVal      null.Checker[V]
	cached      bool // the store's cache forwards, when it flushes
}

func (p *streamAggregate[K, V, VA]) Init(ctx topology.Context[K, table.Change[VA]]) error {
	p.ctx = ctx
	kv, err := topology.KeyValueStore(ctx, p.store)
	if err != nil {
		return err
	}
	p.kv = state.Typed(kv, p.keys, p.values)
	p.nilKey, p.nilVal = null.For[K](), null.For[V]()
	p.cached = dsl.ForwardOnFlush(kv, p.keys, p.values, func(k K, nv VA, hasNew bool, ov VA, hasOld bool) error {
		return ctx.Forward(topology.Record[K, table.Change[VA]]{
			Key: k, Value: table.Change[VA]{New: nv, HasNew: hasNew, Old: ov, HasOld: hasOld}, Timestamp: ctx.StreamTime(),
		})
	})
	return nil
}

func (p *streamAggregate[K, V, VA]) Close() error { return nil }

func (p *streamAggregate[K, V, VA]) Process(r topology.Record[K, V]) error {
	switch {
	case p.nilKey.IsNil(r.Key):
		p.ctx.SkipRecord("null key")
		return nil
	case p.nilVal.IsNil(r.Value):
		p.ctx.SkipRecord("null value")
		return nil
	}
	old, had, err := p.kv.Get(r.Key)
	if err != nil {
		return err
	}
	agg := old
	if !had && p.start != nil {
		agg = p.start(r.Key, r.Value, agg, had)
	}
	agg = p.step(r.Key, r.Value, agg, had)
	if err := p.kv.Put(r.Key, agg); err != nil || p.cached {
		return err
	}
	return p.ctx.Forward(topology.Record[K, table.Change[VA]]{
		Key: r.Key, Value: table.Change[VA]{New: agg, HasNew: true, Old: old, HasOld: had},
		Timestamp: r.Timestamp, Headers: r.Headers,
	})
}

// Cogrouped is several grouped streams, of possibly different value types,
// being aggregated into one table. Start it with [Cogroup], add streams with
// [CogroupWith], finish with [Cogrouped.Aggregate]. Its streams must be
// co-partitioned: grouped by the same key type, from topics with the same
// partition count (repartitioned ones are).
type Cogrouped[K, VA any] struct {
	b     *topology.Builder
	keys  serde.Serde[K]
	parts []func(name string, i int, spec state.Spec, values serde.Serde[VA], init func() VA) string
}

// Cogroup starts a cogrouped aggregation with g, whose values fn adds to the
// aggregate.
func Cogroup[K, V, VA any](g *Grouped[K, V], fn func(K, V, VA) VA) *Cogrouped[K, VA] {
	c := &Cogrouped[K, VA]{b: g.s.b, keys: g.keys}
	return CogroupWith(c, g, fn)
}

// CogroupWith adds g to c: its values are added to the aggregate with fn.
func CogroupWith[K, V, VA any](c *Cogrouped[K, VA], g *Grouped[K, V], fn func(K, V, VA) VA) *Cogrouped[K, VA] {
	c.parts = append(c.parts, func(name string, i int, spec state.Spec, values serde.Serde[VA], init func() VA) string {
		node := fmt.Sprintf("%s-cogroup-%d", name, i)
		checkFn(c.b, node, fn == nil)
		in := g.stream(node)
		ks := c.keys
		topology.AddProcessor(c.b, node, func() topology.Processor[K, V, K, table.Change[VA]] {
			return &streamAggregate[K, V, VA]{
				store: spec.Name, keys: ks, values: values,
				start: func(K, V, VA, bool) VA { return init() },
				step:  func(k K, v V, agg VA, _ bool) VA { return fn(k, v, agg) },
			}
		}, in.node)
		return node
	})
	return c
}

// Aggregate makes the cogrouped table: init starts a key's aggregate, and
// each stream's function adds its records to it. All the streams' records
// update one store, named after the operator (or by [Materialized]).
func (c *Cogrouped[K, VA]) Aggregate(init func() VA, opts ...Option) table.Table[K, VA] {
	o := collect(opts)
	name := o.name
	if name == "" {
		name = c.b.NewName("", "cogroup")
	}
	checkFn(c.b, name, init == nil)
	vs := dsl.SerdeFor[VA](c.b, "stream", o.valueSerde, nil, fmt.Sprintf("cogroup %q", name), "value")
	if c.keys == nil || vs == nil {
		return table.FromNode[K, VA](c.b, name, c.keys, vs, "")
	}
	spec := o.storeSpec(name)
	nodes := make([]string, len(c.parts))
	for i, add := range c.parts {
		nodes[i] = add(name, i, spec, vs, init)
	}
	c.b.AddStore(spec, nodes...)
	topology.Queryable(c.b, spec.Name, c.keys, vs)
	topology.AddProcessor(c.b, name, func() topology.Processor[K, table.Change[VA], K, table.Change[VA]] {
		return &passProc[K, table.Change[VA]]{}
	}, nodes...)
	return table.FromNode(c.b, name, c.keys, vs, spec.Name)
}

// ToStream returns the stream of t's updates: each update as a record of
// its key and new value. A deletion becomes a record with a nil value if V
// can be nil; a type with no nil cannot carry one, so the deletion is
// skipped and counted. Use [Changes], or write the table with its To, to
// keep deletions of such types.
func ToStream[K, V any](t table.Table[K, V], opts ...Option) Stream[K, V] {
	o := collect(opts)
	name := o.nameFor(t.Builder(), t.Name(), "tostream")
	nilVal := null.For[V]()
	topology.AddProcessor(t.Builder(), name, func() topology.Processor[K, table.Change[V], K, V] {
		return &toStreamProc[K, V]{nillable: nilVal.Nillable()}
	}, t.Name())
	return Stream[K, V]{b: t.Builder(), node: name, keys: t.KeySerde(), values: t.ValueSerde()}
}

// Changes returns the stream of t's updates as Changes: new and old values,
// deletions included.
func Changes[K, V any](t table.Table[K, V], opts ...Option) Stream[K, table.Change[V]] {
	o := collect(opts)
	name := o.nameFor(t.Builder(), t.Name(), "changes")
	topology.AddProcessor(t.Builder(), name, func() topology.Processor[K, table.Change[V], K, table.Change[V]] {
		return &passProc[K, table.Change[V]]{}
	}, t.Name())
	return Stream[K, table.Change[V]]{b: t.Builder(), node: name, keys: t.KeySerde()}
}

type toStreamProc[K, V any] struct {
	ctx      topology.Context[K, V]
	nillable bool
}

func (p *toStreamProc[K, V]) Init(ctx topology.Context[K, V]) error { p.ctx = ctx; return nil }
func (p *toStreamProc[K, V]) Close() error                          { return nil }
func (p *toStreamProc[K, V]) Process(r topology.Record[K, table.Change[V]]) error {
	out := topology.Record[K, V]{Key: r.Key, Timestamp: r.Timestamp, Headers: r.Headers}
	switch {
	case r.Value.HasNew:
		out.Value = r.Value.New
	case !p.nillable:
		p.ctx.SkipRecord("deletion of a value type with no nil")
		return nil
	}
	return p.ctx.Forward(out)
}
