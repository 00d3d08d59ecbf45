package state_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/riffle-streams/riffle/state"
)

// asRestorable returns kv as a Restorable, failing the test if it is not one.
func asRestorable(t testing.TB, kv state.KeyValueStore) state.Restorable {
	t.Helper()
	r, ok := kv.(state.Restorable)
	if !ok {
		t.Fatalf("%T does not implement state.Restorable", kv)
	}
	return r
}

// wantApplied checks the applied offset of r.
func wantApplied(t testing.TB, r state.Restorable, want int64, wantOK bool) {
	t.Helper()
	got, ok, err := r.AppliedOffset()
	if err != nil {
		t.Fatalf("AppliedOffset: %v", err)
	}
	if got != want || ok != wantOK {
		t.Errorf("AppliedOffset = %d, %t; want %d, %t", got, ok, want, wantOK)
	}
}

// changeRec is a changelog record; a value of "<nil>" is a deletion.
func changeRec(k, v string) state.ChangelogRecord {
	return state.ChangelogRecord{Key: []byte(k), Value: bound(v)}
}

// allEntries returns every entry of kv.
func allEntries(t testing.TB, kv state.KeyValueStore) []entry {
	t.Helper()
	it, err := kv.Range(nil, nil)
	if err != nil {
		t.Fatalf("Range: %v", err)
	}
	defer it.Close()
	var got []entry
	for it.Next() {
		got = append(got, entry{string(it.Key()), string(it.Value())})
	}
	if err := it.Err(); err != nil {
		t.Fatalf("iterator: %v", err)
	}
	return got
}

func TestRestore(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		kv := b.open("restore")
		r := asRestorable(t, kv)
		wantApplied(t, r, 0, false)

		mustPut(t, kv, "gone", "x")
		err := r.Restore([]state.ChangelogRecord{
			changeRec("a", "1"),
			changeRec("b", "2"),
			changeRec("a", "3"), // later records win
			changeRec("gone", "<nil>"),
			changeRec("never", "<nil>"),
			changeRec("empty", ""),
		}, 41)
		if err != nil {
			t.Fatalf("Restore: %v", err)
		}
		wantApplied(t, r, 41, true)
		want := []entry{{"a", "3"}, {"b", "2"}, {"empty", ""}}
		if got := allEntries(t, kv); !slices.Equal(got, want) {
			t.Errorf("after Restore: %q, want %q", got, want)
		}
		if v, _ := kv.Get([]byte("empty")); v == nil || len(v) != 0 {
			t.Errorf("Get(empty) = %q (nil: %t), want empty", v, v == nil)
		}

		// No records still records the offset.
		if err := r.Restore(nil, 42); err != nil {
			t.Fatalf("Restore(nil): %v", err)
		}
		wantApplied(t, r, 42, true)

		// A nil key fails the whole batch: nothing is applied.
		err = r.Restore([]state.ChangelogRecord{changeRec("c", "4"), {Key: nil, Value: []byte("x")}}, 50)
		if !errors.Is(err, state.ErrNilKey) {
			t.Errorf("Restore with a nil key: err = %v, want ErrNilKey", err)
		}
		wantApplied(t, r, 42, true)
		if v, _ := kv.Get([]byte("c")); v != nil {
			t.Errorf("Get(c) = %q after a failed Restore", v)
		}

		// Restore copies: the caller may reuse its buffers.
		k, v := []byte("k"), []byte("v")
		if err := r.Restore([]state.ChangelogRecord{{Key: k, Value: v}}, 43); err != nil {
			t.Fatal(err)
		}
		copy(k, "x")
		copy(v, "y")
		if got, _ := kv.Get([]byte("k")); string(got) != "v" {
			t.Errorf("Get(k) = %q after the caller reused its buffers", got)
		}

		if err := r.Checkpoint(100); err != nil {
			t.Fatalf("Checkpoint: %v", err)
		}
		wantApplied(t, r, 100, true)

		if err := kv.Close(); err != nil {
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

// TestRestoreSnapshot checks that a Restore is atomic for readers: an
// iterator sees all of a batch or none of it.
func TestRestoreSnapshot(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		kv := b.open("snap")
		r := asRestorable(t, kv)
		batch := func(round int) []state.ChangelogRecord {
			rs := make([]state.ChangelogRecord, 50)
			for i := range rs {
				rs[i] = changeRec(fmt.Sprintf("k%02d", i), fmt.Sprint(round))
			}
			return rs
		}
		if err := r.Restore(batch(1), 1); err != nil {
			t.Fatal(err)
		}
		it, err := kv.Range(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Restore(batch(2), 2); err != nil {
			t.Fatal(err)
		}
		for _, e := range drain(t, it) {
			if e.v != "1" {
				t.Fatalf("iterator opened before the second Restore saw %q=%q", e.k, e.v)
			}
		}
		for _, e := range allEntries(t, kv) {
			if e.v != "2" {
				t.Fatalf("after the second Restore: %q=%q", e.k, e.v)
			}
		}
	})
}

// TestPebbleReopen checks that a persistent store keeps its data and
// applied offset across Close and open, by Restore and by Checkpoint, and
// also the writes made after the last checkpoint (Close flushes them).
func TestPebbleReopen(t *testing.T) {
	env := newTestEnv(t)
	kv := openStore(t, env, "reopen")
	r := asRestorable(t, kv)
	if err := r.Restore([]state.ChangelogRecord{changeRec("a", "1"), changeRec("b", "2")}, 7); err != nil {
		t.Fatal(err)
	}
	if err := kv.Close(); err != nil {
		t.Fatal(err)
	}

	kv = openStore(t, env, "reopen")
	r = asRestorable(t, kv)
	wantApplied(t, r, 7, true)
	if got, want := allEntries(t, kv), []entry{{"a", "1"}, {"b", "2"}}; !slices.Equal(got, want) {
		t.Errorf("after reopen: %q, want %q", got, want)
	}
	mustPut(t, kv, "c", "3")
	if _, err := kv.Delete([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := r.Checkpoint(9); err != nil {
		t.Fatal(err)
	}
	mustPut(t, kv, "d", "") // after the checkpoint
	if err := kv.Close(); err != nil {
		t.Fatal(err)
	}

	kv = openStore(t, env, "reopen")
	wantApplied(t, asRestorable(t, kv), 9, true)
	if got, want := allEntries(t, kv), []entry{{"b", "2"}, {"c", "3"}, {"d", ""}}; !slices.Equal(got, want) {
		t.Errorf("after second reopen: %q, want %q", got, want)
	}
	// Negative and large offsets round-trip.
	for _, off := range []int64{-1, 1<<62 + 5} {
		if err := asRestorable(t, kv).Checkpoint(off); err != nil {
			t.Fatal(err)
		}
		kv.Close()
		kv = openStore(t, env, "reopen")
		wantApplied(t, asRestorable(t, kv), off, true)
	}
}
