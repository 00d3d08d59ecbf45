package table_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/riffle-streams/riffle/internal/testutil"
	"github.com/riffle-streams/riffle/riffletest"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/table"
	"github.com/riffle-streams/riffle/topology"
)

// ---- helpers shared by the table_test files ----

// forBackends runs fn once with every store on the in-memory backend and once
// with every store on the persistent one.
func forBackends(t *testing.T, fn func(t *testing.T, opt riffletest.Option)) {
	t.Helper()
	for _, be := range []state.Backend{state.InMemoryBackend, state.PersistentBackend} {
		t.Run(be.String(), func(t *testing.T) { fn(t, riffletest.WithBackend(be)) })
	}
}

// The helpers the DSL packages' tests share.
var (
	newDriver       = testutil.NewDriver
	mustBuild       = testutil.MustBuild
	buildErr        = testutil.BuildErr
	wantErrContains = testutil.WantErrContains
	want            = testutil.WantStrings
	wantSkipped     = testutil.WantSkips
	internalTopics  = testutil.InternalTopics
)

// storeContents returns the store named name's entries as "key=value".
func storeContents[K, V any](t *testing.T, d *riffletest.Driver, name string, ks serde.Serde[K], vs serde.Serde[V]) []string {
	t.Helper()
	return testutil.StoreEntries(t, d, name, ks, vs, show)
}

// pipe pipes k=v into in, failing the test on error.
func pipe[K, V any](t *testing.T, in *riffletest.InputTopic[K, V], k K, v V) {
	t.Helper()
	if err := in.Pipe(k, v); err != nil {
		t.Fatalf("Pipe(%v, %v): %v", k, v, err)
	}
}

// tombstone pipes a record of key with nil value bytes into topic.
func tombstone(t *testing.T, d *riffletest.Driver, topic string, key []byte) {
	t.Helper()
	if err := d.PipeRaw(topic, key, nil, d.WallClock()); err != nil {
		t.Fatalf("PipeRaw(%q, %q, nil): %v", topic, key, err)
	}
}

// show formats a value, following pointers, "nil" for a nil one.
func show(v any) string {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return "nil"
		}
		return fmt.Sprint(rv.Elem().Interface())
	}
	return fmt.Sprint(v)
}

// showChange formats a change as "old->new", "_" standing for no value.
func showChange[V any](c table.Change[V]) string {
	side := func(v V, has bool) string {
		if !has {
			return "_"
		}
		return show(v)
	}
	return side(c.Old, c.HasOld) + "->" + side(c.New, c.HasNew)
}

// recorder records every change a table's node forwards.
type recorder[K, V any] struct {
	ctx topology.Context[K, table.Change[V]]
	got *[]string
}

func (r *recorder[K, V]) Init(ctx topology.Context[K, table.Change[V]]) error {
	r.ctx = ctx
	return nil
}
func (r *recorder[K, V]) Close() error { return nil }
func (r *recorder[K, V]) Process(rec topology.Record[K, table.Change[V]]) error {
	*r.got = append(*r.got, fmt.Sprintf("%s: %s", show(rec.Key), showChange(rec.Value)))
	return nil
}

// recordChanges attaches a processor to t that records its changes as
// "key: old->new".
func recordChanges[K, V any](t table.Table[K, V]) *[]string {
	got := &[]string{}
	topology.AddProcessor(t.Builder(), t.Name()+"-recorder", func() topology.Processor[K, table.Change[V], K, table.Change[V]] {
		return &recorder[K, V]{got: got}
	}, t.Name())
	return got
}

// takeChanges returns what rec recorded and empties it.
func takeChanges(rec *[]string) []string {
	out := *rec
	*rec = nil
	return out
}

// readTopic reads every pending record of topic as "key=value", or
// "key=<tombstone>" for nil value bytes.
func readTopic[K, V any](t *testing.T, d *riffletest.Driver, topic string, ks serde.Serde[K], vs serde.Serde[V]) []string {
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
			out = append(out, show(k)+"=<tombstone>")
			continue
		}
		v, err := vs.Decode(raw.Value)
		if err != nil {
			t.Fatalf("%s offset %d: decode value: %v", topic, raw.Offset, err)
		}
		out = append(out, show(k)+"="+show(v))
	}
}

