package stream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/riffle-streams/riffle/internal/null"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/topology"
)

// JoinWindows says which records of two streams a windowed join pairs, and
// how long it waits for records that come out of order.
//
// A record of the left stream at time t and a record of the right stream
// at time t' with the same key are joined when
//
//	t - Before <= t' <= t + After
//
// both ends included. Seen from the right record, the left one must be in
// [t' - After, t' + Before]. Before or After may be negative (to ask for
// the right record to come at least some time after or before the left
// one), but not both so far that the window is empty: Before + After must
// be at least zero. Times count in milliseconds, as in Kafka; finer parts
// of a duration are dropped.
//
// # Grace and late records
//
// A record's window closes once stream time (the task's largest event time
// so far) is past the end of the window plus Grace: t + After + Grace for a
// left record, t' + Before + Grace for a right one. A record that arrives
// after its window has closed is late: it is dropped, counted and logged
// (reason "late record"), as [TimeWindows] do. For lateness a window never
// ends before its record: with a negative After, a left record is late
// only once t + Grace is behind stream time (likewise Before for a right
// record), though its window may close, and the record be emitted
// unmatched, before that.
//
// Stream time is the task's, as for windowed aggregations: records of the
// task's other inputs move it too.
//
// In a left or outer join, a record that found no match is emitted with
// the other side absent once its window has closed, and only then; see
// [LeftJoin].
type JoinWindows struct {
	// Before is how far before a left record's time a right record may
	// be to join it.
	Before time.Duration
	// After is how far after a left record's time a right record may be
	// to join it.
	After time.Duration
	// Grace is how long after a record's window has ended a record may
	// still arrive out of order and be joined.
	Grace time.Duration
}

// JoinTimeDifference returns symmetric join windows: records join when
// their times differ by at most d, either way, with grace for records that
// come out of order. Grace must be given: zero means none.
func JoinTimeDifference(d, grace time.Duration) JoinWindows {
	return JoinWindows{Before: d, After: d, Grace: grace}
}

func (w JoinWindows) validate() error {
	switch {
	case w.Before+w.After < 0:
		return fmt.Errorf("join window [-%v, +%v] is empty: Before + After must be at least zero", w.Before, w.After)
	case w.Grace < 0:
		return fmt.Errorf("grace %v is negative", w.Grace)
	}
	return nil
}

// retention is how long each side's window store keeps a record after its
// time: long enough for every record that is not late to find every
// record it joins.
func (w JoinWindows) retention() time.Duration {
	return max(max(w.Before, 0)+max(w.After, 0)+w.Grace, time.Millisecond)
}

// retentionOf says what retention is made of, for errors.
func (w JoinWindows) retentionOf() string {
	return fmt.Sprintf("max(before, 0) %v + max(after, 0) %v + grace %v, at least 1ms", max(w.Before, 0), max(w.After, 0), w.Grace)
}

// Join joins two streams on their keys, within windows of time (an inner
// join): for every pair of a left record at t and a right record at t'
// with equal keys and t - w.Before <= t' <= t + w.After (see
// [JoinWindows]), it emits joiner(key, left value, right value) once, when
// the later of the two arrives, with the later of the two times as its
// timestamp (and the arriving record's headers). Records arrive in any
// order; each is kept until no record that is not late can still join it.
// A record's matches are emitted in order of their time, then arrival.
//
// Each side is kept in a window store (logged, so that it moves with its
// task): "<name>-this" holds the left records, "<name>-other" the right
// ones, each for max(Before, 0) + max(After, 0) + Grace. Records with the
// same key and time are all kept. [Materialized] replaces the stores' name
// prefix (the join's name by default) and takes options for all of them,
// such as state.InMemory; state.WithRetention may keep records longer, and
// a shorter retention fails Build. [Named] names the join; otherwise it is
// named "<left>-join".
//
// If a side was re-keyed upstream, it is first repartitioned through
// "<name>-left-repartition" or "<name>-right-repartition", so that each
// key is joined in the task that owns it on both sides; that topic takes
// the partition count of the join's other input. The two inputs must be
// co-partitioned: the App checks, when it starts, that their topics have
// the same partition count.
//
// The key's and each side's value serdes come from the streams (or by
// type; [WithKeySerde] sets the key's); if one is missing, Build fails
// naming the join. [WithValueSerde] sets the result's serde.
//
// A record with a null key or a null value (for types that have a nil) is
// skipped and counted ("null key", "null value"). A late record is
// dropped and counted ("late record"). Stream time is the task's, as for
// windowed aggregations.
func Join[K, V1, V2, VR any](left Stream[K, V1], right Stream[K, V2], joiner func(K, V1, V2) VR, w JoinWindows, opts ...Option) Stream[K, VR] {
	o := collect(opts)
	name := o.nameFor(left.b, left.node, "join")
	checkFn(left.b, name, joiner == nil)
	return windowJoin(left, right, w, name, o, sjInner, func(k K, l V1, _ bool, r V2, _ bool) VR { return joiner(k, l, r) })
}

