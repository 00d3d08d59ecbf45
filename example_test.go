package riffle_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/riffle-streams/riffle"
	"github.com/riffle-streams/riffle/stream"
	"github.com/riffle-streams/riffle/topology"
)

// Example runs a count on the embedded broker and asks the App for a
// key's count, as any instance of it could, wherever the key's task runs.
func Example() {
	ctx := context.Background()
	broker, err := riffle.StartEmbeddedBroker()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer broker.Close()
	if err := broker.CreateTopics(ctx, 3, "page-views"); err != nil {
		fmt.Println(err)
		return
	}

	b := topology.NewBuilder()
	stream.From[string, string](b, "page-views").GroupByKey().Count(stream.Named("views-by-page"))
	topo, err := b.Build()
	if err != nil {
		fmt.Println(err)
		return
	}
	dir, _ := os.MkdirTemp("", "riffle-example")
	defer os.RemoveAll(dir)
	app, err := riffle.New(topo,
		riffle.ApplicationID("page-views"),
		riffle.BootstrapServers(broker.Addrs()...),
		riffle.StateDir(dir),
		riffle.ServeQueries("127.0.0.1:0"), // GET /riffle/v1/stores/views-by-page/get?key=/home
		riffle.Logger(slog.New(slog.DiscardHandler)))
	if err != nil {
		fmt.Println(err)
		return
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- app.Run(runCtx) }()
	defer func() { stop(); <-done }()

	cl, err := kgo.NewClient(kgo.SeedBrokers(broker.Addrs()...))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cl.Close()
	for _, page := range []string{"/home", "/pricing", "/home"} {
		cl.Produce(ctx, &kgo.Record{Topic: "page-views", Key: []byte(page), Value: []byte("view")}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		fmt.Println(err)
		return
	}

	// A query fails with 503 until the store is ready; wait for the count.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for {
		n, ok, err := riffle.Get[string, int64](ctx, app, "views-by-page", "/home")
		var qe *riffle.QueryError
		switch {
		case err != nil && !errors.As(err, &qe):
			fmt.Println(err)
			return
		case ok && n == 2:
			fmt.Println("/home viewed", n, "times")
			return
		}
		select {
		case <-tick.C:
		case <-deadline:
			fmt.Println("no count within 30s:", n, ok, err)
			return
		}
	}
	// Output: /home viewed 2 times
}