// changelog reads every pending record of the changelog of store, as
// readTopic does.
func changelog[K, V any](t *testing.T, d *riffletest.Driver, store string, ks serde.Serde[K], vs serde.Serde[V]) []string {
	t.Helper()
	return readTopic(t, d, "riffletest-"+store+"-changelog", ks, vs)
}

func ptr[T any](v T) *T { return &v }

var (
	str   = serde.String()
	i64   = serde.Int64()
	epoch = time.UnixMilli(0).UTC()
)

// ---- From ----

func TestFromUpdatesAndTombstones(t *testing.T) {
	forBackends(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		tb := table.From[string, string](b, "prices")
		if tb.Name() != "table-prices" || tb.StoreName() != "table-prices" {
			t.Errorf("Name() = %q, StoreName() = %q; want both table-prices", tb.Name(), tb.StoreName())
		}
		if tb.Builder() != b || tb.KeySerde() == nil || tb.ValueSerde() == nil {
			t.Errorf("Builder or serdes not kept: %v %v", tb.KeySerde(), tb.ValueSerde())
		}
		changes := recordChanges(tb)
		tb.To("out")
		d := newDriver(t, b, opt)
		in := riffletest.Input(d, "prices", str, str)

		pipe(t, in, "apple", "1")
		pipe(t, in, "pear", "2")
		pipe(t, in, "apple", "3")
		pipe(t, in, "fig", "") // an empty value is a value, not a deletion
		tombstone(t, d, "prices", []byte("apple"))
		tombstone(t, d, "prices", []byte("kiwi"))  // absent: nothing happens
		tombstone(t, d, "prices", []byte("apple")) // absent by now
		pipe(t, in, "fig", "4")

		want(t, "changes", takeChanges(changes), []string{
			"apple: _->1", "pear: _->2", "apple: 1->3", "fig: _->", "apple: 3->_", "fig: ->4",
		})
		want(t, "out", readTopic(t, d, "out", str, str), []string{
			"apple=1", "pear=2", "apple=3", "fig=", "apple=<tombstone>", "fig=4",
		})
		want(t, "store", storeContents(t, d, "table-prices", str, str), []string{"fig=4", "pear=2"})
		want(t, "changelog", changelog(t, d, "table-prices", str, str), []string{
			"apple=1", "pear=2", "apple=3", "fig=", "apple=<tombstone>", "fig=4",
		})
		ro, _ := d.KeyValueStore("table-prices")
		if v, ok, err := state.TypedRead(ro, str, str).Get("apple"); ok || err != nil {
			t.Errorf("Get(apple) after its deletion = %q, %v, %v", v, ok, err)
		}
		wantSkipped(t, d, map[topology.SkipKey]int64{})
	})
}

func TestFromNullKeySkipped(t *testing.T) {
	forBackends(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		tb := table.From[[]byte, string](b, "in")
		changes := recordChanges(tb)
		tb.To("out")
		d := newDriver(t, b, opt)

		if err := d.PipeRaw("in", nil, []byte("v"), epoch); err != nil {
			t.Fatalf("PipeRaw null key: %v", err)
		}
		if err := d.PipeRaw("in", nil, nil, epoch); err != nil {
			t.Fatalf("PipeRaw null key tombstone: %v", err)
		}
		if err := d.PipeRaw("in", []byte("k"), []byte("v"), epoch); err != nil {
			t.Fatalf("PipeRaw: %v", err)
		}
		want(t, "changes", takeChanges(changes), []string{"[107]: _->v"})
		want(t, "out", readTopic(t, d, "out", serde.ByteArray(), str), []string{"[107]=v"})
		wantSkipped(t, d, map[topology.SkipKey]int64{{Node: "table-in", Reason: "null key"}: 2})
		if n := d.SkippedRecords(); n != 2 {
			t.Errorf("SkippedRecords() = %d, want 2", n)
		}
		want(t, "store", storeContents(t, d, "table-in", serde.ByteArray(), str), []string{"[107]=v"})
	})
}

