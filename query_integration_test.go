package riffle_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/riffle-streams/riffle"
	"github.com/riffle-streams/riffle/internal/itest"
	"github.com/riffle-streams/riffle/stream"
	"github.com/riffle-streams/riffle/topology"
)

// queryTopology counts each key's records into "counts" and into hourly
// windows in "hourly".
func queryTopology(t *testing.T, in string) *topology.Topology {
	t.Helper()
	b := topology.NewBuilder()
	g := stream.From[string, string](b, in).GroupByKey()
	g.Count(stream.Named("counts"))
	g.WindowedBy(stream.Tumbling(time.Hour, time.Hour)).Count(stream.Named("hourly"))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// httpGet gets the query API's path from host, and decodes the JSON
// answer into out if it is 200.
func httpGet(t *testing.T, host, path string, q url.Values, out any) (int, http.Header, string) {
	t.Helper()
	u := "http://" + host + "/riffle/v1" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK && out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("GET %s: %v in %s", u, err, body)
		}
	}
	return resp.StatusCode, resp.Header, string(body)
}

type keyAnswer struct {
	Key   string `json:"key"`
	Value int64  `json:"value"`
	Found bool   `json:"found"`
	Host  string `json:"host"`
	Task  string `json:"task"`
	State string `json:"state"`
}

