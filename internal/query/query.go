// Package query answers interactive queries: reads of the App's stores by
// key, key range and window, from whichever instance holds the data.
//
// An Engine answers a query from this instance's copy of the store when it
// runs the task that holds the key (or keeps a standby copy, if the query
// allows stale reads), and otherwise forwards it over HTTP to the instance
// that runs the task, as the group's assignment says. A range, a read of
// all entries, or of every key's windows, asks every instance that runs a
// task of the store and merges their answers in the store's order (keys;
// windows' times, then keys), a page at a time. Keys and values
// travel as JSON, through the store's codec.
//
// Handler serves the same over HTTP; Go callers use the Engine's methods.
// The package knows stores, tasks and hosts, not operators.
package query

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/topology"
)

// TaskState is the state of this instance's copy of a task.
type TaskState string

const (
	// Running is a task this instance runs.
	Running TaskState = "RUNNING"
	// Restoring is a task assigned to this instance whose stores are
	// catching up with their changelogs.
	Restoring TaskState = "RESTORING"
	// Standby is a standby copy of a task another instance runs.
	Standby TaskState = "STANDBY"
	// Warmup is a standby copy this instance is to take the task over with.
	Warmup TaskState = "WARMUP"
)

// StoreInfo describes a queryable store.
type StoreInfo struct {
	Name        string
	Kind        state.Kind
	Codec       topology.StoreCodec
	Subtopology int
	Partitions  int32
}

// Backend is the App as the Engine sees it.
type Backend interface {
	// Self is the host:port this instance is reached at.
	Self() string
	// Store describes the queryable store named name.
	Store(name string) (StoreInfo, bool)
	// Stores lists the queryable stores.
	Stores() []StoreInfo
	// Owners returns the host that runs the task, and those that keep
	// standby copies of it, as the latest assignment says; active is ""
	// while the task moves.
	Owners(task topology.TaskID) (active string, standbys []string)
	// Hosts returns every host of the group that answers queries.
	Hosts() []string
	// Local returns this instance's copy of the store of a task: the
	// store (a state.KeyValueStore, WindowStore or SessionStore) and the
	// copy's state.
	Local(store string, task topology.TaskID) (state.Store, TaskState, bool)
	// Tasks describes the tasks this instance runs and keeps copies of.
	Tasks() []TaskInfo
}

// TaskInfo is the state of one task on one instance.
type TaskInfo struct {
	Task  string    `json:"task"`
	State TaskState `json:"state"`
	// Lag is how many changelog records the task's stores are behind,
	// for a copy that is not running.
	Lag    int64    `json:"lag"`
	Stores []string `json:"stores,omitempty"`
}

// Instance is what an instance says about itself.
type Instance struct {
	Host  string     `json:"host"`
	Tasks []TaskInfo `json:"tasks"`
	// Error is set, by the instance that gathered the answer, when this
	// one could not be reached.
	Error string `json:"error,omitempty"`
}

// Error is a query that failed, with the HTTP status that says why.
type Error struct {
	Status int
	Msg    string
	// RetryAfter is set when the query may succeed later (503).
	RetryAfter time.Duration
}

func (e *Error) Error() string { return e.Msg }

func errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Msg: fmt.Sprintf(format, args...)}
}

func unavailable(format string, args ...any) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Msg: fmt.Sprintf(format, args...), RetryAfter: time.Second}
}

// Entry is a key and its value.
type Entry struct {
	Key   json.RawMessage `json:"key"`
	Value json.RawMessage `json:"value"`
	// raw is the key's bytes, for merging and paging; sent between
	// instances only.
	Raw []byte `json:"raw,omitempty"`
}

// KeyResult is the answer to a point lookup.
type KeyResult struct {
	Key   json.RawMessage `json:"key"`
	Value json.RawMessage `json:"value"`
	Found bool            `json:"found"`
	// Host and Task say where the answer came from.
	Host  string    `json:"host"`
	Task  string    `json:"task"`
	State TaskState `json:"state"`
}

