package main

// Tests of the topology in the test driver. Expected figures come from
// model, which computes them straight from the orders and restocks a test
// piped, with no stream processing; the dashboard is read through
// buildDashboard, the code readDashboard runs on the App, over the
// driver's stores.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/riffle-streams/riffle"
	"github.com/riffle-streams/riffle/riffletest"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/topology"
)

// harness runs the topology in the driver. Orders the source cannot
// decode go to the dead-letter topic, as the App's DeadLetter policy sends
// them (riffletest.WithDeadLetter), and the topology counts them from there
// (the App's policy is checked on the broker, in TestDashboardOnBroker).
type harness struct {
	t    *testing.T
	d    *riffletest.Driver
	topo *topology.Topology
	dead []topology.RawRecord // what went to the dead-letter topic
}

func newHarness(t *testing.T, backend state.Backend, opts ...Option) *harness {
	t.Helper()
	topo, err := Topology(opts...)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, topo: topo}
	d, err := riffletest.New(topo, riffletest.WithBackend(backend), riffletest.WithDeadLetter(DeadLetterTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Error(err)
		}
	})
	h.d = d
	return h
}

// pipe processes a record of topic; one that cannot be decoded goes to the
// dead-letter topic, is processed there, and is kept in h.dead.
func (h *harness) pipe(topic string, key, value []byte, ts time.Time) {
	h.t.Helper()
	if err := h.d.PipeRaw(topic, key, value, ts); err != nil {
		h.t.Fatalf("pipe to %s: %v", topic, err)
	}
	for {
		rec, ok := h.d.ReadRaw(DeadLetterTopic)
		if !ok {
			return
		}
		h.dead = append(h.dead, rec)
	}
}

func (h *harness) order(o Order) {
	h.t.Helper()
	v, err := orderSerde{}.Encode(o)
	if err != nil {
		h.t.Fatal(err)
	}
	h.pipe(OrdersTopic, []byte(o.OrderID), v, o.Timestamp)
}

func (h *harness) restock(r Restock, ts time.Time) {
	h.t.Helper()
	v, err := restockSerde{}.Encode(r)
	if err != nil {
		h.t.Fatal(err)
	}
	h.pipe(RestocksTopic, []byte(r.ProductID), v, ts)
}

// dashboard reads the dashboard at now, as readDashboard does.
func (h *harness) dashboard(now time.Time) Dashboard {
	h.t.Helper()
	d, err := buildDashboard(context.Background(), driverStores{h}, now)
	if err != nil {
		h.t.Fatal(err)
	}
	return d
}

// driverStores reads the driver's stores as the query API reads the
// App's: keys and values through the stores' codecs, as JSON. Window
// stores are read as they are kept, so a window the store has dropped is
// gone, as on the App.
type driverStores struct{ h *harness }

func (s driverStores) codec(store string) (topology.StoreCodec, error) {
	c, ok := s.h.topo.StoreCodec(store)
	if !ok {
		return nil, fmt.Errorf("store %q is not queryable", store)
	}
	return c, nil
}

func (s driverStores) rangeAll(_ context.Context, store, from, to string) ([]entry, error) {
	c, err := s.codec(store)
	if err != nil {
		return nil, err
	}
	kv, err := s.h.d.KeyValueStore(store)
	if err != nil {
		return nil, err
	}
	var lo, hi []byte
	if from != "" {
		if lo, err = c.ParseKey(from); err != nil {
			return nil, err
		}
	}
	if to != "" {
		if hi, err = c.ParseKey(to); err != nil {
			return nil, err
		}
	}
	it, err := kv.Range(lo, hi)
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []entry
	for it.Next() {
		k, err := c.Key(it.Key())
		if err != nil {
			return nil, err
		}
		v, err := jsonOf(c.Value(it.Value()))
		if err != nil {
			return nil, err
		}
		out = append(out, entry{key: k.(string), value: v})
	}
	return out, it.Err()
}

