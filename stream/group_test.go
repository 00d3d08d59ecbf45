package stream_test

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/riffle-streams/riffle/internal/testutil"
	"github.com/riffle-streams/riffle/riffletest"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/stream"
	"github.com/riffle-streams/riffle/table"
	"github.com/riffle-streams/riffle/topology"
)

// ---- helpers shared by the aggregation tests (group, cogroup, totable) ----

// eachBackend runs fn once with every store on the in-memory backend and
// once with every store on the persistent one.
// Helpers shared with table's tests.
var (
	wantStrs  = testutil.WantStrings
	wantSkips = testutil.WantSkips
	topicsOf  = testutil.InternalTopics
)

// dumpStore returns the store named name's entries as "key=value".
func dumpStore[K, V any](t *testing.T, d *riffletest.Driver, name string, ks serde.Serde[K], vs serde.Serde[V]) []string {
	t.Helper()
	return testutil.StoreEntries(t, d, name, ks, vs, showAny)
}

func eachBackend(t *testing.T, fn func(t *testing.T, opt riffletest.Option)) {
	t.Helper()
	for _, be := range []state.Backend{state.InMemoryBackend, state.PersistentBackend} {
		t.Run(be.String(), func(t *testing.T) { fn(t, riffletest.WithBackend(be)) })
	}
}

// showAny formats a value, following pointers, "nil" for a nil one.
func showAny(v any) string {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return "nil"
		}
		return fmt.Sprint(rv.Elem().Interface())
	}
	return fmt.Sprint(v)
}

// showChg formats a table change as "old->new", "_" standing for no value.
func showChg[V any](c table.Change[V]) string {
	side := func(v V, has bool) string {
		if !has {
			return "_"
		}
		return showAny(v)
	}
	return side(c.Old, c.HasOld) + "->" + side(c.New, c.HasNew)
}

// drain reads every pending record of topic as "key=value", or
// "key=<tombstone>" for nil value bytes.
func drain[K, V any](t *testing.T, d *riffletest.Driver, topic string, ks serde.Serde[K], vs serde.Serde[V]) []string {
	t.Helper()
	var out []string
	for {
		raw, ok := d.ReadRaw(topic)
		if !ok {
			return out
		}
		k, err := ks.Decode(raw.Key)
		if err != nil {
			t.Fatalf("%s offset %d: decode key: %v", topic, raw.Offset, err)
		}
		if raw.Value == nil {
			out = append(out, showAny(k)+"=<tombstone>")
			continue
		}
		v, err := vs.Decode(raw.Value)
		if err != nil {
			t.Fatalf("%s offset %d: decode value: %v", topic, raw.Offset, err)
		}
		out = append(out, showAny(k)+"="+showAny(v))
	}
}

// drainChangelog reads the changelog of store, as drain does.
func drainChangelog[K, V any](t *testing.T, d *riffletest.Driver, store string, ks serde.Serde[K], vs serde.Serde[V]) []string {
	t.Helper()
	return drain(t, d, "riffletest-"+store+"-changelog", ks, vs)
}

// changelogRecords reads the changelog of store with riffletest.Output.
func changelogRecords[K, V any](t *testing.T, d *riffletest.Driver, store string, ks serde.Serde[K], vs serde.Serde[V]) []topology.KeyValue[K, V] {
	t.Helper()
	got, err := riffletest.Output(d, "riffletest-"+store+"-changelog", ks, vs).ReadKeyValues()
	if err != nil {
		t.Fatalf("read the changelog of %q: %v", store, err)
	}
	return got
}

// pipeKV pipes k=v into in, failing the test on error.
func pipeKV[K, V any](t *testing.T, in *riffletest.InputTopic[K, V], k K, v V) {
	t.Helper()
	if err := in.Pipe(k, v); err != nil {
		t.Fatalf("Pipe(%v, %v): %v", k, v, err)
	}
}

// pipeWords pipes each word of words into in, keyed by the word.
func pipeWords(t *testing.T, in *riffletest.InputTopic[string, string], words string) {
	t.Helper()
	for _, w := range strings.Fields(words) {
		pipeKV(t, in, w, w)
	}
}

var (
	sS   = serde.String()
	sI64 = serde.Int64()
)

// ---- GroupByKey ----

