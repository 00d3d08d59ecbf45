package table_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/riffle-streams/riffle/riffletest"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/table"
	"github.com/riffle-streams/riffle/topology"
)

// ---- table–table joins on the same key ----

// showMaybe formats a join side: its value, or "-" when absent.
func showMaybe[V any](m table.Maybe[V]) string {
	if !m.OK {
		return "-"
	}
	return fmt.Sprint(m.Value)
}

// sameKeyJoin builds left ("l") joined with right ("r") by kind, records
// the result's changes and writes it to "out".
func sameKeyJoin(b *topology.Builder, kind string, opts ...table.Option) table.Table[string, string] {
	l := table.From[string, string](b, "l")
	r := table.From[string, string](b, "r")
	switch kind {
	case "inner":
		return table.Join(l, r, func(_ string, a, b string) string { return a + "/" + b }, opts...)
	case "left":
		return table.LeftJoin(l, r, func(_ string, a string, b table.Maybe[string]) string { return a + "/" + showMaybe(b) }, opts...)
	default:
		return table.OuterJoin(l, r, func(_ string, a, b table.Maybe[string]) string { return showMaybe(a) + "/" + showMaybe(b) }, opts...)
	}
}

// The same steps for every kind of join: updates on either side in either
// order, deletions on each side, deletions of absent keys.
func TestTableTableJoins(t *testing.T) {
	cases := []struct {
		kind  string
		steps [][]string // per step: the changes it makes
		store []string
	}{
		{"inner", [][]string{
			{},              // l a=1: no right side yet
			{"a: _->1/x"},   // r a=x
			{"a: 1/x->2/x"}, // l a=2
			{"a: 2/x->2/y"}, // r a=y
			{},              // r b=z: no left side
			{},              // l c deleted: absent
			{"a: 2/y->_"},   // r a deleted
			{},              // r a deleted again: absent
			{},              // l a deleted: the join no longer held
			{"b: _->3/z"},   // l b=3
			{"b: 3/z->_"},   // l b deleted
			{},              // r b deleted: the join no longer held
			{"d: _->4/w"},   // l d=4, r d=w (two steps in one)
			{"d: 4/w->4/w"}, // r d=w again: every update is emitted
		}, []string{"d=4/w"}},
		{"left", [][]string{
			{"a: _->1/-"},
			{"a: 1/-->1/x"},
			{"a: 1/x->2/x"},
			{"a: 2/x->2/y"},
			{},
			{},
			{"a: 2/y->2/-"},
			{},
			{"a: 2/-->_"},
			{"b: _->3/z"},
			{"b: 3/z->_"},
			{},
			{"d: _->4/-", "d: 4/-->4/w"},
			{"d: 4/w->4/w"},
		}, []string{"d=4/w"}},
		{"outer", [][]string{
			{"a: _->1/-"},
			{"a: 1/-->1/x"},
			{"a: 1/x->2/x"},
			{"a: 2/x->2/y"},
			{"b: _->-/z"},
			{},
			{"a: 2/y->2/-"},
			{},
			{"a: 2/-->_"},
			{"b: -/z->3/z"},
			{"b: 3/z->-/z"},
			{"b: -/z->_"},
			{"d: _->4/-", "d: 4/-->4/w"},
			{"d: 4/w->4/w"},
		}, []string{"d=4/w"}},
	}
	for _, tc := range cases {
		t.Run(tc.kind, func(t *testing.T) {
			forBackends(t, func(t *testing.T, opt riffletest.Option) {
				b := topology.NewBuilder()
				j := sameKeyJoin(b, tc.kind, table.Materialized("joined"))
				changes := recordChanges(j)
				j.To("out")
				d := newDriver(t, b, opt)
				l, r := riffletest.Input(d, "l", str, str), riffletest.Input(d, "r", str, str)
				steps := []func(){
					func() { pipe(t, l, "a", "1") },
					func() { pipe(t, r, "a", "x") },
					func() { pipe(t, l, "a", "2") },
					func() { pipe(t, r, "a", "y") },
					func() { pipe(t, r, "b", "z") },
					func() { tombstone(t, d, "l", []byte("c")) },
					func() { tombstone(t, d, "r", []byte("a")) },
					func() { tombstone(t, d, "r", []byte("a")) },
					func() { tombstone(t, d, "l", []byte("a")) },
					func() { pipe(t, l, "b", "3") },
					func() { tombstone(t, d, "l", []byte("b")) },
					func() { tombstone(t, d, "r", []byte("b")) },
					func() { pipe(t, l, "d", "4"); pipe(t, r, "d", "w") },
					func() { pipe(t, r, "d", "w") },
				}
				var all []string
				for i, step := range steps {
					step()
					got := takeChanges(changes)
					want(t, fmt.Sprintf("step %d", i), got, tc.steps[i])
					all = append(all, got...)
				}
				// The topic gets every new value; a deletion as a tombstone.
				var wantOut []string
				for _, c := range all {
					k, ch, _ := strings.Cut(c, ": ")
					_, nv, _ := strings.Cut(ch, "->")
					if nv == "_" {
						nv = "<tombstone>"
					}
					wantOut = append(wantOut, k+"="+nv)
				}
				want(t, "out", readTopic(t, d, "out", str, str), wantOut)
				want(t, "store", storeContents(t, d, "joined", str, str), tc.store)
				wantSkipped(t, d, map[topology.SkipKey]int64{})
			})
		})
	}
}

