package itest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riffle-streams/riffle"
)

// LogRecord is one record a LogRecorder kept.
type LogRecord struct {
	Time  time.Time
	Level slog.Level
	Msg   string
	Attrs map[string]string // by key, groups joined with '.'
}

func (r LogRecord) String() string {
	keys := make([]string, 0, len(r.Attrs))
	for k := range r.Attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %q", r.Time.Format("15:04:05.000"), r.Level, r.Msg)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%s", k, r.Attrs[k])
	}
	return b.String()
}

// LogRecorder is a slog.Handler that keeps every record at or above its
// level, for tests to look for messages in.
type LogRecorder struct {
	min    slog.Level
	store  *logStore
	attrs  []slog.Attr
	prefix string
}

type logStore struct {
	mu   sync.Mutex
	recs []LogRecord
}

// NewLogRecorder returns a recorder of records at level min and above.
func NewLogRecorder(min slog.Level) *LogRecorder {
	return &LogRecorder{min: min, store: &logStore{}}
}

// Logger returns a logger that writes to the recorder.
func (h *LogRecorder) Logger() *slog.Logger { return slog.New(h) }

// Enabled implements slog.Handler.
func (h *LogRecorder) Enabled(_ context.Context, l slog.Level) bool { return l >= h.min }

// Handle implements slog.Handler.
func (h *LogRecorder) Handle(_ context.Context, r slog.Record) error {
	rec := LogRecord{Time: r.Time, Level: r.Level, Msg: r.Message, Attrs: map[string]string{}}
	for _, a := range h.attrs {
		addAttr(rec.Attrs, "", a)
	}
	r.Attrs(func(a slog.Attr) bool {
		addAttr(rec.Attrs, h.prefix, a)
		return true
	})
	h.store.mu.Lock()
	h.store.recs = append(h.store.recs, rec)
	h.store.mu.Unlock()
	return nil
}

func addAttr(m map[string]string, prefix string, a slog.Attr) {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range v.Group() {
			addAttr(m, p, g)
		}
		return
	}
	m[prefix+a.Key] = v.String()
}

// WithAttrs implements slog.Handler.
func (h *LogRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	h2 := *h
	h2.attrs = append([]slog.Attr{}, h.attrs...)
	for _, a := range as {
		a.Key = h.prefix + a.Key
		h2.attrs = append(h2.attrs, a)
	}
	return &h2
}

// WithGroup implements slog.Handler.
func (h *LogRecorder) WithGroup(name string) slog.Handler {
	h2 := *h
	h2.prefix = h.prefix + name + "."
	return &h2
}

// Records returns the records kept with message msg, or all if msg is "".
func (h *LogRecorder) Records(msg string) []LogRecord {
	h.store.mu.Lock()
	defer h.store.mu.Unlock()
	var out []LogRecord
	for _, r := range h.store.recs {
		if msg == "" || r.Msg == msg {
			out = append(out, r)
		}
	}
	return out
}