func TestGroupByKeyCount(t *testing.T) {
	eachBackend(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		words := stream.From[string, string](b, "words")
		counts := words.GroupByKey().Count()
		if counts.Name() != "from-words-count" || counts.StoreName() != "from-words-count" {
			t.Errorf("Name() = %q, StoreName() = %q", counts.Name(), counts.StoreName())
		}
		stream.ToStream(counts).To("counts")
		topo := mustBuild(t, b)
		// The key did not change: no repartition, one sub-topology.
		if subs := topo.SubTopologies(); len(subs) != 1 || strings.Count(topo.Describe(), "Sub-topology") != 1 {
			t.Errorf("want one sub-topology:\n%s", topo.Describe())
		}
		wantStrs(t, "repartition topics", topicsOf(topo, topology.RepartitionTopic), nil)
		wantStrs(t, "changelogs", topicsOf(topo, topology.ChangelogTopic), []string{"from-words-count-changelog"})
		if !strings.Contains(topo.Describe(), "Processor: from-words-count (stores: from-words-count)\n    --> from-words-count-tostream\n    <-- from-words\n") {
			t.Errorf("Describe does not show the count reading the source:\n%s", topo.Describe())
		}

		d := newDriver(t, b, opt)
		pipeWords(t, strIn(d, "words"), "a b a a c b")
		want := []string{"a=1", "b=1", "a=2", "a=3", "c=1", "b=2"}
		wantStrs(t, "counts", drain(t, d, "counts", sS, sI64), want)
		wantStrs(t, "store", dumpStore(t, d, "from-words-count", sS, sI64), []string{"a=3", "b=2", "c=1"})
		wantKVs(t, "changelog", changelogRecords(t, d, "from-words-count", sS, sI64), []topology.KeyValue[string, int64]{
			topology.KV("a", int64(1)), topology.KV("b", int64(1)), topology.KV("a", int64(2)),
			topology.KV("a", int64(3)), topology.KV("c", int64(1)), topology.KV("b", int64(2)),
		})
		wantSkips(t, d, map[topology.SkipKey]int64{})
	})
}

// An aggregation forwards every update as a change: the aggregate before
// and after.
func TestGroupByKeyCountChanges(t *testing.T) {
	eachBackend(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		counts := stream.From[string, string](b, "words").GroupByKey().Count()
		var got []string
		stream.Changes(counts).Foreach(func(k string, c table.Change[int64]) { got = append(got, k+": "+showChg(c)) })
		d := newDriver(t, b, opt)
		pipeWords(t, strIn(d, "words"), "a a b a")
		wantStrs(t, "changes", got, []string{"a: _->1", "a: 1->2", "b: _->1", "a: 2->3"})
	})
}

// An aggregation's updates keep the timestamp and headers of the record
// that made them.
func TestAggregationKeepsTimestamps(t *testing.T) {
	eachBackend(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		stream.ToStream(stream.From[string, string](b, "words").GroupByKey().Count()).To("counts")
		d := newDriver(t, b, opt)
		h := topology.Header{Key: "h", Value: []byte("1")}
		if err := strIn(d, "words").PipeAt("a", "a", ms(1234), h); err != nil {
			t.Fatal(err)
		}
		recs, err := riffletest.Output(d, "counts", sS, sI64).ReadAll()
		if err != nil || len(recs) != 1 {
			t.Fatalf("read %v, %v", recs, err)
		}
		if !recs[0].Timestamp.Equal(ms(1234)) || len(recs[0].Headers) != 1 || recs[0].Headers[0].Key != "h" {
			t.Errorf("count record at %v with headers %v", recs[0].Timestamp, recs[0].Headers)
		}
	})
}