func jsonOf(v any, err error) (json.RawMessage, error) {
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

func (s driverStores) windows(_ context.Context, store, key string, from, to time.Time) ([]riffle.Window[json.RawMessage], error) {
	c, err := s.codec(store)
	if err != nil {
		return nil, err
	}
	kb, err := c.ParseKey(key)
	if err != nil {
		return nil, err
	}
	ws, err := s.h.d.WindowStore(store)
	if err != nil {
		return nil, err
	}
	it, err := ws.FetchRange(kb, from.UnixMilli(), to.UnixMilli())
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []riffle.Window[json.RawMessage]
	for it.Next() {
		v, err := jsonOf(c.Value(it.Value()))
		if err != nil {
			return nil, err
		}
		start := time.UnixMilli(it.Start()).UTC()
		out = append(out, riffle.Window[json.RawMessage]{Start: start, End: start.Add(c.WindowSize()), Value: v})
	}
	return out, it.Err()
}

func (s driverStores) allWindows(_ context.Context, store string, from, to time.Time) ([]riffle.KeyWindow[string, json.RawMessage], error) {
	c, err := s.codec(store)
	if err != nil {
		return nil, err
	}
	ws, err := s.h.d.WindowStore(store)
	if err != nil {
		return nil, err
	}
	it, err := ws.FetchAll(from.UnixMilli(), to.UnixMilli())
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []riffle.KeyWindow[string, json.RawMessage]
	for it.Next() {
		k, err := c.Key(it.Key())
		if err != nil {
			return nil, err
		}
		v, err := jsonOf(c.Value(it.Value()))
		if err != nil {
			return nil, err
		}
		start := time.UnixMilli(it.Start()).UTC()
		out = append(out, riffle.KeyWindow[string, json.RawMessage]{Key: k.(string),
			Window: riffle.Window[json.RawMessage]{Start: start, End: start.Add(c.WindowSize()), Value: v}})
	}
	return out, it.Err()
}

func (s driverStores) get(_ context.Context, store, key string) (json.RawMessage, bool, error) {
	c, err := s.codec(store)
	if err != nil {
		return nil, false, err
	}
	kv, err := s.h.d.KeyValueStore(store)
	if err != nil {
		return nil, false, err
	}
	kb, err := c.ParseKey(key)
	if err != nil {
		return nil, false, err
	}
	v, err := kv.Get(kb)
	if err != nil || v == nil {
		return nil, false, err
	}
	j, err := jsonOf(c.Value(v))
	return j, err == nil, err
}

func (s driverStores) instances(context.Context) (int, error) { return 1, nil }

// model computes the dashboard at now from what was ordered and restocked,
// in the order given, directly: sums, sorts and a stock count per product,
// with none of the topology's code. Tiers are bronze under $100, silver
// under $500 and gold from $500; a window holds the orders in [start,
// start+size).
type model struct {
	initialStock, lowStock int64
	orders                 []Order
	events                 []modelEvent // orders and restocks, in order
	rejected               int64
	instances              int
}

type modelEvent struct {
	order   *Order
	restock *Restock
	at      time.Time
}

func newModel() *model {
	return &model{initialStock: DefaultInitialStock, lowStock: DefaultLowStock, instances: 1}
}

func (m *model) addOrder(o Order) {
	m.orders = append(m.orders, o)
	m.events = append(m.events, modelEvent{order: &o, at: o.Timestamp})
}

func (m *model) addRestock(r Restock, at time.Time) {
	m.events = append(m.events, modelEvent{restock: &r, at: at})
}

func cents(f float64) int64 {
	c := f * 100
	if c < 0 {
		return int64(c - 0.5)
	}
	return int64(c + 0.5)
}

func modelTotals(orders, revenue int64) Totals {
	t := Totals{Orders: orders, RevenueCents: revenue}
	if orders > 0 {
		t.AvgOrderCents = revenue / orders
	}
	return t
}

func (m *model) dashboard(now time.Time) Dashboard {
	d := Dashboard{At: now.UTC(), Rejected: m.rejected, Instances: m.instances}
	type sales struct{ orders, revenue int64 }
	regions := map[string]*sales{}
	minutes := map[string]map[int64]*sales{}
	type cust struct{ orders, spend int64 }
	customers := map[string]*cust{}
	firstMinute := now.Truncate(time.Minute).Add(-14 * time.Minute)
	trendStart := now.Truncate(time.Minute).Add(-9 * time.Minute)
	units := map[string]int64{}
	for _, o := range m.orders {
		total := cents(o.Total)
		r := regions[o.Region]
		if r == nil {
			r = &sales{}
			regions[o.Region] = r
		}
		r.orders++
		r.revenue += total
		d.Total.Orders++
		d.Total.RevenueCents += total
		minute := o.Timestamp.Truncate(time.Minute)
		if !minute.Before(firstMinute) && !minute.After(now) {
			if minutes[o.Region] == nil {
				minutes[o.Region] = map[int64]*sales{}
			}
			s := minutes[o.Region][minute.UnixMilli()]
			if s == nil {
				s = &sales{}
				minutes[o.Region][minute.UnixMilli()] = s
			}
			s.orders++
			s.revenue += total
		}
		if !o.Timestamp.Before(trendStart) && o.Timestamp.Before(trendStart.Add(10*time.Minute)) {
			for _, it := range o.Items {
				units[it.ProductID] += it.Quantity
			}
		}
		c := customers[o.CustomerID]
		if c == nil {
			c = &cust{}
			customers[o.CustomerID] = c
		}
		c.orders++
		c.spend += total
	}
	d.Total = modelTotals(d.Total.Orders, d.Total.RevenueCents)
	d.Regions = []RegionTotals{}
	for name, s := range regions {
		d.Regions = append(d.Regions, RegionTotals{Region: name, Totals: modelTotals(s.orders, s.revenue)})
	}
	slices.SortFunc(d.Regions, func(a, b RegionTotals) int {
		return cmp.Or(-cmp.Compare(a.RevenueCents, b.RevenueCents), strings.Compare(a.Region, b.Region))
	})
	d.Minutes = []RegionMinute{}
	for name, ms := range minutes {
		for start, s := range ms {
			d.Minutes = append(d.Minutes, RegionMinute{Region: name, Start: time.UnixMilli(start).UTC(), Totals: modelTotals(s.orders, s.revenue)})
		}
	}
	slices.SortFunc(d.Minutes, func(a, b RegionMinute) int {
		return cmp.Or(a.Start.Compare(b.Start), strings.Compare(a.Region, b.Region))
	})
	d.Trending = []ProductUnits{}
	for p, n := range units {
		d.Trending = append(d.Trending, ProductUnits{ProductID: p, Units: n})
	}
	slices.SortFunc(d.Trending, func(a, b ProductUnits) int {
		return cmp.Or(-cmp.Compare(a.Units, b.Units), strings.Compare(a.ProductID, b.ProductID))
	})
	d.Trending = d.Trending[:min(10, len(d.Trending))]
	segs := map[string]*Segment{}
	for _, seg := range []string{"new", "returning"} {
		for _, tier := range []string{"bronze", "silver", "gold"} {
			segs[seg+tier] = &Segment{Segment: seg, Tier: tier}
		}
	}
	for _, c := range customers {
		seg, tier := "new", "bronze"
		if c.orders >= 2 {
			seg = "returning"
		}
		switch {
		case c.spend >= 50000:
			tier = "gold"
		case c.spend >= 10000:
			tier = "silver"
		}
		segs[seg+tier].Customers++
		segs[seg+tier].RevenueCents += c.spend
	}
	d.Segments = []Segment{}
	for _, seg := range []string{"new", "returning"} {
		for _, tier := range []string{"bronze", "silver", "gold"} {
			d.Segments = append(d.Segments, *segs[seg+tier])
		}
	}
	d.Alerts = m.alerts()
	if len(d.Alerts) > 20 {
		d.Alerts = d.Alerts[:20]
	}
	return d
}

// stock returns every change of stock, in order, and the alerts.
func (m *model) stock() (updates []StockUpdate, alerts []StockAlert) {
	stock := map[string]int64{}
	level := func(p string) int64 {
		if n, ok := stock[p]; ok {
			return n
		}
		return m.initialStock
	}
	for _, e := range m.events {
		switch {
		case e.order != nil:
			for _, it := range e.order.Items {
				before := level(it.ProductID)
				after := before - it.Quantity
				stock[it.ProductID] = after
				updates = append(updates, StockUpdate{ProductID: it.ProductID, Stock: after, Change: -it.Quantity, At: e.at.UTC()})
				if before > m.lowStock && after <= m.lowStock {
					alerts = append(alerts, StockAlert{ProductID: it.ProductID, Stock: after, Threshold: m.lowStock, At: e.at.UTC()})
				}
			}
		case e.restock != nil:
			after := level(e.restock.ProductID) + e.restock.Quantity
			stock[e.restock.ProductID] = after
			updates = append(updates, StockUpdate{ProductID: e.restock.ProductID, Stock: after, Change: e.restock.Quantity, At: e.at.UTC()})
		}
	}
	return updates, alerts
}

// alerts returns the latest alert of each product, newest first.
func (m *model) alerts() []StockAlert {
	_, all := m.stock()
	latest := map[string]StockAlert{}
	for _, a := range all {
		latest[a.ProductID] = a
	}
	out := []StockAlert{}
	for _, a := range latest {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b StockAlert) int {
		return cmp.Or(b.At.Compare(a.At), strings.Compare(a.ProductID, b.ProductID))
	})
	return out
}

