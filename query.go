package riffle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"time"

	"github.com/riffle-streams/riffle/internal/query"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/topology"
)

// ServeQueries makes the App answer interactive queries over HTTP on addr
// (host:port; port 0 picks one), and tell the group that it does, so that
// every instance can forward a query to the one that holds the key. It is
// off by default. See [App.QueryHandler] for the API, and
// [AdvertisedAddress] when other instances must reach this one at another
// address than addr.
func ServeQueries(addr string) Option { return func(c *config) { c.queryAddr = addr } }

// AdvertisedAddress sets the host:port other instances reach this one's
// queries at (application.server), when it differs from the address
// ServeQueries listens on (a wildcard address, a container's port
// mapping).
func AdvertisedAddress(hostport string) Option {
	return func(c *config) { c.advertisedAddr = hostport }
}

// QueryAddress returns the host:port this App's queries are served at, as
// the group knows it; "" if it serves none. It is set once Run has
// started listening.
func (a *App) QueryAddress() string {
	a.qmu.RLock()
	defer a.qmu.RUnlock()
	return a.advertised
}

// QueryHandler returns the HTTP handler of the App's queries, to serve
// from a server of one's own (the App then needs AdvertisedAddress so the
// group knows where). It serves, under /riffle/v1:
//
//	GET /stores                                 the queryable stores
//	GET /stores/{store}/get?key=K               one key's value
//	GET /stores/{store}/range?from=K&to=K&limit=N&after=C
//	                                            entries with keys in [from, to), a page at a time
//	GET /stores/{store}/all?limit=N&after=C     every entry, a page at a time
//	GET /stores/{store}/windows?key=K&from=T&to=T
//	                                            a key's windows (or sessions) in a time range
//	GET /stores/{store}/windows?from=T&to=T&limit=N&after=C
//	                                            every key's windows (or sessions) in a time
//	                                            range, a page at a time (see AllWindows)
//	GET /stores/{store}/owners?key=K            which instances run and keep the key's task
//	GET /metadata                               every instance's tasks, their state and lag
//
// Keys are JSON (a string key may be given bare); values are the stores'
// values decoded by their serdes and written as JSON; times are RFC 3339
// or milliseconds since the epoch. Ranges and pages of entries follow the
// order of the keys' serialized bytes; pages of every key's windows that
// of the windows' start (sessions' end), then of the keys' bytes. A page's
// "next" is the cursor ("after") of the next one. A query that reaches an
// instance not holding the key is forwarded to the one that does. While the key's store is restoring, or
// its task is moving, the answer is 503 with Retry-After, unless the query
// allows stale reads (stale=true; see AllowStale). A malformed query
// gets 400 and an unknown store 404, each with {"error": reason}.
func (a *App) QueryHandler() http.Handler { return a.engine().Handler() }

func (a *App) engine() *query.Engine {
	return &query.Engine{B: (*queryBackend)(a), Client: a.httpClient}
}

// QueryError is the error of a query that failed; Status is the HTTP
// status the query API answers with.
type QueryError struct {
	Status int
	Msg    string
	// RetryAfter is set when the query may succeed later.
	RetryAfter time.Duration
}

func (e *QueryError) Error() string { return fmt.Sprintf("riffle: query: %s (%d)", e.Msg, e.Status) }

func queryErr(err error) error {
	var qe *query.Error
	if errors.As(err, &qe) {
		return &QueryError{Status: qe.Status, Msg: qe.Msg, RetryAfter: qe.RetryAfter}
	}
	return err
}

// QueryOption modifies a query made with Get, Range, Windows or
// AllWindows.
type QueryOption func(*query.Options)

// AllowStale lets a query be answered by a copy that is not running: by
// the store of the key's task while it restores, on the instance it is
// assigned to, or by a standby copy while the task is assigned to none
// (it is moving, or its instance died). The answer may be behind.
func AllowStale() QueryOption { return func(o *query.Options) { o.Stale = true } }

func queryOpts(opts []QueryOption) query.Options {
	var o query.Options
	for _, f := range opts {
		f(&o)
	}
	return o
}

// keyText writes a key as the query API takes it: JSON.
func keyText(key any) (string, error) {
	b, err := json.Marshal(key)
	if err != nil {
		return "", fmt.Errorf("riffle: query: key %v: %w", key, err)
	}
	return string(b), nil
}