// With record caches, the results are those of the uncached join once the
// caches are flushed.
func TestTableTableJoinCached(t *testing.T) {
	for _, kind := range []string{"inner", "left", "outer"} {
		t.Run(kind, func(t *testing.T) {
			b := topology.NewBuilder()
			sameKeyJoin(b, kind, table.Materialized("joined")).To("out")
			d := newDriver(t, b, riffletest.WithCaching(1<<20))
			l, r := riffletest.Input(d, "l", str, str), riffletest.Input(d, "r", str, str)
			pipe(t, l, "a", "1")
			pipe(t, r, "a", "x")
			pipe(t, l, "a", "2")
			pipe(t, r, "b", "y")
			pipe(t, l, "c", "3")
			tombstone(t, d, "l", []byte("c"))
			if err := d.Commit(); err != nil {
				t.Fatalf("Commit: %v", err)
			}
			wantStore := map[string][]string{
				"inner": {"a=2/x"},
				"left":  {"a=2/x"},
				"outer": {"a=2/x", "b=-/y"},
			}[kind]
			want(t, "store", storeContents(t, d, "joined", str, str), wantStore)
		})
	}
}

// With record caches, each side forwards its updates when its cache is
// flushed, and a join reads the other side as it has forwarded it: so every
// change the join emits replaces the one it emitted before (no insert twice,
// no old value that was never sent), which an aggregation downstream needs
// to subtract the right thing. A materialized join takes its old values
// from its store; one that is not needs the record cache to show the values
// beneath it (see forwardedView).
func TestTableTableJoinCachedOldValuesChain(t *testing.T) {
	if _, ok := any(state.Cached(state.NewInMemoryKeyValue("x"), state.NewCacheBudget(1))).(interface {
		FlushedView() (state.KeyValueStore, bool)
	}); !ok {
		t.Fatal("state's record cache has no FlushedView: joins that are not materialized cannot read what was forwarded")
	}
	for _, kind := range []string{"inner", "left", "outer"} {
		for _, materialized := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/materialized=%v", kind, materialized), func(t *testing.T) {
				b := topology.NewBuilder()
				var opts []table.Option
				if materialized {
					opts = append(opts, table.Materialized("joined"))
				}
				changes := recordChanges(sameKeyJoin(b, kind, opts...))
				d := newDriver(t, b, riffletest.WithCaching(1<<20))
				l, r := riffletest.Input(d, "l", str, str), riffletest.Input(d, "r", str, str)
				commit := func() {
					if err := d.Commit(); err != nil {
						t.Fatalf("Commit: %v", err)
					}
				}
				pipe(t, l, "a", "1")
				pipe(t, r, "a", "x")
				commit()
				pipe(t, l, "a", "2")
				pipe(t, r, "a", "y")
				pipe(t, r, "b", "z")
				commit()
				tombstone(t, d, "r", []byte("a"))
				pipe(t, l, "a", "3")
				pipe(t, l, "b", "4")
				commit()
				tombstone(t, d, "l", []byte("a"))
				pipe(t, r, "a", "w")
				tombstone(t, d, "r", []byte("b"))
				commit()

				last := map[string]string{} // key -> the value last emitted
				for _, c := range takeChanges(changes) {
					k, ch, _ := strings.Cut(c, ": ")
					ov, nv, _ := strings.Cut(ch, "->")
					prev, ok := last[k]
					if !ok {
						prev = "_"
					}
					if ov != prev {
						t.Errorf("change %q: old value %s, but %s was emitted before", c, ov, prev)
					}
					last[k] = nv
				}
				wantLast := map[string]map[string]string{
					"inner": {"a": "_", "b": "_"},
					"left":  {"a": "_", "b": "4/-"},
					"outer": {"a": "-/w", "b": "4/-"},
				}[kind]
				for k, v := range wantLast {
					if got, ok := last[k]; ok && got != v || !ok && v != "_" {
						t.Errorf("%s: last emitted %q, want %q", k, got, v)
					}
				}
			})
		}
	}
}

// A join that is not materialized keeps no store, and sends its old values
// all the same, so a filter after it retracts.
func TestTableTableJoinOldValuesDownstream(t *testing.T) {
	b := topology.NewBuilder()
	j := sameKeyJoin(b, "inner")
	if j.StoreName() != "" {
		t.Errorf("StoreName() = %q, want none", j.StoreName())
	}
	j.Filter(func(_, v string) bool { return strings.HasPrefix(v, "1/") }).To("ones")
	d := newDriver(t, b)
	l, r := riffletest.Input(d, "l", str, str), riffletest.Input(d, "r", str, str)
	pipe(t, l, "a", "1")
	pipe(t, r, "a", "x")
	pipe(t, l, "a", "2") // no longer passes: retracted
	pipe(t, l, "a", "1")
	tombstone(t, d, "r", []byte("a"))
	want(t, "ones", readTopic(t, d, "ones", str, str), []string{
		"a=1/x", "a=<tombstone>", "a=1/x", "a=<tombstone>",
	})
}

