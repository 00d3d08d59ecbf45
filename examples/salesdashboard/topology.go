package main

import (
	"time"

	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/stream"
	"github.com/riffle-streams/riffle/table"
	"github.com/riffle-streams/riffle/topology"
)

// The stores the dashboard reads, all queryable from any instance.
const (
	// StoreRegionTotals holds each region's Sales since the start.
	StoreRegionTotals = "region-totals"
	// StoreRegionMinutes is a window store of each region's Sales per
	// one-minute tumbling window, kept for MinutesKept.
	StoreRegionMinutes = "region-minutes"
	// StoreProductUnits is a window store of the units ordered of each
	// product per hopping window (TrendingWindow long, every
	// TrendingAdvance). The dashboard lists every product's window of one
	// start at once, across instances (riffle.AllWindows).
	StoreProductUnits = "product-units"
	// StoreCustomers holds each customer's CustomerStats.
	StoreCustomers = "customers"
	// StoreSegments holds the SegmentTotals of each segment and tier,
	// keyed by SegmentKey.
	StoreSegments = "segments"
	// StoreStock holds each product's stock (units).
	StoreStock = "stock"
	// StoreAlerts holds the latest low-stock alert of each product.
	StoreAlerts = "low-stock-alerts"
	// StoreRejected counts the dead-letter records, keyed by the topic
	// they came from.
	StoreRejected = "rejected"
)

// Window sizes and how long windows are kept.
const (
	// Minute is the size of the tumbling windows of region figures.
	Minute = time.Minute
	// MinutesKept is how long the per-minute figures are kept, and so how
	// many minutes the dashboard can show; the trending windows are kept as
	// long, so that the dashboard can be read as of a few minutes back.
	MinutesKept = 16 * time.Minute
	// TrendingWindow is the length of the window trending products are
	// counted over.
	TrendingWindow = 10 * time.Minute
	// TrendingAdvance is how often a trending window starts.
	TrendingAdvance = time.Minute
	// Grace is how late an order may arrive and still count in its
	// windows.
	Grace = time.Minute
)

// Inventory defaults.
const (
	// DefaultInitialStock is every product's stock before any order or
	// restock.
	DefaultInitialStock = 500
	// DefaultLowStock is the stock at or below which a product is low.
	DefaultLowStock = 50
)

// Spend tiers, by a customer's total spend.
const (
	SilverCents = 100_00 // bronze below, silver from $100
	GoldCents   = 500_00 // gold from $500
)

// Sales are an order count and the revenue they brought.
type Sales struct {
	Orders       int64 `json:"orders"`
	RevenueCents int64 `json:"revenueCents"`
}

func (s Sales) add(cents int64) Sales {
	return Sales{Orders: s.Orders + 1, RevenueCents: s.RevenueCents + cents}
}

// CustomerStats are what a customer ordered so far.
type CustomerStats struct {
	Orders     int64 `json:"orders"`
	SpendCents int64 `json:"spendCents"`
}

// SegmentOf returns the segment of a customer: "new" after one order,
// "returning" after more.
func SegmentOf(c CustomerStats) string {
	if c.Orders > 1 {
		return "returning"
	}
	return "new"
}

// TierOf returns the spend tier of a customer who spent cents in total.
func TierOf(cents int64) string {
	switch {
	case cents >= GoldCents:
		return "gold"
	case cents >= SilverCents:
		return "silver"
	}
	return "bronze"
}

// SegmentKey is the key of StoreSegments: "<segment>|<tier>".
func SegmentKey(c CustomerStats) string { return SegmentOf(c) + "|" + TierOf(c.SpendCents) }

// SegmentTotals count the customers of a segment and tier, and what they
// spent.
type SegmentTotals struct {
	Customers    int64 `json:"customers"`
	RevenueCents int64 `json:"revenueCents"`
}

// StockUpdate is a change of a product's stock, published to
// InventoryUpdatesTopic keyed by product.
type StockUpdate struct {
	ProductID string `json:"productId"`
	// Stock is the stock after the change.
	Stock int64 `json:"stock"`
	// Change is how the stock moved: negative for an order, positive for a
	// restock.
	Change int64     `json:"change"`
	At     time.Time `json:"at"`
}

// settings are what the options of Topology set.
type settings struct {
	initialStock int64
	lowStock     int64
}

// Option configures Topology.
type Option func(*settings)

// WithInitialStock sets the stock each product starts with
// (DefaultInitialStock by default).
func WithInitialStock(units int64) Option { return func(s *settings) { s.initialStock = units } }

// WithLowStock sets the stock at or below which a product is low
// (DefaultLowStock by default): an alert is published when an order takes
// the stock from above it to it or below.
func WithLowStock(units int64) Option { return func(s *settings) { s.lowStock = units } }

