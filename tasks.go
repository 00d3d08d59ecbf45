package riffle

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"time"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/topology"
)

// task is a topology.Task with what the runtime keeps for it: the fetched
// records of each of its partitions not yet processed, and where to commit.
type task struct {
	id     topology.TaskID
	t      *topology.Task
	queues map[string]*partQueue // by source topic
	order  []*partQueue          // the same queues, to scan per record
	stores []taskStore
	// waiting is when the task, with records queued, first had to wait
	// for a partition that may hold older ones; zero when it is not
	// waiting. See ready.
	waiting time.Time
}

// queue returns the task's queue of topic's partition, making it if need be.
func (tk *task) queue(topic string) *partQueue {
	q := tk.queues[topic]
	if q == nil {
		q = &partQueue{topic: topic, part: tk.id.Partition, next: -1, hwm: -1}
		tk.queues[topic] = q
		tk.order = append(tk.order, q)
	}
	return q
}

// partQueue holds the fetched records of one partition of a task.
type partQueue struct {
	topic string
	part  int32
	recs  []*kgo.Record
	head  int
	// next is the offset to commit: one past the last record processed;
	// -1 until one is.
	next  int64
	epoch int32
	// hwm is the partition's high watermark as last heard (from a fetch,
	// or listed when the task was assigned); -1 if unknown.
	hwm int64
}

// caughtUp reports whether the queue is empty and the partition holds no
// record past what was processed, as far as is known.
func (q *partQueue) caughtUp() bool {
	if q.head < len(q.recs) {
		return false
	}
	return q.hwm == 0 || (q.next >= 0 && q.hwm >= 0 && q.next >= q.hwm)
}

type taskStore struct {
	name       string
	changelog  string // resolved; "" if not logged
	persistent bool
	r          state.Restorable
}

// onAssigned makes the tasks of newly assigned partitions. A task with
// logged stores does not start at once: its partitions are paused while
// the updater restores its stores (from a standby copy if there is one),
// and the loop starts it once they have caught up (promote), so the
// rebalance and the other tasks do not wait for the restore.
func (a *App) onAssigned(ctx context.Context, _ *kgo.Client, assigned map[string][]int32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.State() == PendingShutdown {
		return
	}
	a.setState(Rebalancing)
	restoring := map[topology.TaskID][]string{}
	now := map[string][]int32{}
	for topic, id := range a.partitionTasks(assigned) {
		if tk, ok := a.tasks[id]; ok {
			tk.queue(topic)
			now[topic] = append(now[topic], id.Partition)
			continue
		}
		if hasLoggedStores(a.topo.SubTopologies()[id.Subtopology]) {
			restoring[id] = append(restoring[id], topic)
			continue
		}
		tk, err := a.newTask(id)
		if err != nil {
			a.setFatal(err)
			return
		}
		a.tasks[id] = tk
		tk.queue(topic)
		now[topic] = append(now[topic], id.Partition)
	}
	for id, topics := range restoring {
		pause := map[string][]int32{}
		for _, t := range topics {
			pause[t] = []int32{id.Partition}
		}
		a.cl.PauseFetchPartitions(pause)
		if err := a.startRestoring(ctx, id, topics); err != nil {
			if a.loopCtx.Err() != nil {
				return // closing
			}
			a.setFatal(err)
			return
		}
	}
	a.learnPositions(ctx, now)
	a.publishLocal()
	a.settle()
}

// startRestoring makes the stores of a newly assigned task a restoring
// replica: a standby copy's if there is one.
func (a *App) startRestoring(ctx context.Context, id topology.TaskID, topics []string) error {
	a.waitClosed(id)
	ends, err := a.storeEnds(ctx, id)
	if err != nil {
		return err
	}
	a.dropClosedOffsets(id)
	if r := a.upd.replica(id); r != nil {
		a.upd.restore(r, topics, ends)
		a.log.Info("task restoring from its standby copy", "task", id.String())
		return nil
	}
	r, err := a.upd.open(id, true, ends)
	if err != nil {
		return err
	}
	a.upd.mu.Lock()
	r.topics = topics
	a.upd.mu.Unlock()
	a.log.Info("task restoring", "task", id.String())
	return nil
}