// TestQueriesAcrossInstances: three instances with a standby each, serving
// queries. Every key is answered through every instance's HTTP API, by the
// instance that runs its task; ranges and pages gather all instances;
// windows are fetched; bad queries get 400 and 404; metadata shows each
// instance's running and standby tasks. Then an instance stops and the
// others answer for its keys, exactly, within a measured time.
func TestQueriesAcrossInstances(t *testing.T) {
	run := fmt.Sprint(time.Now().UnixNano())
	appID, in := "iq-"+run, "iq-in-"+run
	k := itest.Setup(t, itest.Spec{
		Partitions: 6,
		Topics:     []string{in},
		Delete:     []string{appID + "-counts-changelog", appID + "-hourly-changelog"},
		Groups:     []string{appID},
	})
	topo := queryTopology(t, in)
	var apps []*itest.Running
	for i := range 3 {
		r, _ := startApp(t, k, fmt.Sprint("app", i), appID, topo,
			riffle.ServeQueries("127.0.0.1:0"), riffle.StandbyReplicas(1))
		apps = append(apps, r)
	}
	want := map[string]int64{}
	var kvs []string
	for i := range 30 {
		key := fmt.Sprintf("k%02d", i)
		want[key] = int64(i%4 + 1)
		for range i%4 + 1 {
			kvs = append(kvs, key+"=x")
		}
	}
	k.ProduceKV(t, in, kvs...)
	for _, a := range apps {
		a.WaitState(t, itest.Timeout(), riffle.Running)
	}
	hosts := func() []string {
		var hs []string
		for _, a := range apps {
			hs = append(hs, a.App.QueryAddress())
		}
		return hs
	}()

	// Every key through every instance: right value, from the owner.
	ctx := context.Background()
	owners := map[string]int{}
	itest.Eventually(t, itest.Timeout(), "every key answered through every instance", func() (bool, string) {
		clear(owners)
		for _, h := range hosts {
			for key, n := range want {
				var got keyAnswer
				code, _, body := httpGet(t, h, "/stores/counts/get", url.Values{"key": {key}}, &got)
				if code != http.StatusOK || !got.Found || got.Value != n || got.Key != key {
					return false, fmt.Sprintf("%s: %s: %d %s (want %d)", h, key, code, body, n)
				}
				active, _, err := apps[0].App.KeyOwners("counts", key)
				if err != nil || got.Host != active || got.State != "RUNNING" {
					return false, fmt.Sprintf("%s answered by %s, owners say %s (%v)", key, got.Host, active, err)
				}
				owners[got.Host]++
			}
		}
		// New instances take tasks over once their warm-up copies have
		// caught up: wait for the spread.
		return len(owners) == 3, fmt.Sprintf("keys owned by %v", owners)
	})
	t.Logf("checked: %d keys through each of 3 instances, answered by their owners %v", len(want), owners)

	// The Go methods do the same.
	for key, n := range want {
		got, ok, err := riffle.Get[string, int64](ctx, apps[1].App, "counts", key)
		if err != nil || !ok || got != n {
			t.Fatalf("Get(%s) = %d, %v, %v; want %d", key, got, ok, err, n)
		}
	}
	if _, ok, err := riffle.Get[string, int64](ctx, apps[1].App, "counts", "absent"); ok || err != nil {
		t.Errorf("Get(absent) = %v, %v", ok, err)
	}

	// All entries, a page of 7 at a time, through one instance.
	var keys []string
	after := ""
	for pages := 0; ; pages++ {
		var page struct {
			Entries []struct {
				Key   string `json:"key"`
				Value int64  `json:"value"`
			} `json:"entries"`
			Next string `json:"next"`
		}
		q := url.Values{"limit": {"7"}}
		if after != "" {
			q.Set("after", after)
		}
		if code, _, body := httpGet(t, hosts[2], "/stores/counts/all", q, &page); code != http.StatusOK {
			t.Fatalf("all: %d %s", code, body)
		}
		for _, e := range page.Entries {
			if e.Value != want[e.Key] {
				t.Errorf("all: %s=%d, want %d", e.Key, e.Value, want[e.Key])
			}
			keys = append(keys, e.Key)
		}
		if page.Next == "" {
			break
		}
		if pages > 10 {
			t.Fatal("all: more than 10 pages")
		}
		after = page.Next
	}
	if len(keys) != len(want) || !slices.IsSorted(keys) {
		t.Errorf("all: %d keys %v, want %d in order", len(keys), keys, len(want))
	}
	from, to := "k05", "k10"
	entries, next, err := riffle.Range[string, int64](ctx, apps[0].App, "counts", &from, &to, "", 0)
	if err != nil || next != "" || len(entries) != 5 || entries[0].Key != "k05" || entries[4].Key != "k09" || entries[4].Value != want["k09"] {
		t.Errorf("range [k05, k10): %v, %q, %v", entries, next, err)
	}

	// Windows: each key's hourly windows hold its count (in one window,
	// or two if the records were produced across the turn of an hour).
	now := time.Now()
	for _, h := range hosts {
		var got struct {
			Windows []struct {
				Start, End time.Time
				Value      int64
			} `json:"windows"`
		}
		q := url.Values{"key": {"k03"}, "from": {now.Add(-2 * time.Hour).Format(time.RFC3339)}, "to": {now.Format(time.RFC3339)}}
		code, _, body := httpGet(t, h, "/stores/hourly/windows", q, &got)
		sum := int64(0)
		for _, w := range got.Windows {
			sum += w.Value
			if w.End.Sub(w.Start) != time.Hour {
				sum = -1000
			}
		}
		if code != http.StatusOK || len(got.Windows) == 0 || len(got.Windows) > 2 || sum != want["k03"] {
			t.Errorf("windows of k03 through %s: %d %s", h, code, body)
		}
	}
	ws, err := riffle.Windows[string, int64](ctx, apps[2].App, "hourly", "k07", now.Add(-2*time.Hour), now)
	sum := int64(0)
	for _, w := range ws {
		sum += w.Value
	}
	if err != nil || len(ws) == 0 || len(ws) > 2 || sum != want["k07"] {
		t.Errorf("Windows(k07) = %v, %v", ws, err)
	}

	// Bad queries.
	for _, c := range []struct {
		path string
		q    url.Values
		code int
		says string
	}{
		{"/stores/nope/get", url.Values{"key": {"a"}}, 404, "no queryable store"},
		{"/stores/counts/get", nil, 400, "key"},
		{"/stores/counts/get", url.Values{"key": {"a"}, "stale": {"maybe"}}, 400, "stale"},
		{"/stores/counts/all", url.Values{"limit": {"-1"}}, 400, "limit"},
		{"/stores/counts/all", url.Values{"after": {"!!"}}, 400, "cursor"},
		{"/stores/counts/windows", url.Values{"key": {"a"}}, 400, "no windows"},
		{"/stores/hourly/get", url.Values{"key": {"a"}}, 400, "windows"},
		{"/stores/hourly/windows", url.Values{"key": {"a"}, "from": {"yesterday"}}, 400, "RFC 3339"},
		{"/nothing", nil, 404, "no such query"},
	} {
		code, _, body := httpGet(t, hosts[0], c.path, c.q, nil)
		if code != c.code || !strings.Contains(body, c.says) || !strings.Contains(body, `"error"`) {
			t.Errorf("GET %s?%s: %d %s, want %d saying %q", c.path, c.q.Encode(), code, body, c.code, c.says)
		}
	}

	// Metadata: each instance runs two tasks and keeps standbys of two.
	itest.Eventually(t, itest.Timeout(), "every instance to run 2 tasks and keep 2 standbys", func() (bool, string) {
		var md []riffle.InstanceMetadata
		if code, _, body := httpGet(t, hosts[1], "/metadata", nil, &md); code != http.StatusOK {
			return false, body
		}
		if len(md) != 3 {
			return false, fmt.Sprintf("%d instances: %+v", len(md), md)
		}
		for _, inst := range md {
			states := map[string]int{}
			for _, task := range inst.Tasks {
				states[string(task.State)]++
			}
			if states["RUNNING"] != 2 || states["STANDBY"] != 2 {
				return false, fmt.Sprintf("%s: %v", inst.Host, states)
			}
		}
		return true, ""
	})

	// One instance stops; the other two answer for all keys.
	gone := apps[2]
	goneHost := gone.App.QueryAddress()
	start := time.Now()
	if err := gone.Stop(itest.Timeout()); err != nil {
		t.Fatal(err)
	}
	took := itest.Eventually(t, itest.Timeout(), "the survivors to answer every key", func() (bool, string) {
		for _, h := range hosts[:2] {
			for key, n := range want {
				var got keyAnswer
				code, _, body := httpGet(t, h, "/stores/counts/get", url.Values{"key": {key}}, &got)
				if code != http.StatusOK || got.Value != n || got.Host == goneHost {
					return false, fmt.Sprintf("%s: %s: %d %s", h, key, code, body)
				}
			}
		}
		return true, ""
	})
	t.Logf("measured: after a graceful stop the survivors answered every key exactly within %v (stop took %v)", took, time.Since(start)-took)
}

