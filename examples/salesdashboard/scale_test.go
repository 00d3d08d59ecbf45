package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/riffle-streams/riffle"
	"github.com/riffle-streams/riffle/internal/itest"
	"github.com/riffle-streams/riffle/topology"
)

// The traffic of TestScale.
const (
	// scaleOrders are produced before any instance stops.
	scaleOrders = 1000
	// scaleTick and scalePerTick make the load that runs while instances
	// stop: 20 orders/s. Three instances built with -race on a busy
	// machine with two cores process a few dozen orders a second: at a
	// rate above that, the backlog of the takeover (the group's session
	// timeout) takes minutes to work off.
	scaleTick    = 50 * time.Millisecond
	scalePerTick = 1
	// scaleBeforeKill are the orders produced under load before SIGKILL,
	// and scaleAroundStop those before, and again after, SIGTERM.
	scaleBeforeKill = 100
	scaleAroundStop = 100
	// scaleSeed makes the traffic the same on every run.
	scaleSeed = 8
)

// TestScale is the dashboard's scaling test, on a real Kafka cluster
// (RIFFLE_BROKERS): three instances of the program, each a process of its
// own (TestScaleNodeProcess, through run), with the page on a port of its
// own. The test produces the orders itself, with the program's generator
// (malformed ones included), so it knows every figure the pages must show.
//
//  1. 1000 orders: every instance's GET /api/dashboard shows exactly the
//     figures computed from them (totals, regions, minutes, trending
//     products, segments, rejected orders and instances; not the alerts,
//     which depend on how orders and restocks of different partitions
//     interleave).
//  2. Under a load of 20 orders/s, one instance is killed with SIGKILL. The
//     test measures how long until both survivors' pages answer with
//     whole-shop figures again (2 instances, every region), and until they
//     count every order sent before the kill. With the load stopped and
//     everything committed, no order may be missing, and the figures may
//     exceed the exact ones only as at-least-once allows: by what the
//     killed instance may have processed without committing, at most the
//     orders sent under load before the kill, times the number of times a
//     record can be processed again on its way to the figure (see
//     checkAtLeastOnce): totals, regions, rejected orders, and each
//     customer's stats in the store "customers". (Segments have no such
//     bound: an order counted twice may move a customer to another tier.)
//  3. Under load again, a second instance stops gracefully (SIGTERM). With
//     the load stopped and everything committed, the excess measured in 2
//     has not grown: every figure is exact from there on, and the segments
//     moved exactly as the customers' stats did (see checkExact).
//
// The shop's topics have fixed names: the test deletes and creates them,
// so no other test may use them on the cluster at the same time. Its
// application id is its own, and its group and internal topics are
// deleted at the end.
func TestScale(t *testing.T) {
	if !itest.Real() {
		t.Skip("needs a real Kafka cluster (set RIFFLE_BROKERS): the instances run as separate processes, and the embedded broker lives inside one")
	}
	testStart := time.Now()
	appID := "salesdashboard-scale-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	topo, err := Topology()
	if err != nil {
		t.Fatal(err)
	}
	// The topics the app reads, so as to know when it has committed all it
	// was sent, and those it creates, deleted at the end.
	sources := []string{OrdersTopic, RestocksTopic, DeadLetterTopic}
	var internal []string
	for _, it := range topo.InternalTopics() {
		internal = append(internal, it.Resolve(appID))
		if it.Kind == topology.RepartitionTopic {
			sources = append(sources, it.Resolve(appID))
		}
	}
	// The shop's topics have fixed names: Setup deletes and creates them.
	// The application id is this run's, so its group and internal topics
	// are new.
	k := itest.Setup(t, itest.Spec{Partitions: 6, Topics: Topics()})
	t.Cleanup(func() { scaleCleanUp(t, k, appID, internal) })
	gen, err := NewGenerator(GeneratorConfig{Seed: scaleSeed, Malformed: 0.01})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	s := &scaleRun{t: t, k: k, appID: appID, sources: sources, cl: cl, gen: gen, sent: newShopTally(), loaded: newShopTally()}

	var nodes []*scaleNode
	for i := range 3 {
		nodes = append(nodes, startScaleNode(t, fmt.Sprint("node", i), scaleNodeConfig{Brokers: k.Brokers, AppID: appID, StateDir: t.TempDir()}))
	}
	s.waitSpread(nodes[0], 3)

	// 1. The figures are exact on every page.
	ctx := context.Background()
	for i := 0; i < scaleOrders; i += 500 {
		pctx, cancel := context.WithTimeout(ctx, itest.Timeout())
		err := s.produce(pctx, min(500, scaleOrders-i), false)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	sentAt := time.Now()
	// Everything is committed: whatever is processed twice after the kill
	// was sent under load. (Waiting on the commits first spares the
	// instances the test's queries while they work.)
	s.caughtUp()
	itest.Eventually(t, itest.Timeout(), "every page to show the exact figures", func() (bool, string) {
		for _, n := range nodes {
			want := s.model(len(nodes)).dashboard(time.Now())
			got, err := s.dashboard(n)
			if err != nil {
				return false, n.Name() + ": " + err.Error()
			}
			got.At, got.Alerts = want.At, want.Alerts
			if diff := scaleDiff(got, want); diff != "" {
				return false, n.Name() + ": " + diff
			}
		}
		return true, ""
	})
	first := s.snapshot()
	t.Logf("phase 1: the three pages showed the exact figures of %d orders (%d rejected) %v after they were sent", first.n(), first.rejected, time.Since(sentAt).Round(time.Millisecond))
	phase1 := time.Now()

	// 2. SIGKILL under load.
	stopLoad := s.startLoad()
	s.waitSent(scaleBeforeKill)
	nodes[2].Kill(t)
	killedAt := time.Now()
	atKill, loadedAtKill := s.snapshot(), s.snapshotLoaded()
	survivors := nodes[:2]
	itest.Eventually(t, 4*itest.Timeout(), "the survivors' pages to show the whole shop", func() (bool, string) {
		return s.wholeShop(survivors, nil)
	})
	answered := time.Since(killedAt)
	itest.Eventually(t, 4*itest.Timeout(), "the survivors' pages to count every order sent before the kill", func() (bool, string) {
		return s.wholeShop(survivors, atKill)
	})
	complete := time.Since(killedAt)
	t.Logf("measured: after SIGKILL of one of three instances under %d orders/s, both survivors' pages answered with whole-shop figures (2 instances, every region) within %v, counting every order sent before the kill within %v (the group's session timeout is 6s)",
		int(time.Second/scaleTick)*scalePerTick, answered.Round(time.Millisecond), complete.Round(time.Millisecond))
	if err := stopLoad(); err != nil {
		t.Fatal(err)
	}
	s.caughtUp()
	d2 := s.samePages(survivors)
	cust2 := s.customers(survivors[0])
	exp2 := s.snapshot()
	excess := checkAtLeastOnce(t, d2, cust2, exp2, loadedAtKill)
	var dupOrders, dupCustomers int64
	for _, e := range excess.regions {
		dupOrders += e.Orders
	}
	for _, e := range excess.customers {
		dupCustomers += e.Orders
	}
	t.Logf("checked: after SIGKILL, of %d orders sent (%d of them under load before the kill), none is missing from the survivors' pages, and the excess is within the at-least-once bound: %d orders counted again in the regions' totals (at most %d), %d in the customers' stats (at most as many), %d rejected orders counted again (at most %d)",
		exp2.n(), loadedAtKill.n(), dupOrders, 2*(int64(loadedAtKill.n())-loadedAtKill.rejected), dupCustomers, excess.rejected, 3*loadedAtKill.rejected)

	phase2 := time.Now()

	// 3. SIGTERM under load: exact from here on.
	stopLoad = s.startLoad()
	s.waitSent(scaleAroundStop)
	atStop := s.snapshot()
	nodes[1].Stop(t)
	stoppedAt := time.Now()
	last := nodes[:1]
	itest.Eventually(t, 4*itest.Timeout(), "the last page to show the whole shop", func() (bool, string) {
		return s.wholeShop(last, atStop)
	})
	t.Logf("measured: after SIGTERM of one of two instances under load, the last page showed whole-shop figures, counting every order sent before the stop, within %v",
		time.Since(stoppedAt).Round(time.Millisecond))
	s.waitSent(scaleAroundStop)
	if err := stopLoad(); err != nil {
		t.Fatal(err)
	}
	s.caughtUp()
	d3 := s.samePages(last)
	cust3 := s.customers(last[0])
	exp3 := s.snapshot()
	checkExact(t, d2, cust2, d3, cust3, exp3, excess)
	t.Logf("checked: after a graceful stop under load, %d orders later, every figure moved exactly with the orders sent: the at-least-once excess of the kill did not grow (totals, regions, rejected, every customer's stats, segments)",
		exp3.n()-exp2.n())
	nodes[0].Stop(t)
	t.Logf("took: %v to start the instances and check 1, %v for 2, %v for 3",
		phase1.Sub(testStart).Round(time.Second), phase2.Sub(phase1).Round(time.Second), time.Since(phase2).Round(time.Second))
}

// scaleRun is the state of TestScale: the orders sent and the means to
// send them, and to read the instances.
type scaleRun struct {
	t       *testing.T
	k       *itest.Kafka
	appID   string
	sources []string // every topic the app reads
	cl      *kgo.Client
	gen     *Generator // used by one goroutine at a time

	mu sync.Mutex
	// sent are the orders the brokers acknowledged; loaded those produced
	// by the load, acknowledged or not.
	sent, loaded *shopTally
	loadErr      error
}

// produce sends n generated orders (and the restocks they prompt) and
// waits until the brokers have acknowledged them. Only what they
// acknowledged counts as sent; what the load produces counts as loaded
// before it is sent.
func (s *scaleRun) produce(ctx context.Context, n int, load bool) error {
	var recs []*kgo.Record
	for range n {
		recs = append(recs, s.gen.Next(time.Now())...)
	}
	if load {
		s.mu.Lock()
		for _, r := range recs {
			if r.Topic == OrdersTopic {
				s.loaded.add(r.Value)
			}
		}
		s.mu.Unlock()
	}
	res := s.cl.ProduceSync(ctx, recs...)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range res {
		if r.Err == nil && r.Record.Topic == OrdersTopic {
			s.sent.add(r.Record.Value)
		}
	}
	return res.FirstErr()
}

// startLoad produces scalePerTick orders every scaleTick until the
// function it returns is called; that one returns when the last batch has
// been acknowledged, with the load's error if it failed.
func (s *scaleRun) startLoad() (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		tick := time.NewTicker(scaleTick)
		defer tick.Stop()
		for ctx.Err() == nil {
			// Stopping the load does not cut a batch short: a record
			// whose produce is cancelled may land all the same, and be
			// counted by the app but not by the test.
			bctx, bcancel := context.WithTimeout(context.Background(), itest.Timeout())
			err := s.produce(bctx, scalePerTick, true)
			bcancel()
			if err != nil {
				s.mu.Lock()
				s.loadErr = err
				s.mu.Unlock()
				done <- err
				return
			}
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
		}
		done <- nil
	}()
	return func() error {
		cancel()
		return <-done
	}
}

