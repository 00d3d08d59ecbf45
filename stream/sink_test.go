package stream_test

import (
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/riffle-streams/riffle/riffletest"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/stream"
	"github.com/riffle-streams/riffle/topology"
)

// ---- Merge ----

func TestMerge(t *testing.T) {
	b := topology.NewBuilder()
	a := stream.From[string, string](b, "a")
	c := stream.From[string, string](b, "b")
	a.Merge(c).To("out")
	d := newDriver(t, b)
	inA, inB := strIn(d, "a"), strIn(d, "b")
	pipeAll(t, inA, kv("a1", "1"))
	pipeAll(t, inB, kv("b1", "2"))
	pipeAll(t, inB, kv("b2", "3"))
	pipeAll(t, inA, kv("a2", "4"))
	want := []skv{kv("a1", "1"), kv("b1", "2"), kv("b2", "3"), kv("a2", "4")}
	wantKVs(t, "out", readStr(t, d, "out"), want)
}

func TestMergeOfDerivedStreams(t *testing.T) {
	// Both inputs come from the same source: each record reaches the merge
	// once per path it takes, in the order the paths were added.
	b := topology.NewBuilder()
	src := stream.From[string, string](b, "in")
	upper := stream.MapValues(src, strings.ToUpper)
	short := src.Filter(func(k, v string) bool { return len(v) < 3 })
	upper.Merge(short, stream.Named("both")).To("out")
	d := newDriver(t, b)
	pipeAll(t, strIn(d, "in"), kv("k1", "ab"), kv("k2", "abcd"))
	want := []skv{kv("k1", "AB"), kv("k1", "ab"), kv("k2", "ABCD")}
	wantKVs(t, "out", readStr(t, d, "out"), want)
	if !strings.Contains(mustBuild(t, b).Describe(), "Processor: both\n    --> both-to-out\n    <-- from-in-mapvalues\n    <-- from-in-filter\n") {
		t.Errorf("Describe does not show the merge node with both parents:\n%s", mustBuild(t, b).Describe())
	}
}

func TestMergeDifferentBuilders(t *testing.T) {
	b1, b2 := topology.NewBuilder(), topology.NewBuilder()
	a := stream.From[string, string](b1, "a")
	c := stream.From[string, string](b2, "b")
	a.Merge(c).To("out")
	wantErrContains(t, buildErr(t, b1), `merge "from-a-merge": the streams come from different builders`)
	// Named is honoured in the message.
	b3 := topology.NewBuilder()
	stream.From[string, string](b3, "a").Merge(c, stream.Named("m"))
	wantErrContains(t, buildErr(t, b3), `merge "m"`, "different builders")
}

func TestMergeTakesSerdesFromEitherInput(t *testing.T) {
	// *string has no default serde: a Map to *string has none, the source
	// has the one given. The merge takes it from whichever input has it.
	nullable := stream.WithValueSerde(serde.Nullable(serde.String()))
	toPtr := func(k, v string) (string, *string) { return k, &v }
	for _, mappedFirst := range []bool{true, false} {
		b := topology.NewBuilder()
		src := stream.From[string, *string](b, "in", nullable)
		mapped := stream.Map(stream.From[string, string](b, "in2"), toPtr)
		if mappedFirst {
			mapped.Merge(src).To("out")
		} else {
			src.Merge(mapped).To("out")
		}
		d := newDriver(t, b)
		if err := strIn(d, "in2").Pipe("k", "x"); err != nil {
			t.Fatal(err)
		}
		raw, ok := d.ReadRaw("out")
		if !ok || string(raw.Value) != "x" {
			t.Errorf("mappedFirst=%v: out = %q, %v; want x", mappedFirst, raw.Value, ok)
		}
	}
	// Without any input having one, To reports the missing serde.
	b := topology.NewBuilder()
	stream.Map(stream.From[string, string](b, "in"), toPtr).To("out")
	wantErrContains(t, buildErr(t, b), `sink "from-in-map-to-out": no value serde`, "*string")
}

// ---- To ----