// GroupByKey after an operator that may have changed the key repartitions;
// after one that kept it, it does not.
func TestGroupByKeyRepartitionsOnlyWhenRekeyed(t *testing.T) {
	b := topology.NewBuilder()
	src := stream.From[string, string](b, "in")
	stream.MapValues(src, strings.ToUpper).GroupByKey().Count(stream.Named("kept"))
	stream.Map(src, func(k, v string) (string, string) { return v, k }).GroupByKey().Count(stream.Named("swapped"))
	stream.SelectKey(src, func(k, v string) string { return v }).GroupByKey(stream.Named("by-value")).Count(stream.Named("selected"))
	// Repartitioned explicitly: not again.
	stream.SelectKey(src, func(k, v string) string { return k + v }).Repartition(stream.Named("mine")).GroupByKey().Count(stream.Named("after-mine"))
	topo := mustBuild(t, b)
	wantStrs(t, "repartition topics", topicsOf(topo, topology.RepartitionTopic), []string{"swapped-repartition", "by-value-repartition", "mine-repartition"})
	if n := len(topo.SubTopologies()); n != 4 {
		t.Errorf("%d sub-topologies, want 4:\n%s", n, topo.Describe())
	}
}

// ---- GroupBy ----

func TestGroupByCount(t *testing.T) {
	eachBackend(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		lines := stream.From[string, string](b, "lines")
		words := stream.FlatMapValues(lines, strings.Fields)
		byWord := stream.GroupBy(words, func(_, w string) string { return w })
		counts := byWord.Count()
		stream.ToStream(counts).To("counts")
		topo := mustBuild(t, b)
		wantStrs(t, "repartition topics", topicsOf(topo, topology.RepartitionTopic), []string{
			"from-lines-flatmapvalues-selectkey-count-repartition",
		})
		subs := topo.SubTopologies()
		if len(subs) != 2 || strings.Count(topo.Describe(), "Sub-topology") != 2 {
			t.Fatalf("want two sub-topologies:\n%s", topo.Describe())
		}
		if got := subs[1].SourceTopics; len(got) != 1 || got[0].Resolve("app") != "app-from-lines-flatmapvalues-selectkey-count-repartition" {
			t.Errorf("sub-topology 1 reads %v", got)
		}
		if len(subs[0].Stores) != 0 || len(subs[1].Stores) != 1 || subs[1].Stores[0].Name != counts.StoreName() {
			t.Errorf("stores: %v in 0, %v in 1", subs[0].Stores, subs[1].Stores)
		}

		d := newDriver(t, b, opt)
		in := strIn(d, "lines")
		pipeKV(t, in, "l1", "the cat")
		pipeKV(t, in, "l2", "the dog the end")
		wantStrs(t, "counts", drain(t, d, "counts", sS, sI64), []string{
			"the=1", "cat=1", "the=2", "dog=1", "the=3", "end=1",
		})
		wantStrs(t, "store", dumpStore(t, d, counts.StoreName(), sS, sI64), []string{"cat=1", "dog=1", "end=1", "the=3"})
		// The repartition topic is internal: the driver processes it and
		// keeps nothing of it to read.
		if n := d.Pending("riffletest-from-lines-flatmapvalues-selectkey-count-repartition"); n != 0 {
			t.Errorf("%d repartition records left to read", n)
		}
	})
}

func TestGroupByNamed(t *testing.T) {
	b := topology.NewBuilder()
	src := stream.From[string, string](b, "in")
	counts := stream.GroupBy(src, func(_, v string) string { return v }, stream.Named("by-value")).Count(stream.Named("counts"))
	topo := mustBuild(t, b)
	wantStrs(t, "repartition topics", topicsOf(topo, topology.RepartitionTopic), []string{"by-value-repartition"})
	wantStrs(t, "changelogs", topicsOf(topo, topology.ChangelogTopic), []string{"counts-changelog"})
	if counts.Name() != "counts" || counts.StoreName() != "counts" {
		t.Errorf("Name() = %q, StoreName() = %q", counts.Name(), counts.StoreName())
	}
	g := graphOf(t, topo)
	if !slices.Equal(g["by-value-repartition-sink"], []string{"by-value-selectkey"}) ||
		!slices.Equal(g["counts"], []string{"by-value-repartition-source"}) {
		t.Errorf("graph (node: parents): %v", g)
	}
}