// LeftJoin joins two streams on their keys within windows of time, as
// [Join] does, and also emits each left record that joins no right record,
// as joiner(key, left value, Maybe{OK: false}), so that every left record
// gives at least one result.
//
// Such a null-joined result is emitted only when the left record's window
// has closed (stream time is past t + After + Grace), with the left
// record's time as its timestamp and no headers, and only if no right
// record joined it by then: never early, never as well as a match, and
// exactly once. Until then the left record also waits in a key-value store
// "<name>-outer", logged, so a restart or a rebalance neither loses nor
// repeats it (after a crash it may repeat, as at-least-once allows). Once
// a left record has been emitted so, it is final: a right record that
// arrives later still inside its window (possible when Before > 0, as the
// right record's own window closes later) is not joined with it, where
// Kafka Streams would emit that match as well.
//
// The results of a closed window are emitted when the next record reaches
// the join after stream time passed the close, before that record is
// joined, in the order the windows close. A join whose input stops
// therefore holds its last unmatched records until more records come, as
// in Kafka Streams.
//
// A late left record is dropped and counted, not emitted (Kafka Streams
// emits it at once, unmatched). Everything else is as for [Join]; it is
// named "<left>-left-join" unless [Named].
func LeftJoin[K, V1, V2, VR any](left Stream[K, V1], right Stream[K, V2], joiner func(K, V1, Maybe[V2]) VR, w JoinWindows, opts ...Option) Stream[K, VR] {
	o := collect(opts)
	name := o.nameFor(left.b, left.node, "left-join")
	checkFn(left.b, name, joiner == nil)
	return windowJoin(left, right, w, name, o, sjLeftJoin, func(k K, l V1, _ bool, r V2, hasR bool) VR {
		return joiner(k, l, Maybe[V2]{Value: r, OK: hasR})
	})
}

// OuterJoin joins two streams on their keys within windows of time, as
// [Join] does, and also emits every record of either side that joins no
// record of the other, with the other side absent (Maybe{OK: false}), once
// its window has closed: a left record at t once stream time is past
// t + After + Grace, a right record at t' once it is past t' + Before +
// Grace. Both wait in the key-value store "<name>-outer". The rules of
// [LeftJoin] apply to each side: null-joined results come only when the
// window closes, exactly once, never as well as a match.
//
// It is named "<left>-outer-join" unless [Named].
func OuterJoin[K, V1, V2, VR any](left Stream[K, V1], right Stream[K, V2], joiner func(K, Maybe[V1], Maybe[V2]) VR, w JoinWindows, opts ...Option) Stream[K, VR] {
	o := collect(opts)
	name := o.nameFor(left.b, left.node, "outer-join")
	checkFn(left.b, name, joiner == nil)
	return windowJoin(left, right, w, name, o, sjOuterJoin, func(k K, l V1, hasL bool, r V2, hasR bool) VR {
		return joiner(k, Maybe[V1]{Value: l, OK: hasL}, Maybe[V2]{Value: r, OK: hasR})
	})
}