// storeEnds lists the ends of the changelogs of task id's logged stores.
func (a *App) storeEnds(ctx context.Context, id topology.TaskID) (map[string]int64, error) {
	var topics []string
	for _, spec := range a.topo.SubTopologies()[id.Subtopology].Stores {
		if spec.Logged {
			topics = append(topics, topology.ChangelogFor(spec.Name).Resolve(a.cfg.appID))
		}
	}
	ends, err := a.listEnds(ctx, id.Partition, topics...)
	if err != nil {
		return nil, fmt.Errorf("riffle: restore task %s: %w", id, err)
	}
	return ends, nil
}

// promote starts the tasks whose stores have been restored: they take the
// replica's stores, catch up on any tail, and their partitions resume.
func (a *App) promote() error {
	if a.loopCtx.Err() != nil {
		return nil // closing: the tasks would only be closed again
	}
	// Only when the updater says a restore has finished: the updater's
	// lock is held while it applies a batch, and the loop must not wait
	// on that.
	select {
	case <-a.upd.ready:
	default:
		return nil
	}
	promoted := false
	for _, r := range a.upd.readyToRun() {
		r = a.upd.take(r.id)
		if r == nil {
			continue
		}
		a.handover = r
		tk, err := a.newTask(r.id)
		a.handover = nil
		if err != nil {
			closeReplicaStores(r)
			if a.loopCtx.Err() != nil {
				return nil // closing: the tail's restore was cut short on purpose
			}
			return err
		}
		a.tasks[r.id] = tk
		resume := map[string][]int32{}
		for _, t := range r.topics {
			tk.queue(t)
			resume[t] = []int32{r.id.Partition}
		}
		took := time.Since(r.started)
		var total int64
		for _, s := range r.stores {
			total += s.restored
			if l := a.cfg.restoreListener; l != nil && s.restored > 0 {
				l.RestoreEnd(r.id.String(), s.name, s.restored, took)
			}
		}
		a.log.Info("task restored", "task", r.id.String(), "records", total, "took", took)
		a.learnPositions(a.ioCtx, resume)
		a.cl.ResumeFetchPartitions(resume)
		promoted = true
	}
	if promoted {
		a.publishLocal()
		a.settle()
	}
	return nil
}

// settle sets the state to Running once no assigned task is restoring.
func (a *App) settle() {
	if a.State() == Rebalancing && !a.upd.anyRestoring() {
		a.setState(Running)
	}
}

// reconcileStandbys opens and closes standby copies to match the latest
// assignment.
func (a *App) reconcileStandbys(ctx context.Context) {
	assn := a.assignment.Load()
	if assn == nil {
		return
	}
	// A copy of a task assigned here is left alone: onAssigned turns it
	// into the task's restoring replica (it may not have run yet).
	active := map[topology.TaskID]bool{}
	for _, t := range assn.Active {
		active[topology.TaskID{Subtopology: t.Subtopology, Partition: t.Partition}] = true
	}
	want, warm := map[topology.TaskID]bool{}, map[topology.TaskID]bool{}
	for _, t := range assn.Standby {
		want[topology.TaskID{Subtopology: t.Subtopology, Partition: t.Partition}] = true
	}
	for _, t := range assn.Warmup {
		warm[topology.TaskID{Subtopology: t.Subtopology, Partition: t.Partition}] = true
	}
	subs := a.topo.SubTopologies()
	for _, id := range a.upd.standbys() {
		if !want[id] && !active[id] {
			a.upd.mu.Lock()
			err := a.upd.closeLocked(id)
			a.upd.mu.Unlock()
			if err != nil {
				a.log.Error("close a standby copy", "task", id.String(), "err", err)
			}
			a.log.Info("standby copy closed", "task", id.String())
		}
	}
	for id := range want {
		if _, running := a.tasks[id]; running || active[id] || id.Subtopology >= len(subs) || !hasLoggedStores(subs[id.Subtopology]) {
			continue
		}
		if r := a.upd.replica(id); r != nil {
			a.upd.setWarmup(r, warm[id])
			continue
		}
		a.waitClosed(id)
		ends, err := a.storeEnds(ctx, id)
		if err == nil {
			var r *replica
			if r, err = a.upd.open(id, false, ends); err == nil {
				a.upd.setWarmup(r, warm[id])
				a.dropClosedOffsets(id)
				a.log.Info("standby copy opened", "task", id.String(), "warmup", warm[id])
			}
		}
		if err != nil {
			a.log.Error("open a standby copy", "task", id.String(), "err", err)
		}
	}
	a.publishLocal()
}

