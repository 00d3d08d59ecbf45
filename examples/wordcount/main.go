// Command wordcount is a drop-in twin of Kafka Streams' WordCountDemo: a Go
// and a Java instance can share its topics.
//
// It reads lines from "streams-plaintext-input" (string values), splits
// each lowercased line on runs of non-word characters, drops empty words,
// counts each word, and writes every update of a count to
// "streams-wordcount-output": the word as a string key, the count as an
// 8-byte big-endian integer (Kafka's LongSerializer). Its application id is
// "streams-wordcount".
//
//	go run ./examples/wordcount                               # embedded broker: feeds a few lines, prints the counts
//	go run ./examples/wordcount -brokers localhost:9092       # a real cluster, until interrupted
//	go run ./examples/wordcount -brokers localhost:9092 -state-dir /var/lib/wordcount
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/riffle-streams/riffle"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/stream"
	"github.com/riffle-streams/riffle/topology"
)

// The names WordCountDemo uses.
const (
	AppID       = "streams-wordcount"
	InputTopic  = "streams-plaintext-input"
	OutputTopic = "streams-wordcount-output"
)

// nonWord splits as Java's "\\W+" does: on runs of characters other than
// ASCII letters, digits and '_'.
var nonWord = regexp.MustCompile(`\W+`)

// Words returns the words of line as WordCountDemo counts them.
func Words(line string) []string {
	var out []string
	for _, w := range nonWord.Split(strings.ToLower(line), -1) {
		if w != "" {
			out = append(out, w)
		}
	}
	return out
}

// Topology returns the word-count topology.
func Topology() (*topology.Topology, error) {
	b := topology.NewBuilder()
	lines := stream.From[[]byte, string](b, InputTopic, stream.WithKeySerde(serde.ByteArray()))
	words := stream.FlatMapValues(lines, Words)
	counts := stream.GroupBy(words, func(_ []byte, w string) string { return w }).Count(stream.Named("counts"))
	stream.ToStream(counts).To(OutputTopic)
	return b.Build()
}

type options struct {
	brokers        string
	stateDir       string
	commitInterval time.Duration
	logLevel       slog.Level
}

func main() {
	var o options
	flag.StringVar(&o.brokers, "brokers", "", "comma-separated bootstrap servers; empty runs on an in-process embedded broker")
	flag.StringVar(&o.stateDir, "state-dir", "", "state directory (default: a directory under the system's temp dir)")
	flag.DurationVar(&o.commitInterval, "commit-interval", time.Second, "how often to commit progress")
	verbose := flag.Bool("v", false, "log at debug level")
	flag.Parse()
	o.logLevel = slog.LevelWarn
	if *verbose {
		o.logLevel = slog.LevelDebug
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "wordcount:", err)
		os.Exit(1)
	}
}

// demoLines are fed on the embedded broker.
var demoLines = []string{
	"all streams lead to kafka",
	"hello kafka streams",
	"join kafka summit",
}

func run(ctx context.Context, o options, out io.Writer) error {
	topo, err := Topology()
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: o.logLevel}))
	var brokers []string
	demo := o.brokers == ""
	if demo {
		broker, err := riffle.StartEmbeddedBroker()
		if err != nil {
			return err
		}
		defer broker.Close()
		fmt.Fprintln(out, "No -brokers given: running on an in-process embedded broker (franz-go's kfake), nothing installed needed.")
		if err := broker.CreateTopics(ctx, 1, InputTopic, OutputTopic); err != nil {
			return err
		}
		brokers = broker.Addrs()
	} else {
		brokers = strings.Split(o.brokers, ",")
	}
	stateDir := o.stateDir
	if stateDir == "" {
		if stateDir, err = os.MkdirTemp("", "wordcount-"); err != nil {
			return err
		}
		defer os.RemoveAll(stateDir)
	}
	app, err := riffle.New(topo,
		riffle.ApplicationID(AppID),
		riffle.BootstrapServers(brokers...),
		riffle.StateDir(stateDir),
		riffle.CommitInterval(o.commitInterval),
		riffle.Logger(logger))
	if err != nil {
		return err
	}
	if !demo {
		err := app.Run(ctx)
		if errors.Is(err, context.Canceled) {
			err = nil
		}
		return err
	}

	// The demo: run the app, feed the lines, print the counts as they come.
	appCtx, stopApp := context.WithCancel(ctx)
	defer stopApp()
	done := make(chan error, 1)
	go func() { done <- app.Run(appCtx) }()
	if err := produceLines(ctx, brokers, demoLines); err != nil {
		return err
	}
	want := map[string]int64{}
	for _, l := range demoLines {
		for _, w := range Words(l) {
			want[w]++
		}
	}
	got, err := readCounts(ctx, brokers, want, out)
	stopApp()
	if runErr := <-done; runErr != nil {
		return runErr
	}
	if err != nil {
		return err
	}
	words := make([]string, 0, len(got))
	for w := range got {
		words = append(words, w)
	}
	sort.Strings(words)
	fmt.Fprintln(out, "Final counts:")
	for _, w := range words {
		fmt.Fprintf(out, "  %-8s %d\n", w, got[w])
	}
	return nil
}

func produceLines(ctx context.Context, brokers []string, lines []string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	for _, l := range lines {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: InputTopic, Value: []byte(l)}).FirstErr(); err != nil {
			return fmt.Errorf("produce to %s: %w", InputTopic, err)
		}
	}
	return nil
}

// readCounts reads the output topic, printing each update, until every word
// has reached the count in want.
func readCounts(ctx context.Context, brokers []string, want map[string]int64, out io.Writer) (map[string]int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(OutputTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	got := map[string]int64{}
	reached := func() bool {
		for w, n := range want {
			if got[w] != n {
				return false
			}
		}
		return true
	}
	for !reached() {
		f := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return got, fmt.Errorf("waiting for the counts: %w (have %v)", err, got)
		}
		var decodeErr error
		f.EachRecord(func(r *kgo.Record) {
			n, err := serde.Int64().Decode(r.Value)
			if err != nil {
				decodeErr = err
				return
			}
			got[string(r.Key)] = n
			fmt.Fprintf(out, "%s\t%d\n", r.Key, n)
		})
		if decodeErr != nil {
			return got, decodeErr
		}
	}
	return got, nil
}