// sjKind is the kind of a stream–stream join: inner, left or outer.
type sjKind int

const (
	sjInner sjKind = iota
	sjLeftJoin
	sjOuterJoin
)

// nullJoins reports whether records of side (0 left, 1 right) that find
// no match are emitted with the other side absent.
func (k sjKind) nullJoins(side byte) bool {
	return k == sjOuterJoin || (k == sjLeftJoin && side == sjLeft)
}

// The sides of a stream–stream join.
const (
	sjLeft  byte = 0
	sjRight byte = 1
)

// windowJoin adds a stream–stream join named name: a processor on each
// side, "<name>-left" and "<name>-right", that tags its records with their
// side, and the join processor, name, that reads both and owns the stores.
// One processor for both sides keeps one stream time and one view of the
// stores, so no state is shared between processors.
func windowJoin[K, V1, V2, VR any](left Stream[K, V1], right Stream[K, V2], w JoinWindows, name string, o options, kind sjKind, join func(K, V1, bool, V2, bool) VR) Stream[K, VR] {
	b := left.b
	out := Stream[K, VR]{b: b, node: name}
	if right.b != b {
		b.AddError(fmt.Errorf("stream: join %q: the streams come from different builders", name))
		return out
	}
	werr := w.validate()
	if werr != nil {
		b.AddError(fmt.Errorf("stream: join %q: %w", name, werr))
	}
	op := fmt.Sprintf("join %q", name)
	known := left.keys
	if known == nil {
		known = right.keys
	}
	ks := serdeFor[K](b, o.keySerde, known, op, "key")
	ls := serdeFor[V1](b, nil, left.values, op, "left value")
	rs := serdeFor[V2](b, nil, right.values, op, "right value")
	out.keys = ks
	out.values = outSerde[VR](b, o.valueSerde, left.values, name, "value")
	if ks == nil || ls == nil || rs == nil || werr != nil {
		return out
	}
	left.keys, left.values = ks, ls
	right.keys, right.values = ks, rs
	lin := left.keyedFor(name + "-left")
	rin := right.keyedFor(name + "-right")

	base := o.store
	if base == "" {
		base = name
	}
	ret := w.retention()
	this := state.Window(base+"-this", ret, o.storeOpts...)
	other := state.Window(base+"-other", ret, o.storeOpts...)
	// Both sides take the same options: one check, naming both stores.
	if this.Retention < ret {
		b.AddError(fmt.Errorf("stream: join %q: stores %q and %q: retention %v is shorter than the %v the join window needs (%s)",
			name, this.Name, other.Name, this.Retention, ret, w.retentionOf()))
		this.Retention, other.Retention = ret, ret
	}
	outer := ""
	if kind != sjInner {
		outer = base + "-outer"
	}
	topology.AddProcessor(b, name+"-left", func() topology.Processor[K, V1, K, sjInput[V1, V2]] {
		return &sjTag[K, V1, V1, V2]{tag: func(v V1) sjInput[V1, V2] { return sjInput[V1, V2]{l: v} }}
	}, lin.node)
	topology.AddProcessor(b, name+"-right", func() topology.Processor[K, V2, K, sjInput[V1, V2]] {
		return &sjTag[K, V2, V1, V2]{tag: func(v V2) sjInput[V1, V2] { return sjInput[V1, V2]{right: true, r: v} }}
	}, rin.node)
	before, after, grace := w.Before.Milliseconds(), w.After.Milliseconds(), w.Grace.Milliseconds()
	topology.AddProcessor(b, name, func() topology.Processor[K, sjInput[V1, V2], K, VR] {
		return &windowJoinProc[K, V1, V2, VR]{
			stores: [2]string{this.Name, other.Name}, outerName: outer,
			keys: ks, lvals: ls, rvals: rs,
			look: [2]int64{after, before}, before: before, after: after, grace: grace,
			kind: kind, join: join,
		}
	}, name+"-left", name+"-right")
	b.AddStore(this, name)
	b.AddStore(other, name)
	if outer != "" {
		b.AddStore(state.KeyValue(outer, o.besideWindows().storeOpts...), name)
	}
	return out
}

