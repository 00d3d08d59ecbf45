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
	topics  map[string]*topic    // by resolved name
	queue   []topology.RawRecord // records waiting to be processed
	head    int
	busy    bool
	skipped int64
	closed  bool
}

// topic is what the driver knows of one topic (of one partition).
type topic struct {
	task     *topology.Task // the task that reads it, or nil
	internal bool           // records are processed, not kept for reading
	offset   int64          // of the next record
	out      []topology.RawRecord
	head     int // first unread record of out
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
		topo:   topo,
		cfg:    cfg,
		now:    cfg.start,
		topics: map[string]*topic{},
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
	for _, it := range d.topo.InternalTopics() {
		if it.Resolve(d.cfg.appID) == name {
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
	return errors.Join(errs...)
}
