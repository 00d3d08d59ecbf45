package table

import (
	"fmt"

	"github.com/riffle-streams/riffle/internal/dsl"
	"github.com/riffle-streams/riffle/internal/null"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/topology"
)

// From returns the table of topic: each record sets its key to its value and
// a tombstone deletes the key. The table always keeps a store of its
// current values, which gives every downstream operator the value an update
// replaces; [Materialized] names it, otherwise it is named after the
// table's node. A record with a null key is skipped and counted.
func From[K, V any](b *topology.Builder, topic string, opts ...Option) Table[K, V] {
	o := collect(opts)
	name := o.name
	if name == "" {
		name = b.NewName("", "table-"+topic)
	}
	op := fmt.Sprintf("table %q", name)
	ks := serdeFor[K](b, o.keySerde, nil, op, "key")
	vs := serdeFor[V](b, o.valueSerde, nil, op, "value")
	if ks == nil || vs == nil {
		return Table[K, V]{b: b, node: name}
	}
	source := name + "-source"
	topology.AddSource(b, source, ks, changeSerde[V]{vs}, topic)
	spec := o.storeSpec(name)
	topology.AddProcessor(b, name, func() topology.Processor[K, Change[V], K, Change[V]] {
		return &materialize[K, V]{store: spec.Name, keys: ks, values: vs, fill: true}
	}, source)
	b.AddStore(spec, name)
	queryable(b, spec.Name, ks, vs)
	return Table[K, V]{b: b, node: name, keys: ks, values: vs, store: spec.Name}
}

// Filter returns the table of the entries for which pred holds. A key whose
// new value fails pred is deleted from the result if its old one passed.
func (t Table[K, V]) Filter(pred func(K, V) bool, opts ...Option) Table[K, V] {
	return t.filter("filter", pred, false, opts)
}

// FilterNot returns the table of the entries for which pred does not hold.
func (t Table[K, V]) FilterNot(pred func(K, V) bool, opts ...Option) Table[K, V] {
	return t.filter("filternot", pred, true, opts)
}

func (t Table[K, V]) filter(kind string, pred func(K, V) bool, not bool, opts []Option) Table[K, V] {
	o := collect(opts)
	name := o.nameFor(t.b, t.node, kind)
	dsl.CheckFn(t.b, "table", name, pred == nil)
	keep := func(k K, v V) bool { return pred(k, v) != not }
	return derive(t, name, o, func(k K, c Change[V]) (Change[V], bool) {
		newOK := c.HasNew && keep(k, c.New)
		oldOK := c.HasOld && keep(k, c.Old)
		if !newOK && !oldOK {
			return Change[V]{}, false
		}
		return Change[V]{New: c.New, HasNew: newOK, Old: c.Old, HasOld: oldOK}, true
	}, t.values)
}

// MapValues returns the table whose values are fn of t's values. A nil
// result (for a V2 that can be nil) deletes the key from the result.
func MapValues[K, V, V2 any](t Table[K, V], fn func(V) V2, opts ...Option) Table[K, V2] {
	o := collect(opts)
	name := o.nameFor(t.b, t.node, "mapvalues")
	dsl.CheckFn(t.b, "table", name, fn == nil)
	vs := dsl.OutSerde[V2](t.b, "table", o.valueSerde, t.values, name, "value")
	nilV2 := null.For[V2]()
	return derive(t, name, o, func(_ K, c Change[V]) (Change[V2], bool) {
		// A nil result is no value: the key is deleted from the result.
		var out Change[V2]
		if c.HasNew {
			out.New = fn(c.New)
			out.HasNew = !nilV2.IsNil(out.New)
		}
		if c.HasOld {
			out.Old = fn(c.Old)
			out.HasOld = !nilV2.IsNil(out.Old)
		}
		return out, out.HasNew || out.HasOld
	}, vs)
}

// derive adds a processor that turns each change of t with fn, keeping the
// results in a store if [Materialized] asks for one.
func derive[K, V, V2 any](t Table[K, V], name string, o options, fn func(K, Change[V]) (Change[V2], bool), values2 serde.Serde[V2]) Table[K, V2] {
	var spec *state.Spec
	if o.store != "" {
		s := o.storeSpec(name)
		spec = &s
		values2 = dsl.SerdeFor[V2](t.b, "table", nil, values2, fmt.Sprintf("operator %q", name), "value")
	}
	topology.AddProcessor(t.b, name, func() topology.Processor[K, Change[V], K, Change[V2]] {
		p := &mapChange[K, V, V2]{fn: fn}
		if spec != nil {
			p.m = &materialize[K, V2]{store: spec.Name, keys: t.keys, values: values2}
		}
		return p
	}, t.node)
	out := Table[K, V2]{b: t.b, node: name, keys: t.keys, values: values2}
	if spec != nil {
		t.b.AddStore(*spec, name)
		queryable(t.b, spec.Name, t.keys, values2)
		out.store = spec.Name
	}
	return out
}