// sjInput is a record of either side of a join: the join processor has one
// input type, so each side's records reach it tagged.
type sjInput[V1, V2 any] struct {
	right bool
	l     V1
	r     V2
}

// sjTag tags each record of one side of a join, of value type V, with its
// side.
type sjTag[K, V, V1, V2 any] struct {
	ctx topology.Context[K, sjInput[V1, V2]]
	tag func(V) sjInput[V1, V2]
}

func (p *sjTag[K, V, V1, V2]) Init(ctx topology.Context[K, sjInput[V1, V2]]) error {
	p.ctx = ctx
	return nil
}

func (p *sjTag[K, V, V1, V2]) Close() error { return nil }

func (p *sjTag[K, V, V1, V2]) Process(r topology.Record[K, V]) error {
	return p.ctx.Forward(topology.Record[K, sjInput[V1, V2]]{Key: r.Key, Value: p.tag(r.Value), Timestamp: r.Timestamp, Headers: r.Headers})
}

// windowJoinProc is the join processor: each record is looked up in the
// other side's window store, joined with what it finds, and added to its
// own side's store.
//
// # Stores
//
// Side stores ("<name>-this" for left records, "<name>-other" for right
// ones) are window stores keyed by the record's key and time. Records of
// one side with the same key and time form a group, kept in one window:
// for each record, in arrival order, a flags byte, then its value as a
// uvarint length and the bytes. Flag sjUnmatched says the record has
// found no match yet and waits in the outer store, or, once its window has
// closed, was emitted from it. The records of a group share their window,
// so while it is open, its unmatched records all wait in one outer entry;
// once it has closed, all were emitted. A record that finds an open group
// joins all its records, clears their flags and removes the outer entry; a
// record that finds a closed group joins only the records that were
// matched before, as the others' results are out already. (Records that
// are not late never find a closed group still waiting: each record first
// emits every group closed by stream time. A record may join a closed
// group, as a new record of it, only with a negative Before or After:
// otherwise a group closes no sooner than its records become late.)
//
// Stream time, and minClose, live in memory only: after a restart they
// start again from the first record, as in Kafka Streams.
//
// The outer store (left and outer joins) holds, for each group, its
// unmatched records while they wait for their window to close. Its key is
//
//	close time (8 bytes, sortable) | side (1) | time (8, sortable) | key
//
// so a scan from the start meets windows in the order they close and
// stops at the first still open; its value is the records' values, each a
// uvarint length and the bytes, in arrival order.
//
// These formats are Riffle's own; they are not Kafka Streams'.
type windowJoinProc[K, V1, V2, VR any] struct {
	ctx       topology.Context[K, VR]
	stores    [2]string
	outerName string
	keys      serde.Serde[K]
	lvals     serde.Serde[V1]
	rvals     serde.Serde[V2]
	// look is how far ahead a record of each side can be joined: After
	// for a left record, Before for a right one (ms).
	look                 [2]int64
	before, after, grace int64
	kind                 sjKind
	join                 func(K, V1, bool, V2, bool) VR

	side  [2]state.WindowStore
	outer state.KeyValueStore // nil for an inner join

	nilKey null.Checker[K]
	nilL   null.Checker[V1]
	nilR   null.Checker[V2]

	// now is the join's stream time (ms): the task's, or the latest record
	// time the join has seen if that is later.
	now int64
	// minClose is at most the earliest close time in the outer store:
	// nothing closes before stream time passes it. It starts unknown
	// (math.MinInt64), as after a restart.
	minClose int64

	groups []sjGroup // the groups a record matches, reused
	arena  []byte    // their bytes, reused
	kbuf   []byte    // an outer key, reused
	vbuf   []byte    // an encoded group, reused
}

