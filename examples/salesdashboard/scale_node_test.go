package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/riffle-streams/riffle/internal/itest"
)

// scaleNodeEnv carries an instance's configuration, as JSON, to
// TestScaleNodeProcess.
const scaleNodeEnv = "SALESDASHBOARD_SCALE_NODE"

// scaleNodeConfig configures one instance of the program in TestScale.
type scaleNodeConfig struct {
	Brokers  []string
	AppID    string
	StateDir string
}

// TestScaleNodeProcess is not a test of its own: it is the program TestScale
// runs as separate processes, three instances of one binary (this test
// binary). It runs the dashboard as main does, through run, with
// -brokers, -app-id, -state-dir, -http 127.0.0.1:0 and -generate=false, so
// it prints the page's address; it stops gracefully on SIGTERM, and dies
// with its parent (when its standard input, a pipe from the parent, ends).
func TestScaleNodeProcess(t *testing.T) {
	var cfg scaleNodeConfig
	if !itest.ChildConfig(t, scaleNodeEnv, &cfg) {
		t.Skip("the instance program of TestScale; runs only as its child process")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	generate := false
	o := options{
		brokers:  strings.Join(cfg.Brokers, ","),
		stateDir: cfg.StateDir,
		httpAddr: "127.0.0.1:0",
		appID:    cfg.AppID,
		generate: &generate,
		logLevel: slog.LevelInfo,
		// As TestFailover: the survivors notice a death within 6s
		// (Kafka's default, 45s, would make most of the test waiting).
		sessionTimeout: 6 * time.Second,
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: o.logLevel}))
	if err := run(ctx, o, os.Stdout, log); err != nil {
		t.Fatal(err)
	}
}

// scaleNode is a running instance of TestScaleNodeProcess.
type scaleNode struct {
	*itest.Child
	// url is the page's address, as the instance printed it:
	// "http://host:port/".
	url string
}

// scaleDashboardLine is the line run prints with the page's address.
var scaleDashboardLine = regexp.MustCompile(`^dashboard: (http://\S+/)$`)

// startScaleNode starts an instance as a process of its own and waits until
// it prints the page's address. The process is killed when the test ends,
// and its output shown if the test failed.
func startScaleNode(t *testing.T, name string, cfg scaleNodeConfig) *scaleNode {
	t.Helper()
	c, url := itest.StartChild(t, name, "TestScaleNodeProcess", scaleNodeEnv, cfg, scaleDashboardLine)
	return &scaleNode{Child: c, url: url}
}
