// Package state holds the local state stores of tasks: ordered byte
// key-value stores with typed views over them.
//
// A store knows bytes and, later, its changelog; it never knows topics or
// operators. A topology declares stores with a [Spec]; the runtime (or the
// test driver) opens one store per task from it and hands it to the
// processors connected to it.
//
// Keys are ordered bytewise. A value is never nil inside a store: putting a
// nil value deletes the key, and [KeyValueStore.Get] returns nil for a key
// that is absent, so an empty stored value (non-nil, zero length) is told
// apart from an absent one.
package state

import (
	"errors"
	"fmt"
	"time"
)

// Store is a named state store owned by one task.
type Store interface {
	// Name returns the name the store was declared with.
	Name() string
	// Flush makes every write so far durable (a no-op in memory).
	Flush() error
	// Close releases the store. A closed store returns ErrClosed.
	Close() error
}

// KeyValueStore is an ordered store of byte keys and values.
//
// A store is used by the goroutine of its task only, but its iterators and
// reads may also come from queries: implementations must be safe for
// concurrent readers alongside one writer.
type KeyValueStore interface {
	Store
	// Get returns the value of key, or nil if key is absent.
	Get(key []byte) ([]byte, error)
	// Put sets key to value. A nil value deletes key.
	Put(key, value []byte) error
	// PutIfAbsent sets key to value only if key is absent. It returns the
	// value already there, or nil if it put value.
	PutIfAbsent(key, value []byte) ([]byte, error)
	// Delete removes key and returns the value it had, or nil.
	Delete(key []byte) ([]byte, error)
	// Range iterates the keys in [from, to) in ascending order. A nil from
	// starts at the first key; a nil to runs to the last.
	Range(from, to []byte) (Iterator, error)
	// ReverseRange iterates the keys in [from, to) in descending order.
	ReverseRange(from, to []byte) (Iterator, error)
	// PrefixScan iterates, in ascending order, the keys that start with
	// prefix.
	PrefixScan(prefix []byte) (Iterator, error)
	// ApproximateCount returns an estimate of the number of keys.
	ApproximateCount() (int64, error)
}

// Iterator walks the entries of a store in order. It must be closed.
//
//	it, err := kv.Range(nil, nil)
//	if err != nil { ... }
//	defer it.Close()
//	for it.Next() {
//		use(it.Key(), it.Value())
//	}
//	return it.Err()
type Iterator interface {
	// Next moves to the next entry and reports whether there is one.
	Next() bool
	// Key returns the current key. It is valid until the next call to Next.
	Key() []byte
	// Value returns the current value. It is valid until the next call to
	// Next.
	Value() []byte
	// Err returns the error that stopped the iteration, if any.
	Err() error
	// Close releases the iterator.
	Close() error
}

// ErrClosed is returned by a store or iterator used after Close.
var ErrClosed = errors.New("state: store is closed")

// Kind is the kind of a store.
type Kind int

const (
	// KindKeyValue is an ordered key-value store ([KeyValueStore]).
	KindKeyValue Kind = iota + 1
)

// String returns the kind's name.
func (k Kind) String() string {
	switch k {
	case KindKeyValue:
		return "key-value"
	case KindWindow:
		return "window"
	case KindSession:
		return "session"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Backend says where a store keeps its data.
type Backend int

const (
	// InMemoryBackend keeps data in memory; it is rebuilt from the
	// changelog when a task starts.
	InMemoryBackend Backend = iota + 1
	// PersistentBackend keeps data on local disk.
	PersistentBackend
)

// String returns the backend's name.
func (b Backend) String() string {
	switch b {
	case InMemoryBackend:
		return "in-memory"
	case PersistentBackend:
		return "persistent"
	}
	return fmt.Sprintf("Backend(%d)", int(b))
}

// Spec declares a store: its name, kind and how it is kept. A topology holds
// specs; the runtime opens one store per task from each.
type Spec struct {
	// Name is the store's name, unique within a topology. The changelog
	// topic of a logged store is derived from it.
	Name string
	// Kind is the kind of store.
	Kind Kind
	// Backend is where the store keeps its data.
	Backend Backend
	// Logged says whether writes are recorded to a changelog so the store
	// can be restored elsewhere. It is true unless turned off.
	Logged bool
	// Cached says whether a record cache sits in front of the store when
	// the runtime has a cache budget (see CachingStore). It is true unless
	// turned off.
	Cached bool
	// Retention is how long a window store keeps windows (KindWindow), or
	// a session store sessions after they end (KindSession); see
	// [WithRetention]. It must be positive for those kinds and zero for a
	// key-value store.
	Retention time.Duration
}

// Option configures a [Spec].
type Option func(*Spec)

// InMemory keeps the store in memory.
func InMemory() Option { return func(s *Spec) { s.Backend = InMemoryBackend } }

// Persistent keeps the store on local disk. It is the default.
func Persistent() Option { return func(s *Spec) { s.Backend = PersistentBackend } }

// WithoutLogging turns off the store's changelog. The store then cannot be
// restored when its task moves to another instance.
func WithoutLogging() Option { return func(s *Spec) { s.Logged = false } }

// WithoutCaching keeps the store from having a record cache: every update
// is written, logged and forwarded as it is made.
func WithoutCaching() Option { return func(s *Spec) { s.Cached = false } }

// WithRetention sets the retention of a window or session store to d: how
// long a window store keeps each window after its start, and a session
// store each session after its end, counted back from the newest window
// start (or session end) put. Older windows and sessions are dropped, a
// segment at a time. d must be positive.
//
// It applies to window and session stores only: a key-value store keeps
// its entries until they are deleted, and a key-value [Spec] given a
// retention fails [Spec.Validate], naming the store.
//
// The windowed operators of package stream declare their stores with the
// retention their windows need (for time windows, their size plus grace),
// and take this option through stream.Materialized to keep windows longer,
// so that past windows can still be queried or fetched. A retention
// shorter than the windows need fails the topology's Build, naming the
// operator and the store.
func WithRetention(d time.Duration) Option { return func(s *Spec) { s.Retention = d } }

// KeyValue declares a key-value store named name. By default it is
// persistent, logged and cached.
func KeyValue(name string, opts ...Option) Spec {
	s := Spec{Name: name, Kind: KindKeyValue, Backend: PersistentBackend, Logged: true, Cached: true}
	for _, o := range opts {
		o(&s)
	}
	return s
}

// Validate reports what is wrong with the spec, naming the store.
func (s Spec) Validate() error {
	if s.Name == "" {
		return errors.New("state: store has no name")
	}
	if !validName(s.Name) {
		return fmt.Errorf("state: store %q: name may hold only ASCII letters, digits, '.', '_' and '-'", s.Name)
	}
	switch s.Kind {
	case KindKeyValue:
		if s.Retention != 0 {
			return fmt.Errorf("state: key-value store %q: retention %v: only window and session stores have a retention (a key-value store keeps entries until they are deleted)", s.Name, s.Retention)
		}
	case KindWindow, KindSession:
		if s.Retention <= 0 {
			return fmt.Errorf("state: %v store %q: retention %v must be positive", s.Kind, s.Name, s.Retention)
		}
	default:
		return fmt.Errorf("state: store %q: unknown kind %v", s.Name, s.Kind)
	}
	if s.Backend != InMemoryBackend && s.Backend != PersistentBackend {
		return fmt.Errorf("state: store %q: unknown backend %v", s.Name, s.Backend)
	}
	return nil
}

// validName reports whether name can be part of a Kafka topic name.
func validName(name string) bool {
	if len(name) > 200 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}
