package main

// The dashboard measurement: the sales dashboard example
// (examples/salesdashboard) as its users run it, one instance with its page
// open, driven from outside. The example is a command (package main), so
// the bench does not import it: it builds the binary (or takes
// -dashboard-bin) and runs it as a process with -brokers, on an
// application id of its own whose group starts at the current end of the
// shop's topics (the topic names are fixed, so earlier runs' orders may be
// there). The bench produces the orders itself, in the example's wire
// format, and listens to GET /api/events (server-sent events) as the page
// does.
//
//  1. Delay: orders at -dashboard-delay-rate for -dashboard-delay-for. The
//     k-th order to be acknowledged by the broker is shown once an event
//     says total.orders >= k (counting from the count before the load):
//     its delay is that event's arrival minus the k-th acknowledgement.
//     Events come about once a second, so the delay includes up to one
//     interval. GET /api/dashboard, polled every -dashboard-poll, gives the
//     same without the page's tick.
//  2. Highest sustained rate: the rates of -dashboard-rates, each for
//     -dashboard-step, the page's event stream open. The consumer lag (the
//     app group's committed offsets against the end of customer-orders and
//     of the app's repartition topics) is sampled. A rate is sustained if,
//     at its lowest in the step's last seconds, the lag of customer-orders
//     is at most -dashboard-max-behind of orders, and once the load stops
//     the whole lag falls to zero within -dashboard-recover. Stepping stops
//     at the first rate not sustained, then -dashboard-refine bisections
//     narrow the gap.
//  3. Catch-up: -dashboard-burst orders produced at once; their number
//     over the time until the group has committed them all is the app's
//     catch-up rate, the most it processes.
//  4. Baseline: with the app stopped, a bare franz-go loop reads every
//     order the run produced and JSON-decodes it (orders/s).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

var (
	dashBin       = flag.String("dashboard-bin", "", "dashboard: the salesdashboard binary; empty builds it (go build github.com/riffle-streams/riffle/examples/salesdashboard, from within the module)")
	dashRates     = flag.String("dashboard-rates", "250,500,1000,2000,4000", "dashboard: order rates (orders/s) to step through, ascending")
	dashStep      = flag.Duration("dashboard-step", 20*time.Second, "dashboard: how long each rate runs")
	dashRefine    = flag.Int("dashboard-refine", 1, "dashboard: bisections between the last rate sustained and the first not")
	dashBehind    = flag.Duration("dashboard-max-behind", 2*time.Second, "dashboard: a rate is sustained if the lag of customer-orders, at its lowest in the step's last 4s, is at most this much of orders...")
	dashRecover   = flag.Duration("dashboard-recover", 5*time.Second, "dashboard: ...and the whole lag (repartition topics included) falls to zero within this once the load stops")
	dashDelayRate = flag.Float64("dashboard-delay-rate", 200, "dashboard: orders/s while the delay is measured")
	dashDelayFor  = flag.Duration("dashboard-delay-for", 30*time.Second, "dashboard: how long the delay is measured")
	dashPoll      = flag.Duration("dashboard-poll", 50*time.Millisecond, "dashboard: interval of GET /api/dashboard polls while the delay is measured; 0 for none")
	dashBurst     = flag.Int("dashboard-burst", 30_000, "dashboard: orders produced at once after the steps; how fast the app clears them is its catch-up rate (0 for none)")
	dashLog       = flag.String("dashboard-log", "warn", "dashboard: log level of the app (its -log flag)")
)

// dashOrders is the example's topic of orders.
const dashOrders = "customer-orders"

// The example's topics (fixed names): dashSources are those its app reads.
var (
	dashSources = []string{dashOrders, "restocks", "customer-orders-dlq"}
	dashTopics  = append(slices.Clone(dashSources), "inventory-updates", "inventory-alerts")
)

const (
	// dashSettle is the start of the delay load, left out of the delay
	// figures: the producer connects and the app's first fetches warm up.
	dashSettle = 3 * time.Second
	// dashTail is how long the last seconds of a step are, over which the
	// lowest lag is taken.
	dashTail = 4 * time.Second
	// dashDrainLimit bounds the wait for a backlog to drain.
	dashDrainLimit = 5 * time.Minute
	// dashReadyLimit bounds the wait for the app to run and answer.
	dashReadyLimit = 2 * time.Minute
	// dashLagEvery is how often the lag is sampled during a step.
	dashLagEvery = 250 * time.Millisecond
)

