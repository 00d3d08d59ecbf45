package riffle_test

// Integration tests of emit-final windowed aggregations on a broker: a fresh
// embedded broker per test (franz-go's kfake), or the real cluster named by
// RIFFLE_BROKERS. Emit-final promises that each window's final result is
// emitted once, when the window closes, and that this holds across a
// graceful restart and across rebalances: no final is lost, none is emitted
// twice.
//
// The tests count records per key in tumbling windows of 10s with 2s of
// grace. Every record is produced to an explicit partition with an explicit
// event time, and stream time is per task (here: per partition), so the
// finals each partition must emit are computed exactly from what was
// produced, by finalsModel. Each partition gets its own keys and goes
// through the windows in time order, with a record in the grace period of
// the window just ended and late records (for windows already emitted, some
// of them emitted by an earlier instance) along the way.
//
// Topics, groups and application ids carry a per-run suffix, so runs on a
// shared cluster do not meet. Nothing sleeps to synchronise: every wait
// polls a condition until a deadline (itest.Timeout).

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/riffle-streams/riffle"
	"github.com/riffle-streams/riffle/internal/itest"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/stream"
	"github.com/riffle-streams/riffle/topology"
)

const (
	efPartitions = 3
	efKeys       = 3 // per partition
	efSize       = 10 * time.Second
	efGrace      = 2 * time.Second
	efStore      = "counts"
	efCommit     = 200 * time.Millisecond
)

// efWindow is a window of a key; Start is in ms from the test's base time.
type efWindow struct {
	Key   string
	Start int64
}

func (w efWindow) String() string {
	return fmt.Sprintf("%s@[%ds,%ds)", w.Key, w.Start/1000, (w.Start+efSize.Milliseconds())/1000)
}

// efEvent is a record to produce: its partition, key and event time (ms
// from the base time).
type efEvent struct {
	Part int32
	Key  string
	At   int64
}

func efKey(p int32, j int) string { return fmt.Sprintf("p%d-%c", p, 'a'+j) }

// efPhase returns the records of a phase: first, if lateFor >= 0, one record
// per partition in the middle of window lateFor; then, window by window in
// time order and interleaved over the partitions, 1 to 3 records of each
// key (how many depends on the partition, key and window), and after the
// first records of a window one record at half a second before its start:
// in the grace period of the window before, unless that one is closed.
func efPhase(lateFor int, windows ...int) []efEvent {
	var out []efEvent
	size := efSize.Milliseconds()
	if lateFor >= 0 {
		for p := int32(0); p < efPartitions; p++ {
			out = append(out, efEvent{p, efKey(p, 0), int64(lateFor)*size + 5_000})
		}
	}
	for _, w := range windows {
		for i := 0; i < 3; i++ {
			for p := int32(0); p < efPartitions; p++ {
				for j := 0; j < efKeys; j++ {
					if n := 1 + (int(p)+j+w)%3; i < n {
						out = append(out, efEvent{p, efKey(p, j), int64(w)*size + 1_000 + int64(i)*2_000 + int64(j)*100 + int64(p)*10})
					}
				}
			}
			if i == 0 && w > 0 {
				for p := int32(0); p < efPartitions; p++ {
					out = append(out, efEvent{p, efKey(p, efKeys-1), int64(w)*size - 500})
				}
			}
		}
	}
	return out
}

// finalsModel computes what an emit-final count must emit, from the records
// in the order each partition holds them: per partition, stream time is the
// largest event time so far and windows ending at or before stream time
// minus grace are closed (emitted); a record all of whose windows are closed
// is late and not counted. (The App's stream time starts again after a
// restart, but what it emitted up to is kept, so closing is as if stream
// time had carried on.)
type finalsModel struct {
	streamTime map[int32]int64
	counts     map[efWindow]int64
	part       map[string]int32
	late       int // records dropped as late
	inGrace    int // records counted after their window ended
}

func newFinalsModel() *finalsModel {
	return &finalsModel{streamTime: map[int32]int64{}, counts: map[efWindow]int64{}, part: map[string]int32{}}
}