// The join's tables are one sub-topology, and its nodes and stores are
// named after it.
func TestTableTableJoinNaming(t *testing.T) {
	cases := []struct {
		name   string
		opts   []table.Option
		node   string
		stores []string
	}{
		{"default", nil, "table-l-join", []string{"table-l", "table-r", "table-l-join-right-table"}},
		{"Named", []table.Option{table.Named("j")}, "j", []string{"table-l", "table-r", "j-right-table"}},
		{"Materialized", []table.Option{table.Named("j"), table.Materialized("jm")}, "j", []string{"table-l", "table-r", "j-right-table", "jm"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := topology.NewBuilder()
			l := table.From[string, string](b, "l")
			// A side that keeps no store is given one for the join.
			r := table.MapValues(table.From[string, string](b, "r"), strings.ToUpper)
			j := table.Join(l, r, func(_ string, a, b string) string { return a + b }, tc.opts...)
			if j.Name() != tc.node {
				t.Errorf("Name() = %q, want %q", j.Name(), tc.node)
			}
			j.To("out")
			topo := mustBuild(t, b)
			subs := topo.SubTopologies()
			if len(subs) != 1 {
				t.Fatalf("%d sub-topologies, want 1:\n%s", len(subs), topo.Describe())
			}
			var topics, stores []string
			for _, tp := range subs[0].SourceTopics {
				topics = append(topics, tp.Name)
			}
			for _, s := range subs[0].Stores {
				stores = append(stores, s.Name)
			}
			want(t, "source topics", topics, []string{"l", "r"})
			slices.Sort(stores)
			slices.Sort(tc.stores)
			want(t, "stores", stores, tc.stores)
			for _, n := range []string{tc.node, tc.node + "-left", tc.node + "-right"} {
				if !slices.Contains(subs[0].Nodes, n) {
					t.Errorf("no node %q:\n%s", n, topo.Describe())
				}
			}
			desc := topo.Describe()
			for _, s := range []string{
				"Processor: " + tc.node + "-left (stores: ",
				"Processor: " + tc.node + "-right (stores: table-l)",
			} {
				if !strings.Contains(desc, s) {
					t.Errorf("Describe() lacks %q:\n%s", s, desc)
				}
			}
		})
	}
}

// A result that is nil (for a VR that can be nil) is no result.
func TestTableTableJoinNilResult(t *testing.T) {
	b := topology.NewBuilder()
	l := table.From[string, string](b, "l")
	r := table.From[string, string](b, "r")
	j := table.Join(l, r, func(_ string, a, b string) *string {
		if a == "none" {
			return nil
		}
		s := a + b
		return &s
	}, table.WithValueSerde(serde.Nullable(str)))
	changes := recordChanges(j)
	d := newDriver(t, b)
	li, ri := riffletest.Input(d, "l", str, str), riffletest.Input(d, "r", str, str)
	pipe(t, li, "a", "none")
	pipe(t, ri, "a", "x")    // nil: nothing
	pipe(t, li, "a", "1")    // appears
	pipe(t, li, "a", "none") // deleted
	want(t, "changes", takeChanges(changes), []string{"a: _->1x", "a: 1x->_"})
}

// nullKeyTable is a table whose node forwards whatever it is given, null
// keys included: the join itself must skip them.
type nullKeyTable struct {
	ctx topology.Context[[]byte, table.Change[string]]
}

func (p *nullKeyTable) Init(ctx topology.Context[[]byte, table.Change[string]]) error {
	p.ctx = ctx
	return nil
}
func (p *nullKeyTable) Close() error { return nil }
func (p *nullKeyTable) Process(r topology.Record[[]byte, string]) error {
	return p.ctx.Forward(topology.Record[[]byte, table.Change[string]]{Key: r.Key, Value: table.Change[string]{New: r.Value, HasNew: true}})
}

func TestTableTableJoinNullKeys(t *testing.T) {
	forBackends(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		// A source table skips null keys itself.
		l := table.From[[]byte, string](b, "l")
		// This table's node does not: the join must.
		topology.AddSource(b, "raw", serde.ByteArray(), str, "r")
		topology.AddProcessor(b, "r-table", func() topology.Processor[[]byte, string, []byte, table.Change[string]] {
			return &nullKeyTable{}
		}, "raw")
		b.AddStore(state.KeyValue("r-store"), "r-table")
		r := table.FromNode(b, "r-table", serde.ByteArray(), str, "r-store")
		j := table.OuterJoin(l, r, func(_ []byte, a, b table.Maybe[string]) string { return showMaybe(a) + "/" + showMaybe(b) }, table.Named("j"))
		changes := recordChanges(j)
		d := newDriver(t, b, opt)
		for _, topic := range []string{"l", "r"} {
			if err := d.PipeRaw(topic, nil, []byte("v"), epoch); err != nil {
				t.Fatalf("PipeRaw: %v", err)
			}
		}
		if err := d.PipeRaw("l", []byte("k"), []byte("v"), epoch); err != nil {
			t.Fatalf("PipeRaw: %v", err)
		}
		want(t, "changes", takeChanges(changes), []string{"[107]: _->v/-"})
		wantSkipped(t, d, map[topology.SkipKey]int64{
			{Node: "table-l", Reason: "null key"}: 1,
			{Node: "j-right", Reason: "null key"}: 1,
		})
	})
}

