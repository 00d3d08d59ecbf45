package main

// The warm-up measurement: how long processing pauses when an instance
// joins and a stateful task with a big store is to move to it, with and
// without warm-up copies (KIP-441), against a rebalance that moves a task
// with a small store.
//
// Each variant runs from scratch, on topics and an application id of its
// own:
//
//  1. Instance A runs alone and counts K distinct keys of a topic of two
//     partitions, so each of its two tasks holds about K/2 keys and each
//     changelog partition about K/2 records. The bench waits until A has
//     committed the end of its input.
//  2. A steady load starts: records of random existing keys, timestamped
//     when they are sent, at a fixed rate; a consumer tails the output and
//     takes each record's latency (received - timestamp).
//  3. After the baseline period, instance B starts with a fresh state
//     directory. The balance gives it one of the two tasks. The bench polls
//     the instances' Metadata until B runs a task, and lets the load go on
//     a few seconds more.
//
// The latencies of records sent before B starts (the baseline) and of
// those sent from B's start to the end (the join window) are compared:
// maximum and 99th percentile.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/riffle-streams/riffle"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/stream"
	"github.com/riffle-streams/riffle/topology"
)

var (
	warmupKeys      = flag.Int("warmup-keys", 1_000_000, "warmup: distinct keys instance A counts before B joins (the big store)")
	warmupSmallKeys = flag.Int("warmup-small-keys", 1000, "warmup: distinct keys of the normal-rebalance variant (the small store)")
	warmupRate      = flag.Int("warmup-rate", 2000, "warmup: records/s of the steady load")
	warmupBaseline  = flag.Duration("warmup-baseline", 10*time.Second, "warmup: steady load measured before B starts (the baseline)")
	warmupAfter     = flag.Duration("warmup-after", 5*time.Second, "warmup: load measured after B runs a task")
	warmupTimeout   = flag.Duration("warmup-timeout", 15*time.Minute, "warmup: bound on each variant, from topic creation to close")
	warmupMoveLimit = flag.Duration("warmup-move-timeout", 3*time.Minute, "warmup: how long to wait for B to run a task before reporting that it never did")
	warmupCommit    = flag.Duration("warmup-commit", 500*time.Millisecond, "warmup: the instances' commit interval")
	warmupHeartbeat = flag.Duration("warmup-heartbeat", 0, "warmup: the instances' group heartbeat interval (kgo.HeartbeatInterval through riffle.KafkaOptions); 0 leaves the App's default, 1s")
	warmupLogLevel  = flag.String("warmup-log", "warn", "warmup: level of the instances' logs on stderr: debug, info, warn or error")
	warmupVariants  = flag.String("warmup-variants", "nowarmup,warmup,small", "warmup: variants to run, comma-separated: nowarmup, warmup, small, small-warmup")
)

const (
	warmupPartitions = 2
	// warmupSettle is the load's first seconds, left out of the baseline:
	// the tail consumer and the producer connect and warm up.
	warmupSettle = 3 * time.Second
	// warmupDrain bounds the wait, once the load stops, for the output of
	// records sent in the join window.
	warmupDrain = time.Minute
	// warmupStop bounds the wait for an App's Run to return after its
	// context ends.
	warmupStop = time.Minute
)

// warmupLevel is the level of the instances' logs (-warmup-log).
var warmupLevel slog.Level

// warmupVariant is one way of running the join.
type warmupVariant struct {
	name  string
	label string
	keys  int
	// warmups is MaxWarmupReplicas for both instances; -1 leaves the
	// default.
	warmups int
}

