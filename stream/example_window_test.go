package stream_test

import (
	"fmt"
	"time"

	"github.com/riffle-streams/riffle/riffletest"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/stream"
	"github.com/riffle-streams/riffle/table"
	"github.com/riffle-streams/riffle/topology"
)

// A velocity check: count each card's payments in one-minute tumbling
// windows, with ten seconds of grace for payments that come out of order.
func ExampleGrouped_WindowedBy() {
	b := topology.NewBuilder()
	w := stream.Tumbling(time.Minute, 10*time.Second)
	counts := stream.From[string, string](b, "payments").GroupByKey().WindowedBy(w).Count()
	stream.ToStream(counts).To("payments-per-minute", stream.WithKeySerde(stream.WindowedSerde(serde.String(), w.Size)))
	d, in, out := driverFor(b, "payments", "payments-per-minute", stream.WindowedSerde(serde.String(), w.Size))
	if d == nil {
		return
	}
	defer d.Close()
	for _, s := range []int{5, 30, 65, 50} { // the last one is out of order, within grace
		_ = in.PipeAt("card-1", "pay", time.Unix(int64(s), 0))
	}
	recs, _ := out.ReadAll()
	for _, r := range recs {
		fmt.Printf("%s [%ds, %ds): %d\n", r.Key.Key, r.Key.Start.Unix(), r.Key.End.Unix(), r.Value)
	}
	// Output:
	// card-1 [0s, 60s): 1
	// card-1 [0s, 60s): 2
	// card-1 [60s, 120s): 1
	// card-1 [0s, 60s): 3
}

// Sliding windows count the records within a time difference of each
// other: here, payments of a card less than 10 seconds apart.
func ExampleSliding() {
	b := topology.NewBuilder()
	w := stream.Sliding(10*time.Second, time.Minute)
	counts := stream.From[string, string](b, "payments").GroupByKey().WindowedBy(w).Count()
	stream.ToStream(counts).To("bursts", stream.WithKeySerde(stream.WindowedSerde(serde.String(), w.TimeDifference)))
	d, in, out := driverFor(b, "payments", "bursts", stream.WindowedSerde(serde.String(), w.TimeDifference))
	if d == nil {
		return
	}
	defer d.Close()
	for _, ms := range []int64{20_000, 25_000, 40_000} {
		_ = in.PipeAt("card-1", "pay", time.UnixMilli(ms))
	}
	recs, _ := out.ReadAll()
	for _, r := range recs {
		fmt.Printf("[%d, %d]: %d\n", r.Key.Start.UnixMilli(), r.Key.End.UnixMilli(), r.Value)
	}
	// Output:
	// [10000, 20000]: 1
	// [15000, 25000]: 2
	// [20001, 30001]: 1
	// [30000, 40000]: 1
}

// Session windows count each user's clicks per session of activity; a
// click within five minutes of two sessions merges them.
func ExampleGrouped_SessionWindowedBy() {
	b := topology.NewBuilder()
	sessions := stream.From[string, string](b, "clicks").GroupByKey().
		SessionWindowedBy(stream.Sessions(5*time.Minute, 10*time.Minute)).Count()
	stream.Changes(sessions).Foreach(func(k stream.Windowed[string], c table.Change[int64]) {
		span := fmt.Sprintf("%s [%v, %v]", k.Key, k.Start.Sub(time.Unix(0, 0)), k.End.Sub(time.Unix(0, 0)))
		if !c.HasNew {
			fmt.Println(span, "merged away")
			return
		}
		fmt.Println(span, c.New)
	})
	topo, err := b.Build()
	if err != nil {
		fmt.Println(err)
		return
	}
	d, err := riffletest.New(topo)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()
	in := riffletest.Input(d, "clicks", serde.String(), serde.String())
	for _, m := range []int{0, 3, 12, 8} { // the click at 8m bridges [0m,3m] and [12m,12m]
		_ = in.PipeAt("ann", "click", time.Unix(0, 0).Add(time.Duration(m)*time.Minute))
	}
	// Output:
	// ann [0s, 0s] 1
	// ann [0s, 0s] merged away
	// ann [0s, 3m0s] 2
	// ann [12m0s, 12m0s] 1
	// ann [0s, 3m0s] merged away
	// ann [12m0s, 12m0s] merged away
	// ann [0s, 12m0s] 4
}

// driverFor builds b and returns a driver, the input topic in and the
// output topic out with windowed keys, or nil after printing the error.
func driverFor(b *topology.Builder, in, out string, keys serde.Serde[stream.Windowed[string]]) (*riffletest.Driver, *riffletest.InputTopic[string, string], *riffletest.OutputTopic[stream.Windowed[string], int64]) {
	topo, err := b.Build()
	if err != nil {
		fmt.Println(err)
		return nil, nil, nil
	}
	d, err := riffletest.New(topo)
	if err != nil {
		fmt.Println(err)
		return nil, nil, nil
	}
	return d, riffletest.Input(d, in, serde.String(), serde.String()), riffletest.Output(d, out, keys, serde.Int64())
}