// sjGroup is a group of the other side a record matches: its time and its
// stored bytes, arena[off:end].
type sjGroup struct {
	t        int64
	off, end int
}

// sjUnmatched is the flag of a record that has found no match yet.
const sjUnmatched byte = 1

func (p *windowJoinProc[K, V1, V2, VR]) Init(ctx topology.Context[K, VR]) error {
	p.ctx = ctx
	for i, name := range p.stores {
		ws, err := openWindowStore(ctx, name)
		if err != nil {
			return err
		}
		p.side[i] = ws
	}
	if p.outerName != "" {
		kv, err := topology.KeyValueStore(ctx, p.outerName)
		if err != nil {
			return err
		}
		p.outer = kv
	}
	p.nilKey, p.nilL, p.nilR = null.For[K](), null.For[V1](), null.For[V2]()
	p.now, p.minClose = math.MinInt64, math.MinInt64
	return nil
}

func (p *windowJoinProc[K, V1, V2, VR]) Close() error { return nil }

// closeAt returns when the window of a record of side at t closes: it is
// closed once stream time is past the returned time.
func (p *windowJoinProc[K, V1, V2, VR]) closeAt(side byte, t int64) int64 {
	return t + p.look[side] + p.grace
}

func (p *windowJoinProc[K, V1, V2, VR]) Process(r topology.Record[K, sjInput[V1, V2]]) error {
	t := r.Timestamp.UnixMilli()
	if st := p.ctx.StreamTime(); !st.IsZero() {
		p.now = max(p.now, st.UnixMilli())
	}
	p.now = max(p.now, t)
	// Emit what has closed before anything else, so that every group
	// whose window has closed and that found no match has been emitted:
	// the lookup below relies on it.
	if p.outer != nil && p.now > p.minClose {
		if err := p.emitClosed(); err != nil {
			return err
		}
	}
	side := sjLeft
	if r.Value.right {
		side = sjRight
	}
	switch {
	case p.nilKey.IsNil(r.Key):
		p.ctx.SkipRecord("null key")
		return nil
	case side == sjLeft && p.nilL.IsNil(r.Value.l), side == sjRight && p.nilR.IsNil(r.Value.r):
		p.ctx.SkipRecord("null value")
		return nil
	}
	if t+max(p.look[side], 0)+p.grace < p.now {
		p.ctx.SkipRecord("late record")
		return nil
	}
	kb, err := p.keys.Encode(r.Key)
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	if kb == nil {
		return errors.New("encode key: the key serde gave null bytes for a key that is not nil")
	}
	var vb []byte
	if side == sjLeft {
		vb, err = p.lvals.Encode(r.Value.l)
	} else {
		vb, err = p.rvals.Encode(r.Value.r)
	}
	if err != nil {
		return fmt.Errorf("encode value: %w", err)
	}
	matched, err := p.joinOther(r, side, kb, t)
	if err != nil {
		return err
	}
	return p.keep(r, side, kb, t, vb, matched)
}