func warmupVariantsFor(names string) ([]warmupVariant, error) {
	all := []warmupVariant{
		{"nowarmup", "no warm-up (MaxWarmupReplicas(0))", *warmupKeys, 0},
		{"warmup", "warm-up (defaults)", *warmupKeys, -1},
		{"small", "normal rebalance: small store, MaxWarmupReplicas(0)", *warmupSmallKeys, 0},
		{"small-warmup", "normal rebalance: small store, warm-up (defaults)", *warmupSmallKeys, -1},
	}
	var out []warmupVariant
	for _, n := range strings.Split(names, ",") {
		n = strings.TrimSpace(n)
		i := slices.IndexFunc(all, func(v warmupVariant) bool { return v.name == n })
		if i < 0 {
			return nil, fmt.Errorf("-warmup-variants: unknown variant %q; choose among nowarmup, warmup, small, small-warmup", n)
		}
		out = append(out, all[i])
	}
	return out, nil
}

// warmupResult is what one variant measured.
type warmupResult struct {
	v            warmupVariant
	fill         time.Duration // A counting the keys, from its start
	moved        bool          // B ran a task
	toRun        time.Duration // from B's start until it ran a task (or gave up)
	window       time.Duration // the join window: B's start to the load's end
	restored     int64         // RestoreEnd totals of B
	restoreSpans []string      // B's RestoreStart ranges
	base, join   latencies
	// joinByPart is the join window's slowest record per output partition
	// (the partition's task).
	joinByPart map[int32]sample
	bStart     time.Time
	missing    int64 // records sent in the window whose output never came
	timeline   []string
	// behind is how far B's copy of the task it runs was behind its
	// changelogs when Metadata first showed it (0 if never seen); paused is
	// how long that task ran nowhere, as Metadata showed it.
	behind int64
	paused time.Duration
	// perSecond is the maximum latency of the records sent in each second
	// from the baseline's start; bSecond is the second B started in.
	perSecond []time.Duration
	bSecond   int
}

type latencies struct {
	n        int
	max, p99 time.Duration
}

func latencyStats(ls []time.Duration) latencies {
	if len(ls) == 0 {
		return latencies{}
	}
	slices.Sort(ls)
	i := (len(ls)*99+99)/100 - 1 // the smallest that 99% are at or below
	return latencies{n: len(ls), max: ls[len(ls)-1], p99: ls[i]}
}

// warmupJoins runs the variants of the warm-up measurement in turn and
// prints their table.
func warmupJoins(ctx context.Context, c config, cl *kgo.Client, adm *kadm.Client) error {
	variants, err := warmupVariantsFor(*warmupVariants)
	if err != nil {
		return err
	}
	if *warmupKeys <= 0 || *warmupSmallKeys <= 0 || *warmupRate <= 0 || *warmupBaseline <= 0 || *warmupAfter <= 0 {
		return errors.New("-warmup-keys, -warmup-small-keys, -warmup-rate, -warmup-baseline and -warmup-after must be positive")
	}
	if err := warmupLevel.UnmarshalText([]byte(*warmupLogLevel)); err != nil {
		return fmt.Errorf("-warmup-log: %w", err)
	}
	goroutines := ownGoroutines()
	var results []warmupResult
	for _, v := range variants {
		fmt.Printf("warm-up, %s: %d keys, load %d records/s...\n", v.label, v.keys, *warmupRate)
		vctx, cancel := context.WithTimeout(ctx, *warmupTimeout)
		start := time.Now()
		r, err := warmupRun(vctx, c, cl, adm, v)
		cancel()
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) && time.Since(start) >= *warmupTimeout {
				err = fmt.Errorf("%w (the variant took longer than -warmup-timeout %v)", err, *warmupTimeout)
			}
			return fmt.Errorf("%s: %w", v.name, err)
		}
		results = append(results, r)
		warmupDetails(r, time.Since(start))
	}
	checkGoroutines(goroutines)

	ms := func(d time.Duration) string { return fmt.Sprintf("%.0f", float64(d)/float64(time.Millisecond)) }
	x := func(num, den time.Duration) string {
		if den <= 0 {
			return ""
		}
		return fmt.Sprintf("%.1f×", float64(num)/float64(den))
	}
	fmt.Println()
	hb := "the App's default heartbeat (1s)"
	if *warmupHeartbeat > 0 {
		hb = fmt.Sprintf("heartbeat every %v", *warmupHeartbeat)
	}
	fmt.Printf("Warm-up: instance B joins instance A, which runs 2 stateful tasks; load %d records/s; commit every %v; %s; latency = output received - input sent.\n", *warmupRate, *warmupCommit, hb)
	fmt.Println()
	fmt.Println("| variant | keys | B's copy first behind by (records) | B restored (RestoreListener, records) | B runs a task after (s) | task ran nowhere (s) | steady max / p99 (ms) | join window max / p99 (ms) | max vs steady | p99 vs steady |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range results {
		run := fmt.Sprintf("%.2f", r.toRun.Seconds())
		if !r.moved {
			run = fmt.Sprintf("never (gave up after %.0f)", r.toRun.Seconds())
		}
		joinMax := ms(r.join.max)
		if r.missing > 0 {
			joinMax = "≥ " + joinMax
		}
		fmt.Printf("| %s | %d | %d | %d | %s | %.2f | %s / %s | %s / %s | %s | %s |\n", r.v.label, r.v.keys, r.behind, r.restored, run, r.paused.Seconds(),
			ms(r.base.max), ms(r.base.p99), joinMax, ms(r.join.p99), x(r.join.max, r.base.max), x(r.join.p99, r.base.p99))
	}
	return nil
}