// blockingRestore holds restores of a store in RestoreBatch until let go.
type blockingRestore struct {
	itest.RestoreRecorder
	once    sync.Once
	blocked chan struct{}
	release chan struct{}
}

func (b *blockingRestore) RestoreBatch(task, store string, last int64, n int) {
	b.RestoreRecorder.RestoreBatch(task, store, last, n)
	b.once.Do(func() { close(b.blocked) })
	<-b.release
}

// TestQueryWhileRestoring: an instance with an empty state directory
// restores a store from its changelog; meanwhile a query for it gets 503
// with Retry-After (or, with stale=true, the partial store's answer), and
// once it is restored, the exact value.
func TestQueryWhileRestoring(t *testing.T) {
	run := fmt.Sprint(time.Now().UnixNano())
	appID, in := "iqr-"+run, "iqr-in-"+run
	k := itest.Setup(t, itest.Spec{
		Partitions: 1,
		Topics:     []string{in},
		Delete:     []string{appID + "-counts-changelog", appID + "-hourly-changelog"},
		Groups:     []string{appID},
	})
	topo := queryTopology(t, in)
	var kvs []string
	for i := range 500 {
		kvs = append(kvs, fmt.Sprintf("k%03d=x", i%50))
	}
	k.ProduceKV(t, in, kvs...)
	first, _ := startApp(t, k, "first", appID, topo)
	k.WaitCaughtUp(t, appID, in)
	if err := first.Stop(itest.Timeout()); err != nil {
		t.Fatal(err)
	}

	br := &blockingRestore{blocked: make(chan struct{}), release: make(chan struct{})}
	released := false
	defer func() {
		if !released {
			close(br.release)
		}
	}()
	second, _ := startApp(t, k, "second", appID, topo, riffle.ServeQueries("127.0.0.1:0"), riffle.OnRestore(br))
	select {
	case <-br.blocked:
	case <-time.After(itest.Timeout()):
		t.Fatal("no restore began")
	}
	host := second.App.QueryAddress()
	code, hdr, body := httpGet(t, host, "/stores/counts/get", url.Values{"key": {"k001"}}, nil)
	if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" || !strings.Contains(body, "restoring") {
		t.Errorf("while restoring: %d (Retry-After %q) %s; want 503 with Retry-After", code, hdr.Get("Retry-After"), body)
	}
	var stale keyAnswer
	code, _, body = httpGet(t, host, "/stores/counts/get", url.Values{"key": {"k001"}, "stale": {"true"}}, &stale)
	if code != http.StatusOK || stale.State != "RESTORING" {
		t.Errorf("stale read while restoring: %d %s", code, body)
	}
	if second.App.State() != riffle.Rebalancing {
		t.Errorf("state while restoring: %v", second.App.State())
	}
	close(br.release)
	released = true
	second.WaitState(t, itest.Timeout(), riffle.Running)
	itest.Eventually(t, itest.Timeout(), "the restored count", func() (bool, string) {
		var got keyAnswer
		code, _, body := httpGet(t, host, "/stores/counts/get", url.Values{"key": {"k001"}}, &got)
		return code == http.StatusOK && got.Value == 10 && got.State == "RUNNING", body
	})
}