func TestJoinBuildErrors(t *testing.T) {
	cat := func(_ string, a, b string) string { return a + b }
	cases := []struct {
		name  string
		build func(b *topology.Builder)
		want  []string
	}{
		{"Join: nil joiner", func(b *topology.Builder) {
			table.Join[string, string, string, string](table.From[string, string](b, "l"), table.From[string, string](b, "r"), nil)
		}, []string{`table: operator "table-l-join": its function is nil`}},
		{"LeftJoin: nil joiner", func(b *topology.Builder) {
			table.LeftJoin[string, string, string, string](table.From[string, string](b, "l"), table.From[string, string](b, "r"), nil)
		}, []string{`table: operator "table-l-left-join": its function is nil`}},
		{"OuterJoin: nil joiner", func(b *topology.Builder) {
			table.OuterJoin[string, string, string, string](table.From[string, string](b, "l"), table.From[string, string](b, "r"), nil)
		}, []string{`table: operator "table-l-outer-join": its function is nil`}},
		{"Join: another builder", func(b *topology.Builder) {
			table.Join(table.From[string, string](b, "l"), table.From[string, string](topology.NewBuilder(), "r"), cat, table.Named("j"))
		}, []string{`table: join "j": the right table "table-r" belongs to another builder`}},
		{"Join Materialized: no value serde", func(b *topology.Builder) {
			table.Join(table.From[string, string](b, "l"), table.From[string, string](b, "r"),
				func(_ string, a, b string) plain { return 0 }, table.Named("j"), table.Materialized("m"))
		}, []string{`operator "j": no value serde`}},
		{"JoinForeign: nil foreign key", func(b *topology.Builder) {
			table.JoinForeign[string, string, string, string, string](table.From[string, string](b, "l"), table.From[string, string](b, "r"), nil, func(a, b string) string { return a + b })
		}, []string{`table: operator "table-l-fk-join": its function is nil`}},
		{"LeftJoinForeign: nil joiner", func(b *topology.Builder) {
			table.LeftJoinForeign[string, string, string, string, string](table.From[string, string](b, "l"), table.From[string, string](b, "r"), strings.ToUpper, nil)
		}, []string{`table: operator "table-l-left-fk-join": its function is nil`}},
		{"JoinForeign: no value serde", func(b *topology.Builder) {
			table.JoinForeign(table.From[string, string](b, "l"), table.From[string, string](b, "r"), strings.ToUpper,
				func(a, b string) plain { return 0 }, table.Named("fk"))
		}, []string{`table: foreign-key join "fk": no value serde`}},
		{"JoinForeign: another builder", func(b *topology.Builder) {
			table.JoinForeign(table.From[string, string](b, "l"), table.From[string, string](topology.NewBuilder(), "r"), strings.ToUpper,
				func(a, b string) string { return a + b }, table.Named("fk"))
		}, []string{`table: join "fk": the right table "table-r" belongs to another builder`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := topology.NewBuilder()
			tc.build(b)
			wantErrContains(t, buildErr(t, b), tc.want...)
		})
	}
}

// ---- foreign-key joins ----

// fkOf is the foreign key of an order "product:quantity": its product.
func fkOf(order string) string { p, _, _ := strings.Cut(order, ":"); return p }

// fkJoin joins orders ("orders": id -> "product:quantity") with products
// ("products": product -> name), inner or left, named "fk" unless opts say
// otherwise. It records the result's changes and writes it to "out".
func fkJoin(b *topology.Builder, left bool, opts ...table.Option) (table.Table[string, string], *[]string) {
	orders := table.From[string, string](b, "orders")
	products := table.From[string, string](b, "products")
	opts = append([]table.Option{table.Named("fk")}, opts...)
	var j table.Table[string, string]
	if left {
		j = table.LeftJoinForeign(orders, products, fkOf, func(o string, p table.Maybe[string]) string { return o + "/" + showMaybe(p) }, opts...)
	} else {
		j = table.JoinForeign(orders, products, fkOf, func(o, p string) string { return o + "/" + p }, opts...)
	}
	changes := recordChanges(j)
	j.To("out")
	return j, changes
}

// fkDriver starts a driver on b and returns it with the two input topics.
func fkDriver(t *testing.T, b *topology.Builder, opts ...riffletest.Option) (*riffletest.Driver, *riffletest.InputTopic[string, string], *riffletest.InputTopic[string, string]) {
	d := newDriver(t, b, opts...)
	return d, riffletest.Input(d, "orders", str, str), riffletest.Input(d, "products", str, str)
}