// warmupDetails prints what one variant saw, beyond the table.
func warmupDetails(r warmupResult, took time.Duration) {
	fmt.Printf("  A counted %d keys in %.1fs; the variant took %.1fs in all.\n", r.v.keys, r.fill.Seconds(), took.Seconds())
	fmt.Printf("  baseline: %d records, max %v, p99 %v; join window (%.1fs): %d records, max %v, p99 %v\n",
		r.base.n, r.base.max.Round(time.Millisecond), r.base.p99.Round(time.Millisecond),
		r.window.Seconds(), r.join.n, r.join.max.Round(time.Millisecond), r.join.p99.Round(time.Millisecond))
	var parts []string
	for p, s := range r.joinByPart {
		parts = append(parts, fmt.Sprintf("partition %d: %v (sent at +%.2fs, received at +%.2fs)", p, s.lat.Round(time.Millisecond),
			s.sent.Sub(r.bStart).Seconds(), s.sent.Add(s.lat).Sub(r.bStart).Seconds()))
	}
	sort.Strings(parts)
	fmt.Printf("  B started at %s; join window max by output partition (= task): %s\n", r.bStart.UTC().Format("15:04:05.000"), strings.Join(parts, ", "))
	var secs []string
	for i, d := range r.perSecond {
		if i == r.bSecond {
			secs = append(secs, "|")
		}
		secs = append(secs, fmt.Sprintf("%.0f", float64(d)/float64(time.Millisecond)))
	}
	fmt.Printf("  max latency (ms) of the records sent in each second, B starting at |: %s\n", strings.Join(secs, " "))
	if r.behind > 0 {
		fmt.Printf("  B's copy of its task was %d records behind when first seen; the task ran nowhere for %v\n", r.behind, r.paused.Round(time.Millisecond))
	}
	if len(r.restoreSpans) > 0 {
		fmt.Printf("  B restored %d changelog records: %s\n", r.restored, strings.Join(r.restoreSpans, ", "))
	} else {
		fmt.Println("  B restored nothing (no RestoreStart)")
	}
	if r.missing > 0 {
		fmt.Printf("  WARNING: %d records sent in the join window had no output within %v of the load's end: the max is a lower bound\n", r.missing, warmupDrain)
	}
	if !r.moved {
		fmt.Printf("  WARNING: B ran no task within %v\n", r.toRun.Round(time.Second))
	}
	fmt.Println("  tasks by instance, from B's start (polled Metadata):")
	for _, l := range r.timeline {
		fmt.Println("    " + l)
	}
}

