package query_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riffle-streams/riffle/internal/query"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/topology"
)

// The test cluster: three instances, each an Engine over a fake Backend,
// served by an httptest server. The stores:
//
//	counts  key-value  string -> int64   sub-topology 0, 6 partitions
//	ids     key-value  int64 -> string   sub-topology 1, 4 partitions
//	win     window     string -> int64   sub-topology 2, 3 partitions, 1-minute windows
//	win0    window     string -> int64   sub-topology 3, 2 partitions, no window size
//	sess    session    string -> string  sub-topology 4, 3 partitions
//
// Task s_p runs on host (s+p)%3 and has a standby copy on host (s+p+1)%3.

const (
	nHosts = 3
	appID  = "app"
)

type storeDef struct {
	name string
	kind state.Kind
	sub  int
	n    int32
}

var storeDefs = []storeDef{
	{"counts", state.KindKeyValue, 0, 6},
	{"ids", state.KindKeyValue, 1, 4},
	{"win", state.KindWindow, 2, 3},
	{"win0", state.KindWindow, 3, 2},
	{"sess", state.KindSession, 4, 3},
}

// pass is a processor that forwards every record: the topology only
// declares the stores, so that Queryable builds their codecs.
type pass struct {
	ctx topology.Context[string, string]
}

func (p *pass) Init(ctx topology.Context[string, string]) error { p.ctx = ctx; return nil }
func (p *pass) Process(r topology.Record[string, string]) error { return p.ctx.Forward(r) }
func (p *pass) Close() error                                    { return nil }

// codecs builds the stores' codecs the way the DSL does.
func codecs(t *testing.T) map[string]topology.StoreCodec {
	t.Helper()
	b := topology.NewBuilder()
	topology.AddSource(b, "in", serde.String(), serde.String(), "in")
	topology.AddProcessor(b, "p", func() topology.Processor[string, string, string, string] { return &pass{} }, "in")
	b.AddStore(state.KeyValue("counts", state.InMemory()), "p")
	b.AddStore(state.KeyValue("ids", state.InMemory()), "p")
	b.AddStore(state.Window("win", 24*time.Hour, state.InMemory()), "p")
	b.AddStore(state.Window("win0", 24*time.Hour, state.InMemory()), "p")
	b.AddStore(state.Session("sess", 24*time.Hour, state.InMemory()), "p")
	topology.Queryable(b, "counts", serde.String(), serde.Int64())
	topology.Queryable(b, "ids", serde.Int64(), serde.String())
	topology.Queryable(b, "win", serde.String(), serde.Int64(), topology.QueryWindowSize(time.Minute))
	topology.Queryable(b, "win0", serde.String(), serde.Int64())
	topology.Queryable(b, "sess", serde.String(), serde.String())
	topo, err := b.Build()
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	out := map[string]topology.StoreCodec{}
	for _, d := range storeDefs {
		c, ok := topo.StoreCodec(d.name)
		if !ok {
			t.Fatalf("store %q is not queryable", d.name)
		}
		out[d.name] = c
	}
	return out
}

type copyKey struct {
	store string
	task  topology.TaskID
}

// localCopy is one instance's copy of one task's store.
type localCopy struct {
	store state.Store // what Local returns
	kv    state.KeyValueStore
	ws    state.WindowStore
	ss    state.SessionStore
	st    query.TaskState
	lag   int64
}

type owners struct {
	active   string
	standbys []string
}

type cluster struct {
	t     *testing.T
	infos []query.StoreInfo
	env   *state.Env

	mu       sync.Mutex
	hosts    []string // the hosts Hosts returns
	owners   map[topology.TaskID]owners
	nodes    []*node
	deadHost string
}

// node is one instance: an Engine, its fake Backend and its server.
type node struct {
	c    *cluster
	self string
	eng  *query.Engine
	srv  *httptest.Server
	hits atomic.Int64 // requests served
	// override, if set, serves in the Engine's place.
	override atomic.Pointer[http.HandlerFunc]

	mu     sync.Mutex
	local  map[copyKey]*localCopy
	owners map[topology.TaskID]owners // this instance's own view, over the cluster's
}

var _ query.Backend = (*node)(nil)

func (n *node) Self() string { return n.self }

func (n *node) Store(name string) (query.StoreInfo, bool) {
	for _, s := range n.c.infos {
		if s.Name == name {
			return s, true
		}
	}
	return query.StoreInfo{}, false
}

func (n *node) Stores() []query.StoreInfo { return slices.Clone(n.c.infos) }

func (n *node) Owners(task topology.TaskID) (string, []string) {
	n.mu.Lock()
	o, ok := n.owners[task]
	n.mu.Unlock()
	if ok {
		return o.active, slices.Clone(o.standbys)
	}
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	o = n.c.owners[task]
	return o.active, slices.Clone(o.standbys)
}

func (n *node) Hosts() []string {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	return slices.Clone(n.c.hosts)
}

func (n *node) Local(store string, task topology.TaskID) (state.Store, query.TaskState, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	lc, ok := n.local[copyKey{store, task}]
	if !ok {
		return nil, "", false
	}
	return lc.store, lc.st, true
}

func (n *node) Tasks() []query.TaskInfo {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.tasksLocked()
}

func (n *node) tasksLocked() []query.TaskInfo {
	byTask := map[topology.TaskID]*query.TaskInfo{}
	for k, lc := range n.local {
		ti, ok := byTask[k.task]
		if !ok {
			ti = &query.TaskInfo{Task: k.task.String(), State: lc.st, Lag: lc.lag}
			byTask[k.task] = ti
		}
		ti.Stores = append(ti.Stores, k.store)
	}
	var out []query.TaskInfo
	for _, ti := range byTask {
		sort.Strings(ti.Stores)
		out = append(out, *ti)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Task < out[j].Task })
	return out
}

// setState sets the state of this instance's copy of store's task.
func (n *node) setState(store string, task topology.TaskID, st query.TaskState) {
	n.mu.Lock()
	defer n.mu.Unlock()
	lc, ok := n.local[copyKey{store, task}]
	if !ok {
		n.c.t.Fatalf("%s holds no copy of %s %s", n.self, store, task)
	}
	lc.st = st
}

// drop removes this instance's copy of store's task.
func (n *node) drop(store string, task topology.TaskID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.local, copyKey{store, task})
}

// newCluster starts nHosts instances and a host that does not answer.
func newCluster(t *testing.T) *cluster {
	t.Helper()
	env, err := state.NewEnv("")
	if err != nil {
		t.Fatal(err)
	}
	cs := codecs(t)
	c := &cluster{t: t, env: env, owners: map[topology.TaskID]owners{}}
	for _, d := range storeDefs {
		c.infos = append(c.infos, query.StoreInfo{Name: d.name, Kind: d.kind, Codec: cs[d.name], Subtopology: d.sub, Partitions: d.n})
	}
	// A host that does not answer: it hangs up on every connection. (It
	// keeps its port, so no other server can take it.)
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dead.Close() })
	go func() {
		for {
			conn, err := dead.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	}()
	c.deadHost = dead.Addr().String()

	for i := 0; i < nHosts; i++ {
		n := &node{c: c, local: map[copyKey]*localCopy{}, owners: map[topology.TaskID]owners{}}
		n.eng = &query.Engine{B: n, Client: &http.Client{Timeout: time.Minute}}
		h := n.eng.Handler()
		n.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n.hits.Add(1)
			if o := n.override.Load(); o != nil {
				(*o)(w, r)
				return
			}
			h.ServeHTTP(w, r)
		}))
		t.Cleanup(n.srv.Close)
		n.self = n.srv.Listener.Addr().String()
		c.nodes = append(c.nodes, n)
		c.hosts = append(c.hosts, n.self)
	}
	for _, d := range storeDefs {
		for p := int32(0); p < d.n; p++ {
			task := topology.TaskID{Subtopology: d.sub, Partition: p}
			act := c.nodes[(d.sub+int(p))%nHosts]
			sb := c.nodes[(d.sub+int(p)+1)%nHosts]
			c.owners[task] = owners{active: act.self, standbys: []string{sb.self}}
			act.local[copyKey{d.name, task}] = c.open(d, task, query.Running, 0)
			sb.local[copyKey{d.name, task}] = c.open(d, task, query.Standby, int64(3+p))
		}
	}
	return c
}

