package stream_test

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/riffle-streams/riffle/riffletest"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/stream"
	"github.com/riffle-streams/riffle/topology"
)

// ---- nulls ----

func TestNilKeysFlowThrough(t *testing.T) {
	b := topology.NewBuilder()
	var filterSaw, mapSaw [][]byte
	src := stream.From[[]byte, string](b, "in")
	filtered := src.Filter(func(k []byte, v string) bool {
		filterSaw = append(filterSaw, k)
		return v != "drop"
	})
	stream.Map(filtered, func(k []byte, v string) ([]byte, string) {
		mapSaw = append(mapSaw, k)
		return k, v + "!"
	}).To("out")
	d := newDriver(t, b)

	cases := []struct {
		name  string
		key   []byte
		value string
	}{
		{"null key", nil, "v1"},
		{"empty key", []byte{}, "v2"},
		{"some key", []byte("k"), "v3"},
		{"null key dropped", nil, "drop"},
	}
	for _, c := range cases {
		if err := d.PipeRaw("in", c.key, []byte(c.value), ms(0)); err != nil {
			t.Fatalf("%s: PipeRaw: %v", c.name, err)
		}
	}
	for i, c := range cases[:3] {
		raw, ok := d.ReadRaw("out")
		if !ok {
			t.Fatalf("%s: no record out", c.name)
		}
		if (raw.Key == nil) != (c.key == nil) || !bytes.Equal(raw.Key, c.key) {
			t.Errorf("%s: out key %#v, want %#v", c.name, raw.Key, c.key)
		}
		if string(raw.Value) != c.value+"!" {
			t.Errorf("%s: out value %q", c.name, raw.Value)
		}
		if (mapSaw[i] == nil) != (c.key == nil) {
			t.Errorf("%s: Map saw key %#v, want %#v", c.name, mapSaw[i], c.key)
		}
	}
	if _, ok := d.ReadRaw("out"); ok {
		t.Errorf("the dropped record got out")
	}
	if len(filterSaw) != 4 || filterSaw[0] != nil || filterSaw[1] == nil || filterSaw[3] != nil {
		t.Errorf("Filter saw keys %#v", filterSaw)
	}
}

func ptr[T any](v T) *T { return &v }

func TestTombstonesFlowThrough(t *testing.T) {
	nullable := serde.Nullable(serde.String())
	b := topology.NewBuilder()
	var peeked []*string
	src := stream.From[string, *string](b, "in", stream.WithValueSerde(nullable))
	src.Filter(func(k string, v *string) bool { return k != "skip" }).
		Peek(func(k string, v *string) { peeked = append(peeked, v) }).
		To("out")
	d := newDriver(t, b)
	in := riffletest.Input(d, "in", serde.String(), nullable)

	cases := []struct {
		name  string
		value *string
		want  []byte
	}{
		{"tombstone", nil, nil},
		{"empty string", ptr(""), []byte{}},
		{"text", ptr("x"), []byte("x")},
	}
	for _, c := range cases {
		if err := in.Pipe("k", c.value); err != nil {
			t.Fatalf("%s: Pipe: %v", c.name, err)
		}
		raw, ok := d.ReadRaw("out")
		if !ok {
			t.Fatalf("%s: no record out", c.name)
		}
		if (raw.Value == nil) != (c.want == nil) || !bytes.Equal(raw.Value, c.want) {
			t.Errorf("%s: out value %#v, want %#v", c.name, raw.Value, c.want)
		}
	}
	if len(peeked) != 3 || peeked[0] != nil || peeked[1] == nil || *peeked[1] != "" {
		t.Errorf("Peek saw %v", peeked)
	}
	// Typed reading gives a nil pointer back.
	if err := in.Pipe("k", nil); err != nil {
		t.Fatal(err)
	}
	got := readKVs(t, d, "out", serde.String(), nullable)
	if len(got) != 1 || got[0].Value != nil {
		t.Errorf("typed read %v, want one tombstone", got)
	}
}