// Get looks key up in app's key-value store named store, wherever the
// key's task runs: on this instance, or by asking the instance that runs
// it. ok is false if the key is absent. V must be the type the store's
// values decode to (values come back from other instances as JSON).
func Get[K, V any](ctx context.Context, app *App, store string, key K, opts ...QueryOption) (v V, ok bool, err error) {
	k, err := keyText(key)
	if err != nil {
		return v, false, err
	}
	res, err := app.engine().Get(ctx, store, k, queryOpts(opts))
	if err != nil {
		return v, false, queryErr(err)
	}
	if !res.Found {
		return v, false, nil
	}
	if err := json.Unmarshal(res.Value, &v); err != nil {
		return v, false, fmt.Errorf("riffle: query %q: value of key %s as %T: %w", store, k, v, err)
	}
	return v, true, nil
}

// KeyValue is an entry of a store.
type KeyValue[K, V any] struct {
	Key   K
	Value V
}

// Range returns up to limit entries (1,000 at most) of app's key-value
// store named store whose keys are in [from, to), in the order of their
// serialized bytes, gathered from every instance. A nil bound is open.
// after is "" for the first page, then the next return value of the page
// before; next is "" after the last page.
func Range[K, V any](ctx context.Context, app *App, store string, from, to *K, after string, limit int, opts ...QueryOption) (entries []KeyValue[K, V], next string, err error) {
	var lo, hi string
	if from != nil {
		if lo, err = keyText(*from); err != nil {
			return nil, "", err
		}
	}
	if to != nil {
		if hi, err = keyText(*to); err != nil {
			return nil, "", err
		}
	}
	res, err := app.engine().Range(ctx, store, lo, hi, after, limit, queryOpts(opts))
	if err != nil {
		return nil, "", queryErr(err)
	}
	for _, e := range res.Entries {
		var kv KeyValue[K, V]
		if err := json.Unmarshal(e.Key, &kv.Key); err != nil {
			return nil, "", fmt.Errorf("riffle: query %q: key %s as %T: %w", store, e.Key, kv.Key, err)
		}
		if err := json.Unmarshal(e.Value, &kv.Value); err != nil {
			return nil, "", fmt.Errorf("riffle: query %q: value of key %s as %T: %w", store, e.Key, kv.Value, err)
		}
		entries = append(entries, kv)
	}
	return entries, res.Next, nil
}

// Window is a window of a key, or a session, and its value.
type Window[V any] struct {
	Start time.Time
	// End is the window's end; zero for a window store whose windows have
	// no one length.
	End   time.Time
	Value V
}

// Windows returns key's windows in app's window store named store that
// start in [from, to], or, of a session store, key's sessions that end at
// or after from and start at or before to, wherever the key's task runs.
func Windows[K, V any](ctx context.Context, app *App, store string, key K, from, to time.Time, opts ...QueryOption) ([]Window[V], error) {
	k, err := keyText(key)
	if err != nil {
		return nil, err
	}
	res, err := app.engine().Windows(ctx, store, k, from, to, queryOpts(opts))
	if err != nil {
		return nil, queryErr(err)
	}
	out := make([]Window[V], 0, len(res.Windows))
	for _, w := range res.Windows {
		win := Window[V]{Start: w.Start, End: w.End}
		if err := json.Unmarshal(w.Value, &win.Value); err != nil {
			return nil, fmt.Errorf("riffle: query %q: window of key %s as %T: %w", store, k, win.Value, err)
		}
		out = append(out, win)
	}
	return out, nil
}

// KeyWindow is a window of a key, or a session, and its value, in a page
// of every key's windows.
type KeyWindow[K, V any] struct {
	Key K
	Window[V]
}

