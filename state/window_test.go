package state_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riffle-streams/riffle/state"
)

const minute = int64(time.Minute / time.Millisecond)

// windowBackend is a kind of window store the tests run against.
type windowBackend struct {
	name       string
	persistent bool
	// open returns a new, empty window store named name.
	open func(name string, retention time.Duration) state.WindowStore
}

// forEachWindowBackend runs f as a subtest for each backend: in memory, and
// persistent (Pebble, in a temporary directory). Stores are opened through
// an Env in both cases.
func forEachWindowBackend(t *testing.T, f func(t *testing.T, b windowBackend)) {
	t.Helper()
	t.Run("memory", func(t *testing.T) {
		env, err := state.NewEnv("")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { env.Close() })
		f(t, windowBackend{name: "memory", open: func(name string, retention time.Duration) state.WindowStore {
			ws, err := env.OpenWindow("app", "0_0", state.Window(name, retention, state.InMemory()))
			if err != nil {
				t.Fatalf("OpenWindow(%q): %v", name, err)
			}
			return ws
		}})
	})
	t.Run("pebble", func(t *testing.T) {
		env := newTestEnv(t)
		tasks := 0 // each store in a task of its own, so names may repeat
		f(t, windowBackend{name: "pebble", persistent: true, open: func(name string, retention time.Duration) state.WindowStore {
			tasks++
			return openWindowStore(t, env, fmt.Sprintf("0_%d", tasks), name, retention)
		}})
	})
}

// openWindowStore opens the persistent window store name of task in env,
// closed when the test ends if the test has not closed it.
func openWindowStore(t testing.TB, env *state.Env, task, name string, retention time.Duration) state.WindowStore {
	t.Helper()
	ws, err := env.OpenWindow("app", task, state.Window(name, retention))
	if err != nil {
		t.Fatalf("OpenWindow(%q): %v", name, err)
	}
	t.Cleanup(func() {
		if err := ws.Close(); err != nil && !errors.Is(err, state.ErrClosed) {
			t.Errorf("Close(%q): %v", name, err)
		}
	})
	return ws
}

// win is a window of an iteration, as strings.
type win struct {
	k     string
	start int64
	v     string
}

func (w win) String() string { return fmt.Sprintf("%s@%d=%s", w.k, w.start, w.v) }

// drainWindows reads it to the end, closes it and returns what it saw.
func drainWindows(t testing.TB, it state.WindowIterator) []win {
	t.Helper()
	var got []win
	for it.Next() {
		got = append(got, win{string(it.Key()), it.Start(), string(it.Value())})
	}
	if err := it.Err(); err != nil {
		t.Fatalf("iterator: %v", err)
	}
	if err := it.Close(); err != nil {
		t.Fatalf("close iterator: %v", err)
	}
	return got
}

func putWindow(t testing.TB, ws state.WindowStore, k string, start int64, v string) {
	t.Helper()
	if err := ws.Put([]byte(k), start, bound(v)); err != nil {
		t.Fatalf("Put(%q, %d): %v", k, start, err)
	}
}

func fetchRange(t testing.TB, ws state.WindowStore, k string, from, to int64) []win {
	t.Helper()
	it, err := ws.FetchRange([]byte(k), from, to)
	if err != nil {
		t.Fatalf("FetchRange(%q, %d, %d): %v", k, from, to, err)
	}
	return drainWindows(t, it)
}

func fetchAll(t testing.TB, ws state.WindowStore, from, to int64) []win {
	t.Helper()
	it, err := ws.FetchAll(from, to)
	if err != nil {
		t.Fatalf("FetchAll(%d, %d): %v", from, to, err)
	}
	return drainWindows(t, it)
}

// wantFetch checks the value of k's window at start; "<nil>" is absent.
func wantFetch(t testing.TB, ws state.WindowStore, k string, start int64, want string) {
	t.Helper()
	v, err := ws.Fetch([]byte(k), start)
	if err != nil {
		t.Fatalf("Fetch(%q, %d): %v", k, start, err)
	}
	got := "<nil>"
	if v != nil {
		got = string(v)
	}
	if got != want {
		t.Errorf("Fetch(%q, %d) = %q, want %q", k, start, got, want)
	}
}

func wantWindows(t testing.TB, what string, got, want []win) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got %v\nwant %v", what, got, want)
	}
}

func TestWindowPutFetch(t *testing.T) {
	forEachWindowBackend(t, func(t *testing.T, b windowBackend) {
		ws := b.open("w", time.Hour)
		if ws.Name() != "w" || ws.Retention() != time.Hour {
			t.Errorf("Name, Retention = %q, %v", ws.Name(), ws.Retention())
		}
		wantFetch(t, ws, "a", 0, "<nil>")
		putWindow(t, ws, "a", 0, "1")
		putWindow(t, ws, "a", minute, "2")
		putWindow(t, ws, "b", 0, "3")
		wantFetch(t, ws, "a", 0, "1")
		wantFetch(t, ws, "a", minute, "2")
		wantFetch(t, ws, "b", 0, "3")
		wantFetch(t, ws, "a", 1, "<nil>")
		wantFetch(t, ws, "ab", 0, "<nil>")

		putWindow(t, ws, "a", 0, "4") // overwrite
		wantFetch(t, ws, "a", 0, "4")

		// An empty value is a value; nil deletes.
		putWindow(t, ws, "e", 0, "")
		if v, err := ws.Fetch([]byte("e"), 0); err != nil || v == nil || len(v) != 0 {
			t.Errorf("Fetch(e) = %q (nil: %t), %v; want empty", v, v == nil, err)
		}
		if err := ws.Put([]byte("a"), 0, nil); err != nil {
			t.Fatal(err)
		}
		wantFetch(t, ws, "a", 0, "<nil>")
		wantFetch(t, ws, "a", minute, "2")
		if err := ws.Put([]byte("never"), 0, nil); err != nil { // deleting an absent window
			t.Fatal(err)
		}

		// The empty key is a key like any other.
		putWindow(t, ws, "", 0, "empty key")
		wantFetch(t, ws, "", 0, "empty key")

		// The store copies: the caller may reuse its buffers.
		k, v := []byte("k"), []byte("v")
		if err := ws.Put(k, 0, v); err != nil {
			t.Fatal(err)
		}
		copy(k, "x")
		copy(v, "y")
		wantFetch(t, ws, "k", 0, "v")

		// A nil key is refused.
		if err := ws.Put(nil, 0, []byte("v")); !errors.Is(err, state.ErrNilKey) {
			t.Errorf("Put(nil): %v", err)
		}
		if _, err := ws.Fetch(nil, 0); !errors.Is(err, state.ErrNilKey) {
			t.Errorf("Fetch(nil): %v", err)
		}
		if _, err := ws.FetchRange(nil, 0, 1); !errors.Is(err, state.ErrNilKey) {
			t.Errorf("FetchRange(nil): %v", err)
		}
	})
}

