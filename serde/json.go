package serde

import (
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
)

// JSON returns a serde that encodes values of type T with encoding/json.
//
// If T is a pointer, slice, map or interface type, a nil value encodes to nil
// bytes (a tombstone, not the text "null") and nil bytes decode to a nil T.
// For any other T, decoding nil bytes fails with an error wrapping [ErrNull].
// The JSON text null (which a Java producer may write) is not a Kafka null: it
// decodes as encoding/json decodes it, to a nil T or, for a T with no nil, to
// the zero value.
// Bytes that are not valid JSON for T give a [*DecodeError] whose Err is the
// error from encoding/json.
func JSON[T any]() Serde[T] {
	t := reflect.TypeFor[T]()
	s := jsonSerde[T]{
		name: "JSON[" + t.String() + "]",
		want: "a JSON " + jsonKind(t),
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface:
		s.nullable = true
	}
	return s
}

type jsonSerde[T any] struct {
	name     string // such as "JSON[main.Order]"
	want     string // such as "a JSON object"
	nullable bool   // T has a nil, which is a null
}

// String returns the serde's name, such as "JSON[main.Order]".
func (s jsonSerde[T]) String() string { return s.name }

// Encode returns the JSON of v, or nil bytes for a nil v.
func (s jsonSerde[T]) Encode(v T) ([]byte, error) {
	if s.nullable && reflect.ValueOf(&v).Elem().IsNil() {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("serde %s: %w", s.name, err)
	}
	return b, nil
}

// Decode returns the value that the JSON in data encodes.
func (s jsonSerde[T]) Decode(data []byte) (T, error) {
	var v T
	if data == nil {
		if s.nullable {
			return v, nil
		}
		return v, nullError(s.name, s.want)
	}
	if err := json.Unmarshal(data, &v); err != nil {
		var zero T
		return zero, &DecodeError{Serde: s.name, Want: s.want, Got: len(data), Err: err}
	}
	return v, nil
}

// jsonKind names the kind of JSON value that encodes a value of type t.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if implements[json.Unmarshaler](t) {
		return "value"
	}
	if implements[encoding.TextUnmarshaler](t) {
		return "string"
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "string" // base64
		}
		return "array"
	case reflect.Array:
		return "array"
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		return "number"
	}
	return "value"
}

// implements reports whether t or a pointer to t implements interface I.
func implements[I any](t reflect.Type) bool {
	i := reflect.TypeFor[I]()
	return t.Implements(i) || reflect.PointerTo(t).Implements(i)
}
