package table_test

import (
	"slices"
	"testing"

	"github.com/riffle-streams/riffle/riffletest"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/table"
	"github.com/riffle-streams/riffle/topology"
)

// Account is the value of the tables the grouping tests regroup: each user
// has one, in one region.
type Account struct {
	Region string `json:"region"`
	Amount int64  `json:"amount"`
}

var accounts = serde.JSON[Account]()

// byRegion regroups a table of accounts by region, keeping the amounts.
func byRegion(_ string, a Account) (string, int64) { return a.Region, a.Amount }

func TestGroupByAggregate(t *testing.T) {
	forBackends(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		users := table.From[string, Account](b, "accounts")
		g := table.GroupBy(users, byRegion)
		var calls []string
		totals := table.Aggregate(g,
			func() int64 { calls = append(calls, "init"); return 0 },
			func(region string, v, agg int64) int64 {
				calls = append(calls, "add "+region+" "+show(v))
				return agg + v
			},
			func(region string, v, agg int64) int64 {
				calls = append(calls, "sub "+region+" "+show(v))
				return agg - v
			})
		if totals.Name() != "table-accounts-groupby-aggregate" || totals.StoreName() != totals.Name() {
			t.Errorf("Name() = %q, StoreName() = %q", totals.Name(), totals.StoreName())
		}
		changes := recordChanges(totals)
		totals.To("totals")
		d := newDriver(t, b, opt)
		in := riffletest.Input(d, "accounts", str, accounts)
		step := func(what string, fn func(), wantCalls, wantChanges []string) {
			t.Helper()
			fn()
			want(t, what+": calls", calls, wantCalls)
			want(t, what+": changes", takeChanges(changes), wantChanges)
			calls = nil
		}

		step("alice joins eu", func() { pipe(t, in, "alice", Account{"eu", 10}) },
			[]string{"init", "add eu 10"}, []string{"eu: _->10"})
		step("bob joins us", func() { pipe(t, in, "bob", Account{"us", 5}) },
			[]string{"init", "add us 5"}, []string{"us: _->5"})
		// One update within a group: the total goes from 10 to 15, never
		// through 0.
		step("alice's amount changes", func() { pipe(t, in, "alice", Account{"eu", 15}) },
			[]string{"sub eu 10", "add eu 15"}, []string{"eu: 10->15"})
		// A change of group: subtract from the old, then add to the new.
		step("alice moves to us", func() { pipe(t, in, "alice", Account{"us", 7}) },
			[]string{"sub eu 15", "add us 7"}, []string{"eu: 15->0", "us: 5->12"})
		step("bob leaves", func() { tombstone(t, d, "accounts", []byte("bob")) },
			[]string{"sub us 5"}, []string{"us: 12->7"})
		step("carol joins eu", func() { pipe(t, in, "carol", Account{"eu", 1}) },
			[]string{"add eu 1"}, []string{"eu: 0->1"})
		step("dave, absent, is deleted", func() { tombstone(t, d, "accounts", []byte("dave")) },
			nil, nil)

		want(t, "totals", readTopic(t, d, "totals", str, i64), []string{
			"eu=10", "us=5", "eu=15", "eu=0", "us=12", "us=7", "eu=1",
		})
		want(t, "store", storeContents(t, d, totals.StoreName(), str, i64), []string{"eu=1", "us=7"})
		want(t, "changelog", changelog(t, d, totals.StoreName(), str, i64), []string{
			"eu=10", "us=5", "eu=15", "eu=0", "us=12", "us=7", "eu=1",
		})
		wantSkipped(t, d, map[topology.SkipKey]int64{})
	})
}

