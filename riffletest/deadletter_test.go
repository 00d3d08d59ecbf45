package riffletest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/riffle-streams/riffle/riffletest"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/stream"
	"github.com/riffle-streams/riffle/topology"
)

// TestDeadLetter checks that WithDeadLetter sends a record a source cannot
// decode to the dead-letter topic as it was read, with the error and its
// origin in headers, counts it, and goes on; and that a topology reading
// the dead-letter topic processes what reaches it.
func TestDeadLetter(t *testing.T) {
	b := topology.NewBuilder()
	stream.From[string, int64](b, "in").To("out")
	stream.From[string, string](b, "dlq", stream.WithValueSerde(serde.String())).
		GroupByKey(stream.Named("by-key")).Count(stream.Named("dead"))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := riffletest.New(topo, riffletest.WithDeadLetter("dlq"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	good, _ := serde.Int64().Encode(7)
	at := time.UnixMilli(1_000).UTC()
	for i, v := range [][]byte{good, []byte("seven"), good} {
		if err := d.PipeRaw("in", []byte("k"), v, at.Add(time.Duration(i)*time.Second), topology.Header{Key: "trace", Value: []byte("t1")}); err != nil {
			t.Fatalf("pipe %d: %v", i, err)
		}
	}
	if n := d.Pending("out"); n != 2 {
		t.Errorf("out holds %d records, want the 2 good ones", n)
	}
	if n := d.SkippedRecords(); n != 1 {
		t.Errorf("skipped %d records, want 1", n)
	}
	dl, ok := d.ReadRaw("dlq")
	if !ok {
		t.Fatal("nothing reached the dead-letter topic")
	}
	if string(dl.Key) != "k" || string(dl.Value) != "seven" || !dl.Timestamp.Equal(at.Add(time.Second)) {
		t.Errorf("dead letter %q=%q at %v, want the record as read", dl.Key, dl.Value, dl.Timestamp)
	}
	h := map[string]string{}
	for _, x := range dl.Headers {
		h[x.Key] = string(x.Value)
	}
	if h["trace"] != "t1" || h[topology.HeaderDeadLetterTopic] != "in" || h[topology.HeaderDeadLetterPartition] != "0" ||
		h[topology.HeaderDeadLetterOffset] != "1" || !strings.Contains(h[topology.HeaderDeadLetterError], "cannot decode value of in[0]@1") {
		t.Errorf("dead letter headers %v", h)
	}
	if _, ok := d.ReadRaw("dlq"); ok {
		t.Error("more than one record reached the dead-letter topic")
	}
	kv, err := d.KeyValueStore("dead")
	if err != nil {
		t.Fatal(err)
	}
	n, err := kv.Get([]byte("k"))
	if err != nil || n == nil {
		t.Fatalf("the topology did not count the dead letter: %v", err)
	}
	if c, _ := serde.Int64().Decode(n); c != 1 {
		t.Errorf("dead letters counted %d, want 1", c)
	}
}

func TestDeadLetterEmptyTopic(t *testing.T) {
	b := topology.NewBuilder()
	stream.From[string, string](b, "in").To("out")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := riffletest.New(topo, riffletest.WithDeadLetter("")); err == nil || !strings.Contains(err.Error(), "WithDeadLetter") {
		t.Errorf("New with an empty dead-letter topic: %v, want an error naming WithDeadLetter", err)
	}
}
