package stream

import (
	"fmt"
	"time"

	"github.com/riffle-streams/riffle/internal/null"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/topology"
)

// EmitFinal makes a windowed or session aggregation emit each window once,
// with its final aggregate, when the window closes (stream time passes its
// end plus grace; for a session, its end plus the inactivity gap plus
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
// and value types) with each record a windowed or session aggregation drops
// as late, and its event time, after counting and logging it: for example
// to send it to a side output.
func OnLateRecord[K, V any](fn func(K, V, time.Time)) Option {
	return func(o *options) { o.onLate = fn }
}

// windowedPlan is what the options of a windowed or session aggregation
// named name come to, checked at build time.
type windowedPlan[K, V any] struct {
	// emitted is the store of what EmitFinal has emitted, or "".
	emitted string
	idle    time.Duration
	onLate  func(K, V, time.Time)
}

// planWindowed checks the emit and late-record options of the aggregation
// name, whose results go to store.
func planWindowed[K, V any](b *topology.Builder, name, store string, o options) windowedPlan[K, V] {
	var p windowedPlan[K, V]
	switch {
	case o.closeIdle < 0:
		b.AddError(fmt.Errorf("stream: windowed aggregation %q: CloseIdleAfter(%v) is negative", name, o.closeIdle))
	case o.closeIdle > 0 && !o.emitFinal:
		b.AddError(fmt.Errorf("stream: windowed aggregation %q: CloseIdleAfter needs EmitFinal: only final results are emitted on close", name))
	}
	p.idle = o.closeIdle
	if o.onLate != nil {
		fn, ok := o.onLate.(func(K, V, time.Time))
		if !ok {
			var k K
			var v V
			b.AddError(fmt.Errorf("stream: windowed aggregation %q: OnLateRecord takes a %T, not a func(%T, %T, time.Time)", name, o.onLate, k, v))
		}
		p.onLate = fn
	}
	if o.emitFinal {
		p.emitted = store + "-emitted"
	}
	return p
}

// addStores adds the store EmitFinal needs, if any, to the processor name,
// once it is added.
func (p *windowedPlan[K, V]) addStores(b *topology.Builder, name string, o options) {
	if p.emitted != "" {
		b.AddStore(state.KeyValue(p.emitted, append(append([]state.Option{}, o.storeOpts...), state.WithoutCaching())...), name)
	}
}

// late counts and logs a record dropped as late, and hands it to the
// OnLateRecord function, if any.
func (p *windowedPlan[K, V]) late(skip func(string), k K, v V, ts time.Time) {
	skip("late record")
	if p.onLate != nil {
		p.onLate(k, v, ts)
	}
}

// noneEmitted is the close time of an aggregation that has emitted nothing.
const noneEmitted = -1 << 62

// emittedKey is the one key of an emitted-up-to store.
var emittedKey = []byte("closed")

// finals is the part of an aggregation with EmitFinal that knows how far
// it has emitted: every window that closes at or before upTo (a close
// time, ms, that is stream time minus grace) has been emitted. upTo is
// kept in a logged store, so it survives restarts and moves with the task.
// With CloseIdleAfter it also tracks when stream time last moved.
type finals struct {
	kv   state.KeyValueStore
	upTo int64

	idle       time.Duration
	grace      int64
	lastMoved  time.Time
	lastStream int64
}

// open loads upTo from the store.
func (f *finals) open(ctx interface {
	Store(string) (state.Store, error)
}, store string, idle time.Duration, grace time.Duration) error {
	kv, err := topology.KeyValueStore(ctx, store)
	if err != nil {
		return err
	}
	f.kv, f.upTo, f.idle, f.grace, f.lastStream = kv, noneEmitted, idle, grace.Milliseconds(), noneEmitted
	b, err := kv.Get(emittedKey)
	if err != nil {
		return err
	}
	if b != nil {
		if f.upTo, err = serde.Int64().Decode(b); err != nil {
			return fmt.Errorf("store %q: %w", store, err)
		}
	}
	return nil
}

// prepare readies a windowed aggregation for record r: a record with a
// null key or value is skipped and counted (false). It returns the close
// time: stream time minus grace. With EmitFinal (f not nil) it first emits
// what that closes, before the record's put, which may expire a window
// (retention runs from the newest one) in the same step that closes it.
func prepare[K, V, KO, VO any](ctx topology.Context[KO, VO], f *finals, nilKey null.Checker[K], nilVal null.Checker[V], r topology.Record[K, V], grace time.Duration, emit func(int64) error) (closeTime int64, ok bool, err error) {
	switch {
	case nilKey.IsNil(r.Key):
		ctx.SkipRecord("null key")
		return 0, false, nil
	case nilVal.IsNil(r.Value):
		ctx.SkipRecord("null value")
		return 0, false, nil
	}
	st := ctx.StreamTime().UnixMilli()
	closeTime = st - grace.Milliseconds()
	if f == nil {
		return closeTime, true, nil
	}
	f.observe(st, ctx.WallClock)
	if err := emit(closeTime); err != nil {
		return 0, false, err
	}
	return closeTime, true, nil
}

// every is how often the idle check runs, if CloseIdleAfter is set.
func (f *finals) every() time.Duration { return min(f.idle, time.Second) }

// observe notes stream time (ms) at wall-clock time now, for CloseIdleAfter.
func (f *finals) observe(streamTime int64, now func() time.Time) {
	if f.idle > 0 && streamTime > f.lastStream {
		f.lastStream, f.lastMoved = streamTime, now()
	}
}

// idleClose returns the close time reached by letting stream time run on
// with the clock since it stood still, once it has for the idle time.
func (f *finals) idleClose(now time.Time) (int64, bool) {
	if f.lastStream == noneEmitted {
		return 0, false // no record yet: no time to run on from
	}
	idle := now.Sub(f.lastMoved)
	if idle < f.idle {
		return 0, false
	}
	return f.lastStream + idle.Milliseconds() - f.grace, true
}

// advance emits, by calling emit(from, to), the windows that close in
// (from, to] = (upTo, closeTime], if closeTime is past upTo, then records
// how far it got.
func (f *finals) advance(closeTime int64, emit func(from, to int64) error) error {
	if closeTime <= f.upTo {
		return nil
	}
	if err := emit(f.upTo, closeTime); err != nil {
		return err
	}
	b, err := serde.Int64().Encode(closeTime)
	if err != nil {
		return err
	}
	if err := f.kv.Put(emittedKey, b); err != nil {
		return err
	}
	f.upTo = closeTime
	return nil
}