// AllWindows returns up to limit windows (1,000 at most, and if limit is
// 0; a negative limit is an error) of every key in app's window store
// named store whose start is in [from, to], or, of a session store, the
// sessions that end at or after from and start at or before to, gathered
// from every instance: Kafka Streams' fetchAll across instances. Windows
// come in order of start, then of the keys' serialized bytes; sessions in
// order of end, then of the keys' serialized bytes. after is "" for the
// first page, then the next return value of the page before; next is ""
// after the last page. V must be the type the store's values decode to.
//
// Pages are read at different moments: a window that changes between two
// pages shows its value at the moment its page was read, and one that
// appears behind the cursor meanwhile is not seen.
func AllWindows[K, V any](ctx context.Context, app *App, store string, from, to time.Time, after string, limit int, opts ...QueryOption) (windows []KeyWindow[K, V], next string, err error) {
	res, err := app.engine().AllWindows(ctx, store, from, to, after, limit, queryOpts(opts))
	if err != nil {
		return nil, "", queryErr(err)
	}
	windows = make([]KeyWindow[K, V], 0, len(res.Windows))
	for _, w := range res.Windows {
		kw := KeyWindow[K, V]{Window: Window[V]{Start: w.Start, End: w.End}}
		if err := json.Unmarshal(w.Key, &kw.Key); err != nil {
			return nil, "", fmt.Errorf("riffle: query %q: key %s as %T: %w", store, w.Key, kw.Key, err)
		}
		if err := json.Unmarshal(w.Value, &kw.Value); err != nil {
			return nil, "", fmt.Errorf("riffle: query %q: window of key %s as %T: %w", store, w.Key, kw.Value, err)
		}
		windows = append(windows, kw)
	}
	return windows, res.Next, nil
}

// KeyOwners says which instances hold key of store: the host:port of the
// one that runs its task ("" while the task moves) and those that keep
// standby copies.
func (a *App) KeyOwners(store string, key any) (active string, standbys []string, err error) {
	k, err := keyText(key)
	if err != nil {
		return "", nil, err
	}
	res, err := a.engine().Owners(store, k)
	if err != nil {
		return "", nil, queryErr(err)
	}
	return res.Active, res.Standbys, nil
}

// TaskMetadata is the state of a task on an instance.
type TaskMetadata = query.TaskInfo

// InstanceMetadata is what an instance runs and keeps.
type InstanceMetadata = query.Instance

// Metadata describes every instance of the group that serves queries:
// which tasks it runs and keeps copies of, their state (RUNNING,
// RESTORING, STANDBY, WARMUP) and how far behind their changelogs the
// copies are.
func (a *App) Metadata(ctx context.Context) ([]InstanceMetadata, error) {
	res, err := a.engine().Metadata(ctx, query.Options{})
	return res, queryErr(err)
}

// startQueries listens for queries, if asked to.
func (a *App) startQueries() error {
	if a.cfg.queryAddr == "" {
		a.qmu.Lock()
		a.advertised = a.cfg.advertisedAddr
		a.qmu.Unlock()
		return nil
	}
	ln, err := net.Listen("tcp", a.cfg.queryAddr)
	if err != nil {
		return fmt.Errorf("riffle: serve queries on %s: %w", a.cfg.queryAddr, err)
	}
	adv := a.cfg.advertisedAddr
	if adv == "" {
		adv = ln.Addr().String()
	}
	a.qmu.Lock()
	a.advertised = adv
	a.qmu.Unlock()
	mux := http.NewServeMux()
	mux.Handle(query.Prefix+"/", a.QueryHandler())
	a.server = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := a.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("query server stopped", "addr", adv, "err", err)
		}
	}()
	a.log.Info("serving queries", "addr", ln.Addr().String(), "advertised", adv)
	return nil
}

func (a *App) stopQueries() error {
	if a.server == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return a.server.Shutdown(ctx)
}

// localCopy is a task's stores on this instance, for queries.
type localCopy struct {
	state  query.TaskState
	stores map[string]state.Store
	rep    *replica // for the lag of a copy that is not running
}

