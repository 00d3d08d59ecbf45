package stream_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/riffle-streams/riffle/riffletest"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/stream"
	"github.com/riffle-streams/riffle/table"
	"github.com/riffle-streams/riffle/topology"
)

// Purchase is the value of the purchases stream of the cogroup tests.
type Purchase struct {
	Item  string  `json:"item"`
	Price float64 `json:"price"`
}

// Activity is a user's activity, aggregated from clicks, page views and
// purchases.
type Activity struct {
	Clicks    int64   `json:"clicks"`
	Views     int64   `json:"views"`
	LastPage  string  `json:"last_page"`
	Purchases int64   `json:"purchases"`
	Spent     float64 `json:"spent"`
}

func addClicks(_ string, n int64, a Activity) Activity { a.Clicks += n; return a }
func addView(_ string, page string, a Activity) Activity {
	a.Views++
	a.LastPage = page
	return a
}
func addPurchase(_ string, p Purchase, a Activity) Activity {
	a.Purchases++
	a.Spent += p.Price
	return a
}

// activityTopology cogroups clicks (int64), views (string) and purchases
// (Purchase), all keyed by user, into one Activity table named "activity".
func activityTopology(opts ...stream.Option) (*topology.Builder, table.Table[string, Activity], *int) {
	b := topology.NewBuilder()
	clicks := stream.From[string, int64](b, "clicks")
	views := stream.From[string, string](b, "views")
	purchases := stream.From[string, Purchase](b, "purchases")
	c := stream.Cogroup(clicks.GroupByKey(), addClicks)
	c = stream.CogroupWith(c, views.GroupByKey(), addView)
	c = stream.CogroupWith(c, purchases.GroupByKey(), addPurchase)
	inits := new(int)
	act := c.Aggregate(func() Activity { *inits++; return Activity{} }, append([]stream.Option{stream.Named("activity")}, opts...)...)
	return b, act, inits
}

