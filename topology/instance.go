package topology

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
)

// instance is a node made live inside one task.
type instance interface {
	ctx() *nodeCtx
	// addChild links child after this node; it fails if the child does
	// not take the records this node puts out.
	addChild(child instance) error
	init() error
	close() error
}

// receiver takes records of types K and V from a parent.
type receiver[K, V any] interface {
	receive(rec Record[K, V]) error
}

// rawReceiver takes records as bytes: a source.
type rawReceiver interface {
	receiveRaw(rec *RawRecord) error
}

// nodeCtx is the part of an instance that does not depend on its types: what
// a Context offers besides forwarding.
type nodeCtx struct {
	def    *node
	task   *Task
	logger *slog.Logger
}

func (c *nodeCtx) ctx() *nodeCtx { return c }

// Store implements Context. A global store, which any processor may read,
// comes as a state.ReadOnlyKeyValueStore.
func (c *nodeCtx) Store(name string) (state.Store, error) {
	if !contains(c.def.stores, name) {
		if _, ok := c.task.topo.globals[name]; ok {
			return c.task.rt.GlobalStore(name)
		}
		return nil, fmt.Errorf("topology: processor %q: store %q is not connected to it", c.def.name, name)
	}
	s, ok := c.task.stores[name]
	if !ok {
		return nil, fmt.Errorf("topology: processor %q: store %q is not open in task %s", c.def.name, name, c.task.id)
	}
	return s, nil
}

// Schedule implements Context.
func (c *nodeCtx) Schedule(interval time.Duration, kind PunctuationType, fn Punctuator) (*Schedule, error) {
	if interval < time.Millisecond {
		return nil, fmt.Errorf("topology: processor %q: punctuation interval %v is under 1ms", c.def.name, interval)
	}
	if fn == nil {
		return nil, fmt.Errorf("topology: processor %q: punctuator is nil", c.def.name)
	}
	return c.task.schedule(c, interval, kind, fn)
}

// TaskID implements Context.
func (c *nodeCtx) TaskID() TaskID { return c.task.id }

// ApplicationID implements Context.
func (c *nodeCtx) ApplicationID() string { return c.task.appID }

// NodeName implements Context.
func (c *nodeCtx) NodeName() string { return c.def.name }

// RecordMetadata implements Context.
func (c *nodeCtx) RecordMetadata() (RecordMetadata, bool) { return c.task.meta, c.task.hasMeta }

// StreamTime implements Context.
func (c *nodeCtx) StreamTime() time.Time { return c.task.StreamTime() }

// WallClock implements Context.
func (c *nodeCtx) WallClock() time.Time { return c.task.rt.Now() }

// Logger implements Context.
func (c *nodeCtx) Logger() *slog.Logger {
	if c.logger == nil {
		c.logger = c.task.logger.With("node", c.def.name)
	}
	return c.logger
}

// SkipRecord implements Context.
func (c *nodeCtx) SkipRecord(reason string) {
	t := c.task
	t.skipped[SkipKey{Node: c.def.name, Reason: reason}]++
	md := t.meta
	if !t.hasMeta {
		md = RecordMetadata{Partition: -1, Offset: -1}
	}
	c.Logger().Warn("skipped a record", "reason", reason,
		"topic", md.Topic, "partition", md.Partition, "offset", md.Offset)
}

// wrap turns err, returned by this node's processor, into a ProcessorError
// unless it already is one (from a node downstream) or a DecodeError.
func (c *nodeCtx) wrap(err error, panicked bool) error {
	var pe *ProcessorError
	var de *DecodeError
	if !panicked && (errors.As(err, &pe) || errors.As(err, &de)) {
		return err
	}
	t := c.task
	md := RecordMetadata{}
	if t.hasMeta {
		md = t.meta
	}
	return &ProcessorError{Node: c.def.name, Task: t.id, Metadata: md, Panic: panicked, Err: err}
}

// link checks that child takes records of (K, V) and returns it as such.
func link[K, V any](parent *nodeCtx, child instance) (receiver[K, V], error) {
	r, ok := child.(receiver[K, V])
	if !ok {
		return nil, fmt.Errorf("topology: %q cannot be a child of %q: it does not take the records %q puts out",
			child.ctx().def.name, parent.def.name, parent.def.name)
	}
	return r, nil
}

// sourceInst decodes records read from a topic and forwards them.
type sourceInst[K, V any] struct {
	nodeCtx
	keys     serde.Serde[K]
	values   serde.Serde[V]
	children []receiver[K, V]
	extract  func(Record[K, V]) time.Time
	policy   InvalidTimestampPolicy
	// partitionTime is the largest valid timestamp read (ms): a task reads
	// one partition of each topic.
	partitionTime int64
}

func (s *sourceInst[K, V]) addChild(child instance) error {
	r, err := link[K, V](&s.nodeCtx, child)
	if err == nil {
		s.children = append(s.children, r)
	}
	return err
}

func (s *sourceInst[K, V]) init() error  { return nil }
func (s *sourceInst[K, V]) close() error { return nil }