// waitSent waits until more orders have been sent.
func (s *scaleRun) waitSent(more int) {
	s.t.Helper()
	base := s.snapshot().n()
	itest.Eventually(s.t, itest.Timeout(), "the load to go on", func() (bool, string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.loadErr != nil {
			s.t.Fatalf("the load failed: %v", s.loadErr)
		}
		return s.sent.n() >= base+more, fmt.Sprintf("%d orders of %d", s.sent.n()-base, more)
	})
}

// snapshot returns the figures of the orders sent so far.
func (s *scaleRun) snapshot() *shopTally {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent.clone()
}

// snapshotLoaded returns the figures of the orders the load produced so
// far.
func (s *scaleRun) snapshotLoaded() *shopTally {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loaded.clone()
}

// model returns the dashboard's model fed with the orders sent so far.
func (s *scaleRun) model(instances int) *model {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := newModel()
	for _, o := range s.sent.valid {
		m.addOrder(o)
	}
	m.rejected = s.sent.rejected
	m.instances = instances
	return m
}

// dashboard reads n's GET /api/dashboard.
func (s *scaleRun) dashboard(n *scaleNode) (Dashboard, error) {
	ctx, cancel := context.WithTimeout(context.Background(), itest.Timeout()/2)
	defer cancel()
	return tryDashboard(ctx, n.url+"api/dashboard")
}