func TestGroupByCount(t *testing.T) {
	forBackends(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		users := table.From[string, Account](b, "accounts")
		counts := table.GroupBy(users, byRegion).Count(table.Named("users-per-region"))
		if counts.Name() != "users-per-region" || counts.StoreName() != "users-per-region" {
			t.Errorf("Name() = %q, StoreName() = %q", counts.Name(), counts.StoreName())
		}
		changes := recordChanges(counts)
		counts.To("counts")
		d := newDriver(t, b, opt)
		in := riffletest.Input(d, "accounts", str, accounts)

		pipe(t, in, "alice", Account{"eu", 10})
		pipe(t, in, "bob", Account{"eu", 20})
		pipe(t, in, "alice", Account{"eu", 30}) // same group: one update, same count
		pipe(t, in, "bob", Account{"us", 20})   // moves
		tombstone(t, d, "accounts", []byte("alice"))
		pipe(t, in, "carol", Account{"us", 1})

		want(t, "changes", takeChanges(changes), []string{
			"eu: _->1", "eu: 1->2", "eu: 2->2", "eu: 2->1", "us: _->1", "eu: 1->0", "us: 1->2",
		})
		want(t, "counts", readTopic(t, d, "counts", str, i64), []string{
			"eu=1", "eu=2", "eu=2", "eu=1", "us=1", "eu=0", "us=2",
		})
		want(t, "store", storeContents(t, d, "users-per-region", str, i64), []string{"eu=0", "us=2"})
		want(t, "changelog", changelog(t, d, "users-per-region", str, i64), []string{
			"eu=1", "eu=2", "eu=2", "eu=1", "us=1", "eu=0", "us=2",
		})
	})
}

func TestGroupByReduce(t *testing.T) {
	forBackends(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		users := table.From[string, Account](b, "accounts")
		sums := table.GroupBy(users, byRegion).Reduce(
			func(agg, v int64) int64 { return agg + v },
			func(agg, v int64) int64 { return agg - v },
			table.Materialized("sums", state.InMemory()))
		if sums.Name() != "table-accounts-groupby-reduce" || sums.StoreName() != "sums" {
			t.Errorf("Name() = %q, StoreName() = %q", sums.Name(), sums.StoreName())
		}
		changes := recordChanges(sums)
		sums.To("sums")
		topo := mustBuild(t, b)
		if spec, ok := topo.Store("sums"); !ok || spec.Backend != state.InMemoryBackend {
			t.Errorf("store sums: %+v, %v; want in memory", spec, ok)
		}
		d := newDriver(t, b, opt)
		in := riffletest.Input(d, "accounts", str, accounts)

		pipe(t, in, "alice", Account{"eu", 10}) // first value: the aggregate
		pipe(t, in, "bob", Account{"eu", 5})
		pipe(t, in, "carol", Account{"us", 100})
		pipe(t, in, "bob", Account{"eu", 8})
		pipe(t, in, "alice", Account{"us", 1})
		tombstone(t, d, "accounts", []byte("carol"))
		tombstone(t, d, "accounts", []byte("bob"))

		want(t, "changes", takeChanges(changes), []string{
			"eu: _->10", "eu: 10->15", "us: _->100", "eu: 15->18", "eu: 18->8", "us: 100->101", "us: 101->1", "eu: 8->0",
		})
		want(t, "sums", readTopic(t, d, "sums", str, i64), []string{
			"eu=10", "eu=15", "us=100", "eu=18", "eu=8", "us=101", "us=1", "eu=0",
		})
		want(t, "store", storeContents(t, d, "sums", str, i64), []string{"eu=0", "us=1"})
	})
}

// A group whose aggregate is subtracted to nothing keeps it (as Kafka
// Streams does): the next value is added to it, not started afresh.
func TestGroupByReduceAfterEmptying(t *testing.T) {
	forBackends(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		users := table.From[string, Account](b, "accounts")
		table.GroupBy(users, byRegion).Reduce(
			func(agg, v int64) int64 { return agg*10 + v },
			func(agg, v int64) int64 { return agg - v }).To("out")
		d := newDriver(t, b, opt)
		in := riffletest.Input(d, "accounts", str, accounts)
		pipe(t, in, "a", Account{"eu", 3})
		tombstone(t, d, "accounts", []byte("a"))
		pipe(t, in, "b", Account{"eu", 4})
		want(t, "out", readTopic(t, d, "out", str, i64), []string{"eu=3", "eu=0", "eu=4"})
	})
}

