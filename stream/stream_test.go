package stream_test

import (
	"bytes"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/riffle-streams/riffle/internal/testutil"
	"github.com/riffle-streams/riffle/riffletest"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/stream"
	"github.com/riffle-streams/riffle/topology"
)

// ---- helpers shared by the stream_test files ----

// skv is the key-value pair of a string-keyed, string-valued stream.
type skv = topology.KeyValue[string, string]

func kv(k, v string) skv { return topology.KV(k, v) }

// The helpers the DSL packages' tests share.
var (
	newDriver       = testutil.NewDriver
	mustBuild       = testutil.MustBuild
	buildErr        = testutil.BuildErr
	wantErrContains = testutil.WantErrContains
)

// pipeAll pipes every pair into in, failing the test on error.
func pipeAll[K, V any](t *testing.T, in *riffletest.InputTopic[K, V], recs ...topology.KeyValue[K, V]) {
	t.Helper()
	for _, r := range recs {
		if err := in.Pipe(r.Key, r.Value); err != nil {
			t.Fatalf("Pipe(%v, %v): %v", r.Key, r.Value, err)
		}
	}
}

// strIn returns a String/String input topic.
func strIn(d *riffletest.Driver, topic string) *riffletest.InputTopic[string, string] {
	return riffletest.Input(d, topic, serde.String(), serde.String())
}

// readStr reads every pending String/String record of topic.
func readStr(t *testing.T, d *riffletest.Driver, topic string) []skv {
	t.Helper()
	return readKVs(t, d, topic, serde.String(), serde.String())
}

// readKVs reads every pending record of topic.
func readKVs[K, V any](t *testing.T, d *riffletest.Driver, topic string, ks serde.Serde[K], vs serde.Serde[V]) []topology.KeyValue[K, V] {
	t.Helper()
	got, err := riffletest.Output(d, topic, ks, vs).ReadKeyValues()
	if err != nil {
		t.Fatalf("read %q: %v", topic, err)
	}
	return got
}

// wantKVs compares two lists of comparable pairs.
func wantKVs[K, V comparable](t *testing.T, what string, got, want []topology.KeyValue[K, V]) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got %v\nwant %v", what, got, want)
	}
}

// ms returns the time n milliseconds after the Unix epoch, in UTC.
func ms(n int64) time.Time { return time.UnixMilli(n).UTC() }

// ---- sources ----

func TestFrom(t *testing.T) {
	b := topology.NewBuilder()
	src := stream.From[string, string](b, "in")
	if got, want := src.Name(), "from-in"; got != want {
		t.Errorf("Name() = %q, want %q", got, want)
	}
	if src.Builder() != b {
		t.Errorf("Builder() is not the builder the stream was made from")
	}
	src.To("out")
	d := newDriver(t, b)
	in := []skv{kv("a", "1"), kv("b", "2"), kv("a", "3"), kv("", "")}
	pipeAll(t, strIn(d, "in"), in...)
	wantKVs(t, "out", readStr(t, d, "out"), in)
	if err := strIn(d, "other").Pipe("k", "v"); err == nil {
		t.Errorf("Pipe to a topic no source reads succeeded")
	}
}

func TestFromTopics(t *testing.T) {
	b := topology.NewBuilder()
	src := stream.FromTopics[string, string](b, []string{"a", "b", "c"})
	src.To("out")
	d := newDriver(t, b)
	ins := map[string]*riffletest.InputTopic[string, string]{}
	for _, tp := range []string{"a", "b", "c"} {
		ins[tp] = strIn(d, tp)
	}
	pipeAll(t, ins["b"], kv("k1", "from-b"))
	pipeAll(t, ins["a"], kv("k2", "from-a"))
	pipeAll(t, ins["c"], kv("k3", "from-c"))
	pipeAll(t, ins["a"], kv("k4", "from-a-again"))
	want := []skv{kv("k1", "from-b"), kv("k2", "from-a"), kv("k3", "from-c"), kv("k4", "from-a-again")}
	wantKVs(t, "out", readStr(t, d, "out"), want)

	topo := mustBuild(t, b)
	subs := topo.SubTopologies()
	if len(subs) != 1 {
		t.Fatalf("%d sub-topologies, want 1:\n%s", len(subs), topo.Describe())
	}
	var topics []string
	for _, tp := range subs[0].SourceTopics {
		topics = append(topics, tp.Name)
	}
	if want := []string{"a", "b", "c"}; !slices.Equal(topics, want) {
		t.Errorf("source topics %v, want %v", topics, want)
	}
}

