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
	"github.com/riffle-streams/riffle/table"
	"github.com/riffle-streams/riffle/topology"
)

// sessionRun is a driver running a session aggregation of "events", and
// what the aggregation forwarded.
type sessionRun struct {
	d       *riffletest.Driver
	in      *riffletest.InputTopic[string, string]
	changes []string          // each change, as "k@[s,e]=new" or "k@[s,e]=deleted"
	table   map[string]string // the table the changes make
	late    []string
}

func (r *sessionRun) take() []string {
	c := r.changes
	r.changes = nil
	return c
}

func sessionKey(w stream.Windowed[string]) string {
	return fmt.Sprintf("%s@[%d,%d]", w.Key, w.Start.UnixMilli(), w.End.UnixMilli())
}

// sessionCounts counts "events" in sessions; with lists, it aggregates
// each session's values instead, as a sorted list.
func sessionRunOf(t *testing.T, w stream.SessionWindows, backend state.Backend, lists bool, opts ...stream.Option) *sessionRun {
	t.Helper()
	r := &sessionRun{table: map[string]string{}}
	b := topology.NewBuilder()
	opts = append([]stream.Option{stream.Named("sessions"),
		stream.OnLateRecord(func(k, v string, at time.Time) {
			r.late = append(r.late, fmt.Sprintf("%s=%s@%d", k, v, at.UnixMilli()))
		})}, opts...)
	sw := stream.From[string, string](b, "events").GroupByKey().SessionWindowedBy(w)
	record := func(k stream.Windowed[string], c table.Change[string]) {
		key := sessionKey(k)
		if !c.HasNew {
			r.changes = append(r.changes, key+"=deleted")
			delete(r.table, key)
			return
		}
		r.changes = append(r.changes, key+"="+c.New)
		r.table[key] = c.New
	}
	if lists {
		sorted := func(parts ...string) string {
			var all []string
			for _, p := range parts {
				if p != "" {
					all = append(all, strings.Split(p, ",")...)
				}
			}
			slices.Sort(all)
			return strings.Join(all, ",")
		}
		agg := stream.SessionAggregate(sw, func() string { return "" },
			func(_ string, v string, agg string) string { return sorted(agg, v) },
			func(_ string, a, b string) string { return sorted(a, b) }, opts...)
		stream.Changes(agg).Foreach(record)
	} else {
		counts := sw.Count(opts...)
		stream.Changes(counts).Foreach(func(k stream.Windowed[string], c table.Change[int64]) {
			record(k, table.Change[string]{New: fmt.Sprint(c.New), HasNew: c.HasNew})
		})
		stream.ToStream(counts).To("counts-out", stream.WithKeySerde(stream.SessionWindowedSerde(serde.String())))
	}
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := riffletest.New(topo, riffletest.WithBackend(backend))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	r.d, r.in = d, riffletest.Input(d, "events", serde.String(), serde.String())
	return r
}

// TestSessionWindows: sessions grow while records come within the gap, a
// record that bridges two sessions merges them (and their old sessions are
// deleted), a record inside a session updates it in place, the gap's
// boundary is inclusive, and a late record is dropped.
func TestSessionWindows(t *testing.T) {
	eachBackendW(t, func(t *testing.T, backend state.Backend) {
		r := sessionRunOf(t, stream.Sessions(5*time.Second, 10*time.Second), backend, false)
		steps := []struct {
			at   int64
			want []string
		}{
			{0, []string{"k@[0,0]=1"}},
			{3_000, []string{"k@[0,0]=deleted", "k@[0,3000]=2"}},
			{8_000, []string{"k@[0,3000]=deleted", "k@[0,8000]=3"}},                              // exactly the gap after 3s: joins
			{20_000, []string{"k@[20000,20000]=1"}},                                              // more than the gap after 8s: a new session
			{14_000, []string{"k@[14000,14000]=1"}},                                              // 6s from both: a session of its own
			{11_000, []string{"k@[0,8000]=deleted", "k@[14000,14000]=deleted", "k@[0,14000]=5"}}, // bridges two
			{17_000, []string{"k@[0,14000]=deleted", "k@[20000,20000]=deleted", "k@[0,20000]=7"}},
			{5_000, []string{"k@[0,20000]=8"}}, // inside a session: an update in place
			{40_000, []string{"k@[40000,40000]=1"}},
			// Close time is now 30s: a record at 26s makes a session ending
			// before it: late. One at 30s is not.
			{26_000, nil},
			{30_000, []string{"k@[30000,30000]=1"}},
		}
		for _, s := range steps {
			if err := r.in.PipeAt("k", fmt.Sprint(s.at), time.UnixMilli(s.at)); err != nil {
				t.Fatal(err)
			}
			if got := r.take(); strings.Join(got, " ") != strings.Join(s.want, " ") {
				t.Fatalf("after a record at %d:\n got %v\nwant %v", s.at, got, s.want)
			}
		}
		if strings.Join(r.late, " ") != "k=26000@26000" {
			t.Errorf("late records handed on: %v", r.late)
		}
		if n := r.d.Skipped()[topology.SkipKey{Node: "sessions", Reason: "late record"}]; n != 1 {
			t.Errorf("late records counted: %d, want 1", n)
		}
	})
}

// TestSessionWindowedSerdeBytes: session keys are written as Kafka Streams'
// session-windowed serde writes them: key, end, start.
func TestSessionWindowedSerdeBytes(t *testing.T) {
	s := stream.SessionWindowedSerde(serde.String())
	w := stream.Windowed[string]{Key: "k", Start: time.UnixMilli(1), End: time.UnixMilli(2)}
	b, err := s.Encode(w)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{'k', 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1}
	if string(b) != string(want) {
		t.Fatalf("Encode: % x, want % x", b, want)
	}
	back, err := s.Decode(b)
	if err != nil || back.Key != "k" || !back.Start.Equal(w.Start) || !back.End.Equal(w.End) {
		t.Fatalf("Decode: %+v, %v", back, err)
	}
	if _, err := s.Decode([]byte{1, 2, 3}); err == nil {
		t.Error("Decode of 3 bytes: no error")
	}
	if _, err := s.Decode(nil); err == nil {
		t.Error("Decode of nil: no error")
	}
}

// TestSessionWindowsModel feeds random records, out of order but never
// late, and checks the sessions the aggregation ends with against the
// definition: a key's records sorted by time, cut wherever two are more
// than the gap apart, each session holding exactly its records.
func TestSessionWindowsModel(t *testing.T) {
	const gap = 5
	rounds := 300
	if testing.Short() {
		rounds = 50
	}
	for round := range rounds {
		backend := state.InMemoryBackend
		if round%10 == 0 {
			backend = state.PersistentBackend
		}
		rng := rand.New(rand.NewPCG(uint64(round), 11))
		var recs []slidingRec
		for i := range 5 + rng.IntN(30) {
			recs = append(recs, slidingRec{key: []string{"a", "b"}[rng.IntN(2)], v: fmt.Sprintf("%02d", i), at: int64(rng.IntN(80))})
		}
		r := sessionRunOf(t, stream.Sessions(gap*time.Millisecond, time.Hour), backend, true)
		for _, rec := range recs {
			if err := r.in.PipeAt(rec.key, rec.v, time.UnixMilli(rec.at)); err != nil {
				t.Fatal(err)
			}
		}
		want := map[string]string{}
		for _, key := range []string{"a", "b"} {
			var mine []slidingRec
			for _, rec := range recs {
				if rec.key == key {
					mine = append(mine, rec)
				}
			}
			slices.SortStableFunc(mine, func(x, y slidingRec) int { return int(x.at - y.at) })
			for i := 0; i < len(mine); {
				j := i + 1
				for j < len(mine) && mine[j].at-mine[j-1].at <= gap {
					j++
				}
				var vals []string
				for _, rec := range mine[i:j] {
					vals = append(vals, rec.v)
				}
				slices.Sort(vals)
				want[fmt.Sprintf("%s@[%d,%d]", key, mine[i].at, mine[j-1].at)] = strings.Join(vals, ",")
				i = j
			}
		}
		if diff := tableDiff(r.table, want); diff != "" {
			t.Fatalf("round %d, records %v:\n%s", round, recs, diff)
		}
	}
}

// TestSessionWindowsEmitFinal: with EmitFinal, each session is emitted
// once, with its final count, when stream time minus grace is past its end
// plus the gap; a closed session is forgotten, so a record within the gap
// of it and of an open session joins the open one only.
func TestSessionWindowsEmitFinal(t *testing.T) {
	eachBackendW(t, func(t *testing.T, backend state.Backend) {
		r := sessionRunOf(t, stream.Sessions(5*time.Second, 2*time.Second), backend, false, stream.EmitFinal())
		out := riffletest.Output(r.d, "counts-out", stream.SessionWindowedSerde(serde.String()), serde.Int64())
		steps := []struct {
			at   int64
			want []string
		}{
			{0, nil},
			{3_000, nil},
			{10_000, nil}, // a new session; close time 8s: [0,3s] can grow until 8s
			{11_000, []string{"k@[0,3000]=2"}},
			// Within the gap of both [0,3s] and [10s,11s]; but [0,3s] has
			// closed, and is forgotten: the record joins [10s,11s] only.
			{6_000, nil},
			{20_000, []string{"k@[6000,11000]=3"}}, // close time 18s: past 11s+5s
		}
		for _, s := range steps {
			if err := r.in.PipeAt("k", fmt.Sprint(s.at), time.UnixMilli(s.at)); err != nil {
				t.Fatal(err)
			}
			r.take()
			recs, err := out.ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, rec := range recs {
				got = append(got, fmt.Sprintf("%s=%d", sessionKey(rec.Key), rec.Value))
			}
			if strings.Join(got, " ") != strings.Join(s.want, " ") {
				t.Fatalf("after a record at %d:\n got %v\nwant %v", s.at, got, s.want)
			}
		}
		if len(r.late) != 0 {
			t.Errorf("late: %v", r.late)
		}
	})
}

// TestSessionWindowsValidated: a bad gap or grace fails the build, naming
// the aggregation.
func TestSessionWindowsValidated(t *testing.T) {
	for _, w := range []stream.SessionWindows{stream.Sessions(0, time.Second), stream.Sessions(time.Second, -time.Second)} {
		b := topology.NewBuilder()
		stream.From[string, string](b, "in").GroupByKey().SessionWindowedBy(w).Count(stream.Named("s"))
		if _, err := b.Build(); err == nil || !strings.Contains(err.Error(), `session aggregation "s"`) {
			t.Errorf("%+v: Build: %v", w, err)
		}
	}
}
