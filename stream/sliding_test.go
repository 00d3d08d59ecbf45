package stream_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/riffle-streams/riffle/riffletest"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/stream"
	"github.com/riffle-streams/riffle/topology"
)

// slidingLists aggregates the "events" topic in sliding windows, each
// window's aggregate the list of its values in the order they came, and
// writes every update to "lists-out".
func slidingLists(t *testing.T, w stream.SlidingWindows, backend state.Backend, opts ...stream.Option) (*riffletest.Driver, *riffletest.InputTopic[string, string], *riffletest.OutputTopic[stream.Windowed[string], string]) {
	t.Helper()
	b := topology.NewBuilder()
	g := stream.From[string, string](b, "events").GroupByKey()
	lists := stream.WindowedAggregate(g.WindowedBy(w), func() string { return "" }, func(_ string, v string, agg string) string {
		if agg == "" {
			return v
		}
		return agg + "," + v
	}, append([]stream.Option{stream.Named("lists")}, opts...)...)
	ks := stream.WindowedSerde(serde.String(), w.TimeDifference)
	stream.ToStream(lists).To("lists-out", stream.WithKeySerde(ks))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := riffletest.New(topo, riffletest.WithBackend(backend))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, riffletest.Input(d, "events", serde.String(), serde.String()),
		riffletest.Output(d, "lists-out", ks, serde.String())
}

func readLists(t *testing.T, out *riffletest.OutputTopic[stream.Windowed[string], string]) []string {
	t.Helper()
	recs, err := out.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, fmt.Sprintf("%s@[%d,%d]=%s", r.Key.Key, r.Key.Start.UnixMilli(), r.Key.End.UnixMilli(), r.Value))
	}
	return got
}

// TestSlidingWindows walks Kafka Streams' definition step by step, with a
// time difference of 10s: each record makes its left window [t-10s, t];
// its right window [t+1ms, t+10.001s] exists only once a later record is
// in it; a record updates every window it falls in; and a record exactly
// at a window's end is in it (both ends are included).
func TestSlidingWindows(t *testing.T) {
	eachBackendW(t, func(t *testing.T, backend state.Backend) {
		_, in, out := slidingLists(t, stream.Sliding(10*time.Second, time.Minute), backend)
		steps := []struct {
			v    string
			at   int64
			want []string
		}{
			// The first record: its left window only; its right one would
			// be empty.
			{"a", 20_000, []string{"k@[10000,20000]=a"}},
			// 5s later: its left window holds a too, and a's right window
			// is made, holding b alone.
			{"b", 25_000, []string{"k@[15000,25000]=a,b", "k@[20001,30001]=b"}},
			// Exactly 10s after b: b's window ends at 35s, and b's right
			// window [25.001s, 35.001s] is made holding c alone; a's right
			// window [20.001s, 30.001s] does not hold c.
			{"c", 35_000, []string{"k@[25000,35000]=b,c", "k@[25001,35001]=c"}},
			// Out of order, between a and b: it joins the windows it falls
			// in (a's right window, b's left window), makes its own left
			// window (a and itself) and its right window, which holds what
			// is in (22s, 32s]: b.
			{"x", 22_000, []string{"k@[15000,25000]=a,b,x", "k@[20001,30001]=b,x", "k@[12000,22000]=a,x", "k@[22001,32001]=b"}},
		}
		for _, s := range steps {
			if err := in.PipeAt("k", s.v, time.UnixMilli(s.at)); err != nil {
				t.Fatal(err)
			}
			got := readLists(t, out)
			if strings.Join(got, " ") != strings.Join(s.want, " ") {
				t.Fatalf("after %s at %d:\n got %v\nwant %v", s.v, s.at, got, s.want)
			}
		}
	})
}

// slidingModel is the definition of sliding windows, applied to all the
// records at once: each record's left window, and each record's right
// window if some record is in it, each with the values of the records it
// holds, in the order they came.
func slidingModel(recs []slidingRec, d int64) map[string]string {
	want := map[string]string{}
	fill := func(key string, start int64) {
		var vals []string
		for _, r := range recs {
			if r.key == key && r.at >= start && r.at <= start+d {
				vals = append(vals, r.v)
			}
		}
		if len(vals) > 0 {
			want[fmt.Sprintf("%s@[%d,%d]", key, start, start+d)] = strings.Join(vals, ",")
		}
	}
	for _, r := range recs {
		fill(r.key, r.at-d)
		fill(r.key, r.at+1)
	}
	return want
}

type slidingRec struct {
	key string
	v   string
	at  int64
}