func (c *cluster) open(d storeDef, task topology.TaskID, st query.TaskState, lag int64) *localCopy {
	lc := &localCopy{st: st, lag: lag}
	switch d.kind {
	case state.KindKeyValue:
		lc.kv = state.NewInMemoryKeyValue(d.name)
		lc.store = state.ReadOnly(lc.kv)
	case state.KindWindow:
		ws, err := c.env.OpenWindow(appID, task.String(), state.Window(d.name, 24*time.Hour, state.InMemory()))
		if err != nil {
			c.t.Fatal(err)
		}
		lc.ws, lc.store = ws, ws
	case state.KindSession:
		ss, err := c.env.OpenSession(appID, task.String(), state.Session(d.name, 24*time.Hour, state.InMemory()))
		if err != nil {
			c.t.Fatal(err)
		}
		lc.ss, lc.store = ss, ss
	}
	return lc
}

func (c *cluster) def(store string) storeDef {
	for _, d := range storeDefs {
		if d.name == store {
			return d
		}
	}
	c.t.Fatalf("no store %q", store)
	return storeDef{}
}

// taskOf is the task that holds key (bytes) of store.
func (c *cluster) taskOf(store string, key []byte) topology.TaskID {
	d := c.def(store)
	return topology.TaskID{Subtopology: d.sub, Partition: query.Partition(key, d.n)}
}

// copies returns every instance's copy of store's task.
func (c *cluster) copies(store string, task topology.TaskID) []*localCopy {
	var out []*localCopy
	for _, n := range c.nodes {
		n.mu.Lock()
		if lc, ok := n.local[copyKey{store, task}]; ok {
			out = append(out, lc)
		}
		n.mu.Unlock()
	}
	if len(out) == 0 {
		c.t.Fatalf("no copy of %s %s", store, task)
	}
	return out
}

func (c *cluster) node(host string) *node {
	for _, n := range c.nodes {
		if n.self == host {
			return n
		}
	}
	c.t.Fatalf("no node %s", host)
	return nil
}

// activeOf is the node that runs the task that holds key of store.
func (c *cluster) activeOf(store string, key []byte) *node {
	c.mu.Lock()
	h := c.owners[c.taskOf(store, key)].active
	c.mu.Unlock()
	return c.node(h)
}

func (c *cluster) standbyOf(store string, key []byte) *node {
	c.mu.Lock()
	h := c.owners[c.taskOf(store, key)].standbys[0]
	c.mu.Unlock()
	return c.node(h)
}

// otherOf is the node that neither runs nor keeps a copy of key's task.
func (c *cluster) otherOf(store string, key []byte) *node {
	a, s := c.activeOf(store, key), c.standbyOf(store, key)
	for _, n := range c.nodes {
		if n != a && n != s {
			return n
		}
	}
	c.t.Fatal("no third node")
	return nil
}

func (c *cluster) setOwners(task topology.TaskID, active string, standbys ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.owners[task] = owners{active: active, standbys: standbys}
}

func strKey(s string) []byte { b, _ := serde.String().Encode(s); return b }
func i64(v int64) []byte     { b, _ := serde.Int64().Encode(v); return b }
func str(s string) []byte    { return strKey(s) }

// putKV writes key=value to every copy of the task that holds key.
func (c *cluster) putKV(store string, key, value []byte) {
	for _, lc := range c.copies(store, c.taskOf(store, key)) {
		if err := lc.kv.Put(key, value); err != nil {
			c.t.Fatal(err)
		}
	}
}

func (c *cluster) putWindow(store string, key []byte, start int64, value []byte) {
	for _, lc := range c.copies(store, c.taskOf(store, key)) {
		if err := lc.ws.Put(key, start, value); err != nil {
			c.t.Fatal(err)
		}
	}
}

func (c *cluster) putSession(store string, key []byte, start, end int64, value []byte) {
	for _, lc := range c.copies(store, c.taskOf(store, key)) {
		if err := lc.ss.Put(key, start, end, value); err != nil {
			c.t.Fatal(err)
		}
	}
}

// countsKeys are the keys of "counts": key i has value i*10.
func countsKeys() []string {
	var ks []string
	for i := 0; i < 40; i++ {
		ks = append(ks, fmt.Sprintf("k%02d", i))
	}
	// Keys that need escaping in a URL, and one that is not ASCII.
	ks = append(ks, "a/b&c=d e+f", "é?#%", `quo"te`)
	return ks
}

func fillCounts(c *cluster) map[string]int64 {
	want := map[string]int64{}
	for i, k := range countsKeys() {
		want[k] = int64(i * 10)
		c.putKV("counts", strKey(k), i64(int64(i*10)))
	}
	return want
}

// idsKeys are the keys of "ids": their byte order puts negatives last.
var idsKeys = []int64{0, 7, 1000, 1 << 40, -5, -1, 42, 3}

func fillIDs(c *cluster) {
	for _, k := range idsKeys {
		c.putKV("ids", i64(k), str(fmt.Sprintf("id-%d", k)))
	}
}

// ---- HTTP helpers ----

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) String() string { return fmt.Sprintf("%d %s", r.status, r.body) }

func do(t *testing.T, method, host, path string, q url.Values) response {
	t.Helper()
	u := "http://" + host + query.Prefix + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	cl := &http.Client{Timeout: time.Minute}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, body}
}

func get(t *testing.T, n *node, path string, q url.Values) response {
	t.Helper()
	return do(t, http.MethodGet, n.self, path, q)
}

// getOK gets and decodes a 200 answer into out.
func getOK(t *testing.T, n *node, path string, q url.Values, out any) {
	t.Helper()
	r := get(t, n, path, q)
	if r.status != http.StatusOK {
		t.Fatalf("GET %s?%s at %s: %v", path, q.Encode(), n.self, r)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET %s: Content-Type %q", path, ct)
	}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		t.Fatalf("GET %s?%s: decode %s: %v", path, q.Encode(), r.body, err)
	}
}

// wantError checks r is an error of status with a JSON {"error": ...}.
func wantError(t *testing.T, what string, r response, status int) string {
	t.Helper()
	if r.status != status {
		t.Errorf("%s: status %d, want %d (body %s)", what, r.status, status, r.body)
		return ""
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q, want application/json", what, ct)
	}
	var eb map[string]any
	if err := json.Unmarshal(r.body, &eb); err != nil {
		t.Errorf("%s: error body %q is not JSON: %v", what, r.body, err)
		return ""
	}
	msg, ok := eb["error"].(string)
	if !ok || msg == "" || len(eb) != 1 {
		t.Errorf("%s: error body %s: want {\"error\": message}", what, r.body)
	}
	if status == http.StatusServiceUnavailable {
		if ra := r.header.Get("Retry-After"); ra != "1" {
			t.Errorf("%s: Retry-After %q, want \"1\"", what, ra)
		}
	} else if ra := r.header.Get("Retry-After"); ra != "" {
		t.Errorf("%s: Retry-After %q on a %d", what, ra, status)
	}
	return msg
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sameJSON compares two JSON texts by their values.
func sameJSON(t *testing.T, got json.RawMessage, want string) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Errorf("%s is not JSON: %v", got, err)
		return false
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s is not JSON: %v", want, err)
	}
	return jsonOf(t, g) == jsonOf(t, w)
}

// ---- get ----

func TestGetForwardsToTheOwner(t *testing.T) {
	c := newCluster(t)
	want := fillCounts(c)
	owned := map[string]int{}
	for _, k := range countsKeys() {
		owner := c.activeOf("counts", strKey(k))
		owned[owner.self]++
		task := c.taskOf("counts", strKey(k))
		for _, via := range c.nodes {
			for _, form := range []string{k, jsonOf(t, k)} {
				var res query.KeyResult
				getOK(t, via, "/stores/counts/get", url.Values{"key": {form}}, &res)
				if !res.Found {
					t.Errorf("get %q via %s: not found", form, via.self)
				}
				if !sameJSON(t, res.Key, jsonOf(t, k)) || !sameJSON(t, res.Value, jsonOf(t, want[k])) {
					t.Errorf("get %q via %s: key %s value %s, want %q %d", form, via.self, res.Key, res.Value, k, want[k])
				}
				if res.Host != owner.self || res.Task != task.String() || res.State != query.Running {
					t.Errorf("get %q via %s: from %s task %s state %s, want %s %s RUNNING", form, via.self, res.Host, res.Task, res.State, owner.self, task)
				}
			}
		}
	}
	for _, n := range c.nodes {
		if owned[n.self] == 0 {
			t.Fatalf("%s owns no key of counts: the test proves little (%v)", n.self, owned)
		}
	}
}

