package riffle

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/riffle-streams/riffle/internal/assign"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/topology"
)

// A replica is a copy of a task's logged stores that is not processing:
// kept up to date from the changelogs by the updater, on its own
// goroutine, so that the App goes on processing its other tasks.
//
// A replica is one of three things:
//   - a standby copy of a task another instance runs;
//   - a warm-up copy, a standby of a task this instance is to take over
//     once the copy has caught up (then it asks for a rebalance);
//   - the stores of a task assigned to this instance, restoring: its
//     partitions are paused until the copy has reached the changelogs'
//     ends, when the loop hands the stores to the task and resumes them.
type replica struct {
	id     topology.TaskID
	stores []*replicaStore
	// restoring marks the stores of an assigned task; topics are its
	// assigned source topics.
	restoring bool
	topics    []string
	// warmup marks a warm-up copy; probed once it has asked for the
	// rebalance that moves the task here.
	warmup, probed bool
	started        time.Time
}

type replicaStore struct {
	name      string
	changelog string
	store     state.Store
	r         state.Restorable
	// next is the changelog offset to apply next; end the partition's end
	// as last heard (for a restoring replica: listed when it started, the
	// offset to reach).
	next, end int64
	restored  int64 // records applied since the replica started
}

// lag is how many changelog records the replica's stores are behind their
// changelogs' ends, as last heard.
func (r *replica) lag() int64 {
	var lag int64
	for _, s := range r.stores {
		lag += max(s.end-s.next, 0)
	}
	return lag
}

// offsets is the sum over the replica's stores of the next offset to
// apply, as the balancer compares with changelog ends.
func (r *replica) offsets() int64 {
	var n int64
	for _, s := range r.stores {
		n += s.next
	}
	return n
}

// minProbeInterval is the least time between two rebalances a member asks
// for because its warm-up copies have caught up.
const minProbeInterval = 5 * time.Second

// updater keeps the replicas up to date from their changelogs with one
// consumer of its own.
type updater struct {
	a    *App
	cl   *kgo.Client
	stop context.CancelFunc
	done chan struct{}

	// mu guards the replicas and their stores' positions; a batch is
	// applied under it, so a replica removed from the map is no longer
	// written.
	mu       sync.Mutex
	replicas map[topology.TaskID]*replica
	parts    map[string]map[int32]*replicaStore // changelog topic -> partition
	// ready is signalled when a restoring replica has caught up.
	ready chan struct{}
}

func (a *App) startUpdater() error {
	opts := append(a.clientOpts("changelog reader"), kgo.FetchMaxBytes(64<<20), kgo.FetchMaxPartitionBytes(16<<20),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{}))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("riffle: changelog reader: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	u := &updater{
		a: a, cl: cl, stop: cancel, done: make(chan struct{}),
		replicas: map[topology.TaskID]*replica{},
		parts:    map[string]map[int32]*replicaStore{},
		ready:    make(chan struct{}, 1),
	}
	a.upd = u
	go u.run(ctx)
	return nil
}

// close stops the updater and closes the replicas' stores.
func (u *updater) close() error {
	u.stop()
	<-u.done
	u.cl.Close()
	u.mu.Lock()
	defer u.mu.Unlock()
	var errs []error
	for id := range u.replicas {
		errs = append(errs, u.closeLocked(id))
	}
	return errors.Join(errs...)
}

