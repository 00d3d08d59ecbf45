package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riffle-streams/riffle/internal/itest"
)

// lockedBuffer is a bytes.Buffer that run may write while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRun runs the program as go run does with no flags, on a free port:
// embedded broker, generator, app and page; it prints the page's address,
// the page shows live figures, and the program stops gracefully when its
// context ends.
func TestRun(t *testing.T) {
	var out lockedBuffer
	logs := itest.NewLogRecorder(slog.LevelInfo)
	logs.DumpOnFailure(t, "salesdashboard", slog.LevelWarn)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, options{httpAddr: "127.0.0.1:0", stateDir: t.TempDir(), gen: GeneratorConfig{Rate: 100, Seed: 1}}, &out, logs.Logger())
	}()
	addr := regexp.MustCompile(`(?m)^dashboard: (http://\S+/)$`)
	var page string
	itest.Eventually(t, 2*itest.Timeout(), "the page's address", func() (bool, string) {
		select {
		case err := <-done:
			t.Fatalf("run returned %v:\n%s", err, out.String())
		default:
		}
		m := addr.FindStringSubmatch(out.String())
		if m == nil {
			return false, out.String()
		}
		page = m[1]
		return true, ""
	})
	var first Dashboard
	itest.Eventually(t, 3*itest.Timeout(), "orders on the page", func() (bool, string) {
		d, err := tryDashboard(ctx, page+"api/dashboard")
		if err != nil {
			return false, err.Error()
		}
		first = d
		return d.Total.Orders > 0 && d.Instances == 1 && len(d.Trending) > 0, "no orders yet"
	})
	itest.Eventually(t, 3*itest.Timeout(), "the figures to change", func() (bool, string) {
		d, err := tryDashboard(ctx, page+"api/dashboard")
		if err != nil {
			return false, err.Error()
		}
		return d.Total.Orders > first.Total.Orders, "still the same figures"
	})
	resp, err := http.Get(page)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(strings.ToLower(string(body)), "<html") {
		t.Errorf("GET %s: %s\n%.200s", page, resp.Status, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(2 * itest.Timeout()):
		t.Fatal("run did not stop after its context ended")
	}
	if !strings.Contains(out.String(), "embedded broker") {
		t.Errorf("the output does not say the broker is embedded:\n%s", out.String())
	}
}

func tryDashboard(ctx context.Context, url string) (Dashboard, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return Dashboard{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Dashboard{}, err
	}
	defer resp.Body.Close()
	var d Dashboard
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return d, &httpError{status: resp.Status, body: string(b)}
	}
	err = json.NewDecoder(resp.Body).Decode(&d)
	return d, err
}

type httpError struct{ status, body string }

func (e *httpError) Error() string { return e.status + ": " + e.body }

func TestAdvertised(t *testing.T) {
	for _, c := range []struct{ adv, listen, want string }{
		{"", "[::]:8080", "localhost:8080"},
		{"", "0.0.0.0:8080", "localhost:8080"},
		{"", "127.0.0.1:9000", "127.0.0.1:9000"},
		{"shop-1:8080", "[::]:8080", "shop-1:8080"},
	} {
		l, err := net.ResolveTCPAddr("tcp", c.listen)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := advertised(c.adv, l); err != nil || got != c.want {
			t.Errorf("advertised(%q, %s) = %q, %v; want %q", c.adv, c.listen, got, err, c.want)
		}
	}
	if _, err := advertised("no-port", nil); err == nil {
		t.Error("advertised took an address with no port")
	}
}