func TestGetIntKeys(t *testing.T) {
	c := newCluster(t)
	fillIDs(c)
	for _, k := range idsKeys {
		owner := c.activeOf("ids", i64(k))
		for _, via := range c.nodes {
			var res query.KeyResult
			getOK(t, via, "/stores/ids/get", url.Values{"key": {fmt.Sprint(k)}}, &res)
			if !res.Found || !sameJSON(t, res.Key, fmt.Sprint(k)) || !sameJSON(t, res.Value, jsonOf(t, fmt.Sprintf("id-%d", k))) {
				t.Errorf("get %d via %s: %+v", k, via.self, res)
			}
			if res.Host != owner.self {
				t.Errorf("get %d via %s: answered by %s, want %s", k, via.self, res.Host, owner.self)
			}
		}
	}
}

func TestGetAbsentKey(t *testing.T) {
	c := newCluster(t)
	fillCounts(c)
	for _, k := range []string{"absent", "k99", "", "K00"} {
		owner := c.activeOf("counts", strKey(k))
		for _, via := range c.nodes {
			r := get(t, via, "/stores/counts/get", url.Values{"key": {k}})
			if r.status != http.StatusOK {
				t.Fatalf("get %q via %s: %v", k, via.self, r)
			}
			var raw map[string]json.RawMessage
			if err := json.Unmarshal(r.body, &raw); err != nil {
				t.Fatal(err)
			}
			if string(raw["found"]) != "false" || string(raw["value"]) != "null" || !sameJSON(t, raw["key"], jsonOf(t, k)) {
				t.Errorf("get %q via %s: %s, want found false, value null", k, via.self, r.body)
			}
			var res query.KeyResult
			json.Unmarshal(r.body, &res)
			if res.Host != owner.self {
				t.Errorf("get %q via %s: answered by %s, want the owner %s", k, via.self, res.Host, owner.self)
			}
		}
	}
	// An absent int key too.
	var res query.KeyResult
	getOK(t, c.nodes[0], "/stores/ids/get", url.Values{"key": {"123456"}}, &res)
	if res.Found || string(res.Value) != "null" {
		t.Errorf("get absent int key: %+v", res)
	}
}

// ---- range and all ----

// pageAll reads every page of path (range or all) via n with limit, and
// returns the keys in the order given.
func pageAll(t *testing.T, n *node, path string, q url.Values, limit int) (keys []json.RawMessage, values []json.RawMessage) {
	t.Helper()
	q2 := url.Values{}
	for k, v := range q {
		q2[k] = v
	}
	if limit > 0 {
		q2.Set("limit", fmt.Sprint(limit))
	}
	pageMax := limit
	if pageMax <= 0 {
		pageMax = query.MaxPage
	}
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatalf("%s via %s: more than 1000 pages", path, n.self)
		}
		r := get(t, n, path, q2)
		if r.status != http.StatusOK {
			t.Fatalf("%s?%s via %s: %v", path, q2.Encode(), n.self, r)
		}
		if bytes.Contains(r.body, []byte(`"raw"`)) {
			t.Errorf("%s via %s: the answer shows raw keys: %s", path, n.self, r.body)
		}
		var page query.RangeResult
		if err := json.Unmarshal(r.body, &page); err != nil {
			t.Fatal(err)
		}
		if page.Entries == nil {
			t.Errorf("%s via %s: entries is null, want []: %s", path, n.self, r.body)
		}
		if len(page.Entries) > pageMax {
			t.Fatalf("%s via %s: page of %d entries, limit %d", path, n.self, len(page.Entries), pageMax)
		}
		for _, e := range page.Entries {
			keys = append(keys, e.Key)
			values = append(values, e.Value)
		}
		if page.Next == "" {
			return keys, values
		}
		if len(page.Entries) < pageMax {
			t.Errorf("%s via %s: a short page (%d of %d) says there is a next one", path, n.self, len(page.Entries), pageMax)
		}
		q2.Set("after", page.Next)
	}
}

// sortedStrings sorts string keys as a store orders them: by their bytes.
func sortedStrings(ks []string) []string {
	out := slices.Clone(ks)
	sort.Slice(out, func(i, j int) bool { return bytes.Compare([]byte(out[i]), []byte(out[j])) < 0 })
	return out
}

func decodeStrings(t *testing.T, raws []json.RawMessage) []string {
	t.Helper()
	var out []string
	for _, r := range raws {
		var s string
		if err := json.Unmarshal(r, &s); err != nil {
			t.Fatalf("key %s: %v", r, err)
		}
		out = append(out, s)
	}
	return out
}

func TestRangePagesAcrossInstances(t *testing.T) {
	c := newCluster(t)
	want := fillCounts(c)
	all := sortedStrings(countsKeys())
	for _, path := range []string{"/stores/counts/all", "/stores/counts/range"} {
		for _, limit := range []int{1, 2, 3, 5, 7, len(all) - 1, len(all), len(all) + 1, 0, query.MaxPage, 5000} {
			for _, via := range c.nodes {
				keys, values := pageAll(t, via, path, nil, limit)
				got := decodeStrings(t, keys)
				if !slices.Equal(got, all) {
					t.Fatalf("%s limit %d via %s:\n got %q\nwant %q", path, limit, via.self, got, all)
				}
				for i, k := range got {
					if !sameJSON(t, values[i], jsonOf(t, want[k])) {
						t.Errorf("%s limit %d via %s: %q = %s, want %d", path, limit, via.self, k, values[i], want[k])
					}
				}
			}
		}
	}
}

func TestRangeFirstPage(t *testing.T) {
	c := newCluster(t)
	fillCounts(c)
	all := sortedStrings(countsKeys())
	var page query.RangeResult
	getOK(t, c.nodes[1], "/stores/counts/all", url.Values{"limit": {"4"}}, &page)
	if got := decodeStrings(t, keysOf(page)); !slices.Equal(got, all[:4]) || page.Next == "" {
		t.Fatalf("first page: %q next %q, want %q and a cursor", got, page.Next, all[:4])
	}
	// The cursor works at any instance, not only the one that gave it.
	for _, via := range c.nodes {
		var p2 query.RangeResult
		getOK(t, via, "/stores/counts/all", url.Values{"limit": {"4"}, "after": {page.Next}}, &p2)
		if got := decodeStrings(t, keysOf(p2)); !slices.Equal(got, all[4:8]) {
			t.Errorf("second page via %s: %q, want %q", via.self, got, all[4:8])
		}
	}
	// A page that holds the rest says there is no next one.
	var rest query.RangeResult
	getOK(t, c.nodes[2], "/stores/counts/all", url.Values{"limit": {"1000"}, "after": {page.Next}}, &rest)
	if got := decodeStrings(t, keysOf(rest)); !slices.Equal(got, all[4:]) || rest.Next != "" {
		t.Errorf("rest: %q next %q, want %q and no cursor", got, rest.Next, all[4:])
	}
}

func keysOf(p query.RangeResult) []json.RawMessage {
	var out []json.RawMessage
	for _, e := range p.Entries {
		out = append(out, e.Key)
	}
	return out
}

func TestRangeBounds(t *testing.T) {
	c := newCluster(t)
	fillCounts(c)
	all := sortedStrings(countsKeys())
	in := func(from, to string) []string {
		var out []string
		for _, k := range all {
			if (from == "" || k >= from) && (to == "" || k < to) {
				out = append(out, k)
			}
		}
		return out
	}
	cases := []struct{ from, to string }{
		{"k10", "k20"},
		{"k10", ""},
		{"", "k05"},
		{"k055", "k1"},   // bounds that are not keys
		{"k10", "k10"},   // empty
		{"k20", "k10"},   // from after to: empty
		{"zzz", ""},      // after every key
		{"", "\x00"},     // before every key
		{`"k3"`, `"k4"`}, // JSON strings
		{"a", "k00"},
	}
	for _, cs := range cases {
		from, to := cs.from, cs.to
		var ufrom, uto string
		if from != "" {
			json.Unmarshal([]byte(from), &ufrom)
			if ufrom == "" {
				ufrom = from
			}
		}
		if to != "" {
			json.Unmarshal([]byte(to), &uto)
			if uto == "" {
				uto = to
			}
		}
		want := in(ufrom, uto)
		q := url.Values{}
		if from != "" {
			q.Set("from", from)
		}
		if to != "" {
			q.Set("to", to)
		}
		for _, limit := range []int{1, 3, 0} {
			for _, via := range c.nodes {
				keys, _ := pageAll(t, via, "/stores/counts/range", q, limit)
				if got := decodeStrings(t, keys); !slices.Equal(got, want) {
					t.Errorf("range [%q, %q) limit %d via %s:\n got %q\nwant %q", from, to, limit, via.self, got, want)
				}
			}
		}
	}
}

