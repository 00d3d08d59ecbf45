package main

import (
	"testing"
	"time"

	"github.com/riffle-streams/riffle/riffletest"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/topology"
)

// BenchmarkTopology runs the dashboard's topology in the test driver,
// with no broker: the cost of an order in the operators and stores alone,
// to profile (-cpuprofile) apart from Kafka. Orders are a second of event
// time apart, so windows open and close as in a live shop.
//
//	go test -run '^$' -bench Topology -benchtime 20000x ./examples/salesdashboard/
func BenchmarkTopology(b *testing.B) {
	for _, backend := range []state.Backend{state.InMemoryBackend, state.PersistentBackend} {
		b.Run(backend.String(), func(b *testing.B) {
			topo, err := Topology()
			if err != nil {
				b.Fatal(err)
			}
			d, err := riffletest.New(topo, riffletest.WithBackend(backend),
				riffletest.WithDecodeErrorHandler(func(*topology.DecodeError) error { return nil }))
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			g, err := NewGenerator(GeneratorConfig{Seed: 1, Malformed: -1})
			if err != nil {
				b.Fatal(err)
			}
			at := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
			// The records are made first, so that only processing is timed.
			type rec struct {
				topic      string
				key, value []byte
				ts         time.Time
			}
			recs := make([][]rec, b.N)
			for i := range recs {
				for _, r := range g.Next(at.Add(time.Duration(i) * time.Second)) {
					recs[i] = append(recs[i], rec{r.Topic, r.Key, r.Value, r.Timestamp})
				}
			}
			b.ResetTimer()
			for i := range b.N {
				for _, r := range recs[i] {
					if err := d.PipeRaw(r.topic, r.key, r.value, r.ts); err != nil {
						b.Fatal(err)
					}
				}
				// Drain the output topics, as a broker would take them.
				for _, t := range []string{InventoryUpdatesTopic, InventoryAlertsTopic} {
					for {
						if _, ok := d.ReadRaw(t); !ok {
							break
						}
					}
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
		})
	}
}
