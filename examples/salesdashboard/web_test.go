package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riffle-streams/riffle"
)

// webFake is a source of figures for the web tests: each call returns a
// dashboard whose order count is the number of calls so far, or fails
// while failing is set.
type webFake struct {
	calls   atomic.Int64
	failing atomic.Bool
}

// read is the fake's src.
func (f *webFake) read(ctx context.Context) (Dashboard, error) {
	if err := ctx.Err(); err != nil {
		return Dashboard{}, fmt.Errorf("fake read: %w", err)
	}
	n := f.calls.Add(1)
	if f.failing.Load() {
		return Dashboard{}, errors.New("task 0_1 is restoring")
	}
	return webFakeDashboard(n), nil
}

// webFakeDashboard is a dashboard with n orders of $12.50 and a bit of
// everything.
func webFakeDashboard(n int64) Dashboard {
	at := time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC).Add(time.Duration(n) * time.Second)
	total := Totals{Orders: n, RevenueCents: n * 1250, AvgOrderCents: 1250}
	return Dashboard{
		At:       at,
		Total:    total,
		Regions:  []RegionTotals{{Region: "Europe", Totals: total}},
		Minutes:  []RegionMinute{{Region: "Europe", Start: at.Truncate(time.Minute), Totals: total}},
		Trending: []ProductUnits{{ProductID: "espresso-beans-1kg", Units: 2 * n}},
		Segments: []Segment{
			{Segment: "new", Tier: "bronze", Customers: n, RevenueCents: n * 1250},
			{Segment: "returning", Tier: "gold", Customers: 0, RevenueCents: 0},
		},
		Alerts:    []StockAlert{{ProductID: "espresso-beans-1kg", Stock: 4, Threshold: 10, At: at}},
		Rejected:  n / 3,
		Instances: 2,
	}
}

// webTestLogger logs to the test's log.
func webTestLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(webTestWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type webTestWriter struct{ t *testing.T }

func (w webTestWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// waitFor polls cond until it holds, failing the test after deadline.
func waitFor(t *testing.T, what string, deadline time.Duration, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %s waiting for %s", deadline, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestWebDashboardJSON(t *testing.T) {
	var f webFake
	srv := httptest.NewServer(newWebHandler(f.read, webTestLogger(t)))
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/api/dashboard")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var got Dashboard
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatalf("decoding the answer: %v", err)
	}
	if want := webFakeDashboard(1); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

// TestWebDashboardUsesRequestContext checks that src gets the request's
// context: a client that goes away cancels the read.
func TestWebDashboardUsesRequestContext(t *testing.T) {
	started := make(chan struct{})
	cancelled := make(chan struct{})
	src := func(ctx context.Context) (Dashboard, error) {
		close(started)
		<-ctx.Done()
		close(cancelled)
		return Dashboard{}, ctx.Err()
	}
	srv := httptest.NewServer(newWebHandler(src, webTestLogger(t)))
	defer srv.Close()

	ctx, cancel := context.WithCancel(t.Context())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/api/dashboard", nil)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-started
	cancel()
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("src's context was not cancelled when the client went away")
	}
	if err := <-errc; err == nil {
		t.Error("the cancelled request succeeded")
	}
}

func TestWebDashboardUnavailable(t *testing.T) {
	var f webFake
	f.failing.Store(true)
	srv := httptest.NewServer(newWebHandler(f.read, webTestLogger(t)))
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/api/dashboard")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503", resp.StatusCode)
	}
	if ra := resp.Header.Get("Retry-After"); ra == "" {
		t.Error("no Retry-After on a 503")
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var body struct{ Error string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("decoding the error: %v", err)
	}
	if !strings.Contains(body.Error, "restoring") {
		t.Errorf("error %q does not say why", body.Error)
	}
}

// sseEvent is one server-sent event as a test reads it.
type sseEvent struct {
	typ  string
	data string
}