// allWindowsTopology counts each key's records into one-minute windows in
// "minutely" and into sessions of 10s of inactivity in "sessions"; an
// hour's grace, so no record of the test is late.
func allWindowsTopology(t *testing.T, in string) *topology.Topology {
	t.Helper()
	b := topology.NewBuilder()
	g := stream.From[string, string](b, in).GroupByKey()
	g.WindowedBy(stream.Tumbling(time.Minute, time.Hour)).Count(stream.Named("minutely"))
	g.SessionWindowedBy(stream.Sessions(10*time.Second, time.Hour)).Count(stream.Named("sessions"))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// listedWindow is a window or session as the test expects it listed.
type listedWindow struct {
	Key        string
	Start, End time.Time
	Count      int64
}

func (w listedWindow) String() string {
	return fmt.Sprintf("%s[%s,%s]=%d", w.Key, w.Start.Format("15:04:05"), w.End.Format("15:04:05"), w.Count)
}

func sameListed(got, want []listedWindow) (bool, string) {
	if len(got) != len(want) {
		return false, fmt.Sprintf("%d windows, want %d:\n got %v\nwant %v", len(got), len(want), got, want)
	}
	for i := range got {
		if got[i].Key != want[i].Key || !got[i].Start.Equal(want[i].Start) || !got[i].End.Equal(want[i].End) || got[i].Count != want[i].Count {
			return false, fmt.Sprintf("window %d is %v, want %v:\n got %v\nwant %v", i, got[i], want[i], got, want)
		}
	}
	return true, ""
}

// listWindowsHTTP pages through every key's windows of store at host,
// limit at a time; ok is false, with the answer, if a page is not 200.
func listWindowsHTTP(t *testing.T, host, store string, q url.Values, limit int) (out []listedWindow, ok bool, why string) {
	t.Helper()
	q2 := url.Values{"limit": {fmt.Sprint(limit)}}
	for k, v := range q {
		q2[k] = v
	}
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatalf("%s windows at %s: more than 1000 pages", store, host)
		}
		var page struct {
			Windows []struct {
				Key   string    `json:"key"`
				Start time.Time `json:"start"`
				End   time.Time `json:"end"`
				Value int64     `json:"value"`
			} `json:"windows"`
			Next string `json:"next"`
		}
		code, _, body := httpGet(t, host, "/stores/"+store+"/windows", q2, &page)
		if code != http.StatusOK {
			return nil, false, fmt.Sprintf("%s: %d %s", host, code, body)
		}
		if len(page.Windows) > limit {
			t.Fatalf("%s windows at %s: a page of %d, limit %d", store, host, len(page.Windows), limit)
		}
		for _, w := range page.Windows {
			out = append(out, listedWindow{w.Key, w.Start, w.End, w.Value})
		}
		if page.Next == "" {
			return out, true, ""
		}
		q2.Set("after", page.Next)
	}
}

