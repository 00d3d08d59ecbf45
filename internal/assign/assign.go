// Package assign is Riffle's consumer-group balancer: it hands out tasks,
// not partitions.
//
// A task is a sub-topology and a partition number. Every topic a
// sub-topology reads is assigned, for that partition, to the member that
// owns the task, so co-partitioned topics always travel together. The
// balancer is sticky (a task stays with its owner while the group stays
// balanced) and cooperative (a task that moves is first revoked from its old
// owner, which keeps processing the rest, and given to its new owner in a
// follow-up rebalance).
//
// Members carry their own metadata in the join request (MemberData): the
// host:port they answer queries on, and how far their local copies of each
// task's stores are into the changelogs. With those the leader also places
// standby copies of stateful tasks (never beside the active copy, on the
// members that hold the most state already) and keeps a stateful task with
// a member that has caught-up state when the balanced owner has none,
// giving that owner a warm-up copy instead: once it has caught up it
// rejoins, and the next rebalance moves the task with only a short tail to
// restore (Kafka Streams' KIP-441). Each member's assignment carries its
// standby and warm-up tasks and, for queries, which host runs and keeps
// which task (Assignment).
package assign

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Protocol is the name of the group protocol every member must speak.
const Protocol = "riffle-tasks"

// Task is a sub-topology and a partition.
type Task struct {
	Subtopology int
	Partition   int32
}

func (t Task) String() string { return fmt.Sprintf("%d_%d", t.Subtopology, t.Partition) }

// MemberData is what a member tells the group about itself.
type MemberData struct {
	// Version of the encoding.
	Version int `json:"v"`
	// Host is the host:port the member serves queries on, if any.
	Host string `json:"host,omitempty"`
	// TaskOffsets are, for the tasks whose state the member holds, how far
	// their stores are into their changelogs (the sum over the task's
	// stores): what warm-up compares with the changelogs' ends.
	TaskOffsets map[string]int64 `json:"offsets,omitempty"`
}

// Assignment is what a member is told besides its partitions.
type Assignment struct {
	// Version of the encoding.
	Version int `json:"v"`
	// Standby are the tasks the member keeps standby copies of, warm-ups
	// included.
	Standby []Task `json:"standby,omitempty"`
	// Warmup are the tasks of Standby the member is to catch up on so that
	// it can take them over.
	Warmup []Task `json:"warmup,omitempty"`
	// Hosts says, for each member that serves queries, which tasks it runs
	// and which it keeps standby copies of.
	Hosts map[string]HostTasks `json:"hosts,omitempty"`
	// Active are the tasks of the member's partitions: filled in by
	// ParseSyncAssignment, not sent.
	Active []Task `json:"-"`
}

// HostTasks are the tasks of one host.
type HostTasks struct {
	Active  []Task `json:"active,omitempty"`
	Standby []Task `json:"standby,omitempty"`
}

// MarshalText writes a task as "1_3".
func (t Task) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText reads a task written as "1_3".
func (t *Task) UnmarshalText(b []byte) error {
	var s int
	var p int32
	if _, err := fmt.Sscanf(string(b), "%d_%d", &s, &p); err != nil || s < 0 || p < 0 {
		return fmt.Errorf("assign: task %q is not <sub-topology>_<partition>", b)
	}
	t.Subtopology, t.Partition = s, p
	return nil
}

// Balancer is a kgo.GroupBalancer that assigns tasks.
type Balancer struct {
	// SubtopologyOf returns the sub-topology that reads topic, or -1.
	SubtopologyOf func(topic string) int
	// Stateful reports whether a sub-topology's tasks have logged stores,
	// which standbys and warm-ups are for. Nil means none has.
	Stateful func(subtopology int) bool
	// ChangelogEnds returns, for stateful tasks, the sum of the end offsets
	// of their changelog partitions, to compare with members'
	// TaskOffsets. It is called on the leader while it balances. A task
	// missing from the answer, or an error, counts as unknown: then only
	// its previous owner counts as caught up.
	ChangelogEnds func(tasks []Task) (map[Task]int64, error)
	// Config sets standbys and warm-ups.
	Config Config
	// Data returns this member's metadata when it joins the group. It is
	// called from the client's goroutine.
	Data func() MemberData
	// OnAssignment is given this member's Assignment when the group has
	// been balanced, before its partitions are assigned.
	OnAssignment func(Assignment)
}