// RangeResult is a page of entries in key order.
type RangeResult struct {
	Entries []Entry `json:"entries"`
	// Next is the cursor of the next page, "" after the last.
	Next string `json:"next,omitempty"`
}

// Window is one window of a key.
type Window struct {
	Start time.Time       `json:"start"`
	End   time.Time       `json:"end,omitzero"`
	Value json.RawMessage `json:"value"`
}

// WindowsResult is the answer to a window fetch.
type WindowsResult struct {
	Key     json.RawMessage `json:"key"`
	Windows []Window        `json:"windows"`
	Host    string          `json:"host"`
	Task    string          `json:"task"`
}

// OwnersResult says where a key lives.
type OwnersResult struct {
	Store     string   `json:"store"`
	Partition int32    `json:"partition"`
	Task      string   `json:"task"`
	Active    string   `json:"active"`
	Standbys  []string `json:"standbys"`
}

// Options modify a query.
type Options struct {
	// Stale allows answers from copies that are not running: the
	// restoring store of the instance a task is assigned to, or, while it
	// is assigned to none, a standby copy.
	Stale bool
	// local asks for this instance's data only: set on forwarded queries.
	local bool
	// tasks are the tasks a forwarded range reads.
	tasks []topology.TaskID
}

// MaxPage is the most entries a page of a range holds.
const MaxPage = 1000

// Engine answers queries.
type Engine struct {
	B Backend
	// Client forwards queries to other instances.
	Client *http.Client
}

