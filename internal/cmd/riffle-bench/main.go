// Command riffle-bench measures the runtime on a broker, against a baseline
// measured in the same run:
//
//   - pass-through: a topology that reads a topic and writes every record
//     to another, against a bare franz-go loop that does the same in a
//     consumer group (records/s, and the ratio);
//   - windowed count: a topology that counts records by key in one-minute
//     tumbling windows (100,000 keys by default) and writes every update,
//     against the pass-through measured in the same run (records/s, and the
//     ratio);
//   - restore: how fast a store is restored from a changelog of many
//     records (records/s);
//   - warmup: how long processing pauses when an instance joins and a task
//     with a big store moves to it, with and without warm-up, against a
//     rebalance of a small store (see warmup.go).
//
// It runs on the brokers given with -brokers, or on the embedded broker.
// -only picks the measurements (bare, passthrough, windowed, streamtable,
// streamstream, restore, warmup, dashboard; see dashboard.go).
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
	"runtime/pprof"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/riffle-streams/riffle"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/stream"
	"github.com/riffle-streams/riffle/table"
	"github.com/riffle-streams/riffle/topology"
)

type config struct {
	brokers    []string
	records    int
	restore    int
	partitions int32
	valueSize  int
	only       []string
	// The windowed count's input: distinct keys, and the span of event time
	// its records' timestamps cover, evenly.
	windowKeys int
	windowSpan time.Duration
	grace      time.Duration
	inMemory   bool // the window store in memory rather than in Pebble
	verify     bool
}

// measurements are the names -only takes, in the order they run.
var measurements = []string{"bare", "passthrough", "windowed", "streamtable", "streamstream", "restore", "warmup", "dashboard"}

func (c config) runs(m string) bool { return slices.Contains(c.only, m) }