func TestJoinForeignBasic(t *testing.T) {
	forBackends(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		j, changes := fkJoin(b, false)
		if j.StoreName() != "fk" {
			t.Errorf("StoreName() = %q, want fk", j.StoreName())
		}
		d, orders, products := fkDriver(t, b, opt)

		pipe(t, orders, "o1", "apple:1")
		want(t, "no product yet", takeChanges(changes), nil)
		pipe(t, products, "apple", "Apple")
		want(t, "product arrives", takeChanges(changes), []string{"o1: _->apple:1/Apple"})
		pipe(t, orders, "o2", "apple:2")
		want(t, "order arrives", takeChanges(changes), []string{"o2: _->apple:2/Apple"})
		pipe(t, products, "apple", "APPLE")
		want(t, "product update fans out", takeChanges(changes), []string{
			"o1: apple:1/Apple->apple:1/APPLE", "o2: apple:2/Apple->apple:2/APPLE",
		})
		pipe(t, orders, "o1", "apple:3")
		want(t, "order update", takeChanges(changes), []string{"o1: apple:1/APPLE->apple:3/APPLE"})
		pipe(t, products, "pear", "Pear")
		want(t, "unrelated product", takeChanges(changes), nil)

		want(t, "out", readTopic(t, d, "out", str, str), []string{
			"o1=apple:1/Apple", "o2=apple:2/Apple", "o1=apple:1/APPLE", "o2=apple:2/APPLE", "o1=apple:3/APPLE",
		})
		want(t, "store", storeContents(t, d, "fk", str, str), []string{"o1=apple:3/APPLE", "o2=apple:2/APPLE"})
		want(t, "changelog", changelog(t, d, "fk", str, str), []string{
			"o1=apple:1/Apple", "o2=apple:2/Apple", "o1=apple:1/APPLE", "o2=apple:2/APPLE", "o1=apple:3/APPLE",
		})
		wantSkipped(t, d, map[topology.SkipKey]int64{})
	})
}

// A right update reaches every left key that names it, and only those.
func TestJoinForeignFanOut(t *testing.T) {
	forBackends(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		_, changes := fkJoin(b, true)
		d, orders, products := fkDriver(t, b, opt)
		var wantUpdate, wantDelete []string
		for i := range 20 {
			id := fmt.Sprintf("o%02d", i)
			product := "apple"
			if i%2 == 1 {
				product = "applepie" // a foreign key that another one starts with
			}
			pipe(t, orders, id, product+":1")
			if product == "apple" {
				wantUpdate = append(wantUpdate, id+": apple:1/-->apple:1/Apple")
				wantDelete = append(wantDelete, id+": apple:1/Apple->apple:1/-")
			}
		}
		takeChanges(changes)
		pipe(t, products, "apple", "Apple")
		want(t, "update", takeChanges(changes), wantUpdate)
		tombstone(t, d, "products", []byte("apple"))
		want(t, "delete", takeChanges(changes), wantDelete)
		tombstone(t, d, "products", []byte("applepie")) // never had a value
		want(t, "delete of an absent product", takeChanges(changes), nil)
	})
}

// A left entry that changes its foreign key leaves its old match: the old
// right key's updates no longer reach it, and its result follows the new
// one (deleted, for an inner join, while the new one has no value).
func TestJoinForeignKeyChange(t *testing.T) {
	for _, left := range []bool{false, true} {
		t.Run(map[bool]string{false: "inner", true: "left"}[left], func(t *testing.T) {
			forBackends(t, func(t *testing.T, opt riffletest.Option) {
				b := topology.NewBuilder()
				_, changes := fkJoin(b, left)
				d, orders, products := fkDriver(t, b, opt)
				pipe(t, products, "apple", "Apple")
				pipe(t, orders, "o1", "apple:1")
				takeChanges(changes)

				pipe(t, orders, "o1", "pear:1") // pear has no value
				wantMoved := map[bool][]string{false: {"o1: apple:1/Apple->_"}, true: {"o1: apple:1/Apple->pear:1/-"}}[left]
				want(t, "moved to pear", takeChanges(changes), wantMoved)
				want(t, "subscriptions", subscribers(t, d, "fk-subscription-store"), []string{"pear<-o1"})

				pipe(t, products, "apple", "Apple 2") // no longer reaches o1
				want(t, "old match updated", takeChanges(changes), nil)
				pipe(t, products, "pear", "Pear")
				wantPear := map[bool][]string{false: {"o1: _->pear:1/Pear"}, true: {"o1: pear:1/-->pear:1/Pear"}}[left]
				want(t, "new match arrives", takeChanges(changes), wantPear)

				pipe(t, orders, "o1", "apple:2") // back, with a value waiting
				want(t, "moved back", takeChanges(changes), []string{"o1: pear:1/Pear->apple:2/Apple 2"})
				want(t, "subscriptions", subscribers(t, d, "fk-subscription-store"), []string{"apple<-o1"})
				wantSkipped(t, d, map[topology.SkipKey]int64{})
			})
		})
	}
}

// subscribers lists the subscription store's entries as "fk<-key", for
// string keys: the store key is the foreign key's length as a uvarint (one
// byte, for short keys), the foreign key, then the left key.
func subscribers(t *testing.T, d *riffletest.Driver, store string) []string {
	t.Helper()
	ro, err := d.KeyValueStore(store)
	if err != nil {
		t.Fatalf("KeyValueStore(%q): %v", store, err)
	}
	it, err := ro.Range(nil, nil)
	if err != nil {
		t.Fatalf("Range: %v", err)
	}
	defer it.Close()
	var out []string
	for it.Next() {
		k := it.Key()
		n := int(k[0])
		out = append(out, string(k[1:1+n])+"<-"+string(k[1+n:]))
	}
	if err := it.Err(); err != nil {
		t.Fatalf("iterate: %v", err)
	}
	return out
}

