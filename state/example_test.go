package state_test

import (
	"fmt"

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