// wholeShop reports whether every page of nodes shows whole-shop figures:
// it answers, with every region, and as many instances as nodes; and, if
// sent is not nil, counts at least the orders of sent in every region.
func (s *scaleRun) wholeShop(nodes []*scaleNode, sent *shopTally) (bool, string) {
	for _, n := range nodes {
		d, err := s.dashboard(n)
		if err != nil {
			return false, n.Name() + ": " + err.Error()
		}
		if d.Instances != len(nodes) {
			return false, fmt.Sprintf("%s: %d instances", n.Name(), d.Instances)
		}
		got := map[string]int64{}
		for _, r := range d.Regions {
			got[r.Region] = r.Orders
		}
		for _, r := range Regions() {
			if _, ok := got[r]; !ok {
				return false, fmt.Sprintf("%s: no region %s", n.Name(), r)
			}
			if sent != nil && got[r] < sent.regions[r].Orders {
				return false, fmt.Sprintf("%s: %d orders in %s, of the %d sent", n.Name(), got[r], r, sent.regions[r].Orders)
			}
		}
	}
	return true, ""
}

// samePages reads the pages of nodes and checks they show the same
// figures; it returns the first.
func (s *scaleRun) samePages(nodes []*scaleNode) Dashboard {
	s.t.Helper()
	var pages []Dashboard
	itest.Eventually(s.t, itest.Timeout(), "the pages", func() (bool, string) {
		pages = pages[:0]
		for _, n := range nodes {
			d, err := s.dashboard(n)
			if err != nil {
				return false, n.Name() + ": " + err.Error()
			}
			pages = append(pages, d)
		}
		return true, ""
	})
	for i, d := range pages[1:] {
		if !reflect.DeepEqual(d.Total, pages[0].Total) || !reflect.DeepEqual(d.Regions, pages[0].Regions) ||
			!reflect.DeepEqual(d.Segments, pages[0].Segments) || d.Rejected != pages[0].Rejected {
			s.t.Errorf("%s and %s show different figures:\n%+v\n%+v", nodes[0].Name(), nodes[i+1].Name(), pages[0], d)
		}
	}
	return pages[0]
}