func TestWindowFetchRange(t *testing.T) {
	forEachWindowBackend(t, func(t *testing.T, b windowBackend) {
		ws := b.open("w", time.Hour) // segments of 30 minutes
		// Keys that are prefixes of each other, windows across segments,
		// put out of order.
		for _, m := range []int64{50, 0, 10, 31, 29, 30, 45} {
			for _, k := range []string{"ab", "a", "", "b", "a\x00", "aa"} {
				putWindow(t, ws, k, m*minute, fmt.Sprintf("%s%d", k, m))
			}
		}
		if n := len(state.WindowSegments(ws)); n != 2 {
			t.Errorf("%d segments, want 2", n)
		}
		ws1 := func(k string, ms ...int64) []win {
			var out []win
			for _, m := range ms {
				out = append(out, win{k, m * minute, fmt.Sprintf("%s%d", k, m)})
			}
			return out
		}
		wantWindows(t, "a, all", fetchRange(t, ws, "a", math.MinInt64, math.MaxInt64), ws1("a", 0, 10, 29, 30, 31, 45, 50))
		wantWindows(t, "ab, all", fetchRange(t, ws, "ab", 0, 50*minute), ws1("ab", 0, 10, 29, 30, 31, 45, 50))
		wantWindows(t, "empty key", fetchRange(t, ws, "", 0, 50*minute), ws1("", 0, 10, 29, 30, 31, 45, 50))
		wantWindows(t, "a\\x00", fetchRange(t, ws, "a\x00", 0, 10*minute), ws1("a\x00", 0, 10))
		// Both bounds are inclusive.
		wantWindows(t, "[10, 30]", fetchRange(t, ws, "a", 10*minute, 30*minute), ws1("a", 10, 29, 30))
		wantWindows(t, "[10+1, 30-1]", fetchRange(t, ws, "a", 10*minute+1, 30*minute-1), ws1("a", 29))
		wantWindows(t, "[30, 30]", fetchRange(t, ws, "aa", 30*minute, 30*minute), ws1("aa", 30))
		wantWindows(t, "[31, 44]", fetchRange(t, ws, "b", 31*minute, 44*minute), ws1("b", 31))
		wantWindows(t, "from > to", fetchRange(t, ws, "a", 30*minute, 29*minute), nil)
		wantWindows(t, "absent key", fetchRange(t, ws, "c", 0, 50*minute), nil)
		wantWindows(t, "prefix of keys", fetchRange(t, ws, "a\x00\x00", 0, 50*minute), nil)
		wantWindows(t, "after all", fetchRange(t, ws, "a", 51*minute, math.MaxInt64), nil)
	})
}

func TestWindowFetchAll(t *testing.T) {
	forEachWindowBackend(t, func(t *testing.T, b windowBackend) {
		ws := b.open("w", time.Hour)
		for _, m := range []int64{40, 0, 30, 29} {
			for _, k := range []string{"b", "ab", "a", ""} {
				putWindow(t, ws, k, m*minute, fmt.Sprint(m))
			}
		}
		at := func(ms ...int64) []win {
			var out []win
			for _, m := range ms {
				for _, k := range []string{"", "a", "ab", "b"} {
					out = append(out, win{k, m * minute, fmt.Sprint(m)})
				}
			}
			return out
		}
		wantWindows(t, "all", fetchAll(t, ws, math.MinInt64, math.MaxInt64), at(0, 29, 30, 40))
		wantWindows(t, "[0, 30]", fetchAll(t, ws, 0, 30*minute), at(0, 29, 30))
		wantWindows(t, "[1, 40]", fetchAll(t, ws, 1, 40*minute), at(29, 30, 40))
		wantWindows(t, "[30, 30]", fetchAll(t, ws, 30*minute, 30*minute), at(30))
		wantWindows(t, "[1, 28]", fetchAll(t, ws, 1, 28*minute), nil)
		wantWindows(t, "from > to", fetchAll(t, ws, 40*minute, 0), nil)
		// Deleted windows are gone from both orders.
		if err := ws.Put([]byte("ab"), 30*minute, nil); err != nil {
			t.Fatal(err)
		}
		want := slices.DeleteFunc(at(30), func(w win) bool { return w.k == "ab" })
		wantWindows(t, "after delete", fetchAll(t, ws, 30*minute, 30*minute), want)
		wantWindows(t, "after delete, by key", fetchRange(t, ws, "ab", 29*minute, 40*minute), []win{{"ab", 29 * minute, "29"}, {"ab", 40 * minute, "40"}})
	})
}

