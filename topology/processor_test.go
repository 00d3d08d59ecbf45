package topology_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/riffle-streams/riffle/riffletest"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/topology"
)

// ticker records what its context says and schedules a punctuation that
// forwards a record saying when it fired.
type ticker struct {
	ctx      topology.Context[string, string]
	kind     topology.PunctuationType
	interval time.Duration
	sched    *topology.Schedule
	fires    []int64 // ms
	stopAt   int     // cancel after this many fires; 0: never
	seen     []string
}

func (p *ticker) Init(ctx topology.Context[string, string]) error {
	p.ctx = ctx
	s, err := ctx.Schedule(p.interval, p.kind, func(ts time.Time) error {
		p.fires = append(p.fires, ts.UnixMilli())
		if _, ok := p.ctx.RecordMetadata(); ok {
			return errors.New("record metadata inside a punctuation")
		}
		if p.stopAt > 0 && len(p.fires) == p.stopAt {
			p.sched.Cancel()
		}
		return p.ctx.Forward(topology.Record[string, string]{Key: "tick", Value: fmt.Sprint(ts.UnixMilli()), Timestamp: ts})
	})
	p.sched = s
	return err
}

func (p *ticker) Process(r topology.Record[string, string]) error {
	md, ok := p.ctx.RecordMetadata()
	if !ok {
		return errors.New("no record metadata while processing")
	}
	p.seen = append(p.seen, fmt.Sprintf("%s@%d:%s st=%d", md.Topic, md.Offset, r.Value, p.ctx.StreamTime().UnixMilli()))
	return nil
}

func (p *ticker) Close() error { return nil }

func runTicker(t *testing.T, p *ticker, opts ...riffletest.Option) (*riffletest.Driver, *riffletest.InputTopic[string, string], *riffletest.OutputTopic[string, string]) {
	t.Helper()
	str := serde.String()
	b := topology.NewBuilder()
	topology.AddSource(b, "in", str, str, "in")
	topology.AddProcessor(b, "tick", func() topology.Processor[string, string, string, string] { return p }, "in")
	topology.AddSink(b, "out", "out", str, str, "tick")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := riffletest.New(topo, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, riffletest.Input(d, "in", str, str), riffletest.Output(d, "out", str, str)
}

func TestStreamTimePunctuation(t *testing.T) {
	p := &ticker{kind: topology.StreamTime, interval: 10 * time.Millisecond}
	d, in, out := runTicker(t, p)
	steps := []struct {
		ts    int64
		fires []int64 // all fires so far
	}{
		{3, []int64{3}},          // the first record fires it; next at 10
		{9, []int64{3}},          // not yet
		{5, []int64{3}},          // out of order: stream time stays 9
		{10, []int64{3, 10}},     // exactly on the boundary
		{47, []int64{3, 10, 47}}, // a jump of several intervals fires once; next at 50
		{49, []int64{3, 10, 47}},
		{50, []int64{3, 10, 47, 50}},
	}
	for _, s := range steps {
		if err := in.PipeAt("k", fmt.Sprint(s.ts), time.UnixMilli(s.ts)); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(p.fires) != fmt.Sprint(s.fires) {
			t.Fatalf("after a record at %d: fired at %v, want %v", s.ts, p.fires, s.fires)
		}
	}
	if err := d.AdvanceWallClock(time.Hour); err != nil {
		t.Fatal(err)
	}
	if len(p.fires) != 4 {
		t.Errorf("wall clock fired a stream-time punctuation: %v", p.fires)
	}
	vals, err := out.ReadValues()
	if err != nil || strings.Join(vals, ",") != "3,10,47,50" {
		t.Errorf("forwarded from punctuation: %v, %v", vals, err)
	}
	wantSeen := "in@0:3 st=3,in@1:9 st=9,in@2:5 st=9,in@3:10 st=10,in@4:47 st=47,in@5:49 st=49,in@6:50 st=50"
	if got := strings.Join(p.seen, ","); got != wantSeen {
		t.Errorf("processed:\n%s\nwant:\n%s", got, wantSeen)
	}
}

func TestWallClockPunctuation(t *testing.T) {
	start := time.UnixMilli(1_000)
	p := &ticker{kind: topology.WallClockTime, interval: time.Second, stopAt: 3}
	d, in, _ := runTicker(t, p, riffletest.WithStartTime(start))
	// Records move stream time, not the wall clock.
	if err := in.PipeAt("k", "v", time.UnixMilli(1_000_000)); err != nil {
		t.Fatal(err)
	}
	if len(p.fires) != 0 {
		t.Fatalf("a record fired a wall-clock punctuation: %v", p.fires)
	}
	steps := []struct {
		by    time.Duration
		fires []int64
	}{
		{999 * time.Millisecond, nil},                  // 1999: first due at 2000
		{time.Millisecond, []int64{2000}},              // 2000
		{3500 * time.Millisecond, []int64{2000, 5500}}, // 5500: a jump fires once; next at 6000
		{400 * time.Millisecond, []int64{2000, 5500}},  // 5900
		{100 * time.Millisecond, []int64{2000, 5500, 6000}},
		{10 * time.Second, []int64{2000, 5500, 6000}}, // cancelled after the third
	}
	for _, s := range steps {
		if err := d.AdvanceWallClock(s.by); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(p.fires) != fmt.Sprint(s.fires) {
			t.Fatalf("at %d: fired at %v, want %v", d.WallClock().UnixMilli(), p.fires, s.fires)
		}
	}
	if err := d.AdvanceWallClock(-time.Second); err == nil {
		t.Error("moving the wall clock back did not fail")
	}
}

func TestScheduleErrors(t *testing.T) {
	for _, c := range []struct {
		name     string
		interval time.Duration
		kind     topology.PunctuationType
		want     string
	}{
		{"too short", time.Microsecond, topology.StreamTime, "under 1ms"},
		{"bad kind", time.Second, topology.PunctuationType(9), "unknown punctuation type"},
	} {
		t.Run(c.name, func(t *testing.T) {
			str := serde.String()
			b := topology.NewBuilder()
			topology.AddSource(b, "in", str, str, "in")
			topology.AddProcessor(b, "tick", func() topology.Processor[string, string, string, string] {
				return &ticker{kind: c.kind, interval: c.interval}
			}, "in")
			topo, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			_, err = riffletest.New(topo)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), `"tick"`) {
				t.Errorf("New: %v, want an error naming the processor and saying %q", err, c.want)
			}
		})
	}
}

