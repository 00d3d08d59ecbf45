package assign

import (
	"encoding/json"
	"math/rand"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func allStateful(Task) bool { return true }

func members(ids ...string) []Member {
	var ms []Member
	for _, id := range ids {
		ms = append(ms, Member{ID: id, Host: id + ":80"})
	}
	return ms
}

// checkCopies checks that every stateful task has want standbys (or as
// many as there are other members), none beside its owner, none twice.
func checkCopies(t *testing.T, p Placement, tasks []Task, ms []Member, want int) {
	t.Helper()
	for _, task := range tasks {
		n := 0
		for _, m := range ms {
			c := 0
			for _, s := range p.Standby[m.ID] {
				if s == task {
					c++
				}
			}
			if c > 1 {
				t.Errorf("%s holds %d copies of %s", m.ID, c, task)
			}
			if c == 1 && p.Active[task] == m.ID {
				t.Errorf("%s keeps a standby of %s, which it runs", m.ID, task)
			}
			n += c
		}
		if exp := min(want, len(ms)-1); n < exp {
			t.Errorf("%s has %d standbys, want %d", task, n, exp)
		}
	}
}

func TestPlaceStandbys(t *testing.T) {
	tasks := tasksOf(2, 6)
	for _, n := range []int{1, 2, 5} {
		ms := members("a", "b", "c")
		p := Place(tasks, allStateful, ms, nil, nil, Config{Standbys: n})
		checkBalanced(t, p.Active, tasks, []string{"a", "b", "c"})
		checkCopies(t, p, tasks, ms, n)
		// Standbys are spread: with one each, every member keeps 4.
		if n == 1 {
			for _, m := range ms {
				if len(p.Standby[m.ID]) != 4 {
					t.Errorf("standbys %v", p.Standby)
				}
			}
		}
	}
	// A stateless task has none.
	p := Place(tasks, func(t Task) bool { return t.Subtopology == 1 }, members("a", "b"), nil, nil, Config{Standbys: 1})
	for _, ts := range p.Standby {
		for _, task := range ts {
			if task.Subtopology != 1 {
				t.Errorf("standby of stateless task %s", task)
			}
		}
	}
}

// TestPlaceStandbyPrefersState: a standby goes to the member that holds
// the most of the task's state.
func TestPlaceStandbyPrefersState(t *testing.T) {
	tasks := []Task{{0, 0}}
	ms := members("a", "b", "c")
	ms[2].Offsets = map[Task]int64{{0, 0}: 500}
	ms[1].Offsets = map[Task]int64{{0, 0}: 100}
	p := Place(tasks, allStateful, ms, map[Task]string{{0, 0}: "a"}, nil, Config{Standbys: 1})
	if p.Active[Task{0, 0}] != "a" || !slices.Equal(p.Standby["c"], []Task{{0, 0}}) {
		t.Errorf("placement %+v", p)
	}
}

// TestPlaceWarmup: a member joins with no state; the stateful tasks the
// balance would give it stay with their owners while it warms up copies
// (no more than MaxWarmups), stateless ones move at once; once its copies
// have caught up, the tasks move.
func TestPlaceWarmup(t *testing.T) {
	// Sub-topology 0 is stateless, 1 stateful: the balance would keep 0's
	// tasks on a and move 1's.
	tasks := tasksOf(2, 4)
	stateful := func(t Task) bool { return t.Subtopology == 1 }
	prev := map[Task]string{}
	for _, task := range tasks {
		prev[task] = "a"
	}
	ends := map[Task]int64{}
	for _, task := range tasks {
		ends[task] = 1_000_000
	}
	cfg := Config{AcceptableLag: 100, MaxWarmups: 1}
	ms := members("a", "b")
	p := Place(tasks, stateful, ms, prev, ends, cfg)
	var moved, warm []Task
	for _, task := range tasks {
		if p.Active[task] == "b" {
			moved = append(moved, task)
		}
	}
	warm = p.Warmup["b"]
	for _, task := range moved {
		if stateful(task) {
			t.Errorf("stateful task %s moved to a member with no state", task)
		}
	}
	// Stateless tasks move instead, to keep the counts even.
	checkBalanced(t, p.Active, tasks, []string{"a", "b"})
	if len(moved) != 4 || len(warm) != 1 || !slices.Equal(p.Standby["b"], warm) {
		t.Fatalf("moved %v, warm-ups %v, standbys %v", moved, warm, p.Standby)
	}
	// The warm-up catches up, to within the lag: it moves.
	ms[1].Offsets = map[Task]int64{warm[0]: 1_000_000 - 100}
	for _, task := range moved {
		prev[task] = "b"
	}
	p = Place(tasks, stateful, ms, prev, ends, cfg)
	if p.Active[warm[0]] != "b" {
		t.Errorf("caught-up warm-up %s stays with %s", warm[0], p.Active[warm[0]])
	}
	checkBalanced(t, p.Active, tasks, []string{"a", "b"})
	if len(p.Warmup["b"]) != 1 || p.Warmup["b"][0] == warm[0] {
		t.Errorf("next warm-up: %v", p.Warmup)
	}
	// One record more behind: it does not.
	ms[1].Offsets[warm[0]]--
	p = Place(tasks, stateful, ms, prev, ends, cfg)
	if p.Active[warm[0]] != "a" {
		t.Errorf("lagging warm-up %s moved", warm[0])
	}
	// Without warm-ups, tasks move at once.
	p = Place(tasks, stateful, ms, prev, ends, Config{AcceptableLag: 100})
	checkBalanced(t, p.Active, tasks, []string{"a", "b"})
	// Unknown ends: only the previous owner counts as caught up.
	p = Place(tasks, stateful, members("a", "b"), prev, nil, cfg)
	if len(p.Warmup["b"]) != 1 {
		t.Errorf("warm-ups with unknown ends: %v", p.Warmup)
	}
}

// TestPlaceFailover: the owner is gone; its task goes to the member with a
// caught-up standby, even if the balance would put it elsewhere, and a
// task nobody has caught up on goes where the balance puts it.
func TestPlaceFailover(t *testing.T) {
	tasks := []Task{{0, 0}, {0, 1}}
	ms := members("b", "c")
	ms[1].Offsets = map[Task]int64{{0, 0}: 990, {0, 1}: 10}
	ends := map[Task]int64{{0, 0}: 1000, {0, 1}: 1000}
	prev := map[Task]string{{0, 0}: "gone", {0, 1}: "gone"}
	p := Place(tasks, allStateful, ms, prev, ends, Config{AcceptableLag: 10, MaxWarmups: 2, Standbys: 1})
	if p.Active[Task{0, 0}] != "c" {
		t.Errorf("task 0_0 went to %s, not to its caught-up standby c", p.Active[Task{0, 0}])
	}
	checkCopies(t, p, tasks, ms, 1)
	if owner := p.Active[Task{0, 1}]; owner == "" {
		t.Errorf("task 0_1 unassigned")
	}
}

// TestBalanceRoundTrip runs the balancer as the group leader would and
// parses each member's assignment: partitions, standbys and the host map.
func TestBalanceRoundTrip(t *testing.T) {
	topicsOf := map[string]int{"in": 0, "app-agg-repartition": 1}
	var got []Assignment
	b := &Balancer{
		SubtopologyOf: func(topic string) int {
			if s, ok := topicsOf[topic]; ok {
				return s
			}
			return -1
		},
		Stateful:      func(s int) bool { return s == 1 },
		ChangelogEnds: func(ts []Task) (map[Task]int64, error) { return nil, nil },
		Config:        Config{Standbys: 1, MaxWarmups: 2},
		OnAssignment:  func(a Assignment) { got = append(got, a) },
	}
	var jm []kmsg.JoinGroupResponseMember
	for _, id := range []string{"m1", "m2"} {
		m := kmsg.NewJoinGroupResponseMember()
		m.MemberID = id
		md := &Balancer{SubtopologyOf: b.SubtopologyOf, Data: func() MemberData { return MemberData{Version: 1, Host: id + ":8080"} }}
		m.ProtocolMetadata = md.JoinGroupMetadata([]string{"in", "app-agg-repartition"}, nil, -1)
		jm = append(jm, m)
	}
	gmb, _, err := b.MemberBalancer(jm)
	if err != nil {
		t.Fatal(err)
	}
	into, err := gmb.(*kgo.ConsumerBalancer).BalanceOrError(map[string]int32{"in": 2, "app-agg-repartition": 2})
	if err != nil {
		t.Fatal(err)
	}
	parts := map[string]map[string][]int32{}
	for _, sa := range into.IntoSyncAssignment() {
		ps, err := b.ParseSyncAssignment(sa.MemberAssignment)
		if err != nil {
			t.Fatal(err)
		}
		parts[sa.MemberID] = ps
	}
	if len(got) != 2 {
		t.Fatalf("%d assignments parsed", len(got))
	}
	for i, a := range got {
		if len(a.Hosts) != 2 || len(a.Standby) != 1 || a.Standby[0].Subtopology != 1 {
			t.Errorf("assignment %d: %+v", i, a)
		}
		h := a.Hosts[[]string{"m1", "m2"}[i]+":8080"]
		if len(h.Active) != 2 || len(h.Standby) != 1 {
			t.Errorf("assignment %d: own host %+v", i, h)
		}
	}
	if len(parts["m1"]["in"])+len(parts["m2"]["in"]) != 2 || len(parts["m1"]["app-agg-repartition"]) != 1 {
		t.Errorf("partitions %v", parts)
	}
	raw, _ := json.Marshal(got[0])
	t.Logf("assignment data: %s", raw)
}

func TestTaskText(t *testing.T) {
	var task Task
	if err := task.UnmarshalText([]byte("3_12")); err != nil || task != (Task{3, 12}) {
		t.Errorf("3_12: %v %v", task, err)
	}
	for _, bad := range []string{"", "3", "a_1", "-1_2", "1_-2"} {
		if err := task.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("%q parsed as %v", bad, task)
		}
	}
}

