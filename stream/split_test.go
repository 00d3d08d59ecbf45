package stream_test

import (
	"strings"
	"testing"

	"github.com/riffle-streams/riffle/stream"
	"github.com/riffle-streams/riffle/topology"
)

func TestSplit(t *testing.T) {
	isNum := func(k, v string) bool { return v != "" && strings.Trim(v, "0123456789") == "" }
	isShort := func(k, v string) bool { return len(v) <= 2 }
	input := []skv{
		kv("a", "7"),      // num and short: the first branch only
		kv("b", "x"),      // short only
		kv("c", "123456"), // num only
		kv("d", "hello"),  // neither
		kv("e", ""),       // short only
	}
	cases := []struct {
		name        string
		withDefault bool
		swap        bool // add the short branch first
		want        map[string][]skv
	}{
		{"first match wins, default takes the rest", true, false, map[string][]skv{
			"num":   {kv("a", "7"), kv("c", "123456")},
			"short": {kv("b", "x"), kv("e", "")},
			"rest":  {kv("d", "hello")},
		}},
		{"branch order decides", true, true, map[string][]skv{
			"num":   {kv("c", "123456")},
			"short": {kv("a", "7"), kv("b", "x"), kv("e", "")},
			"rest":  {kv("d", "hello")},
		}},
		{"without default unmatched records are dropped", false, false, map[string][]skv{
			"num":   {kv("a", "7"), kv("c", "123456")},
			"short": {kv("b", "x"), kv("e", "")},
			"rest":  nil,
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := topology.NewBuilder()
			sp := stream.From[string, string](b, "in").Split(stream.Named("sp"))
			if tc.swap {
				sp.Branch("short", isShort).To("short")
				sp.Branch("num", isNum).To("num")
			} else {
				sp.Branch("num", isNum).To("num")
				sp.Branch("short", isShort).To("short")
			}
			if tc.withDefault {
				sp.Default("rest").To("rest")
			}
			d := newDriver(t, b)
			pipeAll(t, strIn(d, "in"), input...)
			for topic, want := range tc.want {
				wantKVs(t, topic, readStr(t, d, topic), want)
			}
		})
	}
}

func TestSplitNodeNames(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  []stream.Option
		split string
	}{
		{"generated", nil, "from-in-split"},
		{"Named", []stream.Option{stream.Named("route")}, "route"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := topology.NewBuilder()
			sp := stream.From[string, string](b, "in").Split(tc.opts...)
			big := sp.Branch("big", func(k, v string) bool { return len(v) > 3 })
			small := sp.Branch("small", func(k, v string) bool { return len(v) <= 3 })
			other := sp.Default("other")
			for _, c := range []struct {
				s    stream.Stream[string, string]
				want string
			}{{big, tc.split + "-big"}, {small, tc.split + "-small"}, {other, tc.split + "-other"}} {
				if c.s.Name() != c.want {
					t.Errorf("branch node %q, want %q", c.s.Name(), c.want)
				}
			}
			big.To("big")
			small.To("small")
			other.To("other")
			desc := mustBuild(t, b).Describe()
			wantDesc := "  Processor: " + tc.split + "\n" +
				"    --> " + tc.split + "-big\n" +
				"    --> " + tc.split + "-small\n" +
				"    --> " + tc.split + "-other\n" +
				"    <-- from-in\n" +
				"  Processor: " + tc.split + "-big\n" +
				"    --> " + tc.split + "-big-to-big\n" +
				"    <-- " + tc.split + "\n"
			if !strings.Contains(desc, wantDesc) {
				t.Errorf("Describe lacks\n%s\nin\n%s", wantDesc, desc)
			}
		})
	}
}

func TestSplitBranchesContinue(t *testing.T) {
	// A branch is a stream like any other: operators chain off it, and
	// one branch may feed several children.
	b := topology.NewBuilder()
	sp := stream.From[string, string](b, "in").Split()
	up := stream.MapValues(sp.Branch("up", func(k, v string) bool { return k == "u" }), strings.ToUpper)
	up.To("out")
	rest := sp.Default("rest")
	rest.To("rest1")
	rest.Filter(func(k, v string) bool { return v != "skip" }).To("rest2")
	d := newDriver(t, b)
	pipeAll(t, strIn(d, "in"), kv("u", "abc"), kv("x", "def"), kv("x", "skip"))
	wantKVs(t, "out", readStr(t, d, "out"), []skv{kv("u", "ABC")})
	wantKVs(t, "rest1", readStr(t, d, "rest1"), []skv{kv("x", "def"), kv("x", "skip")})
	wantKVs(t, "rest2", readStr(t, d, "rest2"), []skv{kv("x", "def")})
}

func TestSplitOnlyDefault(t *testing.T) {
	b := topology.NewBuilder()
	stream.From[string, string](b, "in").Split().Default("all").To("out")
	d := newDriver(t, b)
	pipeAll(t, strIn(d, "in"), kv("a", "1"), kv("b", "2"))
	wantKVs(t, "out", readStr(t, d, "out"), []skv{kv("a", "1"), kv("b", "2")})
}

func TestSplitNoBranches(t *testing.T) {
	// A split without branches drops everything; its sibling still sees
	// every record.
	b := topology.NewBuilder()
	src := stream.From[string, string](b, "in")
	src.Split()
	src.To("out")
	d := newDriver(t, b)
	pipeAll(t, strIn(d, "in"), kv("a", "1"))
	wantKVs(t, "out", readStr(t, d, "out"), []skv{kv("a", "1")})
}

func TestSplitBuildErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		build func(sp *stream.Splitter[string, string])
		want  []string
	}{
		{"branch after default", func(sp *stream.Splitter[string, string]) {
			sp.Branch("a", func(k, v string) bool { return true })
			sp.Default("rest")
			sp.Branch("late", func(k, v string) bool { return true })
		}, []string{`split "sp": branch "late" added after the default branch`}},
		{"two defaults", func(sp *stream.Splitter[string, string]) {
			sp.Default("rest")
			sp.Default("rest2")
		}, []string{`split "sp": a second default branch "rest2"`}},
		{"nil predicate", func(sp *stream.Splitter[string, string]) {
			sp.Branch("a", nil)
		}, []string{`split "sp": branch "a" has no predicate`}},
		{"duplicate branch name", func(sp *stream.Splitter[string, string]) {
			sp.Branch("a", func(k, v string) bool { return true })
			sp.Branch("a", func(k, v string) bool { return true })
		}, []string{`processor "sp-a": a processor of that name already exists`}},
		{"invalid branch name", func(sp *stream.Splitter[string, string]) {
			sp.Branch("a b", func(k, v string) bool { return true })
		}, []string{`name "sp-a b" may hold only`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := topology.NewBuilder()
			tc.build(stream.From[string, string](b, "in").Split(stream.Named("sp")))
			wantErrContains(t, buildErr(t, b), tc.want...)
		})
	}
}