// TestWindowNegativeTimes checks that times before the epoch sort before
// those after it.
func TestWindowNegativeTimes(t *testing.T) {
	forEachWindowBackend(t, func(t *testing.T, b windowBackend) {
		ws := b.open("w", time.Hour)
		for _, s := range []int64{1, -1, 0, -minute - 1, -30 * minute} {
			putWindow(t, ws, "k", s, fmt.Sprint(s))
		}
		want := []win{{"k", -30 * minute, "-1800000"}, {"k", -minute - 1, "-60001"}, {"k", -1, "-1"}, {"k", 0, "0"}, {"k", 1, "1"}}
		wantWindows(t, "by key", fetchRange(t, ws, "k", math.MinInt64, math.MaxInt64), want)
		wantWindows(t, "all", fetchAll(t, ws, math.MinInt64, math.MaxInt64), want)
		wantWindows(t, "[-1, 0]", fetchAll(t, ws, -1, 0), want[2:4])
		wantFetch(t, ws, "k", -minute-1, "-60001")
	})
}

// TestWindowRetention checks that windows expire as newer ones advance the
// observed time: at once to reads, and by whole segments in storage.
func TestWindowRetention(t *testing.T) {
	forEachWindowBackend(t, func(t *testing.T, b windowBackend) {
		ws := b.open("w", 10*time.Minute) // segments of 5 minutes
		if got := state.WindowSegmentInterval(ws); got != 5*minute {
			t.Fatalf("segment interval %d, want %d", got, 5*minute)
		}
		for m := int64(0); m < 10; m++ {
			putWindow(t, ws, "a", m*minute, fmt.Sprint(m))
			putWindow(t, ws, "b", m*minute, fmt.Sprint(m))
		}
		if got := state.WindowSegments(ws); !slices.Equal(got, []int64{0, 1}) {
			t.Fatalf("segments %v, want [0 1]", got)
		}
		// The observed time is 9 minutes: everything is live.
		if got := fetchAll(t, ws, 0, math.MaxInt64); len(got) != 20 {
			t.Fatalf("%d windows, want 20", len(got))
		}

		// 17 minutes: windows before 7 minutes expire. Segment 0 goes;
		// segment 1 stays, with its windows at 5 and 6 minutes hidden.
		putWindow(t, ws, "c", 17*minute, "17")
		if got := state.WindowSegments(ws); !slices.Equal(got, []int64{1, 3}) {
			t.Errorf("segments %v, want [1 3]", got)
		}
		if n := state.WindowEntries(ws, 0); n != 0 {
			t.Errorf("%d entries left in the dropped segment", n)
		}
		if n := state.WindowEntries(ws, 1); n != 20 {
			t.Errorf("%d entries in segment 1, want 20 (5 windows of 2 keys, twice)", n)
		}
		if b.persistent {
			if n := state.WindowRangeDeletes(ws); n != 1 {
				t.Errorf("%d range deletions, want 1", n)
			}
		}
		wantFetch(t, ws, "a", 6*minute, "<nil>")
		wantFetch(t, ws, "a", 7*minute, "7") // exactly the retention old: live
		wantFetch(t, ws, "a", 0, "<nil>")
		wantWindows(t, "a", fetchRange(t, ws, "a", 0, math.MaxInt64), []win{{"a", 7 * minute, "7"}, {"a", 8 * minute, "8"}, {"a", 9 * minute, "9"}})
		wantWindows(t, "all", fetchAll(t, ws, 0, 8*minute), []win{{"a", 7 * minute, "7"}, {"b", 7 * minute, "7"}, {"a", 8 * minute, "8"}, {"b", 8 * minute, "8"}})
		wantWindows(t, "all expired", fetchAll(t, ws, 0, 7*minute-1), nil)

		// A Put of an expired window is ignored, a deletion too.
		putWindow(t, ws, "a", 7*minute-1, "late")
		putWindow(t, ws, "z", 0, "late")
		if err := ws.Put([]byte("a"), 6*minute, nil); err != nil {
			t.Fatal(err)
		}
		wantFetch(t, ws, "a", 7*minute-1, "<nil>")
		wantFetch(t, ws, "z", 0, "<nil>")
		if got := state.WindowSegments(ws); !slices.Equal(got, []int64{1, 3}) {
			t.Errorf("after late puts: segments %v, want [1 3]", got)
		}
		// A deletion of a live window advances the observed time too.
		if err := ws.Put([]byte("a"), 18*minute, nil); err != nil {
			t.Fatal(err)
		}
		wantFetch(t, ws, "a", 7*minute, "<nil>")
		wantFetch(t, ws, "a", 8*minute, "8")

		// A jump far ahead drops every older segment.
		putWindow(t, ws, "d", 1000*minute, "1000")
		if got := state.WindowSegments(ws); !slices.Equal(got, []int64{200}) {
			t.Errorf("after the jump: segments %v, want [200]", got)
		}
		for _, seg := range []int64{1, 3} {
			if n := state.WindowEntries(ws, seg); n != 0 {
				t.Errorf("%d entries left in dropped segment %d", n, seg)
			}
		}
		if b.persistent {
			if n := state.WindowRangeDeletes(ws); n != 3 {
				t.Errorf("%d range deletions, want 3 (one per segment)", n)
			}
		}
		wantWindows(t, "after the jump", fetchAll(t, ws, math.MinInt64, math.MaxInt64), []win{{"d", 1000 * minute, "1000"}})
	})
}