// router sends "even" lengths to one child and the rest to another, and
// counts records per key in a store.
type router struct {
	ctx   topology.Context[string, string]
	store *state.TypedKeyValue[string, int64]
}

func (p *router) Init(ctx topology.Context[string, string]) error {
	p.ctx = ctx
	kv, err := topology.KeyValueStore(ctx, "counts")
	if err != nil {
		return err
	}
	p.store = state.Typed(kv, serde.String(), serde.Int64())
	if _, err := ctx.Store("other"); err == nil {
		return errors.New("reached a store that is not connected")
	}
	if ctx.NodeName() != "route" || ctx.ApplicationID() != "app" || ctx.TaskID().String() != "0_0" {
		return fmt.Errorf("context: node %q app %q task %v", ctx.NodeName(), ctx.ApplicationID(), ctx.TaskID())
	}
	return nil
}

func (p *router) Process(r topology.Record[string, string]) error {
	n, _, err := p.store.Get(r.Key)
	if err != nil {
		return err
	}
	if err := p.store.Put(r.Key, n+1); err != nil {
		return err
	}
	switch {
	case r.Value == "boom":
		panic("boom")
	case r.Value == "fail":
		return errors.New("refused")
	case r.Value == "stray":
		return p.ctx.ForwardTo("nowhere", r)
	case len(r.Value)%2 == 0:
		return p.ctx.ForwardTo("even", r)
	}
	return p.ctx.ForwardTo("odd", r)
}

func (p *router) Close() error { return nil }

