package table_test

import (
	"fmt"

	"github.com/riffle-streams/riffle/riffletest"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/table"
	"github.com/riffle-streams/riffle/topology"
)

// printTopic prints every record waiting in topic, a tombstone as <deleted>.
func printTopic[K, V any](d *riffletest.Driver, topic string, ks serde.Serde[K], vs serde.Serde[V]) {
	for {
		raw, ok := d.ReadRaw(topic)
		if !ok {
			return
		}
		k, _ := ks.Decode(raw.Key)
		if raw.Value == nil {
			fmt.Printf("%v: <deleted>\n", k)
			continue
		}
		v, _ := vs.Decode(raw.Value)
		fmt.Printf("%v: %v\n", k, v)
	}
}

// A table keeps the latest value of each key; a tombstone (nil bytes)
// deletes it. Filter retracts a key whose new value no longer passes.
func ExampleFrom() {
	b := topology.NewBuilder()
	stock := table.From[string, int64](b, "stock")
	stock.Filter(func(_ string, n int64) bool { return n < 5 }).To("low-stock")
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

	in := riffletest.Input(d, "stock", serde.String(), serde.Int64())
	_ = in.Pipe("apples", 10)
	_ = in.Pipe("pears", 3)
	_ = in.Pipe("apples", 2)
	_ = in.Pipe("pears", 8)                                      // no longer low: retracted
	_ = d.PipeRaw("stock", []byte("apples"), nil, d.WallClock()) // sold out: deleted
	printTopic(d, "low-stock", serde.String(), serde.Int64())
	// Output:
	// pears: 3
	// apples: 2
	// pears: <deleted>
	// apples: <deleted>
}

// Re-grouping a table: when a user moves, the old region loses them and the
// new one gains them.
func ExampleGroupBy() {
	b := topology.NewBuilder()
	users := table.From[string, string](b, "user-regions")
	perRegion := table.GroupBy(users, func(user, region string) (string, string) { return region, user })
	perRegion.Count(table.Named("users-per-region")).To("region-counts")
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

	in := riffletest.Input(d, "user-regions", serde.String(), serde.String())
	_ = in.Pipe("alice", "eu")
	_ = in.Pipe("bob", "eu")
	_ = in.Pipe("alice", "us")
	printTopic(d, "region-counts", serde.String(), serde.Int64())
	for _, it := range topo.InternalTopics() {
		fmt.Println(it.Kind, it.Resolve("app"))
	}
	// Output:
	// eu: 1
	// eu: 2
	// eu: 1
	// us: 1
	// repartition app-users-per-region-repartition
	// changelog app-table-user-regions-changelog
	// changelog app-users-per-region-changelog
}
