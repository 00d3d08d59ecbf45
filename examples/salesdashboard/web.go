package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
)

// webAssets holds the page: index.html, its script, its style sheet and its
// icon. Everything the page needs is in the binary; it fetches nothing from
// the internet (the Content-Security-Policy it is served with forbids it).
//
//go:embed web
var webAssets embed.FS

// Defaults of the web handler.
const (
	// defaultEventInterval is how often /api/events sends the figures.
	defaultEventInterval = time.Second
	// defaultReadTimeout bounds one read of the figures for the event
	// stream; a read that takes longer is reported as unavailable.
	defaultReadTimeout = 10 * time.Second
	// defaultKeepAlive is how often an event stream with nothing to send
	// gets a comment, so proxies and browsers keep the connection open.
	defaultKeepAlive = 15 * time.Second
	// eventWriteTimeout bounds writing one event to a client; a client
	// that does not take it in that time is dropped.
	eventWriteTimeout = 30 * time.Second
	// retryAfterSeconds is the Retry-After of a 503, and (in
	// milliseconds) the reconnection delay the event stream asks for.
	retryAfterSeconds = 2
)

// contentSecurityPolicy lets the page load only its own script, style and
// icon and talk only to its own server.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// webConfig is the configuration of a web handler; webOptions change it.
type webConfig struct {
	interval  time.Duration
	timeout   time.Duration
	keepAlive time.Duration
}

// webOption changes the configuration of newWebHandler. The options are for
// tests, which need faster events than a person does.
type webOption func(*webConfig)

// withEventInterval sets how often /api/events sends the figures (one
// second by default). Non-positive values are ignored.
func withEventInterval(d time.Duration) webOption {
	return func(c *webConfig) {
		if d > 0 {
			c.interval = d
		}
	}
}

// withReadTimeout bounds each read of the figures made for the event
// streams (ten seconds by default). Non-positive values are ignored.
func withReadTimeout(d time.Duration) webOption {
	return func(c *webConfig) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// withKeepAlive sets how often a silent event stream gets a keep-alive
// comment (fifteen seconds by default). Non-positive values are ignored.
func withKeepAlive(d time.Duration) webOption {
	return func(c *webConfig) {
		if d > 0 {
			c.keepAlive = d
		}
	}
}

// webHandler serves the dashboard's page, its JSON and its event stream.
type webHandler struct {
	src    func(context.Context) (Dashboard, error)
	log    *slog.Logger
	cfg    webConfig
	assets map[string]webAsset
	events *webBroadcaster
	mux    *http.ServeMux
}

// webAsset is one embedded file, ready to serve.
type webAsset struct {
	name        string
	contentType string
	etag        string
	body        []byte
}

// newWebHandler returns the handler of the dashboard's web page:
//
//	GET /                the page (and its script, style sheet and icon)
//	GET /api/dashboard   the current Dashboard as JSON; 503 with Retry-After when src fails
//	GET /api/events      server-sent events: "dashboard" events carrying the Dashboard
//	                     about once a second, "unavailable" events while src fails
//
// src reads the figures; /api/dashboard calls it once per request, with the
// request's context. The event streams of all clients share one reader, so
// any number of open pages cost one call of src per interval, and none when
// no page is open. A nil log discards the handler's logs. The options are
// for tests (faster events); the app passes none.
//
// An event stream ends when its client goes away or its request's context
// ends. http.Server.Shutdown does not end active requests, so a server
// serving this handler should cancel its requests' contexts when shutting
// down (BaseContext plus RegisterOnShutdown), or open pages will hold the
// shutdown until its deadline.
func newWebHandler(src func(context.Context) (Dashboard, error), log *slog.Logger, opts ...webOption) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if src == nil {
		src = func(context.Context) (Dashboard, error) {
			return Dashboard{}, errors.New("no source of figures configured")
		}
	}
	cfg := webConfig{interval: defaultEventInterval, timeout: defaultReadTimeout, keepAlive: defaultKeepAlive}
	for _, o := range opts {
		o(&cfg)
	}
	h := &webHandler{
		src:    src,
		log:    log,
		cfg:    cfg,
		events: newWebBroadcaster(src, log, cfg.interval, cfg.timeout),
		mux:    http.NewServeMux(),
	}
	assets, err := loadWebAssets(webAssets, "web")
	if err != nil {
		// The assets are embedded at build time; this cannot happen in a
		// binary that built. Serve the API anyway and say why the page
		// is missing.
		log.Error("web page unavailable", "err", err)
	}
	h.assets = assets
	h.mux.HandleFunc("GET /api/dashboard", h.serveDashboard)
	h.mux.HandleFunc("GET /api/events", h.serveEvents)
	h.mux.HandleFunc("GET /", h.serveAsset)
	return h
}

// ServeHTTP serves a request.
func (h *webHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	h.mux.ServeHTTP(w, r)
}

// loadWebAssets reads every file under dir of fsys, keyed by its URL path
// ("/" for index.html).
func loadWebAssets(fsys fs.FS, dir string) (map[string]webAsset, error) {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("opening embedded %s: %w", dir, err)
	}
	assets := make(map[string]webAsset)
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("walking embedded %s: %w", dir, err)
		}
		if d.IsDir() {
			return nil
		}
		body, err := fs.ReadFile(sub, p)
		if err != nil {
			return fmt.Errorf("reading embedded %s/%s: %w", dir, p, err)
		}
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = http.DetectContentType(body)
		}
		sum := sha256.Sum256(body)
		a := webAsset{name: p, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, body: body}
		urlPath := "/" + p
		if p == "index.html" {
			urlPath = "/"
		}
		assets[urlPath] = a
		return nil
	})
	if err != nil {
		return nil, err
	}
	if _, ok := assets["/"]; !ok {
		return assets, fmt.Errorf("embedded %s has no index.html", dir)
	}
	return assets, nil
}

// serveAsset serves an embedded file, or 404.
func (h *webHandler) serveAsset(w http.ResponseWriter, r *http.Request) {
	a, ok := h.assets[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", a.contentType)
	hdr.Set("ETag", a.etag)
	// Revalidate every time: a new binary may serve a new page under the
	// same names. The ETag makes revalidation cheap.
	hdr.Set("Cache-Control", "no-cache")
	if a.name == "index.html" {
		hdr.Set("Content-Security-Policy", contentSecurityPolicy)
		hdr.Set("Referrer-Policy", "no-referrer")
	}
	http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(a.body))
}

// webErrorBody is the JSON of an error answer.
type webErrorBody struct {
	Error string `json:"error"`
}

// serveDashboard answers the current figures as JSON.
func (h *webHandler) serveDashboard(w http.ResponseWriter, r *http.Request) {
	d, err := h.src(r.Context())
	if err != nil {
		if r.Context().Err() != nil {
			return // the client went away; nobody to answer
		}
		// A store restoring, or a task moving between instances, is
		// normal while instances come and go: the page retries.
		level := slog.LevelWarn
		if passing(err) {
			level = slog.LevelDebug
		}
		h.log.Log(r.Context(), level, "reading the dashboard failed", "err", err)
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
		webWriteJSON(w, http.StatusServiceUnavailable, webErrorBody{Error: "figures unavailable: " + err.Error()}, h.log)
		return
	}
	webWriteJSON(w, http.StatusOK, d, h.log)
}

// webWriteJSON writes v as the JSON body of an answer with the given status.
func webWriteJSON(w http.ResponseWriter, status int, v any, log *slog.Logger) {
	body, err := json.Marshal(v)
	if err != nil {
		log.Error("encoding an answer as JSON failed", "err", err)
		status = http.StatusInternalServerError
		body = []byte(`{"error":"encoding the answer failed"}`)
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if _, err := w.Write(append(body, '\n')); err != nil {
		log.Debug("writing an answer failed", "err", err)
	}
}

// serveEvents streams the figures as server-sent events until the client
// goes away.
func (h *webHandler) serveEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Accel-Buffering", "no") // no buffering in nginx, should one sit in front
	w.WriteHeader(http.StatusOK)
	// Ask the browser to reconnect after a short pause if the stream
	// breaks (an instance stopping, say).
	if err := h.writeEvent(rc, w, fmt.Appendf(nil, "retry: %d\n\n", retryAfterSeconds*1000)); err != nil {
		h.log.Debug("starting an event stream failed", "remote", r.RemoteAddr, "err", err)
		return
	}

	sub, leave := h.events.subscribe()
	defer leave()
	keepAlive := time.NewTicker(h.cfg.keepAlive)
	defer keepAlive.Stop()
	for {
		var ev []byte
		select {
		case <-r.Context().Done():
			return
		case ev = <-sub:
		case <-keepAlive.C:
			ev = []byte(": keep-alive\n\n")
		}
		if err := h.writeEvent(rc, w, ev); err != nil {
			h.log.Debug("event stream closed", "remote", r.RemoteAddr, "err", err)
			return
		}
	}
}