func TestToPreservesTimestampsAndHeaders(t *testing.T) {
	chains := []struct {
		name  string
		chain func(stream.Stream[string, string]) stream.Stream[string, string]
	}{
		{"direct", func(s stream.Stream[string, string]) stream.Stream[string, string] { return s }},
		{"Filter", func(s stream.Stream[string, string]) stream.Stream[string, string] {
			return s.Filter(func(string, string) bool { return true })
		}},
		{"MapValues", func(s stream.Stream[string, string]) stream.Stream[string, string] {
			return stream.MapValues(s, strings.ToUpper)
		}},
		{"Map", func(s stream.Stream[string, string]) stream.Stream[string, string] {
			return stream.Map(s, func(k, v string) (string, string) { return k, v })
		}},
		{"SelectKey", func(s stream.Stream[string, string]) stream.Stream[string, string] {
			return stream.SelectKey(s, func(k, v string) string { return k })
		}},
		{"FlatMap", func(s stream.Stream[string, string]) stream.Stream[string, string] {
			return stream.FlatMap(s, func(k, v string) []skv { return []skv{kv(k, v)} })
		}},
		{"FlatMapValues", func(s stream.Stream[string, string]) stream.Stream[string, string] {
			return stream.FlatMapValues(s, func(v string) []string { return []string{v} })
		}},
		{"Peek", func(s stream.Stream[string, string]) stream.Stream[string, string] {
			return s.Peek(func(string, string) {})
		}},
		{"Split", func(s stream.Stream[string, string]) stream.Stream[string, string] {
			return s.Split().Default("all")
		}},
		{"Merge", func(s stream.Stream[string, string]) stream.Stream[string, string] {
			return s.Merge(s.Filter(func(string, string) bool { return false }))
		}},
		{"Repartition", func(s stream.Stream[string, string]) stream.Stream[string, string] {
			return s.Repartition()
		}},
		{"Process", func(s stream.Stream[string, string]) stream.Stream[string, string] {
			return stream.Process(s, func() topology.Processor[string, string, string, string] { return &passThrough{} })
		}},
	}
	for _, c := range chains {
		t.Run(c.name, func(t *testing.T) {
			b := topology.NewBuilder()
			c.chain(stream.From[string, string](b, "in")).To("out")
			d := newDriver(t, b)
			hs := []topology.Header{{Key: "trace", Value: []byte("t-1")}, {Key: "empty", Value: []byte{}}, {Key: "trace", Value: []byte("t-2")}}
			in := strIn(d, "in")
			if err := in.PipeAt("k", "v", ms(1_700_000_000_123), hs...); err != nil {
				t.Fatal(err)
			}
			if err := in.PipeAt("k2", "v2", ms(42)); err != nil {
				t.Fatal(err)
			}
			recs, err := riffletest.Output(d, "out", serde.String(), serde.String()).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 2 {
				t.Fatalf("%d records out, want 2", len(recs))
			}
			if !recs[0].Timestamp.Equal(ms(1_700_000_000_123)) {
				t.Errorf("timestamp %v, want %v", recs[0].Timestamp, ms(1_700_000_000_123))
			}
			if !reflect.DeepEqual(recs[0].Headers, hs) {
				t.Errorf("headers %v, want %v", recs[0].Headers, hs)
			}
			if !recs[1].Timestamp.Equal(ms(42)) {
				t.Errorf("timestamp %v, want %v", recs[1].Timestamp, ms(42))
			}
			if len(recs[1].Headers) != 0 {
				t.Errorf("headers %v, want none", recs[1].Headers)
			}
		})
	}
}

// passThrough is a Processor API processor that forwards every record.
type passThrough struct {
	ctx topology.Context[string, string]
}

func (p *passThrough) Init(ctx topology.Context[string, string]) error { p.ctx = ctx; return nil }
func (p *passThrough) Process(r topology.Record[string, string]) error { return p.ctx.Forward(r) }
func (p *passThrough) Close() error                                    { return nil }

func TestToSeveralTopics(t *testing.T) {
	b := topology.NewBuilder()
	src := stream.From[string, string](b, "in")
	src.To("out1")
	src.To("out2")
	src.To("out1", stream.Named("again"))
	d := newDriver(t, b)
	pipeAll(t, strIn(d, "in"), kv("k", "v"))
	wantKVs(t, "out1", readStr(t, d, "out1"), []skv{kv("k", "v"), kv("k", "v")})
	wantKVs(t, "out2", readStr(t, d, "out2"), []skv{kv("k", "v")})
	desc := mustBuild(t, b).Describe()
	for _, s := range []string{"Sink:      from-in-to-out1 (topic: out1)", "Sink:      from-in-to-out2 (topic: out2)", "Sink:      again (topic: out1)"} {
		if !strings.Contains(desc, s) {
			t.Errorf("Describe lacks %q:\n%s", s, desc)
		}
	}
}

