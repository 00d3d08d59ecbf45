package serde_test

import (
	"errors"
	"testing"

	"github.com/riffle-streams/riffle/serde"
)

func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		name    string
		decode  func([]byte) error
		data    []byte
		want    string // DecodeError.Want
		got     int    // DecodeError.Got
		message string
	}{
		{"Int64 short", decoder(serde.Int64()), []byte{1, 2, 3}, "8 bytes", 3, "serde Int64: want 8 bytes, got 3 bytes"},
		{"Int64 long", decoder(serde.Int64()), make([]byte, 9), "8 bytes", 9, "serde Int64: want 8 bytes, got 9 bytes"},
		{"Int64 null", decoder(serde.Int64()), nil, "8 bytes", -1, "serde Int64: want 8 bytes, got null (nil bytes)"},
		{"Int32 short", decoder(serde.Int32()), []byte{1}, "4 bytes", 1, "serde Int32: want 4 bytes, got 1 byte"},
		{"Int32 long", decoder(serde.Int32()), make([]byte, 8), "4 bytes", 8, "serde Int32: want 4 bytes, got 8 bytes"},
		{"Int16 long", decoder(serde.Int16()), make([]byte, 4), "2 bytes", 4, "serde Int16: want 2 bytes, got 4 bytes"},
		{"Int16 empty", decoder(serde.Int16()), []byte{}, "2 bytes", 0, "serde Int16: want 2 bytes, got 0 bytes"},
		{"Float32 long", decoder(serde.Float32()), make([]byte, 8), "4 bytes", 8, "serde Float32: want 4 bytes, got 8 bytes"},
		{"Float64 short", decoder(serde.Float64()), make([]byte, 4), "8 bytes", 4, "serde Float64: want 8 bytes, got 4 bytes"},
		{"Bool long", decoder(serde.Bool()), []byte{0, 1}, "1 byte, 0x00 or 0x01", 2, "serde Bool: want 1 byte, 0x00 or 0x01, got 2 bytes"},
		{"Bool 0x02", decoder(serde.Bool()), []byte{2}, "1 byte, 0x00 or 0x01", 1, "serde Bool: want 1 byte, 0x00 or 0x01, got 1 byte: invalid byte 0x02"},
		{"Bool 0xff", decoder(serde.Bool()), []byte{0xff}, "1 byte, 0x00 or 0x01", 1, "serde Bool: want 1 byte, 0x00 or 0x01, got 1 byte: invalid byte 0xff"},
		{"String null", decoder(serde.String()), nil, "a string", -1, "serde String: want a string, got null (nil bytes)"},
		{"JSON struct null", decoder(serde.JSON[order]()), nil, "a JSON object", -1, "serde JSON[serde_test.order]: want a JSON object, got null (nil bytes)"},
		{"JSON struct bad", decoder(serde.JSON[order]()), []byte("{"), "a JSON object", 1, "serde JSON[serde_test.order]: want a JSON object, got 1 byte: unexpected end of JSON input"},
		{"JSON struct wrong type", decoder(serde.JSON[order]()), []byte(`[1]`), "a JSON object", 3, ""},
		{"JSON int", decoder(serde.JSON[int]()), []byte(`"x"`), "a JSON number", 3, ""},
		{"JSON pointer", decoder(serde.JSON[*[]int]()), []byte(`{}`), "a JSON array", 2, ""},
		{"JSON bytes", decoder(serde.JSON[[]byte]()), []byte(`1`), "a JSON string", 1, ""},
		{"JSON bool", decoder(serde.JSON[bool]()), []byte(`1`), "a JSON boolean", 1, ""},
		{"JSON any", decoder(serde.JSON[any]()), []byte(`nul`), "a JSON value", 3, ""},
		{"Nullable(Int64)", decoder(serde.Nullable(serde.Int64())), []byte{1}, "8 bytes", 1, "serde Int64: want 8 bytes, got 1 byte"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.decode(c.data)
			var de *serde.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error = %#v, want a *DecodeError", err)
			}
			if de.Want != c.want || de.Got != c.got {
				t.Errorf("Want, Got = %q, %d; want %q, %d", de.Want, de.Got, c.want, c.got)
			}
			if c.message != "" && err.Error() != c.message {
				t.Errorf("message = %q\nwant      %q", err.Error(), c.message)
			}
			if null := c.data == nil; errors.Is(err, serde.ErrNull) != null {
				t.Errorf("errors.Is(err, ErrNull) = %v, want %v", !null, null)
			}
		})
	}
}

func decoder[T any](s serde.Serde[T]) func([]byte) error {
	return func(b []byte) error {
		_, err := s.Decode(b)
		return err
	}
}

// TestAllocs checks that numbers allocate only the slice they encode to, and
// that ByteArray allocates nothing.
func TestAllocs(t *testing.T) {
	var sink []byte
	data8 := make([]byte, 8)
	data4 := make([]byte, 4)
	cases := []struct {
		name string
		max  float64
		f    func()
	}{
		{"Int64.Encode", 1, func() { sink, _ = serde.Int64().Encode(7) }},
		{"Int64.Decode", 0, func() { v, _ := serde.Int64().Decode(data8); _ = v }},
		{"Int32.Encode", 1, func() { sink, _ = serde.Int32().Encode(7) }},
		{"Int32.Decode", 0, func() { v, _ := serde.Int32().Decode(data4); _ = v }},
		{"Int16.Encode", 1, func() { sink, _ = serde.Int16().Encode(7) }},
		{"Int16.Decode", 0, func() { v, _ := serde.Int16().Decode(data4[:2]); _ = v }},
		{"Float64.Encode", 1, func() { sink, _ = serde.Float64().Encode(7) }},
		{"Float64.Decode", 0, func() { v, _ := serde.Float64().Decode(data8); _ = v }},
		{"Float32.Encode", 1, func() { sink, _ = serde.Float32().Encode(7) }},
		{"Float32.Decode", 0, func() { v, _ := serde.Float32().Decode(data4); _ = v }},
		{"Bool.Encode", 1, func() { sink, _ = serde.Bool().Encode(true) }},
		{"Bool.Decode", 0, func() { v, _ := serde.Bool().Decode(data4[:1]); _ = v }},
		{"ByteArray.Encode", 0, func() { b, _ := serde.ByteArray().Encode(data8); _ = b }},
		{"ByteArray.Decode", 0, func() { b, _ := serde.ByteArray().Decode(data8); _ = b }},
	}
	for _, c := range cases {
		if n := testing.AllocsPerRun(100, c.f); n > c.max {
			t.Errorf("%s: %v allocations, want at most %v", c.name, n, c.max)
		}
	}
	_ = sink
}