// A selector that gives a null group key leaves the entry out of every
// group: the record is skipped and counted, and the entry's old group still
// loses it.
func TestGroupByNullGroupKey(t *testing.T) {
	forBackends(t, func(t *testing.T, opt riffletest.Option) {
		nullable := serde.Nullable(serde.String())
		b := topology.NewBuilder()
		users := table.From[string, Account](b, "accounts")
		g := table.GroupBy(users, func(_ string, a Account) (*string, int64) {
			if a.Region == "" {
				return nil, a.Amount
			}
			return &a.Region, a.Amount
		}, table.WithKeySerde(nullable), table.Named("by-region"))
		counts := g.Count()
		changes := recordChanges(counts)
		d := newDriver(t, b, opt)
		in := riffletest.Input(d, "accounts", str, accounts)

		pipe(t, in, "alice", Account{"eu", 1})
		pipe(t, in, "alice", Account{"", 1}) // leaves eu, joins no group
		pipe(t, in, "alice", Account{"us", 1})
		pipe(t, in, "bob", Account{"", 2})
		tombstone(t, d, "accounts", []byte("bob")) // was in no group: nothing

		want(t, "changes", takeChanges(changes), []string{"eu: _->1", "eu: 1->0", "us: _->1"})
		wantSkipped(t, d, map[topology.SkipKey]int64{{Node: "by-region", Reason: "null group key"}: 2})
		want(t, "store", storeContents(t, d, counts.StoreName(), nullable, i64), []string{"eu=0", "us=1"})
	})
}

// A re-grouping keyed by a type with no nil never skips: the zero value is a
// key like any other.
func TestGroupByZeroKey(t *testing.T) {
	forBackends(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		users := table.From[string, Account](b, "accounts")
		changes := recordChanges(table.GroupBy(users, byRegion).Count())
		d := newDriver(t, b, opt)
		pipe(t, riffletest.Input(d, "accounts", str, accounts), "a", Account{"", 1})
		want(t, "changes", takeChanges(changes), []string{": _->1"})
		wantSkipped(t, d, map[topology.SkipKey]int64{})
	})
}

func TestGroupByRepartitionTopic(t *testing.T) {
	sum := func(_ string, v, agg int64) int64 { return agg + v }
	sub := func(_ string, v, agg int64) int64 { return agg - v }
	zero := func() int64 { return 0 }
	cases := []struct {
		name  string
		build func(users table.Table[string, Account])
		want  []string
	}{
		{"named by the first aggregation", func(users table.Table[string, Account]) {
			g := table.GroupBy(users, byRegion)
			g.Count()
			table.Aggregate(g, zero, sum, sub)
		}, []string{"table-accounts-groupby-count-repartition"}},
		{"named by a Named aggregation", func(users table.Table[string, Account]) {
			g := table.GroupBy(users, byRegion)
			table.Aggregate(g, zero, sum, sub, table.Named("totals"))
			g.Count(table.Named("counts"))
		}, []string{"totals-repartition"}},
		{"Named grouping", func(users table.Table[string, Account]) {
			g := table.GroupBy(users, byRegion, table.Named("by-region"))
			g.Count(table.Named("counts"))
			g.Reduce(func(a, v int64) int64 { return a + v }, func(a, v int64) int64 { return a - v })
		}, []string{"by-region-repartition"}},
		{"two groupings, two topics", func(users table.Table[string, Account]) {
			table.GroupBy(users, byRegion).Count()
			table.GroupBy(users, func(k string, a Account) (string, int64) { return k[:1], a.Amount }).Count()
		}, []string{"table-accounts-groupby-count-repartition", "table-accounts-groupby-2-count-repartition"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := topology.NewBuilder()
			tc.build(table.From[string, Account](b, "accounts"))
			topo := mustBuild(t, b)
			want(t, "repartition topics", internalTopics(topo, topology.RepartitionTopic), tc.want)
			if n := len(topo.SubTopologies()); n != 1+len(tc.want) {
				t.Errorf("%d sub-topologies, want %d:\n%s", n, 1+len(tc.want), topo.Describe())
			}
		})
	}
}