// Config sets how the balancer places copies of state.
type Config struct {
	// Standbys is how many standby copies each stateful task has, on
	// members other than its owner (num.standby.replicas).
	Standbys int
	// AcceptableLag is how many changelog records a member may be behind
	// and still count as caught up on a task (acceptable.recovery.lag).
	AcceptableLag int64
	// MaxWarmups is how many warm-up copies the group holds at once
	// (max.warmup.replicas); 0 means no warm-ups: a task moves at once and
	// its new owner restores it.
	MaxWarmups int
}

var _ kgo.GroupBalancer = (*Balancer)(nil)

// ProtocolName implements kgo.GroupBalancer.
func (b *Balancer) ProtocolName() string { return Protocol }

// IsCooperative implements kgo.GroupBalancer.
func (b *Balancer) IsCooperative() bool { return true }

// JoinGroupMetadata implements kgo.GroupBalancer: the topics, the partitions
// this member owns (which make the balance sticky and cooperative) and its
// MemberData.
func (b *Balancer) JoinGroupMetadata(interests []string, current map[string][]int32, generation int32) []byte {
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Version = 3
	meta.Topics = interests
	meta.Generation = generation
	topics := make([]string, 0, len(current))
	for t := range current {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	for _, t := range topics {
		owned := kmsg.NewConsumerMemberMetadataOwnedPartition()
		owned.Topic = t
		owned.Partitions = current[t]
		meta.OwnedPartitions = append(meta.OwnedPartitions, owned)
	}
	var md MemberData
	if b.Data != nil {
		md = b.Data()
	}
	data, _ := json.Marshal(md) // strings and numbers always marshal
	meta.UserData = data
	return meta.AppendTo(nil)
}

// ParseSyncAssignment implements kgo.GroupBalancer: it hands the
// member's Assignment to OnAssignment.
func (b *Balancer) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	var kassn kmsg.ConsumerMemberAssignment
	if err := kassn.ReadFrom(assignment); err != nil {
		return nil, fmt.Errorf("assign: read the assignment: %w", err)
	}
	var assn Assignment
	if len(kassn.UserData) > 0 {
		if err := json.Unmarshal(kassn.UserData, &assn); err != nil {
			return nil, fmt.Errorf("assign: read the assignment's task data: %w", err)
		}
	}
	out := make(map[string][]int32, len(kassn.Topics))
	seen := map[Task]bool{}
	for _, t := range kassn.Topics {
		out[t.Topic] = t.Partitions
		if s := b.SubtopologyOf(t.Topic); s >= 0 {
			for _, p := range t.Partitions {
				if task := (Task{s, p}); !seen[task] {
					seen[task] = true
					assn.Active = append(assn.Active, task)
				}
			}
		}
	}
	sortTasks(assn.Active)
	if b.OnAssignment != nil {
		b.OnAssignment(assn)
	}
	return out, nil
}

// MemberBalancer implements kgo.GroupBalancer.
func (b *Balancer) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	cb, err := kgo.NewConsumerBalancer(b, members)
	if err != nil {
		return nil, nil, err
	}
	return cb, cb.MemberTopics(), nil
}

// Balance implements kgo.ConsumerBalancerBalance.
func (b *Balancer) Balance(cb *kgo.ConsumerBalancer, topics map[string]int32) kgo.IntoSyncAssignment {
	plan, err := b.plan(cb, topics)
	if err != nil {
		cb.SetError(err)
		return nil
	}
	return plan
}