func TestFromTopicsNone(t *testing.T) {
	b := topology.NewBuilder()
	stream.FromTopics[string, string](b, nil, stream.Named("nothing"))
	wantErrContains(t, buildErr(t, b), `source "nothing" reads no topic`)
}

func TestFromPattern(t *testing.T) {
	b := topology.NewBuilder()
	src := stream.FromPattern[string, string](b, regexp.MustCompile(`orders-[a-z]+`))
	if got, want := src.Name(), "from-pattern"; got != want {
		t.Errorf("Name() = %q, want %q", got, want)
	}
	stream.MapValues(src, strings.ToUpper).To("out")
	d := newDriver(t, b)

	for _, tc := range []struct {
		topic string
		ok    bool
	}{
		{"orders-eu", true},
		{"orders-us", true},
		{"orders-", false},       // the pattern needs a letter
		{"orders-eu-2", false},   // the whole name must match
		{"old-orders-eu", false}, // the whole name must match
		{"payments", false},
	} {
		err := strIn(d, tc.topic).Pipe("k", tc.topic)
		if tc.ok && err != nil {
			t.Errorf("Pipe to %q: %v", tc.topic, err)
		}
		if !tc.ok {
			if err == nil {
				t.Errorf("Pipe to %q, which the pattern does not match, succeeded", tc.topic)
			} else if !strings.Contains(err.Error(), strconv.Quote(tc.topic)) {
				t.Errorf("Pipe to %q: error %q does not name the topic", tc.topic, err)
			}
		}
	}
	wantKVs(t, "out", readStr(t, d, "out"), []skv{kv("k", "ORDERS-EU"), kv("k", "ORDERS-US")})
}

// TestFromPatternAlternation: a pattern source reads every topic whose WHOLE
// name matches the pattern. With an alternation whose first branch matches a
// prefix of the name, Go's leftmost-first FindStringIndex stops at the
// prefix, so topology.matchWhole rejects a name the pattern does match.
func TestFromPatternAlternation(t *testing.T) {
	re := regexp.MustCompile(`orders|orders-eu`)
	if !regexp.MustCompile(`^(?:` + re.String() + `)$`).MatchString("orders-eu") {
		t.Fatal("test is wrong: the pattern does not match the whole name")
	}
	b := topology.NewBuilder()
	stream.FromPattern[string, string](b, re).To("out")
	d := newDriver(t, b)
	if err := strIn(d, "orders").Pipe("k", "v"); err != nil {
		t.Fatalf("Pipe to orders: %v", err)
	}
	if err := strIn(d, "orders-eu").Pipe("k", "v"); err != nil {
		t.Fatalf("pattern %q does not read %q, a whole match: %v", re, "orders-eu", err)
	}
	if got := len(readStr(t, d, "out")); got != 2 {
		t.Errorf("%d records out, want 2", got)
	}
}

func TestFromPatternOverlapsTopic(t *testing.T) {
	b := topology.NewBuilder()
	stream.From[string, string](b, "orders-eu").To("out")
	stream.FromPattern[string, string](b, regexp.MustCompile(`orders-.*`)).To("out2")
	wantErrContains(t, buildErr(t, b), `topic "orders-eu" is read by source "from-orders-eu" and matches the pattern of source "from-pattern"`)
}

func TestFromPatternNil(t *testing.T) {
	b := topology.NewBuilder()
	stream.FromPattern[string, string](b, nil, stream.Named("p"))
	wantErrContains(t, buildErr(t, b), `source "p": pattern is nil`)
}

// ---- stateless operators on String/String streams ----