func (m *finalsModel) apply(evs []efEvent) {
	size, grace := efSize.Milliseconds(), efGrace.Milliseconds()
	for _, e := range evs {
		if st, ok := m.streamTime[e.Part]; !ok || e.At > st {
			m.streamTime[e.Part] = e.At
		}
		m.part[e.Key] = e.Part
		start := e.At / size * size
		if start+size <= m.streamTime[e.Part]-grace {
			m.late++
			continue
		}
		if start+size <= m.streamTime[e.Part] {
			m.inGrace++
		}
		m.counts[efWindow{e.Key, start}]++
	}
}

// closed returns the final count of every window closed so far.
func (m *finalsModel) closed() map[efWindow]int64 {
	size, grace := efSize.Milliseconds(), efGrace.Milliseconds()
	out := map[efWindow]int64{}
	for w, n := range m.counts {
		if w.Start+size <= m.streamTime[m.part[w.Key]]-grace {
			out[w] = n
		}
	}
	return out
}

// open returns the windows with records that have not closed.
func (m *finalsModel) open() []efWindow {
	c := m.closed()
	var out []efWindow
	for w := range m.counts {
		if _, ok := c[w]; !ok {
			out = append(out, w)
		}
	}
	sortWindows(out)
	return out
}

func sortWindows(ws []efWindow) {
	sort.Slice(ws, func(i, j int) bool {
		if ws[i].Start != ws[j].Start {
			return ws[i].Start < ws[j].Start
		}
		return ws[i].Key < ws[j].Key
	})
}

// ---- the cluster, the App, producing and reading ----

// efRig is one test's topics, App id and base time.
type efRig struct {
	k       *itest.Kafka
	appID   string
	in, out string
	base    int64 // ms since the epoch: event time 0
	prod    *kgo.Client
}

func setupEmitFinal(t *testing.T, name string) *efRig {
	t.Helper()
	run := fmt.Sprint(time.Now().UnixNano())
	r := &efRig{appID: name + "-" + run, in: name + "-in-" + run, out: name + "-out-" + run}
	r.k = itest.Setup(t, itest.Spec{
		Partitions: efPartitions,
		Topics:     []string{r.in, r.out},
		Delete:     []string{r.appID + "-" + efStore + "-changelog", r.appID + "-" + efStore + "-emitted-changelog"},
		Groups:     []string{r.appID},
	})
	// Event times an hour back, on a minute: windows align, and a real
	// broker's retention (by timestamp) keeps every record.
	r.base = (time.Now().Add(-time.Hour).UnixMilli() / 60_000) * 60_000
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.k.Brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	r.prod = cl
	where := "a fresh embedded broker (kfake)"
	if r.k.Real {
		where = "Kafka at " + strings.Join(r.k.Brokers, ",")
	}
	t.Logf("broker: %s; app %s reads %s and writes %s, %d partitions each", where, r.appID, r.in, r.out, efPartitions)
	return r
}

func (r *efRig) record(e efEvent) *kgo.Record {
	return &kgo.Record{Topic: r.in, Partition: e.Part, Key: []byte(e.Key), Value: []byte("e"), Timestamp: time.UnixMilli(r.base + e.At)}
}

// produce writes evs, in order within each partition, and waits for the
// acknowledgements.
func (r *efRig) produce(t *testing.T, evs []efEvent) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), itest.Timeout())
	defer cancel()
	recs := make([]*kgo.Record, len(evs))
	for i, e := range evs {
		recs[i] = r.record(e)
	}
	if err := r.prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce to %s: %v", r.in, err)
	}
}

