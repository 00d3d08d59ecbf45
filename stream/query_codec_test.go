package stream_test

import (
	"slices"
	"testing"
	"time"

	"github.com/riffle-streams/riffle/riffletest"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/stream"
	"github.com/riffle-streams/riffle/table"
	"github.com/riffle-streams/riffle/topology"
)

// Visits is the aggregate of the cogrouped test topology.
type Visits struct{ Events, Clicks int64 }

// queryTopology builds stream aggregations of every kind, and stores that
// must not be queryable (a stream–stream join's buffers, EmitFinal's
// bookkeeping) beside them.
func queryTopology(b *topology.Builder) {
	events := stream.From[string, string](b, "events")
	clicks := stream.From[string, string](b, "clicks")
	g := events.GroupByKey()
	g.Count(stream.Named("counts"))
	stream.Aggregate(g, func() int64 { return 0 }, func(_ string, v string, n int64) int64 { return n + int64(len(v)) }, stream.Named("lengths"))
	c := stream.Cogroup(g, func(_ string, _ string, v Visits) Visits { v.Events++; return v })
	c = stream.CogroupWith(c, clicks.GroupByKey(), func(_ string, _ string, v Visits) Visits { v.Clicks++; return v })
	c.Aggregate(func() Visits { return Visits{} }, stream.Named("visits"), stream.WithValueSerde(serde.JSON[Visits]()))
	g.WindowedBy(stream.Tumbling(10*time.Second, time.Minute)).Count(stream.Named("tumbling"))
	g.WindowedBy(stream.Hopping(10*time.Second, 5*time.Second, time.Minute)).Count(stream.Named("hopping"))
	g.WindowedBy(stream.Sliding(5*time.Second, time.Minute)).Count(stream.Named("sliding"))
	g.SessionWindowedBy(stream.Sessions(5*time.Second, time.Minute)).Count(stream.Named("sessions"))
	g.WindowedBy(stream.Tumbling(10*time.Second, 0)).Count(stream.Named("final"), stream.EmitFinal())
	stream.LeftJoin(events, clicks, func(_ string, e string, _ stream.Maybe[string]) string { return e },
		stream.JoinTimeDifference(time.Second, 0), stream.Named("j")).To("joined")
	users := table.From[string, string](b, "users", table.Named("users"))
	stream.JoinTable(clicks, users, func(_ string, c, u string) string { return c + u }, stream.Named("jt")).To("enriched")
}

func TestQueryableStores(t *testing.T) {
	b := topology.NewBuilder()
	queryTopology(b)
	topo := mustBuild(t, b)
	want := []string{"counts", "final", "hopping", "lengths", "sessions", "sliding", "tumbling", "users", "visits"}
	if got := topo.QueryableStores(); !slices.Equal(got, want) {
		t.Errorf("QueryableStores() = %q\nwant %q", got, want)
	}
	for _, internal := range []string{"j-this", "j-other", "j-outer", "final-emitted"} {
		if _, ok := topo.Store(internal); !ok {
			t.Errorf("no store %q: the test no longer covers it", internal)
		}
		if _, ok := topo.StoreCodec(internal); ok {
			t.Errorf("internal store %q is queryable", internal)
		}
	}
	sizes := map[string]time.Duration{
		"counts": 0, "tumbling": 10 * time.Second, "hopping": 10 * time.Second,
		"sliding": 5 * time.Second, "sessions": 0, "final": 10 * time.Second,
	}
	for store, want := range sizes {
		c, _ := topo.StoreCodec(store)
		if got := c.WindowSize(); got != want {
			t.Errorf("StoreCodec(%q).WindowSize() = %v, want %v", store, got, want)
		}
	}
}

// storeCodec returns the codec of store, failing the test if there is none.
func storeCodec(t *testing.T, topo *topology.Topology, store string) topology.StoreCodec {
	t.Helper()
	c, ok := topo.StoreCodec(store)
	if !ok {
		t.Fatalf("store %q is not queryable", store)
	}
	return c
}

// lastWindows reads the changelog of a window store and returns, by window
// start, the last bytes written for key's windows.
func lastWindows(t *testing.T, d *riffletest.Driver, store string, key []byte) map[int64][]byte {
	t.Helper()
	out := map[int64][]byte{}
	for {
		rec, ok := d.ReadRaw("riffletest-" + store + "-changelog")
		if !ok {
			return out
		}
		k, start, err := state.SplitWindowKey(rec.Key)
		if err != nil {
			t.Fatalf("%s changelog: %v", store, err)
		}
		if string(k) == string(key) {
			out[start] = rec.Value
		}
	}
}

