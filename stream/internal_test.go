package stream

import (
	"io"
	"testing"

	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/topology"
)

type pass struct {
	ctx topology.Context[string, string]
}

func (p *pass) Init(ctx topology.Context[string, string]) error { p.ctx = ctx; return nil }
func (p *pass) Process(r topology.Record[string, string]) error { return p.ctx.Forward(r) }
func (p *pass) Close() error                                    { return nil }

// inputs returns a stream that is not marked and one that is, both of
// (string, string), from b.
func inputs(b *topology.Builder) (plain, marked Stream[string, string]) {
	plain = From[string, string](b, "in")
	marked = SelectKey(From[string, string](b, "in2"), func(k, v string) string { return v })
	return plain, marked
}

func TestRepartitionMark(t *testing.T) {
	always := func(string, string) bool { return true }
	cases := []struct {
		name string
		op   func(Stream[string, string]) Stream[string, string]
		// mark is what the result must have: "set", "clear" or "keep"
		// (the input's).
		mark string
	}{
		{"Map", func(s Stream[string, string]) Stream[string, string] {
			return Map(s, func(k, v string) (string, string) { return k, v })
		}, "set"},
		{"Map to other types", func(s Stream[string, string]) Stream[string, string] {
			m := Map(s, func(k, v string) (int64, int64) { return 0, 0 })
			if !m.rekeyed {
				t.Errorf("Map to (int64, int64) does not mark")
			}
			return Map(m, func(k, v int64) (string, string) { return "", "" })
		}, "set"},
		{"SelectKey", func(s Stream[string, string]) Stream[string, string] {
			return SelectKey(s, func(k, v string) string { return k })
		}, "set"},
		{"FlatMap", func(s Stream[string, string]) Stream[string, string] {
			return FlatMap(s, func(k, v string) []topology.KeyValue[string, string] { return nil })
		}, "set"},
		{"Process", func(s Stream[string, string]) Stream[string, string] {
			return Process(s, func() topology.Processor[string, string, string, string] { return &pass{} })
		}, "set"},
		{"MapValues", func(s Stream[string, string]) Stream[string, string] {
			return MapValues(s, func(v string) string { return v })
		}, "keep"},
		{"MapValues to another type and back", func(s Stream[string, string]) Stream[string, string] {
			return MapValues(MapValues(s, func(v string) int64 { return 0 }), func(int64) string { return "" })
		}, "keep"},
		{"FlatMapValues", func(s Stream[string, string]) Stream[string, string] {
			return FlatMapValues(s, func(v string) []string { return nil })
		}, "keep"},
		{"Filter", func(s Stream[string, string]) Stream[string, string] { return s.Filter(always) }, "keep"},
		{"FilterNot", func(s Stream[string, string]) Stream[string, string] { return s.FilterNot(always) }, "keep"},
		{"Peek", func(s Stream[string, string]) Stream[string, string] { return s.Peek(func(string, string) {}) }, "keep"},
		{"Split branch", func(s Stream[string, string]) Stream[string, string] {
			return s.Split().Branch("a", always)
		}, "keep"},
		{"Split second branch", func(s Stream[string, string]) Stream[string, string] {
			sp := s.Split()
			sp.Branch("a", always)
			return sp.Branch("b", always)
		}, "keep"},
		{"Split default", func(s Stream[string, string]) Stream[string, string] {
			return s.Split().Default("rest")
		}, "keep"},
		{"Merge with itself", func(s Stream[string, string]) Stream[string, string] { return s.Merge(s) }, "keep"},
		{"Repartition", func(s Stream[string, string]) Stream[string, string] { return s.Repartition() }, "clear"},
		{"Repartition then Filter", func(s Stream[string, string]) Stream[string, string] {
			return s.Repartition().Filter(always)
		}, "clear"},
		{"SelectKey then Repartition", func(s Stream[string, string]) Stream[string, string] {
			return SelectKey(s, func(k, v string) string { return k }).Repartition()
		}, "clear"},
		{"Repartition then Map", func(s Stream[string, string]) Stream[string, string] {
			return Map(s.Repartition(), func(k, v string) (string, string) { return k, v })
		}, "set"},
	}
	for _, tc := range cases {
		for _, inMarked := range []bool{false, true} {
			b := topology.NewBuilder()
			plain, marked := inputs(b)
			in := plain
			if inMarked {
				in = marked
			}
			if in.rekeyed != inMarked {
				t.Fatalf("test is wrong: input marked %v", in.rekeyed)
			}
			out := tc.op(in)
			want := map[string]bool{"set": true, "clear": false, "keep": inMarked}[tc.mark]
			if out.rekeyed != want {
				t.Errorf("%s on a stream marked %v: marked %v, want %v", tc.name, inMarked, out.rekeyed, want)
			}
			// Operators never change their input.
			if in.rekeyed != inMarked {
				t.Errorf("%s changed its input's mark", tc.name)
			}
			out.To("out")
			out.Print(PrintTo(io.Discard))
			if _, err := b.Build(); err != nil {
				t.Errorf("%s: Build: %v", tc.name, err)
			}
		}
	}
}

func TestRepartitionMarkMerge(t *testing.T) {
	for _, tc := range []struct{ left, right bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
		b := topology.NewBuilder()
		plain, marked := inputs(b)
		pick := func(m bool) Stream[string, string] {
			if m {
				return marked
			}
			return plain
		}
		out := pick(tc.left).Merge(pick(tc.right))
		if want := tc.left || tc.right; out.rekeyed != want {
			t.Errorf("merge of marked %v and %v: marked %v, want %v", tc.left, tc.right, out.rekeyed, want)
		}
	}
}

type strSerde struct{ name string }

func (s *strSerde) String() string                     { return s.name }
func (s *strSerde) Encode(v string) ([]byte, error)    { return []byte(v), nil }
func (s *strSerde) Decode(data []byte) (string, error) { return string(data), nil }

func TestSerdesCarried(t *testing.T) {
	b := topology.NewBuilder()
	// Pointers, so that the serdes can be compared by identity.
	ks, vs := &strSerde{"keys"}, &strSerde{"values"}
	src := From[string, string](b, "in", WithKeySerde(ks), WithValueSerde(vs))
	same := func(a, b any) bool { return a == b }
	type check struct {
		name       string
		keys, vals any
		wantK      any
		wantV      any
	}
	f := src.Filter(func(string, string) bool { return true })
	mv := MapValues(src, func(v string) int64 { return 0 })
	sk := SelectKey(src, func(k, v string) int64 { return 0 })
	m := Map(src, func(k, v string) (int64, int64) { return 0, 0 })
	rp := src.Repartition()
	br := src.Split().Default("all")
	checks := []check{
		{"source", src.keys, src.values, ks, vs},
		{"Filter keeps both", f.keys, f.values, ks, vs},
		{"Split branch keeps both", br.keys, br.values, ks, vs},
		{"Repartition keeps both", rp.keys, rp.values, ks, vs},
		{"MapValues to another type keeps the keys only", mv.keys, mv.values, ks, serde.Serde[int64](nil)},
		{"SelectKey to another type keeps the values only", sk.keys, sk.values, serde.Serde[int64](nil), vs},
		{"Map to other types keeps neither", m.keys, m.values, serde.Serde[int64](nil), serde.Serde[int64](nil)},
	}
	for _, c := range checks {
		if !same(c.keys, c.wantK) || !same(c.vals, c.wantV) {
			t.Errorf("%s: serdes (%v, %v), want (%v, %v)", c.name, c.keys, c.vals, c.wantK, c.wantV)
		}
	}
}
