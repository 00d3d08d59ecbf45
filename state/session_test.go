package state_test

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riffle-streams/riffle/state"
)

// sessionBackend is a kind of session store the tests run against.
type sessionBackend struct {
	name       string
	persistent bool
	env        *state.Env
	opts       []state.Option // of the specs: the backend
	tasks      *int
}

// spec returns the spec of a session store name of the backend.
func (b sessionBackend) spec(name string, retention time.Duration) state.Spec {
	return state.Session(name, retention, b.opts...)
}

// task returns a task of its own for a store, so that names may repeat.
func (b sessionBackend) task() string {
	*b.tasks++
	return fmt.Sprintf("0_%d", *b.tasks)
}

// open returns a new, empty session store named name, opened by
// Env.OpenSession.
func (b sessionBackend) open(t testing.TB, name string, retention time.Duration) state.SessionStore {
	t.Helper()
	return openSessionStore(t, b.env, b.task(), b.spec(name, retention))
}

// forEachSessionBackend runs f as a subtest for each backend: in memory, and
// persistent (Pebble, in a temporary directory). Stores are opened through
// an Env in both cases.
func forEachSessionBackend(t *testing.T, f func(t *testing.T, b sessionBackend)) {
	t.Helper()
	t.Run("memory", func(t *testing.T) {
		env, err := state.NewEnv("")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { env.Close() })
		f(t, sessionBackend{name: "memory", env: env, opts: []state.Option{state.InMemory()}, tasks: new(int)})
	})
	t.Run("pebble", func(t *testing.T) {
		f(t, sessionBackend{name: "pebble", persistent: true, env: newTestEnv(t), tasks: new(int)})
	})
}

// openSessionStore opens the session store of spec for task in env,
// closed when the test ends if the test has not closed it.
func openSessionStore(t testing.TB, env *state.Env, task string, spec state.Spec) state.SessionStore {
	t.Helper()
	ss, err := env.OpenSession("app", task, spec)
	if err != nil {
		t.Fatalf("OpenSession(%q): %v", spec.Name, err)
	}
	t.Cleanup(func() {
		if err := ss.Close(); err != nil && !errors.Is(err, state.ErrClosed) {
			t.Errorf("Close(%q): %v", spec.Name, err)
		}
	})
	return ss
}

// sess is a session of an iteration, as strings.
type sess struct {
	k          string
	start, end int64
	v          string
}

func (s sess) String() string { return fmt.Sprintf("%q[%d,%d]=%s", s.k, s.start, s.end, s.v) }

// drainSessions reads it to the end, closes it and returns what it saw.
func drainSessions(t testing.TB, it state.SessionIterator) []sess {
	t.Helper()
	var got []sess
	for it.Next() {
		got = append(got, sess{string(it.Key()), it.Start(), it.End(), string(it.Value())})
	}
	if err := it.Err(); err != nil {
		t.Fatalf("iterator: %v", err)
	}
	if err := it.Close(); err != nil {
		t.Fatalf("close iterator: %v", err)
	}
	return got
}

// putSession puts k's session [start, end]; a value of "<nil>" removes it.
func putSession(t testing.TB, ss state.SessionStore, k string, start, end int64, v string) {
	t.Helper()
	if err := ss.Put([]byte(k), start, end, bound(v)); err != nil {
		t.Fatalf("Put(%q, %d, %d): %v", k, start, end, err)
	}
}

func findSessions(t testing.TB, ss state.SessionStore, k string, earliestEnd, latestStart int64) []sess {
	t.Helper()
	it, err := ss.FindSessions([]byte(k), earliestEnd, latestStart)
	if err != nil {
		t.Fatalf("FindSessions(%q, %d, %d): %v", k, earliestEnd, latestStart, err)
	}
	return drainSessions(t, it)
}

func fetchAllSessions(t testing.TB, ss state.SessionStore, from, to int64) []sess {
	t.Helper()
	it, err := ss.FetchAll(from, to)
	if err != nil {
		t.Fatalf("FetchAll(%d, %d): %v", from, to, err)
	}
	return drainSessions(t, it)
}

// wantSession checks the value of k's session [start, end]; "<nil>" is
// absent.
func wantSession(t testing.TB, ss state.SessionStore, k string, start, end int64, want string) {
	t.Helper()
	v, err := ss.Fetch([]byte(k), start, end)
	if err != nil {
		t.Fatalf("Fetch(%q, %d, %d): %v", k, start, end, err)
	}
	got := "<nil>"
	if v != nil {
		got = string(v)
	}
	if got != want {
		t.Errorf("Fetch(%q, %d, %d) = %q, want %q", k, start, end, got, want)
	}
}

func wantSessions(t testing.TB, what string, got, want []sess) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got %v\nwant %v", what, got, want)
	}
}

// sessionValue is what the window of a session holds: its start, 8 bytes
// big-endian, then its value; nil for a removal.
func sessionValue(start int64, v string) []byte {
	if v == "<nil>" {
		return nil
	}
	return append(binary.BigEndian.AppendUint64(nil, uint64(start)), v...)
}

// sessionRec is the changelog record of a Put of k's session [start, end].
func sessionRec(k string, start, end int64, v string) state.ChangelogRecord {
	return state.ChangelogRecord{Key: state.WindowKey([]byte(k), end), Value: sessionValue(start, v)}
}

func asRestorableSession(t testing.TB, ss state.SessionStore) state.Restorable {
	t.Helper()
	r, ok := ss.(state.Restorable)
	if !ok {
		t.Fatalf("%T does not implement state.Restorable", ss)
	}
	return r
}

func TestSessionSpec(t *testing.T) {
	s := state.Session("sessions", time.Hour)
	want := state.Spec{Name: "sessions", Kind: state.KindSession, Backend: state.PersistentBackend, Logged: true, Retention: time.Hour}
	if s != want {
		t.Errorf("Session = %+v, want %+v", s, want)
	}
	if s.Cached {
		t.Error("a session store has a record cache")
	}
	if err := s.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	if got := state.KindSession.String(); got != "session" {
		t.Errorf("KindSession.String() = %q", got)
	}
	s = state.Session("m", time.Minute, state.InMemory(), state.WithoutLogging())
	if s.Backend != state.InMemoryBackend || s.Logged || s.Kind != state.KindSession {
		t.Errorf("with options: %+v", s)
	}
	for _, r := range []time.Duration{0, -time.Second} {
		err := state.Session("s", r).Validate()
		if want := fmt.Sprintf(`state: session store "s": retention %v must be positive`, r); err == nil || err.Error() != want {
			t.Errorf("Validate with retention %v: %v, want %s", r, err, want)
		}
	}
	if err := state.Session("a/b", time.Hour).Validate(); err == nil {
		t.Error("Validate of a bad name: no error")
	}
}

