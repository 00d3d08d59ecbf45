package query_test

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/riffle-streams/riffle/internal/query"
)

// ---- every key's windows (AllWindows) ----

// wantWindow is a window (or session) the test put, as AllWindows is to
// list it.
type wantWindow struct {
	key        string
	start, end int64 // end -1: none
	value      any
}

func (w wantWindow) String() string {
	return fmt.Sprintf("%q[%d,%d]=%v", w.key, w.start-ms(t0), w.end-ms(t0), w.value)
}

// sortWindows puts windows in AllWindows' order: by at (start, or a
// session's end), then key bytes.
func sortWindows(ws []wantWindow, at func(wantWindow) int64) {
	sort.Slice(ws, func(i, j int) bool {
		if at(ws[i]) != at(ws[j]) {
			return at(ws[i]) < at(ws[j])
		}
		return bytes.Compare([]byte(ws[i].key), []byte(ws[j].key)) < 0
	})
}

func byStart(w wantWindow) int64 { return w.start }
func byEnd(w wantWindow) int64   { return w.end }

// pageWindows reads every page of every key's windows of store via n, limit
// at a time, and returns them in the order given, as wantWindows with
// values decoded as V.
func pageWindows[V any](t *testing.T, n *node, store string, q url.Values, limit int) []wantWindow {
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
	var out []wantWindow
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatalf("%s windows via %s: more than 1000 pages", store, n.self)
		}
		var page struct {
			Windows []struct {
				Key   json.RawMessage `json:"key"`
				Start time.Time       `json:"start"`
				End   *time.Time      `json:"end"`
				Value V               `json:"value"`
			} `json:"windows"`
			Next string `json:"next"`
		}
		getOK(t, n, "/stores/"+store+"/windows", q2, &page)
		if page.Windows == nil {
			t.Errorf("%s windows via %s: windows is null, want []", store, n.self)
		}
		if len(page.Windows) > pageMax {
			t.Fatalf("%s windows via %s: page of %d, limit %d", store, n.self, len(page.Windows), pageMax)
		}
		for _, w := range page.Windows {
			var key string
			if err := json.Unmarshal(w.Key, &key); err != nil {
				t.Fatalf("key %s: %v", w.Key, err)
			}
			if w.Start.Location() != time.UTC {
				t.Errorf("window start %v is not in UTC", w.Start)
			}
			ww := wantWindow{key: key, start: w.Start.UnixMilli(), end: -1, value: w.Value}
			if w.End != nil {
				ww.end = w.End.UnixMilli()
			}
			out = append(out, ww)
		}
		if page.Next == "" {
			return out
		}
		if len(page.Windows) < pageMax {
			t.Errorf("%s windows via %s: a short page (%d of %d) says there is a next one", store, n.self, len(page.Windows), pageMax)
		}
		q2.Set("after", page.Next)
	}
}

// sameWindows reports the first difference between got and want.
func sameWindows(got, want []wantWindow) (bool, string) {
	if len(got) != len(want) {
		return false, fmt.Sprintf("%d windows, want %d:\n got %v\nwant %v", len(got), len(want), got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			return false, fmt.Sprintf("window %d is %v, want %v:\n got %v\nwant %v", i, got[i], want[i], got, want)
		}
	}
	return true, ""
}

// winKeys are keys of "win": keys that are prefixes of others, the empty
// key, and ones that need escaping, so that byte order and cursors are
// put to the test.
var winKeys = []string{"", "a", "ab", "b", "w1", "w2", "w3", "w4", "w5", "w6", "w7", "é?#%", "a/b&c=d"}

// fillWin puts windows of 1-minute starts t0+j (j in 0..4) in win and
// win0 (in win0, only those of j < 2), key i missing some, and returns
// each store's windows in AllWindows' order.
func fillWin(c *cluster) (win, win0 []wantWindow) {
	for i, k := range winKeys {
		for j := 0; j < 5; j++ {
			if (i+j)%3 == 0 {
				continue
			}
			start := ms(t0.Add(time.Duration(j) * time.Minute))
			v := int64(100*i + j)
			c.putWindow("win", strKey(k), start, i64(v))
			win = append(win, wantWindow{k, start, start + 60_000, float64(v)})
			if j < 2 {
				c.putWindow("win0", strKey(k), start, i64(v))
				win0 = append(win0, wantWindow{k, start, -1, float64(v)})
			}
		}
	}
	sortWindows(win, byStart)
	sortWindows(win0, byStart)
	return win, win0
}

