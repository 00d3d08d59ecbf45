package assign

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func tasksOf(subs, parts int) []Task {
	var ts []Task
	for s := 0; s < subs; s++ {
		for p := 0; p < parts; p++ {
			ts = append(ts, Task{s, int32(p)})
		}
	}
	return ts
}

func counts(a map[Task]string) map[string]int {
	c := map[string]int{}
	for _, m := range a {
		c[m]++
	}
	return c
}

func checkBalanced(t *testing.T, a map[Task]string, tasks []Task, members []string) {
	t.Helper()
	if len(a) != len(tasks) {
		t.Fatalf("%d of %d tasks assigned", len(a), len(tasks))
	}
	c := counts(a)
	lo, hi := len(tasks), 0
	for _, m := range members {
		lo, hi = min(lo, c[m]), max(hi, c[m])
	}
	if hi-lo > 1 {
		t.Errorf("unbalanced: %v", c)
	}
}

func TestAssignBalancedAndSpread(t *testing.T) {
	tasks := tasksOf(2, 4)
	a := Assign(tasks, []string{"a", "b", "c"}, nil)
	checkBalanced(t, a, tasks, []string{"a", "b", "c"})
	// A sub-topology's partitions spread over the members.
	seen := map[string]bool{}
	for p := 0; p < 3; p++ {
		seen[a[Task{0, int32(p)}]] = true
	}
	if len(seen) != 3 {
		t.Errorf("partitions 0-2 of sub-topology 0 went to %v", seen)
	}
}

func TestAssignSticky(t *testing.T) {
	tasks := tasksOf(1, 6)
	first := Assign(tasks, []string{"a", "b"}, nil)
	// The same members: nothing moves.
	again := Assign(tasks, []string{"a", "b"}, first)
	for task, m := range first {
		if again[task] != m {
			t.Errorf("task %v moved from %s to %s with no change in the group", task, m, again[task])
		}
	}
	// A member joins: it takes its share, and only that moves.
	joined := Assign(tasks, []string{"a", "b", "c"}, first)
	checkBalanced(t, joined, tasks, []string{"a", "b", "c"})
	moved := 0
	for task, m := range first {
		if joined[task] != m {
			moved++
			if joined[task] != "c" {
				t.Errorf("task %v moved between old members: %s -> %s", task, m, joined[task])
			}
		}
	}
	if moved != 2 {
		t.Errorf("%d tasks moved, want 2", moved)
	}
	// A member leaves: only its tasks move.
	left := Assign(tasks, []string{"a", "c"}, joined)
	checkBalanced(t, left, tasks, []string{"a", "c"})
	for task, m := range joined {
		if m != "b" && left[task] != m {
			t.Errorf("task %v of a staying member moved: %s -> %s", task, m, left[task])
		}
	}
}

// TestAssignProperties checks, for random groups and histories (some of
// whose owners have left), that every task is assigned and counts differ by
// at most one. TestAssignSticky checks what stays put.
func TestAssignProperties(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	for i := 0; i < 500; i++ {
		tasks := tasksOf(1+rng.Intn(3), 1+rng.Intn(12))
		var members []string
		for m := 0; m < 1+rng.Intn(5); m++ {
			members = append(members, fmt.Sprintf("m%d", m))
		}
		prev := map[Task]string{}
		for _, task := range tasks {
			if rng.Intn(3) > 0 {
				prev[task] = fmt.Sprintf("m%d", rng.Intn(6)) // some are gone
			}
		}
		a := Assign(tasks, members, prev)
		checkBalanced(t, a, tasks, members)
		if t.Failed() {
			t.Fatalf("case %d: tasks %v members %v prev %v", i, tasks, members, prev)
		}
	}
	if len(Assign(tasksOf(1, 3), nil, nil)) != 0 {
		t.Error("tasks assigned to no members")
	}
}

// TestJoinMetadata checks what a member tells the group: its topics, the
// partitions it owns (sorted, for stickiness and the cooperative protocol)
// and its MemberData, and that the assignment it gets back parses.
func TestJoinMetadata(t *testing.T) {
	b := &Balancer{
		SubtopologyOf: func(string) int { return 0 },
		Data: func() MemberData {
			return MemberData{Version: 1, Host: "h:1", TaskOffsets: map[string]int64{"0_1": 42}}
		},
	}
	raw := b.JoinGroupMetadata([]string{"a", "b"}, map[string][]int32{"b": {1}, "a": {0, 2}}, 7)
	var meta kmsg.ConsumerMemberMetadata
	if err := meta.ReadFrom(raw); err != nil {
		t.Fatal(err)
	}
	if meta.Generation != 7 || len(meta.Topics) != 2 || len(meta.OwnedPartitions) != 2 || meta.OwnedPartitions[0].Topic != "a" {
		t.Errorf("metadata: %+v", meta)
	}
	var md MemberData
	if err := json.Unmarshal(meta.UserData, &md); err != nil || md.Host != "h:1" || md.TaskOffsets["0_1"] != 42 {
		t.Errorf("member data %s: %+v, %v", meta.UserData, md, err)
	}
}