// joinOther joins the record, of side at t, with the groups of the other
// side in its window, and reports whether it joined any.
func (p *windowJoinProc[K, V1, V2, VR]) joinOther(r topology.Record[K, sjInput[V1, V2]], side byte, kb []byte, t int64) (bool, error) {
	oside := 1 - side
	from, to := t-p.before, t+p.after
	if side == sjRight {
		from, to = t-p.after, t+p.before
	}
	store := p.side[oside]
	it, err := store.FetchRange(kb, from, to)
	if err != nil {
		return false, err
	}
	p.groups, p.arena = p.groups[:0], p.arena[:0]
	for it.Next() {
		off := len(p.arena)
		p.arena = append(p.arena, it.Value()...)
		p.groups = append(p.groups, sjGroup{t: it.Start(), off: off, end: len(p.arena)})
	}
	if err := it.Err(); err != nil {
		it.Close()
		return false, err
	}
	if err := it.Close(); err != nil {
		return false, err
	}
	matched := false
	for _, g := range p.groups {
		enc := p.arena[g.off:g.end]
		// Unmatched records of the group share its close time: while it is
		// open, all wait in the outer store; once it has closed, all were
		// emitted with this side absent and are final.
		closed := p.closeAt(oside, g.t) < p.now
		ts := r.Timestamp
		if g.t > t {
			ts = time.UnixMilli(g.t)
		}
		cleared := false
		err := sjEachRecord(enc, func(flag *byte, ob []byte) error {
			if *flag&sjUnmatched != 0 {
				if closed {
					return nil
				}
				*flag &^= sjUnmatched
				cleared = true
			}
			var out VR
			if side == sjLeft {
				v, err := p.rvals.Decode(ob)
				if err != nil {
					return fmt.Errorf("decode a right value of store %q: %w", p.stores[oside], err)
				}
				out = p.join(r.Key, r.Value.l, true, v, true)
			} else {
				v, err := p.lvals.Decode(ob)
				if err != nil {
					return fmt.Errorf("decode a left value of store %q: %w", p.stores[oside], err)
				}
				out = p.join(r.Key, v, true, r.Value.r, true)
			}
			matched = true
			return p.ctx.Forward(topology.Record[K, VR]{Key: r.Key, Value: out, Timestamp: ts, Headers: r.Headers})
		})
		if err != nil {
			return false, fmt.Errorf("store %q, window %d: %w", p.stores[oside], g.t, err)
		}
		if cleared {
			// They wait in the outer store no more.
			if _, err := p.outer.Delete(p.outerKey(oside, g.t, kb)); err != nil {
				return false, err
			}
			if err := store.Put(kb, g.t, enc); err != nil {
				return false, err
			}
		}
	}
	return matched, nil
}

// keep adds the record, of side at t, to its side's store, and if it is
// to be emitted unmatched, to the outer store; or emits it at once if its
// window has closed already (possible with a negative Before or After).
func (p *windowJoinProc[K, V1, V2, VR]) keep(r topology.Record[K, sjInput[V1, V2]], side byte, kb []byte, t int64, vb []byte, matched bool) error {
	store := p.side[side]
	old, err := store.Fetch(kb, t)
	if err != nil {
		return err
	}
	unmatched := !matched && p.kind.nullJoins(side)
	flag := byte(0)
	if unmatched {
		flag = sjUnmatched
	}
	p.vbuf = append(p.vbuf[:0], old...)
	p.vbuf = sjAppend(append(p.vbuf, flag), vb)
	if err := store.Put(kb, t, p.vbuf); err != nil {
		return err
	}
	if !unmatched {
		return nil
	}
	closes := p.closeAt(side, t)
	if closes < p.now {
		return p.emitUnmatched(r.Key, side, r.Value.l, r.Value.r, r.Timestamp)
	}
	key := p.outerKey(side, t, kb)
	prev, err := p.outer.Get(key)
	if err != nil {
		return err
	}
	p.vbuf = append(p.vbuf[:0], prev...)
	p.vbuf = sjAppend(p.vbuf, vb)
	if err := p.outer.Put(key, p.vbuf); err != nil {
		return err
	}
	p.minClose = min(p.minClose, closes)
	return nil
}

// emitUnmatched emits a record that joined nothing, with the other side
// absent.
func (p *windowJoinProc[K, V1, V2, VR]) emitUnmatched(k K, side byte, l V1, rv V2, ts time.Time) error {
	var out VR
	if side == sjLeft {
		var zero V2
		out = p.join(k, l, true, zero, false)
	} else {
		var zero V1
		out = p.join(k, zero, false, rv, true)
	}
	return p.ctx.Forward(topology.Record[K, VR]{Key: k, Value: out, Timestamp: ts})
}

// sjClosed is a group of the outer store whose window has closed.
type sjClosed struct {
	key      []byte
	off, end int // its values, in arena
}

