package state_test

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/riffle-streams/riffle/state"
)

// model is the reference the store is checked against: a map, sorted on
// demand.
type model map[string]string

// scan returns the entries of m with keys in [from, to), ascending; nil
// bounds are open.
func (m model) scan(from, to []byte) []entry {
	return m.sorted(func(k string) bool {
		return (from == nil || k >= string(from)) && (to == nil || k < string(to))
	})
}

// prefixed returns the entries of m whose keys start with prefix.
func (m model) prefixed(prefix []byte) []entry {
	return m.sorted(func(k string) bool { return strings.HasPrefix(k, string(prefix)) })
}

// sorted returns the entries of m whose keys match, ascending.
func (m model) sorted(match func(string) bool) []entry {
	var keys []string
	for k := range m {
		if match(k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	es := make([]entry, len(keys))
	for i, k := range keys {
		es[i] = entry{k, m[k]}
	}
	return es
}

// randomKey returns a key of up to 3 bytes from an alphabet with 0x00 and
// 0xff, so there are a few thousand keys and many share prefixes.
func randomKey(r *rand.Rand) []byte {
	const alphabet = "\x00\x01abcdefghijkl\xfe\xff"
	k := make([]byte, r.IntN(4))
	for i := range k {
		k[i] = alphabet[r.IntN(len(alphabet))]
	}
	return k
}

// openSnapshot is an iterator opened earlier and what it must still see.
type openSnapshot struct {
	it   state.Iterator
	want []entry
}

// TestModel runs random operations against the store and the model and
// compares them. Iterators are opened, left open across writes, and checked
// later, to test that snapshots do not change.
func TestModel(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) { testModel(t, b) })
}

func testModel(t *testing.T, b backend) {
	r := rand.New(rand.NewPCG(1, 2))
	kv := b.open("model")
	m := model{}
	var open []openSnapshot

	check := func(op string, got, want []entry) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Fatalf("%s: got %d entries, want %d\ngot  %q\nwant %q", op, len(got), len(want), got, want)
		}
	}
	checkAll := func(step int) {
		t.Helper()
		it, err := kv.Range(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		check("full scan", drain(t, it), m.scan(nil, nil))
		it, _ = kv.ReverseRange(nil, nil)
		got := drain(t, it)
		slices.Reverse(got)
		check("full reverse scan", got, m.scan(nil, nil))
		// A persistent store's count is an estimate, checked elsewhere.
		if n, _ := kv.ApproximateCount(); !b.persistent && n != int64(len(m)) {
			t.Fatalf("step %d: ApproximateCount = %d, want %d", step, n, len(m))
		}
		for k, v := range m {
			if got, _ := kv.Get([]byte(k)); got == nil || string(got) != v {
				t.Fatalf("step %d: Get(%q) = %q, want %q", step, k, got, v)
			}
		}
	}

	steps := 20000 // for the B-tree to split and merge at every level
	if b.persistent {
		steps = 8000 // Pebble under -race records a stack per table read
	}
	for step := range steps {
		k := randomKey(r)
		v := []byte{byte(step), byte(step >> 8)}
		if r.IntN(10) == 0 {
			v = []byte{}
		}
		// Grow the store for the first half, shrink it for the second, so
		// nodes split and merge at every level.
		putWeight := 55
		if step > steps/2 {
			putWeight = 25
		}
		switch p := r.IntN(100); {
		case p < putWeight:
			if err := kv.Put(k, v); err != nil {
				t.Fatal(err)
			}
			m[string(k)] = string(v)
		case p < 75:
			old, err := kv.Delete(k)
			if err != nil {
				t.Fatal(err)
			}
			want, ok := m[string(k)]
			if (old != nil) != ok || string(old) != want {
				t.Fatalf("step %d: Delete(%q) = %q, want %q (present: %t)", step, k, old, want, ok)
			}
			delete(m, string(k))
		case p < 80:
			if err := kv.Put(k, nil); err != nil {
				t.Fatal(err)
			}
			delete(m, string(k))
		case p < 85:
			old, err := kv.PutIfAbsent(k, v)
			if err != nil {
				t.Fatal(err)
			}
			want, ok := m[string(k)]
			if (old != nil) != ok || string(old) != want {
				t.Fatalf("step %d: PutIfAbsent(%q) = %q, want %q (present: %t)", step, k, old, want, ok)
			}
			if !ok {
				m[string(k)] = string(v)
			}
		case p < 90:
			got, err := kv.Get(k)
			if err != nil {
				t.Fatal(err)
			}
			want, ok := m[string(k)]
			if (got != nil) != ok || string(got) != want {
				t.Fatalf("step %d: Get(%q) = %q, want %q (present: %t)", step, k, got, want, ok)
			}
		default:
			from, to := randomKey(r), randomKey(r)
			if r.IntN(4) == 0 {
				from = nil
			}
			if r.IntN(4) == 0 {
				to = nil
			}
			var it state.Iterator
			var want []entry
			switch r.IntN(3) {
			case 0:
				it, _ = kv.Range(from, to)
				want = m.scan(from, to)
			case 1:
				it, _ = kv.ReverseRange(from, to)
				want = m.scan(from, to)
				slices.Reverse(want)
			default:
				it, _ = kv.PrefixScan(from)
				want = m.prefixed(from)
			}
			if r.IntN(2) == 0 {
				check("scan", drain(t, it), want)
			} else {
				open = append(open, openSnapshot{it, want})
			}
		}
		// Check and close the oldest open iterator now and then.
		if len(open) > 0 && (len(open) > 8 || r.IntN(50) == 0) {
			check("snapshot", drain(t, open[0].it), open[0].want)
			open = open[1:]
		}
		if step%1000 == 0 {
			checkAll(step)
		}
		// Flush a persistent store now and then, so reads merge sstables
		// with the memtable, and open iterators outlive flushes.
		if b.persistent && step%2500 == 1250 {
			if err := kv.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	checkAll(steps)
	for _, o := range open {
		check("snapshot", drain(t, o.it), o.want)
	}

	// Delete everything, in random order, checking along the way.
	keys := make([][]byte, 0, len(m))
	for k := range m {
		keys = append(keys, []byte(k))
	}
	slices.SortFunc(keys, bytes.Compare)
	r.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	for i, k := range keys {
		if old, _ := kv.Delete(k); old == nil {
			t.Fatalf("Delete(%q) = nil, want a value", k)
		}
		delete(m, string(k))
		if i%500 == 0 {
			checkAll(i)
		}
	}
	checkAll(-1)
}
