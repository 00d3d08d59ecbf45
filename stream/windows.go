package stream

import (
	"fmt"
	"slices"
	"time"

	"github.com/riffle-streams/riffle/internal/dsl"
	"github.com/riffle-streams/riffle/internal/null"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/table"
	"github.com/riffle-streams/riffle/topology"
)

// Windows is how [Grouped.WindowedBy] cuts a grouped stream into windows:
// [TimeWindows] (tumbling or hopping) or [SlidingWindows]. Each window's
// aggregate is kept in a window store, keyed by the key and the window's
// start.
type Windows interface {
	validate() error
	// length is the window's length: its end is its start plus length.
	length() time.Duration
	grace() time.Duration
	// retention is how long the store keeps a window after its start, at
	// least: what the aggregation needs.
	retention() time.Duration
	// retentionOf says what retention is made of, for errors.
	retentionOf() string
}

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

func (w TimeWindows) length() time.Duration    { return w.Size }
func (w TimeWindows) grace() time.Duration     { return w.Grace }
func (w TimeWindows) retention() time.Duration { return w.Size + w.Grace }
func (w TimeWindows) retentionOf() string {
	return fmt.Sprintf("size %v + grace %v", w.Size, w.Grace)
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
	// End is when the window ends: excluded for time windows, included for
	// sliding windows and sessions, as in Kafka Streams.
	End time.Time
}

// WindowedSerde writes a windowed key as Kafka Streams' time-windowed serde
// does: the key's bytes, then the window's start as 8 bytes big-endian
// milliseconds. The end is not written; decoding adds size to the start
// (for sliding windows, give their time difference).
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

// WindowedBy is a grouped stream cut into time or sliding windows, to be
// aggregated.
type WindowedBy[K, V any] struct {
	g   *Grouped[K, V]
	w   Windows
	err error
}

// WindowedBy cuts the grouped records into windows: [Tumbling], [Hopping]
// or [Sliding].
func (g *Grouped[K, V]) WindowedBy(w Windows) *WindowedBy[K, V] {
	var err error
	if w == nil {
		err = fmt.Errorf("no windows given")
	} else {
		err = w.validate()
	}
	return &WindowedBy[K, V]{g: g, w: w, err: err}
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
	return windowedAggregateWith(wb, name, o, init, func(k K, v V, agg VA, _ bool) VA { return fn(k, v, agg) })
}

// windowedInput checks what a windowed or session aggregation (kind) named
// name of g needs, recording what is wrong (werr: its windows' fault):
// its value serde, its input, repartitioned if the key was changed, and
// its store's name. ok is false if it cannot be built.
func windowedInput[K, V, VA any](g *Grouped[K, V], kind, name string, o options, werr error) (in Stream[K, V], vs serde.Serde[VA], store string, ok bool) {
	b := g.s.b
	if werr != nil {
		b.AddError(fmt.Errorf("stream: %s aggregation %q: %w", kind, name, werr))
	}
	vs = dsl.SerdeFor[VA](b, "stream", o.valueSerde, nil, fmt.Sprintf("aggregate %q", name), "value")
	in = g.stream(name)
	store = o.store
	if store == "" {
		store = name
	}
	return in, vs, store, g.keys != nil && vs != nil && werr == nil
}

func windowedAggregateWith[K, V, VA any](wb *WindowedBy[K, V], name string, o options, init func() VA, step func(K, V, VA, bool) VA) table.Table[Windowed[K], VA] {
	b := wb.g.s.b
	in, vs, store, ok := windowedInput[K, V, VA](wb.g, "windowed", name, o, wb.err)
	if !ok {
		return table.FromNode[Windowed[K], VA](b, name, nil, vs, "")
	}
	ks := wb.g.keys
	spec := state.Window(store, wb.w.retention(), o.storeOpts...)
	spec = retentionAtLeast(b, fmt.Sprintf("windowed aggregation %q", name), spec, wb.w.retention(), wb.w.retentionOf())
	plan := planWindowed[K, V](b, name, spec.Name, o)
	// How a query reads the store: a window's stored value is the
	// aggregate, after the latest record's timestamp for sliding windows.
	query := []topology.QueryOption{topology.QueryWindowSize(wb.w.length())}
	switch w := wb.w.(type) {
	case TimeWindows:
		topology.AddProcessor(b, name, func() topology.Processor[K, V, Windowed[K], table.Change[VA]] {
			return &windowAggregate[K, V, VA]{store: spec.Name, plan: plan, keys: ks, values: vs, w: w, init: init, step: step}
		}, in.node)
	case SlidingWindows:
		topology.AddProcessor(b, name, func() topology.Processor[K, V, Windowed[K], table.Change[VA]] {
			return &slidingAggregate[K, V, VA]{store: spec.Name, plan: plan, keys: ks, values: vs, w: w, init: init, step: step}
		}, in.node)
		query = append(query, topology.QueryValuePrefix(slidingPrefix))
	default:
		b.AddError(fmt.Errorf("stream: windowed aggregation %q: windows of type %T are not supported", name, wb.w))
	}
	b.AddStore(spec, name)
	topology.Queryable(b, spec.Name, ks, vs, query...)
	plan.addStores(b, name, o.besideWindows())
	return table.FromNode(b, name, WindowedSerde(ks, wb.w.length()), vs, spec.Name)
}