// dashboardBench runs the dashboard measurement on c's brokers.
func dashboardBench(ctx context.Context, c config, adm *kadm.Client) error {
	rates, err := parseRates(*dashRates)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "riffle-bench-dashboard-")
	if err != nil {
		return fmt.Errorf("make a temporary directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	bin := *dashBin
	if bin == "" {
		bin = filepath.Join(tmp, "salesdashboard")
		start := time.Now()
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/riffle-streams/riffle/examples/salesdashboard")
		build.Stdout, build.Stderr = os.Stdout, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("build the example (run from within the module, or give -dashboard-bin): %w", err)
		}
		fmt.Printf("Built the salesdashboard example in %.1fs.\n", time.Since(start).Seconds())
	}

	// The topics, if missing, and the app's group at their current end.
	resps, err := adm.CreateTopics(ctx, c.partitions, -1, nil, dashTopics...)
	if err != nil {
		return fmt.Errorf("create the shop's topics: %w", err)
	}
	for _, r := range resps.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", r.Topic, r.Err)
		}
	}
	appID := "bench-dashboard-" + time.Now().Format("150405")
	ends, err := adm.ListEndOffsets(ctx, dashSources...)
	if err != nil {
		return fmt.Errorf("list the end offsets of %v: %w", dashSources, err)
	}
	if err := ends.Error(); err != nil {
		return fmt.Errorf("list the end offsets of %v: %w", dashSources, err)
	}
	if err := adm.CommitAllOffsets(ctx, appID, ends.Offsets()); err != nil {
		return fmt.Errorf("commit the group %s at the end of %v: %w", appID, dashSources, err)
	}
	from := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Topic == dashOrders {
			from[o.Partition] = o.Offset
		}
	})
	fmt.Printf("Dashboard: %s has %d partitions; app id %s, starting at its end.\n", dashOrders, len(from), appID)

	app, err := startDashboard(ctx, bin, tmp, appID, c)
	if err != nil {
		return err
	}
	defer app.stop()
	if err := app.waitReady(ctx, adm); err != nil {
		return err
	}
	fmt.Printf("Dashboard: the app answers at %s\n", app.url)

	pcl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers...), kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(1<<17))
	if err != nil {
		return fmt.Errorf("connect the producer: %w", err)
	}
	defer pcl.Close()
	orders := newOrderMaker(appID)
	events, err := listenEvents(ctx, app.url+"api/events")
	if err != nil {
		return err
	}
	defer events.close()

	dl, err := measureDelay(ctx, app, pcl, orders, events)
	if err != nil {
		return fmt.Errorf("delay: %w", err)
	}
	steps, err := stepRates(ctx, app, adm, appID, pcl, orders, events, rates)
	if err != nil {
		return fmt.Errorf("rates: %w", err)
	}
	var cu catchUp
	if *dashBurst > 0 {
		if cu, err = burst(ctx, app, adm, appID, pcl, orders, events, *dashBurst); err != nil {
			return fmt.Errorf("catch-up: %w", err)
		}
	}
	events.close()
	if err := app.stop(); err != nil {
		return fmt.Errorf("stop the app: %w", err)
	}

	to := map[int32]int64{}
	ends, err = adm.ListEndOffsets(ctx, dashOrders)
	if err != nil {
		return fmt.Errorf("list the end offsets of %s: %w", dashOrders, err)
	}
	ends.Each(func(o kadm.ListedOffset) { to[o.Partition] = o.Offset })
	bareN, bareTook, err := bareDecode(ctx, c, from, to)
	if err != nil {
		return fmt.Errorf("bare loop: %w", err)
	}
	bare := float64(bareN) / bareTook.Seconds()

	fmt.Println()
	fmt.Printf("Delay from an order acknowledged by the broker to its count shown (orders at %g/s for %v, the first %v left out):\n\n", *dashDelayRate, *dashDelayFor, dashSettle)
	fmt.Println("| through | orders | median | p99 | max | not shown |")
	fmt.Println("|---|---|---|---|---|---|")
	fmt.Printf("| page events (GET /api/events, one every %s, median) | %d | %s | %s | %s | %d |\n",
		ms(dl.sseInterval), dl.sse.n, ms(dl.sse.median), ms(dl.sse.p99), ms(dl.sse.max), dl.sse.missing)
	if dl.poll.n > 0 || dl.poll.missing > 0 {
		fmt.Printf("| GET /api/dashboard every %s | %d | %s | %s | %s | %d |\n",
			ms(*dashPoll), dl.poll.n, ms(dl.poll.median), ms(dl.poll.p99), ms(dl.poll.max), dl.poll.missing)
	}
	fmt.Println()
	fmt.Printf("Rate steps of %v, the page's event stream open (sustained: the lag of customer-orders, at its lowest in the last %v, at most %v of orders, and the whole lag back to 0 within %v):\n\n", *dashStep, dashTail, *dashBehind, *dashRecover)
	fmt.Println("| orders/s asked | produced/s | max lag, all input (records) | lowest lag of orders, last 4s (s of orders) | all lag back to 0 after | page events (max gap) | sustained |")
	fmt.Println("|---|---|---|---|---|---|---|")
	best := 0.0
	for _, s := range steps {
		back := fmt.Sprintf("%.1f s", s.drain.Seconds())
		if !s.drained {
			back = fmt.Sprintf("> %.0f s", s.drain.Seconds())
		}
		fmt.Printf("| %g | %.0f | %d | %.2f | %s | %d (%s) | %s |\n", s.rate, s.produced, s.maxLag, s.behind, back, s.events, ms(s.maxGap), yesNo(s.ok))
		if s.ok && s.rate > best {
			best = s.rate
		}
	}
	fmt.Println()
	fmt.Println("| measurement | orders/s | vs bare loop |")
	fmt.Println("|---|---|---|")
	fmt.Printf("| bare franz-go loop: read %s and JSON-decode (%d orders) | %.0f | 1.00 |\n", dashOrders, bareN, bare)
	fmt.Printf("| salesdashboard, one instance, page open: highest rate sustained | %.0f | %.2f |\n", best, best/bare)
	if cu.orders > 0 {
		r := float64(cu.orders) / cu.took.Seconds()
		fmt.Printf("| salesdashboard, one instance, page open: catch-up, %d orders produced at once (in %.1f s) cleared in %.1f s (page events at most %s apart) | %.0f | %.2f |\n",
			cu.orders, cu.produced.Seconds(), cu.took.Seconds(), ms(cu.maxGap), r, r/bare)
	}
	return nil
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

