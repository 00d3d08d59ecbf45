package stream_test

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/riffle-streams/riffle/stream"
	"github.com/riffle-streams/riffle/topology"
)

// graphOf returns every node of topo with its parents, read from Describe.
func graphOf(t *testing.T, topo *topology.Topology) map[string][]string {
	t.Helper()
	g := map[string][]string{}
	var cur string
	for _, line := range strings.Split(topo.Describe(), "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "Source:"), strings.HasPrefix(trimmed, "Processor:"), strings.HasPrefix(trimmed, "Sink:"):
			_, rest, _ := strings.Cut(trimmed, ":")
			name, _, _ := strings.Cut(strings.TrimSpace(rest), " ")
			cur = name
			if _, dup := g[cur]; dup {
				t.Fatalf("node %q described twice", cur)
			}
			g[cur] = []string{}
		case strings.HasPrefix(trimmed, "<-- "):
			g[cur] = append(g[cur], strings.TrimPrefix(trimmed, "<-- "))
		}
	}
	// Cross-check with SubTopologies.
	var n int
	for _, st := range topo.SubTopologies() {
		for _, name := range st.Nodes {
			n++
			if _, ok := g[name]; !ok {
				t.Fatalf("node %q of sub-topology %d is not in Describe", name, st.ID)
			}
		}
	}
	if n != len(g) {
		t.Fatalf("Describe shows %d nodes, SubTopologies %d", len(g), n)
	}
	return g
}

// chain adds the topology that the stability checks protect.
func chain(b *topology.Builder, src stream.Stream[string, string]) {
	kept := src.Filter(func(k, v string) bool { return v != "" })
	upper := stream.MapValues(kept, strings.ToUpper)
	sp := upper.Split()
	sp.Branch("short", func(k, v string) bool { return len(v) < 3 }).To("short")
	rest := sp.Default("rest")
	rekeyed := stream.SelectKey(rest, func(k, v string) string { return v })
	rekeyed.Repartition().Peek(func(string, string) {}).To("out")
	rest.Print(stream.PrintTo(io.Discard))
	stream.FlatMapValues(upper, func(v string) []string { return []string{v} }).
		Merge(src.FilterNot(func(k, v string) bool { return true })).
		To("merged")
}

func TestStableNames(t *testing.T) {
	base := topology.NewBuilder()
	chain(base, stream.From[string, string](base, "in"))
	want := graphOf(t, mustBuild(t, base))

	cases := []struct {
		name string
		// extra adds an unrelated operator; before says whether it is
		// added before the protected chain.
		extra  func(b *topology.Builder, src stream.Stream[string, string])
		before bool
		moves  string // non-empty: names move, as documented, and why
	}{
		{"Peek off the source, before", func(b *topology.Builder, src stream.Stream[string, string]) {
			src.Peek(func(string, string) {}).To("peeked")
		}, true, ""},
		{"Filter off the source, after", func(b *topology.Builder, src stream.Stream[string, string]) {
			src.Filter(func(string, string) bool { return true }).To("extra")
		}, false, ""},
		{"another source and chain, before", func(b *topology.Builder, _ stream.Stream[string, string]) {
			other := stream.From[string, string](b, "other")
			chain(b, other.Filter(func(string, string) bool { return true }))
		}, true, ""},
		{"Named Filter off the source, before", func(b *topology.Builder, src stream.Stream[string, string]) {
			src.Filter(func(string, string) bool { return true }, stream.Named("audit")).To("audit")
		}, true, ""},
		{"Filter off the source, before", func(b *topology.Builder, src stream.Stream[string, string]) {
			src.Filter(func(string, string) bool { return true }).To("extra")
		}, true, "an unnamed sibling of the same kind declared first takes the plain name (see topology.Builder.NewName)"},
		{"Repartition off the source, before", func(b *topology.Builder, src stream.Stream[string, string]) {
			src.Repartition().To("extra")
		}, true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := topology.NewBuilder()
			src := stream.From[string, string](b, "in")
			if tc.before {
				tc.extra(b, src)
			}
			chain(b, src)
			if !tc.before {
				tc.extra(b, src)
			}
			got := graphOf(t, mustBuild(t, b))
			var problems []string
			for name, parents := range want {
				gp, ok := got[name]
				switch {
				case !ok:
					problems = append(problems, fmt.Sprintf("node %q is gone", name))
				case !slices.Equal(gp, parents):
					problems = append(problems, fmt.Sprintf("node %q has parents %v, was %v", name, gp, parents))
				}
			}
			sort.Strings(problems)
			if tc.moves != "" {
				// The documented limit: declaration order decides among
				// unnamed same-kind siblings of one parent.
				if len(problems) == 0 {
					t.Errorf("names were expected to move (%s) but did not", tc.moves)
				}
				return
			}
			for _, p := range problems {
				t.Error(p)
			}
		})
	}
}