// customers reads every customer's stats from the store "customers"
// through n's query API.
func (s *scaleRun) customers(n *scaleNode) map[string]CustomerStats {
	s.t.Helper()
	var out map[string]CustomerStats
	itest.Eventually(s.t, itest.Timeout(), "the customers through "+n.Name(), func() (bool, string) {
		var err error
		out, err = scaleStoreAll[CustomerStats](n.url, StoreCustomers)
		if err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	return out
}

// scaleStoreAll reads a whole store with string keys through the query
// API of the instance whose page is at base, a page at a time.
func scaleStoreAll[V any](base, store string) (map[string]V, error) {
	out := map[string]V{}
	after := ""
	for {
		q := url.Values{"limit": {"1000"}}
		if after != "" {
			q.Set("after", after)
		}
		var page struct {
			Entries []struct {
				Key   string `json:"key"`
				Value V      `json:"value"`
			} `json:"entries"`
			Next string `json:"next"`
		}
		if err := scaleGetJSON(base+"riffle/v1/stores/"+store+"/all?"+q.Encode(), &page); err != nil {
			return nil, err
		}
		for _, e := range page.Entries {
			out[e.Key] = e.Value
		}
		if page.Next == "" {
			return out, nil
		}
		after = page.Next
	}
}

// scaleGetJSON reads the JSON answer at u into out.
func scaleGetJSON(u string, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), itest.Timeout()/2)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return fmt.Errorf("GET %s: %s: %s", u, resp.Status, e.Error)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// waitSpread waits until n's group has instances instances, each running
// tasks, and no task restoring or warming up.
func (s *scaleRun) waitSpread(n *scaleNode, instances int) {
	s.t.Helper()
	itest.Eventually(s.t, 2*itest.Timeout(), fmt.Sprintf("the %d instances to share the tasks", instances), func() (bool, string) {
		var md []riffle.InstanceMetadata
		if err := scaleGetJSON(n.url+"riffle/v1/metadata", &md); err != nil {
			return false, err.Error()
		}
		if len(md) != instances {
			return false, fmt.Sprintf("%d instances", len(md))
		}
		for _, in := range md {
			if in.Error != "" {
				return false, in.Host + ": " + in.Error
			}
			running := 0
			for _, task := range in.Tasks {
				switch task.State {
				case "RUNNING":
					running++
				case "STANDBY":
				default:
					return false, fmt.Sprintf("%s: %s is %s", in.Host, task.Task, task.State)
				}
			}
			if running == 0 {
				return false, in.Host + " runs no task"
			}
		}
		return true, ""
	})
}

// caughtUp waits until the app has committed the end of every topic it
// reads: with nothing more produced, it has then processed all it was
// sent. The backlog of a load that ran while an instance was missing is
// worked off by processes built with -race: the wait is long.
func (s *scaleRun) caughtUp() {
	s.t.Helper()
	itest.Eventually(s.t, 6*itest.Timeout(), s.appID+" to commit the end of the topics it reads", func() (bool, string) {
		ok, why, err := s.k.CaughtUp(context.Background(), s.appID, s.sources...)
		if err != nil {
			return false, err.Error()
		}
		return ok, why
	})
}

// scaleCleanUp deletes the group and internal topics of a run, once its
// instances are gone. A group whose members were killed cannot be deleted
// before their sessions expire: it is left to Kafka.
func scaleCleanUp(t *testing.T, k *itest.Kafka, group string, topics []string) {
	ctx, cancel := context.WithTimeout(context.Background(), itest.Timeout())
	defer cancel()
	if resps, err := k.Adm.DeleteGroups(ctx, group); err != nil {
		t.Logf("delete group %s: %v", group, err)
	} else if err := resps[group].Err; err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		t.Logf("delete group %s: %v", group, err)
	}
	resps, err := k.Adm.DeleteTopics(ctx, topics...)
	if err != nil {
		t.Logf("delete topics %v: %v", topics, err)
		return
	}
	for _, r := range resps {
		if r.Err != nil && !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
			t.Logf("delete topic %s: %v", r.Topic, r.Err)
		}
	}
}

