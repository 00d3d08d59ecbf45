package stream_test

import (
	"strings"
	"testing"
	"time"

	"github.com/riffle-streams/riffle/riffletest"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/stream"
	"github.com/riffle-streams/riffle/topology"
)

func emitFinalCounts(t *testing.T, opts ...riffletest.Option) (*riffletest.Driver, *riffletest.InputTopic[string, string], *riffletest.OutputTopic[stream.Windowed[string], int64]) {
	t.Helper()
	w := stream.Tumbling(10*time.Second, 5*time.Second)
	b := topology.NewBuilder()
	counts := stream.From[string, string](b, "events").GroupByKey().WindowedBy(w).Count(stream.Named("counts"), stream.EmitFinal())
	stream.ToStream(counts).To("final", stream.WithKeySerde(stream.WindowedSerde(serde.String(), w.Size)))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := riffletest.New(topo, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return d, riffletest.Input(d, "events", serde.String(), serde.String()),
		riffletest.Output(d, "final", stream.WindowedSerde(serde.String(), w.Size), serde.Int64())
}

// TestEmitFinal: each window is emitted once, with its final count, when
// stream time passes its end plus grace; nothing before; a record for a
// window already emitted is late.
func TestEmitFinal(t *testing.T) {
	eachBackendW(t, func(t *testing.T, backend state.Backend) {
		d, in, out := emitFinalCounts(t, riffletest.WithBackend(backend))
		defer d.Close()
		steps := []struct {
			key  string
			at   int64
			want []string
		}{
			{"k", 1_000, nil},
			{"k", 3_000, nil},
			{"j", 4_000, nil},
			{"k", 12_000, nil}, // closes at 15s: [0,10s) still open
			{"k", 9_000, nil},  // in grace: counted
			{"k", 16_000, []string{"j@[0,10000)=1", "k@[0,10000)=3"}}, // stream time 16s: [0,10s) closed
			{"k", 8_000, nil}, // late: its window was emitted
			{"k", 24_000, nil},
			{"x", 31_000, []string{"k@[10000,20000)=2"}}, // [10s,20s) closes at 25s; [20s,30s) at 35s
		}
		for _, s := range steps {
			if err := in.PipeAt(s.key, "e", time.UnixMilli(s.at)); err != nil {
				t.Fatal(err)
			}
			if got := readWindows(t, out); strings.Join(got, " ") != strings.Join(s.want, " ") {
				t.Fatalf("after %s at %d: emitted %v, want %v", s.key, s.at, got, s.want)
			}
		}
		if n := d.Skipped()[topology.SkipKey{Node: "counts", Reason: "late record"}]; n != 1 {
			t.Errorf("late records: %d, want 1", n)
		}
	})
}

// TestEmitFinalSurvivesRestart: after a restart on the same state, windows
// already emitted are not emitted again, and those that close later are.
func TestEmitFinalSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	d, in, out := emitFinalCounts(t, riffletest.WithStateDir(dir), riffletest.WithBackend(state.PersistentBackend))
	for _, at := range []int64{1_000, 11_000, 16_000} {
		if err := in.PipeAt("k", "e", time.UnixMilli(at)); err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.Join(readWindows(t, out), " "); got != "k@[0,10000)=1" {
		t.Fatalf("before the restart: %s", got)
	}
	if err := d.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	d, in, out = emitFinalCounts(t, riffletest.WithStateDir(dir), riffletest.WithBackend(state.PersistentBackend))
	defer d.Close()
	// Stream time starts again at the first record; 27s closes [10s,20s),
	// whose count (11s and 16s) was kept across the restart.
	for _, at := range []int64{27_000} {
		if err := in.PipeAt("k", "e", time.UnixMilli(at)); err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.Join(readWindows(t, out), " "); got != "k@[10000,20000)=2" {
		t.Errorf("after the restart: %q, want only the window that closed since", got)
	}
}

// TestCloseIdleAfter: a window of a partition that goes quiet is emitted
// once the wall clock has run past its end plus grace, without waiting for
// another record; a record that then arrives for it is late.
func TestCloseIdleAfter(t *testing.T) {
	w := stream.Tumbling(10*time.Second, 5*time.Second)
	b := topology.NewBuilder()
	counts := stream.From[string, string](b, "events").GroupByKey().WindowedBy(w).
		Count(stream.Named("counts"), stream.EmitFinal(), stream.CloseIdleAfter(3*time.Second))
	stream.ToStream(counts).To("final", stream.WithKeySerde(stream.WindowedSerde(serde.String(), w.Size)))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := riffletest.New(topo, riffletest.WithBackend(state.InMemoryBackend))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	in := riffletest.Input(d, "events", serde.String(), serde.String())
	out := riffletest.Output(d, "final", stream.WindowedSerde(serde.String(), w.Size), serde.Int64())
	for _, at := range []int64{1_000, 6_000} {
		if err := in.PipeAt("k", "e", time.UnixMilli(at)); err != nil {
			t.Fatal(err)
		}
	}
	// Stream time is 6s; [0,10s) closes at 15s of stream time. Idle for
	// 3s of wall clock, time runs on with the clock: it is 6s + 10s at the
	// last advance below, past 15s.
	steps := []struct {
		by   time.Duration
		want string
	}{
		{2 * time.Second, ""},              // not idle long enough
		{4 * time.Second, ""},              // idle 6s: time 12s, close 7s: not yet
		{4 * time.Second, "k@[0,10000)=2"}, // idle 10s: time 16s, close 11s
		{10 * time.Second, ""},             // emitted once only
	}
	for _, s := range steps {
		if err := d.AdvanceWallClock(s.by); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(readWindows(t, out), " "); got != s.want {
			t.Fatalf("after %v more of wall clock: %q, want %q", s.by, got, s.want)
		}
	}
	if err := in.PipeAt("k", "e", time.UnixMilli(7_000)); err != nil {
		t.Fatal(err)
	}
	if n := d.Skipped()[topology.SkipKey{Node: "counts", Reason: "late record"}]; n != 1 {
		t.Errorf("a record for the emitted window was not late: %v", d.Skipped())
	}
	b = topology.NewBuilder()
	stream.From[string, string](b, "in").GroupByKey().WindowedBy(w).Count(stream.CloseIdleAfter(time.Second))
	if _, err := b.Build(); err == nil || !strings.Contains(err.Error(), "CloseIdleAfter needs EmitFinal") {
		t.Errorf("CloseIdleAfter without EmitFinal: %v", err)
	}
}
