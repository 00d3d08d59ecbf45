package stream_test

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/riffle-streams/riffle/internal/testutil"
	"github.com/riffle-streams/riffle/riffletest"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/stream"
	"github.com/riffle-streams/riffle/topology"
)

// sjKind names a stream–stream join in these tests.
type sjKind string

const (
	sjInner sjKind = "inner"
	sjLeft  sjKind = "left"
	sjOuter sjKind = "outer"
)

// sjAbsent shows a side of a result that is absent.
const sjAbsent = "-"

// sjAdd joins the "left" and "right" topics (string keys and values) by
// kind, each result "<left>/<right>", an absent side "-".
func sjAdd(b *topology.Builder, kind sjKind, l, r stream.Stream[string, string], w stream.JoinWindows, opts ...stream.Option) stream.Stream[string, string] {
	show := func(m stream.Maybe[string]) string {
		if !m.OK {
			return sjAbsent
		}
		return m.Value
	}
	switch kind {
	case sjLeft:
		return stream.LeftJoin(l, r, func(_ string, lv string, rv stream.Maybe[string]) string { return lv + "/" + show(rv) }, w, opts...)
	case sjOuter:
		return stream.OuterJoin(l, r, func(_ string, lv, rv stream.Maybe[string]) string { return show(lv) + "/" + show(rv) }, w, opts...)
	}
	return stream.Join(l, r, func(_ string, lv, rv string) string { return lv + "/" + rv }, w, opts...)
}

// sjRun is a join of the "left" and "right" topics, named "j", writing to
// "out", in a driver.
type sjRun struct {
	t     *testing.T
	d     *riffletest.Driver
	topo  *topology.Topology
	left  *riffletest.InputTopic[string, string]
	right *riffletest.InputTopic[string, string]
	out   *riffletest.OutputTopic[string, string]
}

