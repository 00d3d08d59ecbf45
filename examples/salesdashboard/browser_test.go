package main

// The browser test: the page in headless Chromium, driven over the Chrome
// DevTools Protocol through a pipe (--remote-debugging-pipe), with the
// standard library only. The harness (browse, and the browser and tab
// types under it) is meant for any test that has the page's URL: this
// file's test runs it over a simulated shop; the app's tests can run it
// over the real app.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Environment of the browser test.
const (
	// envBrowserTest set to 1 makes a missing Chromium a failure rather
	// than a skip (CI sets it); see browserTestRequired.
	envBrowserTest = "RIFFLE_BROWSER_TEST"
	// envScreenshot is where the browser test saves its screenshot (a
	// temporary directory by default).
	envScreenshot = "RIFFLE_SCREENSHOT"
	// envChromium names the Chromium binary, if it is not on PATH as one
	// of chromiumNames.
	envChromium = "RIFFLE_CHROMIUM"
)

// chromiumNames are the names Chromium goes by on PATH, Debian's first.
var chromiumNames = []string{"chromium", "chromium-browser", "google-chrome-stable", "google-chrome", "chrome", "headless_shell"}

// browseTimeout bounds the wait for a page to pass its check.
const browseTimeout = 60 * time.Second

// TestBrowserDashboard opens the page over a simulated shop whose figures
// change, sees them change live in the page, then sees the page say the
// figures are unavailable while the source fails and go live again when it
// recovers, and saves a screenshot.
func TestBrowserDashboard(t *testing.T) {
	shop := newShopSim(time.Now(), 7)
	var failing atomic.Bool
	h := newWebHandler(func(ctx context.Context) (Dashboard, error) {
		if failing.Load() {
			return Dashboard{}, errors.New("task 1_2 is restoring")
		}
		return shop.read(time.Now()), nil
	}, webTestLogger(t), withEventInterval(250*time.Millisecond))
	srv := httptest.NewServer(h)
	defer srv.Close()

	// The check goes through three phases: live figures that change; the
	// source failing; the source back.
	const (
		live = iota
		down
		back
	)
	phase := live
	var first, beforeDown pageFigures
	got := browse(t, srv.URL+"/", func(f pageFigures) bool {
		if f.Updates == 0 {
			return false
		}
		if first.Updates == 0 {
			first = f
		}
		switch phase {
		case live:
			if f.Status == "live" && f.Updates >= first.Updates+3 && f.TotalRevenue != first.TotalRevenue &&
				len(f.Regions) == 6 && len(f.Trending) == 10 && len(f.Alerts) > 0 {
				t.Logf("live: %d updates, revenue %s then %s", f.Updates, first.TotalRevenue, f.TotalRevenue)
				beforeDown = f
				failing.Store(true)
				phase = down
			}
		case down:
			if f.Status == "unavailable" && f.Banner != "" {
				t.Logf("unavailable: %q", f.Banner)
				failing.Store(false)
				phase = back
			}
		case back:
			return f.Status == "live" && f.Banner == "" && f.Updates > beforeDown.Updates
		}
		return false
	}, screenshotPath(t, "salesdashboard.png"))

	t.Logf("page after %d updates: revenue %s, %s orders, average %s, %d alerts, %d instances",
		got.Updates, got.TotalRevenue, got.TotalOrders, got.AvgOrder, len(got.Alerts), got.Instances)
	if got.TotalRevenueCents <= first.TotalRevenueCents {
		t.Errorf("revenue went from %d to %d cents: it should grow", first.TotalRevenueCents, got.TotalRevenueCents)
	}
	// The page shows dollars for the cents it got.
	if want := usd(got.TotalRevenueCents); got.TotalRevenue != want {
		t.Errorf("total revenue shown as %q for %d cents, want %q", got.TotalRevenue, got.TotalRevenueCents, want)
	}
	if want := usd(got.AvgOrderCents); got.AvgOrder != want {
		t.Errorf("average order shown as %q for %d cents, want %q", got.AvgOrder, got.AvgOrderCents, want)
	}
	if got.Instances != 3 {
		t.Errorf("%d instances shown, want 3", got.Instances)
	}
	if got.LastUpdate == "" || got.LastUpdate == "–" {
		t.Errorf("no time of the last update shown: %q", got.LastUpdate)
	}
	if got.MinuteColumns < 10 {
		t.Errorf("%d columns in the per-minute chart, want the last minutes", got.MinuteColumns)
	}
	if len(got.Segments) != 6 {
		t.Errorf("%d segment cells, want new and returning × three tiers", len(got.Segments))
	}
}

// screenshotPath is where a browser test saves its screenshot: the path
// in RIFFLE_SCREENSHOT, or name in a temporary directory.
func screenshotPath(t *testing.T, name string) string {
	if p := os.Getenv(envScreenshot); p != "" {
		return p
	}
	return filepath.Join(t.TempDir(), name)
}

// usd formats cents as the page does: $1,234.56.
func usd(cents int64) string {
	sign := ""
	if cents < 0 {
		sign, cents = "-", -cents
	}
	whole := fmt.Sprint(cents / 100)
	var b strings.Builder
	for i, c := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return fmt.Sprintf("%s$%s.%02d", sign, b.String(), cents%100)
}

// pageFigures are the figures the page shows, read from its DOM: the text
// shown and, where there is one, the raw value in a data attribute.
type pageFigures struct {
	// Updates counts the dashboards the page received.
	Updates int `json:"updates"`
	// Status is the connection status: connecting, live, unavailable,
	// reconnecting, stale or offline.
	Status string `json:"status"`
	// Banner is the warning shown above the figures, "" if none.
	Banner            string `json:"banner"`
	TotalRevenue      string `json:"totalRevenue"`
	TotalRevenueCents int64  `json:"totalRevenueCents"`
	TotalOrders       string `json:"totalOrders"`
	Orders            int64  `json:"orders"`
	AvgOrder          string `json:"avgOrder"`
	AvgOrderCents     int64  `json:"avgOrderCents"`
	Rejected          int64  `json:"rejected"`
	Instances         int    `json:"instances"`
	// LastUpdate is the time of the last update as shown; LastUpdateAt as
	// the server sent it.
	LastUpdate   string `json:"lastUpdate"`
	LastUpdateAt string `json:"lastUpdateAt"`
	Regions      []struct {
		Region       string `json:"region"`
		RevenueCents int64  `json:"revenueCents"`
		Orders       int64  `json:"orders"`
	} `json:"regions"`
	Trending []struct {
		ProductID string `json:"productId"`
		Units     int64  `json:"units"`
	} `json:"trending"`
	Segments []struct {
		Segment      string `json:"segment"`
		Tier         string `json:"tier"`
		Customers    int64  `json:"customers"`
		RevenueCents int64  `json:"revenueCents"`
	} `json:"segments"`
	Alerts []struct {
		ProductID string `json:"productId"`
		Stock     int64  `json:"stock"`
		At        string `json:"at"`
	} `json:"alerts"`
	// MinuteColumns counts the columns of the per-minute chart.
	MinuteColumns int `json:"minuteColumns"`
}

// pageFiguresJS reads pageFigures from the page; null while the page is
// still loading.
const pageFiguresJS = `(() => {
  // Page.navigate returns before the document is parsed: read nothing
  // until every element is there.
  if (document.readyState === 'loading' || !document.body) return null;
  const q = (id) => document.getElementById(id);
  const text = (id) => (q(id) ? q(id).textContent.trim() : '');
  const num = (v) => Number(v || 0);
  const all = (sel) => [...document.querySelectorAll(sel)];
  return {
    updates: num(document.body.dataset.updates),
    status: q('status') ? q('status').dataset.state : '',
    banner: q('banner') && !q('banner').hidden ? text('banner') : '',
    totalRevenue: text('total-revenue'),
    totalRevenueCents: num(q('total-revenue').dataset.cents),
    totalOrders: text('total-orders'),
    orders: num(q('total-orders').dataset.value),
    avgOrder: text('avg-order'),
    avgOrderCents: num(q('avg-order').dataset.cents),
    rejected: num(q('rejected').dataset.value),
    instances: num(q('instances').dataset.value),
    lastUpdate: text('last-update'),
    lastUpdateAt: q('last-update').dataset.at || '',
    regions: all('#regions [data-region]').map((e) => ({region: e.dataset.region, revenueCents: num(e.dataset.cents), orders: num(e.dataset.orders)})),
    trending: all('#trending [data-product]').map((e) => ({productId: e.dataset.product, units: num(e.dataset.units)})),
    segments: all('#segments td[data-segment]').map((e) => ({segment: e.dataset.segment, tier: e.dataset.tier, customers: num(e.dataset.customers), revenueCents: num(e.dataset.cents)})),
    alerts: all('#alerts [data-product]').map((e) => ({productId: e.dataset.product, stock: num(e.dataset.stock), at: e.dataset.at})),
    minuteColumns: all('#minutes-chart g[data-start]').length,
  };
})()`

// browse opens pageURL in headless Chromium, waits (up to browseTimeout)
// until check accepts the figures the page shows, saves a screenshot of
// the whole page as PNG at screenshot (if not empty), and returns the
// figures check accepted. check is called on every poll, about ten times a
// second, so it can remember what it saw before to require a change.
//
// browse skips the test if Chromium is missing, unless RIFFLE_BROWSER_TEST
// is set. It fails the test if the page threw a JavaScript exception,
// logged an error, or requested anything from another host.
func browse(t *testing.T, pageURL string, check func(pageFigures) bool, screenshot string) pageFigures {
	t.Helper()
	b := startBrowser(t)
	// Close the browser before returning: its event stream would keep the
	// caller's server from closing.
	defer b.close()
	tab, err := b.open(pageURL)
	if err != nil {
		t.Fatalf("opening %s: %v", pageURL, err)
	}
	var last pageFigures
	err = tab.waitFor(browseTimeout, func() (bool, error) {
		var f *pageFigures
		if err := tab.eval(pageFiguresJS, &f); err != nil {
			return false, err
		}
		if f == nil {
			return false, nil
		}
		last = *f
		return check(*f), nil
	})
	if err != nil {
		t.Errorf("the page at %s did not pass its check: %v\nlast figures seen: %+v", pageURL, err, last)
	}
	if screenshot != "" {
		if err := tab.screenshot(screenshot, 1400); err != nil {
			t.Errorf("screenshot: %v", err)
		} else {
			t.Logf("screenshot saved at %s", screenshot)
		}
	}
	for _, p := range tab.problems(pageURL) {
		t.Errorf("page problem: %s", p)
	}
	if t.Failed() {
		t.Logf("chromium's stderr, last part:\n%s", b.stderr.String())
	}
	return last
}

// browserTestRequired reports whether RIFFLE_BROWSER_TEST asks for the
// browser test to run (any value but "", "0" and "false").
func browserTestRequired() bool {
	v := strings.ToLower(strings.TrimSpace(os.Getenv(envBrowserTest)))
	return v != "" && v != "0" && v != "false"
}

// findChromium returns the path of the Chromium binary, or "" if there is
// none.
func findChromium() string {
	if p := os.Getenv(envChromium); p != "" {
		return p
	}
	for _, name := range chromiumNames {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// browser is a headless Chromium process, driven over a DevTools pipe.
type browser struct {
	t         *testing.T
	cmd       *exec.Cmd
	conn      *cdpConn
	stderr    *tailBuffer
	exited    chan struct{}
	closeOnce sync.Once
}

// startBrowser starts headless Chromium for the test, stopped when the
// test ends. It skips the test if there is no Chromium, unless
// RIFFLE_BROWSER_TEST is set.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	path := findChromium()
	if path == "" || runtime.GOOS == "windows" {
		msg := fmt.Sprintf("no Chromium found (looked for $%s and %s on PATH; on Debian: apt-get install chromium)", envChromium, strings.Join(chromiumNames, ", "))
		if runtime.GOOS == "windows" {
			msg = "the browser test drives Chromium through a pipe on file descriptors 3 and 4, which Windows lacks"
		}
		if browserTestRequired() {
			t.Fatalf("%s=%s: %s", envBrowserTest, os.Getenv(envBrowserTest), msg)
		}
		t.Skipf("%s; set %s=1 to make this a failure", msg, envBrowserTest)
	}

	// The pipes: Chromium reads commands on its fd 3 and writes answers
	// and events on its fd 4, each message ending with a NUL byte.
	cmdR, cmdW, err := os.Pipe()
	if err != nil {
		t.Fatalf("making the command pipe: %v", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		cmdR.Close()
		cmdW.Close()
		t.Fatalf("making the answer pipe: %v", err)
	}
	profile := t.TempDir()
	cmd := exec.Command(path,
		"--headless",
		"--remote-debugging-pipe",
		"--no-sandbox", // containers and CI run as root
		"--disable-gpu",
		"--disable-dev-shm-usage",
		"--no-first-run",
		"--no-default-browser-check",
		"--disable-extensions",
		"--disable-background-networking", // nothing to Google's services
		"--disable-component-update",
		"--disable-sync",
		"--disable-default-apps",
		"--mute-audio",
		"--hide-scrollbars",
		"--password-store=basic",
		"--use-mock-keychain",
		"--window-size=1400,1000",
		"--user-data-dir="+profile,
		"about:blank")
	stderr := &tailBuffer{max: 16 << 10}
	cmd.Stdout = stderr
	cmd.Stderr = stderr
	cmd.ExtraFiles = []*os.File{cmdR, outW}
	if err := cmd.Start(); err != nil {
		for _, f := range []*os.File{cmdR, cmdW, outR, outW} {
			f.Close()
		}
		t.Fatalf("starting %s: %v", path, err)
	}
	// The child has its ends now.
	cmdR.Close()
	outW.Close()

	b := &browser{t: t, cmd: cmd, stderr: stderr, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait() // its exit status after Browser.close is of no interest
		close(b.exited)
	}()
	b.conn = newCDPConn(cmdW, outR)
	t.Cleanup(b.close)

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var version struct {
		Product string `json:"product"`
	}
	if err := b.conn.call(ctx, "", "Browser.getVersion", nil, &version); err != nil {
		t.Fatalf("talking to %s: %v\nits stderr:\n%s", path, err, stderr.String())
	}
	t.Logf("browser: %s (%s)", version.Product, path)
	return b
}

// close closes the browser and waits for its process to end: gracefully
// first, then by killing the process this test started. Closing twice is
// harmless.
func (b *browser) close() { b.closeOnce.Do(b.doClose) }

func (b *browser) doClose() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = b.conn.call(ctx, "", "Browser.close", nil, nil) // the answer may not come: the browser is gone
	select {
	case <-b.exited:
	case <-time.After(10 * time.Second):
		b.t.Logf("chromium did not exit after Browser.close; killing pid %d", b.cmd.Process.Pid)
		if err := b.cmd.Process.Kill(); err != nil {
			b.t.Logf("killing chromium: %v", err)
		}
		<-b.exited
	}
	b.conn.close()
}

// tab is a page of the browser, attached over a flat session.
type tab struct {
	b       *browser
	session string

	mu         sync.Mutex
	exceptions []string
	logErrors  []string
	requests   []string
}

// open opens pageURL in a new tab of 1400×1000 CSS pixels.
func (b *browser) open(pageURL string) (*tab, error) {
	ctx, cancel := context.WithTimeout(b.t.Context(), 30*time.Second)
	defer cancel()
	var target struct {
		TargetID string `json:"targetId"`
	}
	if err := b.conn.call(ctx, "", "Target.createTarget", map[string]any{"url": "about:blank"}, &target); err != nil {
		return nil, err
	}
	var attached struct {
		SessionID string `json:"sessionId"`
	}
	if err := b.conn.call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &attached); err != nil {
		return nil, err
	}
	tb := &tab{b: b, session: attached.SessionID}
	b.conn.onEvent(tb.session, tb.event)
	for _, domain := range []string{"Page", "Runtime", "Log", "Network"} {
		if err := b.conn.call(ctx, tb.session, domain+".enable", nil, nil); err != nil {
			return nil, err
		}
	}
	if err := tb.setViewport(ctx, 1400, 1000); err != nil {
		return nil, err
	}
	var nav struct {
		ErrorText string `json:"errorText"`
	}
	if err := b.conn.call(ctx, tb.session, "Page.navigate", map[string]any{"url": pageURL}, &nav); err != nil {
		return nil, err
	}
	if nav.ErrorText != "" {
		return nil, fmt.Errorf("navigating to %s: %s", pageURL, nav.ErrorText)
	}
	return tb, nil
}

// event records what the page did wrong, and what it fetched.
func (tb *tab) event(method string, params json.RawMessage) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	switch method {
	case "Runtime.exceptionThrown":
		var p struct {
			Details struct {
				Text      string `json:"text"`
				Exception struct {
					Description string `json:"description"`
				} `json:"exception"`
			} `json:"exceptionDetails"`
		}
		if json.Unmarshal(params, &p) == nil {
			tb.exceptions = append(tb.exceptions, strings.TrimSpace(p.Details.Text+" "+p.Details.Exception.Description))
		}
	case "Runtime.consoleAPICalled":
		var p struct {
			Type string `json:"type"`
			Args []struct {
				Value       any    `json:"value"`
				Description string `json:"description"`
			} `json:"args"`
		}
		if json.Unmarshal(params, &p) == nil && p.Type == "error" {
			var parts []string
			for _, a := range p.Args {
				parts = append(parts, fmt.Sprint(a.Value)+a.Description)
			}
			tb.logErrors = append(tb.logErrors, "console.error: "+strings.Join(parts, " "))
		}
	case "Log.entryAdded":
		var p struct {
			Entry struct {
				Level  string `json:"level"`
				Source string `json:"source"`
				Text   string `json:"text"`
				URL    string `json:"url"`
			} `json:"entry"`
		}
		if json.Unmarshal(params, &p) == nil && p.Entry.Level == "error" {
			tb.logErrors = append(tb.logErrors, fmt.Sprintf("%s: %s %s", p.Entry.Source, p.Entry.Text, p.Entry.URL))
		}
	case "Network.requestWillBeSent":
		var p struct {
			Request struct {
				URL string `json:"url"`
			} `json:"request"`
		}
		if json.Unmarshal(params, &p) == nil {
			tb.requests = append(tb.requests, p.Request.URL)
		}
	}
}

// problems lists the exceptions and logged errors of the page, and its
// requests to anywhere but the host of pageURL.
func (tb *tab) problems(pageURL string) []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var out []string
	for _, e := range tb.exceptions {
		out = append(out, "JavaScript exception: "+e)
	}
	out = append(out, tb.logErrors...)
	home, err := url.Parse(pageURL)
	if err != nil {
		return append(out, fmt.Sprintf("parsing %q: %v", pageURL, err))
	}
	for _, r := range tb.requests {
		u, err := url.Parse(r)
		if err != nil {
			out = append(out, fmt.Sprintf("request to an unparsable URL %q", r))
			continue
		}
		if u.Scheme == "data" || u.Scheme == "about" {
			continue
		}
		if u.Host != home.Host {
			out = append(out, "request outside the server: "+r)
		}
	}
	return out
}

// eval evaluates a JavaScript expression in the page and decodes its value
// into out.
func (tb *tab) eval(expr string, out any) error {
	ctx, cancel := context.WithTimeout(tb.b.t.Context(), 10*time.Second)
	defer cancel()
	var res struct {
		Result struct {
			Type  string          `json:"type"`
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	if err := tb.b.conn.call(ctx, tb.session, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &res); err != nil {
		return err
	}
	if e := res.ExceptionDetails; e != nil {
		return fmt.Errorf("evaluating in the page: %s %s", e.Text, e.Exception.Description)
	}
	if len(res.Result.Value) == 0 {
		res.Result.Value = json.RawMessage("null") // undefined
	}
	if err := json.Unmarshal(res.Result.Value, out); err != nil {
		return fmt.Errorf("decoding the value of an evaluation (%s): %w", res.Result.Type, err)
	}
	return nil
}

// waitFor calls cond about ten times a second until it reports true,
// failing after timeout or at the first error cond returns.
func (tb *tab) waitFor(timeout time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still not there after %s", timeout)
		}
		select {
		case <-tick.C:
		case <-tb.b.exited:
			return errors.New("the browser exited")
		case <-tb.b.t.Context().Done():
			return tb.b.t.Context().Err()
		}
	}
}

// setViewport sets the size of the tab's viewport in CSS pixels.
func (tb *tab) setViewport(ctx context.Context, width, height int) error {
	return tb.b.conn.call(ctx, tb.session, "Emulation.setDeviceMetricsOverride", map[string]any{
		"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false,
	}, nil)
}

// screenshot saves the whole page, width CSS pixels wide, as a PNG at
// path. Animations and transitions are turned off first (the page honours
// prefers-reduced-motion), so the picture shows the figures settled.
func (tb *tab) screenshot(path string, width int) error {
	ctx, cancel := context.WithTimeout(tb.b.t.Context(), 30*time.Second)
	defer cancel()
	c := tb.b.conn
	if err := c.call(ctx, tb.session, "Emulation.setEmulatedMedia", map[string]any{
		"features": []map[string]string{{"name": "prefers-reduced-motion", "value": "reduce"}},
	}, nil); err != nil {
		return err
	}
	// Lay the page out at the width first, then measure its height.
	if err := tb.setViewport(ctx, width, 1000); err != nil {
		return err
	}
	var metrics struct {
		CSSContentSize struct {
			Height float64 `json:"height"`
		} `json:"cssContentSize"`
	}
	if err := c.call(ctx, tb.session, "Page.getLayoutMetrics", nil, &metrics); err != nil {
		return err
	}
	height := int(math.Ceil(metrics.CSSContentSize.Height))
	height = min(max(height, 600), 6000)
	if err := tb.setViewport(ctx, width, height); err != nil {
		return err
	}
	var shot struct {
		Data string `json:"data"`
	}
	if err := c.call(ctx, tb.session, "Page.captureScreenshot", map[string]any{"format": "png"}, &shot); err != nil {
		return err
	}
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil {
		return fmt.Errorf("decoding the screenshot: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("making the screenshot's directory: %w", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		return fmt.Errorf("saving the screenshot: %w", err)
	}
	return nil
}

// cdpConn is a Chrome DevTools Protocol connection over a pipe: JSON
// messages, each ending with a NUL byte.
type cdpConn struct {
	w      io.WriteCloser
	r      io.ReadCloser
	nextID atomic.Int64
	wmu    sync.Mutex // serialises writes

	mu       sync.Mutex
	pending  map[int64]chan cdpMessage
	handlers map[string]func(method string, params json.RawMessage) // by session id
	err      error                                                  // why reading stopped
	done     chan struct{}                                          // closed when reading stops
}

// cdpMessage is an answer or an event.
type cdpMessage struct {
	ID        int64           `json:"id"`
	Method    string          `json:"method"`
	Params    json.RawMessage `json:"params"`
	Result    json.RawMessage `json:"result"`
	SessionID string          `json:"sessionId"`
	Error     *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// newCDPConn returns a connection writing commands to w and reading
// messages from r, until r ends.
func newCDPConn(w io.WriteCloser, r io.ReadCloser) *cdpConn {
	c := &cdpConn{w: w, r: r, pending: make(map[int64]chan cdpMessage), handlers: make(map[string]func(string, json.RawMessage)), done: make(chan struct{})}
	go c.read()
	return c
}

// read dispatches answers to their callers and events to their session's
// handler.
func (c *cdpConn) read() {
	br := bufio.NewReaderSize(c.r, 1<<20)
	var err error
	for {
		var raw []byte
		raw, err = br.ReadBytes(0)
		if err != nil {
			break
		}
		var m cdpMessage
		if jerr := json.Unmarshal(raw[:len(raw)-1], &m); jerr != nil {
			err = fmt.Errorf("decoding a DevTools message: %w", jerr)
			break
		}
		c.mu.Lock()
		if m.ID != 0 {
			if ch, ok := c.pending[m.ID]; ok {
				delete(c.pending, m.ID)
				ch <- m // buffered
			}
			c.mu.Unlock()
			continue
		}
		h := c.handlers[m.SessionID]
		c.mu.Unlock()
		if h != nil {
			h(m.Method, m.Params)
		}
	}
	c.mu.Lock()
	c.err = fmt.Errorf("reading from the browser: %w", err)
	c.mu.Unlock()
	close(c.done)
}

// onEvent sets the handler of the events of a session.
func (c *cdpConn) onEvent(session string, h func(method string, params json.RawMessage)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.handlers[session] = h
}

// call sends a command (to the browser if session is empty, else to the
// session's target) and decodes its result into out, if out is not nil.
func (c *cdpConn) call(ctx context.Context, session, method string, params, out any) error {
	id := c.nextID.Add(1)
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if session != "" {
		msg["sessionId"] = session
	}
	data, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("%s: encoding: %w", method, err)
	}
	ch := make(chan cdpMessage, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return fmt.Errorf("%s: %w", method, err)
	}
	c.pending[id] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}()

	c.wmu.Lock()
	_, err = c.w.Write(append(data, 0))
	c.wmu.Unlock()
	if err != nil {
		return fmt.Errorf("%s: sending: %w", method, err)
	}
	select {
	case m := <-ch:
		if m.Error != nil {
			return fmt.Errorf("%s: %s (code %d)", method, m.Error.Message, m.Error.Code)
		}
		if out != nil {
			if err := json.Unmarshal(m.Result, out); err != nil {
				return fmt.Errorf("%s: decoding the result: %w", method, err)
			}
		}
		return nil
	case <-c.done:
		c.mu.Lock()
		err := c.err
		c.mu.Unlock()
		return fmt.Errorf("%s: %w", method, err)
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

// close closes the pipes and waits for the reader to stop.
func (c *cdpConn) close() {
	c.w.Close()
	c.r.Close()
	<-c.done
}

// tailBuffer keeps the last max bytes written to it; it is safe for
// concurrent use.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

// Write keeps the tail of p.
func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = slices.Clone(b.buf[over:])
	}
	return len(p), nil
}

// String returns what was kept.
func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(bytes.Clone(b.buf))
}

// shopSim simulates a shop for the browser test and the screenshot: orders
// at a varying rate with bursts, six regions, a few hundred products of
// skewed popularity, new and returning customers, stock running low and
// restocked. It computes the Dashboard the app would show for it.
type shopSim struct {
	mu        sync.Mutex
	rng       *rand.Rand
	zipf      *rand.Zipf
	now       time.Time
	regions   []string
	weights   []float64
	products  []simProduct
	rank      []int // product index by popularity rank
	customers []simCustomer
	totals    map[string]*Totals
	minutes   map[time.Time]map[string]*Totals
	units     map[time.Time]map[string]int64
	alerts    []StockAlert
	rejected  int64
	carry     float64 // fractional orders carried to the next step
}

// simProduct is a product of the simulated shop.
type simProduct struct {
	id         string
	priceCents int64
	stock      int64
}

// simCustomer is a customer of the simulated shop.
type simCustomer struct {
	region     int
	orders     int64
	spentCents int64
}

// Figures of the simulated shop.
const (
	simThreshold = 25               // low-stock alert threshold
	simHistory   = 14 * time.Minute // simulated before the first read
	simRate      = 14.0             // orders per second, on average
)

// newShopSim returns a shop with simHistory of orders up to now.
func newShopSim(now time.Time, seed uint64) *shopSim {
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	s := &shopSim{
		rng:     rng,
		zipf:    rand.NewZipf(rng, 1.15, 6, 299),
		regions: []string{"north-america", "europe", "asia-pacific", "latin-america", "middle-east", "africa"},
		weights: []float64{0.31, 0.26, 0.19, 0.11, 0.08, 0.05},
		totals:  make(map[string]*Totals),
		minutes: make(map[time.Time]map[string]*Totals),
		units:   make(map[time.Time]map[string]int64),
		now:     now.Add(-simHistory),
	}
	for i := range 300 {
		dollars := math.Round(math.Exp(3.1 + 0.85*rng.NormFloat64()))
		dollars = min(max(dollars, 3), 450)
		s.products = append(s.products, simProduct{
			id:         fmt.Sprintf("P%04d", i+1),
			priceCents: int64(dollars)*100 - 1,
			stock:      40 + rng.Int64N(400),
		})
	}
	s.rank = rng.Perm(len(s.products))
	s.advance(now)
	return s
}

// read advances the shop to now and returns its dashboard.
func (s *shopSim) read(now time.Time) Dashboard {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance(now)
	return s.dashboard()
}

// advance simulates the orders up to now, a second at a time.
func (s *shopSim) advance(now time.Time) {
	for s.now.Before(now) {
		step := min(now.Sub(s.now), time.Second)
		s.now = s.now.Add(step)
		// A daily-ish swell, a faster wobble and a burst now and then.
		sec := float64(s.now.Unix())
		rate := simRate * (1 + 0.25*math.Sin(sec/180) + 0.15*math.Sin(sec/23))
		if s.rng.Float64() < 0.03 {
			rate *= 3
		}
		s.carry += rate * step.Seconds()
		for s.carry >= 1 {
			s.carry--
			s.order(s.now.Add(-time.Duration(s.rng.Int64N(int64(step) + 1))))
		}
	}
}

// order simulates one order at time at.
func (s *shopSim) order(at time.Time) {
	if s.rng.Float64() < 0.0015 {
		s.rejected++
		return
	}
	var c *simCustomer
	if len(s.customers) == 0 || s.rng.Float64() < 0.3 {
		s.customers = append(s.customers, simCustomer{region: s.pick(s.weights)})
		c = &s.customers[len(s.customers)-1]
	} else {
		c = &s.customers[s.rng.IntN(len(s.customers))]
	}
	minute := at.Truncate(time.Minute)
	if s.units[minute] == nil {
		s.units[minute] = make(map[string]int64)
		s.minutes[minute] = make(map[string]*Totals)
	}
	var total int64
	for range 1 + s.pick([]float64{0.5, 0.28, 0.14, 0.08}) {
		p := &s.products[s.rank[s.zipf.Uint64()]]
		qty := int64(1 + s.pick([]float64{0.75, 0.17, 0.08}))
		total += qty * p.priceCents
		s.units[minute][p.id] += qty
		before := p.stock
		p.stock -= qty
		if before > simThreshold && p.stock <= simThreshold {
			s.alerts = append(s.alerts, StockAlert{ProductID: p.id, Stock: max(p.stock, 0), Threshold: simThreshold, At: at})
		}
		if p.stock <= 0 || (p.stock <= simThreshold && s.rng.Float64() < 0.08) {
			p.stock += 150 + s.rng.Int64N(350) // the restock arrives
		}
	}
	c.orders++
	c.spentCents += total
	region := s.regions[c.region]
	add := func(t *Totals) {
		t.Orders++
		t.RevenueCents += total
		t.AvgOrderCents = t.RevenueCents / t.Orders
	}
	if s.totals[region] == nil {
		s.totals[region] = &Totals{}
	}
	add(s.totals[region])
	if s.minutes[minute][region] == nil {
		s.minutes[minute][region] = &Totals{}
	}
	add(s.minutes[minute][region])
}

// pick returns an index with the given weights.
func (s *shopSim) pick(weights []float64) int {
	x := s.rng.Float64()
	for i, w := range weights {
		if x < w {
			return i
		}
		x -= w
	}
	return len(weights) - 1
}

