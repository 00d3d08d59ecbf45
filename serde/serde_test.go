package serde_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/riffle-streams/riffle/serde"
)

// unhex decodes hex digits, ignoring spaces.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// vector is a value and the bytes a serde encodes it to.
type vector struct {
	name  string
	value any
	bytes string // hex, spaces ignored
}

// checkVectors checks that s encodes each value to its bytes and decodes the
// bytes back to the value. Floats are compared by their bits.
func checkVectors[T any](t *testing.T, s serde.Serde[T], vectors []vector) {
	t.Helper()
	for _, v := range vectors {
		t.Run(fmt.Sprintf("%v/%s", s, v.name), func(t *testing.T) {
			want := unhex(t, v.bytes)
			got, err := s.Encode(v.value.(T))
			if err != nil {
				t.Fatalf("Encode(%v): %v", v.value, err)
			}
			if !bytes.Equal(got, want) || got == nil {
				t.Errorf("Encode(%v) = % x, want % x", v.value, got, want)
			}
			dec, err := s.Decode(want)
			if err != nil {
				t.Fatalf("Decode(% x): %v", want, err)
			}
			if !sameBits(any(dec), v.value) {
				t.Errorf("Decode(% x) = %v, want %v", want, dec, v.value)
			}
		})
	}
}

// sameBits reports whether a and b are equal, comparing floats by their bits
// so that NaNs and the sign of zero count.
func sameBits(a, b any) bool {
	switch a := a.(type) {
	case float32:
		return math.Float32bits(a) == math.Float32bits(b.(float32))
	case float64:
		return math.Float64bits(a) == math.Float64bits(b.(float64))
	case []byte:
		return bytes.Equal(a, b.([]byte))
	case *int32:
		b := b.(*int32)
		return a != nil && b != nil && *a == *b
	}
	return a == b
}

func TestVectors(t *testing.T) {
	checkVectors(t, serde.Int16(), []vector{
		{"zero", int16(0), "00 00"},
		{"one", int16(1), "00 01"},
		{"minus two", int16(-2), "ff fe"},
		{"max", int16(math.MaxInt16), "7f ff"},
		{"min", int16(math.MinInt16), "80 00"},
	})
	checkVectors(t, serde.Int32(), []vector{
		{"zero", int32(0), "00 00 00 00"},
		{"256", int32(256), "00 00 01 00"},
		{"minus one", int32(-1), "ff ff ff ff"},
		{"max", int32(math.MaxInt32), "7f ff ff ff"},
		{"min", int32(math.MinInt32), "80 00 00 00"},
	})
	checkVectors(t, serde.Int64(), []vector{
		{"zero", int64(0), "00 00 00 00 00 00 00 00"},
		{"one", int64(1), "00 00 00 00 00 00 00 01"},
		{"minus one", int64(-1), "ff ff ff ff ff ff ff ff"},
		{"bytes in order", int64(0x0102030405060708), "01 02 03 04 05 06 07 08"},
		{"min", int64(math.MinInt64), "80 00 00 00 00 00 00 00"},
	})
	checkVectors(t, serde.Float32(), []vector{
		{"one", float32(1), "3f 80 00 00"},
		{"zero", float32(0), "00 00 00 00"},
		{"minus zero", float32(math.Copysign(0, -1)), "80 00 00 00"},
		{"+Inf", float32(math.Inf(1)), "7f 80 00 00"},
		{"-Inf", float32(math.Inf(-1)), "ff 80 00 00"},
		{"NaN", math.Float32frombits(0x7fc00000), "7f c0 00 00"},
		{"NaN payload", math.Float32frombits(0x7fc12345), "7f c1 23 45"},
	})
	checkVectors(t, serde.Float64(), []vector{
		{"one", 1.0, "3f f0 00 00 00 00 00 00"},
		{"minus two", -2.0, "c0 00 00 00 00 00 00 00"},
		{"zero", 0.0, "00 00 00 00 00 00 00 00"},
		{"minus zero", math.Copysign(0, -1), "80 00 00 00 00 00 00 00"},
		{"+Inf", math.Inf(1), "7f f0 00 00 00 00 00 00"},
		{"-Inf", math.Inf(-1), "ff f0 00 00 00 00 00 00"},
		{"NaN", math.NaN(), "7f f8 00 00 00 00 00 01"},
		{"NaN payload", math.Float64frombits(0xfff8_0000_dead_beef), "ff f8 00 00 de ad be ef"},
	})
	checkVectors(t, serde.Bool(), []vector{
		{"true", true, "01"},
		{"false", false, "00"},
	})
	checkVectors(t, serde.String(), []vector{
		{"ascii", "hello", "68 65 6c 6c 6f"},
		{"accent", "héllo", "68 c3 a9 6c 6c 6f"},
		{"empty", "", ""},
		{"emoji", "🙂", "f0 9f 99 82"},
	})
	checkVectors(t, serde.ByteArray(), []vector{
		{"bytes", []byte{0, 1, 0xff}, "00 01 ff"},
		{"empty", []byte{}, ""},
	})
	checkVectors(t, serde.Nullable(serde.Int32()), []vector{
		{"value", ptr(int32(-1)), "ff ff ff ff"},
	})
}

func TestStringKeepsInvalidUTF8(t *testing.T) {
	data := []byte{'a', 0xff, 0xc3}
	got, err := serde.String().Decode(data)
	if err != nil || got != string(data) {
		t.Errorf("Decode(% x) = %q, %v; want %q", data, got, err, data)
	}
}

type order struct {
	A int    `json:"a"`
	B string `json:"b,omitempty"`
}