// queryable lets interactive queries read store, a table's store that holds
// its values as written by values under keys written by keys. A store with a
// serde missing is not made queryable: the DSL has reported the serde
// missing where it found it so (a Table made by FromNode without serdes has
// none to give).
func queryable[K, V any](b *topology.Builder, store string, keys serde.Serde[K], values serde.Serde[V]) {
	if keys != nil && values != nil {
		topology.Queryable(b, store, keys, values)
	}
}

// To writes the table's updates to topic: an update as its new value, a
// deletion as a tombstone.
func (t Table[K, V]) To(topic string, opts ...Option) {
	o := collect(opts)
	name := o.nameFor(t.b, t.node, "to-"+topic)
	op := fmt.Sprintf("sink %q", name)
	ks := serdeFor[K](t.b, o.keySerde, t.keys, op, "key")
	vs := serdeFor[V](t.b, o.valueSerde, t.values, op, "value")
	if ks != nil && vs != nil {
		topology.AddSink(t.b, name, topic, ks, changeSerde[V]{vs}, t.node)
	}
}

// materialize keeps a table's current values in a store. With fill, it
// also supplies each change's old value from the store (a source table,
// whose records carry only new values) and drops the deletion of a key that
// is absent; otherwise it keeps the change as it is. An update to the same
// value is passed on: every update is emitted.
type materialize[K, V any] struct {
	ctx    topology.Context[K, Change[V]]
	store  string
	keys   serde.Serde[K]
	values serde.Serde[V]
	fill   bool
	kv     *state.TypedKeyValue[K, V]
	nilKey null.Checker[K]
	nilVal null.Checker[V]
	cached bool // the store's cache forwards, when it flushes
}

func (m *materialize[K, V]) Init(ctx topology.Context[K, Change[V]]) error { return m.open(ctx) }

// open opens the store; if it is cached, changes are forwarded with ctx as
// the cache writes them through.
func (m *materialize[K, V]) open(ctx topology.Context[K, Change[V]]) error {
	m.ctx = ctx
	kv, err := topology.KeyValueStore(ctx, m.store)
	if err != nil {
		return err
	}
	m.kv = state.Typed(kv, m.keys, m.values)
	m.nilKey, m.nilVal = null.For[K](), null.For[V]()
	m.cached = forwardOnFlush(ctx, kv, m.keys, m.values)
	return nil
}

// forwardOnFlush makes a cached store forward its flushed updates as
// Changes through ctx, stamped with the stream time; it reports whether the
// store is cached.
func forwardOnFlush[K, V any](ctx topology.Context[K, Change[V]], kv state.KeyValueStore, keys serde.Serde[K], values serde.Serde[V]) bool {
	return dsl.ForwardOnFlush(kv, keys, values, func(k K, nv V, hasNew bool, ov V, hasOld bool) error {
		return ctx.Forward(topology.Record[K, Change[V]]{
			Key: k, Value: Change[V]{New: nv, HasNew: hasNew, Old: ov, HasOld: hasOld}, Timestamp: ctx.StreamTime(),
		})
	})
}

func (m *materialize[K, V]) Close() error { return nil }

func (m *materialize[K, V]) Process(r topology.Record[K, Change[V]]) error {
	c, ok, err := m.apply(r.Key, r.Value)
	if err != nil || !ok || m.cached {
		return err
	}
	r.Value = c
	return m.ctx.Forward(r)
}

// apply writes c to the store and returns the change to forward, or false
// if there is none.
func (m *materialize[K, V]) apply(k K, c Change[V]) (Change[V], bool, error) {
	if m.nilKey.IsNil(k) {
		m.ctx.SkipRecord("null key")
		return c, false, nil
	}
	if c.HasNew && m.nilVal.IsNil(c.New) {
		c.HasNew = false // a nil value is a deletion
	}
	if m.fill {
		old, had, err := m.kv.Get(k)
		if err != nil {
			return c, false, err
		}
		if !had && !c.HasNew {
			return c, false, nil // deleting what is not there changes nothing
		}
		c.Old, c.HasOld = old, had
	}
	var err error
	if c.HasNew {
		err = m.kv.Put(k, c.New)
	} else {
		err = m.kv.Delete(k)
	}
	return c, true, err
}

// mapChange turns each change with fn, materializing the result if m is set.
type mapChange[K, V, V2 any] struct {
	ctx topology.Context[K, Change[V2]]
	fn  func(K, Change[V]) (Change[V2], bool)
	m   *materialize[K, V2]
}

func (p *mapChange[K, V, V2]) Init(ctx topology.Context[K, Change[V2]]) error {
	p.ctx = ctx
	if p.m != nil {
		return p.m.open(ctx)
	}
	return nil
}

func (p *mapChange[K, V, V2]) Close() error { return nil }

func (p *mapChange[K, V, V2]) Process(r topology.Record[K, Change[V]]) error {
	c, ok := p.fn(r.Key, r.Value)
	if !ok {
		return nil
	}
	if p.m != nil {
		var err error
		if c, ok, err = p.m.apply(r.Key, c); err != nil || !ok || p.m.cached {
			return err
		}
	}
	return p.ctx.Forward(topology.Record[K, Change[V2]]{Key: r.Key, Value: c, Timestamp: r.Timestamp, Headers: r.Headers})
}
