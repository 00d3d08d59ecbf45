package riffle_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/riffle-streams/riffle"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/stream"
	"github.com/riffle-streams/riffle/topology"
)

func TestAppCountsWordsOnEmbeddedBroker(t *testing.T) {
	b, err := riffle.StartEmbeddedBroker()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := b.CreateTopics(ctx, 3, "lines", "counts"); err != nil {
		t.Fatal(err)
	}
	bld := topology.NewBuilder()
	nonWord := regexp.MustCompile(`\W+`)
	words := stream.FlatMapValues(stream.From[[]byte, string](bld, "lines", stream.WithKeySerde(serde.ByteArray())), func(l string) []string {
		var out []string
		for _, w := range nonWord.Split(strings.ToLower(l), -1) {
			if w != "" {
				out = append(out, w)
			}
		}
		return out
	})
	counts := stream.GroupBy(words, func(_ []byte, w string) string { return w }).Count(stream.Named("counts"))
	stream.ToStream(counts).To("counts")
	topo, err := bld.Build()
	if err != nil {
		t.Fatal(err)
	}
	app, err := riffle.New(topo, riffle.ApplicationID("wc"), riffle.BootstrapServers(b.Addrs()...),
		riffle.StateDir(t.TempDir()), riffle.CommitInterval(200*time.Millisecond),
		riffle.Logger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- app.Run(runCtx) }()

	pcl, _ := kgo.NewClient(kgo.SeedBrokers(b.Addrs()...))
	defer pcl.Close()
	for _, l := range []string{"hello world", "hello riffle", "world world"} {
		if err := pcl.ProduceSync(ctx, &kgo.Record{Topic: "lines", Value: []byte(l)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	ccl, _ := kgo.NewClient(kgo.SeedBrokers(b.Addrs()...), kgo.ConsumeTopics("counts"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
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
	t.Log(final)
	stop()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}