func TestNullKeyWithStringSerde(t *testing.T) {
	b := topology.NewBuilder()
	src := stream.From[string, string](b, "in")
	var seen int
	src.Peek(func(string, string) { seen++ }).To("out")
	d := newDriver(t, b)
	pipeAll(t, strIn(d, "in"), kv("a", "1"))
	_ = readStr(t, d, "out")

	err := d.PipeRaw("in", nil, []byte("v"), ms(0))
	var de *topology.DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("PipeRaw with a null key: %v (%T), want a *topology.DecodeError", err, err)
	}
	if de.Part != "key" || de.Node != "from-in" || de.Metadata.Topic != "in" || de.Metadata.Offset != 1 {
		t.Errorf("DecodeError %+v, want key of from-in, in@1", de)
	}
	if !errors.Is(err, serde.ErrNull) {
		t.Errorf("error %v does not wrap serde.ErrNull", err)
	}
	wantErrContains(t, err, "serde.Nullable")
	if seen != 1 || d.Pending("out") != 0 {
		t.Errorf("the record went on: peek saw %d, %d out", seen, d.Pending("out"))
	}
}

// ---- decode failures ----

func TestDecodeFailure(t *testing.T) {
	b := topology.NewBuilder()
	stream.From[string, int64](b, "nums").To("out")
	d := newDriver(t, b)
	in := riffletest.Input(d, "nums", serde.String(), serde.Int64())
	if err := in.Pipe("a", 1); err != nil {
		t.Fatal(err)
	}
	err := d.PipeRaw("nums", []byte("b"), []byte{1, 2, 3}, ms(0))
	var de *topology.DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("PipeRaw of 3 bytes: %v (%T), want a *topology.DecodeError", err, err)
	}
	if de.Node != "from-nums" || de.Part != "value" {
		t.Errorf("DecodeError node %q part %q, want from-nums, value", de.Node, de.Part)
	}
	if want := (topology.RecordMetadata{Topic: "nums", Partition: 0, Offset: 1}); de.Metadata != want {
		t.Errorf("metadata %+v, want %+v", de.Metadata, want)
	}
	var se *serde.DecodeError
	if !errors.As(err, &se) {
		t.Fatalf("error %v does not wrap a *serde.DecodeError", err)
	}
	if se.Serde != "Int64" || se.Got != 3 {
		t.Errorf("serde error %+v, want Int64, 3 bytes", se)
	}
	wantErrContains(t, err, `source "from-nums"`, "value of nums[0]@1")
	got := readKVs(t, d, "out", serde.String(), serde.Int64())
	wantKVs(t, "out", got, []topology.KeyValue[string, int64]{topology.KV("a", int64(1))})
	if d.SkippedRecords() != 0 {
		t.Errorf("SkippedRecords() = %d, want 0 with the default handler", d.SkippedRecords())
	}
}

func TestDecodeFailureSkipped(t *testing.T) {
	b := topology.NewBuilder()
	stream.From[string, int64](b, "nums", stream.Named("numbers")).To("out")
	var handled []*topology.DecodeError
	d := newDriver(t, b, riffletest.WithDecodeErrorHandler(func(e *topology.DecodeError) error {
		handled = append(handled, e)
		return nil
	}))
	in := riffletest.Input(d, "nums", serde.String(), serde.Int64())
	if err := d.PipeRaw("nums", []byte("x"), []byte{1, 2, 3}, ms(0)); err != nil {
		t.Fatalf("skipped record: PipeRaw returned %v", err)
	}
	if err := in.Pipe("a", 7); err != nil {
		t.Fatal(err)
	}
	if err := d.PipeRaw("nums", nil, []byte{0, 0, 0, 0, 0, 0, 0, 1}, ms(0)); err != nil { // null key
		t.Fatalf("skipped record: PipeRaw returned %v", err)
	}
	if err := in.Pipe("b", 8); err != nil {
		t.Fatal(err)
	}
	if got := d.SkippedRecords(); got != 2 {
		t.Errorf("SkippedRecords() = %d, want 2", got)
	}
	if len(handled) != 2 || handled[0].Node != "numbers" || handled[0].Part != "value" || handled[1].Part != "key" {
		t.Errorf("handler saw %v", handled)
	}
	got := readKVs(t, d, "out", serde.String(), serde.Int64())
	wantKVs(t, "out", got, []topology.KeyValue[string, int64]{topology.KV("a", int64(7)), topology.KV("b", int64(8))})
}

