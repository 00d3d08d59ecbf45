package table_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/riffle-streams/riffle/riffletest"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/stream"
	"github.com/riffle-streams/riffle/table"
	"github.com/riffle-streams/riffle/topology"
)

// Region is the value of the global table the lookup tests read.
type Region struct {
	Name string  `json:"name"`
	Tax  float64 `json:"tax"`
}

var regions = serde.JSON[Region]()

// enricher looks each order's region up in a global table: the order's
// value is the region's key.
type enricher struct {
	ctx    topology.Context[string, string]
	global table.GlobalTable[string, Region]
}

func (e *enricher) Init(ctx topology.Context[string, string]) error { e.ctx = ctx; return nil }
func (e *enricher) Close() error                                    { return nil }
func (e *enricher) Process(r topology.Record[string, string]) error {
	reg, ok, err := e.global.Get(e.ctx, r.Value)
	if err != nil {
		return err
	}
	out := r.Value + ":unknown"
	if ok {
		out = reg.Name + "@" + show(reg.Tax)
	}
	return e.ctx.Forward(topology.Record[string, string]{Key: r.Key, Value: out, Timestamp: r.Timestamp})
}

func TestGlobalTableLookup(t *testing.T) {
	forBackends(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		g := table.Global[string, Region](b, "regions")
		if g.StoreName() != "global-regions" || g.KeySerde() == nil || g.ValueSerde() == nil {
			t.Errorf("StoreName() = %q, serdes %v %v", g.StoreName(), g.KeySerde(), g.ValueSerde())
		}
		orders := stream.From[string, string](b, "orders")
		// Looked up in the orders' own sub-topology, and in another one
		// behind a repartition topic: a global table needs no
		// co-partitioning.
		stream.Process(orders, func() topology.Processor[string, string, string, string] {
			return &enricher{global: g}
		}, stream.Named("enrich")).To("enriched")
		stream.Process(orders.Repartition(stream.Named("orders-again")), func() topology.Processor[string, string, string, string] {
			return &enricher{global: g}
		}, stream.Named("enrich-again")).To("enriched-again")
		topo := mustBuild(t, b)
		if n := len(topo.SubTopologies()); n != 2 {
			t.Fatalf("%d sub-topologies, want 2:\n%s", n, topo.Describe())
		}
		if !strings.HasPrefix(topo.Describe(), "Global store: global-regions (topic: regions)\n") {
			t.Errorf("Describe does not start with the global store:\n%s", topo.Describe())
		}
		want(t, "changelogs", internalTopics(topo, topology.ChangelogTopic), nil)
		gs := topo.GlobalStores()
		if len(gs) != 1 || gs[0].Topic != "regions" || gs[0].Spec.Name != "global-regions" || gs[0].Spec.Logged {
			t.Errorf("GlobalStores() = %+v", gs)
		}

		d, err := riffletest.New(topo, opt)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		regionsIn := riffletest.Input(d, "regions", str, regions)
		ordersIn := riffletest.Input(d, "orders", str, str)
		order := func(id, region string) {
			t.Helper()
			pipe(t, ordersIn, id, region)
		}

		order("o1", "eu") // before the table has it
		pipe(t, regionsIn, "eu", Region{"Europe", 0.2})
		pipe(t, regionsIn, "us", Region{"America", 0.1})
		order("o2", "eu")
		order("o3", "us")
		pipe(t, regionsIn, "eu", Region{"EU", 0.25}) // an update
		order("o4", "eu")
		tombstone(t, d, "regions", []byte("us")) // a deletion
		order("o5", "us")
		tombstone(t, d, "regions", []byte("mars")) // deleting an absent key
		if err := d.PipeRaw("regions", nil, []byte(`{"name":"Nowhere"}`), epoch); err != nil {
			t.Fatalf("PipeRaw null key: %v", err)
		}
		order("o6", "eu")

		wantOut := []string{"o1=eu:unknown", "o2=Europe@0.2", "o3=America@0.1", "o4=EU@0.25", "o5=us:unknown", "o6=EU@0.25"}
		want(t, "enriched", readTopic(t, d, "enriched", str, str), wantOut)
		want(t, "enriched again", readTopic(t, d, "enriched-again", str, str), wantOut)
		want(t, "global store", storeContents(t, d, "global-regions", str, regions), []string{"eu={EU 0.25}"})
		if n := d.SkippedRecords(); n != 1 {
			t.Errorf("SkippedRecords() = %d, want 1 (the null key)", n)
		}
		// The global store cannot be written from outside.
		ro, err := d.KeyValueStore("global-regions")
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := ro.(state.KeyValueStore); ok {
			t.Errorf("KeyValueStore(global) can be written")
		}
	})
}

func TestGlobalTableNaming(t *testing.T) {
	b := topology.NewBuilder()
	named := table.Global[string, string](b, "a", table.Named("by-name"))
	mat := table.Global[string, string](b, "b", table.Named("ignored"), table.Materialized("by-store", state.InMemory()))
	plain := table.Global[string, string](b, "c")
	if named.StoreName() != "by-name" || mat.StoreName() != "by-store" || plain.StoreName() != "global-c" {
		t.Errorf("store names %q %q %q", named.StoreName(), mat.StoreName(), plain.StoreName())
	}
	topo := mustBuild(t, b)
	var got []string
	for _, g := range topo.GlobalStores() {
		got = append(got, g.Spec.Name+"<-"+g.Topic+":"+g.Spec.Backend.String())
	}
	want(t, "global stores", got, []string{"by-name<-a:persistent", "by-store<-b:in-memory", "global-c<-c:persistent"})
	want(t, "internal topics", internalTopics(topo, topology.ChangelogTopic), nil)
}

