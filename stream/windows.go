package stream

import (
	"fmt"
	"time"

	"github.com/riffle-streams/riffle/internal/dsl"
	"github.com/riffle-streams/riffle/internal/null"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/table"
	"github.com/riffle-streams/riffle/topology"
)

// TimeWindows are fixed-size windows on event time: tumbling (each record
// in one window) or hopping (windows that overlap by size - advance).
// Windows start at multiples of the advance since the epoch and include
// their start, not their end.
type TimeWindows struct {
	// Size is how long a window is.
	Size time.Duration
	// Advance is how far apart windows start; equal to Size for tumbling
	// windows.
	Advance time.Duration
	// Grace is how long after a window's end a late record is still
	// applied: a record whose window ended at or before stream time minus
	// grace is late, and dropped (counted and logged).
	Grace time.Duration
}

// Tumbling returns windows of size that do not overlap, with grace for
// late records. Grace must be given: zero means none.
func Tumbling(size, grace time.Duration) TimeWindows {
	return TimeWindows{Size: size, Advance: size, Grace: grace}
}

// Hopping returns windows of size starting every advance, with grace for
// late records.
func Hopping(size, advance, grace time.Duration) TimeWindows {
	return TimeWindows{Size: size, Advance: advance, Grace: grace}
}

func (w TimeWindows) validate() error {
	switch {
	case w.Size < time.Millisecond:
		return fmt.Errorf("window size %v is under 1ms", w.Size)
	case w.Advance < time.Millisecond || w.Advance > w.Size:
		return fmt.Errorf("window advance %v must be between 1ms and the size %v", w.Advance, w.Size)
	case w.Grace < 0:
		return fmt.Errorf("grace %v is negative", w.Grace)
	}
	return nil
}

// starts calls fn with the start (ms) of every window that contains ts,
// oldest first.
func (w TimeWindows) starts(ts int64, fn func(start int64) error) error {
	size, adv := w.Size.Milliseconds(), w.Advance.Milliseconds()
	start := max(0, ts-size+adv) / adv * adv
	for ; start <= ts; start += adv {
		if start+size > ts {
			if err := fn(start); err != nil {
				return err
			}
		}
	}
	return nil
}

// Windowed is a key and the window it is aggregated in.
type Windowed[K any] struct {
	Key K
	// Start is when the window starts (included).
	Start time.Time
	// End is when the window ends (excluded).
	End time.Time
}

// WindowedSerde writes a windowed key as Kafka Streams' time-windowed serde
// does: the key's bytes, then the window's start as 8 bytes big-endian
// milliseconds. The end is not written; decoding adds size to the start.
func WindowedSerde[K any](keys serde.Serde[K], size time.Duration) serde.Serde[Windowed[K]] {
	return windowedSerde[K]{keys: keys, size: size}
}

type windowedSerde[K any] struct {
	keys serde.Serde[K]
	size time.Duration
}

func (s windowedSerde[K]) String() string { return fmt.Sprintf("Windowed(%v)", s.keys) }

func (s windowedSerde[K]) Encode(w Windowed[K]) ([]byte, error) {
	k, err := s.keys.Encode(w.Key)
	if err != nil {
		return nil, err
	}
	return state.WindowKey(k, w.Start.UnixMilli()), nil
}

func (s windowedSerde[K]) Decode(b []byte) (Windowed[K], error) {
	if b == nil {
		return Windowed[K]{}, &serde.DecodeError{Serde: s.String(), Want: "a key and an 8-byte window start", Got: -1, Err: serde.ErrNull}
	}
	kb, start, err := state.SplitWindowKey(b)
	if err != nil {
		return Windowed[K]{}, &serde.DecodeError{Serde: s.String(), Want: "a key and an 8-byte window start", Got: len(b), Err: err}
	}
	k, err := s.keys.Decode(kb)
	if err != nil {
		return Windowed[K]{}, err
	}
	st := time.UnixMilli(start)
	return Windowed[K]{Key: k, Start: st, End: st.Add(s.size)}, nil
}

// EmitFinal makes a windowed aggregation emit each window once, with its
// final aggregate, when the window closes (stream time passes its end plus
// grace), instead of every update. What it has emitted is kept in a logged
// store ("<store>-emitted"), so after a graceful restart or a rebalance no
// final result is lost or emitted twice; after a crash, one may repeat, as
// at-least-once allows. A record for a window already emitted is late.
func EmitFinal() Option { return func(o *options) { o.emitFinal = true } }

