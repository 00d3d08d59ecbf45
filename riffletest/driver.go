// Package riffletest runs a topology in-process, with no broker, for tests:
// the Riffle counterpart of Kafka Streams' TopologyTestDriver.
//
// A [Driver] runs the very processor code the runtime runs on Kafka, one
// record at a time and deterministically. Pipe records into input topics with
// an [InputTopic], read what reaches output topics with an [OutputTopic],
// move the wall clock with [Driver.AdvanceWallClock], and look inside stores
// with [Driver.KeyValueStore], [Driver.WindowStore] and
// [Driver.SessionStore].
//
// As in Kafka Streams' driver, every topic has one partition, so each
// sub-topology runs as one task. A record written to a topic that the
// topology reads (such as a repartition topic) is processed right after the
// record that caused it, in the order written.
//
// Stores are opened as declared: persistent ones on Pebble in a temporary
// directory removed by Close, in-memory ones in memory; [WithBackend] runs
// every store on one backend, so a test can check both. Every write to a
// logged store is recorded in its changelog topic,
// "<application id>-<store>-changelog", which tests read like any output
// topic.
package riffletest

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/topology"
)

// Driver runs a topology in-process. It is not safe for concurrent use.
type Driver struct {
	topo          *topology.Topology
	cfg           config
	now           time.Time
	tasks         []*topology.Task
	topics        map[string]*topic // by resolved name
	env           *state.Env
	tmpDir        string                 // removed by Close
	globals       map[string]state.Store // by store name
	cache         *state.CacheBudget     // nil: no caching
	queue         []topology.RawRecord   // records waiting to be processed
	head          int
	busy          bool
	skippedDecode int64 // records skipped before reaching a task's processors
	closed        bool
}

// topic is what the driver knows of one topic (of one partition).
type topic struct {
	task     *topology.Task   // the task that reads it, or nil
	global   state.Restorable // the global store that copies it, or nil
	internal bool             // records are processed, not kept for reading
	offset   int64            // of the next record
	out      []topology.RawRecord
	head     int // first unread record of out
}

type config struct {
	appID         string
	start         time.Time
	logger        *slog.Logger
	onDecodeError func(*topology.DecodeError) error
	deadLetter    string // the dead-letter topic, if any
	deadLetterSet bool
	backend       state.Backend
	stateDir      string
	cacheBytes    int64
}

// Option configures a Driver.
type Option func(*config)

// WithApplicationID sets the application id, which prefixes internal topics.
// The default is "riffletest".
func WithApplicationID(id string) Option { return func(c *config) { c.appID = id } }

// WithStartTime sets the wall-clock time the driver starts at, and the
// default timestamp of piped records. The default is the Unix epoch, so runs
// are repeatable.
func WithStartTime(t time.Time) Option { return func(c *config) { c.start = t } }

// WithLogger sets the logger. The default discards everything.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithDecodeErrorHandler sets what happens to a record a source cannot
// decode. The handler's error, if any, is returned by the call that piped the
// record; a nil error skips the record, which is counted (see
// [Driver.SkippedRecords]) and logged with its topic, partition and offset.
// The default returns the *topology.DecodeError: the pipe fails, as the
// runtime's default handler fails the application.
func WithDecodeErrorHandler(h func(*topology.DecodeError) error) Option {
	return func(c *config) { c.onDecodeError = h }
}

// WithDeadLetter sends a record a source cannot decode to the dead-letter
// topic topic, as the App's riffle.DeadLetter policy does: as it was read,
// with the error and its origin in headers (see topology.DeadLetter). The
// record is counted (see [Driver.SkippedRecords]) and logged, and the pipe
// goes on. The dead-letter topic is an output topic like any other, and
// the topology may read it. It sets the decode-error handler to skip; a
// WithDecodeErrorHandler given after it decides first, and a record its
// handler skips goes to the topic.
func WithDeadLetter(topic string) Option {
	return func(c *config) {
		c.deadLetter, c.deadLetterSet = topic, true
		c.onDecodeError = func(*topology.DecodeError) error { return nil }
	}
}

// WithBackend opens every store of the topology on backend
// (state.InMemoryBackend or state.PersistentBackend), whatever it declares.
func WithBackend(b state.Backend) Option { return func(c *config) { c.backend = b } }

