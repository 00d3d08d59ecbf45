package state_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/riffle-streams/riffle/state"
)

// crashChildEnv names the environment variable that makes TestPebbleCrash
// the child: its value is the state directory.
const crashChildEnv = "RIFFLE_STATE_CRASH_CHILD"

const (
	crashKeys     = 100
	crashRounds   = 100 // the fewest rounds the parent waits for before the kill
	crashPutEvery = 25  // every 25th round takes the processing path
)

// crashPutRound reports whether round takes the processing path (Put, then
// Checkpoint) rather than the restore path (one Restore batch).
func crashPutRound(round int64) bool { return round%crashPutEvery == 0 }

// TestPebbleCrash kills a process that writes to a persistent store and
// checks what the store holds when reopened.
//
// The child loops forever over rounds 1, 2, ...: a restore round writes one
// Restore batch setting keys k0..k99 to the round number, with lastOffset =
// the round (and padding); a processing round (every 25th) Puts the same keys one by one
// and then Checkpoints the round. After each round the child prints
// "round <n>". The memory budget is small, so memtables also flush on their
// own between checkpoints, every 8 rounds or so. The parent kills it with
// SIGKILL once it has seen a random number of rounds (at least 100), and
// reads everything it printed.
//
// The invariant, with R the applied offset after reopening, L the last round
// printed and C the last processing round printed:
//
//   - C <= R <= L+1: a checkpoint is durable once it returns; nothing is
//     durable that the child had not at least written.
//   - every key holds R, or R+1 if round R+1 is a processing round (its
//     Puts may have reached disk before its checkpoint: data may be ahead of
//     the offset, never behind it). In particular, when R and R+1 are both
//     restore rounds, every key holds exactly R: Restore's data and offset
//     are one batch and agree.
func TestPebbleCrash(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return // not reached
	}
	dir, last, lastPut := killMidRun(t, "TestPebbleCrash", crashChildEnv)

	env, err := state.NewEnv(dir, state.WithLogger(quietLogger))
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	kv, err := env.OpenKeyValue("crash", "0_0", state.KeyValue("kv"))
	if err != nil {
		t.Fatalf("reopening after the kill: %v", err)
	}
	defer kv.Close()
	r, ok, err := asRestorable(t, kv).AppliedOffset()
	if err != nil || !ok {
		t.Fatalf("AppliedOffset = %d, %t, %v", r, ok, err)
	}
	t.Logf("killed after round %d printed (last checkpoint printed: %d); applied offset %d", last, lastPut, r)
	if r < lastPut || r > last+1 {
		t.Errorf("applied offset %d, want between the last checkpoint printed, %d, and the round after the last printed, %d", r, lastPut, last+1)
	}
	got := map[string]int{}
	it, err := kv.Range(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	for it.Next() {
		n, _, _ := strings.Cut(string(it.Value()), " ")
		v, err := strconv.ParseInt(n, 10, 64)
		switch {
		case err != nil:
			t.Errorf("key %q has value %q", it.Key(), it.Value())
		case v == r:
		case v == r+1 && crashPutRound(r+1):
		default:
			t.Errorf("key %q = round %d, but the applied offset is %d (a %s round)", it.Key(), v, r, crashPath(r))
		}
		got[fmt.Sprint(v)]++
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range got {
		n += c
	}
	if n != crashKeys {
		t.Errorf("store holds %d keys, want %d", n, crashKeys)
	}
	t.Logf("values: %v (round %d: %s, round %d: %s)", got, r, crashPath(r), r+1, crashPath(r+1))
}

func crashPath(round int64) string {
	if crashPutRound(round) {
		return "processing"
	}
	return "restore"
}

// crashChild is the child of TestPebbleCrash: it writes rounds until it is
// killed, and exits with status 2 on an error.
func crashChild(dir string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(2)
	}
	env, err := state.NewEnv(dir, state.WithLogger(quietLogger), state.WithMemoryBudget(state.MinMemoryBudget))
	if err != nil {
		fail(err)
	}
	kv, err := env.OpenKeyValue("crash", "0_0", state.KeyValue("kv"))
	if err != nil {
		fail(err)
	}
	r := kv.(state.Restorable)
	keys := make([][]byte, crashKeys)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "k%d", i)
	}
	records := make([]state.ChangelogRecord, crashKeys)
	padding := " " + strings.Repeat("x", 255)
	for round := int64(1); ; round++ {
		// The round and padding, so memtables fill every 8 rounds or so.
		value := append(strconv.AppendInt(nil, round, 10), padding...)
		if crashPutRound(round) {
			for _, k := range keys {
				if err := kv.Put(k, value); err != nil {
					fail(err)
				}
			}
			if err := r.Checkpoint(round); err != nil {
				fail(err)
			}
		} else {
			for i, k := range keys {
				records[i] = state.ChangelogRecord{Key: k, Value: value}
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

// killMidRun re-runs the test binary as a child running test, with
// childEnv set to a fresh directory, reads the rounds it prints, kills it
// with SIGKILL after a random number of them, and returns the directory,
// the last round the child printed and the last put round among them. It
// skips where a child process cannot be run.
func killMidRun(t *testing.T, test, childEnv string) (dir string, last, lastPut int64) {
	t.Helper()
	if runtime.GOOS == "windows" || runtime.GOOS == "js" || runtime.GOOS == "wasip1" {
		t.Skip("needs to run and kill a child process")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Skip("cannot find the test binary:", err)
	}
	dir = t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	// Read rounds until enough, kill, then read what was printed before the
	// kill: the pipe ends when the child is gone.
	lines := bufio.NewScanner(stdout)
	killAt := crashRounds + rand.Int64N(3*crashRounds)
	killed := false
	for lines.Scan() {
		line := lines.Text()
		n, ok := strings.CutPrefix(line, "round ")
		if !ok {
			t.Errorf("child: %s", line)
			continue
		}
		round, err := strconv.ParseInt(n, 10, 64)
		if err != nil || round != last+1 {
			t.Fatalf("child printed %q after round %d", line, last)
		}
		last = round
		if crashPutRound(round) {
			lastPut = round
		}
		if round >= killAt && !killed {
			if err := cmd.Process.Kill(); err != nil { // SIGKILL
				t.Fatal(err)
			}
			killed = true
		}
	}
	werr := cmd.Wait()
	if !killed {
		t.Fatalf("child stopped after round %d: %v\n%s", last, werr, stderr.Bytes())
	}
	if ctx.Err() != nil {
		t.Fatalf("timed out")
	}
	return dir, last, lastPut
}