// Topology returns the sales dashboard's topology.
//
// Orders (customer-orders, keyed by order id) feed:
//   - revenue and order count per region, in total (region-totals) and per
//     one-minute tumbling window (region-minutes);
//   - units per product over hopping ten-minute windows starting every
//     minute (product-units), of which the dashboard lists every
//     product's current window;
//   - orders and spend per customer (customers), re-grouped by segment and
//     spend tier (segments): a customer who moves tier, or comes back, is
//     subtracted from the old group and added to the new one;
//   - the stock of each product (stock): the initial stock, minus ordered
//     units, plus restocks (restocks, keyed by product). Every change goes
//     to inventory-updates; when an order takes a product's stock from
//     above the low-stock threshold to at or below it, an alert goes to
//     inventory-alerts, and the latest of each product is kept
//     (low-stock-alerts).
//
// Orders that could not be read go, through the App's dead-letter policy,
// to customer-orders-dlq, which the topology reads back to count them
// (rejected), so that every instance sees the whole shop's figure.
func Topology(opts ...Option) (*topology.Topology, error) {
	s := settings{initialStock: DefaultInitialStock, lowStock: DefaultLowStock}
	for _, o := range opts {
		o(&s)
	}
	b := topology.NewBuilder()
	orders := stream.From[string, Order](b, OrdersTopic,
		stream.WithKeySerde(serde.String()), stream.WithValueSerde[Order](orderSerde{}),
		stream.EventTime(func(_ string, o Order) time.Time { return o.Timestamp }))

	// Re-keyed branches send through their repartition topics only the
	// order's total, not the whole order: no JSON to write and read again.
	cents := func(name string, key func(Order) string) *stream.Grouped[string, int64] {
		return stream.Map(orders, func(_ string, o Order) (string, int64) { return key(o), o.TotalCents() },
			stream.WithKeySerde(serde.String()), stream.WithValueSerde(serde.Int64())).
			GroupByKey(stream.Named(name))
	}

	// Revenue per region, in total and per minute.
	byRegion := cents("orders-by-region", func(o Order) string { return o.Region })
	stream.Aggregate(byRegion, func() Sales { return Sales{} }, func(_ string, c int64, s Sales) Sales { return s.add(c) },
		stream.Named(StoreRegionTotals))
	stream.WindowedAggregate(byRegion.WindowedBy(stream.Tumbling(Minute, Grace)),
		func() Sales { return Sales{} }, func(_ string, c int64, s Sales) Sales { return s.add(c) },
		stream.Named(StoreRegionMinutes), stream.Materialized(StoreRegionMinutes, state.WithRetention(MinutesKept)))

	// Units per product: trending products and stock.
	items := stream.FlatMap(orders, func(_ string, o Order) []topology.KeyValue[string, int64] {
		out := make([]topology.KeyValue[string, int64], len(o.Items))
		for i, it := range o.Items {
			out[i] = topology.KV(it.ProductID, it.Quantity)
		}
		return out
	}, stream.Named("items"), stream.WithKeySerde(serde.String()), stream.WithValueSerde(serde.Int64())).
		Repartition(stream.Named("items-by-product"))
	stream.WindowedAggregate(items.GroupByKey().WindowedBy(stream.Hopping(TrendingWindow, TrendingAdvance, Grace)),
		func() int64 { return 0 }, func(_ string, q, n int64) int64 { return n + q },
		stream.Named(StoreProductUnits), stream.WithValueSerde(serde.Int64()),
		stream.Materialized(StoreProductUnits, state.WithRetention(MinutesKept)))

	// Customers, and their segments.
	customers := stream.Aggregate(cents("orders-by-customer", func(o Order) string { return o.CustomerID }),
		func() CustomerStats { return CustomerStats{} },
		func(_ string, total int64, c CustomerStats) CustomerStats {
			return CustomerStats{Orders: c.Orders + 1, SpendCents: c.SpendCents + total}
		}, stream.Named(StoreCustomers))
	table.Aggregate(table.GroupBy(customers, func(_ string, c CustomerStats) (string, CustomerStats) { return SegmentKey(c), c },
		table.Named("customers-by-segment")),
		func() SegmentTotals { return SegmentTotals{} },
		func(_ string, c CustomerStats, t SegmentTotals) SegmentTotals {
			return SegmentTotals{Customers: t.Customers + 1, RevenueCents: t.RevenueCents + c.SpendCents}
		},
		func(_ string, c CustomerStats, t SegmentTotals) SegmentTotals {
			return SegmentTotals{Customers: t.Customers - 1, RevenueCents: t.RevenueCents - c.SpendCents}
		}, table.Named(StoreSegments))

	inventoryTopology(b, items, s)
	rejectedTopology(b)
	return b.Build()
}