// learnPositions sets, for the assigned partitions, the committed offset
// and the high watermark, so a task knows at once which of its partitions
// hold records to wait for (see ready). If they cannot be listed, tasks
// learn them from fetches, or wait no longer than the task idle time.
func (a *App) learnPositions(ctx context.Context, assigned map[string][]int32) {
	var topics []string
	for t := range assigned {
		if a.subOf(t) != nil {
			topics = append(topics, t)
		}
	}
	if len(topics) == 0 {
		return
	}
	ends, err := a.adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		a.log.Debug("list end offsets of assigned partitions", "err", err)
		return
	}
	committed, err := a.adm.FetchOffsets(ctx, a.cfg.appID)
	if err != nil {
		a.log.Debug("fetch committed offsets of assigned partitions", "err", err)
	}
	for topic, id := range a.partitionTasks(assigned) {
		tk := a.tasks[id]
		if tk == nil {
			continue
		}
		q := tk.queue(topic)
		if e, ok := ends.Lookup(topic, id.Partition); ok && e.Err == nil && q.hwm < 0 {
			q.hwm = e.Offset
		}
		if c, ok := committed.Lookup(topic, id.Partition); ok && c.Err == nil && c.At >= 0 && q.next < 0 {
			q.next, q.epoch = c.At, c.LeaderEpoch
		}
	}
}

func (a *App) newTask(id topology.TaskID) (*task, error) {
	a.waitClosed(id)
	rt := &taskRuntime{a: a, id: id}
	t, err := a.topo.NewTask(id, rt)
	if err != nil {
		return nil, fmt.Errorf("riffle: start task %s: %w", id, err)
	}
	a.log.Info("task started", "task", id.String())
	return &task{id: id, t: t, queues: map[string]*partQueue{}, stores: rt.stores}, nil
}

// subOf returns the sub-topology that reads topic, remembering the answer.
func (a *App) subOf(topic string) *topology.SubTopology {
	if st, ok := a.subs[topic]; ok {
		return st
	}
	st := a.topo.SubTopologyOf(a.cfg.appID, topic)
	a.subs[topic] = st
	return st
}

// onRevoked commits the tasks of revoked partitions, then closes them. Their
// stores stay on disk: if a task comes back, only the changelog's tail is
// restored.
func (a *App) onRevoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.State() == PendingShutdown {
		a.dropTasks(revoked) // shutdown has committed and closed the tasks
		return
	}
	a.setState(Rebalancing)
	// Only the revoked tasks commit, as in Kafka Streams: the tasks kept
	// go on, and commit with the next periodic commit.
	if err := a.commit(a.ioCtx, a.tasksOf(revoked)); err != nil {
		a.setFatal(err)
	}
	a.dropTasks(revoked)
}

// partitionTasks yields each partition of parts whose topic a
// sub-topology reads, as its topic and the task that reads it.
func (a *App) partitionTasks(parts map[string][]int32) iter.Seq2[string, topology.TaskID] {
	return func(yield func(string, topology.TaskID) bool) {
		for topic, ps := range parts {
			st := a.subOf(topic)
			if st == nil {
				continue
			}
			for _, p := range ps {
				if !yield(topic, topology.TaskID{Subtopology: st.ID, Partition: p}) {
					return
				}
			}
		}
	}
}