// CloseIdleAfter, with EmitFinal, closes windows by wall-clock time when
// their partition is idle: once stream time has not moved for d of wall-clock
// time, the aggregation lets its time run on with the clock and emits the
// windows that closes, so the last window of a quiet partition (a
// dashboard's current minute) does not wait for the next record. A record
// that arrives later for a window so emitted is late. This goes beyond
// Kafka Streams, whose windows close only on stream time.
func CloseIdleAfter(d time.Duration) Option { return func(o *options) { o.closeIdle = d } }

// OnLateRecord calls fn (a func(K, V, time.Time) of the aggregation's key
// and value types) with each record a windowed aggregation drops as late,
// and its event time, after counting and logging it: for example to send it
// to a side output.
func OnLateRecord[K, V any](fn func(K, V, time.Time)) Option {
	return func(o *options) { o.onLate = fn }
}

// WindowedBy is a grouped stream cut into time windows, to be aggregated.
type WindowedBy[K, V any] struct {
	g   *Grouped[K, V]
	w   TimeWindows
	err error
}

// WindowedBy cuts the grouped records into windows.
func (g *Grouped[K, V]) WindowedBy(w TimeWindows) *WindowedBy[K, V] {
	return &WindowedBy[K, V]{g: g, w: w, err: w.validate()}
}

// Count counts each key's records per window.
func (wb *WindowedBy[K, V]) Count(opts ...Option) table.Table[Windowed[K], int64] {
	o := collect(append([]Option{WithValueSerde(serde.Int64())}, opts...))
	name := o.nameFor(wb.g.s.b, wb.g.s.node, "windowed-count")
	return windowedAggregate(wb, name, o, func() int64 { return 0 }, func(_ K, _ V, n int64) int64 { return n + 1 })
}

// Reduce combines each key's values per window with fn; a window's first
// value is its aggregate.
func (wb *WindowedBy[K, V]) Reduce(fn func(agg, v V) V, opts ...Option) table.Table[Windowed[K], V] {
	o := collect(opts)
	if o.valueSerde == nil && wb.g.values != nil {
		o.valueSerde = wb.g.values
	}
	name := o.nameFor(wb.g.s.b, wb.g.s.node, "windowed-reduce")
	checkFn(wb.g.s.b, name, fn == nil)
	return windowedAggregateWith(wb, name, o, nil, func(_ K, v V, agg V, had bool) V {
		if !had {
			return v
		}
		return fn(agg, v)
	})
}

// WindowedAggregate folds each key's values per window: init starts a
// window's aggregate, fn adds a value.
func WindowedAggregate[K, V, VA any](wb *WindowedBy[K, V], init func() VA, fn func(K, V, VA) VA, opts ...Option) table.Table[Windowed[K], VA] {
	o := collect(opts)
	name := o.nameFor(wb.g.s.b, wb.g.s.node, "windowed-aggregate")
	checkFn(wb.g.s.b, name, init == nil || fn == nil)
	return windowedAggregate(wb, name, o, init, fn)
}

func windowedAggregate[K, V, VA any](wb *WindowedBy[K, V], name string, o options, init func() VA, fn func(K, V, VA) VA) table.Table[Windowed[K], VA] {
	return windowedAggregateWith(wb, name, o, func() VA { return init() }, func(k K, v V, agg VA, _ bool) VA { return fn(k, v, agg) })
}