// checkGoroutines reports goroutines left over by the variants, once the
// clients' background goroutines have had time to end.
func checkGoroutines(before int) {
	deadline := time.Now().Add(5 * time.Second)
	for ownGoroutines() > before && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := ownGoroutines(); n > before {
		fmt.Fprintf(os.Stderr, "riffle-bench: warm-up: %d goroutines before, %d after (the embedded broker's not counted); the goroutines:\n", before, n)
		_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
	}
}

// ownGoroutines counts the goroutines but those of the embedded broker,
// which serve the connections of the clients that outlive the measurement.
func ownGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.TrimSpace(g) != "" && !strings.Contains(g, "/pkg/kfake.") {
			count++
		}
	}
	return count
}

// warmupTopology counts the records of in by key and writes each count to
// out.
func warmupTopology(in, out string) (*topology.Topology, error) {
	b := topology.NewBuilder()
	counts := stream.From[string, string](b, in).GroupByKey().Count(stream.Named("counts"))
	stream.ToStream(counts).To(out, stream.WithValueSerde(serde.Int64()))
	return b.Build()
}

func warmupKey(i int) []byte { return fmt.Appendf(nil, "k%07d", i) }

// warmupRun runs one variant from scratch.
func warmupRun(ctx context.Context, c config, cl *kgo.Client, adm *kadm.Client, v warmupVariant) (res warmupResult, err error) {
	res.v = v
	// phase names what the variant was doing, for an error.
	phase := "create the topics"
	defer func() {
		if err != nil {
			err = fmt.Errorf("%s: %w", phase, err)
		}
	}()
	appID := fmt.Sprintf("bench-warm-%s-%s", v.name, time.Now().Format("150405"))
	in, out := appID+"-in", appID+"-out"
	for _, t := range []string{in, out} {
		if err := createTopic(ctx, adm, t, warmupPartitions, nil); err != nil {
			return res, err
		}
	}
	defer func() {
		// The topics go, so that runs do not add up on the broker.
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, derr := adm.DeleteTopics(dctx, in, out, appID+"-counts-changelog"); derr != nil {
			fmt.Fprintf(os.Stderr, "riffle-bench: warm-up: delete the topics of %s: %v\n", appID, derr)
		}
	}()

	fmt.Printf("  producing %d keys to %s...\n", v.keys, in)
	phase = "produce the keys"
	if err := produce(ctx, cl, in, v.keys, 8, warmupKey, nil); err != nil {
		return res, err
	}

	opts := []riffle.Option{riffle.ApplicationID(appID), riffle.BootstrapServers(c.brokers...),
		riffle.CommitInterval(*warmupCommit), riffle.ServeQueries("127.0.0.1:0")}
	if *warmupHeartbeat > 0 {
		opts = append(opts, riffle.KafkaOptions(kgo.HeartbeatInterval(*warmupHeartbeat)))
	}
	if v.warmups >= 0 {
		opts = append(opts, riffle.MaxWarmupReplicas(v.warmups))
	}
	phase = "instance A counts the keys"
	a, err := startBenchApp(ctx, "A", in, out, opts)
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, a.stop()) }()

	// A counts every key and commits the end of its input.
	if err := waitCaughtUp(ctx, adm, appID, in, a); err != nil {
		return res, err
	}
	res.fill = time.Since(a.started)
	fmt.Printf("  A has counted %d keys in %.1fs\n", v.keys, res.fill.Seconds())

	// The steady load, and the tail of the output.
	phase = "steady load before B joins"
	t, err := startTail(ctx, c, adm, out)
	if err != nil {
		return res, err
	}
	defer t.close()
	l, err := startLoad(ctx, c, in, v.keys, *warmupRate)
	if err != nil {
		return res, err
	}
	defer l.close()
	if err := a.sleep(ctx, warmupSettle+*warmupBaseline, l, t); err != nil {
		return res, err
	}

	// B joins.
	fmt.Println("  B joins")
	phase = "wait for B to run a task"
	rl := &restoreTotals{}
	b, err := startBenchApp(ctx, "B", in, out, append(opts, riffle.OnRestore(rl)))
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, b.stop()) }()
	bStart := b.started
	tl := &taskTimeline{start: bStart, names: map[string]string{}, last: map[string]string{}}
	giveUp := time.Now().Add(*warmupMoveLimit)
	for !res.moved && time.Now().Before(giveUp) {
		if err := a.sleep(ctx, 25*time.Millisecond, l, t, b); err != nil {
			return res, err
		}
		md, merr := selfMetadata(ctx, a, b)
		if merr != nil {
			tl.add(fmt.Sprintf("Metadata failed: %v", merr))
			continue
		}
		tl.names[a.app.QueryAddress()], tl.names[b.app.QueryAddress()] = "A", "B"
		res.moved = tl.observe(md, b.app.QueryAddress())
	}
	res.toRun = time.Since(bStart)
	phase = "load after B runs a task"
	if res.moved {
		fmt.Printf("  B runs a task after %.2fs\n", res.toRun.Seconds())
		if err := a.sleep(ctx, *warmupAfter, l, t, b); err != nil {
			return res, err
		}
	} else {
		fmt.Printf("  B ran no task within %v\n", *warmupMoveLimit)
	}
	// One last look at the tasks, then the end of the window.
	if md, merr := selfMetadata(ctx, a, b); merr == nil {
		tl.observe(md, b.app.QueryAddress())
	}
	phase = "stop the load"
	sent, err := l.stopAndFlush(ctx)
	end := time.Now()
	res.window = end.Sub(bStart)
	if err != nil {
		return res, err
	}
	phase = "read the output of the load"
	// Every record sent makes one output record: wait for them all.
	drain := time.Now().Add(warmupDrain)
	for t.received.Load() < sent && time.Now().Before(drain) {
		if err := a.sleep(ctx, 20*time.Millisecond, nil, t, b); err != nil {
			return res, err
		}
	}
	samples := t.stop()
	if err := t.err(); err != nil {
		return res, fmt.Errorf("%s: %w", out, err)
	}
	phase = "close"
	res.missing = max(sent-int64(len(samples)), 0)

	var base, join []time.Duration
	res.joinByPart = map[int32]sample{}
	res.bStart = bStart
	from := bStart.Add(-*warmupBaseline)
	res.bSecond = int(bStart.Sub(from) / time.Second)
	res.perSecond = make([]time.Duration, int(end.Sub(from)/time.Second)+1)
	for _, s := range samples {
		if i := int(s.sent.Sub(from) / time.Second); !s.sent.Before(from) && i < len(res.perSecond) {
			res.perSecond[i] = max(res.perSecond[i], s.lat)
		}
		switch {
		case !s.sent.Before(bStart.Add(-*warmupBaseline)) && s.sent.Before(bStart):
			base = append(base, s.lat)
		case !s.sent.Before(bStart):
			join = append(join, s.lat)
			if s.lat > res.joinByPart[s.part].lat {
				res.joinByPart[s.part] = s
			}
		}
	}
	res.base, res.join = latencyStats(base), latencyStats(join)
	res.restored, res.restoreSpans = rl.totals()
	res.timeline = tl.lines
	res.behind, res.paused = tl.moved()
	return res, nil
}