func sjStart(t *testing.T, kind sjKind, w stream.JoinWindows, backend state.Backend, opts ...riffletest.Option) *sjRun {
	t.Helper()
	b := topology.NewBuilder()
	l := stream.From[string, string](b, "left")
	r := stream.From[string, string](b, "right")
	sjAdd(b, kind, l, r, w, stream.Named("j")).To("out")
	topo := testutil.MustBuild(t, b)
	d, err := riffletest.New(topo, append([]riffletest.Option{riffletest.WithBackend(backend)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return &sjRun{t: t, d: d, topo: topo,
		left:  riffletest.Input(d, "left", serde.String(), serde.String()),
		right: riffletest.Input(d, "right", serde.String(), serde.String()),
		out:   riffletest.Output(d, "out", serde.String(), serde.String()),
	}
}

// pipe sends a record to side ("L" or "R") at ms and returns what the join
// emits, each as "key=value@ms".
func (r *sjRun) pipe(side, k, v string, ms int64) []string {
	r.t.Helper()
	in := r.left
	if side == "R" {
		in = r.right
	}
	if err := in.PipeAt(k, v, time.UnixMilli(ms)); err != nil {
		r.t.Fatalf("pipe %s %s=%s@%d: %v", side, k, v, ms, err)
	}
	return r.take()
}

func (r *sjRun) take() []string {
	r.t.Helper()
	recs, err := r.out.ReadAll()
	if err != nil {
		r.t.Fatal(err)
	}
	var got []string
	for _, rec := range recs {
		got = append(got, fmt.Sprintf("%s=%s@%d", rec.Key, rec.Value, rec.Timestamp.UnixMilli()))
	}
	return got
}

// sjStep is a record sent to the join and what it must emit right after.
type sjStep struct {
	side, k, v string
	at         int64 // ms
	want       []string
}

func (r *sjRun) steps(steps []sjStep) {
	r.t.Helper()
	for i, s := range steps {
		got := r.pipe(s.side, s.k, s.v, s.at)
		if !slices.Equal(got, s.want) {
			r.t.Fatalf("step %d (%s %s=%s@%d):\n got %q\nwant %q", i, s.side, s.k, s.v, s.at, got, s.want)
		}
	}
}

func (r *sjRun) wantSkips(want map[string]int64) {
	r.t.Helper()
	w := map[topology.SkipKey]int64{}
	for reason, n := range want {
		w[topology.SkipKey{Node: "j", Reason: reason}] = n
	}
	testutil.WantSkips(r.t, r.d, w)
}

// TestStreamStreamJoinWindowBounds: with Before 10s and After 5s, a right
// record joins a left one at 100s when it is in [90s, 105s], both ends
// included, and not 1ms outside, whichever of the two comes first; the
// result has the later of the two times.
func TestStreamStreamJoinWindowBounds(t *testing.T) {
	w := stream.JoinWindows{Before: 10 * time.Second, After: 5 * time.Second, Grace: time.Minute}
	eachBackendW(t, func(t *testing.T, backend state.Backend) {
		for _, off := range []int64{-10_001, -10_000, -1, 0, 1, 5_000, 5_001} {
			for _, leftFirst := range []bool{true, false} {
				r := sjStart(t, sjInner, w, backend)
				lt, rt := int64(100_000), 100_000+off
				var got []string
				if leftFirst {
					got = append(r.pipe("L", "k", "a", lt), r.pipe("R", "k", "x", rt)...)
				} else {
					got = append(r.pipe("R", "k", "x", rt), r.pipe("L", "k", "a", lt)...)
				}
				var want []string
				if off >= -10_000 && off <= 5_000 {
					want = []string{fmt.Sprintf("k=a/x@%d", max(lt, rt))}
				}
				if !slices.Equal(got, want) {
					t.Errorf("right at %+dms, left first %v: got %q, want %q", off, leftFirst, got, want)
				}
				r.wantSkips(nil)
			}
		}
	})
}

// TestStreamStreamJoinOutOfOrder: records out of order within grace are
// joined; a record whose own window closed more than grace ago is late,
// dropped and counted; keys never mix; every pair is emitted once, when its
// second record comes.
func TestStreamStreamJoinOutOfOrder(t *testing.T) {
	w := stream.JoinTimeDifference(10*time.Second, 5*time.Second)
	eachBackendW(t, func(t *testing.T, backend state.Backend) {
		r := sjStart(t, sjInner, w, backend)
		r.steps([]sjStep{
			{"L", "k", "a", 100_000, nil},
			{"R", "other", "o", 101_000, nil},
			{"R", "k", "x", 120_000, nil}, // 20s after a: outside
			// 15s behind stream time, but its window [95s, 115s] closes
			// at 120s: on time.
			{"R", "k", "y", 105_000, []string{"k=a/y@105000"}},
			// Its window [94s, 114s] closed at 119s: late.
			{"L", "k", "b", 104_000, nil},
			// Its window [96s, 116s] closes at 121s: on time, joins y.
			{"L", "k", "c", 106_000, []string{"k=c/y@106000"}},
			{"L", "k", "d", 118_000, []string{"k=d/x@120000"}},
			// Joins every left record in [115s, 135s]: d, and e itself
			// comes after.
			{"R", "k", "z", 125_000, []string{"k=d/z@125000"}},
			{"L", "k", "e", 125_000, []string{"k=e/x@125000", "k=e/z@125000"}},
		})
		r.wantSkips(map[string]int64{"late record": 1})
	})
}

// TestStreamStreamJoinDuplicates: records of one key at the same time are
// all kept, and each joins every match, in order of time then arrival.
func TestStreamStreamJoinDuplicates(t *testing.T) {
	w := stream.JoinTimeDifference(10*time.Second, 0)
	eachBackendW(t, func(t *testing.T, backend state.Backend) {
		r := sjStart(t, sjInner, w, backend)
		r.steps([]sjStep{
			{"L", "k", "a", 100_000, nil},
			{"L", "k", "b", 100_000, nil},
			{"L", "k", "c", 95_000, nil},
			{"R", "k", "x", 100_000, []string{"k=c/x@100000", "k=a/x@100000", "k=b/x@100000"}},
			{"R", "k", "y", 100_000, []string{"k=c/y@100000", "k=a/y@100000", "k=b/y@100000"}},
			{"L", "k", "d", 100_000, []string{"k=d/x@100000", "k=d/y@100000"}},
		})
	})
}

// TestStreamStreamLeftJoin: a left record that finds no match is emitted
// with the right side absent when its window closes, and only then, once;
// a left record matched, before or after, never is; right records alone
// never are.
func TestStreamStreamLeftJoin(t *testing.T) {
	w := stream.JoinTimeDifference(10*time.Second, 5*time.Second) // a left record at t closes at t+15s
	eachBackendW(t, func(t *testing.T, backend state.Backend) {
		r := sjStart(t, sjLeft, w, backend)
		r.steps([]sjStep{
			{"L", "k", "a", 100_000, nil},
			{"L", "k", "b", 100_000, nil},
			// A match, later: no null result for a or b, ever.
			{"R", "k", "x", 108_000, []string{"k=a/x@108000", "k=b/x@108000"}},
			{"L", "k2", "c", 110_000, nil},
			{"R", "k3", "y", 114_000, nil},
			{"L", "k", "d", 120_000, nil},  // x at 108s is outside [110s, 130s]
			{"R", "k4", "z", 125_000, nil}, // c closes at 125s: not yet
			{"R", "k4", "z2", 125_001, []string{"k2=c/-@110000"}},
			{"R", "k", "v", 131_000, nil},  // outside d's window
			{"L", "k5", "e", 135_000, nil}, // d closes at 135s
			{"L", "k6", "f", 135_001, []string{"k=d/-@120000"}},
			{"L", "k7", "g", 1_000_000, []string{"k5=e/-@135000", "k6=f/-@135001"}},
		})
		r.wantSkips(nil)
		if got := testutil.StoreEntries(t, r.d, "j-outer", serde.ByteArray(), serde.ByteArray(), func(any) string { return "" }); len(got) != 1 {
			t.Errorf("j-outer holds %d entries, want g's only", len(got))
		}
	})
}

// TestStreamStreamLeftJoinMatchWithinGrace: a match that comes out of
// order, before the left record's window closes, removes its null result.
func TestStreamStreamLeftJoinMatchWithinGrace(t *testing.T) {
	w := stream.JoinTimeDifference(10*time.Second, 5*time.Second)
	eachBackendW(t, func(t *testing.T, backend state.Backend) {
		r := sjStart(t, sjLeft, w, backend)
		r.steps([]sjStep{
			{"L", "k", "a", 100_000, nil},
			{"L", "k2", "b", 114_000, nil}, // stream time past a's window end, within grace
			{"R", "k", "x", 109_000, []string{"k=a/x@109000"}},
			{"L", "k3", "c", 200_000, []string{"k2=b/-@114000"}},
		})
	})
}

// TestStreamStreamLeftJoinIsFinal: once a left record has been emitted with
// no match, a right record that comes later inside its window (on time for
// its own window) is not joined with it: no result contradicts one already
// emitted. An inner join of the same records does join them.
func TestStreamStreamLeftJoinIsFinal(t *testing.T) {
	w := stream.JoinTimeDifference(10*time.Second, 5*time.Second)
	steps := func(kind sjKind, wantMatch []string) []sjStep {
		var closed []string
		if kind == sjLeft {
			closed = []string{"k=a/-@100000"}
		}
		return []sjStep{
			{"L", "k", "a", 100_000, nil},
			{"L", "k2", "b", 115_001, closed}, // a's window closed at 115s
			// x's own window [99s, 119s] closes at 124s: on time. It is in
			// a's window, but a is final.
			{"R", "k", "x", 109_000, wantMatch},
		}
	}
	eachBackendW(t, func(t *testing.T, backend state.Backend) {
		sjStart(t, sjInner, w, backend).steps(steps(sjInner, []string{"k=a/x@109000"}))
		r := sjStart(t, sjLeft, w, backend)
		r.steps(steps(sjLeft, nil))
		r.steps([]sjStep{{"L", "k3", "c", 1_000_000, []string{"k2=b/-@115001"}}})
	})
}

// TestStreamStreamLeftJoinSurvivesRestart: the records waiting for their
// window to close are kept across a restart, and emitted once after it;
// a record matched before the restart is not emitted, and one that waits
// can still be matched after it.
func TestStreamStreamLeftJoinSurvivesRestart(t *testing.T) {
	w := stream.JoinTimeDifference(10*time.Second, 0)
	dir := t.TempDir()
	r := sjStart(t, sjLeft, w, state.PersistentBackend, riffletest.WithStateDir(dir))
	r.steps([]sjStep{
		{"L", "k", "a", 100_000, nil},
		{"L", "k2", "b", 101_000, nil},
		{"R", "k2", "x", 105_000, []string{"k2=b/x@105000"}},
		{"L", "k3", "c", 102_000, nil},
	})
	if err := r.d.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := r.d.Close(); err != nil {
		t.Fatal(err)
	}
	r = sjStart(t, sjLeft, w, state.PersistentBackend, riffletest.WithStateDir(dir))
	r.steps([]sjStep{
		{"R", "k3", "y", 106_000, []string{"k3=c/y@106000"}},
		{"L", "k4", "d", 200_000, []string{"k=a/-@100000"}},
		{"L", "k4", "e", 300_000, []string{"k4=d/-@200000"}},
	})
}

// TestStreamStreamOuterJoin: unmatched records of both sides are emitted
// when their windows close, which differ by side with an asymmetric window
// (a left record at t closes at t+After+Grace, a right one at
// t+Before+Grace), in the order they close; matched records never are.
func TestStreamStreamOuterJoin(t *testing.T) {
	w := stream.JoinWindows{Before: 2 * time.Second, After: 6 * time.Second, Grace: time.Second}
	eachBackendW(t, func(t *testing.T, backend state.Backend) {
		r := sjStart(t, sjOuter, w, backend)
		r.steps([]sjStep{
			{"L", "k1", "a", 100_000, nil}, // closes at 107s
			{"R", "k2", "x", 102_000, nil}, // closes at 105s
			{"R", "k3", "y", 101_000, nil}, // closes at 104s
			{"R", "k9", "z", 106_000, []string{"k3=-/y@101000", "k2=-/x@102000"}},
			// Stream time 108s: a closes; then c joins z (106s is in
			// [106s, 114s]).
			{"L", "k9", "c", 108_000, []string{"k1=a/-@100000", "k9=c/z@108000"}},
			// A right record before a left one, within the window.
			{"R", "k5", "u", 110_000, nil},
			{"L", "k5", "e", 112_000, []string{"k5=e/u@112000"}},
			{"L", "k0", "f", 500_000, nil},
			{"R", "k0", "g", 506_001, nil}, // outside f's window [498s, 506s]
			{"L", "k0", "h", 600_000, []string{"k0=f/-@500000", "k0=-/g@506001"}},
		})
		r.wantSkips(nil)
	})
}

// TestStreamStreamOuterJoinNegativeAfter: with After negative, a right
// record must come at least -After before the left one. A left record
// whose window has already closed when it comes (but that is not late) and
// finds no match is emitted at once.
func TestStreamStreamOuterJoinNegativeAfter(t *testing.T) {
	// A right record at t' joins a left one at t when t-10s <= t' <= t-5s.
	// A left record at t closes at t-5s+4s, and is late only when t+4s is
	// behind stream time.
	w := stream.JoinWindows{Before: 10 * time.Second, After: -5 * time.Second, Grace: 4 * time.Second}
	eachBackendW(t, func(t *testing.T, backend state.Backend) {
		r := sjStart(t, sjOuter, w, backend)
		r.steps([]sjStep{
			{"R", "k", "x", 93_000, nil}, // joins left records in [98s, 103s]
			{"L", "k", "a", 100_000, []string{"k=a/x@100000"}},
			// x at 93s is outside [87s, 92s]; b's window closed at 96s,
			// but b is not late (97s+4s >= 100s): emitted at once.
			{"L", "k", "b", 97_000, []string{"k=b/-@97000"}},
			{"L", "k", "c", 99_000, []string{"k=c/x@99000"}},
		})
		r.wantSkips(nil)
	})
}

// TestStreamStreamLeftJoinNegativeAfterSameTime: with a negative After, a
// left record can be emitted unmatched at once and a later left record of
// the same key and time still matched: a right record then joins the
// matched one only.
func TestStreamStreamLeftJoinNegativeAfterSameTime(t *testing.T) {
	// A left record at t joins right records in [t-5s, t-2s], closes at
	// t-2s, and is late only when t is behind stream time.
	w := stream.JoinWindows{Before: 5 * time.Second, After: -2 * time.Second}
	eachBackendW(t, func(t *testing.T, backend state.Backend) {
		r := sjStart(t, sjLeft, w, backend)
		r.steps([]sjStep{
			{"L", "k", "a", 87_000, []string{"k=a/-@87000"}},
			{"R", "k", "x", 84_000, nil}, // in a's window, but a is final
			{"L", "k", "b", 87_000, []string{"k=b/x@87000"}},
			{"R", "k", "y", 82_000, []string{"k=b/y@87000"}},
		})
		r.wantSkips(nil)
	})
}

// TestStreamStreamJoinNulls: records with a null key or value, on either
// side, are skipped and counted by the join, and do not stop it.
func TestStreamStreamJoinNulls(t *testing.T) {
	eachBackendW(t, func(t *testing.T, backend state.Backend) {
		b := topology.NewBuilder()
		l := stream.From[[]byte, []byte](b, "left")
		r := stream.From[[]byte, []byte](b, "right")
		stream.OuterJoin(l, r, func(_ []byte, lv, rv stream.Maybe[[]byte]) string {
			return fmt.Sprintf("%s/%s", lv.Value, rv.Value)
		}, stream.JoinTimeDifference(time.Second, 0), stream.Named("j")).To("out")
		d := testutil.NewDriver(t, b, riffletest.WithBackend(backend))
		for _, p := range []struct {
			topic string
			k, v  []byte
		}{
			{"left", nil, []byte("a")},
			{"right", nil, []byte("x")},
			{"left", []byte("k"), nil},
			{"right", []byte("k"), nil},
			{"left", []byte("k"), []byte("a")},
			{"right", []byte("k"), []byte("x")},
		} {
			if err := d.PipeRaw(p.topic, p.k, p.v, time.UnixMilli(1000)); err != nil {
				t.Fatal(err)
			}
		}
		got, err := riffletest.Output(d, "out", serde.ByteArray(), serde.String()).ReadValues()
		if err != nil || !slices.Equal(got, []string{"a/x"}) {
			t.Errorf("out: %q, %v", got, err)
		}
		testutil.WantSkips(t, d, map[topology.SkipKey]int64{
			{Node: "j", Reason: "null key"}:   2,
			{Node: "j", Reason: "null value"}: 2,
		})
	})
}

// TestStreamStreamJoinNames: a named join's nodes, stores and changelogs
// take the name; Materialized renames the stores; unnamed joins are named
// after the left stream.
func TestStreamStreamJoinNames(t *testing.T) {
	w := stream.JoinTimeDifference(time.Second, time.Second)
	b := topology.NewBuilder()
	orders := stream.From[string, string](b, "orders")
	payments := stream.From[string, string](b, "payments")
	sjAdd(b, sjLeft, orders, payments, w, stream.Named("paid")).To("paid-out")
	topo := testutil.MustBuild(t, b)
	desc := topo.Describe()
	for _, want := range []string{
		"Processor: paid-left\n", "Processor: paid-right\n",
		"Processor: paid (stores: paid-this, paid-other, paid-outer)\n",
		"<-- paid-left\n    <-- paid-right\n",
	} {
		if !strings.Contains(desc, want) {
			t.Errorf("Describe lacks %q:\n%s", want, desc)
		}
	}
	testutil.WantStrings(t, "changelogs", testutil.InternalTopics(topo, topology.ChangelogTopic),
		[]string{"paid-this-changelog", "paid-other-changelog", "paid-outer-changelog"})
	testutil.WantStrings(t, "repartitions", testutil.InternalTopics(topo, topology.RepartitionTopic), nil)
	spec, ok := topo.Store("paid-this")
	if !ok || spec.Kind != state.KindWindow || spec.Retention != 3*time.Second || !spec.Logged {
		t.Errorf("paid-this: %+v, %v", spec, ok)
	}
	if spec, ok := topo.Store("paid-outer"); !ok || spec.Kind != state.KindKeyValue {
		t.Errorf("paid-outer: %+v, %v", spec, ok)
	}

	// Unnamed, and with Materialized.
	b = topology.NewBuilder()
	orders = stream.From[string, string](b, "orders")
	payments = stream.From[string, string](b, "payments")
	sjAdd(b, sjInner, orders, payments, w).To("a")
	sjAdd(b, sjOuter, orders, payments, w).To("b")
	sjAdd(b, sjInner, orders, payments, w, stream.Materialized("pairs", state.InMemory(), state.WithoutLogging())).To("c")
	topo = testutil.MustBuild(t, b)
	testutil.WantStrings(t, "changelogs", testutil.InternalTopics(topo, topology.ChangelogTopic), []string{
		"from-orders-join-this-changelog", "from-orders-join-other-changelog",
		"from-orders-outer-join-this-changelog", "from-orders-outer-join-other-changelog", "from-orders-outer-join-outer-changelog",
	})
	if spec, ok := topo.Store("pairs-other"); !ok || spec.Backend != state.InMemoryBackend || spec.Logged {
		t.Errorf("pairs-other: %+v, %v", spec, ok)
	}
	if !strings.Contains(topo.Describe(), "Processor: from-orders-join-2 (stores: pairs-this, pairs-other)") {
		t.Errorf("Describe:\n%s", topo.Describe())
	}
}

// TestStreamStreamJoinRepartitions: a re-keyed side goes through
// "<name>-left-repartition" or "<name>-right-repartition" first, and is
// joined by its new key; a side that was not re-keyed is read as it is.
func TestStreamStreamJoinRepartitions(t *testing.T) {
	eachBackendW(t, func(t *testing.T, backend state.Backend) {
		b := topology.NewBuilder()
		// Orders are keyed by order id, valued "customer:item".
		orders := stream.SelectKey(stream.From[string, string](b, "orders"), func(_, v string) string {
			c, _, _ := strings.Cut(v, ":")
			return c
		})
		visits := stream.From[string, string](b, "visits") // keyed by customer
		stream.Join(orders, visits, func(c, order, page string) string { return order + " after " + page },
			stream.JoinTimeDifference(time.Minute, 0), stream.Named("bought")).To("out")
		topo := testutil.MustBuild(t, b)
		testutil.WantStrings(t, "repartitions", testutil.InternalTopics(topo, topology.RepartitionTopic), []string{"bought-left-repartition"})
		d, err := riffletest.New(topo, riffletest.WithBackend(backend))
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		riffletest.Input(d, "visits", serde.String(), serde.String()).PipeAt("ann", "/shoes", time.UnixMilli(1000))
		riffletest.Input(d, "orders", serde.String(), serde.String()).PipeAt("o-1", "ann:boots", time.UnixMilli(2000))
		got, err := riffletest.Output(d, "out", serde.String(), serde.String()).ReadKeyValues()
		if err != nil || len(got) != 1 || got[0].Key != "ann" || got[0].Value != "ann:boots after /shoes" {
			t.Errorf("out: %v, %v", got, err)
		}
	})

	// Both sides re-keyed.
	b := topology.NewBuilder()
	rekey := func(s stream.Stream[string, string]) stream.Stream[string, string] {
		return stream.SelectKey(s, func(_, v string) string { return v })
	}
	sjAdd(b, sjOuter, rekey(stream.From[string, string](b, "l")), rekey(stream.From[string, string](b, "r")),
		stream.JoinTimeDifference(time.Second, 0), stream.Named("both")).To("out")
	topo := testutil.MustBuild(t, b)
	testutil.WantStrings(t, "repartitions", testutil.InternalTopics(topo, topology.RepartitionTopic),
		[]string{"both-left-repartition", "both-right-repartition"})
}

// TestStreamStreamJoinBuildErrors: a missing serde, bad windows, a nil
// joiner and streams of two builders fail Build, naming the join.
func TestStreamStreamJoinBuildErrors(t *testing.T) {
	w := stream.JoinTimeDifference(time.Second, 0)
	cases := []struct {
		name  string
		build func(b *topology.Builder)
		want  []string
	}{
		{"no left value serde", func(b *topology.Builder) {
			l := stream.MapValues(stream.From[string, string](b, "l"), func(v string) int { return len(v) })
			stream.Join(l, stream.From[string, string](b, "r"), func(_ string, n int, v string) string { return v }, w, stream.Named("j1")).To("out")
		}, []string{`join "j1"`, "left value serde", "int"}},
		{"no right value serde", func(b *topology.Builder) {
			r := stream.MapValues(stream.From[string, string](b, "r"), func(v string) uint { return 1 })
			stream.LeftJoin(stream.From[string, string](b, "l"), r, func(_ string, v string, n stream.Maybe[uint]) string { return v }, w, stream.Named("j2")).To("out")
		}, []string{`join "j2"`, "right value serde", "uint"}},
		{"no key serde", func(b *topology.Builder) {
			type id int
			l := stream.SelectKey(stream.From[string, string](b, "l"), func(k, _ string) id { return id(len(k)) })
			r := stream.SelectKey(stream.From[string, string](b, "r"), func(k, _ string) id { return id(len(k)) })
			stream.OuterJoin(l, r, func(id, stream.Maybe[string], stream.Maybe[string]) string { return "" }, w, stream.Named("j3")).To("out")
		}, []string{`join "j3"`, "key serde"}},
		{"empty window", func(b *topology.Builder) {
			stream.Join(stream.From[string, string](b, "l"), stream.From[string, string](b, "r"), func(_, a, b string) string { return a },
				stream.JoinWindows{Before: time.Second, After: -2 * time.Second}, stream.Named("j4"))
		}, []string{`join "j4"`, "empty"}},
		{"negative grace", func(b *topology.Builder) {
			stream.Join(stream.From[string, string](b, "l"), stream.From[string, string](b, "r"), func(_, a, b string) string { return a },
				stream.JoinTimeDifference(time.Second, -time.Second), stream.Named("j5"))
		}, []string{`join "j5"`, "grace"}},
		{"nil joiner", func(b *topology.Builder) {
			stream.Join[string, string, string, string](stream.From[string, string](b, "l"), stream.From[string, string](b, "r"), nil, w, stream.Named("j6"))
		}, []string{`"j6"`, "nil"}},
		{"two builders", func(b *topology.Builder) {
			stream.Join(stream.From[string, string](b, "l"), stream.From[string, string](topology.NewBuilder(), "r"), func(_, a, b string) string { return a }, w, stream.Named("j7"))
		}, []string{`join "j7"`, "different builders"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := topology.NewBuilder()
			c.build(b)
			testutil.WantErrContains(t, testutil.BuildErr(t, b), c.want...)
		})
	}
}

// TestStreamStreamJoinSelf: a stream joined with itself pairs every two
// records in the window, each record with itself too.
func TestStreamStreamJoinSelf(t *testing.T) {
	b := topology.NewBuilder()
	s := stream.From[string, string](b, "in")
	stream.Join(s, s, func(_, a, b string) string { return a + b }, stream.JoinTimeDifference(time.Second, 0)).To("out")
	d := testutil.NewDriver(t, b, riffletest.WithBackend(state.InMemoryBackend))
	in := riffletest.Input(d, "in", serde.String(), serde.String())
	in.PipeAt("k", "a", time.UnixMilli(0))
	in.PipeAt("k", "b", time.UnixMilli(500))
	got, _ := riffletest.Output(d, "out", serde.String(), serde.String()).ReadValues()
	testutil.WantStrings(t, "out", got, []string{"aa", "ba", "ab", "bb"})
}

// ---- the model ----

// sjRec is a record of the model test.
type sjRec struct {
	right bool
	key   string
	v     string
	at    int64 // ms
	// Model state, for accepted records:
	joined, emitted bool
	seq             int
}

// sjModel applies the definition of the joins, record by record, to recs,
// and returns what each record makes the join emit:
//
//   - stream time is the largest time so far;
//   - a record at t is late when t + max(look, 0) + grace < stream time,
//     where look is After for a left record, Before for a right one;
//   - first, every record still waiting to be emitted unmatched whose
//     window has closed (t + look + grace < stream time) is emitted, in
//     order of close time, side, time, key, arrival;
//   - a record that is not late joins every earlier record of the other
//     side with its key in its window (in order of time, then arrival),
//     except one already emitted unmatched;
//   - a record that joins nothing waits (left and outer joins), or is
//     emitted at once if its window has already closed.
func sjModel(kind sjKind, w stream.JoinWindows, recs []sjRec) [][]string {
	before, after, grace := w.Before.Milliseconds(), w.After.Milliseconds(), w.Grace.Milliseconds()
	look := func(r *sjRec) int64 {
		if r.right {
			return before
		}
		return after
	}
	closes := func(r *sjRec) int64 { return r.at + look(r) + grace }
	nullJoins := func(r *sjRec) bool { return kind == sjOuter || (kind == sjLeft && !r.right) }
	show := func(r *sjRec) string {
		if r.right {
			return fmt.Sprintf("%s=-/%s@%d", r.key, r.v, r.at)
		}
		return fmt.Sprintf("%s=%s/-@%d", r.key, r.v, r.at)
	}
	var kept []*sjRec
	now := int64(-1 << 62)
	out := make([][]string, len(recs))
	for i := range recs {
		x := &recs[i]
		x.seq = i
		now = max(now, x.at)
		var closed []*sjRec
		for _, p := range kept {
			if nullJoins(p) && !p.joined && !p.emitted && closes(p) < now {
				closed = append(closed, p)
			}
		}
		slices.SortStableFunc(closed, func(a, b *sjRec) int {
			return cmp.Or(cmp.Compare(closes(a), closes(b)), cmp.Compare(btoi(a.right), btoi(b.right)),
				cmp.Compare(a.at, b.at), cmp.Compare(a.key, b.key), cmp.Compare(a.seq, b.seq))
		})
		for _, p := range closed {
			p.emitted = true
			out[i] = append(out[i], show(p))
		}
		if x.at+max(look(x), 0)+grace < now {
			continue // late
		}
		var matches []*sjRec
		for _, y := range kept {
			if y.right == x.right || y.key != x.key {
				continue
			}
			l, r := x, y
			if x.right {
				l, r = y, x
			}
			if r.at < l.at-before || r.at > l.at+after {
				continue
			}
			if y.emitted {
				continue
			}
			matches = append(matches, y)
		}
		slices.SortStableFunc(matches, func(a, b *sjRec) int { return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.seq, b.seq)) })
		for _, y := range matches {
			l, r := x, y
			if x.right {
				l, r = y, x
			}
			x.joined, y.joined = true, true
			out[i] = append(out[i], fmt.Sprintf("%s=%s/%s@%d", x.key, l.v, r.v, max(l.at, r.at)))
		}
		kept = append(kept, x)
		if nullJoins(x) && !x.joined && closes(x) < now {
			x.emitted = true
			out[i] = append(out[i], show(x))
		}
	}
	return out
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// sjRandom returns random records: keys of a few, times mostly rising in
// whole seconds (so that boundaries are often hit exactly), sometimes a
// millisecond off, sometimes far out of order.
func sjRandom(rng *rand.Rand, n int) []sjRec {
	recs := make([]sjRec, n)
	base := int64(0)
	for i := range recs {
		base += rng.Int64N(3)
		at := base - rng.Int64N(12)
		if rng.IntN(10) == 0 {
			at -= rng.Int64N(40) // far back: often late
		}
		ms := max(at, 0) * 1000
		switch rng.IntN(6) {
		case 0:
			ms++
		case 1:
			ms = max(ms-1, 0)
		}
		right := rng.IntN(2) == 0
		side := "l"
		if right {
			side = "r"
		}
		recs[i] = sjRec{right: right, key: fmt.Sprint("k", rng.IntN(3)), v: fmt.Sprint(side, i), at: ms}
	}
	return recs
}

// sjRandomWindows returns random windows of whole seconds, Before or After
// sometimes negative.
func sjRandomWindows(rng *rand.Rand) stream.JoinWindows {
	for {
		w := stream.JoinWindows{
			Before: time.Duration(rng.IntN(12)-3) * time.Second,
			After:  time.Duration(rng.IntN(12)-3) * time.Second,
			Grace:  time.Duration(rng.IntN(6)) * time.Second,
		}
		if w.Before+w.After >= 0 {
			return w
		}
	}
}

// TestStreamStreamJoinModel feeds random records, out of order and some
// late, to each kind of join and compares what each record makes it emit
// with the definition (sjModel). For inner joins it also checks the whole
// output against the plainest definition: every pair of records that are
// not late, with equal keys and times in the window. For left and outer
// joins it checks that every record that is not late and may be emitted
// unmatched is, in the end, either matched or emitted unmatched once,
// never both.
func TestStreamStreamJoinModel(t *testing.T) {
	rounds := 200
	if testing.Short() {
		rounds = 40
	}
	var pairs, nulls, lates int
	defer func() {
		t.Logf("%d rounds: %d joined, %d emitted unmatched, %d late", rounds, pairs, nulls, lates)
	}()
	for round := range rounds {
		rng := rand.New(rand.NewPCG(uint64(round), 7))
		w := sjRandomWindows(rng)
		recs := sjRandom(rng, 10+rng.IntN(120))
		backend := state.InMemoryBackend
		if round%5 == 0 {
			backend = state.PersistentBackend
		}
		for _, kind := range []sjKind{sjInner, sjLeft, sjOuter} {
			name := fmt.Sprintf("round %d %s %+v %v", round, kind, w, backend)
			model := slices.Clone(recs)
			want := sjModel(kind, w, model)
			r := sjStart(t, kind, w, backend)
			var all []string
			for i, x := range recs {
				side := "L"
				if x.right {
					side = "R"
				}
				got := r.pipe(side, x.key, x.v, x.at)
				if !slices.Equal(got, want[i]) {
					t.Fatalf("%s: record %d (%s %s=%s@%d):\n got %q\nwant %q", name, i, side, x.key, x.v, x.at, got, want[i])
				}
				all = append(all, got...)
			}
			for _, o := range all {
				if strings.Contains(o, "=-/") || strings.Contains(o, "/-@") {
					nulls++
				} else {
					pairs++
				}
			}
			// Late records, by the definition.
			now, late := int64(-1<<62), int64(0)
			for _, x := range recs {
				now = max(now, x.at)
				look := w.After.Milliseconds()
				if x.right {
					look = w.Before.Milliseconds()
				}
				if x.at+max(look, 0)+w.Grace.Milliseconds() < now {
					late++
				}
			}
			if n := r.d.Skipped()[topology.SkipKey{Node: "j", Reason: "late record"}]; n != late {
				t.Fatalf("%s: %d late records counted, want %d", name, n, late)
			}
			lates += int(late)
			switch kind {
			case sjInner:
				sjCheckPairs(t, name, w, recs, all)
			default:
				for _, x := range model {
					if x.joined && x.emitted {
						t.Fatalf("%s: %s %s both matched and emitted unmatched", name, x.key, x.v)
					}
				}
			}
			r.d.Close()
		}
	}
}

// sjCheckPairs checks an inner join's whole output against the plainest
// definition.
func sjCheckPairs(t *testing.T, name string, w stream.JoinWindows, recs []sjRec, got []string) {
	t.Helper()
	before, after, grace := w.Before.Milliseconds(), w.After.Milliseconds(), w.Grace.Milliseconds()
	var ok []sjRec
	now := int64(-1 << 62)
	for _, x := range recs {
		now = max(now, x.at)
		look := after
		if x.right {
			look = before
		}
		if x.at+max(look, 0)+grace >= now {
			ok = append(ok, x)
		}
	}
	var want []string
	for _, l := range ok {
		for _, r := range ok {
			if !l.right && r.right && l.key == r.key && r.at >= l.at-before && r.at <= l.at+after {
				want = append(want, fmt.Sprintf("%s=%s/%s@%d", l.key, l.v, r.v, max(l.at, r.at)))
			}
		}
	}
	got = slices.Clone(got)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("%s: the inner join's output is not every pair in the window:\n got %q\nwant %q", name, got, want)
	}
}

// ---- benchmark ----

// BenchmarkStreamStreamJoin reports the cost per input record of an inner
// join with a 10-second window through the driver (one op is one input
// record, so ns/op is per record), against a source→sink topology in the
// same run. Records alternate between the sides, 1ms
// apart, over 10,000 keys: each key has a left record and, 1ms later, a
// right one, every 20 seconds, so each right record finds one match and
// each left record none (a result for every other input record).
func BenchmarkStreamStreamJoin(b *testing.B) {
	keys := make([][]byte, 10_000)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "key-%05d", i)
	}
	key := func(i int) []byte { return keys[i%len(keys)] }
	value := []byte("value-0123456789")
	b.Run("baseline", func(b *testing.B) {
		tb := topology.NewBuilder()
		stream.From[[]byte, []byte](tb, "left").To("out")
		d := sjBenchDriver(b, tb, state.PersistentBackend)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if err := d.PipeRaw("left", key(i), value, time.UnixMilli(int64(i))); err != nil {
				b.Fatal(err)
			}
			d.ReadRaw("out")
		}
	})
	for _, backend := range []state.Backend{state.PersistentBackend, state.InMemoryBackend} {
		name := "join"
		if backend == state.InMemoryBackend {
			name = "join-in-memory"
		}
		b.Run(name, func(b *testing.B) {
			tb := topology.NewBuilder()
			l := stream.From[[]byte, []byte](tb, "left")
			r := stream.From[[]byte, []byte](tb, "right")
			stream.Join(l, r, func(_, a, b []byte) []byte { return a }, stream.JoinTimeDifference(10*time.Second, 0)).To("out")
			d := sjBenchDriver(b, tb, backend)
			topics := [2]string{"left", "right"}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if err := d.PipeRaw(topics[i%2], key(i/2), value, time.UnixMilli(int64(i))); err != nil {
					b.Fatal(err)
				}
				for {
					if _, ok := d.ReadRaw("out"); !ok {
						break
					}
				}
			}
		})
	}
}

func sjBenchDriver(b *testing.B, tb *topology.Builder, backend state.Backend) *riffletest.Driver {
	topo, err := tb.Build()
	if err != nil {
		b.Fatal(err)
	}
	d, err := riffletest.New(topo, riffletest.WithBackend(backend))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	return d
}
