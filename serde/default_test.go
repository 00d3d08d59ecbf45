package serde_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/riffle-streams/riffle/serde"
)

// name is a named string type, which has no default serde.
type name string

func TestDefault(t *testing.T) {
	cases := []struct {
		typ  string
		get  func() (any, error)
		want string // the serde's name
	}{
		{"string", def[string], "String"},
		{"[]byte", def[[]byte], "ByteArray"},
		{"int16", def[int16], "Int16"},
		{"int32", def[int32], "Int32"},
		{"int64", def[int64], "Int64"},
		{"float32", def[float32], "Float32"},
		{"float64", def[float64], "Float64"},
		{"bool", def[bool], "Bool"},
		{"struct", def[order], "JSON[serde_test.order]"},
		{"pointer to struct", def[*order], "JSON[*serde_test.order]"},
		{"map", def[map[string]int], "JSON[map[string]int]"},
		{"slice", def[[]string], "JSON[[]string]"},
		{"slice of structs", def[[]order], "JSON[[]serde_test.order]"},
	}
	for _, c := range cases {
		s, err := c.get()
		if err != nil {
			t.Errorf("Default[%s]: %v", c.typ, err)
			continue
		}
		if got := fmt.Sprint(s); got != c.want {
			t.Errorf("Default[%s] = %s, want %s", c.typ, got, c.want)
		}
	}
}

// def calls Default[T] and returns its serde as an any.
func def[T any]() (any, error) {
	s, err := serde.Default[T]()
	if err != nil {
		return nil, err
	}
	// Check that s is usable as the right type.
	var v T
	if _, err := s.Encode(v); err != nil {
		return nil, err
	}
	return s, nil
}

func TestDefaultErrors(t *testing.T) {
	cases := []struct {
		typ  string
		get  func() (any, error)
		want string // a substring of the error
	}{
		{"int", def[int], "serde: no default serde for type int: its width is ambiguous; pass one explicitly, such as serde.Int64()"},
		{"uint", def[uint], "type uint: its width is ambiguous"},
		{"uint32", def[uint32], "type uint32: Kafka has no serde for it"},
		{"int8", def[int8], "type int8: Kafka has no serde for it"},
		{"named string", def[name], "type serde_test.name: it is a named type"},
		{"named bytes", def[json.RawMessage], "type json.RawMessage: it could be raw bytes or JSON"},
		{"any", def[any], "type interface {}: pass one explicitly"},
		{"chan", def[chan int], "type chan int: pass one explicitly"},
		{"func", def[func()], "type func(): pass one explicitly"},
		{"pointer to int", def[*int64], "type *int64: pass one explicitly"},
		{"array", def[[4]int], "type [4]int: pass one explicitly"},
	}
	for _, c := range cases {
		s, err := c.get()
		if err == nil {
			t.Errorf("Default[%s] = %v, want an error", c.typ, s)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("Default[%s] error = %q, want it to contain %q", c.typ, err, c.want)
		}
	}
}
