package riffletest_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/riffle-streams/riffle/riffletest"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/stream"
	"github.com/riffle-streams/riffle/topology"
)

// Testing a topology: pipe records in, read what comes out.
func ExampleNew() {
	b := topology.NewBuilder()
	words := stream.FlatMapValues(stream.From[string, string](b, "sentences"), strings.Fields)
	stream.MapValues(words, strings.ToUpper).To("shouted")
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
	in := riffletest.Input(d, "sentences", serde.String(), serde.String())
	out := riffletest.Output(d, "shouted", serde.String(), serde.String())
	_ = in.Pipe("s1", "hello riffle")
	kvs, _ := out.ReadKeyValues()
	fmt.Println(kvs)
	// Output:
	// [{s1 HELLO} {s1 RIFFLE}]
}

// A record that cannot be decoded fails the pipe by default; a handler can
// skip it instead, and the driver counts it.
func ExampleWithDecodeErrorHandler() {
	b := topology.NewBuilder()
	stream.From[string, int64](b, "amounts").To("copied")
	topo, _ := b.Build()

	strict, _ := riffletest.New(topo)
	err := strict.PipeRaw("amounts", []byte("k"), []byte{1, 2, 3}, strict.WallClock())
	fmt.Println(err)

	lenient, _ := riffletest.New(topo, riffletest.WithDecodeErrorHandler(func(*topology.DecodeError) error { return nil }))
	_ = lenient.PipeRaw("amounts", []byte("k"), []byte{1, 2, 3}, lenient.WallClock())
	fmt.Println("skipped:", lenient.SkippedRecords())
	// Output:
	// topology: task 0_0: source "from-amounts": cannot decode value of amounts[0]@0: serde Int64: want 8 bytes, got 3 bytes
	// skipped: 1
}

// Reading a windowed aggregation's store: the counts of each page per
// minute, as the window store keeps them.
func ExampleDriver_WindowStore() {
	b := topology.NewBuilder()
	stream.From[string, string](b, "clicks").GroupByKey().
		WindowedBy(stream.Tumbling(time.Minute, 0)).Count(stream.Named("clicks-per-minute"))
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
	for _, sec := range []int64{5, 30, 70} {
		_ = in.PipeAt("/home", "click", time.Unix(sec, 0))
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
		n, _ := serde.Int64().Decode(it.Value())
		fmt.Printf("/home from %ds: %d\n", it.Start()/1000, n)
	}
	// Output:
	// /home from 0s: 2
	// /home from 60s: 1
}

// Reading a session aggregation's store: each user's sessions, with the
// clicks in each.
func ExampleDriver_SessionStore() {
	b := topology.NewBuilder()
	stream.From[string, string](b, "clicks").GroupByKey().
		SessionWindowedBy(stream.Sessions(5*time.Minute, 10*time.Minute)).Count(stream.Named("visits"))
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
	for _, sec := range []int64{0, 120, 900} {
		_ = in.PipeAt("ann", "click", time.Unix(sec, 0))
	}

	ss, err := d.SessionStore("visits")
	if err != nil {
		fmt.Println(err)
		return
	}
	it, err := ss.FindSessions([]byte("ann"), 0, time.Hour.Milliseconds())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer it.Close()
	for it.Next() {
		n, _ := serde.Int64().Decode(it.Value())
		fmt.Printf("ann [%ds, %ds]: %d\n", it.Start()/1000, it.End()/1000, n)
	}
	// Output:
	// ann [0s, 120s]: 2
	// ann [900s, 900s]: 1
}
