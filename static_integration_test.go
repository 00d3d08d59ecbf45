package riffle_test

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/riffle-streams/riffle"
	"github.com/riffle-streams/riffle/internal/itest"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/stream"
	"github.com/riffle-streams/riffle/topology"
)

// TestStaticMembershipRestart: two instances with instance ids; the
// follower restarts (gracefully, on the same state) within the session
// timeout. It gets its tasks back without a rebalance: the other instance
// sees none (on Kafka; the embedded broker rebalances, but no task may
// move), and goes on counting; the counts stay exact.
func TestStaticMembershipRestart(t *testing.T) {
	run := fmt.Sprint(time.Now().UnixNano())
	appID, in, out := "static-"+run, "static-in-"+run, "static-out-"+run
	k := itest.Setup(t, itest.Spec{
		Partitions: 4,
		Topics:     []string{in, out},
		Delete:     []string{appID + "-counts-changelog"},
		Groups:     []string{appID},
	})
	b := topology.NewBuilder()
	counts := stream.From[string, string](b, in).GroupByKey().Count(stream.Named("counts"))
	stream.ToStream(counts).To(out, stream.WithValueSerde(serde.Int64()))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	start := func(name, id, dir string) (*itest.Running, *itest.LogRecorder) {
		return startApp(t, k, name, appID, topo, riffle.StateDir(dir), riffle.InstanceID(id),
			riffle.KafkaOptions(kgo.SessionTimeout(30*time.Second), kgo.HeartbeatInterval(500*time.Millisecond)))
	}
	sent := map[string]int64{}
	produce := func(keys ...string) {
		t.Helper()
		for _, key := range keys {
			sent[key]++
			k.ProduceKV(t, in, key+"=x")
		}
	}
	tail := k.NewTail(t, out)
	exact := func(what string) {
		t.Helper()
		tail.Until(t, itest.Timeout(), what, func(latest map[string][]byte) (bool, string) {
			var bad []string
			for key, n := range sent {
				if got, _ := serde.Int64().Decode(latest[key]); got != n {
					bad = append(bad, fmt.Sprintf("%s=%d (want %d)", key, got, n))
				}
			}
			sort.Strings(bad)
			return len(bad) == 0, strings.Join(bad, ", ")
		})
	}
	keys := []string{"a", "b", "c", "d", "e", "f", "g", "h"}

	dirA, dirB := t.TempDir(), t.TempDir()
	a, logA := start("a", "instance-a", dirA)
	bInst, logB := start("b", "instance-b", dirB)
	itest.Eventually(t, itest.Timeout(), "both instances running with tasks", func() (bool, string) {
		ta, tb := logA.OpenTasks(), logB.OpenTasks()
		return a.App.State() == riffle.Running && bInst.App.State() == riffle.Running && len(ta) > 0 && len(tb) > 0 && len(ta)+len(tb) == 4,
			fmt.Sprintf("a %s %v, b %s %v", a.App.State(), ta, bInst.App.State(), tb)
	})
	produce(keys...)
	exact("the first counts")
	// b, the follower, restarts: a (the group's leader, which joined first)
	// must see no rebalance at all.
	tasksB, before := logB.OpenTasks(), len(logA.Records(""))
	if err := bInst.Stop(itest.Timeout()); err != nil {
		t.Fatalf("graceful stop of b: %v", err)
	}
	produce(keys...) // a counts its keys meanwhile; b's wait for it
	b2, logB2 := start("b again", "instance-b", dirB)
	itest.Eventually(t, itest.Timeout(), "b to be back with its tasks", func() (bool, string) {
		got := logB2.OpenTasks()
		return b2.App.State() == riffle.Running && fmt.Sprint(got) == fmt.Sprint(tasksB), fmt.Sprintf("b %s %v, want %v", b2.App.State(), got, tasksB)
	})
	produce(keys...)
	exact("the counts after b's restart")
	for _, r := range logA.Records("")[before:] {
		rebalance := r.Msg == "state changed" && r.Attrs["to"] == "REBALANCING"
		switch {
		case rebalance && !k.Real:
			// kfake rebalances when a static member rejoins; Kafka does
			// not. Tasks must still not move.
			t.Logf("the embedded broker rebalanced on a static rejoin (Kafka does not): %s", r)
		case rebalance, r.Msg == "task closed", r.Msg == "task started":
			t.Errorf("a saw a rebalance while b restarted as a static member: %s", r)
		}
	}
	if err := b2.Stop(itest.Timeout()); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	if err := a.Stop(itest.Timeout()); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
}