// inventoryTopology keeps the stock of each product and publishes its
// changes and low-stock alerts.
func inventoryTopology(b *topology.Builder, items stream.Stream[string, int64], s settings) {
	restocks := stream.MapValues(stream.From[string, Restock](b, RestocksTopic,
		stream.WithKeySerde(serde.String()), stream.WithValueSerde[Restock](restockSerde{})),
		func(r Restock) int64 { return r.Quantity }, stream.Named("restock-units"))
	deltas := stream.MapValues(items, func(q int64) int64 { return -q }, stream.Named("ordered-units")).
		Merge(restocks, stream.Named("stock-deltas"))
	stock := stream.Aggregate(deltas.GroupByKey(), func() int64 { return s.initialStock },
		func(_ string, d, n int64) int64 { return n + d }, stream.Named(StoreStock), stream.WithValueSerde(serde.Int64()))
	// Keyed by product still: the alerts are grouped with no repartition.
	updates := stream.ProcessValues(stream.Changes(stock, stream.Named("stock-changes")), func() topology.Processor[string, table.Change[int64], string, StockUpdate] {
		return &stockUpdates{initial: s.initialStock}
	}, stream.Named("stock-updates"), stream.WithValueSerde(serde.JSON[StockUpdate]()))
	updates.To(InventoryUpdatesTopic)
	alerts := stream.MapValues(updates.Filter(func(_ string, u StockUpdate) bool {
		before := u.Stock - u.Change
		return before > s.lowStock && u.Stock <= s.lowStock
	}, stream.Named("stock-crossings")), func(u StockUpdate) StockAlert {
		return StockAlert{ProductID: u.ProductID, Stock: u.Stock, Threshold: s.lowStock, At: u.At}
	}, stream.Named("low-stock"), stream.WithValueSerde(serde.JSON[StockAlert]()))
	alerts.To(InventoryAlertsTopic)
	alerts.GroupByKey(stream.Named("alerts-by-product")).
		Reduce(func(_, latest StockAlert) StockAlert { return latest }, stream.Named(StoreAlerts))
}

// stockUpdates turns the stock table's changes into StockUpdates,
// timestamped with the record that caused them.
type stockUpdates struct {
	ctx     topology.Context[string, StockUpdate]
	initial int64
}

func (p *stockUpdates) Init(ctx topology.Context[string, StockUpdate]) error {
	p.ctx = ctx
	return nil
}

func (p *stockUpdates) Process(r topology.Record[string, table.Change[int64]]) error {
	if !r.Value.HasNew {
		return nil // stock is never deleted
	}
	old := p.initial
	if r.Value.HasOld {
		old = r.Value.Old
	}
	if r.Value.New == old {
		return nil
	}
	u := StockUpdate{ProductID: r.Key, Stock: r.Value.New, Change: r.Value.New - old, At: r.Timestamp.UTC()}
	return p.ctx.Forward(topology.Record[string, StockUpdate]{Key: r.Key, Value: u, Timestamp: r.Timestamp, Headers: r.Headers})
}

func (p *stockUpdates) Close() error { return nil }

// Headers the App's dead-letter policy adds to a record it could not read.
const (
	HeaderError = topology.HeaderDeadLetterError
	HeaderTopic = topology.HeaderDeadLetterTopic
)

// rejectedTopology counts the dead-letter records by the topic they came
// from.
func rejectedTopology(b *topology.Builder) {
	dead := stream.From[[]byte, []byte](b, DeadLetterTopic,
		stream.WithKeySerde(serde.ByteArray()), stream.WithValueSerde(serde.ByteArray()))
	byTopic := stream.Process(dead, func() topology.Processor[[]byte, []byte, string, string] { return &deadLetterOrigin{} },
		stream.Named("dead-letter-origin"), stream.WithKeySerde(serde.String()), stream.WithValueSerde(serde.String()))
	byTopic.GroupByKey(stream.Named("rejected-by-topic")).Count(stream.Named(StoreRejected))
}

// deadLetterOrigin keys a dead-letter record by the topic it came from,
// with the reason it was rejected as its value.
type deadLetterOrigin struct {
	ctx topology.Context[string, string]
}

func (p *deadLetterOrigin) Init(ctx topology.Context[string, string]) error {
	p.ctx = ctx
	return nil
}

func (p *deadLetterOrigin) Process(r topology.Record[[]byte, []byte]) error {
	topic, reason := "unknown", ""
	for _, h := range r.Headers {
		switch h.Key {
		case HeaderTopic:
			topic = string(h.Value)
		case HeaderError:
			reason = string(h.Value)
		}
	}
	return p.ctx.Forward(topology.Record[string, string]{Key: topic, Value: reason, Timestamp: r.Timestamp, Headers: r.Headers})
}

func (p *deadLetterOrigin) Close() error { return nil }
