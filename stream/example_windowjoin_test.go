package stream_test

import (
	"fmt"
	"time"

	"github.com/riffle-streams/riffle/riffletest"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/stream"
	"github.com/riffle-streams/riffle/topology"
)

// sjExample runs the topology of b in a driver, sends each event to its
// topic ("orders" or "payments", keyed by order id), and prints each
// record the topology writes to "out", with its time in seconds.
func sjExample(b *topology.Builder, events []sjEvent) {
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
	out := riffletest.Output(d, "out", serde.String(), serde.String())
	for _, e := range events {
		in := riffletest.Input(d, e.topic, serde.String(), serde.String())
		if err := in.PipeAt(e.key, e.value, time.Unix(e.at, 0)); err != nil {
			fmt.Println(err)
			return
		}
		recs, _ := out.ReadAll()
		for _, r := range recs {
			fmt.Printf("%3ds %s: %s\n", r.Timestamp.Unix(), r.Key, r.Value)
		}
	}
}

type sjEvent struct {
	topic, key, value string
	at                int64 // seconds
}

// An inner join pairs each order with the payments of the same order that
// come within a minute of it, either way, in whatever order they arrive.
// A payment too far from its order joins nothing.
func ExampleJoin() {
	b := topology.NewBuilder()
	orders := stream.From[string, string](b, "orders")
	payments := stream.From[string, string](b, "payments")
	paid := stream.Join(orders, payments, func(id, item, amount string) string {
		return item + " paid " + amount
	}, stream.JoinTimeDifference(time.Minute, 10*time.Second), stream.Named("paid"))
	paid.To("out")
	sjExample(b, []sjEvent{
		{"orders", "o-1", "boots", 100},
		{"payments", "o-1", "$80", 130},
		{"payments", "o-2", "$5", 140}, // comes before its order
		{"orders", "o-2", "socks", 150},
		{"orders", "o-3", "hat", 160},
		{"payments", "o-3", "$20", 300}, // more than a minute later
	})
	// Output:
	// 130s o-1: boots paid $80
	// 150s o-2: socks paid $5
}

// A left join also reports each order that got no payment within its
// window, but only once the window has closed: when stream time is past
// the order's time plus After plus Grace. An order paid in time is never
// reported unpaid.
func ExampleLeftJoin() {
	b := topology.NewBuilder()
	orders := stream.From[string, string](b, "orders")
	payments := stream.From[string, string](b, "payments")
	// A payment may come up to a minute after its order, not before it.
	w := stream.JoinWindows{Before: 0, After: time.Minute, Grace: 10 * time.Second}
	checked := stream.LeftJoin(orders, payments, func(id, item string, amount stream.Maybe[string]) string {
		if !amount.OK {
			return item + " UNPAID"
		}
		return item + " paid " + amount.Value
	}, w, stream.Named("checked"))
	checked.To("out")
	sjExample(b, []sjEvent{
		{"orders", "o-1", "boots", 100}, // its window closes at 170s
		{"orders", "o-2", "socks", 110}, // closes at 180s
		{"payments", "o-2", "$5", 165},
		{"payments", "o-9", "$1", 170}, // stream time 170s: o-1 still open
		{"payments", "o-9", "$1", 171}, // now o-1's window has closed
		{"orders", "o-3", "hat", 400},  // o-2 was paid: nothing to report
	})
	// Output:
	// 165s o-2: socks paid $5
	// 100s o-1: boots UNPAID
}

// An outer join reports the records of either side that found no match,
// each when its own window closes: here an order never paid, and a
// payment for no order.
func ExampleOuterJoin() {
	b := topology.NewBuilder()
	orders := stream.From[string, string](b, "orders")
	payments := stream.From[string, string](b, "payments")
	show := func(m stream.Maybe[string]) string {
		if !m.OK {
			return "none"
		}
		return m.Value
	}
	matched := stream.OuterJoin(orders, payments, func(id string, item, amount stream.Maybe[string]) string {
		return "order " + show(item) + ", payment " + show(amount)
	}, stream.JoinTimeDifference(time.Minute, 0), stream.Named("matched"))
	matched.To("out")
	sjExample(b, []sjEvent{
		{"orders", "o-1", "boots", 100},
		{"payments", "o-7", "$3", 110},
		{"payments", "o-1", "$80", 120},
		{"orders", "o-8", "hat", 300}, // past the windows of 100s and 110s
	})
	// Output:
	// 120s o-1: order boots, payment $80
	// 110s o-7: order none, payment $3
}
