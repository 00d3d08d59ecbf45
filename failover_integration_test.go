package riffle_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/riffle-streams/riffle"
	"github.com/riffle-streams/riffle/internal/itest"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/stream"
	"github.com/riffle-streams/riffle/topology"
)

// nodeEnv carries a node's configuration to TestNodeProcess.
const nodeEnv = "RIFFLE_TEST_NODE"

// nodeConfig configures one instance of the failover tests' program.
type nodeConfig struct {
	Brokers  []string
	AppID    string
	In, Out  string
	StateDir string
	Standbys int
}

// TestNodeProcess is not a test of its own: it is the program the
// failover tests run as separate processes, three instances of one binary
// (this test binary). It counts each key of In into the store "counts",
// writes the counts to Out, serves queries, prints its query address, and
// runs until killed, or closes gracefully on SIGTERM.
func TestNodeProcess(t *testing.T) {
	var cfg nodeConfig
	if !itest.ChildConfig(t, nodeEnv, &cfg) {
		t.Skip("the instance program of the failover tests; runs only as their child process")
	}
	b := topology.NewBuilder()
	counts := stream.From[string, string](b, cfg.In).GroupByKey().Count(stream.Named("counts"))
	stream.ToStream(counts).To(cfg.Out, stream.WithValueSerde(serde.Int64()))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	app, err := riffle.New(topo, riffle.ApplicationID(cfg.AppID), riffle.BootstrapServers(cfg.Brokers...),
		riffle.StateDir(cfg.StateDir), riffle.CommitInterval(200*time.Millisecond),
		riffle.ServeQueries("127.0.0.1:0"), riffle.StandbyReplicas(cfg.Standbys),
		riffle.KafkaOptions(kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(500*time.Millisecond)),
		riffle.Logger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))))
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for app.QueryAddress() == "" {
		select {
		case err := <-done:
			t.Fatalf("Run returned before serving queries: %v", err)
		case <-tick.C:
		}
	}
	fmt.Printf("RIFFLE_NODE_ADDR=%s\n", app.QueryAddress())
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// node is a running instance of TestNodeProcess.
type node struct {
	*itest.Child
	addr string // where it serves queries
}

// nodeReady is the line TestNodeProcess prints once it serves queries.
var nodeReady = regexp.MustCompile(`^RIFFLE_NODE_ADDR=(\S+)$`)

// startNode starts an instance as a process of its own and waits until it
// serves queries. Its log is shown if the test fails.
func startNode(t *testing.T, name string, cfg nodeConfig) *node {
	t.Helper()
	c, addr := itest.StartChild(t, name, "TestNodeProcess", nodeEnv, cfg, nodeReady)
	return &node{Child: c, addr: addr}
}