func windowedAggregateWith[K, V, VA any](wb *WindowedBy[K, V], name string, o options, init func() VA, step func(K, V, VA, bool) VA) table.Table[Windowed[K], VA] {
	b := wb.g.s.b
	if wb.err != nil {
		b.AddError(fmt.Errorf("stream: windowed aggregation %q: %w", name, wb.err))
	}
	vs := dsl.SerdeFor[VA](b, "stream", o.valueSerde, nil, fmt.Sprintf("aggregate %q", name), "value")
	in := wb.g.stream(name)
	ks := wb.g.keys
	if ks == nil || vs == nil || wb.err != nil {
		return table.FromNode[Windowed[K], VA](b, name, nil, vs, "")
	}
	store := o.store
	if store == "" {
		store = name
	}
	spec := state.Window(store, wb.w.Size+wb.w.Grace, o.storeOpts...)
	w := wb.w
	emitted := ""
	if o.emitFinal {
		emitted = spec.Name + "-emitted"
	}
	switch {
	case o.closeIdle < 0:
		b.AddError(fmt.Errorf("stream: windowed aggregation %q: CloseIdleAfter(%v) is negative", name, o.closeIdle))
	case o.closeIdle > 0 && !o.emitFinal:
		b.AddError(fmt.Errorf("stream: windowed aggregation %q: CloseIdleAfter needs EmitFinal: only final results are emitted on close", name))
	}
	idle := o.closeIdle
	var onLate func(K, V, time.Time)
	if o.onLate != nil {
		fn, ok := o.onLate.(func(K, V, time.Time))
		if !ok {
			var k K
			var v V
			b.AddError(fmt.Errorf("stream: windowed aggregation %q: OnLateRecord takes a %T, not a func(%T, %T, time.Time)", name, o.onLate, k, v))
		}
		onLate = fn
	}
	topology.AddProcessor(b, name, func() topology.Processor[K, V, Windowed[K], table.Change[VA]] {
		return &windowAggregate[K, V, VA]{store: spec.Name, emittedStore: emitted, closeIdle: idle, onLate: onLate, keys: ks, values: vs, w: w, init: init, step: step}
	}, in.node)
	b.AddStore(spec, name)
	if emitted != "" {
		b.AddStore(state.KeyValue(emitted, append(append([]state.Option{}, o.storeOpts...), state.WithoutCaching())...), name)
	}
	return table.FromNode(b, name, WindowedSerde(ks, w.Size), vs, spec.Name)
}

// windowAggregate adds each record to its windows' aggregates, unless the
// record is late for them, and forwards each window's change.
type windowAggregate[K, V, VA any] struct {
	ctx    topology.Context[Windowed[K], table.Change[VA]]
	store  string
	keys   serde.Serde[K]
	values serde.Serde[VA]
	w      TimeWindows
	init   func() VA
	step   func(K, V, VA, bool) VA
	ws     state.WindowStore
	nilKey null.Checker[K]
	nilVal null.Checker[V]

	// With EmitFinal: the store of the close time emitted up to, and that
	// time (ms), or noneEmitted.
	emittedStore string
	emitted      state.KeyValueStore
	emittedUpTo  int64

	onLate func(K, V, time.Time)

	// With CloseIdleAfter: the idle time, and when (wall clock) stream
	// time last moved, and to what (ms).
	closeIdle  time.Duration
	lastMoved  time.Time
	lastStream int64
}

// noneEmitted is the close time of an aggregation that has emitted nothing.
const noneEmitted = -1 << 62

// emittedKey is the one key of an emitted-up-to store.
var emittedKey = []byte("closed")

func (p *windowAggregate[K, V, VA]) Init(ctx topology.Context[Windowed[K], table.Change[VA]]) error {
	p.ctx = ctx
	s, err := ctx.Store(p.store)
	if err != nil {
		return err
	}
	ws, ok := s.(state.WindowStore)
	if !ok {
		return fmt.Errorf("store %q is a %T, not a window store", p.store, s)
	}
	p.ws = ws
	p.nilKey, p.nilVal = null.For[K](), null.For[V]()
	if p.emittedStore != "" {
		kv, err := topology.KeyValueStore(ctx, p.emittedStore)
		if err != nil {
			return err
		}
		p.emitted, p.emittedUpTo = kv, noneEmitted
		b, err := kv.Get(emittedKey)
		if err != nil {
			return err
		}
		if b != nil {
			if p.emittedUpTo, err = serde.Int64().Decode(b); err != nil {
				return fmt.Errorf("store %q: %w", p.emittedStore, err)
			}
		}
	}
	if p.closeIdle > 0 {
		p.lastStream = noneEmitted
		every := min(p.closeIdle, time.Second)
		if _, err := ctx.Schedule(every, topology.WallClockTime, p.closeIdleWindows); err != nil {
			return err
		}
	}
	return nil
}

// closeIdleWindows, a wall-clock punctuation, emits the windows closed by
// letting time run on with the clock once stream time has stood still for
// closeIdle.
func (p *windowAggregate[K, V, VA]) closeIdleWindows(now time.Time) error {
	if p.lastStream == noneEmitted {
		return nil // no record yet: no time to run on from
	}
	idle := now.Sub(p.lastMoved)
	if idle < p.closeIdle {
		return nil
	}
	return p.emitClosedAt(p.lastStream + idle.Milliseconds() - p.w.Grace.Milliseconds())
}

func (p *windowAggregate[K, V, VA]) Close() error { return nil }

