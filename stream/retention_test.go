package stream_test

import (
	"encoding/binary"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/riffle-streams/riffle/riffletest"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/stream"
	"github.com/riffle-streams/riffle/topology"
)

// retentionDriver builds what add adds to a builder and runs it on backend.
func retentionDriver(t *testing.T, backend state.Backend, add func(b *topology.Builder)) (*riffletest.Driver, *topology.Topology) {
	t.Helper()
	b := topology.NewBuilder()
	add(b)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := riffletest.New(topo, riffletest.WithBackend(backend))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, topo
}

// windowCounts reads the counts of key's windows starting in [from, to]
// from the window store name, as "start=count".
func windowCounts(t *testing.T, d *riffletest.Driver, name, key string, from, to int64) []string {
	t.Helper()
	ws, err := d.WindowStore(name)
	if err != nil {
		t.Fatal(err)
	}
	it, err := ws.FetchRange([]byte(key), from, to)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var got []string
	for it.Next() {
		got = append(got, time.Duration(it.Start()*int64(time.Millisecond)).String()+"="+itoa(int64(binary.BigEndian.Uint64(it.Value()))))
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestWindowRetentionKeepsWindows: with a retention longer than the
// windows need, past windows stay in the store, to be fetched, after the
// default retention would have dropped them; they are closed all the
// same, so a record for one is late.
func TestWindowRetentionKeepsWindows(t *testing.T) {
	eachBackendW(t, func(t *testing.T, backend state.Backend) {
		w := stream.Tumbling(time.Minute, 10*time.Second)
		count := func(opts ...state.Option) func(b *topology.Builder) {
			return func(b *topology.Builder) {
				stream.From[string, string](b, "events").GroupByKey().WindowedBy(w).
					Count(stream.Named("counts"), stream.Materialized("per-minute", opts...))
			}
		}
		kept, topo := retentionDriver(t, backend, count(state.WithRetention(time.Hour)))
		short, _ := retentionDriver(t, backend, count())
		if spec, _ := topo.Store("per-minute"); spec.Retention != time.Hour || spec.Kind != state.KindWindow {
			t.Errorf("store per-minute: %+v", spec)
		}
		for _, d := range []*riffletest.Driver{kept, short} {
			in := riffletest.Input(d, "events", serde.String(), serde.String())
			for _, at := range []time.Duration{5 * time.Second, 20 * time.Second, 70 * time.Second, 30 * time.Minute} {
				if err := in.PipeAt("k", "e", time.UnixMilli(at.Milliseconds())); err != nil {
					t.Fatal(err)
				}
			}
		}
		if got, want := strings.Join(windowCounts(t, kept, "per-minute", "k", 0, math.MaxInt64), " "), "0s=2 1m0s=1 30m0s=1"; got != want {
			t.Errorf("with an hour's retention: windows %s, want %s", got, want)
		}
		if got, want := strings.Join(windowCounts(t, short, "per-minute", "k", 0, math.MaxInt64), " "), "30m0s=1"; got != want {
			t.Errorf("with the default retention: windows %s, want %s", got, want)
		}

		// A record for a kept window is still late: the window is closed.
		in := riffletest.Input(kept, "events", serde.String(), serde.String())
		if err := in.PipeAt("k", "e", time.UnixMilli(30_000)); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(windowCounts(t, kept, "per-minute", "k", 0, 0), " "); got != "0s=2" {
			t.Errorf("after a late record: window %s, want 0s=2", got)
		}
		if got := kept.SkippedRecords(); got != 1 {
			t.Errorf("skipped %d records, want the late one", got)
		}

		// An hour on, the first windows are past even the long retention.
		if err := in.PipeAt("k", "e", time.UnixMilli((95 * time.Minute).Milliseconds())); err != nil {
			t.Fatal(err)
		}
		if got, want := strings.Join(windowCounts(t, kept, "per-minute", "k", 0, math.MaxInt64), " "), "1h35m0s=1"; got != want {
			t.Errorf("an hour on: windows %s, want %s", got, want)
		}
	})
}

// TestSessionRetentionKeepsSessions: with a longer retention, ended
// sessions stay in the session store past the default retention.
func TestSessionRetentionKeepsSessions(t *testing.T) {
	eachBackendW(t, func(t *testing.T, backend state.Backend) {
		count := func(opts ...state.Option) func(b *topology.Builder) {
			return func(b *topology.Builder) {
				stream.From[string, string](b, "clicks").GroupByKey().SessionWindowedBy(stream.Sessions(time.Minute, 0)).
					Count(stream.Named("visits"), stream.Materialized("visits", opts...))
			}
		}
		kept, _ := retentionDriver(t, backend, count(state.WithRetention(time.Hour)))
		short, _ := retentionDriver(t, backend, count())
		for _, d := range []*riffletest.Driver{kept, short} {
			in := riffletest.Input(d, "clicks", serde.String(), serde.String())
			for _, at := range []time.Duration{0, 30 * time.Second, 30 * time.Minute} {
				if err := in.PipeAt("ann", "c", time.UnixMilli(at.Milliseconds())); err != nil {
					t.Fatal(err)
				}
			}
		}
		sessions := func(d *riffletest.Driver) []string {
			ss, err := d.SessionStore("visits")
			if err != nil {
				t.Fatal(err)
			}
			it, err := ss.FindSessions([]byte("ann"), 0, math.MaxInt64)
			if err != nil {
				t.Fatal(err)
			}
			defer it.Close()
			var got []string
			for it.Next() {
				got = append(got, time.Duration(it.Start()*int64(time.Millisecond)).String()+".."+
					time.Duration(it.End()*int64(time.Millisecond)).String()+"="+itoa(int64(binary.BigEndian.Uint64(it.Value()))))
			}
			if err := it.Err(); err != nil {
				t.Fatal(err)
			}
			return got
		}
		if got, want := strings.Join(sessions(kept), " "), "0s..30s=2 30m0s..30m0s=1"; got != want {
			t.Errorf("with an hour's retention: sessions %s, want %s", got, want)
		}
		if got, want := strings.Join(sessions(short), " "), "30m0s..30m0s=1"; got != want {
			t.Errorf("with the default retention: sessions %s, want %s", got, want)
		}
	})
}

// TestRetentionShorterThanWindowsFailsBuild: every windowed operator
// refuses a retention shorter than its windows need, naming itself and
// its store, and takes one as long or longer. A key-value aggregation
// refuses any retention.
func TestRetentionShorterThanWindowsFailsBuild(t *testing.T) {
	events := func(b *topology.Builder) *stream.Grouped[string, string] {
		return stream.From[string, string](b, "events").GroupByKey()
	}
	join := func(ret time.Duration, outer bool) func(b *topology.Builder) {
		return func(b *topology.Builder) {
			l := stream.From[string, string](b, "orders")
			r := stream.From[string, string](b, "payments")
			w := stream.JoinTimeDifference(time.Minute, 10*time.Second) // needs 2m10s
			opts := []stream.Option{stream.Named("paid"), stream.Materialized("paid", state.WithRetention(ret))}
			if outer {
				stream.OuterJoin(l, r, func(_ string, a stream.Maybe[string], b stream.Maybe[string]) string { return a.Value + b.Value }, w, opts...)
				return
			}
			stream.Join(l, r, func(_, a, b string) string { return a + b }, w, opts...)
		}
	}
	for _, tc := range []struct {
		name string
		add  func(b *topology.Builder)
		// err holds parts of Build's error; none for no error.
		err []string
	}{
		{"tumbling, shorter", func(b *topology.Builder) {
			events(b).WindowedBy(stream.Tumbling(time.Minute, 10*time.Second)).
				Count(stream.Named("counts"), stream.Materialized("per-minute", state.WithRetention(time.Minute)))
		}, []string{`windowed aggregation "counts"`, `store "per-minute"`, "retention 1m0s is shorter than the 1m10s", "size 1m0s + grace 10s"}},
		{"tumbling, zero", func(b *topology.Builder) {
			events(b).WindowedBy(stream.Tumbling(time.Minute, 0)).
				Count(stream.Named("counts"), stream.Materialized("per-minute", state.WithRetention(0)))
		}, []string{`windowed aggregation "counts"`, `store "per-minute"`, "retention 0s is shorter"}},
		{"tumbling, exactly", func(b *topology.Builder) {
			events(b).WindowedBy(stream.Tumbling(time.Minute, 10*time.Second)).
				Count(stream.Materialized("per-minute", state.WithRetention(70*time.Second)))
		}, nil},
		{"tumbling, longer, emit final", func(b *topology.Builder) {
			events(b).WindowedBy(stream.Tumbling(time.Minute, 10*time.Second)).
				Count(stream.EmitFinal(), stream.Materialized("per-minute", state.WithRetention(time.Hour)))
		}, nil},
		{"hopping, shorter", func(b *topology.Builder) {
			stream.WindowedAggregate(events(b).WindowedBy(stream.Hopping(10*time.Minute, time.Minute, 0)),
				func() int64 { return 0 }, func(_, _ string, n int64) int64 { return n + 1 },
				stream.Named("units"), stream.Materialized("units", state.WithRetention(9*time.Minute)))
		}, []string{`windowed aggregation "units"`, `store "units"`, "size 10m0s + grace 0s"}},
		{"sliding, shorter", func(b *topology.Builder) {
			events(b).WindowedBy(stream.Sliding(time.Minute, 10*time.Second)).
				Reduce(func(a, v string) string { return a + v }, stream.Named("bursts"), stream.Materialized("bursts", state.WithRetention(130*time.Second)))
		}, []string{`windowed aggregation "bursts"`, `store "bursts"`, "retention 2m10s is shorter than the 2m10.001s", "twice the time difference 1m0s + grace 10s + 1ms"}},
		{"sliding, exactly", func(b *topology.Builder) {
			events(b).WindowedBy(stream.Sliding(time.Minute, 10*time.Second)).
				Count(stream.Materialized("bursts", state.WithRetention(130*time.Second+time.Millisecond)))
		}, nil},
		{"session, shorter", func(b *topology.Builder) {
			events(b).SessionWindowedBy(stream.Sessions(5*time.Minute, time.Minute)).
				Count(stream.Named("visits"), stream.Materialized("visit-store", state.WithRetention(6*time.Minute)))
		}, []string{`session aggregation "visits"`, `store "visit-store"`, "retention 6m0s is shorter than the 6m0.001s", "gap 5m0s + grace 1m0s + 1ms"}},
		{"session, longer, emit final", func(b *topology.Builder) {
			events(b).SessionWindowedBy(stream.Sessions(5*time.Minute, time.Minute)).
				Count(stream.EmitFinal(), stream.Materialized("visits", state.WithRetention(24*time.Hour)))
		}, nil},
		{"join, shorter", join(2*time.Minute, false),
			[]string{`join "paid"`, `stores "paid-this" and "paid-other"`, "retention 2m0s is shorter than the 2m10s"}},
		{"join, longer", join(time.Hour, false), nil},
		{"outer join, longer", join(time.Hour, true), nil},
		{"key-value aggregation", func(b *topology.Builder) {
			events(b).Count(stream.Named("totals"), stream.Materialized("totals", state.WithRetention(time.Hour)))
		}, []string{`key-value store "totals"`, "retention 1h0m0s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := topology.NewBuilder()
			tc.add(b)
			_, err := b.Build()
			if len(tc.err) == 0 {
				if err != nil {
					t.Fatalf("Build: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Build succeeded, want an error with %q", tc.err)
			}
			for _, part := range tc.err {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("Build: %v\nwant it to hold %q", err, part)
				}
			}
			n := 0
			for _, line := range strings.Split(err.Error(), "\n") {
				if strings.Contains(line, "retention") {
					n++
				}
			}
			if n != 1 {
				t.Errorf("Build: %v\nwant one error about the retention, not %d", err, n)
			}
		})
	}
}

// TestRetentionLongerJoinsTheSame: a longer retention keeps a join's
// records longer, and changes none of its results.
func TestRetentionLongerJoinsTheSame(t *testing.T) {
	eachBackendW(t, func(t *testing.T, backend state.Backend) {
		results := func(opts ...state.Option) []string {
			d, _ := retentionDriver(t, backend, func(b *topology.Builder) {
				l := stream.From[string, string](b, "orders")
				r := stream.From[string, string](b, "payments")
				stream.LeftJoin(l, r, func(_ string, o string, p stream.Maybe[string]) string {
					if !p.OK {
						return o + "+none"
					}
					return o + "+" + p.Value
				}, stream.JoinTimeDifference(time.Second, 0), stream.Named("paid"), stream.Materialized("paid", opts...)).To("out")
			})
			orders := riffletest.Input(d, "orders", serde.String(), serde.String())
			payments := riffletest.Input(d, "payments", serde.String(), serde.String())
			steps := []struct {
				order bool
				key   string
				at    int64
			}{
				{true, "a", 0}, {false, "a", 500}, {true, "b", 1_000}, {false, "a", 800}, {false, "b", 1_900},
				{true, "a", 5_000}, {false, "a", 5_999}, {false, "b", 9_000}, {true, "c", 20_000}, {false, "a", 20_500},
				{false, "x", 30_000},
			}
			for i, s := range steps {
				in := payments
				if s.order {
					in = orders
				}
				if err := in.PipeAt(s.key, itoa(int64(i)), time.UnixMilli(s.at)); err != nil {
					t.Fatal(err)
				}
			}
			out := riffletest.Output(d, "out", serde.String(), serde.String())
			kvs, err := out.ReadKeyValues()
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, kv := range kvs {
				got = append(got, kv.Key+":"+kv.Value)
			}
			return got
		}
		want := results()
		if len(want) < 4 {
			t.Fatalf("the join gave %v: the test needs more", want)
		}
		if got := results(state.WithRetention(time.Hour)); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("with an hour's retention: %v\nwith the default: %v", got, want)
		}
	})
}
