package stream_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/riffle-streams/riffle/riffletest"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/stream"
	"github.com/riffle-streams/riffle/topology"
)

// counter counts the records of each key in the store "counts" and forwards
// (key, count so far).
type counter struct {
	ctx    topology.Context[string, int64]
	counts *state.TypedKeyValue[string, int64]
}

func (c *counter) Init(ctx topology.Context[string, int64]) error {
	kv, err := topology.KeyValueStore(ctx, "counts")
	if err != nil {
		return err
	}
	c.ctx = ctx
	c.counts = state.Typed(kv, serde.String(), serde.Int64())
	return nil
}

func (c *counter) Process(r topology.Record[string, string]) error {
	n, _, err := c.counts.Get(r.Key)
	if err != nil {
		return err
	}
	n++
	if err := c.counts.Put(r.Key, n); err != nil {
		return err
	}
	return c.ctx.Forward(topology.Record[string, int64]{Key: r.Key, Value: n, Timestamp: r.Timestamp, Headers: r.Headers})
}

func (c *counter) Close() error { return nil }

func newCounter() topology.Processor[string, string, string, int64] { return &counter{} }

func TestProcessWithStore(t *testing.T) {
	b := topology.NewBuilder()
	b.AddStore(state.KeyValue("counts", state.InMemory()))
	src := stream.From[string, string](b, "in")
	counts := stream.Process(src, newCounter, stream.WithStores("counts"), stream.Named("count"))
	counts.To("out")

	topo := mustBuild(t, b)
	if desc := topo.Describe(); !strings.Contains(desc, "Processor: count (stores: counts)\n") {
		t.Errorf("Describe does not show the store:\n%s", desc)
	}
	if st := topo.SubTopologies()[0].Stores; len(st) != 1 || st[0].Name != "counts" {
		t.Errorf("sub-topology stores %+v, want [counts]", st)
	}

	d := newDriver(t, b)
	pipeAll(t, strIn(d, "in"), kv("a", "x"), kv("b", "y"), kv("a", "z"), kv("a", "w"))
	got := readKVs(t, d, "out", serde.String(), serde.Int64())
	want := []topology.KeyValue[string, int64]{
		topology.KV("a", int64(1)), topology.KV("b", int64(1)), topology.KV("a", int64(2)), topology.KV("a", int64(3)),
	}
	wantKVs(t, "out", got, want)

	kvs, err := d.KeyValueStore("counts")
	if err != nil {
		t.Fatal(err)
	}
	typed := state.TypedRead(kvs, serde.String(), serde.Int64())
	for k, want := range map[string]int64{"a": 3, "b": 1} {
		n, ok, err := typed.Get(k)
		if err != nil || !ok || n != want {
			t.Errorf("store counts[%q] = %d, %v, %v; want %d", k, n, ok, err, want)
		}
	}
	if _, ok, _ := typed.Get("c"); ok {
		t.Errorf("store counts has a key never piped")
	}
	if _, err := d.KeyValueStore("nope"); err == nil {
		t.Errorf("KeyValueStore of an unknown store succeeded")
	}
}

func TestProcessStoreErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		build func(b *topology.Builder)
		want  []string
	}{
		{"store not declared", func(b *topology.Builder) {
			stream.Process(stream.From[string, string](b, "in"), newCounter, stream.WithStores("counts"), stream.Named("count"))
		}, []string{`store "counts" is connected to "count" but was never declared`}},
		{"store declared but not connected", func(b *topology.Builder) {
			b.AddStore(state.KeyValue("counts", state.InMemory()))
			stream.Process(stream.From[string, string](b, "in"), newCounter)
		}, []string{`store "counts" is connected to no processor`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := topology.NewBuilder()
			tc.build(b)
			wantErrContains(t, buildErr(t, b), tc.want...)
		})
	}
}