func (p *windowAggregate[K, V, VA]) Process(r topology.Record[K, V]) error {
	switch {
	case p.nilKey.IsNil(r.Key):
		p.ctx.SkipRecord("null key")
		return nil
	case p.nilVal.IsNil(r.Value):
		p.ctx.SkipRecord("null value")
		return nil
	}
	if p.emitted != nil {
		if st := p.ctx.StreamTime().UnixMilli(); p.closeIdle > 0 && st > p.lastStream {
			p.lastStream, p.lastMoved = st, p.ctx.WallClock()
		}
		// Emit what this record's time closes before applying it: its put
		// may expire a window (retention runs from the newest window) in
		// the same step that closes it.
		if err := p.emitClosedAt(p.ctx.StreamTime().UnixMilli() - p.w.Grace.Milliseconds()); err != nil {
			return err
		}
	}
	kb, err := p.keys.Encode(r.Key)
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	ts := r.Timestamp.UnixMilli()
	closeTime := p.ctx.StreamTime().UnixMilli() - p.w.Grace.Milliseconds()
	if p.emitted != nil {
		// A window already emitted is closed, whatever stream time says.
		closeTime = max(closeTime, p.emittedUpTo)
	}
	size := p.w.Size.Milliseconds()
	applied := false
	err = p.w.starts(ts, func(start int64) error {
		if start+size <= closeTime {
			return nil // this window has closed
		}
		applied = true
		old, err := p.ws.Fetch(kb, start)
		if err != nil {
			return err
		}
		var prev VA
		had := old != nil
		if had {
			if prev, err = p.values.Decode(old); err != nil {
				return fmt.Errorf("decode the aggregate of window %d: %w", start, err)
			}
		}
		agg := prev
		if !had && p.init != nil {
			agg = p.init()
		}
		agg = p.step(r.Key, r.Value, agg, had)
		vb, err := p.values.Encode(agg)
		if err != nil {
			return fmt.Errorf("encode the aggregate: %w", err)
		}
		if err := p.ws.Put(kb, start, vb); err != nil {
			return err
		}
		if p.emitted != nil {
			return nil // emitted when the window closes
		}
		st := time.UnixMilli(start)
		return p.ctx.Forward(topology.Record[Windowed[K], table.Change[VA]]{
			Key:       Windowed[K]{Key: r.Key, Start: st, End: st.Add(p.w.Size)},
			Value:     table.Change[VA]{New: agg, HasNew: true, Old: prev, HasOld: had},
			Timestamp: r.Timestamp, Headers: r.Headers,
		})
	})
	if err == nil && !applied {
		p.ctx.SkipRecord("late record")
		if p.onLate != nil {
			p.onLate(r.Key, r.Value, r.Timestamp)
		}
	}
	return err
}

// emitClosedAt emits, once each, the windows that end at or before
// closeTime (ms) and were not emitted yet, oldest first, then records how
// far it got.
func (p *windowAggregate[K, V, VA]) emitClosedAt(closeTime int64) error {
	if closeTime <= p.emittedUpTo {
		return nil
	}
	size := p.w.Size.Milliseconds()
	// Closed now: end <= closeTime. Emitted before: end <= emittedUpTo.
	from := int64(noneEmitted)
	if p.emittedUpTo != noneEmitted {
		from = p.emittedUpTo - size + 1
	}
	it, err := p.ws.FetchAll(from, closeTime-size)
	if err != nil {
		return err
	}
	defer it.Close()
	for it.Next() {
		k, err := p.keys.Decode(it.Key())
		if err != nil {
			return fmt.Errorf("decode the key of a closed window: %w", err)
		}
		v, err := p.values.Decode(it.Value())
		if err != nil {
			return fmt.Errorf("decode the aggregate of a closed window: %w", err)
		}
		st := time.UnixMilli(it.Start())
		err = p.ctx.Forward(topology.Record[Windowed[K], table.Change[VA]]{
			Key:       Windowed[K]{Key: k, Start: st, End: st.Add(p.w.Size)},
			Value:     table.Change[VA]{New: v, HasNew: true},
			Timestamp: st.Add(p.w.Size - time.Millisecond), // the window's last instant
		})
		if err != nil {
			return err
		}
	}
	if err := it.Err(); err != nil {
		return err
	}
	b, err := serde.Int64().Encode(closeTime)
	if err != nil {
		return err
	}
	if err := p.emitted.Put(emittedKey, b); err != nil {
		return err
	}
	p.emittedUpTo = closeTime
	return nil
}