// listWindowsGo pages through every key's windows with riffle.AllWindows.
func listWindowsGo(ctx context.Context, app *riffle.App, store string, from, to time.Time, limit int) ([]listedWindow, error) {
	var out []listedWindow
	after := ""
	for {
		ws, next, err := riffle.AllWindows[string, int64](ctx, app, store, from, to, after, limit)
		if err != nil {
			return nil, err
		}
		if len(ws) > limit {
			return nil, fmt.Errorf("a page of %d, limit %d", len(ws), limit)
		}
		for _, w := range ws {
			out = append(out, listedWindow{w.Key, w.Start, w.End, w.Value})
		}
		if next == "" {
			return out, nil
		}
		after = next
	}
}

// TestAllWindowsAcrossInstances: two instances count records into minute
// windows and sessions; every key's windows, and sessions, listed through
// each instance's HTTP API and through riffle.AllWindows, a page at a
// time, are exactly those the records make, in order of start (sessions:
// end), then key; a time range gives those in it.
func TestAllWindowsAcrossInstances(t *testing.T) {
	run := fmt.Sprint(time.Now().UnixNano())
	appID, in := "iqw-"+run, "iqw-in-"+run
	k := itest.Setup(t, itest.Spec{
		Partitions: 4,
		Topics:     []string{in},
		Delete:     []string{appID + "-minutely-changelog", appID + "-sessions-changelog"},
		Groups:     []string{appID},
	})
	topo := allWindowsTopology(t, in)
	var apps []*itest.Running
	for i := range 2 {
		r, _ := startApp(t, k, fmt.Sprint("app", i), appID, topo, riffle.ServeQueries("127.0.0.1:0"))
		apps = append(apps, r)
	}

	// Records of 24 keys over 8 minutes, recent enough for a real
	// broker's retention: a key's records 6s apart, but for a pause of
	// 26s after the second, so that most keys' records share windows and
	// sessions; each key's times, for the expected sessions.
	base := time.Now().Add(-30 * time.Minute).Truncate(time.Minute).UTC()
	times := map[string][]time.Time{}
	var recs []*kgo.Record
	for i := range 24 {
		key := fmt.Sprintf("k%02d", i)
		for r := range 1 + i%4 {
			ts := base.Add(time.Duration((i*50)%420+r*6+(r/2)*20) * time.Second)
			times[key] = append(times[key], ts)
			recs = append(recs, &kgo.Record{Topic: in, Key: []byte(key), Value: []byte("x"), Timestamp: ts})
		}
	}
	prod, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	pctx, cancel := context.WithTimeout(context.Background(), itest.Timeout())
	defer cancel()
	if err := prod.ProduceSync(pctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	// What the records make: a window per key and minute; per key, a
	// session per run of times no more than 10s apart.
	var minutely, sessions []listedWindow
	perWindow := map[listedWindow]int64{}
	for key, ts := range times {
		for _, at := range ts {
			start := at.Truncate(time.Minute)
			perWindow[listedWindow{Key: key, Start: start, End: start.Add(time.Minute)}]++
		}
		sorted := slices.SortedFunc(slices.Values(ts), time.Time.Compare)
		cur := listedWindow{Key: key, Start: sorted[0], End: sorted[0], Count: 1}
		for _, at := range sorted[1:] {
			if at.Sub(cur.End) <= 10*time.Second {
				cur.End, cur.Count = at, cur.Count+1
				continue
			}
			sessions = append(sessions, cur)
			cur = listedWindow{Key: key, Start: at, End: at, Count: 1}
		}
		sessions = append(sessions, cur)
	}
	for w, n := range perWindow {
		w.Count = n
		minutely = append(minutely, w)
	}
	order := func(at func(listedWindow) time.Time) func(a, b listedWindow) int {
		return func(a, b listedWindow) int {
			if c := at(a).Compare(at(b)); c != 0 {
				return c
			}
			return strings.Compare(a.Key, b.Key)
		}
	}
	slices.SortFunc(minutely, order(func(w listedWindow) time.Time { return w.Start }))
	slices.SortFunc(sessions, order(func(w listedWindow) time.Time { return w.End }))
	if len(sessions) == len(recs) || len(minutely) == len(recs) {
		t.Fatalf("the records make %d windows and %d sessions of %d records: the test proves little", len(minutely), len(sessions), len(recs))
	}

	// Both instances run tasks, so each listing merges the two.
	itest.Eventually(t, itest.Timeout(), "both instances to run tasks", func() (bool, string) {
		md, err := apps[0].App.Metadata(context.Background())
		if err != nil {
			return false, err.Error()
		}
		running := map[string]int{}
		for _, inst := range md {
			for _, task := range inst.Tasks {
				if task.State == "RUNNING" {
					running[inst.Host]++
				}
			}
		}
		return len(md) == 2 && len(running) == 2 && running[md[0].Host]+running[md[1].Host] == 4, fmt.Sprintf("running tasks: %v", running)
	})
	owners := map[string]bool{}
	for key := range times {
		active, _, err := apps[0].App.KeyOwners("minutely", key)
		if err != nil {
			t.Fatal(err)
		}
		owners[active] = true
	}
	if len(owners) != 2 {
		t.Fatalf("the keys live on %d instances, want 2: %v", len(owners), owners)
	}

	hosts := []string{apps[0].App.QueryAddress(), apps[1].App.QueryAddress()}
	ctx := context.Background()
	for _, c := range []struct {
		store string
		want  []listedWindow
	}{{"minutely", minutely}, {"sessions", sessions}} {
		itest.Eventually(t, itest.Timeout(), "every "+c.store+" window listed through every instance", func() (bool, string) {
			for _, h := range hosts {
				for _, limit := range []int{5, 1000} {
					got, ok, why := listWindowsHTTP(t, h, c.store, nil, limit)
					if !ok {
						return false, why
					}
					if ok, why := sameListed(got, c.want); !ok {
						return false, fmt.Sprintf("%s at %s, limit %d: %s", c.store, h, limit, why)
					}
				}
			}
			for _, a := range apps {
				got, err := listWindowsGo(ctx, a.App, c.store, time.UnixMilli(0), base.Add(time.Hour), 7)
				if err != nil {
					return false, err.Error()
				}
				if ok, why := sameListed(got, c.want); !ok {
					return false, fmt.Sprintf("AllWindows of %s through %s: %s", c.store, a.Name, why)
				}
			}
			return true, ""
		})
		t.Logf("checked: %d %s windows listed through each of 2 instances, by HTTP and by AllWindows", len(c.want), c.store)
	}

	// A time range: windows that start, sessions that overlap, in [from, to].
	from, to := base.Add(2*time.Minute), base.Add(4*time.Minute)
	var wantW, wantS []listedWindow
	for _, w := range minutely {
		if !w.Start.Before(from) && !w.Start.After(to) {
			wantW = append(wantW, w)
		}
	}
	for _, s := range sessions {
		if !s.End.Before(from) && !s.Start.After(to) {
			wantS = append(wantS, s)
		}
	}
	q := url.Values{"from": {from.Format(time.RFC3339)}, "to": {fmt.Sprint(to.UnixMilli())}}
	for _, c := range []struct {
		store     string
		want, all []listedWindow
	}{{"minutely", wantW, minutely}, {"sessions", wantS, sessions}} {
		if len(c.want) == 0 || len(c.want) == len(c.all) {
			t.Fatalf("%s in [%v, %v]: %d windows expected: the test proves little", c.store, from, to, len(c.want))
		}
		// Eventually: a rebalance may still make a page answer 503.
		itest.Eventually(t, itest.Timeout(), c.store+" in a time range", func() (bool, string) {
			for _, h := range hosts {
				got, ok, why := listWindowsHTTP(t, h, c.store, q, 3)
				if !ok {
					return false, why
				}
				if ok, why := sameListed(got, c.want); !ok {
					return false, fmt.Sprintf("%s in [%v, %v] at %s: %s", c.store, from, to, h, why)
				}
			}
			got, err := listWindowsGo(ctx, apps[1].App, c.store, from, to, 4)
			if err != nil {
				return false, err.Error()
			}
			if ok, why := sameListed(got, c.want); !ok {
				return false, fmt.Sprintf("AllWindows of %s in [%v, %v]: %s", c.store, from, to, why)
			}
			return true, ""
		})
	}

	// Bad queries.
	for _, c := range []struct {
		path string
		q    url.Values
		code int
		says string
	}{
		{"/stores/nope/windows", nil, 404, "no queryable store"},
		{"/stores/minutely/windows", url.Values{"after": {"!!"}}, 400, "cursor"},
		{"/stores/minutely/windows", url.Values{"limit": {"0"}}, 400, "limit"},
		{"/stores/sessions/windows", url.Values{"to": {"tomorrow"}}, 400, "RFC 3339"},
	} {
		code, _, body := httpGet(t, hosts[0], c.path, c.q, nil)
		if code != c.code || !strings.Contains(body, c.says) {
			t.Errorf("GET %s?%s: %d %s, want %d saying %q", c.path, c.q.Encode(), code, body, c.code, c.says)
		}
	}
	_, _, err = riffle.AllWindows[string, int64](ctx, apps[0].App, "nope", base, base, "", 0)
	var qe *riffle.QueryError
	if !errors.As(err, &qe) || qe.Status != http.StatusNotFound {
		t.Errorf("AllWindows of an unknown store: %v, want a QueryError 404", err)
	}
}

// ExampleAllWindows counts page views per minute on the embedded broker
// and lists every page's windows, as any instance could, whichever
// instances run the pages' tasks.
func ExampleAllWindows() {
	ctx := context.Background()
	broker, err := riffle.StartEmbeddedBroker()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer broker.Close()
	if err := broker.CreateTopics(ctx, 2, "views"); err != nil {
		fmt.Println(err)
		return
	}

	b := topology.NewBuilder()
	stream.From[string, string](b, "views").GroupByKey().
		WindowedBy(stream.Tumbling(time.Minute, time.Hour)).Count(stream.Named("views-per-minute"))
	topo, err := b.Build()
	if err != nil {
		fmt.Println(err)
		return
	}
	dir, _ := os.MkdirTemp("", "riffle-example")
	defer os.RemoveAll(dir)
	app, err := riffle.New(topo,
		riffle.ApplicationID("views-per-minute"),
		riffle.BootstrapServers(broker.Addrs()...),
		riffle.StateDir(dir),
		riffle.ServeQueries("127.0.0.1:0"), // GET /riffle/v1/stores/views-per-minute/windows?from=...&to=...
		riffle.Logger(slog.New(slog.DiscardHandler)))
	if err != nil {
		fmt.Println(err)
		return
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- app.Run(runCtx) }()
	defer func() { stop(); <-done }()

	cl, err := kgo.NewClient(kgo.SeedBrokers(broker.Addrs()...))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cl.Close()
	noon := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, v := range []struct {
		page string
		at   time.Duration
	}{{"/home", 10 * time.Second}, {"/pricing", 30 * time.Second}, {"/home", 40 * time.Second}, {"/home", 65 * time.Second}} {
		cl.Produce(ctx, &kgo.Record{Topic: "views", Key: []byte(v.page), Value: []byte("view"), Timestamp: noon.Add(v.at)}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		fmt.Println(err)
		return
	}

	// list reads every window that starts from noon to 12:59, a page of up
	// to 100 at a time.
	list := func() ([]riffle.KeyWindow[string, int64], error) {
		var all []riffle.KeyWindow[string, int64]
		after := ""
		for {
			page, next, err := riffle.AllWindows[string, int64](ctx, app, "views-per-minute", noon, noon.Add(59*time.Minute), after, 100)
			if err != nil {
				return nil, err
			}
			all = append(all, page...)
			if next == "" {
				return all, nil
			}
			after = next
		}
	}
	// A query fails with 503 until the store is ready; wait until the
	// four views are counted.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for {
		windows, err := list()
		var qe *riffle.QueryError
		if err != nil && !errors.As(err, &qe) {
			fmt.Println(err)
			return
		}
		var total int64
		for _, w := range windows {
			total += w.Value
		}
		if total == 4 {
			for _, w := range windows {
				fmt.Println(w.Start.Format("15:04"), "to", w.End.Format("15:04"), w.Key, w.Value)
			}
			return
		}
		select {
		case <-tick.C:
		case <-deadline:
			fmt.Println("not all views counted within 30s:", total, err)
			return
		}
	}
	// Output:
	// 12:00 to 12:01 /home 2
	// 12:00 to 12:01 /pricing 1
	// 12:01 to 12:02 /home 1
}