// producePaced writes evs one at a time, a record every 10ms, in the
// background, waiting before record gateAt until gate is closed; it counts
// in n what it has produced and sends its result on the returned channel.
func (r *efRig) producePaced(t *testing.T, evs []efEvent, gateAt int, gate <-chan struct{}, n *atomic.Int64) <-chan error {
	done := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*itest.Timeout())
	t.Cleanup(cancel)
	go func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i, e := range evs {
			if i == gateAt {
				select {
				case <-gate:
				case <-ctx.Done():
					done <- ctx.Err()
					return
				}
			}
			if err := r.prod.ProduceSync(ctx, r.record(e)).FirstErr(); err != nil {
				done <- fmt.Errorf("produce to %s: %w", r.in, err)
				return
			}
			n.Add(1)
			select {
			case <-tick.C:
			case <-ctx.Done():
				done <- ctx.Err()
				return
			}
		}
		done <- nil
	}()
	return done
}

func efTopology(t *testing.T, in, out string) *topology.Topology {
	t.Helper()
	w := stream.Tumbling(efSize, efGrace)
	b := topology.NewBuilder()
	counts := stream.From[string, string](b, in).GroupByKey().WindowedBy(w).
		Count(stream.Named(efStore), stream.EmitFinal())
	stream.ToStream(counts).To(out, stream.WithKeySerde(stream.WindowedSerde(serde.String(), efSize)))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// efInstance is one App of the count, with recorders of what it did.
type efInstance struct {
	*itest.Running
	log      *itest.LogRecorder
	restores *itest.RestoreRecorder
	states   *itest.StateRecorder
}

func (r *efRig) start(t *testing.T, name, stateDir string) *efInstance {
	t.Helper()
	in := &efInstance{log: itest.NewLogRecorder(slog.LevelInfo), restores: &itest.RestoreRecorder{}, states: &itest.StateRecorder{}}
	in.log.DumpOnFailure(t, name, slog.LevelInfo)
	app, err := riffle.New(efTopology(t, r.in, r.out),
		riffle.ApplicationID(r.appID),
		riffle.BootstrapServers(r.k.Brokers...),
		riffle.StateDir(stateDir),
		riffle.CommitInterval(efCommit),
		riffle.Logger(in.log.Logger()),
		riffle.StateListener(in.states.Listener()),
		riffle.OnRestore(in.restores),
		// Members learn of a rebalance within half a second.
		riffle.KafkaOptions(kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(500*time.Millisecond)))
	if err != nil {
		t.Fatal(err)
	}
	in.Running = itest.Run(t, name, app)
	return in
}

// stop closes the instance gracefully: Run must return nil, the states end
// PENDING_SHUTDOWN, NOT_RUNNING.
func (in *efInstance) stop(t *testing.T) {
	t.Helper()
	if err := in.Stop(itest.Timeout()); err != nil {
		t.Fatalf("%s: graceful stop: Run returned %v, want nil (states %v)", in.Name, err, in.states.History())
	}
	h := in.states.History()
	if n := len(h); n < 2 || h[n-2] != riffle.PendingShutdown || h[n-1] != riffle.NotRunning {
		t.Fatalf("%s: states of a graceful stop: %v, want them to end PENDING_SHUTDOWN, NOT_RUNNING", in.Name, h)
	}
}

// tasks returns the tasks the instance has open, from its log, sorted.
func (in *efInstance) tasks() []string { return in.log.OpenTasks() }

// restoredEmitted returns the records restored into the emitted-up-to store.
func (in *efInstance) restoredEmitted() int64 {
	var n int64
	for _, e := range in.restores.Ends() {
		if e.Store == efStore+"-emitted" {
			n += e.Total
		}
	}
	return n
}

// efFinal is one record of the output topic.
type efFinal struct {
	W         efWindow
	Count     int64
	Partition int32
	Offset    int64
	Timestamp time.Time
}

func (f efFinal) String() string {
	return fmt.Sprintf("%v=%d (out[%d]@%d)", f.W, f.Count, f.Partition, f.Offset)
}

func (r *efRig) decode(t *testing.T, rec *kgo.Record) efFinal {
	t.Helper()
	w, err := stream.WindowedSerde(serde.String(), efSize).Decode(rec.Key)
	if err != nil {
		t.Fatalf("output key at %s[%d]@%d: %v", rec.Topic, rec.Partition, rec.Offset, err)
	}
	n, err := serde.Int64().Decode(rec.Value)
	if err != nil {
		t.Fatalf("output value at %s[%d]@%d: %v", rec.Topic, rec.Partition, rec.Offset, err)
	}
	return efFinal{W: efWindow{w.Key, w.Start.UnixMilli() - r.base}, Count: n, Partition: rec.Partition, Offset: rec.Offset, Timestamp: rec.Timestamp}
}

// finalsTail follows the output topic from its start and keeps every
// record.
type finalsTail struct {
	cl  *kgo.Client
	got []efFinal
}

func (r *efRig) tail(t *testing.T) *finalsTail {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.k.Brokers...), kgo.ConsumeTopics(r.out), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &finalsTail{cl: cl}
}