func (u *updater) run(ctx context.Context) {
	defer close(u.done)
	batch := make([]state.ChangelogRecord, 0, 4096)
	var lastProbe time.Time
	for ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
		fetches := u.cl.PollRecords(pctx, 8192)
		cancel()
		if fetches.IsClientClosed() {
			return
		}
		u.mu.Lock()
		var events []restoreEvent
		err := u.apply(fetches, batch, &events)
		var warm []topology.TaskID
		ready := false
		for _, r := range u.replicas {
			if r.lag() > u.a.cfg.acceptableLag || r.restoring && r.lag() > 0 {
				continue
			}
			if r.restoring {
				ready = true
			} else if r.warmup && !r.probed {
				r.probed = true
				warm = append(warm, r.id)
			}
		}
		u.mu.Unlock()
		if l := u.a.cfg.restoreListener; l != nil {
			for _, e := range events {
				l.RestoreBatch(e.task, e.store, e.last, e.n)
			}
		}
		if err != nil {
			u.a.setFatal(err)
			return
		}
		if ready {
			select {
			case u.ready <- struct{}{}:
			default:
			}
		}
		if len(warm) > 0 && time.Since(lastProbe) < minProbeInterval {
			// Asked for one lately: wait, so that copies the leader finds
			// still behind cannot keep the group rebalancing.
			u.mu.Lock()
			for _, id := range warm {
				if r := u.replicas[id]; r != nil {
					r.probed = false
				}
			}
			u.mu.Unlock()
			warm = nil
		}
		if len(warm) > 0 {
			lastProbe = time.Now()
			u.a.log.Info("warm-up copies caught up: asking for a rebalance to take them over", "tasks", fmt.Sprint(warm))
			u.a.cl.ForceRebalance()
		}
	}
}

// restoreEvent is a batch restored, to tell the RestoreListener of once
// the updater's lock is let go.
type restoreEvent struct {
	task, store string
	last        int64
	n           int
}

// apply writes fetched changelog records to their replicas' stores, and
// adds to events the batches of restoring tasks. Called with u.mu held.
func (u *updater) apply(fetches kgo.Fetches, batch []state.ChangelogRecord, events *[]restoreEvent) error {
	var err error
	fetches.EachError(func(t string, p int32, ferr error) {
		if errors.Is(ferr, context.DeadlineExceeded) || errors.Is(ferr, context.Canceled) {
			return
		}
		u.a.log.Warn("fetch a changelog for a standby or restoring task", "topic", t, "partition", p, "err", ferr)
		if err == nil && isFatalFetch(ferr) {
			err = fmt.Errorf("riffle: read changelog %s[%d]: %w", t, p, ferr)
		}
	})
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		s := u.parts[p.Topic][p.Partition]
		if s == nil || err != nil {
			return // removed since the fetch
		}
		s.end = max(s.end, p.HighWatermark)
		batch = batch[:0]
		last := int64(-1)
		for _, rec := range p.Records {
			if rec.Offset < s.next {
				continue
			}
			batch = append(batch, state.ChangelogRecord{Key: rec.Key, Value: rec.Value})
			last = rec.Offset
		}
		if len(batch) == 0 {
			return
		}
		if rerr := s.r.Restore(batch, last); rerr != nil {
			err = fmt.Errorf("riffle: apply changelog %s[%d] at offset %d to store %q: %w", p.Topic, p.Partition, last, s.name, rerr)
			return
		}
		s.next = last + 1
		s.restored += int64(len(batch))
		if u.a.cfg.restoreListener != nil {
			if r := u.replicaOf(p.Topic, p.Partition); r != nil && r.restoring {
				*events = append(*events, restoreEvent{r.id.String(), s.name, last, len(batch)})
			}
		}
	})
	return err
}

func (u *updater) replicaOf(topic string, p int32) *replica {
	for _, r := range u.replicas {
		if r.id.Partition != p {
			continue
		}
		for _, s := range r.stores {
			if s.changelog == topic {
				return r
			}
		}
	}
	return nil
}