// selfMetadata asks each App what it holds: each one's answer about
// itself, which it knows first hand, rather than one's view of the others,
// which it has only once its assignment names them.
func selfMetadata(ctx context.Context, apps ...*benchApp) ([]riffle.InstanceMetadata, error) {
	var out []riffle.InstanceMetadata
	for _, x := range apps {
		mctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		md, err := x.app.Metadata(mctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("instance %s: %w", x.name, err)
		}
		for _, inst := range md {
			if inst.Host == x.app.QueryAddress() {
				out = append(out, inst)
			}
		}
	}
	return out, nil
}

// benchApp is an App running in a goroutine.
type benchApp struct {
	name    string
	app     *riffle.App
	dir     string
	cancel  context.CancelFunc
	done    chan error
	started time.Time
	exited  error // Run's error, once it has returned
	stopped bool
}

func startBenchApp(ctx context.Context, name, in, out string, opts []riffle.Option) (*benchApp, error) {
	topo, err := warmupTopology(in, out)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "riffle-bench-warmup-")
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: warmupLevel})).With("instance", name)
	app, err := riffle.New(topo, append(slices.Clone(opts), riffle.StateDir(dir), riffle.Logger(log))...)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("instance %s: %w", name, err)
	}
	rctx, cancel := context.WithCancel(ctx)
	ba := &benchApp{name: name, app: app, dir: dir, cancel: cancel, done: make(chan error, 1), started: time.Now()}
	go func() { ba.done <- app.Run(rctx) }()
	return ba, nil
}