// waitFor reads the output until it holds a final of every window of want,
// failing the test if one of want has a wrong count or appears twice, or
// if timeout passes. It returns how long it took.
func (ft *finalsTail) waitFor(t *testing.T, r *efRig, want map[efWindow]int64, what string) time.Duration {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), itest.Timeout())
	defer cancel()
	for {
		seen := map[efWindow]int{}
		for _, f := range ft.got {
			seen[f.W]++
			if n, ok := want[f.W]; ok && (f.Count != n || seen[f.W] > 1) {
				t.Fatalf("%s: final %v, but window %v should be emitted once with count %d (output so far: %v)", what, f, f.W, n, ft.got)
			}
		}
		var missing []efWindow
		for w := range want {
			if seen[w] == 0 {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 {
			return time.Since(start)
		}
		sortWindows(missing)
		f := ft.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("waiting %v for %s: %d of %d finals still missing: %v (output so far: %v)", itest.Timeout(), what, len(missing), len(want), missing, ft.got)
		}
		f.EachError(func(tp string, p int32, err error) { t.Logf("fetch %s[%d]: %v", tp, p, err) })
		f.EachRecord(func(rec *kgo.Record) { ft.got = append(ft.got, r.decode(t, rec)) })
	}
}

// waitCaughtUp waits until the group has committed the end of the input:
// every record produced so far is processed and all it caused written.
func (r *efRig) waitCaughtUp(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), itest.Timeout())
	defer cancel()
	itest.Eventually(t, itest.Timeout(), "the group to commit the end of "+r.in, func() (bool, string) {
		ok, why, err := r.k.CaughtUp(ctx, r.appID, r.in)
		if err != nil {
			return false, err.Error()
		}
		return ok, why
	})
}

// checkExactlyOnce reads the whole output topic and checks that it holds
// one final of every window of want, with its count, and nothing else.
func (r *efRig) checkExactlyOnce(t *testing.T, want map[efWindow]int64, what string) []efFinal {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), itest.Timeout())
	defer cancel()
	recs, err := r.k.ReadAll(ctx, r.out)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]efFinal, 0, len(recs))
	byWindow := map[efWindow][]efFinal{}
	for _, rec := range recs {
		f := r.decode(t, rec)
		got = append(got, f)
		byWindow[f.W] = append(byWindow[f.W], f)
	}
	var problems []string
	size := efSize.Milliseconds()
	for w, fs := range byWindow {
		n, ok := want[w]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("window %v was emitted but is not closed or has no records: %v", w, fs))
		case len(fs) > 1:
			problems = append(problems, fmt.Sprintf("window %v was emitted %d times: %v", w, len(fs), fs))
		}
		for _, f := range fs {
			if ok && f.Count != n {
				problems = append(problems, fmt.Sprintf("window %v: final count %d, want %d (%v)", w, f.Count, n, f))
			}
			if wantTS := r.base + w.Start + size - 1; f.Timestamp.UnixMilli() != wantTS {
				problems = append(problems, fmt.Sprintf("window %v: final timestamped %d, want its last instant %d", w, f.Timestamp.UnixMilli(), wantTS))
			}
		}
	}
	for w, n := range want {
		if len(byWindow[w]) == 0 {
			problems = append(problems, fmt.Sprintf("window %v (count %d) was never emitted", w, n))
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		t.Fatalf("%s: %s holds %d records, want exactly %d finals:\n  %s", what, r.out, len(got), len(want), strings.Join(problems, "\n  "))
	}
	return got
}