// Owners says which instances hold key of store.
func (e *Engine) Owners(store, key string) (*OwnersResult, error) {
	info, k, err := e.keyOf(store, key)
	if err != nil {
		return nil, err
	}
	task := e.taskOf(info, k)
	active, standbys := e.B.Owners(task)
	return &OwnersResult{Store: store, Partition: task.Partition, Task: task.String(), Active: active, Standbys: nonNil(standbys)}, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (e *Engine) keyOf(store, key string) (StoreInfo, []byte, error) {
	info, ok := e.B.Store(store)
	if !ok {
		return info, nil, errorf(http.StatusNotFound, "no queryable store %q", store)
	}
	k, err := info.Codec.ParseKey(key)
	if err != nil {
		return info, nil, errorf(http.StatusBadRequest, "store %q: %v", store, err)
	}
	return info, k, nil
}

// taskOf returns the task whose partition holds key: the one Kafka's
// default partitioner puts it in.
func (e *Engine) taskOf(info StoreInfo, key []byte) topology.TaskID {
	return topology.TaskID{Subtopology: info.Subtopology, Partition: Partition(key, info.Partitions)}
}

// Get looks key up in store.
func (e *Engine) Get(ctx context.Context, store, key string, o Options) (*KeyResult, error) {
	info, k, err := e.keyOf(store, key)
	if err != nil {
		return nil, err
	}
	if info.Kind != state.KindKeyValue {
		return nil, errorf(http.StatusBadRequest, "store %q is a %v store: fetch its windows", store, info.Kind)
	}
	task := e.taskOf(info, k)
	s, st, host, err := e.route(info, task, o)
	if err != nil {
		return nil, err
	}
	if s == nil {
		var out KeyResult
		q := url.Values{"key": {key}}
		return &out, e.forward(ctx, host, "/stores/"+url.PathEscape(store)+"/get", q, o, &out)
	}
	kv, ok := s.(state.ReadOnlyKeyValueStore)
	if !ok {
		return nil, errorf(http.StatusInternalServerError, "store %q of task %s is a %T", store, task, s)
	}
	v, err := kv.Get(k)
	if err != nil {
		return nil, readFailed(store, task, err)
	}
	out := &KeyResult{Found: v != nil, Host: e.B.Self(), Task: task.String(), State: st}
	if out.Key, err = encode(info.Codec.Key(k)); err == nil {
		out.Value, err = encode(info.Codec.Value(v))
	}
	if err != nil {
		return nil, errorf(http.StatusInternalServerError, "store %q of task %s: %v", store, task, err)
	}
	return out, nil
}

func readFailed(store string, task topology.TaskID, err error) error {
	if errors.Is(err, state.ErrClosed) {
		return unavailable("store %q of task %s closed while it was read: the task is moving", store, task)
	}
	return errorf(http.StatusInternalServerError, "read store %q of task %s: %v", store, task, err)
}

func encode(v any, err error) (json.RawMessage, error) {
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// route finds where to read task's copy of a store: here (s set) or at
// host. The running copy answers; a stale query falls back on a copy
// that is not running (this instance's first) only when no instance runs
// the task.
func (e *Engine) route(info StoreInfo, task topology.TaskID, o Options) (s state.Store, st TaskState, host string, err error) {
	s, st, ok := e.B.Local(info.Name, task)
	if ok && st == Running {
		return s, st, "", nil
	}
	active, standbys := e.B.Owners(task)
	switch {
	case o.local && !(o.Stale && ok):
		// Forwarded here: the sender thought this instance runs the task.
		if ok && st == Restoring {
			return nil, "", "", unavailable("store %q of task %s is restoring", info.Name, task)
		}
		return nil, "", "", unavailable("task %s of store %q is not running here (%s): it is moving", task, info.Name, e.B.Self())
	case !o.local && active != "" && active != e.B.Self():
		return nil, "", active, nil
	case ok && o.Stale:
		return s, st, "", nil
	case ok && st == Restoring:
		return nil, "", "", unavailable("store %q of task %s is restoring", info.Name, task)
	case o.Stale && !o.local:
		for _, h := range standbys {
			if h != e.B.Self() {
				return nil, "", h, nil
			}
		}
	}
	return nil, "", "", unavailable("task %s of store %q has no running instance: it is moving", task, info.Name)
}

// forward asks host for the answer and decodes it into out.
func (e *Engine) forward(ctx context.Context, host, path string, q url.Values, o Options, out any) error {
	q.Set("scope", "local")
	if o.Stale {
		q.Set("stale", "true")
	}
	u := "http://" + host + Prefix + path + "?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return errorf(http.StatusInternalServerError, "forward to %s: %v", host, err)
	}
	cl := e.Client
	if cl == nil {
		cl = http.DefaultClient
	}
	resp, err := cl.Do(req)
	if err != nil {
		return unavailable("forward to %s: %v", host, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return unavailable("forward to %s: %v", host, err)
	}
	if resp.StatusCode != http.StatusOK {
		var eb struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &eb)
		qe := &Error{Status: resp.StatusCode, Msg: fmt.Sprintf("%s: %s", host, eb.Error)}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
			qe.RetryAfter = time.Duration(s) * time.Second
		}
		return qe
	}
	if err := json.Unmarshal(body, out); err != nil {
		return errorf(http.StatusBadGateway, "answer of %s: %v", host, err)
	}
	return nil
}