// feed pipes the generator's records into h and adds them to m; the
// malformed orders are counted as rejected.
func feed(t *testing.T, h *harness, m *model, recs []*kgo.Record) {
	t.Helper()
	for _, r := range recs {
		switch r.Topic {
		case OrdersTopic:
			var o Order
			if err := json.Unmarshal(r.Value, &o); err != nil || validOrder(o) != nil {
				m.rejected++
			} else {
				m.addOrder(o)
			}
		case RestocksTopic:
			var rs Restock
			if err := json.Unmarshal(r.Value, &rs); err != nil {
				t.Fatalf("restock %s: %v", r.Value, err)
			}
			m.addRestock(rs, r.Timestamp)
		}
		h.pipe(r.Topic, r.Key, r.Value, r.Timestamp)
	}
}

// validOrder checks an order read with encoding/json, independently of
// orderSerde, for the fields the generator may break.
func validOrder(o Order) error {
	if o.OrderID == "" || o.CustomerID == "" || o.Region == "" || len(o.Items) == 0 || o.Timestamp.IsZero() {
		return errors.New("a field is missing")
	}
	for _, it := range o.Items {
		if it.ProductID == "" || it.Quantity <= 0 || it.Price < 0 {
			return errors.New("an item is not valid")
		}
	}
	return nil
}