// A deletion emits a deletion only where the join held.
func TestJoinForeignTombstones(t *testing.T) {
	for _, left := range []bool{false, true} {
		t.Run(map[bool]string{false: "inner", true: "left"}[left], func(t *testing.T) {
			forBackends(t, func(t *testing.T, opt riffletest.Option) {
				b := topology.NewBuilder()
				_, changes := fkJoin(b, left)
				d, orders, products := fkDriver(t, b, opt)
				pipe(t, products, "apple", "Apple")
				pipe(t, orders, "o1", "apple:1")
				pipe(t, orders, "o2", "pear:1") // no pear
				takeChanges(changes)

				tombstone(t, d, "orders", []byte("o1"))
				want(t, "joined order deleted", takeChanges(changes), []string{"o1: apple:1/Apple->_"})
				tombstone(t, d, "orders", []byte("o2"))
				wantO2 := map[bool][]string{false: nil, true: {"o2: pear:1/-->_"}}[left]
				want(t, "unmatched order deleted", takeChanges(changes), wantO2)
				tombstone(t, d, "orders", []byte("o3"))
				want(t, "absent order deleted", takeChanges(changes), nil)
				want(t, "subscriptions", subscribers(t, d, "fk-subscription-store"), nil)

				pipe(t, products, "apple", "Apple 2")
				want(t, "deleted order no longer joined", takeChanges(changes), nil)

				pipe(t, orders, "o4", "apple:4")
				takeChanges(changes)
				tombstone(t, d, "products", []byte("apple"))
				wantO4 := map[bool][]string{false: {"o4: apple:4/Apple 2->_"}, true: {"o4: apple:4/Apple 2->apple:4/-"}}[left]
				want(t, "product deleted", takeChanges(changes), wantO4)
				tombstone(t, d, "products", []byte("apple"))
				want(t, "product deleted again", takeChanges(changes), nil)
				pipe(t, products, "apple", "Apple 3")
				wantBack := map[bool][]string{false: {"o4: _->apple:4/Apple 3"}, true: {"o4: apple:4/-->apple:4/Apple 3"}}[left]
				want(t, "product back", takeChanges(changes), wantBack)
				tombstone(t, d, "orders", []byte("o4"))
				want(t, "order deleted", takeChanges(changes), []string{"o4: apple:4/Apple 3->_"})
				want(t, "store", storeContents(t, d, "fk", str, str), nil)
			})
		})
	}
}

// A null foreign key (for a key type that can be nil) has no match: an
// inner join skips the value, counts it and deletes its old result; a left
// join emits it with an absent right side.
func TestJoinForeignNullForeignKey(t *testing.T) {
	for _, left := range []bool{false, true} {
		t.Run(map[bool]string{false: "inner", true: "left"}[left], func(t *testing.T) {
			forBackends(t, func(t *testing.T, opt riffletest.Option) {
				b := topology.NewBuilder()
				orders := table.From[string, string](b, "orders")
				products := table.From[[]byte, string](b, "products")
				fk := func(o string) []byte {
					if p := fkOf(o); p != "" {
						return []byte(p)
					}
					return nil
				}
				var j table.Table[string, string]
				if left {
					j = table.LeftJoinForeign(orders, products, fk, func(o string, p table.Maybe[string]) string { return o + "/" + showMaybe(p) }, table.Named("fk"))
				} else {
					j = table.JoinForeign(orders, products, fk, func(o, p string) string { return o + "/" + p }, table.Named("fk"))
				}
				changes := recordChanges(j)
				d := newDriver(t, b, opt)
				oi := riffletest.Input(d, "orders", str, str)
				pi := riffletest.Input(d, "products", serde.ByteArray(), str)
				pipe(t, pi, []byte("apple"), "Apple")
				pipe(t, oi, "o1", "apple:1")
				takeChanges(changes)

				pipe(t, oi, "o1", ":2") // no product
				wantNull := map[bool][]string{false: {"o1: apple:1/Apple->_"}, true: {"o1: apple:1/Apple->:2/-"}}[left]
				want(t, "foreign key becomes null", takeChanges(changes), wantNull)
				pipe(t, oi, "o2", ":3")
				wantNew := map[bool][]string{false: nil, true: {"o2: _->:3/-"}}[left]
				want(t, "new value with a null foreign key", takeChanges(changes), wantNew)
				want(t, "subscriptions", subscribers(t, d, "fk-subscription-store"), nil)
				pipe(t, pi, []byte("apple"), "Apple 2")
				want(t, "old match updated", takeChanges(changes), nil)
				pipe(t, oi, "o1", "apple:4")
				wantBack := map[bool][]string{false: {"o1: _->apple:4/Apple 2"}, true: {"o1: :2/-->apple:4/Apple 2"}}[left]
				want(t, "foreign key back", takeChanges(changes), wantBack)

				wantSkips := map[topology.SkipKey]int64{}
				if !left {
					wantSkips[topology.SkipKey{Node: "fk-subscription-send", Reason: "null foreign key"}] = 2
				}
				wantSkipped(t, d, wantSkips)
			})
		})
	}
}