// readEvents reads server-sent events from r onto a channel until r ends;
// the channel is closed then.
func readEvents(r io.Reader) <-chan sseEvent {
	ch := make(chan sseEvent)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, 64*1024), 4<<20)
		var ev sseEvent
		var data []string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if len(data) > 0 {
					ev.data = strings.Join(data, "\n")
					if ev.typ == "" {
						ev.typ = "message"
					}
					ch <- ev
				}
				ev, data = sseEvent{}, nil
			case strings.HasPrefix(line, ":"):
			case strings.HasPrefix(line, "event:"):
				ev.typ = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
			case strings.HasPrefix(line, "data:"):
				data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
			}
		}
	}()
	return ch
}

// openStream opens /api/events and returns the response, and the function
// that closes the stream (as a browser tab closing would).
func openStream(t *testing.T, url string) (*http.Response, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/api/events", nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		cancel()
		resp.Body.Close()
		t.Fatalf("status %d, want 200", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q, want text/event-stream", ct)
	}
	return resp, func() {
		cancel()
		resp.Body.Close()
	}
}

// openEvents opens /api/events, returning its events and the function that
// closes the stream.
func openEvents(t *testing.T, url string) (<-chan sseEvent, func()) {
	t.Helper()
	resp, closeStream := openStream(t, url)
	events := readEvents(resp.Body)
	var once sync.Once
	return events, func() {
		once.Do(func() {
			closeStream()
			for range events { // let the reader finish
			}
		})
	}
}

// nextEvent returns the next event, failing the test if none comes in time
// or the stream ends.
func nextEvent(t *testing.T, events <-chan sseEvent) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatal("the event stream ended")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	return sseEvent{}
}

// webHandlerUnderTest returns the handler's concrete type, to look at its
// broadcaster.
func webHandlerUnderTest(t *testing.T, h http.Handler) *webHandler {
	t.Helper()
	wh, ok := h.(*webHandler)
	if !ok {
		t.Fatalf("newWebHandler returned a %T", h)
	}
	return wh
}

// activeRequests wraps h, counting the requests it is serving.
func activeRequests(h http.Handler) (http.Handler, *atomic.Int64) {
	var n atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		defer n.Add(-1)
		h.ServeHTTP(w, r)
	}), &n
}

func TestWebEvents(t *testing.T) {
	var f webFake
	h := newWebHandler(f.read, webTestLogger(t), withEventInterval(10*time.Millisecond))
	counted, active := activeRequests(h)
	srv := httptest.NewServer(counted)
	defer srv.Close()

	events, stop := openEvents(t, srv.URL)
	defer stop()
	var prev Dashboard
	for i := range 5 {
		ev := nextEvent(t, events)
		if ev.typ != "dashboard" {
			t.Fatalf("event %d has type %q, want dashboard", i, ev.typ)
		}
		var d Dashboard
		if err := json.Unmarshal([]byte(ev.data), &d); err != nil {
			t.Fatalf("event %d: decoding %q: %v", i, ev.data, err)
		}
		if i > 0 && d.Total.Orders <= prev.Total.Orders {
			t.Errorf("event %d has %d orders after %d: the figures did not change", i, d.Total.Orders, prev.Total.Orders)
		}
		if want := webFakeDashboard(d.Total.Orders); !reflect.DeepEqual(d, want) {
			t.Errorf("event %d: got %+v, want %+v", i, d, want)
		}
		prev = d
	}

	// The client goes away: its handler, its subscription and the poller
	// end, and src is not called any more.
	stop()
	b := webHandlerUnderTest(t, h).events
	waitFor(t, "the stream's handler and the poller to stop after the client left", 10*time.Second, func() bool {
		subs, pollers := b.state()
		return subs == 0 && pollers == 0 && active.Load() == 0
	})
	calls := f.calls.Load()
	// A poller that is gone cannot call src; check that nothing else does.
	if subs, pollers := b.state(); subs != 0 || pollers != 0 {
		t.Fatalf("after stopping: %d subscribers, %d pollers", subs, pollers)
	}
	if got := f.calls.Load(); got != calls {
		t.Errorf("src called %d times after the last client left", got-calls)
	}
}