func sumCounts(m map[efWindow]int64) int64 {
	var n int64
	for _, c := range m {
		n += c
	}
	return n
}

// ---- the tests ----

// TestEmitFinalSurvivesRestart runs an emit-final windowed count, closes
// some windows, stops the App gracefully with other windows open (counts
// in their stores), starts a new App with the same id, on the same state
// directory or on a fresh one (so both stores are restored from their
// changelogs), produces late records for windows the first App emitted,
// more records for the open windows and records that close them, and checks
// that every window's final is in the output exactly once with its exact
// count.
func TestEmitFinalSurvivesRestart(t *testing.T) {
	t.Run("SameStateDir", func(t *testing.T) { testEmitFinalRestart(t, false) })
	t.Run("FreshStateDir", func(t *testing.T) { testEmitFinalRestart(t, true) })
}

func testEmitFinalRestart(t *testing.T, fresh bool) {
	r := setupEmitFinal(t, "ef-restart")
	m := newFinalsModel()
	tail := r.tail(t)
	began := time.Now()

	// Run 1: windows 0 to 2; 0 and 1 close, 2 stays open; then a late
	// record for window 0.
	p1 := append(efPhase(-1, 0, 1, 2), efPhase(0)...)
	m.apply(p1)
	want1 := m.closed()
	open1 := m.open()
	if len(want1) != 2*efPartitions*efKeys || m.late != efPartitions || m.inGrace == 0 || len(open1) != efPartitions*efKeys {
		t.Fatalf("phase 1 is not what the test means: %d finals, %d late, %d in grace, open %v", len(want1), m.late, m.inGrace, open1)
	}
	stateDir := t.TempDir()
	run1 := r.start(t, "run 1", stateDir)
	run1.WaitState(t, itest.Timeout(), riffle.Running)
	r.produce(t, p1)
	took := tail.waitFor(t, r, want1, "run 1's finals of windows 0 and 1")
	r.waitCaughtUp(t)
	r.checkExactlyOnce(t, want1, "after run 1 caught up")
	t.Logf("checked: run 1 emitted the %d finals of windows 0 and 1 (%d records counted, %d late, %d in grace) %v after producing, exactly once each; windows still open: %v",
		len(want1), sumCounts(want1), m.late, m.inGrace, took.Round(time.Millisecond), open1)
	tasks1 := run1.tasks()
	run1.stop(t)
	t.Logf("run 1 stopped gracefully with tasks %v", tasks1)

	dir2 := stateDir
	if fresh {
		dir2 = t.TempDir()
	}
	run2 := r.start(t, "run 2", dir2)
	run2.WaitState(t, itest.Timeout(), riffle.Running)
	// Run 2: a late record for window 1, emitted by run 1 (run 2's stream
	// time starts again, below window 1's close); window 2 gets more
	// records on top of run 1's; windows 3 and 4; 2 and 3 close.
	late := m.late
	p2 := efPhase(1, 2, 3, 4)
	m.apply(p2)
	want := m.closed()
	if len(want) != 4*efPartitions*efKeys || m.late-late < 2*efPartitions {
		t.Fatalf("phase 2 is not what the test means: %d finals, %d late", len(want), m.late-late)
	}
	r.produce(t, p2)
	took = tail.waitFor(t, r, want, "the finals of windows 0 to 3")
	r.waitCaughtUp(t)
	run2.stop(t)
	got := r.checkExactlyOnce(t, want, "after run 2")
	t.Logf("checked: after the restart (%s) the output held exactly one final of each of the %d closed windows, with its exact count (%d records counted, %d late of which %d after the restart), and nothing else: %d records; run 2's finals came %v after producing; open windows %v; whole test %v",
		map[bool]string{false: "same state directory", true: "fresh state directory"}[fresh],
		len(want), sumCounts(want), m.late, m.late-late, len(got), took.Round(time.Millisecond), m.open(), time.Since(began).Round(time.Millisecond))

	if fresh {
		if n := run2.restoredEmitted(); n == 0 {
			t.Fatalf("run 2 on a fresh state directory restored no record of the %s-emitted store (restores %v): the test did not exercise a restore", efStore, run2.restores.Starts())
		}
		t.Logf("run 2 restored %d records in all, %d of them into %s-emitted", run2.restores.Total(), run2.restoredEmitted(), efStore)
	} else {
		t.Logf("run 2 on run 1's state directory restored %d records", run2.restores.Total())
	}
}