// check returns an error if the App has stopped.
func (ba *benchApp) check() error {
	if ba.stopped {
		return fmt.Errorf("instance %s stopped early: %v", ba.name, ba.exited)
	}
	select {
	case err := <-ba.done:
		ba.stopped, ba.exited = true, err
		if err == nil {
			err = errors.New("Run returned nil")
		}
		return fmt.Errorf("instance %s stopped early: %w", ba.name, err)
	default:
		return nil
	}
}

// stop ends the App and waits for Run to return, then removes its state.
func (ba *benchApp) stop() error {
	ba.cancel()
	var err error
	if !ba.stopped {
		select {
		case err = <-ba.done:
			ba.stopped, ba.exited = true, err
		case <-time.After(warmupStop):
			return fmt.Errorf("instance %s: Run did not return within %v of its context ending (state %s)", ba.name, warmupStop, ba.app.State())
		}
	}
	os.RemoveAll(ba.dir)
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("instance %s: %w", ba.name, err)
	}
	return nil
}

// sleep waits for d, failing if ctx ends or an App, the load or the tail
// stops early. Nil ones are not watched.
func (ba *benchApp) sleep(ctx context.Context, d time.Duration, l *load, t *tail, others ...*benchApp) error {
	deadline := time.Now().Add(d)
	for {
		for _, x := range append([]*benchApp{ba}, others...) {
			if err := x.check(); err != nil {
				return err
			}
		}
		if l != nil {
			if err := l.err(); err != nil {
				return fmt.Errorf("the load: %w", err)
			}
		}
		if t != nil {
			if err := t.err(); err != nil {
				return fmt.Errorf("the tail of the output: %w", err)
			}
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(left, 100*time.Millisecond)):
		}
	}
}

// waitCaughtUp waits until group has committed the end of every partition
// of topic.
func waitCaughtUp(ctx context.Context, adm *kadm.Client, group, topic string, a *benchApp) error {
	var why string
	for {
		committed, err := adm.FetchOffsets(ctx, group)
		if err == nil {
			var ends kadm.ListedOffsets
			if ends, err = adm.ListEndOffsets(ctx, topic); err == nil {
				why = ""
				ends.Each(func(e kadm.ListedOffset) {
					c, ok := committed.Lookup(e.Topic, e.Partition)
					if e.Offset > 0 && (!ok || c.At != e.Offset) {
						why += fmt.Sprintf(" %s[%d] committed %d of %d;", e.Topic, e.Partition, c.At, e.Offset)
					}
				})
				if why == "" && a.app.State() == riffle.Running {
					return nil
				}
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("instance A did not catch up (%s%v): %w", why, err, ctx.Err())
		}
		if err := a.sleep(ctx, 100*time.Millisecond, nil, nil); err != nil {
			return err
		}
	}
}

// load produces records of random existing keys at a steady rate, each
// timestamped when it is sent.
type load struct {
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}
	sent   atomic.Int64
	failed atomic.Pointer[error]
	closed bool
}