func TestCogroupThreeStreams(t *testing.T) {
	eachBackend(t, func(t *testing.T, opt riffletest.Option) {
		b, act, inits := activityTopology()
		if act.Name() != "activity" || act.StoreName() != "activity" {
			t.Errorf("Name() = %q, StoreName() = %q", act.Name(), act.StoreName())
		}
		var changes []string
		stream.Changes(act).Foreach(func(k string, c table.Change[Activity]) {
			changes = append(changes, k+": "+showChg(c))
		})
		stream.ToStream(act).To("activity")
		topo := mustBuild(t, b)

		// One sub-topology: the three sources, the three cogroup
		// processors sharing the one store, and the table's node.
		subs := topo.SubTopologies()
		if len(subs) != 1 {
			t.Fatalf("%d sub-topologies, want 1:\n%s", len(subs), topo.Describe())
		}
		var topics []string
		for _, tp := range subs[0].SourceTopics {
			topics = append(topics, tp.Name)
		}
		wantStrs(t, "source topics", topics, []string{"clicks", "views", "purchases"})
		if len(subs[0].Stores) != 1 || subs[0].Stores[0].Name != "activity" {
			t.Errorf("stores %v, want activity only", subs[0].Stores)
		}
		wantStrs(t, "repartition topics", topicsOf(topo, topology.RepartitionTopic), nil)
		wantStrs(t, "changelogs", topicsOf(topo, topology.ChangelogTopic), []string{"activity-changelog"})
		desc := topo.Describe()
		for i, src := range []string{"from-clicks", "from-views", "from-purchases"} {
			node := "activity-cogroup-" + string(rune('0'+i))
			if !strings.Contains(desc, "  Processor: "+node+" (stores: activity)\n    --> activity\n    <-- "+src+"\n") {
				t.Errorf("Describe does not show %s reading %s and using the store:\n%s", node, src, desc)
			}
		}
		g := graphOf(t, topo)
		wantStrs(t, "parents of activity", g["activity"], []string{"activity-cogroup-0", "activity-cogroup-1", "activity-cogroup-2"})

		d, err := riffletest.New(topo, opt)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		clicks := riffletest.Input(d, "clicks", sS, sI64)
		views := riffletest.Input(d, "views", sS, sS)
		purchases := riffletest.Input(d, "purchases", sS, serde.JSON[Purchase]())

		pipeKV(t, clicks, "alice", 2)
		pipeKV(t, views, "alice", "home")
		pipeKV(t, purchases, "alice", Purchase{"book", 12.5})
		pipeKV(t, clicks, "bob", 1)
		pipeKV(t, views, "alice", "cart")
		pipeKV(t, clicks, "alice", 3)
		pipeKV(t, purchases, "bob", Purchase{"pen", 1.5})
		pipeKV(t, views, "bob", "help")

		aliceEnd := Activity{Clicks: 5, Views: 2, LastPage: "cart", Purchases: 1, Spent: 12.5}
		bobEnd := Activity{Clicks: 1, Views: 1, LastPage: "help", Purchases: 1, Spent: 1.5}
		want := []topology.KeyValue[string, Activity]{
			topology.KV("alice", Activity{Clicks: 2}),
			topology.KV("alice", Activity{Clicks: 2, Views: 1, LastPage: "home"}),
			topology.KV("alice", Activity{Clicks: 2, Views: 1, LastPage: "home", Purchases: 1, Spent: 12.5}),
			topology.KV("bob", Activity{Clicks: 1}),
			topology.KV("alice", Activity{Clicks: 2, Views: 2, LastPage: "cart", Purchases: 1, Spent: 12.5}),
			topology.KV("alice", aliceEnd),
			topology.KV("bob", Activity{Clicks: 1, Purchases: 1, Spent: 1.5}),
			topology.KV("bob", bobEnd),
		}
		js := serde.JSON[Activity]()
		wantKVs(t, "activity", readKVs(t, d, "activity", sS, js), want)
		wantKVs(t, "changelog", changelogRecords(t, d, "activity", sS, js), want)
		if *inits != 2 {
			t.Errorf("init called %d times, want once per user (2)", *inits)
		}
		if len(changes) != len(want) || changes[0] != "alice: _->{2 0  0 0}" || changes[4] != "alice: {2 1 home 1 12.5}->{2 2 cart 1 12.5}" {
			t.Errorf("changes %q", changes)
		}
		ro, err := d.KeyValueStore("activity")
		if err != nil {
			t.Fatal(err)
		}
		typed := state.TypedRead(ro, sS, js)
		for user, w := range map[string]Activity{"alice": aliceEnd, "bob": bobEnd} {
			if got, ok, err := typed.Get(user); got != w || !ok || err != nil {
				t.Errorf("store: %s = %+v, %v, %v; want %+v", user, got, ok, err, w)
			}
		}
		wantSkips(t, d, map[topology.SkipKey]int64{})
	})
}

func TestCogroupMaterialized(t *testing.T) {
	b, act, _ := activityTopology(stream.Materialized("user-activity", state.InMemory()))
	if act.Name() != "activity" || act.StoreName() != "user-activity" {
		t.Errorf("Name() = %q, StoreName() = %q", act.Name(), act.StoreName())
	}
	topo := mustBuild(t, b)
	if spec, ok := topo.Store("user-activity"); !ok || spec.Backend != state.InMemoryBackend {
		t.Errorf("store: %+v, %v", spec, ok)
	}
	wantStrs(t, "changelogs", topicsOf(topo, topology.ChangelogTopic), []string{"user-activity-changelog"})
	if n := strings.Count(topo.Describe(), "(stores: user-activity)"); n != 3 {
		t.Errorf("%d processors use the store, want 3:\n%s", n, topo.Describe())
	}
	eachBackend(t, func(t *testing.T, opt riffletest.Option) {
		d, err := riffletest.New(topo, opt)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		pipeKV(t, riffletest.Input(d, "clicks", sS, sI64), "u", 4)
		pipeKV(t, riffletest.Input(d, "views", sS, sS), "u", "p")
		wantStrs(t, "store", dumpStore(t, d, "user-activity", sS, serde.JSON[Activity]()), []string{"u={4 1 p 0 0}"})
	})
}

