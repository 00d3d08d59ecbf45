package stream

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/riffle-streams/riffle/internal/null"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/table"
	"github.com/riffle-streams/riffle/topology"
)

// SlidingWindows are windows of a fixed time difference that slide with
// the records, as Kafka Streams defines them: two records are in a window
// together when their timestamps are at most TimeDifference apart. A window
// [start, start+TimeDifference] includes both its ends. Each record at t
// has its window [t-TimeDifference, t], and, if some record falls in
// (t, t+TimeDifference+1], the window [t+1, t+1+TimeDifference]; so every
// distinct set of records that fits in the time difference is aggregated
// once, and no window is empty.
//
// Unlike Kafka Streams, windows may start before the Unix epoch: a record
// at t < TimeDifference has its own window [t-TimeDifference, t], where
// Kafka Streams puts all such early records into [0, TimeDifference].
type SlidingWindows struct {
	// TimeDifference is the most two records' timestamps can differ by for
	// them to be in a window together: the windows' length.
	TimeDifference time.Duration
	// Grace is how long after a window's end a late record is still
	// applied.
	Grace time.Duration
}

// Sliding returns sliding windows of the time difference, with grace for
// late records. Grace must be given: zero means none.
//
// A sliding window, which includes its end, closes once stream time is
// past its end plus grace. (Kafka Streams closes it when stream time
// reaches that, so with no grace it drops the window of a record that is
// itself the newest; Riffle keeps it open for records at that instant.)
func Sliding(timeDifference, grace time.Duration) SlidingWindows {
	return SlidingWindows{TimeDifference: timeDifference, Grace: grace}
}

func (w SlidingWindows) length() time.Duration { return w.TimeDifference }
func (w SlidingWindows) grace() time.Duration  { return w.Grace }

// retention keeps, besides every window still open, the windows a new
// record's windows are derived from, up to 2×TimeDifference back.
func (w SlidingWindows) retention() time.Duration {
	return 2*w.TimeDifference + w.Grace + time.Millisecond
}

func (w SlidingWindows) retentionOf() string {
	return fmt.Sprintf("twice the time difference %v + grace %v + 1ms, to keep the windows new ones are copied from", w.TimeDifference, w.Grace)
}

func (w SlidingWindows) validate() error {
	switch {
	case w.TimeDifference < time.Millisecond:
		return fmt.Errorf("sliding window time difference %v is under 1ms", w.TimeDifference)
	case w.Grace < 0:
		return fmt.Errorf("grace %v is negative", w.Grace)
	}
	return nil
}

// slidingAggregate keeps the sliding windows of each key. Its store holds,
// for each window, the timestamp of the window's latest record (8 bytes
// big-endian) then the aggregate.
//
// A new record's windows are not folded from the records (which are not
// kept) but taken from windows that hold exactly the right records: with
// p the latest earlier record of the key and d the time difference,
//
//   - its left window [t-d, t], if new, holds what the window with the
//     latest end before t holds (which, when p >= t-d, is exactly the
//     records in [t-d, t)), plus the record; or the record alone;
//   - its right window [t+1, t+1+d], if new and not empty, holds what the
//     latest-starting window containing t held before the record (exactly
//     the records in (t, t+1+d]);
//   - p's right window [p+1, p+1+d], if new and t is in it, holds the
//     record alone (an earlier record in it would have made it already);
//   - every other window containing t adds the record.
type slidingAggregate[K, V, VA any] struct {
	ctx    topology.Context[Windowed[K], table.Change[VA]]
	store  string
	plan   windowedPlan[K, V]
	keys   serde.Serde[K]
	values serde.Serde[VA]
	w      SlidingWindows
	init   func() VA
	step   func(K, V, VA, bool) VA
	ws     state.WindowStore
	nilKey null.Checker[K]
	nilVal null.Checker[V]
	final  *finals

	seen []slidingWindow // the windows read for a record, reused
	vbuf []byte          // a window's stored bytes, reused: Put copies
}