// shopTally sums orders as the dashboard counts them: valid orders by
// region and by customer, and rejected ones. Whether an order is valid is
// judged as TestDashboardOnBroker does, apart from the program's serde.
type shopTally struct {
	valid     []Order // in the order sent; a clone has none
	regions   map[string]Sales
	customers map[string]CustomerStats
	rejected  int64
	orders    int // valid and rejected
}

func newShopTally() *shopTally {
	return &shopTally{regions: map[string]Sales{}, customers: map[string]CustomerStats{}}
}

// add counts the value of an order record.
func (s *shopTally) add(value []byte) {
	s.orders++
	var o Order
	if err := json.Unmarshal(value, &o); err != nil || validOrder(o) != nil {
		s.rejected++
		return
	}
	s.valid = append(s.valid, o)
	r := s.regions[o.Region]
	s.regions[o.Region] = Sales{Orders: r.Orders + 1, RevenueCents: r.RevenueCents + cents(o.Total)}
	c := s.customers[o.CustomerID]
	s.customers[o.CustomerID] = CustomerStats{Orders: c.Orders + 1, SpendCents: c.SpendCents + cents(o.Total)}
}

// n returns how many orders were counted, valid or not.
func (s *shopTally) n() int { return s.orders }

// clone returns a copy of s's sums, without the orders themselves.
func (s *shopTally) clone() *shopTally {
	return &shopTally{regions: maps.Clone(s.regions), customers: maps.Clone(s.customers), rejected: s.rejected, orders: s.orders}
}

// scaleExcess is how much the figures exceed those of the orders sent.
type scaleExcess struct {
	regions   map[string]Sales
	rejected  int64
	customers map[string]CustomerStats
}