func TestToWithSerdes(t *testing.T) {
	b := topology.NewBuilder()
	src := stream.From[string, string](b, "in")
	upper := serde.Func(
		func(s string) ([]byte, error) { return []byte(strings.ToUpper(s)), nil },
		func(b []byte) (string, error) { return string(b), nil })
	src.To("out", stream.WithKeySerde(upper), stream.WithValueSerde(upper))
	d := newDriver(t, b)
	pipeAll(t, strIn(d, "in"), kv("k", "v"))
	wantKVs(t, "out", readStr(t, d, "out"), []skv{kv("K", "V")})
}

// ---- ToFunc ----

func TestToFunc(t *testing.T) {
	b := topology.NewBuilder()
	src := stream.From[string, string](b, "in")
	src.ToFunc(func(k, v string) string { return "out-" + k })
	d := newDriver(t, b)
	pipeAll(t, strIn(d, "in"), kv("a", "1"), kv("b", "2"), kv("a", "3"))
	wantKVs(t, "out-a", readStr(t, d, "out-a"), []skv{kv("a", "1"), kv("a", "3")})
	wantKVs(t, "out-b", readStr(t, d, "out-b"), []skv{kv("b", "2")})
	if desc := mustBuild(t, b).Describe(); !strings.Contains(desc, "Sink:      from-in-to (topic: chosen per record)") {
		t.Errorf("Describe:\n%s", desc)
	}
}

func TestToFuncInvalidTopic(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   []stream.Option
		node   string
		topic  string
		reason string
	}{
		{"empty, generated name", nil, "from-in-to", "", "topic name is empty"},
		{"empty, Named", []stream.Option{stream.Named("router")}, "router", "", "topic name is empty"},
		{"invalid characters", []stream.Option{stream.Named("router")}, "router", "a/b", `topic name "a/b" may hold only`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := topology.NewBuilder()
			src := stream.From[string, string](b, "in")
			src.ToFunc(func(k, v string) string {
				if k == "bad" {
					return tc.topic
				}
				return "good"
			}, tc.opts...)
			d := newDriver(t, b)
			in := strIn(d, "in")
			pipeAll(t, in, kv("ok", "1"))
			err := in.Pipe("bad", "2")
			var pe *topology.ProcessorError
			if !errors.As(err, &pe) {
				t.Fatalf("Pipe error %v (%T), want a *topology.ProcessorError", err, err)
			}
			if pe.Node != tc.node {
				t.Errorf("error names node %q, want %q", pe.Node, tc.node)
			}
			if pe.Metadata.Topic != "in" || pe.Metadata.Offset != 1 {
				t.Errorf("error metadata %+v, want in@1", pe.Metadata)
			}
			wantErrContains(t, err, `"`+tc.node+`"`, tc.reason)
			// The driver goes on.
			pipeAll(t, in, kv("ok", "3"))
			wantKVs(t, "good", readStr(t, d, "good"), []skv{kv("ok", "1"), kv("ok", "3")})
		})
	}
}

func TestToFuncNil(t *testing.T) {
	b := topology.NewBuilder()
	stream.From[string, string](b, "in").ToFunc(nil, stream.Named("router"))
	wantErrContains(t, buildErr(t, b), `sink "router": topic chooser is nil`)
}

// ---- Repartition ----

// metaRecorder records the topic each record was read from.
type metaRecorder struct {
	ctx    topology.Context[string, string]
	topics *[]string
}

func (p *metaRecorder) Init(ctx topology.Context[string, string]) error { p.ctx = ctx; return nil }
func (p *metaRecorder) Close() error                                    { return nil }
func (p *metaRecorder) Process(r topology.Record[string, string]) error {
	md, ok := p.ctx.RecordMetadata()
	if !ok {
		return errors.New("no record metadata")
	}
	*p.topics = append(*p.topics, md.Topic)
	return p.ctx.Forward(r)
}