// OpenTasks returns the tasks the App logging here has open, sorted: those
// started ("task started") and not closed since ("task closed").
func (h *LogRecorder) OpenTasks() []string {
	open := map[string]bool{}
	for _, r := range h.Records("") {
		switch r.Msg {
		case "task started":
			open[r.Attrs["task"]] = true
		case "task closed":
			delete(open, r.Attrs["task"])
		}
	}
	out := make([]string, 0, len(open))
	for k := range open {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// DumpOnFailure logs the kept records at level min and above, under name,
// if the test has failed by the time it ends, or always if the environment
// variable RIFFLE_ITEST_LOGS is "1".
func (h *LogRecorder) DumpOnFailure(t testing.TB, name string, min slog.Level) {
	t.Cleanup(func() {
		if !t.Failed() && os.Getenv("RIFFLE_ITEST_LOGS") != "1" {
			return
		}
		var b strings.Builder
		for _, r := range h.Records("") {
			if r.Level >= min {
				b.WriteString(r.String())
				b.WriteByte('\n')
			}
		}
		t.Logf("log of %s (level >= %s):\n%s", name, min, b.String())
	})
}

// RestoreRecorder is a riffle.RestoreListener that keeps what it is told.
type RestoreRecorder struct {
	mu      sync.Mutex
	starts  []RestoreStart
	ends    []RestoreEnd
	batches int
}

// RestoreStart is a call of RestoreStart.
type RestoreStart struct {
	Task, Store string
	From, To    int64
}

// RestoreEnd is a call of RestoreEnd.
type RestoreEnd struct {
	Task, Store string
	Total       int64
	Took        time.Duration
}

var _ riffle.RestoreListener = (*RestoreRecorder)(nil)

// RestoreStart implements riffle.RestoreListener.
func (r *RestoreRecorder) RestoreStart(task, store string, from, to int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.starts = append(r.starts, RestoreStart{task, store, from, to})
}

// RestoreBatch implements riffle.RestoreListener.
func (r *RestoreRecorder) RestoreBatch(task, store string, lastOffset int64, records int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches++
}

// RestoreEnd implements riffle.RestoreListener.
func (r *RestoreRecorder) RestoreEnd(task, store string, total int64, took time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ends = append(r.ends, RestoreEnd{task, store, total, took})
}

// Starts returns the RestoreStart calls so far.
func (r *RestoreRecorder) Starts() []RestoreStart {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]RestoreStart(nil), r.starts...)
}

// Ends returns the RestoreEnd calls so far.
func (r *RestoreRecorder) Ends() []RestoreEnd {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]RestoreEnd(nil), r.ends...)
}

// Total returns the records restored, summed over the RestoreEnd calls.
func (r *RestoreRecorder) Total() int64 {
	var n int64
	for _, e := range r.Ends() {
		n += e.Total
	}
	return n
}

// StateRecorder keeps the state changes of an App.
type StateRecorder struct {
	mu      sync.Mutex
	changes []riffle.State
}

// Listener returns the function to pass to riffle.StateListener.
func (s *StateRecorder) Listener() func(old, new riffle.State) {
	return func(old, new riffle.State) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.changes) == 0 {
			s.changes = append(s.changes, old)
		}
		s.changes = append(s.changes, new)
	}
}

// History returns the states the App went through, the first one included.
func (s *StateRecorder) History() []riffle.State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]riffle.State(nil), s.changes...)
}

// Running is an App running in a goroutine.
type Running struct {
	App    *riffle.App
	Name   string
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// Run runs app until Stop, or until the test ends.
func Run(t testing.TB, name string, app *riffle.App) *Running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &Running{App: app, Name: name, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = app.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(2 * Timeout()):
			t.Errorf("%s: Run did not return %v after the test ended", name, 2*Timeout())
		}
	})
	return r
}

// Exited reports whether Run has returned, and with what.
func (r *Running) Exited() (bool, error) {
	select {
	case <-r.done:
		return true, r.err
	default:
		return false, nil
	}
}

// Stop ends the App's context and waits for Run to return; it returns
// Run's error, or an error if Run takes longer than timeout.
func (r *Running) Stop(timeout time.Duration) error {
	r.cancel()
	select {
	case <-r.done:
		return r.err
	case <-time.After(timeout):
		return fmt.Errorf("%s: Run did not return within %v of its context ending", r.Name, timeout)
	}
}

// WaitState waits until the App is in state want, failing the test if Run
// returns first or timeout passes.
func (r *Running) WaitState(t testing.TB, timeout time.Duration, want riffle.State) time.Duration {
	t.Helper()
	return Eventually(t, timeout, fmt.Sprintf("%s to be %s", r.Name, want), func() (bool, string) {
		if done, err := r.Exited(); done {
			t.Fatalf("%s: Run returned %v while waiting for %s", r.Name, err, want)
		}
		s := r.App.State()
		return s == want, fmt.Sprintf("%s is %s", r.Name, s)
	})
}