func ms(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
}

func parseRates(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || r <= 0 || math.IsInf(r, 0) {
			return nil, fmt.Errorf("-dashboard-rates: %q is not a positive rate", f)
		}
		if len(out) > 0 && r <= out[len(out)-1] {
			return nil, fmt.Errorf("-dashboard-rates: %v does not follow %v: the rates must rise", r, out[len(out)-1])
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, errors.New("-dashboard-rates: no rate")
	}
	return out, nil
}

// dashApp is the example running as a process.
type dashApp struct {
	cmd     *exec.Cmd
	url     string // the page's, ending in "/"
	appID   string
	exited  chan struct{}
	err     error // Wait's, once exited is closed
	once    sync.Once
	stopErr error
}

// startDashboard starts the example on c's brokers with appID, its state
// under dir, and returns once it printed the address of its page.
func startDashboard(ctx context.Context, bin, dir, appID string, c config) (*dashApp, error) {
	args := []string{"-brokers", strings.Join(c.brokers, ","), "-http", "127.0.0.1:0",
		"-state-dir", filepath.Join(dir, "state"), "-app-id", appID,
		"-partitions", strconv.Itoa(int(c.partitions)), "-log", *dashLog}
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	a := &dashApp{cmd: cmd, appID: appID, exited: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if u, ok := strings.CutPrefix(line, "dashboard: "); ok {
				select {
				case addr <- u:
				default:
				}
			}
			fmt.Println("  salesdashboard:", line)
		}
		a.err = cmd.Wait()
		close(a.exited)
	}()
	select {
	case a.url = <-addr:
		if !strings.HasSuffix(a.url, "/") {
			a.url += "/"
		}
		return a, nil
	case <-a.exited:
		return nil, fmt.Errorf("%s exited before printing its address: %v", bin, a.err)
	case <-time.After(dashReadyLimit):
		a.stop()
		return nil, fmt.Errorf("%s printed no address within %v", bin, dashReadyLimit)
	case <-ctx.Done():
		a.stop()
		return nil, ctx.Err()
	}
}

// check returns an error if the app has exited.
func (a *dashApp) check() error {
	select {
	case <-a.exited:
		return fmt.Errorf("the app exited: %v", a.err)
	default:
		return nil
	}
}

// stop interrupts the app, as Ctrl-C does, and waits for it to exit,
// killing it after a minute.
func (a *dashApp) stop() error {
	a.once.Do(func() {
		select {
		case <-a.exited:
			a.stopErr = a.err
			return
		default:
		}
		if err := a.cmd.Process.Signal(os.Interrupt); err != nil {
			a.stopErr = fmt.Errorf("interrupt pid %d: %w", a.cmd.Process.Pid, err)
		}
		select {
		case <-a.exited:
			if a.stopErr == nil {
				a.stopErr = a.err
			}
		case <-time.After(time.Minute):
			_ = a.cmd.Process.Kill()
			<-a.exited
			a.stopErr = fmt.Errorf("pid %d did not stop within a minute of an interrupt; killed", a.cmd.Process.Pid)
		}
	})
	return a.stopErr
}