func TestRepartitionNamed(t *testing.T) {
	b := topology.NewBuilder()
	var topics []string
	src := stream.From[string, string](b, "in")
	rekeyed := stream.SelectKey(src, func(k, v string) string { return v })
	after := rekeyed.Repartition(stream.Named("x"))
	stream.Process(after, func() topology.Processor[string, string, string, string] {
		return &metaRecorder{topics: &topics}
	}).To("out")

	topo := mustBuild(t, b)
	if n := len(topo.SubTopologies()); n != 2 {
		t.Fatalf("%d sub-topologies, want 2:\n%s", n, topo.Describe())
	}
	desc := topo.Describe()
	for _, s := range []string{
		"Sub-topology 0\n",
		"  Sink:      x-repartition-sink (topic: <app>-x-repartition)\n",
		"Sub-topology 1\n  Source:    x-repartition-source (topics: <app>-x-repartition)\n",
	} {
		if !strings.Contains(desc, s) {
			t.Errorf("Describe lacks %q:\n%s", s, desc)
		}
	}
	if got, want := after.Name(), "x-repartition-source"; got != want {
		t.Errorf("repartitioned stream's node %q, want %q", got, want)
	}
	want := []topology.InternalTopic{{Topic: topology.Topic{Name: "x-repartition", Internal: true}, Kind: topology.RepartitionTopic}}
	if got := topo.InternalTopics(); !reflect.DeepEqual(got, want) {
		t.Errorf("InternalTopics() = %+v, want %+v", got, want)
	}

	d := newDriver(t, b)
	pipeAll(t, strIn(d, "in"), kv("a", "1"), kv("b", "2"))
	wantKVs(t, "out", readStr(t, d, "out"), []skv{kv("1", "1"), kv("2", "2")})
	if want := []string{"riffletest-x-repartition", "riffletest-x-repartition"}; !reflect.DeepEqual(topics, want) {
		t.Errorf("records after the repartition were read from %v, want %v", topics, want)
	}
	// The internal topic is not an output.
	if n := d.Pending("riffletest-x-repartition"); n != 0 {
		t.Errorf("%d records readable on the repartition topic, want 0", n)
	}
	if _, ok := d.ReadRaw("riffletest-x-repartition"); ok {
		t.Errorf("a record was readable on the repartition topic")
	}
	if got := readStr(t, d, "riffletest-x-repartition"); len(got) != 0 {
		t.Errorf("read %v from the repartition topic", got)
	}
}

func TestRepartitionNames(t *testing.T) {
	for _, tc := range []struct {
		name  string
		appID string
		opts  []stream.Option
		topic string // resolved
		node  string
	}{
		{"generated", "riffletest", nil, "riffletest-from-in-repartition", "from-in-repartition-source"},
		{"Named", "riffletest", []stream.Option{stream.Named("x")}, "riffletest-x-repartition", "x-repartition-source"},
		{"Named with suffix", "riffletest", []stream.Option{stream.Named("y-repartition")}, "riffletest-y-repartition", "y-repartition-source"},
		{"application id", "app", []stream.Option{stream.Named("x")}, "app-x-repartition", "x-repartition-source"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := topology.NewBuilder()
			var topics []string
			after := stream.From[string, string](b, "in").Repartition(tc.opts...)
			if after.Name() != tc.node {
				t.Errorf("node %q, want %q", after.Name(), tc.node)
			}
			stream.Process(after, func() topology.Processor[string, string, string, string] {
				return &metaRecorder{topics: &topics}
			}).To("out")
			d := newDriver(t, b, riffletest.WithApplicationID(tc.appID))
			pipeAll(t, strIn(d, "in"), kv("k", "v"))
			wantKVs(t, "out", readStr(t, d, "out"), []skv{kv("k", "v")})
			if len(topics) != 1 || topics[0] != tc.topic {
				t.Errorf("read from %v, want [%s]", topics, tc.topic)
			}
			if d.Pending(tc.topic) != 0 {
				t.Errorf("the repartition topic %q is readable", tc.topic)
			}
		})
	}
}

