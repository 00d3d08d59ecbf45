package state_test

import (
	"fmt"
	"time"

	"github.com/riffle-streams/riffle/state"
)

// A window store declared for one-minute windows keeps them for an hour
// with WithRetention. A key-value store has no retention: its spec is
// refused.
func ExampleWithRetention() {
	spec := state.Window("clicks-per-minute", time.Minute, state.WithRetention(time.Hour))
	fmt.Println(spec.Retention, spec.Validate())

	kv := state.KeyValue("totals", state.WithRetention(time.Hour))
	fmt.Println(kv.Validate())
	// Output:
	// 1h0m0s <nil>
	// state: key-value store "totals": retention 1h0m0s: only window and session stores have a retention (a key-value store keeps entries until they are deleted)
}
