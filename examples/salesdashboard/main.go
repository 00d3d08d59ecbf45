// Command salesdashboard is a live sales dashboard for an online shop: a
// Riffle app that turns the shop's order events into figures, and a web
// page, served by every instance, that shows them as they change.
//
// Orders arrive on "customer-orders", keyed by order id, as JSON:
//
//	{"orderId":"O-1","customerId":"C-7","region":"europe",
//	 "items":[{"productId":"P0042","quantity":2,"price":19.99}],
//	 "total":39.98,"timestamp":"2026-01-01T12:00:00.000Z"}
//
// The app computes revenue and order counts per region, in total and per
// minute; the trending products (the ten with the most units over the
// last ten minutes); customers by segment (new or returning) and spend
// tier; the average order value; and each product's stock: orders take
// units, deliveries on "restocks" ({"productId","quantity"}, keyed by
// product) bring them, every change is published to "inventory-updates",
// and an alert goes to "inventory-alerts" when a product's stock falls to
// the low-stock threshold. An order that is not valid JSON or misses a
// field goes to "customer-orders-dlq", with the reason in its riffle.error
// header, and is counted on the page.
//
// The page's figures come from the app's stores through interactive
// queries, so every instance shows the same, whole-shop numbers however
// many instances run. With no -brokers, the program starts an in-process
// embedded broker and a generator of realistic traffic; with -brokers, it
// creates the topics it needs if they are missing.
//
//	go run ./examples/salesdashboard                            # embedded broker and generated orders; open the printed address
//	go run ./examples/salesdashboard -rate 500                  # busier
//	go run ./examples/salesdashboard -brokers localhost:9092    # a real cluster (add -generate to make traffic)
//	go run ./examples/salesdashboard -brokers localhost:9092 -http :8081 -state-dir /tmp/sd2   # a second instance
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/riffle-streams/riffle"
)

// DefaultAppID is the application id unless -app-id says otherwise.
const DefaultAppID = "salesdashboard"

// options are the command's flags.
type options struct {
	brokers    string
	stateDir   string
	httpAddr   string
	advertise  string
	appID      string
	partitions int
	generate   *bool // nil: on with the embedded broker only
	gen        GeneratorConfig
	logLevel   slog.Level
	// commitInterval is how often the app commits.
	commitInterval time.Duration
	// sessionTimeout is the group session timeout: how long the group
	// waits for a dead instance before moving its tasks. 0 leaves
	// Kafka's default, 45s.
	sessionTimeout time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.brokers, "brokers", "", "comma-separated bootstrap servers; empty runs on an in-process embedded broker")
	flag.StringVar(&o.stateDir, "state-dir", "", "state directory (default: a new directory under the system's temp dir, removed on exit)")
	flag.StringVar(&o.httpAddr, "http", ":8080", "address to serve the page, and the queries of other instances, on")
	flag.StringVar(&o.advertise, "advertise", "", "host:port other instances reach this one at (default: the -http address, with localhost for an empty host)")
	flag.StringVar(&o.appID, "app-id", DefaultAppID, "application id: the consumer group, and the prefix of internal topics")
	flag.IntVar(&o.partitions, "partitions", 6, "partitions of the topics the program creates")
	generate := flag.Bool("generate", false, "produce generated orders (default: true with the embedded broker, false with -brokers)")
	flag.Float64Var(&o.gen.Rate, "rate", 50, "generated orders per second, on average")
	flag.Float64Var(&o.gen.Malformed, "malformed", 0.002, "fraction of generated orders that are malformed")
	flag.Uint64Var(&o.gen.Seed, "seed", 0, "seed of the generator (default: from the clock)")
	flag.DurationVar(&o.sessionTimeout, "session-timeout", 0, "group session timeout: how long the others wait for a dead instance before taking its work over (default: Kafka's, 45s)")
	level := flag.String("log", "warn", "log level: debug, info, warn or error")
	flag.Parse()
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "generate" {
			o.generate = generate
		}
	})
	if err := o.logLevel.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintln(os.Stderr, "salesdashboard: -log:", err)
		os.Exit(2)
	}
	if o.gen.Seed == 0 {
		o.gen.Seed = uint64(time.Now().UnixNano())
	}
	if o.gen.Malformed == 0 {
		o.gen.Malformed = -1 // none; 0 would take the default
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: o.logLevel}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout, log); err != nil {
		fmt.Fprintln(os.Stderr, "salesdashboard:", err)
		os.Exit(1)
	}
}

