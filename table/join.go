package table

import (
	"fmt"

	"github.com/riffle-streams/riffle/internal/dsl"
	"github.com/riffle-streams/riffle/internal/null"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/topology"
)

// Join joins two tables of the same key (an inner join): the result has a
// value for a key while both tables do, joiner's of the two. An update of
// either side emits the key's new result, with the result it replaces as
// its old value; a deletion on either side deletes the result, if there
// was one.
//
// Each side is looked up in the other's store, so both tables keep one (see
// [Table.Stored]; a store added for a side is named "<name>-left-table" or
// "<name>-right-table"), and the two are one sub-topology: their topics
// must be co-partitioned (the same key, the same partition count), which
// the App checks when it starts. [Named] names the join's nodes ("<name>",
// "<name>-left", "<name>-right"); [Materialized] keeps the result in a
// store, which then supplies each change's old value. A result's timestamp
// is that of the update that caused it. Updates with a null key are skipped
// and counted; a nil result (for a VR that can be nil) is no result.
//
// With record caches on (riffle.Caching), a side forwards its updates when
// its cache is flushed; each side then reads the other as it was forwarded
// (beneath its cache), so the old values the join sends are the results it
// sent before.
func Join[K, V1, V2, VR any](left Table[K, V1], right Table[K, V2], joiner func(K, V1, V2) VR, opts ...Option) Table[K, VR] {
	o := collect(opts)
	name := o.nameFor(left.b, left.node, "join")
	dsl.CheckFn(left.b, "table", name, joiner == nil)
	return joinTables(left, right, name, o, func(k K, a Maybe[V1], b Maybe[V2]) (VR, bool) {
		if !a.OK || !b.OK {
			var zero VR
			return zero, false
		}
		return joiner(k, a.Value, b.Value), true
	})
}

// LeftJoin joins two tables of the same key (a left join): the result has a
// value for a key while left does, joiner's of left's value and right's
// value, if any. Otherwise it is [Join]: a deletion on the right updates
// the result to one with an absent right side; one on the left deletes it.
func LeftJoin[K, V1, V2, VR any](left Table[K, V1], right Table[K, V2], joiner func(K, V1, Maybe[V2]) VR, opts ...Option) Table[K, VR] {
	o := collect(opts)
	name := o.nameFor(left.b, left.node, "left-join")
	dsl.CheckFn(left.b, "table", name, joiner == nil)
	return joinTables(left, right, name, o, func(k K, a Maybe[V1], b Maybe[V2]) (VR, bool) {
		if !a.OK {
			var zero VR
			return zero, false
		}
		return joiner(k, a.Value, b), true
	})
}

// OuterJoin joins two tables of the same key (a full outer join): the
// result has a value for a key while either table does, joiner's of the
// two sides, either of which may be absent. The result is deleted when
// both sides are. Otherwise it is [Join].
func OuterJoin[K, V1, V2, VR any](left Table[K, V1], right Table[K, V2], joiner func(K, Maybe[V1], Maybe[V2]) VR, opts ...Option) Table[K, VR] {
	o := collect(opts)
	name := o.nameFor(left.b, left.node, "outer-join")
	dsl.CheckFn(left.b, "table", name, joiner == nil)
	return joinTables(left, right, name, o, func(k K, a Maybe[V1], b Maybe[V2]) (VR, bool) {
		if !a.OK && !b.OK {
			var zero VR
			return zero, false
		}
		return joiner(k, a, b), true
	})
}

// joinTables adds the nodes of a same-key table–table join named name:
// "<name>-left" joins each change of left with right's current value,
// "<name>-right" each change of right with left's, and "<name>" merges
// their results (keeping them in a store if [Materialized] asks). join
// reports the result for the two sides, or false if there is none.
func joinTables[K, V1, V2, VR any](left Table[K, V1], right Table[K, V2], name string, o options, join func(K, Maybe[V1], Maybe[V2]) (VR, bool)) Table[K, VR] {
	b := left.b
	if right.b != b {
		b.AddError(fmt.Errorf("table: join %q: the right table %q belongs to another builder", name, right.node))
		return Table[K, VR]{b: b, node: name}
	}
	vs := dsl.OutSerde[VR, VR](b, "table", o.valueSerde, nil, name, "value")
	l := left.Stored(Named(name + "-left-table"))
	r := right.Stored(Named(name + "-right-table"))
	if l.store == "" || r.store == "" {
		return Table[K, VR]{b: b, node: name}
	}
	leftNode, rightNode := name+"-left", name+"-right"
	readRight := func(c storeGetter) (*state.TypedReader[K, V2], error) { return forwardedView(c, r) }
	readLeft := func(c storeGetter) (*state.TypedReader[K, V1], error) { return forwardedView(c, l) }
	swapped := func(k K, mine Maybe[V2], other Maybe[V1]) (VR, bool) { return join(k, other, mine) }
	topology.AddProcessor(b, leftNode, func() topology.Processor[K, Change[V1], K, Change[VR]] {
		return &joinSide[K, V1, V2, VR]{other: readRight, join: join}
	}, l.node)
	topology.AddProcessor(b, rightNode, func() topology.Processor[K, Change[V2], K, Change[VR]] {
		return &joinSide[K, V2, V1, VR]{other: readLeft, join: swapped}
	}, r.node)
	// Each side reads the other's store: that makes the two tables one
	// sub-topology, whose inputs the runtime checks are co-partitioned.
	b.ConnectStore(r.store, leftNode)
	b.ConnectStore(l.store, rightNode)
	// A materialized result takes its old values from its store, so they
	// are the values it forwarded, whatever caches do upstream.
	return addResult[K, VR](b, name, o, l.keys, vs, o.store != "", leftNode, rightNode)
}

