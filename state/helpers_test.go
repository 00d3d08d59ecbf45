package state_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/riffle-streams/riffle/state"
)

// The tests use serdes of their own so they do not depend on package serde's.

// stringSerde encodes strings as their bytes.
type stringSerde struct{}

func (stringSerde) Encode(s string) ([]byte, error) { return []byte(s), nil }
func (stringSerde) Decode(b []byte) (string, error) {
	if b == nil {
		return "", errors.New("null string")
	}
	return string(b), nil
}

// int64Serde encodes int64s as 8 bytes big-endian.
type int64Serde struct{}

func (int64Serde) Encode(v int64) ([]byte, error) {
	return binary.BigEndian.AppendUint64(nil, uint64(v)), nil
}
func (int64Serde) Decode(b []byte) (int64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("int64: want 8 bytes, got %d", len(b))
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}

// ptrSerde encodes a *string, nil as nil bytes (a tombstone).
type ptrSerde struct{}

func (ptrSerde) Encode(p *string) ([]byte, error) {
	if p == nil {
		return nil, nil
	}
	return []byte(*p), nil
}
func (ptrSerde) Decode(b []byte) (*string, error) {
	if b == nil {
		return nil, nil
	}
	s := string(b)
	return &s, nil
}

// entry is a key and value of a scan, as strings.
type entry struct{ k, v string }

// drain reads it to the end, closes it and returns what it saw.
func drain(t *testing.T, it state.Iterator) []entry {
	t.Helper()
	var got []entry
	for it.Next() {
		got = append(got, entry{string(it.Key()), string(it.Value())})
	}
	if err := it.Err(); err != nil {
		t.Fatalf("iterator: %v", err)
	}
	if err := it.Close(); err != nil {
		t.Fatalf("close iterator: %v", err)
	}
	return got
}

// keysOf returns the keys of entries.
func keysOf(es []entry) []string {
	ks := make([]string, len(es))
	for i, e := range es {
		ks[i] = e.k
	}
	return ks
}

func mustPut(t *testing.T, kv state.KeyValueStore, k, v string) {
	t.Helper()
	if err := kv.Put([]byte(k), []byte(v)); err != nil {
		t.Fatalf("Put(%q): %v", k, err)
	}
}

// quietLogger discards what the stores log.
var quietLogger = slog.New(slog.DiscardHandler)

// newTestEnv returns an Env in a temporary directory, closed when the test
// ends (after the stores the test opened, which close first).
func newTestEnv(t testing.TB, opts ...state.EnvOption) *state.Env {
	t.Helper()
	env, err := state.NewEnv(t.TempDir(), append([]state.EnvOption{state.WithLogger(quietLogger)}, opts...)...)
	if err != nil {
		t.Fatalf("NewEnv: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Close(); err != nil {
			t.Errorf("Env.Close: %v", err)
		}
	})
	return env
}

// openStore opens the persistent store name of task 0_0 of application
// "app" in env, closed when the test ends if the test has not closed it.
func openStore(t testing.TB, env *state.Env, name string) state.KeyValueStore {
	t.Helper()
	return openTaskStore(t, env, "0_0", name)
}

// openTaskStore is openStore for a given task.
func openTaskStore(t testing.TB, env *state.Env, task, name string) state.KeyValueStore {
	t.Helper()
	kv, err := env.OpenKeyValue("app", task, state.KeyValue(name))
	if err != nil {
		t.Fatalf("OpenKeyValue(%q): %v", name, err)
	}
	t.Cleanup(func() {
		if err := kv.Close(); err != nil && !errors.Is(err, state.ErrClosed) {
			t.Errorf("Close(%q): %v", name, err)
		}
	})
	return kv
}

// backend is a kind of store the behavioural tests run against.
type backend struct {
	name       string
	persistent bool
	// open returns a new, empty store named name.
	open func(name string) state.KeyValueStore
}

// forEachBackend runs f as a subtest for each backend: in memory, and
// persistent (Pebble, in a temporary directory).
func forEachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	t.Helper()
	t.Run("memory", func(t *testing.T) {
		f(t, backend{name: "memory", open: func(name string) state.KeyValueStore {
			return state.NewInMemoryKeyValue(name)
		}})
	})
	t.Run("pebble", func(t *testing.T) {
		env := newTestEnv(t)
		tasks := 0 // each store in a task of its own, so names may repeat
		f(t, backend{name: "pebble", persistent: true, open: func(name string) state.KeyValueStore {
			tasks++
			return openTaskStore(t, env, fmt.Sprintf("0_%d", tasks), name)
		}})
	})
}