// checkAtLeastOnce checks the figures after a SIGKILL, once the app has
// caught up: got is a page and customers the store of customers' stats;
// sent are the orders sent, and loaded those the load had produced when
// the instance was killed. Everything sent before the load had been
// committed, so the killed instance can have processed without
// committing only orders of loaded, and what they caused.
//
// No figure may fall short of sent. A record processed but not committed
// by the killed instance is processed again by its successor, and so is
// each record it wrote downstream: a figure one repartition away from the
// orders (regions, customers) may count such an order three times (the
// original repartition record twice, its repeat once), an excess of at
// most 2 per order of loaded; rejected orders are two topics further (the
// dead-letter topic, then the repartition by origin), an excess of at most
// 3. It returns the excess of each figure.
func checkAtLeastOnce(t *testing.T, got Dashboard, customers map[string]CustomerStats, sent, loaded *shopTally) scaleExcess {
	t.Helper()
	ex := scaleExcess{regions: map[string]Sales{}, customers: map[string]CustomerStats{}}
	check := func(what string, got, want, bound int64) int64 {
		if got < want || got > want+bound {
			t.Errorf("%s is %d; want %d, plus at most %d processed again", what, got, want, bound)
		}
		return got - want
	}
	var total, totalBound Sales
	for _, r := range got.Regions {
		want, b := sent.regions[r.Region], loaded.regions[r.Region]
		ex.regions[r.Region] = Sales{
			Orders:       check("the orders of "+r.Region, r.Orders, want.Orders, 2*b.Orders),
			RevenueCents: check("the revenue of "+r.Region, r.RevenueCents, want.RevenueCents, 2*b.RevenueCents),
		}
		total.Orders += want.Orders
		total.RevenueCents += want.RevenueCents
		totalBound.Orders += 2 * b.Orders
		totalBound.RevenueCents += 2 * b.RevenueCents
	}
	if len(got.Regions) != len(sent.regions) {
		t.Errorf("the page shows %d regions, the orders have %d", len(got.Regions), len(sent.regions))
	}
	check("the orders in total", got.Total.Orders, total.Orders, totalBound.Orders)
	check("the revenue in total", got.Total.RevenueCents, total.RevenueCents, totalBound.RevenueCents)
	ex.rejected = check("the rejected orders", got.Rejected, sent.rejected, 3*loaded.rejected)
	if len(customers) != len(sent.customers) {
		t.Errorf("%d customers in the store %s, %d in the orders", len(customers), StoreCustomers, len(sent.customers))
	}
	off := 0
	for _, id := range slices.Sorted(maps.Keys(sent.customers)) {
		want, b, c := sent.customers[id], loaded.customers[id], customers[id]
		if c.Orders < want.Orders || c.Orders > want.Orders+2*b.Orders ||
			c.SpendCents < want.SpendCents || c.SpendCents > want.SpendCents+2*b.SpendCents {
			if off++; off <= 5 {
				t.Errorf("customer %s: %+v; want %+v, plus at most twice %+v", id, c, want, b)
			}
		}
		if c != want {
			ex.customers[id] = CustomerStats{Orders: c.Orders - want.Orders, SpendCents: c.SpendCents - want.SpendCents}
		}
	}
	if off > 5 {
		t.Errorf("... %d customers off in all", off)
	}
	return ex
}