func TestFromEmptyKeyIsNotNull(t *testing.T) {
	forBackends(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		table.From[[]byte, string](b, "in").To("out")
		d := newDriver(t, b, opt)
		if err := d.PipeRaw("in", []byte{}, []byte("v"), epoch); err != nil {
			t.Fatalf("PipeRaw empty key: %v", err)
		}
		want(t, "out", readTopic(t, d, "out", serde.ByteArray(), str), []string{"[]=v"})
		wantSkipped(t, d, map[topology.SkipKey]int64{})
	})
}

func TestFromNullableValues(t *testing.T) {
	forBackends(t, func(t *testing.T, opt riffletest.Option) {
		nullable := serde.Nullable(serde.String())
		b := topology.NewBuilder()
		tb := table.From[string, *string](b, "in", table.WithValueSerde(nullable), table.Named("names"))
		if tb.Name() != "names" || tb.StoreName() != "names" {
			t.Errorf("Named: Name() = %q, StoreName() = %q", tb.Name(), tb.StoreName())
		}
		changes := recordChanges(tb)
		tb.To("out")
		d := newDriver(t, b, opt)
		in := riffletest.Input(d, "in", str, nullable)

		pipe(t, in, "a", ptr("x"))
		pipe(t, in, "a", nil) // a nil value deletes
		pipe(t, in, "a", nil) // nothing left to delete
		pipe(t, in, "b", ptr(""))
		pipe(t, in, "b", ptr("y"))

		want(t, "changes", takeChanges(changes), []string{"a: _->x", "a: x->_", "b: _->", "b: ->y"})
		want(t, "out", readTopic(t, d, "out", str, nullable), []string{"a=x", "a=<tombstone>", "b=", "b=y"})
		want(t, "store", storeContents(t, d, "names", str, nullable), []string{"b=y"})
	})
}

// A table of a value type with no nil still takes deletions: nil bytes in
// its topic.
func TestFromInt64Deletes(t *testing.T) {
	forBackends(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		tb := table.From[string, int64](b, "in")
		changes := recordChanges(tb)
		tb.To("out")
		d := newDriver(t, b, opt)
		in := riffletest.Input(d, "in", str, i64)

		pipe(t, in, "a", 0) // zero is a value
		pipe(t, in, "b", 2)
		tombstone(t, d, "in", []byte("a"))
		tombstone(t, d, "in", []byte("a"))
		pipe(t, in, "b", 3)
		tombstone(t, d, "in", []byte("b"))

		want(t, "changes", takeChanges(changes), []string{"a: _->0", "b: _->2", "a: 0->_", "b: 2->3", "b: 3->_"})
		want(t, "out", readTopic(t, d, "out", str, i64), []string{"a=0", "b=2", "a=<tombstone>", "b=3", "b=<tombstone>"})
		want(t, "store", storeContents(t, d, "table-in", str, i64), nil)
		want(t, "changelog", changelog(t, d, "table-in", str, i64), []string{
			"a=0", "b=2", "a=<tombstone>", "b=3", "b=<tombstone>",
		})
	})
}

// To writes a deletion as a tombstone: nil value bytes, not empty ones.
func TestToWritesNilBytesForDeletion(t *testing.T) {
	forBackends(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		table.From[string, string](b, "in").To("out")
		d := newDriver(t, b, opt)
		pipe(t, riffletest.Input(d, "in", str, str), "k", "")
		tombstone(t, d, "in", []byte("k"))
		first, ok1 := d.ReadRaw("out")
		second, ok2 := d.ReadRaw("out")
		if !ok1 || !ok2 {
			t.Fatalf("want two records out, got %v %v", ok1, ok2)
		}
		if first.Value == nil || len(first.Value) != 0 {
			t.Errorf("empty value written as %#v, want empty non-nil bytes", first.Value)
		}
		if second.Value != nil {
			t.Errorf("deletion written as %#v, want nil bytes", second.Value)
		}
		if string(second.Key) != "k" {
			t.Errorf("tombstone key %q", second.Key)
		}
	})
}