// writeEvent writes one event (already in the wire format) and flushes it
// to the client, within eventWriteTimeout.
func (h *webHandler) writeEvent(rc *http.ResponseController, w http.ResponseWriter, ev []byte) error {
	// Extend the connection's write deadline for this event, so a server
	// WriteTimeout does not cut a long-lived stream, yet a stuck client
	// is dropped.
	if err := rc.SetWriteDeadline(time.Now().Add(eventWriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return fmt.Errorf("setting the write deadline: %w", err)
	}
	if _, err := w.Write(ev); err != nil {
		return fmt.Errorf("writing an event: %w", err)
	}
	if err := rc.Flush(); err != nil {
		return fmt.Errorf("flushing an event: %w", err)
	}
	return nil
}

// webBroadcaster reads the figures once per interval while at least one
// event stream is open and hands each reading, already encoded as an event,
// to every open stream. A stream that has not taken the previous event yet
// gets the newer one instead: slow clients skip figures, they never slow
// the others down.
type webBroadcaster struct {
	src      func(context.Context) (Dashboard, error)
	log      *slog.Logger
	interval time.Duration
	timeout  time.Duration

	mu   sync.Mutex
	subs map[chan []byte]struct{}
	// stop stops the running poller; nil when none runs.
	stop context.CancelFunc
	// last is the latest event of the running poller, sent at once to a
	// new stream; nil before the first reading and when no poller runs.
	last []byte
	// pollers counts the poller goroutines still running (at most one,
	// and briefly two while a stopped one finishes its read).
	pollers int
}

// newWebBroadcaster returns a webBroadcaster reading src every interval, each
// read bounded by timeout.
func newWebBroadcaster(src func(context.Context) (Dashboard, error), log *slog.Logger, interval, timeout time.Duration) *webBroadcaster {
	return &webBroadcaster{src: src, log: log, interval: interval, timeout: timeout, subs: make(map[chan []byte]struct{})}
}

// subscribe registers a new stream and returns the channel its events
// arrive on, and the function that unregisters it. The first stream starts
// the poller; the last one to leave stops it.
func (b *webBroadcaster) subscribe() (<-chan []byte, func()) {
	ch := make(chan []byte, 1)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.subs[ch] = struct{}{}
	if b.last != nil {
		ch <- b.last
	}
	if b.stop == nil {
		ctx, stop := context.WithCancel(context.Background())
		b.stop = stop
		b.pollers++
		go b.poll(ctx)
	}
	var once sync.Once
	return ch, func() { once.Do(func() { b.unsubscribe(ch) }) }
}

// unsubscribe unregisters a stream, stopping the poller if it was the last.
func (b *webBroadcaster) unsubscribe(ch chan []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.subs, ch)
	if len(b.subs) == 0 && b.stop != nil {
		b.stop()
		b.stop = nil
		b.last = nil
	}
}

// state reports how many streams are subscribed and how many pollers are
// running; tests use it to see that nothing outlives its clients.
func (b *webBroadcaster) state() (subscribers, pollers int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs), b.pollers
}

// poll reads the figures now and then every interval, publishing each
// reading, until ctx is cancelled.
func (b *webBroadcaster) poll(ctx context.Context) {
	defer func() {
		b.mu.Lock()
		b.pollers--
		b.mu.Unlock()
	}()
	t := time.NewTicker(b.interval)
	defer t.Stop()
	failing := false
	for {
		ev, err := b.read(ctx)
		if ctx.Err() != nil {
			return
		}
		switch {
		case err != nil && !failing:
			b.log.Warn("dashboard unavailable", "err", err)
			failing = true
		case err == nil && failing:
			b.log.Info("dashboard available again")
			failing = false
		}
		b.publish(ctx, ev)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// webUnavailable is the data of an "unavailable" event.
type webUnavailable struct {
	Error string    `json:"error"`
	At    time.Time `json:"at"`
}

// read reads the figures once and encodes them as a "dashboard" event, or,
// if that fails, encodes an "unavailable" event and returns the error too.
func (b *webBroadcaster) read(ctx context.Context) ([]byte, error) {
	rctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	d, err := b.src(rctx)
	if err != nil {
		// The page shows src's own words; the log gets the context.
		return encodeWebEvent("unavailable", webUnavailable{Error: err.Error(), At: time.Now()}), fmt.Errorf("reading the dashboard: %w", err)
	}
	data, err := json.Marshal(d)
	if err != nil {
		err = fmt.Errorf("encoding the dashboard: %w", err)
		return encodeWebEvent("unavailable", webUnavailable{Error: err.Error(), At: time.Now()}), err
	}
	return formatWebEvent("dashboard", data), nil
}

// encodeWebEvent returns a server-sent event of the given type whose data is
// v as JSON.
func encodeWebEvent(typ string, v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		data = []byte(`{"error":"encoding the event failed"}`)
	}
	return formatWebEvent(typ, data)
}

// formatWebEvent returns a server-sent event of the given type carrying data.
// JSON from encoding/json has no newlines, but any line break is still
// split into data lines as the protocol requires.
func formatWebEvent(typ string, data []byte) []byte {
	var buf bytes.Buffer
	buf.Grow(len(data) + len(typ) + 16)
	buf.WriteString("event: ")
	buf.WriteString(typ)
	buf.WriteByte('\n')
	for _, line := range strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n") {
		buf.WriteString("data: ")
		buf.WriteString(line)
		buf.WriteByte('\n')
	}
	buf.WriteByte('\n')
	return buf.Bytes()
}

// publish hands ev to every stream, replacing an event a stream has not
// taken yet. It drops ev if ctx (the poller's) was cancelled meanwhile, so
// a stopped poller never reaches the streams of its successor.
func (b *webBroadcaster) publish(ctx context.Context, ev []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	b.last = ev
	for ch := range b.subs {
		select {
		case ch <- ev:
			continue
		default:
		}
		// Full: replace the stale event. Only publish and subscribe send,
		// both under b.mu, so after the drain the send cannot block.
		select {
		case <-ch:
		default:
		}
		ch <- ev
	}
}