// tasksOf returns the running tasks that read the given partitions.
func (a *App) tasksOf(parts map[string][]int32) map[topology.TaskID]bool {
	ids := map[topology.TaskID]bool{}
	for _, id := range a.partitionTasks(parts) {
		if _, ok := a.tasks[id]; ok {
			ids[id] = true
		}
	}
	return ids
}

// onLost closes the tasks of lost partitions without committing: another
// member may own them already.
func (a *App) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.log.Warn("partitions lost: closing their tasks without committing", "partitions", lost)
	a.dropTasks(lost)
}

// dropTasks closes the tasks of the given partitions, and stops restoring
// those not started yet: their stores stay as standby copies if the
// assignment keeps one here, and are closed otherwise.
func (a *App) dropTasks(parts map[string][]int32) {
	standby := map[topology.TaskID]bool{}
	if assn := a.assignment.Load(); assn != nil {
		for _, t := range assn.Standby {
			standby[topology.TaskID{Subtopology: t.Subtopology, Partition: t.Partition}] = true
		}
	}
	for topic, id := range a.partitionTasks(parts) {
		if _, ok := a.tasks[id]; ok {
			a.closeTaskInBackground(id)
		}
		if r := a.upd.replica(id); r != nil && a.upd.stopRestoring(r, standby[id]) {
			a.log.Info("task revoked while restoring", "task", id.String(), "kept as standby", standby[id])
		}
		// A partition paused while its task restored must not stay
		// paused if it comes back.
		a.cl.ResumeFetchPartitions(map[string][]int32{topic: {id.Partition}})
	}
	a.publishLocal()
}

func (a *App) closeTask(id topology.TaskID) error {
	err := a.forgetTask(id).Close()
	a.log.Info("task closed", "task", id.String())
	return err
}

// closeTaskInBackground is closeTask with the closing of the task's
// processors and stores on a goroutine of its own: closing a Pebble store
// waits for its compactions, and a revoke must not hold up the tasks the
// instance keeps. Opening the task's stores again waits for it
// (waitClosed), and so does shutdown.
func (a *App) closeTaskInBackground(id topology.TaskID) {
	t := a.forgetTask(id)
	done := make(chan struct{})
	a.closing[id] = done
	a.closeWG.Add(1)
	go func() {
		defer a.closeWG.Done()
		defer close(done)
		if err := t.Close(); err != nil {
			a.log.Error("close task", "task", id.String(), "err", err)
			return
		}
		a.log.Info("task closed", "task", id.String())
	}()
}

// forgetTask removes task id and keeps what outlives it: its skip counts,
// and what its persistent stores hold, which the balancer counts when it
// looks for a caught-up member. It returns the task, to be closed.
func (a *App) forgetTask(id topology.TaskID) *topology.Task {
	tk := a.tasks[id]
	delete(a.tasks, id)
	for _, c := range tk.t.Skipped() {
		a.closedSkips += c
	}
	var sum int64
	persistent := false
	for _, s := range tk.stores {
		if s.changelog == "" || !s.persistent {
			continue
		}
		if off, ok, err := s.r.AppliedOffset(); err == nil && ok {
			sum += off + 1
			persistent = true
		}
	}
	if persistent {
		a.offMu.Lock()
		a.closedOffsets[id.String()] = sum
		a.offMu.Unlock()
	}
	return tk.t
}

// waitClosed waits until a task closing in the background has closed, so
// that its stores can be opened again. Called under mu.
func (a *App) waitClosed(id topology.TaskID) {
	if ch, ok := a.closing[id]; ok {
		<-ch
		delete(a.closing, id)
	}
}

// dropClosedOffsets forgets the offsets of a closed task's stores, which
// are open again.
func (a *App) dropClosedOffsets(id topology.TaskID) {
	a.offMu.Lock()
	delete(a.closedOffsets, id.String())
	a.offMu.Unlock()
}

