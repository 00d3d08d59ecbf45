// Package stream is the typed DSL for record streams: Stream[K, V] and the
// operators on it.
//
// Operators that keep the key and value types are methods
// (s.Filter(pred), s.Peek(fn), s.Merge(other), s.To(topic)); operators that
// change a type are package functions (stream.Map(s, fn),
// stream.MapValues(s, fn), stream.Process(s, supplier)), because Go methods
// cannot take type parameters.
//
// Each operator adds a node to a topology.Builder. Nothing runs until the
// built topology is run by the runtime or the test driver, and the DSL never
// talks to Kafka. Mistakes (a missing serde, a serde of the wrong type, a
// duplicate name) are collected by the Builder and reported by its Build,
// naming the operator.
//
// Every operator takes options: [Named] gives its node a name. Otherwise one
// is made from its parent's name and the operator's kind, so adding an
// operator elsewhere renames nothing; only among unnamed siblings of the same
// kind off the same parent does the order of declaration decide who gets
// "-2". Name operators whose stores and topics must outlive such edits.
// [WithKeySerde] and [WithValueSerde] set
// serdes where they are needed (sources, sinks, repartitions). Without one, a
// serde is taken from upstream when the type did not change, or picked by
// type (see serde.Default).
//
// An operator that may change the key (Map, SelectKey, FlatMap, Process)
// marks the stream: the next stateful operator first sends its records
// through a repartition topic, so each key reaches the task that owns it.
// [Stream.Repartition] does so explicitly.
package stream

import (
	"fmt"
	"io"
	"os"
	"regexp"
	"time"

	"github.com/riffle-streams/riffle/internal/dsl"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/topology"
)

// Stream is a typed stream of records flowing out of one node of a topology.
// It is a small value: copy it freely.
type Stream[K, V any] struct {
	b      *topology.Builder
	node   string
	keys   serde.Serde[K]
	values serde.Serde[V]
	// rekeyed is set by key-changing operators: the next stateful operator
	// repartitions first.
	rekeyed bool
}

// Builder returns the builder the stream adds nodes to.
func (s Stream[K, V]) Builder() *topology.Builder { return s.b }

// Name returns the name of the node whose output this stream is. Use it to
// attach Processor API nodes with topology.AddProcessor.
func (s Stream[K, V]) Name() string { return s.node }

// Option configures an operator.
type Option func(*options)

type options struct {
	name       string
	keySerde   any
	valueSerde any
	stores     []string
	partitions int
	out        io.Writer
	label      string
	store      string
	storeOpts  []state.Option
	emitFinal  bool
	closeIdle  time.Duration
	onLate     any // func(K, V, time.Time)
	eventTime  any // func(K, V) time.Time
	invalidTS  *topology.InvalidTimestampPolicy
}

func collect(opts []Option) options {
	var o options
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	return o
}

// Named names the operator's node. Internal topics and stores made for the
// operator take their names from it.
func Named(name string) Option { return func(o *options) { o.name = name } }

// WithKeySerde sets the serde of the operator's keys.
func WithKeySerde[K any](s serde.Serde[K]) Option { return func(o *options) { o.keySerde = s } }

// WithValueSerde sets the serde of the operator's values.
func WithValueSerde[V any](s serde.Serde[V]) Option { return func(o *options) { o.valueSerde = s } }

// WithStores connects the named stores, declared with
// topology.Builder.AddStore, to the processor of [Process].
func WithStores(names ...string) Option {
	return func(o *options) { o.stores = append(o.stores, names...) }
}

// EventTime makes a source take each record's event time from fn (a
// func(K, V) time.Time of the source's key and value types), for example a
// field of the value; by default it is the record's Kafka timestamp. Stream
// time, windows and stream-time punctuations follow it.
func EventTime[K, V any](fn func(K, V) time.Time) Option {
	return func(o *options) { o.eventTime = fn }
}

// OnInvalidTimestamp sets what a source does with a record whose event time
// is invalid (before the Unix epoch): fail (the default), skip it (counted
// and logged), or give it its partition's latest valid time.
func OnInvalidTimestamp(p topology.InvalidTimestampPolicy) Option {
	return func(o *options) { o.invalidTS = &p }
}