// emitClosed emits, in the order their windows close, the groups of the
// outer store whose windows have closed (close time before stream time),
// each record with the other side absent, and removes them.
func (p *windowJoinProc[K, V1, V2, VR]) emitClosed() error {
	it, err := p.outer.Range(nil, nil)
	if err != nil {
		return err
	}
	var closed []sjClosed
	p.arena = p.arena[:0]
	next := int64(math.MaxInt64)
	for it.Next() {
		k := it.Key()
		if len(k) < 17 {
			it.Close()
			return fmt.Errorf("store %q: key of %d bytes: want at least 17", p.outerName, len(k))
		}
		if c := sjInt64(k); c >= p.now {
			next = c
			break
		}
		off := len(p.arena)
		p.arena = append(p.arena, it.Value()...)
		closed = append(closed, sjClosed{key: append([]byte(nil), k...), off: off, end: len(p.arena)})
	}
	if err := it.Err(); err != nil {
		it.Close()
		return err
	}
	if err := it.Close(); err != nil {
		return err
	}
	for _, c := range closed {
		side, t, kb := c.key[8], sjInt64(c.key[9:]), c.key[17:]
		k, err := p.keys.Decode(kb)
		if err != nil {
			return fmt.Errorf("decode a key of store %q: %w", p.outerName, err)
		}
		ts := time.UnixMilli(t)
		err = sjEach(p.arena[c.off:c.end], func(vb []byte) error {
			var l V1
			var rv V2
			var err error
			if side == sjLeft {
				l, err = p.lvals.Decode(vb)
			} else {
				rv, err = p.rvals.Decode(vb)
			}
			if err != nil {
				return fmt.Errorf("decode a value of store %q: %w", p.outerName, err)
			}
			return p.emitUnmatched(k, side, l, rv, ts)
		})
		if err != nil {
			return err
		}
		if _, err := p.outer.Delete(c.key); err != nil {
			return err
		}
	}
	p.minClose = next
	return nil
}

// outerKey returns, in kbuf, the outer store's key of the group of side
// at t with key kb.
func (p *windowJoinProc[K, V1, V2, VR]) outerKey(side byte, t int64, kb []byte) []byte {
	b := sjAppendInt64(p.kbuf[:0], p.closeAt(side, t))
	b = append(b, side)
	b = sjAppendInt64(b, t)
	b = append(b, kb...)
	p.kbuf = b
	return b
}

// sjAppendInt64 appends v as 8 bytes big-endian with the sign bit flipped,
// so that the bytes sort as the numbers do.
func sjAppendInt64(dst []byte, v int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(v)^(1<<63))
}

// sjInt64 undoes sjAppendInt64; b has at least 8 bytes.
func sjInt64(b []byte) int64 { return int64(binary.BigEndian.Uint64(b) ^ (1 << 63)) }

// sjAppend appends a value to an encoded list: its length as a uvarint,
// then its bytes.
func sjAppend(dst, v []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(v)))
	return append(dst, v...)
}

// sjEachRecord calls fn with each record of a side store's group, in
// order: a pointer to its flags byte, which fn may change in place, and
// its value, valid during the call only.
func sjEachRecord(b []byte, fn func(flag *byte, v []byte) error) error {
	for len(b) > 0 {
		flag := &b[0]
		n, k := binary.Uvarint(b[1:])
		if k <= 0 || uint64(len(b)-1-k) < n {
			return errors.New("join store: corrupt entry")
		}
		start := 1 + k
		if err := fn(flag, b[start:start+int(n)]); err != nil {
			return err
		}
		b = b[start+int(n):]
	}
	return nil
}

// sjEach calls fn with each value of an outer store's group, in order. A
// value is valid during the call only.
func sjEach(b []byte, fn func([]byte) error) error {
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return errors.New("join store: corrupt entry")
		}
		if err := fn(b[k : k+int(n)]); err != nil {
			return err
		}
		b = b[k+int(n):]
	}
	return nil
}
