package state_test

import (
	"fmt"
	"math/rand"
	"reflect"
	"testing"

	"github.com/riffle-streams/riffle/state"
)

// TestCacheAgainstModel runs random writes through a cached store and a
// plain one: every read and scan of the cached store must equal the plain
// store's, however often the small budget forces entries out. After a flush
// the store under the cache holds the same data, and the listener was told
// each key's final value last.
func TestCacheAgainstModel(t *testing.T) {
	for _, limit := range []int64{1 << 20, 600} { // no eviction; constant eviction
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			budget := state.NewCacheBudget(limit)
			under := state.NewInMemoryKeyValue("under")
			cached := state.Cached(under, budget)
			model := state.NewInMemoryKeyValue("model")
			last := map[string]string{} // what the listener said last, per key
			flushes := 0
			cached.SetFlushListener(func(k, nv, ov []byte) error {
				flushes++
				if nv == nil {
					last[string(k)] = "<deleted>"
				} else {
					last[string(k)] = string(nv)
				}
				return nil
			})
			rng := rand.New(rand.NewSource(7))
			writes := 0
			for i := 0; i < 5000; i++ {
				k := []byte(fmt.Sprintf("k%02d", rng.Intn(40)))
				switch op := rng.Intn(10); {
				case op < 6:
					v := []byte(fmt.Sprint(i))
					must(t, cached.Put(k, v))
					must(t, model.Put(k, v))
					writes++
				case op < 8:
					a, err := cached.Delete(k)
					must(t, err)
					b, err := model.Delete(k)
					must(t, err)
					if string(a) != string(b) {
						t.Fatalf("step %d: Delete(%s) = %q, model %q", i, k, a, b)
					}
					writes++
				default:
					a, err := cached.Get(k)
					must(t, err)
					b, _ := model.Get(k)
					if string(a) != string(b) {
						t.Fatalf("step %d: Get(%s) = %q, model %q", i, k, a, b)
					}
				}
				if i%250 == 0 {
					compareScans(t, i, cached, model)
				}
				if i%1000 == 999 {
					must(t, cached.Flush())
				}
			}
			compareScans(t, -1, cached, model)
			must(t, cached.Flush())
			if got, want := dump(t, under), dump(t, model); !reflect.DeepEqual(got, want) {
				t.Fatalf("after flush the store holds %v\nwant %v", got, want)
			}
			for k, v := range dump(t, model) {
				if last[k] != v {
					t.Errorf("listener last said %s=%q, want %q", k, last[k], v)
				}
			}
			if budget.Used() != 0 {
				t.Errorf("budget still holds %d bytes after a flush", budget.Used())
			}
			t.Logf("%d writes, %d written through", writes, flushes)
			if limit > 1000 && flushes >= writes {
				t.Errorf("the cache deduplicated nothing: %d writes, %d written through", writes, flushes)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func dump(t *testing.T, kv state.KeyValueStore) map[string]string {
	t.Helper()
	it, err := kv.Range(nil, nil)
	must(t, err)
	out := map[string]string{}
	for _, e := range drain(t, it) {
		out[e.k] = e.v
	}
	return out
}

func compareScans(t *testing.T, step int, a, b state.KeyValueStore) {
	t.Helper()
	scans := []struct {
		name string
		open func(kv state.KeyValueStore) (state.Iterator, error)
	}{
		{"all", func(kv state.KeyValueStore) (state.Iterator, error) { return kv.Range(nil, nil) }},
		{"range", func(kv state.KeyValueStore) (state.Iterator, error) { return kv.Range([]byte("k10"), []byte("k25")) }},
		{"reverse", func(kv state.KeyValueStore) (state.Iterator, error) { return kv.ReverseRange([]byte("k05"), nil) }},
		{"prefix", func(kv state.KeyValueStore) (state.Iterator, error) { return kv.PrefixScan([]byte("k1")) }},
	}
	for _, s := range scans {
		ia, err := s.open(a)
		must(t, err)
		ib, err := s.open(b)
		must(t, err)
		ga, gb := drain(t, ia), drain(t, ib)
		if !reflect.DeepEqual(ga, gb) {
			t.Fatalf("step %d: %s scan = %v\nmodel %v", step, s.name, ga, gb)
		}
	}
	na, _ := a.ApproximateCount()
	nb, _ := b.ApproximateCount()
	if na != nb {
		t.Fatalf("step %d: count %d, model %d", step, na, nb)
	}
}

// TestCacheCheckpointWritesThrough: a checkpoint makes the cached writes
// reach the store (and so its changelog) before the offset is recorded.
func TestCacheCheckpointWritesThrough(t *testing.T) {
	under := state.NewInMemoryKeyValue("s")
	c := state.Cached(under, state.NewCacheBudget(1<<20))
	must(t, c.Put([]byte("a"), []byte("1")))
	if v, _ := under.Get([]byte("a")); v != nil {
		t.Fatalf("the write reached the store before a flush: %q", v)
	}
	must(t, c.(state.Restorable).Checkpoint(9))
	if v, _ := under.Get([]byte("a")); string(v) != "1" {
		t.Errorf("after a checkpoint the store has %q", v)
	}
	if off, ok, _ := c.(state.Restorable).AppliedOffset(); !ok || off != 9 {
		t.Errorf("offset %d, %v", off, ok)
	}
}
