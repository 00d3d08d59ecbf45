package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/riffle-streams/riffle"
	"github.com/riffle-streams/riffle/internal/itest"
)

// instance is one copy of the dashboard in a test: the App and the web
// server that serves its page and the queries of the other copies.
type instance struct {
	app *riffle.App
	url string
	run *itest.Running
}

// startInstance starts a copy of the dashboard, as run does, on brokers.
func startInstance(t *testing.T, name, appID string, brokers []string, log *slog.Logger) *instance {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adv := ln.Addr().String()
	app, err := newApp(appID, brokers, t.TempDir(), adv, 200*time.Millisecond, log.With("instance", name))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: newMux(app, log), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("%s: stop the web server: %v", name, err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("%s: web server: %v", name, err)
		}
	})
	return &instance{app: app, url: "http://" + adv, run: itest.Run(t, name, app)}
}

// TestDashboardOnBroker is the dashboard's correctness test. It runs two
// instances on a broker (the embedded one, or RIFFLE_BROKERS), produces a
// bounded run of generated traffic, malformed orders included, then
// computes the figures from the customer-orders topic itself and checks
// that both instances' dashboards, read through interactive queries (and
// over HTTP), show exactly those, whole-shop; and that every malformed
// order is on the dead-letter topic with its reason.
func TestDashboardOnBroker(t *testing.T) {
	const appID = "salesdashboard-test"
	topo, err := Topology()
	if err != nil {
		t.Fatal(err)
	}
	var internal []string
	for _, it := range topo.InternalTopics() {
		internal = append(internal, it.Resolve(appID))
	}
	k := itest.Setup(t, itest.Spec{Partitions: 6, Topics: Topics(), Delete: internal, Groups: []string{appID}})
	logs := itest.NewLogRecorder(slog.LevelInfo)
	logs.DumpOnFailure(t, appID, slog.LevelWarn)
	a := startInstance(t, "a", appID, k.Brokers, logs.Logger())
	b := startInstance(t, "b", appID, k.Brokers, logs.Logger())
	a.run.WaitState(t, 2*itest.Timeout(), riffle.Running)
	b.run.WaitState(t, 2*itest.Timeout(), riffle.Running)

	ctx, cancel := context.WithTimeout(context.Background(), 6*itest.Timeout())
	defer cancel()
	g, err := NewGenerator(GeneratorConfig{Seed: 99, Orders: 500, Rate: 4000, Malformed: 0.02})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...), kgo.ProducerLinger(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := g.Run(ctx, cl); err != nil {
		t.Fatal(err)
	}

	// The figures, from the topics.
	orders, err := k.ReadAll(ctx, OrdersTopic)
	if err != nil {
		t.Fatal(err)
	}
	if len(orders) != 500 {
		t.Fatalf("%d orders on %s, want the 500 generated", len(orders), OrdersTopic)
	}
	m := newModel()
	m.instances = 2
	reasons := map[string]string{} // of the malformed orders, by key
	for _, r := range orders {
		var o Order
		if err := json.Unmarshal(r.Value, &o); err != nil || validOrder(o) != nil {
			m.rejected++
			_, derr := decodeOrder(r.Value)
			if derr == nil {
				t.Fatalf("order %s is malformed but decodes", r.Value)
			}
			reasons[string(r.Key)] = derr.Error()
			continue
		}
		m.addOrder(o)
	}
	if m.rejected == 0 {
		t.Fatal("the generator made no malformed order")
	}
	// Stock moves in an order the topics do not fix (orders and restocks
	// of a product come from several partitions), so alerts are only
	// comparable when none is due: 500 orders take no product from 500
	// units to 50.
	if len(m.alerts()) != 0 {
		t.Fatalf("the traffic has alerts: %+v", m.alerts())
	}
	now := time.Now()
	want := m.dashboard(now)
	if len(want.Trending) != TopProducts || len(want.Regions) != len(Regions()) {
		t.Fatalf("the traffic has %d trending products and %d regions", len(want.Trending), len(want.Regions))
	}
	for _, in := range []*instance{a, b} {
		itest.Eventually(t, 3*itest.Timeout(), "the dashboard of "+in.url, func() (bool, string) {
			got, err := readDashboard(ctx, in.app, now)
			if err != nil {
				return false, err.Error()
			}
			if !reflect.DeepEqual(got, want) {
				return false, fmt.Sprintf("%d orders, %d rejected, %d instances; want %d, %d, %d",
					got.Total.Orders, got.Rejected, got.Instances, want.Total.Orders, want.Rejected, want.Instances)
			}
			return true, ""
		})
		got, err := readDashboard(ctx, in.app, now)
		if err != nil {
			t.Fatal(err)
		}
		same(t, in.url, got, want)
	}

	// Through the HTTP API, at the server's own time: the figures that do
	// not depend on it.
	for _, in := range []*instance{a, b} {
		got := getDashboard(t, ctx, in.url+"/api/dashboard")
		got.At, got.Minutes, got.Trending = want.At, want.Minutes, want.Trending
		same(t, in.url+"/api/dashboard", got, want)
	}

	// Every malformed order is on the dead-letter topic, with its reason.
	dead, err := k.ReadAll(ctx, DeadLetterTopic)
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != int(m.rejected) {
		t.Errorf("%d records on %s, want %d", len(dead), DeadLetterTopic, m.rejected)
	}
	for _, r := range dead {
		h := map[string]string{}
		for _, x := range r.Headers {
			h[x.Key] = string(x.Value)
		}
		reason, ok := reasons[string(r.Key)]
		if !ok || h[HeaderTopic] != OrdersTopic || !strings.Contains(h[HeaderError], reason) {
			t.Errorf("dead letter %s: headers %v; want topic %s and reason %q", r.Key, h, OrdersTopic, reason)
		}
	}
}

// getDashboard reads the dashboard's JSON at url.
func getDashboard(t *testing.T, ctx context.Context, url string) Dashboard {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	var d Dashboard
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return d
}

// TestTrendingStart checks which window the dashboard shows: the one that
// ends first after now.
func TestTrendingStart(t *testing.T) {
	for _, c := range []struct{ now, start string }{
		{"12:00:00", "11:51:00"},
		{"12:00:59", "11:51:00"},
		{"12:09:30", "12:00:00"},
	} {
		now, _ := time.Parse("15:04:05", c.now)
		want, _ := time.Parse("15:04:05", c.start)
		start := TrendingStart(now)
		if !start.Equal(want) {
			t.Errorf("TrendingStart(%s) = %s, want %s", c.now, start.Format("15:04:05"), c.start)
		}
		if end := start.Add(TrendingWindow); !end.After(now) || end.Sub(now) > TrendingAdvance {
			t.Errorf("at %s the window ends at %s", c.now, end.Format("15:04:05"))
		}
	}
}
