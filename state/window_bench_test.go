package state_test

import (
	"testing"
	"time"

	"github.com/riffle-streams/riffle/state"
)

// benchWindows is how many 1-minute windows each key has in the read
// benchmarks: with a retention of as many minutes, they span two segments.
const benchWindows = 10

// forEachWindowBench runs f as a sub-benchmark for each backend, with a new
// window store that keeps benchWindows minutes.
func forEachWindowBench(b *testing.B, f func(b *testing.B, ws state.WindowStore, persistent bool)) {
	const retention = benchWindows * time.Minute
	b.Run("memory", func(b *testing.B) {
		env, err := state.NewEnv("")
		if err != nil {
			b.Fatal(err)
		}
		defer env.Close()
		ws, err := env.OpenWindow("app", "0_0", state.Window("bench", retention, state.InMemory()))
		if err != nil {
			b.Fatal(err)
		}
		defer ws.Close()
		f(b, ws, false)
	})
	b.Run("pebble", func(b *testing.B) {
		f(b, openWindowStore(b, newTestEnv(b), "0_0", "bench", retention), true)
	})
}

// fillWindows restores benchWindows 1-minute windows of 16-byte values
// for each of keys, in batches of 1000 records; a persistent store is then
// compacted, so that reads see a settled database.
func fillWindows(b *testing.B, ws state.WindowStore, persistent bool, keys [][]byte) {
	b.Helper()
	r := ws.(state.Restorable)
	value := make([]byte, 16)
	batch := make([]state.ChangelogRecord, 0, 1000)
	var offset int64
	for w := range int64(benchWindows) {
		for _, k := range keys {
			batch = append(batch, state.ChangelogRecord{Key: state.WindowKey(k, w*minute), Value: value})
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

// BenchmarkWindowPut puts 16-byte values into the 1-minute windows of 100k
// distinct keys in random order, one write at a time: each pass over the
// keys moves to the next minute, so the store's observed time advances and
// whole segments expire as it goes (retention 10 minutes, segments of 5).
func BenchmarkWindowPut(b *testing.B) {
	keys := benchKeySet()
	forEachWindowBench(b, func(b *testing.B, ws state.WindowStore, persistent bool) {
		value := make([]byte, 16)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if err := ws.Put(keys[i%benchKeys], int64(i/benchKeys)*minute, value); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// BenchmarkWindowFetchRange reads all 10 windows (two segments) of a key
// from a store of 100k keys with 10 1-minute windows each (1M windows),
// keys in random order.
func BenchmarkWindowFetchRange(b *testing.B) {
	keys := benchKeySet()
	forEachWindowBench(b, func(b *testing.B, ws state.WindowStore, persistent bool) {
		fillWindows(b, ws, persistent, keys)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			it, err := ws.FetchRange(keys[i%benchKeys], 0, benchWindows*minute)
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for it.Next() {
				n++
			}
			if n != benchWindows || it.Err() != nil {
				b.Fatalf("%d windows, err %v", n, it.Err())
			}
			it.Close()
			i++
		}
	})
}

// BenchmarkWindowFetch gets one window of a key, as an aggregation does
// for each record, from the store of BenchmarkWindowFetchRange.
func BenchmarkWindowFetch(b *testing.B) {
	keys := benchKeySet()
	forEachWindowBench(b, func(b *testing.B, ws state.WindowStore, persistent bool) {
		fillWindows(b, ws, persistent, keys)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if v, err := ws.Fetch(keys[i%benchKeys], int64(i%benchWindows)*minute); v == nil || err != nil {
				b.Fatal("missing window", err)
			}
			i++
		}
	})
}

// BenchmarkWindowFetchAll reads the first 100 windows of one start (of
// 100k keys) from the store of BenchmarkWindowFetchRange.
func BenchmarkWindowFetchAll(b *testing.B) {
	keys := benchKeySet()
	forEachWindowBench(b, func(b *testing.B, ws state.WindowStore, persistent bool) {
		fillWindows(b, ws, persistent, keys)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			start := int64(i%benchWindows) * minute
			it, err := ws.FetchAll(start, start)
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for n < 100 && it.Next() {
				n++
			}
			if n != 100 || it.Err() != nil {
				b.Fatalf("%d windows, err %v", n, it.Err())
			}
			it.Close()
			i++
		}
	})
}
