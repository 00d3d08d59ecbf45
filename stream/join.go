package stream

import (
	"fmt"

	"github.com/riffle-streams/riffle/internal/null"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/table"
	"github.com/riffle-streams/riffle/topology"
)

// Maybe is a value that may be absent: the side of a left or outer join
// that has no match is a Maybe with OK false. It is [table.Maybe].
type Maybe[V any] = table.Maybe[V]

// keyedFor returns s as a join named name must read it: repartitioned
// first, through the topic "<name>-repartition", if its key was changed
// upstream, so that each key is joined in the task that owns it on both
// sides. The topic takes the partition count of the join's other inputs.
func (s Stream[K, V]) keyedFor(name string) Stream[K, V] {
	if !s.rekeyed {
		return s
	}
	return s.Repartition(Named(name))
}

// JoinTable joins each record of s with the current value of its key in t
// (an inner join): a record whose key has no value in t is dropped. Updates
// of t emit nothing: they only change what later records find. The result
// keeps the record's key and timestamp; its value is joiner's.
//
// If s was re-keyed, it is repartitioned first (through
// "<name>-repartition"), so that s and t are co-partitioned: t's source
// topic and s's topic must have the same partition count, which the App
// checks when it starts. If t keeps no store, one is added (see
// [table.Table.Stored]). Records with a null key or value are skipped and
// counted.
func JoinTable[K, V, VT, VR any](s Stream[K, V], t table.Table[K, VT], joiner func(K, V, VT) VR, opts ...Option) Stream[K, VR] {
	o := collect(opts)
	name := o.nameFor(s.b, s.node, "join-table")
	checkFn(s.b, name, joiner == nil)
	return joinTable(s, t, name, o, func(k K, v V, vt VT, ok bool) (VR, bool) {
		if !ok {
			var zero VR
			return zero, false
		}
		return joiner(k, v, vt), true
	})
}

// LeftJoinTable joins each record of s with the current value of its key
// in t, if any (a left join): every record gives a result, with the table's
// side absent when its key has no value in t. Otherwise it is [JoinTable].
func LeftJoinTable[K, V, VT, VR any](s Stream[K, V], t table.Table[K, VT], joiner func(K, V, Maybe[VT]) VR, opts ...Option) Stream[K, VR] {
	o := collect(opts)
	name := o.nameFor(s.b, s.node, "left-join-table")
	checkFn(s.b, name, joiner == nil)
	return joinTable(s, t, name, o, func(k K, v V, vt VT, ok bool) (VR, bool) {
		return joiner(k, v, Maybe[VT]{Value: vt, OK: ok}), true
	})
}

func joinTable[K, V, VT, VR any](s Stream[K, V], t table.Table[K, VT], name string, o options, join func(K, V, VT, bool) (VR, bool)) Stream[K, VR] {
	in := s.keyedFor(name)
	t = t.Stored(table.Named(name + "-table"))
	topology.AddProcessor(s.b, name, func() topology.Processor[K, V, K, VR] {
		return &lookupJoin[K, V, K, VT, VR]{
			open: func(ctx topology.Context[K, VR]) (*state.TypedReader[K, VT], error) { return t.Reader(ctx) },
			key:  func(k K, _ V) K { return k },
			join: join,
		}
	}, in.node)
	if t.StoreName() != "" {
		s.b.ConnectStore(t.StoreName(), name)
	}
	return Stream[K, VR]{b: s.b, node: name, keys: in.keys, values: outSerde[VR](s.b, o.valueSerde, in.values, name, "value")}
}

// JoinGlobal joins each record of s with the value in the global table g
// of the key that key computes from the record (an inner join): a record
// whose lookup key has no value is dropped. No co-partitioning is needed,
// and s is never repartitioned: every instance has all of g. Updates of g
// emit nothing. The result keeps the record's key and timestamp. Records
// with a null key or value, or a null lookup key, are skipped and counted.
func JoinGlobal[K, V, KG, VG, VR any](s Stream[K, V], g table.GlobalTable[KG, VG], key func(K, V) KG, joiner func(K, V, VG) VR, opts ...Option) Stream[K, VR] {
	o := collect(opts)
	name := o.nameFor(s.b, s.node, "join-global")
	checkFn(s.b, name, key == nil || joiner == nil)
	return joinGlobal(s, g, name, o, key, func(k K, v V, vg VG, ok bool) (VR, bool) {
		if !ok {
			var zero VR
			return zero, false
		}
		return joiner(k, v, vg), true
	})
}