func TestAllWindowsAcrossInstances(t *testing.T) {
	c := newCluster(t)
	win, win0 := fillWin(c)
	// The keys live on every instance, so every page merges answers.
	owners := map[string]bool{}
	for _, k := range winKeys {
		owners[c.activeOf("win", strKey(k)).self] = true
	}
	if len(owners) < 2 {
		t.Fatalf("the keys of win live on %d hosts: the test proves little", len(owners))
	}
	for _, limit := range []int{1, 2, 3, 4, 7, len(win) - 1, len(win), len(win) + 1, 0, query.MaxPage} {
		for _, via := range c.nodes {
			got := pageWindows[float64](t, via, "win", nil, limit)
			if ok, why := sameWindows(got, win); !ok {
				t.Fatalf("win, limit %d, via %s: %s", limit, via.self, why)
			}
		}
	}
	// Without a window size, windows have no end.
	for _, via := range c.nodes {
		r := get(t, via, "/stores/win0/windows", nil)
		if r.status != http.StatusOK || bytes.Contains(r.body, []byte(`"end"`)) {
			t.Errorf("win0 windows via %s: %v, want windows with no end", via.self, r)
		}
	}
	for _, limit := range []int{1, 5, 0} {
		for _, via := range c.nodes {
			got := pageWindows[float64](t, via, "win0", nil, limit)
			if ok, why := sameWindows(got, win0); !ok {
				t.Errorf("win0, limit %d, via %s: %s", limit, via.self, why)
			}
		}
	}
	// A page is one request to each instance that runs tasks of the store
	// (each of the three runs one).
	before := totalHits(c)
	var page query.WindowsPage
	getOK(t, c.nodes[0], "/stores/win/windows", url.Values{"limit": {"3"}}, &page)
	if d := totalHits(c) - before; d != nHosts {
		t.Errorf("a page via %s: %d requests served, want %d (the query and one to each other instance)", c.nodes[0].self, d, nHosts)
	}
	if len(page.Windows) != 3 || page.Next == "" {
		t.Errorf("first page of 3: %+v", page)
	}
	for _, w := range page.Windows {
		if w.Raw != nil {
			t.Errorf("the answer shows a raw key: %+v", w)
		}
	}
	// The cursor works at every instance, not only the one that gave it.
	for _, via := range c.nodes {
		got := pageWindows[float64](t, via, "win", url.Values{"after": {page.Next}}, 5)
		if ok, why := sameWindows(got, win[3:]); !ok {
			t.Errorf("after the first page, via %s: %s", via.self, why)
		}
	}
}

// from and to are both in; a window starting at either bound is listed.
func TestAllWindowsBounds(t *testing.T) {
	c := newCluster(t)
	win, _ := fillWin(c)
	at := func(m int) int64 { return ms(t0.Add(time.Duration(m) * time.Minute)) }
	cases := []struct {
		from, to string
		lo, hi   int64
	}{
		{"", "", -1 << 62, 1 << 62},
		{fmt.Sprint(at(1)), fmt.Sprint(at(3)), at(1), at(3)},
		{fmt.Sprint(at(1) - 1), fmt.Sprint(at(1)), at(1) - 1, at(1)},
		{fmt.Sprint(at(1)), fmt.Sprint(at(1)), at(1), at(1)},
		{fmt.Sprint(at(1) + 1), fmt.Sprint(at(2) - 1), at(1) + 1, at(2) - 1},
		{t0.Add(2 * time.Minute).Format(time.RFC3339), "", at(2), 1 << 62},
		{"", t0.Add(time.Minute).Format(time.RFC3339), -1 << 62, at(1)},
		{t0.In(time.FixedZone("x", 2*3600)).Format(time.RFC3339), t0.Add(time.Minute).Format(time.RFC3339), at(0), at(1)},
		{t0.Add(time.Hour).Format(time.RFC3339), "", at(60), 1 << 62},
		{"", fmt.Sprint(at(0) - 1), -1 << 62, at(0) - 1},
	}
	for _, cs := range cases {
		var want []wantWindow
		for _, w := range win {
			if w.start >= cs.lo && w.start <= cs.hi {
				want = append(want, w)
			}
		}
		q := url.Values{}
		if cs.from != "" {
			q.Set("from", cs.from)
		}
		if cs.to != "" {
			q.Set("to", cs.to)
		}
		for _, limit := range []int{1, 3, 0} {
			for _, via := range c.nodes {
				got := pageWindows[float64](t, via, "win", q, limit)
				if ok, why := sameWindows(got, want); !ok {
					t.Errorf("win in [%s, %s], limit %d, via %s: %s", cs.from, cs.to, limit, via.self, why)
				}
			}
		}
	}
}