func TestFromTimestampsAndHeaders(t *testing.T) {
	forBackends(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		table.From[string, string](b, "in").To("out")
		d := newDriver(t, b, opt)
		h := topology.Header{Key: "trace", Value: []byte("1")}
		if err := riffletest.Input(d, "in", str, str).PipeAt("k", "v", time.UnixMilli(42), h); err != nil {
			t.Fatal(err)
		}
		if err := d.PipeRaw("in", []byte("k"), nil, time.UnixMilli(43), h); err != nil {
			t.Fatal(err)
		}
		for _, wantTS := range []int64{42, 43} {
			raw, ok := d.ReadRaw("out")
			if !ok {
				t.Fatalf("no record out")
			}
			if raw.Timestamp.UnixMilli() != wantTS || len(raw.Headers) != 1 || raw.Headers[0].Key != "trace" {
				t.Errorf("out record at %v with headers %v; want %dms and the trace header", raw.Timestamp, raw.Headers, wantTS)
			}
		}
	})
}

func TestFromMaterialized(t *testing.T) {
	b := topology.NewBuilder()
	tb := table.From[string, string](b, "in", table.Materialized("prices", state.InMemory()))
	if tb.Name() != "table-in" || tb.StoreName() != "prices" {
		t.Errorf("Name() = %q, StoreName() = %q; want table-in, prices", tb.Name(), tb.StoreName())
	}
	unlogged := table.From[string, string](b, "in2", table.Materialized("quiet", state.WithoutLogging()))
	topo := mustBuild(t, b)
	spec, ok := topo.Store("prices")
	if !ok || spec.Backend != state.InMemoryBackend || !spec.Logged {
		t.Errorf("store prices: %+v, %v; want in memory and logged", spec, ok)
	}
	if spec, ok := topo.Store(unlogged.StoreName()); !ok || spec.Logged || spec.Backend != state.PersistentBackend {
		t.Errorf("store quiet: %+v, %v; want persistent and not logged", spec, ok)
	}
	want(t, "changelogs", internalTopics(topo, topology.ChangelogTopic), []string{"prices-changelog"})
	want(t, "repartitions", internalTopics(topo, topology.RepartitionTopic), nil)

	forBackends(t, func(t *testing.T, opt riffletest.Option) {
		d, err := riffletest.New(topo, opt)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		pipe(t, riffletest.Input(d, "in", str, str), "k", "v")
		pipe(t, riffletest.Input(d, "in2", str, str), "q", "w")
		want(t, "prices", storeContents(t, d, "prices", str, str), []string{"k=v"})
		want(t, "quiet", storeContents(t, d, "quiet", str, str), []string{"q=w"})
		want(t, "changelog", changelog(t, d, "prices", str, str), []string{"k=v"})
		if n := d.Pending("riffletest-quiet-changelog"); n != 0 {
			t.Errorf("an unlogged store wrote %d changelog records", n)
		}
		if _, err := d.KeyValueStore("table-in"); err == nil {
			t.Errorf("a store named after the node exists besides the Materialized one")
		}
	})
}

// ---- Filter, FilterNot ----

func TestFilter(t *testing.T) {
	forBackends(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		tb := table.From[string, int64](b, "in")
		big := tb.Filter(func(_ string, v int64) bool { return v >= 10 })
		if big.Name() != "table-in-filter" || big.StoreName() != "" {
			t.Errorf("Name() = %q, StoreName() = %q; want table-in-filter and no store", big.Name(), big.StoreName())
		}
		changes := recordChanges(big)
		big.To("out")
		d := newDriver(t, b, opt)
		in := riffletest.Input(d, "in", str, i64)

		pipe(t, in, "a", 5)                // fails, nothing before: nothing
		pipe(t, in, "a", 15)               // passes: an insert
		pipe(t, in, "a", 20)               // passes, and passed: an update
		pipe(t, in, "a", 3)                // fails, but passed: a deletion
		pipe(t, in, "a", 4)                // neither passes: nothing
		pipe(t, in, "b", 30)               // passes
		tombstone(t, d, "in", []byte("b")) // deletion of a passing value
		tombstone(t, d, "in", []byte("a")) // deletion of a failing value: nothing

		want(t, "changes", takeChanges(changes), []string{"a: _->15", "a: 15->20", "a: 20->_", "b: _->30", "b: 30->_"})
		want(t, "out", readTopic(t, d, "out", str, i64), []string{
			"a=15", "a=20", "a=<tombstone>", "b=30", "b=<tombstone>",
		})
	})
}

