package table_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/riffle-streams/riffle/riffletest"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/table"
	"github.com/riffle-streams/riffle/topology"
)

// Order is a value of the orders table of the query tests.
type Order struct {
	Customer string
	Cents    int64
}

// queryTables builds a table operator of every kind that keeps a store.
func queryTables(b *topology.Builder) {
	orders := table.From[string, Order](b, "orders", table.Named("orders"), table.WithValueSerde(serde.JSON[Order]()))
	customers := table.From[string, string](b, "customers", table.Named("customers"))
	emails := table.From[string, string](b, "emails", table.Named("emails"))
	orders.Filter(func(_ string, o Order) bool { return o.Cents > 100 }, table.Named("big"), table.Materialized("big-orders"))
	cents := table.MapValues(orders, func(o Order) int64 { return o.Cents }, table.Named("cents")) // no store
	table.MapValues(cents, func(c int64) string { return "x" }, table.Named("x"), table.Materialized("xs"))
	byCustomer := table.GroupBy(orders, func(_ string, o Order) (string, int64) { return o.Customer, o.Cents })
	byCustomer.Count(table.Named("orders-per-customer"))
	table.Aggregate(byCustomer, func() int64 { return 0 },
		func(_ string, c, sum int64) int64 { return sum + c },
		func(_ string, c, sum int64) int64 { return sum - c }, table.Named("spend"))
	byCustomer.Reduce(func(a, b int64) int64 { return max(a, b) }, func(a, _ int64) int64 { return a }, table.Named("largest"))
	table.Join(customers, emails, func(_ string, n, e string) string { return n + " <" + e + ">" },
		table.Named("contact"), table.Materialized("contacts"))
	table.Join(customers, emails, func(_ string, n, e string) string { return n }, table.Named("unkept")) // no store
	// A join side that keeps no store is given one, named after the join.
	table.LeftJoin(cents, orders, func(_ string, c int64, _ table.Maybe[Order]) int64 { return c }, table.Named("cj"))
	table.JoinForeign(orders, customers, func(o Order) string { return o.Customer },
		func(o Order, name string) string { return name }, table.Named("fk"))
	table.Global[string, string](b, "regions") // a global store: not queryable
}

func TestQueryableTableStores(t *testing.T) {
	b := topology.NewBuilder()
	queryTables(b)
	topo := mustBuild(t, b)
	wantStores := []string{
		"big-orders", "cj-left-table", "contacts", "customers", "emails", "fk", "largest",
		"orders", "orders-per-customer", "spend", "xs",
	}
	if got := topo.QueryableStores(); !slices.Equal(got, wantStores) {
		t.Errorf("QueryableStores() = %q\nwant %q", got, wantStores)
	}
	if _, ok := topo.Store("fk-subscription-store"); !ok {
		t.Fatal("no subscription store: the test no longer covers it")
	}
	if _, ok := topo.StoreCodec("fk-subscription-store"); ok {
		t.Error("the subscription store is queryable")
	}
}

// TestTableStoreCodecsDecodeStoredBytes reads what the table operators
// stored, as the runtime will, through the stores' codecs.
func TestTableStoreCodecsDecodeStoredBytes(t *testing.T) {
	forBackends(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		queryTables(b)
		topo := mustBuild(t, b)
		d, err := riffletest.New(topo, opt)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		orders := riffletest.Input(d, "orders", str, serde.JSON[Order]())
		pipe(t, orders, "o1", Order{Customer: "c1", Cents: 250})
		pipe(t, orders, "o2", Order{Customer: "c1", Cents: 50})
		pipe(t, orders, "o3", Order{Customer: "c2", Cents: 70})
		pipe(t, riffletest.Input(d, "customers", str, str), "c1", "Ada")
		pipe(t, riffletest.Input(d, "emails", str, str), "c1", "ada@example.com")

		for _, tc := range []struct {
			store, key string
			want       any
		}{
			{"orders", "o1", Order{Customer: "c1", Cents: 250}},
			{"orders", `"o9"`, nil},
			{"big-orders", "o1", Order{Customer: "c1", Cents: 250}},
			{"big-orders", "o2", nil},
			{"xs", "o3", "x"},
			{"orders-per-customer", "c1", int64(2)},
			{"orders-per-customer", `"c2"`, int64(1)},
			{"spend", "c1", int64(300)},
			{"largest", "c1", int64(250)},
			{"contacts", "c1", "Ada <ada@example.com>"},
			{"cj-left-table", "o2", int64(50)},
			{"fk", "o1", "Ada"},
			{"fk", "o3", nil},
		} {
			c, ok := topo.StoreCodec(tc.store)
			if !ok {
				t.Fatalf("store %q is not queryable", tc.store)
			}
			kb, err := c.ParseKey(tc.key)
			if err != nil {
				t.Fatalf("%s: ParseKey(%q): %v", tc.store, tc.key, err)
			}
			kv, err := d.KeyValueStore(tc.store)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := kv.Get(kb)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Value(raw)
			if err != nil || got != tc.want {
				t.Errorf("%s[%s] = %#v, %v; want %#v", tc.store, tc.key, got, err, tc.want)
			}
			if k, err := c.Key(kb); err != nil || k != strings.Trim(tc.key, `"`) {
				t.Errorf("%s: Key(%q) = %#v, %v", tc.store, kb, k, err)
			}
		}
	})
}