// Range returns a page of store's entries with keys in [from, to) (an
// empty bound is open) after the cursor, in key order (the order of the
// keys' bytes), at most limit of them (MaxPage if 0).
func (e *Engine) Range(ctx context.Context, store, from, to, after string, limit int, o Options) (*RangeResult, error) {
	info, ok := e.B.Store(store)
	if !ok {
		return nil, errorf(http.StatusNotFound, "no queryable store %q", store)
	}
	if info.Kind != state.KindKeyValue {
		return nil, errorf(http.StatusBadRequest, "store %q is a %v store: fetch its windows", store, info.Kind)
	}
	limit, fetch := pageSizes(limit, o)
	var lo, hi []byte
	var err error
	if from != "" {
		if lo, err = info.Codec.ParseKey(from); err != nil {
			return nil, errorf(http.StatusBadRequest, "store %q: from: %v", store, err)
		}
	}
	if to != "" {
		if hi, err = info.Codec.ParseKey(to); err != nil {
			return nil, errorf(http.StatusBadRequest, "store %q: to: %v", store, err)
		}
	}
	if after != "" {
		c, err := decodeCursor(after)
		if err != nil {
			return nil, errorf(http.StatusBadRequest, "store %q: cursor %q is not one this API gave", store, after)
		}
		// The next key after c.
		c = append(c, 0)
		if lo == nil || bytes.Compare(c, lo) > 0 {
			lo = c
		}
	}
	byHost, err := e.readers(info, o)
	if err != nil {
		return nil, err
	}
	var all []Entry
	for host, tasks := range byHost {
		if host == e.B.Self() {
			es, err := e.localRange(info, tasks, lo, hi, fetch, o)
			if err != nil {
				return nil, err
			}
			all = append(all, es...)
			continue
		}
		q := url.Values{"limit": {strconv.Itoa(fetch)}}
		q.Set("tasks", taskList(tasks))
		if from != "" {
			q.Set("from", from)
		}
		if to != "" {
			q.Set("to", to)
		}
		if after != "" {
			q.Set("after", after)
		}
		var page RangeResult
		if err := e.forward(ctx, host, "/stores/"+url.PathEscape(store)+"/range", q, o, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Entries...)
	}
	sort.Slice(all, func(i, j int) bool { return bytes.Compare(all[i].Raw, all[j].Raw) < 0 })
	out := &RangeResult{Entries: all}
	if o.local {
		out.Entries = all[:min(len(all), fetch)]
		return out, nil
	}
	if len(all) > limit {
		out.Entries = all[:limit]
	}
	if len(all) > limit {
		out.Next = encodeCursor(out.Entries[len(out.Entries)-1].Raw)
	}
	if !o.local {
		for i := range out.Entries {
			out.Entries[i].Raw = nil
		}
	}
	if out.Entries == nil {
		out.Entries = []Entry{}
	}
	return out, nil
}

// A cursor is the last key of a page: "k" and the key's bytes in base64,
// so that the empty key has a cursor too.
func encodeCursor(key []byte) string { return "k" + base64.RawURLEncoding.EncodeToString(key) }

func decodeCursor(c string) ([]byte, error) {
	rest, ok := strings.CutPrefix(c, "k")
	if !ok {
		return nil, errors.New("not a cursor")
	}
	return base64.RawURLEncoding.DecodeString(rest)
}

// routeHost is route for queries that gather from many tasks: the host to
// read task at, this one included.
func (e *Engine) routeHost(info StoreInfo, task topology.TaskID, o Options) (state.Store, string, error) {
	s, _, host, err := e.route(info, task, o)
	if err != nil {
		return nil, "", err
	}
	if s != nil {
		return s, e.B.Self(), nil
	}
	return nil, host, nil
}

// pageSizes returns a page's limit (MaxPage if 0 or, but on a forwarded
// query, above it) and how many entries to ask each instance for: one more
// than the page, so that a page tells whether another follows; a forwarded
// query asks for that already.
func pageSizes(limit int, o Options) (page, fetch int) {
	if limit <= 0 || limit > MaxPage && !o.local {
		limit = MaxPage
	}
	if o.local {
		return limit, min(limit, MaxPage+1)
	}
	return limit, limit + 1
}

// readers returns which tasks of the store each instance is to read for a
// query gathered from every task: this instance's own for a forwarded
// query, and otherwise each task where route finds it.
func (e *Engine) readers(info StoreInfo, o Options) (map[string][]topology.TaskID, error) {
	byHost := map[string][]topology.TaskID{}
	for p := int32(0); p < info.Partitions; p++ {
		task := topology.TaskID{Subtopology: info.Subtopology, Partition: p}
		if o.local {
			if slices.Contains(o.tasks, task) {
				byHost[e.B.Self()] = append(byHost[e.B.Self()], task)
			}
			continue
		}
		_, host, err := e.routeHost(info, task, o)
		if err != nil {
			return nil, err
		}
		byHost[host] = append(byHost[host], task)
	}
	return byHost, nil
}