func main() {
	var c config
	brokers := flag.String("brokers", "", "bootstrap servers; empty starts the embedded broker")
	flag.IntVar(&c.records, "records", 1_000_000, "records for the pass-through comparison")
	flag.IntVar(&c.restore, "restore-records", 1_000_000, "changelog records to restore")
	p := flag.Int("partitions", 6, "partitions of the topics")
	flag.IntVar(&c.valueSize, "value-size", 100, "bytes per record value")
	only := flag.String("only", strings.Join(measurements, ","), "measurements to run, comma-separated: "+strings.Join(measurements, ", "))
	flag.IntVar(&c.windowKeys, "window-keys", 100_000, "distinct keys of the windowed count's input")
	flag.DurationVar(&c.windowSpan, "window-span", 5*time.Minute, "event time the windowed count's input covers (one-minute windows)")
	flag.DurationVar(&c.grace, "grace", 10*time.Second, "grace of the one-minute windows")
	flag.BoolVar(&c.inMemory, "window-in-memory", false, "keep the windowed count's store in memory instead of Pebble (still logged)")
	flag.BoolVar(&c.verify, "verify", true, "after the windowed count, check every window's last count against the input (not timed)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	c.partitions = int32(*p)
	for _, m := range strings.Split(*only, ",") {
		m = strings.TrimSpace(m)
		if !slices.Contains(measurements, m) {
			fail(fmt.Errorf("-only: unknown measurement %q; choose among %s", m, strings.Join(measurements, ", ")))
		}
		c.only = append(c.only, m)
	}
	if c.windowKeys <= 0 || c.windowSpan < time.Minute {
		fail(errors.New("-window-keys must be positive and -window-span at least 1m"))
	}
	ctx := context.Background()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fail(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fail(err)
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
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
	winIn, winOut := "bench-win-in-"+run, "bench-win-out-"+run
	var topics []string
	if c.runs("bare") || c.runs("passthrough") {
		topics = append(topics, in, bareOut, riffleOut)
	}
	if c.runs("windowed") {
		topics = append(topics, winIn, winOut)
	}
	stIn, stTable, stOut := "bench-st-in-"+run, "bench-st-table-"+run, "bench-st-out-"+run
	if c.runs("streamtable") {
		topics = append(topics, stIn, stTable, stOut)
	}
	ssLeft, ssRight, ssOut := "bench-ss-left-"+run, "bench-ss-right-"+run, "bench-ss-out-"+run
	if c.runs("streamstream") {
		topics = append(topics, ssLeft, ssRight, ssOut)
	}
	for _, t := range topics {
		if err := createTopic(ctx, adm, t, c.partitions, nil); err != nil {
			return err
		}
	}
	if c.runs("bare") || c.runs("passthrough") {
		fmt.Printf("Producing %d records of %d bytes to %s (%d partitions)...\n", c.records, c.valueSize, in, c.partitions)
		if err := produce(ctx, cl, in, c.records, c.valueSize, func(i int) []byte { return []byte(fmt.Sprintf("key-%07d", i)) }, nil); err != nil {
			return err
		}
	}
	// The windowed input: keys k000000..k099999 in turn, timestamps rising
	// evenly over the span from the start of a minute, so each partition's
	// records are in event-time order (none is late) and fall into
	// span/1m windows.
	base := time.Now().Truncate(time.Minute).Add(-c.windowSpan - time.Minute)
	winKey := func(i int) []byte { return []byte(fmt.Sprintf("k%06d", i%c.windowKeys)) }
	step := c.windowSpan / time.Duration(c.records)
	winTime := func(i int) time.Time { return base.Add(step * time.Duration(i)) }
	if c.runs("windowed") {
		fmt.Printf("Producing %d records of %d bytes to %s: %d keys, event time over %v...\n", c.records, c.valueSize, winIn, c.windowKeys, c.windowSpan)
		if err := produce(ctx, cl, winIn, c.records, c.valueSize, winKey, winTime); err != nil {
			return err
		}
	}

	// The stream–table input: a table of windowKeys profiles, and a stream
	// of c.records records keyed by them in turn, each of which finds its
	// profile.
	if c.runs("streamtable") {
		fmt.Printf("Producing a table of %d keys to %s and %d records to %s...\n", c.windowKeys, stTable, c.records, stIn)
		if err := produce(ctx, cl, stTable, c.windowKeys, c.valueSize, winKey, nil); err != nil {
			return err
		}
		if err := produce(ctx, cl, stIn, c.records, c.valueSize, winKey, nil); err != nil {
			return err
		}
	}
	// The stream–stream input: c.records/2 records on each side, keyed by
	// windowKeys keys in turn, record i of each side at the same event
	// time, rising evenly: each left record has one right record within
	// the 10s join window... and the other records of its key, which come
	// windowKeys records (about span*windowKeys/(records/2)) apart.
	half := c.records / 2
	ssStep := c.windowSpan / time.Duration(half)
	ssTime := func(i int) time.Time { return base.Add(ssStep * time.Duration(i)) }
	if c.runs("streamstream") {
		fmt.Printf("Producing %d records to each of %s and %s...\n", half, ssLeft, ssRight)
		if err := produce(ctx, cl, ssLeft, half, c.valueSize, winKey, ssTime); err != nil {
			return err
		}
		if err := produce(ctx, cl, ssRight, half, c.valueSize, winKey, ssTime); err != nil {
			return err
		}
	}

	var bare, rif, win, stj, ssj, restore time.Duration
	if c.runs("bare") {
		if bare, err = bareLoop(ctx, c, in, bareOut, "bench-bare-"+run); err != nil {
			return fmt.Errorf("bare loop: %w", err)
		}
		fmt.Printf("bare loop: %.2fs\n", bare.Seconds())
	}
	if c.runs("passthrough") {
		if rif, err = passThrough(ctx, c, adm, in, riffleOut, "bench-riffle-"+run); err != nil {
			return fmt.Errorf("pass-through: %w", err)
		}
		fmt.Printf("pass-through: %.2fs\n", rif.Seconds())
	}
	if c.runs("windowed") {
		if win, err = windowedCount(ctx, c, adm, winIn, winOut, "bench-win-"+run); err != nil {
			return fmt.Errorf("windowed count: %w", err)
		}
		fmt.Printf("windowed count: %.2fs\n", win.Seconds())
		if c.verify {
			if err := verifyWindows(ctx, c, winOut, winKey, winTime); err != nil {
				return fmt.Errorf("windowed count: %w", err)
			}
		}
	}
	if c.runs("streamtable") {
		if stj, err = streamTableJoin(ctx, c, adm, stIn, stTable, stOut, "bench-st-"+run); err != nil {
			return fmt.Errorf("stream-table join: %w", err)
		}
		fmt.Printf("stream-table join: %.2fs\n", stj.Seconds())
	}
	var ssMatches int64
	if c.runs("streamstream") {
		if ssj, ssMatches, err = streamStreamJoin(ctx, c, adm, ssLeft, ssRight, ssOut, "bench-ss-"+run, ssStep); err != nil {
			return fmt.Errorf("stream-stream join: %w", err)
		}
		fmt.Printf("stream-stream join: %.2fs\n", ssj.Seconds())
	}
	if c.runs("restore") {
		if restore, err = restoreSpeed(ctx, c, cl, adm, "bench-restore-"+run); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
	}
	if c.runs("warmup") {
		if err := warmupJoins(ctx, c, cl, adm); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
		if len(c.only) == 1 {
			return nil // no throughput measurement to tabulate
		}
	}
	if c.runs("dashboard") {
		if err := dashboardBench(ctx, c, adm); err != nil {
			return fmt.Errorf("dashboard: %w", err)
		}
		if len(c.only) == 1 {
			return nil // its tables are printed
		}
	}

	rate := func(n int, d time.Duration) float64 { return float64(n) / d.Seconds() }
	ratio := func(num, den time.Duration) string {
		if num == 0 || den == 0 {
			return ""
		}
		return fmt.Sprintf("%.2f", den.Seconds()/num.Seconds()) // the ratio of rates, for equal record counts
	}
	fmt.Println()
	fmt.Println("| measurement | records | seconds | records/s | vs bare loop | vs pass-through |")
	fmt.Println("|---|---|---|---|---|---|")
	if bare > 0 {
		fmt.Printf("| bare franz-go consume-and-produce loop | %d | %.2f | %.0f | 1.00 | %s |\n", c.records, bare.Seconds(), rate(c.records, bare), ratio(bare, rif))
	}
	if rif > 0 {
		fmt.Printf("| Riffle pass-through topology | %d | %.2f | %.0f | %s | 1.00 |\n", c.records, rif.Seconds(), rate(c.records, rif), ratio(rif, bare))
	}
	if win > 0 {
		store := "Pebble"
		if c.inMemory {
			store = "in memory"
		}
		fmt.Printf("| Riffle windowed count (1m tumbling, %d keys, %s) | %d | %.2f | %.0f | %s | %s |\n", c.windowKeys, store, c.records, win.Seconds(), rate(c.records, win), ratio(win, bare), ratio(win, rif))
	}
	if stj > 0 {
		fmt.Printf("| Riffle stream–table join (%d-key table, Pebble) | %d | %.2f | %.0f | %s | %s |\n", c.windowKeys, c.records, stj.Seconds(), rate(c.records, stj), ratio(stj, bare), ratio(stj, rif))
	}
	if ssj > 0 {
		fmt.Printf("| Riffle stream–stream join (10s window, %d keys, Pebble; %d results) | %d | %.2f | %.0f | %s | %s |\n", c.windowKeys, ssMatches, 2*half, ssj.Seconds(), rate(2*half, ssj), ratio(ssj, bare), ratio(ssj, rif))
	}
	if restore > 0 {
		fmt.Printf("| restore a store from its changelog | %d | %.2f | %.0f | | |\n", c.restore, restore.Seconds(), rate(c.restore, restore))
	}
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

// produce writes n records of size bytes to topic, keyed by key and, if
// at is not nil, timestamped by it.
func produce(ctx context.Context, cl *kgo.Client, topic string, n, size int, key func(int) []byte, at func(int) time.Time) error {
	value := make([]byte, size)
	var failed atomic.Pointer[error]
	for i := 0; i < n; i++ {
		r := &kgo.Record{Topic: topic, Key: key(i), Value: value}
		if at != nil {
			r.Timestamp = at(i)
		}
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
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
	return runUntilWritten(ctx, c, adm, b, out, appID)
}

// windowedCount runs a topology that counts the records of in by key in
// one-minute tumbling windows and writes every update of a count to out,
// until out holds n records. Window stores have no record cache, so each
// input record makes exactly one output record: out holding n records means
// the App has counted every input record.
func windowedCount(ctx context.Context, c config, adm *kadm.Client, in, out, appID string) (time.Duration, error) {
	b := topology.NewBuilder()
	opts := []stream.Option{stream.Named("counts")}
	if c.inMemory {
		opts = append(opts, stream.Materialized("counts", state.InMemory()))
	}
	counts := stream.From[string, []byte](b, in).
		GroupByKey().
		WindowedBy(stream.Tumbling(time.Minute, c.grace)).
		Count(opts...)
	stream.ToStream(counts).To(out,
		stream.WithKeySerde(stream.WindowedSerde(serde.String(), time.Minute)),
		stream.WithValueSerde(serde.Int64()))
	return runUntilWritten(ctx, c, adm, b, out, appID)
}

// streamTableJoin runs a topology that left-joins each record of in with
// its key's value in the table of tableTopic and writes the result to
// out, until out holds a result for every input record. The table's
// records are older, but the runtime does not hold a stream record back
// until the table has caught up (no timestamp synchronisation across
// fetches yet), so a left join: every record gives one result, found or
// not, and a lookup costs the same either way.
func streamTableJoin(ctx context.Context, c config, adm *kadm.Client, in, tableTopic, out, appID string) (time.Duration, error) {
	b := topology.NewBuilder()
	profiles := table.From[string, []byte](b, tableTopic, table.Named("profiles"))
	joined := stream.LeftJoinTable(stream.From[string, []byte](b, in), profiles, func(_ string, v []byte, p stream.Maybe[[]byte]) []byte {
		return append(append(make([]byte, 0, len(v)+len(p.Value)), v...), p.Value...)
	}, stream.Named("enrich"))
	joined.To(out)
	return runUntil(ctx, c, adm, b, out, appID, int64(c.records))
}

// streamStreamJoin runs a topology that joins the records of left and
// right within 10 seconds (inner join), writing each match to out, until
// out holds all the matches the input has, which it computes: records of
// a key on the two sides whose times are at most 10s apart.
func streamStreamJoin(ctx context.Context, c config, adm *kadm.Client, left, right, out, appID string, step time.Duration) (time.Duration, int64, error) {
	b := topology.NewBuilder()
	// Grace covers the whole input: records of one side may be fetched and
	// processed well ahead of the other's, and none must be late.
	w := stream.JoinTimeDifference(10*time.Second, c.windowSpan)
	joined := stream.Join(stream.From[string, []byte](b, left), stream.From[string, []byte](b, right),
		func(_ string, l, r []byte) []byte { return append(append(make([]byte, 0, len(l)+len(r)), l...), r...) }, w, stream.Named("pairs"))
	joined.To(out)
	// Record i of a side is at step*i, key i%keys: records of a key are
	// keys*step apart, so a left record matches the right records of its
	// key within 10s, that is, |i-j| = m*keys with m*keys*step <= 10s.
	half := c.records / 2
	keyGap := time.Duration(c.windowKeys) * step
	var matches int64
	for i := 0; i < half; i++ {
		for m := -int(10*time.Second/max(keyGap, 1)) - 1; m <= int(10*time.Second/max(keyGap, 1))+1; m++ {
			j := i + m*c.windowKeys
			if j >= 0 && j < half && (time.Duration(abs(m))*keyGap) <= 10*time.Second {
				matches++
			}
		}
	}
	took, err := runUntil(ctx, c, adm, b, out, appID, matches)
	return took, matches, err
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// stallTimeout is how long the output may stand still before a run is
// given up as hung.
const stallTimeout = 2 * time.Minute

// runUntilWritten runs the topology of b as an App, committing every
// second, until out holds c.records records, and returns the time from
// start (group join included) until then.
func runUntilWritten(ctx context.Context, c config, adm *kadm.Client, b *topology.Builder, out, appID string) (time.Duration, error) {
	return runUntil(ctx, c, adm, b, out, appID, int64(c.records))
}

// runUntil runs the topology of b as an App, committing every second,
// until out holds want records, and returns the time from start (group
// join included) until then.
func runUntil(ctx context.Context, c config, adm *kadm.Client, b *topology.Builder, out, appID string, want int64) (time.Duration, error) {
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
	var last int64
	lastMoved := time.Now()
	for {
		ends, err := adm.ListEndOffsets(ctx, out)
		if err != nil {
			return 0, err
		}
		var total int64
		ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
		if total >= want {
			break
		}
		if total != last {
			last, lastMoved = total, time.Now()
		} else if time.Since(lastMoved) > stallTimeout {
			stop()
			<-done
			return 0, fmt.Errorf("%s has held %d of %d records for %v: the app made no progress", out, total, want, stallTimeout)
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

// verifyWindows reads the windowed count's output and checks that the last
// count written for each window is the number of input records of its key
// in it, and that no window is missing or extra.
func verifyWindows(ctx context.Context, c config, out string, key func(int) []byte, at func(int) time.Time) error {
	type window struct {
		key   string
		start int64
	}
	want := make(map[window]int64)
	for i := 0; i < c.records; i++ {
		ms := at(i).UnixMilli()
		want[window{string(key(i)), ms - ms%time.Minute.Milliseconds()}]++
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers...), kgo.ConsumeTopics(out), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return err
	}
	defer cl.Close()
	keys := stream.WindowedSerde(serde.String(), time.Minute)
	got := make(map[window]int64, len(want))
	var read int
	vctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	var bad error
	for read < c.records && bad == nil {
		fs := cl.PollRecords(vctx, 4096)
		if err := fs.Err0(); err != nil {
			return fmt.Errorf("verify: read %s: %w (after %d records)", out, err, read)
		}
		fs.EachRecord(func(r *kgo.Record) {
			read++
			k, err := keys.Decode(r.Key)
			if err != nil {
				bad = fmt.Errorf("verify: key at %s/%d@%d: %w", out, r.Partition, r.Offset, err)
				return
			}
			n, err := serde.Int64().Decode(r.Value)
			if err != nil {
				bad = fmt.Errorf("verify: count at %s/%d@%d: %w", out, r.Partition, r.Offset, err)
				return
			}
			w := window{k.Key, k.Start.UnixMilli()}
			if n <= got[w] {
				bad = fmt.Errorf("verify: %s/%d@%d: count %d of %s at %v does not follow %d", out, r.Partition, r.Offset, n, k.Key, k.Start.UTC(), got[w])
				return
			}
			got[w] = n
		})
	}
	if bad != nil {
		return bad
	}
	var wrong, missing int
	var first string
	for w, n := range want {
		g, ok := got[w]
		switch {
		case !ok:
			missing++
		case g != n:
			wrong++
		default:
			continue
		}
		if first == "" {
			first = fmt.Sprintf("%s at %v: counted %d, want %d", w.key, time.UnixMilli(w.start).UTC(), g, n)
		}
	}
	extra := len(got) - (len(want) - missing)
	if wrong+missing+extra > 0 {
		return fmt.Errorf("verify: %d windows wrong, %d missing, %d extra (of %d); first: %s", wrong, missing, extra, len(want), first)
	}
	fmt.Printf("Verified: %d windows of %d keys, every last count right.\n", len(want), c.windowKeys)
	return nil
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