func TestProcessorAPI(t *testing.T) {
	str := serde.String()
	b := topology.NewBuilder()
	topology.AddSource(b, "in", str, str, "in")
	topology.AddProcessor(b, "route", func() topology.Processor[string, string, string, string] { return &router{} }, "in")
	topology.AddProcessor(b, "even", passOf[string, string](), "route")
	topology.AddProcessor(b, "odd", passOf[string, string](), "route")
	topology.AddSink(b, "even-out", "even", str, str, "even")
	topology.AddSink(b, "odd-out", "odd", str, str, "odd")
	b.AddStore(state.KeyValue("counts", state.InMemory()), "route")
	b.AddStore(state.KeyValue("other", state.InMemory()), "odd")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := riffletest.New(topo, riffletest.WithApplicationID("app"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	in := riffletest.Input(d, "in", str, str)
	for _, v := range []string{"ab", "abc", "", "x"} {
		if err := in.Pipe("k", v); err != nil {
			t.Fatal(err)
		}
	}
	even, odd := riffletest.Output(d, "even", str, str), riffletest.Output(d, "odd", str, str)
	if got, _ := even.ReadValues(); fmt.Sprintf("%q", got) != `["ab" ""]` {
		t.Errorf("even: %q", got)
	}
	if got, _ := odd.ReadValues(); fmt.Sprintf("%q", got) != `["abc" "x"]` {
		t.Errorf("odd: %q", got)
	}

	// An error names the processor and the record's origin.
	err = in.Pipe("k", "fail")
	var pe *topology.ProcessorError
	if !errors.As(err, &pe) || pe.Node != "route" || pe.Panic || pe.Metadata.Topic != "in" || pe.Metadata.Offset != 4 {
		t.Fatalf("error: %#v", err)
	}
	if !strings.Contains(err.Error(), `processor "route" failed on in[0]@4: refused`) {
		t.Errorf("message: %v", err)
	}
	// A panic too, and the driver goes on afterwards.
	err = in.Pipe("k", "boom")
	if !errors.As(err, &pe) || pe.Node != "route" || !pe.Panic || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("panic: %v", err)
	}
	err = in.Pipe("k", "stray")
	if !errors.Is(err, topology.ErrNoSuchChild) || !strings.Contains(err.Error(), `"nowhere"`) {
		t.Errorf("forward to an unknown child: %v", err)
	}
	if err := in.Pipe("k", "zz"); err != nil {
		t.Fatal(err)
	}
	kv, err := d.KeyValueStore("counts")
	if err != nil {
		t.Fatal(err)
	}
	n, ok, err := state.TypedRead(kv, str, serde.Int64()).Get("k")
	if err != nil || !ok || n != 8 {
		t.Errorf("count = %d, %v, %v; want 8", n, ok, err)
	}
}

// panicky panics where it is told to.
type panicky struct {
	ctx   topology.Context[string, string]
	where string
}

func (p *panicky) Init(ctx topology.Context[string, string]) error {
	p.ctx = ctx
	if p.where == "init" {
		return errors.New("no init")
	}
	_, err := ctx.Schedule(time.Second, topology.WallClockTime, func(time.Time) error {
		if p.where == "punctuate" {
			panic(fmt.Errorf("tick failed"))
		}
		return nil
	})
	return err
}
func (p *panicky) Process(r topology.Record[string, string]) error { return p.ctx.Forward(r) }
func (p *panicky) Close() error {
	if p.where == "close" {
		panic("no close")
	}
	return nil
}

func TestPanicsAndFailures(t *testing.T) {
	build := func(where string) *topology.Topology {
		str := serde.String()
		b := topology.NewBuilder()
		topology.AddSource(b, "in", str, str, "in")
		topology.AddProcessor(b, "p", func() topology.Processor[string, string, string, string] { return &panicky{where: where} }, "in")
		topo, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		return topo
	}
	if _, err := riffletest.New(build("init")); err == nil || !strings.Contains(err.Error(), `init processor "p": no init`) {
		t.Errorf("init failure: %v", err)
	}

	d, err := riffletest.New(build("punctuate"))
	if err != nil {
		t.Fatal(err)
	}
	err = d.AdvanceWallClock(time.Second)
	var pe *topology.ProcessorError
	if !errors.As(err, &pe) || !pe.Panic || pe.Node != "p" || !strings.Contains(err.Error(), "in a punctuation") || !strings.Contains(err.Error(), "tick failed") {
		t.Errorf("punctuation panic: %v", err)
	}
	d.Close()

	d, err = riffletest.New(build("close"))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); !errors.As(err, &pe) || !pe.Panic || pe.Node != "p" {
		t.Errorf("close panic: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
}

// typeSwitch forwards int64 records to a child that takes strings: the
// Processor API cannot stop that at compile time, so Build must.
func TestProcessorTypesChecked(t *testing.T) {
	str, i64 := serde.String(), serde.Int64()
	b := topology.NewBuilder()
	topology.AddSource(b, "in", str, i64, "in")
	topology.AddProcessor(b, "ints", passOf[string, int64](), "in")
	topology.AddSink(b, "out", "out", str, str, "ints")
	_, err := b.Build()
	if err == nil || !strings.Contains(err.Error(), `sink "out" takes records of (string, string) but its parent "ints" puts out (string, int64)`) {
		t.Errorf("Build: %v", err)
	}
}