func TestStatelessOperators(t *testing.T) {
	input := []skv{kv("a", "1"), kv("bb", "22"), kv("a", "333"), kv("c", ""), kv("dd", "4")}
	cases := []struct {
		name string
		op   func(stream.Stream[string, string]) stream.Stream[string, string]
		want []skv
	}{
		{"Filter", func(s stream.Stream[string, string]) stream.Stream[string, string] {
			return s.Filter(func(k, v string) bool { return k == "a" })
		}, []skv{kv("a", "1"), kv("a", "333")}},
		{"Filter/none", func(s stream.Stream[string, string]) stream.Stream[string, string] {
			return s.Filter(func(k, v string) bool { return false })
		}, nil},
		{"Filter/all", func(s stream.Stream[string, string]) stream.Stream[string, string] {
			return s.Filter(func(k, v string) bool { return true })
		}, input},
		{"FilterNot", func(s stream.Stream[string, string]) stream.Stream[string, string] {
			return s.FilterNot(func(k, v string) bool { return k == "a" })
		}, []skv{kv("bb", "22"), kv("c", ""), kv("dd", "4")}},
		{"FilterNot/on value", func(s stream.Stream[string, string]) stream.Stream[string, string] {
			return s.FilterNot(func(k, v string) bool { return len(v) > 1 })
		}, []skv{kv("a", "1"), kv("c", ""), kv("dd", "4")}},
		{"Filter then FilterNot", func(s stream.Stream[string, string]) stream.Stream[string, string] {
			return s.Filter(func(k, v string) bool { return v != "" }).FilterNot(func(k, v string) bool { return k == "a" })
		}, []skv{kv("bb", "22"), kv("dd", "4")}},
		{"MapValues", func(s stream.Stream[string, string]) stream.Stream[string, string] {
			return stream.MapValues(s, func(v string) string { return "<" + v + ">" })
		}, []skv{kv("a", "<1>"), kv("bb", "<22>"), kv("a", "<333>"), kv("c", "<>"), kv("dd", "<4>")}},
		{"Map/same types", func(s stream.Stream[string, string]) stream.Stream[string, string] {
			return stream.Map(s, func(k, v string) (string, string) { return v, k })
		}, []skv{kv("1", "a"), kv("22", "bb"), kv("333", "a"), kv("", "c"), kv("4", "dd")}},
		{"SelectKey", func(s stream.Stream[string, string]) stream.Stream[string, string] {
			return stream.SelectKey(s, func(k, v string) string { return k + ":" + v })
		}, []skv{kv("a:1", "1"), kv("bb:22", "22"), kv("a:333", "333"), kv("c:", ""), kv("dd:4", "4")}},
		{"FlatMap/zero one many in order", func(s stream.Stream[string, string]) stream.Stream[string, string] {
			// One output per byte of the value: "" gives none, "1" one,
			// "333" three.
			return stream.FlatMap(s, func(k, v string) []skv {
				var out []skv
				for i := range len(v) {
					out = append(out, kv(k+strconv.Itoa(i), v[i:i+1]))
				}
				return out
			})
		}, []skv{kv("a0", "1"), kv("bb0", "2"), kv("bb1", "2"), kv("a0", "3"), kv("a1", "3"), kv("a2", "3"), kv("dd0", "4")}},
		{"FlatMap/nil result", func(s stream.Stream[string, string]) stream.Stream[string, string] {
			return stream.FlatMap(s, func(k, v string) []skv { return nil })
		}, nil},
		{"FlatMap/empty non-nil result", func(s stream.Stream[string, string]) stream.Stream[string, string] {
			return stream.FlatMap(s, func(k, v string) []skv { return []skv{} })
		}, nil},
		{"FlatMapValues/zero one many in order", func(s stream.Stream[string, string]) stream.Stream[string, string] {
			return stream.FlatMapValues(s, func(v string) []string {
				out := []string{}
				for i := range len(v) {
					out = append(out, fmt.Sprintf("%s#%d", v, i))
				}
				return out
			})
		}, []skv{kv("a", "1#0"), kv("bb", "22#0"), kv("bb", "22#1"), kv("a", "333#0"), kv("a", "333#1"), kv("a", "333#2"), kv("dd", "4#0")}},
		{"Peek passes everything on", func(s stream.Stream[string, string]) stream.Stream[string, string] {
			return s.Peek(func(k, v string) {})
		}, input},
		{"Merge with itself doubles", func(s stream.Stream[string, string]) stream.Stream[string, string] {
			return s.Merge(s)
		}, []skv{kv("a", "1"), kv("a", "1"), kv("bb", "22"), kv("bb", "22"), kv("a", "333"), kv("a", "333"), kv("c", ""), kv("c", ""), kv("dd", "4"), kv("dd", "4")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := topology.NewBuilder()
			tc.op(stream.From[string, string](b, "in")).To("out")
			d := newDriver(t, b)
			pipeAll(t, strIn(d, "in"), input...)
			wantKVs(t, "out", readStr(t, d, "out"), tc.want)
		})
	}
}