// Several aggregations of one grouping share its repartition topic, named
// after the first.
func TestTwoAggregationsShareOneRepartition(t *testing.T) {
	eachBackend(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		orders := stream.From[string, int64](b, "orders") // order id -> amount
		byCustomer := stream.GroupBy(orders, func(id string, _ int64) string { return id[:1] })
		counts := byCustomer.Count(stream.Named("order-count"))
		totals := byCustomer.Reduce(func(a, v int64) int64 { return a + v }, stream.Named("order-total"))
		maxes := stream.Aggregate(byCustomer, func() int64 { return -1 }, func(_ string, v, m int64) int64 { return max(v, m) }, stream.Named("order-max"))
		stream.ToStream(counts).To("counts")
		stream.ToStream(totals).To("totals")
		stream.ToStream(maxes).To("maxes")
		topo := mustBuild(t, b)
		wantStrs(t, "repartition topics", topicsOf(topo, topology.RepartitionTopic), []string{"order-count-repartition"})
		if n := len(topo.SubTopologies()); n != 2 {
			t.Errorf("%d sub-topologies, want 2:\n%s", n, topo.Describe())
		}
		g := graphOf(t, topo)
		for _, agg := range []string{"order-count", "order-total", "order-max"} {
			if !slices.Equal(g[agg], []string{"order-count-repartition-source"}) {
				t.Errorf("%s reads from %v, want the one repartition source", agg, g[agg])
			}
		}

		d := newDriver(t, b, opt)
		in := riffletest.Input(d, "orders", sS, sI64)
		pipeKV(t, in, "a1", 10)
		pipeKV(t, in, "b1", 5)
		pipeKV(t, in, "a2", 30)
		pipeKV(t, in, "a3", 20)
		wantStrs(t, "counts", drain(t, d, "counts", sS, sI64), []string{"a=1", "b=1", "a=2", "a=3"})
		wantStrs(t, "totals", drain(t, d, "totals", sS, sI64), []string{"a=10", "b=5", "a=40", "a=60"})
		wantStrs(t, "maxes", drain(t, d, "maxes", sS, sI64), []string{"a=10", "b=5", "a=30", "a=30"})
	})
}

// ---- Reduce, Aggregate ----

func TestReduce(t *testing.T) {
	eachBackend(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		var calls []string
		joined := stream.From[string, string](b, "in").GroupByKey().Reduce(func(agg, v string) string {
			calls = append(calls, agg+"+"+v)
			return agg + "," + v
		})
		if joined.Name() != "from-in-reduce" || joined.StoreName() != "from-in-reduce" {
			t.Errorf("Name() = %q, StoreName() = %q", joined.Name(), joined.StoreName())
		}
		stream.ToStream(joined).To("out")
		d := newDriver(t, b, opt)
		in := strIn(d, "in")
		pipeKV(t, in, "k", "a")
		pipeKV(t, in, "j", "x")
		pipeKV(t, in, "k", "b")
		pipeKV(t, in, "k", "") // an empty string is a value
		pipeKV(t, in, "j", "y")
		wantStrs(t, "out", drain(t, d, "out", sS, sS), []string{"k=a", "j=x", "k=a,b", "k=a,b,", "j=x,y"})
		wantStrs(t, "reducer calls (never for a key's first value)", calls, []string{"a+b", "a,b+", "x+y"})
		wantStrs(t, "store", dumpStore(t, d, "from-in-reduce", sS, sS), []string{"j=x,y", "k=a,b,"})
		wantStrs(t, "changelog", drainChangelog(t, d, "from-in-reduce", sS, sS), []string{"k=a", "j=x", "k=a,b", "k=a,b,", "j=x,y"})
	})
}

// Stats is a struct aggregate: its serde defaults to JSON.
type Stats struct {
	Count int64   `json:"count"`
	Sum   int64   `json:"sum"`
	Max   int64   `json:"max"`
	Mean  float64 `json:"mean"`
}

