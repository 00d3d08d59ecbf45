package stream_test

import (
	"fmt"
	"testing"

	"github.com/riffle-streams/riffle/riffletest"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/stream"
	"github.com/riffle-streams/riffle/table"
	"github.com/riffle-streams/riffle/topology"
)

// tombstoneOf pipes a record of key with nil value bytes into topic.
func tombstoneOf(t *testing.T, d *riffletest.Driver, topic, key string) {
	t.Helper()
	if err := d.PipeRaw(topic, []byte(key), nil, d.WallClock()); err != nil {
		t.Fatalf("PipeRaw(%q, %q, nil): %v", topic, key, err)
	}
}

// ToStream of a table whose values can be nil forwards a deletion as a
// record with a nil value, which a sink writes as a tombstone.
func TestToStreamForwardsNilForDeletions(t *testing.T) {
	eachBackend(t, func(t *testing.T, opt riffletest.Option) {
		nullable := serde.Nullable(serde.String())
		b := topology.NewBuilder()
		tb := table.From[string, *string](b, "in", table.WithValueSerde(nullable))
		s := stream.ToStream(tb)
		if s.Name() != "table-in-tostream" {
			t.Errorf("Name() = %q", s.Name())
		}
		var peeked []string
		s.Peek(func(k string, v *string) { peeked = append(peeked, k+"="+showAny(v)) }).To("out")
		d := newDriver(t, b, opt)
		in := riffletest.Input(d, "in", sS, nullable)
		pipeKV(t, in, "a", ptr("1"))
		pipeKV(t, in, "a", ptr("2"))
		tombstoneOf(t, d, "in", "a")
		pipeKV(t, in, "b", ptr(""))
		pipeKV(t, in, "b", nil) // a nil value deletes too
		pipeKV(t, in, "b", nil) // nothing left to delete: nothing
		wantStrs(t, "peeked", peeked, []string{"a=1", "a=2", "a=nil", "b=", "b=nil"})
		wantStrs(t, "out", drain(t, d, "out", sS, nullable), []string{"a=1", "a=2", "a=<tombstone>", "b=", "b=<tombstone>"})
		wantSkips(t, d, map[topology.SkipKey]int64{})
	})
}

// ToStream of a table of a value type with no nil cannot carry a deletion:
// it skips and counts it.
func TestToStreamSkipsDeletionsOfValueTypes(t *testing.T) {
	eachBackend(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		tb := table.From[string, int64](b, "in")
		stream.ToStream(tb, stream.Named("updates")).To("out")
		d := newDriver(t, b, opt)
		in := riffletest.Input(d, "in", sS, sI64)
		pipeKV(t, in, "a", 1)
		tombstoneOf(t, d, "in", "a")
		pipeKV(t, in, "a", 0)
		tombstoneOf(t, d, "in", "a")
		tombstoneOf(t, d, "in", "a") // absent: not even a deletion
		wantStrs(t, "out", drain(t, d, "out", sS, sI64), []string{"a=1", "a=0"})
		wantSkips(t, d, map[topology.SkipKey]int64{{Node: "updates", Reason: "deletion of a value type with no nil"}: 2})
		if n := d.SkippedRecords(); n != 2 {
			t.Errorf("SkippedRecords() = %d, want 2", n)
		}
	})
}

// Changes forwards every change, deletions included, with the old value.
func TestChangesForwardsDeletions(t *testing.T) {
	eachBackend(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		tb := table.From[string, int64](b, "in")
		ch := stream.Changes(tb)
		if ch.Name() != "table-in-changes" {
			t.Errorf("Name() = %q", ch.Name())
		}
		var got []string
		ch.Foreach(func(k string, c table.Change[int64]) { got = append(got, k+": "+showChg(c)) })
		// A Change has a default serde (JSON), so the changes can be
		// written out as they are.
		ch.To("changes")
		d := newDriver(t, b, opt)
		in := riffletest.Input(d, "in", sS, sI64)
		pipeKV(t, in, "a", 1)
		pipeKV(t, in, "a", 2)
		tombstoneOf(t, d, "in", "a")
		wantStrs(t, "changes", got, []string{"a: _->1", "a: 1->2", "a: 2->_"})
		recs := readKVs(t, d, "changes", sS, serde.JSON[table.Change[int64]]())
		wantKVs(t, "changes topic", recs, []topology.KeyValue[string, table.Change[int64]]{
			topology.KV("a", table.Change[int64]{New: 1, HasNew: true}),
			topology.KV("a", table.Change[int64]{New: 2, HasNew: true, Old: 1, HasOld: true}),
			topology.KV("a", table.Change[int64]{Old: 2, HasOld: true}),
		})
	})
}