// same fails the test if got is not want, naming the first field that
// differs.
func same(t *testing.T, what string, got, want Dashboard) {
	t.Helper()
	if reflect.DeepEqual(got, want) {
		return
	}
	gv, wv := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := range gv.NumField() {
		if !reflect.DeepEqual(gv.Field(i).Interface(), wv.Field(i).Interface()) {
			g, _ := json.MarshalIndent(gv.Field(i).Interface(), "", " ")
			w, _ := json.MarshalIndent(wv.Field(i).Interface(), "", " ")
			t.Errorf("%s: %s:\ngot  %s\nwant %s", what, gv.Type().Field(i).Name, g, w)
		}
	}
}

// TestDashboardFigures pipes twenty minutes of generated traffic, malformed
// orders and restocks included, and checks every figure of the dashboard,
// at several moments, against the model, on both store backends.
func TestDashboardFigures(t *testing.T) {
	for _, backend := range []state.Backend{state.InMemoryBackend, state.PersistentBackend} {
		t.Run(fmt.Sprint(backend), func(t *testing.T) {
			h := newHarness(t, backend, WithInitialStock(120), WithLowStock(40))
			m := newModel()
			m.initialStock, m.lowStock = 120, 40
			g, err := NewGenerator(GeneratorConfig{Seed: 7, Products: 60, Malformed: 0.01, InitialStock: 120, LowStock: 40})
			if err != nil {
				t.Fatal(err)
			}
			base := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
			at := base
			for i := range 1000 {
				// Orders 1.2s apart on average, a few of them out of
				// order by up to 20s (within grace).
				at = at.Add(time.Duration(200+(i*7919)%2000) * time.Millisecond)
				ts := at
				if i%17 == 0 {
					ts = at.Add(-time.Duration(i%20) * time.Second)
				}
				feed(t, h, m, g.Next(ts))
			}
			if m.rejected == 0 || len(m.alerts()) == 0 {
				t.Fatalf("the traffic has %d malformed orders and %d alerts: it should have some of each", m.rejected, len(m.alerts()))
			}
			for _, back := range []time.Duration{0, time.Minute, 4 * time.Minute} {
				now := at.Add(5 * time.Second).Add(-back)
				got, want := h.dashboard(now), m.dashboard(now)
				// The store keeps minutes for MinutesKept back from
				// the newest, not from now: read as of the past, the
				// minutes before that are gone (or about to be, a
				// segment at a time), so compare the ones it keeps.
				kept := at.Truncate(Minute).Add(-MinutesKept)
				old := func(rm RegionMinute) bool { return rm.Start.Before(kept) }
				got.Minutes, want.Minutes = slices.DeleteFunc(got.Minutes, old), slices.DeleteFunc(want.Minutes, old)
				same(t, fmt.Sprintf("at %v", now), got, want)
				if len(got.Trending) != TopProducts || len(got.Minutes) == 0 {
					t.Errorf("at %v: %d trending products and %d minutes: want %d and some", now, len(got.Trending), len(got.Minutes), TopProducts)
				}
			}
			if got := h.d.SkippedRecords(); got != m.rejected {
				t.Errorf("skipped %d records, want the %d malformed orders", got, m.rejected)
			}
		})
	}
}

