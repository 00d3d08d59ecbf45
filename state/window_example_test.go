package state_test

import (
	"fmt"
	"os"
	"time"

	"github.com/riffle-streams/riffle/state"
)

func ExampleEnv_OpenWindow() {
	dir, err := os.MkdirTemp("", "riffle-state-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	env, err := state.NewEnv(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer env.Close()

	// Page views counted in 1-minute windows, kept for 5 minutes.
	spec := state.Window("views-per-minute", 5*time.Minute)
	ws, err := env.OpenWindow("site-stats", "0_1", spec)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ws.Close()

	const minute = int64(time.Minute / time.Millisecond)
	put := func(page string, start int64, views int) {
		if err := ws.Put([]byte(page), start, []byte(fmt.Sprint(views))); err != nil {
			fmt.Println(err)
		}
	}
	put("/home", 0, 7)
	put("/home", 1*minute, 3)
	put("/about", 1*minute, 1)
	put("/home", 2*minute, 5)

	show := func(it state.WindowIterator, err error) {
		if err != nil {
			fmt.Println(err)
			return
		}
		defer it.Close()
		for it.Next() {
			fmt.Printf("  %s [%d, %d) min: %s views\n", it.Key(), it.Start()/minute, it.Start()/minute+1, it.Value())
		}
		if err := it.Err(); err != nil {
			fmt.Println(err)
		}
	}
	fmt.Println("/home, minutes 1 to 2:")
	show(ws.FetchRange([]byte("/home"), 1*minute, 2*minute))

	// A window at 7 minutes moves the store's time on: windows that
	// started before minute 2 are past the retention, and are gone.
	put("/about", 7*minute, 2)
	fmt.Println("every page, all minutes:")
	show(ws.FetchAll(0, 10*minute))
	// Output:
	// /home, minutes 1 to 2:
	//   /home [1, 2) min: 3 views
	//   /home [2, 3) min: 5 views
	// every page, all minutes:
	//   /home [2, 3) min: 5 views
	//   /about [7, 8) min: 2 views
}
