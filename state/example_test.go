package state_test

import (
	"fmt"
	"os"

	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
)

func ExampleNewInMemoryKeyValue() {
	kv := state.NewInMemoryKeyValue("words")
	defer kv.Close()
	for _, w := range []string{"banana", "apple", "cherry", "apricot"} {
		if err := kv.Put([]byte(w), []byte(fmt.Sprint(len(w)))); err != nil {
			fmt.Println(err)
			return
		}
	}

	v, _ := kv.Get([]byte("apple"))
	fmt.Printf("apple: %s\n", v)

	it, err := kv.PrefixScan([]byte("ap"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer it.Close()
	for it.Next() {
		fmt.Printf("%s=%s\n", it.Key(), it.Value())
	}
	if err := it.Err(); err != nil {
		fmt.Println(err)
	}
	// Output:
	// apple: 5
	// apple=5
	// apricot=7
}

func ExampleTyped() {
	counts := state.Typed(state.NewInMemoryKeyValue("counts"), serde.String(), serde.Int64())
	for _, w := range []string{"to", "be", "or", "not", "to", "be"} {
		n, _, err := counts.Get(w)
		if err != nil {
			fmt.Println(err)
			return
		}
		if err := counts.Put(w, n+1); err != nil {
			fmt.Println(err)
			return
		}
	}

	it, err := counts.All()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer it.Close()
	for it.Next() {
		fmt.Println(it.Key(), it.Value())
	}
	if err := it.Err(); err != nil {
		fmt.Println(err)
	}
	// Output:
	// be 2
	// not 1
	// or 1
	// to 2
}

func ExampleNewEnv() {
	dir, err := os.MkdirTemp("", "riffle-state-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	// One Env per process; every store of every task opens through it.
	env, err := state.NewEnv(dir, state.WithMemoryBudget(32<<20))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer env.Close()

	spec := state.KeyValue("counts") // persistent by default
	kv, err := env.OpenKeyValue("word-count", "0_3", spec)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := kv.Put([]byte("riffle"), []byte("1")); err != nil {
		fmt.Println(err)
		return
	}
	// The changelog holds the write up to offset 41: record it with the data.
	if err := kv.(state.Restorable).Checkpoint(41); err != nil {
		fmt.Println(err)
		return
	}
	if err := kv.Close(); err != nil {
		fmt.Println(err)
		return
	}

	// Later, or in the next run of the process: the store is still there.
	kv, err = env.OpenKeyValue("word-count", "0_3", spec)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer kv.Close()
	v, _ := kv.Get([]byte("riffle"))
	offset, ok, _ := kv.(state.Restorable).AppliedOffset()
	fmt.Printf("riffle=%s\napplied offset: %d (%t)\n", v, offset, ok)
	// Output:
	// riffle=1
	// applied offset: 41 (true)
}