func TestAggregateStruct(t *testing.T) {
	eachBackend(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		orders := stream.From[string, int64](b, "amounts") // customer -> amount
		inits := 0
		stats := stream.Aggregate(orders.GroupByKey(), func() Stats { inits++; return Stats{Max: -1} },
			func(_ string, v int64, s Stats) Stats {
				s.Count++
				s.Sum += v
				s.Max = max(s.Max, v)
				s.Mean = float64(s.Sum) / float64(s.Count)
				return s
			}, stream.Named("stats"))
		if stats.StoreName() != "stats" || stats.ValueSerde() == nil || fmt.Sprint(stats.ValueSerde()) != "JSON[stream_test.Stats]" {
			t.Errorf("StoreName() = %q, ValueSerde() = %v", stats.StoreName(), stats.ValueSerde())
		}
		stream.ToStream(stats).To("stats")
		d := newDriver(t, b, opt)
		in := riffletest.Input(d, "amounts", sS, sI64)
		pipeKV(t, in, "alice", 10)
		pipeKV(t, in, "bob", 0)
		pipeKV(t, in, "alice", 5)
		pipeKV(t, in, "alice", 30)
		if inits != 2 {
			t.Errorf("init called %d times, want once per key (2)", inits)
		}
		js := serde.JSON[Stats]()
		want := []topology.KeyValue[string, Stats]{
			topology.KV("alice", Stats{1, 10, 10, 10}),
			topology.KV("bob", Stats{1, 0, 0, 0}),
			topology.KV("alice", Stats{2, 15, 10, 7.5}),
			topology.KV("alice", Stats{3, 45, 30, 15}),
		}
		wantKVs(t, "stats", readKVs(t, d, "stats", sS, js), want)
		wantKVs(t, "changelog", changelogRecords(t, d, "stats", sS, js), want)
		raw, ok := d.ReadRaw("stats")
		if ok {
			t.Errorf("unexpected record %v", raw)
		}
		ro, err := d.KeyValueStore("stats")
		if err != nil {
			t.Fatal(err)
		}
		got, _ := ro.Get([]byte("alice"))
		if string(got) != `{"count":3,"sum":45,"max":30,"mean":15}` {
			t.Errorf("stored bytes %s", got)
		}
	})
}

// Records with a null key or a null value are skipped and counted by the
// aggregation, which names itself and the reason.
func TestAggregationsSkipNulls(t *testing.T) {
	eachBackend(t, func(t *testing.T, opt riffletest.Option) {
		bs := serde.ByteArray()
		b := topology.NewBuilder()
		g := stream.From[[]byte, []byte](b, "in").GroupByKey()
		g.Count(stream.Named("count")).To("counts")
		g.Reduce(func(a, v []byte) []byte { return append(append([]byte{}, a...), v...) }, stream.Named("reduce")).To("reduced")
		stream.Aggregate(g, func() int64 { return 0 }, func(_ []byte, v []byte, n int64) int64 { return n + int64(len(v)) }, stream.Named("agg")).To("lengths")
		d := newDriver(t, b, opt)

		for _, r := range []struct{ k, v []byte }{
			{nil, []byte("v")},
			{[]byte("k"), nil},
			{nil, nil},
			{[]byte("k"), []byte("ab")},
			{[]byte("k"), []byte{}}, // empty, not null
		} {
			if err := d.PipeRaw("in", r.k, r.v, ms(0)); err != nil {
				t.Fatalf("PipeRaw(%v, %v): %v", r.k, r.v, err)
			}
		}
		wantStrs(t, "counts", drain(t, d, "counts", bs, sI64), []string{"[107]=1", "[107]=2"})
		wantStrs(t, "reduced", drain(t, d, "reduced", bs, sS), []string{"[107]=ab", "[107]=ab"})
		wantStrs(t, "lengths", drain(t, d, "lengths", bs, sI64), []string{"[107]=2", "[107]=2"})
		want := map[topology.SkipKey]int64{}
		for _, node := range []string{"count", "reduce", "agg"} {
			want[topology.SkipKey{Node: node, Reason: "null key"}] = 2
			want[topology.SkipKey{Node: node, Reason: "null value"}] = 1
		}
		wantSkips(t, d, want)
		if n := d.SkippedRecords(); n != 9 {
			t.Errorf("SkippedRecords() = %d, want 9", n)
		}
	})
}

// A GroupBy selector that returns a null key: the record crosses the
// repartition topic and is skipped by the aggregation.
func TestGroupByNullKeySkipped(t *testing.T) {
	eachBackend(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		src := stream.From[string, string](b, "in")
		counts := stream.GroupBy(src, func(_, v string) []byte {
			if v == "" {
				return nil
			}
			return []byte(v)
		}).Count(stream.Named("by-value"))
		stream.ToStream(counts).To("out")
		d := newDriver(t, b, opt)
		in := strIn(d, "in")
		pipeKV(t, in, "1", "x")
		pipeKV(t, in, "2", "")
		pipeKV(t, in, "3", "x")
		wantStrs(t, "out", drain(t, d, "out", serde.ByteArray(), sI64), []string{"[120]=1", "[120]=2"})
		wantSkips(t, d, map[topology.SkipKey]int64{{Node: "by-value", Reason: "null key"}: 1})
	})
}