// A cogrouped stream whose key was changed is repartitioned first, into the
// sub-topology of the aggregate.
func TestCogroupRepartitionsRekeyedStreams(t *testing.T) {
	eachBackend(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		clicks := stream.From[string, int64](b, "clicks") // keyed by user
		pageViews := stream.From[string, string](b, "page-views")
		byUser := stream.GroupBy(pageViews, func(page, user string) string { return user }) // page -> user
		c := stream.Cogroup(clicks.GroupByKey(), addClicks)
		c = stream.CogroupWith(c, byUser, func(user, _ string, a Activity) Activity { a.Views++; return a })
		act := c.Aggregate(func() Activity { return Activity{} })
		if act.Name() != "cogroup" {
			t.Errorf("Name() = %q, want cogroup", act.Name())
		}
		stream.ToStream(act).To("out")
		topo := mustBuild(t, b)
		wantStrs(t, "repartition topics", topicsOf(topo, topology.RepartitionTopic), []string{"cogroup-cogroup-1-repartition"})
		subs := topo.SubTopologies()
		if len(subs) != 2 {
			t.Fatalf("%d sub-topologies, want 2:\n%s", len(subs), topo.Describe())
		}
		agg := subs[0]
		if !slices.Contains(agg.Nodes, "cogroup") {
			agg = subs[1]
		}
		if !slices.Contains(agg.Nodes, "cogroup-cogroup-0") || !slices.Contains(agg.Nodes, "cogroup-cogroup-1") ||
			!slices.Contains(agg.Nodes, "cogroup-cogroup-1-repartition-source") || len(agg.Stores) != 1 {
			t.Errorf("the aggregate's sub-topology: %v", agg.Nodes)
		}

		d, err := riffletest.New(topo, opt)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		pipeKV(t, riffletest.Input(d, "clicks", sS, sI64), "ann", 3)
		pipeKV(t, strIn(d, "page-views"), "/home", "ann")
		pipeKV(t, strIn(d, "page-views"), "/home", "ben")
		wantKVs(t, "out", readKVs(t, d, "out", sS, serde.JSON[Activity]()), []topology.KeyValue[string, Activity]{
			topology.KV("ann", Activity{Clicks: 3}),
			topology.KV("ann", Activity{Clicks: 3, Views: 1}),
			topology.KV("ben", Activity{Views: 1}),
		})
	})
}

// A cogroup skips and counts records with a null value (or key), naming the
// cogroup processor of the stream they came on.
func TestCogroupSkipsNulls(t *testing.T) {
	eachBackend(t, func(t *testing.T, opt riffletest.Option) {
		nullable := serde.Nullable(serde.String())
		b := topology.NewBuilder()
		clicks := stream.From[string, int64](b, "clicks")
		views := stream.From[string, *string](b, "views", stream.WithValueSerde(nullable))
		c := stream.Cogroup(clicks.GroupByKey(), addClicks)
		c = stream.CogroupWith(c, views.GroupByKey(), func(_ string, p *string, a Activity) Activity {
			a.Views++
			a.LastPage = *p
			return a
		})
		stream.ToStream(c.Aggregate(func() Activity { return Activity{} }, stream.Named("act"))).To("out")
		d, err := riffletest.New(mustBuild(t, b), opt)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		in := riffletest.Input(d, "views", sS, nullable)
		if err := in.Pipe("u", nil); err != nil {
			t.Fatalf("a null view failed: %v", err)
		}
		page := "p"
		pipeKV(t, in, "u", &page)
		wantKVs(t, "out", readKVs(t, d, "out", sS, serde.JSON[Activity]()), []topology.KeyValue[string, Activity]{
			topology.KV("u", Activity{Views: 1, LastPage: "p"}),
		})
		wantSkips(t, d, map[topology.SkipKey]int64{{Node: "act-cogroup-1", Reason: "null value"}: 1})
	})
}

// A cogroup of one stream is an aggregation of it.
func TestCogroupOfOne(t *testing.T) {
	eachBackend(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		c := stream.Cogroup(stream.From[string, int64](b, "clicks").GroupByKey(), addClicks)
		stream.ToStream(c.Aggregate(func() Activity { return Activity{Views: 100} })).To("out")
		d := newDriver(t, b, opt)
		in := riffletest.Input(d, "clicks", sS, sI64)
		pipeKV(t, in, "u", 1)
		pipeKV(t, in, "u", 2)
		wantKVs(t, "out", readKVs(t, d, "out", sS, serde.JSON[Activity]()), []topology.KeyValue[string, Activity]{
			topology.KV("u", Activity{Clicks: 1, Views: 100}),
			topology.KV("u", Activity{Clicks: 3, Views: 100}),
		})
	})
}
