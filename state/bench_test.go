package state_test

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/riffle-streams/riffle/state"
)

const benchKeys = 100_000

// benchKeySet returns benchKeys distinct 8-byte keys in random order.
func benchKeySet() [][]byte {
	r := rand.New(rand.NewPCG(5, 6))
	keys := make([][]byte, benchKeys)
	for i, p := range r.Perm(benchKeys) {
		keys[i] = binary.BigEndian.AppendUint64(nil, uint64(p)*7919)
	}
	return keys
}

// benchStore returns a store holding every key of keys.
func benchStore(b *testing.B, keys [][]byte) state.KeyValueStore {
	kv := state.NewInMemoryKeyValue("bench")
	value := make([]byte, 16)
	for _, k := range keys {
		if err := kv.Put(k, value); err != nil {
			b.Fatal(err)
		}
	}
	return kv
}

// BenchmarkInMemoryPut puts 16-byte values under 100k distinct keys in
// random order, over and over: first inserts, then overwrites.
func BenchmarkInMemoryPut(b *testing.B) {
	keys := benchKeySet()
	kv := state.NewInMemoryKeyValue("bench")
	value := make([]byte, 16)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := kv.Put(keys[i%benchKeys], value); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkInMemoryGet gets keys from a store of 100k keys.
func BenchmarkInMemoryGet(b *testing.B) {
	keys := benchKeySet()
	kv := benchStore(b, keys)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if v, err := kv.Get(keys[i%benchKeys]); v == nil || err != nil {
			b.Fatal("missing key", err)
		}
		i++
	}
}

// BenchmarkInMemoryRange opens an iterator at a random key of a store of
// 100k keys and reads 100 entries.
func BenchmarkInMemoryRange(b *testing.B) {
	keys := benchKeySet()
	kv := benchStore(b, keys)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		it, err := kv.Range(keys[i%benchKeys], nil)
		if err != nil {
			b.Fatal(err)
		}
		for n := 0; n < 100 && it.Next(); n++ {
		}
		it.Close()
		i++
	}
}

// BenchmarkInMemoryPutIterating is BenchmarkInMemoryPut on a full store
// with an iterator opened every 100 puts. If the iterator stays open across
// the puts, each put copies the nodes on its path that the iterator's
// snapshot shares; once the iterator is closed, puts work in place again.
func BenchmarkInMemoryPutIterating(b *testing.B) {
	for _, keepOpen := range []bool{false, true} {
		name := "closed"
		if keepOpen {
			name = "open"
		}
		b.Run(name, func(b *testing.B) {
			keys := benchKeySet()
			kv := benchStore(b, keys)
			value := make([]byte, 16)
			var it state.Iterator
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if i%100 == 0 {
					if it != nil {
						it.Close()
					}
					var err error
					if it, err = kv.Range(nil, nil); err != nil {
						b.Fatal(err)
					}
					if !keepOpen {
						it.Close()
					}
				}
				if err := kv.Put(keys[i%benchKeys], value); err != nil {
					b.Fatal(err)
				}
				i++
			}
			it.Close()
		})
	}
}

// benchPebble returns a new persistent store in a temporary directory.
func benchPebble(b *testing.B) state.KeyValueStore {
	b.Helper()
	return openStore(b, newTestEnv(b), "bench")
}

// BenchmarkPebblePointRead gets keys from a persistent store of 100k keys,
// flushed to an sstable, in random order. The block cache (64 MiB) holds
// them all after the first pass.
func BenchmarkPebblePointRead(b *testing.B) {
	keys := benchKeySet()
	kv := benchPebble(b)
	value := make([]byte, 16)
	for _, k := range keys {
		if err := kv.Put(k, value); err != nil {
			b.Fatal(err)
		}
	}
	if err := kv.Flush(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if v, err := kv.Get(keys[i%benchKeys]); v == nil || err != nil {
			b.Fatal("missing key", err)
		}
		i++
	}
}

// BenchmarkPebbleBatchWrite restores batches of 1000 records (8-byte keys,
// 16-byte values) into a persistent store, as restoring from a changelog
// does; records/s counts records.
func BenchmarkPebbleBatchWrite(b *testing.B) {
	const batch = 1000
	keys := benchKeySet()
	kv := benchPebble(b)
	r := kv.(state.Restorable)
	value := make([]byte, 16)
	records := make([]state.ChangelogRecord, batch)
	b.ReportAllocs()
	var offset int64
	for b.Loop() {
		for j := range records {
			records[j] = state.ChangelogRecord{Key: keys[(int(offset)+j)%benchKeys], Value: value}
		}
		offset += batch
		if err := r.Restore(records, offset); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(offset)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkPebblePut puts 16-byte values under 100k distinct keys in random
// order into a persistent store, one write at a time.
func BenchmarkPebblePut(b *testing.B) {
	keys := benchKeySet()
	kv := benchPebble(b)
	value := make([]byte, 16)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := kv.Put(keys[i%benchKeys], value); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
