package riffle

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/riffle-streams/riffle/internal/assign"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/topology"
)

// start opens the state, checks and creates topics, and joins the group.
func (a *App) start(ctx context.Context) error {
	a.setState(Rebalancing)
	var envOpts []state.EnvOption
	envOpts = append(envOpts, state.WithLogger(a.log))
	if a.cfg.memoryBudget > 0 {
		envOpts = append(envOpts, state.WithMemoryBudget(a.cfg.memoryBudget))
	}
	env, err := state.NewEnv(a.cfg.stateDir, envOpts...)
	if err != nil {
		return fmt.Errorf("riffle: %w", err)
	}
	a.env = env

	base := a.clientOpts("admin")
	admCl, err := kgo.NewClient(base...)
	if err != nil {
		return fmt.Errorf("riffle: admin client: %w", err)
	}
	a.adm = kadm.NewClient(admCl)
	if err := a.prepareTopics(ctx); err != nil {
		return err
	}
	a.publishStores()
	// A fresh admin client: the first cached "no such topic" for the
	// topics it just created, which would fail restores for a while.
	a.adm.Close()
	if admCl, err = kgo.NewClient(base...); err != nil {
		return fmt.Errorf("riffle: admin client: %w", err)
	}
	a.adm = kadm.NewClient(admCl)
	if err := a.startGlobals(ctx); err != nil {
		return err
	}
	if err := a.startUpdater(); err != nil {
		return err
	}
	if err := a.startQueries(); err != nil {
		return err
	}

	appID := a.cfg.appID
	var regexes []string
	exact := map[string]bool{}
	for _, st := range a.topo.SubTopologies() {
		for _, tp := range st.SourceTopics {
			exact[tp.Resolve(appID)] = true
		}
		for _, p := range st.SourcePatterns {
			regexes = append(regexes, p.String())
		}
	}
	var consume []kgo.Opt
	if len(regexes) > 0 {
		for t := range exact {
			regexes = append(regexes, "^"+regexp.QuoteMeta(t)+"$")
		}
		consume = []kgo.Opt{kgo.ConsumeRegex(), kgo.ConsumeTopics(regexes...)}
	} else {
		var topics []string
		for t := range exact {
			topics = append(topics, t)
		}
		sort.Strings(topics)
		consume = []kgo.Opt{kgo.ConsumeTopics(topics...)}
	}
	// Heartbeats every second (Kafka's default is 3s): a cooperative move
	// takes two rebalances, and a member learns of the second at its next
	// heartbeat, so this bounds how long a moving task runs nowhere. The
	// user's KafkaOptions come after, and win.
	opts := append([]kgo.Opt{kgo.HeartbeatInterval(time.Second)}, a.clientOpts("group")...)
	opts = append(opts, consume...)
	if id := a.cfg.instanceID; id != "" {
		opts = append(opts, kgo.InstanceID(id))
	}
	opts = append(opts,
		kgo.ConsumerGroup(appID),
		kgo.Balancers(&assign.Balancer{
			SubtopologyOf: func(topic string) int {
				if st := a.topo.SubTopologyOf(appID, topic); st != nil {
					return st.ID
				}
				return -1
			},
			Stateful: func(sub int) bool {
				subs := a.topo.SubTopologies()
				return sub < len(subs) && hasLoggedStores(subs[sub])
			},
			ChangelogEnds: a.changelogEnds,
			Config: assign.Config{
				Standbys:      a.cfg.standbys,
				AcceptableLag: a.cfg.acceptableLag,
				MaxWarmups:    a.cfg.maxWarmups,
			},
			Data: a.memberData,
			OnAssignment: func(assn assign.Assignment) {
				a.assignment.Store(&assn)
				a.assignChanged.Store(true)
			},
		}),
		kgo.DisableAutoCommit(),
		// As Kafka Streams (fetch.max.wait.ms=500): partitions handed over in
		// a rebalance are fetched within half a second.
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.OnPartitionsAssigned(a.onAssigned),
		kgo.OnPartitionsRevoked(a.onRevoked),
		kgo.OnPartitionsLost(a.onLost),
		kgo.RecordPartitioner(&partitioner{keyed: kgo.StickyKeyPartitioner(nil), explicit: a.changelogs}),
	)
	// The client joins the group as soon as it is made, and a fast join
	// calls the rebalance callbacks before NewClient has returned. They
	// take mu first, so holding it until the App has its client makes
	// them wait for it.
	a.mu.Lock()
	defer a.mu.Unlock()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("riffle: client: %w", err)
	}
	if a.clientMade != nil {
		a.clientMade()
	}
	a.cl = cl
	return nil
}

