// Command temperature is a twin of Kafka Streams' TemperatureDemo: a Go and
// a Java instance can share its topics.
//
// It reads temperatures (string values) from "iot-temperature", keys them
// all to "temp", and keeps the maximum per 5-second tumbling window (with a
// grace of 24 hours for late readings). Every update of a window whose
// maximum is above 20 is written to "iot-temperature-max", with the key in
// Kafka Streams' time-windowed format (the key's bytes, then the window
// start as 8 bytes big-endian) and the temperature as a string. Its
// application id is "streams-temperature".
//
//	go run ./examples/temperature                          # embedded broker: feeds readings, prints the maxima
//	go run ./examples/temperature -brokers localhost:9092  # a real cluster, until interrupted
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
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/riffle-streams/riffle"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/stream"
	"github.com/riffle-streams/riffle/topology"
)

// The names TemperatureDemo uses.
const (
	AppID       = "streams-temperature"
	InputTopic  = "iot-temperature"
	OutputTopic = "iot-temperature-max"
	// Threshold is the temperature a window's maximum must exceed.
	Threshold = 20
	// WindowSize is the size of the tumbling windows.
	WindowSize = 5 * time.Second
)

// Topology returns the temperature topology.
func Topology() (*topology.Topology, error) {
	b := topology.NewBuilder()
	readings := stream.From[[]byte, string](b, InputTopic, stream.WithKeySerde(serde.ByteArray()))
	byTemp := stream.SelectKey(readings, func([]byte, string) string { return "temp" })
	maxima := byTemp.GroupByKey().
		WindowedBy(stream.Tumbling(WindowSize, 24*time.Hour)).
		Reduce(func(a, b string) string {
			if parse(b) > parse(a) {
				return b
			}
			return a
		}, stream.Named("max"))
	stream.ToStream(maxima).
		Filter(func(_ stream.Windowed[string], v string) bool { return parse(v) > Threshold }).
		To(OutputTopic, stream.WithKeySerde(stream.WindowedSerde(serde.String(), WindowSize)))
	return b.Build()
}

// parse reads a temperature; one that does not parse counts as the lowest.
func parse(s string) int {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return -1 << 31
	}
	return n
}

func main() {
	brokers := flag.String("brokers", "", "comma-separated bootstrap servers; empty runs on an in-process embedded broker")
	stateDir := flag.String("state-dir", "", "state directory (default: under the system's temp dir)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *brokers, *stateDir, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "temperature:", err)
		os.Exit(1)
	}
}

// demo is fed on the embedded broker: (seconds into the run, temperature).
var demo = []struct {
	at   int
	temp string
}{{0, "18"}, {1, "21"}, {2, "19"}, {4, "25"}, {6, "17"}, {7, "19"}, {11, "22"}, {3, "30"}}

func run(ctx context.Context, brokersFlag, stateDir string, out io.Writer) error {
	topo, err := Topology()
	if err != nil {
		return err
	}
	demoRun := brokersFlag == ""
	var brokers []string
	if demoRun {
		b, err := riffle.StartEmbeddedBroker()
		if err != nil {
			return err
		}
		defer b.Close()
		fmt.Fprintln(out, "No -brokers given: running on an in-process embedded broker (franz-go's kfake), nothing installed needed.")
		if err := b.CreateTopics(ctx, 1, InputTopic, OutputTopic); err != nil {
			return err
		}
		brokers = b.Addrs()
	} else {
		brokers = strings.Split(brokersFlag, ",")
	}
	if stateDir == "" {
		if stateDir, err = os.MkdirTemp("", "temperature-"); err != nil {
			return err
		}
		defer os.RemoveAll(stateDir)
	}
	app, err := riffle.New(topo, riffle.ApplicationID(AppID), riffle.BootstrapServers(brokers...), riffle.StateDir(stateDir),
		riffle.CommitInterval(time.Second), riffle.Logger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	if err != nil {
		return err
	}
	if !demoRun {
		if err := app.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		return nil
	}
	appCtx, stopApp := context.WithCancel(ctx)
	defer stopApp()
	done := make(chan error, 1)
	go func() { done <- app.Run(appCtx) }()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(OutputTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return err
	}
	defer cl.Close()
	base := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, r := range demo {
		rec := &kgo.Record{Topic: InputTopic, Value: []byte(r.temp), Timestamp: base.Add(time.Duration(r.at) * time.Second)}
		if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
			return err
		}
	}
	// Windows [0,5s) and [10,15s) go over 20: [0,5s) reaches 21, 25, then
	// 30 from the late reading at 3s; [10,15s) reaches 22.
	want := map[int64]string{base.UnixMilli(): "30", base.Add(10 * time.Second).UnixMilli(): "22"}
	got := map[int64]string{}
	keys := stream.WindowedSerde(serde.String(), WindowSize)
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for len(got) < len(want) || got[base.UnixMilli()] != "30" {
		f := cl.PollFetches(waitCtx)
		if err := waitCtx.Err(); err != nil {
			return fmt.Errorf("waiting for the maxima: %w (have %v)", err, got)
		}
		var derr error
		f.EachRecord(func(r *kgo.Record) {
			w, err := keys.Decode(r.Key)
			if err != nil {
				derr = err
				return
			}
			got[w.Start.UnixMilli()] = string(r.Value)
			fmt.Fprintf(out, "window [%s, %s) %s: max %s\n", w.Start.UTC().Format("15:04:05"), w.End.UTC().Format("15:04:05"), w.Key, r.Value)
		})
		if derr != nil {
			return derr
		}
	}
	stopApp()
	return <-done
}