// open opens the logged stores of task id as a replica and starts updating
// them from their changelogs; ends are the changelogs' ends if known.
func (u *updater) open(id topology.TaskID, restoring bool, ends map[string]int64) (*replica, error) {
	a := u.a
	st := a.topo.SubTopologies()[id.Subtopology]
	r := &replica{id: id, restoring: restoring, started: time.Now()}
	add := map[string]map[int32]kgo.Offset{}
	for _, spec := range st.Stores {
		if !spec.Logged {
			continue
		}
		s, err := a.openRaw(id, spec)
		if err != nil {
			closeReplicaStores(r)
			return nil, err
		}
		rs := &replicaStore{name: spec.Name, changelog: topology.ChangelogFor(spec.Name).Resolve(a.cfg.appID), store: s, r: s.(state.Restorable)}
		r.stores = append(r.stores, rs)
		applied, ok, err := rs.r.AppliedOffset()
		if err != nil {
			closeReplicaStores(r)
			return nil, fmt.Errorf("riffle: open a copy of store %q of task %s: %w", spec.Name, id, err)
		}
		if ok {
			rs.next = applied + 1
		}
		rs.end = ends[rs.changelog]
		if rs.end < rs.next && ends != nil {
			closeReplicaStores(r)
			return nil, fmt.Errorf("riffle: store %q of task %s has applied offset %d of %s[%d], which ends at %d: the changelog was recreated; delete the store's directory (%s) to restore it from scratch",
				spec.Name, id, applied, rs.changelog, id.Partition, rs.end, a.env.StoreDir(a.cfg.appID, id.String(), spec.Name))
		}
		add[rs.changelog] = map[int32]kgo.Offset{id.Partition: kgo.NewOffset().At(rs.next)}
		if l := a.cfg.restoreListener; l != nil && restoring && rs.next < rs.end {
			l.RestoreStart(id.String(), spec.Name, rs.next, rs.end)
		}
	}
	u.mu.Lock()
	u.replicas[id] = r
	for _, s := range r.stores {
		if u.parts[s.changelog] == nil {
			u.parts[s.changelog] = map[int32]*replicaStore{}
		}
		u.parts[s.changelog][id.Partition] = s
	}
	u.mu.Unlock()
	if len(add) > 0 {
		u.cl.AddConsumePartitions(add)
	}
	if restoring {
		u.signalIfReady(r)
	}
	return r, nil
}

// signalIfReady wakes the loop if r, restoring, has nothing to restore.
func (u *updater) signalIfReady(r *replica) {
	u.mu.Lock()
	ready := r.lag() == 0
	u.mu.Unlock()
	if ready {
		select {
		case u.ready <- struct{}{}:
		default:
		}
	}
}

// restore turns a standby copy into the stores of an assigned task, to be
// caught up to ends before the task starts.
func (u *updater) restore(r *replica, topics []string, ends map[string]int64) {
	u.mu.Lock()
	r.restoring, r.warmup, r.topics = true, false, topics
	r.started = time.Now()
	type start struct {
		store    string
		from, to int64
	}
	var starts []start
	for _, s := range r.stores {
		if e, ok := ends[s.changelog]; ok {
			s.end = e
		}
		s.restored = 0
		if s.next < s.end {
			starts = append(starts, start{s.name, s.next, s.end})
		}
	}
	u.mu.Unlock()
	if l := u.a.cfg.restoreListener; l != nil {
		for _, s := range starts {
			l.RestoreStart(r.id.String(), s.store, s.from, s.to)
		}
	}
	u.signalIfReady(r)
}

// take stops updating the replica of id and returns it, its stores open.
func (u *updater) take(id topology.TaskID) *replica {
	u.mu.Lock()
	defer u.mu.Unlock()
	r := u.replicas[id]
	if r == nil {
		return nil
	}
	u.removeLocked(r)
	return r
}

func (u *updater) removeLocked(r *replica) {
	delete(u.replicas, r.id)
	rm := map[string][]int32{}
	for _, s := range r.stores {
		delete(u.parts[s.changelog], r.id.Partition)
		rm[s.changelog] = append(rm[s.changelog], r.id.Partition)
	}
	if len(rm) > 0 {
		u.cl.RemoveConsumePartitions(rm)
	}
}

// closeLocked removes the replica of id and closes its stores.
func (u *updater) closeLocked(id topology.TaskID) error {
	r := u.replicas[id]
	if r == nil {
		return nil
	}
	u.removeLocked(r)
	return closeReplicaStores(r)
}