func TestDecodeFailureHandlerError(t *testing.T) {
	b := topology.NewBuilder()
	stream.From[string, int64](b, "nums").To("out")
	errStop := errors.New("stop here")
	d := newDriver(t, b, riffletest.WithDecodeErrorHandler(func(e *topology.DecodeError) error { return errStop }))
	err := d.PipeRaw("nums", []byte("x"), []byte("abc"), ms(0))
	if !errors.Is(err, errStop) {
		t.Errorf("PipeRaw error %v, want the handler's", err)
	}
	if d.SkippedRecords() != 0 || d.Pending("out") != 0 {
		t.Errorf("skipped %d, %d out; want 0, 0", d.SkippedRecords(), d.Pending("out"))
	}
	// Still usable.
	if err := riffletest.Input(d, "nums", serde.String(), serde.Int64()).Pipe("a", 1); err != nil {
		t.Fatal(err)
	}
	if d.Pending("out") != 1 {
		t.Errorf("%d out, want 1", d.Pending("out"))
	}
}

func TestDecodeFailureAfterRepartition(t *testing.T) {
	// The source reading the repartition topic decodes with the serdes the
	// sink wrote with: nothing fails.
	b := topology.NewBuilder()
	src := stream.From[string, int64](b, "nums")
	stream.SelectKey(src, func(k string, v int64) int64 { return v }).Repartition().To("out")
	d := newDriver(t, b)
	if err := riffletest.Input(d, "nums", serde.String(), serde.Int64()).Pipe("a", 5); err != nil {
		t.Fatal(err)
	}
	got := readKVs(t, d, "out", serde.Int64(), serde.Int64())
	wantKVs(t, "out", got, []topology.KeyValue[int64, int64]{topology.KV(int64(5), int64(5))})
}

// ---- build errors ----

