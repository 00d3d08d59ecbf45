// Package riffle runs a topology on Kafka: the App.
//
// An App runs the tasks of a built topology.Topology in one consumer group.
// More capacity means starting more copies of the same program: Riffle's
// own group balancer spreads the tasks (a sub-topology and a partition)
// among them, keeping co-partitioned topics together and tasks where they
// are. Each task's stores are logged to changelog topics and restored from
// them when the task starts, wherever that is.
//
//	app, err := riffle.New(topo,
//		riffle.ApplicationID("wordcount"),
//		riffle.BootstrapServers("localhost:9092"))
//	if err != nil { ... }
//	err = app.Run(ctx) // until ctx ends, then a graceful close
//
// Processing is at-least-once: an input offset is committed only after
// every record it caused, output and changelog, has been acknowledged by the
// brokers and the stores have been flushed.
//
// For a run with no Kafka installed, [StartEmbeddedBroker] starts franz-go's
// in-process fake broker.
package riffle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/riffle-streams/riffle/internal/assign"
	"github.com/riffle-streams/riffle/internal/query"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/topology"
)

// State is the state of an App, as in Kafka Streams.
type State int32

const (
	// Created is the state of an App not yet running.
	Created State = iota
	// Rebalancing is the state while the group hands out tasks and new
	// tasks restore their stores.
	Rebalancing
	// Running is the state while the App processes its tasks.
	Running
	// PendingShutdown is the state while the App closes gracefully.
	PendingShutdown
	// NotRunning is the state of an App that has closed.
	NotRunning
	// Error is the state of an App stopped by an error.
	Error
)

// String returns the state's name.
func (s State) String() string {
	switch s {
	case Created:
		return "CREATED"
	case Rebalancing:
		return "REBALANCING"
	case Running:
		return "RUNNING"
	case PendingShutdown:
		return "PENDING_SHUTDOWN"
	case NotRunning:
		return "NOT_RUNNING"
	case Error:
		return "ERROR"
	}
	return fmt.Sprintf("State(%d)", int32(s))
}

// App runs a topology on Kafka. Make one with New, run it with Run.
type App struct {
	topo  *topology.Topology
	cfg   config
	log   *slog.Logger
	state atomic.Int32
	ran   atomic.Bool

	env        *state.Env
	globals    *globals    // the global stores, if any
	cl         *kgo.Client // set under mu: see start
	clientMade func()      // a test's: called between the client's making and a.cl's setting
	adm        *kadm.Client
	partitions map[string]int32 // of every topic read or written, resolved
	changelogs map[string]bool  // resolved changelog topics

	// mu guards the tasks: the loop holds it while it processes and
	// commits, the rebalance callbacks while they hand tasks out or in.
	mu         sync.Mutex
	tasks      map[topology.TaskID]*task
	subs       map[string]*topology.SubTopology // by topic read; see subOf
	lastCommit time.Time
	loopCtx    context.Context // Run's: ends polling and restoring
	// ioCtx carries produces and commits. The user's context does not
	// cancel it, so a graceful close can flush and commit what is in
	// hand; shutdown cancels it last.
	ioCtx    context.Context
	ioCancel context.CancelFunc

	fatal atomic.Pointer[error] // set by a produce that must stop the App
	// A commit's last step runs in the background (commitInBackground);
	// committing is set while it does, and commit waits for it.
	commitWG   sync.WaitGroup
	committing atomic.Bool
	ackMu      sync.Mutex
	acked      map[string]map[int32]int64 // changelog topic -> partition -> last acked offset
	// The promises of produced records, made once: a method value or a
	// closure made per record would allocate per record.
	sentPromise, loggedPromise func(*kgo.Record, error)

	taskOffsets atomic.Pointer[map[string]int64] // published at each commit for the balancer
	// offMu guards closedOffsets: the offsets of closed tasks' persistent
	// stores, by task, for the balancer.
	offMu         sync.Mutex
	closedOffsets map[string]int64

	upd *updater // keeps standby copies and restores assigned tasks
	// assignment is this member's latest assignment; assignChanged is set
	// when a new one comes, for the loop to open and close standby copies.
	assignment    atomic.Pointer[assign.Assignment]
	assignChanged atomic.Bool
	handover      *replica // the restored stores of the task promote starts; under mu
	// closing are the tasks closing in the background, under mu; closeWG
	// counts them.
	closing map[topology.TaskID]chan struct{}
	closeWG sync.WaitGroup

	// Queries: local is what this instance holds, published under mu.
	local       atomic.Pointer[map[topology.TaskID]*localCopy]
	stores      atomic.Pointer[map[string]query.StoreInfo] // queryable, once topics are known
	qmu         sync.RWMutex
	advertised  string // guarded by qmu
	server      *http.Server
	httpClient  *http.Client
	skipped     atomic.Int64
	closedSkips int64 // skipped by processors of tasks since closed; under mu
}