func TestJSONVectors(t *testing.T) {
	check := func(t *testing.T, name string, encode func() ([]byte, error), want string) {
		t.Helper()
		got, err := encode()
		if err != nil || string(got) != want {
			t.Errorf("%s: Encode = %q, %v; want %q", name, got, err, want)
		}
	}
	check(t, "struct", func() ([]byte, error) { return serde.JSON[order]().Encode(order{A: 1}) }, `{"a":1}`)
	check(t, "struct two fields", func() ([]byte, error) { return serde.JSON[order]().Encode(order{A: 2, B: "x"}) }, `{"a":2,"b":"x"}`)
	check(t, "pointer", func() ([]byte, error) { return serde.JSON[*order]().Encode(&order{A: 1}) }, `{"a":1}`)
	check(t, "map", func() ([]byte, error) { return serde.JSON[map[string]int]().Encode(map[string]int{"b": 2, "a": 1}) }, `{"a":1,"b":2}`)
	check(t, "empty map", func() ([]byte, error) { return serde.JSON[map[string]int]().Encode(map[string]int{}) }, `{}`)
	check(t, "slice", func() ([]byte, error) { return serde.JSON[[]int]().Encode([]int{1, 2}) }, `[1,2]`)
	check(t, "empty slice", func() ([]byte, error) { return serde.JSON[[]int]().Encode([]int{}) }, `[]`)
	check(t, "string", func() ([]byte, error) { return serde.JSON[string]().Encode("hé") }, `"hé"`)
	check(t, "int", func() ([]byte, error) { return serde.JSON[int]().Encode(-3) }, `-3`)
	check(t, "any", func() ([]byte, error) { return serde.JSON[any]().Encode(true) }, `true`)

	o, err := serde.JSON[order]().Decode([]byte(`{"a":1,"b":"x"}`))
	if err != nil || o != (order{A: 1, B: "x"}) {
		t.Errorf("Decode struct = %+v, %v", o, err)
	}
	p, err := serde.JSON[*order]().Decode([]byte(`{"a":1}`))
	if err != nil || p == nil || *p != (order{A: 1}) {
		t.Errorf("Decode pointer = %+v, %v", p, err)
	}
	m, err := serde.JSON[map[string]int]().Decode([]byte(`{}`))
	if err != nil || m == nil || len(m) != 0 {
		t.Errorf("Decode {} = %#v, %v; want an empty non-nil map", m, err)
	}
}

func TestJSONEncodeError(t *testing.T) {
	_, err := serde.JSON[float64]().Encode(math.NaN())
	if err == nil || !strings.HasPrefix(err.Error(), "serde JSON[float64]: ") {
		t.Errorf("Encode(NaN) error = %v, want one naming the serde", err)
	}
}

func TestNames(t *testing.T) {
	cases := []struct {
		s    any
		want string
	}{
		{serde.String(), "String"},
		{serde.ByteArray(), "ByteArray"},
		{serde.Int16(), "Int16"},
		{serde.Int32(), "Int32"},
		{serde.Int64(), "Int64"},
		{serde.Float32(), "Float32"},
		{serde.Float64(), "Float64"},
		{serde.Bool(), "Bool"},
		{serde.JSON[order](), "JSON[serde_test.order]"},
		{serde.JSON[*order](), "JSON[*serde_test.order]"},
		{serde.JSON[map[string][]int](), "JSON[map[string][]int]"},
		{serde.Nullable(serde.String()), "Nullable(String)"},
		{serde.Nullable(serde.JSON[order]()), "Nullable(JSON[serde_test.order])"},
		{serde.Nullable(serde.Nullable(serde.Int64())), "Nullable(Nullable(Int64))"},
		{serde.Func(strconvEncode, strconvDecode), "Func[int]"},
		{serde.Nullable[int](noName{}), "Nullable(serde_test.noName)"},
	}
	for _, c := range cases {
		if got := fmt.Sprint(c.s); got != c.want {
			t.Errorf("name = %q, want %q", got, c.want)
		}
	}
}

// noName is a Serde without a String method.
type noName struct{}

func (noName) Encode(int) ([]byte, error) { return nil, nil }
func (noName) Decode([]byte) (int, error) { return 0, nil }

// strconvEncode and strconvDecode make a Func serde of ints as decimal text.
func strconvEncode(v int) ([]byte, error) { return fmt.Appendf(nil, "%d", v), nil }
func strconvDecode(b []byte) (int, error) {
	if b == nil {
		return 0, serde.ErrNull
	}
	var v int
	_, err := fmt.Sscanf(string(b), "%d", &v)
	return v, err
}

func TestFunc(t *testing.T) {
	s := serde.Func(strconvEncode, strconvDecode)
	b, err := s.Encode(-42)
	if err != nil || string(b) != "-42" {
		t.Errorf("Encode(-42) = %q, %v", b, err)
	}
	v, err := s.Decode([]byte("17"))
	if err != nil || v != 17 {
		t.Errorf("Decode(17) = %d, %v", v, err)
	}
	if _, err := s.Decode(nil); !errors.Is(err, serde.ErrNull) {
		t.Errorf("Decode(nil) error = %v, want ErrNull", err)
	}
	// Nil functions give errors, never a panic.
	none := serde.Func[int](nil, nil)
	if _, err := none.Encode(1); err == nil || !strings.Contains(err.Error(), "no encode function") {
		t.Errorf("nil encode: %v", err)
	}
	if _, err := none.Decode([]byte("1")); err == nil || !strings.Contains(err.Error(), "no decode function") {
		t.Errorf("nil decode: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }
