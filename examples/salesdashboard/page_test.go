package main

// The browser test of the real app: the program as `go run` runs it
// (embedded broker, generator, app, page), its page in headless Chromium
// (the harness of browser_test.go), and the figures the page shows checked
// against GET /api/dashboard as the test reads it at about the same time.

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riffle-streams/riffle/internal/itest"
)

// Traffic of the real-app browser test: a fixed seed, a modest rate.
const (
	pageSeed = 8
	pageRate = 60 // orders per second, on average
)

// envPageMinutes, set to a number of minutes, makes the real-app browser
// test let the app run until the dashboard has that many one-minute
// columns before it opens the page, so its screenshot shows full charts
// (RIFFLE_PAGE_MINUTES=10 RIFFLE_SCREENSHOT=docs/salesdashboard.png). The
// default, 0, opens the page at once and keeps the test short.
const envPageMinutes = "RIFFLE_PAGE_MINUTES"

// pageClockMargin is how much earlier than a page reading's start an API
// reading must have ended for the page to be held to at least its figures:
// both are times of this process's wall clock, which may be stepped a
// little meanwhile.
const pageClockMargin = 50 * time.Millisecond

// TestBrowserRealApp runs the program on the embedded broker with the
// generator on, opens its page in headless Chromium, and checks that the
// figures change live and agree with GET /api/dashboard.
//
// The figures the check compares only ever grow while the app runs alone:
// orders and revenue, in total and per region, and rejected orders. So a
// page reading must be at most the API's next reading (the test asks the
// API after it read the page, so the API's reading is the later one), and
// at least any API reading that ended before the page's figures were read
// (the "at" of the event, as the server sent it). Neither bound depends on
// timing, yet a page showing figures that are too high, stale, or not the
// ones it was sent breaks one of them. The page's figures must also add up:
// the regions to the total, the average to revenue over orders, the text
// shown to the raw values.
//
// It skips when Chromium is missing, unless RIFFLE_BROWSER_TEST is set;
// it saves a screenshot at RIFFLE_SCREENSHOT, if set; RIFFLE_PAGE_MINUTES
// makes it wait for fuller charts first.
func TestBrowserRealApp(t *testing.T) {
	if findChromium() == "" || runtime.GOOS == "windows" {
		// Skips, or fails under RIFFLE_BROWSER_TEST, before the app starts.
		startBrowser(t)
	}
	minutes := 0
	if v := strings.TrimSpace(os.Getenv(envPageMinutes)); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > MinutesShown {
			t.Fatalf("%s=%q: want a number of minutes from 0 to %d", envPageMinutes, v, MinutesShown)
		}
		minutes = n
	}

	var out lockedBuffer
	logs := itest.NewLogRecorder(slog.LevelInfo)
	logs.DumpOnFailure(t, "salesdashboard", slog.LevelWarn)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	opts := options{httpAddr: "127.0.0.1:0", stateDir: t.TempDir(), gen: GeneratorConfig{Rate: pageRate, Seed: pageSeed}}
	go func() { done <- run(ctx, opts, &out, logs.Logger()) }()
	returned := false
	var runErr error
	stop := func() {
		cancel()
		if returned {
			return
		}
		select {
		case runErr = <-done:
			returned = true
		case <-time.After(2 * itest.Timeout()):
			t.Errorf("run did not stop within %v after its context ended", 2*itest.Timeout())
		}
	}
	t.Cleanup(stop) // also when the test fails early: nothing outlives it
	running := func() error {
		if returned {
			return fmt.Errorf("run returned %v", runErr)
		}
		select {
		case runErr = <-done:
			returned = true
			return fmt.Errorf("run returned %v:\n%s", runErr, out.String())
		default:
			return nil
		}
	}

	addr := regexp.MustCompile(`(?m)^dashboard: (http://\S+/)$`)
	var page string
	itest.Eventually(t, 2*itest.Timeout(), "the page's address", func() (bool, string) {
		if err := running(); err != nil {
			t.Fatal(err)
		}
		m := addr.FindStringSubmatch(out.String())
		if m == nil {
			return false, out.String()
		}
		page = m[1]
		return true, ""
	})
	api := page + "api/dashboard"
	itest.Eventually(t, 3*itest.Timeout(), "orders counted", func() (bool, string) {
		if err := running(); err != nil {
			t.Fatal(err)
		}
		d, err := tryDashboard(ctx, api)
		if err != nil {
			return false, err.Error()
		}
		return d.Total.Orders > 0, "no orders yet"
	})
	if minutes > 0 {
		waitForMinutes(t, ctx, api, minutes, running)
	}

	c := &pageCheck{t: t, ctx: ctx, api: api}
	got := browse(t, page, c.check, screenshotPath(t, "salesdashboard-app.png"))
	if c.bad {
		return // check reported it
	}
	t.Logf("page after %d updates: %s orders, revenue %s, %d rejected, %d regions, %d trending, %d alerts; "+
		"checked against %d API readings (%d lower bounds applied), %d API errors",
		got.Updates, got.TotalOrders, got.TotalRevenue, got.Rejected, len(got.Regions), len(got.Trending), len(got.Alerts),
		c.uppers, c.lowers, c.apiErrors)
	if got.Instances != 1 {
		t.Errorf("%d instances shown, want 1", got.Instances)
	}
	if len(got.Segments) != 6 {
		t.Errorf("%d segment cells, want new and returning × three tiers", len(got.Segments))
	}
	if minutes > 0 && got.MinuteColumns < minutes {
		t.Errorf("%d columns in the per-minute chart, want at least %d", got.MinuteColumns, minutes)
	}
	stop()
	if runErr != nil {
		t.Errorf("run: %v", runErr)
	}
}