// dashboard computes the figures as the app would show them.
func (s *shopSim) dashboard() Dashboard {
	d := Dashboard{At: s.now, Rejected: s.rejected, Instances: 3}
	for _, r := range s.regions {
		t, ok := s.totals[r]
		if !ok {
			continue
		}
		d.Regions = append(d.Regions, RegionTotals{Region: r, Totals: *t})
		d.Total.Orders += t.Orders
		d.Total.RevenueCents += t.RevenueCents
	}
	if d.Total.Orders > 0 {
		d.Total.AvgOrderCents = d.Total.RevenueCents / d.Total.Orders
	}
	sort.SliceStable(d.Regions, func(i, j int) bool { return d.Regions[i].RevenueCents > d.Regions[j].RevenueCents })

	current := s.now.Truncate(time.Minute)
	units := make(map[string]int64)
	for m, byRegion := range s.minutes {
		if m.After(current.Add(-15*time.Minute)) && !m.After(current) {
			for _, r := range s.regions {
				if t, ok := byRegion[r]; ok {
					d.Minutes = append(d.Minutes, RegionMinute{Region: r, Start: m, Totals: *t})
				}
			}
		}
		if m.After(current.Add(-10 * time.Minute)) {
			for p, n := range s.units[m] {
				units[p] += n
			}
		}
	}
	sort.SliceStable(d.Minutes, func(i, j int) bool { return d.Minutes[i].Start.Before(d.Minutes[j].Start) })
	for p, n := range units {
		d.Trending = append(d.Trending, ProductUnits{ProductID: p, Units: n})
	}
	sort.Slice(d.Trending, func(i, j int) bool {
		a, b := d.Trending[i], d.Trending[j]
		return a.Units > b.Units || a.Units == b.Units && a.ProductID < b.ProductID
	})
	d.Trending = d.Trending[:min(10, len(d.Trending))]

	type key struct{ segment, tier string }
	segs := make(map[key]*Segment)
	for _, c := range s.customers {
		k := key{"returning", "bronze"}
		if c.orders == 1 {
			k.segment = "new"
		}
		switch {
		case c.spentCents >= 100000:
			k.tier = "gold"
		case c.spentCents >= 25000:
			k.tier = "silver"
		}
		if segs[k] == nil {
			segs[k] = &Segment{Segment: k.segment, Tier: k.tier}
		}
		segs[k].Customers++
		segs[k].RevenueCents += c.spentCents
	}
	for _, seg := range []string{"new", "returning"} {
		for _, tier := range []string{"bronze", "silver", "gold"} {
			if sg, ok := segs[key{seg, tier}]; ok {
				d.Segments = append(d.Segments, *sg)
			}
		}
	}
	for i := len(s.alerts) - 1; i >= 0 && len(d.Alerts) < 12; i-- {
		d.Alerts = append(d.Alerts, s.alerts[i])
	}
	return d
}

// TestBrowserShopSim checks the simulation the browser test shows: its figures
// add up and move.
func TestBrowserShopSim(t *testing.T) {
	start := time.Date(2026, 3, 14, 15, 0, 0, 0, time.UTC)
	s := newShopSim(start, 1)
	d1 := s.read(start)
	d2 := s.read(start.Add(5 * time.Second))
	if d2.Total.Orders <= d1.Total.Orders || d2.Total.RevenueCents <= d1.Total.RevenueCents {
		t.Errorf("no orders in 5s: %+v then %+v", d1.Total, d2.Total)
	}
	var orders, revenue int64
	for _, r := range d2.Regions {
		orders += r.Orders
		revenue += r.RevenueCents
	}
	if orders != d2.Total.Orders || revenue != d2.Total.RevenueCents {
		t.Errorf("regions add up to %d orders, %d cents; total %+v", orders, revenue, d2.Total)
	}
	var segRevenue int64
	for _, sg := range d2.Segments {
		segRevenue += sg.RevenueCents
	}
	if segRevenue != d2.Total.RevenueCents {
		t.Errorf("segments add up to %d cents, total %d", segRevenue, d2.Total.RevenueCents)
	}
	if len(d2.Regions) != 6 || len(d2.Trending) != 10 || len(d2.Alerts) == 0 || len(d2.Minutes) < 6*14 {
		t.Errorf("a thin dashboard: %d regions, %d trending, %d alerts, %d region-minutes", len(d2.Regions), len(d2.Trending), len(d2.Alerts), len(d2.Minutes))
	}
	if got, want := usd(123456789), "$1,234,567.89"; got != want {
		t.Errorf("usd: got %q, want %q", got, want)
	}
}
