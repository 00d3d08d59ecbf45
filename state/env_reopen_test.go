package state_test

import (
	"strings"
	"testing"
	"time"

	"github.com/riffle-streams/riffle/state"
)

// TestReopenWhileClosing: a persistent store closed on one goroutine can be
// opened again on another as soon as its Close has begun: the open waits
// for the files to be let go (Pebble's lock), rather than failing. Before
// Close begins, the open fails as "already open", and nothing else.
func TestReopenWhileClosing(t *testing.T) {
	env, err := state.NewEnv(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	spec := state.KeyValue("counts")
	kv, err := env.OpenKeyValue("app", "0_0", spec)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if err := kv.Put([]byte{byte(i)}, []byte("v")); err != nil {
			t.Fatal(err)
		}
		closed := make(chan error, 1)
		old := kv
		go func() { closed <- old.Close() }()
		deadline := time.Now().Add(10 * time.Second)
		for {
			kv, err = env.OpenKeyValue("app", "0_0", spec)
			if err == nil {
				break
			}
			if !strings.Contains(err.Error(), "already open") || time.Now().After(deadline) {
				t.Fatalf("round %d: reopen while closing: %v", i, err)
			}
		}
		if err := <-closed; err != nil {
			t.Fatal(err)
		}
		if v, err := kv.Get([]byte{byte(i)}); err != nil || string(v) != "v" {
			t.Fatalf("round %d: after reopening: %q, %v", i, v, err)
		}
	}
	if err := kv.Close(); err != nil {
		t.Fatal(err)
	}
}