func TestFilterNot(t *testing.T) {
	forBackends(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		tb := table.From[string, int64](b, "in")
		small := tb.FilterNot(func(_ string, v int64) bool { return v >= 10 }, table.Named("small"))
		if small.Name() != "small" {
			t.Errorf("Name() = %q, want small", small.Name())
		}
		changes := recordChanges(small)
		small.To("out")
		d := newDriver(t, b, opt)
		in := riffletest.Input(d, "in", str, i64)

		pipe(t, in, "a", 15) // fails the negation: nothing
		pipe(t, in, "a", 5)  // now small: an insert
		pipe(t, in, "a", 6)  // update
		pipe(t, in, "a", 60) // no longer small: deletion
		pipe(t, in, "a", 70) // nothing
		tombstone(t, d, "in", []byte("a"))

		want(t, "changes", takeChanges(changes), []string{"a: _->5", "a: 5->6", "a: 6->_"})
		want(t, "out", readTopic(t, d, "out", str, i64), []string{"a=5", "a=6", "a=<tombstone>"})
	})
}

func TestFilterMaterialized(t *testing.T) {
	forBackends(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		tb := table.From[string, int64](b, "in")
		big := tb.Filter(func(_ string, v int64) bool { return v >= 10 }, table.Materialized("big"))
		if big.StoreName() != "big" {
			t.Errorf("StoreName() = %q, want big", big.StoreName())
		}
		changes := recordChanges(big)
		d := newDriver(t, b, opt)
		in := riffletest.Input(d, "in", str, i64)

		pipe(t, in, "a", 15)
		pipe(t, in, "b", 5)
		pipe(t, in, "c", 50)
		pipe(t, in, "d", 11)
		pipe(t, in, "c", 1) // leaves the filtered table
		pipe(t, in, "b", 12)
		tombstone(t, d, "in", []byte("d"))

		want(t, "changes", takeChanges(changes), []string{
			"a: _->15", "c: _->50", "d: _->11", "c: 50->_", "b: _->12", "d: 11->_",
		})
		want(t, "filtered store", storeContents(t, d, "big", str, i64), []string{"a=15", "b=12"})
		want(t, "source store", storeContents(t, d, "table-in", str, i64), []string{"a=15", "b=12", "c=1"})
		want(t, "changelog", changelog(t, d, "big", str, i64), []string{
			"a=15", "c=50", "d=11", "c=<tombstone>", "b=12", "d=<tombstone>",
		})
	})
}

// ---- MapValues ----

func TestMapValues(t *testing.T) {
	forBackends(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		tb := table.From[string, int64](b, "in")
		labels := table.MapValues(tb, func(v int64) string { return strings.Repeat("*", int(v)) })
		if labels.Name() != "table-in-mapvalues" || labels.StoreName() != "" {
			t.Errorf("Name() = %q, StoreName() = %q", labels.Name(), labels.StoreName())
		}
		changes := recordChanges(labels)
		labels.To("out")
		d := newDriver(t, b, opt)
		in := riffletest.Input(d, "in", str, i64)

		pipe(t, in, "a", 1)
		pipe(t, in, "a", 3)
		pipe(t, in, "b", 0)
		tombstone(t, d, "in", []byte("a"))

		want(t, "changes", takeChanges(changes), []string{"a: _->*", "a: *->***", "b: _->", "a: ***->_"})
		want(t, "out", readTopic(t, d, "out", str, str), []string{"a=*", "a=***", "b=", "a=<tombstone>"})
	})
}

func TestMapValuesMaterialized(t *testing.T) {
	forBackends(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		tb := table.From[string, int64](b, "in")
		doubled := table.MapValues(tb, func(v int64) int64 { return 2 * v }, table.Named("double"), table.Materialized("doubled", state.InMemory()))
		if doubled.Name() != "double" || doubled.StoreName() != "doubled" {
			t.Errorf("Name() = %q, StoreName() = %q", doubled.Name(), doubled.StoreName())
		}
		changes := recordChanges(doubled)
		doubled.To("out")
		d := newDriver(t, b, opt)
		in := riffletest.Input(d, "in", str, i64)

		pipe(t, in, "a", 1)
		pipe(t, in, "b", 2)
		pipe(t, in, "a", 5)
		tombstone(t, d, "in", []byte("b"))

		want(t, "changes", takeChanges(changes), []string{"a: _->2", "b: _->4", "a: 2->10", "b: 4->_"})
		want(t, "out", readTopic(t, d, "out", str, i64), []string{"a=2", "b=4", "a=10", "b=<tombstone>"})
		want(t, "store", storeContents(t, d, "doubled", str, i64), []string{"a=10"})
		want(t, "changelog", changelog(t, d, "doubled", str, i64), []string{"a=2", "b=4", "a=10", "b=<tombstone>"})
	})
}

