package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
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
	raw := os.Getenv(scaleNodeEnv)
	if raw == "" {
		t.Skip("the instance program of TestScale; runs only as its child process")
	}
	var cfg scaleNodeConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		t.Fatal(err)
	}
	// An orphan must not go on consuming from the shared cluster: the
	// parent holds the write end of stdin, which closes when it dies.
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		fmt.Fprintln(os.Stderr, "scale node: the test process is gone; exiting")
		os.Exit(3)
	}()
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
	name string
	cmd  *exec.Cmd
	// url is the page's address, as the instance printed it:
	// "http://host:port/".
	url string
	log *lockedBuffer // its standard output and error
	// exited is closed when the process has exited; err is then what
	// Wait returned.
	exited chan struct{}
	err    error
}

// scaleDashboardLine is the line run prints with the page's address.
var scaleDashboardLine = regexp.MustCompile(`^dashboard: (http://\S+/)$`)

// startScaleNode starts an instance as a process of its own and waits until
// it prints the page's address. The process is killed when the test ends,
// and its output shown if the test failed.
func startScaleNode(t *testing.T, name string, cfg scaleNodeConfig) *scaleNode {
	t.Helper()
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestScaleNodeProcess$")
	cmd.Env = append(os.Environ(), scaleNodeEnv+"="+string(raw))
	n := &scaleNode{name: name, cmd: cmd, log: &lockedBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = n.log
	// Kept open, never written: it ends when this process does.
	if _, err := cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			fmt.Fprintln(n.log, sc.Text())
			if m := scaleDashboardLine.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		n.err = cmd.Wait()
		close(n.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-n.exited
		if t.Failed() {
			t.Logf("output of %s (%v):\n%s", name, n.err, scaleTail(n.log.String(), 32<<10))
		}
	})
	select {
	case n.url = <-addr:
	case <-n.exited:
		t.Fatalf("%s exited before serving its page: %v\n%s", name, n.err, scaleTail(n.log.String(), 32<<10))
	case <-time.After(itest.Timeout()):
		t.Fatalf("%s did not print its page's address within %v", name, itest.Timeout())
	}
	return n
}

// kill stops the instance with SIGKILL: no commit, no leaving the group.
func (n *scaleNode) kill(t *testing.T) {
	t.Helper()
	if err := n.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-n.exited
}

// stop stops the instance with SIGTERM, a graceful close, and waits until
// it has exited, successfully.
func (n *scaleNode) stop(t *testing.T) {
	t.Helper()
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-n.exited:
		if n.err != nil {
			t.Fatalf("%s after SIGTERM: %v", n.name, n.err)
		}
	case <-time.After(itest.Timeout()):
		t.Fatalf("%s did not stop within %v of SIGTERM", n.name, itest.Timeout())
	}
}

// scaleTail returns the last max bytes of s, saying how much it left out.
func scaleTail(s string, max int) string {
	if len(s) <= max {
		return s
	}
	return fmt.Sprintf("[... %d bytes before]\n%s", len(s)-max, s[len(s)-max:])
}