// Sessions come in order of end, then key; those that overlap [from, to]
// are listed, as for one key: a session that ends after to is among them,
// and a page may end with it.
func TestAllWindowsOfASessionStore(t *testing.T) {
	c := newCluster(t)
	base := ms(t0)
	var all []wantWindow
	put := func(k string, start, end int64) {
		v := fmt.Sprintf("%s@%d", k, start-base)
		c.putSession("sess", strKey(k), start, end, str(v))
		all = append(all, wantWindow{k, start, end, v})
	}
	keys := []string{"", "s1", "s2", "s3", "s4", "s5", "s6", "s10"}
	for i, k := range keys {
		put(k, base+int64(i), base+200-int64(i))               // ends differ
		put(k, base+1000, base+1500)                           // ends tie: key order
		put(k, base+5000+int64(100*i), base+5000+int64(100*i)) // one record
	}
	put("long", base+300, base+9000)
	sortWindows(all, byEnd)
	owners := map[string]bool{}
	for _, k := range keys {
		owners[c.activeOf("sess", strKey(k)).self] = true
	}
	if len(owners) < 2 {
		t.Fatalf("the keys of sess live on %d hosts: the test proves little", len(owners))
	}
	cases := []struct{ from, to int64 }{
		{-1, -1},
		{base + 150, base + 1200}, // "long" ends long after to
		{base + 200, base + 1000}, // the edges are in
		{base + 201, base + 299},  // between the first sessions and "long": none
		{base + 1500, base + 1500},
		{base + 5000, base + 5300},
		{base + 9000, base + 20000},
		{base + 9001, base + 20000},
		{base - 5000, base - 1},
	}
	for _, cs := range cases {
		q := url.Values{}
		var want []wantWindow
		for _, w := range all {
			if cs.from < 0 || w.end >= cs.from && w.start <= cs.to {
				want = append(want, w)
			}
		}
		if cs.from >= 0 {
			q.Set("from", fmt.Sprint(cs.from))
			q.Set("to", time.UnixMilli(cs.to).Format(time.RFC3339Nano))
		}
		for _, limit := range []int{1, 2, 5, 0} {
			for _, via := range c.nodes {
				got := pageWindows[string](t, via, "sess", q, limit)
				if ok, why := sameWindows(got, want); !ok {
					t.Errorf("sessions overlapping [%d, %d], limit %d, via %s: %s", cs.from-base, cs.to-base, limit, via.self, why)
				}
			}
		}
	}
}

func TestAllWindowsEmptyStore(t *testing.T) {
	c := newCluster(t)
	for _, store := range []string{"win", "sess"} {
		for _, via := range c.nodes {
			r := get(t, via, "/stores/"+store+"/windows", nil)
			if r.status != http.StatusOK || strings.TrimSpace(string(r.body)) != `{"windows":[]}` {
				t.Errorf("every window of an empty %s via %s: %v", store, via.self, r)
			}
		}
	}
}

func TestAllWindowsRestoringOrMoving(t *testing.T) {
	c := newCluster(t)
	win, _ := fillWin(c)
	k := "w3"
	task := c.taskOf("win", strKey(k))
	owner, standby := c.activeOf("win", strKey(k)), c.standbyOf("win", strKey(k))

	owner.setState("win", task, query.Restoring)
	for _, via := range c.nodes {
		msg := wantError(t, "every window with a restoring task via "+via.self, get(t, via, "/stores/win/windows", nil), http.StatusServiceUnavailable)
		if !strings.Contains(msg, "restoring") || !strings.Contains(msg, `"win"`) || !strings.Contains(msg, task.String()) {
			t.Errorf("restoring via %s: %q, want it to name the store and the task", via.self, msg)
		}
		// A stale query reads the restoring copy.
		got := pageWindows[float64](t, via, "win", url.Values{"stale": {"true"}}, 4)
		if ok, why := sameWindows(got, win); !ok {
			t.Errorf("stale, restoring, via %s: %s", via.self, why)
		}
	}
	owner.setState("win", task, query.Running)

	// The task moves: no instance runs it.
	c.setOwners(task, "", standby.self)
	owner.drop("win", task)
	for _, via := range c.nodes {
		wantError(t, "every window with a moving task via "+via.self, get(t, via, "/stores/win/windows", nil), http.StatusServiceUnavailable)
		got := pageWindows[float64](t, via, "win", url.Values{"stale": {"true"}}, 5)
		if ok, why := sameWindows(got, win); !ok {
			t.Errorf("stale, moving, via %s (the standby answers): %s", via.self, why)
		}
	}

	// The instance that runs it does not answer.
	c.setOwners(task, c.deadHost)
	for _, via := range c.nodes {
		wantError(t, "every window with an owner gone via "+via.self, get(t, via, "/stores/win/windows", nil), http.StatusServiceUnavailable)
	}
}

