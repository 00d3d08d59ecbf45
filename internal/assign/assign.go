// Package assign is Riffle's consumer-group balancer: it hands out tasks,
// not partitions.
//
// A task is a sub-topology and a partition number. Every topic a
// sub-topology reads is assigned, for that partition, to the member that
// owns the task, so co-partitioned topics always travel together. The
// balancer is sticky (a task stays with its owner while the group stays
// balanced) and cooperative (a task that moves is first revoked from its old
// owner, which keeps processing the rest, and given to its new owner in a
// follow-up rebalance). Members carry their own metadata in the join
// request: the runtime puts what later issues need (host:port for queries,
// task offsets for warm-up) there.
package assign

import (
	"encoding/json"
	"fmt"
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

// Balancer is a kgo.GroupBalancer that assigns tasks.
type Balancer struct {
	// SubtopologyOf returns the sub-topology that reads topic, or -1.
	SubtopologyOf func(topic string) int
	// Data returns this member's metadata when it joins the group. It is
	// called from the client's goroutine.
	Data func() MemberData
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

// ParseSyncAssignment implements kgo.GroupBalancer.
func (b *Balancer) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	return kgo.ParseConsumerSyncAssignment(assignment)
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

func (b *Balancer) plan(cb *kgo.ConsumerBalancer, topics map[string]int32) (*kgo.BalancePlan, error) {
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

	// Who owned what before.
	var members []string
	memberIdx := map[string]*kmsg.JoinGroupResponseMember{}
	prev := map[Task]string{}
	cb.EachMember(func(m *kmsg.JoinGroupResponseMember, meta *kmsg.ConsumerMemberMetadata) {
		members = append(members, m.MemberID)
		memberIdx[m.MemberID] = m
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
	owners := Assign(tasks, members, prev)
	plan := cb.NewPlan()
	for _, task := range tasks {
		m := memberIdx[owners[task]]
		for _, t := range subTopics[task.Subtopology] {
			plan.AddPartition(m, t, task.Partition)
		}
	}
	plan.AdjustCooperative(cb)
	return plan, nil
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
