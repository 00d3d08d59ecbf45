package riffle

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/riffle-streams/riffle/stream"
	"github.com/riffle-streams/riffle/topology"
)

// TestCheckpoints checks when a store is checkpointed (its memtable
// flushed and its changelog offset written): not at every commit, but
// once checkpointEvery changelog records have come since the last one; at a
// revoke, for the revoked task only; and when the App closes.
func TestCheckpoints(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Apps on the embedded broker")
	}
	broker, err := StartEmbeddedBroker()
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	var wg sync.WaitGroup // the Apps' Run
	defer wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel() // first: a failed test stops the Apps
	const in, appID = "ckpt-in", "ckpt"
	if err := broker.CreateTopics(ctx, 2, in); err != nil {
		t.Fatal(err)
	}
	b := topology.NewBuilder()
	stream.From[string, string](b, in).GroupByKey().Count(stream.Named("counts"))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker.Addrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	next := 0
	// produce writes n records of new keys to each partition and waits
	// until the group has committed them all.
	produce := func(n0, n1 int) {
		t.Helper()
		var recs []*kgo.Record
		for p, n := range []int{n0, n1} {
			for range n {
				recs = append(recs, &kgo.Record{Topic: in, Partition: int32(p), Key: fmt.Appendf(nil, "k-%06d", next), Value: []byte("x")})
				next++
			}
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, ctx, "the group to commit the end of "+in, func() bool {
			ends, err := adm.ListEndOffsets(ctx, in)
			if err != nil {
				return false
			}
			committed, err := adm.FetchOffsets(ctx, appID)
			if err != nil {
				return false
			}
			done := true
			ends.Each(func(e kadm.ListedOffset) {
				c, ok := committed.Lookup(e.Topic, e.Partition)
				done = done && ok && c.At == e.Offset
			})
			return done
		})
	}
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	newApp := func(dir string, l RestoreListener) *App {
		t.Helper()
		opts := []Option{ApplicationID(appID), BootstrapServers(broker.Addrs()...), StateDir(dir),
			CommitInterval(50 * time.Millisecond), Logger(discard)}
		if l != nil {
			opts = append(opts, OnRestore(l))
		}
		app, err := New(topo, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return app
	}
	run := func(app *App) (stop func()) {
		runCtx, cancel := context.WithCancel(ctx)
		errc := make(chan error, 1)
		wg.Go(func() { errc <- app.Run(runCtx) })
		return func() {
			t.Helper()
			cancel()
			if err := <-errc; err != nil {
				t.Error(err)
			}
		}
	}
	// positions returns, per task of a, its store's checkpointed offset
	// and the last offset the brokers acknowledged for its changelog.
	type pos struct{ applied, acked int64 }
	positions := func(a *App) map[topology.TaskID]pos {
		a.mu.Lock()
		defer a.mu.Unlock()
		out := map[topology.TaskID]pos{}
		for id, tk := range a.tasks {
			for _, s := range tk.stores {
				applied, ok, err := s.r.AppliedOffset()
				if err != nil || !ok {
					t.Fatalf("task %s: store %s has no checkpoint (%v)", id, s.name, err)
				}
				acked, _ := a.ackedOffset(s.changelog, id.Partition)
				out[id] = pos{applied, acked}
			}
		}
		return out
	}
	t0, t1 := topology.TaskID{Partition: 0}, topology.TaskID{Partition: 1}

	dirA := t.TempDir()
	a := newApp(dirA, nil)
	stopA := run(a)
	produce(100, 100)
	first := positions(a)
	produce(300, 300)
	p := positions(a)
	for _, id := range []topology.TaskID{t0, t1} {
		if p[id].applied != first[id].applied || p[id].acked < first[id].acked+300 {
			t.Errorf("task %s after 300 more records: checkpoint %d, acked %d; want the checkpoint left at %d", id, p[id].applied, p[id].acked, first[id].applied)
		}
	}
	// Past checkpointEvery records, the store is checkpointed; then a few
	// more leave both behind their acknowledged offsets.
	produce(checkpointEvery+10, 0)
	if p := positions(a); p[t0].applied < first[t0].applied+checkpointEvery {
		t.Errorf("task %s after %d more records: checkpoint %d, want at least %d", t0, checkpointEvery, p[t0].applied, first[t0].applied+checkpointEvery)
	}
	produce(5, 5)
	before := positions(a)
	for id, p := range before {
		if p.applied >= p.acked {
			t.Fatalf("task %s: checkpoint %d, acked %d; want the checkpoint behind", id, p.applied, p.acked)
		}
	}

	// B joins: once a task has moved, the revoked one was checkpointed at
	// its acknowledged offset, the kept one was not.
	b2 := newApp(t.TempDir(), nil)
	stopB := run(b2)
	waitFor(t, ctx, "a task to move to B", func() bool { return len(positions(a)) == 1 })
	kept := positions(a)
	var moved topology.TaskID
	for id := range before {
		if _, ok := kept[id]; !ok {
			moved = id
		}
	}
	for id, p := range kept {
		if p.applied != before[id].applied {
			t.Errorf("kept task %s: checkpoint %d at the revoke, want it left at %d", id, p.applied, before[id].applied)
		}
	}
	a.offMu.Lock()
	closed := a.closedOffsets[moved.String()]
	a.offMu.Unlock()
	if closed != before[moved].acked+1 {
		t.Errorf("revoked task %s closed at offset %d, want its acknowledged %d checkpointed", moved, closed-1, before[moved].acked)
	}

	// A closes: its task is checkpointed, so when A comes back alone it
	// restores nothing of that task.
	stopB()
	stopA()
	restores := &restoreStarts{}
	a2 := newApp(dirA, restores)
	stopA2 := run(a2)
	waitFor(t, ctx, "A to run both tasks", func() bool { return len(positions(a2)) == 2 && a2.State() == Running })
	stopA2()
	for id := range kept {
		if got := restores.of(id.String()); len(got) > 0 {
			t.Errorf("task %s, checkpointed when A closed, restored %v", id, got)
		}
	}
}

// restoreStarts is a RestoreListener that keeps the ranges restored.
type restoreStarts struct {
	mu     sync.Mutex
	ranges map[string][]string
}

func (r *restoreStarts) RestoreStart(task, store string, from, to int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ranges == nil {
		r.ranges = map[string][]string{}
	}
	r.ranges[task] = append(r.ranges[task], fmt.Sprintf("%s[%d,%d)", store, from, to))
}
func (r *restoreStarts) RestoreBatch(string, string, int64, int)         {}
func (r *restoreStarts) RestoreEnd(string, string, int64, time.Duration) {}

func (r *restoreStarts) of(task string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ranges[task]
}

// waitFor polls cond until it holds, failing the test at ctx's end.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-tick.C:
		}
	}
}
