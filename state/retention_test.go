package state_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/riffle-streams/riffle/state"
)

// TestWithRetention checks the option on every kind of spec, and what
// Validate says of it.
func TestWithRetention(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec state.Spec
		want time.Duration
		// err is a part of Validate's error; "" for none.
		err string
	}{
		{"window, longer", state.Window("w", time.Minute, state.WithRetention(time.Hour)), time.Hour, ""},
		{"window, shorter", state.Window("w", time.Hour, state.WithRetention(time.Minute)), time.Minute, ""},
		{"window, last option wins", state.Window("w", time.Minute, state.WithRetention(time.Hour), state.WithRetention(2*time.Hour)), 2 * time.Hour, ""},
		{"window, with other options", state.Window("w", time.Minute, state.InMemory(), state.WithRetention(time.Hour), state.WithoutLogging()), time.Hour, ""},
		{"session", state.Session("s", time.Minute, state.WithRetention(time.Hour)), time.Hour, ""},
		{"window, zero", state.Window("w", time.Minute, state.WithRetention(0)), 0, `window store "w": retention 0s must be positive`},
		{"session, negative", state.Session("s", time.Minute, state.WithRetention(-time.Second)), -time.Second, `session store "s": retention -1s must be positive`},
		{"key-value", state.KeyValue("kv", state.WithRetention(time.Hour)), time.Hour, `key-value store "kv": retention 1h0m0s: only window and session stores have a retention`},
		{"key-value, zero", state.KeyValue("kv", state.WithRetention(0)), 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.spec.Retention != tc.want {
				t.Errorf("retention %v, want %v", tc.spec.Retention, tc.want)
			}
			err := tc.spec.Validate()
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("Validate: %v, want an error with %q", err, tc.err)
			}
		})
	}
}

// TestWithRetentionKeepsWindows checks that a window store opened with a
// retention longer than another's keeps the windows the other drops, on
// both backends, and that a key-value store with a retention is refused
// when opened.
func TestWithRetentionKeepsWindows(t *testing.T) {
	for _, backend := range []state.Option{state.InMemory(), state.Persistent()} {
		env := newTestEnv(t)
		short, err := env.OpenWindow("app", "0_0", state.Window("short", time.Minute, backend))
		if err != nil {
			t.Fatal(err)
		}
		long, err := env.OpenWindow("app", "0_0", state.Window("long", time.Minute, backend, state.WithRetention(time.Hour)))
		if err != nil {
			t.Fatal(err)
		}
		if got := long.Retention(); got != time.Hour {
			t.Errorf("retention %v, want 1h", got)
		}
		for _, ws := range []state.WindowStore{short, long} {
			putWindow(t, ws, "a", 0, "old")
			putWindow(t, ws, "a", 30*minute, "new")
		}
		wantFetch(t, short, "a", 0, "<nil>")
		wantFetch(t, long, "a", 0, "old")
		wantWindows(t, "long", fetchRange(t, long, "a", 0, math.MaxInt64), []win{{"a", 0, "old"}, {"a", 30 * minute, "new"}})
		// An hour and more later, the old window is past even the long
		// retention.
		putWindow(t, long, "a", 61*minute, "newer")
		wantFetch(t, long, "a", 0, "<nil>")
		wantFetch(t, long, "a", 30*minute, "new")
		for _, ws := range []state.WindowStore{short, long} {
			if err := ws.Close(); err != nil {
				t.Error(err)
			}
		}

		_, err = env.OpenKeyValue("app", "0_0", state.KeyValue("kv", backend, state.WithRetention(time.Hour)))
		if err == nil || !strings.Contains(err.Error(), `"kv"`) {
			t.Errorf("OpenKeyValue with a retention: %v, want an error naming the store", err)
		}
	}
}