// allCounts reads the whole "counts" store through host's query API, a
// page at a time; it fails (without failing the test) while a task is
// moving or restoring.
func allCounts(host string) (map[string]int64, error) {
	out := map[string]int64{}
	after := ""
	for {
		q := url.Values{"limit": {"1000"}}
		if after != "" {
			q.Set("after", after)
		}
		resp, err := http.Get("http://" + host + "/riffle/v1/stores/counts/all?" + q.Encode())
		if err != nil {
			return nil, err
		}
		var page struct {
			Entries []struct {
				Key   string `json:"key"`
				Value int64  `json:"value"`
			} `json:"entries"`
			Next  string `json:"next"`
			Error string `json:"error"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%d: %s", resp.StatusCode, page.Error)
		}
		for _, e := range page.Entries {
			out[e.Key] = e.Value
		}
		if page.Next == "" {
			return out, nil
		}
		after = page.Next
	}
}

// failoverKeys is how many keys the failover tests count:
// RIFFLE_FAILOVER_KEYS, or 20,000.
func failoverKeys(t *testing.T) int {
	if s := os.Getenv("RIFFLE_FAILOVER_KEYS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			t.Fatalf("RIFFLE_FAILOVER_KEYS=%q", s)
		}
		return n
	}
	return 20_000
}

// TestFailover runs three instances of one program as processes, with and
// without standbys. It kills one with SIGKILL while records keep coming
// and measures how long the survivors take to answer queries for every
// key again; no count may fall short of what was sent, and the counts
// above it are bounded by what the killed instance processed since its
// last commit (at-least-once). Then an instance stops gracefully while
// records keep coming: from there on the counts move exactly with what is
// sent.
func TestFailover(t *testing.T) {
	for _, standbys := range []int{1, 0} {
		t.Run(fmt.Sprintf("standbys=%d", standbys), func(t *testing.T) { failover(t, standbys) })
	}
}

func failover(t *testing.T, standbys int) {
	run := fmt.Sprint(time.Now().UnixNano())
	appID, in, out := "fo-"+run, "fo-in-"+run, "fo-out-"+run
	k := itest.Setup(t, itest.Spec{
		Partitions: 6,
		Topics:     []string{in, out},
		Delete:     []string{appID + "-counts-changelog"},
		Groups:     []string{appID},
	})
	cfg := func() nodeConfig {
		return nodeConfig{Brokers: k.Brokers, AppID: appID, In: in, Out: out, StateDir: t.TempDir(), Standbys: standbys}
	}
	var nodes []*node
	for i := range 3 {
		nodes = append(nodes, startNode(t, fmt.Sprint("node", i), cfg()))
	}

	// Every key once, then the counts are exact everywhere.
	keys := failoverKeys(t)
	var mu sync.Mutex
	sent := map[string]int64{}
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	produce := func(ctx context.Context, ks []string) error {
		recs := make([]*kgo.Record, len(ks))
		for i, key := range ks {
			recs[i] = &kgo.Record{Topic: in, Key: []byte(key), Value: []byte("x")}
		}
		// Only what the brokers acknowledged counts as sent: a failed
		// batch may have landed in part.
		res := cl.ProduceSync(ctx, recs...)
		mu.Lock()
		for _, r := range res {
			if r.Err == nil {
				sent[string(r.Record.Key)]++
			}
		}
		mu.Unlock()
		return res.FirstErr()
	}
	ctx := context.Background()
	var all []string
	for i := range keys {
		all = append(all, fmt.Sprintf("key-%07d", i))
	}
	for i := 0; i < len(all); i += 5000 {
		if err := produce(ctx, all[i:min(i+5000, len(all))]); err != nil {
			t.Fatal(err)
		}
	}
	exact := func(host string, extra map[string]int64) (bool, string) {
		got, err := allCounts(host)
		if err != nil {
			return false, err.Error()
		}
		mu.Lock()
		defer mu.Unlock()
		if len(got) != len(sent) {
			return false, fmt.Sprintf("%d keys of %d", len(got), len(sent))
		}
		off, example := 0, ""
		for key, n := range sent {
			if got[key] != n+extra[key] {
				if off++; off == 1 {
					example = fmt.Sprintf("%s=%d, want %d", key, got[key], n+extra[key])
				}
			}
		}
		if off > 0 {
			return false, fmt.Sprintf("%d keys off, such as %s", off, example)
		}
		return true, ""
	}
	itest.Eventually(t, 2*itest.Timeout(), "exact counts through every node", func() (bool, string) {
		for _, n := range nodes {
			if ok, why := exact(n.addr, nil); !ok {
				return false, n.Name() + ": " + why
			}
		}
		return true, ""
	})
	// New instances take tasks over once they have warmed up copies: wait
	// until each runs two, and the standbys have caught up.
	itest.Eventually(t, 2*itest.Timeout(), "the tasks to spread and standby copies to catch up", func() (bool, string) {
		var md []riffle.InstanceMetadata
		if err := getJSON(nodes[0].addr, "/metadata", &md); err != nil {
			return false, err.Error()
		}
		copies := 0
		for _, inst := range md {
			running := 0
			for _, task := range inst.Tasks {
				switch task.State {
				case "RUNNING":
					running++
				case "STANDBY":
					if task.Lag > 0 {
						return false, fmt.Sprintf("%s: %s lags %d", inst.Host, task.Task, task.Lag)
					}
					copies++
				default:
					return false, fmt.Sprintf("%s: %s is %s", inst.Host, task.Task, task.State)
				}
			}
			if running != 2 {
				return false, fmt.Sprintf("%s runs %d tasks", inst.Host, running)
			}
		}
		return len(md) == 3 && copies == 6*standbys, fmt.Sprintf("%d instances, %d standby copies", len(md), copies)
	})

	// Records keep coming while node2 is killed: 40 every 50ms.
	var loadErr error
	var loadWG sync.WaitGroup
	startLoad := func() (stop func()) {
		loadCtx, cancel := context.WithCancel(ctx)
		loadWG.Add(1)
		go func() {
			defer loadWG.Done()
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for loadCtx.Err() == nil {
				batch := make([]string, 40)
				for i := range batch {
					batch[i] = all[rand.IntN(len(all))]
				}
				// Stopping the load must not cut a batch short: a record
				// whose produce is cancelled may land all the same, and
				// would be counted by the App but not by the test. Each
				// batch runs to its end, within a deadline.
				bctx, bcancel := context.WithTimeout(context.Background(), itest.Timeout())
				err := produce(bctx, batch)
				bcancel()
				if err != nil {
					loadErr = err
					return
				}
				select {
				case <-loadCtx.Done():
				case <-tick.C:
				}
			}
		}()
		return func() { cancel(); loadWG.Wait() }
	}
	var sentAtKill int64
	stopLoad := startLoad()
	waitSent := func(more int64) {
		t.Helper()
		mu.Lock()
		base := total(sent)
		mu.Unlock()
		itest.Eventually(t, itest.Timeout(), "the load to go on", func() (bool, string) {
			mu.Lock()
			defer mu.Unlock()
			return total(sent) >= base+more, ""
		})
	}
	waitSent(1000)
	mu.Lock()
	sentAtKill = total(sent)
	mu.Unlock()
	nodes[2].Kill(t)
	// A key of each partition, looked up through each survivor until all
	// answer: the takeover time. Then every key, through a scan.
	probes := map[int32]string{} // partition -> key
	for _, key := range all {
		if len(probes) == 6 {
			break
		}
		var o struct{ Partition int32 }
		if err := getJSON(nodes[0].addr, "/stores/counts/owners?key="+key, &o); err != nil {
			t.Fatal(err)
		}
		if _, ok := probes[o.Partition]; !ok {
			probes[o.Partition] = key
		}
	}
	took := itest.Eventually(t, 4*itest.Timeout(), "the survivors to answer for a key of each partition", func() (bool, string) {
		for _, n := range nodes[:2] {
			for _, key := range probes {
				var got keyAnswer
				if err := getJSON(n.addr, "/stores/counts/get?key="+key, &got); err != nil || !got.Found {
					return false, fmt.Sprintf("%s: %s: %v", n.Name(), key, err)
				}
			}
		}
		return true, ""
	})
	itest.Eventually(t, 4*itest.Timeout(), "the survivors to answer for every key", func() (bool, string) {
		for _, n := range nodes[:2] {
			got, err := allCounts(n.addr)
			if err != nil {
				return false, n.Name() + ": " + err.Error()
			}
			if len(got) != keys {
				return false, fmt.Sprintf("%s: %d keys of %d", n.Name(), len(got), keys)
			}
		}
		return true, ""
	})
	t.Logf("measured: standbys=%d, %d keys: after SIGKILL the survivors answered queries for a key of every partition within %v (the group's session timeout is 6s)", standbys, keys, took)

	// Let the load run a while after the takeover, stop it, and check:
	// nothing lost, and no more counted twice than the killed instance can
	// have processed since its last commit.
	waitSent(1000)
	stopLoad()
	if loadErr != nil {
		t.Fatal(loadErr)
	}
	caughtUp(t, k, appID, in)
	got, err := allCounts(nodes[0].addr)
	if err != nil {
		t.Fatal(err)
	}
	extra := map[string]int64{}
	var over int64
	mu.Lock()
	for key, n := range sent {
		switch {
		case got[key] < n:
			t.Errorf("%s counted %d times, but was sent %d times: records lost", key, got[key], n)
		case got[key] > n:
			extra[key] = got[key] - n
			over += got[key] - n
		}
	}
	// What the killed instance may have processed without committing is
	// at most what was sent under load before the kill: everything before
	// had been committed (the counts were exact).
	bound := sentAtKill - int64(keys)
	mu.Unlock()
	if over > bound {
		t.Errorf("%d records counted twice, more than the %d sent before the kill", over, bound)
	}
	t.Logf("checked: no record lost; %d counted twice after SIGKILL (at-least-once), of %d sent under load before it", over, bound)

	// A graceful stop under load: from here the counts are exact.
	stopLoad = startLoad()
	waitSent(500)
	nodes[1].Stop(t)
	waitSent(500)
	stopLoad()
	if loadErr != nil {
		t.Fatal(loadErr)
	}
	caughtUp(t, k, appID, in)
	itest.Eventually(t, itest.Timeout(), "exact counts after a graceful stop", func() (bool, string) {
		return exact(nodes[0].addr, extra)
	})
	// The output topic agrees with the store.
	latest, err := k.Latest(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for key, n := range sent {
		if v, _ := serde.Int64().Decode(latest[key]); v != n+extra[key] {
			t.Fatalf("output %s=%d, want %d", key, v, n+extra[key])
		}
	}
	t.Logf("checked: after a graceful stop under load, every count is exact, in the store and in %s", out)
}

// caughtUp waits until the group has committed the end of topic: longer
// than itest.WaitCaughtUp, as the backlog of a load that ran while an
// instance was missing is worked off by processes built with -race.
func caughtUp(t *testing.T, k *itest.Kafka, group, topic string) {
	t.Helper()
	itest.Eventually(t, 6*itest.Timeout(), group+" to commit the end of "+topic, func() (bool, string) {
		ok, why, err := k.CaughtUp(context.Background(), group, topic)
		if err != nil {
			return false, err.Error()
		}
		return ok, why
	})
}

func total(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

func getJSON(host, path string, out any) error {
	resp, err := http.Get("http://" + host + "/riffle/v1" + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