// TestWindowShortRetention checks the smallest segment interval: a minute,
// for a retention of less than two.
func TestWindowShortRetention(t *testing.T) {
	forEachWindowBackend(t, func(t *testing.T, b windowBackend) {
		ws := b.open("w", 1500*time.Microsecond) // rounds up to 2 ms
		if got := state.WindowSegmentInterval(ws); got != minute {
			t.Fatalf("segment interval %d, want %d", got, minute)
		}
		putWindow(t, ws, "k", 10, "10")
		putWindow(t, ws, "k", 12, "12")
		putWindow(t, ws, "k", 7, "7") // 12 - 2 = 10 is the earliest live
		wantWindows(t, "k", fetchRange(t, ws, "k", 0, 100), []win{{"k", 10, "10"}, {"k", 12, "12"}})
		putWindow(t, ws, "k", minute+2, "m")
		if got := state.WindowSegments(ws); !slices.Equal(got, []int64{1}) {
			t.Errorf("segments %v, want [1]", got)
		}
	})
}

func windowRec(k string, start int64, v string) state.ChangelogRecord {
	return state.ChangelogRecord{Key: state.WindowKey([]byte(k), start), Value: bound(v)}
}

func asRestorableWindow(t testing.TB, ws state.WindowStore) state.Restorable {
	t.Helper()
	r, ok := ws.(state.Restorable)
	if !ok {
		t.Fatalf("%T does not implement state.Restorable", ws)
	}
	return r
}

func TestWindowRestore(t *testing.T) {
	forEachWindowBackend(t, func(t *testing.T, b windowBackend) {
		ws := b.open("w", 10*time.Minute)
		r := asRestorableWindow(t, ws)
		wantApplied(t, r, 0, false)

		putWindow(t, ws, "gone", minute, "x")
		err := r.Restore([]state.ChangelogRecord{
			windowRec("a", minute, "1"),
			windowRec("b", 2*minute, "2"),
			windowRec("a", minute, "3"), // later records win
			windowRec("gone", minute, "<nil>"),
			windowRec("never", minute, "<nil>"),
			windowRec("empty", minute, ""),
			windowRec("ab", minute, "4"),
		}, 41)
		if err != nil {
			t.Fatalf("Restore: %v", err)
		}
		wantApplied(t, r, 41, true)
		wantWindows(t, "after Restore", fetchAll(t, ws, 0, math.MaxInt64), []win{
			{"a", minute, "3"}, {"ab", minute, "4"}, {"empty", minute, ""}, {"b", 2 * minute, "2"},
		})
		wantWindows(t, "a", fetchRange(t, ws, "a", 0, math.MaxInt64), []win{{"a", minute, "3"}})

		// Restored windows advance the observed time: at 13 minutes, the
		// windows before 3 minutes expire, and the records of this batch
		// that are expired by its end are skipped.
		err = r.Restore([]state.ChangelogRecord{
			windowRec("old", 2*minute, "skipped"),
			windowRec("c", 13*minute, "13"),
			windowRec("d", 3*minute, "3"), // exactly the retention old: kept
		}, 42)
		if err != nil {
			t.Fatalf("Restore: %v", err)
		}
		wantApplied(t, r, 42, true)
		wantWindows(t, "after the second Restore", fetchAll(t, ws, math.MinInt64, math.MaxInt64), []win{{"d", 3 * minute, "3"}, {"c", 13 * minute, "13"}})
		if got := state.WindowSegments(ws); !slices.Equal(got, []int64{0, 2}) {
			t.Errorf("segments %v, want [0 2]", got)
		}
		// A Put of a window older than the restored ones is ignored.
		putWindow(t, ws, "late", 2*minute, "x")
		wantFetch(t, ws, "late", 2*minute, "<nil>")

		// No records still records the offset.
		if err := r.Restore(nil, 43); err != nil {
			t.Fatal(err)
		}
		wantApplied(t, r, 43, true)

		// A bad key fails the whole batch: nothing is applied.
		err = r.Restore([]state.ChangelogRecord{windowRec("e", 13*minute, "4"), {Key: nil, Value: []byte("x")}}, 50)
		if !errors.Is(err, state.ErrNilKey) {
			t.Errorf("Restore with a nil key: err = %v, want ErrNilKey", err)
		}
		err = r.Restore([]state.ChangelogRecord{windowRec("e", 13*minute, "4"), {Key: []byte("short"), Value: []byte("x")}}, 50)
		if err == nil || !strings.Contains(err.Error(), `state: store "w": restore: record 1: windowed key of 5 bytes: want at least 8`) {
			t.Errorf("Restore with a short key: err = %v", err)
		}
		wantApplied(t, r, 43, true)
		wantFetch(t, ws, "e", 13*minute, "<nil>")

		// Restore copies: the caller may reuse its buffers.
		rec := windowRec("k", 13*minute, "v")
		if err := r.Restore([]state.ChangelogRecord{rec}, 44); err != nil {
			t.Fatal(err)
		}
		copy(rec.Key, "x")
		copy(rec.Value, "y")
		wantFetch(t, ws, "k", 13*minute, "v")

		if err := r.Checkpoint(100); err != nil {
			t.Fatalf("Checkpoint: %v", err)
		}
		wantApplied(t, r, 100, true)

		if err := ws.Close(); err != nil {
			t.Fatal(err)
		}
		if _, _, err := r.AppliedOffset(); !errors.Is(err, state.ErrClosed) {
			t.Errorf("AppliedOffset after Close: err = %v, want ErrClosed", err)
		}
		if err := r.Restore(nil, 1); !errors.Is(err, state.ErrClosed) {
			t.Errorf("Restore after Close: err = %v, want ErrClosed", err)
		}
		if err := r.Checkpoint(1); !errors.Is(err, state.ErrClosed) {
			t.Errorf("Checkpoint after Close: err = %v, want ErrClosed", err)
		}
	})
}