// Deletions travel through a chain of table operators to the stream at its
// end: as nil for a nillable type, skipped and counted for int64, as they
// are through Changes.
func TestTableChainToStream(t *testing.T) {
	eachBackend(t, func(t *testing.T, opt riffletest.Option) {
		nullable := serde.Nullable(serde.String())
		b := topology.NewBuilder()
		tb := table.From[string, int64](b, "in")
		big := tb.Filter(func(_ string, v int64) bool { return v >= 10 })
		labels := table.MapValues(big, func(v int64) *string { s := fmt.Sprintf("#%d", v); return &s }, table.WithValueSerde(nullable))
		doubled := table.MapValues(big, func(v int64) int64 { return 2 * v })
		labels.To("labels-table")
		stream.ToStream(labels).To("labels")
		stream.ToStream(doubled).To("doubled")
		var changes []string
		stream.Changes(doubled).Foreach(func(k string, c table.Change[int64]) { changes = append(changes, k+": "+showChg(c)) })
		d := newDriver(t, b, opt)
		in := riffletest.Input(d, "in", sS, sI64)

		pipeKV(t, in, "a", 10)
		pipeKV(t, in, "b", 1)
		pipeKV(t, in, "a", 20)
		pipeKV(t, in, "a", 5)        // filtered out: a deletion downstream
		tombstoneOf(t, d, "in", "b") // b never passed: nothing
		pipeKV(t, in, "c", 30)
		tombstoneOf(t, d, "in", "c") // deleted at the source

		wantStrs(t, "labels (table To)", drain(t, d, "labels-table", sS, nullable), []string{
			"a=#10", "a=#20", "a=<tombstone>", "c=#30", "c=<tombstone>",
		})
		wantStrs(t, "labels (ToStream)", drain(t, d, "labels", sS, nullable), []string{
			"a=#10", "a=#20", "a=<tombstone>", "c=#30", "c=<tombstone>",
		})
		wantStrs(t, "doubled (ToStream)", drain(t, d, "doubled", sS, sI64), []string{"a=20", "a=40", "c=60"})
		wantStrs(t, "doubled (Changes)", changes, []string{"a: _->20", "a: 20->40", "a: 40->_", "c: _->60", "c: 60->_"})
		wantSkips(t, d, map[topology.SkipKey]int64{
			{Node: "table-in-filter-mapvalues-2-tostream", Reason: "deletion of a value type with no nil"}: 2,
		})
	})
}

// A stream aggregation's table goes on as a table: filtered, mapped and
// written with its To, and back to a stream.
func TestAggregationAsTable(t *testing.T) {
	eachBackend(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		counts := stream.From[string, string](b, "words").GroupByKey().Count()
		frequent := counts.Filter(func(_ string, n int64) bool { return n >= 2 })
		frequent.To("frequent")
		stream.ToStream(table.MapValues(frequent, func(n int64) string { return fmt.Sprint(n, "x") })).To("frequent-text")
		d := newDriver(t, b, opt)
		pipeWords(t, strIn(d, "words"), "a b a b a c")
		wantStrs(t, "frequent", drain(t, d, "frequent", sS, sI64), []string{"a=2", "b=2", "a=3"})
		wantStrs(t, "frequent-text", drain(t, d, "frequent-text", sS, sS), []string{"a=2x", "b=2x", "a=3x"})
	})
}

// A stream aggregation's output topic read back as a table holds the
// latest aggregate of each key.
func TestAggregationToTopicAndBack(t *testing.T) {
	eachBackend(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		stream.From[string, string](b, "words").GroupByKey().Count().To("counts")
		latest := table.From[string, int64](b, "counts", table.Materialized("latest-counts"))
		var seen []string
		stream.Changes(latest).Foreach(func(k string, c table.Change[int64]) { seen = append(seen, k+": "+showChg(c)) })
		topo := mustBuild(t, b)
		if n := len(topo.SubTopologies()); n != 2 {
			t.Errorf("%d sub-topologies, want 2", n)
		}
		d, err := riffletest.New(topo, opt)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		pipeWords(t, strIn(d, "words"), "x x y")
		wantStrs(t, "seen", seen, []string{"x: _->1", "x: 1->2", "y: _->1"})
		wantStrs(t, "store", dumpStore(t, d, "latest-counts", sS, sI64), []string{"x=2", "y=1"})
	})
}
