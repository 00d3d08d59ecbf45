package topology

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/riffle-streams/riffle/state"
)

// Processor is user code run on every record that reaches its node.
//
// KIn and VIn are the types of the records it receives; KOut and VOut those
// of the records it forwards. A new Processor is made for every task, so a
// Processor need not be safe for concurrent use.
type Processor[KIn, VIn, KOut, VOut any] interface {
	// Init is called once, before the first record, with the context the
	// processor keeps to forward records, reach stores and schedule
	// punctuations.
	Init(ctx Context[KOut, VOut]) error
	// Process handles one record.
	Process(rec Record[KIn, VIn]) error
	// Close is called once when the task closes.
	Close() error
}

// Context is what a processor is given to act on the world.
//
// A Context is used only from the goroutine of its task, within Init,
// Process, a punctuation or Close.
type Context[K, V any] interface {
	// Forward passes rec to every child of this node, in the order they
	// were added.
	Forward(rec Record[K, V]) error
	// ForwardTo passes rec to the child named child only.
	ForwardTo(child string, rec Record[K, V]) error
	// Store returns the store named name. The store must have been
	// connected to this processor when the topology was built.
	Store(name string) (state.Store, error)
	// Schedule calls fn every interval of the given kind of time. A
	// stream-time punctuation is aligned to multiples of interval and first
	// fires when the first record arrives; a wall-clock one first fires one
	// interval after it is scheduled. When time jumps by several intervals,
	// fn is called once, not once per interval.
	Schedule(interval time.Duration, kind PunctuationType, fn Punctuator) (*Schedule, error)
	// TaskID returns the id of the task this processor runs in.
	TaskID() TaskID
	// ApplicationID returns the application id.
	ApplicationID() string
	// NodeName returns the name of this processor's node.
	NodeName() string
	// RecordMetadata returns where the record being processed came from.
	// It reports false within a punctuation.
	RecordMetadata() (RecordMetadata, bool)
	// StreamTime returns the task's stream time: the largest record
	// timestamp it has seen. It is the zero Time before the first record.
	StreamTime() time.Time
	// WallClock returns the current wall-clock time, as the runtime or the
	// test driver keeps it.
	WallClock() time.Time
	// Logger returns a logger that names the task and the node.
	Logger() *slog.Logger
	// SkipRecord records that the processor drops the record being
	// processed for reason (such as "null key"): it is counted per node and
	// reason, and logged with its topic, partition and offset. Nothing is
	// dropped silently.
	SkipRecord(reason string)
}

// KeyValueStore returns the key-value store named name from ctx.
func KeyValueStore(ctx interface {
	Store(string) (state.Store, error)
}, name string) (state.KeyValueStore, error) {
	s, err := ctx.Store(name)
	if err != nil {
		return nil, err
	}
	kv, ok := s.(state.KeyValueStore)
	if !ok {
		return nil, fmt.Errorf("topology: store %q is a %T, not a key-value store", name, s)
	}
	return kv, nil
}

// PunctuationType is the kind of time a punctuation follows.
type PunctuationType int

const (
	// StreamTime punctuations follow the task's stream time, which moves
	// only when records arrive.
	StreamTime PunctuationType = iota + 1
	// WallClockTime punctuations follow the wall clock.
	WallClockTime
)

// String returns the type's name.
func (p PunctuationType) String() string {
	switch p {
	case StreamTime:
		return "stream-time"
	case WallClockTime:
		return "wall-clock"
	}
	return fmt.Sprintf("PunctuationType(%d)", int(p))
}

// Punctuator is called by a punctuation with the time it fires at: the
// stream time or the wall-clock time.
type Punctuator func(ts time.Time) error

// Schedule is a scheduled punctuation.
type Schedule struct {
	kind      PunctuationType
	interval  int64 // ms
	next      int64 // ms: fire when time >= next
	fn        Punctuator
	node      *nodeCtx
	cancelled bool
}

// Cancel stops the punctuation. It may be called from within it.
func (s *Schedule) Cancel() { s.cancelled = true }

// ProcessorError wraps an error returned or a panic raised by a processor,
// naming its node and the record being processed.
type ProcessorError struct {
	// Node is the name of the processor's node.
	Node string
	// Task is the task it ran in.
	Task TaskID
	// Metadata says where the record came from; Topic is "" within a
	// punctuation.
	Metadata RecordMetadata
	// Panic is true when the processor panicked.
	Panic bool
	// Err is the error (or, for a panic, the recovered value as an error).
	Err error
}

// Error implements error.
func (e *ProcessorError) Error() string {
	what := "failed"
	if e.Panic {
		what = "panicked"
	}
	where := "in a punctuation"
	if e.Metadata.Topic != "" {
		where = fmt.Sprintf("on %s[%d]@%d", e.Metadata.Topic, e.Metadata.Partition, e.Metadata.Offset)
	}
	return fmt.Sprintf("topology: task %s: processor %q %s %s: %v", e.Task, e.Node, what, where, e.Err)
}

// Unwrap returns the underlying error.
func (e *ProcessorError) Unwrap() error { return e.Err }

// DecodeError reports a record a source could not decode.
type DecodeError struct {
	// Node is the source node's name.
	Node string
	// Task is the task that read the record.
	Task TaskID
	// Metadata says where the record came from.
	Metadata RecordMetadata
	// Part is "key" or "value".
	Part string
	// Err is the serde's error.
	Err error
}

// Error implements error.
func (e *DecodeError) Error() string {
	return fmt.Sprintf("topology: task %s: source %q: cannot decode %s of %s[%d]@%d: %v",
		e.Task, e.Node, e.Part, e.Metadata.Topic, e.Metadata.Partition, e.Metadata.Offset, e.Err)
}

// Unwrap returns the serde's error.
func (e *DecodeError) Unwrap() error { return e.Err }

// ErrNoSuchChild is returned by ForwardTo for a child name that is not a
// child of the forwarding node.
var ErrNoSuchChild = errors.New("no such child")