// TestWindowRestoreSnapshot checks that a Restore is atomic for readers.
func TestWindowRestoreSnapshot(t *testing.T) {
	forEachWindowBackend(t, func(t *testing.T, b windowBackend) {
		ws := b.open("w", 2*time.Hour)
		r := asRestorableWindow(t, ws)
		batch := func(round int) []state.ChangelogRecord {
			rs := make([]state.ChangelogRecord, 50)
			for i := range rs {
				rs[i] = windowRec(fmt.Sprintf("k%02d", i%10), int64(i/10)*20*minute, fmt.Sprint(round))
			}
			return rs
		}
		if err := r.Restore(batch(1), 1); err != nil {
			t.Fatal(err)
		}
		all, err := ws.FetchAll(math.MinInt64, math.MaxInt64)
		if err != nil {
			t.Fatal(err)
		}
		one, err := ws.FetchRange([]byte("k03"), math.MinInt64, math.MaxInt64)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Restore(batch(2), 2); err != nil {
			t.Fatal(err)
		}
		putWindow(t, ws, "k03", 10*minute, "2")
		for what, it := range map[string]state.WindowIterator{"FetchAll": all, "FetchRange": one} {
			got := drainWindows(t, it)
			if what == "FetchAll" && len(got) != 50 || what == "FetchRange" && len(got) != 5 {
				t.Errorf("%s opened before the second Restore: %d windows", what, len(got))
			}
			for _, w := range got {
				if w.v != "1" {
					t.Errorf("%s opened before the second Restore saw %v", what, w)
				}
			}
		}
		for _, w := range fetchAll(t, ws, math.MinInt64, math.MaxInt64) {
			if w.v != "2" {
				t.Fatalf("after the second Restore: %v", w)
			}
		}
	})
}

// TestPebbleWindowReopen checks that a persistent window store keeps its
// windows, applied offset and observed time across Close and open.
func TestPebbleWindowReopen(t *testing.T) {
	env := newTestEnv(t)
	ws := openWindowStore(t, env, "0_0", "reopen", 10*time.Minute)
	r := asRestorableWindow(t, ws)
	if err := r.Restore([]state.ChangelogRecord{windowRec("a", minute, "1"), windowRec("b", 2*minute, "2")}, 7); err != nil {
		t.Fatal(err)
	}
	if err := ws.Close(); err != nil {
		t.Fatal(err)
	}

	ws = openWindowStore(t, env, "0_0", "reopen", 10*time.Minute)
	r = asRestorableWindow(t, ws)
	wantApplied(t, r, 7, true)
	want := []win{{"a", minute, "1"}, {"b", 2 * minute, "2"}}
	wantWindows(t, "after reopen", fetchAll(t, ws, math.MinInt64, math.MaxInt64), want)
	putWindow(t, ws, "c", 12*minute, "3") // observed 12: windows before 2 expire
	if err := r.Checkpoint(9); err != nil {
		t.Fatal(err)
	}
	putWindow(t, ws, "d", 12*minute, "") // after the checkpoint
	if err := ws.Close(); err != nil {
		t.Fatal(err)
	}

	ws = openWindowStore(t, env, "0_0", "reopen", 10*time.Minute)
	wantApplied(t, asRestorableWindow(t, ws), 9, true)
	// The observed time survived: "a" at 1 minute is still expired, and a
	// late Put is still ignored.
	want = []win{{"b", 2 * minute, "2"}, {"c", 12 * minute, "3"}, {"d", 12 * minute, ""}}
	wantWindows(t, "after second reopen", fetchAll(t, ws, math.MinInt64, math.MaxInt64), want)
	putWindow(t, ws, "late", minute, "x")
	wantFetch(t, ws, "late", minute, "<nil>")
	wantWindows(t, "b", fetchRange(t, ws, "b", 0, math.MaxInt64), []win{{"b", 2 * minute, "2"}})
	if err := ws.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopened with a longer retention, the store keeps the segment
	// interval it was made with, and finds its windows: those expired but
	// not yet dropped ("a", in the segment of "b") are live again.
	ws = openWindowStore(t, env, "0_0", "reopen", 4*time.Hour)
	if got := state.WindowSegmentInterval(ws); got != 5*minute {
		t.Errorf("segment interval %d after reopening, want %d", got, 5*minute)
	}
	wantWindows(t, "with a longer retention", fetchAll(t, ws, math.MinInt64, math.MaxInt64), append([]win{{"a", minute, "1"}}, want...))
	wantFetch(t, ws, "b", 2*minute, "2")
	if err := ws.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopened with a shorter retention, what it expires is dropped.
	ws = openWindowStore(t, env, "0_0", "reopen", 3*time.Minute)
	wantWindows(t, "with a shorter retention", fetchAll(t, ws, math.MinInt64, math.MaxInt64), want[1:])
	if got := state.WindowSegments(ws); !slices.Equal(got, []int64{2}) {
		t.Errorf("segments %v, want [2]", got)
	}
}