// ---- stores ----

func TestAggregationMaterialized(t *testing.T) {
	b := topology.NewBuilder()
	g := stream.From[string, string](b, "words").GroupByKey()
	counts := g.Count(stream.Materialized("word-counts", state.InMemory()))
	quiet := g.Reduce(func(a, v string) string { return v }, stream.Named("latest"), stream.Materialized("latest-word", state.WithoutLogging()))
	if counts.Name() != "from-words-count" || counts.StoreName() != "word-counts" {
		t.Errorf("counts: Name() = %q, StoreName() = %q", counts.Name(), counts.StoreName())
	}
	if quiet.Name() != "latest" || quiet.StoreName() != "latest-word" {
		t.Errorf("latest: Name() = %q, StoreName() = %q", quiet.Name(), quiet.StoreName())
	}
	topo := mustBuild(t, b)
	if spec, ok := topo.Store("word-counts"); !ok || spec.Backend != state.InMemoryBackend || !spec.Logged {
		t.Errorf("word-counts: %+v, %v; want in memory, logged", spec, ok)
	}
	if spec, ok := topo.Store("latest-word"); !ok || spec.Backend != state.PersistentBackend || spec.Logged {
		t.Errorf("latest-word: %+v, %v; want persistent, unlogged", spec, ok)
	}
	if _, ok := topo.Store("from-words-count"); ok {
		t.Errorf("a store named after the operator exists besides the Materialized one")
	}
	wantStrs(t, "changelogs", topicsOf(topo, topology.ChangelogTopic), []string{"word-counts-changelog"})
	if !strings.Contains(topo.Describe(), "Processor: from-words-count (stores: word-counts)") {
		t.Errorf("Describe:\n%s", topo.Describe())
	}

	eachBackend(t, func(t *testing.T, opt riffletest.Option) {
		d, err := riffletest.New(topo, opt)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		pipeWords(t, strIn(d, "words"), "x y x")
		wantStrs(t, "word-counts", dumpStore(t, d, "word-counts", sS, sI64), []string{"x=2", "y=1"})
		wantStrs(t, "latest-word", dumpStore(t, d, "latest-word", sS, sS), []string{"x=x", "y=y"})
		wantStrs(t, "changelog", drainChangelog(t, d, "word-counts", sS, sI64), []string{"x=1", "y=1", "x=2"})
		if n := d.Pending("riffletest-latest-word-changelog"); n != 0 {
			t.Errorf("an unlogged store wrote %d changelog records", n)
		}
	})
}

// The key-value store an aggregation keeps can be read with a typed view
// while the topology runs, but not written.
func TestAggregationStoreIsReadOnlyOutside(t *testing.T) {
	eachBackend(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		stream.From[string, string](b, "words").GroupByKey().Count(stream.Materialized("c"))
		d := newDriver(t, b, opt)
		pipeWords(t, strIn(d, "words"), "a")
		ro, err := d.KeyValueStore("c")
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := ro.(state.KeyValueStore); ok {
			t.Errorf("the store can be written from outside")
		}
		v, ok, err := state.TypedRead(ro, sS, sI64).Get("a")
		if v != 1 || !ok || err != nil {
			t.Errorf("Get(a) = %d, %v, %v", v, ok, err)
		}
		if _, err := d.KeyValueStore("nope"); err == nil {
			t.Errorf("KeyValueStore of an unknown store succeeded")
		}
	})
}

// ---- build errors ----

type noSerde uint // a type with no default serde