// slidingWindow is a window read from the store.
type slidingWindow struct {
	start, maxTS int64
	agg          []byte // the encoded aggregate, owned
}

func (p *slidingAggregate[K, V, VA]) Init(ctx topology.Context[Windowed[K], table.Change[VA]]) error {
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

func (p *slidingAggregate[K, V, VA]) Close() error { return nil }

// slidingPrefix is the length of what a stored sliding window keeps before
// its aggregate: its latest record's timestamp.
const slidingPrefix = 8

// splitSliding splits a stored sliding window into its latest record's
// timestamp and its aggregate.
func splitSliding(b []byte) (int64, []byte, error) {
	if len(b) < slidingPrefix {
		return 0, nil, fmt.Errorf("sliding window entry of %d bytes: want at least %d", len(b), slidingPrefix)
	}
	return int64(binary.BigEndian.Uint64(b)), b[slidingPrefix:], nil
}

// decodeAgg decodes the aggregate of a stored sliding window.
func (p *slidingAggregate[K, V, VA]) decodeAgg(b []byte) (VA, error) {
	_, agg, err := splitSliding(b)
	if err != nil {
		var zero VA
		return zero, err
	}
	return p.values.Decode(agg)
}

func (p *slidingAggregate[K, V, VA]) Process(r topology.Record[K, V]) error {
	closeTime, ok, err := prepare(p.ctx, p.final, p.nilKey, p.nilVal, r, p.w.Grace, p.emitClosedAt)
	if !ok || err != nil {
		return err
	}
	if p.final != nil {
		// A window already emitted is closed, whatever stream time says.
		closeTime = max(closeTime, p.final.upTo)
	}
	t := r.Timestamp.UnixMilli()
	d := p.w.TimeDifference.Milliseconds()
	if t+1+d < closeTime {
		// Every window the record could be in, its right window included,
		// has closed.
		p.plan.late(p.ctx.SkipRecord, r.Key, r.Value, r.Timestamp)
		return nil
	}
	kb, err := p.keys.Encode(r.Key)
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	// Every window that can matter starts in [t-2d-1, t+1].
	if err := p.read(kb, t-2*d-1, t+1); err != nil {
		return err
	}
	var (
		prev                  = int64(noneEmitted) // the latest earlier record, if seen
		leftSrc, rightSrc     = -1, -1             // indexes in seen
		leftExists, rightHave bool
	)
	for i, w := range p.seen {
		end := w.start + d
		if w.maxTS < t {
			prev = max(prev, w.maxTS)
		}
		switch {
		case w.start == t+1:
			rightHave = true
		case end < t:
			leftSrc = i // the last one ends latest
		case w.start <= t: // contains t
			if end == t {
				leftExists = true
			}
			rightSrc = i // the last one starts latest
		}
	}
	// Update every open window that contains t, then make the new ones.
	for _, w := range p.seen {
		if w.start > t || w.start+d < t || w.start+d < closeTime {
			continue
		}
		agg, err := p.values.Decode(w.agg)
		if err != nil {
			return fmt.Errorf("decode the aggregate of window %d: %w", w.start, err)
		}
		if err := p.put(r, kb, w.start, max(w.maxTS, t), agg, true, true); err != nil {
			return err
		}
	}
	made := func(start int64) bool {
		for _, w := range p.seen {
			if w.start == start {
				return true
			}
		}
		return false
	}
	if !leftExists && t >= closeTime {
		var agg VA
		had := prev >= t-d && leftSrc >= 0
		if had {
			if agg, err = p.values.Decode(p.seen[leftSrc].agg); err != nil {
				return fmt.Errorf("decode the aggregate of window %d: %w", p.seen[leftSrc].start, err)
			}
		}
		if err := p.put(r, kb, t-d, t, agg, had, false); err != nil {
			return err
		}
		p.seen = append(p.seen, slidingWindow{start: t - d})
	}
	if !rightHave && t+1+d >= closeTime && rightSrc >= 0 && p.seen[rightSrc].maxTS > t {
		// The right window does not hold the record: it is a copy.
		src := p.seen[rightSrc]
		if err := p.putRaw(r, kb, t+1, src.maxTS, src.agg); err != nil {
			return err
		}
		p.seen = append(p.seen, slidingWindow{start: t + 1})
	}
	if prev != noneEmitted && prev >= t-d-1 && prev+1+d >= closeTime && !made(prev+1) {
		var zero VA
		if err := p.put(r, kb, prev+1, t, zero, false, false); err != nil {
			return err
		}
	}
	return nil
}

// read loads into seen the key's windows that start in [from, to].
func (p *slidingAggregate[K, V, VA]) read(kb []byte, from, to int64) error {
	p.seen = p.seen[:0]
	it, err := p.ws.FetchRange(kb, from, to)
	if err != nil {
		return err
	}
	defer it.Close()
	for it.Next() {
		maxTS, agg, err := splitSliding(it.Value())
		if err != nil {
			return fmt.Errorf("window %d: %w", it.Start(), err)
		}
		p.seen = append(p.seen, slidingWindow{start: it.Start(), maxTS: maxTS, agg: append([]byte(nil), agg...)})
	}
	return it.Err()
}

// put adds the record to agg (the aggregate so far, if had), stores it as
// the window at start with latest record maxTS, and forwards the change
// (old is whether agg was the window's value before).
func (p *slidingAggregate[K, V, VA]) put(r topology.Record[K, V], kb []byte, start, maxTS int64, agg VA, had, old bool) error {
	prev := agg
	if !had && p.init != nil {
		agg = p.init()
	}
	agg = p.step(r.Key, r.Value, agg, had)
	vb, err := p.values.Encode(agg)
	if err != nil {
		return fmt.Errorf("encode the aggregate: %w", err)
	}
	if err := p.save(kb, start, maxTS, vb); err != nil {
		return err
	}
	if p.final != nil {
		return nil
	}
	var oldV VA
	if old {
		oldV = prev
	}
	return p.forward(r, start, table.Change[VA]{New: agg, HasNew: true, Old: oldV, HasOld: old})
}

// putRaw stores a copy of an encoded aggregate as the window at start, and
// forwards it as a new window.
func (p *slidingAggregate[K, V, VA]) putRaw(r topology.Record[K, V], kb []byte, start, maxTS int64, enc []byte) error {
	if err := p.save(kb, start, maxTS, enc); err != nil {
		return err
	}
	if p.final != nil {
		return nil
	}
	agg, err := p.values.Decode(enc)
	if err != nil {
		return fmt.Errorf("decode the aggregate of window %d: %w", start, err)
	}
	return p.forward(r, start, table.Change[VA]{New: agg, HasNew: true})
}

func (p *slidingAggregate[K, V, VA]) save(kb []byte, start, maxTS int64, agg []byte) error {
	p.vbuf = append(binary.BigEndian.AppendUint64(p.vbuf[:0], uint64(maxTS)), agg...)
	return p.ws.Put(kb, start, p.vbuf)
}

func (p *slidingAggregate[K, V, VA]) forward(r topology.Record[K, V], start int64, c table.Change[VA]) error {
	st := time.UnixMilli(start)
	return p.ctx.Forward(topology.Record[Windowed[K], table.Change[VA]]{
		Key:       Windowed[K]{Key: r.Key, Start: st, End: st.Add(p.w.TimeDifference)},
		Value:     c,
		Timestamp: r.Timestamp, Headers: r.Headers,
	})
}

// emitClosedAt emits, once each, the windows that end before closeTime
// (ms) and were not emitted yet, oldest first.
func (p *slidingAggregate[K, V, VA]) emitClosedAt(closeTime int64) error {
	return p.final.advance(closeTime, func(from, to int64) error {
		return emitWindows(p.ctx, p.ws, p.keys, p.decodeAgg, from, to, p.w.TimeDifference+time.Millisecond, p.w.TimeDifference, p.w.TimeDifference)
	})
}