func TestLoggedWindow(t *testing.T) {
	forEachWindowBackend(t, func(t *testing.T, b windowBackend) {
		log := &recorder{}
		ws := state.LoggedWindow(b.open("w", 10*time.Minute), log)
		putWindow(t, ws, "a", minute, "1")
		putWindow(t, ws, "ab", 2*minute, "")
		if err := ws.Put([]byte("a"), minute, nil); err != nil {
			t.Fatal(err)
		}
		putWindow(t, ws, "b", -1, "neg")
		want := []string{
			string(state.WindowKey([]byte("a"), minute)) + `="1"`,
			string(state.WindowKey([]byte("ab"), 2*minute)) + `=""`,
			string(state.WindowKey([]byte("a"), minute)) + `=<nil>`,
			string(state.WindowKey([]byte("b"), -1)) + `="neg"`,
		}
		if !slices.Equal(log.recs, want) {
			t.Errorf("changelog:\n%q\nwant:\n%q", log.recs, want)
		}
		// Each record's key splits back into the key and start.
		k, start, err := state.SplitWindowKey([]byte(strings.SplitN(log.recs[1], "=", 2)[0]))
		if err != nil || string(k) != "ab" || start != 2*minute {
			t.Errorf("SplitWindowKey = %q, %d, %v", k, start, err)
		}
		wantFetch(t, ws, "ab", 2*minute, "")

		// Restore goes to the store, not to the log, and the records of the
		// log restore the same store.
		r := asRestorableWindow(t, ws)
		if err := r.Restore([]state.ChangelogRecord{windowRec("x", minute, "9")}, 41); err != nil {
			t.Fatal(err)
		}
		wantApplied(t, r, 41, true)
		if err := r.Checkpoint(42); err != nil {
			t.Fatal(err)
		}
		wantApplied(t, r, 42, true)
		wantFetch(t, ws, "x", minute, "9")
		if len(log.recs) != 4 {
			t.Errorf("%d log records after Restore, want 4", len(log.recs))
		}

		// A log that fails makes the write fail, naming the store.
		log.fail = errors.New("producer closed")
		err = ws.Put([]byte("d"), minute, []byte("4"))
		if err == nil || !strings.Contains(err.Error(), `store "w": put: append to changelog: producer closed`) {
			t.Errorf("failing log: %v", err)
		}
	})
}

// TestLoggedWindowReplay checks that replaying a logged store's changelog
// into a new store yields the same windows, expiry included.
func TestLoggedWindowReplay(t *testing.T) {
	forEachWindowBackend(t, func(t *testing.T, b windowBackend) {
		log := &recordLog{}
		ws := state.LoggedWindow(b.open("w", 10*time.Minute), log)
		for i := range 200 {
			k := fmt.Sprintf("k%d", i%7)
			start := int64(i/3) * minute / 2
			var v []byte
			if i%11 != 0 {
				v = []byte(fmt.Sprint(i))
			}
			if i%5 == 0 {
				start -= 12 * minute // late: ignored, but logged
			}
			if err := ws.Put([]byte(k), start, v); err != nil {
				t.Fatal(err)
			}
		}
		other := b.open("w2", 10*time.Minute)
		if err := asRestorableWindow(t, other).Restore(log.recs, int64(len(log.recs))); err != nil {
			t.Fatal(err)
		}
		wantWindows(t, "replayed", fetchAll(t, other, math.MinInt64, math.MaxInt64), fetchAll(t, ws, math.MinInt64, math.MaxInt64))
	})
}

// recordLog is a Changelog that keeps records as the changelog carries
// them.
type recordLog struct{ recs []state.ChangelogRecord }

func (l *recordLog) Append(key, value []byte) error {
	r := state.ChangelogRecord{Key: bytes.Clone(key)}
	if value != nil {
		r.Value = bytes.Clone(value)
	}
	l.recs = append(l.recs, r)
	return nil
}

// TestLoggedWindowNotRestorable checks that restoring through a logged
// layer over a store that cannot be restored fails clearly.
func TestLoggedWindowNotRestorable(t *testing.T) {
	ws := state.LoggedWindow(plainWindow{}, &recorder{})
	r := ws.(state.Restorable)
	if _, _, err := r.AppliedOffset(); err == nil || !strings.Contains(err.Error(), `store "plain" (state_test.plainWindow) cannot be restored`) {
		t.Errorf("AppliedOffset: %v", err)
	}
	if err := r.Restore(nil, 1); err == nil {
		t.Error("Restore: no error")
	}
	if err := r.Checkpoint(1); err == nil {
		t.Error("Checkpoint: no error")
	}
}

// plainWindow is a WindowStore that is not Restorable.
type plainWindow struct{ state.WindowStore }

func (plainWindow) Name() string { return "plain" }

func FuzzSplitWindowKey(f *testing.F) {
	f.Add([]byte("key"), int64(0))
	f.Add([]byte{}, int64(-1))
	f.Add([]byte("\x00\x00\x00\x00\x00\x00\x00\x00\x00"), int64(math.MinInt64))
	f.Add([]byte("abc"), int64(math.MaxInt64))
	f.Fuzz(func(t *testing.T, data []byte, start int64) {
		// A key and start round-trip.
		wk := state.WindowKey(data, start)
		if len(wk) != len(data)+8 {
			t.Fatalf("WindowKey(%q, %d) has %d bytes", data, start, len(wk))
		}
		k, s, err := state.SplitWindowKey(wk)
		if err != nil || !bytes.Equal(k, data) || s != start {
			t.Fatalf("SplitWindowKey(WindowKey(%q, %d)) = %q, %d, %v", data, start, k, s, err)
		}
		// The key is the prefix, and the start is big-endian.
		if !bytes.HasPrefix(wk, data) || wk[len(data)] != byte(uint64(start)>>56) {
			t.Fatalf("WindowKey(%q, %d) = %x", data, start, wk)
		}
		// Any bytes split and join back, or are too short.
		k, s, err = state.SplitWindowKey(data)
		if len(data) < 8 {
			if err == nil {
				t.Fatalf("SplitWindowKey(%q): no error", data)
			}
			return
		}
		if err != nil || !bytes.Equal(state.WindowKey(k, s), data) {
			t.Fatalf("SplitWindowKey(%q) = %q, %d, %v", data, k, s, err)
		}
		// The key cannot be grown into the start's bytes.
		if cap(k) != len(k) {
			t.Fatalf("SplitWindowKey(%q): key has capacity %d > length %d", data, cap(k), len(k))
		}
	})
}