// checkExact checks the figures after a graceful stop, once the app has
// caught up: d3 and customers3 against sent, given the excess of an
// earlier SIGKILL, measured on d2 and customers2. The excess of every
// additive figure is unchanged. The segments are not additive (an order
// counted twice may move a customer to a higher tier), so it checks that
// they moved exactly as the customers' stats did from customers2 to
// customers3.
func checkExact(t *testing.T, d2 Dashboard, customers2 map[string]CustomerStats, d3 Dashboard, customers3 map[string]CustomerStats, sent *shopTally, ex scaleExcess) {
	t.Helper()
	var total Sales
	regions := map[string]Sales{}
	for _, r := range d3.Regions {
		regions[r.Region] = Sales{Orders: r.Orders, RevenueCents: r.RevenueCents}
	}
	for _, r := range slices.Sorted(maps.Keys(sent.regions)) {
		s, e := sent.regions[r], ex.regions[r]
		want := Sales{Orders: s.Orders + e.Orders, RevenueCents: s.RevenueCents + e.RevenueCents}
		if regions[r] != want {
			t.Errorf("region %s: %+v; want %+v (the orders sent, %+v, and the excess of the kill, %+v)", r, regions[r], want, s, e)
		}
		total.Orders += want.Orders
		total.RevenueCents += want.RevenueCents
	}
	if len(regions) != len(sent.regions) {
		t.Errorf("the page shows %d regions, the orders have %d", len(regions), len(sent.regions))
	}
	if d3.Total.Orders != total.Orders || d3.Total.RevenueCents != total.RevenueCents {
		t.Errorf("total %+v; want %+v", d3.Total, total)
	}
	if want := sent.rejected + ex.rejected; d3.Rejected != want {
		t.Errorf("%d rejected; want %d (%d sent, %d in excess after the kill)", d3.Rejected, want, sent.rejected, ex.rejected)
	}
	if d3.Instances != 1 {
		t.Errorf("%d instances; want 1", d3.Instances)
	}
	if len(customers3) != len(sent.customers) {
		t.Errorf("%d customers in the store %s, %d in the orders", len(customers3), StoreCustomers, len(sent.customers))
	}
	off := 0
	for _, id := range slices.Sorted(maps.Keys(sent.customers)) {
		s, e := sent.customers[id], ex.customers[id]
		want := CustomerStats{Orders: s.Orders + e.Orders, SpendCents: s.SpendCents + e.SpendCents}
		if customers3[id] != want {
			if off++; off <= 5 {
				t.Errorf("customer %s: %+v; want %+v (sent %+v, excess of the kill %+v)", id, customers3[id], want, s, e)
			}
		}
	}
	if off > 5 {
		t.Errorf("... %d customers off in all", off)
	}
	// The segments moved as the customers did.
	seg2, seg3 := scaleSegments(customers2), scaleSegments(customers3)
	for _, s := range d3.Segments {
		key := s.Segment + "|" + s.Tier
		var before Segment
		for _, b := range d2.Segments {
			if b.Segment == s.Segment && b.Tier == s.Tier {
				before = b
			}
		}
		got := Segment{Customers: s.Customers - before.Customers, RevenueCents: s.RevenueCents - before.RevenueCents}
		want := Segment{Customers: seg3[key].Customers - seg2[key].Customers, RevenueCents: seg3[key].RevenueCents - seg2[key].RevenueCents}
		if got != want {
			t.Errorf("segment %s moved by %+v; the customers' stats moved it by %+v", key, got, want)
		}
	}
	if len(d3.Segments) != 6 {
		t.Errorf("%d segments; want 6", len(d3.Segments))
	}
}

// scaleSegments sums customers by segment and tier, keyed
// "segment|tier": returning after two orders, silver from $100, gold from
// $500.
func scaleSegments(customers map[string]CustomerStats) map[string]Segment {
	out := map[string]Segment{}
	for _, c := range customers {
		seg, tier := "new", "bronze"
		if c.Orders >= 2 {
			seg = "returning"
		}
		switch {
		case c.SpendCents >= 500_00:
			tier = "gold"
		case c.SpendCents >= 100_00:
			tier = "silver"
		}
		s := out[seg+"|"+tier]
		s.Customers++
		s.RevenueCents += c.SpendCents
		out[seg+"|"+tier] = s
	}
	return out
}

// scaleDiff names the first field of the dashboards that differs, with
// both values; "" if none does.
func scaleDiff(got, want Dashboard) string {
	gv, wv := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := range gv.NumField() {
		if !reflect.DeepEqual(gv.Field(i).Interface(), wv.Field(i).Interface()) {
			g, _ := json.Marshal(gv.Field(i).Interface())
			w, _ := json.Marshal(wv.Field(i).Interface())
			return fmt.Sprintf("%s is %.400s; want %.400s", gv.Type().Field(i).Name, g, w)
		}
	}
	return ""
}
