package stream

import (
	"fmt"
	"time"

	"github.com/riffle-streams/riffle/internal/null"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/table"
	"github.com/riffle-streams/riffle/topology"
)

// SessionWindows are windows of activity: a key's session grows while its
// records come less than Gap apart, and two sessions merge when a record
// comes within Gap of both. A session [start, end] includes both ends: its
// first and last records' times.
//
// A session closes once stream time minus grace is past its end plus the
// gap: a record that could join it would be late. Then it is forgotten: a
// record that comes later within the gap of it and of an open session (so
// not late) joins the open session only.
type SessionWindows struct {
	// Gap is the inactivity gap: records more than Gap apart are in
	// different sessions.
	Gap time.Duration
	// Grace is how long after a session could last have grown (its end
	// plus Gap) a late record is still applied.
	Grace time.Duration
}

// Sessions returns session windows with the inactivity gap, and grace for
// late records. Grace must be given: zero means none.
func Sessions(gap, grace time.Duration) SessionWindows {
	return SessionWindows{Gap: gap, Grace: grace}
}

// retention is how long the store keeps a session after its end, at
// least: until it can no longer grow, gap and grace after its end.
func (w SessionWindows) retention() time.Duration { return w.Gap + w.Grace + time.Millisecond }

func (w SessionWindows) validate() error {
	switch {
	case w.Gap < time.Millisecond:
		return fmt.Errorf("session inactivity gap %v is under 1ms", w.Gap)
	case w.Grace < 0:
		return fmt.Errorf("grace %v is negative", w.Grace)
	}
	return nil
}

// SessionWindowedSerde writes a session-windowed key as Kafka Streams'
// session-windowed serde does: the key's bytes, then the session's end and
// its start, each 8 bytes big-endian milliseconds.
func SessionWindowedSerde[K any](keys serde.Serde[K]) serde.Serde[Windowed[K]] {
	return sessionSerde[K]{keys: keys}
}

type sessionSerde[K any] struct{ keys serde.Serde[K] }

func (s sessionSerde[K]) String() string { return fmt.Sprintf("SessionWindowed(%v)", s.keys) }

func (s sessionSerde[K]) Encode(w Windowed[K]) ([]byte, error) {
	k, err := s.keys.Encode(w.Key)
	if err != nil {
		return nil, err
	}
	return state.SessionKey(k, w.Start.UnixMilli(), w.End.UnixMilli()), nil
}

func (s sessionSerde[K]) Decode(b []byte) (Windowed[K], error) {
	const want = "a key, an 8-byte end and an 8-byte start"
	if b == nil {
		return Windowed[K]{}, &serde.DecodeError{Serde: s.String(), Want: want, Got: -1, Err: serde.ErrNull}
	}
	kb, start, end, err := state.SplitSessionKey(b)
	if err != nil {
		return Windowed[K]{}, &serde.DecodeError{Serde: s.String(), Want: want, Got: len(b), Err: err}
	}
	k, err := s.keys.Decode(kb)
	if err != nil {
		return Windowed[K]{}, err
	}
	return Windowed[K]{Key: k, Start: time.UnixMilli(start), End: time.UnixMilli(end)}, nil
}

// SessionWindowedBy is a grouped stream cut into sessions, to be aggregated.
type SessionWindowedBy[K, V any] struct {
	g   *Grouped[K, V]
	w   SessionWindows
	err error
}

// SessionWindowedBy cuts the grouped records into sessions of activity.
func (g *Grouped[K, V]) SessionWindowedBy(w SessionWindows) *SessionWindowedBy[K, V] {
	return &SessionWindowedBy[K, V]{g: g, w: w, err: w.validate()}
}

// Count counts each key's records per session. When a record merges
// sessions, the merged session's count is the sum of theirs, plus one.
func (sb *SessionWindowedBy[K, V]) Count(opts ...Option) table.Table[Windowed[K], int64] {
	o := collect(append([]Option{WithValueSerde(serde.Int64())}, opts...))
	name := o.nameFor(sb.g.s.b, sb.g.s.node, "session-count")
	return sessionAggregate(sb, name, o, func() int64 { return 0 },
		func(_ K, _ V, n int64, _ bool) int64 { return n + 1 },
		func(_ K, a, b int64, _ bool) int64 { return a + b })
}

// Reduce combines each key's values per session with fn; a session's first
// value is its aggregate, and merged sessions are combined with fn too.
func (sb *SessionWindowedBy[K, V]) Reduce(fn func(agg, v V) V, opts ...Option) table.Table[Windowed[K], V] {
	o := collect(opts)
	if o.valueSerde == nil && sb.g.values != nil {
		o.valueSerde = sb.g.values
	}
	name := o.nameFor(sb.g.s.b, sb.g.s.node, "session-reduce")
	checkFn(sb.g.s.b, name, fn == nil)
	return sessionAggregate(sb, name, o, nil,
		func(_ K, v V, agg V, had bool) V {
			if !had {
				return v
			}
			return fn(agg, v)
		},
		func(_ K, agg, other V, had bool) V {
			if !had {
				return other
			}
			return fn(agg, other)
		})
}