func TestGeneratedNames(t *testing.T) {
	b := topology.NewBuilder()
	src := stream.From[string, string](b, "in")
	f := src.Filter(func(string, string) bool { return true })
	fn := src.FilterNot(func(string, string) bool { return true })
	p := f.Peek(func(string, string) {})
	m := stream.Map(p, func(k, v string) (string, string) { return k, v })
	mv := stream.MapValues(m, func(v string) string { return v })
	sk := stream.SelectKey(mv, func(k, v string) string { return k })
	fm := stream.FlatMap(sk, func(k, v string) []skv { return nil })
	fmv := stream.FlatMapValues(fm, func(v string) []string { return nil })
	mg := fmv.Merge(fn)
	rp := mg.Repartition()
	pr := stream.Process(rp, func() topology.Processor[string, string, string, string] { return &passThrough{} })
	pr.Foreach(func(string, string) {})
	pr.Print(stream.PrintTo(io.Discard))
	pr.To("out")
	pr.ToFunc(func(string, string) string { return "x" })
	multi := stream.FromTopics[string, string](b, []string{"a", "b"})
	f2 := src.Filter(func(string, string) bool { return true })

	for _, c := range []struct{ got, want string }{
		{src.Name(), "from-in"},
		{f.Name(), "from-in-filter"},
		{fn.Name(), "from-in-filternot"},
		{p.Name(), "from-in-filter-peek"},
		{m.Name(), "from-in-filter-peek-map"},
		{mv.Name(), "from-in-filter-peek-map-mapvalues"},
		{sk.Name(), "from-in-filter-peek-map-mapvalues-selectkey"},
		{fm.Name(), "from-in-filter-peek-map-mapvalues-selectkey-flatmap"},
		{fmv.Name(), "from-in-filter-peek-map-mapvalues-selectkey-flatmap-flatmapvalues"},
		{mg.Name(), "from-in-filter-peek-map-mapvalues-selectkey-flatmap-flatmapvalues-merge"},
		{f2.Name(), "from-in-filter-2"},
		{multi.Name(), "from-a_b"},
	} {
		if c.got != c.want {
			t.Errorf("node %q, want %q", c.got, c.want)
		}
	}
	if want := mg.Name() + "-repartition-source"; rp.Name() != want {
		t.Errorf("node %q, want %q", rp.Name(), want)
	}
	if want := rp.Name() + "-process"; pr.Name() != want {
		t.Errorf("node %q, want %q", pr.Name(), want)
	}
	// The children of pr have names too long to keep whole: they are
	// shortened with a hash, keeping the operator at the end, within 100
	// characters.
	g := graphOf(t, mustBuild(t, b))
	var kinds []string
	for name, parents := range g {
		if len(name) > 100 {
			t.Errorf("node name %q is %d characters long", name, len(name))
		}
		if slices.Contains(parents, pr.Name()) {
			kinds = append(kinds, name[strings.LastIndex(name, "-"):])
		}
	}
	sort.Strings(kinds)
	if want := []string{"-foreach", "-out", "-print", "-to"}; !slices.Equal(kinds, want) {
		t.Errorf("children of %q end in %v, want %v", pr.Name(), kinds, want)
	}
}
