// Command riffle-bench measures the runtime on a broker, against a baseline
// measured in the same run:
//
//   - pass-through: a topology that reads a topic and writes every record
//     to another, against a bare franz-go loop that does the same in a
//     consumer group (records/s, and the ratio);
//   - restore: how fast a store is restored from a changelog of many
//     records (records/s).
//
// It runs on the brokers given with -brokers, or on the embedded broker.
//
//	go run ./internal/cmd/riffle-bench -brokers 127.0.0.1:39092 -records 1000000
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/riffle-streams/riffle"
	"github.com/riffle-streams/riffle/stream"
	"github.com/riffle-streams/riffle/topology"
)

type config struct {
	brokers    []string
	records    int
	restore    int
	partitions int32
	valueSize  int
}

func main() {
	var c config
	brokers := flag.String("brokers", "", "bootstrap servers; empty starts the embedded broker")
	flag.IntVar(&c.records, "records", 1_000_000, "records for the pass-through comparison")
	flag.IntVar(&c.restore, "restore-records", 1_000_000, "changelog records to restore")
	p := flag.Int("partitions", 6, "partitions of the topics")
	flag.IntVar(&c.valueSize, "value-size", 100, "bytes per record value")
	flag.Parse()
	c.partitions = int32(*p)
	ctx := context.Background()
	if *brokers == "" {
		b, err := riffle.StartEmbeddedBroker()
		if err != nil {
			fail(err)
		}
		defer b.Close()
		c.brokers = b.Addrs()
		fmt.Println("No -brokers given: running on the embedded broker (kfake); figures are for kfake, not Kafka.")
	} else {
		c.brokers = strings.Split(*brokers, ",")
	}
	if err := run(ctx, c); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "riffle-bench:", err)
	os.Exit(1)
}

func run(ctx context.Context, c config) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	run := time.Now().Format("150405")
	in, bareOut, riffleOut := "bench-in-"+run, "bench-out-bare-"+run, "bench-out-riffle-"+run
	for _, t := range []string{in, bareOut, riffleOut} {
		if err := createTopic(ctx, adm, t, c.partitions, nil); err != nil {
			return err
		}
	}
	fmt.Printf("Producing %d records of %d bytes to %s (%d partitions)...\n", c.records, c.valueSize, in, c.partitions)
	if err := produce(ctx, cl, in, c.records, c.valueSize, func(i int) []byte { return []byte(fmt.Sprintf("key-%07d", i)) }); err != nil {
		return err
	}

	bare, err := bareLoop(ctx, c, in, bareOut, "bench-bare-"+run)
	if err != nil {
		return fmt.Errorf("bare loop: %w", err)
	}
	rif, err := passThrough(ctx, c, adm, in, riffleOut, "bench-riffle-"+run)
	if err != nil {
		return fmt.Errorf("pass-through: %w", err)
	}
	restore, err := restoreSpeed(ctx, c, cl, adm, "bench-restore-"+run)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	fmt.Println()
	fmt.Println("| measurement | records | seconds | records/s | vs bare loop |")
	fmt.Println("|---|---|---|---|---|")
	fmt.Printf("| bare franz-go consume-and-produce loop | %d | %.2f | %.0f | 1.00 |\n", c.records, bare.Seconds(), float64(c.records)/bare.Seconds())
	fmt.Printf("| Riffle pass-through topology | %d | %.2f | %.0f | %.2f |\n", c.records, rif.Seconds(), float64(c.records)/rif.Seconds(), bare.Seconds()/rif.Seconds())
	fmt.Printf("| restore a store from its changelog | %d | %.2f | %.0f | |\n", c.restore, restore.Seconds(), float64(c.restore)/restore.Seconds())
	return nil
}

func createTopic(ctx context.Context, adm *kadm.Client, name string, partitions int32, configs map[string]*string) error {
	resp, err := adm.CreateTopic(ctx, partitions, -1, configs, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("create topic %s: %w", name, err)
	}
	return nil
}

