package serde_test

import (
	"errors"
	"testing"

	"github.com/riffle-streams/riffle/serde"
)

// nullCase says how a serde treats nil and empty bytes.
type nullCase struct {
	name string
	// decodeNil decodes nil bytes and reports whether the result is T's nil.
	decodeNil func() (isNil bool, err error)
	// decodeEmpty decodes empty, non-nil bytes.
	decodeEmpty func() error
	// nullable is whether nil bytes decode to a nil; if not, they must give
	// an error wrapping ErrNull.
	nullable bool
	// emptyOK is whether empty bytes decode without error.
	emptyOK bool
}

func nulls[T any](name string, s serde.Serde[T], isNil func(T) bool, nullable, emptyOK bool) nullCase {
	return nullCase{
		name: name,
		decodeNil: func() (bool, error) {
			v, err := s.Decode(nil)
			return isNil(v), err
		},
		decodeEmpty: func() error {
			_, err := s.Decode([]byte{})
			return err
		},
		nullable: nullable,
		emptyOK:  emptyOK,
	}
}

func never[T any](T) bool { return false }

func TestNulls(t *testing.T) {
	cases := []nullCase{
		nulls("String", serde.String(), never, false, true),
		nulls("ByteArray", serde.ByteArray(), func(b []byte) bool { return b == nil }, true, true),
		nulls("Int16", serde.Int16(), never, false, false),
		nulls("Int32", serde.Int32(), never, false, false),
		nulls("Int64", serde.Int64(), never, false, false),
		nulls("Float32", serde.Float32(), never, false, false),
		nulls("Float64", serde.Float64(), never, false, false),
		nulls("Bool", serde.Bool(), never, false, false),
		nulls("JSON struct", serde.JSON[order](), never, false, false),
		nulls("JSON string", serde.JSON[string](), never, false, false),
		nulls("JSON pointer", serde.JSON[*order](), func(p *order) bool { return p == nil }, true, false),
		nulls("JSON slice", serde.JSON[[]int](), func(s []int) bool { return s == nil }, true, false),
		nulls("JSON map", serde.JSON[map[string]int](), func(m map[string]int) bool { return m == nil }, true, false),
		nulls("JSON any", serde.JSON[any](), func(v any) bool { return v == nil }, true, false),
		nulls("Nullable(String)", serde.Nullable(serde.String()), func(p *string) bool { return p == nil }, true, true),
		nulls("Nullable(Int64)", serde.Nullable(serde.Int64()), func(p *int64) bool { return p == nil }, true, false),
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			isNil, err := c.decodeNil()
			if c.nullable {
				if err != nil || !isNil {
					t.Errorf("Decode(nil) = nil? %v, %v; want nil, no error", isNil, err)
				}
			} else {
				var de *serde.DecodeError
				if !errors.Is(err, serde.ErrNull) || !errors.As(err, &de) || de.Got != -1 {
					t.Errorf("Decode(nil) error = %#v, want a *DecodeError with Got -1 wrapping ErrNull", err)
				}
			}
			err = c.decodeEmpty()
			if c.emptyOK && err != nil {
				t.Errorf("Decode(empty) error = %v, want none", err)
			}
			if !c.emptyOK {
				var de *serde.DecodeError
				if !errors.As(err, &de) || de.Got != 0 || errors.Is(err, serde.ErrNull) {
					t.Errorf("Decode(empty) error = %#v, want a *DecodeError with Got 0, not ErrNull", err)
				}
			}
		})
	}
}

func TestEmptyIsNotNull(t *testing.T) {
	b, err := serde.String().Encode("")
	if err != nil || b == nil || len(b) != 0 {
		t.Errorf(`String.Encode("") = %#v, %v; want empty non-nil bytes`, b, err)
	}
	b, err = serde.ByteArray().Encode([]byte{})
	if err != nil || b == nil || len(b) != 0 {
		t.Errorf("ByteArray.Encode(empty) = %#v, %v; want empty non-nil bytes", b, err)
	}
	v, err := serde.ByteArray().Decode([]byte{})
	if err != nil || v == nil || len(v) != 0 {
		t.Errorf("ByteArray.Decode(empty) = %#v, %v; want empty non-nil bytes", v, err)
	}
	p, err := serde.Nullable(serde.String()).Decode([]byte{})
	if err != nil || p == nil || *p != "" {
		t.Errorf("Nullable(String).Decode(empty) = %v, %v; want a pointer to \"\"", p, err)
	}
	e, err := serde.Nullable(serde.String()).Encode(ptr(""))
	if err != nil || e == nil || len(e) != 0 {
		t.Errorf(`Nullable(String).Encode(&"") = %#v, %v; want empty non-nil bytes`, e, err)
	}
}

// TestTombstones checks that a nil value encodes to nil bytes, not to empty
// bytes or the JSON text null, and decodes back to nil.
func TestTombstones(t *testing.T) {
	cases := []struct {
		name      string
		roundTrip func() (encoded []byte, decodedNil bool, err error)
	}{
		{"ByteArray", tombstone(serde.ByteArray(), nil, func(b []byte) bool { return b == nil })},
		{"Nullable(String)", tombstone(serde.Nullable(serde.String()), nil, func(p *string) bool { return p == nil })},
		{"Nullable(JSON struct)", tombstone(serde.Nullable(serde.JSON[order]()), nil, func(p *order) bool { return p == nil })},
		{"JSON pointer", tombstone(serde.JSON[*order](), nil, func(p *order) bool { return p == nil })},
		{"JSON slice", tombstone(serde.JSON[[]string](), nil, func(s []string) bool { return s == nil })},
		{"JSON map", tombstone(serde.JSON[map[string]int](), nil, func(m map[string]int) bool { return m == nil })},
		{"JSON any", tombstone(serde.JSON[any](), nil, func(v any) bool { return v == nil })},
	}
	for _, c := range cases {
		b, isNil, err := c.roundTrip()
		if err != nil || b != nil || !isNil {
			t.Errorf("%s: nil encodes to %#v and decodes to nil? %v, error %v; want nil bytes and nil", c.name, b, isNil, err)
		}
	}
}

func tombstone[T any](s serde.Serde[T], v T, isNil func(T) bool) func() ([]byte, bool, error) {
	return func() ([]byte, bool, error) {
		b, err := s.Encode(v)
		if err != nil {
			return b, false, err
		}
		d, err := s.Decode(b)
		return b, isNil(d), err
	}
}

// TestJSONNullText checks that the JSON text null, which a Java producer may
// write, decodes as encoding/json decodes it: to nil for a type with a nil,
// else to the zero value.
func TestJSONNullText(t *testing.T) {
	p, err := serde.JSON[*order]().Decode([]byte("null"))
	if err != nil || p != nil {
		t.Errorf(`JSON[*order].Decode("null") = %v, %v; want nil, no error`, p, err)
	}
	o, err := serde.JSON[order]().Decode([]byte("null"))
	if err != nil || o != (order{}) {
		t.Errorf(`JSON[order].Decode("null") = %v, %v; want the zero order, no error`, o, err)
	}
}