func TestRangeIntKeysInByteOrder(t *testing.T) {
	c := newCluster(t)
	fillIDs(c)
	// Big-endian two's complement: non-negatives ascending, then negatives.
	want := []string{"0", "3", "7", "42", "1000", fmt.Sprint(int64(1) << 40), "-5", "-1"}
	for _, limit := range []int{1, 2, 0} {
		for _, via := range c.nodes {
			keys, values := pageAll(t, via, "/stores/ids/all", nil, limit)
			var got []string
			for i, k := range keys {
				got = append(got, string(k))
				if !sameJSON(t, values[i], jsonOf(t, "id-"+string(k))) {
					t.Errorf("ids %s = %s", k, values[i])
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("ids all limit %d via %s: %v, want %v", limit, via.self, got, want)
			}
		}
	}
	// Bounds are keys of the store's type.
	keys, _ := pageAll(t, c.nodes[0], "/stores/ids/range", url.Values{"from": {"3"}, "to": {"1000"}}, 2)
	var got []string
	for _, k := range keys {
		got = append(got, string(k))
	}
	if !slices.Equal(got, []string{"3", "7", "42"}) {
		t.Errorf("ids [3, 1000): %v", got)
	}
}

func TestRangeMoreThanAPage(t *testing.T) {
	c := newCluster(t)
	var all []string
	for i := 0; i < query.MaxPage+234; i++ {
		k := fmt.Sprintf("key-%05d", i)
		all = append(all, k)
		c.putKV("counts", strKey(k), i64(int64(i)))
	}
	all = sortedStrings(all)
	var page query.RangeResult
	getOK(t, c.nodes[0], "/stores/counts/all", url.Values{"limit": {"100000"}}, &page)
	if len(page.Entries) != query.MaxPage || page.Next == "" {
		t.Fatalf("limit over MaxPage: %d entries, next %q; want %d and a cursor", len(page.Entries), page.Next, query.MaxPage)
	}
	keys, _ := pageAll(t, c.nodes[2], "/stores/counts/all", nil, 0)
	if got := decodeStrings(t, keys); !slices.Equal(got, all) {
		t.Errorf("paging with the default limit: %d keys, want %d", len(got), len(all))
	}
}

func TestRangeEmptyStore(t *testing.T) {
	c := newCluster(t)
	for _, via := range c.nodes {
		r := get(t, via, "/stores/counts/all", nil)
		if r.status != http.StatusOK || strings.TrimSpace(string(r.body)) != `{"entries":[]}` {
			t.Errorf("all of an empty store via %s: %v", via.self, r)
		}
	}
}

func TestRangeBadCursor(t *testing.T) {
	c := newCluster(t)
	fillCounts(c)
	for _, cur := range []string{"!!!", "a", "ab=c", "a b", "%%"} {
		for _, path := range []string{"/stores/counts/all", "/stores/counts/range"} {
			wantError(t, "cursor "+cur, get(t, c.nodes[0], path, url.Values{"after": {cur}}), http.StatusBadRequest)
		}
	}
}

// A page that ends at the empty key must still lead to the next one.
func TestRangeEmptyKeyCursor(t *testing.T) {
	c := newCluster(t)
	for _, k := range []string{"", "a", "b"} {
		c.putKV("counts", strKey(k), i64(1))
	}
	keys, _ := pageAll(t, c.nodes[0], "/stores/counts/all", nil, 1)
	if got := decodeStrings(t, keys); !slices.Equal(got, []string{"", "a", "b"}) {
		t.Errorf("all with limit 1: %q, want [\"\" a b]", got)
	}
}

// ---- windows ----

var t0 = time.Date(2024, 1, 2, 3, 4, 0, 0, time.UTC)

func ms(t time.Time) int64 { return t.UnixMilli() }

func TestWindowsOfAWindowStore(t *testing.T) {
	c := newCluster(t)
	keys := []string{"w1", "w2", "w3", "w4", "w5", "w6"}
	for i, k := range keys {
		for j := 0; j < 3; j++ {
			c.putWindow("win", strKey(k), ms(t0.Add(time.Duration(j)*time.Minute)), i64(int64(100*i+j)))
			c.putWindow("win0", strKey(k), ms(t0.Add(time.Duration(j)*time.Minute)), i64(int64(100*i+j)))
		}
	}
	type win struct {
		Start time.Time       `json:"start"`
		End   *time.Time      `json:"end"`
		Value json.RawMessage `json:"value"`
	}
	type result struct {
		Key     json.RawMessage `json:"key"`
		Windows []win           `json:"windows"`
		Host    string          `json:"host"`
		Task    string          `json:"task"`
	}
	owners := map[string]bool{}
	for i, k := range keys {
		owner := c.activeOf("win", strKey(k))
		owners[owner.self] = true
		cases := []struct {
			from, to string
			first, n int
		}{
			{"", "", 0, 3},
			{t0.Format(time.RFC3339), t0.Add(2 * time.Minute).Format(time.RFC3339Nano), 0, 3},
			{fmt.Sprint(ms(t0.Add(time.Minute))), fmt.Sprint(ms(t0.Add(time.Minute))), 1, 1}, // from == to
			{t0.Add(30 * time.Second).Format(time.RFC3339), "", 1, 2},
			{"", fmt.Sprint(ms(t0.Add(time.Minute)) - 1), 0, 1},
			{t0.Add(time.Hour).Format(time.RFC3339), "", 0, 0},
			{t0.In(time.FixedZone("x", 2*3600)).Format(time.RFC3339), t0.Add(time.Minute).Format(time.RFC3339), 0, 2}, // an offset (a + in the URL)
		}
		for _, cs := range cases {
			for _, via := range c.nodes {
				if cs.to == "" && via != owner {
					continue // see TestWindowsForwardedWithoutTo
				}
				q := url.Values{"key": {k}}
				if cs.from != "" {
					q.Set("from", cs.from)
				}
				if cs.to != "" {
					q.Set("to", cs.to)
				}
				var res result
				getOK(t, via, "/stores/win/windows", q, &res)
				if res.Host != owner.self || res.Task != c.taskOf("win", strKey(k)).String() || !sameJSON(t, res.Key, jsonOf(t, k)) {
					t.Errorf("windows of %q via %s: key %s host %s task %s, want %s", k, via.self, res.Key, res.Host, res.Task, owner.self)
				}
				if res.Windows == nil || len(res.Windows) != cs.n {
					t.Errorf("windows of %q in [%s, %s] via %s: %d windows, want %d", k, cs.from, cs.to, via.self, len(res.Windows), cs.n)
					continue
				}
				for j, w := range res.Windows {
					start := t0.Add(time.Duration(cs.first+j) * time.Minute)
					if !w.Start.Equal(start) || w.End == nil || !w.End.Equal(start.Add(time.Minute)) {
						t.Errorf("windows of %q via %s: window %d is [%v, %v), want [%v, %v)", k, via.self, j, w.Start, w.End, start, start.Add(time.Minute))
					}
					if w.Start.Location() != time.UTC {
						t.Errorf("window start %v is not in UTC", w.Start)
					}
					if !sameJSON(t, w.Value, fmt.Sprint(100*i+cs.first+j)) {
						t.Errorf("windows of %q via %s: window %d value %s, want %d", k, via.self, j, w.Value, 100*i+cs.first+j)
					}
				}
			}
		}
		// Without a window size, a window has no end.
		for _, via := range c.nodes {
			r := get(t, via, "/stores/win0/windows", url.Values{"key": {k}, "to": {t0.Add(time.Hour).Format(time.RFC3339)}})
			var res result
			if r.status != http.StatusOK || json.Unmarshal(r.body, &res) != nil {
				t.Fatalf("win0 windows of %q via %s: %v", k, via.self, r)
			}
			if len(res.Windows) != 3 || bytes.Contains(r.body, []byte(`"end"`)) {
				t.Errorf("win0 windows of %q via %s: %s, want 3 windows with no end", k, via.self, r.body)
			}
			if res.Host != c.activeOf("win0", strKey(k)).self {
				t.Errorf("win0 windows of %q via %s: answered by %s", k, via.self, res.Host)
			}
		}
	}
	if len(owners) < 2 {
		t.Errorf("the keys of win live on %d hosts: the test proves little", len(owners))
	}
	// A key with no windows.
	var res result
	getOK(t, c.activeOf("win", strKey("nothing")), "/stores/win/windows", url.Values{"key": {"nothing"}}, &res)
	if res.Windows == nil || len(res.Windows) != 0 {
		t.Errorf("windows of an absent key: %+v, want []", res)
	}
}

func TestWindowsOfASessionStore(t *testing.T) {
	c := newCluster(t)
	keys := []string{"s1", "s2", "s3", "s4", "s5"}
	base := ms(t0)
	for _, k := range keys {
		c.putSession("sess", strKey(k), base+100, base+200, str(k+"-a"))
		c.putSession("sess", strKey(k), base+1000, base+1500, str(k+"-b"))
		c.putSession("sess", strKey(k), base+5000, base+5000, str(k+"-c")) // one record
	}
	type win struct {
		Start time.Time `json:"start"`
		End   time.Time `json:"end"`
		Value string    `json:"value"`
	}
	type result struct {
		Key     string `json:"key"`
		Windows []win  `json:"windows"`
		Host    string `json:"host"`
		Task    string `json:"task"`
	}
	at := func(d int64) time.Time { return time.UnixMilli(base + d).UTC() }
	for _, k := range keys {
		owner := c.activeOf("sess", strKey(k))
		all := []win{{at(100), at(200), k + "-a"}, {at(1000), at(1500), k + "-b"}, {at(5000), at(5000), k + "-c"}}
		// The sessions that end at or after from and start at or before
		// to: those that overlap [from, to] (as riffle.Windows says; the
		// Engine's comment says "end in [from, to]").
		cases := []struct {
			from, to int64
			want     []win
		}{
			{-1, -1, all},
			{base + 150, base + 6000, all},
			{base + 201, base + 6000, all[1:]},
			{base, base + 999, all[:1]},
			{base + 300, base + 900, nil},
			{base + 5000, base + 5000, all[2:]},
			{base + 1500, base + 4999, all[1:2]},
			{base + 150, base + 1200, all[:2]},   // b ends after to
			{base + 1400, base + 1400, all[1:2]}, // inside b
			{base + 200, base + 1000, all[:2]},   // the edges are in
			{base + 201, base + 999, nil},
		}
		for _, cs := range cases {
			q := url.Values{"key": {k}}
			if cs.from >= 0 {
				q.Set("from", fmt.Sprint(cs.from))
				q.Set("to", time.UnixMilli(cs.to).Format(time.RFC3339Nano))
			}
			for _, via := range c.nodes {
				if cs.to < 0 && via != owner {
					continue // see TestWindowsForwardedWithoutTo
				}
				var res result
				getOK(t, via, "/stores/sess/windows", q, &res)
				if res.Host != owner.self || res.Key != k || res.Task != c.taskOf("sess", strKey(k)).String() {
					t.Errorf("sessions of %q via %s: key %q host %s task %s, want owner %s", k, via.self, res.Key, res.Host, res.Task, owner.self)
				}
				if res.Windows == nil {
					t.Errorf("sessions of %q via %s: windows is null", k, via.self)
				}
				if len(res.Windows) != len(cs.want) {
					t.Errorf("sessions of %q in [%d, %d] via %s: %+v, want %+v", k, cs.from-base, cs.to-base, via.self, res.Windows, cs.want)
					continue
				}
				for i, w := range res.Windows {
					if !w.Start.Equal(cs.want[i].Start) || !w.End.Equal(cs.want[i].End) || w.Value != cs.want[i].Value {
						t.Errorf("sessions of %q via %s: %d is %+v, want %+v", k, via.self, i, w, cs.want[i])
					}
				}
			}
		}
	}
}

// A windows query with no "to" (or one past the year 9999) answered by
// another instance.
func TestWindowsForwardedWithoutTo(t *testing.T) {
	c := newCluster(t)
	c.putWindow("win", strKey("w"), ms(t0), i64(1))
	c.putSession("sess", strKey("s"), ms(t0), ms(t0)+5, str("v"))
	for _, sk := range []struct{ store, key string }{{"win", "w"}, {"sess", "s"}} {
		other := c.otherOf(sk.store, strKey(sk.key))
		for _, q := range []url.Values{
			{"key": {sk.key}},
			{"key": {sk.key}, "to": {fmt.Sprint(int64(1) << 53)}},
			{"key": {sk.key}, "to": {"253402300800000"}}, // 10000-01-01
		} {
			var res query.WindowsResult
			getOK(t, other, "/stores/"+sk.store+"/windows", q, &res)
			if len(res.Windows) != 1 {
				t.Errorf("%s windows via %s: %+v", sk.store, other.self, res)
			}
		}
	}
}

// ---- unavailable copies, stale reads ----

func TestRestoringOwner(t *testing.T) {
	c := newCluster(t)
	want := fillCounts(c)
	k := "k07"
	task := c.taskOf("counts", strKey(k))
	owner, standby, other := c.activeOf("counts", strKey(k)), c.standbyOf("counts", strKey(k)), c.otherOf("counts", strKey(k))
	owner.setState("counts", task, query.Restoring)

	for _, via := range c.nodes {
		wantError(t, "get of a restoring task via "+via.self, get(t, via, "/stores/counts/get", url.Values{"key": {k}}), http.StatusServiceUnavailable)
		wantError(t, "all with a restoring task via "+via.self, get(t, via, "/stores/counts/all", nil), http.StatusServiceUnavailable)
		wantError(t, "range with a restoring task via "+via.self, get(t, via, "/stores/counts/range", url.Values{"limit": {"2"}}), http.StatusServiceUnavailable)
	}
	// Keys of other tasks still answer.
	for _, k2 := range countsKeys() {
		if c.taskOf("counts", strKey(k2)) == task {
			continue
		}
		var res query.KeyResult
		getOK(t, other, "/stores/counts/get", url.Values{"key": {k2}}, &res)
		if !res.Found {
			t.Errorf("get %q: not found", k2)
		}
		break
	}

	check := func(via *node, from *node, st query.TaskState) {
		t.Helper()
		var res query.KeyResult
		getOK(t, via, "/stores/counts/get", url.Values{"key": {k}, "stale": {"true"}}, &res)
		if !res.Found || !sameJSON(t, res.Value, jsonOf(t, want[k])) || res.Host != from.self || res.State != st {
			t.Errorf("stale get via %s: %+v, want %d from %s (%s)", via.self, res, want[k], from.self, st)
		}
	}
	// The restoring copy answers a stale read here.
	check(owner, owner, query.Restoring)
	// A stale read at a standby goes to the instance the task is assigned
	// to, as long as there is one.
	check(standby, owner, query.Restoring)
	// Elsewhere a stale read goes to the owner, whose restoring copy may
	// answer it.
	check(other, owner, query.Restoring)

	// A stale range reads every task.
	all := sortedStrings(countsKeys())
	for _, via := range c.nodes {
		keys, _ := pageAll(t, via, "/stores/counts/all", url.Values{"stale": {"true"}}, 4)
		if got := decodeStrings(t, keys); !slices.Equal(got, all) {
			t.Errorf("stale all via %s: %q", via.self, got)
		}
	}
	// stale=false is the default.
	wantError(t, "stale=false", get(t, other, "/stores/counts/get", url.Values{"key": {k}, "stale": {"false"}}), http.StatusServiceUnavailable)

	// Once restored, it answers.
	owner.setState("counts", task, query.Running)
	var res query.KeyResult
	getOK(t, other, "/stores/counts/get", url.Values{"key": {k}}, &res)
	if res.Host != owner.self || res.State != query.Running {
		t.Errorf("after restoring: %+v", res)
	}
}

func TestRestoringWindowStore(t *testing.T) {
	c := newCluster(t)
	c.putWindow("win", strKey("w"), ms(t0), i64(5))
	c.putSession("sess", strKey("s"), ms(t0), ms(t0)+10, str("v"))
	for _, sk := range []struct{ store, key string }{{"win", "w"}, {"sess", "s"}} {
		task := c.taskOf(sk.store, strKey(sk.key))
		owner, standby := c.activeOf(sk.store, strKey(sk.key)), c.standbyOf(sk.store, strKey(sk.key))
		owner.setState(sk.store, task, query.Restoring)
		to := t0.Add(time.Hour).Format(time.RFC3339)
		for _, via := range c.nodes {
			wantError(t, sk.store+" windows of a restoring task via "+via.self, get(t, via, "/stores/"+sk.store+"/windows", url.Values{"key": {sk.key}, "to": {to}}), http.StatusServiceUnavailable)
		}
		var res query.WindowsResult
		getOK(t, standby, "/stores/"+sk.store+"/windows", url.Values{"key": {sk.key}, "stale": {"true"}, "to": {to}}, &res)
		if res.Host != owner.self || len(res.Windows) != 1 {
			t.Errorf("stale %s windows via the standby: %+v, want the assigned owner's", sk.store, res)
		}
		getOK(t, owner, "/stores/"+sk.store+"/windows", url.Values{"key": {sk.key}, "stale": {"true"}, "to": {to}}, &res)
		if res.Host != owner.self || len(res.Windows) != 1 {
			t.Errorf("stale %s windows via the restoring owner: %+v", sk.store, res)
		}
		other := c.otherOf(sk.store, strKey(sk.key))
		getOK(t, other, "/stores/"+sk.store+"/windows", url.Values{"key": {sk.key}, "stale": {"true"}, "to": {to}}, &res)
		if res.Host != owner.self || len(res.Windows) != 1 {
			t.Errorf("stale %s windows via another instance: %+v, want the restoring owner's", sk.store, res)
		}
	}
}

func TestNoActiveOwner(t *testing.T) {
	c := newCluster(t)
	want := fillCounts(c)
	k := "k11"
	task := c.taskOf("counts", strKey(k))
	owner, standby, other := c.activeOf("counts", strKey(k)), c.standbyOf("counts", strKey(k)), c.otherOf("counts", strKey(k))
	// The task is moving: no instance runs it, the old owner closed it.
	c.setOwners(task, "", standby.self)
	owner.drop("counts", task)

	for _, via := range c.nodes {
		wantError(t, "get of a moving task via "+via.self, get(t, via, "/stores/counts/get", url.Values{"key": {k}}), http.StatusServiceUnavailable)
		wantError(t, "all with a moving task via "+via.self, get(t, via, "/stores/counts/all", nil), http.StatusServiceUnavailable)
	}
	// A stale read finds the standby, from anywhere.
	for _, via := range []*node{owner, standby, other} {
		var res query.KeyResult
		getOK(t, via, "/stores/counts/get", url.Values{"key": {k}, "stale": {"true"}}, &res)
		if !res.Found || !sameJSON(t, res.Value, jsonOf(t, want[k])) || res.Host != standby.self || res.State != query.Standby {
			t.Errorf("stale get of a moving task via %s: %+v, want the standby %s", via.self, res, standby.self)
		}
		keys, _ := pageAll(t, via, "/stores/counts/all", url.Values{"stale": {"true"}}, 3)
		if got := decodeStrings(t, keys); !slices.Equal(got, sortedStrings(countsKeys())) {
			t.Errorf("stale all of a moving task via %s: %q", via.self, got)
		}
	}
	// With no standby either, even a stale read waits.
	c.setOwners(task, "")
	standby.drop("counts", task)
	for _, via := range c.nodes {
		wantError(t, "stale get with no copy via "+via.self, get(t, via, "/stores/counts/get", url.Values{"key": {k}, "stale": {"true"}}), http.StatusServiceUnavailable)
	}
	// The owners endpoint says so.
	var or query.OwnersResult
	getOK(t, other, "/stores/counts/owners", url.Values{"key": {k}}, &or)
	if or.Active != "" || or.Standbys == nil || len(or.Standbys) != 0 {
		t.Errorf("owners of a moving task: %+v", or)
	}
}

// A stale query is answered by a standby copy "when the running copy is
// not available" (Options.Stale, riffle.AllowStale): while it is, the
// running copy answers.
func TestStaleReadPrefersTheRunningCopy(t *testing.T) {
	c := newCluster(t)
	fillCounts(c)
	k := "k07"
	owner, standby := c.activeOf("counts", strKey(k)), c.standbyOf("counts", strKey(k))
	var res query.KeyResult
	getOK(t, standby, "/stores/counts/get", url.Values{"key": {k}, "stale": {"true"}}, &res)
	if res.Host != owner.self || res.State != query.Running {
		t.Errorf("stale get via the standby while the owner runs the task: answered by %s (%s), want %s", res.Host, res.State, owner.self)
	}
}

// The owner is unreachable: the query fails with a 503, it does not hang
// or fail with a 500.
func TestOwnerUnreachable(t *testing.T) {
	c := newCluster(t)
	fillCounts(c)
	k := "k03"
	task := c.taskOf("counts", strKey(k))
	other := c.otherOf("counts", strKey(k))
	c.setOwners(task, c.deadHost)
	wantError(t, "get with the owner gone", get(t, other, "/stores/counts/get", url.Values{"key": {k}}), http.StatusServiceUnavailable)
	wantError(t, "all with an owner gone", get(t, other, "/stores/counts/all", nil), http.StatusServiceUnavailable)
}

// ---- forwarded queries ----

func TestForwardedQueryDoesNotLoop(t *testing.T) {
	c := newCluster(t)
	fillCounts(c)
	c.putWindow("win", strKey("w"), ms(t0), i64(1))
	k := "k05"
	task := c.taskOf("counts", strKey(k))
	owner, standby, other := c.activeOf("counts", strKey(k)), c.standbyOf("counts", strKey(k)), c.otherOf("counts", strKey(k))

	local := url.Values{"key": {k}, "scope": {"local"}}
	// Where the task runs, a forwarded query is answered.
	var res query.KeyResult
	getOK(t, owner, "/stores/counts/get", local, &res)
	if !res.Found || res.Host != owner.self {
		t.Errorf("local get at the owner: %+v", res)
	}
	// Elsewhere it is not forwarded again.
	for _, via := range []*node{standby, other} {
		before := totalHits(c)
		wantError(t, "local get at "+via.self, get(t, via, "/stores/counts/get", local), http.StatusServiceUnavailable)
		if d := totalHits(c) - before; d != 1 {
			t.Errorf("local get at %s: %d requests served, want 1", via.self, d)
		}
	}
	// A standby copy answers a forwarded stale query.
	getOK(t, standby, "/stores/counts/get", url.Values{"key": {k}, "scope": {"local"}, "stale": {"true"}}, &res)
	if res.Host != standby.self || res.State != query.Standby {
		t.Errorf("local stale get at the standby: %+v", res)
	}
	// A restoring copy does not answer a forwarded query that is not stale.
	owner.setState("counts", task, query.Restoring)
	wantError(t, "local get at the restoring owner", get(t, owner, "/stores/counts/get", local), http.StatusServiceUnavailable)
	owner.setState("counts", task, query.Running)

	// Ranges: the tasks named, here only.
	q := url.Values{"scope": {"local"}, "tasks": {task.String()}}
	for _, via := range []*node{standby, other} {
		before := totalHits(c)
		wantError(t, "local range at "+via.self, get(t, via, "/stores/counts/range", q), http.StatusServiceUnavailable)
		if d := totalHits(c) - before; d != 1 {
			t.Errorf("local range at %s: %d requests served, want 1", via.self, d)
		}
	}
	var page query.RangeResult
	getOK(t, owner, "/stores/counts/range", q, &page)
	for _, e := range page.Entries {
		var key string
		json.Unmarshal(e.Key, &key)
		if c.taskOf("counts", strKey(key)) != task {
			t.Errorf("local range of %s: key %q of task %s", task, key, c.taskOf("counts", strKey(key)))
		}
		if !bytes.Equal(e.Raw, strKey(key)) {
			t.Errorf("local range: raw %q, want the key's bytes %q", e.Raw, key)
		}
	}
	if len(page.Entries) == 0 {
		t.Errorf("local range of %s at its owner: no entries", task)
	}

	// Windows.
	wtask := c.taskOf("win", strKey("w"))
	for _, n := range c.nodes {
		n.mu.Lock()
		lc, ok := n.local[copyKey{"win", wtask}]
		running := ok && lc.st == query.Running
		n.mu.Unlock()
		r := get(t, n, "/stores/win/windows", url.Values{"key": {"w"}, "scope": {"local"}})
		if running {
			if r.status != http.StatusOK {
				t.Errorf("local windows at the owner: %v", r)
			}
		} else {
			wantError(t, "local windows at "+n.self, r, http.StatusServiceUnavailable)
		}
	}
}

func totalHits(c *cluster) int64 {
	var n int64
	for _, nd := range c.nodes {
		n += nd.hits.Load()
	}
	return n
}

// Two instances that each think the other runs a task (their assignments
// differ for a moment) answer 503 rather than pass the query back and forth.
func TestInconsistentOwnersDoNotLoop(t *testing.T) {
	c := newCluster(t)
	fillCounts(c)
	k := "k09"
	task := c.taskOf("counts", strKey(k))
	owner, a, b := c.activeOf("counts", strKey(k)), c.standbyOf("counts", strKey(k)), c.otherOf("counts", strKey(k))
	owner.drop("counts", task)
	a.mu.Lock()
	a.owners[task] = owners{active: b.self}
	a.mu.Unlock()
	b.mu.Lock()
	b.owners[task] = owners{active: a.self}
	b.mu.Unlock()
	for _, via := range []*node{a, b} {
		before := totalHits(c)
		wantError(t, "get via "+via.self, get(t, via, "/stores/counts/get", url.Values{"key": {k}}), http.StatusServiceUnavailable)
		if d := totalHits(c) - before; d != 2 {
			t.Errorf("get via %s: %d requests served, want 2 (the query and one forward)", via.self, d)
		}
		before = totalHits(c)
		wantError(t, "all via "+via.self, get(t, via, "/stores/counts/all", nil), http.StatusServiceUnavailable)
		if d := totalHits(c) - before; d > int64(nHosts+1) {
			t.Errorf("all via %s: %d requests served", via.self, d)
		}
	}
}

// The Engine's Go API: errors are *query.Error with the HTTP status.
func TestEngineErrors(t *testing.T) {
	c := newCluster(t)
	fillCounts(c)
	ctx := t.Context()
	k := "k02"
	task := c.taskOf("counts", strKey(k))
	owner, other := c.activeOf("counts", strKey(k)), c.otherOf("counts", strKey(k))
	e := other.eng
	status := func(what string, err error, want int) *query.Error {
		t.Helper()
		qe, ok := err.(*query.Error)
		if !ok {
			t.Errorf("%s: error %v (%T), want a *query.Error", what, err, err)
			return nil
		}
		if qe.Status != want || qe.Msg == "" || qe.Error() != qe.Msg {
			t.Errorf("%s: %+v, want status %d", what, qe, want)
		}
		return qe
	}
	_, err := e.Get(ctx, "nope", k, query.Options{})
	status("get of an unknown store", err, 404)
	_, err = e.Get(ctx, "ids", "abc", query.Options{})
	status("get of a bad key", err, 400)
	_, err = e.Get(ctx, "win", "w", query.Options{})
	status("get of a window store", err, 400)
	_, err = e.Windows(ctx, "counts", k, t0, t0, query.Options{})
	status("windows of a key-value store", err, 400)
	_, err = e.Windows(ctx, "win", "w", t0, t0.Add(-time.Millisecond), query.Options{})
	status("windows from after to", err, 400)
	_, err = e.Range(ctx, "nope", "", "", "", 0, query.Options{})
	status("range of an unknown store", err, 404)
	_, err = e.Range(ctx, "counts", "", "", "!", 0, query.Options{})
	status("range with a bad cursor", err, 400)
	_, err = e.Owners("nope", k)
	status("owners of an unknown store", err, 404)

	owner.setState("counts", task, query.Restoring)
	_, err = e.Get(ctx, "counts", k, query.Options{})
	if qe := status("get of a restoring task, forwarded", err, 503); qe != nil && qe.RetryAfter != time.Second {
		t.Errorf("RetryAfter %v, want 1s", qe.RetryAfter)
	}
	_, err = owner.eng.Get(ctx, "counts", k, query.Options{})
	if qe := status("get of a restoring task, here", err, 503); qe != nil && qe.RetryAfter != time.Second {
		t.Errorf("RetryAfter %v, want 1s", qe.RetryAfter)
	}
	owner.setState("counts", task, query.Running)

	// limit 0 (or over MaxPage) is a page of MaxPage.
	for i := 0; i < query.MaxPage+5; i++ {
		c.putKV("counts", strKey(fmt.Sprintf("z%04d", i)), i64(1))
	}
	for _, limit := range []int{0, -1, query.MaxPage + 1} {
		page, err := e.Range(ctx, "counts", "", "", "", limit, query.Options{})
		if err != nil || len(page.Entries) != query.MaxPage || page.Next == "" {
			t.Errorf("Range limit %d: %d entries, next %q, %v", limit, len(page.Entries), page.Next, err)
		}
		for _, en := range page.Entries {
			if en.Raw != nil {
				t.Fatalf("Range limit %d: an entry keeps its raw key", limit)
			}
		}
	}
	res, err := e.Get(ctx, "counts", k, query.Options{})
	if err != nil || !res.Found || res.Host != owner.self {
		t.Errorf("Get: %+v, %v", res, err)
	}
}

// ---- bad requests ----

func TestBadRequests(t *testing.T) {
	c := newCluster(t)
	fillCounts(c)
	fillIDs(c)
	cases := []struct {
		name   string
		method string
		path   string
		q      url.Values
		status int
	}{
		{"get without key", "GET", "/stores/counts/get", nil, 400},
		{"get with two keys", "GET", "/stores/counts/get", url.Values{"key": {"a", "b"}}, 400},
		{"int key abc", "GET", "/stores/ids/get", url.Values{"key": {"abc"}}, 400},
		{"int key 1.5", "GET", "/stores/ids/get", url.Values{"key": {"1.5"}}, 400},
		{"int key null", "GET", "/stores/ids/get", url.Values{"key": {"null"}}, 400},
		{"int key quoted", "GET", "/stores/ids/get", url.Values{"key": {`"7"`}}, 400},
		{"int key empty", "GET", "/stores/ids/get", url.Values{"key": {""}}, 400},
		{"int key too big", "GET", "/stores/ids/get", url.Values{"key": {"9223372036854775808"}}, 400},
		{"stale=maybe", "GET", "/stores/counts/get", url.Values{"key": {"k01"}, "stale": {"maybe"}}, 400},
		{"stale=1", "GET", "/stores/counts/all", url.Values{"stale": {"1"}}, 400},
		{"scope=global", "GET", "/stores/counts/get", url.Values{"key": {"k01"}, "scope": {"global"}}, 400},
		{"bad task", "GET", "/stores/counts/range", url.Values{"scope": {"local"}, "tasks": {"x"}}, 400},
		{"limit=0", "GET", "/stores/counts/all", url.Values{"limit": {"0"}}, 400},
		{"limit=-3", "GET", "/stores/counts/all", url.Values{"limit": {"-3"}}, 400},
		{"limit=x", "GET", "/stores/counts/all", url.Values{"limit": {"x"}}, 400},
		{"range limit=0", "GET", "/stores/counts/range", url.Values{"limit": {"0"}}, 400},
		{"range limit=-3", "GET", "/stores/counts/range", url.Values{"limit": {"-3"}}, 400},
		{"range limit=x", "GET", "/stores/counts/range", url.Values{"limit": {"x"}}, 400},
		{"range limit=1.5", "GET", "/stores/counts/range", url.Values{"limit": {"1.5"}}, 400},
		{"range from abc of ints", "GET", "/stores/ids/range", url.Values{"from": {"abc"}}, 400},
		{"range to abc of ints", "GET", "/stores/ids/range", url.Values{"to": {"abc"}}, 400},
		{"all with from", "GET", "/stores/counts/all", url.Values{"from": {"k01"}}, 400},
		{"all with to", "GET", "/stores/counts/all", url.Values{"to": {"k01"}}, 400},
		{"windows of a key-value store", "GET", "/stores/counts/windows", url.Values{"key": {"k01"}}, 400},
		{"windows with two keys", "GET", "/stores/win/windows", url.Values{"key": {"a", "b"}}, 400},
		{"windows from > to", "GET", "/stores/win/windows", url.Values{"key": {"w"}, "from": {"2000"}, "to": {"1000"}}, 400},
		{"session windows from > to", "GET", "/stores/sess/windows", url.Values{"key": {"s"}, "from": {t0.Format(time.RFC3339)}, "to": {t0.Add(-time.Second).Format(time.RFC3339)}}, 400},
		{"windows bad from", "GET", "/stores/win/windows", url.Values{"key": {"w"}, "from": {"yesterday"}}, 400},
		{"windows bad to", "GET", "/stores/win/windows", url.Values{"key": {"w"}, "to": {"2024-13-01T00:00:00Z"}}, 400},
		{"get on a window store", "GET", "/stores/win/get", url.Values{"key": {"w"}}, 400},
		{"get on a session store", "GET", "/stores/sess/get", url.Values{"key": {"s"}}, 400},
		{"range on a window store", "GET", "/stores/win/range", nil, 400},
		{"all on a session store", "GET", "/stores/sess/all", nil, 400},
		{"owners without key", "GET", "/stores/counts/owners", nil, 400},
		{"owners int key abc", "GET", "/stores/ids/owners", url.Values{"key": {"abc"}}, 400},
		{"metadata stale=maybe", "GET", "/metadata", url.Values{"stale": {"maybe"}}, 400},

		{"get of an unknown store", "GET", "/stores/nope/get", url.Values{"key": {"a"}}, 404},
		{"range of an unknown store", "GET", "/stores/nope/range", nil, 404},
		{"all of an unknown store", "GET", "/stores/nope/all", nil, 404},
		{"windows of an unknown store", "GET", "/stores/nope/windows", url.Values{"key": {"a"}}, 404},
		{"owners of an unknown store", "GET", "/stores/nope/owners", url.Values{"key": {"a"}}, 404},
		{"unknown path", "GET", "/nope", nil, 404},
		{"unknown query", "GET", "/stores/counts/nope", nil, 404},
		{"store without query", "GET", "/stores/counts", nil, 404},
		{"deeper path", "GET", "/stores/counts/get/more", url.Values{"key": {"a"}}, 404},
		{"root", "GET", "/", nil, 404},

		{"POST get", "POST", "/stores/counts/get", url.Values{"key": {"k01"}}, 405},
		{"POST all", "POST", "/stores/counts/all", nil, 405},
		{"PUT windows", "PUT", "/stores/win/windows", url.Values{"key": {"w"}}, 405},
		{"DELETE metadata", "DELETE", "/metadata", nil, 405},
		{"POST stores", "POST", "/stores", nil, 405},
		{"POST unknown", "POST", "/nope", nil, 405},
	}
	for _, cs := range cases {
		for _, via := range c.nodes {
			r := do(t, cs.method, via.self, cs.path, cs.q)
			wantError(t, cs.name+" via "+via.self, r, cs.status)
			if cs.status == 405 && r.header.Get("Allow") != "GET" {
				t.Errorf("%s: Allow %q, want GET", cs.name, r.header.Get("Allow"))
			}
		}
	}
}

// What the owner answers to a forwarded query is passed on: its status,
// its Retry-After; an answer that is not JSON is a 502.
func TestForwardedErrorsPassThrough(t *testing.T) {
	c := newCluster(t)
	fillCounts(c)
	k := "k13"
	owner, other := c.activeOf("counts", strKey(k)), c.otherOf("counts", strKey(k))
	busy := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"error":"busy"}`))
	})
	owner.override.Store(&busy)
	r := get(t, other, "/stores/counts/get", url.Values{"key": {k}})
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") != "7" || !strings.Contains(string(r.body), "busy") {
		t.Errorf("a forwarded 503: %v, Retry-After %q", r, r.header.Get("Retry-After"))
	}
	garbage := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`not json`))
	})
	owner.override.Store(&garbage)
	r = get(t, other, "/stores/counts/get", url.Values{"key": {k}})
	wantError(t, "a forwarded answer that is not JSON", r, http.StatusBadGateway)
}

// ---- owners, stores, metadata ----

func TestOwners(t *testing.T) {
	c := newCluster(t)
	for _, sk := range []struct{ store, key, text string }{
		{"counts", "k01", "k01"}, {"counts", "k02", `"k02"`}, {"counts", "a/b&c", "a/b&c"},
		{"win", "w", "w"}, {"sess", "s", "s"}, {"win0", "zz", "zz"},
	} {
		task := c.taskOf(sk.store, strKey(sk.key))
		for _, via := range c.nodes {
			var res query.OwnersResult
			getOK(t, via, "/stores/"+sk.store+"/owners", url.Values{"key": {sk.text}}, &res)
			want := query.OwnersResult{Store: sk.store, Partition: task.Partition, Task: task.String(),
				Active: c.activeOf(sk.store, strKey(sk.key)).self, Standbys: []string{c.standbyOf(sk.store, strKey(sk.key)).self}}
			if jsonOf(t, res) != jsonOf(t, want) {
				t.Errorf("owners of %s %q via %s: %+v, want %+v", sk.store, sk.text, via.self, res, want)
			}
		}
	}
	for _, k := range idsKeys {
		var res query.OwnersResult
		getOK(t, c.nodes[2], "/stores/ids/owners", url.Values{"key": {fmt.Sprint(k)}}, &res)
		if res.Partition != query.Partition(i64(k), 4) || res.Active != c.activeOf("ids", i64(k)).self {
			t.Errorf("owners of ids %d: %+v", k, res)
		}
	}
	// With no standby the list is empty, not null.
	task := c.taskOf("counts", strKey("k01"))
	c.setOwners(task, c.nodes[0].self)
	r := get(t, c.nodes[1], "/stores/counts/owners", url.Values{"key": {"k01"}})
	if r.status != 200 || !bytes.Contains(r.body, []byte(`"standbys":[]`)) {
		t.Errorf("owners with no standby: %v", r)
	}
}

func TestStores(t *testing.T) {
	c := newCluster(t)
	type store struct {
		Name       string `json:"name"`
		Kind       string `json:"kind"`
		Partitions int32  `json:"partitions"`
	}
	var want []store
	for _, d := range storeDefs {
		want = append(want, store{d.name, d.kind.String(), d.n})
	}
	for _, via := range c.nodes {
		var got []store
		getOK(t, via, "/stores", nil, &got)
		if !slices.Equal(got, want) {
			t.Errorf("stores via %s: %+v, want %+v", via.self, got, want)
		}
	}
}

func TestMetadata(t *testing.T) {
	c := newCluster(t)
	c.mu.Lock()
	c.hosts = append(c.hosts, c.deadHost)
	c.mu.Unlock()
	c.nodes[1].setState("counts", topology.TaskID{Subtopology: 0, Partition: 1}, query.Restoring)

	hosts := slices.Clone(c.hosts)
	sort.Strings(hosts)
	for _, via := range c.nodes {
		var got []query.Instance
		getOK(t, via, "/metadata", nil, &got)
		if len(got) != len(hosts) {
			t.Fatalf("metadata via %s: %d instances, want %d: %+v", via.self, len(got), len(hosts), got)
		}
		for i, in := range got {
			if in.Host != hosts[i] {
				t.Errorf("metadata via %s: instance %d is %s, want %s (sorted by host)", via.self, i, in.Host, hosts[i])
			}
			if in.Host == c.deadHost {
				if in.Error == "" || in.Tasks == nil || len(in.Tasks) != 0 {
					t.Errorf("metadata via %s: the dead host: %+v, want an error and no tasks", via.self, in)
				}
				continue
			}
			n := c.node(in.Host)
			if in.Error != "" {
				t.Errorf("metadata via %s: %s has error %q", via.self, in.Host, in.Error)
			}
			if jsonOf(t, in.Tasks) != jsonOf(t, n.Tasks()) {
				t.Errorf("metadata via %s: tasks of %s:\n got %s\nwant %s", via.self, in.Host, jsonOf(t, in.Tasks), jsonOf(t, n.Tasks()))
			}
		}
	}
	// Each instance runs and keeps copies of tasks of every store.
	var got []query.Instance
	getOK(t, c.nodes[0], "/metadata", nil, &got)
	states := map[query.TaskState]int{}
	for _, in := range got {
		for _, ti := range in.Tasks {
			states[ti.State]++
			if len(ti.Stores) != 1 {
				t.Errorf("task %s of %s: stores %v", ti.Task, in.Host, ti.Stores)
			}
		}
	}
	total := 0
	for _, d := range storeDefs {
		total += int(d.n)
	}
	if states[query.Running] != total-1 || states[query.Restoring] != 1 || states[query.Standby] != total {
		t.Errorf("task states across the group: %v, want %d running, 1 restoring, %d standby", states, total-1, total)
	}

	// scope=local: this instance only.
	for _, via := range c.nodes {
		var got []query.Instance
		getOK(t, via, "/metadata", url.Values{"scope": {"local"}}, &got)
		if len(got) != 1 || got[0].Host != via.self || jsonOf(t, got[0].Tasks) != jsonOf(t, via.Tasks()) {
			t.Errorf("local metadata via %s: %+v", via.self, got)
		}
	}
}

func TestMetadataNoTasks(t *testing.T) {
	c := newCluster(t)
	n := c.nodes[2]
	n.mu.Lock()
	n.local = map[copyKey]*localCopy{}
	n.mu.Unlock()
	var got []query.Instance
	getOK(t, c.nodes[0], "/metadata", nil, &got)
	for _, in := range got {
		if in.Host == n.self && (in.Tasks == nil || len(in.Tasks) != 0) {
			t.Errorf("an instance with no tasks: %+v", in)
		}
	}
	r := get(t, n, "/metadata", url.Values{"scope": {"local"}})
	if !bytes.Contains(r.body, []byte(`"tasks":[]`)) {
		t.Errorf("an instance with no tasks: %s, want tasks []", r.body)
	}
}