func TestProcessStoreNotConnectedFailsInit(t *testing.T) {
	// The store exists, but is connected to another processor: Init's
	// lookup fails, and so does starting the driver.
	b := topology.NewBuilder()
	src := stream.From[string, string](b, "in")
	b.AddStore(state.KeyValue("counts", state.InMemory()))
	stream.Process(src, newCounter, stream.WithStores("counts"), stream.Named("owner")).To("out")
	stream.Process(src, newCounter, stream.Named("thief")).To("out2")
	topo := mustBuild(t, b)
	d, err := riffletest.New(topo)
	if err == nil {
		_ = d.Close()
	}
	wantErrContains(t, err, `processor "thief": store "counts" is not connected to it`)
}

// router forwards records with an even-length value to the child "evens",
// the others to "odds", and those with value "lost" to a child that does not
// exist.
type router struct {
	ctx topology.Context[string, string]
}

func (r *router) Init(ctx topology.Context[string, string]) error { r.ctx = ctx; return nil }
func (r *router) Close() error                                    { return nil }
func (r *router) Process(rec topology.Record[string, string]) error {
	switch {
	case rec.Value == "lost":
		return r.ctx.ForwardTo("nobody", rec)
	case len(rec.Value)%2 == 0:
		return r.ctx.ForwardTo("evens", rec)
	default:
		return r.ctx.ForwardTo("odds", rec)
	}
}

func TestProcessForwardTo(t *testing.T) {
	b := topology.NewBuilder()
	src := stream.From[string, string](b, "in")
	routed := stream.Process(src, func() topology.Processor[string, string, string, string] { return &router{} }, stream.Named("route"))
	routed.To("even", stream.Named("evens"))
	stream.MapValues(routed, strings.ToUpper, stream.Named("odds")).To("odd")
	d := newDriver(t, b)
	in := strIn(d, "in")
	pipeAll(t, in, kv("a", "xx"), kv("b", "y"), kv("c", ""), kv("d", "zzz"))
	wantKVs(t, "even", readStr(t, d, "even"), []skv{kv("a", "xx"), kv("c", "")})
	wantKVs(t, "odd", readStr(t, d, "odd"), []skv{kv("b", "Y"), kv("d", "ZZZ")})

	err := in.Pipe("e", "lost")
	var pe *topology.ProcessorError
	if !errors.As(err, &pe) || pe.Node != "route" {
		t.Fatalf("ForwardTo an unknown child: error %v, want a *topology.ProcessorError naming route", err)
	}
	if !errors.Is(err, topology.ErrNoSuchChild) {
		t.Errorf("error %v does not wrap topology.ErrNoSuchChild", err)
	}
	wantErrContains(t, err, `"nobody"`)
}

// failer returns errBoom for the value "bad" and panics for "panic".
type failer struct {
	ctx topology.Context[string, string]
}

var errBoom = errors.New("boom")

func (f *failer) Init(ctx topology.Context[string, string]) error { f.ctx = ctx; return nil }
func (f *failer) Close() error                                    { return nil }
func (f *failer) Process(r topology.Record[string, string]) error {
	switch r.Value {
	case "bad":
		return fmt.Errorf("cannot take %q: %w", r.Key, errBoom)
	case "panic":
		panic("kaboom")
	case "panic-error":
		panic(errBoom)
	}
	return f.ctx.Forward(r)
}

func newFailer() topology.Processor[string, string, string, string] { return &failer{} }

func TestProcessError(t *testing.T) {
	b := topology.NewBuilder()
	src := stream.From[string, string](b, "in")
	// Behind a filter, so the error must name the failing node, not the
	// first one.
	pre := src.Filter(func(k, v string) bool { return true })
	stream.Process(pre, newFailer, stream.Named("validate")).To("out")
	d := newDriver(t, b)
	in := strIn(d, "in")
	pipeAll(t, in, kv("a", "1"), kv("b", "2"))
	err := in.Pipe("c", "bad")
	var pe *topology.ProcessorError
	if !errors.As(err, &pe) {
		t.Fatalf("Pipe error %v (%T), want a *topology.ProcessorError", err, err)
	}
	if pe.Node != "validate" || pe.Panic {
		t.Errorf("ProcessorError node %q panic %v, want validate, false", pe.Node, pe.Panic)
	}
	if want := (topology.RecordMetadata{Topic: "in", Partition: 0, Offset: 2}); pe.Metadata != want {
		t.Errorf("metadata %+v, want %+v", pe.Metadata, want)
	}
	if pe.Task != (topology.TaskID{}) {
		t.Errorf("task %v, want 0_0", pe.Task)
	}
	if !errors.Is(err, errBoom) {
		t.Errorf("error %v does not wrap the processor's error", err)
	}
	wantErrContains(t, err, `processor "validate" failed on in[0]@2`, `cannot take "c": boom`)

	// The driver goes on.
	pipeAll(t, in, kv("d", "4"))
	wantKVs(t, "out", readStr(t, d, "out"), []skv{kv("a", "1"), kv("b", "2"), kv("d", "4")})
}

