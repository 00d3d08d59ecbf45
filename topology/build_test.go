package topology_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/topology"
)

// pass is a processor that forwards every record unchanged.
type pass[K, V any] struct{ ctx topology.Context[K, V] }

func (p *pass[K, V]) Init(ctx topology.Context[K, V]) error { p.ctx = ctx; return nil }
func (p *pass[K, V]) Process(r topology.Record[K, V]) error { return p.ctx.Forward(r) }
func (p *pass[K, V]) Close() error                          { return nil }

func passOf[K, V any]() func() topology.Processor[K, V, K, V] {
	return func() topology.Processor[K, V, K, V] { return &pass[K, V]{} }
}

func TestBuildErrors(t *testing.T) {
	str, i64 := serde.String(), serde.Int64()
	cases := []struct {
		name  string
		build func(b *topology.Builder)
		want  []string // substrings of the error
	}{
		{"empty", func(b *topology.Builder) {}, []string{"no sources"}},
		{"duplicate node", func(b *topology.Builder) {
			topology.AddSource(b, "src", str, str, "in")
			topology.AddProcessor(b, "src", passOf[string, string](), "src")
		}, []string{`processor "src": a source of that name already exists`}},
		{"unknown parent", func(b *topology.Builder) {
			topology.AddSource(b, "src", str, str, "in")
			topology.AddProcessor(b, "p", passOf[string, string](), "nope")
		}, []string{`processor "p": parent "nope" is not in the topology`}},
		{"own parent", func(b *topology.Builder) {
			topology.AddSource(b, "src", str, str, "in")
			topology.AddProcessor(b, "p", passOf[string, string](), "p")
		}, []string{`processor "p": a node cannot be its own parent`}},
		{"no parent", func(b *topology.Builder) {
			topology.AddSource(b, "src", str, str, "in")
			topology.AddSink(b, "out", "out", str, str)
		}, []string{`sink "out" has no parent`}},
		{"sink as parent", func(b *topology.Builder) {
			topology.AddSource(b, "src", str, str, "in")
			topology.AddSink(b, "out", "out", str, str, "src")
			topology.AddProcessor(b, "p", passOf[string, string](), "out")
		}, []string{`parent "out" is a sink`}},
		{"type mismatch", func(b *topology.Builder) {
			topology.AddSource(b, "src", str, i64, "in")
			topology.AddProcessor(b, "p", passOf[string, string](), "src")
		}, []string{`processor "p" takes records of (string, string) but its parent "src" puts out (string, int64)`}},
		{"topic read twice", func(b *topology.Builder) {
			topology.AddSource(b, "a", str, str, "in")
			topology.AddSource(b, "b", str, str, "in")
		}, []string{`topic "in" is read by both source "a" and source "b"`}},
		{"pattern overlaps topic", func(b *topology.Builder) {
			topology.AddSource(b, "a", str, str, "orders-eu")
			topology.AddPatternSource(b, "b", str, str, regexp.MustCompile(`orders-.*`))
		}, []string{`topic "orders-eu" is read by source "a" and matches the pattern of source "b"`}},
		{"source without topics", func(b *topology.Builder) {
			topology.AddSource[string, string](b, "a", str, str)
		}, []string{`source "a" reads no topic`}},
		{"bad topic name", func(b *topology.Builder) {
			topology.AddSource(b, "a", str, str, "in put")
		}, []string{`source "a": topic name "in put" may hold only`}},
		{"bad node name", func(b *topology.Builder) {
			topology.AddSource(b, "a/b", str, str, "in")
		}, []string{`source: name "a/b" may hold only`}},
		{"nil serde", func(b *topology.Builder) {
			topology.AddSource[string, string](b, "a", nil, str, "in")
		}, []string{`source "a": key and value serdes are required`}},
		{"undeclared store", func(b *topology.Builder) {
			topology.AddSource(b, "src", str, str, "in")
			topology.AddProcessor(b, "p", passOf[string, string](), "src")
			b.ConnectStore("counts", "p")
		}, []string{`store "counts" is connected to "p" but was never declared`}},
		{"store on a non-processor", func(b *topology.Builder) {
			topology.AddSource(b, "src", str, str, "in")
			b.AddStore(state.KeyValue("counts"), "src")
		}, []string{`store "counts": "src" is not a processor`, `store "counts" is connected to no processor`}},
		{"store declared twice", func(b *topology.Builder) {
			topology.AddSource(b, "src", str, str, "in")
			topology.AddProcessor(b, "p", passOf[string, string](), "src")
			b.AddStore(state.KeyValue("counts"), "p")
			b.AddStore(state.KeyValue("counts"), "p")
		}, []string{`store "counts" is declared twice`}},
		{"bad store name", func(b *topology.Builder) {
			topology.AddSource(b, "src", str, str, "in")
			b.AddStore(state.KeyValue("my store"))
		}, []string{`store "my store": name may hold only`}},
		{"several at once", func(b *topology.Builder) {
			topology.AddSource(b, "src", str, str, "in")
			topology.AddProcessor(b, "p", passOf[string, string](), "x")
			topology.AddSink(b, "s", "", str, str, "src")
		}, []string{`parent "x"`, `sink "s": topic name is empty`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := topology.NewBuilder()
			c.build(b)
			topo, err := b.Build()
			if err == nil {
				t.Fatalf("Build succeeded:\n%s", topo.Describe())
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestSubTopologies(t *testing.T) {
	str := serde.String()
	b := topology.NewBuilder()
	// Two sources that share a store belong to one sub-topology; a third
	// source on its own is another; a repartition starts a third.
	topology.AddSource(b, "a", str, str, "in-a")
	topology.AddProcessor(b, "pa", passOf[string, string](), "a")
	topology.AddSource(b, "lonely", str, str, "in-c")
	topology.AddSink(b, "lonely-out", "out-c", str, str, "lonely")
	topology.AddSource(b, "b", str, str, "in-b")
	topology.AddProcessor(b, "pb", passOf[string, string](), "b")
	b.AddStore(state.KeyValue("shared", state.InMemory()), "pa", "pb")
	src := topology.AddRepartition(b, "rekeyed", str, str, 6, "pb")
	topology.AddSink(b, "final", "out", str, str, src)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	subs := topo.SubTopologies()
	if len(subs) != 3 {
		t.Fatalf("got %d sub-topologies:\n%s", len(subs), topo.Describe())
	}
	want := []struct {
		nodes  []string
		topics []string
		stores []string
	}{
		{[]string{"a", "pa", "b", "pb", "rekeyed-repartition-sink"}, []string{"in-a", "in-b"}, []string{"shared"}},
		{[]string{"lonely", "lonely-out"}, []string{"in-c"}, nil},
		{[]string{"rekeyed-repartition-source", "final"}, []string{"rekeyed-repartition"}, nil},
	}
	for i, w := range want {
		st := subs[i]
		if st.ID != i || strings.Join(st.Nodes, ",") != strings.Join(w.nodes, ",") {
			t.Errorf("sub-topology %d: id %d nodes %v, want %v", i, st.ID, st.Nodes, w.nodes)
		}
		var topics, stores []string
		for _, tp := range st.SourceTopics {
			topics = append(topics, tp.Name)
		}
		for _, sp := range st.Stores {
			stores = append(stores, sp.Name)
		}
		if strings.Join(topics, ",") != strings.Join(w.topics, ",") || strings.Join(stores, ",") != strings.Join(w.stores, ",") {
			t.Errorf("sub-topology %d: topics %v stores %v, want %v %v", i, topics, stores, w.topics, w.stores)
		}
	}
	if got := subs[2].SourceTopics[0].Resolve("app"); got != "app-rekeyed-repartition" {
		t.Errorf("repartition topic resolves to %q", got)
	}
	its := topo.InternalTopics()
	if len(its) != 2 {
		t.Fatalf("internal topics: %+v", its)
	}
	if its[0].Name != "rekeyed-repartition" || its[0].Kind != topology.RepartitionTopic || its[0].Partitions != 6 {
		t.Errorf("repartition topic: %+v", its[0])
	}
	if its[1].Resolve("app") != "app-shared-changelog" || its[1].Kind != topology.ChangelogTopic {
		t.Errorf("changelog topic: %+v", its[1])
	}
	if st := topo.SubTopologyOf("app", "app-rekeyed-repartition"); st == nil || st.ID != 2 {
		t.Errorf("SubTopologyOf(repartition topic) = %v", st)
	}
	if st := topo.SubTopologyOf("app", "nope"); st != nil {
		t.Errorf("SubTopologyOf(nope) = %v", st)
	}
}

func TestNewNameIsStable(t *testing.T) {
	b := topology.NewBuilder()
	if got := b.NewName("orders", "filter"); got != "orders-filter" {
		t.Errorf("first name %q", got)
	}
	// The reserved name is not handed out twice.
	if got := b.NewName("orders", "filter"); got != "orders-filter-2" {
		t.Errorf("second name %q", got)
	}
	if got := b.NewName("", "from-a b"); got != "from-a_b" {
		t.Errorf("sanitized name %q", got)
	}
	long := strings.Repeat("x", 150)
	got := b.NewName(long, "map")
	if len(got) > 100 || !strings.HasSuffix(got, "-map") {
		t.Errorf("long name %q (%d chars)", got, len(got))
	}
	if again := topology.NewBuilder().NewName(long, "map"); again != got {
		t.Errorf("shortened names differ: %q and %q", got, again)
	}
}

func TestDescribe(t *testing.T) {
	str := serde.String()
	b := topology.NewBuilder()
	topology.AddSource(b, "lines", str, str, "text")
	topology.AddProcessor(b, "count", passOf[string, string](), "lines")
	b.AddStore(state.KeyValue("counts", state.InMemory()), "count")
	topology.AddSink(b, "out", "counted", str, str, "count")
	src := topology.AddRepartition(b, "again", str, str, 0, "count")
	topology.AddDynamicSink(b, "routed", func(topology.Record[string, string]) string { return "x" }, str, str, src)
	topology.AddPatternSource(b, "all", str, str, regexp.MustCompile(`logs-.*`))
	topology.AddSink(b, "all-out", "logs", str, str, "all")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	want := `Sub-topology 0
  Source:    lines (topics: text)
    --> count
  Processor: count (stores: counts)
    --> out
    --> again-repartition-sink
    <-- lines
  Sink:      out (topic: counted)
    <-- count
  Sink:      again-repartition-sink (topic: <app>-again-repartition)
    <-- count

Sub-topology 1
  Source:    again-repartition-source (topics: <app>-again-repartition)
    --> routed
  Sink:      routed (topic: chosen per record)
    <-- again-repartition-source

Sub-topology 2
  Source:    all (pattern: logs-.*)
    --> all-out
  Sink:      all-out (topic: logs)
    <-- all
`
	if got := topo.Describe(); got != want {
		t.Errorf("Describe:\n%s\nwant:\n%s", got, want)
	}
	m := topo.Mermaid()
	for _, w := range []string{
		"flowchart TD",
		`subgraph sub0["Sub-topology 0"]`,
		`n0["lines"]`,
		`n0 --> n1`,
		`[("counts")]`,
		`[/"#lt;app#gt;-again-repartition"/]`,
		`[/"pattern: logs-.*"/]`,
		`[/"topic chosen per record"/]`,
	} {
		if !strings.Contains(m, w) {
			t.Errorf("Mermaid lacks %q:\n%s", w, m)
		}
	}
	if strings.Count(m, "subgraph") != 3 || strings.Count(m, "\n  end\n") != 3 {
		t.Errorf("Mermaid has the wrong number of sub-graphs:\n%s", m)
	}
}

// TestRefusedStoreReportedOnce checks that a store whose spec is refused
// is reported once, naming the processor that keeps it, and that
// connecting it or making it queryable adds no "never declared" error.
func TestRefusedStoreReportedOnce(t *testing.T) {
	str := serde.String()
	b := topology.NewBuilder()
	topology.AddSource(b, "src", str, str, "in")
	topology.AddProcessor(b, "p", passOf[string, string](), "src")
	topology.AddProcessor(b, "q", passOf[string, string](), "src")
	b.AddStore(state.KeyValue("counts", state.WithRetention(time.Hour)), "p")
	b.ConnectStore("counts", "q")
	topology.Queryable(b, "counts", str, str)
	_, err := b.Build()
	if err == nil {
		t.Fatal("Build succeeded")
	}
	msg := err.Error()
	if !strings.Contains(msg, `store "counts"`) || !strings.Contains(msg, `the store of "p"`) {
		t.Errorf("error %q does not name the store and its processor", msg)
	}
	if strings.Contains(msg, "never declared") || strings.Count(msg, `"counts"`) != 1 {
		t.Errorf("error %q reports the refused store more than once", msg)
	}
}
