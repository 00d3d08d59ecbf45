package stream_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/riffle-streams/riffle/riffletest"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/stream"
	"github.com/riffle-streams/riffle/topology"
)

// windowedCounts builds a windowed count of the "events" topic and returns a
// driver with the backend given.
func windowedCounts(t *testing.T, w stream.TimeWindows, backend state.Backend) (*riffletest.Driver, *riffletest.InputTopic[string, string], *riffletest.OutputTopic[stream.Windowed[string], int64]) {
	t.Helper()
	b := topology.NewBuilder()
	counts := stream.From[string, string](b, "events").GroupByKey().WindowedBy(w).Count(stream.Named("counts"))
	stream.ToStream(counts).To("counts-out", stream.WithKeySerde(stream.WindowedSerde(serde.String(), w.Size)))
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
		riffletest.Output(d, "counts-out", stream.WindowedSerde(serde.String(), w.Size), serde.Int64())
}

func readWindows(t *testing.T, out *riffletest.OutputTopic[stream.Windowed[string], int64]) []string {
	t.Helper()
	recs, err := out.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, fmt.Sprintf("%s@[%d,%d)=%d", r.Key.Key, r.Key.Start.UnixMilli(), r.Key.End.UnixMilli(), r.Value))
	}
	return got
}

func eachBackendW(t *testing.T, fn func(t *testing.T, backend state.Backend)) {
	for _, b := range []state.Backend{state.InMemoryBackend, state.PersistentBackend} {
		t.Run(b.String(), func(t *testing.T) { fn(t, b) })
	}
}

// TestTumblingWindows: boundaries (a record exactly at a window's end
// belongs to the next window), out-of-order records within grace, and late
// records after grace dropped and counted.
func TestTumblingWindows(t *testing.T) {
	eachBackendW(t, func(t *testing.T, backend state.Backend) {
		d, in, out := windowedCounts(t, stream.Tumbling(10*time.Second, 5*time.Second), backend)
		steps := []struct {
			at   int64 // ms
			want []string
		}{
			{1_000, []string{"k@[0,10000)=1"}},
			{9_999, []string{"k@[0,10000)=2"}},
			{10_000, []string{"k@[10000,20000)=1"}}, // a window's end belongs to the next
			{4_000, []string{"k@[0,10000)=3"}},      // out of order, within grace: [0,10s) closes at 15s
			{15_000, []string{"k@[10000,20000)=2"}}, // stream time 15s: [0,10s) is now closed
			{5_000, nil},                            // late: dropped
		}
		for _, s := range steps {
			if err := in.PipeAt("k", "e", time.UnixMilli(s.at)); err != nil {
				t.Fatal(err)
			}
			if got := readWindows(t, out); strings.Join(got, " ") != strings.Join(s.want, " ") {
				t.Fatalf("after a record at %d: %v, want %v", s.at, got, s.want)
			}
		}
		if n := d.Skipped()[topology.SkipKey{Node: "counts", Reason: "late record"}]; n != 1 {
			t.Errorf("late records counted: %d, want 1 (%v)", n, d.Skipped())
		}
	})
}

// TestHoppingWindows: a record is counted in every window that contains it.
func TestHoppingWindows(t *testing.T) {
	eachBackendW(t, func(t *testing.T, backend state.Backend) {
		_, in, out := windowedCounts(t, stream.Hopping(10*time.Second, 5*time.Second, time.Minute), backend)
		if err := in.PipeAt("k", "e", time.UnixMilli(7_000)); err != nil {
			t.Fatal(err)
		}
		if err := in.PipeAt("k", "e", time.UnixMilli(12_000)); err != nil {
			t.Fatal(err)
		}
		want := "k@[0,10000)=1 k@[5000,15000)=1 k@[5000,15000)=2 k@[10000,20000)=1"
		if got := strings.Join(readWindows(t, out), " "); got != want {
			t.Errorf("got %s\nwant %s", got, want)
		}
	})
}

func TestWindowsValidated(t *testing.T) {
	for _, w := range []stream.TimeWindows{
		stream.Tumbling(0, 0),
		stream.Hopping(time.Second, 2*time.Second, 0),
		stream.Tumbling(time.Second, -time.Second),
	} {
		b := topology.NewBuilder()
		stream.From[string, string](b, "in").GroupByKey().WindowedBy(w).Count()
		if _, err := b.Build(); err == nil || !strings.Contains(err.Error(), "windowed aggregation") {
			t.Errorf("%+v: Build: %v", w, err)
		}
	}
}

// TestWindowedSerdeBytes: the key bytes then the window start as 8 bytes
// big-endian, as Kafka Streams' time-windowed serde writes.
func TestWindowedSerdeBytes(t *testing.T) {
	s := stream.WindowedSerde(serde.String(), time.Minute)
	b, err := s.Encode(stream.Windowed[string]{Key: "ab", Start: time.UnixMilli(256)})
	if err != nil || string(b) != "ab\x00\x00\x00\x00\x00\x00\x01\x00" {
		t.Fatalf("Encode = %q, %v", b, err)
	}
	w, err := s.Decode(b)
	if err != nil || w.Key != "ab" || w.Start.UnixMilli() != 256 || w.End.UnixMilli() != 60_256 {
		t.Errorf("Decode = %+v, %v", w, err)
	}
	if _, err := s.Decode([]byte{1, 2}); err == nil {
		t.Error("short bytes decoded")
	}
}

// TestOnLateRecord: the handler is given each late record and its time,
// after it is counted.
func TestOnLateRecord(t *testing.T) {
	var late []string
	w := stream.Tumbling(10*time.Second, 0)
	b := topology.NewBuilder()
	stream.From[string, string](b, "events").GroupByKey().WindowedBy(w).Count(stream.Named("counts"),
		stream.OnLateRecord(func(k, v string, at time.Time) { late = append(late, fmt.Sprintf("%s=%s@%d", k, v, at.UnixMilli())) }))
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
	for _, at := range []int64{1_000, 20_000, 5_000} {
		if err := in.PipeAt("k", fmt.Sprint(at), time.UnixMilli(at)); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Join(late, " ") != "k=5000@5000" || d.SkippedRecords() != 1 {
		t.Errorf("late: %v, skipped %d", late, d.SkippedRecords())
	}
	b = topology.NewBuilder()
	stream.From[string, string](b, "in").GroupByKey().WindowedBy(w).Count(stream.OnLateRecord(func(int, string, time.Time) {}))
	if _, err := b.Build(); err == nil || !strings.Contains(err.Error(), "OnLateRecord takes a func(int, string, time.Time)") {
		t.Errorf("Build: %v", err)
	}
}