// TestWebEventsUnavailable checks that a failing src gives "unavailable"
// events and the stream goes on, with figures again once src recovers.
func TestWebEventsUnavailable(t *testing.T) {
	var f webFake
	f.failing.Store(true)
	srv := httptest.NewServer(newWebHandler(f.read, webTestLogger(t), withEventInterval(10*time.Millisecond)))
	defer srv.Close()

	events, stop := openEvents(t, srv.URL)
	defer stop()
	for i := range 3 {
		ev := nextEvent(t, events)
		if ev.typ != "unavailable" {
			t.Fatalf("event %d has type %q while src fails, want unavailable", i, ev.typ)
		}
		var u struct {
			Error string    `json:"error"`
			At    time.Time `json:"at"`
		}
		if err := json.Unmarshal([]byte(ev.data), &u); err != nil {
			t.Fatalf("decoding %q: %v", ev.data, err)
		}
		if !strings.Contains(u.Error, "restoring") || u.At.IsZero() {
			t.Errorf("unavailable event %+v does not say why or when", u)
		}
	}
	f.failing.Store(false)
	for {
		ev := nextEvent(t, events)
		if ev.typ == "dashboard" {
			break
		}
		if ev.typ != "unavailable" {
			t.Fatalf("unexpected event type %q", ev.typ)
		}
	}
}

// TestWebEventsShareOneReader checks that several streams share one
// reader: each reading goes to every stream, and the poller stops only
// when the last stream closes.
func TestWebEventsShareOneReader(t *testing.T) {
	var f webFake
	h := newWebHandler(f.read, webTestLogger(t), withEventInterval(20*time.Millisecond))
	srv := httptest.NewServer(h)
	defer srv.Close()
	b := webHandlerUnderTest(t, h).events

	const clients = 4
	streams := make([]<-chan sseEvent, clients)
	stops := make([]func(), clients)
	for i := range clients {
		streams[i], stops[i] = openEvents(t, srv.URL)
		defer stops[i]()
	}
	waitFor(t, "all clients to subscribe", 10*time.Second, func() bool {
		subs, _ := b.state()
		return subs == clients
	})
	// Every client sees the same readings, and src is called once per
	// reading, not once per client: the orders figure is the call number.
	seen := make([]map[int64]bool, clients)
	for i, events := range streams {
		seen[i] = make(map[int64]bool)
		for range 6 {
			ev := nextEvent(t, events)
			var d Dashboard
			if err := json.Unmarshal([]byte(ev.data), &d); err != nil {
				t.Fatalf("client %d: decoding: %v", i, err)
			}
			seen[i][d.Total.Orders] = true
		}
	}
	common := 0
	for n := range seen[0] {
		all := true
		for i := 1; i < clients; i++ {
			all = all && seen[i][n]
		}
		if all {
			common++
		}
	}
	if common < 2 {
		t.Errorf("the clients share only %d readings: %v", common, seen)
	}
	if _, pollers := b.state(); pollers != 1 {
		t.Errorf("%d pollers for %d clients, want 1", pollers, clients)
	}

	// Closing all but one keeps the poller; closing the last stops it.
	for _, stop := range stops[1:] {
		stop()
	}
	waitFor(t, "three clients to leave", 10*time.Second, func() bool {
		subs, _ := b.state()
		return subs == 1
	})
	if _, pollers := b.state(); pollers != 1 {
		t.Fatalf("%d pollers with one client left, want 1", pollers)
	}
	nextEvent(t, streams[0])
	nextEvent(t, streams[0])
	stops[0]()
	waitFor(t, "the poller to stop", 10*time.Second, func() bool {
		subs, pollers := b.state()
		return subs == 0 && pollers == 0
	})
	callsAtStop := f.calls.Load()

	// A new client starts a new poller, and gets a fresh reading at once,
	// not the last one of the stopped poller.
	events, stop := openEvents(t, srv.URL)
	defer stop()
	ev := nextEvent(t, events)
	var d Dashboard
	if err := json.Unmarshal([]byte(ev.data), &d); err != nil {
		t.Fatal(err)
	}
	if d.Total.Orders <= callsAtStop {
		t.Errorf("the new client got an old reading (%d orders; src had been called %d times before)", d.Total.Orders, callsAtStop)
	}
	stop()
	waitFor(t, "the second poller to stop", 10*time.Second, func() bool {
		subs, pollers := b.state()
		return subs == 0 && pollers == 0
	})
}

