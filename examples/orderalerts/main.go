// Command orderalerts runs a small stateless Riffle topology in-process, on
// the test driver, and prints what it produces. It needs no Kafka.
//
// Orders arrive as JSON on "orders". Orders with a total of 1,000 or more
// become alerts; alerts are split by region: EU alerts go to "alerts-eu",
// the rest to "alerts-other"; orders that fail to parse go nowhere, counted.
//
//	go run ./examples/orderalerts
package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/riffle-streams/riffle/riffletest"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/stream"
	"github.com/riffle-streams/riffle/topology"
)

// Order is an order event.
type Order struct {
	ID       string  `json:"orderId"`
	Customer string  `json:"customerId"`
	Region   string  `json:"region"`
	Total    float64 `json:"total"`
}

// Alert is what the topology writes for a large order.
type Alert struct {
	Order    string  `json:"orderId"`
	Customer string  `json:"customerId"`
	Region   string  `json:"region"`
	Total    float64 `json:"total"`
	Reason   string  `json:"reason"`
}

// buildTopology returns the topology: orders in, alerts out.
func buildTopology() (*topology.Topology, error) {
	b := topology.NewBuilder()
	orders := stream.From[string, Order](b, "orders", stream.Named("orders"))
	large := orders.Filter(func(_ string, o Order) bool { return o.Total >= 1000 }, stream.Named("large-orders"))
	// Re-key by customer: a key-changing step, so a later stateful step
	// would repartition first.
	byCustomer := stream.SelectKey(large, func(_ string, o Order) string { return o.Customer }, stream.Named("by-customer"))
	alerts := stream.MapValues(byCustomer, func(o Order) Alert {
		return Alert{Order: o.ID, Customer: o.Customer, Region: o.Region, Total: o.Total, Reason: fmt.Sprintf("order of %.2f", o.Total)}
	}, stream.Named("to-alert"))
	regions := alerts.Split(stream.Named("region"))
	eu := regions.Branch("eu", func(_ string, a Alert) bool { return strings.HasPrefix(a.Region, "eu-") })
	other := regions.Default("other")
	eu.To("alerts-eu")
	other.To("alerts-other")
	return b.Build()
}

func main() {
	describe := flag.Bool("describe", false, "print the topology as Mermaid and exit")
	flag.Parse()
	if err := run(os.Stdout, *describe); err != nil {
		fmt.Fprintln(os.Stderr, "orderalerts:", err)
		os.Exit(1)
	}
}

// run runs the topology on the driver and writes what it does to w.
func run(w io.Writer, mermaid bool) error {
	topo, err := buildTopology()
	if err != nil {
		return err
	}
	if mermaid {
		fmt.Fprint(w, topo.Mermaid())
		return nil
	}
	fmt.Fprintf(w, "Running on the in-process test driver (no Kafka needed). The topology:\n\n%s\n", topo.Describe())

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	d, err := riffletest.New(topo,
		riffletest.WithLogger(logger),
		// Log and skip records that are not valid JSON, rather than stop.
		riffletest.WithDecodeErrorHandler(func(*topology.DecodeError) error { return nil }))
	if err != nil {
		return err
	}
	defer d.Close()

	in := riffletest.Input(d, "orders", serde.String(), serde.JSON[Order]()).AutoAdvance(time.Second)
	in.SetTime(time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC))
	for _, o := range []Order{
		{"o-1", "c-ada", "eu-west", 25.50},
		{"o-2", "c-ada", "eu-west", 1250.00},
		{"o-3", "c-carl", "us-east", 4999.99},
		{"o-4", "c-dana", "ap-south", 12.00},
		{"o-5", "c-bert", "eu-central", 1000.00},
	} {
		if err := in.Pipe(o.ID, o); err != nil {
			return err
		}
	}
	// A poison record: skipped, counted and logged, and processing goes on.
	if err := d.PipeRaw("orders", []byte("o-6"), []byte("{not json"), time.Date(2026, 11, 21, 9, 0, 5, 0, time.UTC)); err != nil {
		return err
	}

	for _, topic := range []string{"alerts-eu", "alerts-other"} {
		out := riffletest.Output(d, topic, serde.String(), serde.JSON[Alert]())
		recs, err := out.ReadAll()
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%s:\n", topic)
		for _, r := range recs {
			fmt.Fprintf(w, "  %s  key=%s  %s (%s): %s\n", r.Timestamp.Format(time.TimeOnly), r.Key, r.Value.Order, r.Value.Region, r.Value.Reason)
		}
	}
	fmt.Fprintf(w, "skipped records: %d (logged on stderr)\n", d.SkippedRecords())
	return nil
}
