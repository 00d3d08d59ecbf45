package topology_test

import (
	"encoding/json"
	"fmt"

	"github.com/riffle-streams/riffle/riffletest"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/topology"
)

// sale is a sale's value: its amount, in cents.
type sale struct{ Cents int64 }

// totals is a sale's region's running total.
type totals struct {
	Sales int64 `json:"sales"`
	Cents int64 `json:"cents"`
}

// summer keeps each region's totals in the store "totals".
type summer struct {
	kv *state.TypedKeyValue[string, totals]
}

func (p *summer) Init(ctx topology.Context[string, sale]) error {
	kv, err := topology.KeyValueStore(ctx, "totals")
	p.kv = state.Typed(kv, serde.String(), serde.JSON[totals]())
	return err
}

func (p *summer) Process(r topology.Record[string, sale]) error {
	t, _, err := p.kv.Get(r.Key)
	if err != nil {
		return err
	}
	t.Sales++
	t.Cents += r.Value.Cents
	return p.kv.Put(r.Key, t)
}

func (p *summer) Close() error { return nil }

// A store declared queryable: its codec, which knows the serdes, turns a
// query's key into the store's key bytes and the stored bytes into values
// to show as JSON. The runtime uses it the same way, knowing no types.
func ExampleQueryable() {
	b := topology.NewBuilder()
	topology.AddSource(b, "sales", serde.String(), serde.JSON[sale](), "sales")
	topology.AddProcessor(b, "sum", func() topology.Processor[string, sale, string, sale] { return &summer{} }, "sales")
	b.AddStore(state.KeyValue("totals", state.InMemory()), "sum")
	topology.Queryable(b, "totals", serde.String(), serde.JSON[totals]())
	topo, err := b.Build()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("queryable:", topo.QueryableStores())

	d, _ := riffletest.New(topo)
	defer d.Close()
	in := riffletest.Input(d, "sales", serde.String(), serde.JSON[sale]())
	_ = in.Pipe("east", sale{Cents: 250})
	_ = in.Pipe("west", sale{Cents: 100})
	_ = in.Pipe("east", sale{Cents: 50})

	codec, _ := topo.StoreCodec("totals")
	store, _ := d.KeyValueStore("totals")
	// A string key may be given bare or as a JSON string.
	for _, q := range []string{`east`, `"west"`, `north`} {
		kb, err := codec.ParseKey(q)
		if err != nil {
			fmt.Println(err)
			continue
		}
		raw, _ := store.Get(kb)
		v, err := codec.Value(raw) // nil for an absent key
		if err != nil {
			fmt.Println(err)
			continue
		}
		out, _ := json.Marshal(v)
		fmt.Printf("%s: %s\n", q, out)
	}
	// Output:
	// queryable: [totals]
	// east: {"sales":2,"cents":300}
	// "west": {"sales":1,"cents":100}
	// north: null
}