// TestSegmentsFollowCustomers moves customers between segments and tiers
// and checks each move takes them out of the old group and into the new.
func TestSegmentsFollowCustomers(t *testing.T) {
	h := newHarness(t, state.InMemoryBackend)
	m := newModel()
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	n := 0
	order := func(customer string, dollars float64) {
		n++
		at = at.Add(time.Second)
		o := Order{OrderID: fmt.Sprintf("O-%d", n), CustomerID: customer, Region: "europe", Timestamp: at,
			Items: []Item{{ProductID: "P0001", Quantity: 1, Price: dollars}}, Total: dollars}
		h.order(o)
		m.addOrder(o)
	}
	seg := func(d Dashboard, segment, tier string) Segment {
		for _, s := range d.Segments {
			if s.Segment == segment && s.Tier == tier {
				return s
			}
		}
		t.Fatalf("no segment %s/%s in %+v", segment, tier, d.Segments)
		return Segment{}
	}
	steps := []struct {
		customer string
		dollars  float64
		// where the customer is after the order, and who else is there
		segment, tier string
		customers     int64
		revenueCents  int64
	}{
		{"alice", 60.10, "new", "bronze", 1, 6010},
		{"bob", 99.99, "new", "bronze", 2, 16009},
		{"alice", 60.00, "returning", "silver", 1, 12010}, // $120.10: returning, silver
		{"bob", 0.01, "returning", "silver", 2, 22010},    // exactly $100: silver
		{"alice", 379.90, "returning", "gold", 1, 50000},  // exactly $500: gold
		{"carol", 500.00, "new", "gold", 1, 50000},        // a new customer can be gold
		{"carol", 0.005, "returning", "gold", 2, 100001},  // half a cent rounds up
		{"bob", 1000.00, "returning", "gold", 3, 210001},  // bob leaves silver
	}
	for i, s := range steps {
		order(s.customer, s.dollars)
		now := at
		d := h.dashboard(now)
		same(t, fmt.Sprintf("step %d", i), d, m.dashboard(now))
		if got := seg(d, s.segment, s.tier); got.Customers != s.customers || got.RevenueCents != s.revenueCents {
			t.Errorf("step %d: %s/%s = %d customers, %d cents; want %d, %d", i, s.segment, s.tier, got.Customers, got.RevenueCents, s.customers, s.revenueCents)
		}
	}
	d := h.dashboard(at)
	var customers, revenue int64
	for _, s := range d.Segments {
		customers += s.Customers
		revenue += s.RevenueCents
	}
	if customers != 3 || revenue != d.Total.RevenueCents {
		t.Errorf("segments hold %d customers and %d cents; want 3 and the total %d", customers, revenue, d.Total.RevenueCents)
	}
	if got := seg(d, "returning", "silver"); got.Customers != 0 || got.RevenueCents != 0 {
		t.Errorf("returning/silver is %+v after everyone left it", got)
	}
}

