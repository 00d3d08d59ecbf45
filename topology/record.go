package topology

import (
	"fmt"
	"strconv"
	"time"
)

// Header is a record header, as in Kafka.
type Header struct {
	Key   string
	Value []byte
}

// Record is a keyed, timestamped record flowing between processors.
//
// A nil key or value (for types that have a nil) is a null: the tombstone of
// a compacted topic, or a record with no key.
type Record[K, V any] struct {
	Key       K
	Value     V
	Timestamp time.Time
	Headers   []Header
}

// KeyValue is a key and a value, as returned by FlatMap functions.
type KeyValue[K, V any] struct {
	Key   K
	Value V
}

// KV returns a KeyValue of k and v.
func KV[K, V any](k K, v V) KeyValue[K, V] { return KeyValue[K, V]{Key: k, Value: v} }

// RawRecord is a record as bytes, read from or written to a topic. The
// runtime and the test driver hand RawRecords to a Task and receive them from
// it.
type RawRecord struct {
	Topic string
	// Partition is the record's partition. On output, -1 lets the runtime
	// choose by key, as Kafka's default partitioner does.
	Partition int32
	// Offset is the record's offset in its partition; -1 when unknown.
	Offset    int64
	Key       []byte
	Value     []byte
	Timestamp time.Time
	Headers   []Header
}

// RecordMetadata says where the record being processed came from.
type RecordMetadata struct {
	Topic     string
	Partition int32
	Offset    int64
}

// TaskID names a task: a sub-topology and a partition, written "1_3".
type TaskID struct {
	Subtopology int
	Partition   int32
}

// String returns the id as Kafka Streams writes it, such as "1_3".
func (id TaskID) String() string { return fmt.Sprintf("%d_%d", id.Subtopology, id.Partition) }

// The headers a dead-letter record carries besides the failed record's
// own: why it failed and where it was read.
const (
	HeaderDeadLetterError     = "riffle.error"
	HeaderDeadLetterTopic     = "riffle.topic"
	HeaderDeadLetterPartition = "riffle.partition"
	HeaderDeadLetterOffset    = "riffle.offset"
)

// DeadLetter returns the record to write to the dead-letter topic topic for
// rec, which failed with err: rec's key, value, timestamp and headers, as
// it was read, and the headers HeaderDeadLetterError (err's text),
// HeaderDeadLetterTopic, HeaderDeadLetterPartition and
// HeaderDeadLetterOffset. The runtime and the test driver write the same.
func DeadLetter(topic string, rec RawRecord, err error) RawRecord {
	headers := make([]Header, 0, len(rec.Headers)+4)
	headers = append(headers, rec.Headers...)
	headers = append(headers,
		Header{Key: HeaderDeadLetterError, Value: []byte(err.Error())},
		Header{Key: HeaderDeadLetterTopic, Value: []byte(rec.Topic)},
		Header{Key: HeaderDeadLetterPartition, Value: strconv.AppendInt(nil, int64(rec.Partition), 10)},
		Header{Key: HeaderDeadLetterOffset, Value: strconv.AppendInt(nil, rec.Offset, 10)},
	)
	return RawRecord{Topic: topic, Partition: -1, Offset: -1, Key: rec.Key, Value: rec.Value, Timestamp: rec.Timestamp, Headers: headers}
}
