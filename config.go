package riffle

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Option configures an App. Names follow Kafka Streams' configs where one
// exists.
type Option func(*config)

type config struct {
	appID             string
	brokers           []string
	stateDir          string
	commitInterval    time.Duration
	replicationFactor int
	kafkaOpts         []kgo.Opt
	logger            *slog.Logger
	memoryBudget      int64
	caching           bool
	onDecodeError     ErrorPolicy
	onProduceError    ErrorPolicy
	stateListener     func(old, new State)
	restoreListener   RestoreListener
	pollTimeout       time.Duration
	maxTaskIdle       time.Duration
	instanceID        string
	standbys          int
	acceptableLag     int64
	maxWarmups        int
	queryAddr         string
	advertisedAddr    string
}

func defaultConfig() config {
	return config{
		stateDir:          filepath.Join(os.TempDir(), "riffle-streams"),
		commitInterval:    30 * time.Second,
		replicationFactor: -1,
		logger:            slog.Default(),
		onDecodeError:     Fail(),
		onProduceError:    Fail(),
		pollTimeout:       100 * time.Millisecond,
		maxTaskIdle:       time.Second,
		acceptableLag:     10_000,
		maxWarmups:        2,
	}
}

// ApplicationID sets the application id (Kafka Streams' application.id): the
// consumer group, and the prefix of internal topics and the state directory.
// It is required.
func ApplicationID(id string) Option { return func(c *config) { c.appID = id } }

// BootstrapServers sets the brokers to connect to (bootstrap.servers). It is
// required; for a run with no Kafka installed, start an EmbeddedBroker and
// pass its Addrs.
func BootstrapServers(addrs ...string) Option {
	return func(c *config) { c.brokers = append(c.brokers, addrs...) }
}

// StateDir sets the directory persistent stores live in (state.dir), under
// "<dir>/<application id>/<task>/<store>". The default is
// "<os.TempDir()>/riffle-streams".
func StateDir(dir string) Option { return func(c *config) { c.stateDir = dir } }

// CommitInterval sets how often progress is committed (commit.interval.ms).
// The default is 30s, as in Kafka Streams with at-least-once.
func CommitInterval(d time.Duration) Option { return func(c *config) { c.commitInterval = d } }

// MaxTaskIdle sets how long a task that reads several partitions (a join,
// a merge of topics) waits, with records in hand, for a partition that may
// hold older records before it processes the others anyway
// (max.task.idle.ms). A task processes its records in timestamp order
// across its partitions, and waits only while a partition is known to hold
// records it has not fetched yet, or is not known at all. The default is
// one second; zero never waits for a partition whose position is unknown.
func MaxTaskIdle(d time.Duration) Option { return func(c *config) { c.maxTaskIdle = d } }

// InstanceID makes the instance a static member of the application's
// group (group.instance.id), with id, which must be unique among the
// application's instances and the same across restarts of one (a host
// name, a pod name). A static member that stops does not leave the group:
// its tasks wait for it, unassigned, until the group's session timeout
// (kgo.SessionTimeout through KafkaOptions; 45s by default), and an
// instance that restarts within it gets them back without a rebalance, so
// the other instances go on undisturbed. One that does not come back in
// time has its tasks moved, as if it had died.
func InstanceID(id string) Option { return func(c *config) { c.instanceID = id } }

// StandbyReplicas sets how many standby copies of each task with logged
// stores the application keeps (num.standby.replicas), each on an instance
// other than the one running the task and kept up to date from the
// changelogs. When an instance dies, its tasks go where a copy is and only
// the tail of the changelogs is restored. The default is none.
func StandbyReplicas(n int) Option { return func(c *config) { c.standbys = n } }

// AcceptableRecoveryLag sets how many changelog records an instance's copy
// of a task's stores may be behind and still count as caught up
// (acceptable.recovery.lag): a task is not moved to an instance further
// behind while another has it caught up; the new instance warms up a copy
// first. The default is 10,000.
func AcceptableRecoveryLag(records int64) Option {
	return func(c *config) { c.acceptableLag = records }
}

// MaxWarmupReplicas sets how many warm-up copies the application holds at
// once (max.warmup.replicas): copies an instance catches up on before it
// takes over tasks, so adding an instance never makes one wait on a full
// restore. When a copy has caught up, its instance asks for the rebalance
// that moves the task. Zero moves tasks at once; the default is 2.
func MaxWarmupReplicas(n int) Option { return func(c *config) { c.maxWarmups = n } }

// ReplicationFactor sets the replication factor of the internal topics
// Riffle creates (replication.factor). The default, -1, takes the broker's.
func ReplicationFactor(n int) Option { return func(c *config) { c.replicationFactor = n } }

// KafkaOptions passes options to the franz-go client, for TLS, SASL and the
// rest. Riffle sets the seed brokers, group, balancer, partitioner and
// commit options itself.
func KafkaOptions(opts ...kgo.Opt) Option {
	return func(c *config) { c.kafkaOpts = append(c.kafkaOpts, opts...) }
}

// Logger sets the logger. The default is slog.Default().
func Logger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// MemoryBudget sets the bytes all stores of the process share: Pebble's
// block cache and write buffers, and the record caches (see state.Env).
func MemoryBudget(bytes int64) Option { return func(c *config) { c.memoryBudget = bytes } }

