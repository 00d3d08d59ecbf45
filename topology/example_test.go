package topology_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/riffle-streams/riffle/riffletest"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/topology"
)

// dedupe forwards a record only the first time its key is seen, remembering
// keys in a store.
type dedupe struct {
	ctx  topology.Context[string, string]
	seen state.KeyValueStore
}

func (p *dedupe) Init(ctx topology.Context[string, string]) error {
	p.ctx = ctx
	kv, err := topology.KeyValueStore(ctx, "seen")
	p.seen = kv
	return err
}

func (p *dedupe) Process(r topology.Record[string, string]) error {
	old, err := p.seen.PutIfAbsent([]byte(r.Key), []byte{})
	if err != nil || old != nil {
		return err
	}
	return p.ctx.Forward(r)
}

func (p *dedupe) Close() error { return nil }

// A topology built with the Processor API: a source, a processor with a
// store, and a sink.
func ExampleAddProcessor() {
	str := serde.String()
	b := topology.NewBuilder()
	topology.AddSource(b, "events", str, str, "events")
	topology.AddProcessor(b, "dedupe", func() topology.Processor[string, string, string, string] { return &dedupe{} }, "events")
	b.AddStore(state.KeyValue("seen", state.InMemory()), "dedupe")
	topology.AddSink(b, "unique", "unique-events", str, str, "dedupe")
	topo, err := b.Build()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(topo.Describe())

	d, _ := riffletest.New(topo)
	defer d.Close()
	in := riffletest.Input(d, "events", str, str)
	for _, id := range []string{"a", "b", "a", "c", "b"} {
		_ = in.Pipe(id, "event "+id)
	}
	vals, _ := riffletest.Output(d, "unique-events", str, str).ReadValues()
	fmt.Println(strings.Join(vals, ", "))
	// Output:
	// Sub-topology 0
	//   Source:    events (topics: events)
	//     --> dedupe
	//   Processor: dedupe (stores: seen)
	//     --> unique
	//     <-- events
	//   Sink:      unique (topic: unique-events)
	//     <-- dedupe
	// event a, event b, event c
}

// counter emits, every minute of stream time, how many records it saw since
// it last emitted.
type counter struct {
	ctx topology.Context[string, int64]
	n   int64
}

func (p *counter) Init(ctx topology.Context[string, int64]) error {
	p.ctx = ctx
	_, err := ctx.Schedule(time.Minute, topology.StreamTime, func(ts time.Time) error {
		n := p.n
		p.n = 0
		return p.ctx.Forward(topology.Record[string, int64]{Key: ts.UTC().Format("15:04:05"), Value: n, Timestamp: ts})
	})
	return err
}

func (p *counter) Process(topology.Record[string, string]) error { p.n++; return nil }
func (p *counter) Close() error                                  { return nil }

// A punctuation on stream time. It fires after the record that moves stream
// time onto or past its next whole minute (the first record fires it too),
// and once however far time jumps; it is called with the stream time.
func ExampleContext_schedule() {
	str := serde.String()
	b := topology.NewBuilder()
	topology.AddSource(b, "clicks", str, str, "clicks")
	topology.AddProcessor(b, "per-minute", func() topology.Processor[string, string, string, int64] { return &counter{} }, "clicks")
	topology.AddSink(b, "counts", "clicks-per-minute", str, serde.Int64(), "per-minute")
	topo, _ := b.Build()
	d, _ := riffletest.New(topo)
	defer d.Close()

	in := riffletest.Input(d, "clicks", str, str)
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	for _, offset := range []time.Duration{0, 10 * time.Second, 50 * time.Second, 70 * time.Second, 200 * time.Second} {
		_ = in.PipeAt("user", "click", t0.Add(offset))
	}
	kvs, _ := riffletest.Output(d, "clicks-per-minute", str, serde.Int64()).ReadKeyValues()
	for _, kv := range kvs {
		fmt.Printf("%s: %d\n", kv.Key, kv.Value)
	}
	// Output:
	// 10:00:00: 1
	// 10:01:10: 3
	// 10:03:20: 1
}