// LeftJoinGlobal joins each record of s with the value in g of the key
// that key computes from it, if any (a left join): every record gives a
// result, with g's side absent when it has no value. Otherwise it is
// [JoinGlobal].
func LeftJoinGlobal[K, V, KG, VG, VR any](s Stream[K, V], g table.GlobalTable[KG, VG], key func(K, V) KG, joiner func(K, V, Maybe[VG]) VR, opts ...Option) Stream[K, VR] {
	o := collect(opts)
	name := o.nameFor(s.b, s.node, "left-join-global")
	checkFn(s.b, name, key == nil || joiner == nil)
	return joinGlobal(s, g, name, o, key, func(k K, v V, vg VG, ok bool) (VR, bool) {
		return joiner(k, v, Maybe[VG]{Value: vg, OK: ok}), true
	})
}

func joinGlobal[K, V, KG, VG, VR any](s Stream[K, V], g table.GlobalTable[KG, VG], name string, o options, key func(K, V) KG, join func(K, V, VG, bool) (VR, bool)) Stream[K, VR] {
	topology.AddProcessor(s.b, name, func() topology.Processor[K, V, K, VR] {
		return &lookupJoin[K, V, KG, VG, VR]{
			open: func(ctx topology.Context[K, VR]) (*state.TypedReader[KG, VG], error) {
				st, err := ctx.Store(g.StoreName())
				if err != nil {
					return nil, err
				}
				kv, ok := st.(state.ReadOnlyKeyValueStore)
				if !ok {
					return nil, fmt.Errorf("global store %q is a %T, not a key-value store", g.StoreName(), st)
				}
				return state.TypedRead(kv, g.KeySerde(), g.ValueSerde()), nil
			},
			key:  key,
			join: join,
		}
	}, s.node)
	return Stream[K, VR]{b: s.b, node: name, keys: s.keys, values: outSerde[VR](s.b, o.valueSerde, s.values, name, "value"), rekeyed: s.rekeyed}
}

// lookupJoin joins each record with the value its lookup key has in a
// table: a stream–table or stream–global-table join.
type lookupJoin[K, V, KT, VT, VR any] struct {
	ctx    topology.Context[K, VR]
	open   func(topology.Context[K, VR]) (*state.TypedReader[KT, VT], error)
	key    func(K, V) KT
	join   func(K, V, VT, bool) (VR, bool)
	table  *state.TypedReader[KT, VT]
	nilKey null.Checker[K]
	nilVal null.Checker[V]
	nilKT  null.Checker[KT]
}

func (p *lookupJoin[K, V, KT, VT, VR]) Init(ctx topology.Context[K, VR]) error {
	p.ctx = ctx
	t, err := p.open(ctx)
	if err != nil {
		return err
	}
	p.table = t
	p.nilKey, p.nilVal, p.nilKT = null.For[K](), null.For[V](), null.For[KT]()
	return nil
}

func (p *lookupJoin[K, V, KT, VT, VR]) Close() error { return nil }

func (p *lookupJoin[K, V, KT, VT, VR]) Process(r topology.Record[K, V]) error {
	switch {
	case p.nilKey.IsNil(r.Key):
		p.ctx.SkipRecord("null key")
		return nil
	case p.nilVal.IsNil(r.Value):
		p.ctx.SkipRecord("null value")
		return nil
	}
	k := p.key(r.Key, r.Value)
	if p.nilKT.IsNil(k) {
		p.ctx.SkipRecord("null lookup key")
		return nil
	}
	vt, ok, err := p.table.Get(k)
	if err != nil {
		return fmt.Errorf("look up the table: %w", err)
	}
	vr, ok := p.join(r.Key, r.Value, vt, ok)
	if !ok {
		return nil
	}
	return p.ctx.Forward(topology.Record[K, VR]{Key: r.Key, Value: vr, Timestamp: r.Timestamp, Headers: r.Headers})
}
