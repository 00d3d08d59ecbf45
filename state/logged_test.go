package state_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/riffle-streams/riffle/state"
)

// recorder is a Changelog that keeps what it is given.
type recorder struct {
	recs []string
	fail error
}

func (r *recorder) Append(key, value []byte) error {
	if r.fail != nil {
		return r.fail
	}
	v := "<nil>"
	if value != nil {
		v = fmt.Sprintf("%q", value)
	}
	r.recs = append(r.recs, fmt.Sprintf("%s=%s", key, v))
	return nil
}

func TestLogged(t *testing.T) {
	log := &recorder{}
	kv := state.Logged(state.NewInMemoryKeyValue("s"), log)
	steps := []func() error{
		func() error { return kv.Put([]byte("a"), []byte("1")) },
		func() error { return kv.Put([]byte("b"), []byte{}) },                           // empty, not a delete
		func() error { _, err := kv.PutIfAbsent([]byte("a"), []byte("2")); return err }, // present: no write, no log
		func() error { _, err := kv.PutIfAbsent([]byte("c"), []byte("3")); return err },
		func() error { _, err := kv.Delete([]byte("a")); return err },
		func() error { _, err := kv.Delete([]byte("zz")); return err }, // absent: nothing to log
		func() error { return kv.Put([]byte("c"), nil) },               // a nil put deletes, and logs a tombstone
	}
	for i, s := range steps {
		if err := s(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	want := `a="1" b="" c="3" a=<nil> c=<nil>`
	if got := strings.Join(log.recs, " "); got != want {
		t.Errorf("changelog:\n%s\nwant:\n%s", got, want)
	}
	// Restore goes to the store, not to the log.
	r := kv.(state.Restorable)
	if err := r.Restore([]state.ChangelogRecord{{Key: []byte("x"), Value: []byte("9")}}, 41); err != nil {
		t.Fatal(err)
	}
	if off, ok, err := r.AppliedOffset(); err != nil || !ok || off != 41 {
		t.Errorf("AppliedOffset = %d, %v, %v", off, ok, err)
	}
	if v, _ := kv.Get([]byte("x")); string(v) != "9" || len(log.recs) != 5 {
		t.Errorf("restore: x=%q, %d log records", v, len(log.recs))
	}
	// A log that fails makes the write fail, naming the store.
	log.fail = errors.New("producer closed")
	err := kv.Put([]byte("d"), []byte("4"))
	if err == nil || !strings.Contains(err.Error(), `store "s": put: append to changelog: producer closed`) {
		t.Errorf("failing log: %v", err)
	}
}