// waitReady waits until the app's group is stable and its page's API
// answers.
func (a *dashApp) waitReady(ctx context.Context, adm *kadm.Client) error {
	deadline := time.Now().Add(dashReadyLimit)
	last := ""
	for {
		if err := a.check(); err != nil {
			return err
		}
		// The group first: the app logs a warning for each read of the
		// figures that fails while it starts.
		gs, err := adm.DescribeGroups(ctx, a.appID)
		if err == nil {
			g := gs[a.appID]
			err = fmt.Errorf("group %s is %s with %d members", a.appID, g.State, len(g.Members))
			if g.State == "Stable" && len(g.Members) > 0 {
				if _, err = getDashboard(ctx, a.url+"api/dashboard"); err == nil {
					return nil
				}
			}
		}
		last = err.Error()
		if time.Now().After(deadline) {
			return fmt.Errorf("the app was not ready within %v: %s", dashReadyLimit, last)
		}
		select {
		case <-time.After(250 * time.Millisecond): // a poll, not a synchronisation
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// dashTotals is the part of the example's Dashboard the bench reads.
type dashTotals struct {
	At    time.Time `json:"at"`
	Total struct {
		Orders int64 `json:"orders"`
	} `json:"total"`
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

// getDashboard reads GET /api/dashboard.
func getDashboard(ctx context.Context, url string) (dashTotals, error) {
	var d dashTotals
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return d, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return d, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return d, fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return d, fmt.Errorf("GET %s: %s: %.200s", url, resp.Status, body)
	}
	if err := json.Unmarshal(body, &d); err != nil {
		return d, fmt.Errorf("GET %s: %w", url, err)
	}
	return d, nil
}

// countAt is a count of orders and when it arrived.
type countAt struct {
	at     time.Time
	orders int64
}

// eventStream is an open GET /api/events, as the page opens it, recording
// each "dashboard" event's count and arrival.
type eventStream struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	events []countAt
	bad    int // events that could not be read
	err    error
}

// listenEvents opens the event stream at url.
func listenEvents(ctx context.Context, url string) (*eventStream, error) {
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	s := &eventStream{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		var typ string
		var data bytes.Buffer
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if typ == "dashboard" {
					now := time.Now()
					var d dashTotals
					s.mu.Lock()
					if err := json.Unmarshal(data.Bytes(), &d); err != nil {
						s.bad++
					} else {
						s.events = append(s.events, countAt{at: now, orders: d.Total.Orders})
					}
					s.mu.Unlock()
				}
				typ = ""
				data.Reset()
			case strings.HasPrefix(line, "event:"):
				typ = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
			case strings.HasPrefix(line, "data:"):
				if data.Len() > 0 {
					data.WriteByte('\n')
				}
				data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
			}
		}
		s.mu.Lock()
		s.err = sc.Err()
		s.mu.Unlock()
	}()
	return s, nil
}

// since returns the events that arrived at or after t.
func (s *eventStream) since(t time.Time) []countAt {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := sort.Search(len(s.events), func(i int) bool { return !s.events[i].at.Before(t) })
	return slices.Clone(s.events[i:])
}

// alive returns an error if the stream ended.
func (s *eventStream) alive() error {
	select {
	case <-s.done:
		s.mu.Lock()
		defer s.mu.Unlock()
		return fmt.Errorf("the event stream ended: %v", s.err)
	default:
		return nil
	}
}

func (s *eventStream) close() {
	s.cancel()
	<-s.done
}

// orderMaker makes orders in the example's wire format: several regions,
// a few hundred products of skewed popularity, returning customers.
type orderMaker struct {
	mu     sync.Mutex
	rng    *rand.Rand
	zipf   *rand.Zipf
	prices []int64 // cents, by product
	run    string
	n      int
}

func newOrderMaker(run string) *orderMaker {
	rng := rand.New(rand.NewPCG(1, 2))
	m := &orderMaker{rng: rng, zipf: rand.NewZipf(rng, 1.15, 2, 299), run: run}
	for range 300 {
		m.prices = append(m.prices, int64(math.Min(math.Max(math.Exp(3.1+0.95*rng.NormFloat64()), 1), 1499))*100+99)
	}
	return m
}

var dashRegions = []string{"north-america", "europe", "asia-pacific", "latin-america", "middle-east", "africa"}