// A materialized MapValues to a type with a nil deletes the key when fn
// returns nil.
func TestMapValuesMaterializedNilDeletes(t *testing.T) {
	forBackends(t, func(t *testing.T, opt riffletest.Option) {
		nullable := serde.Nullable(serde.String())
		b := topology.NewBuilder()
		tb := table.From[string, string](b, "in")
		nonEmpty := table.MapValues(tb, func(v string) *string {
			if v == "" {
				return nil
			}
			return &v
		}, table.WithValueSerde(nullable), table.Materialized("nonempty"))
		changes := recordChanges(nonEmpty)
		nonEmpty.To("out")
		d := newDriver(t, b, opt)
		in := riffletest.Input(d, "in", str, str)

		pipe(t, in, "a", "x")
		pipe(t, in, "a", "")
		want(t, "changes", takeChanges(changes), []string{"a: _->x", "a: x->_"})
		want(t, "store after the deletion", storeContents(t, d, "nonempty", str, nullable), nil)
		pipe(t, in, "a", "y")
		want(t, "out", readTopic(t, d, "out", str, nullable), []string{"a=x", "a=<tombstone>", "a=y"})
		want(t, "store", storeContents(t, d, "nonempty", str, nullable), []string{"a=y"})
	})
}

// A nil value is a deletion in a table: MapValues returning nil deletes the
// key, whether or not the result is materialized, and the update after it
// has no old value. Downstream operators (Filter, GroupBy) must never be
// handed a nil value as if it were one, as in Kafka Streams, where
// mapValues returning null is a deletion.
func TestMapValuesNilIsDeletion(t *testing.T) {
	forBackends(t, func(t *testing.T, opt riffletest.Option) {
		for _, materialized := range []bool{false, true} {
			t.Run(fmt.Sprint("materialized=", materialized), func(t *testing.T) {
				nullable := serde.Nullable(serde.String())
				b := topology.NewBuilder()
				tb := table.From[string, string](b, "in")
				opts := []table.Option{table.WithValueSerde(nullable)}
				if materialized {
					opts = append(opts, table.Materialized("nonempty"))
				}
				m := table.MapValues(tb, func(v string) *string {
					if v == "" {
						return nil
					}
					return &v
				}, opts...)
				changes := recordChanges(m)
				var selected []string
				counts := table.GroupBy(m, func(k string, v *string) (string, string) {
					selected = append(selected, show(v))
					if v == nil {
						return "NIL", k // never called so, if nil is a deletion
					}
					return *v, k
				}).Count()
				counts.To("counts")
				d := newDriver(t, b, opt)
				in := riffletest.Input(d, "in", str, str)
				pipe(t, in, "a", "x")
				pipe(t, in, "a", "")
				pipe(t, in, "a", "y")
				pipe(t, in, "b", "") // maps to nil: no entry, so no change at all
				want(t, "changes", takeChanges(changes), []string{"a: _->x", "a: x->_", "a: _->y"})
				want(t, "selector saw", selected, []string{"x", "x", "y"})
				want(t, "counts", readTopic(t, d, "counts", str, i64), []string{"x=1", "x=0", "y=1"})
			})
		}
	})
}

// ---- a chain of operators ----

