package stream_test

import (
	"fmt"
	"strings"

	"github.com/riffle-streams/riffle/riffletest"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/stream"
	"github.com/riffle-streams/riffle/topology"
)

// Word count: grouping by a new key repartitions the words, so each word is
// counted by the task that owns it; every count update is emitted.
func ExampleGrouped_Count() {
	b := topology.NewBuilder()
	lines := stream.From[string, string](b, "lines")
	words := stream.FlatMapValues(lines, strings.Fields)
	counts := stream.GroupBy(words, func(_, w string) string { return w }, stream.Named("by-word")).
		Count(stream.Materialized("word-counts"))
	stream.ToStream(counts).To("counts")
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

	in := riffletest.Input(d, "lines", serde.String(), serde.String())
	_ = in.Pipe("1", "to be or")
	_ = in.Pipe("2", "not to be")
	out, _ := riffletest.Output(d, "counts", serde.String(), serde.Int64()).ReadKeyValues()
	fmt.Println(out)
	for _, it := range topo.InternalTopics() {
		fmt.Println(it.Kind, it.Resolve("wordcount"))
	}
	// Output:
	// [{to 1} {be 1} {or 1} {not 1} {to 2} {be 2}]
	// repartition wordcount-by-word-repartition
	// changelog wordcount-word-counts-changelog
}

// Cogroup aggregates streams of different value types into one table, with
// one store, without a join.
func ExampleCogroup() {
	type Summary struct {
		Logins int64
		Pages  []string
	}
	b := topology.NewBuilder()
	logins := stream.From[string, int64](b, "logins") // user -> attempts
	pages := stream.From[string, string](b, "pages")  // user -> page
	c := stream.Cogroup(logins.GroupByKey(), func(_ string, n int64, s Summary) Summary {
		s.Logins += n
		return s
	})
	c = stream.CogroupWith(c, pages.GroupByKey(), func(_ string, p string, s Summary) Summary {
		s.Pages = append(s.Pages, p)
		return s
	})
	summaries := c.Aggregate(func() Summary { return Summary{} }, stream.Named("summaries"))
	stream.ToStream(summaries).Foreach(func(user string, s Summary) {
		fmt.Printf("%s: %d logins, pages %v\n", user, s.Logins, s.Pages)
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

	_ = riffletest.Input(d, "logins", serde.String(), serde.Int64()).Pipe("ann", 1)
	_ = riffletest.Input(d, "pages", serde.String(), serde.String()).Pipe("ann", "/home")
	_ = riffletest.Input(d, "pages", serde.String(), serde.String()).Pipe("ann", "/cart")
	_ = riffletest.Input(d, "logins", serde.String(), serde.Int64()).Pipe("ann", 2)
	fmt.Println(len(topo.SubTopologies()), "sub-topology, stores:", topo.SubTopologies()[0].Stores[0].Name)
	// Output:
	// ann: 1 logins, pages []
	// ann: 1 logins, pages [/home]
	// ann: 1 logins, pages [/home /cart]
	// ann: 3 logins, pages [/home /cart]
	// 1 sub-topology, stores: summaries
}