// TestWindowDirectorySafety checks that a directory of one kind of store is
// never opened as the other.
func TestWindowDirectorySafety(t *testing.T) {
	env := newTestEnv(t)
	kv, err := env.OpenKeyValue("app", "0_0", state.KeyValue("s"))
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, kv, "k", "v")
	if err := kv.Close(); err != nil {
		t.Fatal(err)
	}
	before := listFiles(t, env.Dir())
	_, err = env.OpenWindow("app", "0_0", state.Window("s", time.Hour))
	dir := env.StoreDir("app", "0_0", "s")
	want := fmt.Sprintf(`state: store "s" in %s: the directory holds a key-value store, not a window store; choose another state directory or delete it`, dir)
	if err == nil || err.Error() != want {
		t.Errorf("OpenWindow on a key-value store's directory:\n got %v\nwant %s", err, want)
	}
	if after := listFiles(t, env.Dir()); !slices.Equal(after, before) {
		t.Errorf("files changed\nbefore %q\nafter  %q", before, after)
	}
	// The directory is not left held: the key-value store opens again.
	kv, err = env.OpenKeyValue("app", "0_0", state.KeyValue("s"))
	if err != nil {
		t.Fatalf("OpenKeyValue after the refused OpenWindow: %v", err)
	}
	kv.Close()

	ws := openWindowStore(t, env, "0_1", "w", time.Hour)
	putWindow(t, ws, "k", 0, "v")
	ws.Close()
	_, err = env.OpenKeyValue("app", "0_1", state.KeyValue("w"))
	if err == nil || !strings.Contains(err.Error(), "the directory holds a window store, not a key-value store") {
		t.Errorf("OpenKeyValue on a window store's directory: %v", err)
	}

	// A spec of the wrong kind, or without retention, is refused.
	if _, err := env.OpenWindow("app", "0_2", state.KeyValue("kv")); err == nil || err.Error() != `state: store "kv": is a key-value store, not window` {
		t.Errorf("OpenWindow(key-value spec): %v", err)
	}
	if _, err := env.OpenKeyValue("app", "0_2", state.Window("w", time.Hour)); err == nil || err.Error() != `state: store "w": is a window store, not key-value` {
		t.Errorf("OpenKeyValue(window spec): %v", err)
	}
	if _, err := env.OpenWindow("app", "0_2", state.Window("w", 0)); err == nil || !strings.Contains(err.Error(), "retention 0s must be positive") {
		t.Errorf("OpenWindow(no retention): %v", err)
	}
	// A window store is open once at a time, like any store.
	ws = openWindowStore(t, env, "0_3", "w", time.Hour)
	if _, err := env.OpenWindow("app", "0_3", state.Window("w", time.Hour)); err == nil || !strings.Contains(err.Error(), "is already open") {
		t.Errorf("second OpenWindow: %v", err)
	}
	// An in-memory window store needs no directory.
	mem, err := state.NewEnv("")
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	if _, err := mem.OpenWindow("app", "0_0", state.Window("w", time.Hour)); err == nil || !strings.Contains(err.Error(), "the state directory is not set") {
		t.Errorf("persistent OpenWindow without a directory: %v", err)
	}
}