// TestPlaceStandbysSpreadDespiteState: one member has state for every
// task (it ran them all); standbys still spread evenly.
func TestPlaceStandbysSpreadDespiteState(t *testing.T) {
	tasks := tasksOf(1, 6)
	ms := members("a", "b", "c")
	ms[0].Offsets = map[Task]int64{}
	for _, task := range tasks {
		ms[0].Offsets[task] = 100
	}
	p := Place(tasks, allStateful, ms, nil, nil, Config{Standbys: 1})
	checkCopies(t, p, tasks, ms, 1)
	for _, m := range ms {
		if len(p.Standby[m.ID]) != 2 {
			t.Errorf("standbys %v", p.Standby)
		}
	}
}

// TestPlaceStandbysEvenRandom: three members, six stateful tasks, one
// standby each, whatever state the members hold and whoever ran what: each
// member runs two tasks and keeps two copies. (Preferring state on hand
// once left a member with none: the copies it could hold had gone to the
// others.)
func TestPlaceStandbysEvenRandom(t *testing.T) {
	tasks := tasksOf(1, 6)
	r := rand.New(rand.NewSource(7))
	for i := range 500 {
		ms := members("a", "b", "c")
		prev := map[Task]string{}
		for _, task := range tasks {
			for j := range ms {
				if r.Intn(2) == 0 {
					if ms[j].Offsets == nil {
						ms[j].Offsets = map[Task]int64{}
					}
					ms[j].Offsets[task] = int64(r.Intn(3)) * 100
				}
			}
			if r.Intn(3) > 0 {
				prev[task] = ms[r.Intn(3)].ID
			}
		}
		p := Place(tasks, allStateful, ms, prev, nil, Config{Standbys: 1})
		checkCopies(t, p, tasks, ms, 1)
		for _, m := range ms {
			if len(p.Standby[m.ID]) != 2 {
				t.Fatalf("case %d: standbys %v, active %v", i, p.Standby, p.Active)
			}
		}
	}
}