func (s *sourceInst[K, V]) receiveRaw(raw *RawRecord) error {
	k, err := s.keys.Decode(raw.Key)
	if err != nil {
		return s.decodeError("key", raw, err)
	}
	v, err := s.values.Decode(raw.Value)
	if err != nil {
		return s.decodeError("value", raw, err)
	}
	rec := Record[K, V]{Key: k, Value: v, Timestamp: raw.Timestamp, Headers: raw.Headers}
	if s.extract != nil {
		rec.Timestamp = s.extract(rec)
	}
	ts := rec.Timestamp.UnixMilli()
	if ts < 0 || rec.Timestamp.IsZero() {
		switch {
		case s.policy == UsePartitionTime && s.partitionTime != noStreamTime:
			ts = s.partitionTime
			rec.Timestamp = time.UnixMilli(ts)
		case s.policy == FailOnInvalidTimestamp:
			return s.wrap(fmt.Errorf("invalid timestamp %d ms (%v): choose SkipInvalidTimestamp or UsePartitionTime to go on", ts, rec.Timestamp), false)
		default:
			s.SkipRecord("invalid timestamp")
			return nil
		}
	}
	if ts > s.partitionTime {
		s.partitionTime = ts
	}
	s.task.observe(ts)
	for _, c := range s.children {
		if err := c.receive(rec); err != nil {
			return err
		}
	}
	return nil
}

func (s *sourceInst[K, V]) decodeError(part string, raw *RawRecord, err error) error {
	if errors.Is(err, serde.ErrNull) {
		err = fmt.Errorf("%w (the record has a null %s: read this topic's %ss with serde.Nullable or a nillable type)", err, part, part)
	}
	return &DecodeError{
		Node: s.def.name, Task: s.task.id, Part: part, Err: err,
		Metadata: RecordMetadata{Topic: raw.Topic, Partition: raw.Partition, Offset: raw.Offset},
	}
}

// procInst runs a user Processor; it is the processor's Context.
type procInst[KIn, VIn, KOut, VOut any] struct {
	nodeCtx
	proc       Processor[KIn, VIn, KOut, VOut]
	children   []receiver[KOut, VOut]
	childNames []string
}

func (p *procInst[KIn, VIn, KOut, VOut]) addChild(child instance) error {
	r, err := link[KOut, VOut](&p.nodeCtx, child)
	if err == nil {
		p.children = append(p.children, r)
		p.childNames = append(p.childNames, child.ctx().def.name)
	}
	return err
}

func (p *procInst[KIn, VIn, KOut, VOut]) init() error {
	t := p.task
	prev := t.cur
	t.cur = &p.nodeCtx
	defer func() { t.cur = prev }()
	if err := p.proc.Init(p); err != nil {
		return fmt.Errorf("topology: task %s: init processor %q: %w", t.id, p.def.name, err)
	}
	return nil
}

func (p *procInst[KIn, VIn, KOut, VOut]) close() error {
	if err := p.proc.Close(); err != nil {
		return fmt.Errorf("topology: task %s: close processor %q: %w", p.task.id, p.def.name, err)
	}
	return nil
}

func (p *procInst[KIn, VIn, KOut, VOut]) receive(rec Record[KIn, VIn]) error {
	t := p.task
	prev := t.cur
	t.cur = &p.nodeCtx
	err := p.proc.Process(rec)
	t.cur = prev
	if err != nil {
		return p.wrap(err, false)
	}
	return nil
}

// Forward implements Context.
func (p *procInst[KIn, VIn, KOut, VOut]) Forward(rec Record[KOut, VOut]) error {
	for _, c := range p.children {
		if err := c.receive(rec); err != nil {
			return err
		}
	}
	return nil
}

// ForwardTo implements Context.
func (p *procInst[KIn, VIn, KOut, VOut]) ForwardTo(child string, rec Record[KOut, VOut]) error {
	for i, name := range p.childNames {
		if name == child {
			return p.children[i].receive(rec)
		}
	}
	return fmt.Errorf("topology: processor %q: forward to %q: %w", p.def.name, child, ErrNoSuchChild)
}

// sinkInst encodes records and hands them to the runtime for a topic.
type sinkInst[K, V any] struct {
	nodeCtx
	keys   serde.Serde[K]
	values serde.Serde[V]
	choose func(Record[K, V]) string
	topic  string // resolved; "" when chosen per record
}

func (s *sinkInst[K, V]) addChild(child instance) error {
	return fmt.Errorf("topology: sink %q cannot have a child (%q)", s.def.name, child.ctx().def.name)
}

func (s *sinkInst[K, V]) init() error {
	if !s.def.dynamic {
		s.topic = s.def.sinkTopic.Resolve(s.task.appID)
	}
	return nil
}

func (s *sinkInst[K, V]) close() error { return nil }

func (s *sinkInst[K, V]) receive(rec Record[K, V]) error {
	topic := s.topic
	if s.choose != nil {
		topic = s.choose(rec)
		if err := validTopic(topic); err != nil {
			return s.wrap(fmt.Errorf("topic chooser: %w", err), false)
		}
	}
	k, err := s.keys.Encode(rec.Key)
	if err != nil {
		return s.wrap(fmt.Errorf("encode key for topic %q: %w", topic, err), false)
	}
	v, err := s.values.Encode(rec.Value)
	if err != nil {
		return s.wrap(fmt.Errorf("encode value for topic %q: %w", topic, err), false)
	}
	err = s.task.rt.Send(RawRecord{
		Topic: topic, Partition: -1, Offset: -1,
		Key: k, Value: v, Timestamp: rec.Timestamp, Headers: rec.Headers,
	})
	if err != nil {
		return s.wrap(fmt.Errorf("send to topic %q: %w", topic, err), false)
	}
	return nil
}