// retentionAtLeast returns spec, the window or session store of the
// operator op, whose windows need keeping for need (made of what
// needParts says): spec's retention is need by default, and may be longer
// (state.WithRetention, through Materialized), so that past windows stay
// queryable. A shorter one is recorded as a build error naming op and the
// store, and need is kept, so that the rest builds as usual and reports
// only its own errors.
func retentionAtLeast(b *topology.Builder, op string, spec state.Spec, need time.Duration, needParts string) state.Spec {
	if spec.Retention < need {
		b.AddError(fmt.Errorf("stream: %s: store %q: retention %v is shorter than the %v its windows need (%s)", op, spec.Name, spec.Retention, need, needParts))
		spec.Retention = need
	}
	return spec
}

// besideWindows returns o for the key-value stores an operator keeps
// beside its window stores (EmitFinal's, an outer join's): they take the
// options of Materialized but for the retention, which only window and
// session stores have.
func (o options) besideWindows() options {
	o.storeOpts = append(slices.Clip(o.storeOpts), func(s *state.Spec) { s.Retention = 0 })
	return o
}

// windowAggregate adds each record to its time windows' aggregates, unless
// the record is late for them, and forwards each window's change.
type windowAggregate[K, V, VA any] struct {
	ctx    topology.Context[Windowed[K], table.Change[VA]]
	store  string
	plan   windowedPlan[K, V]
	keys   serde.Serde[K]
	values serde.Serde[VA]
	w      TimeWindows
	init   func() VA
	step   func(K, V, VA, bool) VA
	ws     state.WindowStore
	nilKey null.Checker[K]
	nilVal null.Checker[V]
	// final is set with EmitFinal.
	final *finals
}

func (p *windowAggregate[K, V, VA]) Init(ctx topology.Context[Windowed[K], table.Change[VA]]) error {
	p.ctx = ctx
	ws, err := openWindowStore(ctx, p.store)
	if err != nil {
		return err
	}
	p.ws = ws
	p.nilKey, p.nilVal = null.For[K](), null.For[V]()
	p.final, err = openFinals(ctx, p.plan.emitted, p.plan.idle, p.w.Grace, p.emitClosedAt)
	return err
}

// openWindowStore returns the window store named name.
func openWindowStore(ctx interface {
	Store(string) (state.Store, error)
}, name string) (state.WindowStore, error) {
	s, err := ctx.Store(name)
	if err != nil {
		return nil, err
	}
	ws, ok := s.(state.WindowStore)
	if !ok {
		return nil, fmt.Errorf("store %q is a %T, not a window store", name, s)
	}
	return ws, nil
}

// openFinals returns the finals of an aggregation with EmitFinal (nil
// without: emitted is ""), and schedules the idle check of CloseIdleAfter,
// which calls emit with the close time it reaches.
func openFinals[KO, VO any](ctx topology.Context[KO, VO], emitted string, idle, grace time.Duration, emit func(closeTime int64) error) (*finals, error) {
	if emitted == "" {
		return nil, nil
	}
	f := &finals{}
	if err := f.open(ctx, emitted, idle, grace); err != nil {
		return nil, err
	}
	if idle > 0 {
		_, err := ctx.Schedule(f.every(), topology.WallClockTime, func(now time.Time) error {
			if ct, ok := f.idleClose(now); ok {
				return emit(ct)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return f, nil
}

func (p *windowAggregate[K, V, VA]) Close() error { return nil }

func (p *windowAggregate[K, V, VA]) Process(r topology.Record[K, V]) error {
	closeTime, ok, err := prepare(p.ctx, p.final, p.nilKey, p.nilVal, r, p.w.Grace, p.emitClosedAt)
	if !ok || err != nil {
		return err
	}
	if p.final != nil {
		// A window already emitted is closed, whatever stream time says.
		closeTime = max(closeTime, p.final.upTo)
	}
	kb, err := p.keys.Encode(r.Key)
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	ts := r.Timestamp.UnixMilli()
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
		if p.final != nil {
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
		p.plan.late(p.ctx.SkipRecord, r.Key, r.Value, r.Timestamp)
	}
	return err
}

// emitClosedAt emits, once each, the windows that end at or before
// closeTime (ms) and were not emitted yet, oldest first.
func (p *windowAggregate[K, V, VA]) emitClosedAt(closeTime int64) error {
	return p.final.advance(closeTime, func(from, to int64) error {
		return emitWindows(p.ctx, p.ws, p.keys, p.values.Decode, from, to, p.w.Size, p.w.Size, p.w.Size-time.Millisecond)
	})
}

// emitWindows forwards, oldest first, the final aggregate of every window
// in ws that closes in (from, to] (ms; noneEmitted for no lower bound), a
// window closing when the close time reaches span after its start. Each
// goes out with its end, end after its start, as of its last instant, last
// after its start. decode reads a stored aggregate.
func emitWindows[K, VA any](ctx topology.Context[Windowed[K], table.Change[VA]], ws state.WindowStore, keys serde.Serde[K], decode func([]byte) (VA, error), from, to int64, closeAfter, end, last time.Duration) error {
	span := closeAfter.Milliseconds()
	lo := int64(noneEmitted)
	if from != noneEmitted {
		lo = from - span + 1
	}
	it, err := ws.FetchAll(lo, to-span)
	if err != nil {
		return err
	}
	defer it.Close()
	for it.Next() {
		k, err := keys.Decode(it.Key())
		if err != nil {
			return fmt.Errorf("decode the key of a closed window: %w", err)
		}
		v, err := decode(it.Value())
		if err != nil {
			return fmt.Errorf("decode the aggregate of a closed window: %w", err)
		}
		st := time.UnixMilli(it.Start())
		err = ctx.Forward(topology.Record[Windowed[K], table.Change[VA]]{
			Key:       Windowed[K]{Key: k, Start: st, End: st.Add(end)},
			Value:     table.Change[VA]{New: v, HasNew: true},
			Timestamp: st.Add(last),
		})
		if err != nil {
			return err
		}
	}
	return it.Err()
}
