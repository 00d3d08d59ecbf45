package riffle_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

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

	// Windows: each key's one hourly window holds its count.
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
		if code != http.StatusOK || len(got.Windows) != 1 || got.Windows[0].Value != want["k03"] || got.Windows[0].End.Sub(got.Windows[0].Start) != time.Hour {
			t.Errorf("windows of k03 through %s: %d %s", h, code, body)
		}
	}
	ws, err := riffle.Windows[string, int64](ctx, apps[2].App, "hourly", "k07", now.Add(-2*time.Hour), now)
	if err != nil || len(ws) != 1 || ws[0].Value != want["k07"] {
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