// process queues the fetched records by task and partition, then runs each
// task's records in timestamp order, taking next the partition whose head
// record is oldest, for as long as the task is ready (see ready). Records a
// task is not ready for stay queued for the next call.
func (a *App) process(fetches kgo.Fetches) error {
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		st := a.subOf(p.Topic)
		if st == nil || len(p.Records) == 0 {
			return
		}
		tk := a.tasks[topology.TaskID{Subtopology: st.ID, Partition: p.Partition}]
		if tk == nil {
			return // revoked since the fetch
		}
		q := tk.queue(p.Topic)
		q.recs = append(q.recs, p.Records...)
		q.hwm = p.HighWatermark
	})
	now := time.Now()
	for _, tk := range a.tasks {
		for a.ready(tk, now) {
			q := oldestHead(tk)
			if q == nil {
				break
			}
			r := q.recs[q.head]
			q.recs[q.head] = nil
			q.head++
			if err := a.processRecord(tk, r); err != nil {
				return err
			}
			q.next, q.epoch = r.Offset+1, r.LeaderEpoch
		}
		for _, q := range tk.order {
			switch {
			case q.head == len(q.recs):
				q.recs, q.head = q.recs[:0], 0
			case q.head > len(q.recs)/2:
				n := copy(q.recs, q.recs[q.head:])
				clear(q.recs[n:])
				q.recs, q.head = q.recs[:n], 0
			}
		}
	}
	return nil
}

// maxQueued is how many records a task may hold queued while it waits for
// another partition, before it processes them anyway.
const maxQueued = 1 << 16

// ready reports whether the task may process its oldest queued record:
// when every partition it reads has records queued, or is known to hold no
// more (so no older record can come first), as Kafka Streams synchronises
// a task's partitions by timestamp. A task that has waited for a partition
// longer than the App's task idle time, or has too many records queued,
// goes on without it.
func (a *App) ready(tk *task, now time.Time) bool {
	if len(tk.order) < 2 {
		return true
	}
	queued, blocked := 0, false
	for _, q := range tk.order {
		queued += len(q.recs) - q.head
		if q.head == len(q.recs) && !q.caughtUp() {
			blocked = true
		}
	}
	switch {
	case queued == 0:
		tk.waiting = time.Time{}
		return false
	case !blocked:
		tk.waiting = time.Time{}
		return true
	case tk.waiting.IsZero():
		tk.waiting = now
	}
	return now.Sub(tk.waiting) >= a.cfg.maxTaskIdle || queued >= maxQueued
}

// oldestHead returns the queue of tk whose next record has the oldest
// timestamp, or nil if all are empty.
func oldestHead(tk *task) *partQueue {
	var best *partQueue
	for _, q := range tk.order {
		if q.head == len(q.recs) {
			continue
		}
		if best == nil || q.recs[q.head].Timestamp.Before(best.recs[best.head].Timestamp) {
			best = q
		}
	}
	return best
}

func (a *App) processRecord(tk *task, r *kgo.Record) error {
	raw := topology.RawRecord{
		Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
		Key: r.Key, Value: r.Value, Timestamp: r.Timestamp, Headers: fromKgoHeaders(r.Headers),
	}
	err := tk.t.Process(&raw)
	if err == nil {
		return nil
	}
	var de *topology.DecodeError
	if !errors.As(err, &de) {
		return err
	}
	return a.decodeFailed(r, de)
}

// decodeFailed applies the decode-error policy to r.
func (a *App) decodeFailed(r *kgo.Record, de *topology.DecodeError) error {
	p := a.cfg.onDecodeError
	if p.action == failAction {
		return de
	}
	a.skipped.Add(1)
	a.log.Warn("skipped a record that could not be decoded", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "node", de.Node, "err", de.Err)
	if p.action != deadLetterAction {
		return nil
	}
	raw := topology.DeadLetter(p.deadLetter, topology.RawRecord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
		Key: r.Key, Value: r.Value, Timestamp: r.Timestamp, Headers: fromKgoHeaders(r.Headers)}, de)
	dl := &kgo.Record{Topic: raw.Topic, Key: raw.Key, Value: raw.Value, Timestamp: raw.Timestamp, Headers: toKgoHeaders(raw.Headers)}
	a.cl.Produce(a.ioCtx, dl, func(_ *kgo.Record, err error) {
		if err != nil {
			a.setFatal(fmt.Errorf("riffle: write a record of %s[%d]@%d to dead-letter topic %q: %w", r.Topic, r.Partition, r.Offset, p.deadLetter, err))
		}
	})
	return nil
}