// wireOrder is an order as the example reads it.
type wireOrder struct {
	OrderID    string     `json:"orderId"`
	CustomerID string     `json:"customerId"`
	Region     string     `json:"region"`
	Items      []wireItem `json:"items"`
	Total      float64    `json:"total"`
	Timestamp  time.Time  `json:"timestamp"`
}

type wireItem struct {
	ProductID string  `json:"productId"`
	Quantity  int64   `json:"quantity"`
	Price     float64 `json:"price"`
}

// next returns the next order, timestamped at.
func (m *orderMaker) next(at time.Time) *kgo.Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.n++
	c := m.rng.IntN(20_000)
	o := wireOrder{
		OrderID:    fmt.Sprintf("O-%s-%09d", m.run, m.n),
		CustomerID: fmt.Sprintf("C-%06d", c),
		Region:     dashRegions[c%len(dashRegions)],
		Timestamp:  at.UTC().Truncate(time.Millisecond),
	}
	var total int64
	for range 1 + m.rng.IntN(4) {
		p := int(m.zipf.Uint64())
		q := int64(1 + m.rng.IntN(3))
		o.Items = append(o.Items, wireItem{ProductID: fmt.Sprintf("P%04d", p+1), Quantity: q, Price: float64(m.prices[p]) / 100})
		total += q * m.prices[p]
	}
	o.Total = float64(total) / 100
	v, _ := json.Marshal(o) // strings, numbers and a time always encode
	return &kgo.Record{Topic: dashOrders, Key: []byte(o.OrderID), Value: v, Timestamp: o.Timestamp}
}

// orderLoad produces orders at a rate until stopped.
type orderLoad struct {
	rate     float64
	start    time.Time
	sent     atomic.Int64
	acked    atomic.Int64
	failed   atomic.Pointer[error]
	mu       sync.Mutex
	ackTimes []time.Time // when recording
	record   bool
	stopCh   chan struct{}
	done     chan struct{}
	ended    time.Time
}

// startOrderLoad produces orders at rate with cl, recording each
// acknowledgement's time if record is set.
func startOrderLoad(ctx context.Context, cl *kgo.Client, m *orderMaker, rate float64, record bool) *orderLoad {
	l := &orderLoad{rate: rate, start: time.Now(), record: record, stopCh: make(chan struct{}), done: make(chan struct{})}
	acked := func(_ *kgo.Record, err error) {
		if err != nil {
			l.failed.CompareAndSwap(nil, &err)
			return
		}
		if l.record {
			now := time.Now()
			l.mu.Lock()
			l.ackTimes = append(l.ackTimes, now)
			l.mu.Unlock()
		}
		l.acked.Add(1)
	}
	go func() {
		defer close(l.done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-l.stopCh:
				l.ended = time.Now()
				return
			case <-ctx.Done():
				l.ended = time.Now()
				return
			case now := <-tick.C:
				due := int64(l.rate*now.Sub(l.start).Seconds()) - l.sent.Load()
				for range due {
					cl.Produce(ctx, m.next(now), acked)
					l.sent.Add(1)
				}
			}
		}
	}()
	return l
}

// stop stops producing and waits for every order sent to be acknowledged.
func (l *orderLoad) stop(ctx context.Context, cl *kgo.Client) error {
	close(l.stopCh)
	<-l.done
	if err := cl.Flush(ctx); err != nil {
		return fmt.Errorf("flush the orders: %w", err)
	}
	if p := l.failed.Load(); p != nil {
		return fmt.Errorf("produce an order: %w", *p)
	}
	return nil
}

// delayStats are the delays of a path to the counts.
type delayStats struct {
	n                int
	median, p99, max time.Duration
	missing          int
}

// delays computes, for the k-th acknowledgement (acks sorted) from skip
// on, the time until the first reading whose count reached base+k.
func delays(acks []time.Time, skip int, base int64, reads []countAt) delayStats {
	var ds []time.Duration
	var st delayStats
	j := 0
	for k := skip; k < len(acks); k++ {
		want := base + int64(k) + 1
		for j < len(reads) && reads[j].orders < want {
			j++
		}
		if j == len(reads) {
			st.missing = len(acks) - k
			break
		}
		ds = append(ds, reads[j].at.Sub(acks[k]))
	}
	if len(ds) == 0 {
		return st
	}
	slices.Sort(ds)
	st.n = len(ds)
	st.median = ds[len(ds)/2]
	st.p99 = ds[int(math.Ceil(0.99*float64(len(ds))))-1]
	st.max = ds[len(ds)-1]
	return st
}

// delayResult is what the delay measurement found.
type delayResult struct {
	sse, poll   delayStats
	sseInterval time.Duration // median gap between events
}