func startLoad(ctx context.Context, c config, topic string, keys, rate int) (*load, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers...), kgo.ProducerLinger(0), kgo.DefaultProduceTopic(topic))
	if err != nil {
		return nil, err
	}
	lctx, cancel := context.WithCancel(ctx)
	l := &load{cl: cl, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		start := time.Now()
		var n int64
		value := []byte("v")
		for {
			select {
			case <-lctx.Done():
				return
			case now := <-tick.C:
				for want := int64(now.Sub(start).Seconds() * float64(rate)); n < want; n++ {
					// The context of the variant, not of the loop, so that
					// records in flight when the load stops are delivered.
					cl.Produce(ctx, &kgo.Record{Key: warmupKey(rand.IntN(keys)), Value: value, Timestamp: time.Now()}, func(_ *kgo.Record, err error) {
						if err != nil {
							l.failed.CompareAndSwap(nil, &err)
						}
					})
					l.sent.Add(1)
				}
			}
		}
	}()
	return l, nil
}

func (l *load) err() error {
	if p := l.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// stopAndFlush stops the load and waits until every record sent is
// acknowledged; it returns how many were sent.
func (l *load) stopAndFlush(ctx context.Context) (int64, error) {
	l.cancel()
	<-l.done
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := l.cl.Flush(fctx); err != nil {
		return 0, err
	}
	return l.sent.Load(), l.err()
}

func (l *load) close() {
	if l.closed {
		return
	}
	l.closed = true
	l.cancel()
	<-l.done
	l.cl.Close()
}

// tail reads the output from its end as of the start, and keeps each
// record's latency.
type tail struct {
	cl       *kgo.Client
	cancel   context.CancelFunc
	done     chan struct{}
	received atomic.Int64
	failed   atomic.Pointer[error]
	mu       sync.Mutex
	samples  []sample
	closed   bool
}

type sample struct {
	sent time.Time // the record's timestamp
	lat  time.Duration
	part int32
}

func startTail(ctx context.Context, c config, adm *kadm.Client, topic string) (*tail, error) {
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("list the ends of %s: %w", topic, err)
	}
	from := map[int32]kgo.Offset{}
	ends.Each(func(e kadm.ListedOffset) { from[e.Partition] = kgo.NewOffset().At(e.Offset) })
	if len(from) != warmupPartitions {
		return nil, fmt.Errorf("%s: ends of %d partitions listed, want %d", topic, len(from), warmupPartitions)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}),
		kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		return nil, err
	}
	tctx, cancel := context.WithCancel(ctx)
	t := &tail{cl: cl, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(t.done)
		for {
			fs := cl.PollFetches(tctx)
			if fs.IsClientClosed() || tctx.Err() != nil {
				return
			}
			now := time.Now()
			fs.EachError(func(tp string, p int32, err error) {
				if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
					err = fmt.Errorf("%s[%d]: %w", tp, p, err)
					t.failed.CompareAndSwap(nil, &err)
				}
			})
			t.mu.Lock()
			fs.EachRecord(func(r *kgo.Record) {
				t.samples = append(t.samples, sample{sent: r.Timestamp, lat: now.Sub(r.Timestamp), part: r.Partition})
			})
			n := len(t.samples)
			t.mu.Unlock()
			t.received.Store(int64(n))
		}
	}()
	return t, nil
}