// TestEmitFinalSurvivesRebalance runs an emit-final windowed count on
// instance A alone, starts instance B with the same id (its own, empty
// state directory) while records are being produced, so tasks move from A
// to B with windows open and closing, produces more with both running,
// stops A gracefully while records are being produced, so B takes over A's
// tasks with records in flight, lets those records close the windows left
// open, and checks that every window's final is in the output exactly once
// with its exact count.
func TestEmitFinalSurvivesRebalance(t *testing.T) {
	r := setupEmitFinal(t, "ef-rebalance")
	m := newFinalsModel()
	tail := r.tail(t)
	began := time.Now()
	allTasks := make([]string, efPartitions)
	for p := range allTasks {
		allTasks[p] = fmt.Sprintf("0_%d", p)
	}

	// Before: A alone; windows 0 and 1, 0 closes.
	a := r.start(t, "instance A", t.TempDir())
	a.WaitState(t, itest.Timeout(), riffle.Running)
	p1 := efPhase(-1, 0, 1)
	m.apply(p1)
	want1 := m.closed()
	if len(want1) != efPartitions*efKeys || m.inGrace == 0 {
		t.Fatalf("phase 1 is not what the test means: %d finals, %d in grace", len(want1), m.inGrace)
	}
	r.produce(t, p1)
	tail.waitFor(t, r, want1, "A's finals of window 0")
	r.waitCaughtUp(t)
	r.checkExactlyOnce(t, want1, "with A alone")
	t.Logf("checked: A alone (tasks %v) emitted the %d finals of window 0 exactly once", a.tasks(), len(want1))

	// During: B joins while a late record for window 0 and windows 1 to 3
	// are produced, a record every 10ms, the last third only once the
	// tasks are shared (if the producer gets there first); windows 1 and 2
	// close.
	late := m.late
	p2 := efPhase(0, 1, 2, 3)
	m.apply(p2)
	want2 := m.closed()
	if len(want2) != 3*efPartitions*efKeys || m.late-late < 2*efPartitions {
		t.Fatalf("phase 2 is not what the test means: %d finals, %d late", len(want2), m.late-late)
	}
	var produced atomic.Int64
	balanced := make(chan struct{})
	gateAt := 2 * len(p2) / 3
	done := r.producePaced(t, p2, gateAt, balanced, &produced)
	b := r.start(t, "instance B", t.TempDir())
	took := itest.Eventually(t, itest.Timeout(), "A and B both RUNNING, sharing the tasks", func() (bool, string) {
		for _, in := range []*efInstance{a, b} {
			if exited, err := in.Exited(); exited {
				t.Fatalf("%s: Run returned %v", in.Name, err)
			}
		}
		sa, sb, ta, tb := a.App.State(), b.App.State(), a.tasks(), b.tasks()
		all := append(append([]string{}, ta...), tb...)
		sort.Strings(all)
		return sa == riffle.Running && sb == riffle.Running && len(ta) > 0 && len(tb) > 0 && fmt.Sprint(all) == fmt.Sprint(allTasks),
			fmt.Sprintf("A %s with tasks %v, B %s with tasks %v", sa, ta, sb, tb)
	})
	atBalance := produced.Load()
	close(balanced)
	tasksA, tasksB := a.tasks(), b.tasks()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(itest.Timeout()):
		t.Fatal("the paced producer did not finish")
	}
	t.Logf("B joined: %v later A had tasks %v and B %v; %d of the %d records of phase 2 had been produced by then (the producer waits at %d for that)",
		took.Round(time.Millisecond), tasksA, tasksB, atBalance, len(p2), gateAt)
	tail.waitFor(t, r, want2, "the finals of windows 0 to 2")
	r.waitCaughtUp(t)
	r.checkExactlyOnce(t, want2, "after B joined")
	if b.restoredEmitted() == 0 {
		t.Logf("note: B restored nothing into %s-emitted (restores %v)", efStore, b.restores.Starts())
	}
	t.Logf("checked: after B joined, windows 0 to 2 had %d finals, exactly once each; B restored %d records (%v)", len(want2), b.restores.Total(), b.restores.Starts())

	// After: both running; a late record for window 2, windows 3 and 4;
	// 3 closes.
	late = m.late
	p3 := efPhase(2, 3, 4)
	m.apply(p3)
	want3 := m.closed()
	if len(want3) != 4*efPartitions*efKeys || m.late-late < 2*efPartitions {
		t.Fatalf("phase 3 is not what the test means: %d finals, %d late", len(want3), m.late-late)
	}
	r.produce(t, p3)
	tail.waitFor(t, r, want3, "the finals of windows 0 to 3")
	r.waitCaughtUp(t)
	r.checkExactlyOnce(t, want3, "with A and B running")

	// A leaves gracefully while records come: a late record for window 3,
	// emitted by A or B, and windows 4 to 6, a record every 10ms; B takes
	// over A's tasks with windows open; 4 and 5 close.
	late = m.late
	p4 := efPhase(3, 4, 5, 6)
	m.apply(p4)
	want := m.closed()
	if len(want) != 6*efPartitions*efKeys || m.late-late < 2*efPartitions {
		t.Fatalf("phase 4 is not what the test means: %d finals, %d late", len(want), m.late-late)
	}
	produced.Store(0)
	done = r.producePaced(t, p4, -1, nil, &produced)
	itest.Eventually(t, itest.Timeout(), "a quarter of phase 4 to be produced", func() (bool, string) {
		n := produced.Load()
		return n >= int64(len(p4)/4), fmt.Sprintf("%d of %d produced", n, len(p4))
	})
	atStop := produced.Load()
	a.stop(t)
	atStopped := produced.Load()
	itest.Eventually(t, itest.Timeout(), "B to own every task", func() (bool, string) {
		if exited, err := b.Exited(); exited {
			t.Fatalf("%s: Run returned %v", b.Name, err)
		}
		got := b.tasks()
		return b.App.State() == riffle.Running && fmt.Sprint(got) == fmt.Sprint(allTasks), fmt.Sprintf("B %s with tasks %v", b.App.State(), got)
	})
	t.Logf("A stopped gracefully (it had tasks %v) while phase 4 was produced: %d of its %d records out when A began to stop, %d when it had stopped; B owns %v",
		tasksA, atStop, len(p4), atStopped, b.tasks())
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(itest.Timeout()):
		t.Fatal("the paced producer did not finish")
	}
	took = tail.waitFor(t, r, want, "the finals of windows 0 to 5")
	r.waitCaughtUp(t)
	b.stop(t)
	got := r.checkExactlyOnce(t, want, "after A left and B stopped")
	if b.restoredEmitted() == 0 {
		t.Fatalf("B never restored the %s-emitted store (restores %v): no task moved with emit-final state", efStore, b.restores.Starts())
	}
	t.Logf("checked: across B joining and A leaving, the output held exactly one final of each of the %d closed windows, with its exact count (%d records counted, %d late, %d in grace), and nothing else: %d records; the last finals came %v after producing; B restored %d records (%d into %s-emitted); open windows %v; whole test %v",
		len(want), sumCounts(want), m.late, m.inGrace, len(got), took.Round(time.Millisecond), b.restores.Total(), b.restoredEmitted(), efStore, m.open(), time.Since(began).Round(time.Millisecond))
}