// TestStoreCodecsDecodeStoredBytes reads what each aggregation stored, as
// the runtime will, through the store's codec.
func TestStoreCodecsDecodeStoredBytes(t *testing.T) {
	eachBackend(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		queryTopology(b)
		topo := mustBuild(t, b)
		d, err := riffletest.New(topo, opt)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		in := riffletest.Input(d, "events", sS, sS)
		for _, r := range []struct {
			k, v string
			ts   int64
		}{{"a", "x", 1000}, {"a", "yy", 2000}, {"a", "zzz", 3000}, {"b", "w", 12000}} {
			if err := in.PipeAt(r.k, r.v, ms(r.ts)); err != nil {
				t.Fatal(err)
			}
		}

		// Key-value stores, read as a query reads them.
		get := func(store, key string) any {
			t.Helper()
			c := storeCodec(t, topo, store)
			kb, err := c.ParseKey(key)
			if err != nil {
				t.Fatalf("%s: ParseKey(%q): %v", store, key, err)
			}
			kv, err := d.KeyValueStore(store)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := kv.Get(kb)
			if err != nil {
				t.Fatal(err)
			}
			v, err := c.Value(raw)
			if err != nil {
				t.Fatalf("%s: Value(%x): %v", store, raw, err)
			}
			return v
		}
		for _, tc := range []struct {
			store, key string
			want       any
		}{
			{"counts", "a", int64(3)},
			{"counts", `"b"`, int64(1)},
			{"counts", "c", nil},
			{"lengths", "a", int64(6)},
			{"visits", "a", Visits{Events: 3}},
		} {
			if got := get(tc.store, tc.key); got != tc.want {
				t.Errorf("%s[%s] = %#v, want %#v", tc.store, tc.key, got, tc.want)
			}
		}

		// Window stores: their changelogs carry the stored bytes.
		window := func(store string, start int64) any {
			t.Helper()
			c := storeCodec(t, topo, store)
			kb, err := c.ParseKey("a")
			if err != nil {
				t.Fatal(err)
			}
			raw, ok := lastWindows(t, d, store, kb)[start]
			if !ok {
				t.Fatalf("%s: no window a@%d", store, start)
			}
			v, err := c.Value(raw)
			if err != nil {
				t.Fatalf("%s: Value(%x): %v", store, raw, err)
			}
			if k, err := c.Key(kb); err != nil || k != "a" {
				t.Errorf("%s: Key(%x) = %v, %v", store, kb, k, err)
			}
			return v
		}
		if got := window("tumbling", 0); got != int64(3) {
			t.Errorf("tumbling a@[0,10s) = %v, want 3", got)
		}
		// The sliding window [-2s, 3s] holds all three records; its stored
		// value starts with its latest record's time.
		if got := window("sliding", -2000); got != int64(3) {
			t.Errorf("sliding a@[-2s,3s] = %v, want 3", got)
		}

		// Session stores: the changelog is of the window store beneath,
		// whose values hold the session's start first; read through
		// state.SessionOf, as the runtime opens it, a session's value is
		// what the codec decodes.
		sc := storeCodec(t, topo, "sessions")
		env, err := state.NewEnv(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { env.Close() })
		ws, err := env.OpenWindow("app", "0_0", state.Session("sessions", time.Hour, state.InMemory(), state.WithoutLogging()))
		if err != nil {
			t.Fatal(err)
		}
		for {
			rec, ok := d.ReadRaw("riffletest-sessions-changelog")
			if !ok {
				break
			}
			k, end, err := state.SplitWindowKey(rec.Key)
			if err != nil {
				t.Fatal(err)
			}
			if err := ws.Put(k, end, rec.Value); err != nil {
				t.Fatal(err)
			}
		}
		kb, _ := sc.ParseKey("a")
		raw, err := state.SessionOf(ws).Fetch(kb, 1000, 3000)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := sc.Value(raw); err != nil || got != int64(3) {
			t.Errorf("session a@[1s,3s] = %v, %v; want 3", got, err)
		}
	})
}
