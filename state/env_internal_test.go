package state

import (
	"fmt"
	"log/slog"
	"testing"
)

// TestWriteBufferBudget writes to many stores at once and checks that the
// Env keeps their unflushed writes, and Pebble's memtables, within the
// budget rather than growing with the number of stores.
func TestWriteBufferBudget(t *testing.T) {
	const stores, budget = 16, 8 << 20
	env, err := NewEnv(t.TempDir(), WithMemoryBudget(budget), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	var kvs []*pebbleStore
	for i := range stores {
		kv, err := env.OpenKeyValue("app", fmt.Sprintf("0_%d", i), KeyValue("s"))
		if err != nil {
			t.Fatal(err)
		}
		defer kv.Close()
		kvs = append(kvs, kv.(*pebbleStore))
	}
	value := make([]byte, 200)
	var most, memMost int64
	for i := range 40_000 { // 16 stores × 2500 × 256 B ≈ 10 MB, over the budget
		kv := kvs[i%stores]
		if err := kv.Put(fmt.Appendf(nil, "key%08d", i), value); err != nil {
			t.Fatal(err)
		}
		most = max(most, env.unflushed.Load())
		if i%1000 == 0 {
			var mem int64
			for _, kv := range kvs {
				mem += int64(kv.db.Metrics().MemTable.Size)
			}
			memMost = max(memMost, mem)
		}
	}
	t.Logf("most unflushed: %d KiB (limit %d KiB); most memtable memory: %d KiB", most>>10, env.flushAt>>10, memMost>>10)
	if limit := env.flushAt + 2*chargeStep; most > limit {
		t.Errorf("unflushed writes reached %d bytes, over %d", most, limit)
	}
	// Each store holds at least its smallest memtable; the rest is bounded
	// by the budget. The Env flushes in the background, so on a loaded
	// machine memtables can run ahead of it for a while: the bound allows
	// the whole budget on top of the floor. Unbounded, 16 stores' memtables
	// would grow to about 32 MiB here.
	if limit := int64(stores*2*256<<10 + budget); memMost > limit {
		t.Errorf("memtables reached %d bytes, over %d", memMost, limit)
	}
}
