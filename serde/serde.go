// Package serde converts typed keys and values to and from the bytes of Kafka
// records.
//
// A [Serde] encodes a value of type T to bytes and decodes bytes back to T.
// The built-in serdes write the same bytes as Kafka's built-in Java serdes, so
// a Go and a Java application can share topics: [String] is UTF-8, [Int32] and
// [Int64] are big-endian like Kafka's IntegerSerializer and LongSerializer,
// [Float64] is the IEEE 754 bits big-endian like DoubleSerializer, and
// [ByteArray] passes bytes through.
//
// # Nulls and tombstones
//
// Kafka tells a null (a record with no key, or a tombstone value) from an
// empty key or value. So does Riffle: nil bytes are a null and only a null.
// A null decodes to the nil of a type that has one ([ByteArray] gives a nil
// slice, [Nullable] a nil pointer, [JSON] of a pointer, slice or map type a nil
// of that type). A type with no nil (string, the numbers, a struct) cannot
// hold a null: decoding nil bytes with such a serde returns an error that wraps
// [ErrNull], rather than quietly turning a tombstone into "" or 0. Wrap the
// serde in [Nullable] where a topic may carry nulls. Encoding returns nil bytes
// only for a nil value; an empty string encodes to empty, non-nil bytes.
//
// Decoders never panic: bad bytes give an error of type [*DecodeError] that
// says what was expected and how many bytes were given.
package serde

import (
	"errors"
	"fmt"
)

// Serde encodes values of type T to bytes and decodes them back.
//
// Implementations must be safe for concurrent use: one Serde serves every
// task of an application.
type Serde[T any] interface {
	// Encode returns the bytes of v. It returns nil bytes only for a nil v
	// (a null key or a tombstone), which only a type with a nil can have.
	// The returned slice may be retained by the caller until the record is
	// written, so Encode must not reuse it.
	Encode(v T) ([]byte, error)
	// Decode returns the value that data encodes. A nil data is a null: it
	// decodes to T's nil, or fails with an error wrapping ErrNull when T
	// has no nil. Decode must not retain data after it returns unless
	// documented: the caller may reuse it.
	Decode(data []byte) (T, error)
}

// ErrNull is wrapped by the error a serde returns when asked to decode a
// null (nil bytes) into a type that cannot hold one.
var ErrNull = errors.New("null key or value")

// DecodeError reports bytes a serde could not decode.
type DecodeError struct {
	// Serde names the serde, such as "Int64" or "JSON[main.Order]".
	Serde string
	// Want says what the serde expected, such as "8 bytes".
	Want string
	// Got is how many bytes it was given; -1 for a null (nil bytes).
	Got int
	// Err is the underlying cause, if any (ErrNull for a null).
	Err error
}

// Error implements error.
func (e *DecodeError) Error() string {
	got := fmt.Sprintf("got %d bytes", e.Got)
	if e.Got == 1 {
		got = "got 1 byte"
	}
	if e.Got < 0 {
		got = "got null (nil bytes)"
	}
	msg := fmt.Sprintf("serde %s: want %s, %s", e.Serde, e.Want, got)
	if e.Err != nil && !errors.Is(e.Err, ErrNull) {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the underlying cause.
func (e *DecodeError) Unwrap() error { return e.Err }