// fromKgoHeaders views kgo's headers as topology's: the two types have the
// same fields in the same order, so no copy is needed.
func fromKgoHeaders(h []kgo.RecordHeader) []topology.Header {
	if len(h) == 0 {
		return nil
	}
	return unsafe.Slice((*topology.Header)(unsafe.Pointer(unsafe.SliceData(h))), len(h))
}

func toKgoHeaders(h []topology.Header) []kgo.RecordHeader {
	if len(h) == 0 {
		return nil
	}
	return unsafe.Slice((*kgo.RecordHeader)(unsafe.Pointer(unsafe.SliceData(h))), len(h))
}

// commit flushes the stores of the given tasks (every task if only is
// nil), waits until the brokers have acknowledged everything produced,
// checkpoints the stores (see prepareCommit), and commits the offsets the
// tasks processed. An input offset is thus committed only after all it
// caused is safe. It waits for a commit in the background to finish
// first, so commits reach the group in order.
func (a *App) commit(ctx context.Context, only map[topology.TaskID]bool) error {
	offsets, err := a.prepareCommit(ctx, only, true)
	if err != nil {
		return err
	}
	a.commitWG.Wait()
	return a.commitOffsets(ctx, offsets)
}

// commitInBackground commits every task, with the last step, the offset
// commit, on a goroutine of its own: franz-go holds commits back while the
// group rebalances, and the loop must go on processing the tasks it keeps
// meanwhile. While one is under way, it does nothing: the loop calls it
// again. A revoke's commit (commit) waits for it, so the older offsets
// never land after the newer.
func (a *App) commitInBackground() error {
	if a.committing.Load() {
		return nil
	}
	offsets, err := a.prepareCommit(a.ioCtx, nil, false)
	if err != nil || len(offsets) == 0 {
		return err
	}
	a.committing.Store(true)
	a.commitWG.Add(1)
	go func() {
		defer a.commitWG.Done()
		defer a.committing.Store(false)
		if err := a.commitOffsets(a.ioCtx, offsets); err != nil {
			if isFatalCommit(err) {
				a.setFatal(err)
				return
			}
			a.log.Warn("commit failed; the next one commits these offsets", "err", err)
		}
	}()
	return nil
}

// isFatalCommit reports whether a failed offset commit must stop the App:
// not when the group was rebalancing (the offsets go with the next commit,
// or the partitions are another member's now), nor when it can be retried.
func isFatalCommit(err error) bool {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, kerr.RebalanceInProgress),
		errors.Is(err, kerr.IllegalGeneration), errors.Is(err, kerr.UnknownMemberID),
		errors.Is(err, kerr.FencedInstanceID):
		return false
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return !ke.Retriable
	}
	return false
}

// checkpointEvery is how many changelog records a store may take between
// two checkpoints in a periodic commit, as Kafka Streams does
// (StateManagerUtil's 10,000). A checkpoint flushes the store's memtable,
// which costs hundreds of milliseconds on a big store: doing it at every
// commit made the tail latency of the whole instance. A store whose
// checkpoint lags restores the changelog from it after a crash; putting the
// same records again is harmless.
const checkpointEvery = 10_000