func TestMapChangesBothTypes(t *testing.T) {
	b := topology.NewBuilder()
	src := stream.From[string, string](b, "in")
	// (string, string) -> (int64, []string): both serdes are picked by type.
	stream.Map(src, func(k, v string) (int64, []string) {
		return int64(len(k)), strings.Split(v, ",")
	}).To("out")
	d := newDriver(t, b)
	pipeAll(t, strIn(d, "in"), kv("abc", "x,y"), kv("", "z"))
	got := readKVs(t, d, "out", serde.Int64(), serde.JSON[[]string]())
	want := []topology.KeyValue[int64, []string]{topology.KV(int64(3), []string{"x", "y"}), topology.KV(int64(0), []string{"z"})}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("out: got %v, want %v", got, want)
	}
	// The JSON is what lands on the topic.
	if err := strIn(d, "in").Pipe("k", "p,q"); err != nil {
		t.Fatal(err)
	}
	raw, ok := d.ReadRaw("out")
	if !ok {
		t.Fatal("no record out")
	}
	if string(raw.Value) != `["p","q"]` {
		t.Errorf("value bytes %q, want %q", raw.Value, `["p","q"]`)
	}
}

func TestMapWithSerdeOptions(t *testing.T) {
	type ID int // no default serde: the option must be used
	idSerde := serde.Func(
		func(id ID) ([]byte, error) { return []byte("id-" + strconv.Itoa(int(id))), nil },
		func(b []byte) (ID, error) {
			n, err := strconv.Atoi(strings.TrimPrefix(string(b), "id-"))
			return ID(n), err
		})
	b := topology.NewBuilder()
	src := stream.From[string, string](b, "in")
	stream.Map(src, func(k, v string) (ID, string) { return ID(len(v)), k }, stream.WithKeySerde(idSerde)).To("out")
	d := newDriver(t, b)
	pipeAll(t, strIn(d, "in"), kv("k", "four"))
	raw, ok := d.ReadRaw("out")
	if !ok {
		t.Fatal("no record out")
	}
	if string(raw.Key) != "id-4" || string(raw.Value) != "k" {
		t.Errorf("out = (%q, %q), want (id-4, k)", raw.Key, raw.Value)
	}
}

func TestMapValuesChangesType(t *testing.T) {
	b := topology.NewBuilder()
	src := stream.From[string, string](b, "in")
	stream.MapValues(src, func(v string) int64 { return int64(len(v)) }).To("out")
	d := newDriver(t, b)
	pipeAll(t, strIn(d, "in"), kv("a", "xyz"), kv("b", ""))
	got := readKVs(t, d, "out", serde.String(), serde.Int64())
	wantKVs(t, "out", got, []topology.KeyValue[string, int64]{topology.KV("a", int64(3)), topology.KV("b", int64(0))})
}

func TestSelectKeyChangesType(t *testing.T) {
	b := topology.NewBuilder()
	src := stream.From[string, string](b, "in")
	stream.SelectKey(src, func(k, v string) int64 { return int64(len(v)) }).To("out")
	d := newDriver(t, b)
	pipeAll(t, strIn(d, "in"), kv("a", "xyz"), kv("b", ""))
	got := readKVs(t, d, "out", serde.Int64(), serde.String())
	wantKVs(t, "out", got, []topology.KeyValue[int64, string]{topology.KV(int64(3), "xyz"), topology.KV(int64(0), "")})
}

func TestFlatMapChangesTypes(t *testing.T) {
	b := topology.NewBuilder()
	src := stream.From[string, string](b, "in")
	stream.FlatMap(src, func(k, v string) []topology.KeyValue[int64, int64] {
		n, _ := strconv.Atoi(v)
		out := make([]topology.KeyValue[int64, int64], n)
		for i := range out {
			out[i] = topology.KV(int64(i), int64(n))
		}
		return out
	}).To("out")
	d := newDriver(t, b)
	pipeAll(t, strIn(d, "in"), kv("a", "0"), kv("b", "1"), kv("c", "3"))
	got := readKVs(t, d, "out", serde.Int64(), serde.Int64())
	want := []topology.KeyValue[int64, int64]{topology.KV[int64, int64](0, 1), topology.KV[int64, int64](0, 3), topology.KV[int64, int64](1, 3), topology.KV[int64, int64](2, 3)}
	wantKVs(t, "out", got, want)
}

func TestFlatMapValuesChangesType(t *testing.T) {
	b := topology.NewBuilder()
	src := stream.From[string, string](b, "in")
	stream.FlatMapValues(src, func(v string) []int64 {
		var out []int64
		for _, f := range strings.Fields(v) {
			out = append(out, int64(len(f)))
		}
		return out
	}).To("out")
	d := newDriver(t, b)
	pipeAll(t, strIn(d, "in"), kv("a", "one three"), kv("b", "   "), kv("c", "x"))
	got := readKVs(t, d, "out", serde.String(), serde.Int64())
	want := []topology.KeyValue[string, int64]{{Key: "a", Value: 3}, {Key: "a", Value: 5}, {Key: "c", Value: 1}}
	wantKVs(t, "out", got, want)
}