func (b *Balancer) plan(cb *kgo.ConsumerBalancer, topics map[string]int32) (kgo.IntoSyncAssignment, error) {
	// The topics of each sub-topology, which must agree on partitions.
	subTopics := map[int][]string{}
	for t := range topics {
		if s := b.SubtopologyOf(t); s >= 0 {
			subTopics[s] = append(subTopics[s], t)
		}
	}
	var tasks []Task
	var subs []int
	for s := range subTopics {
		subs = append(subs, s)
	}
	sort.Ints(subs)
	for _, s := range subs {
		ts := subTopics[s]
		sort.Strings(ts)
		n := topics[ts[0]]
		for _, t := range ts[1:] {
			if topics[t] != n {
				var parts []string
				for _, t := range ts {
					parts = append(parts, fmt.Sprintf("%s (%d partitions)", t, topics[t]))
				}
				return nil, fmt.Errorf("riffle: sub-topology %d reads topics that are not co-partitioned: %s", s, strings.Join(parts, ", "))
			}
		}
		for p := int32(0); p < n; p++ {
			tasks = append(tasks, Task{s, p})
		}
	}

	// Who owned what before, and what each member holds.
	var members []Member
	memberIdx := map[string]*kmsg.JoinGroupResponseMember{}
	prev := map[Task]string{}
	cb.EachMember(func(m *kmsg.JoinGroupResponseMember, meta *kmsg.ConsumerMemberMetadata) {
		memberIdx[m.MemberID] = m
		mem := Member{ID: m.MemberID}
		var md MemberData
		if json.Unmarshal(meta.UserData, &md) == nil {
			mem.Host = md.Host
			for t, off := range md.TaskOffsets {
				var task Task
				if task.UnmarshalText([]byte(t)) == nil {
					if mem.Offsets == nil {
						mem.Offsets = map[Task]int64{}
					}
					mem.Offsets[task] = off
				}
			}
		}
		members = append(members, mem)
		for _, owned := range meta.OwnedPartitions {
			s := b.SubtopologyOf(owned.Topic)
			if s < 0 {
				continue
			}
			for _, p := range owned.Partitions {
				prev[Task{s, p}] = m.MemberID
			}
		}
	})
	stateful := func(t Task) bool { return b.Stateful != nil && b.Stateful(t.Subtopology) }
	var ends map[Task]int64
	if b.ChangelogEnds != nil {
		var st []Task
		for _, t := range tasks {
			if stateful(t) {
				st = append(st, t)
			}
		}
		if len(st) > 0 {
			ends, _ = b.ChangelogEnds(st) // unknown ends: previous owners count as caught up
		}
	}
	p := Place(tasks, stateful, members, prev, ends, b.Config)

	plan := cb.NewPlan()
	for _, task := range tasks {
		m := memberIdx[p.Active[task]]
		for _, t := range subTopics[task.Subtopology] {
			plan.AddPartition(m, t, task.Partition)
		}
	}
	plan.AdjustCooperative(cb)

	// What each member runs once the moves are done with: a task held back
	// from its new owner until its old owner has let go of it is warmed
	// there meanwhile, so it does not start from nothing.
	runs := map[string]map[Task]bool{}
	for member, ts := range plan.AsMemberIDMap() {
		runs[member] = map[Task]bool{}
		for topic, parts := range ts {
			if s := b.SubtopologyOf(topic); s >= 0 {
				for _, part := range parts {
					runs[member][Task{s, part}] = true
				}
			}
		}
	}
	for _, task := range tasks {
		owner := p.Active[task]
		if !runs[owner][task] && stateful(task) && !slices.Contains(p.Standby[owner], task) {
			p.Standby[owner] = append(p.Standby[owner], task)
		}
	}
	hosts := map[string]HostTasks{}
	for _, m := range members {
		if m.Host == "" {
			continue
		}
		ht := hosts[m.Host]
		for _, task := range tasks {
			if runs[m.ID][task] {
				ht.Active = append(ht.Active, task)
			}
		}
		for _, task := range p.Standby[m.ID] {
			if !runs[m.ID][task] {
				ht.Standby = append(ht.Standby, task)
			}
		}
		sortTasks(ht.Standby)
		hosts[m.Host] = ht
	}
	out := make(syncAssignment, 0, len(members))
	for _, m := range members {
		assn := Assignment{Version: 1, Hosts: hosts, Warmup: p.Warmup[m.ID]}
		for _, task := range p.Standby[m.ID] {
			if !runs[m.ID][task] {
				assn.Standby = append(assn.Standby, task)
			}
		}
		sortTasks(assn.Standby)
		sortTasks(assn.Warmup)
		var kassn kmsg.ConsumerMemberAssignment
		kassn.Version = 3
		var names []string
		for topic := range plan.AsMemberIDMap()[m.ID] {
			names = append(names, topic)
		}
		sort.Strings(names)
		for _, topic := range names {
			at := kmsg.NewConsumerMemberAssignmentTopic()
			at.Topic = topic
			at.Partitions = slices.Sorted(slices.Values(plan.AsMemberIDMap()[m.ID][topic]))
			kassn.Topics = append(kassn.Topics, at)
		}
		kassn.UserData, _ = json.Marshal(assn) // tasks, strings and slices always marshal
		sa := kmsg.NewSyncGroupRequestGroupAssignment()
		sa.MemberID = m.ID
		sa.MemberAssignment = kassn.AppendTo(nil)
		out = append(out, sa)
	}
	return out, nil
}

type syncAssignment []kmsg.SyncGroupRequestGroupAssignment

