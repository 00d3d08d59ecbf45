package riffle

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/riffle-streams/riffle/stream"
	"github.com/riffle-streams/riffle/topology"
)

// TestCallbacksWaitForClient checks that a rebalance callback that comes
// before the App has its group client waits for it. kgo joins the group
// as soon as the client is made, so on a fast broker the first assignment
// can be handed over before NewClient has returned; the App used to call
// the client it did not have yet, and crashed. The test holds the App
// between the client's making and its setting until the assignment
// callback has been called, then checks that the App runs.
func TestCallbacksWaitForClient(t *testing.T) {
	if testing.Short() {
		t.Skip("runs an App on the embedded broker")
	}
	broker, err := StartEmbeddedBroker()
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const in = "early-in"
	if err := broker.CreateTopics(ctx, 2, in); err != nil {
		t.Fatal(err)
	}
	b := topology.NewBuilder()
	// A logged store: its task is restored first, so the assignment
	// callback pauses its partitions through the client.
	stream.From[string, string](b, in).GroupByKey().Count(stream.Named("counts"))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	app, err := New(topo, ApplicationID("early"), BootstrapServers(broker.Addrs()...), StateDir(t.TempDir()),
		CommitInterval(50*time.Millisecond), Logger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	var held atomic.Bool
	app.clientMade = func() {
		// Runs in Run's goroutine, where t.Fatal must not be called.
		for tick := time.Tick(10 * time.Millisecond); !goroutineIn("riffle.(*App).onAssigned"); {
			select {
			case <-ctx.Done():
				t.Error("the assignment callback was never called")
				return
			case <-tick:
			}
		}
		held.Store(true)
	}
	errc := make(chan error, 1)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	wg.Go(func() { errc <- app.Run(runCtx) })

	cl, err := kgo.NewClient(kgo.SeedBrokers(broker.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := range 20 {
		r := &kgo.Record{Topic: in, Key: fmt.Appendf(nil, "k%d", i), Value: []byte("v")}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, ctx, "the App to count every key", func() bool {
		n := 0
		for i := range 20 {
			c, ok, err := Get[string, int64](ctx, app, "counts", fmt.Sprintf("k%d", i))
			if err == nil && ok && c == 1 {
				n++
			}
		}
		return n == 20
	})
	if !held.Load() {
		t.Error("the App never held its client back until the assignment")
	}
	stop()
	if err := <-errc; err != nil {
		t.Error(err)
	}
}

// goroutineIn reports whether some goroutine's stack holds fn.
func goroutineIn(fn string) bool {
	buf := make([]byte, 1<<20)
	return strings.Contains(string(buf[:runtime.Stack(buf, true)]), fn)
}
