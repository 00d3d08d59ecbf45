package riffle_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/riffle-streams/riffle/internal/itest"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/stream"
	"github.com/riffle-streams/riffle/table"
	"github.com/riffle-streams/riffle/topology"
)

// TestAppSessionWindows runs a session count on the embedded broker, or on
// RIFFLE_BROKERS: sessions merge as records come, the output topic (a
// table, with tombstones for sessions merged away) ends with exactly the
// sessions of the definition, and after a restart on an empty state
// directory the session store is restored from its changelog, so a record
// still merges with a session counted before.
func TestAppSessionWindows(t *testing.T) {
	run := fmt.Sprint(time.Now().UnixNano())
	appID, in, out := "sessions-"+run, "clicks-"+run, "sessions-out-"+run
	k := itest.Setup(t, itest.Spec{
		Partitions: 2,
		Topics:     []string{in, out},
		Delete:     []string{appID + "-sessions-changelog"},
		Groups:     []string{appID},
	})
	const gap = 10 * time.Second
	b := topology.NewBuilder()
	counts := stream.From[string, string](b, in).GroupByKey().
		SessionWindowedBy(stream.Sessions(gap, time.Hour)).Count(stream.Named("sessions"))
	counts.To(out, table.WithKeySerde(stream.SessionWindowedSerde(serde.String())))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	// Event times an hour back, so a real broker's retention keeps them.
	base := time.Now().Add(-time.Hour).Truncate(time.Minute)
	prod, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	produce := func(clicks ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), itest.Timeout())
		defer cancel()
		for _, c := range clicks { // "user@seconds"
			user, secs, _ := strings.Cut(c, "@")
			var s int
			fmt.Sscan(secs, &s)
			r := &kgo.Record{Topic: in, Key: []byte(user), Value: []byte("click"), Timestamp: base.Add(time.Duration(s) * time.Second)}
			if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	keys := stream.SessionWindowedSerde(serde.String())
	tail := k.NewTail(t, out)
	// sessions turns the latest values of the output into "user[s,e]=n",
	// tombstones dropped.
	sessions := func(latest map[string][]byte) string {
		var got []string
		for kb, v := range latest {
			if v == nil {
				continue
			}
			w, err := keys.Decode([]byte(kb))
			if err != nil {
				t.Fatalf("decode a session key: %v", err)
			}
			n, err := serde.Int64().Decode(v)
			if err != nil {
				t.Fatalf("decode a count: %v", err)
			}
			got = append(got, fmt.Sprintf("%s[%d,%d]=%d", w.Key, w.Start.Sub(base)/time.Second, w.End.Sub(base)/time.Second, n))
		}
		slices.Sort(got)
		return strings.Join(got, " ")
	}
	waitFor := func(want string) {
		t.Helper()
		tail.Until(t, itest.Timeout(), want, func(latest map[string][]byte) (bool, string) {
			got := sessions(latest)
			return got == want, "sessions: " + got
		})
	}

	first, _ := startApp(t, k, "first", appID, topo)
	produce("ann@0", "ann@5", "bob@0", "ann@30", "bob@40", "ann@14")
	// ann: 0, 5 and 14 are one session; 30 is 16s after 14: its own.
	waitFor("ann[0,14]=3 ann[30,30]=1 bob[0,0]=1 bob[40,40]=1")
	if err := first.Stop(itest.Timeout()); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}

	// A fresh state directory: the sessions come back from the changelog.
	second, _ := startApp(t, k, "second", appID, topo)
	produce("ann@22", "bob@20")
	// ann@22 bridges [0,14] and [30,30]; bob@20 joins neither (gap 10s).
	waitFor("ann[0,30]=5 bob[0,0]=1 bob[20,20]=1 bob[40,40]=1")
	if err := second.Stop(itest.Timeout()); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
}