// taskList is the "tasks" parameter of a forwarded query.
func taskList(tasks []topology.TaskID) string {
	names := make([]string, len(tasks))
	for i, t := range tasks {
		names[i] = t.String()
	}
	return strings.Join(names, ",")
}

// localCopy returns this instance's copy of task's store for a query
// gathered from many tasks: a running copy, or any copy if the query
// allows stale reads.
func (e *Engine) localCopy(info StoreInfo, task topology.TaskID, o Options) (state.Store, error) {
	s, st, ok := e.B.Local(info.Name, task)
	if !ok || st != Running && !o.Stale {
		if ok && st == Restoring {
			return nil, unavailable("store %q of task %s is restoring", info.Name, task)
		}
		return nil, unavailable("task %s of store %q is not running here (%s): it is moving", task, info.Name, e.B.Self())
	}
	return s, nil
}

// localRange reads up to limit entries in [lo, hi) from each of this
// instance's copies of tasks.
func (e *Engine) localRange(info StoreInfo, tasks []topology.TaskID, lo, hi []byte, limit int, o Options) ([]Entry, error) {
	var out []Entry
	for _, task := range tasks {
		s, err := e.localCopy(info, task, o)
		if err != nil {
			return nil, err
		}
		kv, ok := s.(state.ReadOnlyKeyValueStore)
		if !ok {
			return nil, errorf(http.StatusInternalServerError, "store %q of task %s is a %T", info.Name, task, s)
		}
		it, err := kv.Range(lo, hi)
		if err != nil {
			return nil, readFailed(info.Name, task, err)
		}
		n := 0
		for n < limit && it.Next() {
			ent := Entry{Raw: bytes.Clone(it.Key())}
			if ent.Key, err = encode(info.Codec.Key(it.Key())); err == nil {
				ent.Value, err = encode(info.Codec.Value(it.Value()))
			}
			if err != nil {
				it.Close()
				return nil, errorf(http.StatusInternalServerError, "store %q of task %s: %v", info.Name, task, err)
			}
			out = append(out, ent)
			n++
		}
		err = it.Err()
		it.Close()
		if err != nil {
			return nil, readFailed(info.Name, task, err)
		}
	}
	return out, nil
}