// publishLocal makes what this instance holds visible to queries. Called
// under mu whenever tasks start or stop, or copies open or close.
func (a *App) publishLocal() {
	idx := map[topology.TaskID]*localCopy{}
	for id, tk := range a.tasks {
		lc := &localCopy{state: query.Running, stores: map[string]state.Store{}}
		for _, spec := range tk.t.SubTopology().Stores {
			if s := tk.t.Store(spec.Name); s != nil {
				lc.stores[spec.Name] = s
			}
		}
		idx[id] = lc
	}
	if a.upd != nil {
		a.upd.mu.Lock()
		for id, r := range a.upd.replicas {
			lc := &localCopy{state: query.Standby, stores: map[string]state.Store{}, rep: r}
			switch {
			case r.restoring:
				lc.state = query.Restoring
			case r.warmup:
				lc.state = query.Warmup
			}
			for _, s := range r.stores {
				st := s.store
				if ws, ok := st.(state.WindowStore); ok && a.storeKind(s.name) == state.KindSession {
					st = state.SessionOf(ws)
				}
				lc.stores[s.name] = st
			}
			idx[id] = lc
		}
		a.upd.mu.Unlock()
	}
	a.local.Store(&idx)
}

func (a *App) storeKind(name string) state.Kind {
	spec, _ := a.topo.Store(name)
	return spec.Kind
}

// queryBackend is the App as the query engine sees it.
type queryBackend App

func (b *queryBackend) app() *App { return (*App)(b) }

func (b *queryBackend) Self() string { return b.app().QueryAddress() }

func (b *queryBackend) Store(name string) (query.StoreInfo, bool) {
	p := b.app().stores.Load()
	if p == nil {
		return query.StoreInfo{}, false // not started
	}
	info, ok := (*p)[name]
	return info, ok
}

// publishStores makes the queryable stores known to queries, once the
// topics' partition counts are. Global stores are not queryable yet.
func (a *App) publishStores() {
	out := map[string]query.StoreInfo{}
	for _, st := range a.topo.SubTopologies() {
		if len(st.SourceTopics) == 0 {
			continue
		}
		n := a.partitions[st.SourceTopics[0].Resolve(a.cfg.appID)]
		for _, spec := range st.Stores {
			if codec, ok := a.topo.StoreCodec(spec.Name); ok && n > 0 {
				out[spec.Name] = query.StoreInfo{Name: spec.Name, Kind: spec.Kind, Codec: codec, Subtopology: st.ID, Partitions: n}
			}
		}
	}
	a.stores.Store(&out)
}

func (b *queryBackend) Stores() []query.StoreInfo {
	var out []query.StoreInfo
	for _, name := range b.app().topo.QueryableStores() {
		if info, ok := b.Store(name); ok {
			out = append(out, info)
		}
	}
	return out
}

func (b *queryBackend) Owners(task topology.TaskID) (active string, standbys []string) {
	assn := b.app().assignment.Load()
	if assn == nil {
		return "", nil
	}
	hosts := make([]string, 0, len(assn.Hosts))
	for h := range assn.Hosts {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	for _, h := range hosts {
		ht := assn.Hosts[h]
		for _, t := range ht.Active {
			if t.Subtopology == task.Subtopology && t.Partition == task.Partition {
				active = h
			}
		}
		for _, t := range ht.Standby {
			if t.Subtopology == task.Subtopology && t.Partition == task.Partition {
				standbys = append(standbys, h)
			}
		}
	}
	return active, standbys
}

func (b *queryBackend) Hosts() []string {
	assn := b.app().assignment.Load()
	if assn == nil {
		return nil
	}
	var out []string
	for h := range assn.Hosts {
		out = append(out, h)
	}
	sort.Strings(out)
	return out
}

func (b *queryBackend) Local(store string, task topology.TaskID) (state.Store, query.TaskState, bool) {
	p := b.app().local.Load()
	if p == nil {
		return nil, "", false
	}
	lc := (*p)[task]
	if lc == nil {
		return nil, "", false
	}
	s, ok := lc.stores[store]
	if !ok || s == nil {
		return nil, "", false
	}
	return s, lc.state, true
}

func (b *queryBackend) Tasks() []query.TaskInfo {
	a := b.app()
	p := a.local.Load()
	if p == nil {
		return nil
	}
	var out []query.TaskInfo
	for id, lc := range *p {
		ti := query.TaskInfo{Task: id.String(), State: lc.state}
		for name := range lc.stores {
			ti.Stores = append(ti.Stores, name)
		}
		sort.Strings(ti.Stores)
		if lc.rep != nil {
			a.upd.mu.Lock()
			ti.Lag = lc.rep.lag()
			a.upd.mu.Unlock()
		}
		out = append(out, ti)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Task < out[j].Task })
	return out
}
