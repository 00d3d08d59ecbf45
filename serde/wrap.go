package serde

import (
	"fmt"
	"reflect"
)

// Nullable returns a serde for *T that lets a topic carry nulls: a nil
// pointer encodes to nil bytes and nil bytes decode to a nil pointer. Any
// other value is encoded and decoded by s.
//
// If s encodes some non-nil value to nil bytes (as [ByteArray] does a nil
// slice), a pointer to that value decodes back as a nil pointer.
func Nullable[T any](s Serde[T]) Serde[*T] {
	return nullableSerde[T]{s: s, name: "Nullable(" + nameOf(s) + ")"}
}

type nullableSerde[T any] struct {
	s    Serde[T]
	name string // such as "Nullable(String)"
}

// String returns the serde's name, such as "Nullable(String)".
func (n nullableSerde[T]) String() string { return n.name }

// Encode returns nil bytes for a nil v, else the bytes of *v.
func (n nullableSerde[T]) Encode(v *T) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	return n.s.Encode(*v)
}

// Decode returns nil for nil data, else a pointer to the value data encodes.
func (n nullableSerde[T]) Decode(data []byte) (*T, error) {
	if data == nil {
		return nil, nil
	}
	v, err := n.s.Decode(data)
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// Func returns a serde that calls encode and decode, for a format the
// package does not provide. Both must be non-nil, safe for concurrent use and
// follow the rules of [Serde]: in particular, decode is passed nil bytes for
// a null and should fail with an error wrapping [ErrNull] if T has no nil.
//
// A nil encode or decode makes that direction fail with an error rather
// than panic.
func Func[T any](encode func(T) ([]byte, error), decode func([]byte) (T, error)) Serde[T] {
	name := "Func[" + reflect.TypeFor[T]().String() + "]"
	if encode == nil {
		encode = func(T) ([]byte, error) { return nil, fmt.Errorf("serde %s: no encode function", name) }
	}
	if decode == nil {
		decode = func([]byte) (T, error) {
			var zero T
			return zero, fmt.Errorf("serde %s: no decode function", name)
		}
	}
	return funcSerde[T]{encode: encode, decode: decode, name: name}
}

type funcSerde[T any] struct {
	encode func(T) ([]byte, error)
	decode func([]byte) (T, error)
	name   string // such as "Func[main.Point]"
}

// String returns the serde's name, such as "Func[main.Point]".
func (f funcSerde[T]) String() string { return f.name }

// Encode calls the encode function.
func (f funcSerde[T]) Encode(v T) ([]byte, error) { return f.encode(v) }

// Decode calls the decode function.
func (f funcSerde[T]) Decode(data []byte) (T, error) { return f.decode(data) }

// nameOf names a serde: its String method if it has one, else its Go type.
func nameOf(s any) string {
	if str, ok := s.(fmt.Stringer); ok {
		return str.String()
	}
	return fmt.Sprintf("%T", s)
}