// timestamps applies the EventTime and OnInvalidTimestamp options to the
// source named name.
func timestamps[K, V any](b *topology.Builder, name string, o options) {
	if o.eventTime == nil && o.invalidTS == nil {
		return
	}
	var extract func(topology.Record[K, V]) time.Time
	if o.eventTime != nil {
		fn, ok := o.eventTime.(func(K, V) time.Time)
		if !ok {
			var k K
			var v V
			b.AddError(fmt.Errorf("stream: source %q: EventTime takes a %T, not a func(%T, %T) time.Time", name, o.eventTime, k, v))
			return
		}
		if fn == nil {
			b.AddError(fmt.Errorf("stream: source %q: EventTime's function is nil", name))
			return
		}
		extract = func(r topology.Record[K, V]) time.Time { return fn(r.Key, r.Value) }
	}
	policy := topology.FailOnInvalidTimestamp
	if o.invalidTS != nil {
		policy = *o.invalidTS
	}
	topology.SetTimestampExtractor(b, name, extract, policy)
}

// WithPartitions sets the partition count of a repartition topic. By default
// it has as many partitions as the topics upstream.
func WithPartitions(n int) Option { return func(o *options) { o.partitions = n } }

// PrintTo sets where [Stream.Print] writes. The default is standard output.
func PrintTo(w io.Writer) Option { return func(o *options) { o.out = w } }

// WithLabel sets the label [Stream.Print] puts before each record.
func WithLabel(label string) Option { return func(o *options) { o.label = label } }

// name returns the operator's node name: the one given, or a generated one.
func (o *options) nameFor(b *topology.Builder, parent, kind string) string {
	if o.name != "" {
		return o.name
	}
	return b.NewName(parent, kind)
}

// serdeFor returns the serde for T by the DSL's rules (see dsl.SerdeFor).
func serdeFor[T any](b *topology.Builder, opt any, known serde.Serde[T], op, part string) serde.Serde[T] {
	return dsl.SerdeFor(b, "stream", opt, known, op, part)
}

// From returns the stream of the records of topic.
func From[K, V any](b *topology.Builder, topic string, opts ...Option) Stream[K, V] {
	return FromTopics[K, V](b, []string{topic}, opts...)
}

// FromTopics returns the stream of the records of every topic in topics.
func FromTopics[K, V any](b *topology.Builder, topics []string, opts ...Option) Stream[K, V] {
	o := collect(opts)
	base := "from"
	for i, t := range topics {
		if i > 0 {
			base += "+"
		} else {
			base += "-"
		}
		base += t
	}
	name := o.name
	if name == "" {
		name = b.NewName("", base)
	}
	op := fmt.Sprintf("source %q", name)
	ks := serdeFor[K](b, o.keySerde, nil, op, "key")
	vs := serdeFor[V](b, o.valueSerde, nil, op, "value")
	if ks != nil && vs != nil {
		topology.AddSource(b, name, ks, vs, topics...)
		timestamps[K, V](b, name, o)
	}
	return Stream[K, V]{b: b, node: name, keys: ks, values: vs}
}

// FromPattern returns the stream of the records of every topic whose whole
// name matches pattern, including topics created later.
func FromPattern[K, V any](b *topology.Builder, pattern *regexp.Regexp, opts ...Option) Stream[K, V] {
	o := collect(opts)
	name := o.name
	if name == "" {
		name = b.NewName("", "from-pattern")
	}
	op := fmt.Sprintf("source %q", name)
	ks := serdeFor[K](b, o.keySerde, nil, op, "key")
	vs := serdeFor[V](b, o.valueSerde, nil, op, "value")
	if ks != nil && vs != nil {
		topology.AddPatternSource(b, name, ks, vs, pattern)
		timestamps[K, V](b, name, o)
	}
	return Stream[K, V]{b: b, node: name, keys: ks, values: vs}
}

// Filter keeps the records for which pred returns true.
func (s Stream[K, V]) Filter(pred func(K, V) bool, opts ...Option) Stream[K, V] {
	return s.keep("filter", pred == nil, func() topology.Processor[K, V, K, V] { return &filterProc[K, V]{pred: pred} }, opts)
}

// FilterNot keeps the records for which pred returns false.
func (s Stream[K, V]) FilterNot(pred func(K, V) bool, opts ...Option) Stream[K, V] {
	return s.keep("filternot", pred == nil, func() topology.Processor[K, V, K, V] { return &filterProc[K, V]{pred: pred, not: true} }, opts)
}

