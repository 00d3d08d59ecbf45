package serde

import (
	"encoding/binary"
	"math"
)

// Int16 returns the serde for 16-bit integers: two bytes, big-endian two's
// complement, like Kafka's ShortSerializer and ShortDeserializer.
func Int16() Serde[int16] { return int16Serde{} }

// Int32 returns the serde for 32-bit integers: four bytes, big-endian two's
// complement, like Kafka's IntegerSerializer and IntegerDeserializer.
func Int32() Serde[int32] { return int32Serde{} }

// Int64 returns the serde for 64-bit integers: eight bytes, big-endian two's
// complement, like Kafka's LongSerializer and LongDeserializer.
func Int64() Serde[int64] { return int64Serde{} }

// Float32 returns the serde for 32-bit floats: the four bytes of the IEEE 754
// bits, big-endian, like Kafka's FloatSerializer and FloatDeserializer. Every
// bit is kept, including the sign of zero and the payload of a NaN.
func Float32() Serde[float32] { return float32Serde{} }

// Float64 returns the serde for 64-bit floats: the eight bytes of the IEEE
// 754 bits, big-endian, like Kafka's DoubleSerializer and DoubleDeserializer.
// Every bit is kept, including the sign of zero and the payload of a NaN.
func Float64() Serde[float64] { return float64Serde{} }

type (
	int16Serde   struct{}
	int32Serde   struct{}
	int64Serde   struct{}
	float32Serde struct{}
	float64Serde struct{}
)

// String returns "Int16".
func (int16Serde) String() string { return "Int16" }

// Encode returns the two bytes of v, big-endian.
func (int16Serde) Encode(v int16) ([]byte, error) {
	return binary.BigEndian.AppendUint16(make([]byte, 0, 2), uint16(v)), nil
}

// Decode returns the integer in exactly two bytes.
func (int16Serde) Decode(data []byte) (int16, error) {
	if err := checkLen("Int16", "2 bytes", data, 2); err != nil {
		return 0, err
	}
	return int16(binary.BigEndian.Uint16(data)), nil
}

// String returns "Int32".
func (int32Serde) String() string { return "Int32" }

// Encode returns the four bytes of v, big-endian.
func (int32Serde) Encode(v int32) ([]byte, error) {
	return binary.BigEndian.AppendUint32(make([]byte, 0, 4), uint32(v)), nil
}

// Decode returns the integer in exactly four bytes.
func (int32Serde) Decode(data []byte) (int32, error) {
	if err := checkLen("Int32", "4 bytes", data, 4); err != nil {
		return 0, err
	}
	return int32(binary.BigEndian.Uint32(data)), nil
}

// String returns "Int64".
func (int64Serde) String() string { return "Int64" }

// Encode returns the eight bytes of v, big-endian.
func (int64Serde) Encode(v int64) ([]byte, error) {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(v)), nil
}

// Decode returns the integer in exactly eight bytes.
func (int64Serde) Decode(data []byte) (int64, error) {
	if err := checkLen("Int64", "8 bytes", data, 8); err != nil {
		return 0, err
	}
	return int64(binary.BigEndian.Uint64(data)), nil
}

// String returns "Float32".
func (float32Serde) String() string { return "Float32" }

// Encode returns the four bytes of v's IEEE 754 bits, big-endian.
func (float32Serde) Encode(v float32) ([]byte, error) {
	return binary.BigEndian.AppendUint32(make([]byte, 0, 4), math.Float32bits(v)), nil
}

// Decode returns the float whose IEEE 754 bits are exactly four bytes.
func (float32Serde) Decode(data []byte) (float32, error) {
	if err := checkLen("Float32", "4 bytes", data, 4); err != nil {
		return 0, err
	}
	return math.Float32frombits(binary.BigEndian.Uint32(data)), nil
}

// String returns "Float64".
func (float64Serde) String() string { return "Float64" }

// Encode returns the eight bytes of v's IEEE 754 bits, big-endian.
func (float64Serde) Encode(v float64) ([]byte, error) {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), math.Float64bits(v)), nil
}

// Decode returns the float whose IEEE 754 bits are exactly eight bytes.
func (float64Serde) Decode(data []byte) (float64, error) {
	if err := checkLen("Float64", "8 bytes", data, 8); err != nil {
		return 0, err
	}
	return math.Float64frombits(binary.BigEndian.Uint64(data)), nil
}