// prepareCommit does commit's first steps for the given tasks (all if only
// is nil) and returns the offsets to commit. A store is checkpointed when
// force is set (its task is leaving, or the App is closing), or when it has
// taken checkpointEvery changelog records since its last checkpoint.
func (a *App) prepareCommit(ctx context.Context, only map[topology.TaskID]bool, force bool) (map[string]map[int32]kgo.EpochOffset, error) {
	for _, tk := range a.tasks {
		if only != nil && !only[tk.id] {
			continue
		}
		if err := tk.t.Flush(); err != nil {
			return nil, fmt.Errorf("riffle: commit: %w", err)
		}
	}
	if err := a.cl.Flush(ctx); err != nil {
		return nil, fmt.Errorf("riffle: commit: flush the producer: %w", err)
	}
	if err := a.fatalErr(); err != nil {
		return nil, err
	}
	offsets := map[string]map[int32]kgo.EpochOffset{}
	taskOffsets := map[string]int64{}
	for _, tk := range a.tasks {
		if only != nil && !only[tk.id] {
			continue
		}
		for _, s := range tk.stores {
			if s.changelog == "" {
				continue
			}
			pos, known, _ := s.r.AppliedOffset()
			if off, ok := a.ackedOffset(s.changelog, tk.id.Partition); ok && (!known || off > pos) {
				if force || !known || off-pos >= checkpointEvery {
					if err := s.r.Checkpoint(off); err != nil {
						return nil, fmt.Errorf("riffle: commit: checkpoint store %q of task %s: %w", s.name, tk.id, err)
					}
				}
				// The store holds it, checkpointed or not: the balancer
				// counts it.
				pos, known = off, true
			}
			if known {
				taskOffsets[tk.id.String()] += pos + 1
			}
		}
		for _, q := range tk.queues {
			if q.next < 0 {
				continue
			}
			if offsets[q.topic] == nil {
				offsets[q.topic] = map[int32]kgo.EpochOffset{}
			}
			offsets[q.topic][q.part] = kgo.EpochOffset{Epoch: q.epoch, Offset: q.next}
		}
	}
	if only == nil {
		a.taskOffsets.Store(&taskOffsets)
		a.lastCommit = time.Now()
	}
	return offsets, nil
}

// commitOffsets commits offsets to the group and waits for the answer.
func (a *App) commitOffsets(ctx context.Context, offsets map[string]map[int32]kgo.EpochOffset) error {
	if len(offsets) == 0 {
		return nil
	}
	var commitErr error
	a.cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			commitErr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if e := kerr.ErrorForCode(p.ErrorCode); e != nil && commitErr == nil {
					commitErr = fmt.Errorf("%s[%d]: %w", t.Topic, p.Partition, e)
				}
			}
		}
	})
	if commitErr != nil {
		return fmt.Errorf("riffle: commit offsets: %w", commitErr)
	}
	return nil
}

func (a *App) ackedOffset(topic string, p int32) (int64, bool) {
	a.ackMu.Lock()
	defer a.ackMu.Unlock()
	off, ok := a.acked[topic][p]
	return off, ok
}

func (a *App) ack(topic string, p int32, off int64) {
	a.ackMu.Lock()
	defer a.ackMu.Unlock()
	m := a.acked[topic]
	if m == nil {
		m = map[int32]int64{}
		a.acked[topic] = m
	}
	if cur, ok := m[p]; !ok || off > cur {
		m[p] = off
	}
}

// punctuate fires the wall-clock punctuations that are due.
func (a *App) punctuate() error {
	now := time.Now()
	for _, tk := range a.tasks {
		if err := tk.t.PunctuateWallClock(now); err != nil {
			return err
		}
	}
	return nil
}

// taskRuntime is the App as one task sees it.
type taskRuntime struct {
	a      *App
	id     topology.TaskID
	stores []taskStore
}

func (r *taskRuntime) ApplicationID() string { return r.a.cfg.appID }
func (r *taskRuntime) Now() time.Time        { return time.Now() }
func (r *taskRuntime) Logger() *slog.Logger  { return r.a.log }

func (r *taskRuntime) GlobalStore(name string) (state.Store, error) { return r.a.globalStore(name) }

// Send produces a record a sink made, asynchronously.
func (r *taskRuntime) Send(rec topology.RawRecord) error {
	a := r.a
	kr := &kgo.Record{Topic: rec.Topic, Key: rec.Key, Value: rec.Value, Timestamp: rec.Timestamp, Headers: toKgoHeaders(rec.Headers)}
	a.cl.Produce(a.ioCtx, kr, a.sentPromise)
	return a.fatalErr()
}

// sent is the promise of every record a sink produces (a.sentPromise).
func (a *App) sent(kr *kgo.Record, err error) {
	if err != nil {
		a.produceFailed(kr, err)
	}
}