func TestAggregationBuildErrors(t *testing.T) {
	cases := []struct {
		name  string
		build func(s stream.Stream[string, string])
		want  []string
	}{
		{"Aggregate: no value serde", func(s stream.Stream[string, string]) {
			stream.Aggregate(s.GroupByKey(), func() noSerde { return 0 }, func(string, string, noSerde) noSerde { return 0 })
		}, []string{`stream: aggregate "from-in-aggregate": no value serde`, "noSerde"}},
		{"Aggregate Named: no value serde", func(s stream.Stream[string, string]) {
			stream.Aggregate(s.GroupByKey(), func() noSerde { return 0 }, func(string, string, noSerde) noSerde { return 0 }, stream.Named("totals"))
		}, []string{`stream: aggregate "totals": no value serde`}},
		{"Aggregate: wrong value serde", func(s stream.Stream[string, string]) {
			stream.Aggregate(s.GroupByKey(), func() int64 { return 0 }, func(string, string, int64) int64 { return 0 }, stream.WithValueSerde(sS))
		}, []string{`stream: aggregate "from-in-aggregate": the value serde String does not encode int64`}},
		{"Count: wrong value serde", func(s stream.Stream[string, string]) {
			s.GroupByKey().Count(stream.WithValueSerde(sS))
		}, []string{`aggregate "from-in-count": the value serde String does not encode int64`}},
		{"GroupBy: no key serde", func(s stream.Stream[string, string]) {
			stream.GroupBy(s, func(string, string) noSerde { return 0 }).Count()
		}, []string{`stream: group-by-key of "from-in-selectkey": no key serde`, "noSerde"}},
		{"GroupByKey: wrong key serde", func(s stream.Stream[string, string]) {
			s.GroupByKey(stream.WithKeySerde(sI64)).Count()
		}, []string{`group-by-key of "from-in": the key serde Int64 does not encode string`}},
		{"Map then GroupByKey: no value serde", func(s stream.Stream[string, string]) {
			stream.Map(s, func(k, v string) (string, noSerde) { return k, 0 }).GroupByKey().Count()
		}, []string{`group-by-key of "from-in-map": no value serde`}},
		{"Cogroup: no value serde", func(s stream.Stream[string, string]) {
			stream.Cogroup(s.GroupByKey(), func(string, string, noSerde) noSerde { return 0 }).Aggregate(func() noSerde { return 0 }, stream.Named("co"))
		}, []string{`stream: cogroup "co": no value serde`}},
		{"Materialized: bad store name", func(s stream.Stream[string, string]) {
			s.GroupByKey().Count(stream.Materialized("my counts"))
		}, []string{`store "my counts"`}},
		{"two aggregations, one store", func(s stream.Stream[string, string]) {
			g := s.GroupByKey()
			g.Count(stream.Materialized("s"))
			g.Reduce(func(a, v string) string { return v }, stream.Materialized("s"))
		}, []string{`store "s" is declared twice`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := topology.NewBuilder()
			tc.build(stream.From[string, string](b, "in"))
			wantErrContains(t, buildErr(t, b), tc.want...)
		})
	}
}

func TestAggregationNilFunctionsAreBuildErrors(t *testing.T) {
	type str = stream.Stream[string, string]
	concat := func(_ string, v, a string) string { return a + v }
	cases := []struct {
		name  string
		node  string
		build func(s str)
	}{
		{"GroupBy", "from-in-selectkey", func(s str) { stream.GroupBy[string, string, string](s, nil).Count() }},
		{"Reduce", "from-in-reduce", func(s str) { s.GroupByKey().Reduce(nil) }},
		{"Aggregate init", "from-in-aggregate", func(s str) { stream.Aggregate(s.GroupByKey(), nil, concat) }},
		{"Aggregate fn", "from-in-aggregate", func(s str) {
			stream.Aggregate[string, string, string](s.GroupByKey(), func() string { return "" }, nil)
		}},
		{"Cogroup fn", "co-cogroup-0", func(s str) {
			stream.Cogroup[string, string, string](s.GroupByKey(), nil).Aggregate(func() string { return "" }, stream.Named("co"))
		}},
		{"CogroupWith fn", "co-cogroup-1", func(s str) {
			c := stream.Cogroup(s.GroupByKey(), concat)
			stream.CogroupWith[string, string, string](c, s.GroupByKey(), nil).Aggregate(func() string { return "" }, stream.Named("co"))
		}},
		{"Cogrouped.Aggregate init", "co", func(s str) {
			stream.Cogroup(s.GroupByKey(), concat).Aggregate(nil, stream.Named("co"))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := topology.NewBuilder()
			tc.build(stream.From[string, string](b, "in"))
			wantErrContains(t, buildErr(t, b), fmt.Sprintf("stream: operator %q: its function is nil", tc.node))
		})
	}
}
