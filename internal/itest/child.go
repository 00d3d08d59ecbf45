package itest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Child is an instance of a program run as a process of its own: the test
// binary itself, running one test function that is the program (see
// StartChild and ChildConfig). Multi-process tests kill it or stop it.
type Child struct {
	name string
	cmd  *exec.Cmd
	log  lockedBuffer // its standard output and error
	// exited is closed when the process has exited; err is then what
	// Wait returned.
	exited chan struct{}
	err    error
}

// StartChild runs this test binary's test named test (a function that
// reads its configuration with ChildConfig) as a process of its own, with
// cfg as JSON in the environment variable env, and waits until a line of
// its standard output matches ready; it returns the child and the match's
// first group. The child's standard input is a pipe never written: it ends
// when this process does, so a child that calls ChildConfig dies with it.
// The child is killed when the test ends, and its output shown if the test
// failed.
func StartChild(t testing.TB, name, test, env string, cfg any, ready *regexp.Regexp) (*Child, string) {
	t.Helper()
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.v")
	cmd.Env = append(os.Environ(), env+"="+string(raw))
	c := &Child{name: name, cmd: cmd, exited: make(chan struct{})}
	cmd.Stderr = &c.log
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
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			fmt.Fprintln(&c.log, sc.Text())
			if m := ready.FindStringSubmatch(sc.Text()); len(m) > 1 {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		c.err = cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-c.exited
		if t.Failed() {
			t.Logf("output of %s (%v):\n%s", name, c.err, c.Output())
		}
	})
	select {
	case m := <-found:
		return c, m
	case <-c.exited:
		t.Fatalf("%s exited before it was ready: %v\n%s", name, c.err, c.Output())
	case <-time.After(Timeout()):
		t.Fatalf("%s was not ready within %v", name, Timeout())
	}
	return nil, ""
}

// Name is the child's name, as StartChild was given it.
func (c *Child) Name() string { return c.name }

// Kill stops the child with SIGKILL (no commit, no leaving the group) and
// waits until it has exited.
func (c *Child) Kill(t testing.TB) {
	t.Helper()
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-c.exited
}

// Stop stops the child with SIGTERM, a graceful close, and waits until it
// has exited, successfully.
func (c *Child) Stop(t testing.TB) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.exited:
		if c.err != nil {
			t.Fatalf("%s after SIGTERM: %v\n%s", c.name, c.err, c.Output())
		}
	case <-time.After(Timeout()):
		t.Fatalf("%s did not stop within %v of SIGTERM", c.name, Timeout())
	}
}

// Output returns the child's output so far, its last 32 KiB at most.
func (c *Child) Output() string {
	const max = 32 << 10
	s := c.log.String()
	if len(s) <= max {
		return s
	}
	return fmt.Sprintf("[... %d bytes before]\n%s", len(s)-max, s[len(s)-max:])
}

// ChildConfig is what the test function a Child runs calls first: it
// decodes the configuration StartChild put in env into cfg and reports
// true, or reports false when env is not set (the test is being run as a
// test, not as a child: skip it). A child exits once its parent is gone,
// so that an orphan does not go on consuming from a shared cluster.
func ChildConfig(t testing.TB, env string, cfg any) bool {
	t.Helper()
	raw := os.Getenv(env)
	if raw == "" {
		return false
	}
	if err := json.Unmarshal([]byte(raw), cfg); err != nil {
		t.Fatal(err)
	}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		fmt.Fprintln(os.Stderr, "child: the test process is gone; exiting")
		os.Exit(3)
	}()
	return true
}

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