func (a *App) produceFailed(kr *kgo.Record, err error) {
	if a.cfg.onProduceError.action == skipAction {
		a.skipped.Add(1)
		a.log.Warn("skipped a record that could not be written", "topic", kr.Topic, "err", err)
		return
	}
	a.setFatal(fmt.Errorf("riffle: write a record to %q: %w", kr.Topic, err))
}

// OpenStore opens a store of the task, logged to its changelog, restores
// it from there, and puts a record cache in front if the App caches.
func (r *taskRuntime) OpenStore(id topology.TaskID, spec state.Spec) (state.Store, error) {
	a := r.a
	if spec.Kind == state.KindWindow || spec.Kind == state.KindSession {
		return r.openWindow(id, spec)
	}
	raw, err := a.storeFor(id, spec)
	if err != nil {
		return nil, err
	}
	kv := raw.(state.KeyValueStore)
	ts := taskStore{name: spec.Name, persistent: spec.Backend == state.PersistentBackend}
	if spec.Logged {
		ts.changelog = topology.ChangelogFor(spec.Name).Resolve(a.cfg.appID)
		kv = state.Logged(kv, &changelog{a: a, topic: ts.changelog, partition: id.Partition})
		if err := a.restore(id, spec.Name, ts.changelog, kv.(state.Restorable)); err != nil {
			kv.Close()
			return nil, err
		}
	}
	if a.cfg.caching && spec.Cached {
		kv = state.Cached(kv, a.env.RecordCacheBudget())
	}
	ts.r = kv.(state.Restorable)
	r.stores = append(r.stores, ts)
	return kv, nil
}

// openWindow opens a window store of the task, or the windows beneath a
// session store, logged and restored like a key-value store. Window and
// session stores have no record cache.
func (r *taskRuntime) openWindow(id topology.TaskID, spec state.Spec) (state.Store, error) {
	a := r.a
	raw, err := a.storeFor(id, spec)
	if err != nil {
		return nil, err
	}
	ws := raw.(state.WindowStore)
	ts := taskStore{name: spec.Name, persistent: spec.Backend == state.PersistentBackend}
	if spec.Logged {
		ts.changelog = topology.ChangelogFor(spec.Name).Resolve(a.cfg.appID)
		ws = state.LoggedWindow(ws, &changelog{a: a, topic: ts.changelog, partition: id.Partition})
		if err := a.restore(id, spec.Name, ts.changelog, ws.(state.Restorable)); err != nil {
			ws.Close()
			return nil, err
		}
	}
	ts.r = ws.(state.Restorable)
	r.stores = append(r.stores, ts)
	if spec.Kind == state.KindSession {
		return state.SessionOf(ws), nil
	}
	return ws, nil
}

// storeFor returns the store a task opens: the restored copy handed over
// by promote, or else a store opened from the Env.
func (a *App) storeFor(id topology.TaskID, spec state.Spec) (state.Store, error) {
	if r := a.handover; r != nil && r.id == id {
		for _, s := range r.stores {
			if s.name == spec.Name {
				return s.store, nil
			}
		}
	}
	return a.openRaw(id, spec)
}

// changelog produces a store's writes to its changelog partition and keeps
// the offset of the last one acknowledged.
type changelog struct {
	a         *App
	topic     string
	partition int32
}

func (c *changelog) Append(key, value []byte) error {
	a := c.a
	kr := &kgo.Record{Topic: c.topic, Partition: c.partition, Key: append([]byte(nil), key...)}
	if value != nil {
		kr.Value = append([]byte{}, value...)
	}
	a.cl.Produce(a.ioCtx, kr, a.loggedPromise)
	return a.fatalErr()
}

// logged is the promise of every changelog record (a.loggedPromise): it
// keeps the offset acknowledged, which the next commit checkpoints.
func (a *App) logged(kr *kgo.Record, err error) {
	if err != nil {
		a.setFatal(fmt.Errorf("riffle: write changelog %s[%d]: %w", kr.Topic, kr.Partition, err))
		return
	}
	a.ack(kr.Topic, kr.Partition, kr.Offset)
}