// measureDelay produces orders at -dashboard-delay-rate and times how long
// each takes to be counted on the page's events and through the API.
func measureDelay(ctx context.Context, app *dashApp, cl *kgo.Client, m *orderMaker, events *eventStream) (delayResult, error) {
	var res delayResult
	d, err := getDashboard(ctx, app.url+"api/dashboard")
	if err != nil {
		return res, err
	}
	base := d.Total.Orders
	fmt.Printf("Dashboard: measuring the delay, %g orders/s for %v (%d orders counted before)...\n", *dashDelayRate, *dashDelayFor, base)

	var (
		pollMu   sync.Mutex
		polls    []countAt
		pollErr  error
		pollStop = make(chan struct{})
		pollDone = make(chan struct{})
	)
	go func() {
		defer close(pollDone)
		if *dashPoll <= 0 {
			return
		}
		tick := time.NewTicker(*dashPoll)
		defer tick.Stop()
		for {
			select {
			case <-pollStop:
				return
			case <-tick.C:
			}
			d, err := getDashboard(ctx, app.url+"api/dashboard")
			now := time.Now()
			pollMu.Lock()
			if err != nil {
				pollErr = err
			} else {
				polls = append(polls, countAt{at: now, orders: d.Total.Orders})
			}
			pollMu.Unlock()
		}
	}()
	defer func() {
		select {
		case <-pollStop:
		default:
			close(pollStop)
		}
		<-pollDone
	}()

	start := time.Now()
	l := startOrderLoad(ctx, cl, m, *dashDelayRate, true)
	select {
	case <-time.After(*dashDelayFor): // the load's duration
	case <-ctx.Done():
	}
	if err := l.stop(ctx, cl); err != nil {
		return res, err
	}
	n := l.acked.Load()
	// Wait for the events to count them all.
	deadline := time.Now().Add(dashDrainLimit)
	for {
		evs := events.since(start)
		if len(evs) > 0 && evs[len(evs)-1].orders >= base+n {
			break
		}
		if err := errors.Join(app.check(), events.alive()); err != nil {
			return res, err
		}
		if time.Now().After(deadline) {
			fmt.Printf("Dashboard: the page did not count all %d orders within %v\n", n, dashDrainLimit)
			break
		}
		select {
		case <-time.After(100 * time.Millisecond): // a poll, not a synchronisation
		case <-ctx.Done():
			return res, ctx.Err()
		}
	}
	close(pollStop)
	<-pollDone
	l.mu.Lock()
	acks := slices.Clone(l.ackTimes)
	l.mu.Unlock()
	slices.SortFunc(acks, func(a, b time.Time) int { return a.Compare(b) })
	skip := sort.Search(len(acks), func(i int) bool { return !acks[i].Before(start.Add(dashSettle)) })
	evs := events.since(start)
	res.sse = delays(acks, skip, base, evs)
	pollMu.Lock()
	res.poll = delays(acks, skip, base, polls)
	if pollErr != nil {
		fmt.Printf("Dashboard: a poll of GET /api/dashboard failed: %v\n", pollErr)
	}
	pollMu.Unlock()
	var gaps []time.Duration
	for i := 1; i < len(evs); i++ {
		gaps = append(gaps, evs[i].at.Sub(evs[i-1].at))
	}
	if len(gaps) > 0 {
		slices.Sort(gaps)
		res.sseInterval = gaps[len(gaps)/2]
	}
	fmt.Printf("Dashboard: %d orders; page events: median %s, p99 %s; polls: median %s, p99 %s\n",
		n, ms(res.sse.median), ms(res.sse.p99), ms(res.poll.median), ms(res.poll.p99))
	return res, nil
}

// lagOf returns how many records the group has not committed: of
// customer-orders (orders), and in all (total) over every topic it has
// committed offsets for, the app's internal repartition topics included,
// whose records its later stages (the counts the page shows among them)
// still have to process. A partition with no commit yet counts from its
// log start.
func lagOf(ctx context.Context, adm *kadm.Client, group string) (orders, total int64, err error) {
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return 0, 0, fmt.Errorf("fetch the offsets of %s: %w", group, err)
	}
	if err := committed.Error(); err != nil {
		return 0, 0, fmt.Errorf("fetch the offsets of %s: %w", group, err)
	}
	topics := []string{dashOrders}
	for t := range committed {
		if t != dashOrders {
			topics = append(topics, t)
		}
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return 0, 0, fmt.Errorf("list the end offsets of %v: %w", topics, err)
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return 0, 0, fmt.Errorf("list the start offsets of %v: %w", topics, err)
	}
	var bad error
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			bad = fmt.Errorf("end offset of %s/%d: %w", o.Topic, o.Partition, o.Err)
			return
		}
		from := int64(-1)
		if c, ok := committed.Lookup(o.Topic, o.Partition); ok && c.Err == nil && c.At >= 0 {
			from = c.At
		} else if st, ok := starts.Lookup(o.Topic, o.Partition); ok && st.Err == nil {
			from = st.Offset
		}
		if from < 0 {
			bad = fmt.Errorf("no committed or start offset for %s/%d", o.Topic, o.Partition)
			return
		}
		n := max(o.Offset-from, 0)
		total += n
		if o.Topic == dashOrders {
			orders += n
		}
	})
	return orders, total, bad
}