// A global table's value type with no nil still takes deletions, and Get of
// a key that is absent reports false with V's zero value.
func TestGlobalTableInt64(t *testing.T) {
	forBackends(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		limits := table.Global[string, int64](b, "limits")
		var seen []string
		stream.Process(stream.From[string, string](b, "checks"), func() topology.Processor[string, string, string, string] {
			return &lookup[int64]{global: limits, seen: &seen}
		})
		d := newDriver(t, b, opt)
		lim := riffletest.Input(d, "limits", str, i64)
		checks := riffletest.Input(d, "checks", str, str)
		pipe(t, checks, "1", "alice")
		pipe(t, lim, "alice", 0)
		pipe(t, checks, "2", "alice")
		pipe(t, lim, "alice", 7)
		pipe(t, checks, "3", "alice")
		tombstone(t, d, "limits", []byte("alice"))
		pipe(t, checks, "4", "alice")
		want(t, "lookups", seen, []string{"alice=0,false", "alice=0,true", "alice=7,true", "alice=0,false"})
	})
}

// lookup records what Get returns for each record's value.
type lookup[V any] struct {
	ctx    topology.Context[string, string]
	global table.GlobalTable[string, V]
	seen   *[]string
}

func (l *lookup[V]) Init(ctx topology.Context[string, string]) error { l.ctx = ctx; return nil }
func (l *lookup[V]) Close() error                                    { return nil }
func (l *lookup[V]) Process(r topology.Record[string, string]) error {
	v, ok, err := l.global.Get(l.ctx, r.Value)
	if err != nil {
		return err
	}
	*l.seen = append(*l.seen, r.Value+"="+show(v)+","+show(ok))
	return nil
}

// A global table is read through the Context of the processor asking: a
// store of the processor's own that is not key-value, or a missing store,
// is an error, not a panic.
func TestGlobalTableGetErrors(t *testing.T) {
	forBackends(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		g := table.Global[string, string](b, "regions")
		missing := table.Global[string, string](topology.NewBuilder(), "elsewhere")
		var errs []error
		stream.Process(stream.From[string, string](b, "in"), func() topology.Processor[string, string, string, string] {
			return &getErr{tables: []table.GlobalTable[string, string]{g, missing}, errs: &errs}
		})
		d := newDriver(t, b, opt)
		pipe(t, riffletest.Input(d, "in", str, str), "k", "v")
		if len(errs) != 2 || errs[0] != nil || errs[1] == nil {
			t.Fatalf("errors %v; want nil for the topology's table and one for the other", errs)
		}
		if !strings.Contains(errs[1].Error(), "global-elsewhere") {
			t.Errorf("error %q does not name the store", errs[1])
		}
	})
}

type getErr struct {
	ctx    topology.Context[string, string]
	tables []table.GlobalTable[string, string]
	errs   *[]error
}

func (p *getErr) Init(ctx topology.Context[string, string]) error { p.ctx = ctx; return nil }
func (p *getErr) Close() error                                    { return nil }
func (p *getErr) Process(r topology.Record[string, string]) error {
	for _, g := range p.tables {
		_, _, err := g.Get(p.ctx, r.Key)
		*p.errs = append(*p.errs, err)
	}
	return nil
}

// A processor may not write a global store: it gets a read-only view.
func TestGlobalStoreIsReadOnlyToProcessors(t *testing.T) {
	forBackends(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		g := table.Global[string, string](b, "regions")
		var got error
		stream.Process(stream.From[string, string](b, "in"), func() topology.Processor[string, string, string, string] {
			return &storeGrabber{name: g.StoreName(), got: &got}
		})
		d := newDriver(t, b, opt)
		pipe(t, riffletest.Input(d, "in", str, str), "k", "v")
		if !errors.Is(got, errReadOnly) {
			t.Errorf("global store as seen by a processor: %v", got)
		}
	})
}

var errReadOnly = errors.New("read-only")

type storeGrabber struct {
	ctx  topology.Context[string, string]
	name string
	got  *error
}

func (p *storeGrabber) Init(ctx topology.Context[string, string]) error { p.ctx = ctx; return nil }
func (p *storeGrabber) Close() error                                    { return nil }
func (p *storeGrabber) Process(topology.Record[string, string]) error {
	s, err := p.ctx.Store(p.name)
	switch {
	case err != nil:
		*p.got = err
	case isWritable(s):
		*p.got = errors.New("writable")
	default:
		*p.got = errReadOnly
	}
	return nil
}

func isWritable(s state.Store) bool { _, ok := s.(state.KeyValueStore); return ok }

// A record the topology itself writes to a global table's topic reaches
// the global store, as it does on Kafka (and in Kafka Streams'
// TopologyTestDriver, which feeds its own output to global stores).
func TestGlobalTableFedByTheTopology(t *testing.T) {
	forBackends(t, func(t *testing.T, opt riffletest.Option) {
		b := topology.NewBuilder()
		g := table.Global[string, string](b, "regions")
		stream.From[string, string](b, "region-updates").To("regions")
		var seen []string
		stream.Process(stream.From[string, string](b, "checks"), func() topology.Processor[string, string, string, string] {
			return &lookup[string]{global: g, seen: &seen}
		})
		d := newDriver(t, b, opt)
		pipe(t, riffletest.Input(d, "region-updates", str, str), "eu", "Europe")
		pipe(t, riffletest.Input(d, "checks", str, str), "1", "eu")
		want(t, "lookups", seen, []string{"eu=Europe,true"})
		want(t, "global store", storeContents(t, d, "global-regions", str, str), []string{"eu=Europe"})
	})
}