func (s syncAssignment) IntoSyncAssignment() []kmsg.SyncGroupRequestGroupAssignment { return s }

func sortTasks(ts []Task) {
	slices.SortFunc(ts, func(a, b Task) int {
		if a.Subtopology != b.Subtopology {
			return a.Subtopology - b.Subtopology
		}
		return int(a.Partition - b.Partition)
	})
}

// Member is what the balancer knows of a member.
type Member struct {
	ID   string
	Host string
	// Offsets are the member's TaskOffsets.
	Offsets map[Task]int64
}

// Placement is where tasks and their copies go.
type Placement struct {
	// Active is each task's owner.
	Active map[Task]string
	// Standby are, by member, the tasks it keeps copies of, warm-ups
	// included.
	Standby map[string][]Task
	// Warmup are, by member, the tasks it warms up to take over.
	Warmup map[string][]Task
}

// Place decides who runs each task and who keeps copies of stateful
// tasks' state. Tasks are first spread evenly and stickily (Assign), the
// stateful ones and the stateless ones each on their own. A
// stateful task whose owner would change to a member that is not caught up
// on it (more than cfg.AcceptableLag records behind its changelogs' ends,
// ends) stays with a member that is, its previous owner first, while the
// balanced owner warms up a copy; at most cfg.MaxWarmups at once, and a
// task with no caught-up member goes where the balance puts it. Stateless
// tasks then move to even out the counts as far as they can. Then each
// stateful task gets cfg.Standbys standby copies on other members: among
// those under their share of copies, the ones with the most of its state
// first, then those with the fewest copies; then copies move from the
// members with the most to those with the fewest, as far as they may.
// members are in a stable order.
func Place(tasks []Task, stateful func(Task) bool, members []Member, prev map[Task]string, ends map[Task]int64, cfg Config) Placement {
	ids := make([]string, len(members))
	byID := make(map[string]*Member, len(members))
	for i := range members {
		ids[i] = members[i].ID
		byID[members[i].ID] = &members[i]
	}
	p := Placement{Active: map[Task]string{}, Standby: map[string][]Task{}, Warmup: map[string][]Task{}}
	if len(members) == 0 {
		return p
	}
	// Stateful and stateless tasks are spread each on their own, so that
	// state spreads evenly; the stateless ones go first to the members
	// with the fewest stateful ones.
	var withState, without []Task
	for _, t := range tasks {
		if stateful(t) {
			withState = append(withState, t)
		} else {
			without = append(without, t)
		}
	}
	maps.Copy(p.Active, Assign(withState, ids, prev))
	n := map[string]int{}
	for _, m := range p.Active {
		n[m]++
	}
	byLoad := slices.Clone(ids)
	slices.SortStableFunc(byLoad, func(a, b string) int { return n[a] - n[b] })
	maps.Copy(p.Active, Assign(without, byLoad, prev))
	caughtUp := func(m string, t Task) bool {
		if prev[t] == m {
			return true
		}
		end, ok := ends[t]
		if !ok {
			return false
		}
		off, has := byID[m].Offsets[t]
		return end == 0 || has && off >= end-cfg.AcceptableLag
	}
	warmups, held := 0, false
	for _, t := range tasks {
		target := p.Active[t]
		if !stateful(t) || caughtUp(target, t) {
			continue
		}
		keeper := ""
		if m, ok := byID[prev[t]]; ok {
			keeper = m.ID
		} else {
			for _, m := range members {
				if caughtUp(m.ID, t) && (keeper == "" || m.Offsets[t] > byID[keeper].Offsets[t]) {
					keeper = m.ID
				}
			}
		}
		if keeper == "" || cfg.MaxWarmups <= 0 {
			continue // nobody has it: the balanced owner restores it
		}
		p.Active[t] = keeper
		held = true
		if warmups < cfg.MaxWarmups {
			warmups++
			p.Warmup[target] = append(p.Warmup[target], t)
			p.Standby[target] = append(p.Standby[target], t)
		}
	}
	if held {
		evenOut(p.Active, tasks, stateful, ids)
	}
	if cfg.Standbys <= 0 {
		return p
	}
	copies := map[string]int{}
	for m, ts := range p.Standby {
		copies[m] = len(ts)
	}
	// No member keeps more than its share of copies, so that standbys
	// spread evenly; within it, state on hand wins.
	total := 0
	for _, t := range tasks {
		if stateful(t) {
			total += min(cfg.Standbys, len(members)-1)
		}
	}
	share := (total + len(members) - 1) / len(members)
	for _, t := range tasks {
		if !stateful(t) {
			continue
		}
		have := 0
		for _, m := range members {
			if slices.Contains(p.Standby[m.ID], t) {
				have++
			}
		}
		for have < cfg.Standbys {
			best := ""
			for _, m := range members {
				if m.ID == p.Active[t] || slices.Contains(p.Standby[m.ID], t) {
					continue
				}
				if best == "" {
					best = m.ID
					continue
				}
				mFull, bFull := copies[m.ID] >= share, copies[best] >= share
				mo, bo := m.Offsets[t], byID[best].Offsets[t]
				switch {
				case mFull != bFull:
					if !mFull {
						best = m.ID
					}
				case mFull:
					if copies[m.ID] < copies[best] {
						best = m.ID
					}
				case mo > bo || mo == bo && copies[m.ID] < copies[best]:
					best = m.ID
				}
			}
			if best == "" {
				break // fewer other members than standbys
			}
			p.Standby[best] = append(p.Standby[best], t)
			copies[best]++
			have++
		}
	}
	evenCopies(p, ids, copies)
	return p
}