func (t *tail) err() error {
	if p := t.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// stop stops reading and returns the samples.
func (t *tail) stop() []sample {
	t.cancel()
	<-t.done
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.samples
}

func (t *tail) close() {
	if t.closed {
		return
	}
	t.closed = true
	t.cancel()
	<-t.done
	t.cl.Close()
}

// restoreTotals adds up what B restores.
type restoreTotals struct {
	mu    sync.Mutex
	total int64
	spans []string
}

func (r *restoreTotals) RestoreStart(task, store string, from, to int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.spans = append(r.spans, fmt.Sprintf("%s/%s [%d, %d)", task, store, from, to))
}

func (r *restoreTotals) RestoreBatch(string, string, int64, int) {}

func (r *restoreTotals) RestoreEnd(_, _ string, total int64, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total += total
}

func (r *restoreTotals) totals() (int64, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total, slices.Clone(r.spans)
}

// taskTimeline keeps the changes of the instances' tasks as Metadata tells
// them.
type taskTimeline struct {
	start time.Time
	names map[string]string // host -> A or B
	last  map[string]string // "A 0_1" -> state
	lines []string
	// By task: when another instance than B was last seen running it, when
	// B was first, and how far behind B's copy first was.
	othersRan, bRan map[string]time.Time
	behind          map[string]int64
}

// moved returns, for the task B runs, how far behind B's copy of it first
// was, and how long it ran nowhere. If B runs none, behind is that of a
// copy B holds.
func (tl *taskTimeline) moved() (behind int64, paused time.Duration) {
	for _, b := range tl.behind {
		behind = b
	}
	for task, at := range tl.bRan {
		behind = tl.behind[task]
		if prev, ok := tl.othersRan[task]; ok && prev.Before(at) {
			paused = at.Sub(prev)
		}
	}
	return behind, paused
}

func (tl *taskTimeline) add(s string) {
	line := fmt.Sprintf("+%6.2fs %s", time.Since(tl.start).Seconds(), s)
	if n := len(tl.lines); n > 0 && strings.HasSuffix(tl.lines[n-1], s) {
		return // the same failure again
	}
	tl.lines = append(tl.lines, line)
}

// observe records the changes in md, and reports whether self runs a
// task.
func (tl *taskTimeline) observe(md []riffle.InstanceMetadata, self string) bool {
	running := false
	now := map[string]string{}
	at := time.Now()
	if tl.othersRan == nil {
		tl.othersRan, tl.bRan, tl.behind = map[string]time.Time{}, map[string]time.Time{}, map[string]int64{}
	}
	for _, inst := range md {
		name := tl.names[inst.Host]
		if name == "" {
			name = inst.Host
		}
		if inst.Error != "" {
			now[name+" error"] = inst.Error
		}
		for _, tk := range inst.Tasks {
			st := string(tk.State)
			if tk.State != "RUNNING" {
				st += fmt.Sprintf(" (lag %d)", tk.Lag)
			}
			now[name+" "+tk.Task] = st
			switch {
			case inst.Host != self && tk.State == "RUNNING":
				tl.othersRan[tk.Task] = at
			case tk.State == "RUNNING":
				running = true
				if _, ok := tl.bRan[tk.Task]; !ok {
					tl.bRan[tk.Task] = at
				}
			case inst.Host == self:
				if _, ok := tl.behind[tk.Task]; !ok {
					tl.behind[tk.Task] = tk.Lag
				}
			}
		}
	}
	var keys []string
	for k := range now {
		keys = append(keys, k)
	}
	for k := range tl.last {
		if _, ok := now[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var changes []string
	for _, k := range keys {
		was, is := tl.last[k], now[k]
		if stateOf(was) == stateOf(is) {
			continue
		}
		switch {
		case is == "":
			changes = append(changes, k+": gone")
		default:
			changes = append(changes, k+": "+is)
		}
	}
	if len(changes) > 0 {
		tl.add(strings.Join(changes, "; "))
	}
	tl.last = now
	return running
}

// stateOf is a task's state without its lag, so that a lag that moves is
// not a change.
func stateOf(s string) string {
	if i := strings.Index(s, " (lag"); i >= 0 {
		return s[:i]
	}
	return s
}