// stepResult is what one rate step found.
type stepResult struct {
	rate     float64
	produced float64 // orders/s acknowledged
	maxLag   int64   // of all the app's input, repartition topics included (records)
	behind   float64 // lowest lag of customer-orders in the step's tail, in seconds of orders
	drain    time.Duration
	drained  bool
	events   int           // page events while the load ran
	maxGap   time.Duration // the longest time with no page event while the load ran
	ok       bool
}

// catchUp is how fast the app cleared a backlog.
type catchUp struct {
	orders   int
	produced time.Duration // the time producing them took
	took     time.Duration // from the first produced to the group committing the last
	maxGap   time.Duration // the longest time with no page event meanwhile
}

// burst produces n orders as fast as the producer goes and times how long
// the app takes to clear them: until its group has committed them all.
func burst(ctx context.Context, app *dashApp, adm *kadm.Client, group string, cl *kgo.Client, m *orderMaker, events *eventStream, n int) (catchUp, error) {
	cu := catchUp{orders: n}
	if _, _, ok, err := drain(ctx, app, adm, group, dashDrainLimit); err != nil || !ok {
		if err == nil {
			err = fmt.Errorf("the backlog did not drain within %v", dashDrainLimit)
		}
		return cu, err
	}
	fmt.Printf("Dashboard: %d orders at once...\n", n)
	var failed atomic.Pointer[error]
	start := time.Now()
	for range n {
		cl.Produce(ctx, m.next(time.Now()), func(_ *kgo.Record, err error) {
			if err != nil {
				failed.CompareAndSwap(nil, &err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return cu, fmt.Errorf("flush the orders: %w", err)
	}
	if p := failed.Load(); p != nil {
		return cu, fmt.Errorf("produce an order: %w", *p)
	}
	cu.produced = time.Since(start)
	_, lag, ok, err := drain(ctx, app, adm, group, dashDrainLimit)
	if err != nil {
		return cu, err
	}
	if !ok {
		return cu, fmt.Errorf("%d of %d orders still not committed after %v", lag, n, time.Since(start))
	}
	cu.took = time.Since(start)
	prev := start
	for _, e := range events.since(start) {
		cu.maxGap = max(cu.maxGap, e.at.Sub(prev))
		prev = e.at
	}
	cu.maxGap = max(cu.maxGap, start.Add(cu.took).Sub(prev))
	fmt.Printf("Dashboard: %d orders produced in %.1f s, cleared in %.1f s: %.0f orders/s\n", n, cu.produced.Seconds(), cu.took.Seconds(), float64(n)/cu.took.Seconds())
	return cu, nil
}

// stepRates runs the rate steps, then bisects.
func stepRates(ctx context.Context, app *dashApp, adm *kadm.Client, group string, cl *kgo.Client, m *orderMaker, events *eventStream, rates []float64) ([]stepResult, error) {
	var out []stepResult
	run := func(rate float64) (stepResult, error) {
		// Start from no backlog.
		if _, _, ok, err := drain(ctx, app, adm, group, dashDrainLimit); err != nil || !ok {
			if err == nil {
				err = fmt.Errorf("the backlog did not drain within %v", dashDrainLimit)
			}
			return stepResult{}, err
		}
		s, err := step(ctx, app, adm, group, cl, m, events, rate)
		if err != nil {
			return s, err
		}
		took, _, ok, err := drain(ctx, app, adm, group, dashDrainLimit)
		if err != nil {
			return s, err
		}
		s.drain, s.drained = took, ok
		s.ok = s.drained && s.drain <= *dashRecover && s.behind <= dashBehind.Seconds()
		fmt.Printf("Dashboard: %g orders/s: produced %.0f/s, max lag %d, lowest lag in the tail %.2f s of orders, back to 0 after %s: sustained %s\n",
			rate, s.produced, s.maxLag, s.behind, ms(s.drain), yesNo(s.ok))
		return s, nil
	}
	lastOK, firstBad := 0.0, 0.0
	for _, r := range rates {
		s, err := run(r)
		if err != nil {
			return out, err
		}
		out = append(out, s)
		if !s.ok {
			firstBad = r
			break
		}
		lastOK = r
	}
	for i := 0; i < *dashRefine && firstBad > 0; i++ {
		mid := math.Round((lastOK+firstBad)/2/50) * 50
		if mid <= lastOK || mid >= firstBad {
			break
		}
		s, err := run(mid)
		if err != nil {
			return out, err
		}
		out = append(out, s)
		if s.ok {
			lastOK = mid
		} else {
			firstBad = mid
		}
	}
	return out, nil
}

// step produces orders at rate for -dashboard-step, sampling the lag.
func step(ctx context.Context, app *dashApp, adm *kadm.Client, group string, cl *kgo.Client, m *orderMaker, events *eventStream, rate float64) (stepResult, error) {
	s := stepResult{rate: rate, behind: math.Inf(1)}
	fmt.Printf("Dashboard: %g orders/s for %v...\n", rate, *dashStep)
	start := time.Now()
	l := startOrderLoad(ctx, cl, m, rate, false)
	tick := time.NewTicker(dashLagEvery)
	defer tick.Stop()
	end := start.Add(*dashStep)
	var lagErr error
	for time.Now().Before(end) {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return s, ctx.Err()
		}
		if err := errors.Join(app.check(), events.alive()); err != nil {
			_ = l.stop(ctx, cl)
			return s, err
		}
		orders, total, err := lagOf(ctx, adm, group)
		if err != nil {
			lagErr = err
			continue
		}
		s.maxLag = max(s.maxLag, total)
		if time.Until(end) <= dashTail {
			s.behind = math.Min(s.behind, float64(orders)/rate)
		}
	}
	if err := l.stop(ctx, cl); err != nil {
		return s, err
	}
	s.produced = float64(l.acked.Load()) / l.ended.Sub(l.start).Seconds()
	if math.IsInf(s.behind, 1) {
		return s, fmt.Errorf("no lag sampled in the step's last %v: %v", dashTail, lagErr)
	}
	prev := start
	for _, e := range events.since(start) {
		if e.at.After(l.ended) {
			break
		}
		s.events++
		s.maxGap = max(s.maxGap, e.at.Sub(prev))
		prev = e.at
	}
	s.maxGap = max(s.maxGap, l.ended.Sub(prev))
	return s, nil
}

// drain waits, up to limit, for the group's lag to fall to zero, and
// returns how long that took.
func drain(ctx context.Context, app *dashApp, adm *kadm.Client, group string, limit time.Duration) (took time.Duration, lag int64, ok bool, err error) {
	start := time.Now()
	for {
		if err := app.check(); err != nil {
			return 0, 0, false, err
		}
		_, lag, err = lagOf(ctx, adm, group)
		if err == nil && lag == 0 {
			return time.Since(start), 0, true, nil
		}
		if time.Since(start) > limit {
			return time.Since(start), lag, false, nil
		}
		select {
		case <-time.After(100 * time.Millisecond): // a poll, not a synchronisation
		case <-ctx.Done():
			return 0, 0, false, ctx.Err()
		}
	}
}

// bareDecode reads customer-orders from from to to with a bare franz-go
// client, JSON-decoding every order, and returns how many and how long
// it took.
func bareDecode(ctx context.Context, c config, from, to map[int32]int64) (int, time.Duration, error) {
	parts := map[int32]kgo.Offset{}
	left := 0
	for p, o := range from {
		if to[p] > o {
			parts[p] = kgo.NewOffset().At(o)
			left++
		}
	}
	if left == 0 {
		return 0, 0, errors.New("no orders to read")
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{dashOrders: parts}))
	if err != nil {
		return 0, 0, err
	}
	defer cl.Close()
	rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	start := time.Now()
	n := 0
	reached := map[int32]bool{}
	var bad error
	for len(reached) < left {
		fs := cl.PollRecords(rctx, 4096)
		if err := fs.Err0(); err != nil {
			return n, 0, fmt.Errorf("read %s: %w (after %d orders)", dashOrders, err, n)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= to[r.Partition] {
				reached[r.Partition] = true
				return
			}
			var o wireOrder
			if err := json.Unmarshal(r.Value, &o); err != nil && bad == nil {
				bad = fmt.Errorf("decode %s/%d@%d: %w", dashOrders, r.Partition, r.Offset, err)
			}
			n++
			if r.Offset == to[r.Partition]-1 {
				reached[r.Partition] = true
			}
		})
	}
	took := time.Since(start)
	if bad != nil {
		return n, took, bad
	}
	return n, took, nil
}