// New checks the configuration and returns an App for topo. Nothing touches
// Kafka until Run.
func New(topo *topology.Topology, opts ...Option) (*App, error) {
	if topo == nil {
		return nil, errors.New("riffle: topology is nil")
	}
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	a := &App{
		topo:  topo,
		cfg:   cfg,
		log:   cfg.logger.With("app", cfg.appID),
		tasks: map[topology.TaskID]*task{},
		subs:  map[string]*topology.SubTopology{},
		acked: map[string]map[int32]int64{},

		closedOffsets: map[string]int64{},
		closing:       map[topology.TaskID]chan struct{}{},
		httpClient:    &http.Client{Timeout: 30 * time.Second},
	}
	a.sentPromise, a.loggedPromise = a.sent, a.logged
	return a, nil
}

// State returns the App's current state.
func (a *App) State() State { return State(a.state.Load()) }

func (a *App) setState(s State) {
	old := State(a.state.Swap(int32(s)))
	if old == s {
		return
	}
	a.log.Info("state changed", "from", old, "to", s)
	if a.cfg.stateListener != nil {
		a.cfg.stateListener(old, s)
	}
}

// SkippedRecords returns how many records the App skipped: records that
// could not be decoded or produced under a Skip or DeadLetter policy, and
// records processors dropped (such as ones with a null key for an
// aggregation).
func (a *App) SkippedRecords() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := a.skipped.Load()
	for _, t := range a.tasks {
		for _, c := range t.t.Skipped() {
			n += c
		}
	}
	return n + a.closedSkips
}

// Run runs the App until ctx ends, then closes it gracefully: it stops
// polling, finishes the records in hand, flushes the producer and the
// stores, commits, and leaves the group. It returns the error that stopped
// the App, if any; a graceful close after ctx ends returns nil.
func (a *App) Run(ctx context.Context) (err error) {
	if !a.ran.CompareAndSwap(false, true) {
		return errors.New("riffle: Run may be called once")
	}
	defer func() {
		if err != nil {
			a.log.Error("stopped by an error", "err", err)
			a.setState(Error)
		} else {
			a.setState(NotRunning)
		}
	}()
	a.loopCtx = ctx
	a.ioCtx, a.ioCancel = context.WithCancel(context.WithoutCancel(ctx))
	defer a.ioCancel()
	if err := a.start(ctx); err != nil {
		if ctx.Err() != nil {
			return a.shutdown() // stopped while starting: a graceful stop
		}
		return errors.Join(err, a.shutdown())
	}
	loopErr := a.loop(ctx)
	return errors.Join(loopErr, a.shutdown())
}

// loop polls and processes until ctx ends or an error stops it.
func (a *App) loop(ctx context.Context) error {
	a.lastCommit = time.Now()
	for ctx.Err() == nil {
		if err := a.fatalErr(); err != nil {
			return err
		}
		pollCtx, cancel := context.WithTimeout(ctx, a.cfg.pollTimeout)
		fetches := a.cl.PollRecords(pollCtx, 4096)
		cancel()
		if fetches.IsClientClosed() {
			return nil
		}
		var fetchErr error
		fetches.EachError(func(t string, p int32, err error) {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return
			}
			a.log.Warn("fetch failed", "topic", t, "partition", p, "err", err)
			if fetchErr == nil && isFatalFetch(err) {
				fetchErr = fmt.Errorf("riffle: fetch %s[%d]: %w", t, p, err)
			}
		})
		if fetchErr != nil {
			return fetchErr
		}
		a.mu.Lock()
		err := a.process(fetches)
		if err == nil {
			err = a.promote()
		}
		if a.assignChanged.Swap(false) {
			a.reconcileStandbys(ctx)
		}
		if err == nil && time.Since(a.lastCommit) >= a.cfg.commitInterval {
			err = a.commitInBackground()
		}
		if err == nil {
			err = a.punctuate()
		}
		a.mu.Unlock()
		a.cl.AllowRebalance()
		if err != nil {
			return err
		}
	}
	return nil
}

// isFatalFetch reports whether a fetch error cannot be retried.
func isFatalFetch(err error) bool {
	var ke interface{ IsRetriable() bool }
	return errors.As(err, &ke) && !ke.IsRetriable()
}

func (a *App) fatalErr() error {
	if p := a.fatal.Load(); p != nil {
		return *p
	}
	return nil
}

func (a *App) setFatal(err error) { a.fatal.CompareAndSwap(nil, &err) }

// shutdown commits and closes every task, leaves the group and closes what
// start opened. It is safe after a failed start.
func (a *App) shutdown() error {
	a.setState(PendingShutdown)
	var errs []error
	ctx, cancel := context.WithTimeout(a.ioCtx, 30*time.Second)
	defer cancel()
	a.mu.Lock()
	if a.cl != nil && a.fatalErr() == nil {
		errs = append(errs, a.commit(ctx, nil))
	}
	for id := range a.tasks {
		errs = append(errs, a.closeTask(id))
	}
	a.mu.Unlock()
	a.closeWG.Wait() // tasks revoked earlier, closing in the background
	if a.cl != nil {
		a.cl.Close() // leaves the group
	}
	if a.upd != nil {
		errs = append(errs, a.upd.close())
	}
	errs = append(errs, a.stopQueries())
	errs = append(errs, a.stopGlobals())
	if a.adm != nil {
		a.adm.Close()
	}
	if a.env != nil {
		errs = append(errs, a.env.Close())
	}
	return errors.Join(errs...)
}
