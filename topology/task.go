package topology

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"time"

	"github.com/riffle-streams/riffle/state"
)

// Runtime is what a Task needs from whoever runs it: the Kafka runtime or
// the test driver. Its methods are called from the task's goroutine.
type Runtime interface {
	// ApplicationID returns the application id, which prefixes internal
	// topics.
	ApplicationID() string
	// Send takes a record a sink produced. Its byte slices belong to the
	// runtime from then on.
	Send(rec RawRecord) error
	// OpenStore opens the store described by spec for the task.
	OpenStore(task TaskID, spec state.Spec) (state.Store, error)
	// Now returns the wall-clock time.
	Now() time.Time
	// Logger returns the logger for the task's messages.
	Logger() *slog.Logger
	// GlobalStore returns the instance's copy of the global store named
	// name, to be read only.
	GlobalStore(name string) (state.Store, error)
}

// SkipKey counts the records one node skipped for one reason.
type SkipKey struct {
	Node   string
	Reason string
}

// noStreamTime is the stream time of a task that has seen no record.
const noStreamTime = math.MinInt64

// Task runs one sub-topology for one partition: it owns an instance of
// every node of the sub-topology and the stores they use.
//
// A Task is not safe for concurrent use: the runtime drives it from one
// goroutine.
type Task struct {
	id      TaskID
	appID   string
	topo    *Topology
	sub     *SubTopology
	rt      Runtime
	logger  *slog.Logger
	nodes   []instance
	sources map[string]rawReceiver // by resolved topic
	stores  map[string]state.Store
	cur     *nodeCtx
	meta    RecordMetadata
	hasMeta bool
	closed  bool

	skipped map[SkipKey]int64

	streamTime  int64 // ms
	schedules   []*Schedule
	scheduleSeq int
}

// NewTask instantiates the sub-topology id.Subtopology of t for partition
// id.Partition: it opens the stores through rt and initializes every
// processor. On error, what was opened is closed again.
func (t *Topology) NewTask(id TaskID, rt Runtime) (_ *Task, err error) {
	if id.Subtopology < 0 || id.Subtopology >= len(t.subs) {
		return nil, fmt.Errorf("topology: task %s: no sub-topology %d", id, id.Subtopology)
	}
	st := t.subs[id.Subtopology]
	task := &Task{
		id:         id,
		appID:      rt.ApplicationID(),
		topo:       t,
		sub:        st,
		rt:         rt,
		logger:     rt.Logger().With("task", id.String()),
		sources:    map[string]rawReceiver{},
		stores:     map[string]state.Store{},
		skipped:    map[SkipKey]int64{},
		streamTime: noStreamTime,
	}
	defer func() {
		if err != nil {
			task.closeStores()
		}
	}()
	for _, spec := range st.Stores {
		s, err := rt.OpenStore(id, spec)
		if err != nil {
			return nil, fmt.Errorf("topology: task %s: open store %q: %w", id, spec.Name, err)
		}
		task.stores[spec.Name] = s
	}
	byName := make(map[string]instance, len(st.nodes))
	for _, n := range st.nodes {
		inst := n.newInstance()
		c := inst.ctx()
		c.def, c.task = n, task
		byName[n.name] = inst
		task.nodes = append(task.nodes, inst)
		if n.kind == sourceNode {
			for _, tp := range n.topics {
				task.sources[tp.Resolve(task.appID)] = inst.(rawReceiver)
			}
		}
	}
	for _, n := range st.nodes {
		for _, c := range n.children {
			if err := byName[n.name].addChild(byName[c.name]); err != nil {
				return nil, err
			}
		}
	}
	for i, inst := range task.nodes {
		if err := inst.init(); err != nil {
			for _, done := range task.nodes[:i] {
				_ = done.close()
			}
			return nil, err
		}
	}
	return task, nil
}

// Skipped returns how many records the task's processors skipped, by node and
// reason (see Context.SkipRecord). The map is the caller's.
func (t *Task) Skipped() map[SkipKey]int64 {
	out := make(map[SkipKey]int64, len(t.skipped))
	for k, n := range t.skipped {
		out[k] = n
	}
	return out
}

// ID returns the task's id.
func (t *Task) ID() TaskID { return t.id }

// SubTopology returns the sub-topology the task runs.
func (t *Task) SubTopology() *SubTopology { return t.sub }

// Store returns the task's store named name, or nil.
func (t *Task) Store(name string) state.Store { return t.stores[name] }

// StreamTime returns the largest timestamp of the records the task has
// processed, or the zero Time if it has processed none.
func (t *Task) StreamTime() time.Time {
	if t.streamTime == noStreamTime {
		return time.Time{}
	}
	return time.UnixMilli(t.streamTime)
}

// Process runs rec, read from rec.Topic, through the sub-topology, then
// fires the stream-time punctuations that have come due. A processor's
// panic is recovered and returned as a *ProcessorError; a record that cannot
// be decoded gives a *DecodeError, and nothing downstream sees it.
func (t *Task) Process(rec *RawRecord) (err error) {
	if t.closed {
		return fmt.Errorf("topology: task %s: process a record of %q: task is closed", t.id, rec.Topic)
	}
	src, ok := t.sources[rec.Topic]
	if !ok {
		if src = t.patternSource(rec.Topic); src == nil {
			return fmt.Errorf("topology: task %s reads no topic %q", t.id, rec.Topic)
		}
	}
	t.meta = RecordMetadata{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset}
	t.hasMeta = true
	defer t.recoverInto(&err)
	err = src.receiveRaw(rec)
	t.hasMeta = false
	if err != nil {
		return err
	}
	return t.punctuate(StreamTime, t.streamTime)
}