// TestStockAndAlerts checks stock changes and that an alert comes only
// when the stock crosses the threshold downwards.
func TestStockAndAlerts(t *testing.T) {
	h := newHarness(t, state.InMemoryBackend, WithInitialStock(10), WithLowStock(5))
	m := newModel()
	m.initialStock, m.lowStock = 10, 5
	updates := riffletest.Output(h.d, InventoryUpdatesTopic, serde.String(), serde.JSON[StockUpdate]())
	alerts := riffletest.Output(h.d, InventoryAlertsTopic, serde.String(), serde.JSON[StockAlert]())
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	n := 0
	buy := func(items ...Item) {
		n++
		at = at.Add(time.Second)
		o := Order{OrderID: fmt.Sprintf("O-%d", n), CustomerID: "c", Region: "europe", Timestamp: at, Items: items, Total: 1}
		h.order(o)
		m.addOrder(o)
	}
	restock := func(p string, q int64) {
		at = at.Add(time.Second)
		h.restock(Restock{ProductID: p, Quantity: q}, at)
		m.addRestock(Restock{ProductID: p, Quantity: q}, at)
	}
	x := func(q int64) Item { return Item{ProductID: "X", Quantity: q, Price: 1} }
	y := func(q int64) Item { return Item{ProductID: "Y", Quantity: q, Price: 1} }
	buy(x(3))       // X 7
	buy(x(2), y(1)) // X 5: crosses; Y 9
	buy(x(1))       // X 4: below, no alert
	restock("X", 3) // X 7
	buy(x(1))       // X 6
	restock("Y", 1) // Y 10
	buy(x(1))       // X 5: crosses again
	buy(y(20))      // Y -10: crosses, oversold
	buy(y(1))       // Y -11
	restock("Y", 100)

	wantUpdates, wantAlerts := m.stock()
	gotUpdates, err := updates.ReadValues()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotUpdates, wantUpdates) {
		t.Errorf("inventory updates:\ngot  %+v\nwant %+v", gotUpdates, wantUpdates)
	}
	gotAlerts, err := alerts.ReadKeyValues()
	if err != nil {
		t.Fatal(err)
	}
	var alertValues []StockAlert
	for _, kv := range gotAlerts {
		if kv.Key != kv.Value.ProductID {
			t.Errorf("alert keyed %q is of %q", kv.Key, kv.Value.ProductID)
		}
		alertValues = append(alertValues, kv.Value)
	}
	if len(wantAlerts) != 3 || !reflect.DeepEqual(alertValues, wantAlerts) {
		t.Errorf("alerts:\ngot  %+v\nwant %+v (3 of them)", alertValues, wantAlerts)
	}
	same(t, "dashboard", h.dashboard(at), m.dashboard(at))
	for p, want := range map[string]int64{"X": 5, "Y": 89} {
		v, ok, err := driverStores{h}.get(context.Background(), StoreStock, p)
		if err != nil || !ok || string(v) != fmt.Sprint(want) {
			t.Errorf("stock of %s = %s, %v, %v; want %d", p, v, ok, err, want)
		}
	}
}