// waitForMinutes lets the app run until its dashboard has per-minute
// figures for minutes distinct minutes, polling the API every second.
func waitForMinutes(t *testing.T, ctx context.Context, api string, minutes int, running func() error) {
	t.Helper()
	timeout := time.Duration(minutes+2) * time.Minute
	t.Logf("letting the app run until the dashboard shows %d minutes (up to %v)", minutes, timeout)
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last := "no reading yet"
	for {
		if err := running(); err != nil {
			t.Fatal(err)
		}
		d, err := tryDashboard(ctx, api)
		if err == nil {
			starts := map[time.Time]bool{}
			for _, m := range d.Minutes {
				starts[m.Start] = true
			}
			if len(starts) >= minutes {
				t.Logf("%d minutes shown, %d orders, %d alerts", len(starts), d.Total.Orders, len(d.Alerts))
				return
			}
			last = fmt.Sprintf("%d minutes, %d orders", len(starts), d.Total.Orders)
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dashboard did not show %d minutes within %v; last: %s", minutes, timeout, last)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
}

// reporter is the part of *testing.T pageCheck reports with.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
	Logf(format string, args ...any)
}

// growing are the figures of a dashboard that only grow while one
// instance runs: orders and revenue, in total and per region, and the
// rejected orders.
type growing struct {
	orders, revenueCents, rejected int64
	regions                        map[string]Sales
}

func growingOfAPI(d Dashboard) growing {
	g := growing{orders: d.Total.Orders, revenueCents: d.Total.RevenueCents, rejected: d.Rejected, regions: map[string]Sales{}}
	for _, r := range d.Regions {
		g.regions[r.Region] = Sales{Orders: r.Orders, RevenueCents: r.RevenueCents}
	}
	return g
}

func growingOfPage(f pageFigures) growing {
	g := growing{orders: f.Orders, revenueCents: f.TotalRevenueCents, rejected: f.Rejected, regions: map[string]Sales{}}
	for _, r := range f.Regions {
		g.regions[r.Region] = Sales{Orders: r.Orders, RevenueCents: r.RevenueCents}
	}
	return g
}

// atMost returns "" if every figure of a is at most b's, else the first
// that is not.
func (a growing) atMost(b growing) string {
	switch {
	case a.orders > b.orders:
		return fmt.Sprintf("orders %d > %d", a.orders, b.orders)
	case a.revenueCents > b.revenueCents:
		return fmt.Sprintf("revenue %d > %d cents", a.revenueCents, b.revenueCents)
	case a.rejected > b.rejected:
		return fmt.Sprintf("rejected %d > %d", a.rejected, b.rejected)
	}
	for r, s := range a.regions {
		o := b.regions[r]
		if s.Orders > o.Orders || s.RevenueCents > o.RevenueCents {
			return fmt.Sprintf("region %s: %d orders, %d cents > %d orders, %d cents", r, s.Orders, s.RevenueCents, o.Orders, o.RevenueCents)
		}
	}
	return ""
}

// apiReading is a reading of GET /api/dashboard and when it ended.
type apiReading struct {
	growing
	ended time.Time
}

// pageCheck is the check browse calls on the page of the real app: it
// compares each page reading with the API's (see TestBrowserRealApp) and
// accepts once the figures have changed live.
type pageCheck struct {
	t   reporter
	ctx context.Context
	api string

	first pageFigures  // the first page reading with orders
	seen  []apiReading // the API's readings so far, oldest first
	bad   bool         // a check failed (and was reported)
	// uppers counts page readings held to the API's next reading; lowers,
	// those held to an earlier API reading; apiErrors, the API readings
	// that failed.
	uppers, lowers, apiErrors int
}

// check checks one reading of the page; it returns true when the page has
// passed, or when a check failed (reported with t.Errorf), to end browse.
func (c *pageCheck) check(f pageFigures) bool {
	if f.Updates == 0 || f.Status != "live" {
		return false
	}
	if msg := pageAddsUp(f); msg != "" {
		c.fail("the page's figures do not add up: %s\n%+v", msg, f)
		return true
	}
	at, err := time.Parse(time.RFC3339Nano, f.LastUpdateAt)
	if err != nil {
		c.fail("the time of the page's figures: %v", err)
		return true
	}
	p := growingOfPage(f)
	// At least what the API showed before the page's figures were read.
	for i := len(c.seen) - 1; i >= 0; i-- {
		q := c.seen[i]
		if q.ended.Add(pageClockMargin).Before(at) {
			if msg := q.atMost(p); msg != "" {
				c.fail("the page's figures read at %s are below the API's that ended at %s: %s",
					at.Format(time.StampMilli), q.ended.Format(time.StampMilli), msg)
				return true
			}
			c.lowers++
			break // the latest such reading is the highest
		}
	}
	// At most what the API shows now.
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	d, err := tryDashboard(ctx, c.api)
	cancel()
	if err != nil {
		c.apiErrors++
		c.t.Logf("GET %s: %v", c.api, err)
	} else {
		q := apiReading{growing: growingOfAPI(d), ended: time.Now()}
		if msg := p.atMost(q.growing); msg != "" {
			c.fail("the page shows more than the API's next reading: %s", msg)
			return true
		}
		c.uppers++
		c.seen = append(c.seen, q)
	}
	if c.first.Orders == 0 {
		if f.Orders > 0 {
			c.first = f
		}
		return false
	}
	return f.Updates >= c.first.Updates+3 && f.Orders > c.first.Orders && f.TotalRevenueCents > c.first.TotalRevenueCents &&
		c.lowers >= 3 && c.uppers >= 3 && len(f.Regions) > 0 && len(f.Trending) > 0
}

func (c *pageCheck) fail(format string, args ...any) {
	c.t.Helper()
	c.bad = true
	c.t.Errorf(format, args...)
}

// pageAddsUp returns "" if the page's figures are consistent with each
// other, else what is not.
func pageAddsUp(f pageFigures) string {
	var orders, cents int64
	for _, r := range f.Regions {
		orders += r.Orders
		cents += r.RevenueCents
	}
	switch {
	case orders != f.Orders || cents != f.TotalRevenueCents:
		return fmt.Sprintf("the regions add up to %d orders and %d cents, the total is %d orders and %d cents", orders, cents, f.Orders, f.TotalRevenueCents)
	case f.Orders > 0 && f.AvgOrderCents != f.TotalRevenueCents/f.Orders:
		return fmt.Sprintf("average order %d cents, but %d cents / %d orders", f.AvgOrderCents, f.TotalRevenueCents, f.Orders)
	case f.TotalRevenue != usd(f.TotalRevenueCents):
		return fmt.Sprintf("revenue shown as %q for %d cents", f.TotalRevenue, f.TotalRevenueCents)
	case f.AvgOrder != usd(f.AvgOrderCents):
		return fmt.Sprintf("average order shown as %q for %d cents", f.AvgOrder, f.AvgOrderCents)
	case f.TotalOrders != commas(f.Orders):
		return fmt.Sprintf("orders shown as %q for %d", f.TotalOrders, f.Orders)
	}
	return ""
}

// commas writes n with thousands separators, as the page does.
func commas(n int64) string {
	s := usd(n * 100) // "$1,234.00"
	return strings.TrimSuffix(strings.TrimPrefix(s, "$"), ".00")
}

// recorder is a reporter that keeps the errors.
type recorder struct{ errors []string }

func (r *recorder) Helper()             {}
func (r *recorder) Logf(string, ...any) {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

// TestPageCheck checks that the real-app browser test's check accepts a
// page that agrees with the API and catches one that shows too much, stale
// figures, or figures that do not add up.
func TestPageCheck(t *testing.T) {
	var api atomic.Pointer[Dashboard]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		webWriteJSON(w, http.StatusOK, api.Load(), slog.New(slog.DiscardHandler))
	}))
	defer srv.Close()
	dash := func(at time.Time, a, b int64) *Dashboard {
		return &Dashboard{At: at, Total: Totals{Orders: a + b, RevenueCents: 100 * (a + b)}, Regions: []RegionTotals{
			{Region: "europe", Totals: Totals{Orders: a, RevenueCents: 100 * a}},
			{Region: "africa", Totals: Totals{Orders: b, RevenueCents: 100 * b}},
		}}
	}
	page := func(updates int, at time.Time, a, b int64) pageFigures {
		d := dash(at, a, b)
		f := pageFigures{Updates: updates, Status: "live", LastUpdateAt: at.Format(time.RFC3339Nano),
			Orders: d.Total.Orders, TotalOrders: commas(d.Total.Orders), TotalRevenueCents: d.Total.RevenueCents, TotalRevenue: usd(d.Total.RevenueCents)}
		if f.Orders > 0 {
			f.AvgOrderCents = f.TotalRevenueCents / f.Orders
		}
		f.AvgOrder = usd(f.AvgOrderCents)
		for _, r := range d.Regions {
			f.Regions = append(f.Regions, struct {
				Region       string `json:"region"`
				RevenueCents int64  `json:"revenueCents"`
				Orders       int64  `json:"orders"`
			}{r.Region, r.RevenueCents, r.Orders})
		}
		return f
	}
	newCheck := func() (*pageCheck, *recorder) {
		r := &recorder{}
		return &pageCheck{t: r, ctx: t.Context(), api: srv.URL}, r
	}
	t0 := time.Now()

	// Agreeing with the API, then bad in one way each.
	c, r := newCheck()
	api.Store(dash(t0, 600, 400))
	if c.check(page(1, t0.Add(-time.Second), 590, 400)) || len(r.errors) > 0 {
		t.Fatalf("a page that agrees with the API: done or failed: %v", r.errors)
	}
	for _, bad := range []struct {
		name string
		f    pageFigures
	}{
		{"more orders than the API", page(2, t0, 600, 401)},
		{"a region above the API's", page(2, t0, 601, 399)},
		{"stale figures", page(2, time.Now().Add(time.Second), 500, 400)},
		{"regions not adding up", func() pageFigures { f := page(2, t0, 600, 400); f.Orders--; f.TotalOrders = commas(f.Orders); return f }()},
		{"revenue shown wrong", func() pageFigures {
			f := page(2, t0, 600, 400)
			f.TotalRevenue = usd(f.TotalRevenueCents + 1)
			return f
		}()},
	} {
		c, r := newCheck()
		c.seen = []apiReading{{growing: growingOfAPI(*dash(t0, 600, 400)), ended: time.Now()}}
		if !c.check(bad.f) || !c.bad || len(r.errors) != 1 {
			t.Errorf("%s: not caught (errors %q)", bad.name, r.errors)
		}
	}
}