// TestSlidingWindowsModel feeds random records, out of order but never
// late, and checks the windows the aggregation ends with against the
// definition: the same windows, each with exactly its records, in order.
func TestSlidingWindowsModel(t *testing.T) {
	const d = 10
	rounds := 300
	if testing.Short() {
		rounds = 50
	}
	for round := range rounds {
		backend := state.InMemoryBackend
		if round%10 == 0 {
			backend = state.PersistentBackend
		}
		rng := rand.New(rand.NewPCG(uint64(round), 7))
		n := 5 + rng.IntN(30)
		var recs []slidingRec
		for i := range n {
			recs = append(recs, slidingRec{key: []string{"a", "b"}[rng.IntN(2)], v: fmt.Sprint(i), at: int64(rng.IntN(60))})
		}
		_, in, out := slidingLists(t, stream.Sliding(d*time.Millisecond, time.Hour), backend)
		for _, r := range recs {
			if err := in.PipeAt(r.key, r.v, time.UnixMilli(r.at)); err != nil {
				t.Fatal(err)
			}
		}
		got := map[string]string{}
		for _, l := range readLists(t, out) {
			k, v, _ := strings.Cut(l, "=")
			got[k] = v
		}
		if diff := tableDiff(got, slidingModel(recs, d)); diff != "" {
			t.Fatalf("round %d, records (key, value, ms) %v:\n%s", round, recs, diff)
		}
	}
}

// tableDiff returns, a line each in key order, the keys whose values in
// got and want differ (or are in one only); "" if none do.
func tableDiff(got, want map[string]string) string {
	var diff []string
	for k := range want {
		if g, ok := got[k]; !ok || g != want[k] {
			diff = append(diff, fmt.Sprintf("%s: got %q want %q", k, g, want[k]))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			diff = append(diff, fmt.Sprintf("%s: got %q want nothing", k, g))
		}
	}
	slices.Sort(diff)
	return strings.Join(diff, "\n")
}

// TestSlidingWindowsLate: a record whose every window has closed (stream
// time past t + difference + 1ms + grace) is dropped and counted; one whose
// right window is still open only updates that.
func TestSlidingWindowsLate(t *testing.T) {
	d, in, out := slidingLists(t, stream.Sliding(10*time.Second, 5*time.Second), state.InMemoryBackend)
	for _, at := range []int64{10_000, 40_000} {
		if err := in.PipeAt("k", fmt.Sprint(at), time.UnixMilli(at)); err != nil {
			t.Fatal(err)
		}
	}
	readLists(t, out)
	// Close time is 35s. A record at 20s: every window it could make or
	// be in ends by 30.001s: late.
	if err := in.PipeAt("k", "late", time.UnixMilli(20_000)); err != nil {
		t.Fatal(err)
	}
	if got := readLists(t, out); len(got) != 0 {
		t.Errorf("a late record changed windows: %v", got)
	}
	if n := d.Skipped()[topology.SkipKey{Node: "lists", Reason: "late record"}]; n != 1 {
		t.Errorf("late records: %d, want 1", n)
	}
	// A record at 28s: its left window [18s, 28s] has closed, but its
	// right window [28.001s, 38.001s] has not; it holds 40s? No: 40s is
	// outside it. So nothing is made but the previous record's right
	// window, [10.001s, 20.001s], which has closed too. Only 30s+ windows
	// are open: a record at 34s makes its right window [34.001s, 44.001s]
	// (holding 40s) and updates 40s's left window [30s, 40s].
	if err := in.PipeAt("k", "34", time.UnixMilli(34_000)); err != nil {
		t.Fatal(err)
	}
	want := []string{"k@[30000,40000]=40000,34", "k@[34001,44001]=40000"}
	if got := readLists(t, out); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("a record within grace for some windows:\n got %v\nwant %v", got, want)
	}
}

// TestSlidingWindowsEmitFinal: with EmitFinal, each sliding window is
// emitted once, when stream time passes its end plus grace.
func TestSlidingWindowsEmitFinal(t *testing.T) {
	eachBackendW(t, func(t *testing.T, backend state.Backend) {
		_, in, out := slidingLists(t, stream.Sliding(10*time.Second, 0), backend, stream.EmitFinal())
		steps := []struct {
			v    string
			at   int64
			want []string
		}{
			{"a", 20_000, nil},
			{"b", 25_000, []string{"k@[10000,20000]=a"}},                        // stream time 25s: [10s,20s] closed
			{"c", 40_000, []string{"k@[15000,25000]=a,b", "k@[20001,30001]=b"}}, // closes everything ending by 40s
			{"d", 45_000, []string{"k@[30000,40000]=c"}},
			{"e", 60_000, []string{"k@[35000,45000]=c,d", "k@[40001,50001]=d"}},
		}
		for _, s := range steps {
			if err := in.PipeAt("k", s.v, time.UnixMilli(s.at)); err != nil {
				t.Fatal(err)
			}
			got := readLists(t, out)
			if strings.Join(got, " ") != strings.Join(s.want, " ") {
				t.Fatalf("after %s at %d:\n got %v\nwant %v", s.v, s.at, got, s.want)
			}
		}
	})
}
