package riffletest_test

import (
	"fmt"
	"math/rand"
	"reflect"
	"testing"

	"github.com/riffle-streams/riffle/riffletest"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/stream"
	"github.com/riffle-streams/riffle/table"
	"github.com/riffle-streams/riffle/topology"
)

// countsOfCounts counts events per user, then how many users have each
// count: a stream aggregation, a table re-grouping with subtraction through
// a repartition topic, and two outputs.
func countsOfCounts(t *testing.T) *topology.Topology {
	b := topology.NewBuilder()
	perUser := stream.From[string, string](b, "events").GroupByKey().Count(stream.Named("per-user"))
	stream.ToStream(perUser).To("per-user-out")
	hist := table.GroupBy(perUser, func(user string, n int64) (int64, string) { return n, user }).
		Count(table.Named("users-per-count"))
	hist.To("histogram-out")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

type runResult struct {
	perUser, hist           map[string]string // last update per key on each output
	perUserN, histN         int               // how many updates each output had
	perUserStore, histStore map[string]string
}

func runCounts(t *testing.T, topo *topology.Topology, opts ...riffletest.Option) runResult {
	t.Helper()
	d, err := riffletest.New(topo, append(opts, riffletest.WithBackend(state.InMemoryBackend))...)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	in := riffletest.Input(d, "events", serde.String(), serde.String())
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 2000; i++ {
		if err := in.Pipe(fmt.Sprintf("user-%d", rng.Intn(50)), "click"); err != nil {
			t.Fatal(err)
		}
		if i%500 == 499 {
			if err := d.Commit(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := d.Commit(); err != nil {
		t.Fatal(err)
	}
	var r runResult
	r.perUser, r.perUserN = lastPerKey(t, riffletest.Output(d, "per-user-out", serde.String(), serde.Int64()))
	r.hist, r.histN = lastPerKey(t, riffletest.Output(d, "histogram-out", serde.Int64(), serde.Nullable(serde.Int64())))
	r.perUserStore = storeContents(t, d, "per-user", serde.String(), serde.Int64())
	r.histStore = storeContents(t, d, "users-per-count", serde.Int64(), serde.Int64())
	return r
}

func lastPerKey[K, V any](t *testing.T, out *riffletest.OutputTopic[K, V]) (map[string]string, int) {
	t.Helper()
	recs, err := out.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	last := map[string]string{}
	for _, r := range recs {
		last[fmt.Sprint(r.Key)] = show(r.Value)
	}
	return dropZeros(last), len(recs)
}

// show prints v, or the value it points to.
func show(v any) string {
	if p, ok := v.(*int64); ok {
		if p == nil {
			return "<deleted>"
		}
		return fmt.Sprint(*p)
	}
	return fmt.Sprint(v)
}

// dropZeros removes groups counted down to zero: a group at zero and a
// group never made are the same count. (With a cache, a count that a user
// passes through between two flushes is never made at all.)
func dropZeros(m map[string]string) map[string]string {
	for k, v := range m {
		if v == "0" {
			delete(m, k)
		}
	}
	return m
}

func storeContents[K, V any](t *testing.T, d *riffletest.Driver, name string, ks serde.Serde[K], vs serde.Serde[V]) map[string]string {
	t.Helper()
	kv, err := d.KeyValueStore(name)
	if err != nil {
		t.Fatal(err)
	}
	it, err := state.TypedRead(kv, ks, vs).All()
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	out := map[string]string{}
	for it.Next() {
		out[fmt.Sprint(it.Key())] = fmt.Sprint(it.Value())
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return dropZeros(out)
}

// TestCachingKeepsFinalResults: with a record cache, the stores end the
// same and every key's last update is the same; only the number of
// intermediate updates falls. With a tiny cache, evictions forward early,
// and the results are still the same.
func TestCachingKeepsFinalResults(t *testing.T) {
	topo := countsOfCounts(t)
	plain := runCounts(t, topo)
	for _, size := range []int64{1 << 20, 2048} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			cached := runCounts(t, topo, riffletest.WithCaching(size))
			if !reflect.DeepEqual(cached.perUserStore, plain.perUserStore) || !reflect.DeepEqual(cached.histStore, plain.histStore) {
				t.Errorf("stores differ with caching:\n%v\n%v\nwant\n%v\n%v", cached.perUserStore, cached.histStore, plain.perUserStore, plain.histStore)
			}
			if !reflect.DeepEqual(cached.perUser, plain.perUser) {
				t.Errorf("last per-user updates differ:\n%v\nwant\n%v", cached.perUser, plain.perUser)
			}
			if !reflect.DeepEqual(cached.hist, plain.hist) {
				t.Errorf("last histogram updates differ:\n%v\nwant\n%v", cached.hist, plain.hist)
			}
			t.Logf("updates: per-user %d -> %d, histogram %d -> %d", plain.perUserN, cached.perUserN, plain.histN, cached.histN)
			if cached.perUserN >= plain.perUserN || cached.histN >= plain.histN {
				t.Errorf("caching did not reduce updates: per-user %d -> %d, histogram %d -> %d",
					plain.perUserN, cached.perUserN, plain.histN, cached.histN)
			}
		})
	}
}
