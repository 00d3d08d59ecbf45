package stream_test

import (
	"strings"
	"testing"
	"time"

	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/stream"
	"github.com/riffle-streams/riffle/topology"
)

// upperTwice forwards each value upper-cased, twice, under a key of its
// own making, which ProcessValues must replace by the record's key. If
// punctuate is set, it also forwards from a wall-clock punctuation and
// keeps the error that forward returns.
type upperTwice struct {
	ctx       topology.Context[string, string]
	punctuate bool
	punctErr  *error
}

func (p *upperTwice) Init(ctx topology.Context[string, string]) error {
	p.ctx = ctx
	if p.punctuate {
		_, err := ctx.Schedule(time.Second, topology.WallClockTime, func(ts time.Time) error {
			*p.punctErr = ctx.Forward(topology.Record[string, string]{Key: "tick", Value: "tick", Timestamp: ts})
			return nil
		})
		return err
	}
	return nil
}

func (p *upperTwice) Process(r topology.Record[string, string]) error {
	for range 2 {
		if err := p.ctx.Forward(topology.Record[string, string]{Key: "other-" + r.Key, Value: strings.ToUpper(r.Value), Timestamp: r.Timestamp}); err != nil {
			return err
		}
	}
	return nil
}

func (p *upperTwice) Close() error { return nil }

// TestProcessValuesKeepsKeys checks that ProcessValues forwards under the
// processed record's key, and that a grouping after it needs no
// repartition topic, where one after Process does.
func TestProcessValuesKeepsKeys(t *testing.T) {
	build := func(values bool) *topology.Builder {
		b := topology.NewBuilder()
		src := stream.From[string, string](b, "in")
		supplier := func() topology.Processor[string, string, string, string] { return &upperTwice{} }
		var out stream.Stream[string, string]
		if values {
			out = stream.ProcessValues(src, supplier, stream.Named("upper"))
		} else {
			out = stream.Process(src, supplier, stream.Named("upper"))
		}
		out.To("out")
		stream.ToStream(out.GroupByKey(stream.Named("by-key")).Count(stream.Named("counts"))).To("counts-out")
		return b
	}
	if topics := mustBuild(t, build(false)).InternalTopics(); !hasRepartition(topics) {
		t.Fatalf("Process then GroupByKey: internal topics %+v, want a repartition topic", topics)
	}
	b := build(true)
	if topics := mustBuild(t, b).InternalTopics(); hasRepartition(topics) {
		t.Errorf("ProcessValues then GroupByKey: internal topics %+v, want no repartition topic", topics)
	}
	d := newDriver(t, b)
	pipeAll(t, strIn(d, "in"), kv("a", "x"), kv("b", "y"), kv("a", "z"))
	wantKVs(t, "out", readStr(t, d, "out"), []skv{kv("a", "X"), kv("a", "X"), kv("b", "Y"), kv("b", "Y"), kv("a", "Z"), kv("a", "Z")})
	got := readKVs(t, d, "counts-out", serde.String(), serde.Int64())
	wantKVs(t, "counts-out", got, []topology.KeyValue[string, int64]{
		topology.KV("a", int64(1)), topology.KV("a", int64(2)), topology.KV("b", int64(1)), topology.KV("b", int64(2)),
		topology.KV("a", int64(3)), topology.KV("a", int64(4)),
	})
}

func hasRepartition(topics []topology.InternalTopic) bool {
	for _, tp := range topics {
		if strings.HasSuffix(tp.Name, "-repartition") {
			return true
		}
	}
	return false
}

// TestProcessValuesForwardOutsideProcess checks that a record forwarded
// from a punctuation, with no processed record's key to keep, is refused
// with an error naming the operator, and reaches nothing.
func TestProcessValuesForwardOutsideProcess(t *testing.T) {
	var punctErr error
	b := topology.NewBuilder()
	src := stream.From[string, string](b, "in")
	stream.ProcessValues(src, func() topology.Processor[string, string, string, string] {
		return &upperTwice{punctuate: true, punctErr: &punctErr}
	}, stream.Named("upper")).To("out")
	d := newDriver(t, b)
	pipeAll(t, strIn(d, "in"), kv("a", "x"))
	if err := d.AdvanceWallClock(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	if punctErr == nil || !strings.Contains(punctErr.Error(), `"upper"`) {
		t.Errorf("forward from a punctuation: %v, want an error naming the operator", punctErr)
	}
	wantKVs(t, "out", readStr(t, d, "out"), []skv{kv("a", "X"), kv("a", "X")})
}

// TestProcessValuesNilSupplier checks that a nil supplier fails Build.
func TestProcessValuesNilSupplier(t *testing.T) {
	b := topology.NewBuilder()
	stream.ProcessValues[string, string, string](stream.From[string, string](b, "in"), nil, stream.Named("upper")).To("out")
	if _, err := b.Build(); err == nil || !strings.Contains(err.Error(), `"upper"`) {
		t.Errorf("Build: %v, want an error naming the operator", err)
	}
}