// TestReadOnlyWindow checks that the view reads what the store holds, and
// neither writes nor closes it.
func TestReadOnlyWindow(t *testing.T) {
	forEachWindowBackend(t, func(t *testing.T, b windowBackend) {
		ws := b.open("w", time.Hour)
		putWindow(t, ws, "a", 0, "a0")
		putWindow(t, ws, "a", minute, "a1")
		putWindow(t, ws, "b", minute, "b1")
		ro := state.ReadOnlyWindow(ws)
		if ro.Name() != "w" || ro.Retention() != time.Hour {
			t.Errorf("name %q, retention %v", ro.Name(), ro.Retention())
		}
		v, err := ro.Fetch([]byte("a"), minute)
		if err != nil || string(v) != "a1" {
			t.Errorf("Fetch = %q, %v; want a1", v, err)
		}
		it, err := ro.FetchRange([]byte("a"), 0, minute)
		if err != nil {
			t.Fatal(err)
		}
		wantWindows(t, "FetchRange", drainWindows(t, it), []win{{"a", 0, "a0"}, {"a", minute, "a1"}})
		it, err = ro.FetchAll(minute, minute)
		if err != nil {
			t.Fatal(err)
		}
		wantWindows(t, "FetchAll", drainWindows(t, it), []win{{"a", minute, "a1"}, {"b", minute, "b1"}})
		if _, ok := ro.(state.WindowStore); ok {
			t.Error("the view is a WindowStore")
		}
		if err := ro.Flush(); err != nil {
			t.Errorf("Flush: %v", err)
		}
		if err := ro.Close(); err == nil || !strings.Contains(err.Error(), `"w"`) {
			t.Errorf("Close: %v, want a refusal naming the store", err)
		}
		// The store is still open, and reads through the view see its
		// writes.
		putWindow(t, ws, "b", 2*minute, "b2")
		if v, err := ro.Fetch([]byte("b"), 2*minute); err != nil || string(v) != "b2" {
			t.Errorf("Fetch after a write = %q, %v; want b2", v, err)
		}
		if err := ws.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := ro.Fetch([]byte("a"), 0); !errors.Is(err, state.ErrClosed) {
			t.Errorf("Fetch of a closed store: %v, want ErrClosed", err)
		}
	})
}

// TestReadOnlySession checks that the view reads what the store holds, and
// neither writes nor closes it.
func TestReadOnlySession(t *testing.T) {
	forEachSessionBackend(t, func(t *testing.T, b sessionBackend) {
		ss := b.open(t, "s", time.Hour)
		putSession(t, ss, "a", 0, minute, "a0")
		putSession(t, ss, "a", 5*minute, 6*minute, "a5")
		putSession(t, ss, "b", 2*minute, 3*minute, "b2")
		ro := state.ReadOnlySession(ss)
		if ro.Name() != "s" || ro.Retention() != time.Hour {
			t.Errorf("name %q, retention %v", ro.Name(), ro.Retention())
		}
		v, err := ro.Fetch([]byte("a"), 5*minute, 6*minute)
		if err != nil || string(v) != "a5" {
			t.Errorf("Fetch = %q, %v; want a5", v, err)
		}
		it, err := ro.FindSessions([]byte("a"), 0, 10*minute)
		if err != nil {
			t.Fatal(err)
		}
		wantSessions(t, "FindSessions", drainSessions(t, it), []sess{{"a", 0, minute, "a0"}, {"a", 5 * minute, 6 * minute, "a5"}})
		it, err = ro.FetchAll(minute, 3*minute)
		if err != nil {
			t.Fatal(err)
		}
		wantSessions(t, "FetchAll", drainSessions(t, it), []sess{{"a", 0, minute, "a0"}, {"b", 2 * minute, 3 * minute, "b2"}})
		if _, ok := ro.(state.SessionStore); ok {
			t.Error("the view is a SessionStore")
		}
		if err := ro.Flush(); err != nil {
			t.Errorf("Flush: %v", err)
		}
		if err := ro.Close(); err == nil || !strings.Contains(err.Error(), `"s"`) {
			t.Errorf("Close: %v, want a refusal naming the store", err)
		}
		if v, err := ro.Fetch([]byte("b"), 2*minute, 3*minute); err != nil || string(v) != "b2" {
			t.Errorf("Fetch after Close of the view = %q, %v; want b2", v, err)
		}
	})
}