// SessionAggregate folds each key's values per session: init starts a
// session's aggregate, fn adds a value, and merge combines the aggregates
// of two sessions a record joins into one.
func SessionAggregate[K, V, VA any](sb *SessionWindowedBy[K, V], init func() VA, fn func(K, V, VA) VA, merge func(k K, agg1, agg2 VA) VA, opts ...Option) table.Table[Windowed[K], VA] {
	o := collect(opts)
	name := o.nameFor(sb.g.s.b, sb.g.s.node, "session-aggregate")
	checkFn(sb.g.s.b, name, init == nil || fn == nil || merge == nil)
	return sessionAggregate(sb, name, o, init,
		func(k K, v V, agg VA, _ bool) VA { return fn(k, v, agg) },
		func(k K, agg, other VA, _ bool) VA { return merge(k, agg, other) })
}

// sessionAggregate adds the aggregation name of sb. step adds a value to
// an aggregate, merge an aggregate to another; had says whether the
// aggregate they are given holds anything yet (for Reduce, which has no
// init).
func sessionAggregate[K, V, VA any](sb *SessionWindowedBy[K, V], name string, o options, init func() VA, step func(K, V, VA, bool) VA, merge func(K, VA, VA, bool) VA) table.Table[Windowed[K], VA] {
	b := sb.g.s.b
	in, vs, store, ok := windowedInput[K, V, VA](sb.g, "session", name, o, sb.err)
	if !ok {
		return table.FromNode[Windowed[K], VA](b, name, nil, vs, "")
	}
	ks := sb.g.keys
	spec := state.Session(store, sb.w.retention(), o.storeOpts...)
	spec = retentionAtLeast(b, fmt.Sprintf("session aggregation %q", name), spec, sb.w.retention(),
		fmt.Sprintf("gap %v + grace %v + 1ms", sb.w.Gap, sb.w.Grace))
	plan := planWindowed[K, V](b, name, spec.Name, o)
	w := sb.w
	topology.AddProcessor(b, name, func() topology.Processor[K, V, Windowed[K], table.Change[VA]] {
		return &sessionAggregator[K, V, VA]{store: spec.Name, plan: plan, keys: ks, values: vs, w: w, init: init, step: step, merge: merge}
	}, in.node)
	b.AddStore(spec, name)
	// Read through state.SessionOf, a session's value is the aggregate
	// alone: the session's start, kept before it, is taken off there.
	topology.Queryable(b, spec.Name, ks, vs)
	plan.addStores(b, name, o.besideWindows())
	return table.FromNode(b, name, SessionWindowedSerde(ks), vs, spec.Name)
}

// sessionAggregator merges each record into its key's sessions. A record
// at t joins every session that ends at or after t-gap and starts at or
// before t+gap; they become one session, from the earliest start to the
// latest end, whose aggregate merges theirs and adds the record. The
// sessions merged away are removed, and a deletion is forwarded for each.
//
// A session closes when stream time minus grace is past its end plus the
// gap: no record can join it then without being late.
type sessionAggregator[K, V, VA any] struct {
	ctx    topology.Context[Windowed[K], table.Change[VA]]
	store  string
	plan   windowedPlan[K, V]
	keys   serde.Serde[K]
	values serde.Serde[VA]
	w      SessionWindows
	init   func() VA
	step   func(K, V, VA, bool) VA
	merge  func(K, VA, VA, bool) VA
	ss     state.SessionStore
	nilKey null.Checker[K]
	nilVal null.Checker[V]
	final  *finals

	found []foundSession // the sessions a record joins, reused
}

type foundSession struct {
	start, end int64
	agg        []byte // owned
}

func (p *sessionAggregator[K, V, VA]) Init(ctx topology.Context[Windowed[K], table.Change[VA]]) error {
	p.ctx = ctx
	s, err := ctx.Store(p.store)
	if err != nil {
		return err
	}
	ss, ok := s.(state.SessionStore)
	if !ok {
		return fmt.Errorf("store %q is a %T, not a session store", p.store, s)
	}
	p.ss = ss
	p.nilKey, p.nilVal = null.For[K](), null.For[V]()
	p.final, err = openFinals(ctx, p.plan.emitted, p.plan.idle, p.w.Grace, p.emitClosedAt)
	return err
}

func (p *sessionAggregator[K, V, VA]) Close() error { return nil }