// TestWindowEnvClose checks that closing the Env closes the window stores
// left open, and names them.
func TestWindowEnvClose(t *testing.T) {
	env, err := state.NewEnv(t.TempDir(), state.WithLogger(quietLogger))
	if err != nil {
		t.Fatal(err)
	}
	ws, err := env.OpenWindow("app", "0_0", state.Window("left", time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	putWindow(t, ws, "k", 0, "v")
	err = env.Close()
	if err == nil || !strings.Contains(err.Error(), "1 stores still open") || !strings.Contains(err.Error(), "left") {
		t.Errorf("Env.Close: %v", err)
	}
	if err := ws.Put([]byte("k"), 0, []byte("v")); !errors.Is(err, state.ErrClosed) {
		t.Errorf("Put after Env.Close: %v", err)
	}
	if _, err := env.OpenWindow("app", "0_0", state.Window("left", time.Hour)); err == nil {
		t.Error("OpenWindow on a closed Env: no error")
	}
}

func TestWindowClosed(t *testing.T) {
	forEachWindowBackend(t, func(t *testing.T, b windowBackend) {
		ws := b.open("w", time.Hour)
		putWindow(t, ws, "a", 0, "1")
		putWindow(t, ws, "b", 0, "2")
		it, err := ws.FetchAll(0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !it.Next() {
			t.Fatal("no first window")
		}
		if err := ws.Close(); err != nil {
			t.Fatal(err)
		}
		if err := ws.Close(); !errors.Is(err, state.ErrClosed) {
			t.Errorf("second Close: %v", err)
		}
		checks := map[string]error{
			"Put":   ws.Put([]byte("a"), 0, []byte("1")),
			"Flush": ws.Flush(),
		}
		_, checks["Fetch"] = ws.Fetch([]byte("a"), 0)
		_, checks["FetchRange"] = ws.FetchRange([]byte("a"), 0, 1)
		_, checks["FetchAll"] = ws.FetchAll(0, 1)
		for op, err := range checks {
			if !errors.Is(err, state.ErrClosed) || !strings.Contains(err.Error(), `store "w"`) {
				t.Errorf("%s after Close: %v", op, err)
			}
		}
		// An iterator opened before: a persistent store stops it, the
		// in-memory one lets it walk its snapshot to the end.
		more := it.Next()
		if b.persistent {
			if more || !errors.Is(it.Err(), state.ErrClosed) {
				t.Errorf("iterator after Close: Next %t, Err %v", more, it.Err())
			}
		} else if !more || string(it.Key()) != "b" || it.Err() != nil {
			t.Errorf("iterator after Close: Next %t, Key %q, Err %v", more, it.Key(), it.Err())
		}
		it.Close()
	})
}

func TestWindowIteratorClose(t *testing.T) {
	forEachWindowBackend(t, func(t *testing.T, b windowBackend) {
		ws := b.open("w", 2*time.Hour)
		for m := range int64(3) {
			putWindow(t, ws, "a", m*40*minute, "1")
		}
		for _, open := range []func() (state.WindowIterator, error){
			func() (state.WindowIterator, error) { return ws.FetchAll(0, math.MaxInt64) },
			func() (state.WindowIterator, error) { return ws.FetchRange([]byte("a"), 0, math.MaxInt64) },
		} {
			it, err := open()
			if err != nil {
				t.Fatal(err)
			}
			if !it.Next() || it.Start() != 0 {
				t.Fatalf("first window: %d", it.Start())
			}
			if err := it.Close(); err != nil {
				t.Fatal(err)
			}
			if err := it.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			if it.Next() {
				t.Error("Next after Close")
			}
			if err := it.Err(); !errors.Is(err, state.ErrClosed) || !strings.Contains(err.Error(), `store "w": next: iterator is closed`) {
				t.Errorf("Err after Close: %v", err)
			}
			if it.Key() != nil || it.Value() != nil {
				t.Errorf("Key, Value after Close: %q, %q", it.Key(), it.Value())
			}
		}
	})
}

// TestWindowConcurrentReaders reads while one goroutine writes; run with
// -race. Each reader checks that what it sees is consistent: a key's
// windows in order of start, all windows in order of start then key.
func TestWindowConcurrentReaders(t *testing.T) {
	forEachWindowBackend(t, func(t *testing.T, b windowBackend) {
		ws := b.open("w", 5*time.Minute)
		const writes = 3000
		var wg sync.WaitGroup
		done := make(chan struct{})
		errs := make(chan error, 8)
		for r := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-done:
						return
					default:
					}
					if err := checkWindowOrder(ws, r, i); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		for i := range writes {
			k := []byte(fmt.Sprintf("k%d", i%13))
			if err := ws.Put(k, int64(i)*1000, []byte(fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
		}
		close(done)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		// Observed 2999 s; live from 2699 s.
		if got := fetchAll(t, ws, math.MinInt64, math.MaxInt64); len(got) != 301 || got[0].start != 2699_000 {
			t.Errorf("%d windows at the end, from %d", len(got), got[0].start)
		}
	})
}

func checkWindowOrder(ws state.WindowStore, r, i int) error {
	var it state.WindowIterator
	var err error
	switch (r + i) % 3 {
	case 0:
		it, err = ws.FetchAll(math.MinInt64, math.MaxInt64)
	case 1:
		it, err = ws.FetchRange([]byte(fmt.Sprintf("k%d", i%13)), math.MinInt64, math.MaxInt64)
	default:
		_, err := ws.Fetch([]byte(fmt.Sprintf("k%d", i%13)), int64(i)*1000)
		return err
	}
	if err != nil {
		return err
	}
	defer it.Close()
	var prevKey []byte
	prev := int64(math.MinInt64)
	for n := 0; it.Next(); n++ {
		s, k := it.Start(), it.Key()
		if s < prev || s == prev && n > 0 && bytes.Compare(k, prevKey) <= 0 {
			return fmt.Errorf("out of order: %q@%d after %q@%d", k, s, prevKey, prev)
		}
		prev, prevKey = s, bytes.Clone(k)
	}
	return it.Err()
}

// TestPebbleWindowDropIsRangeDeletion checks that expiring a segment of a
// persistent store writes one range deletion, not a deletion per window,
// and that a compaction then reclaims the segment's windows.
func TestPebbleWindowDropIsRangeDeletion(t *testing.T) {
	env := newTestEnv(t)
	ws := openWindowStore(t, env, "0_0", "drop", 10*time.Minute) // segments of 5 minutes
	const keys = 1000
	for m := range int64(10) {
		for k := range keys {
			putWindow(t, ws, fmt.Sprintf("k%04d", k), m*minute, "v")
		}
	}
	entries, points, ranges := state.WindowTables(ws)
	if entries < 2*10*keys || points != 0 || ranges != 0 {
		t.Fatalf("after the puts: %d entries, %d point and %d range deletions", entries, points, ranges)
	}
	// 30 minutes: both segments expire.
	putWindow(t, ws, "late", 30*minute, "v")
	if got := state.WindowSegments(ws); !slices.Equal(got, []int64{6}) {
		t.Errorf("segments %v, want [6]", got)
	}
	for _, seg := range []int64{0, 1} {
		if n := state.WindowEntries(ws, seg); n != 0 {
			t.Errorf("%d entries visible in dropped segment %d", n, seg)
		}
	}
	_, points, ranges = state.WindowTables(ws)
	if points != 0 || ranges != 2 {
		t.Errorf("after the drop: %d point and %d range deletions, want 0 and 2", points, ranges)
	}
	if n := state.WindowRangeDeletes(ws); n != 2 {
		t.Errorf("%d segments dropped, want 2", n)
	}
	if err := state.WindowCompact(ws); err != nil {
		t.Fatal(err)
	}
	// What is left: the window at 30 minutes, twice, and the metadata.
	if entries, _, _ := state.WindowTables(ws); entries > 10 {
		t.Errorf("after compacting: %d entries left", entries)
	}
	wantWindows(t, "after compacting", fetchAll(t, ws, math.MinInt64, math.MaxInt64), []win{{"late", 30 * minute, "v"}})
}