// memberData is what this instance tells the group when it joins: where
// it answers queries, and how far its copies of each task's state are into
// the changelogs (running tasks as of the last commit, standby copies as
// of now, closed tasks' persistent stores as they were left).
func (a *App) memberData() assign.MemberData {
	md := assign.MemberData{Version: 1, Host: a.QueryAddress(), TaskOffsets: map[string]int64{}}
	a.offMu.Lock()
	maps.Copy(md.TaskOffsets, a.closedOffsets)
	a.offMu.Unlock()
	if a.upd != nil {
		a.upd.offsets(md.TaskOffsets)
	}
	if p := a.taskOffsets.Load(); p != nil {
		maps.Copy(md.TaskOffsets, *p)
	}
	return md
}

// prepareTopics checks that the topics the topology reads exist and are
// co-partitioned, and creates the internal topics, or checks the ones that
// exist.
func (a *App) prepareTopics(ctx context.Context) error {
	appID := a.cfg.appID
	subs := a.topo.SubTopologies()
	var external []string
	for _, st := range subs {
		for _, tp := range st.SourceTopics {
			if !tp.Internal {
				external = append(external, tp.Name)
			}
		}
		for _, tp := range st.SinkTopics {
			if !tp.Internal {
				external = append(external, tp.Name)
			}
		}
	}
	var internalNames []string
	for _, it := range a.topo.InternalTopics() {
		internalNames = append(internalNames, it.Resolve(appID))
	}
	details, err := a.adm.ListTopics(ctx, append(append([]string{}, external...), internalNames...)...)
	if err != nil {
		return fmt.Errorf("riffle: list topics: %w", err)
	}
	a.partitions = map[string]int32{}
	var missing []string
	for _, t := range external {
		d, ok := details[t]
		if !ok || d.Err != nil {
			missing = append(missing, t)
			continue
		}
		a.partitions[t] = int32(len(d.Partitions))
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("riffle: topics the topology reads or writes do not exist: %s (Riffle creates only its internal topics)", strings.Join(dedupe(missing), ", "))
	}

	// Partition counts. A sub-topology's count is that of its source
	// topics, which must agree. An external topic has its own; a
	// repartition topic has the count it was given, or else takes that of
	// the other inputs of the sub-topology that reads it (a join of a
	// re-keyed stream, the answers of a foreign-key join: so they are
	// co-partitioned), or else that of the sub-topology that writes it.
	// Counts spread by these rules until nothing changes, whatever the
	// order of the sub-topologies; a changelog takes its store's
	// sub-topology's count.
	count := map[string]int32{} // resolved topic -> partitions
	maps.Copy(count, a.partitions)
	for _, it := range a.topo.InternalTopics() {
		if it.Kind == topology.RepartitionTopic && it.Partitions > 0 {
			count[it.Resolve(appID)] = int32(it.Partitions)
		}
	}
	subParts := make([]int32, len(subs))
	known := func() bool { // sub-topology counts from their known inputs
		changed := false
		for _, st := range subs {
			for _, tp := range st.SourceTopics {
				if c := count[tp.Resolve(appID)]; c > 0 && subParts[st.ID] == 0 {
					subParts[st.ID], changed = c, true
				}
			}
		}
		return changed
	}
	// spread gives the internal topics of each sub-topology of known count
	// that have none its count: all those it reads, as the reader's count
	// wins; or else one it writes, after which readers go first again.
	spread := func(read bool) bool {
		changed := false
		for _, st := range subs {
			n := subParts[st.ID]
			topics := st.SinkTopics
			if read {
				topics = st.SourceTopics
			}
			for _, tp := range topics {
				if name := tp.Resolve(appID); n > 0 && tp.Internal && count[name] == 0 {
					count[name], changed = n, true
					if !read {
						return true
					}
				}
			}
		}
		return changed
	}
	for {
		known()
		if !spread(true) && !spread(false) {
			break
		}
	}
	want := map[string]int32{} // internal topic -> partitions
	for _, st := range subs {
		var parts []string
		for _, tp := range st.SourceTopics {
			name := tp.Resolve(appID)
			c := count[name]
			if c == 0 {
				return fmt.Errorf("riffle: sub-topology %d: no partition count for topic %q", st.ID, name)
			}
			parts = append(parts, fmt.Sprintf("%s (%d partitions)", name, c))
			if c != subParts[st.ID] {
				return fmt.Errorf("riffle: sub-topology %d reads topics that are not co-partitioned: %s", st.ID, strings.Join(parts, ", "))
			}
		}
		if subParts[st.ID] == 0 && len(st.SourcePatterns) > 0 {
			return fmt.Errorf("riffle: sub-topology %d reads only patterns: pattern sources run in the test driver but not yet on Kafka", st.ID)
		}
		for _, tp := range st.SinkTopics {
			if tp.Internal {
				name := tp.Resolve(appID)
				want[name] = count[name]
			}
		}
		for _, spec := range st.Stores {
			if spec.Logged {
				want[topology.ChangelogFor(spec.Name).Resolve(appID)] = subParts[st.ID]
			}
		}
	}
	a.changelogs = map[string]bool{}
	var errs []error
	for _, it := range a.topo.InternalTopics() {
		name := it.Resolve(appID)
		n := want[name]
		configs := map[string]*string{}
		if it.Kind == topology.ChangelogTopic {
			a.changelogs[name] = true
			policy := "compact"
			if k := it.Store.Kind; k == state.KindWindow || k == state.KindSession {
				// Old windows go by time, as in Kafka Streams: retention
				// plus a day.
				policy = "compact,delete"
				retention := strconv.FormatInt((it.Store.Retention + 24*time.Hour).Milliseconds(), 10)
				configs["retention.ms"] = &retention
			}
			configs["cleanup.policy"] = &policy
		}
		if d, ok := details[name]; ok && d.Err == nil {
			if got := int32(len(d.Partitions)); got != n {
				errs = append(errs, fmt.Errorf("riffle: internal topic %q has %d partitions, but the topology needs %d: delete it (and the app's state) or fix the topology", name, got, n))
			}
			a.partitions[name] = n
			continue
		}
		resp, err := a.adm.CreateTopic(ctx, n, int16(a.cfg.replicationFactor), configs, name)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) { // another instance made it first
			errs = append(errs, fmt.Errorf("riffle: create internal topic %q: %w", name, err))
			continue
		}
		a.log.Info("created internal topic", "topic", name, "partitions", n, "kind", it.Kind)
		a.partitions[name] = n
	}
	return errors.Join(errs...)
}

func dedupe(ss []string) []string {
	out := ss[:0]
	for i, s := range ss {
		if i == 0 || s != ss[i-1] {
			out = append(out, s)
		}
	}
	return out
}

// partitioner sends changelog records to the partition they name (the
// task's) and every other record by the hash of its key, as Kafka's default
// partitioner does, so Java clients agree on where a key lives.
type partitioner struct {
	keyed    kgo.Partitioner
	explicit map[string]bool
}

func (p *partitioner) ForTopic(t string) kgo.TopicPartitioner {
	if p.explicit[t] {
		return explicitPartitioner{}
	}
	return p.keyed.ForTopic(t)
}

type explicitPartitioner struct{}

func (explicitPartitioner) RequiresConsistency(*kgo.Record) bool { return true }
func (explicitPartitioner) Partition(r *kgo.Record, _ int) int   { return int(r.Partition) }