func (p *sessionAggregator[K, V, VA]) Process(r topology.Record[K, V]) error {
	closeTime, ok, err := prepare(p.ctx, p.final, p.nilKey, p.nilVal, r, p.w.Grace, p.emitClosedAt)
	if !ok || err != nil {
		return err
	}
	gap := p.w.Gap.Milliseconds()
	emittedEnd := int64(noneEmitted) // sessions ending before it were emitted
	if p.final != nil && p.final.upTo != noneEmitted {
		emittedEnd = p.final.upTo - gap
	}
	kb, err := p.keys.Encode(r.Key)
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	t := r.Timestamp.UnixMilli()
	if err := p.find(kb, t-gap, t+gap); err != nil {
		return err
	}
	start, end := t, t
	for _, s := range p.found {
		start, end = min(start, s.start), max(end, s.end)
	}
	late := end < closeTime || end < emittedEnd
	for _, s := range p.found {
		late = late || s.end < emittedEnd // would undo a final already out
	}
	if late {
		p.plan.late(p.ctx.SkipRecord, r.Key, r.Value, r.Timestamp)
		return nil
	}
	var (
		agg VA
		had bool
		// The session the merged one replaces in place (same start and
		// end), if any: an update of it, not a deletion and an insert.
		same    = -1
		sameAgg VA
	)
	if p.init != nil {
		agg = p.init()
	}
	for i, s := range p.found {
		v, err := p.values.Decode(s.agg)
		if err != nil {
			return fmt.Errorf("decode the aggregate of session [%d,%d]: %w", s.start, s.end, err)
		}
		agg, had = p.merge(r.Key, agg, v, had), true
		if s.start == start && s.end == end {
			same, sameAgg = i, v
			continue
		}
		if s.end != end {
			// Not overwritten by the merged session, which is kept by end.
			if err := p.ss.Put(kb, s.start, s.end, nil); err != nil {
				return err
			}
		}
		if p.final == nil {
			err := p.forward(r, s.start, s.end, table.Change[VA]{Old: v, HasOld: true})
			if err != nil {
				return err
			}
		}
	}
	agg = p.step(r.Key, r.Value, agg, had)
	vb, err := p.values.Encode(agg)
	if err != nil {
		return fmt.Errorf("encode the aggregate: %w", err)
	}
	if err := p.ss.Put(kb, start, end, vb); err != nil {
		return err
	}
	if p.final != nil {
		return nil
	}
	return p.forward(r, start, end, table.Change[VA]{New: agg, HasNew: true, Old: sameAgg, HasOld: same >= 0})
}

// find loads into found the key's sessions that end at or after
// earliestEnd and start at or before latestStart.
func (p *sessionAggregator[K, V, VA]) find(kb []byte, earliestEnd, latestStart int64) error {
	p.found = p.found[:0]
	it, err := p.ss.FindSessions(kb, earliestEnd, latestStart)
	if err != nil {
		return err
	}
	defer it.Close()
	for it.Next() {
		p.found = append(p.found, foundSession{start: it.Start(), end: it.End(), agg: append([]byte(nil), it.Value()...)})
	}
	return it.Err()
}

func (p *sessionAggregator[K, V, VA]) forward(r topology.Record[K, V], start, end int64, c table.Change[VA]) error {
	return p.ctx.Forward(topology.Record[Windowed[K], table.Change[VA]]{
		Key:       Windowed[K]{Key: r.Key, Start: time.UnixMilli(start), End: time.UnixMilli(end)},
		Value:     c,
		Timestamp: r.Timestamp, Headers: r.Headers,
	})
}

// emitClosedAt emits, once each, the sessions closed by closeTime (ms)
// that were not emitted yet, in order of end: those whose end plus gap is
// before it.
func (p *sessionAggregator[K, V, VA]) emitClosedAt(closeTime int64) error {
	return p.final.advance(closeTime, func(from, to int64) error {
		gap := p.w.Gap.Milliseconds()
		lo := int64(noneEmitted)
		if from != noneEmitted {
			lo = from - gap
		}
		it, err := p.ss.FetchAll(lo, to-gap-1)
		if err != nil {
			return err
		}
		defer it.Close()
		for it.Next() {
			k, err := p.keys.Decode(it.Key())
			if err != nil {
				return fmt.Errorf("decode the key of a closed session: %w", err)
			}
			v, err := p.values.Decode(it.Value())
			if err != nil {
				return fmt.Errorf("decode the aggregate of a closed session: %w", err)
			}
			err = p.ctx.Forward(topology.Record[Windowed[K], table.Change[VA]]{
				Key:       Windowed[K]{Key: k, Start: time.UnixMilli(it.Start()), End: time.UnixMilli(it.End())},
				Value:     table.Change[VA]{New: v, HasNew: true},
				Timestamp: time.UnixMilli(it.End()),
			})
			if err != nil {
				return err
			}
		}
		return it.Err()
	})
}