func TestPeek(t *testing.T) {
	b := topology.NewBuilder()
	var seen []skv
	src := stream.From[string, string](b, "in")
	src.Filter(func(k, v string) bool { return v != "drop" }).
		Peek(func(k, v string) { seen = append(seen, kv(k, v)) }).
		To("out")
	d := newDriver(t, b)
	pipeAll(t, strIn(d, "in"), kv("a", "1"), kv("b", "drop"), kv("c", "3"))
	want := []skv{kv("a", "1"), kv("c", "3")}
	wantKVs(t, "peek saw", seen, want)
	wantKVs(t, "out", readStr(t, d, "out"), want)
}

func TestPeekSeesBeforeDownstream(t *testing.T) {
	// Peek runs before its children: the log interleaves per record.
	b := topology.NewBuilder()
	var log []string
	src := stream.From[string, string](b, "in")
	src.Peek(func(k, v string) { log = append(log, "peek "+k) }).
		Foreach(func(k, v string) { log = append(log, "foreach "+k) })
	d := newDriver(t, b)
	pipeAll(t, strIn(d, "in"), kv("a", "1"), kv("b", "2"))
	want := []string{"peek a", "foreach a", "peek b", "foreach b"}
	if !slices.Equal(log, want) {
		t.Errorf("log %v, want %v", log, want)
	}
}

func TestForeach(t *testing.T) {
	b := topology.NewBuilder()
	var seen []skv
	src := stream.From[string, string](b, "in")
	src.Foreach(func(k, v string) { seen = append(seen, kv(k, v)) }, stream.Named("collect"))
	src.To("out") // a sibling still gets every record
	topo := mustBuild(t, b)
	if !strings.Contains(topo.Describe(), "Processor: collect\n    <-- from-in\n") {
		t.Errorf("Describe does not show the foreach node as a leaf:\n%s", topo.Describe())
	}
	d := newDriver(t, b)
	in := []skv{kv("a", "1"), kv("b", "2"), kv("a", "")}
	pipeAll(t, strIn(d, "in"), in...)
	wantKVs(t, "foreach saw", seen, in)
	wantKVs(t, "out", readStr(t, d, "out"), in)
}

func TestPrint(t *testing.T) {
	cases := []struct {
		name string
		opts func(w *bytes.Buffer) []stream.Option
		want string
	}{
		{"default label is the node name", func(w *bytes.Buffer) []stream.Option {
			return []stream.Option{stream.PrintTo(w)}
		}, "[from-in-print]: a, 1\n[from-in-print]: b, \n"},
		{"Named", func(w *bytes.Buffer) []stream.Option {
			return []stream.Option{stream.PrintTo(w), stream.Named("show")}
		}, "[show]: a, 1\n[show]: b, \n"},
		{"WithLabel", func(w *bytes.Buffer) []stream.Option {
			return []stream.Option{stream.PrintTo(w), stream.WithLabel("orders")}
		}, "[orders]: a, 1\n[orders]: b, \n"},
		{"WithLabel and Named", func(w *bytes.Buffer) []stream.Option {
			return []stream.Option{stream.Named("show"), stream.WithLabel("orders"), stream.PrintTo(w)}
		}, "[orders]: a, 1\n[orders]: b, \n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			b := topology.NewBuilder()
			stream.From[string, string](b, "in").Print(tc.opts(&buf)...)
			d := newDriver(t, b)
			pipeAll(t, strIn(d, "in"), kv("a", "1"), kv("b", ""))
			if got := buf.String(); got != tc.want {
				t.Errorf("printed %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPrintTypes(t *testing.T) {
	var buf bytes.Buffer
	b := topology.NewBuilder()
	src := stream.From[string, string](b, "in")
	stream.MapValues(src, func(v string) int64 { return int64(len(v)) }).Print(stream.PrintTo(&buf), stream.WithLabel("len"))
	d := newDriver(t, b)
	pipeAll(t, strIn(d, "in"), kv("k1", "abc"), kv("k2", ""))
	if got, want := buf.String(), "[len]: k1, 3\n[len]: k2, 0\n"; got != want {
		t.Errorf("printed %q, want %q", got, want)
	}
}
