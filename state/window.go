package state

import (
	"fmt"
	"time"
)

// WindowStore keeps values by key and window start time: the store of
// windowed aggregations. Entries older than the retention period, counted
// back from the newest window start put, are dropped a whole segment at a
// time, not one by one.
//
// Times are milliseconds since the Unix epoch, as in Kafka.
type WindowStore interface {
	Store
	// Put sets the value of key's window starting at start. A nil value
	// deletes it. A window older than the retention period is ignored.
	Put(key []byte, start int64, value []byte) error
	// Fetch returns the value of key's window starting at start, or nil.
	Fetch(key []byte, start int64) ([]byte, error)
	// FetchRange iterates key's windows whose start is in [from, to], in
	// ascending order of start.
	FetchRange(key []byte, from, to int64) (WindowIterator, error)
	// FetchAll iterates every key's windows whose start is in [from, to],
	// in ascending order of start, then key.
	FetchAll(from, to int64) (WindowIterator, error)
	// Retention returns how long windows are kept.
	Retention() time.Duration
}

// WindowIterator walks windows. It must be closed.
type WindowIterator interface {
	// Next moves to the next window and reports whether there is one.
	Next() bool
	// Key returns the current window's key; valid until Next.
	Key() []byte
	// Start returns the current window's start (ms).
	Start() int64
	// Value returns the current window's value; valid until Next.
	Value() []byte
	// Err returns the error that stopped the iteration, if any.
	Err() error
	// Close releases the iterator.
	Close() error
}

// KindWindow is a window store ([WindowStore]).
const KindWindow Kind = 2

// WindowKey is how a window store's changelog, and a windowed topic,
// carries a key and its window start: the key's bytes, then the start as 8
// bytes big-endian, as Kafka Streams' time-windowed serde writes them.
func WindowKey(key []byte, start int64) []byte {
	out := make([]byte, len(key)+8)
	copy(out, key)
	for i := 0; i < 8; i++ {
		out[len(key)+i] = byte(uint64(start) >> (56 - 8*i))
	}
	return out
}

// SplitWindowKey undoes WindowKey.
func SplitWindowKey(b []byte) (key []byte, start int64, err error) {
	if len(b) < 8 {
		return nil, 0, fmt.Errorf("state: windowed key of %d bytes: want at least 8", len(b))
	}
	n := len(b) - 8
	var u uint64
	for _, c := range b[n:] {
		u = u<<8 | uint64(c)
	}
	return b[:n:n], int64(u), nil
}

// Window declares a window store named name that keeps windows for
// retention ([WithRetention] among opts overrides it). By default it is
// persistent and logged. Cached is set, but a window store has no record
// cache yet: each put is written and logged as it is made.
func Window(name string, retention time.Duration, opts ...Option) Spec {
	s := Spec{Name: name, Kind: KindWindow, Backend: PersistentBackend, Logged: true, Cached: true, Retention: retention}
	for _, o := range opts {
		o(&s)
	}
	return s
}