// Deletions travel through a chain of table operators and come out as
// tombstones at the end.
func TestTombstonesThroughChain(t *testing.T) {
	forBackends(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		tb := table.From[string, int64](b, "in")
		even := tb.Filter(func(_ string, v int64) bool { return v%2 == 0 })
		shown := table.MapValues(even, func(v int64) string { return fmt.Sprintf("#%d", v) })
		changes := recordChanges(shown)
		shown.To("out")
		d := newDriver(t, b, opt)
		in := riffletest.Input(d, "in", str, i64)

		pipe(t, in, "a", 2)
		pipe(t, in, "b", 3)
		pipe(t, in, "a", 4)
		tombstone(t, d, "in", []byte("a")) // deleted at the source
		tombstone(t, d, "in", []byte("b")) // b never passed: nothing
		pipe(t, in, "c", 6)
		pipe(t, in, "c", 7) // filtered out: deleted downstream

		want(t, "changes", takeChanges(changes), []string{"a: _->#2", "a: #2->#4", "a: #4->_", "c: _->#6", "c: #6->_"})
		want(t, "out", readTopic(t, d, "out", str, str), []string{
			"a=#2", "a=#4", "a=<tombstone>", "c=#6", "c=<tombstone>",
		})
	})
}

func TestChainWithMaterializedSteps(t *testing.T) {
	forBackends(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		tb := table.From[string, int64](b, "in")
		even := tb.Filter(func(_ string, v int64) bool { return v%2 == 0 }, table.Materialized("even"))
		shown := table.MapValues(even, func(v int64) string { return fmt.Sprint(v) }, table.Materialized("shown"))
		shown.To("out")
		d := newDriver(t, b, opt)
		in := riffletest.Input(d, "in", str, i64)

		pipe(t, in, "a", 2)
		pipe(t, in, "b", 4)
		pipe(t, in, "a", 1)
		tombstone(t, d, "in", []byte("b"))
		pipe(t, in, "c", 8)

		want(t, "out", readTopic(t, d, "out", str, str), []string{"a=2", "b=4", "a=<tombstone>", "b=<tombstone>", "c=8"})
		want(t, "even", storeContents(t, d, "even", str, i64), []string{"c=8"})
		want(t, "shown", storeContents(t, d, "shown", str, str), []string{"c=8"})
	})
}

// ---- build errors ----

type plain int // a type with no default serde

