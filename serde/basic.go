package serde

import "fmt"

// String returns the serde for UTF-8 strings, like Kafka's StringSerializer
// and StringDeserializer with their default encoding.
//
// An empty string encodes to empty, non-nil bytes. Decoding keeps the bytes as
// they are, even if they are not valid UTF-8 (Java's decoder would replace
// them). Decoding nil bytes fails with an error wrapping [ErrNull]; wrap the
// serde in [Nullable] if the topic may carry nulls.
func String() Serde[string] { return stringSerde{} }

type stringSerde struct{}

// String returns "String".
func (stringSerde) String() string { return "String" }

// Encode returns the bytes of v, never nil.
func (stringSerde) Encode(v string) ([]byte, error) {
	if v == "" {
		return []byte{}, nil
	}
	return []byte(v), nil
}

// Decode returns data as a string. Nil data is an error wrapping ErrNull.
func (stringSerde) Decode(data []byte) (string, error) {
	if data == nil {
		return "", nullError("String", "a string")
	}
	return string(data), nil
}

// ByteArray returns the serde that passes bytes through, like Kafka's
// ByteArraySerializer and ByteArrayDeserializer.
//
// It does not copy: Encode returns v itself and Decode returns data itself,
// so a caller that reuses the buffer it decoded from must copy the result
// first. Nil bytes are a null and decode to a nil slice; empty bytes decode to
// an empty, non-nil slice.
func ByteArray() Serde[[]byte] { return byteArraySerde{} }

type byteArraySerde struct{}

// String returns "ByteArray".
func (byteArraySerde) String() string { return "ByteArray" }

// Encode returns v itself.
func (byteArraySerde) Encode(v []byte) ([]byte, error) { return v, nil }

// Decode returns data itself; see [ByteArray].
func (byteArraySerde) Decode(data []byte) ([]byte, error) { return data, nil }

// Bool returns the serde for booleans, like Kafka's BooleanSerializer and
// BooleanDeserializer: one byte, 0x01 for true and 0x00 for false.
//
// Decoding rejects any other length or byte.
func Bool() Serde[bool] { return boolSerde{} }

type boolSerde struct{}

const boolWant = "1 byte, 0x00 or 0x01"

// String returns "Bool".
func (boolSerde) String() string { return "Bool" }

// Encode returns 0x01 for true and 0x00 for false.
func (boolSerde) Encode(v bool) ([]byte, error) {
	if v {
		return []byte{1}, nil
	}
	return []byte{0}, nil
}

// Decode returns true for 0x01 and false for 0x00.
func (boolSerde) Decode(data []byte) (bool, error) {
	if err := checkLen("Bool", boolWant, data, 1); err != nil {
		return false, err
	}
	switch data[0] {
	case 0:
		return false, nil
	case 1:
		return true, nil
	}
	err := fmt.Errorf("invalid byte %#02x", data[0])
	return false, &DecodeError{Serde: "Bool", Want: boolWant, Got: 1, Err: err}
}

// nullError returns the error for decoding nil bytes with a serde whose type
// has no nil.
func nullError(serde, want string) error {
	return &DecodeError{Serde: serde, Want: want, Got: -1, Err: ErrNull}
}

// checkLen returns a *DecodeError unless data is n bytes long.
func checkLen(serde, want string, data []byte, n int) error {
	if data == nil {
		return nullError(serde, want)
	}
	if len(data) != n {
		return &DecodeError{Serde: serde, Want: want, Got: len(data)}
	}
	return nil
}