// evenCopies moves standby copies from the member with the most to the
// one with the fewest while they differ by more than one: preferring state
// on hand can leave a member with none it may hold (copies of its own
// tasks go elsewhere). Warm-up copies stay where they are.
func evenCopies(p Placement, ids []string, copies map[string]int) {
	for range len(p.Active) * 2 {
		lo, hi := extremes(ids, copies)
		if copies[hi]-copies[lo] <= 1 {
			return
		}
		moved := false
		for i, t := range p.Standby[hi] {
			if p.Active[t] == lo || slices.Contains(p.Standby[lo], t) || slices.Contains(p.Warmup[hi], t) {
				continue
			}
			p.Standby[hi] = slices.Delete(p.Standby[hi], i, i+1)
			p.Standby[lo] = append(p.Standby[lo], t)
			copies[hi]--
			copies[lo]++
			moved = true
			break
		}
		if !moved {
			return
		}
	}
}

// extremes returns the first of ids with the fewest and the first with
// the most, by n.
func extremes(ids []string, n map[string]int) (lo, hi string) {
	lo, hi = ids[0], ids[0]
	for _, m := range ids {
		if n[m] < n[lo] {
			lo = m
		}
		if n[m] > n[hi] {
			hi = m
		}
	}
	return lo, hi
}

// evenOut moves stateless tasks from the most loaded members to the least
// loaded, to make up for stateful tasks held back from the members that
// warm them up.
func evenOut(active map[Task]string, tasks []Task, stateful func(Task) bool, ids []string) {
	count := map[string]int{}
	for _, m := range active {
		count[m]++
	}
	for {
		lo, hi := extremes(ids, count)
		if count[hi]-count[lo] <= 1 {
			return
		}
		moved := false
		for _, t := range tasks {
			if active[t] == hi && !stateful(t) {
				active[t] = lo
				count[hi]--
				count[lo]++
				moved = true
				break
			}
		}
		if !moved {
			return
		}
	}
}

// Assign gives each task to a member: as evenly as can be (counts differ by
// at most one), keeping a task with its previous owner where that owner is
// still a member and under its share. members is in a stable order; tasks
// are given out in order, so a sub-topology's partitions spread across the
// members.
func Assign(tasks []Task, members []string, prev map[Task]string) map[Task]string {
	out := make(map[Task]string, len(tasks))
	if len(members) == 0 {
		return out
	}
	count := make(map[string]int, len(members))
	isMember := make(map[string]bool, len(members))
	for _, m := range members {
		isMember[m] = true
	}
	// Each member's share: base, and base+1 for the first extra ones.
	base, extra := len(tasks)/len(members), len(tasks)%len(members)
	// Keep previous owners first, while they are under the larger share;
	// the extra slots are used up as members reach base+1.
	full := 0
	for _, t := range tasks {
		m, ok := prev[t]
		if !ok || !isMember[m] {
			continue
		}
		limit := base
		if full < extra {
			limit = base + 1
		}
		if count[m] < limit {
			out[t] = m
			count[m]++
			if count[m] == base+1 {
				full++
			}
		}
	}
	for _, t := range tasks {
		if _, ok := out[t]; ok {
			continue
		}
		best := ""
		for _, m := range members {
			if best == "" || count[m] < count[best] {
				best = m
			}
		}
		out[t] = best
		count[best]++
	}
	return out
}