func TestSessionPutFetch(t *testing.T) {
	forEachSessionBackend(t, func(t *testing.T, b sessionBackend) {
		ss := b.open(t, "s", time.Hour)
		if ss.Name() != "s" || ss.Retention() != time.Hour {
			t.Errorf("Name, Retention = %q, %v", ss.Name(), ss.Retention())
		}
		if err := ss.Flush(); err != nil {
			t.Errorf("Flush: %v", err)
		}
		wantSession(t, ss, "a", 0, 10, "<nil>")
		putSession(t, ss, "a", 0, 10, "1")
		putSession(t, ss, "a", 20, 30, "2")
		putSession(t, ss, "a", 40, 40, "one event") // start == end
		putSession(t, ss, "b", 0, 10, "3")
		wantSession(t, ss, "a", 0, 10, "1")
		wantSession(t, ss, "a", 20, 30, "2")
		wantSession(t, ss, "a", 40, 40, "one event")
		wantSession(t, ss, "b", 0, 10, "3")

		// The session is its start and its end: either wrong finds nothing.
		wantSession(t, ss, "a", 1, 10, "<nil>")
		wantSession(t, ss, "a", -1, 10, "<nil>")
		wantSession(t, ss, "a", 0, 9, "<nil>")
		wantSession(t, ss, "a", 0, 11, "<nil>")
		wantSession(t, ss, "a", 20, 20, "<nil>")
		wantSession(t, ss, "ab", 0, 10, "<nil>") // a key that "a" is a prefix of
		wantSession(t, ss, "", 0, 10, "<nil>")

		// Overwrite.
		putSession(t, ss, "a", 0, 10, "4")
		wantSession(t, ss, "a", 0, 10, "4")
		// A session of the same end replaces the one there (the sessions of
		// a key never overlap, so it is the merged one).
		putSession(t, ss, "a", -5, 10, "merged")
		wantSession(t, ss, "a", -5, 10, "merged")
		wantSession(t, ss, "a", 0, 10, "<nil>")
		wantSessions(t, "a after the merge", findSessions(t, ss, "a", math.MinInt64, math.MaxInt64), []sess{
			{"a", -5, 10, "merged"}, {"a", 20, 30, "2"}, {"a", 40, 40, "one event"},
		})

		// An empty value is a value; nil removes.
		putSession(t, ss, "e", 0, 5, "")
		if v, err := ss.Fetch([]byte("e"), 0, 5); err != nil || v == nil || len(v) != 0 {
			t.Errorf("Fetch(e) = %q (nil: %t), %v; want empty", v, v == nil, err)
		}
		if got := findSessions(t, ss, "e", 0, 5); len(got) != 1 || got[0].v != "" {
			t.Errorf("FindSessions(e) = %v", got)
		}
		putSession(t, ss, "a", 20, 30, "<nil>")
		wantSession(t, ss, "a", 20, 30, "<nil>")
		wantSession(t, ss, "a", 40, 40, "one event")
		wantSessions(t, "a after the removal", findSessions(t, ss, "a", math.MinInt64, math.MaxInt64), []sess{
			{"a", -5, 10, "merged"}, {"a", 40, 40, "one event"},
		})
		putSession(t, ss, "never", 0, 1, "<nil>") // removing an absent session

		// The empty key is a key like any other.
		putSession(t, ss, "", 0, 10, "empty key")
		wantSession(t, ss, "", 0, 10, "empty key")
		wantSession(t, ss, "a", -5, 10, "merged")

		// Times before the epoch, and the extremes.
		putSession(t, ss, "n", -100, -1, "neg")
		putSession(t, ss, "n", math.MinInt64, -200, "min")
		wantSession(t, ss, "n", -100, -1, "neg")
		wantSession(t, ss, "n", math.MinInt64, -200, "min")
		wantSessions(t, "n", findSessions(t, ss, "n", math.MinInt64, math.MaxInt64), []sess{
			{"n", math.MinInt64, -200, "min"}, {"n", -100, -1, "neg"},
		})

		// The store copies: the caller may reuse its buffers.
		k, v := []byte("k"), []byte("v")
		if err := ss.Put(k, 0, 1, v); err != nil {
			t.Fatal(err)
		}
		copy(k, "x")
		copy(v, "y")
		wantSession(t, ss, "k", 0, 1, "v")
		// And what Fetch returns does not change with later writes.
		got, err := ss.Fetch([]byte("k"), 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		putSession(t, ss, "k", 0, 1, "w")
		if string(got) != "v" {
			t.Errorf("a value fetched changed to %q with a later Put", got)
		}
	})
}

// TestSessionRemoveWrongStart checks that removing a session that is not
// there removes nothing, even when the key has another session of the same
// end: a removal names the session by its start and end, as Fetch does.
func TestSessionRemoveWrongStart(t *testing.T) {
	forEachSessionBackend(t, func(t *testing.T, b sessionBackend) {
		ss := b.open(t, "s", time.Hour)
		putSession(t, ss, "a", 10, 20, "kept")
		wantSession(t, ss, "a", 5, 20, "<nil>")
		putSession(t, ss, "a", 5, 20, "<nil>") // not a session of "a"
		if v, err := ss.Fetch([]byte("a"), 10, 20); err != nil || string(v) != "kept" {
			t.Errorf("Put(a, 5, 20, nil) removed the session [10, 20]: Fetch now %q, %v", v, err)
		}
	})
}

func TestSessionStartAfterEnd(t *testing.T) {
	forEachSessionBackend(t, func(t *testing.T, b sessionBackend) {
		ss := b.open(t, "sessions", time.Hour)
		err := ss.Put([]byte("a"), 11, 10, []byte("v"))
		if want := `state: store "sessions": put: session start 11 is after its end 10`; err == nil || err.Error() != want {
			t.Errorf("Put with start > end: %v, want %s", err, want)
		}
		if err := ss.Put([]byte("a"), 11, 10, nil); err == nil || !strings.Contains(err.Error(), `store "sessions": put: session start 11 is after its end 10`) {
			t.Errorf("removal with start > end: %v", err)
		}
		_, err = ss.Fetch([]byte("a"), 11, 10)
		if want := `state: store "sessions": fetch: session start 11 is after its end 10`; err == nil || err.Error() != want {
			t.Errorf("Fetch with start > end: %v, want %s", err, want)
		}
		if err := ss.Put([]byte("a"), math.MaxInt64, math.MinInt64, []byte("v")); err == nil {
			t.Error("Put(MaxInt64, MinInt64): no error")
		}
		// Nothing was written, and the observed time did not move.
		wantSessions(t, "after the refused puts", fetchAllSessions(t, ss, math.MinInt64, math.MaxInt64), nil)
		putSession(t, ss, "a", 0, 0, "kept")
		wantSession(t, ss, "a", 0, 0, "kept")

		// In a query, an earliest end after the latest start is no error:
		// it finds the sessions that span the gap between.
		putSession(t, ss, "b", 5, 50, "spans")
		putSession(t, ss, "b", 60, 70, "after")
		wantSessions(t, "earliestEnd > latestStart", findSessions(t, ss, "b", 40, 10), []sess{{"b", 5, 50, "spans"}})
		wantSessions(t, "FetchAll from > to", fetchAllSessions(t, ss, 70, 50), nil)
	})
}

func TestSessionNilKey(t *testing.T) {
	forEachSessionBackend(t, func(t *testing.T, b sessionBackend) {
		ss := b.open(t, "s", time.Hour)
		if err := ss.Put(nil, 0, 1, []byte("v")); !errors.Is(err, state.ErrNilKey) || !strings.Contains(err.Error(), `store "s"`) {
			t.Errorf("Put(nil): %v", err)
		}
		if err := ss.Put(nil, 0, 1, nil); !errors.Is(err, state.ErrNilKey) {
			t.Errorf("Put(nil, nil): %v", err)
		}
		if _, err := ss.Fetch(nil, 0, 1); !errors.Is(err, state.ErrNilKey) {
			t.Errorf("Fetch(nil): %v", err)
		}
		if _, err := ss.FindSessions(nil, 0, 1); !errors.Is(err, state.ErrNilKey) {
			t.Errorf("FindSessions(nil): %v", err)
		}
		wantSessions(t, "after the refused puts", fetchAllSessions(t, ss, math.MinInt64, math.MaxInt64), nil)
	})
}

func TestSessionFindSessions(t *testing.T) {
	forEachSessionBackend(t, func(t *testing.T, b sessionBackend) {
		ss := b.open(t, "s", time.Hour) // segments of 30 minutes
		// Keys that are prefixes of each other, or hold the bytes of the
		// layouts; sessions across segments, put out of order.
		keys := []string{"ab", "a", "", "b", "a\x00", "aa", "\xff", "a\x00\x00\x00\x00\x00\x00\x00\x00"}
		ms := []int64{50, 0, 10, 31, 20, 40}
		for _, m := range ms {
			for _, k := range keys {
				// [m, m+5] minutes, less a millisecond for the odd keys: the
				// sessions of a key do not overlap.
				putSession(t, ss, k, m*minute, (m+5)*minute-int64(len(k)%2), fmt.Sprintf("%s%d", k, m))
			}
		}
		of := func(k string, ms ...int64) []sess {
			var out []sess
			for _, m := range ms {
				out = append(out, sess{k, m * minute, (m+5)*minute - int64(len(k)%2), fmt.Sprintf("%s%d", k, m)})
			}
			return out
		}
		for _, k := range keys {
			wantSessions(t, fmt.Sprintf("%q, all", k), findSessions(t, ss, k, math.MinInt64, math.MaxInt64), of(k, 0, 10, 20, 31, 40, 50))
		}
		wantSessions(t, "absent key", findSessions(t, ss, "c", math.MinInt64, math.MaxInt64), nil)
		wantSessions(t, "a key of which others are prefixes", findSessions(t, ss, "a\x00\x00", math.MinInt64, math.MaxInt64), nil)

		// "aa" has sessions [0,5] [10,15] [20,25] [31,36] [40,45] [50,55].
		// Both bounds are inclusive: end >= earliestEnd, start <= latestStart.
		wantSessions(t, "[15, 31]", findSessions(t, ss, "aa", 15*minute, 31*minute), of("aa", 10, 20, 31))
		wantSessions(t, "[15+1, 31-1]", findSessions(t, ss, "aa", 15*minute+1, 31*minute-1), of("aa", 20))
		wantSessions(t, "a point in a session", findSessions(t, ss, "aa", 22*minute, 22*minute), of("aa", 20))
		wantSessions(t, "a point between", findSessions(t, ss, "aa", 27*minute, 27*minute), nil)
		wantSessions(t, "the gap between, widened to both", findSessions(t, ss, "aa", 25*minute, 31*minute), of("aa", 20, 31))
		wantSessions(t, "up to a start", findSessions(t, ss, "aa", math.MinInt64, 10*minute), of("aa", 0, 10))
		wantSessions(t, "from an end", findSessions(t, ss, "aa", 45*minute, math.MaxInt64), of("aa", 40, 50))
		wantSessions(t, "after all", findSessions(t, ss, "aa", 55*minute+1, math.MaxInt64), nil)
		wantSessions(t, "before all", findSessions(t, ss, "aa", math.MinInt64, -1), nil)
		// The odd keys end a millisecond earlier.
		wantSessions(t, "a, end just missed", findSessions(t, ss, "a", 15*minute, 20*minute-1), nil)
		wantSessions(t, "a, end just met", findSessions(t, ss, "a", 15*minute-1, 20*minute-1), of("a", 10))
		// A session merging a record at t with a gap of 5 minutes.
		const gap = 5 * minute
		wantSessions(t, "merge at 30", findSessions(t, ss, "ab", 30*minute-gap, 30*minute+gap), of("ab", 20, 31))
		wantSessions(t, "merge at 7.5", findSessions(t, ss, "ab", 7*minute+30_000-gap, 7*minute+30_000+gap), of("ab", 0, 10))

		// An iterator may be left before its end.
		it, err := ss.FindSessions([]byte("a"), math.MinInt64, math.MaxInt64)
		if err != nil {
			t.Fatal(err)
		}
		if !it.Next() || it.Start() != 0 || it.End() != 5*minute-1 || string(it.Key()) != "a" || string(it.Value()) != "a0" {
			t.Errorf("first session: %q [%d, %d] = %q", it.Key(), it.Start(), it.End(), it.Value())
		}
		if err := it.Close(); err != nil {
			t.Error(err)
		}
	})
}

func TestSessionFetchAll(t *testing.T) {
	forEachSessionBackend(t, func(t *testing.T, b sessionBackend) {
		ss := b.open(t, "s", time.Hour)
		// Each key has a session ending at each of these minutes, starting
		// earlier the longer the key.
		for _, m := range []int64{40, 0, 30, 29} {
			for _, k := range []string{"b", "ab", "a", ""} {
				putSession(t, ss, k, m*minute-int64(len(k)), m*minute, fmt.Sprint(m))
			}
		}
		at := func(ms ...int64) []sess {
			var out []sess
			for _, m := range ms {
				for _, k := range []string{"", "a", "ab", "b"} {
					out = append(out, sess{k, m*minute - int64(len(k)), m * minute, fmt.Sprint(m)})
				}
			}
			return out
		}
		wantSessions(t, "all", fetchAllSessions(t, ss, math.MinInt64, math.MaxInt64), at(0, 29, 30, 40))
		wantSessions(t, "[0, 30]", fetchAllSessions(t, ss, 0, 30*minute), at(0, 29, 30))
		wantSessions(t, "[1, 40]", fetchAllSessions(t, ss, 1, 40*minute), at(29, 30, 40))
		wantSessions(t, "[30, 30]", fetchAllSessions(t, ss, 30*minute, 30*minute), at(30))
		// FetchAll is by end: a session that starts before from but ends
		// in range is in; one that ends after to is out.
		wantSessions(t, "[30-1, 30-1]", fetchAllSessions(t, ss, 30*minute-1, 30*minute-1), nil)
		wantSessions(t, "[1, 28]", fetchAllSessions(t, ss, 1, 28*minute), nil)
		wantSessions(t, "from > to", fetchAllSessions(t, ss, 40*minute, 0), nil)

		// Removed sessions are gone from both orders.
		putSession(t, ss, "ab", 30*minute-2, 30*minute, "<nil>")
		want := slices.DeleteFunc(at(30), func(s sess) bool { return s.k == "ab" })
		wantSessions(t, "after a removal", fetchAllSessions(t, ss, 30*minute, 30*minute), want)
		wantSessions(t, "after a removal, by key", findSessions(t, ss, "ab", 29*minute, 40*minute), []sess{
			{"ab", 29*minute - 2, 29 * minute, "29"}, {"ab", 40*minute - 2, 40 * minute, "40"},
		})
	})
}

// TestSessionRetention checks that sessions expire by their end, counted
// back from the newest end put.
func TestSessionRetention(t *testing.T) {
	forEachSessionBackend(t, func(t *testing.T, b sessionBackend) {
		ss := b.open(t, "s", 10*time.Minute)
		for m := int64(0); m < 10; m++ {
			putSession(t, ss, "a", m*minute, m*minute+30_000, fmt.Sprint(m))
		}
		// A long session: it starts at -60 minutes, but ends at 9.75.
		putSession(t, ss, "long", -60*minute, 9*minute+45_000, "long")
		if got := fetchAllSessions(t, ss, math.MinInt64, math.MaxInt64); len(got) != 11 {
			t.Fatalf("%d sessions, want 11", len(got))
		}

		// A session ending at 17.5 minutes: those ending before 7.5 expire.
		putSession(t, ss, "b", 17*minute, 17*minute+30_000, "17")
		wantSession(t, ss, "a", 6*minute, 6*minute+30_000, "<nil>")
		wantSession(t, ss, "a", 7*minute, 7*minute+30_000, "7") // ends exactly the retention before: live
		wantSession(t, ss, "long", -60*minute, 9*minute+45_000, "long")
		wantSessions(t, "a", findSessions(t, ss, "a", math.MinInt64, math.MaxInt64), []sess{
			{"a", 7 * minute, 7*minute + 30_000, "7"}, {"a", 8 * minute, 8*minute + 30_000, "8"}, {"a", 9 * minute, 9*minute + 30_000, "9"},
		})
		wantSessions(t, "a, expired only", findSessions(t, ss, "a", 0, 6*minute+59_999), nil)
		wantSessions(t, "long, by an early start", findSessions(t, ss, "long", math.MinInt64, -59*minute), []sess{{"long", -60 * minute, 9*minute + 45_000, "long"}})
		wantSessions(t, "all expired", fetchAllSessions(t, ss, 0, 7*minute+29_999), nil)
		wantSessions(t, "all", fetchAllSessions(t, ss, 0, 8*minute), []sess{{"a", 7 * minute, 7*minute + 30_000, "7"}})

		// A Put of an expired session is ignored, a removal too.
		putSession(t, ss, "late", 0, 7*minute+29_999, "late")
		putSession(t, ss, "a", 6*minute, 6*minute+30_000, "back")
		wantSession(t, ss, "late", 0, 7*minute+29_999, "<nil>")
		wantSession(t, ss, "a", 6*minute, 6*minute+30_000, "<nil>")
		// However late it starts, a session that ends before the retention is
		// expired.
		putSession(t, ss, "late", 7*minute+29_999, 7*minute+29_999, "never")
		wantSessions(t, "late", findSessions(t, ss, "late", math.MinInt64, math.MaxInt64), nil)

		putSession(t, ss, "c", 18*minute, 18*minute, "c")
		wantSession(t, ss, "a", 7*minute, 7*minute+30_000, "<nil>")
		wantSession(t, ss, "a", 8*minute, 8*minute+30_000, "8")

		// A jump far ahead expires everything older.
		putSession(t, ss, "d", 990*minute, 1000*minute, "1000")
		wantSessions(t, "after the jump", fetchAllSessions(t, ss, math.MinInt64, math.MaxInt64), []sess{{"d", 990 * minute, 1000 * minute, "1000"}})
		wantSessions(t, "a after the jump", findSessions(t, ss, "a", math.MinInt64, math.MaxInt64), nil)
	})
}

// TestSessionRestore checks a session store over a logged window store, as
// the runtime stacks them: its writes reach the changelog as the windows of
// the sessions, and the changelog restores the same sessions into a new
// store, through the session store's Restorable.
func TestSessionRestore(t *testing.T) {
	forEachSessionBackend(t, func(t *testing.T, b sessionBackend) {
		log := &recordLog{}
		ws, err := b.env.OpenWindow("app", b.task(), b.spec("s", 10*time.Minute))
		if err != nil {
			t.Fatalf("OpenWindow(session spec): %v", err)
		}
		ss := state.SessionOf(state.LoggedWindow(ws, log))
		defer ss.Close()
		if ss.Name() != "s" || ss.Retention() != 10*time.Minute {
			t.Errorf("Name, Retention = %q, %v", ss.Name(), ss.Retention())
		}
		r := asRestorableSession(t, ss)
		wantApplied(t, r, 0, false)

		putSession(t, ss, "a", 0, minute, "1")
		putSession(t, ss, "ab", 30_000, 2*minute, "")
		putSession(t, ss, "a", 0, minute, "<nil>")
		putSession(t, ss, "a", -minute, minute, "2")
		putSession(t, ss, "b", -5, -1, "neg")
		putSession(t, ss, "gone", 0, 3*minute, "x")
		putSession(t, ss, "gone", 0, 3*minute, "<nil>")
		putSession(t, ss, "c", 3*minute, 4*minute, "3")
		putSession(t, ss, "c", 3*minute, 4*minute, "4")
		// The changelog carries each session as its window: the key and
		// the end, then the start and the value.
		want := []state.ChangelogRecord{
			sessionRec("a", 0, minute, "1"),
			sessionRec("ab", 30_000, 2*minute, ""),
			sessionRec("a", 0, minute, "<nil>"),
			sessionRec("a", -minute, minute, "2"),
			sessionRec("b", -5, -1, "neg"),
			sessionRec("gone", 0, 3*minute, "x"),
			sessionRec("gone", 0, 3*minute, "<nil>"),
			sessionRec("c", 3*minute, 4*minute, "3"),
			sessionRec("c", 3*minute, 4*minute, "4"),
		}
		if !slices.EqualFunc(log.recs, want, func(a, b state.ChangelogRecord) bool {
			return bytes.Equal(a.Key, b.Key) && bytes.Equal(a.Value, b.Value) && (a.Value == nil) == (b.Value == nil)
		}) {
			t.Errorf("changelog:\n%q\nwant:\n%q", log.recs, want)
		}
		// The windows beneath hold the same.
		if v, err := ws.Fetch([]byte("a"), minute); err != nil || !bytes.Equal(v, sessionValue(-minute, "2")) {
			t.Errorf("the window of a's session: %x, %v", v, err)
		}
		wantContents := []sess{
			{"b", -5, -1, "neg"}, {"a", -minute, minute, "2"}, {"ab", 30_000, 2 * minute, ""}, {"c", 3 * minute, 4 * minute, "4"},
		}
		wantSessions(t, "written", fetchAllSessions(t, ss, math.MinInt64, math.MaxInt64), wantContents)
		last := int64(len(log.recs) - 1) // the offset of the last record
		if err := r.Checkpoint(last); err != nil {
			t.Fatalf("Checkpoint: %v", err)
		}
		wantApplied(t, r, last, true)

		// Restore into a new store, through its Restorable.
		task := b.task()
		other := openSessionStore(t, b.env, task, b.spec("s", 10*time.Minute))
		ro := asRestorableSession(t, other)
		wantApplied(t, ro, 0, false)
		if err := ro.Restore(log.recs[:4], 3); err != nil {
			t.Fatalf("Restore: %v", err)
		}
		wantApplied(t, ro, 3, true)
		wantSessions(t, "restored in part", fetchAllSessions(t, other, math.MinInt64, math.MaxInt64), []sess{
			{"a", -minute, minute, "2"}, {"ab", 30_000, 2 * minute, ""},
		})
		if err := ro.Restore(log.recs[4:], last); err != nil {
			t.Fatalf("Restore: %v", err)
		}
		wantApplied(t, ro, last, true)
		wantSessions(t, "restored", fetchAllSessions(t, other, math.MinInt64, math.MaxInt64), wantContents)
		wantSessions(t, "a, restored", findSessions(t, other, "a", math.MinInt64, math.MaxInt64), []sess{{"a", -minute, minute, "2"}})
		wantSession(t, other, "ab", 30_000, 2*minute, "")
		wantSession(t, other, "gone", 0, 3*minute, "<nil>")

		// Restored sessions advance the observed time: at 15 minutes, the
		// sessions ending before 5 minutes expire, and the records of the
		// batch that are expired by its end are skipped.
		if err := ro.Restore([]state.ChangelogRecord{
			sessionRec("old", 0, 4*minute, "skipped"),
			sessionRec("d", 14*minute, 15*minute, "15"),
			sessionRec("e", 0, 5*minute, "kept"), // ends exactly the retention before
		}, last+1); err != nil {
			t.Fatal(err)
		}
		wantSessions(t, "after the advancing Restore", fetchAllSessions(t, other, math.MinInt64, math.MaxInt64), []sess{
			{"e", 0, 5 * minute, "kept"}, {"d", 14 * minute, 15 * minute, "15"},
		})
		putSession(t, other, "late", 0, 4*minute, "x") // ignored
		wantSession(t, other, "late", 0, 4*minute, "<nil>")

		if b.persistent {
			// The restored store, reopened, has its sessions and offset.
			if err := other.Close(); err != nil {
				t.Fatal(err)
			}
			other = openSessionStore(t, b.env, task, b.spec("s", 10*time.Minute))
			wantApplied(t, asRestorableSession(t, other), last+1, true)
			wantSessions(t, "reopened", fetchAllSessions(t, other, math.MinInt64, math.MaxInt64), []sess{
				{"e", 0, 5 * minute, "kept"}, {"d", 14 * minute, 15 * minute, "15"},
			})
			putSession(t, other, "late", 0, 4*minute, "x") // still ignored: the observed time is kept
			wantSession(t, other, "late", 0, 4*minute, "<nil>")
		}

		// A session store over a window store that cannot be restored.
		rp := asRestorableSession(t, state.SessionOf(plainWindow{}))
		if _, _, err := rp.AppliedOffset(); err == nil || !strings.Contains(err.Error(), `store "plain" (state_test.plainWindow) cannot be restored`) {
			t.Errorf("AppliedOffset: %v", err)
		}
		if err := rp.Restore(nil, 1); err == nil {
			t.Error("Restore: no error")
		}
		if err := rp.Checkpoint(1); err == nil {
			t.Error("Checkpoint: no error")
		}
	})
}

// TestSessionRestoreBadRecords checks that records that are not of a
// session store fail the batch.
func TestSessionRestoreBadRecords(t *testing.T) {
	forEachSessionBackend(t, func(t *testing.T, b sessionBackend) {
		ss := b.open(t, "s", time.Hour)
		r := asRestorableSession(t, ss)
		err := r.Restore([]state.ChangelogRecord{sessionRec("a", 0, 1, "1"), {Key: []byte("short"), Value: []byte("x")}}, 5)
		if err == nil || !strings.Contains(err.Error(), `state: store "s": restore: record 1: windowed key of 5 bytes: want at least 8`) {
			t.Errorf("Restore with a short key: %v", err)
		}
		if err := r.Restore([]state.ChangelogRecord{sessionRec("a", 0, 1, "1"), {Key: nil, Value: []byte("x")}}, 5); !errors.Is(err, state.ErrNilKey) {
			t.Errorf("Restore with a nil key: %v", err)
		}
		wantApplied(t, r, 0, false)
		wantSessions(t, "after the failed restores", fetchAllSessions(t, ss, math.MinInt64, math.MaxInt64), nil)

		// A window of fewer than 8 bytes cannot be a session: reading it
		// fails, naming the store, rather than making up a start.
		if err := r.Restore([]state.ChangelogRecord{{Key: state.WindowKey([]byte("w"), 7), Value: []byte("1234567")}}, 6); err != nil {
			t.Fatal(err)
		}
		if _, err := ss.Fetch([]byte("w"), 0, 7); err == nil || !strings.Contains(err.Error(), `store "s": read: session entry of 7 bytes: want at least 8`) {
			t.Errorf("Fetch of a short entry: %v", err)
		}
		it, err := ss.FindSessions([]byte("w"), 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if it.Next() {
			t.Error("FindSessions: a session of a short entry")
		}
		if err := it.Err(); err == nil || !strings.Contains(err.Error(), "session entry of 7 bytes") {
			t.Errorf("FindSessions of a short entry: Err %v", err)
		}
		it.Close()
	})
}

// TestPebbleSessionReopen checks that a persistent session store keeps its
// sessions, the observed time and the applied offset across Close and
// open, and that a directory opened by OpenWindow with the session spec
// (as the runtime does) is the same store as one opened by OpenSession.
func TestPebbleSessionReopen(t *testing.T) {
	env := newTestEnv(t)
	spec := state.Session("reopen", 10*time.Minute)
	ss := openSessionStore(t, env, "0_0", spec)
	putSession(t, ss, "a", 0, minute, "1")
	putSession(t, ss, "a", 2*minute, 3*minute, "2")
	putSession(t, ss, "b", 0, 12*minute, "3") // observed 12: ends before 2 expire
	if err := asRestorableSession(t, ss).Checkpoint(4); err != nil {
		t.Fatal(err)
	}
	putSession(t, ss, "c", 5*minute, 6*minute, "") // after the checkpoint
	if err := ss.Close(); err != nil {
		t.Fatal(err)
	}

	want := []sess{{"a", 2 * minute, 3 * minute, "2"}, {"c", 5 * minute, 6 * minute, ""}, {"b", 0, 12 * minute, "3"}}
	ss = openSessionStore(t, env, "0_0", spec)
	wantApplied(t, asRestorableSession(t, ss), 4, true)
	wantSessions(t, "after reopen", fetchAllSessions(t, ss, math.MinInt64, math.MaxInt64), want)
	wantSessions(t, "a", findSessions(t, ss, "a", math.MinInt64, math.MaxInt64), want[:1])
	putSession(t, ss, "late", 0, minute, "x") // the observed time survived
	wantSession(t, ss, "late", 0, minute, "<nil>")
	if err := ss.Close(); err != nil {
		t.Fatal(err)
	}

	// Opened by OpenWindow with the session spec, under a logged layer.
	ws, err := env.OpenWindow("app", "0_0", spec)
	if err != nil {
		t.Fatalf("OpenWindow(session spec) of a session store's directory: %v", err)
	}
	log := &recordLog{}
	ss = state.SessionOf(state.LoggedWindow(ws, log))
	wantApplied(t, asRestorableSession(t, ss), 4, true)
	wantSessions(t, "through OpenWindow", fetchAllSessions(t, ss, math.MinInt64, math.MaxInt64), want)
	putSession(t, ss, "d", 7*minute, 8*minute, "4")
	if len(log.recs) != 1 {
		t.Errorf("%d changelog records, want 1", len(log.recs))
	}
	if err := ss.Close(); err != nil {
		t.Fatal(err)
	}
	ss = openSessionStore(t, env, "0_0", spec)
	wantSession(t, ss, "d", 7*minute, 8*minute, "4")
}

// TestSessionDirectorySafety checks that a directory that holds a session
// store is never opened as a store of another kind, nor the reverse.
func TestSessionDirectorySafety(t *testing.T) {
	env := newTestEnv(t)
	ss := openSessionStore(t, env, "0_0", state.Session("s", time.Hour))
	putSession(t, ss, "k", 0, 1, "v")
	if err := ss.Close(); err != nil {
		t.Fatal(err)
	}
	dir := env.StoreDir("app", "0_0", "s")
	before := listFiles(t, env.Dir())
	refused := func(what string, err error, holds, want string) {
		t.Helper()
		msg := fmt.Sprintf(`state: store "s" in %s: the directory holds a %s store, not a %s store; choose another state directory or delete it`, dir, holds, want)
		if err == nil || err.Error() != msg {
			t.Errorf("%s:\n got %v\nwant %s", what, err, msg)
		}
	}
	_, err := env.OpenWindow("app", "0_0", state.Window("s", time.Hour))
	refused("OpenWindow on a session store's directory", err, "session", "window")
	_, err = env.OpenKeyValue("app", "0_0", state.KeyValue("s"))
	refused("OpenKeyValue on a session store's directory", err, "session", "key-value")
	if after := listFiles(t, env.Dir()); !slices.Equal(after, before) {
		t.Errorf("files changed\nbefore %q\nafter  %q", before, after)
	}
	// The directory is not left held: the session store opens again.
	ss = openSessionStore(t, env, "0_0", state.Session("s", time.Hour))
	wantSession(t, ss, "k", 0, 1, "v")
	ss.Close()

	// The reverse: a window store's and a key-value store's directories.
	ws := openWindowStore(t, env, "0_1", "s", time.Hour)
	putWindow(t, ws, "k", 0, "v")
	ws.Close()
	dir = env.StoreDir("app", "0_1", "s")
	_, err = env.OpenSession("app", "0_1", state.Session("s", time.Hour))
	refused("OpenSession on a window store's directory", err, "window", "session")
	_, err = env.OpenWindow("app", "0_1", state.Session("s", time.Hour))
	refused("OpenWindow(session spec) on a window store's directory", err, "window", "session")
	ws = openWindowStore(t, env, "0_1", "s", time.Hour) // not left held
	wantFetch(t, ws, "k", 0, "v")
	ws.Close()

	kv := openTaskStore(t, env, "0_2", "s")
	mustPut(t, kv, "k", "v")
	kv.Close()
	dir = env.StoreDir("app", "0_2", "s")
	_, err = env.OpenSession("app", "0_2", state.Session("s", time.Hour))
	refused("OpenSession on a key-value store's directory", err, "key-value", "session")

	// A spec of the wrong kind, or without retention, is refused.
	if _, err := env.OpenSession("app", "0_3", state.Window("w", time.Hour)); err == nil || err.Error() != `state: store "w": is a window store, not session` {
		t.Errorf("OpenSession(window spec): %v", err)
	}
	if _, err := env.OpenSession("app", "0_3", state.KeyValue("kv")); err == nil || err.Error() != `state: store "kv": is a key-value store, not session` {
		t.Errorf("OpenSession(key-value spec): %v", err)
	}
	if _, err := env.OpenKeyValue("app", "0_3", state.Session("s", time.Hour)); err == nil || err.Error() != `state: store "s": is a session store, not key-value` {
		t.Errorf("OpenKeyValue(session spec): %v", err)
	}
	if _, err := env.OpenSession("app", "0_3", state.Session("s", 0)); err == nil || err.Error() != `state: session store "s": retention 0s must be positive` {
		t.Errorf("OpenSession(no retention): %v", err)
	}
	if _, err := env.OpenSession("", "0_3", state.Session("s", time.Hour)); err == nil || !strings.Contains(err.Error(), "the application id is empty") {
		t.Errorf("OpenSession(no application id): %v", err)
	}
	// A session store is open once at a time, like any store, whether
	// opened as a session store or as the window store beneath.
	openSessionStore(t, env, "0_4", state.Session("s", time.Hour))
	if _, err := env.OpenSession("app", "0_4", state.Session("s", time.Hour)); err == nil || !strings.Contains(err.Error(), "is already open") {
		t.Errorf("second OpenSession: %v", err)
	}
	if _, err := env.OpenWindow("app", "0_4", state.Session("s", time.Hour)); err == nil || !strings.Contains(err.Error(), "is already open") {
		t.Errorf("OpenWindow of an open session store: %v", err)
	}
	// An in-memory session store needs no directory; a persistent one does.
	mem, err := state.NewEnv("")
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	if _, err := mem.OpenSession("app", "0_0", state.Session("s", time.Hour)); err == nil || !strings.Contains(err.Error(), "the state directory is not set") {
		t.Errorf("persistent OpenSession without a directory: %v", err)
	}
	ms, err := mem.OpenSession("app", "0_0", state.Session("s", time.Hour, state.InMemory()))
	if err != nil {
		t.Fatalf("in-memory OpenSession: %v", err)
	}
	ms.Close()
}

// TestSessionEnvClose checks that closing the Env closes the session
// stores left open, and names them.
func TestSessionEnvClose(t *testing.T) {
	env, err := state.NewEnv(t.TempDir(), state.WithLogger(quietLogger))
	if err != nil {
		t.Fatal(err)
	}
	ss, err := env.OpenSession("app", "0_0", state.Session("left", time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	putSession(t, ss, "k", 0, 1, "v")
	err = env.Close()
	if err == nil || !strings.Contains(err.Error(), "1 stores still open") || !strings.Contains(err.Error(), "left") {
		t.Errorf("Env.Close: %v", err)
	}
	if err := ss.Put([]byte("k"), 0, 1, []byte("v")); !errors.Is(err, state.ErrClosed) {
		t.Errorf("Put after Env.Close: %v", err)
	}
	if _, err := env.OpenSession("app", "0_0", state.Session("left", time.Hour)); err == nil {
		t.Error("OpenSession on a closed Env: no error")
	}
}

func TestSessionClosed(t *testing.T) {
	forEachSessionBackend(t, func(t *testing.T, b sessionBackend) {
		ss := b.open(t, "s", time.Hour)
		putSession(t, ss, "a", 0, 1, "1")
		putSession(t, ss, "b", 0, 1, "2")
		it, err := ss.FetchAll(0, 1)
		if err != nil {
			t.Fatal(err)
		}
		if !it.Next() {
			t.Fatal("no first session")
		}
		if err := ss.Close(); err != nil {
			t.Fatal(err)
		}
		if err := ss.Close(); !errors.Is(err, state.ErrClosed) {
			t.Errorf("second Close: %v", err)
		}
		checks := map[string]error{
			"Put":    ss.Put([]byte("a"), 0, 1, []byte("1")),
			"Remove": ss.Put([]byte("a"), 0, 1, nil),
			"Flush":  ss.Flush(),
		}
		_, checks["Fetch"] = ss.Fetch([]byte("a"), 0, 1)
		_, checks["FindSessions"] = ss.FindSessions([]byte("a"), 0, 1)
		_, checks["FetchAll"] = ss.FetchAll(0, 1)
		_, _, checks["AppliedOffset"] = asRestorableSession(t, ss).AppliedOffset()
		checks["Restore"] = asRestorableSession(t, ss).Restore(nil, 1)
		checks["Checkpoint"] = asRestorableSession(t, ss).Checkpoint(1)
		for op, err := range checks {
			if !errors.Is(err, state.ErrClosed) || !strings.Contains(err.Error(), `store "s"`) {
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
		} else if !more || string(it.Key()) != "b" || string(it.Value()) != "2" || it.Start() != 0 || it.End() != 1 || it.Err() != nil {
			t.Errorf("iterator after Close: Next %t, %q [%d, %d] = %q, Err %v", more, it.Key(), it.Start(), it.End(), it.Value(), it.Err())
		}
		it.Close()
	})
}

func TestSessionIteratorClose(t *testing.T) {
	forEachSessionBackend(t, func(t *testing.T, b sessionBackend) {
		ss := b.open(t, "s", 2*time.Hour)
		for m := range int64(3) {
			putSession(t, ss, "a", m*40*minute, m*40*minute+minute, "1")
		}
		for what, open := range map[string]func() (state.SessionIterator, error){
			"FetchAll":     func() (state.SessionIterator, error) { return ss.FetchAll(0, math.MaxInt64) },
			"FindSessions": func() (state.SessionIterator, error) { return ss.FindSessions([]byte("a"), 0, math.MaxInt64) },
		} {
			it, err := open()
			if err != nil {
				t.Fatal(err)
			}
			if !it.Next() || it.Start() != 0 || it.End() != minute {
				t.Fatalf("%s: first session: [%d, %d]", what, it.Start(), it.End())
			}
			if err := it.Close(); err != nil {
				t.Fatal(err)
			}
			if err := it.Close(); err != nil {
				t.Errorf("%s: second Close: %v", what, err)
			}
			if it.Next() {
				t.Errorf("%s: Next after Close", what)
			}
			if err := it.Err(); !errors.Is(err, state.ErrClosed) || !strings.Contains(err.Error(), `store "s": next: iterator is closed`) {
				t.Errorf("%s: Err after Close: %v", what, err)
			}
			if it.Key() != nil {
				t.Errorf("%s: Key after Close: %q", what, it.Key())
			}
		}
	})
}

// TestSessionIteratorAfterEnd checks that, once an iterator is done or
// closed, it no longer shows a session, as a window iterator does not: Key
// and Value are nil, Start and End zero.
func TestSessionIteratorAfterEnd(t *testing.T) {
	forEachSessionBackend(t, func(t *testing.T, b sessionBackend) {
		ss := b.open(t, "s", time.Hour)
		putSession(t, ss, "a", 5, 10, "1")
		putSession(t, ss, "a", 20, 30, "2")
		var bad []string
		check := func(what string, it state.SessionIterator) {
			if it.Key() != nil || it.Value() != nil || it.Start() != 0 || it.End() != 0 {
				bad = append(bad, fmt.Sprintf("%s: %q [%d, %d] = %q", what, it.Key(), it.Start(), it.End(), it.Value()))
			}
		}
		for _, stop := range []string{"at the end", "at latestStart", "at Close"} {
			latestStart := int64(math.MaxInt64)
			if stop == "at latestStart" {
				latestStart = 19
			}
			it, err := ss.FindSessions([]byte("a"), 0, latestStart)
			if err != nil {
				t.Fatal(err)
			}
			if !it.Next() {
				t.Fatal("no first session")
			}
			switch stop {
			case "at the end":
				for it.Next() {
				}
			case "at latestStart":
				if it.Next() {
					t.Fatalf("FindSessions(a, 0, 19): a second session [%d, %d]", it.Start(), it.End())
				}
			default:
				it.Close()
			}
			check("FindSessions, stopped "+stop, it)
			it.Close()
		}
		if len(bad) > 0 {
			t.Errorf("a SessionIterator still shows a session after Next returned false or after Close: %s", strings.Join(bad, "; "))
		}
	})
}

// TestSessionOfWindowLayout checks how SessionOf keeps a session in the
// window store beneath: the window of its key at its end holds its start,
// 8 bytes big-endian, then its value.
func TestSessionOfWindowLayout(t *testing.T) {
	forEachWindowBackend(t, func(t *testing.T, b windowBackend) {
		ws := b.open("w", time.Hour)
		ss := state.SessionOf(ws)
		if ss.Name() != "w" || ss.Retention() != time.Hour {
			t.Errorf("Name, Retention = %q, %v", ss.Name(), ss.Retention())
		}
		putSession(t, ss, "k", -3, 7, "v")
		want := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfd, 'v'}
		if v, err := ws.Fetch([]byte("k"), 7); err != nil || !bytes.Equal(v, want) {
			t.Errorf("window of the session: %x, %v; want %x", v, err, want)
		}
		wantWindows(t, "windows", fetchAll(t, ws, math.MinInt64, math.MaxInt64), []win{{"k", 7, string(want)}})
		// A window put beneath reads as a session.
		putWindow(t, ws, "w", 20, string(sessionValue(11, "x")))
		wantSession(t, ss, "w", 11, 20, "x")
		wantSessions(t, "sessions", fetchAllSessions(t, ss, math.MinInt64, math.MaxInt64), []sess{{"k", -3, 7, "v"}, {"w", 11, 20, "x"}})
		putSession(t, ss, "k", -3, 7, "<nil>")
		wantFetch(t, ws, "k", 7, "<nil>")
	})
}

// TestSessionConcurrentReaders reads while one goroutine merges sessions
// as an aggregation does; run with -race. Each reader checks that what it
// sees is consistent: sessions in order of end, a key's sessions disjoint.
func TestSessionConcurrentReaders(t *testing.T) {
	forEachSessionBackend(t, func(t *testing.T, b sessionBackend) {
		ss := b.open(t, "s", 5*time.Minute)
		const writes = 2000
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
					if err := checkSessionOrder(ss, r, i); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		rnd := rand.New(rand.NewPCG(1, 2))
		for i := range writes {
			k := []byte(fmt.Sprintf("k%d", i%7))
			ts := int64(i)*100 - int64(rnd.IntN(3000))
			if err := mergeSession(ss, k, ts, 1000); err != nil {
				t.Fatal(err)
			}
		}
		close(done)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if got := fetchAllSessions(t, ss, math.MinInt64, math.MaxInt64); len(got) == 0 {
			t.Error("no sessions at the end")
		}
	})
}

// mergeSession merges a record of key at ts into its sessions, with an
// inactivity gap, as a session aggregation does: it finds the sessions
// that the record joins, removes them and puts the merged one, whose value
// is the count of records.
func mergeSession(ss state.SessionStore, key []byte, ts, gap int64) error {
	it, err := ss.FindSessions(key, ts-gap, ts+gap)
	if err != nil {
		return err
	}
	start, end, n := ts, ts, 1
	var old [][2]int64
	for it.Next() {
		start, end = min(start, it.Start()), max(end, it.End())
		var c int
		fmt.Sscan(string(it.Value()), &c)
		n += c
		old = append(old, [2]int64{it.Start(), it.End()})
	}
	if err := it.Err(); err != nil {
		return err
	}
	it.Close()
	for _, o := range old {
		if err := ss.Put(key, o[0], o[1], nil); err != nil {
			return err
		}
	}
	return ss.Put(key, start, end, []byte(fmt.Sprint(n)))
}

func checkSessionOrder(ss state.SessionStore, r, i int) error {
	var it state.SessionIterator
	var err error
	byKey := (r+i)%2 == 1
	if byKey {
		it, err = ss.FindSessions([]byte(fmt.Sprintf("k%d", i%7)), math.MinInt64, math.MaxInt64)
	} else {
		it, err = ss.FetchAll(math.MinInt64, math.MaxInt64)
	}
	if err != nil {
		return err
	}
	defer it.Close()
	var prevKey []byte
	prevEnd := int64(math.MinInt64)
	lastEnd := map[string]int64{} // of each key
	for n := 0; it.Next(); n++ {
		k, s, e := it.Key(), it.Start(), it.End()
		if s > e {
			return fmt.Errorf("session %q [%d, %d] starts after its end", k, s, e)
		}
		if e < prevEnd || e == prevEnd && n > 0 && bytes.Compare(k, prevKey) <= 0 {
			return fmt.Errorf("out of order: %q@%d after %q@%d", k, e, prevKey, prevEnd)
		}
		if le, ok := lastEnd[string(k)]; ok && s <= le {
			return fmt.Errorf("sessions of %q overlap: [%d, %d] after one ending at %d", k, s, e, le)
		}
		lastEnd[string(k)] = e
		prevEnd, prevKey = e, bytes.Clone(k)
	}
	return it.Err()
}

// sessionModel is what a session store should hold: every session put and
// not removed, by key and end, and the observed time (the newest end put);
// a session is visible while its end is live.
type sessionModel struct {
	retention int64
	sessions  map[sessionID]sessionVal
	observed  int64
	has       bool
}

type sessionID struct {
	k   string
	end int64
}

type sessionVal struct {
	start int64
	v     string
}

func (m *sessionModel) minLive() int64 {
	if !m.has || m.observed < math.MinInt64+m.retention {
		return math.MinInt64
	}
	return m.observed - m.retention
}

func (m *sessionModel) put(k string, start, end int64, v []byte) {
	if !m.has || end > m.observed {
		m.observed, m.has = end, true
		for id := range m.sessions {
			if id.end < m.minLive() {
				delete(m.sessions, id)
			}
		}
	}
	if end < m.minLive() {
		return
	}
	if v == nil {
		delete(m.sessions, sessionID{k, end})
	} else {
		m.sessions[sessionID{k, end}] = sessionVal{start, string(v)}
	}
}

// find returns the live sessions that match, in order of end, then key.
func (m *sessionModel) find(match func(k string, start, end int64) bool) []sess {
	var out []sess
	for id, s := range m.sessions {
		if id.end >= m.minLive() && match(id.k, s.start, id.end) {
			out = append(out, sess{id.k, s.start, id.end, s.v})
		}
	}
	slices.SortFunc(out, func(a, b sess) int {
		return cmp.Or(cmp.Compare(a.end, b.end), cmp.Compare(a.k, b.k))
	})
	return out
}

// findSessions is what FindSessions should return.
func (m *sessionModel) findSessions(k string, earliestEnd, latestStart int64) []sess {
	return m.find(func(key string, start, end int64) bool {
		return key == k && end >= earliestEnd && start <= latestStart
	})
}

// sessionKeys are keys that are prefixes of each other, or hold the bytes
// the layouts use.
var sessionKeys = []string{"", "a", "ab", "a\x00", "aa", "b", "\x00", "\xff", "\xff\xff", "a\x00\x00\x00\x00\x00\x00\x00\x00"}

// TestSessionModel runs random session merges, puts of disjoint sessions,
// overwrites, removals and late records against each backend and a model,
// comparing every kind of read. The store is a session store over a logged
// window store, as the runtime stacks them; the persistent one is closed
// and reopened now and then. At the end, the changelog restores a new store
// to the same sessions.
func TestSessionModel(t *testing.T) {
	for _, backend := range []string{"memory", "pebble"} {
		t.Run(backend, func(t *testing.T) {
			for seed := range uint64(3) {
				testSessionModel(t, backend, seed)
			}
		})
	}
}

func testSessionModel(t *testing.T, backend string, seed uint64) {
	const (
		retention = 10 * time.Minute
		gap       = 30_000
	)
	r := rand.New(rand.NewPCG(seed, 77))
	env := newTestEnv(t)
	spec := state.Session("model", retention)
	if backend == "memory" {
		spec = state.Session("model", retention, state.InMemory())
	}
	log := &recordLog{}
	task := fmt.Sprintf("0_%d", seed)
	open := func() state.SessionStore {
		ws, err := env.OpenWindow("app", task, spec)
		if err != nil {
			t.Fatal(err)
		}
		return state.SessionOf(state.LoggedWindow(ws, log))
	}
	ss := open()
	defer func() { ss.Close() }()
	m := &sessionModel{retention: int64(retention / time.Millisecond), sessions: map[sessionID]sessionVal{}}
	now := int64(r.IntN(3)-1) * 30 * minute // start before, at or after the epoch
	randTime := func() int64 {
		switch r.IntN(10) {
		case 0:
			return now - int64(r.IntN(int(15*minute))) // late, maybe expired
		case 1:
			return now + int64(r.IntN(int(3*minute))) // ahead
		default:
			return now - int64(r.IntN(int(8*minute)))/1000*1000
		}
	}
	// live returns the live sessions of k.
	live := func(k string) []sess { return m.findSessions(k, math.MinInt64, math.MaxInt64) }
	put := func(k string, start, end int64, v []byte) {
		t.Helper()
		if err := ss.Put([]byte(k), start, end, v); err != nil {
			t.Fatal(err)
		}
		m.put(k, start, end, v)
	}
	var merges, removals, disjoint, overwrites int
	for i := range 1500 {
		now += int64(r.IntN(int(10 * time.Second / time.Millisecond)))
		k := sessionKeys[r.IntN(len(sessionKeys))]
		switch op := r.IntN(20); {
		case op == 0 && backend == "pebble" && r.IntN(8) == 0:
			if err := ss.Close(); err != nil {
				t.Fatal(err)
			}
			ss = open()
		case op <= 2: // remove one of k's sessions
			if ls := live(k); len(ls) > 0 {
				s := ls[r.IntN(len(ls))]
				put(k, s.start, s.end, nil)
				removals++
			}
		case op <= 4: // overwrite one of k's sessions
			if ls := live(k); len(ls) > 0 {
				s := ls[r.IntN(len(ls))]
				put(k, s.start, s.end, []byte(fmt.Sprint("o", i)))
				overwrites++
			}
		case op <= 7: // a session of k that overlaps none of k's, if one is found
			start := randTime()
			end := start + int64(r.IntN(int(2*minute)))
			if len(m.findSessions(k, start, end)) == 0 {
				put(k, start, end, []byte(fmt.Sprint("d", i)))
				disjoint++
			}
		default: // a record at ts merges with the sessions within gap
			ts := randTime()
			got := findSessions(t, ss, k, ts-gap, ts+gap)
			if want := m.findSessions(k, ts-gap, ts+gap); !slices.Equal(got, want) {
				t.Fatalf("seed %d step %d: FindSessions(%q, %d, %d) to merge:\n got %v\nwant %v", seed, i, k, ts-gap, ts+gap, got, want)
			}
			start, end := ts, ts
			for _, s := range got {
				start, end = min(start, s.start), max(end, s.end)
				put(k, s.start, s.end, nil)
			}
			put(k, start, end, []byte(fmt.Sprintf("m%d.%d", i, len(got))))
			merges++
		}

		// Reads.
		k = sessionKeys[r.IntN(len(sessionKeys))]
		earliestEnd := randTime()
		latestStart := earliestEnd + int64(r.IntN(int(10*minute))) - 2*minute // sometimes before earliestEnd
		switch r.IntN(10) {
		case 0:
			earliestEnd, latestStart = math.MinInt64, math.MaxInt64
		case 1:
			earliestEnd = math.MinInt64
		case 2:
			latestStart = math.MaxInt64
		case 3, 4, 5:
			// Bounds that are exactly a session's start or end, or one off.
			if ls := live(k); len(ls) > 0 {
				s1, s2 := ls[r.IntN(len(ls))], ls[r.IntN(len(ls))]
				earliestEnd, latestStart = s1.end+int64(r.IntN(3)-1), s2.start+int64(r.IntN(3)-1)
			}
		}
		if got, want := findSessions(t, ss, k, earliestEnd, latestStart), m.findSessions(k, earliestEnd, latestStart); !slices.Equal(got, want) {
			t.Fatalf("seed %d step %d: FindSessions(%q, %d, %d):\n got %v\nwant %v", seed, i, k, earliestEnd, latestStart, got, want)
		}
		from := randTime()
		to := from + int64(r.IntN(int(5*minute)))
		switch r.IntN(10) {
		case 0:
			from, to = math.MinInt64, math.MaxInt64
		case 1, 2:
			if ls := live(k); len(ls) > 0 {
				from, to = ls[r.IntN(len(ls))].end+int64(r.IntN(3)-1), ls[r.IntN(len(ls))].end+int64(r.IntN(3)-1)
			}
		}
		want := m.find(func(_ string, _, end int64) bool { return end >= from && end <= to })
		if got := fetchAllSessions(t, ss, from, to); !slices.Equal(got, want) {
			t.Fatalf("seed %d step %d: FetchAll(%d, %d):\n got %v\nwant %v", seed, i, from, to, got, want)
		}
		if ls := live(k); len(ls) > 0 {
			s := ls[r.IntN(len(ls))]
			wantSession(t, ss, k, s.start, s.end, s.v)
			if s.start < s.end {
				wantSession(t, ss, k, s.start+1, s.end, "<nil>")
			}
			wantSession(t, ss, k, s.start-1, s.end, "<nil>")
		}
		if t.Failed() {
			t.Fatalf("seed %d step %d", seed, i)
		}
	}
	all := m.find(func(string, int64, int64) bool { return true })
	if len(all) < 10 || merges < 300 || removals < 50 || disjoint < 50 || overwrites < 50 {
		t.Errorf("seed %d: %d sessions at the end, %d merges, %d removals, %d disjoint puts, %d overwrites: the test exercises little",
			seed, len(all), merges, removals, disjoint, overwrites)
	}
	if got := fetchAllSessions(t, ss, math.MinInt64, math.MaxInt64); !slices.Equal(got, all) {
		t.Fatalf("seed %d: at the end:\n got %v\nwant %v", seed, got, all)
	}

	// The changelog restores the same sessions into a new store.
	other, err := env.OpenSession("app", task+"0", spec)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := asRestorableSession(t, other).Restore(log.recs, int64(len(log.recs))); err != nil {
		t.Fatal(err)
	}
	wantApplied(t, asRestorableSession(t, other), int64(len(log.recs)), true)
	wantSessions(t, fmt.Sprintf("seed %d: restored", seed), fetchAllSessions(t, other, math.MinInt64, math.MaxInt64), all)
}

func TestSessionKey(t *testing.T) {
	sk := state.SessionKey([]byte("k"), 1, 2)
	want := []byte{'k', 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1}
	if !bytes.Equal(sk, want) {
		t.Errorf("SessionKey(k, 1, 2) = %x, want %x", sk, want)
	}
	for _, c := range []struct {
		key        string
		start, end int64
	}{
		{"k", 1, 2},
		{"", 0, 0},
		{"key", -5, -1},
		{"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", math.MinInt64, math.MaxInt64},
		{"x", math.MaxInt64, math.MaxInt64},
		{"y", math.MinInt64, math.MinInt64},
	} {
		sk := state.SessionKey([]byte(c.key), c.start, c.end)
		if len(sk) != len(c.key)+16 {
			t.Errorf("SessionKey(%q, %d, %d) has %d bytes", c.key, c.start, c.end, len(sk))
		}
		k, start, end, err := state.SplitSessionKey(sk)
		if err != nil || string(k) != c.key || start != c.start || end != c.end {
			t.Errorf("SplitSessionKey(SessionKey(%q, %d, %d)) = %q, %d, %d, %v", c.key, c.start, c.end, k, start, end, err)
		}
		if k == nil {
			t.Errorf("SplitSessionKey(SessionKey(%q, ...)): nil key", c.key)
		}
		if cap(k) != len(k) {
			t.Errorf("SplitSessionKey: key has capacity %d > length %d", cap(k), len(k))
		}
		// The key's prefix is the windowed key at the end.
		if !bytes.HasPrefix(sk, state.WindowKey([]byte(c.key), c.end)) {
			t.Errorf("SessionKey(%q, %d, %d) = %x does not start with WindowKey at the end", c.key, c.start, c.end, sk)
		}
	}
	// The key is the caller's to reuse.
	key := []byte("abc")
	sk = state.SessionKey(key, 1, 2)
	copy(key, "xyz")
	if !bytes.HasPrefix(sk, []byte("abc")) {
		t.Errorf("SessionKey shares the key's bytes: %q", sk)
	}

	for n := range 16 {
		_, _, _, err := state.SplitSessionKey(make([]byte, n))
		if want := fmt.Sprintf("state: session key of %d bytes: want at least 16", n); err == nil || err.Error() != want {
			t.Errorf("SplitSessionKey(%d bytes): %v, want %s", n, err, want)
		}
	}
	if _, _, _, err := state.SplitSessionKey(nil); err == nil {
		t.Error("SplitSessionKey(nil): no error")
	}
	// Start after end: the end is first, then the start.
	bad := []byte{'k', 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2}
	_, _, _, err := state.SplitSessionKey(bad)
	if want := "state: session key: start 2 is after end 1"; err == nil || err.Error() != want {
		t.Errorf("SplitSessionKey(start after end): %v, want %s", err, want)
	}
	if _, _, _, err := state.SplitSessionKey(state.SessionKey(nil, 0, -1)); err == nil {
		t.Error("SplitSessionKey(SessionKey(nil, 0, -1)): no error")
	}
}

func FuzzSplitSessionKey(f *testing.F) {
	f.Add([]byte("key"), int64(1), int64(2))
	f.Add([]byte{}, int64(-1), int64(-1))
	f.Add([]byte("\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"), int64(math.MinInt64), int64(math.MaxInt64))
	f.Add([]byte("abc"), int64(5), int64(3))
	f.Add([]byte("k\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x02"), int64(0), int64(0))
	f.Fuzz(func(t *testing.T, data []byte, start, end int64) {
		// A key and a session round-trip, if the session is one.
		sk := state.SessionKey(data, start, end)
		if len(sk) != len(data)+16 || !bytes.HasPrefix(sk, data) {
			t.Fatalf("SessionKey(%q, %d, %d) = %x", data, start, end, sk)
		}
		k, s, e, err := state.SplitSessionKey(sk)
		if start <= end {
			if err != nil || !bytes.Equal(k, data) || s != start || e != end {
				t.Fatalf("SplitSessionKey(SessionKey(%q, %d, %d)) = %q, %d, %d, %v", data, start, end, k, s, e, err)
			}
		} else if err == nil {
			t.Fatalf("SplitSessionKey(SessionKey(%q, %d, %d)): no error", data, start, end)
		}
		// Any bytes split and join back, or are refused.
		k, s, e, err = state.SplitSessionKey(data)
		if err != nil {
			if len(data) >= 16 && int64(binary.BigEndian.Uint64(data[len(data)-8:])) <= int64(binary.BigEndian.Uint64(data[len(data)-16:])) {
				t.Fatalf("SplitSessionKey(%x) refused a session key: %v", data, err)
			}
			return
		}
		if len(data) < 16 || s > e || !bytes.Equal(state.SessionKey(k, s, e), data) {
			t.Fatalf("SplitSessionKey(%x) = %q, %d, %d", data, k, s, e)
		}
		// The key cannot be grown into the times' bytes.
		if cap(k) != len(k) {
			t.Fatalf("SplitSessionKey(%x): key has capacity %d > length %d", data, cap(k), len(k))
		}
	})
}