// Two aggregations of one grouping read one repartition topic, and each
// sees every change once.
func TestGroupBySharedByTwoAggregations(t *testing.T) {
	forBackends(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		users := table.From[string, Account](b, "accounts")
		g := table.GroupBy(users, byRegion, table.Named("by-region"))
		counts := g.Count(table.Named("counts"))
		sums := g.Reduce(func(a, v int64) int64 { return a + v }, func(a, v int64) int64 { return a - v }, table.Named("sums"))
		counts.To("counts")
		sums.To("sums")
		topo := mustBuild(t, b)
		want(t, "repartition topics", internalTopics(topo, topology.RepartitionTopic), []string{"by-region-repartition"})
		want(t, "changelogs", internalTopics(topo, topology.ChangelogTopic), []string{
			"table-accounts-changelog", "counts-changelog", "sums-changelog",
		})
		subs := topo.SubTopologies()
		if len(subs) != 2 || !slices.Contains(subs[1].Nodes, "counts") || !slices.Contains(subs[1].Nodes, "sums") {
			t.Errorf("want both aggregations in sub-topology 1:\n%s", topo.Describe())
		}
		d := newDriver(t, b, opt)
		in := riffletest.Input(d, "accounts", str, accounts)
		pipe(t, in, "alice", Account{"eu", 10})
		pipe(t, in, "bob", Account{"eu", 5})
		pipe(t, in, "alice", Account{"us", 3})
		want(t, "counts", readTopic(t, d, "counts", str, i64), []string{"eu=1", "eu=2", "eu=1", "us=1"})
		want(t, "sums", readTopic(t, d, "sums", str, i64), []string{"eu=10", "eu=15", "eu=5", "us=3"})
	})
}

// Re-grouping chains: an aggregation's table can be grouped again.
func TestGroupByOfAnAggregation(t *testing.T) {
	forBackends(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		users := table.From[string, Account](b, "accounts")
		perRegion := table.GroupBy(users, byRegion).Count(table.Named("per-region"))
		// How many regions have each number of users.
		histogram := table.GroupBy(perRegion, func(region string, n int64) (int64, string) { return n, region }).
			Count(table.Named("histogram"))
		changes := recordChanges(histogram)
		d := newDriver(t, b, opt)
		in := riffletest.Input(d, "accounts", str, accounts)
		pipe(t, in, "a", Account{"eu", 0}) // eu: 1
		pipe(t, in, "b", Account{"eu", 0}) // eu: 2
		pipe(t, in, "c", Account{"us", 0}) // us: 1
		want(t, "changes", takeChanges(changes), []string{
			"1: _->1", "1: 1->0", "2: _->1", "1: 0->1",
		})
	})
}

// Cents is a value type with no default serde: its serde is given once,
// where it enters the topology.
type Cents int64

var cents = serde.Func(
	func(c Cents) ([]byte, error) { return i64.Encode(int64(c)) },
	func(b []byte) (Cents, error) { n, err := i64.Decode(b); return Cents(n), err },
)

// Serdes given where a type with no default serde enters the grouping and
// the aggregation are used there.
func TestGroupByCustomSerdes(t *testing.T) {
	forBackends(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		tb := table.From[string, Cents](b, "in", table.WithValueSerde(cents))
		g := table.GroupBy(tb, func(k string, v Cents) (string, Cents) { return k[:1], v }, table.WithValueSerde(cents))
		sums := g.Reduce(func(a, v Cents) Cents { return a + v }, func(a, v Cents) Cents { return a - v }, table.WithValueSerde(cents))
		sums.To("out")
		d := newDriver(t, b, opt)
		in := riffletest.Input(d, "in", str, cents)
		pipe(t, in, "a1", 100)
		pipe(t, in, "a2", 50)
		pipe(t, in, "a1", 10)
		pipe(t, in, "b1", 1)
		tombstone(t, d, "in", []byte("a2"))
		want(t, "out", readTopic(t, d, "out", str, cents), []string{"a=100", "a=150", "a=60", "b=1", "a=10"})
		want(t, "store", storeContents(t, d, sums.StoreName(), str, cents), []string{"a=10", "b=1"})
	})
}

// Reduce's aggregate has the grouping's value type, so it takes the
// grouping's value serde, as stream's Grouped.Reduce does.
func TestGroupByReduceKeepsValueSerde(t *testing.T) {
	forBackends(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		tb := table.From[string, Cents](b, "in", table.WithValueSerde(cents))
		g := table.GroupBy(tb, func(k string, v Cents) (string, Cents) { return k[:1], v }, table.WithValueSerde(cents))
		g.Reduce(func(a, v Cents) Cents { return a + v }, func(a, v Cents) Cents { return a - v }).To("out")
		d := newDriver(t, b, opt)
		in := riffletest.Input(d, "in", str, cents)
		pipe(t, in, "a1", 100)
		pipe(t, in, "a2", 50)
		pipe(t, in, "a1", 10)
		want(t, "out", readTopic(t, d, "out", str, cents), []string{"a=100", "a=150", "a=60"})
	})
}