func TestTableBuildErrors(t *testing.T) {
	cases := []struct {
		name  string
		build func(b *topology.Builder)
		want  []string
	}{
		{"From: no key serde", func(b *topology.Builder) {
			table.From[int, string](b, "in")
		}, []string{`table: table "table-in": no key serde`, "type int"}},
		{"From: no value serde", func(b *topology.Builder) {
			table.From[string, plain](b, "in", table.Named("t"))
		}, []string{`table: table "t": no value serde`, "plain"}},
		{"From: wrong value serde", func(b *topology.Builder) {
			table.From[string, string](b, "in", table.WithValueSerde(i64))
		}, []string{`table "table-in": the value serde Int64 does not encode string`}},
		{"Materialized: bad store name", func(b *topology.Builder) {
			table.From[string, string](b, "in", table.Materialized("bad name"))
		}, []string{`store "bad name"`}},
		{"To: no value serde", func(b *topology.Builder) {
			tb := table.From[string, string](b, "in")
			table.MapValues(tb, func(string) plain { return 0 }).To("out")
		}, []string{`table: sink "table-in-mapvalues-to-out": no value serde`}},
		{"To: wrong serde", func(b *topology.Builder) {
			table.From[string, string](b, "in").To("out", table.WithValueSerde(i64))
		}, []string{`sink "table-in-to-out": the value serde Int64 does not encode string`}},
		{"MapValues: wrong serde", func(b *topology.Builder) {
			tb := table.From[string, string](b, "in")
			table.MapValues(tb, func(string) int64 { return 0 }, table.WithValueSerde(str))
		}, []string{`operator "table-in-mapvalues": the value serde String does not encode int64`}},
		{"MapValues Materialized: no value serde", func(b *topology.Builder) {
			tb := table.From[string, string](b, "in")
			table.MapValues(tb, func(string) plain { return 0 }, table.Materialized("m"))
		}, []string{`operator "table-in-mapvalues": no value serde`}},
		{"GroupBy: no key serde", func(b *topology.Builder) {
			tb := table.From[string, string](b, "in")
			table.GroupBy(tb, func(k, v string) (plain, string) { return 0, v }).Count()
		}, []string{`table: group-by "table-in-groupby": no key serde`, "plain"}},
		{"GroupBy: no value serde", func(b *topology.Builder) {
			tb := table.From[string, string](b, "in")
			table.GroupBy(tb, func(k, v string) (string, plain) { return k, 0 }, table.Named("g")).Count()
		}, []string{`table: group-by "g": no value serde`}},
		{"Aggregate: no value serde", func(b *topology.Builder) {
			tb := table.From[string, int64](b, "in")
			g := table.GroupBy(tb, func(k string, v int64) (string, int64) { return k, v })
			table.Aggregate(g, func() plain { return 0 },
				func(_ string, v int64, a plain) plain { return a + plain(v) },
				func(_ string, v int64, a plain) plain { return a - plain(v) }, table.Named("sum"))
		}, []string{`table: aggregate "sum": no value serde`, "plain"}},
		{"Aggregate: wrong value serde", func(b *topology.Builder) {
			tb := table.From[string, int64](b, "in")
			g := table.GroupBy(tb, func(k string, v int64) (string, int64) { return k, v })
			table.Aggregate(g, func() int64 { return 0 },
				func(_ string, v int64, a int64) int64 { return a + v },
				func(_ string, v int64, a int64) int64 { return a - v }, table.WithValueSerde(str))
		}, []string{`aggregate "table-in-groupby-aggregate": the value serde String does not encode int64`}},
		{"Global: no value serde", func(b *topology.Builder) {
			table.Global[string, plain](b, "regions")
		}, []string{`table: global table "global-regions": no value serde`}},
		{"Global: topic also read by a table", func(b *topology.Builder) {
			table.Global[string, string](b, "regions")
			table.From[string, string](b, "regions")
		}, []string{`topic "regions" is read by both global store "global-regions" and source "table-regions-source"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := topology.NewBuilder()
			tc.build(b)
			wantErrContains(t, buildErr(t, b), tc.want...)
		})
	}
}

func TestTableNilFunctionsAreBuildErrors(t *testing.T) {
	type tbl = table.Table[string, int64]
	add := func(_ string, v, a int64) int64 { return a + v }
	cases := []struct {
		name  string
		node  string
		build func(tb tbl)
	}{
		{"Filter", "table-in-filter", func(tb tbl) { tb.Filter(nil).To("out") }},
		{"FilterNot", "table-in-filternot", func(tb tbl) { tb.FilterNot(nil).To("out") }},
		{"MapValues", "table-in-mapvalues", func(tb tbl) { table.MapValues[string, int64, string](tb, nil).To("out") }},
		{"GroupBy", "table-in-groupby", func(tb tbl) {
			table.GroupBy[string, int64, string, int64](tb, nil).Count()
		}},
		{"Aggregate init", "table-in-groupby-aggregate", func(tb tbl) {
			g := table.GroupBy(tb, func(k string, v int64) (string, int64) { return k, v })
			table.Aggregate(g, nil, add, add)
		}},
		{"Aggregate adder", "table-in-groupby-aggregate", func(tb tbl) {
			g := table.GroupBy(tb, func(k string, v int64) (string, int64) { return k, v })
			table.Aggregate(g, func() int64 { return 0 }, nil, add)
		}},
		{"Aggregate subtractor", "table-in-groupby-aggregate", func(tb tbl) {
			g := table.GroupBy(tb, func(k string, v int64) (string, int64) { return k, v })
			table.Aggregate(g, func() int64 { return 0 }, add, nil)
		}},
		{"Reduce adder", "table-in-groupby-reduce", func(tb tbl) {
			g := table.GroupBy(tb, func(k string, v int64) (string, int64) { return k, v })
			g.Reduce(nil, func(a, v int64) int64 { return a - v })
		}},
		{"Reduce subtractor", "table-in-groupby-reduce", func(tb tbl) {
			g := table.GroupBy(tb, func(k string, v int64) (string, int64) { return k, v })
			g.Reduce(func(a, v int64) int64 { return a + v }, nil)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := topology.NewBuilder()
			tc.build(table.From[string, int64](b, "in"))
			wantErrContains(t, buildErr(t, b), fmt.Sprintf("table: operator %q: its function is nil", tc.node))
		})
	}
}