// TestWebEventsSlowSrc checks that a src slower than the interval neither
// piles up calls nor blocks the stream from closing, and that a read that
// exceeds the timeout is reported as unavailable.
func TestWebEventsSlowSrc(t *testing.T) {
	var inFlight, maxInFlight atomic.Int64
	src := func(ctx context.Context) (Dashboard, error) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := maxInFlight.Load()
			if n <= m || maxInFlight.CompareAndSwap(m, n) {
				break
			}
		}
		<-ctx.Done() // never answers in time
		return Dashboard{}, fmt.Errorf("slow read: %w", ctx.Err())
	}
	h := newWebHandler(src, webTestLogger(t), withEventInterval(5*time.Millisecond), withReadTimeout(30*time.Millisecond))
	srv := httptest.NewServer(h)
	defer srv.Close()

	events, stop := openEvents(t, srv.URL)
	defer stop()
	for range 2 {
		if ev := nextEvent(t, events); ev.typ != "unavailable" || !strings.Contains(ev.data, "deadline") {
			t.Errorf("got %q event %s, want unavailable with the deadline", ev.typ, ev.data)
		}
	}
	stop()
	b := webHandlerUnderTest(t, h).events
	waitFor(t, "the poller to stop", 10*time.Second, func() bool {
		subs, pollers := b.state()
		return subs == 0 && pollers == 0
	})
	if m := maxInFlight.Load(); m != 1 {
		t.Errorf("%d reads at once, want 1", m)
	}
}

func TestWebEventsHeaders(t *testing.T) {
	var f webFake
	srv := httptest.NewServer(newWebHandler(f.read, webTestLogger(t), withEventInterval(10*time.Millisecond)))
	defer srv.Close()
	resp, closeStream := openStream(t, srv.URL)
	defer closeStream()
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	// The stream starts with the reconnection delay.
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "retry: ") {
		t.Errorf("first line %q (%v), want a retry field", line, err)
	}
}

// TestWebEventsKeepAlive checks that a silent stream gets comments.
func TestWebEventsKeepAlive(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	src := func(ctx context.Context) (Dashboard, error) {
		select {
		case <-block:
		case <-ctx.Done():
		}
		return Dashboard{}, errors.New("blocked")
	}
	srv := httptest.NewServer(newWebHandler(src, webTestLogger(t), withKeepAlive(10*time.Millisecond)))
	defer srv.Close()
	resp, closeStream := openStream(t, srv.URL)
	defer closeStream()
	r := bufio.NewReader(resp.Body)
	for comments := 0; comments < 2; {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the stream: %v", err)
		}
		if strings.HasPrefix(line, ":") {
			comments++
		}
	}
}

func TestWebAssets(t *testing.T) {
	var f webFake
	srv := httptest.NewServer(newWebHandler(f.read, webTestLogger(t)))
	defer srv.Close()

	for _, tc := range []struct {
		path, contentType, contains string
	}{
		{"/", "text/html; charset=utf-8", `id="total-revenue"`},
		{"/app.js", "text/javascript; charset=utf-8", "EventSource"},
		{"/style.css", "text/css; charset=utf-8", ".kpi"},
		{"/favicon.svg", "image/svg+xml", "<svg"},
	} {
		resp, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s: reading: %v", tc.path, err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: status %d, want 200", tc.path, resp.StatusCode)
			continue
		}
		if ct := resp.Header.Get("Content-Type"); ct != tc.contentType {
			t.Errorf("%s: Content-Type %q, want %q", tc.path, ct, tc.contentType)
		}
		if !strings.Contains(string(body), tc.contains) {
			t.Errorf("%s: body lacks %q", tc.path, tc.contains)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no X-Content-Type-Options: nosniff", tc.path)
		}
		etag := resp.Header.Get("ETag")
		if etag == "" {
			t.Errorf("%s: no ETag", tc.path)
			continue
		}
		// Revalidation with the ETag answers 304.
		req, err := http.NewRequest(http.MethodGet, srv.URL+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("If-None-Match", etag)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotModified {
			t.Errorf("%s: revalidation status %d, want 304", tc.path, resp.StatusCode)
		}
	}
}

