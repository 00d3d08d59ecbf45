package state_test

import (
	"cmp"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/riffle-streams/riffle/state"
)

// windowCrashChildEnv names the environment variable that makes
// TestPebbleWindowCrash the child: its value is the state directory.
const windowCrashChildEnv = "RIFFLE_STATE_WINDOW_CRASH_CHILD"

const (
	windowCrashKeys      = 50
	windowCrashStep      = 20_000 // ms between the windows of successive rounds
	windowCrashKept      = 6      // rounds kept before the newest: 2 minutes
	windowCrashRetention = 2 * time.Minute
)

// TestPebbleWindowCrash kills a process that writes to a persistent window
// store, as TestPebbleCrash does a key-value store, and checks what the
// store holds when reopened.
//
// Round n writes the window starting at n*20s of each of 50 keys, with
// value n: by one Restore batch with lastOffset n, or, every 25th round, by
// Puts and then Checkpoint(n). The retention is 2 minutes (segments of 1),
// so windows expire and segments are dropped as the rounds go. With R the
// applied offset after reopening, L the last round printed and C the last
// processing round printed, and M the newest round in the store:
//
//   - C <= R <= L+1, and M is R, or R+1 if that is a processing round (its
//     Puts may reach disk before its checkpoint).
//   - The windows visible are exactly those of rounds M-6 to M, every key
//     of each, but for a processing round M = R+1, of which a prefix of
//     the keys in the order put: the observed time came back with the data
//     it covers, and whole segments were dropped with the writes that
//     expired them.
//   - Both orders agree: FetchAll sees what the FetchRange of every key
//     sees, and no expired segment is left.
func TestPebbleWindowCrash(t *testing.T) {
	if dir := os.Getenv(windowCrashChildEnv); dir != "" {
		windowCrashChild(dir)
		return // not reached
	}
	dir, last, lastPut := killMidRun(t, "TestPebbleWindowCrash", windowCrashChildEnv)

	env, err := state.NewEnv(dir, state.WithLogger(quietLogger))
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	ws, err := env.OpenWindow("crash", "0_0", state.Window("w", windowCrashRetention))
	if err != nil {
		t.Fatalf("reopening after the kill: %v", err)
	}
	defer ws.Close()
	r, ok, err := asRestorableWindow(t, ws).AppliedOffset()
	if err != nil || !ok {
		t.Fatalf("AppliedOffset = %d, %t, %v", r, ok, err)
	}
	t.Logf("killed after round %d printed (last checkpoint printed: %d); applied offset %d", last, lastPut, r)
	if r < lastPut || r > last+1 {
		t.Errorf("applied offset %d, want between the last checkpoint printed, %d, and the round after the last printed, %d", r, lastPut, last+1)
	}

	all := fetchAll(t, ws, math.MinInt64, math.MaxInt64)
	var byKey []win
	for k := range windowCrashKeys {
		byKey = append(byKey, fetchRange(t, ws, fmt.Sprintf("k%02d", k), math.MinInt64, math.MaxInt64)...)
	}
	sortWindows(byKey)
	if !slices.Equal(all, byKey) {
		t.Errorf("the orders disagree: FetchAll sees %d windows, FetchRange %d", len(all), len(byKey))
	}
	rounds := map[int64][]string{} // the keys of each round, in order
	for _, w := range all {
		round := w.start / windowCrashStep
		if n, _, _ := strings.Cut(w.v, " "); n != strconv.FormatInt(round, 10) || w.start%windowCrashStep != 0 {
			t.Fatalf("window %s@%d holds %.20q", w.k, w.start, w.v)
		}
		rounds[round] = append(rounds[round], w.k)
	}
	m := r
	if len(rounds[r+1]) > 0 {
		m = r + 1
		if !crashPutRound(m) {
			t.Errorf("round %d, after the applied offset, is in the store, but it is a restore round", m)
		}
	}
	for round, keys := range rounds {
		if round < m-windowCrashKept || round > m {
			t.Errorf("round %d is visible; the newest is %d", round, m)
		}
		if n := len(keys); n != windowCrashKeys && !(round == r+1 && n > 0 && slices.Equal(keys, windowCrashKeyNames()[:n])) {
			t.Errorf("round %d has %d keys (%v)", round, n, keys)
		}
	}
	for round := max(m-windowCrashKept, 1); round < m; round++ {
		if len(rounds[round]) == 0 {
			t.Errorf("round %d, within the retention of round %d, is missing", round, m)
		}
	}
	minSeg := (m - windowCrashKept) * windowCrashStep / minute // times are positive
	if segs := state.WindowSegments(ws); len(segs) == 0 || segs[0] < minSeg {
		t.Errorf("segments %v; the earliest live is %d", segs, minSeg)
	}
	t.Logf("rounds %d to %d visible (round %d: %s, round %d: %s)", max(m-windowCrashKept, 1), m, r, crashPath(r), r+1, crashPath(r+1))
}

// sortWindows sorts windows by start, then key.
func sortWindows(ws []win) {
	slices.SortFunc(ws, func(a, b win) int {
		return cmp.Or(cmp.Compare(a.start, b.start), strings.Compare(a.k, b.k))
	})
}

func windowCrashKeyNames() []string {
	keys := make([]string, windowCrashKeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%02d", i)
	}
	return keys
}

// windowCrashChild is the child of TestPebbleWindowCrash: it writes rounds
// until it is killed, and exits with status 2 on an error.
func windowCrashChild(dir string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(2)
	}
	env, err := state.NewEnv(dir, state.WithLogger(quietLogger), state.WithMemoryBudget(state.MinMemoryBudget))
	if err != nil {
		fail(err)
	}
	ws, err := env.OpenWindow("crash", "0_0", state.Window("w", windowCrashRetention))
	if err != nil {
		fail(err)
	}
	r := ws.(state.Restorable)
	keys := windowCrashKeyNames()
	records := make([]state.ChangelogRecord, len(keys))
	padding := " " + strings.Repeat("x", 255)
	for round := int64(1); ; round++ {
		value := append(strconv.AppendInt(nil, round, 10), padding...)
		start := round * windowCrashStep
		if crashPutRound(round) {
			for _, k := range keys {
				if err := ws.Put([]byte(k), start, value); err != nil {
					fail(err)
				}
			}
			if err := r.Checkpoint(round); err != nil {
				fail(err)
			}
		} else {
			for i, k := range keys {
				records[i] = state.ChangelogRecord{Key: state.WindowKey([]byte(k), start), Value: value}
			}
			if err := r.Restore(records, round); err != nil {
				fail(err)
			}
		}
		if _, err := fmt.Fprintf(os.Stdout, "round %d\n", round); err != nil {
			fail(err)
		}
	}
}
