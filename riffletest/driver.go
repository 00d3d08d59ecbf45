// Package riffletest runs a topology in-process, with no broker, for tests:
// the Riffle counterpart of Kafka Streams' TopologyTestDriver.
//
// A [Driver] runs the very processor code the runtime runs on Kafka, one
// record at a time and deterministically. Pipe records into input topics with
// an [InputTopic], read what reaches output topics with an [OutputTopic],
// move the wall clock with [Driver.AdvanceWallClock], and look inside stores
// with [Driver.Store].
//
// As in Kafka Streams' driver, every topic has one partition, so each
// sub-topology runs as one task. A record written to a topic that the
// topology reads (such as a repartition topic) is processed right after the
// record that caused it, in the order written.
package riffletest

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/topology"
)

// Driver runs a topology in-process. It is not safe for concurrent use.
type Driver struct {
	topo    *topology.Topology
	cfg     config
	now     time.Time
	tasks   []*topology.Task
	byTopic map[string]*topology.Task // resolved source topic -> task; nil entry: read by none
	offsets map[string]int64
	// internal holds the resolved names of the internal topics, whose
	// records are processed but not kept for reading.
	internal map[string]bool

	queue   []topology.RawRecord // records waiting to be processed
	head    int
	busy    bool
	outputs map[string]*outQueue
	skipped int64
	closed  bool
}

type outQueue struct {
	recs []topology.RawRecord
	head int
}

type config struct {
	appID         string
	start         time.Time
	logger        *slog.Logger
	onDecodeError func(*topology.DecodeError) error
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
	d := &Driver{
		topo:     topo,
		cfg:      cfg,
		now:      cfg.start,
		byTopic:  map[string]*topology.Task{},
		offsets:  map[string]int64{},
		outputs:  map[string]*outQueue{},
		internal: map[string]bool{},
	}
	for _, it := range topo.InternalTopics() {
		d.internal[it.Resolve(cfg.appID)] = true
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

func (r *runtime) OpenStore(_ topology.TaskID, spec state.Spec) (state.Store, error) {
	switch spec.Kind {
	case state.KindKeyValue:
		return state.NewInMemoryKeyValue(spec.Name), nil
	}
	return nil, fmt.Errorf("riffletest: store %q: kind %v is not supported", spec.Name, spec.Kind)
}

// Send captures a record a sink produced: it is kept for output topics and
// queued for processing if the topology reads its topic.
func (r *runtime) Send(rec topology.RawRecord) error {
	d := (*Driver)(r)
	rec.Partition = 0
	rec.Offset = d.nextOffset(rec.Topic)
	if d.taskFor(rec.Topic) != nil {
		d.queue = append(d.queue, rec)
	}
	if !d.internal[rec.Topic] {
		q := d.outputs[rec.Topic]
		if q == nil {
			q = &outQueue{}
			d.outputs[rec.Topic] = q
		}
		q.recs = append(q.recs, rec)
	}
	return nil
}

func (d *Driver) nextOffset(topic string) int64 {
	o := d.offsets[topic]
	d.offsets[topic] = o + 1
	return o
}

// taskFor returns the task that reads topic, or nil.
func (d *Driver) taskFor(topic string) *topology.Task {
	if t, ok := d.byTopic[topic]; ok {
		return t
	}
	var task *topology.Task
	if st := d.topo.SubTopologyOf(d.cfg.appID, topic); st != nil {
		task = d.tasks[st.ID]
	}
	d.byTopic[topic] = task
	return task
}

// PipeRaw processes a record given as bytes, as read from topic. Use it to
// feed bytes no serde would write, such as a corrupt record.
func (d *Driver) PipeRaw(topic string, key, value []byte, ts time.Time, headers ...topology.Header) error {
	if d.closed {
		return errors.New("riffletest: driver is closed")
	}
	if d.taskFor(topic) == nil {
		return fmt.Errorf("riffletest: no source of the topology reads topic %q", topic)
	}
	d.queue = append(d.queue, topology.RawRecord{
		Topic: topic, Partition: 0, Offset: d.nextOffset(topic),
		Key: key, Value: value, Timestamp: ts, Headers: headers,
	})
	return d.drain()
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
		rec := d.queue[d.head]
		d.queue[d.head] = topology.RawRecord{}
		d.head++
		if err := d.process(&rec); err != nil {
			return err
		}
	}
	return nil
}

func (d *Driver) process(rec *topology.RawRecord) error {
	err := d.taskFor(rec.Topic).Process(rec)
	var de *topology.DecodeError
	if err == nil || !errors.As(err, &de) {
		return err
	}
	if herr := d.cfg.onDecodeError(de); herr != nil {
		return herr
	}
	d.skipped++
	d.cfg.logger.Warn("skipped a record that could not be decoded",
		"topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "node", de.Node, "error", de.Err)
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

// WallClock returns the driver's wall-clock time.
func (d *Driver) WallClock() time.Time { return d.now }

// SkippedRecords returns how many records were skipped because they could
// not be decoded and the decode-error handler let them go.
func (d *Driver) SkippedRecords() int64 { return d.skipped }

// Store returns the store named name, or nil if the topology has none.
func (d *Driver) Store(name string) state.Store {
	for _, t := range d.tasks {
		if s := t.Store(name); s != nil {
			return s
		}
	}
	return nil
}

// KeyValueStore returns the key-value store named name.
func (d *Driver) KeyValueStore(name string) (state.KeyValueStore, error) {
	s := d.Store(name)
	if s == nil {
		return nil, fmt.Errorf("riffletest: the topology has no store %q", name)
	}
	kv, ok := s.(state.KeyValueStore)
	if !ok {
		return nil, fmt.Errorf("riffletest: store %q is a %T, not a key-value store", name, s)
	}
	return kv, nil
}

// ReadRaw returns, and removes, the oldest unread record written to topic.
// It reports false when there is none.
func (d *Driver) ReadRaw(topic string) (topology.RawRecord, bool) {
	q := d.outputs[topic]
	if q == nil || q.head == len(q.recs) {
		return topology.RawRecord{}, false
	}
	rec := q.recs[q.head]
	q.recs[q.head] = topology.RawRecord{}
	q.head++
	if q.head == len(q.recs) {
		q.recs, q.head = q.recs[:0], 0
	}
	return rec, true
}

// Pending returns how many records written to topic are still unread.
func (d *Driver) Pending(topic string) int {
	q := d.outputs[topic]
	if q == nil {
		return 0
	}
	return len(q.recs) - q.head
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
	return errors.Join(errs...)
}