func produce(ctx context.Context, cl *kgo.Client, topic string, n, size int, key func(int) []byte) error {
	value := make([]byte, size)
	var failed atomic.Pointer[error]
	for i := 0; i < n; i++ {
		cl.Produce(ctx, &kgo.Record{Topic: topic, Key: key(i), Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.CompareAndSwap(nil, &err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	if p := failed.Load(); p != nil {
		return *p
	}
	return nil
}

// bareLoop consumes in within a group and produces every record to out,
// committing as it goes, until n records are through and acknowledged.
func bareLoop(ctx context.Context, c config, in, out, group string) (time.Duration, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(in),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	start := time.Now()
	var done int
	var failed atomic.Pointer[error]
	lastCommit := time.Now()
	for done < c.records {
		fs := cl.PollRecords(ctx, 4096)
		if err := fs.Err0(); err != nil {
			return 0, err
		}
		fs.EachRecord(func(r *kgo.Record) {
			cl.Produce(ctx, &kgo.Record{Topic: out, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp, Headers: r.Headers}, func(_ *kgo.Record, err error) {
				if err != nil {
					failed.CompareAndSwap(nil, &err)
				}
			})
			done++
		})
		if time.Since(lastCommit) > time.Second {
			if err := cl.Flush(ctx); err != nil {
				return 0, err
			}
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				return 0, err
			}
			lastCommit = time.Now()
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return 0, err
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		return 0, err
	}
	if p := failed.Load(); p != nil {
		return 0, *p
	}
	return time.Since(start), nil
}

// passThrough runs a topology that copies in to out until out holds n
// records.
func passThrough(ctx context.Context, c config, adm *kadm.Client, in, out, appID string) (time.Duration, error) {
	b := topology.NewBuilder()
	stream.From[[]byte, []byte](b, in).To(out)
	topo, err := b.Build()
	if err != nil {
		return 0, err
	}
	dir, err := os.MkdirTemp("", "riffle-bench-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	app, err := riffle.New(topo, riffle.ApplicationID(appID), riffle.BootstrapServers(c.brokers...), riffle.StateDir(dir),
		riffle.CommitInterval(time.Second), riffle.Logger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return 0, err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- app.Run(runCtx) }()
	for {
		ends, err := adm.ListEndOffsets(ctx, out)
		if err != nil {
			return 0, err
		}
		var total int64
		ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
		if total >= int64(c.records) {
			break
		}
		select {
		case err := <-done:
			return 0, fmt.Errorf("the app stopped early: %w", err)
		case <-time.After(10 * time.Millisecond): // a poll of the brokers, not a synchronisation
		}
	}
	took := time.Since(start)
	stop()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		return 0, err
	}
	return took, nil
}

// restoreSpeed fills a store's changelog with n records of distinct keys,
// then starts an App whose store must restore them all, and times it.
func restoreSpeed(ctx context.Context, c config, cl *kgo.Client, adm *kadm.Client, appID string) (time.Duration, error) {
	in := appID + "-in"
	changelog := appID + "-counts-changelog"
	compact := "compact"
	if err := createTopic(ctx, adm, in, c.partitions, nil); err != nil {
		return 0, err
	}
	if err := createTopic(ctx, adm, changelog, c.partitions, map[string]*string{"cleanup.policy": &compact}); err != nil {
		return 0, err
	}
	fmt.Printf("Producing %d changelog records...\n", c.restore)
	count := make([]byte, 8)
	var failed atomic.Pointer[error]
	for i := 0; i < c.restore; i++ {
		cl.Produce(ctx, &kgo.Record{Topic: changelog, Partition: int32(i) % c.partitions, Key: []byte(fmt.Sprintf("key-%07d", i)), Value: count},
			func(_ *kgo.Record, err error) {
				if err != nil {
					failed.CompareAndSwap(nil, &err)
				}
			})
	}
	if err := cl.Flush(ctx); err != nil {
		return 0, err
	}
	if p := failed.Load(); p != nil {
		return 0, *p
	}
	b := topology.NewBuilder()
	stream.From[[]byte, []byte](b, in).GroupByKey().Count(stream.Named("counts"))
	topo, err := b.Build()
	if err != nil {
		return 0, err
	}
	dir, err := os.MkdirTemp("", "riffle-bench-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	l := &restoreWatch{done: make(chan struct{})}
	app, err := riffle.New(topo, riffle.ApplicationID(appID), riffle.BootstrapServers(c.brokers...), riffle.StateDir(dir),
		riffle.Logger(slog.New(slog.DiscardHandler)), riffle.OnRestore(l))
	if err != nil {
		return 0, err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- app.Run(runCtx) }()
	for l.total.Load() < int64(c.restore) {
		select {
		case err := <-done:
			return 0, fmt.Errorf("the app stopped early: %w", err)
		case <-l.done:
		}
	}
	stop()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		return 0, err
	}
	return time.Duration(l.took.Load()), nil
}

// restoreWatch adds up the restores of all tasks: the time is from the first
// start to the last end.
type restoreWatch struct {
	first, last atomic.Int64 // unix ns
	total, took atomic.Int64
	done        chan struct{}
}

func (w *restoreWatch) RestoreStart(_, _ string, _, _ int64) {
	w.first.CompareAndSwap(0, time.Now().UnixNano())
}

func (w *restoreWatch) RestoreBatch(_, _ string, _ int64, _ int) {}

func (w *restoreWatch) RestoreEnd(_, _ string, total int64, _ time.Duration) {
	now := time.Now().UnixNano()
	w.total.Add(total)
	w.took.Store(now - w.first.Load())
	select {
	case w.done <- struct{}{}:
	default:
	}
}