// observe moves stream time to ts (ms) if it is later: stream time never
// goes back.
func (t *Task) observe(ts int64) {
	if ts > t.streamTime {
		t.streamTime = ts
	}
}

// patternSource finds the pattern source that reads topic and remembers it.
func (t *Task) patternSource(topic string) rawReceiver {
	n := t.topo.sourceFor(t.appID, topic)
	if n == nil || n.sub != t.sub.ID {
		return nil
	}
	for _, inst := range t.nodes {
		if inst.ctx().def == n {
			r := inst.(rawReceiver)
			t.sources[topic] = r
			return r
		}
	}
	return nil
}

// recoverInto turns a panic of a processor into an error naming it.
func (t *Task) recoverInto(err *error) {
	r := recover()
	if r == nil {
		return
	}
	perr, ok := r.(error)
	if !ok {
		perr = fmt.Errorf("%v", r)
	}
	if t.cur == nil {
		*err = fmt.Errorf("topology: task %s: panic: %w", t.id, perr)
	} else {
		// The task's current node is the deepest one that was running.
		*err = t.cur.wrap(perr, true)
	}
	t.cur = nil
	t.hasMeta = false
}

// PunctuateWallClock fires the wall-clock punctuations due at now.
func (t *Task) PunctuateWallClock(now time.Time) (err error) {
	if t.closed {
		return nil
	}
	defer t.recoverInto(&err)
	return t.punctuate(WallClockTime, now.UnixMilli())
}

func (t *Task) schedule(c *nodeCtx, interval time.Duration, kind PunctuationType, fn Punctuator) (*Schedule, error) {
	s := &Schedule{kind: kind, interval: interval.Milliseconds(), fn: fn, node: c}
	switch kind {
	case StreamTime:
		// Aligned to multiples of the interval: the first record fires it.
		s.next = math.MinInt64 + 1
	case WallClockTime:
		s.next = t.rt.Now().UnixMilli() + s.interval
	default:
		return nil, fmt.Errorf("topology: processor %q: unknown punctuation type %v", c.def.name, kind)
	}
	t.scheduleSeq++
	t.schedules = append(t.schedules, s)
	return s, nil
}

// punctuate fires, once each and in the order they came due, the schedules of
// kind whose time has come at now (ms).
func (t *Task) punctuate(kind PunctuationType, now int64) error {
	if now == noStreamTime || len(t.schedules) == 0 {
		return nil
	}
	var due []*Schedule
	live := t.schedules[:0]
	for _, s := range t.schedules {
		if s.cancelled {
			continue
		}
		live = append(live, s)
		if s.kind == kind && now >= s.next {
			due = append(due, s)
		}
	}
	clear(t.schedules[len(live):])
	t.schedules = live
	if len(due) == 0 {
		return nil
	}
	sort.SliceStable(due, func(i, j int) bool { return due[i].next < due[j].next })
	for _, s := range due {
		if s.cancelled {
			continue
		}
		// The next time is the first multiple of the interval, counted
		// from the last one, that lies after now: a jump fires once.
		if s.next == math.MinInt64+1 {
			s.next = now - mod(now, s.interval) + s.interval
		} else {
			s.next = now - mod(now-s.next, s.interval) + s.interval
		}
		prev := t.cur
		t.cur = s.node
		err := s.fn(time.UnixMilli(now))
		t.cur = prev
		if err != nil {
			return s.node.wrap(fmt.Errorf("%v punctuation: %w", kind, err), false)
		}
	}
	return nil
}

// mod is the non-negative remainder of a divided by b.
func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

// Flush flushes the task's stores, as before a commit. A store with a record
// cache writes its cached updates through, and the processors that own it
// forward them: records may flow from here as from a punctuation.
func (t *Task) Flush() (err error) {
	defer t.recoverInto(&err)
	var errs []error
	for _, spec := range t.sub.Stores {
		if s := t.stores[spec.Name]; s != nil {
			if err := s.Flush(); err != nil {
				errs = append(errs, fmt.Errorf("topology: task %s: flush store %q: %w", t.id, spec.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Close flushes the stores (so cached updates are forwarded while the
// processors are still open), closes every processor, then closes the
// stores. It is safe to call more than once.
func (t *Task) Close() error {
	if t.closed {
		return nil
	}
	errs := []error{t.Flush()}
	t.closed = true
	for _, inst := range t.nodes {
		if err := t.closeNode(inst); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, t.closeStores())
	return errors.Join(errs...)
}

func (t *Task) closeNode(inst instance) (err error) {
	defer t.recoverInto(&err)
	t.cur = inst.ctx()
	err = inst.close()
	t.cur = nil
	return err
}

func (t *Task) closeStores() error {
	var errs []error
	for name, s := range t.stores {
		if err := s.Close(); err != nil {
			errs = append(errs, fmt.Errorf("topology: task %s: close store %q: %w", t.id, name, err))
		}
	}
	return errors.Join(errs...)
}