// flushedStore is a record cache that shows the store beneath it: the
// values written through, and whether a flush listener is set, which means
// the cache's owner forwards its updates as they are written through, as
// state's record cache does.
type flushedStore interface {
	FlushedView() (state.KeyValueStore, bool)
}

// forwardedView returns a reader of t's values as t has forwarded them. A
// table whose store has a record cache that forwards on flush has
// forwarded the values beneath the cache, not those in it; any other
// table, the values in its store. A join side that reads the other side
// this way computes its old results from exactly what it was told before,
// so they are the results it emitted.
func forwardedView[K, V any](ctx storeGetter, t Table[K, V]) (*state.TypedReader[K, V], error) {
	s, err := ctx.Store(t.store)
	if err != nil {
		return nil, err
	}
	if f, ok := s.(flushedStore); ok {
		if beneath, forwardsOnFlush := f.FlushedView(); forwardsOnFlush {
			return state.TypedRead(beneath, t.keys, t.values), nil
		}
	}
	return t.Reader(ctx)
}

// addResult adds the node named name that puts out a join's result table,
// child of parents, which forward Record[K, Change[VR]]. It keeps the
// result in a store if [Materialized] asks, or always with fill: then the
// store supplies each change's old value, and deletions of absent keys are
// dropped.
func addResult[K, VR any](b *topology.Builder, name string, o options, keys serde.Serde[K], values serde.Serde[VR], fill bool, parents ...string) Table[K, VR] {
	var spec *state.Spec
	if o.store != "" || fill {
		s := o.storeSpec(name)
		spec = &s
		values = dsl.SerdeFor[VR](b, "table", nil, values, fmt.Sprintf("operator %q", name), "value")
		keys = dsl.SerdeFor[K](b, "table", nil, keys, fmt.Sprintf("operator %q", name), "key")
		if values == nil || keys == nil {
			return Table[K, VR]{b: b, node: name}
		}
	}
	topology.AddProcessor(b, name, func() topology.Processor[K, Change[VR], K, Change[VR]] {
		p := &mapChange[K, VR, VR]{fn: func(_ K, c Change[VR]) (Change[VR], bool) { return c, true }}
		if spec != nil {
			p.m = &materialize[K, VR]{store: spec.Name, keys: keys, values: values, fill: fill}
		}
		return p
	}, parents...)
	out := Table[K, VR]{b: b, node: name, keys: keys, values: values}
	if spec != nil {
		b.AddStore(*spec, name)
		queryable(b, spec.Name, keys, values)
		out.store = spec.Name
	}
	return out
}

// storeGetter is what a processor's Context gives to reach its stores.
type storeGetter interface {
	Store(string) (state.Store, error)
}

// joinSide joins each change of one side of a same-key join with the other
// side's current value: the change's new value gives the result's new
// value, its old value the old one. The other side is unchanged meanwhile,
// so the old result is the one emitted before.
type joinSide[K, VA, VB, VR any] struct {
	ctx    topology.Context[K, Change[VR]]
	other  func(storeGetter) (*state.TypedReader[K, VB], error)
	join   func(K, Maybe[VA], Maybe[VB]) (VR, bool)
	table  *state.TypedReader[K, VB]
	nilKey null.Checker[K]
	nilVR  null.Checker[VR]
}

func (p *joinSide[K, VA, VB, VR]) Init(ctx topology.Context[K, Change[VR]]) error {
	p.ctx = ctx
	t, err := p.other(ctx)
	if err != nil {
		return err
	}
	p.table = t
	p.nilKey, p.nilVR = null.For[K](), null.For[VR]()
	return nil
}

func (p *joinSide[K, VA, VB, VR]) Close() error { return nil }

func (p *joinSide[K, VA, VB, VR]) Process(r topology.Record[K, Change[VA]]) error {
	if p.nilKey.IsNil(r.Key) {
		p.ctx.SkipRecord("null key")
		return nil
	}
	c := r.Value
	if !c.HasNew && !c.HasOld {
		return nil
	}
	vb, ok, err := p.table.Get(r.Key)
	if err != nil {
		return fmt.Errorf("look up the other table: %w", err)
	}
	other := Maybe[VB]{Value: vb, OK: ok}
	// A side that is absent may still give a result (an outer join), so
	// both are joined whether present or not.
	var out Change[VR]
	out.New, out.HasNew = p.join(r.Key, Maybe[VA]{Value: c.New, OK: c.HasNew}, other)
	out.HasNew = out.HasNew && !p.nilVR.IsNil(out.New)
	out.Old, out.HasOld = p.join(r.Key, Maybe[VA]{Value: c.Old, OK: c.HasOld}, other)
	out.HasOld = out.HasOld && !p.nilVR.IsNil(out.Old)
	if !out.HasNew && !out.HasOld {
		return nil // the join did not hold before and does not now
	}
	return p.ctx.Forward(topology.Record[K, Change[VR]]{Key: r.Key, Value: out, Timestamp: r.Timestamp, Headers: r.Headers})
}
