package stream_test

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/riffle-streams/riffle/riffletest"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/stream"
	"github.com/riffle-streams/riffle/topology"
)

// A windowed count keeps each window only as long as it can change (its
// size plus grace) unless Materialized asks for longer: here, an hour of
// one-minute windows stays in the store, to be read after the windows
// have closed. A retention shorter than the windows need fails Build.
func ExampleMaterialized_retention() {
	w := stream.Tumbling(time.Minute, 10*time.Second)

	b := topology.NewBuilder()
	stream.From[string, string](b, "clicks").GroupByKey().WindowedBy(w).
		Count(stream.Materialized("clicks-per-minute", state.WithRetention(time.Hour)))
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
	for _, at := range []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute, 40 * time.Minute} {
		_ = in.PipeAt("/home", "click", time.Unix(0, 0).Add(at))
	}
	ws, err := d.WindowStore("clicks-per-minute")
	if err != nil {
		fmt.Println(err)
		return
	}
	it, err := ws.FetchRange([]byte("/home"), 0, time.Hour.Milliseconds())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer it.Close()
	for it.Next() {
		start := time.Duration(it.Start()) * time.Millisecond
		fmt.Printf("[%v, %v): %d\n", start, start+w.Size, binary.BigEndian.Uint64(it.Value()))
	}

	short := topology.NewBuilder()
	stream.From[string, string](short, "clicks").GroupByKey().WindowedBy(w).
		Count(stream.Named("count-clicks"), stream.Materialized("clicks-per-minute", state.WithRetention(time.Minute)))
	_, err = short.Build()
	fmt.Println(err)
	// Output:
	// [0s, 1m0s): 2
	// [2m0s, 3m0s): 1
	// [40m0s, 41m0s): 1
	// stream: windowed aggregation "count-clicks": store "clicks-per-minute": retention 1m0s is shorter than the 1m10s its windows need (size 1m0s + grace 10s)
}