// A forwarded query (scope=local) reads the tasks named, here only, and
// shows the keys' bytes for the merge.
func TestAllWindowsForwarded(t *testing.T) {
	c := newCluster(t)
	fillWin(c)
	k := "w5"
	task := c.taskOf("win", strKey(k))
	owner, standby, other := c.activeOf("win", strKey(k)), c.standbyOf("win", strKey(k)), c.otherOf("win", strKey(k))
	q := url.Values{"scope": {"local"}, "tasks": {task.String()}}
	var page query.WindowsPage
	getOK(t, owner, "/stores/win/windows", q, &page)
	if len(page.Windows) == 0 || page.Next != "" {
		t.Fatalf("local windows of %s at its owner: %+v", task, page)
	}
	for _, w := range page.Windows {
		var key string
		json.Unmarshal(w.Key, &key)
		if c.taskOf("win", strKey(key)) != task || !bytes.Equal(w.Raw, strKey(key)) {
			t.Errorf("local windows of %s: key %q (raw %q) of task %s", task, key, w.Raw, c.taskOf("win", strKey(key)))
		}
	}
	for _, via := range []*node{standby, other} {
		before := totalHits(c)
		wantError(t, "local windows at "+via.self, get(t, via, "/stores/win/windows", q), http.StatusServiceUnavailable)
		if d := totalHits(c) - before; d != 1 {
			t.Errorf("local windows at %s: %d requests served, want 1", via.self, d)
		}
	}
	// A standby copy answers a forwarded stale query.
	q.Set("stale", "true")
	var stale query.WindowsPage
	getOK(t, standby, "/stores/win/windows", q, &stale)
	if len(stale.Windows) != len(page.Windows) {
		t.Errorf("local stale windows at the standby: %d, want %d", len(stale.Windows), len(page.Windows))
	}
	// A forwarded query's limit is what the sender asked for: one more
	// than its page.
	getOK(t, owner, "/stores/win/windows", url.Values{"scope": {"local"}, "tasks": {task.String()}, "limit": {"2"}}, &page)
	if len(page.Windows) != 2 {
		t.Errorf("local windows, limit 2: %d", len(page.Windows))
	}
}

func TestAllWindowsEngine(t *testing.T) {
	c := newCluster(t)
	ctx := t.Context()
	e := c.nodes[1].eng
	// More than a page, all at one start.
	for i := 0; i < query.MaxPage+5; i++ {
		c.putWindow("win", strKey(fmt.Sprintf("z%04d", i)), ms(t0), i64(1))
	}
	end := t0.Add(time.Hour)
	for _, limit := range []int{0, query.MaxPage, query.MaxPage + 1, 1 << 30} {
		page, err := e.AllWindows(ctx, "win", t0, end, "", limit, query.Options{})
		if err != nil || len(page.Windows) != query.MaxPage || page.Next == "" {
			t.Fatalf("AllWindows limit %d: %v", limit, err)
		}
		for _, w := range page.Windows {
			if w.Raw != nil {
				t.Fatalf("AllWindows limit %d: a window keeps its raw key", limit)
			}
		}
		rest, err := e.AllWindows(ctx, "win", t0, end, page.Next, limit, query.Options{})
		if err != nil || len(rest.Windows) != 5 || rest.Next != "" {
			t.Fatalf("AllWindows limit %d, second page: %d windows, next %q, %v", limit, len(rest.Windows), rest.Next, err)
		}
		if !sameJSON(t, rest.Windows[0].Key, `"z1000"`) {
			t.Errorf("second page starts with %s", rest.Windows[0].Key)
		}
	}
	status := func(what string, err error, want int, says string) {
		t.Helper()
		qe, ok := err.(*query.Error)
		if !ok || qe.Status != want || !strings.Contains(qe.Msg, says) {
			t.Errorf("%s: %v, want a %d saying %q", what, err, want, says)
		}
	}
	_, err := e.AllWindows(ctx, "nope", t0, end, "", 0, query.Options{})
	status("unknown store", err, 404, `"nope"`)
	_, err = e.AllWindows(ctx, "counts", t0, end, "", 0, query.Options{})
	status("key-value store", err, 400, `"counts" is a key-value store`)
	_, err = e.AllWindows(ctx, "win", t0, end, "", -1, query.Options{})
	status("negative limit", err, 400, "limit")
	_, err = e.AllWindows(ctx, "win", end, t0, "", 0, query.Options{})
	status("from after to", err, 400, "empty")
	_, err = e.AllWindows(ctx, "win", t0, end, "kYQ", 0, query.Options{})
	status("a cursor of Range", err, 400, "cursor")
}