func TestRepartitionWithPartitions(t *testing.T) {
	b := topology.NewBuilder()
	src := stream.From[string, string](b, "in")
	src.Repartition(stream.Named("p4"), stream.WithPartitions(4)).To("out")
	src.Repartition(stream.Named("dflt")).To("out2")
	topo := mustBuild(t, b)
	want := []topology.InternalTopic{
		{Topic: topology.Topic{Name: "p4-repartition", Internal: true}, Kind: topology.RepartitionTopic, Partitions: 4},
		{Topic: topology.Topic{Name: "dflt-repartition", Internal: true}, Kind: topology.RepartitionTopic, Partitions: 0},
	}
	if got := topo.InternalTopics(); !reflect.DeepEqual(got, want) {
		t.Errorf("InternalTopics() = %+v, want %+v", got, want)
	}
	if n := len(topo.SubTopologies()); n != 3 {
		t.Errorf("%d sub-topologies, want 3:\n%s", n, topo.Describe())
	}

	b = topology.NewBuilder()
	stream.From[string, string](b, "in").Repartition(stream.Named("neg"), stream.WithPartitions(-1))
	wantErrContains(t, buildErr(t, b), `repartition "neg": partition count -1 is negative`)
}

func TestRepartitionChangedTypes(t *testing.T) {
	// After Map the serdes are picked by type; the repartition topic
	// carries the new types.
	b := topology.NewBuilder()
	src := stream.From[string, string](b, "in")
	mapped := stream.Map(src, func(k, v string) (int64, string) { return int64(len(v)), k })
	mapped.Repartition().To("out")
	d := newDriver(t, b)
	pipeAll(t, strIn(d, "in"), kv("k", "abc"))
	got := readKVs(t, d, "out", serde.Int64(), serde.String())
	wantKVs(t, "out", got, []topology.KeyValue[int64, string]{topology.KV(int64(3), "k")})
}

func TestRepartitionTwiceFromOneParent(t *testing.T) {
	b := topology.NewBuilder()
	src := stream.From[string, string](b, "in")
	src.Repartition().To("out1")
	src.Repartition().To("out2")
	topo := mustBuild(t, b)
	var names []string
	for _, it := range topo.InternalTopics() {
		names = append(names, it.Name)
	}
	if len(names) != 2 || names[0] == names[1] {
		t.Errorf("internal topics %v: want two different ones", names)
	}
	d := newDriver(t, b)
	pipeAll(t, strIn(d, "in"), kv("k", "v"))
	wantKVs(t, "out1", readStr(t, d, "out1"), []skv{kv("k", "v")})
	wantKVs(t, "out2", readStr(t, d, "out2"), []skv{kv("k", "v")})
}

func TestRepartitionProcessedInOrder(t *testing.T) {
	// A record written to the repartition topic is processed before the
	// next piped record: outputs keep the input order across the hop.
	b := topology.NewBuilder()
	src := stream.From[string, string](b, "in")
	direct := src.Filter(func(k, v string) bool { return true })
	hop := stream.MapValues(src.Repartition(), func(v string) string { return v + "'" })
	direct.Merge(hop).To("out")
	d := newDriver(t, b, riffletest.WithStartTime(time.UnixMilli(5)))
	pipeAll(t, strIn(d, "in"), kv("a", "1"), kv("b", "2"))
	want := []skv{kv("a", "1"), kv("a", "1'"), kv("b", "2"), kv("b", "2'")}
	if got := readStr(t, d, "out"); !reflect.DeepEqual(got, want) {
		t.Errorf("out: got %v, want %v", got, want)
	}
}

// TestRepartitionTopicNotStolenByPattern: a pattern source whose pattern
// matches the resolved name of a repartition topic
// ("<appid>-<name>-repartition") but not its unresolved name passes Build.
// The records written to the repartition topic must still reach the
// repartition's own source.
func TestRepartitionTopicNotStolenByPattern(t *testing.T) {
	b := topology.NewBuilder()
	stream.FromPattern[string, string](b, regexp.MustCompile(`riffletest-.*`)).To("pattern-out")
	stream.From[string, string](b, "in").Repartition(stream.Named("x")).To("out")
	d := newDriver(t, b)
	pipeAll(t, strIn(d, "in"), kv("k", "v"))
	got := readStr(t, d, "out")
	wantKVs(t, "out", got, []skv{kv("k", "v")})
	if n := d.Pending("pattern-out"); n != 0 {
		t.Errorf("%d records reached the pattern source's output", n)
	}
}