// WithCaching puts a record cache of up to bytes in front of every store
// that allows one (state.Spec.Cached). Cached updates reach the store, its
// changelog and downstream only at Commit (or when the cache is full), one
// per key: fewer intermediate updates, the same final results. By default
// the driver has no cache, so tests see every update.
func WithCaching(bytes int64) Option { return func(c *config) { c.cacheBytes = bytes } }

// WithStateDir keeps persistent stores under dir, which Close leaves in
// place, instead of in a temporary directory.
func WithStateDir(dir string) Option { return func(c *config) { c.stateDir = dir } }

// New starts a driver for topo: it creates a task for every sub-topology and
// initializes its processors.
func New(topo *topology.Topology, opts ...Option) (*Driver, error) {
	if topo == nil {
		return nil, errors.New("riffletest: topology is nil")
	}
	cfg := config{
		appID:         "riffletest",
		start:         time.UnixMilli(0).UTC(),
		logger:        slog.New(slog.DiscardHandler),
		onDecodeError: func(e *topology.DecodeError) error { return e },
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.appID == "" {
		return nil, errors.New("riffletest: application id is empty")
	}
	if cfg.deadLetter == "" && cfg.deadLetterSet {
		return nil, errors.New("riffletest: WithDeadLetter: the dead-letter topic is empty")
	}
	d := &Driver{
		topo:    topo,
		cfg:     cfg,
		now:     cfg.start,
		topics:  map[string]*topic{},
		globals: map[string]state.Store{},
	}
	dir := cfg.stateDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "riffletest-")
		if err != nil {
			return nil, fmt.Errorf("riffletest: make a state directory: %w", err)
		}
		dir, d.tmpDir = tmp, tmp
	}
	env, err := state.NewEnv(dir, state.WithLogger(cfg.logger))
	if err != nil {
		_ = d.Close()
		return nil, fmt.Errorf("riffletest: %w", err)
	}
	d.env = env
	if cfg.cacheBytes > 0 {
		d.cache = state.NewCacheBudget(cfg.cacheBytes)
	}
	for _, g := range topo.GlobalStores() {
		s, err := d.openStore("global", g.Spec)
		if err != nil {
			_ = d.Close()
			return nil, fmt.Errorf("riffletest: open global store %q: %w", g.Spec.Name, err)
		}
		d.globals[g.Spec.Name] = s
	}
	for _, st := range topo.SubTopologies() {
		t, err := topo.NewTask(topology.TaskID{Subtopology: st.ID}, (*runtime)(d))
		if err != nil {
			_ = d.Close()
			return nil, fmt.Errorf("riffletest: %w", err)
		}
		d.tasks = append(d.tasks, t)
	}
	return d, nil
}

// runtime is the Driver as the tasks see it.
type runtime Driver

func (r *runtime) ApplicationID() string { return r.cfg.appID }
func (r *runtime) Now() time.Time        { return r.now }
func (r *runtime) Logger() *slog.Logger  { return r.cfg.logger }

func (r *runtime) OpenStore(task topology.TaskID, spec state.Spec) (state.Store, error) {
	return (*Driver)(r).openStore(task.String(), spec)
}

func (r *runtime) GlobalStore(name string) (state.Store, error) {
	s, ok := r.globals[name]
	if !ok {
		return nil, fmt.Errorf("riffletest: no global store %q", name)
	}
	return state.ReadOnly(s.(state.KeyValueStore)), nil
}

// openStore opens a store on the configured backend, logged to its
// changelog topic if the spec says so.
func (d *Driver) openStore(task string, spec state.Spec) (state.Store, error) {
	if d.cfg.backend != 0 {
		spec.Backend = d.cfg.backend
	}
	log := &changelog{d: d, topic: topology.ChangelogFor(spec.Name).Resolve(d.cfg.appID)}
	switch spec.Kind {
	case state.KindWindow, state.KindSession:
		ws, err := d.env.OpenWindow(d.cfg.appID, task, spec)
		if err != nil {
			return nil, err
		}
		if spec.Logged {
			ws = state.LoggedWindow(ws, log)
		}
		if spec.Kind == state.KindSession {
			return state.SessionOf(ws), nil
		}
		return ws, nil
	case state.KindKeyValue:
	default:
		return nil, fmt.Errorf("riffletest: store %q: kind %v is not supported", spec.Name, spec.Kind)
	}
	kv, err := d.env.OpenKeyValue(d.cfg.appID, task, spec)
	if err != nil {
		return nil, err
	}
	if spec.Logged {
		kv = state.Logged(kv, log)
	}
	if d.cache != nil && spec.Cached && task != "global" {
		kv = state.Cached(kv, d.cache)
	}
	return kv, nil
}