// Windows returns key's windows in store that start in [from, to], or, of
// a session store, key's sessions that overlap [from, to] (end at or after
// from, start at or before to).
func (e *Engine) Windows(ctx context.Context, store, key string, from, to time.Time, o Options) (*WindowsResult, error) {
	info, k, err := e.keyOf(store, key)
	if err != nil {
		return nil, err
	}
	if info.Kind != state.KindWindow && info.Kind != state.KindSession {
		return nil, errorf(http.StatusBadRequest, "store %q is a %v store: it has no windows", store, info.Kind)
	}
	if to.Before(from) {
		return nil, errorf(http.StatusBadRequest, "store %q: window range from %v to %v is empty", store, from, to)
	}
	task := e.taskOf(info, k)
	s, _, host, err := e.route(info, task, o)
	if err != nil {
		return nil, err
	}
	if s == nil {
		var out WindowsResult
		q := url.Values{"key": {key}, "from": {strconv.FormatInt(from.UnixMilli(), 10)}, "to": {strconv.FormatInt(to.UnixMilli(), 10)}}
		return &out, e.forward(ctx, host, "/stores/"+url.PathEscape(store)+"/windows", q, o, &out)
	}
	out := &WindowsResult{Host: e.B.Self(), Task: task.String(), Windows: []Window{}}
	if out.Key, err = encode(info.Codec.Key(k)); err != nil {
		return nil, errorf(http.StatusInternalServerError, "store %q: %v", store, err)
	}
	add := func(start, end int64, v []byte) error {
		val, err := encode(info.Codec.Value(v))
		if err != nil {
			return errorf(http.StatusInternalServerError, "store %q of task %s: %v", store, task, err)
		}
		w := Window{Start: time.UnixMilli(start).UTC(), Value: val}
		if end >= 0 {
			w.End = time.UnixMilli(end).UTC()
		}
		out.Windows = append(out.Windows, w)
		return nil
	}
	switch st := s.(type) {
	case state.WindowStore:
		it, err := st.FetchRange(k, from.UnixMilli(), to.UnixMilli())
		if err != nil {
			return nil, readFailed(store, task, err)
		}
		defer it.Close()
		size := info.Codec.WindowSize().Milliseconds()
		for it.Next() {
			end := int64(-1)
			if size > 0 {
				end = it.Start() + size
			}
			if err := add(it.Start(), end, it.Value()); err != nil {
				return nil, err
			}
		}
		if err := it.Err(); err != nil {
			return nil, readFailed(store, task, err)
		}
	case state.SessionStore:
		it, err := st.FindSessions(k, from.UnixMilli(), to.UnixMilli())
		if err != nil {
			return nil, readFailed(store, task, err)
		}
		defer it.Close()
		for it.Next() {
			if err := add(it.Start(), it.End(), it.Value()); err != nil {
				return nil, err
			}
		}
		if err := it.Err(); err != nil {
			return nil, readFailed(store, task, err)
		}
	default:
		return nil, errorf(http.StatusInternalServerError, "store %q of task %s is a %T", store, task, s)
	}
	return out, nil
}

// KeyWindow is one window of a key, or one session, in a page of every
// key's windows.
type KeyWindow struct {
	Key   json.RawMessage `json:"key"`
	Start time.Time       `json:"start"`
	// End is the window's end: the session's for a session store, start
	// plus the window size for a window store that declared one, and zero
	// (left out of the JSON) otherwise.
	End   time.Time       `json:"end,omitzero"`
	Value json.RawMessage `json:"value"`
	// Raw is the key's bytes, for merging; sent between instances only.
	Raw []byte `json:"raw,omitempty"`
}

// WindowsPage is a page of every key's windows, in the order AllWindows
// describes.
type WindowsPage struct {
	Windows []KeyWindow `json:"windows"`
	// Next is the cursor of the next page, "" after the last.
	Next string `json:"next,omitempty"`
}