// Peek calls fn on each record and passes the record on unchanged.
func (s Stream[K, V]) Peek(fn func(K, V), opts ...Option) Stream[K, V] {
	return s.keep("peek", fn == nil, func() topology.Processor[K, V, K, V] { return &peekProc[K, V]{fn: fn} }, opts)
}

// Foreach calls fn on each record. It ends the stream.
func (s Stream[K, V]) Foreach(fn func(K, V), opts ...Option) {
	s.keep("foreach", fn == nil, func() topology.Processor[K, V, K, V] { return &peekProc[K, V]{fn: fn, last: true} }, opts)
}

// Print writes each record as "[label]: key, value" on a line, to standard
// output unless [PrintTo] says otherwise. The label defaults to the node's
// name. It ends the stream.
func (s Stream[K, V]) Print(opts ...Option) {
	o := collect(opts)
	name := o.nameFor(s.b, s.node, "print")
	w, label := o.out, o.label
	if w == nil {
		w = os.Stdout
	}
	if label == "" {
		label = name
	}
	topology.AddProcessor(s.b, name, func() topology.Processor[K, V, K, V] {
		return &peekProc[K, V]{fn: func(k K, v V) { fmt.Fprintf(w, "[%s]: %v, %v\n", label, k, v) }, last: true}
	}, s.node)
}

// keep adds a processor that keeps the types.
func (s Stream[K, V]) keep(kind string, nilFn bool, supplier func() topology.Processor[K, V, K, V], opts []Option) Stream[K, V] {
	o := collect(opts)
	name := o.nameFor(s.b, s.node, kind)
	checkFn(s.b, name, nilFn)
	topology.AddProcessor(s.b, name, supplier, s.node)
	out := s
	out.node = name
	return out
}

// Merge returns a stream of the records of s and of other, as they arrive.
func (s Stream[K, V]) Merge(other Stream[K, V], opts ...Option) Stream[K, V] {
	o := collect(opts)
	name := o.nameFor(s.b, s.node, "merge")
	if other.b != s.b {
		s.b.AddError(fmt.Errorf("stream: merge %q: the streams come from different builders", name))
		return s
	}
	topology.AddProcessor(s.b, name, func() topology.Processor[K, V, K, V] { return &passProc[K, V]{} }, s.node, other.node)
	out := s
	out.node = name
	out.rekeyed = s.rekeyed || other.rekeyed
	if out.keys == nil {
		out.keys = other.keys
	}
	if out.values == nil {
		out.values = other.values
	}
	return out
}

// To writes the records to topic.
func (s Stream[K, V]) To(topic string, opts ...Option) {
	o := collect(opts)
	name := o.nameFor(s.b, s.node, "to-"+topic)
	op := fmt.Sprintf("sink %q", name)
	ks := serdeFor[K](s.b, o.keySerde, s.keys, op, "key")
	vs := serdeFor[V](s.b, o.valueSerde, s.values, op, "value")
	if ks != nil && vs != nil {
		topology.AddSink(s.b, name, topic, ks, vs, s.node)
	}
}

// ToFunc writes each record to the topic choose returns for it. The topics
// must exist.
func (s Stream[K, V]) ToFunc(choose func(K, V) string, opts ...Option) {
	o := collect(opts)
	name := o.nameFor(s.b, s.node, "to")
	op := fmt.Sprintf("sink %q", name)
	ks := serdeFor[K](s.b, o.keySerde, s.keys, op, "key")
	vs := serdeFor[V](s.b, o.valueSerde, s.values, op, "value")
	if choose == nil {
		s.b.AddError(fmt.Errorf("stream: %s: topic chooser is nil", op))
		return
	}
	if ks != nil && vs != nil {
		topology.AddDynamicSink(s.b, name, func(r topology.Record[K, V]) string { return choose(r.Key, r.Value) }, ks, vs, s.node)
	}
}