// Caching puts a record cache in front of the stores that allow one, so
// consecutive updates to a key are written, logged and forwarded once per
// commit. It is off by default: every update is emitted.
func Caching() Option { return func(c *config) { c.caching = true } }

// OnDecodeError sets what happens to a record a source cannot decode: Fail
// (the default) stops the App, Skip logs and counts it and goes on,
// DeadLetter also writes it to a topic.
func OnDecodeError(p ErrorPolicy) Option { return func(c *config) { c.onDecodeError = p } }

// OnProduceError sets what happens when a record cannot be written: Fail
// (the default) stops the App, Skip logs and counts it and goes on.
func OnProduceError(p ErrorPolicy) Option { return func(c *config) { c.onProduceError = p } }

// StateListener is called on every change of the App's State.
func StateListener(fn func(old, new State)) Option { return func(c *config) { c.stateListener = fn } }

// OnRestore sets a listener told of the progress of restoring stores.
func OnRestore(l RestoreListener) Option { return func(c *config) { c.restoreListener = l } }

// RestoreListener is told how restoring a task's store from its changelog
// goes. Stores are restored in the background while the App processes its
// other tasks: the methods are called from the App's goroutines, possibly
// at the same time, and must not block for long.
type RestoreListener interface {
	// RestoreStart is called before a store is restored, with the range of
	// changelog offsets to read.
	RestoreStart(task, store string, from, to int64)
	// RestoreBatch is called after each batch is applied.
	RestoreBatch(task, store string, lastOffset int64, records int)
	// RestoreEnd is called when the store has caught up.
	RestoreEnd(task, store string, total int64, took time.Duration)
}

// ErrorPolicy says what to do with a record that failed.
type ErrorPolicy struct {
	action     action
	deadLetter string
}

type action int

const (
	failAction action = iota + 1
	skipAction
	deadLetterAction
)

// Fail stops the App with the error.
func Fail() ErrorPolicy { return ErrorPolicy{action: failAction} }

// Skip logs the record with its topic, partition and offset, counts it and
// goes on.
func Skip() ErrorPolicy { return ErrorPolicy{action: skipAction} }

// DeadLetter writes the record, as it was read, to topic, with the error and
// its origin in headers (riffle.error, riffle.topic, riffle.partition,
// riffle.offset), counts it and goes on.
func DeadLetter(topic string) ErrorPolicy {
	return ErrorPolicy{action: deadLetterAction, deadLetter: topic}
}

func (c *config) validate() error {
	var errs []error
	if c.appID == "" {
		errs = append(errs, errors.New("riffle: the application id is required (riffle.ApplicationID)"))
	} else if err := validName(c.appID); err != nil {
		errs = append(errs, fmt.Errorf("riffle: application id: %w", err))
	}
	if len(c.brokers) == 0 {
		errs = append(errs, errors.New("riffle: no bootstrap servers: pass riffle.BootstrapServers, or start a riffle.EmbeddedBroker for a run without Kafka"))
	}
	if c.instanceID != "" {
		if err := validName(c.instanceID); err != nil {
			errs = append(errs, fmt.Errorf("riffle: instance id: %w", err))
		}
	}
	if c.standbys < 0 {
		errs = append(errs, fmt.Errorf("riffle: StandbyReplicas(%d) is negative", c.standbys))
	}
	if c.acceptableLag < 0 {
		errs = append(errs, fmt.Errorf("riffle: AcceptableRecoveryLag(%d) is negative", c.acceptableLag))
	}
	if c.maxWarmups < 0 {
		errs = append(errs, fmt.Errorf("riffle: MaxWarmupReplicas(%d) is negative", c.maxWarmups))
	}
	if c.maxTaskIdle < 0 {
		errs = append(errs, fmt.Errorf("riffle: MaxTaskIdle(%v) is negative", c.maxTaskIdle))
	}
	if c.commitInterval <= 0 {
		errs = append(errs, fmt.Errorf("riffle: commit interval %v must be positive", c.commitInterval))
	}
	if c.replicationFactor == 0 || c.replicationFactor < -1 {
		errs = append(errs, fmt.Errorf("riffle: replication factor %d must be positive, or -1 for the broker's", c.replicationFactor))
	}
	if c.onDecodeError.action == 0 || c.onProduceError.action == 0 {
		errs = append(errs, errors.New("riffle: error policies must be made with Fail, Skip or DeadLetter"))
	}
	if c.onProduceError.action == deadLetterAction {
		errs = append(errs, errors.New("riffle: OnProduceError cannot send to a dead-letter topic: a record that cannot be written there either would be lost; use Fail or Skip"))
	}
	if c.onDecodeError.action == deadLetterAction && c.onDecodeError.deadLetter == "" {
		errs = append(errs, errors.New("riffle: DeadLetter needs a topic"))
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	return errors.Join(errs...)
}

// validName reports whether s can prefix Kafka topic names.
func validName(s string) error {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%q may hold only ASCII letters, digits, '.', '_' and '-'", s)
		}
	}
	return nil
}
