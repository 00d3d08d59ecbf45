package serde_test

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/riffle-streams/riffle/serde"
)

// seeds adds the byte slices to f's seed corpus.
func seeds(f *testing.F, data ...[]byte) {
	for _, d := range data {
		f.Add(d)
	}
}

// commonSeeds are inputs worth trying with every decoder.
var commonSeeds = [][]byte{
	{}, {0}, {1}, {2}, {0xff},
	{0, 1}, {0xff, 0xfe},
	{1, 2, 3},
	{0, 0, 1, 0}, {0x3f, 0x80, 0, 0}, {0x7f, 0xc0, 0, 1}, {0x7f, 0x80, 0, 1},
	{0, 0, 0, 0, 0, 0, 0, 1}, {0x3f, 0xf0, 0, 0, 0, 0, 0, 0}, {0x7f, 0xf0, 0, 0, 0, 0, 0, 1},
	{0, 0, 0, 0, 0, 0, 0, 0, 0},
	[]byte("h\xc3\xa9llo"), []byte("\xff\xfe invalid UTF-8"),
	[]byte(`{"name":"a","count":1}`), []byte("{"), []byte("null"),
}

// fuzzRoundTrip checks that s.Decode(data) does not panic, that nil or
// wrongly sized data gives a *DecodeError, and that if Decode succeeds,
// Encode gives back data exactly.
func fuzzRoundTrip[T any](f *testing.F, s serde.Serde[T]) {
	seeds(f, commonSeeds...)
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := s.Decode(data)
		if err != nil {
			var de *serde.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Decode(% x) error %#v is not a *DecodeError", data, err)
			}
			if data == nil && !errors.Is(err, serde.ErrNull) {
				t.Fatalf("Decode(nil) error %v does not wrap ErrNull", err)
			}
			return
		}
		b, err := s.Encode(v)
		if err != nil {
			t.Fatalf("Encode(Decode(% x)): %v", data, err)
		}
		if !bytes.Equal(b, data) || (b == nil) != (data == nil) {
			t.Fatalf("Encode(Decode(% x)) = % x", data, b)
		}
	})
}

func FuzzString(f *testing.F)    { fuzzRoundTrip(f, serde.String()) }
func FuzzByteArray(f *testing.F) { fuzzRoundTrip(f, serde.ByteArray()) }
func FuzzInt16(f *testing.F)     { fuzzRoundTrip(f, serde.Int16()) }
func FuzzInt32(f *testing.F)     { fuzzRoundTrip(f, serde.Int32()) }
func FuzzInt64(f *testing.F)     { fuzzRoundTrip(f, serde.Int64()) }
func FuzzFloat32(f *testing.F)   { fuzzRoundTrip(f, serde.Float32()) }
func FuzzFloat64(f *testing.F)   { fuzzRoundTrip(f, serde.Float64()) }
func FuzzBool(f *testing.F)      { fuzzRoundTrip(f, serde.Bool()) }

func FuzzNullable(f *testing.F) {
	fuzzRoundTrip(f, serde.Nullable(serde.Int64()))
}

// record is a type whose JSON round-trips to an equal value: no floats
// (precision), no interfaces, and no omitempty on a slice or map (which
// would turn an empty one into a nil one).
type record struct {
	Name  string            `json:"name"`
	Count int64             `json:"count"`
	OK    bool              `json:"ok,omitempty"`
	Tags  []string          `json:"tags"`
	Attrs map[string]uint16 `json:"attrs"`
	Next  *record           `json:"next,omitempty"`
	Raw   []byte            `json:"raw"`
}

// FuzzJSON checks that JSON decoders do not panic, that their errors are
// *DecodeErrors, and that a decoded value survives encoding and decoding
// again.
func FuzzJSON(f *testing.F) {
	seeds(f, commonSeeds...)
	seeds(f,
		[]byte(`{"name":"héllo","count":-9007199254740993,"ok":true,"tags":["a",""],"attrs":{"x":65535}}`),
		[]byte(`{"name":"a","next":{"name":"b","next":{"tags":[]}}}`),
		[]byte(`{"raw":"AAEC/w=="}`), []byte(`{"raw":""}`),
		[]byte(`{"name":"\ud800","count":1e2}`),
		[]byte(`{"NAME":"x","name":"y"}`),
		[]byte(`{"tags":null,"attrs":{}}`),
		[]byte(`[1,2,3]`), []byte(`"s"`), []byte(`12`), []byte(`{"a":1}x`), []byte("  {}  "),
	)
	structs := serde.JSON[record]()
	pointers := serde.JSON[*record]()
	f.Fuzz(func(t *testing.T, data []byte) {
		jsonRoundTrip(t, structs, data)
		jsonRoundTrip(t, pointers, data)
	})
}

func jsonRoundTrip[T any](t *testing.T, s serde.Serde[T], data []byte) {
	v, err := s.Decode(data)
	if err != nil {
		var de *serde.DecodeError
		if !errors.As(err, &de) || de.Got != len(data) {
			t.Fatalf("%v: Decode(%q) error %#v is not a *DecodeError with Got %d", s, data, err, len(data))
		}
		return
	}
	b, err := s.Encode(v)
	if err != nil {
		t.Fatalf("%v: Encode(Decode(%q)): %v", s, data, err)
	}
	w, err := s.Decode(b)
	if err != nil {
		t.Fatalf("%v: Decode(Encode(Decode(%q))) = Decode(%q): %v", s, data, b, err)
	}
	if !reflect.DeepEqual(v, w) {
		t.Fatalf("%v: %q decodes to %+v, which encodes to %q, which decodes to %+v", s, data, v, b, w)
	}
}
