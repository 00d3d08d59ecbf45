package riffletest_test

import (
	"errors"
	"fmt"
	"math"
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

// windowedTopology counts the records of the "clicks" topic: per page in
// one-minute windows ("per-minute", after a repartition by page, so in a
// sub-topology of its own), and per user in sessions with a five-minute
// gap and ten minutes of grace ("visits") and in total ("totals").
func windowedTopology(t *testing.T) *topology.Topology {
	t.Helper()
	b := topology.NewBuilder()
	clicks := stream.From[string, string](b, "clicks")
	byPage := stream.GroupBy(clicks, func(_, page string) string { return page }, stream.Named("by-page"))
	byPage.WindowedBy(stream.Tumbling(time.Minute, 0)).Count(stream.Named("per-minute"))
	clicks.GroupByKey().SessionWindowedBy(stream.Sessions(5*time.Minute, 10*time.Minute)).Count(stream.Named("visits"))
	clicks.GroupByKey().Count(stream.Named("totals"))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if len(topo.SubTopologies()) < 2 {
		t.Fatalf("%d sub-topologies: the test wants the window store in a task of its own", len(topo.SubTopologies()))
	}
	return topo
}

// eachDriver runs fn with a driver of topo on each backend, with and
// without caching.
func eachDriver(t *testing.T, topo *topology.Topology, fn func(t *testing.T, d *riffletest.Driver)) {
	for _, backend := range []state.Backend{state.InMemoryBackend, state.PersistentBackend} {
		for _, cache := range []int64{0, 1 << 20} {
			t.Run(fmt.Sprintf("%v/cache=%d", backend, cache), func(t *testing.T) {
				d, err := riffletest.New(topo, riffletest.WithBackend(backend), riffletest.WithCaching(cache))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					if err := d.Close(); err != nil {
						t.Error(err)
					}
				})
				fn(t, d)
			})
		}
	}
}

// click pipes a click of user on page at sec seconds.
func click(t *testing.T, d *riffletest.Driver, user, page string, sec int64) {
	t.Helper()
	if err := riffletest.Input(d, "clicks", serde.String(), serde.String()).PipeAt(user, page, time.Unix(sec, 0)); err != nil {
		t.Fatal(err)
	}
}

// count decodes a stored count.
func count(t *testing.T, b []byte) int64 {
	t.Helper()
	n, err := serde.Int64().Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// windows returns a reader of a window iteration, as "key@start=count".
func windows(t *testing.T) func(state.WindowIterator, error) []string {
	return func(it state.WindowIterator, err error) []string {
		t.Helper()
		return readWindows(t, it, err)
	}
}

func readWindows(t *testing.T, it state.WindowIterator, err error) []string {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var got []string
	for it.Next() {
		got = append(got, fmt.Sprintf("%s@%ds=%d", it.Key(), it.Start()/1000, count(t, it.Value())))
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

// sessions returns a reader of a session iteration, as
// "key@[start,end]=count".
func sessions(t *testing.T) func(state.SessionIterator, error) []string {
	return func(it state.SessionIterator, err error) []string {
		t.Helper()
		return readSessions(t, it, err)
	}
}

func readSessions(t *testing.T, it state.SessionIterator, err error) []string {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var got []string
	for it.Next() {
		got = append(got, fmt.Sprintf("%s@[%ds,%ds]=%d", it.Key(), it.Start()/1000, it.End()/1000, count(t, it.Value())))
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

func wantList(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s: %v, want %v", what, got, want)
	}
}

func TestWindowStore(t *testing.T) {
	eachDriver(t, windowedTopology(t), func(t *testing.T, d *riffletest.Driver) {
		click(t, d, "ann", "/home", 5)
		click(t, d, "bob", "/home", 50)
		click(t, d, "ann", "/about", 59)
		click(t, d, "ann", "/home", 61)
		ws, err := d.WindowStore("per-minute")
		if err != nil {
			t.Fatal(err)
		}
		if ws.Name() != "per-minute" || ws.Retention() != time.Minute {
			t.Errorf("store %q, retention %v", ws.Name(), ws.Retention())
		}
		v, err := ws.Fetch([]byte("/home"), 0)
		if err != nil || v == nil || count(t, v) != 2 {
			t.Errorf("Fetch(/home, 0) = %v, %v; want 2", v, err)
		}
		if v, err := ws.Fetch([]byte("/home"), 1000); err != nil || v != nil {
			t.Errorf("Fetch(/home, 1s) = %v, %v; want nothing", v, err)
		}
		wantList(t, "FetchRange(/home)", windows(t)(ws.FetchRange([]byte("/home"), 0, math.MaxInt64)), "/home@0s=2", "/home@60s=1")
		wantList(t, "FetchAll(0, 0)", windows(t)(ws.FetchAll(0, 0)), "/about@0s=1", "/home@0s=2")

		// The view follows the store: a later record shows, and the
		// window it expires goes.
		click(t, d, "bob", "/home", 125)
		wantList(t, "FetchAll after 125s", windows(t)(ws.FetchAll(0, math.MaxInt64)), "/home@60s=1", "/home@120s=1")
	})
}

func TestSessionStore(t *testing.T) {
	eachDriver(t, windowedTopology(t), func(t *testing.T, d *riffletest.Driver) {
		click(t, d, "ann", "/home", 0)
		click(t, d, "ann", "/about", 60)
		click(t, d, "bob", "/home", 100)
		click(t, d, "ann", "/home", 800)
		ss, err := d.SessionStore("visits")
		if err != nil {
			t.Fatal(err)
		}
		if ss.Name() != "visits" || ss.Retention() != 15*time.Minute+time.Millisecond {
			t.Errorf("store %q, retention %v", ss.Name(), ss.Retention())
		}
		v, err := ss.Fetch([]byte("ann"), 0, 60_000)
		if err != nil || v == nil || count(t, v) != 2 {
			t.Errorf("Fetch(ann, 0, 60s) = %v, %v; want 2", v, err)
		}
		wantList(t, "FindSessions(ann)", sessions(t)(ss.FindSessions([]byte("ann"), 0, math.MaxInt64)), "ann@[0s,60s]=2", "ann@[800s,800s]=1")
		wantList(t, "FetchAll", sessions(t)(ss.FetchAll(0, 200_000)), "ann@[0s,60s]=2", "bob@[100s,100s]=1")
	})
}

func TestStoreOfWrongKind(t *testing.T) {
	d, err := riffletest.New(windowedTopology(t))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, tc := range []struct {
		what string
		err  error
		want []string
	}{
		{"WindowStore of no store", second(d.WindowStore("nope")), []string{`riffletest: the topology has no store "nope"`}},
		{"SessionStore of no store", second(d.SessionStore("nope")), []string{`riffletest: the topology has no store "nope"`}},
		{"WindowStore of a key-value store", second(d.WindowStore("totals")), []string{`riffletest: store "totals" is a`, "not a window store"}},
		{"WindowStore of a session store", second(d.WindowStore("visits")), []string{`riffletest: store "visits" is a`, "not a window store"}},
		{"SessionStore of a window store", second(d.SessionStore("per-minute")), []string{`riffletest: store "per-minute" is a`, "not a session store"}},
		{"SessionStore of a key-value store", second(d.SessionStore("totals")), []string{`store "totals" is a`, "not a session store"}},
		{"KeyValueStore of a window store", second(d.KeyValueStore("per-minute")), []string{`store "per-minute" is a`, "not a key-value store"}},
	} {
		if tc.err == nil {
			t.Errorf("%s: no error", tc.what)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(tc.err.Error(), w) {
				t.Errorf("%s: %v, want it to hold %q", tc.what, tc.err, w)
			}
		}
	}
}

func second[T any](_ T, err error) error { return err }

// TestStoreViewsAreReadOnly: a view can be neither asserted to the
// writable store nor closed, and closing it leaves the store working.
func TestStoreViewsAreReadOnly(t *testing.T) {
	d, err := riffletest.New(windowedTopology(t))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	click(t, d, "ann", "/home", 0)
	ws, err := d.WindowStore("per-minute")
	if err != nil {
		t.Fatal(err)
	}
	ss, err := d.SessionStore("visits")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := any(ws).(state.WindowStore); ok {
		t.Error("the window store's view is a state.WindowStore")
	}
	if _, ok := any(ss).(state.SessionStore); ok {
		t.Error("the session store's view is a state.SessionStore")
	}
	for _, s := range []state.Store{ws, ss} {
		if err := s.Flush(); err != nil {
			t.Errorf("Flush of %q: %v", s.Name(), err)
		}
		if err := s.Close(); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", s.Name())) {
			t.Errorf("Close of %q: %v, want a refusal naming the store", s.Name(), err)
		}
	}
	click(t, d, "ann", "/home", 10)
	if v, err := ws.Fetch([]byte("/home"), 0); err != nil || count(t, v) != 2 {
		t.Errorf("Fetch after Close of the view: %v, %v", v, err)
	}
	if v, err := ss.Fetch([]byte("ann"), 0, 10_000); err != nil || count(t, v) != 2 {
		t.Errorf("Fetch after Close of the view: %v, %v", v, err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := ws.Fetch([]byte("/home"), 0); !errors.Is(err, state.ErrClosed) {
		t.Errorf("Fetch after the driver's Close: %v, want ErrClosed", err)
	}
}
