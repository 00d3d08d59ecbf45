// Package testutil holds the helpers the DSL packages' tests share: build a
// topology, start a driver on it, check errors.
package testutil

import (
	"strings"
	"testing"

	"github.com/riffle-streams/riffle/riffletest"
	"github.com/riffle-streams/riffle/topology"
)

// NewDriver builds b and starts a driver on it, closed when the test ends.
func NewDriver(t *testing.T, b *topology.Builder, opts ...riffletest.Option) *riffletest.Driver {
	t.Helper()
	topo := MustBuild(t, b)
	d, err := riffletest.New(topo, opts...)
	if err != nil {
		t.Fatalf("riffletest.New: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return d
}

// MustBuild builds b and fails the test on error.
func MustBuild(t *testing.T, b *topology.Builder) *topology.Topology {
	t.Helper()
	topo, err := b.Build()
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return topo
}

// BuildErr builds b and returns the error it must fail with.
func BuildErr(t *testing.T, b *topology.Builder) error {
	t.Helper()
	topo, err := b.Build()
	if err == nil {
		t.Fatalf("Build succeeded; want an error. Topology:\n%s", topo.Describe())
	}
	return err
}

// WantErrContains fails unless err's text holds every one of subs.
func WantErrContains(t *testing.T, err error, subs ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("error is nil; want one containing %q", subs)
	}
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q\ndoes not contain %q", err, s)
		}
	}
}