// TestBadOrdersAreRejected pipes orders that are not valid JSON or miss a
// field: each fails to decode with its reason, goes to the dead-letter
// topic with the reason in its header, is counted, and processing goes on.
func TestBadOrdersAreRejected(t *testing.T) {
	h := newHarness(t, state.InMemoryBackend)
	m := newModel()
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	good := `{"orderId":"O-%d","customerId":"c","region":"europe","items":[{"productId":"P1","quantity":2,"price":1.25}],"total":2.5,"timestamp":"2026-03-01T09:00:%02dZ"}`
	bad := []struct {
		value  string
		reason string
	}{
		{`{"orderId":"O-x","customerId":`, "not valid JSON"},
		{`hello`, "not valid JSON"},
		{`[1,2]`, "not an order"},
		{``, "not valid JSON"},
		{`{"orderId":"O-x"} {}`, "data after the order"},
		{`{"customerId":"c","region":"europe","items":[{"productId":"P1","quantity":1,"price":1}],"total":1,"timestamp":"2026-03-01T09:00:00Z"}`, `missing field "orderId"`},
		{`{"orderId":"O-x","region":"europe","items":[{"productId":"P1","quantity":1,"price":1}],"total":1,"timestamp":"2026-03-01T09:00:00Z"}`, `missing field "customerId"`},
		{`{"orderId":"O-x","customerId":"c","items":[{"productId":"P1","quantity":1,"price":1}],"total":1,"timestamp":"2026-03-01T09:00:00Z"}`, `missing field "region"`},
		{`{"orderId":"O-x","customerId":"c","region":"","items":[{"productId":"P1","quantity":1,"price":1}],"total":1,"timestamp":"2026-03-01T09:00:00Z"}`, `field "region" is empty`},
		{`{"orderId":"O-x","customerId":"c","region":"europe","total":1,"timestamp":"2026-03-01T09:00:00Z"}`, `missing field "items"`},
		{`{"orderId":"O-x","customerId":"c","region":"europe","items":[],"total":1,"timestamp":"2026-03-01T09:00:00Z"}`, `missing field "items"`},
		{`{"orderId":"O-x","customerId":"c","region":"europe","items":[{"quantity":1,"price":1}],"total":1,"timestamp":"2026-03-01T09:00:00Z"}`, `missing field "items[0].productId"`},
		{`{"orderId":"O-x","customerId":"c","region":"europe","items":[{"productId":"P1","price":1}],"total":1,"timestamp":"2026-03-01T09:00:00Z"}`, `missing field "items[0].quantity"`},
		{`{"orderId":"O-x","customerId":"c","region":"europe","items":[{"productId":"P1","quantity":0,"price":1}],"total":1,"timestamp":"2026-03-01T09:00:00Z"}`, `"items[0].quantity" is 0`},
		{`{"orderId":"O-x","customerId":"c","region":"europe","items":[{"productId":"P1","quantity":1.5,"price":1}],"total":1,"timestamp":"2026-03-01T09:00:00Z"}`, "not an order"},
		{`{"orderId":"O-x","customerId":"c","region":"europe","items":[{"productId":"P1","quantity":1}],"total":1,"timestamp":"2026-03-01T09:00:00Z"}`, `missing field "items[0].price"`},
		{`{"orderId":"O-x","customerId":"c","region":"europe","items":[{"productId":"P1","quantity":1,"price":-1}],"total":1,"timestamp":"2026-03-01T09:00:00Z"}`, `"items[0].price" is -1`},
		{`{"orderId":"O-x","customerId":"c","region":"europe","items":[{"productId":"P1","quantity":1,"price":1}],"timestamp":"2026-03-01T09:00:00Z"}`, `missing field "total"`},
		{`{"orderId":"O-x","customerId":"c","region":"europe","items":[{"productId":"P1","quantity":1,"price":1}],"total":1e300,"timestamp":"2026-03-01T09:00:00Z"}`, `"total" is 1e+300`},
		{`{"orderId":"O-x","customerId":"c","region":"europe","items":[{"productId":"P1","quantity":1,"price":1}],"total":1}`, `missing field "timestamp"`},
		{`{"orderId":"O-x","customerId":"c","region":"europe","items":[{"productId":"P1","quantity":1,"price":1}],"total":1,"timestamp":"yesterday"}`, "not an order"},
		{`{"orderId":"O-x","customerId":"c","region":"europe","items":[{"productId":"P1","quantity":1,"price":1}],"total":1,"timestamp":"1969-12-31T23:59:59Z"}`, "before 1970"},
	}
	for i, b := range bad {
		h.pipe(OrdersTopic, []byte("O-x"), []byte(b.value), at)
		m.rejected++
		// A good order after each bad one is processed.
		v := fmt.Sprintf(good, i, i)
		h.pipe(OrdersTopic, []byte(fmt.Sprintf("O-%d", i)), []byte(v), at.Add(time.Duration(i)*time.Second))
		var o Order
		if err := json.Unmarshal([]byte(v), &o); err != nil {
			t.Fatal(err)
		}
		m.addOrder(o)
		if len(h.dead) != i+1 {
			t.Fatalf("%s: %d records went to the dead-letter topic, want %d", b.value, len(h.dead), i+1)
		}
		var reason string
		for _, hd := range h.dead[i].Headers {
			if hd.Key == HeaderError {
				reason = string(hd.Value)
			}
		}
		if !strings.Contains(reason, b.reason) || !strings.Contains(reason, OrdersTopic) {
			t.Errorf("%s: reason %q does not say %q and name the topic", b.value, reason, b.reason)
		}
	}
	// A null value (a tombstone) is no order either.
	h.pipe(OrdersTopic, []byte("O-null"), nil, at)
	m.rejected++
	// A bad restock goes to the dead-letter topic too, but is not an order.
	h.pipe(RestocksTopic, []byte("P1"), []byte(`{"productId":"P1","quantity":-5}`), at)
	if len(h.dead) != len(bad)+2 {
		t.Fatalf("%d records went to the dead-letter topic, want %d", len(h.dead), len(bad)+2)
	}
	now := at.Add(time.Minute)
	d := h.dashboard(now)
	same(t, "dashboard", d, m.dashboard(now))
	if d.Rejected != int64(len(bad)+1) || d.Total.Orders != int64(len(bad)) {
		t.Errorf("rejected %d and counted %d orders; want %d and %d", d.Rejected, d.Total.Orders, len(bad)+1, len(bad))
	}
	v, ok, err := driverStores{h}.get(context.Background(), StoreRejected, RestocksTopic)
	if err != nil || !ok || string(v) != "1" {
		t.Errorf("rejected restocks = %s, %v, %v; want 1", v, ok, err)
	}
}