// run runs the dashboard until ctx ends, then stops gracefully.
func run(ctx context.Context, o options, out io.Writer, log *slog.Logger) error {
	if o.appID == "" {
		o.appID = DefaultAppID
	}
	if o.partitions <= 0 {
		o.partitions = 6
	}
	if o.commitInterval <= 0 {
		o.commitInterval = time.Second
	}
	embedded := o.brokers == ""
	var brokers []string
	if embedded {
		b, err := riffle.StartEmbeddedBroker()
		if err != nil {
			return err
		}
		defer b.Close()
		fmt.Fprintln(out, "No -brokers given: running on an in-process embedded broker (franz-go's kfake), nothing installed needed.")
		brokers = b.Addrs()
	} else {
		for _, b := range strings.Split(o.brokers, ",") {
			if b = strings.TrimSpace(b); b != "" {
				brokers = append(brokers, b)
			}
		}
	}
	if err := ensureTopics(ctx, brokers, int32(o.partitions)); err != nil {
		return err
	}
	stateDir := o.stateDir
	if stateDir == "" {
		dir, err := os.MkdirTemp("", "salesdashboard-")
		if err != nil {
			return fmt.Errorf("make a state directory: %w", err)
		}
		defer os.RemoveAll(dir)
		stateDir = dir
	}
	ln, err := net.Listen("tcp", o.httpAddr)
	if err != nil {
		return fmt.Errorf("listen on -http %s: %w", o.httpAddr, err)
	}
	defer ln.Close()
	adv, err := advertised(o.advertise, ln.Addr())
	if err != nil {
		return err
	}
	var extra []riffle.Option
	if o.sessionTimeout > 0 {
		extra = append(extra, riffle.KafkaOptions(kgo.SessionTimeout(o.sessionTimeout)))
	}
	app, err := newApp(o.appID, brokers, stateDir, adv, o.commitInterval, log, extra...)
	if err != nil {
		return err
	}
	// Shutdown does not end open event streams: their requests get a
	// context that shutting down cancels.
	reqCtx, endRequests := context.WithCancel(context.WithoutCancel(ctx))
	defer endRequests()
	srv := &http.Server{Handler: newMux(app, log), ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return reqCtx }}
	srv.RegisterOnShutdown(endRequests)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("the web server stopped", "addr", ln.Addr().String(), "err", err)
		}
	})
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			log.Warn("stop the web server", "err", err)
		}
		wg.Wait()
	}()
	fmt.Fprintf(out, "dashboard: http://%s/\n", adv)

	appCtx, stopApp := context.WithCancel(ctx)
	defer stopApp()
	genErr := make(chan error, 1)
	if o.generate == nil && embedded || o.generate != nil && *o.generate {
		g, err := NewGenerator(o.gen)
		if err != nil {
			return err
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(5*time.Millisecond))
		if err != nil {
			return fmt.Errorf("generator: connect to %v: %w", brokers, err)
		}
		defer cl.Close()
		fmt.Fprintf(out, "generating about %g orders/s\n", o.gen.Rate)
		wg.Go(func() {
			err := g.Run(appCtx, cl)
			if err != nil {
				stopApp()
			}
			genErr <- err
		})
	} else {
		genErr <- nil
	}
	err = app.Run(appCtx)
	stopApp()
	if gerr := <-genErr; gerr != nil {
		err = errors.Join(err, gerr)
	}
	return err
}

// newApp returns the dashboard's App: orders it cannot read go to the
// dead-letter topic, and it answers queries on the page's server, which
// other instances reach at adv. extra options come last.
func newApp(appID string, brokers []string, stateDir, adv string, commit time.Duration, log *slog.Logger, extra ...riffle.Option) (*riffle.App, error) {
	topo, err := Topology()
	if err != nil {
		return nil, fmt.Errorf("build the topology: %w", err)
	}
	opts := append([]riffle.Option{
		riffle.ApplicationID(appID),
		riffle.BootstrapServers(brokers...),
		riffle.StateDir(stateDir),
		riffle.CommitInterval(commit),
		riffle.OnDecodeError(riffle.DeadLetter(DeadLetterTopic)),
		riffle.AdvertisedAddress(adv),
		riffle.Logger(log),
	}, extra...)
	app, err := riffle.New(topo, opts...)
	if err != nil {
		return nil, fmt.Errorf("make the app: %w", err)
	}
	return app, nil
}

// newMux serves the page and its API, and, under /riffle/v1/, the queries
// other instances forward to this one.
func newMux(app *riffle.App, log *slog.Logger) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/riffle/v1/", app.QueryHandler())
	mux.Handle("/", newWebHandler(func(ctx context.Context) (Dashboard, error) {
		return readDashboard(ctx, app, time.Now())
	}, log))
	return mux
}

// advertised returns the host:port other instances reach this one at: adv
// if set, else the address the server listens on, with localhost for a
// wildcard host.
func advertised(adv string, listen net.Addr) (string, error) {
	if adv != "" {
		if _, _, err := net.SplitHostPort(adv); err != nil {
			return "", fmt.Errorf("-advertise %q: %w", adv, err)
		}
		return adv, nil
	}
	host, port, err := net.SplitHostPort(listen.String())
	if err != nil {
		return "", fmt.Errorf("address %s: %w", listen, err)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port), nil
}

// ensureTopics creates the topics the app needs and does not create
// itself (Topics), with partitions partitions, unless they exist.
func ensureTopics(ctx context.Context, brokers []string, partitions int32) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return fmt.Errorf("connect to %v: %w", brokers, err)
	}
	defer cl.Close()
	resps, err := kadm.NewClient(cl).CreateTopics(ctx, partitions, -1, nil, Topics()...)
	if err != nil {
		return fmt.Errorf("create the topics %v: %w", Topics(), err)
	}
	for _, r := range resps.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %q (%s partitions): %w", r.Topic, strconv.Itoa(int(partitions)), r.Err)
		}
	}
	return nil
}
