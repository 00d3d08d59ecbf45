package state_test

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/riffle-streams/riffle/state"
)

func ExampleEnv_OpenSession() {
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

	// Clicks counted per user session: a session ends after 5 minutes
	// without a click, and is kept for an hour after it ends.
	spec := state.Session("clicks-per-session", time.Hour)
	ss, err := env.OpenSession("site-stats", "0_1", spec)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ss.Close()

	const minute = int64(time.Minute / time.Millisecond)
	const gap = 5 * minute
	// click merges a click of user at t with the sessions it joins: those
	// that end at most gap before t or start at most gap after it.
	click := func(user string, t int64) {
		it, err := ss.FindSessions([]byte(user), t-gap, t+gap)
		if err != nil {
			fmt.Println(err)
			return
		}
		start, end, clicks := t, t, 1
		var merged [][2]int64
		for it.Next() {
			start, end = min(start, it.Start()), max(end, it.End())
			n, _ := strconv.Atoi(string(it.Value()))
			clicks += n
			merged = append(merged, [2]int64{it.Start(), it.End()})
		}
		if err := it.Close(); err != nil {
			fmt.Println(err)
		}
		for _, s := range merged {
			if err := ss.Put([]byte(user), s[0], s[1], nil); err != nil {
				fmt.Println(err)
			}
		}
		if err := ss.Put([]byte(user), start, end, []byte(strconv.Itoa(clicks))); err != nil {
			fmt.Println(err)
		}
	}
	show := func() {
		it, err := ss.FetchAll(0, 24*60*minute)
		if err != nil {
			fmt.Println(err)
			return
		}
		defer it.Close()
		for it.Next() {
			fmt.Printf("  %s [%d, %d] min: %s clicks\n", it.Key(), it.Start()/minute, it.End()/minute, it.Value())
		}
		if err := it.Err(); err != nil {
			fmt.Println(err)
		}
	}
	click("ann", 0)
	click("ann", 3*minute)
	click("bob", 1*minute)
	click("ann", 8*minute)
	click("ann", 15*minute)
	click("ann", 20*minute)
	fmt.Println("sessions:")
	show()

	// A click at 12 minutes bridges ann's two sessions into one.
	click("ann", 12*minute)
	fmt.Println("after a click of ann at 12 min:")
	show()
	// Output:
	// sessions:
	//   bob [1, 1] min: 1 clicks
	//   ann [0, 8] min: 3 clicks
	//   ann [15, 20] min: 2 clicks
	// after a click of ann at 12 min:
	//   bob [1, 1] min: 1 clicks
	//   ann [0, 20] min: 6 clicks
}

func ExampleSessionKey() {
	// A session of user-7 from 1 s to 61 s, as a session-windowed topic
	// carries it: the key, then the end and the start, 8 bytes each.
	k := state.SessionKey([]byte("user-7"), 1000, 61000)
	fmt.Printf("%x\n", k)

	key, start, end, err := state.SplitSessionKey(k)
	fmt.Println(string(key), start, end, err)
	// Output:
	// 757365722d37000000000000ee4800000000000003e8
	// user-7 1000 61000 <nil>
}
