package riffle_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/riffle-streams/riffle"
	"github.com/riffle-streams/riffle/internal/itest"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/stream"
	"github.com/riffle-streams/riffle/topology"
)

// brokers returns the brokers to test against: RIFFLE_BROKERS if set (a
// real cluster), else a fresh embedded broker. create makes topics on it.
func brokers(t *testing.T) (addrs []string, create func(ctx context.Context, partitions int32, topics ...string) error) {
	t.Helper()
	if env := os.Getenv("RIFFLE_BROKERS"); env != "" {
		addrs = strings.Split(env, ",")
		return addrs, func(ctx context.Context, partitions int32, topics ...string) error {
			cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
			if err != nil {
				return err
			}
			defer cl.Close()
			adm := kadm.NewClient(cl)
			resps, err := adm.CreateTopics(ctx, partitions, -1, nil, topics...)
			if err == nil {
				err = resps.Error()
			}
			if err != nil {
				return err
			}
			// A broker's metadata can lag just behind the creation: wait
			// until every topic shows with all its partitions.
			for {
				details, err := adm.ListTopics(ctx, topics...)
				if err != nil {
					return err
				}
				ready := true
				for _, tp := range topics {
					if d, ok := details[tp]; !ok || d.Err != nil || len(d.Partitions) != int(partitions) {
						ready = false
					}
				}
				if ready {
					return nil
				}
				if err := ctx.Err(); err != nil {
					return fmt.Errorf("topics %v not visible: %w", topics, err)
				}
			}
		}
	}
	b, err := riffle.StartEmbeddedBroker()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b.Addrs(), b.CreateTopics
}

// TestAppCountsWords runs a word count App (a repartition and a store with
// its changelog) on the embedded broker, or on RIFFLE_BROKERS, and checks
// the counts are exact.
func TestAppCountsWords(t *testing.T) {
	addrs, create := brokers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	run := fmt.Sprint(time.Now().UnixNano())
	lines, countsOut := "lines-"+run, "counts-"+run
	if err := create(ctx, 3, lines, countsOut); err != nil {
		t.Fatal(err)
	}
	bld := topology.NewBuilder()
	nonWord := regexp.MustCompile(`\W+`)
	words := stream.FlatMapValues(stream.From[[]byte, string](bld, lines, stream.WithKeySerde(serde.ByteArray())), func(l string) []string {
		var out []string
		for _, w := range nonWord.Split(strings.ToLower(l), -1) {
			if w != "" {
				out = append(out, w)
			}
		}
		return out
	})
	counts := stream.GroupBy(words, func(_ []byte, w string) string { return w }).Count(stream.Named("counts"))
	stream.ToStream(counts).To(countsOut)
	topo, err := bld.Build()
	if err != nil {
		t.Fatal(err)
	}
	app, err := riffle.New(topo, riffle.ApplicationID("wc-"+run), riffle.BootstrapServers(addrs...),
		riffle.StateDir(t.TempDir()), riffle.CommitInterval(200*time.Millisecond),
		riffle.Logger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- app.Run(runCtx) }()

	pcl, _ := kgo.NewClient(kgo.SeedBrokers(addrs...))
	defer pcl.Close()
	for _, l := range []string{"hello world", "hello riffle", "world world"} {
		if err := pcl.ProduceSync(ctx, &kgo.Record{Topic: lines, Value: []byte(l)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	ccl, _ := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(countsOut), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer ccl.Close()
	final := map[string]int64{}
	for final["world"] != 3 || final["hello"] != 2 || final["riffle"] != 1 {
		f := ccl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("timed out; counts so far %v", final)
		}
		f.EachRecord(func(r *kgo.Record) {
			n, _ := serde.Int64().Decode(r.Value)
			final[string(r.Key)] = n
		})
	}
	t.Logf("checked: the latest counts are exactly %v", final)
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run after a graceful stop: %v", err)
	}
	if app.State() != riffle.NotRunning {
		t.Errorf("state after Run: %v", app.State())
	}
}

// TestNewChecksConfig: a bad configuration fails in New, before Kafka is
// touched, and says what is wrong.
func TestNewChecksConfig(t *testing.T) {
	bld := topology.NewBuilder()
	stream.From[string, string](bld, "in").To("out")
	topo, err := bld.Build()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		opts []riffle.Option
		want string
	}{
		{nil, "application id is required"},
		{[]riffle.Option{riffle.ApplicationID("a b")}, "may hold only"},
		{[]riffle.Option{riffle.ApplicationID("a")}, "no bootstrap servers"},
		{[]riffle.Option{riffle.ApplicationID("a"), riffle.BootstrapServers("x:1"), riffle.CommitInterval(0)}, "commit interval"},
		{[]riffle.Option{riffle.ApplicationID("a"), riffle.BootstrapServers("x:1"), riffle.ReplicationFactor(0)}, "replication factor"},
		{[]riffle.Option{riffle.ApplicationID("a"), riffle.BootstrapServers("x:1"), riffle.OnProduceError(riffle.DeadLetter("dlq"))}, "cannot send to a dead-letter topic"},
		{[]riffle.Option{riffle.ApplicationID("a"), riffle.BootstrapServers("x:1"), riffle.InstanceID("pod 1")}, "instance id"},
		{[]riffle.Option{riffle.ApplicationID("a"), riffle.BootstrapServers("x:1"), riffle.MaxTaskIdle(-time.Second)}, "MaxTaskIdle"},
	}
	for _, c := range cases {
		_, err := riffle.New(topo, c.opts...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%d options): %v, want an error saying %q", len(c.opts), err, c.want)
		}
	}
	if _, err := riffle.New(nil); err == nil {
		t.Error("New(nil) did not fail")
	}
}

// TestMissingSourceTopic: a topic the topology reads must exist; the error
// names it rather than creating it.
func TestMissingSourceTopic(t *testing.T) {
	addrs, _ := brokers(t)
	bld := topology.NewBuilder()
	missing := fmt.Sprintf("no-such-topic-%d", time.Now().UnixNano())
	stream.From[string, string](bld, missing).To(missing + "-out")
	topo, _ := bld.Build()
	app, err := riffle.New(topo, riffle.ApplicationID("missing"), riffle.BootstrapServers(addrs...),
		riffle.StateDir(t.TempDir()), riffle.Logger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = app.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "do not exist") {
		t.Errorf("Run: %v, want an error naming %q", err, missing)
	}
	if app.State() != riffle.Error {
		t.Errorf("state: %v", app.State())
	}
}

// startApp runs an App of topo with the application id appID on k until
// the test ends: state in a fresh directory, commits every 200ms, logs at
// Info and above kept in the returned recorder and shown if the test
// fails. opts come last, so they may override any of these.
func startApp(t *testing.T, k *itest.Kafka, name, appID string, topo *topology.Topology, opts ...riffle.Option) (*itest.Running, *itest.LogRecorder) {
	t.Helper()
	log := itest.NewLogRecorder(slog.LevelInfo)
	log.DumpOnFailure(t, name, slog.LevelInfo)
	all := append([]riffle.Option{riffle.ApplicationID(appID), riffle.BootstrapServers(k.Brokers...),
		riffle.StateDir(t.TempDir()), riffle.CommitInterval(200 * time.Millisecond), riffle.Logger(log.Logger())}, opts...)
	app, err := riffle.New(topo, all...)
	if err != nil {
		t.Fatal(err)
	}
	return itest.Run(t, name, app), log
}
