package null

import (
	"fmt"
	"testing"
)

type point struct{ X int }

func TestIsNil(t *testing.T) {
	var np *point
	var ns []byte
	var nm map[string]int
	var ni fmt.Stringer
	var nf func()
	cases := []struct {
		name     string
		got      bool
		nillable bool
		want     bool
	}{
		{"nil pointer", For[*point]().IsNil(np), For[*point]().Nillable(), true},
		{"pointer", For[*point]().IsNil(&point{}), true, false},
		{"nil slice", For[[]byte]().IsNil(ns), true, true},
		{"empty slice", For[[]byte]().IsNil([]byte{}), true, false},
		{"nil map", For[map[string]int]().IsNil(nm), true, true},
		{"map", For[map[string]int]().IsNil(map[string]int{}), true, false},
		{"nil interface", For[fmt.Stringer]().IsNil(ni), true, true},
		{"nil func", For[func()]().IsNil(nf), true, true},
		{"string", For[string]().IsNil(""), For[string]().Nillable(), false},
		{"int", For[int64]().IsNil(0), For[int64]().Nillable(), false},
		{"struct", For[point]().IsNil(point{}), For[point]().Nillable(), false},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s: IsNil = %v, want %v", c.name, c.got, c.want)
		}
	}
	if For[string]().Nillable() || For[point]().Nillable() || !For[[]byte]().Nillable() {
		t.Error("Nillable is wrong")
	}
}

func TestIsNilAllocatesNothing(t *testing.T) {
	c := For[*point]()
	p := &point{}
	if n := testing.AllocsPerRun(100, func() { _ = c.IsNil(p) }); n != 0 {
		t.Errorf("%v allocations", n)
	}
}
