package riffletest_test

import (
	"fmt"
	"strings"

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