// TestWebPageSelfContained checks that the page refers to nothing outside
// the server, and that it is served with a policy forbidding it.
func TestWebPageSelfContained(t *testing.T) {
	var f webFake
	srv := httptest.NewServer(newWebHandler(f.read, webTestLogger(t)))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	assets, err := loadWebAssets(webAssets, "web")
	if err != nil {
		t.Fatal(err)
	}
	for name, a := range assets {
		s := string(a.body)
		for _, bad := range []string{"http://", "https://", "//cdn", "@import", "fonts.googleapis"} {
			// The SVG namespace is a name, not a fetch.
			s = strings.ReplaceAll(s, "http://www.w3.org/2000/svg", "")
			if strings.Contains(s, bad) {
				t.Errorf("%s refers to %q: the page must fetch nothing from outside", name, bad)
			}
		}
	}
}

func TestWebNotFound(t *testing.T) {
	var f webFake
	srv := httptest.NewServer(newWebHandler(f.read, webTestLogger(t)))
	defer srv.Close()
	for _, p := range []string{"/nope", "/api/nope", "/web/app.js", "/index.html/x", "/api"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", p, resp.StatusCode)
		}
	}
	resp, err := http.Post(srv.URL+"/api/dashboard", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /api/dashboard: status %d, want 405", resp.StatusCode)
	}
	if f.calls.Load() != 0 {
		t.Errorf("src called %d times by requests that are not for figures", f.calls.Load())
	}
}

func TestWebFormatEvent(t *testing.T) {
	got := string(formatWebEvent("dashboard", []byte("a\nb\r\nc")))
	if want := "event: dashboard\ndata: a\ndata: b\ndata: c\n\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestWebEventsEndOnShutdown shows how a server ends its event streams when
// shutting down: request contexts derived from a base context that
// RegisterOnShutdown cancels. Without it, Shutdown waits for open pages
// until its deadline.
func TestWebEventsEndOnShutdown(t *testing.T) {
	var f webFake
	h := newWebHandler(f.read, webTestLogger(t), withEventInterval(10*time.Millisecond))
	base, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	srv := &http.Server{Handler: h, BaseContext: func(net.Listener) context.Context { return base }}
	srv.RegisterOnShutdown(cancelBase)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	events, stop := openEvents(t, "http://"+ln.Addr().String())
	defer stop()
	nextEvent(t, events)

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown with an open event stream: %v", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
	// The stream ended.
	for range events {
	}
	b := webHandlerUnderTest(t, h).events
	waitFor(t, "the poller to stop", 10*time.Second, func() bool {
		subs, pollers := b.state()
		return subs == 0 && pollers == 0
	})
}

// levelRecorder is a slog handler that keeps the levels of the records
// logged through it.
type levelRecorder struct {
	mu     sync.Mutex
	levels []slog.Level
}

func (h *levelRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *levelRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.levels = append(h.levels, r.Level)
	return nil
}
func (h *levelRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *levelRecorder) WithGroup(string) slog.Handler      { return h }

// TestWebDashboardLogLevel checks that a read failing because a store is
// restoring or moving (the query API's 503) is logged at debug level, as
// it happens every time instances come and go, and any other failure as a
// warning.
func TestWebDashboardLogLevel(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want slog.Level
	}{
		{"restoring", fmt.Errorf("read the regions' totals: %w", &riffle.QueryError{Status: http.StatusServiceUnavailable, Msg: "store is restoring"}), slog.LevelDebug},
		{"bad request", fmt.Errorf("read the regions' totals: %w", &riffle.QueryError{Status: http.StatusBadRequest, Msg: "bad key"}), slog.LevelWarn},
		{"other", errors.New("decoding failed"), slog.LevelWarn},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rec levelRecorder
			src := func(context.Context) (Dashboard, error) { return Dashboard{}, tc.err }
			srv := httptest.NewServer(newWebHandler(src, slog.New(&rec)))
			defer srv.Close()
			resp, err := http.Get(srv.URL + "/api/dashboard")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("status %d, want 503", resp.StatusCode)
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if !slices.Equal(rec.levels, []slog.Level{tc.want}) {
				t.Errorf("logged at %v, want once at %v", rec.levels, tc.want)
			}
		})
	}
}
