package serde

import (
	"fmt"
	"reflect"
)

// Default returns the serde for type T where the choice is unambiguous:
//
//   - string: [String]
//   - []byte: [ByteArray]
//   - int16, int32, int64: [Int16], [Int32], [Int64]
//   - float32, float64: [Float32], [Float64]
//   - bool: [Bool]
//   - a struct, a pointer to a struct, a map, or a slice of anything but
//     bytes: [JSON]
//
// For any other type, such as int (whose width is ambiguous), an unsigned
// integer, a named type such as type ID string, an interface, a channel or
// a function, Default returns an error saying to pass a serde explicitly.
func Default[T any]() (Serde[T], error) {
	var s any
	switch any(*new(T)).(type) {
	case string:
		s = String()
	case []byte:
		s = ByteArray()
	case int16:
		s = Int16()
	case int32:
		s = Int32()
	case int64:
		s = Int64()
	case float32:
		s = Float32()
	case float64:
		s = Float64()
	case bool:
		s = Bool()
	}
	if s != nil {
		return s.(Serde[T]), nil
	}

	t := reflect.TypeFor[T]()
	switch k := t.Kind(); {
	case k == reflect.Struct,
		k == reflect.Pointer && t.Elem().Kind() == reflect.Struct,
		k == reflect.Map,
		k == reflect.Slice && t.Elem().Kind() != reflect.Uint8:
		return JSON[T](), nil
	}
	return nil, fmt.Errorf("serde: no default serde for type %v: %s", t, noDefaultReason(t))
}

// noDefaultReason says why Default has no serde for t, and what to do.
func noDefaultReason(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Uint, reflect.Uintptr:
		return "its width is ambiguous; pass one explicitly, such as serde.Int64()"
	case reflect.Int8, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "Kafka has no serde for it; pass one explicitly, such as serde.Int64() or serde.Func"
	case reflect.Slice: // a named byte slice
		return "it could be raw bytes or JSON; pass one explicitly, such as serde.JSON or serde.Func"
	case reflect.String, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Float32, reflect.Float64, reflect.Bool:
		return "it is a named type; pass one explicitly, such as serde.JSON or serde.Func"
	}
	return "pass one explicitly, such as serde.Func"
}
