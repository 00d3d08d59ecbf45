package state_test

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/riffle-streams/riffle/state"
)

// windowModel is what a window store should hold: every window put and not
// deleted, and the observed time; a window is visible while live.
type windowModel struct {
	retention int64
	windows   map[windowID]string
	observed  int64
	has       bool
}

type windowID struct {
	k     string
	start int64
}

func (m *windowModel) minLive() int64 {
	if !m.has || m.observed < math.MinInt64+m.retention {
		return math.MinInt64
	}
	return m.observed - m.retention
}

// advance moves the observed time, and forgets the windows that expire:
// they are never visible again.
func (m *windowModel) advance(start int64) {
	if !m.has || start > m.observed {
		m.observed, m.has = start, true
		for id := range m.windows {
			if id.start < m.minLive() {
				delete(m.windows, id)
			}
		}
	}
}

func (m *windowModel) set(k string, start int64, v []byte) {
	if v == nil {
		delete(m.windows, windowID{k, start})
	} else {
		m.windows[windowID{k, start}] = string(v)
	}
}

func (m *windowModel) put(k string, start int64, v []byte) {
	m.advance(start)
	if start >= m.minLive() {
		m.set(k, start, v)
	}
}

func (m *windowModel) restore(recs []state.ChangelogRecord) {
	for _, r := range recs {
		_, start, _ := state.SplitWindowKey(r.Key)
		m.advance(start)
	}
	for _, r := range recs {
		k, start, _ := state.SplitWindowKey(r.Key)
		if start >= m.minLive() {
			m.set(string(k), start, r.Value)
		}
	}
}

// fetch returns the visible windows with start in [from, to] that match,
// in order of start, then key.
func (m *windowModel) fetch(from, to int64, match func(string) bool) []win {
	from = max(from, m.minLive())
	var out []win
	for id, v := range m.windows {
		if id.start >= from && id.start <= to && match(id.k) {
			out = append(out, win{id.k, id.start, v})
		}
	}
	slices.SortFunc(out, func(a, b win) int {
		return cmp.Or(cmp.Compare(a.start, b.start), cmp.Compare(a.k, b.k))
	})
	return out
}

// windowKeys are keys that are prefixes of each other, or hold the bytes
// the layouts use.
var windowKeys = []string{"", "a", "ab", "a\x00", "aa", "b", "\x00", "\xff", "\xff\xff", "\x01\x00\x00\x00\x00\x00\x00\x00\x00"}

// TestWindowModel runs random puts, deletions, late writes and restores
// against each backend and a model, comparing every kind of read, and
// checks that no expired segment is kept. The persistent store is closed
// and reopened now and then.
func TestWindowModel(t *testing.T) {
	for _, backend := range []string{"memory", "pebble"} {
		t.Run(backend, func(t *testing.T) {
			for seed := range uint64(3) {
				testWindowModel(t, backend, seed)
			}
		})
	}
}

func testWindowModel(t *testing.T, backend string, seed uint64) {
	const retention = 10 * time.Minute
	r := rand.New(rand.NewPCG(seed, 99))
	var env *state.Env
	open := func() state.WindowStore {
		spec := state.Window("model", retention)
		if backend == "memory" {
			spec = state.Window("model", retention, state.InMemory())
		}
		ws, err := env.OpenWindow("app", fmt.Sprintf("0_%d", seed), spec)
		if err != nil {
			t.Fatal(err)
		}
		return ws
	}
	env = newTestEnv(t)
	ws := open()
	defer func() { ws.Close() }()
	m := &windowModel{retention: int64(retention / time.Millisecond), windows: map[windowID]string{}}
	now := int64(r.IntN(3)-1) * 30 * minute // start before, at or after the epoch
	randStart := func() int64 {
		switch r.IntN(10) {
		case 0:
			return now - int64(r.IntN(int(15*minute))) // late, maybe expired
		case 1:
			return now + int64(r.IntN(int(3*minute))) // ahead
		default:
			return now - int64(r.IntN(int(8*minute)))/1000*1000
		}
	}
	randValue := func(i int) []byte {
		if r.IntN(8) == 0 {
			return nil
		}
		return []byte(fmt.Sprint(i))
	}
	var offset int64
	for i := range 1000 {
		now += int64(r.IntN(int(20 * time.Second / time.Millisecond)))
		switch op := r.IntN(20); {
		case op == 0 && backend == "pebble" && r.IntN(8) == 0:
			if err := ws.Close(); err != nil {
				t.Fatal(err)
			}
			ws = open()
			if off, ok, err := ws.(state.Restorable).AppliedOffset(); err != nil || ok != (offset > 0) || off != offset {
				t.Fatalf("step %d: after reopening: AppliedOffset = %d, %t, %v; want %d", i, off, ok, err, offset)
			}
		case op <= 2:
			recs := make([]state.ChangelogRecord, r.IntN(20))
			for j := range recs {
				recs[j] = state.ChangelogRecord{Key: state.WindowKey([]byte(windowKeys[r.IntN(len(windowKeys))]), randStart()), Value: randValue(i)}
			}
			offset++
			if err := ws.(state.Restorable).Restore(recs, offset); err != nil {
				t.Fatal(err)
			}
			m.restore(recs)
		default:
			k, start, v := windowKeys[r.IntN(len(windowKeys))], randStart(), randValue(i)
			if err := ws.Put([]byte(k), start, v); err != nil {
				t.Fatal(err)
			}
			m.put(k, start, v)
		}

		// Reads.
		k := windowKeys[r.IntN(len(windowKeys))]
		from := randStart()
		to := from + int64(r.IntN(int(10*minute)))
		if r.IntN(2) == 0 {
			to = from + int64(r.IntN(600))*1000 // often exactly a start
		}
		if r.IntN(10) == 0 {
			from, to = math.MinInt64, math.MaxInt64
		}
		got := fetchRange(t, ws, k, from, to)
		if want := m.fetch(from, to, func(s string) bool { return s == k }); !slices.Equal(got, want) {
			t.Fatalf("seed %d step %d: FetchRange(%q, %d, %d):\n got %v\nwant %v", seed, i, k, from, to, got, want)
		}
		got = fetchAll(t, ws, from, to)
		if want := m.fetch(from, to, func(string) bool { return true }); !slices.Equal(got, want) {
			t.Fatalf("seed %d step %d: FetchAll(%d, %d):\n got %v\nwant %v", seed, i, from, to, got, want)
		}
		start := randStart()
		want := "<nil>"
		if v, ok := m.windows[windowID{k, start}]; ok && start >= m.minLive() {
			want = v
		}
		wantFetch(t, ws, k, start, want)

		// No segment is kept once all its windows are expired.
		if i%50 == 0 {
			interval := state.WindowSegmentInterval(ws)
			minSeg := floorDiv(m.minLive(), interval)
			if segs := state.WindowSegments(ws); len(segs) > 0 && segs[0] < minSeg {
				t.Fatalf("seed %d step %d: segments %v, the earliest live is %d", seed, i, segs, minSeg)
			}
		}
	}
	if all := m.fetch(math.MinInt64, math.MaxInt64, func(string) bool { return true }); len(all) < 20 {
		t.Errorf("seed %d: only %d windows at the end: the test exercises little", seed, len(all))
	}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}
