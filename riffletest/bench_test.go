package riffletest_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/riffle-streams/riffle/riffletest"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/stream"
	"github.com/riffle-streams/riffle/topology"
)

// chain builds source -> Filter -> MapValues -> Peek -> sink, three
// stateless operators whose functions allocate nothing themselves.
func chain[V any](tb testing.TB, vs serde.Serde[V], keep func([]byte, V) bool, mapv func(V) V) (*riffletest.Driver, *int) {
	tb.Helper()
	b := topology.NewBuilder()
	peeked := new(int)
	s := stream.From[[]byte, V](b, "in", stream.WithKeySerde(serde.ByteArray()), stream.WithValueSerde(vs))
	stream.MapValues(s.Filter(keep), mapv).
		Peek(func([]byte, V) { *peeked++ }).
		To("out")
	topo, err := b.Build()
	if err != nil {
		tb.Fatal(err)
	}
	d, err := riffletest.New(topo)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	return d, peeked
}

func bytesChain(tb testing.TB) (*riffletest.Driver, *int) {
	return chain(tb, serde.ByteArray(),
		func(_ []byte, v []byte) bool { return len(v) > 0 },
		func(v []byte) []byte { return v[1:] })
}

// pipeAndDrain pushes one record through and reads its output back, so the
// driver's queues stay empty and reuse their memory.
func pipeAndDrain(tb testing.TB, d *riffletest.Driver, key, value []byte, ts time.Time) {
	if err := d.PipeRaw("in", key, value, ts); err != nil {
		tb.Fatal(err)
	}
	if _, ok := d.ReadRaw("out"); !ok {
		tb.Fatal("no output")
	}
}

// TestChainAddsNoAllocation checks what the benchmark reports: records going
// through source, three operators and sink cost no allocation beyond what
// the user's functions and serdes allocate (here, none).
func TestChainAddsNoAllocation(t *testing.T) {
	d, peeked := bytesChain(t)
	key, value, ts := []byte("k"), []byte("xvalue"), time.UnixMilli(1)
	pipeAndDrain(t, d, key, value, ts) // warm up the driver's queues
	allocs := testing.AllocsPerRun(1000, func() { pipeAndDrain(t, d, key, value, ts) })
	if allocs != 0 {
		t.Errorf("%.1f allocations per record, want 0", allocs)
	}
	if *peeked != 1002 { // one warm-up, AllocsPerRun's own warm-up, then 1000
		t.Errorf("peeked %d records, want 1002", *peeked)
	}
}

// BenchmarkStatelessChain reports the cost per record of a three-operator
// stateless chain in the driver: with byte values (no serde cost) and with
// string values (String's decode and encode allocate one copy each).
func BenchmarkStatelessChain(b *testing.B) {
	b.Run("bytes", func(b *testing.B) {
		d, _ := bytesChain(b)
		key, value, ts := []byte("key-0001"), bytes.Repeat([]byte("v"), 100), time.UnixMilli(1)
		b.ReportAllocs()
		b.SetBytes(int64(len(key) + len(value)))
		for b.Loop() {
			pipeAndDrain(b, d, key, value, ts)
		}
	})
	b.Run("string", func(b *testing.B) {
		d, _ := chain(b, serde.String(),
			func(_ []byte, v string) bool { return v != "" },
			func(v string) string { return v[1:] })
		key, value, ts := []byte("key-0001"), []byte(strings.Repeat("v", 100)), time.UnixMilli(1)
		b.ReportAllocs()
		b.SetBytes(int64(len(key) + len(value)))
		for b.Loop() {
			pipeAndDrain(b, d, key, value, ts)
		}
	})
}

// BenchmarkBaseline is the floor the chain is compared with: the same record
// through a topology of only a source and a sink.
func BenchmarkBaseline(b *testing.B) {
	bld := topology.NewBuilder()
	stream.From[[]byte, []byte](bld, "in").To("out")
	topo, err := bld.Build()
	if err != nil {
		b.Fatal(err)
	}
	d, err := riffletest.New(topo)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	key, value, ts := []byte("key-0001"), bytes.Repeat([]byte("v"), 100), time.UnixMilli(1)
	b.ReportAllocs()
	for b.Loop() {
		pipeAndDrain(b, d, key, value, ts)
	}
}

// BenchmarkCountByKey counts records by key over 100,000 distinct keys,
// through the driver, on each backend: a stream aggregation with its store
// and changelog, and its updates written to an output topic. It reports
// records/s and, through -benchmem, the bytes allocated per record.
func BenchmarkCountByKey(b *testing.B) {
	const keys = 100_000
	for _, backend := range []state.Backend{state.InMemoryBackend, state.PersistentBackend} {
		b.Run(backend.String(), func(b *testing.B) {
			bld := topology.NewBuilder()
			counts := stream.From[[]byte, []byte](bld, "events").GroupByKey().Count(stream.Named("counts"))
			stream.ToStream(counts).To("counts-out")
			topo, err := bld.Build()
			if err != nil {
				b.Fatal(err)
			}
			d, err := riffletest.New(topo, riffletest.WithBackend(backend))
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			ks := make([][]byte, keys)
			for i := range ks {
				ks[i] = []byte(fmt.Sprintf("key-%06d", i))
			}
			value, ts := []byte("v"), time.UnixMilli(1)
			changelog := "riffletest-counts-changelog"
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				if err := d.PipeRaw("events", ks[i%keys], value, ts); err != nil {
					b.Fatal(err)
				}
				d.ReadRaw("counts-out")
				d.ReadRaw(changelog)
				i++
			}
			b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