func closeReplicaStores(r *replica) error {
	var errs []error
	for _, s := range r.stores {
		if err := s.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("riffle: close the copy of store %q of task %s: %w", s.name, r.id, err))
		}
	}
	return errors.Join(errs...)
}

// readyToRun returns the restoring replicas that have caught up.
func (u *updater) readyToRun() []*replica {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []*replica
	for _, r := range u.replicas {
		if r.restoring && r.lag() == 0 {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id.String() < out[j].id.String() })
	return out
}

// offsets returns the replicas' offsets by task, for the balancer.
func (u *updater) offsets(into map[string]int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for id, r := range u.replicas {
		into[id.String()] = r.offsets()
	}
}

// openRaw opens a store of a task from the Env, with no layer over it.
func (a *App) openRaw(id topology.TaskID, spec state.Spec) (state.Store, error) {
	if spec.Kind == state.KindWindow || spec.Kind == state.KindSession {
		return a.env.OpenWindow(a.cfg.appID, id.String(), spec)
	}
	return a.env.OpenKeyValue(a.cfg.appID, id.String(), spec)
}

// hasLoggedStores reports whether the tasks of sub-topology st have stores
// to restore.
func hasLoggedStores(st *topology.SubTopology) bool {
	for _, spec := range st.Stores {
		if spec.Logged {
			return true
		}
	}
	return false
}

// changelogEnds lists the end offsets of the changelogs of the given
// tasks: by task, the sum over its logged stores, for the balancer.
func (a *App) changelogEnds(tasks []assign.Task) (map[assign.Task]int64, error) {
	subs := a.topo.SubTopologies()
	var topics []string
	seen := map[string]bool{}
	for _, t := range tasks {
		if t.Subtopology >= len(subs) {
			continue
		}
		for _, spec := range subs[t.Subtopology].Stores {
			if c := topology.ChangelogFor(spec.Name).Resolve(a.cfg.appID); spec.Logged && !seen[c] {
				seen[c] = true
				topics = append(topics, c)
			}
		}
	}
	if len(topics) == 0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(a.ioCtx, 5*time.Second)
	defer cancel()
	ends, err := a.adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, err
	}
	out := map[assign.Task]int64{}
	for _, t := range tasks {
		if t.Subtopology >= len(subs) {
			continue
		}
		sum, ok := int64(0), true
		for _, spec := range subs[t.Subtopology].Stores {
			if !spec.Logged {
				continue
			}
			e, found := ends.Lookup(topology.ChangelogFor(spec.Name).Resolve(a.cfg.appID), t.Partition)
			if !found || e.Err != nil {
				ok = false
				break
			}
			sum += e.Offset
		}
		if ok {
			out[t] = sum
		}
	}
	return out, nil
}

// replica returns the replica of task id, if any.
func (u *updater) replica(id topology.TaskID) *replica {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.replicas[id]
}

// standbys returns the tasks of the standby and warm-up copies.
func (u *updater) standbys() []topology.TaskID {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []topology.TaskID
	for id, r := range u.replicas {
		if !r.restoring {
			out = append(out, id)
		}
	}
	return out
}

// anyRestoring reports whether an assigned task is still restoring.
func (u *updater) anyRestoring() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, r := range u.replicas {
		if r.restoring {
			return true
		}
	}
	return false
}

// setWarmup marks r as a warm-up copy or a plain standby, after a new
// assignment. A warm-up copy asks for a rebalance once it has caught up:
// again after each assignment that still leaves it a warm-up (the leader
// may have found it further behind than it thought).
func (u *updater) setWarmup(r *replica, warm bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	r.warmup, r.probed = warm, false
}

// stopRestoring turns a restoring replica back into a standby copy if
// keep, or closes it. It reports whether r was restoring.
func (u *updater) stopRestoring(r *replica, keep bool) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if !r.restoring {
		return false
	}
	r.restoring, r.topics = false, nil
	if !keep {
		if err := u.closeLocked(r.id); err != nil {
			u.a.log.Error("close the stores of a revoked task", "task", r.id.String(), "err", err)
		}
	}
	return true
}
