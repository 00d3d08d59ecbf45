package riffletest

import (
	"errors"
	"fmt"
	"time"

	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/topology"
)

// ErrNoRecord is returned by OutputTopic.Read when no record is waiting.
var ErrNoRecord = errors.New("riffletest: no record")

// InputTopic pipes typed records into a topic of a Driver.
type InputTopic[K, V any] struct {
	d       *Driver
	topic   string
	keys    serde.Serde[K]
	values  serde.Serde[V]
	next    time.Time
	advance time.Duration
}

// Input returns an InputTopic for topic, encoding with keys and values.
func Input[K, V any](d *Driver, topic string, keys serde.Serde[K], values serde.Serde[V]) *InputTopic[K, V] {
	return &InputTopic[K, V]{d: d, topic: topic, keys: keys, values: values, next: d.cfg.start}
}

// AutoAdvance makes every record piped without a timestamp take the current
// one and move it forward by step.
func (in *InputTopic[K, V]) AutoAdvance(step time.Duration) *InputTopic[K, V] {
	in.advance = step
	return in
}

// SetTime sets the timestamp of the next record piped without one.
func (in *InputTopic[K, V]) SetTime(t time.Time) { in.next = t }

// Pipe pipes a record with key k and value v, timestamped with the topic's
// current time, and processes it and every record it causes.
func (in *InputTopic[K, V]) Pipe(k K, v V, headers ...topology.Header) error {
	ts := in.next
	in.next = in.next.Add(in.advance)
	return in.PipeRecord(topology.Record[K, V]{Key: k, Value: v, Timestamp: ts, Headers: headers})
}

// PipeAt pipes a record timestamped ts.
func (in *InputTopic[K, V]) PipeAt(k K, v V, ts time.Time, headers ...topology.Header) error {
	return in.PipeRecord(topology.Record[K, V]{Key: k, Value: v, Timestamp: ts, Headers: headers})
}

// PipeRecord pipes rec.
func (in *InputTopic[K, V]) PipeRecord(rec topology.Record[K, V]) error {
	kb, err := in.keys.Encode(rec.Key)
	if err != nil {
		return fmt.Errorf("riffletest: input %q: encode key: %w", in.topic, err)
	}
	vb, err := in.values.Encode(rec.Value)
	if err != nil {
		return fmt.Errorf("riffletest: input %q: encode value: %w", in.topic, err)
	}
	return in.d.PipeRaw(in.topic, kb, vb, rec.Timestamp, rec.Headers...)
}

// OutputTopic reads typed records written to a topic of a Driver.
type OutputTopic[K, V any] struct {
	d      *Driver
	topic  string
	keys   serde.Serde[K]
	values serde.Serde[V]
}

// Output returns an OutputTopic for topic, decoding with keys and values.
func Output[K, V any](d *Driver, topic string, keys serde.Serde[K], values serde.Serde[V]) *OutputTopic[K, V] {
	return &OutputTopic[K, V]{d: d, topic: topic, keys: keys, values: values}
}

// Len returns how many records are waiting to be read.
func (o *OutputTopic[K, V]) Len() int { return o.d.Pending(o.topic) }

// Read returns, and removes, the oldest unread record; ErrNoRecord if there
// is none.
func (o *OutputTopic[K, V]) Read() (topology.Record[K, V], error) {
	raw, ok := o.d.ReadRaw(o.topic)
	if !ok {
		return topology.Record[K, V]{}, fmt.Errorf("%w in topic %q", ErrNoRecord, o.topic)
	}
	k, err := o.keys.Decode(raw.Key)
	if err != nil {
		return topology.Record[K, V]{}, fmt.Errorf("riffletest: output %q offset %d: decode key: %w", o.topic, raw.Offset, err)
	}
	v, err := o.values.Decode(raw.Value)
	if err != nil {
		return topology.Record[K, V]{}, fmt.Errorf("riffletest: output %q offset %d: decode value: %w", o.topic, raw.Offset, err)
	}
	return topology.Record[K, V]{Key: k, Value: v, Timestamp: raw.Timestamp, Headers: raw.Headers}, nil
}

// ReadAll returns, and removes, every unread record, oldest first.
func (o *OutputTopic[K, V]) ReadAll() ([]topology.Record[K, V], error) {
	var out []topology.Record[K, V]
	for o.Len() > 0 {
		r, err := o.Read()
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

// ReadKeyValues returns, and removes, every unread record as a key and a
// value, oldest first.
func (o *OutputTopic[K, V]) ReadKeyValues() ([]topology.KeyValue[K, V], error) {
	recs, err := o.ReadAll()
	out := make([]topology.KeyValue[K, V], len(recs))
	for i, r := range recs {
		out[i] = topology.KV(r.Key, r.Value)
	}
	return out, err
}

// ReadValues returns, and removes, the values of every unread record,
// oldest first.
func (o *OutputTopic[K, V]) ReadValues() ([]V, error) {
	recs, err := o.ReadAll()
	out := make([]V, len(recs))
	for i, r := range recs {
		out[i] = r.Value
	}
	return out, err
}