// changelog records a store's writes in its changelog topic.
type changelog struct {
	d     *Driver
	topic string
}

func (c *changelog) Append(key, value []byte) error {
	tp := c.d.topic(c.topic)
	rec := topology.RawRecord{Topic: c.topic, Offset: tp.offset, Key: clone(key), Value: clone(value), Timestamp: c.d.now}
	tp.offset++
	tp.out = append(tp.out, rec)
	return nil
}

// clone copies b, keeping nil as nil.
func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

// Send captures a record a sink produced: it is kept for output topics and
// queued for processing if the topology reads its topic.
func (r *runtime) Send(rec topology.RawRecord) error {
	d := (*Driver)(r)
	tp := d.topic(rec.Topic)
	rec.Partition = 0
	rec.Offset = tp.offset
	rec.Timestamp = rec.Timestamp.Truncate(time.Millisecond) // Kafka keeps milliseconds
	tp.offset++
	if tp.task != nil {
		d.queue = append(d.queue, rec)
	}
	if !tp.internal {
		tp.out = append(tp.out, rec)
	}
	if tp.global != nil {
		// A global store copies its topic, whoever writes it.
		return d.applyGlobal(tp, rec.Topic, rec.Key, rec.Value, rec.Offset)
	}
	return nil
}

// topic returns what the driver knows of the topic named name.
func (d *Driver) topic(name string) *topic {
	if tp, ok := d.topics[name]; ok {
		return tp
	}
	tp := &topic{}
	if st := d.topo.SubTopologyOf(d.cfg.appID, name); st != nil {
		tp.task = d.tasks[st.ID]
	}
	if g, ok := d.topo.GlobalStoreOf(name); ok {
		tp.global = d.globals[g.Spec.Name].(state.Restorable)
	}
	for _, it := range d.topo.InternalTopics() {
		// Repartition topics are passed on, not kept; changelogs are kept
		// for tests to read.
		if it.Kind == topology.RepartitionTopic && it.Resolve(d.cfg.appID) == name {
			tp.internal = true
		}
	}
	d.topics[name] = tp
	return tp
}

// PipeRaw processes a record given as bytes, as read from topic. Use it to
// feed bytes no serde would write, such as a corrupt record. As in Kafka, the
// timestamp keeps millisecond precision.
func (d *Driver) PipeRaw(topic string, key, value []byte, ts time.Time, headers ...topology.Header) error {
	if d.closed {
		return errors.New("riffletest: driver is closed")
	}
	tp := d.topic(topic)
	if tp.global != nil {
		return d.pipeGlobal(tp, topic, key, value)
	}
	if tp.task == nil {
		return fmt.Errorf("riffletest: no source of the topology reads topic %q", topic)
	}
	d.queue = append(d.queue, topology.RawRecord{
		Topic: topic, Partition: 0, Offset: tp.offset,
		Key: key, Value: value, Timestamp: ts.Truncate(time.Millisecond), Headers: headers,
	})
	tp.offset++
	return d.drain()
}

// pipeGlobal applies a record of a global store's topic to the store, as the
// runtime's global consumer does: through Restore, which keeps the offset.
func (d *Driver) pipeGlobal(tp *topic, topic string, key, value []byte) error {
	off := tp.offset
	tp.offset++
	return d.applyGlobal(tp, topic, key, value, off)
}

// applyGlobal applies one record of a global store's topic to the store.
func (d *Driver) applyGlobal(tp *topic, topic string, key, value []byte, off int64) error {
	if key == nil {
		d.skippedDecode++
		d.cfg.logger.Warn("skipped a record with a null key for a global store", "topic", topic, "partition", 0, "offset", off)
		return nil
	}
	rec := []state.ChangelogRecord{{Key: clone(key), Value: clone(value)}}
	if err := tp.global.Restore(rec, off); err != nil {
		return fmt.Errorf("riffletest: global topic %q offset %d: %w", topic, off, err)
	}
	return nil
}