func TestProcessPanic(t *testing.T) {
	for _, tc := range []struct {
		value   string
		wantMsg string
		isBoom  bool
	}{
		{"panic", "kaboom", false},
		{"panic-error", "boom", true},
	} {
		t.Run(tc.value, func(t *testing.T) {
			b := topology.NewBuilder()
			src := stream.From[string, string](b, "in")
			stream.Process(src.Peek(func(string, string) {}), newFailer, stream.Named("fragile")).To("out")
			d := newDriver(t, b)
			in := strIn(d, "in")
			pipeAll(t, in, kv("a", "1"))
			err := in.Pipe("b", tc.value)
			var pe *topology.ProcessorError
			if !errors.As(err, &pe) {
				t.Fatalf("Pipe error %v (%T), want a *topology.ProcessorError", err, err)
			}
			if !pe.Panic || pe.Node != "fragile" {
				t.Errorf("ProcessorError panic %v node %q, want true, fragile", pe.Panic, pe.Node)
			}
			wantErrContains(t, err, `processor "fragile" panicked`, tc.wantMsg)
			if errors.Is(err, errBoom) != tc.isBoom {
				t.Errorf("errors.Is(err, errBoom) = %v, want %v", !tc.isBoom, tc.isBoom)
			}
			// The driver remains usable, and nothing of the failed record
			// got out.
			pipeAll(t, in, kv("c", "3"))
			wantKVs(t, "out", readStr(t, d, "out"), []skv{kv("a", "1"), kv("c", "3")})
			// A second panic is reported the same way.
			if err := in.Pipe("d", tc.value); !errors.As(err, &pe) || pe.Node != "fragile" || !pe.Panic {
				t.Errorf("second panic: %v", err)
			}
		})
	}
}

// TestProcessPanicMetadata: a panic's ProcessorError should say which record
// was being processed, as a returned error's does.
func TestProcessPanicMetadata(t *testing.T) {
	b := topology.NewBuilder()
	stream.Process(stream.From[string, string](b, "in"), newFailer, stream.Named("fragile")).To("out")
	d := newDriver(t, b)
	in := strIn(d, "in")
	pipeAll(t, in, kv("a", "1"))
	err := in.Pipe("b", "panic")
	var pe *topology.ProcessorError
	if !errors.As(err, &pe) {
		t.Fatalf("Pipe error %v, want a *topology.ProcessorError", err)
	}
	want := topology.RecordMetadata{Topic: "in", Partition: 0, Offset: 1}
	if pe.Metadata != want {
		t.Errorf("panic's ProcessorError has Metadata %+v, want %+v (%v)", pe.Metadata, want, err)
	}
	wantErrContains(t, err, "panicked on in[0]@1")
}

func TestProcessChangesTypes(t *testing.T) {
	b := topology.NewBuilder()
	b.AddStore(state.KeyValue("counts", state.InMemory()))
	counts := stream.Process(stream.From[string, string](b, "in"), newCounter, stream.WithStores("counts"))
	if got, want := counts.Name(), "from-in-process"; got != want {
		t.Errorf("Name() = %q, want %q", got, want)
	}
	// Without a serde option, the int64 values get the default serde.
	stream.MapValues(counts, func(n int64) string { return fmt.Sprint(n * 10) }).To("out")
	d := newDriver(t, b)
	pipeAll(t, strIn(d, "in"), kv("a", ""), kv("a", ""))
	wantKVs(t, "out", readStr(t, d, "out"), []skv{kv("a", "10"), kv("a", "20")})
}