func TestBuildErrors(t *testing.T) {
	cases := []struct {
		name  string
		build func(b *topology.Builder)
		want  []string
	}{
		{"no default key serde", func(b *topology.Builder) {
			stream.From[int, string](b, "in")
		}, []string{`stream: source "from-in": no key serde`, "type int", "pass one explicitly", "serde.Int64()"}},
		{"no default value serde", func(b *topology.Builder) {
			stream.From[string, uint](b, "in", stream.Named("src"))
		}, []string{`stream: source "src": no value serde`, "type uint", "pass one explicitly"}},
		{"no default serde, FromPattern", func(b *topology.Builder) {
			stream.FromPattern[string, *string](b, regexp.MustCompile("x.*"))
		}, []string{`source "from-pattern": no value serde`, "*string"}},
		{"wrong source value serde", func(b *topology.Builder) {
			stream.From[string, string](b, "in", stream.WithValueSerde(serde.Int64()))
		}, []string{`stream: source "from-in": the value serde Int64 does not encode string`}},
		{"wrong source key serde", func(b *topology.Builder) {
			stream.From[string, string](b, "in", stream.WithKeySerde(serde.JSON[Order]()))
		}, []string{`source "from-in": the key serde`, "does not encode string"}},
		{"wrong sink value serde", func(b *topology.Builder) {
			stream.From[string, string](b, "in").To("out", stream.WithValueSerde(serde.Int64()))
		}, []string{`stream: sink "from-in-to-out": the value serde Int64 does not encode string`}},
		{"wrong ToFunc key serde", func(b *topology.Builder) {
			stream.From[string, string](b, "in").ToFunc(func(string, string) string { return "x" }, stream.WithKeySerde(serde.Int64()))
		}, []string{`sink "from-in-to": the key serde Int64 does not encode string`}},
		{"wrong Map value serde", func(b *topology.Builder) {
			stream.Map(stream.From[string, string](b, "in"), func(k, v string) (string, int64) { return k, 0 }, stream.WithValueSerde(serde.String()))
		}, []string{`operator "from-in-map": the value serde String does not encode int64`}},
		{"wrong MapValues value serde", func(b *topology.Builder) {
			stream.MapValues(stream.From[string, string](b, "in"), func(v string) int64 { return 0 }, stream.WithValueSerde(serde.String()), stream.Named("mv"))
		}, []string{`operator "mv": the value serde String does not encode int64`}},
		{"wrong SelectKey key serde", func(b *topology.Builder) {
			stream.SelectKey(stream.From[string, string](b, "in"), func(k, v string) int64 { return 0 }, stream.WithKeySerde(serde.String()))
		}, []string{`operator "from-in-selectkey": the key serde String does not encode int64`}},
		{"wrong Repartition serde", func(b *topology.Builder) {
			stream.From[string, string](b, "in").Repartition(stream.WithValueSerde(serde.Int64()))
		}, []string{`repartition "from-in-repartition": the value serde Int64 does not encode string`}},
		{"missing serde at sink after Map", func(b *topology.Builder) {
			stream.Map(stream.From[string, string](b, "in"), func(k, v string) (int, string) { return 0, v }).To("out")
		}, []string{`sink "from-in-map-to-out": no key serde`, "type int"}},
		{"missing serde at repartition", func(b *topology.Builder) {
			stream.Map(stream.From[string, string](b, "in"), func(k, v string) (int, string) { return 0, v }).Repartition()
		}, []string{`repartition "from-in-map-repartition": no key serde`}},
		{"duplicate Named", func(b *topology.Builder) {
			src := stream.From[string, string](b, "in")
			src.Filter(func(string, string) bool { return true }, stream.Named("f"))
			src.FilterNot(func(string, string) bool { return true }, stream.Named("f"))
		}, []string{`processor "f": a processor of that name already exists`}},
		{"Named like the source", func(b *topology.Builder) {
			src := stream.From[string, string](b, "in", stream.Named("src"))
			src.To("out", stream.Named("src"))
		}, []string{`sink "src": a source of that name already exists`}},
		{"duplicate Named sources", func(b *topology.Builder) {
			stream.From[string, string](b, "a", stream.Named("src"))
			stream.From[string, string](b, "b", stream.Named("src"))
		}, []string{`source "src": a source of that name already exists`}},
		{"invalid Named", func(b *topology.Builder) {
			stream.From[string, string](b, "in").Peek(func(string, string) {}, stream.Named("my peek"))
		}, []string{`name "my peek" may hold only`}},
		{"To invalid topic", func(b *topology.Builder) {
			stream.From[string, string](b, "in").To("bad topic")
		}, []string{`sink "from-in-to-bad_topic": topic name "bad topic" may hold only`}},
		{"To empty topic", func(b *topology.Builder) {
			stream.From[string, string](b, "in").To("", stream.Named("sink"))
		}, []string{`sink "sink": topic name is empty`}},
		{"To dot topic", func(b *topology.Builder) {
			stream.From[string, string](b, "in").To("..", stream.Named("sink"))
		}, []string{`sink "sink": topic name ".." is not allowed`}},
		{"From invalid topic", func(b *topology.Builder) {
			stream.From[string, string](b, "in put")
		}, []string{`topic name "in put" may hold only`}},
		{"topic read twice", func(b *topology.Builder) {
			stream.From[string, string](b, "in")
			stream.From[string, string](b, "in")
		}, []string{`topic "in" is read by both source "from-in" and source "from-in-2"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := topology.NewBuilder()
			tc.build(b)
			wantErrContains(t, buildErr(t, b), tc.want...)
		})
	}
}

func TestBuildErrorsAreAllReported(t *testing.T) {
	b := topology.NewBuilder()
	src := stream.From[string, string](b, "in")
	src.To("", stream.Named("a"))
	src.To("out", stream.WithValueSerde(serde.Int64()))
	stream.From[int, string](b, "in2")
	wantErrContains(t, buildErr(t, b), `sink "a"`, `sink "from-in-to-out"`, `source "from-in2"`)
}

// ---- serdes by type ----

type Order struct {
	ID     string   `json:"id"`
	Amount int64    `json:"amount"`
	Tags   []string `json:"tags,omitempty"`
}

func TestDefaultSerdesByType(t *testing.T) {
	b := topology.NewBuilder()
	orders := stream.From[string, Order](b, "orders")
	orders.Filter(func(k string, o Order) bool { return o.Amount > 0 }).To("out")
	d := newDriver(t, b)
	in := riffletest.Input(d, "orders", serde.String(), serde.JSON[Order]())
	for _, o := range []Order{{ID: "o1", Amount: 5}, {ID: "o2"}, {ID: "o3", Amount: 2, Tags: []string{"x"}}} {
		if err := in.Pipe(o.ID, o); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []struct{ key, value string }{
		{"o1", `{"id":"o1","amount":5}`},
		{"o3", `{"id":"o3","amount":2,"tags":["x"]}`},
	} {
		raw, ok := d.ReadRaw("out")
		if !ok {
			t.Fatalf("no record for %s", want.key)
		}
		if string(raw.Key) != want.key || string(raw.Value) != want.value {
			t.Errorf("out (%s, %s), want (%s, %s)", raw.Key, raw.Value, want.key, want.value)
		}
	}
	if d.Pending("out") != 0 {
		t.Errorf("%d records left", d.Pending("out"))
	}
	// Bytes that are not JSON give a decode error naming the JSON serde.
	err := d.PipeRaw("orders", []byte("k"), []byte("{"), ms(0))
	var se *serde.DecodeError
	if !errors.As(err, &se) || se.Serde != "JSON[stream_test.Order]" {
		t.Errorf("PipeRaw of bad JSON: %v", err)
	}
}

func TestDefaultSerdesAfterMapValues(t *testing.T) {
	// MapValues to a struct: the JSON serde is picked for the new values,
	// the key serde is kept.
	b := topology.NewBuilder()
	src := stream.From[string, int64](b, "amounts")
	stream.MapValues(src, func(n int64) Order { return Order{ID: "x", Amount: n} }).To("out")
	d := newDriver(t, b)
	if err := riffletest.Input(d, "amounts", serde.String(), serde.Int64()).Pipe("k", 9); err != nil {
		t.Fatal(err)
	}
	raw, _ := d.ReadRaw("out")
	if string(raw.Key) != "k" || string(raw.Value) != `{"id":"x","amount":9}` {
		t.Errorf("out (%s, %s)", raw.Key, raw.Value)
	}
}

// TestSerdeKeptWhenTypeUnchanged: the package documentation says "Without
// one, a serde is taken from upstream when the type did not change". An
// operator whose output type equals its input type should then keep the
// upstream serde, not fall back to serde.Default.
func TestSerdeKeptWhenTypeUnchanged(t *testing.T) {
	// A serde of *string (no default) for the values, and a custom key
	// serde for string keys.
	nullable := serde.Nullable(serde.String())
	tagged := serde.Func(
		func(s string) ([]byte, error) { return []byte("key:" + s), nil },
		func(b []byte) (string, error) { return strings.TrimPrefix(string(b), "key:"), nil })
	same := func(k string, v *string) (string, *string) { return k, v }
	cases := []struct {
		name string
		op   func(stream.Stream[string, *string]) stream.Stream[string, *string]
	}{
		{"Filter (control)", func(s stream.Stream[string, *string]) stream.Stream[string, *string] {
			return s.Filter(func(string, *string) bool { return true })
		}},
		{"MapValues", func(s stream.Stream[string, *string]) stream.Stream[string, *string] {
			return stream.MapValues(s, func(v *string) *string { return v })
		}},
		{"FlatMapValues", func(s stream.Stream[string, *string]) stream.Stream[string, *string] {
			return stream.FlatMapValues(s, func(v *string) []*string { return []*string{v} })
		}},
		{"Map", func(s stream.Stream[string, *string]) stream.Stream[string, *string] {
			return stream.Map(s, same)
		}},
		{"SelectKey", func(s stream.Stream[string, *string]) stream.Stream[string, *string] {
			return stream.SelectKey(s, func(k string, v *string) string { return k })
		}},
		{"FlatMap", func(s stream.Stream[string, *string]) stream.Stream[string, *string] {
			return stream.FlatMap(s, func(k string, v *string) []topology.KeyValue[string, *string] {
				return []topology.KeyValue[string, *string]{topology.KV(k, v)}
			})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := topology.NewBuilder()
			src := stream.From[string, *string](b, "in", stream.WithKeySerde(tagged), stream.WithValueSerde(nullable))
			tc.op(src).To("out")
			topo, err := b.Build()
			if err != nil {
				t.Fatalf("%s on an unchanged type lost the upstream serde: %v", tc.name, err)
			}
			d, err := riffletest.New(topo)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if err := d.PipeRaw("in", []byte("key:k"), []byte("v"), ms(0)); err != nil {
				t.Fatal(err)
			}
			raw, _ := d.ReadRaw("out")
			if string(raw.Key) != "key:k" {
				t.Errorf("%s on an unchanged key type wrote key %q, not with the upstream serde", tc.name, raw.Key)
			}
		})
	}
}

// TestNilFunctionsAreBuildErrors: ToFunc(nil) and Split's Branch with a nil
// predicate are Build errors naming the operator; the other operators taking
// a function should be too, rather than building and then panicking on the
// first record.
func TestNilFunctionsAreBuildErrors(t *testing.T) {
	cases := []struct {
		name  string
		build func(s stream.Stream[string, string])
	}{
		{"Filter", func(s stream.Stream[string, string]) { s.Filter(nil).To("out") }},
		{"FilterNot", func(s stream.Stream[string, string]) { s.FilterNot(nil).To("out") }},
		{"Peek", func(s stream.Stream[string, string]) { s.Peek(nil).To("out") }},
		{"Foreach", func(s stream.Stream[string, string]) { s.Foreach(nil) }},
		{"Map", func(s stream.Stream[string, string]) {
			stream.Map[string, string, string, string](s, nil).To("out")
		}},
		{"MapValues", func(s stream.Stream[string, string]) {
			stream.MapValues[string, string, string](s, nil).To("out")
		}},
		{"SelectKey", func(s stream.Stream[string, string]) {
			stream.SelectKey[string, string, string](s, nil).To("out")
		}},
		{"FlatMap", func(s stream.Stream[string, string]) {
			stream.FlatMap[string, string, string, string](s, nil).To("out")
		}},
		{"FlatMapValues", func(s stream.Stream[string, string]) {
			stream.FlatMapValues[string, string, string](s, nil).To("out")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := topology.NewBuilder()
			tc.build(stream.From[string, string](b, "in"))
			_, err := b.Build()
			if err == nil || !strings.Contains(err.Error(), "its function is nil") {
				t.Errorf("Build: %v, want an error saying the function is nil", err)
			}
		})
	}
}