// drain processes the queued records, and those they cause, in order.
func (d *Driver) drain() error {
	if d.busy {
		return nil
	}
	d.busy = true
	defer func() {
		d.busy = false
		d.queue, d.head = d.queue[:0], 0
	}()
	for d.head < len(d.queue) {
		// Processed in place: records it causes are appended behind it,
		// and a slice that grows keeps this one's array alive meanwhile.
		rec := &d.queue[d.head]
		d.head++
		err := d.topics[rec.Topic].task.Process(rec)
		if err != nil {
			err = d.handle(rec, err)
		}
		*rec = topology.RawRecord{}
		if err != nil {
			return err
		}
	}
	return nil
}

// handle decides what a failed record does: a decode error goes to the
// handler, anything else fails the pipe.
func (d *Driver) handle(rec *topology.RawRecord, err error) error {
	var de *topology.DecodeError
	if !errors.As(err, &de) {
		return err
	}
	if herr := d.cfg.onDecodeError(de); herr != nil {
		return herr
	}
	d.skippedDecode++
	d.cfg.logger.Warn("skipped a record that could not be decoded",
		"topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "node", de.Node, "error", de.Err)
	if d.cfg.deadLetter != "" {
		return (*runtime)(d).Send(topology.DeadLetter(d.cfg.deadLetter, *rec, de))
	}
	return nil
}

// AdvanceWallClock moves the wall clock forward by by and fires the
// wall-clock punctuations that come due.
func (d *Driver) AdvanceWallClock(by time.Duration) error {
	if d.closed {
		return errors.New("riffletest: driver is closed")
	}
	if by < 0 {
		return fmt.Errorf("riffletest: cannot move the wall clock back by %v", by)
	}
	d.now = d.now.Add(by)
	d.busy = true
	var errs []error
	for _, t := range d.tasks {
		if err := t.PunctuateWallClock(d.now); err != nil {
			errs = append(errs, err)
		}
	}
	d.busy = false
	if err := errors.Join(errs...); err != nil {
		d.queue, d.head = d.queue[:0], 0
		return err
	}
	return d.drain()
}

// Commit does what the runtime does at a commit: it flushes every task's
// stores, so cached updates are written, logged and forwarded, and records
// their changelogs' offsets in them. Records that flow from it are
// processed; Commit repeats until nothing more is cached.
func (d *Driver) Commit() error {
	if d.closed {
		return errors.New("riffletest: driver is closed")
	}
	for range len(d.tasks) + 1 {
		d.busy = true
		var errs []error
		for _, t := range d.tasks {
			errs = append(errs, t.Flush(), d.checkpoint(t))
		}
		d.busy = false
		if err := errors.Join(errs...); err != nil {
			d.queue, d.head = d.queue[:0], 0
			return err
		}
		if len(d.queue) == d.head {
			return nil
		}
		if err := d.drain(); err != nil {
			return err
		}
	}
	return nil
}

// checkpoint records in each logged store of t the offset of the last
// record of its changelog.
func (d *Driver) checkpoint(t *topology.Task) error {
	for _, spec := range t.SubTopology().Stores {
		if !spec.Logged {
			continue
		}
		tp := d.topics[topology.ChangelogFor(spec.Name).Resolve(d.cfg.appID)]
		r, ok := t.Store(spec.Name).(state.Restorable)
		if tp == nil || tp.offset == 0 || !ok {
			continue
		}
		if err := r.Checkpoint(tp.offset - 1); err != nil {
			return fmt.Errorf("riffletest: checkpoint store %q: %w", spec.Name, err)
		}
	}
	return nil
}

// WallClock returns the driver's wall-clock time.
func (d *Driver) WallClock() time.Time { return d.now }

// SkippedRecords returns how many records were skipped: those that could not
// be decoded and that the decode-error handler let go, and those processors
// dropped (such as records with a null key for an aggregation). See Skipped
// for the latter by node and reason.
func (d *Driver) SkippedRecords() int64 {
	n := d.skippedDecode
	for _, t := range d.tasks {
		for _, c := range t.Skipped() {
			n += c
		}
	}
	return n
}

// Skipped returns how many records each node dropped, and why.
func (d *Driver) Skipped() map[topology.SkipKey]int64 {
	out := map[topology.SkipKey]int64{}
	for _, t := range d.tasks {
		for k, c := range t.Skipped() {
			out[k] += c
		}
	}
	return out
}

// store returns the store named name, global or of a task, or nil.
func (d *Driver) store(name string) state.Store {
	if s, ok := d.globals[name]; ok {
		return s
	}
	for _, t := range d.tasks {
		if s := t.Store(name); s != nil {
			return s
		}
	}
	return nil
}

// KeyValueStore returns the key-value store named name, to read: as code
// outside a topology may, it cannot write.
//
// The driver runs one task per sub-topology, so the one task that has the
// store holds all of it: the view shows every key.
func (d *Driver) KeyValueStore(name string) (state.ReadOnlyKeyValueStore, error) {
	s := d.store(name)
	if s == nil {
		return nil, fmt.Errorf("riffletest: the topology has no store %q", name)
	}
	kv, ok := s.(state.KeyValueStore)
	if !ok {
		return nil, fmt.Errorf("riffletest: store %q is a %T, not a key-value store", name, s)
	}
	return state.ReadOnly(kv), nil
}

// WindowStore returns the window store named name, to read: as code
// outside a topology may, it cannot write. A windowed aggregation's store
// is named after the operator, or by stream.Materialized; its keys are the
// aggregation's keys encoded by its key serde, and its values the
// aggregates encoded by its value serde (for sliding windows, after the
// 8-byte timestamp of the window's latest record). Windows are dropped
// once the store's retention is past, as on the App.
//
// As for [Driver.KeyValueStore], the one task that has the store holds all
// of it, so the view shows every key's windows. A session store is not a
// window store here: read it with [Driver.SessionStore].
func (d *Driver) WindowStore(name string) (state.ReadOnlyWindowStore, error) {
	s := d.store(name)
	if s == nil {
		return nil, fmt.Errorf("riffletest: the topology has no store %q", name)
	}
	ws, ok := s.(state.WindowStore)
	if !ok {
		return nil, fmt.Errorf("riffletest: store %q is a %T, not a window store", name, s)
	}
	return state.ReadOnlyWindow(ws), nil
}

// SessionStore returns the session store named name, to read: as code
// outside a topology may, it cannot write. A session aggregation's store
// is named after the operator, or by stream.Materialized; its keys are the
// aggregation's keys encoded by its key serde, and its values the
// aggregates encoded by its value serde. Sessions are dropped once the
// store's retention is past their end, as on the App.
//
// As for [Driver.KeyValueStore], the one task that has the store holds all
// of it, so the view shows every key's sessions.
func (d *Driver) SessionStore(name string) (state.ReadOnlySessionStore, error) {
	s := d.store(name)
	if s == nil {
		return nil, fmt.Errorf("riffletest: the topology has no store %q", name)
	}
	ss, ok := s.(state.SessionStore)
	if !ok {
		return nil, fmt.Errorf("riffletest: store %q is a %T, not a session store", name, s)
	}
	return state.ReadOnlySession(ss), nil
}

// ReadRaw returns, and removes, the oldest unread record written to topic.
// It reports false when there is none.
func (d *Driver) ReadRaw(topic string) (topology.RawRecord, bool) {
	tp := d.topics[topic]
	if tp == nil || tp.head == len(tp.out) {
		return topology.RawRecord{}, false
	}
	rec := tp.out[tp.head]
	tp.out[tp.head] = topology.RawRecord{}
	tp.head++
	if tp.head == len(tp.out) {
		tp.out, tp.head = tp.out[:0], 0
	}
	return rec, true
}

// Pending returns how many records written to topic are still unread.
func (d *Driver) Pending(topic string) int {
	tp := d.topics[topic]
	if tp == nil {
		return 0
	}
	return len(tp.out) - tp.head
}

// Close closes every task, its processors and its stores.
func (d *Driver) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	var errs []error
	for _, t := range d.tasks {
		errs = append(errs, t.Close())
	}
	for _, g := range d.topo.GlobalStores() {
		if s := d.globals[g.Spec.Name]; s != nil {
			errs = append(errs, s.Close())
		}
	}
	if d.env != nil {
		errs = append(errs, d.env.Close())
	}
	if d.tmpDir != "" {
		errs = append(errs, os.RemoveAll(d.tmpDir))
	}
	return errors.Join(errs...)
}