// TestTrendingOverAnHour runs the shop for over an hour, so that the
// product windows of the first minutes have left the store, and checks the
// top products of each minute's window as the store shows them at that
// minute.
func TestTrendingOverAnHour(t *testing.T) {
	h := newHarness(t, state.InMemoryBackend)
	m := newModel()
	g, err := NewGenerator(GeneratorConfig{Seed: 3, Products: 40, Malformed: -1})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 9, 0, 30, 0, time.UTC)
	for range 70 {
		for range 12 {
			at = at.Add(5 * time.Second)
			feed(t, h, m, g.Next(at))
		}
		// Read at this moment: the model sees only the orders so far,
		// as the stores do.
		now := at.Add(time.Second)
		got, want := h.dashboard(now), m.dashboard(now)
		if !reflect.DeepEqual(got.Trending, want.Trending) {
			t.Fatalf("at %v: trending\ngot  %+v\nwant %+v", now, got.Trending, want.Trending)
		}
	}
	// Windows leave once past retention (MinutesKept), a segment of half
	// the retention at a time.
	ws, err := driverStores{h}.allWindows(context.Background(), StoreProductUnits, time.UnixMilli(0), at)
	if err != nil {
		t.Fatal(err)
	}
	retention := MinutesKept
	oldest := at.Truncate(TrendingAdvance).Add(-retention - retention/2 - TrendingAdvance)
	for _, w := range ws {
		if w.Start.Before(oldest) {
			t.Fatalf("the product-units store still holds the window at %v of %s, before %v", w.Start, w.Key, oldest)
		}
	}
	if len(ws) == 0 {
		t.Fatal("the product-units store holds no windows")
	}
}

func TestTopologyNamesStores(t *testing.T) {
	topo, err := Topology()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{StoreCustomers, StoreAlerts, StoreProductUnits, StoreRegionMinutes, StoreRegionTotals, StoreRejected, StoreSegments, StoreStock}
	slices.Sort(want)
	if got := topo.QueryableStores(); !slices.Equal(got, want) {
		t.Errorf("queryable stores %v, want %v", got, want)
	}
	spec, ok := topo.Store(StoreRegionMinutes)
	if !ok || spec.Retention < MinutesShown*time.Minute {
		t.Errorf("store %s keeps windows %v: the dashboard shows %d minutes", StoreRegionMinutes, spec.Retention, MinutesShown)
	}
}