// AllWindows returns a page of the windows of every key in store whose
// start is in [from, to], or, of a session store, of the sessions that
// overlap [from, to] (end at or after from, start at or before to),
// gathered from every instance that runs a task of the store, after the
// cursor after ("" for the first page), at most limit of them (MaxPage if
// 0). Windows come in order of start, then of the key's bytes; sessions in
// order of end, then of the key's bytes: the orders the stores keep. The
// page's Next resumes strictly after its last window.
//
// A session query reads, in each task, the sessions that end at or after
// from until it has a page of those that start by to: when to is long
// before the newest sessions, its last page reads them all.
func (e *Engine) AllWindows(ctx context.Context, store string, from, to time.Time, after string, limit int, o Options) (*WindowsPage, error) {
	info, ok := e.B.Store(store)
	if !ok {
		return nil, errorf(http.StatusNotFound, "no queryable store %q", store)
	}
	if info.Kind != state.KindWindow && info.Kind != state.KindSession {
		return nil, errorf(http.StatusBadRequest, "store %q is a %v store: it has no windows", store, info.Kind)
	}
	if to.Before(from) {
		return nil, errorf(http.StatusBadRequest, "store %q: window range from %v to %v is empty", store, from, to)
	}
	if limit < 0 {
		return nil, errorf(http.StatusBadRequest, "store %q: limit %d is negative", store, limit)
	}
	limit, fetch := pageSizes(limit, o)
	var cur *windowCursor
	if after != "" {
		c, err := decodeWindowCursor(after)
		if err != nil {
			return nil, errorf(http.StatusBadRequest, "store %q: cursor %q is not one this API gave for windows", store, after)
		}
		cur = &c
	}
	byHost, err := e.readers(info, o)
	if err != nil {
		return nil, err
	}
	fromMs, toMs := from.UnixMilli(), to.UnixMilli()
	var all []KeyWindow
	for host, tasks := range byHost {
		if host == e.B.Self() {
			ws, err := e.localWindows(info, tasks, fromMs, toMs, cur, fetch, o)
			if err != nil {
				return nil, err
			}
			all = append(all, ws...)
			continue
		}
		q := url.Values{
			"from":  {strconv.FormatInt(fromMs, 10)},
			"to":    {strconv.FormatInt(toMs, 10)},
			"limit": {strconv.Itoa(fetch)},
		}
		q.Set("tasks", taskList(tasks))
		if after != "" {
			q.Set("after", after)
		}
		var page WindowsPage
		if err := e.forward(ctx, host, "/stores/"+url.PathEscape(store)+"/windows", q, o, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Windows...)
	}
	sort.Slice(all, func(i, j int) bool {
		return windowCursorOf(info.Kind, all[i]).less(windowCursorOf(info.Kind, all[j]))
	})
	out := &WindowsPage{Windows: all}
	if o.local {
		out.Windows = all[:min(len(all), fetch)]
		return out, nil
	}
	if len(all) > limit {
		out.Windows = all[:limit]
		out.Next = windowCursorOf(info.Kind, out.Windows[limit-1]).encode()
	}
	for i := range out.Windows {
		out.Windows[i].Raw = nil
	}
	if out.Windows == nil {
		out.Windows = []KeyWindow{}
	}
	return out, nil
}

// windowCursor is a place in the order of AllWindows: a window's start (a
// session's end) and its key's bytes.
type windowCursor struct {
	at  int64
	key []byte
}

// less orders cursors by time, then key bytes.
func (c windowCursor) less(d windowCursor) bool {
	if c.at != d.at {
		return c.at < d.at
	}
	return bytes.Compare(c.key, d.key) < 0
}

// windowCursorOf is the place of w in a store of kind's order.
func windowCursorOf(kind state.Kind, w KeyWindow) windowCursor {
	if kind == state.KindSession {
		return windowCursor{at: w.End.UnixMilli(), key: w.Raw}
	}
	return windowCursor{at: w.Start.UnixMilli(), key: w.Raw}
}

// A window cursor is "w" and, in base64, the time as 8 bytes big-endian
// then the key's bytes: not a cursor of Range, which starts with "k".
func (c windowCursor) encode() string {
	b := make([]byte, 8, 8+len(c.key))
	binary.BigEndian.PutUint64(b, uint64(c.at))
	return "w" + base64.RawURLEncoding.EncodeToString(append(b, c.key...))
}

func decodeWindowCursor(s string) (windowCursor, error) {
	rest, ok := strings.CutPrefix(s, "w")
	if !ok {
		return windowCursor{}, errors.New("not a window cursor")
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return windowCursor{}, err
	}
	if len(b) < 8 {
		return windowCursor{}, errors.New("window cursor too short")
	}
	return windowCursor{at: int64(binary.BigEndian.Uint64(b)), key: b[8:]}, nil
}