// Repartition sends the records through an internal topic,
// "<app>-<name>-repartition", so that each reaches the task of its key's
// partition, and returns the stream read back from it. [WithPartitions] sets
// the topic's partition count.
func (s Stream[K, V]) Repartition(opts ...Option) Stream[K, V] {
	o := collect(opts)
	name := o.nameFor(s.b, s.node, "repartition")
	op := fmt.Sprintf("repartition %q", name)
	ks := serdeFor[K](s.b, o.keySerde, s.keys, op, "key")
	vs := serdeFor[V](s.b, o.valueSerde, s.values, op, "value")
	if ks == nil || vs == nil {
		return s
	}
	src := topology.AddRepartition(s.b, name, ks, vs, o.partitions, s.node)
	if src == "" {
		return s
	}
	return Stream[K, V]{b: s.b, node: src, keys: ks, values: vs}
}

// Map turns each record into a new one with fn. It may change the key, so it
// marks the stream for repartitioning.
func Map[K, V, K2, V2 any](s Stream[K, V], fn func(K, V) (K2, V2), opts ...Option) Stream[K2, V2] {
	o := collect(opts)
	name := o.nameFor(s.b, s.node, "map")
	checkFn(s.b, name, fn == nil)
	topology.AddProcessor(s.b, name, func() topology.Processor[K, V, K2, V2] { return &mapProc[K, V, K2, V2]{fn: fn} }, s.node)
	return Stream[K2, V2]{b: s.b, node: name, keys: outSerde[K2](s.b, o.keySerde, s.keys, name, "key"), values: outSerde[V2](s.b, o.valueSerde, s.values, name, "value"), rekeyed: true}
}

// MapValues turns each value into a new one with fn and keeps the key.
func MapValues[K, V, V2 any](s Stream[K, V], fn func(V) V2, opts ...Option) Stream[K, V2] {
	o := collect(opts)
	name := o.nameFor(s.b, s.node, "mapvalues")
	checkFn(s.b, name, fn == nil)
	topology.AddProcessor(s.b, name, func() topology.Processor[K, V, K, V2] { return &mapValuesProc[K, V, V2]{fn: fn} }, s.node)
	return Stream[K, V2]{b: s.b, node: name, keys: s.keys, values: outSerde[V2](s.b, o.valueSerde, s.values, name, "value"), rekeyed: s.rekeyed}
}

// SelectKey sets each record's key to what fn returns. It marks the stream
// for repartitioning.
func SelectKey[K, V, K2 any](s Stream[K, V], fn func(K, V) K2, opts ...Option) Stream[K2, V] {
	o := collect(opts)
	name := o.nameFor(s.b, s.node, "selectkey")
	checkFn(s.b, name, fn == nil)
	topology.AddProcessor(s.b, name, func() topology.Processor[K, V, K2, V] { return &selectKeyProc[K, V, K2]{fn: fn} }, s.node)
	return Stream[K2, V]{b: s.b, node: name, keys: outSerde[K2](s.b, o.keySerde, s.keys, name, "key"), values: s.values, rekeyed: true}
}

// FlatMap turns each record into zero or more records with fn. It marks the
// stream for repartitioning.
func FlatMap[K, V, K2, V2 any](s Stream[K, V], fn func(K, V) []topology.KeyValue[K2, V2], opts ...Option) Stream[K2, V2] {
	o := collect(opts)
	name := o.nameFor(s.b, s.node, "flatmap")
	checkFn(s.b, name, fn == nil)
	topology.AddProcessor(s.b, name, func() topology.Processor[K, V, K2, V2] { return &flatMapProc[K, V, K2, V2]{fn: fn} }, s.node)
	return Stream[K2, V2]{b: s.b, node: name, keys: outSerde[K2](s.b, o.keySerde, s.keys, name, "key"), values: outSerde[V2](s.b, o.valueSerde, s.values, name, "value"), rekeyed: true}
}

// FlatMapValues turns each value into zero or more values with fn, each
// keeping the record's key.
func FlatMapValues[K, V, V2 any](s Stream[K, V], fn func(V) []V2, opts ...Option) Stream[K, V2] {
	o := collect(opts)
	name := o.nameFor(s.b, s.node, "flatmapvalues")
	checkFn(s.b, name, fn == nil)
	topology.AddProcessor(s.b, name, func() topology.Processor[K, V, K, V2] { return &flatMapValuesProc[K, V, V2]{fn: fn} }, s.node)
	return Stream[K, V2]{b: s.b, node: name, keys: s.keys, values: outSerde[V2](s.b, o.valueSerde, s.values, name, "value"), rekeyed: s.rekeyed}
}

