package stream_test

import (
	"fmt"
	"strings"

	"github.com/riffle-streams/riffle/riffletest"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/stream"
	"github.com/riffle-streams/riffle/topology"
)

// run builds b, pipes the pairs into topic "in" and prints what reaches each
// of the output topics.
func run(b *topology.Builder, in []topology.KeyValue[string, string], outs ...string) {
	topo, err := b.Build()
	if err != nil {
		fmt.Println("build:", err)
		return
	}
	d, err := riffletest.New(topo)
	if err != nil {
		fmt.Println("driver:", err)
		return
	}
	defer d.Close()
	input := riffletest.Input(d, "in", serde.String(), serde.String())
	for _, r := range in {
		if err := input.Pipe(r.Key, r.Value); err != nil {
			fmt.Println("pipe:", err)
			return
		}
	}
	for _, topic := range outs {
		got, err := riffletest.Output(d, topic, serde.String(), serde.String()).ReadKeyValues()
		if err != nil {
			fmt.Println("read:", err)
			return
		}
		fmt.Println(topic, got)
	}
}

func ExampleFrom() {
	b := topology.NewBuilder()
	// Serdes are picked by type: String for string keys and values.
	greetings := stream.From[string, string](b, "in")
	greetings.To("out")

	run(b, []topology.KeyValue[string, string]{
		topology.KV("en", "hello"),
		topology.KV("fr", "bonjour"),
	}, "out")
	// Output:
	// out [{en hello} {fr bonjour}]
}

func ExampleMapValues() {
	b := topology.NewBuilder()
	words := stream.From[string, string](b, "in")
	stream.MapValues(words, strings.ToUpper).To("out")

	run(b, []topology.KeyValue[string, string]{
		topology.KV("a", "riffle"),
		topology.KV("b", "streams"),
	}, "out")
	// Output:
	// out [{a RIFFLE} {b STREAMS}]
}

func ExampleStream_Filter() {
	b := topology.NewBuilder()
	events := stream.From[string, string](b, "in")
	events.Filter(func(user, action string) bool { return action == "buy" }).To("purchases")

	run(b, []topology.KeyValue[string, string]{
		topology.KV("ann", "view"),
		topology.KV("bob", "buy"),
		topology.KV("ann", "buy"),
	}, "purchases")
	// Output:
	// purchases [{bob buy} {ann buy}]
}

func ExampleStream_Split() {
	b := topology.NewBuilder()
	orders := stream.From[string, string](b, "in")
	sp := orders.Split(stream.Named("by-region"))
	// A record goes to the first branch whose predicate holds.
	sp.Branch("eu", func(id, region string) bool { return strings.HasPrefix(region, "eu") }).To("orders-eu")
	sp.Branch("us", func(id, region string) bool { return strings.HasPrefix(region, "us") }).To("orders-us")
	sp.Default("other").To("orders-other")

	run(b, []topology.KeyValue[string, string]{
		topology.KV("o1", "eu-west"),
		topology.KV("o2", "us-east"),
		topology.KV("o3", "ap-south"),
		topology.KV("o4", "eu-north"),
	}, "orders-eu", "orders-us", "orders-other")
	// Output:
	// orders-eu [{o1 eu-west} {o4 eu-north}]
	// orders-us [{o2 us-east}]
	// orders-other [{o3 ap-south}]
}

// wordCounter counts words per key in the store "counts".
type wordCounter struct {
	ctx    topology.Context[string, string]
	counts *state.TypedKeyValue[string, int64]
}

func (w *wordCounter) Init(ctx topology.Context[string, string]) error {
	kv, err := topology.KeyValueStore(ctx, "counts")
	if err != nil {
		return err
	}
	w.ctx, w.counts = ctx, state.Typed(kv, serde.String(), serde.Int64())
	return nil
}

func (w *wordCounter) Process(r topology.Record[string, string]) error {
	n, _, err := w.counts.Get(r.Key)
	if err != nil {
		return err
	}
	n += int64(len(strings.Fields(r.Value)))
	if err := w.counts.Put(r.Key, n); err != nil {
		return err
	}
	return w.ctx.Forward(topology.Record[string, string]{
		Key: r.Key, Value: fmt.Sprint(n), Timestamp: r.Timestamp, Headers: r.Headers,
	})
}

func (w *wordCounter) Close() error { return nil }

func ExampleProcess() {
	b := topology.NewBuilder()
	b.AddStore(state.KeyValue("counts", state.InMemory()))
	lines := stream.From[string, string](b, "in")
	totals := stream.Process(lines,
		func() topology.Processor[string, string, string, string] { return &wordCounter{} },
		stream.WithStores("counts"))
	totals.To("totals")

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
	in := riffletest.Input(d, "in", serde.String(), serde.String())
	_ = in.Pipe("ann", "to be or not")
	_ = in.Pipe("bob", "hello")
	_ = in.Pipe("ann", "to be")

	out, _ := riffletest.Output(d, "totals", serde.String(), serde.String()).ReadKeyValues()
	fmt.Println(out)

	kv, _ := d.KeyValueStore("counts")
	n, _, _ := state.TypedRead(kv, serde.String(), serde.Int64()).Get("ann")
	fmt.Println("ann:", n)
	// Output:
	// [{ann 4} {bob 1} {ann 6}]
	// ann: 6
}

// ProcessValues runs the same processor, which keeps its records' keys, so
// grouping what it forwards needs no repartition topic.
func ExampleProcessValues() {
	b := topology.NewBuilder()
	b.AddStore(state.KeyValue("counts", state.InMemory()))
	lines := stream.From[string, string](b, "in")
	totals := stream.ProcessValues(lines,
		func() topology.Processor[string, string, string, string] { return &wordCounter{} },
		stream.WithStores("counts"))
	updates := totals.GroupByKey().Count(stream.Named("updates"))
	stream.MapValues(stream.ToStream(updates), func(n int64) string { return fmt.Sprint(n) }).To("updates")

	topo, err := b.Build()
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, t := range topo.InternalTopics() {
		fmt.Println("internal topic:", t.Name)
	}
	run(b, []topology.KeyValue[string, string]{
		topology.KV("ann", "to be or not"),
		topology.KV("bob", "hello"),
		topology.KV("ann", "to be"),
	}, "updates")
	// Output:
	// internal topic: counts-changelog
	// internal topic: updates-changelog
	// updates [{ann 1} {bob 1} {ann 2}]
}

func ExampleStream_Print() {
	b := topology.NewBuilder()
	stream.From[string, string](b, "in").Print(stream.WithLabel("in"))
	run(b, []topology.KeyValue[string, string]{topology.KV("k", "v")})
	// Output:
	// [in]: k, v
}
