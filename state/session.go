package state

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// SessionStore keeps values by key and session, a session being a time
// range [start, end] (both included, in milliseconds since the Unix epoch):
// the store of session-windowed aggregations. A key's sessions do not
// overlap: an aggregation merges sessions that come to overlap, removing
// the old ones and putting the merged one.
//
// Sessions are kept by their end time: entries whose end is older than the
// retention period, counted back from the newest session end put, are
// dropped a whole segment at a time, as in a [WindowStore].
type SessionStore interface {
	Store
	// Put sets the value of key's session [start, end]. A nil value removes
	// it. A session that ended before the retention period is ignored.
	// Because a key's sessions do not overlap, a session replaces the one
	// of the same key with the same end.
	Put(key []byte, start, end int64, value []byte) error
	// Fetch returns the value of key's session [start, end], or nil.
	Fetch(key []byte, start, end int64) ([]byte, error)
	// FindSessions iterates key's sessions that end at or after earliestEnd
	// and start at or before latestStart, in ascending order of end: the
	// sessions a record at time t merges with are FindSessions(key, t-gap,
	// t+gap).
	FindSessions(key []byte, earliestEnd, latestStart int64) (SessionIterator, error)
	// FetchAll iterates every key's sessions whose end is in [from, to], in
	// ascending order of end, then key.
	FetchAll(from, to int64) (SessionIterator, error)
	// Retention returns how long sessions are kept after they end.
	Retention() time.Duration
}

// SessionIterator walks sessions. It must be closed.
type SessionIterator interface {
	// Next moves to the next session and reports whether there is one.
	Next() bool
	// Key returns the current session's key; valid until Next.
	Key() []byte
	// Start returns the current session's start (ms).
	Start() int64
	// End returns the current session's end (ms).
	End() int64
	// Value returns the current session's value; valid until Next.
	Value() []byte
	// Err returns the error that stopped the iteration, if any.
	Err() error
	// Close releases the iterator.
	Close() error
}

// KindSession is a session store ([SessionStore]).
const KindSession Kind = 3

// Session declares a session store named name that keeps sessions for
// retention after they end ([WithRetention] among opts overrides it). By
// default it is persistent and logged. A session store has no record
// cache.
func Session(name string, retention time.Duration, opts ...Option) Spec {
	s := Spec{Name: name, Kind: KindSession, Backend: PersistentBackend, Logged: true, Retention: retention}
	for _, o := range opts {
		o(&s)
	}
	return s
}

// SessionKey is how a windowed topic carries a key and its session, as
// Kafka Streams' session-windowed serde writes them: the key's bytes, then
// the session's end and its start, each 8 bytes big-endian.
func SessionKey(key []byte, start, end int64) []byte {
	out := make([]byte, len(key)+16)
	copy(out, key)
	binary.BigEndian.PutUint64(out[len(key):], uint64(end))
	binary.BigEndian.PutUint64(out[len(key)+8:], uint64(start))
	return out
}

// SplitSessionKey undoes SessionKey.
func SplitSessionKey(b []byte) (key []byte, start, end int64, err error) {
	if len(b) < 16 {
		return nil, 0, 0, fmt.Errorf("state: session key of %d bytes: want at least 16", len(b))
	}
	n := len(b) - 16
	end = int64(binary.BigEndian.Uint64(b[n:]))
	start = int64(binary.BigEndian.Uint64(b[n+8:]))
	if start > end {
		return nil, 0, 0, fmt.Errorf("state: session key: start %d is after end %d", start, end)
	}
	return b[:n:n], start, end, nil
}

// SessionOf returns a session store kept in ws, a window store of any
// backend, possibly logged ([LoggedWindow]): each session is the window of
// its key that starts at the session's end, and its value is the session's
// start, 8 bytes big-endian, then the session's value. So a session store
// has the segments, expiry, backends and changelog of a window store, with
// the end time where a window has its start; its changelog records are
// keyed by [WindowKey](key, end). ws's retention is the sessions'.
//
// The returned store implements [Restorable] by passing it through to ws;
// if ws does not implement it, its methods fail.
//
// [Env.OpenSession] opens a session store of a spec; SessionOf is for a
// runtime that adds layers (a changelog) to the window store beneath,
// which [Env.OpenWindow] opens for a session spec.
func SessionOf(ws WindowStore) SessionStore { return &sessionStore{ws: ws} }

// OpenSession opens the session store spec declares (spec.Kind must be
// [KindSession]), for task of the application appID, as [SessionOf] a
// window store opened as [Env.OpenWindow] opens one: the two share
// backends, layout and guarantees. Its directory's metadata names the kind
// "session", so it is never opened as a window store, nor the reverse.
func (e *Env) OpenSession(appID, task string, spec Spec) (SessionStore, error) {
	if spec.Kind != KindSession {
		return nil, fmt.Errorf("state: store %q: is a %v store, not session", spec.Name, spec.Kind)
	}
	ws, err := e.OpenWindow(appID, task, spec)
	if err != nil {
		return nil, err
	}
	return SessionOf(ws), nil
}

var (
	_ SessionStore = (*sessionStore)(nil)
	_ Restorable   = (*sessionStore)(nil)
)

// sessionStore keeps sessions in a window store: the window of key at end
// holds start (8 bytes) then the value.
type sessionStore struct {
	ws WindowStore
}