// Process runs a Processor API processor on each record; the processors are
// made by supplier, one per task. [WithStores] connects stores to it. It may
// change the key, so it marks the stream for repartitioning: use
// [ProcessValues] for a processor that keeps keys.
func Process[K, V, K2, V2 any](s Stream[K, V], supplier func() topology.Processor[K, V, K2, V2], opts ...Option) Stream[K2, V2] {
	o := collect(opts)
	name := o.nameFor(s.b, s.node, "process")
	topology.AddProcessor(s.b, name, supplier, s.node)
	for _, st := range o.stores {
		s.b.ConnectStore(st, name)
	}
	return Stream[K2, V2]{b: s.b, node: name, keys: outSerde[K2](s.b, o.keySerde, s.keys, name, "key"), values: outSerde[V2](s.b, o.valueSerde, s.values, name, "value"), rekeyed: true}
}

// ProcessValues runs a Processor API processor on each record, as Process
// does, but keeps the records' keys, as Kafka Streams' processValues: the
// stream is not marked for repartitioning, so a later grouping or join
// reads it as it is. Each record the processor forwards while it processes
// a record takes that record's key, whatever key it was given; a record
// forwarded at any other time (from a punctuation) is an error, since it
// has no key to keep. [WithStores] connects stores to it; [WithValueSerde]
// sets the serde of the values it forwards.
func ProcessValues[K, V, V2 any](s Stream[K, V], supplier func() topology.Processor[K, V, K, V2], opts ...Option) Stream[K, V2] {
	o := collect(opts)
	name := o.nameFor(s.b, s.node, "processvalues")
	checkFn(s.b, name, supplier == nil)
	topology.AddProcessor(s.b, name, func() topology.Processor[K, V, K, V2] {
		return &processValuesProc[K, V, V2]{inner: supplier()}
	}, s.node)
	for _, st := range o.stores {
		s.b.ConnectStore(st, name)
	}
	return Stream[K, V2]{b: s.b, node: name, keys: s.keys, values: outSerde[V2](s.b, o.valueSerde, s.values, name, "value"), rekeyed: s.rekeyed}
}

// processValuesProc runs a user's processor with a context that gives
// every record it forwards the key of the record being processed.
type processValuesProc[K, V, V2 any] struct {
	inner topology.Processor[K, V, K, V2]
	ctx   fixedKeyContext[K, V2]
}

func (p *processValuesProc[K, V, V2]) Init(ctx topology.Context[K, V2]) error {
	if p.inner == nil {
		return fmt.Errorf("stream: processor %q: its supplier returned nil", ctx.NodeName())
	}
	p.ctx.Context = ctx
	return p.inner.Init(&p.ctx)
}

func (p *processValuesProc[K, V, V2]) Process(r topology.Record[K, V]) error {
	p.ctx.key, p.ctx.processing = r.Key, true
	err := p.inner.Process(r)
	var zero K
	p.ctx.key, p.ctx.processing = zero, false
	return err
}

func (p *processValuesProc[K, V, V2]) Close() error {
	if p.inner == nil {
		return nil
	}
	return p.inner.Close()
}

// fixedKeyContext is the context of a ProcessValues processor.
type fixedKeyContext[K, V any] struct {
	topology.Context[K, V]
	key        K // of the record being processed
	processing bool
}

func (c *fixedKeyContext[K, V]) Forward(r topology.Record[K, V]) error {
	if !c.processing {
		return c.outside()
	}
	r.Key = c.key
	return c.Context.Forward(r)
}

func (c *fixedKeyContext[K, V]) ForwardTo(child string, r topology.Record[K, V]) error {
	if !c.processing {
		return c.outside()
	}
	r.Key = c.key
	return c.Context.ForwardTo(child, r)
}

func (c *fixedKeyContext[K, V]) outside() error {
	return fmt.Errorf("stream: process-values %q: a record can be forwarded only while one is processed, whose key it keeps", c.NodeName())
}

// outSerde returns the serde of an operator's output (see dsl.OutSerde).
func outSerde[T, U any](b *topology.Builder, opt any, upstream serde.Serde[U], name, part string) serde.Serde[T] {
	return dsl.OutSerde[T](b, "stream", opt, upstream, name, part)
}

// checkFn records an error if an operator's function is nil.
func checkFn(b *topology.Builder, name string, isNil bool) { dsl.CheckFn(b, "stream", name, isNil) }