// localWindows reads, from each of this instance's copies of tasks, up to
// limit windows (sessions) in [from, to] after cur (if set), in the
// store's order.
func (e *Engine) localWindows(info StoreInfo, tasks []topology.TaskID, from, to int64, cur *windowCursor, limit int, o Options) ([]KeyWindow, error) {
	// lo is the least time of the order to read from: a window's start,
	// or a session's end (which may be after to, for a session that
	// started by to).
	lo := from
	if cur != nil {
		lo = max(lo, cur.at)
	}
	size := info.Codec.WindowSize().Milliseconds()
	var out []KeyWindow
	for _, task := range tasks {
		s, err := e.localCopy(info, task, o)
		if err != nil {
			return nil, err
		}
		// n counts the windows taken; add reports whether to go on.
		n := 0
		add := func(key []byte, at, start, end int64, v []byte) (bool, error) {
			if cur != nil && at == cur.at && bytes.Compare(key, cur.key) <= 0 {
				return true, nil // at or before the cursor
			}
			w := KeyWindow{Start: time.UnixMilli(start).UTC(), Raw: bytes.Clone(key)}
			if end >= 0 {
				w.End = time.UnixMilli(end).UTC()
			}
			var err error
			if w.Key, err = encode(info.Codec.Key(key)); err == nil {
				w.Value, err = encode(info.Codec.Value(v))
			}
			if err != nil {
				return false, errorf(http.StatusInternalServerError, "store %q of task %s: %v", info.Name, task, err)
			}
			out = append(out, w)
			n++
			return n < limit, nil
		}
		switch st := s.(type) {
		case state.WindowStore:
			err = fetchWindows(st, lo, to, func(it state.WindowIterator) (bool, error) {
				end := int64(-1)
				if size > 0 {
					end = it.Start() + size
				}
				return add(it.Key(), it.Start(), it.Start(), end, it.Value())
			})
		case state.SessionStore:
			// In order of end; every session ending at or after lo may
			// start by to.
			err = fetchSessions(st, lo, func(it state.SessionIterator) (bool, error) {
				if it.Start() > to {
					return true, nil
				}
				return add(it.Key(), it.End(), it.Start(), it.End(), it.Value())
			})
		default:
			return nil, errorf(http.StatusInternalServerError, "store %q of task %s is a %T", info.Name, task, s)
		}
		if err != nil {
			var qe *Error
			if errors.As(err, &qe) {
				return nil, err
			}
			return nil, readFailed(info.Name, task, err)
		}
	}
	return out, nil
}

// fetchWindows calls f on each window of ws with start in [from, to] until
// f says stop.
func fetchWindows(ws state.WindowStore, from, to int64, f func(state.WindowIterator) (bool, error)) error {
	it, err := ws.FetchAll(from, to)
	if err != nil {
		return err
	}
	return walk(it, f)
}

// fetchSessions calls f on each session of ss that ends at or after from
// until f says stop.
func fetchSessions(ss state.SessionStore, from int64, f func(state.SessionIterator) (bool, error)) error {
	it, err := ss.FetchAll(from, math.MaxInt64)
	if err != nil {
		return err
	}
	return walk(it, f)
}

// walk calls f at each step of it until f says stop, and closes it.
func walk[I interface {
	Next() bool
	Err() error
	Close() error
}](it I, f func(I) (bool, error)) error {
	defer it.Close()
	for it.Next() {
		if more, err := f(it); err != nil || !more {
			return err
		}
	}
	return it.Err()
}

// Metadata describes every instance of the group that answers queries:
// this one from its own state, the others as they answer.
func (e *Engine) Metadata(ctx context.Context, o Options) ([]Instance, error) {
	self := Instance{Host: e.B.Self(), Tasks: nonNilTasks(e.B.Tasks())}
	if o.local {
		return []Instance{self}, nil
	}
	out := []Instance{self}
	for _, h := range e.B.Hosts() {
		if h == e.B.Self() {
			continue
		}
		var got []Instance
		err := e.forward(ctx, h, "/metadata", url.Values{}, Options{}, &got)
		if err == nil && len(got) != 1 {
			err = fmt.Errorf("answered with %d instances, not itself", len(got))
		}
		if err != nil {
			out = append(out, Instance{Host: h, Tasks: []TaskInfo{}, Error: err.Error()})
			continue
		}
		out = append(out, got[0])
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Host < out[j].Host })
	return out, nil
}

func nonNilTasks(t []TaskInfo) []TaskInfo {
	if t == nil {
		return []TaskInfo{}
	}
	return t
}
