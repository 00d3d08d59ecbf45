package state_test

import (
	"encoding/binary"
	"math"
	"testing"
	"time"

	"github.com/riffle-streams/riffle/state"
)

// benchSessions is how many sessions each key has in the read benchmarks:
// one a minute, each 30 seconds long; with a retention of as many minutes,
// they span two segments.
const benchSessions = 10

// benchSessionLen is the length of the benchmarks' sessions, in ms.
const benchSessionLen = 30_000

// forEachSessionBench runs f as a sub-benchmark for each backend, with a
// new session store that keeps benchSessions minutes, and the window store
// beneath it.
func forEachSessionBench(b *testing.B, f func(b *testing.B, ss state.SessionStore, ws state.WindowStore, persistent bool)) {
	const retention = benchSessions * time.Minute
	b.Run("memory", func(b *testing.B) {
		env, err := state.NewEnv("")
		if err != nil {
			b.Fatal(err)
		}
		defer env.Close()
		ws, err := env.OpenWindow("app", "0_0", state.Session("bench", retention, state.InMemory()))
		if err != nil {
			b.Fatal(err)
		}
		ss := state.SessionOf(ws)
		defer ss.Close()
		f(b, ss, ws, false)
	})
	b.Run("pebble", func(b *testing.B) {
		env := newTestEnv(b)
		ws, err := env.OpenWindow("app", "0_0", state.Session("bench", retention))
		if err != nil {
			b.Fatal(err)
		}
		ss := state.SessionOf(ws)
		defer ss.Close()
		f(b, ss, ws, true)
	})
}

// fillSessions restores benchSessions sessions with 16-byte values for
// each of keys, [m, m + 30 s] for each minute m, in batches of 1000
// records; a persistent store is then compacted, so that reads see a
// settled database.
func fillSessions(b *testing.B, ss state.SessionStore, ws state.WindowStore, persistent bool, keys [][]byte) {
	b.Helper()
	r := ss.(state.Restorable)
	batch := make([]state.ChangelogRecord, 0, 1000)
	var offset int64
	for m := range int64(benchSessions) {
		value := binary.BigEndian.AppendUint64(nil, uint64(m*minute)) // the start
		value = append(value, make([]byte, 16)...)
		for _, k := range keys {
			batch = append(batch, state.ChangelogRecord{Key: state.WindowKey(k, m*minute+benchSessionLen), Value: value})
			if len(batch) == cap(batch) {
				offset++
				if err := r.Restore(batch, offset); err != nil {
					b.Fatal(err)
				}
				batch = batch[:0]
			}
		}
	}
	if persistent {
		if err := state.WindowCompact(ws); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSessionPut puts 16-byte values into 30-second sessions of 100k
// distinct keys in random order, one write at a time: each pass over the
// keys moves to the next minute, so the store's observed time advances and
// whole segments expire as it goes (retention 10 minutes, segments of 5).
func BenchmarkSessionPut(b *testing.B) {
	keys := benchKeySet()
	forEachSessionBench(b, func(b *testing.B, ss state.SessionStore, _ state.WindowStore, _ bool) {
		value := make([]byte, 16)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			start := int64(i/benchKeys) * minute
			if err := ss.Put(keys[i%benchKeys], start, start+benchSessionLen, value); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// BenchmarkSessionFindSessions reads sessions of a key from a store of
// 100k keys with 10 sessions each (1M sessions), keys in random order:
// "all" reads every session of the key (two segments); "merge" finds the
// sessions a record joins, with a gap of 30 seconds, as a session
// aggregation does for each record: one session, in the middle of the
// key's.
func BenchmarkSessionFindSessions(b *testing.B) {
	keys := benchKeySet()
	forEachSessionBench(b, func(b *testing.B, ss state.SessionStore, ws state.WindowStore, persistent bool) {
		fillSessions(b, ss, ws, persistent, keys)
		find := func(b *testing.B, earliestEnd, latestStart int64, want int) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				it, err := ss.FindSessions(keys[i%benchKeys], earliestEnd, latestStart)
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for it.Next() {
					n++
				}
				if n != want || it.Err() != nil {
					b.Fatalf("%d sessions, want %d; err %v", n, want, it.Err())
				}
				it.Close()
				i++
			}
		}
		b.Run("all", func(b *testing.B) { find(b, math.MinInt64, math.MaxInt64, benchSessions) })
		// A record at 5 min 20 s joins the session [5 min, 5 min 30 s],
		// and none of the sessions a minute before and after.
		const ts = 5*minute + 20_000
		b.Run("merge", func(b *testing.B) { find(b, ts-benchSessionLen, ts+benchSessionLen, 1) })
	})
}