func (s *sessionStore) Name() string             { return s.ws.Name() }
func (s *sessionStore) Flush() error             { return s.ws.Flush() }
func (s *sessionStore) Close() error             { return s.ws.Close() }
func (s *sessionStore) Retention() time.Duration { return s.ws.Retention() }

func (s *sessionStore) check(op string, start, end int64) error {
	if start > end {
		return &storeError{store: s.ws.Name(), op: op, err: fmt.Errorf("session start %d is after its end %d", start, end)}
	}
	return nil
}

// Put implements SessionStore.
func (s *sessionStore) Put(key []byte, start, end int64, value []byte) error {
	if err := s.check("put", start, end); err != nil {
		return err
	}
	if value == nil {
		// Remove exactly [start, end]: the key's session ending at end
		// may be another one.
		v, err := s.ws.Fetch(key, end)
		if err != nil || v == nil {
			return err
		}
		if st, _, err := s.split(v); err != nil || st != start {
			return err
		}
		return s.ws.Put(key, end, nil)
	}
	v := make([]byte, 8+len(value))
	binary.BigEndian.PutUint64(v, uint64(start))
	copy(v[8:], value)
	return s.ws.Put(key, end, v)
}

// Fetch implements SessionStore.
func (s *sessionStore) Fetch(key []byte, start, end int64) ([]byte, error) {
	if err := s.check("fetch", start, end); err != nil {
		return nil, err
	}
	v, err := s.ws.Fetch(key, end)
	if err != nil || v == nil {
		return nil, err
	}
	st, val, err := s.split(v)
	if err != nil || st != start {
		return nil, err
	}
	return val, nil
}

// split splits a window's value into the session's start and value.
func (s *sessionStore) split(v []byte) (int64, []byte, error) {
	if len(v) < 8 {
		return 0, nil, &storeError{store: s.ws.Name(), op: "read", err: fmt.Errorf("session entry of %d bytes: want at least 8", len(v))}
	}
	return int64(binary.BigEndian.Uint64(v)), v[8:len(v):len(v)], nil
}

// FindSessions implements SessionStore. A key's sessions do not overlap,
// so in order of end they are in order of start too: the walk stops at the
// first that starts after latestStart.
func (s *sessionStore) FindSessions(key []byte, earliestEnd, latestStart int64) (SessionIterator, error) {
	it, err := s.ws.FetchRange(key, earliestEnd, math.MaxInt64)
	if err != nil {
		return nil, err
	}
	return &sessionIter{s: s, it: it, latestStart: latestStart, stopEarly: true}, nil
}

// FetchAll implements SessionStore.
func (s *sessionStore) FetchAll(from, to int64) (SessionIterator, error) {
	it, err := s.ws.FetchAll(from, to)
	if err != nil {
		return nil, err
	}
	return &sessionIter{s: s, it: it, latestStart: math.MaxInt64}, nil
}

// AppliedOffset implements Restorable for a window store that does.
func (s *sessionStore) AppliedOffset() (int64, bool, error) {
	r, err := s.restorable()
	if err != nil {
		return 0, false, err
	}
	return r.AppliedOffset()
}

// Restore implements Restorable for a window store that does.
func (s *sessionStore) Restore(records []ChangelogRecord, lastOffset int64) error {
	r, err := s.restorable()
	if err != nil {
		return err
	}
	return r.Restore(records, lastOffset)
}

// Checkpoint implements Restorable for a window store that does.
func (s *sessionStore) Checkpoint(offset int64) error {
	r, err := s.restorable()
	if err != nil {
		return err
	}
	return r.Checkpoint(offset)
}

func (s *sessionStore) restorable() (Restorable, error) {
	r, ok := s.ws.(Restorable)
	if !ok {
		return nil, fmt.Errorf("state: store %q (%T) cannot be restored", s.ws.Name(), s.ws)
	}
	return r, nil
}

// sessionIter walks the windows of a session store as sessions.
type sessionIter struct {
	s           *sessionStore
	it          WindowIterator
	latestStart int64
	stopEarly   bool // stop at the first session after latestStart

	// The current session, zero when there is none.
	key        []byte
	start, end int64
	value      []byte
	err        error
	done       bool
	closed     bool
}

func (it *sessionIter) Next() bool {
	it.key, it.start, it.end, it.value = nil, 0, 0, nil
	if it.closed {
		return it.it.Next() // false, and the iterator's error for it
	}
	if it.done {
		return false
	}
	for it.it.Next() {
		start, v, err := it.s.split(it.it.Value())
		if err != nil {
			it.err, it.done = err, true
			return false
		}
		if start > it.latestStart {
			if it.stopEarly {
				it.done = true
				return false
			}
			continue
		}
		it.key, it.start, it.end, it.value = it.it.Key(), start, it.it.Start(), v
		return true
	}
	it.done = true
	return false
}

func (it *sessionIter) Key() []byte   { return it.key }
func (it *sessionIter) Start() int64  { return it.start }
func (it *sessionIter) End() int64    { return it.end }
func (it *sessionIter) Value() []byte { return it.value }

func (it *sessionIter) Err() error {
	if it.err != nil {
		return it.err
	}
	return it.it.Err()
}

func (it *sessionIter) Close() error {
	it.key, it.start, it.end, it.value, it.closed = nil, 0, 0, nil, true
	return it.it.Close()
}
