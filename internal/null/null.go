// Package null tells whether a value of a generic type is nil, without
// reflection or allocation on the hot path.
//
// Riffle keeps Kafka's nulls in the types that can hold them: a nil pointer,
// slice, map or interface is a null key or a tombstone. Operators that skip
// nulls (aggregations, joins) ask a Checker.
package null

import (
	"reflect"
	"unsafe"
)

// Checker reports whether a value of type T is nil.
type Checker[T any] struct {
	nillable bool
	iface    bool
}

// For returns the Checker of T, worked out once.
func For[T any]() Checker[T] {
	switch reflect.TypeFor[T]().Kind() {
	case reflect.Pointer, reflect.Map, reflect.Chan, reflect.Func, reflect.Slice, reflect.UnsafePointer:
		return Checker[T]{nillable: true}
	case reflect.Interface:
		return Checker[T]{nillable: true, iface: true}
	}
	return Checker[T]{}
}

// Nillable reports whether T can be nil at all.
func (c Checker[T]) Nillable() bool { return c.nillable }

// IsNil reports whether v is nil. It is always false for a type with no nil.
func (c Checker[T]) IsNil(v T) bool {
	if !c.nillable {
		return false
	}
	if c.iface {
		return any(v) == nil
	}
	// A pointer, map, channel, function or unsafe pointer is one machine
	// word, nil when zero; a slice is nil when its data pointer is.
	return *(*unsafe.Pointer)(unsafe.Pointer(&v)) == nil
}