// Records with a null key on either side are skipped and counted, and
// join nothing.
func TestJoinForeignNullKeys(t *testing.T) {
	forBackends(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		orders := table.From[[]byte, string](b, "orders")
		products := table.From[[]byte, string](b, "products")
		j := table.LeftJoinForeign(orders, products, func(o string) []byte { return []byte(fkOf(o)) },
			func(o string, p table.Maybe[string]) string { return o + "/" + showMaybe(p) }, table.Named("fk"))
		changes := recordChanges(j)
		d := newDriver(t, b, opt)
		for _, topic := range []string{"orders", "products"} {
			if err := d.PipeRaw(topic, nil, []byte("apple:1"), epoch); err != nil {
				t.Fatalf("PipeRaw: %v", err)
			}
		}
		if err := d.PipeRaw("orders", []byte("o1"), []byte("apple:1"), epoch); err != nil {
			t.Fatalf("PipeRaw: %v", err)
		}
		want(t, "changes", takeChanges(changes), []string{"[111 49]: _->apple:1/-"})
		wantSkipped(t, d, map[topology.SkipKey]int64{
			{Node: "table-orders", Reason: "null key"}:   1,
			{Node: "table-products", Reason: "null key"}: 1,
		})
	})
}

// batchTable is a table whose input record "k=v1,v2,..." updates key k to
// each value in turn, all while one record is processed: the later
// updates' subscriptions leave before the answers to the earlier ones come
// back, as when a key changes quickly on a real broker. An empty value is
// a deletion.
type batchTable struct {
	ctx topology.Context[string, table.Change[string]]
	cur map[string]string
}

func (p *batchTable) Init(ctx topology.Context[string, table.Change[string]]) error {
	p.ctx, p.cur = ctx, map[string]string{}
	return nil
}
func (p *batchTable) Close() error { return nil }
func (p *batchTable) Process(r topology.Record[string, string]) error {
	for _, v := range strings.Split(r.Value, ",") {
		old, had := p.cur[r.Key]
		c := table.Change[string]{New: v, HasNew: v != "", Old: old, HasOld: had}
		if c.HasNew {
			p.cur[r.Key] = v
		} else {
			delete(p.cur, r.Key)
		}
		if !c.HasNew && !c.HasOld {
			continue
		}
		if err := p.ctx.Forward(topology.Record[string, table.Change[string]]{Key: r.Key, Value: c, Timestamp: r.Timestamp}); err != nil {
			return err
		}
	}
	return nil
}

// A left key that changes its foreign key again before the answer to the
// first change comes back is never joined with the first one: that answer
// is stale (its hash is of a value that was replaced) and is dropped.
func TestJoinForeignOutOfOrderResponses(t *testing.T) {
	cases := []struct {
		name    string
		batches []string
		changes []string
	}{
		{"two foreign keys", []string{"apple:1,pear:1"}, []string{"o1: _->pear:1/Pear"}},
		{"three foreign keys", []string{"apple:1,fig:1,pear:2"}, []string{"o1: _->pear:2/Pear"}},
		{"away and back: both answers are current", []string{"apple:1,pear:1,apple:1"}, []string{
			"o1: _->apple:1/Apple", "o1: apple:1/Apple->apple:1/Apple",
		}},
		{"set then deleted", []string{"apple:1,"}, nil},
		{"deleted then set", []string{"apple:1", ",pear:1"}, []string{
			"o1: _->apple:1/Apple", "o1: apple:1/Apple->_", "o1: _->pear:1/Pear",
		}},
		{"value changed, same foreign key", []string{"apple:1,apple:2"}, []string{"o1: _->apple:2/Apple"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			forBackends(t, func(t *testing.T, opt riffletest.Option) {
				b := topology.NewBuilder()
				topology.AddSource(b, "batches", str, str, "orders")
				topology.AddProcessor(b, "orders", func() topology.Processor[string, string, string, table.Change[string]] {
					return &batchTable{}
				}, "batches")
				orders := table.FromNode(b, "orders", str, str, "")
				products := table.From[string, string](b, "products")
				j := table.JoinForeign(orders, products, fkOf, func(o, p string) string { return o + "/" + p }, table.Named("fk"))
				changes := recordChanges(j)
				d := newDriver(t, b, opt)
				oi, pi := riffletest.Input(d, "orders", str, str), riffletest.Input(d, "products", str, str)
				for _, p := range []string{"apple", "fig", "pear"} {
					pipe(t, pi, p, strings.ToUpper(p[:1])+p[1:])
				}
				for _, batch := range tc.batches {
					pipe(t, oi, "o1", batch)
				}
				want(t, "changes", takeChanges(changes), tc.changes)
				// Only the last foreign key is subscribed to.
				pipe(t, pi, "apple", "Apple 2")
				pipe(t, pi, "fig", "Fig 2")
				pipe(t, pi, "pear", "Pear 2")
				var last string
				if n := len(tc.changes); n > 0 && !strings.HasSuffix(tc.changes[n-1], "->_") {
					_, last, _ = strings.Cut(tc.changes[n-1], "->")
				}
				var wantLater []string
				if last != "" {
					o, p, _ := strings.Cut(last, "/")
					wantLater = []string{"o1: " + last + "->" + o + "/" + p + " 2"}
				}
				want(t, "later updates", takeChanges(changes), wantLater)
			})
		})
	}
}