func TestAllWindowsBadRequests(t *testing.T) {
	c := newCluster(t)
	fillWin(c)
	fillCounts(c)
	// A cursor of every key's windows is not one of Range, and the other
	// way round.
	var wpage query.WindowsPage
	getOK(t, c.nodes[0], "/stores/win/windows", url.Values{"limit": {"1"}}, &wpage)
	var rpage query.RangeResult
	getOK(t, c.nodes[0], "/stores/counts/all", url.Values{"limit": {"1"}}, &rpage)
	if wpage.Next == "" || rpage.Next == "" {
		t.Fatalf("no cursors: %q %q", wpage.Next, rpage.Next)
	}
	cases := []struct {
		name   string
		path   string
		q      url.Values
		status int
		says   string
	}{
		{"a key-value store", "/stores/counts/windows", nil, 400, `"counts" is a key-value store`},
		{"an unknown store", "/stores/nope/windows", nil, 404, `"nope"`},
		{"limit=0", "/stores/win/windows", url.Values{"limit": {"0"}}, 400, "limit"},
		{"limit=-1", "/stores/win/windows", url.Values{"limit": {"-1"}}, 400, "limit"},
		{"limit=x", "/stores/win/windows", url.Values{"limit": {"x"}}, 400, "limit"},
		{"limit=1.5", "/stores/win/windows", url.Values{"limit": {"1.5"}}, 400, "limit"},
		{"cursor !!!", "/stores/win/windows", url.Values{"after": {"!!!"}}, 400, "cursor"},
		{"cursor w", "/stores/win/windows", url.Values{"after": {"w"}}, 400, "cursor"},
		{"cursor too short", "/stores/win/windows", url.Values{"after": {"wAAAA"}}, 400, "cursor"},
		{"cursor of Range", "/stores/win/windows", url.Values{"after": {rpage.Next}}, 400, "cursor"},
		{"Range with a windows cursor", "/stores/counts/all", url.Values{"after": {wpage.Next}}, 400, "cursor"},
		{"bad from", "/stores/win/windows", url.Values{"from": {"yesterday"}}, 400, "RFC 3339"},
		{"bad to", "/stores/sess/windows", url.Values{"to": {"2024-13-01T00:00:00Z"}}, 400, "RFC 3339"},
		{"from after to", "/stores/win/windows", url.Values{"from": {"2000"}, "to": {"1000"}}, 400, "empty"},
		{"stale=maybe", "/stores/win/windows", url.Values{"stale": {"maybe"}}, 400, "stale"},
		{"a key and a limit", "/stores/win/windows", url.Values{"key": {"w1"}, "limit": {"3"}}, 400, "limit"},
		{"a key and a cursor", "/stores/win/windows", url.Values{"key": {"w1"}, "after": {wpage.Next}}, 400, "after"},
		{"two keys", "/stores/win/windows", url.Values{"key": {"a", "b"}}, 400, "key"},
	}
	for _, cs := range cases {
		for _, via := range c.nodes {
			msg := wantError(t, cs.name+" via "+via.self, get(t, via, cs.path, cs.q), cs.status)
			if !strings.Contains(msg, cs.says) {
				t.Errorf("%s via %s: %q, want it to say %q", cs.name, via.self, msg, cs.says)
			}
		}
	}
	// A window cursor past every window: an empty last page.
	last := binary.BigEndian.AppendUint64(nil, math.MaxInt64)
	for _, via := range c.nodes {
		var page query.WindowsPage
		getOK(t, via, "/stores/win/windows", url.Values{"after": {"w" + base64.RawURLEncoding.EncodeToString(last)}}, &page)
		if len(page.Windows) != 0 || page.Next != "" {
			t.Errorf("after the largest cursor via %s: %+v", via.self, page)
		}
	}
}
