package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/riffle-streams/riffle/serde"
)

// TestGeneratorRepeats checks that a seed makes the same traffic.
func TestGeneratorRepeats(t *testing.T) {
	a, err := NewGenerator(GeneratorConfig{Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewGenerator(GeneratorConfig{Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	for i := range 2000 {
		ra, rb := a.Next(at), b.Next(at)
		if len(ra) != len(rb) {
			t.Fatalf("event %d: %d and %d records", i, len(ra), len(rb))
		}
		for j := range ra {
			if ra[j].Topic != rb[j].Topic || !bytes.Equal(ra[j].Key, rb[j].Key) || !bytes.Equal(ra[j].Value, rb[j].Value) {
				t.Fatalf("event %d: records differ: %s and %s", i, ra[j].Value, rb[j].Value)
			}
		}
	}
}

// TestGeneratorTraffic checks that the traffic looks like a shop's: every
// region, skewed popularity, returning and new customers, restocks, a few
// malformed orders, and totals that add up.
func TestGeneratorTraffic(t *testing.T) {
	g, err := NewGenerator(GeneratorConfig{Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	const n = 20_000
	var (
		malformed, restocks int
		regions             = map[string]int{}
		units               = map[string]int64{}
		customers           = map[string]int{}
		ids                 = map[string]bool{}
		totalUnits          int64
	)
	for range n {
		at = at.Add(20 * time.Millisecond)
		recs := g.Next(at)
		if recs[0].Topic != OrdersTopic {
			t.Fatalf("the first record of an event is on %s", recs[0].Topic)
		}
		for _, r := range recs {
			if !r.Timestamp.Equal(at) {
				t.Fatalf("record at %v, want %v", r.Timestamp, at)
			}
			switch r.Topic {
			case RestocksTopic:
				restocks++
				rs, err := restockSerde{}.Decode(r.Value)
				if err != nil || string(r.Key) != rs.ProductID {
					t.Fatalf("restock %s keyed %s: %v", r.Value, r.Key, err)
				}
				continue
			case OrdersTopic:
			default:
				t.Fatalf("a record on %s", r.Topic)
			}
			o, err := orderSerde{}.Decode(r.Value)
			if err != nil {
				malformed++
				continue
			}
			if string(r.Key) != o.OrderID || ids[o.OrderID] {
				t.Fatalf("order %s keyed %s, or seen before", o.OrderID, r.Key)
			}
			ids[o.OrderID] = true
			if !o.Timestamp.Equal(at) {
				t.Fatalf("order at %v, want %v", o.Timestamp, at)
			}
			regions[o.Region]++
			customers[o.CustomerID]++
			var sum int64
			for _, it := range o.Items {
				sum += Cents(it.Price) * it.Quantity
				units[it.ProductID] += it.Quantity
				totalUnits += it.Quantity
			}
			if sum != o.TotalCents() {
				t.Fatalf("order %s: items add up to %d cents, total is %d", o.OrderID, sum, o.TotalCents())
			}
		}
	}
	if len(regions) != len(Regions()) {
		t.Errorf("orders from %d regions, want %d: %v", len(regions), len(Regions()), regions)
	}
	if malformed < n/2000 || malformed > n/200 {
		t.Errorf("%d malformed orders of %d, want about 0.2%%", malformed, n)
	}
	if restocks < 50 {
		t.Errorf("%d restocks: the shop should restock", restocks)
	}
	if len(units) < 250 {
		t.Errorf("%d products ordered of 300", len(units))
	}
	top := slices.SortedFunc(func(yield func(int64) bool) {
		for _, u := range units {
			if !yield(u) {
				return
			}
		}
	}, func(a, b int64) int { return int(b - a) })
	var top10 int64
	for _, u := range top[:10] {
		top10 += u
	}
	if share := float64(top10) / float64(totalUnits); share < 0.2 || share > 0.7 {
		t.Errorf("the top 10 products have %.0f%% of the units: popularity should be skewed, not extreme", 100*share)
	}
	returning := 0
	for _, c := range customers {
		if c > 1 {
			returning++
		}
	}
	if returning == 0 || returning == len(customers) {
		t.Errorf("%d returning customers of %d", returning, len(customers))
	}
}

// TestPacer checks the rate averages out near the configured one, with
// bursts above it.
func TestPacer(t *testing.T) {
	p := newPacer(50, 1)
	const tick = 100 * time.Millisecond
	total, peak := 0, 0
	for i := range 36_000 { // an hour
		n := p.due(time.Duration(i+1)*tick, tick)
		total += n
		peak = max(peak, n)
	}
	if avg := float64(total) / 3600; avg < 45 || avg > 60 {
		t.Errorf("%.1f orders/s on average, want about 50", avg)
	}
	if peak < 10 {
		t.Errorf("the busiest tick had %d orders: there should be bursts of 2.5 to 5 times the rate", peak)
	}
}

func TestGeneratorConfig(t *testing.T) {
	for _, c := range []GeneratorConfig{{Rate: -1}, {Products: 1}, {Malformed: 2}, {Orders: -1}} {
		if _, err := NewGenerator(c); err == nil {
			t.Errorf("NewGenerator(%+v) took it", c)
		}
	}
}

// FuzzOrderSerde checks that the order decoder never panics, that what it
// accepts is a whole order, and that an accepted order writes and reads
// back the same.
func FuzzOrderSerde(f *testing.F) {
	g, err := NewGenerator(GeneratorConfig{Seed: 1, Malformed: 0.3})
	if err != nil {
		f.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	for range 40 {
		f.Add(g.Next(at)[0].Value)
	}
	f.Add([]byte(`{"orderId":"o","customerId":"c","region":"r","items":[{"productId":"p","quantity":1,"price":0}],"total":0,"timestamp":"1970-01-01T00:00:00Z"}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"items":[null]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := orderSerde{}.Decode(data)
		if err != nil {
			var de *serde.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %v is not a *serde.DecodeError", err)
			}
			return
		}
		if o.OrderID == "" || o.CustomerID == "" || o.Region == "" || len(o.Items) == 0 || o.Timestamp.Before(time.UnixMilli(0)) {
			t.Fatalf("accepted an incomplete order %+v from %q", o, data)
		}
		for _, it := range o.Items {
			if it.ProductID == "" || it.Quantity <= 0 || it.Price < 0 || it.Price > maxDollars {
				t.Fatalf("accepted an item %+v from %q", it, data)
			}
		}
		if o.Total < 0 || o.Total > maxDollars {
			t.Fatalf("accepted a total of %v", o.Total)
		}
		b, err := orderSerde{}.Encode(o)
		if err != nil {
			t.Fatalf("encode %+v: %v", o, err)
		}
		back, err := orderSerde{}.Decode(b)
		if err != nil {
			t.Fatalf("decode %s, written from %q: %v", b, data, err)
		}
		var j1, j2 any
		if json.Unmarshal(b, &j1) != nil || json.Unmarshal(mustEncode(t, back), &j2) != nil || !reflect.DeepEqual(j1, j2) {
			t.Fatalf("order %s reads back as %+v", b, back)
		}
	})
}

func mustEncode(t *testing.T, o Order) []byte {
	t.Helper()
	b, err := orderSerde{}.Encode(o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