// The join's stores and internal topics are named after it; the two
// tables need not be co-partitioned.
func TestJoinForeignNaming(t *testing.T) {
	cases := []struct {
		name        string
		opts        []table.Option
		repartition []string
		changelogs  []string
		nodes       []string
	}{
		{"default", nil,
			[]string{"table-orders-fk-join-subscription-registration-repartition", "table-orders-fk-join-subscription-response-repartition"},
			[]string{"table-orders-changelog", "table-products-changelog", "table-orders-fk-join-right-table-changelog",
				"table-orders-fk-join-subscription-store-changelog", "table-orders-fk-join-changelog"},
			[]string{"table-orders-fk-join", "table-orders-fk-join-subscription-send"}},
		{"Named", []table.Option{table.Named("enrich")},
			[]string{"enrich-subscription-registration-repartition", "enrich-subscription-response-repartition"},
			[]string{"table-orders-changelog", "table-products-changelog", "enrich-right-table-changelog",
				"enrich-subscription-store-changelog", "enrich-changelog"},
			[]string{"enrich", "enrich-subscription-send", "enrich-left-direct", "enrich-response-join",
				"enrich-subscription-receive", "enrich-foreign-table-join", "enrich-response"}},
		{"Materialized", []table.Option{table.Named("enrich"), table.Materialized("enriched", state.InMemory())},
			[]string{"enrich-subscription-registration-repartition", "enrich-subscription-response-repartition"},
			[]string{"table-orders-changelog", "table-products-changelog", "enrich-right-table-changelog",
				"enrich-subscription-store-changelog", "enriched-changelog"},
			[]string{"enrich"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := topology.NewBuilder()
			orders := table.From[string, string](b, "orders")
			products := table.MapValues(table.From[string, string](b, "products"), strings.ToUpper)
			j := table.JoinForeign(orders, products, fkOf, func(o, p string) string { return o + p }, tc.opts...)
			j.To("out")
			topo := mustBuild(t, b)
			want(t, "repartition topics", internalTopics(topo, topology.RepartitionTopic), tc.repartition)
			got := internalTopics(topo, topology.ChangelogTopic)
			slices.Sort(got)
			slices.Sort(tc.changelogs)
			want(t, "changelogs", got, tc.changelogs)
			if j.Name() != tc.nodes[0] {
				t.Errorf("Name() = %q, want %q", j.Name(), tc.nodes[0])
			}
			desc := topo.Describe()
			for _, n := range tc.nodes {
				if !strings.Contains(desc, "Processor: "+n+" (") && !strings.Contains(desc, "Processor: "+n+"\n") {
					t.Errorf("Describe() has no processor %q:\n%s", n, desc)
				}
			}
			// The left table and the answers are one sub-topology; the
			// right table and the subscriptions another.
			subs := topo.SubTopologies()
			if len(subs) != 2 {
				t.Fatalf("%d sub-topologies, want 2:\n%s", len(subs), desc)
			}
			sources := func(st *topology.SubTopology) []string {
				var out []string
				for _, tp := range st.SourceTopics {
					out = append(out, tp.Name)
				}
				return out
			}
			want(t, "left sub-topology", sources(subs[0]), []string{"orders", tc.repartition[1]})
			want(t, "right sub-topology", sources(subs[1]), []string{"products", tc.repartition[0]})
		})
	}
}

// With record caches, a foreign-key join ends where the uncached one does.
func TestJoinForeignCached(t *testing.T) {
	forBackends(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		fkJoin(b, false)
		d, orders, products := fkDriver(t, b, opt, riffletest.WithCaching(1<<20))
		pipe(t, products, "apple", "Apple")
		pipe(t, orders, "o1", "apple:1")
		pipe(t, orders, "o2", "pear:1")
		pipe(t, orders, "o1", "pear:2")
		pipe(t, orders, "o3", "apple:3")
		pipe(t, products, "pear", "Pear")
		if err := d.Commit(); err != nil {
			t.Fatalf("Commit: %v", err)
		}
		want(t, "store", storeContents(t, d, "fk", str, str), []string{"o1=pear:2/Pear", "o2=pear:1/Pear", "o3=apple:3/Apple"})
		pipe(t, products, "pear", "Pear 2")
		tombstone(t, d, "orders", []byte("o3"))
		if err := d.Commit(); err != nil {
			t.Fatalf("Commit: %v", err)
		}
		want(t, "store", storeContents(t, d, "fk", str, str), []string{"o1=pear:2/Pear 2", "o2=pear:1/Pear 2"})
	})
}

// A foreign-key join of a table with itself: employees and their managers.
func TestJoinForeignSelf(t *testing.T) {
	b := topology.NewBuilder()
	staff := table.From[string, string](b, "staff") // name -> "manager" ("" for none)
	j := table.LeftJoinForeign(staff, staff, func(m string) string { return m },
		func(m string, mm table.Maybe[string]) string { return m + "<-" + showMaybe(mm) }, table.Named("chain"))
	changes := recordChanges(j)
	d := newDriver(t, b)
	in := riffletest.Input(d, "staff", str, str)
	pipe(t, in, "ann", "bob")
	pipe(t, in, "bob", "cat")
	// Bob's update answers his subscribers (ann) before his own
	// subscription is answered.
	want(t, "changes", takeChanges(changes), []string{
		"ann: _->bob<--", "ann: bob<--->bob<-cat", "bob: _->cat<--",
	})
}
