package main

import (
	"fmt"
	"time"

	"github.com/riffle-streams/riffle/riffletest"
	"github.com/riffle-streams/riffle/serde"
)

// Three orders through the dashboard's topology in the test driver: the
// revenue of each region, and the customers of each segment and tier.
func ExampleTopology() {
	topo, err := Topology()
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
	orders := riffletest.Input[string, Order](d, OrdersTopic, serde.String(), orderSerde{})
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	for _, o := range []Order{
		{OrderID: "O-1", CustomerID: "C-1", Region: "europe", Items: []Item{{ProductID: "P0001", Quantity: 2, Price: 19.99}}, Total: 39.98},
		{OrderID: "O-2", CustomerID: "C-1", Region: "europe", Items: []Item{{ProductID: "P0002", Quantity: 1, Price: 120}}, Total: 120},
		{OrderID: "O-3", CustomerID: "C-2", Region: "africa", Items: []Item{{ProductID: "P0001", Quantity: 1, Price: 19.99}}, Total: 19.99},
	} {
		at = at.Add(time.Second)
		o.Timestamp = at
		if err := orders.PipeAt(o.OrderID, o, at); err != nil {
			fmt.Println(err)
			return
		}
	}
	list := func(store string, show func(key string, value []byte)) {
		kv, err := d.KeyValueStore(store)
		if err != nil {
			fmt.Println(err)
			return
		}
		it, err := kv.Range(nil, nil)
		if err != nil {
			fmt.Println(err)
			return
		}
		defer it.Close()
		for it.Next() {
			show(string(it.Key()), it.Value())
		}
	}
	list(StoreRegionTotals, func(region string, v []byte) {
		s, _ := serde.JSON[Sales]().Decode(v)
		fmt.Printf("%s: %d orders, $%.2f\n", region, s.Orders, Dollars(s.RevenueCents))
	})
	list(StoreSegments, func(segment string, v []byte) {
		s, _ := serde.JSON[SegmentTotals]().Decode(v)
		fmt.Printf("%s: %d customers\n", segment, s.Customers)
	})
	// Output:
	// africa: 1 orders, $19.99
	// europe: 2 orders, $159.98
	// new|bronze: 1 customers
	// returning|silver: 1 customers
}
