// Package testutil holds the helpers the DSL packages' tests share: build a
// topology, start a driver on it, check errors.
package testutil

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/riffle-streams/riffle/riffletest"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
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

// StoreEntries returns the entries of the store named name as
// "key=value", in the store's order, each side formatted with show.
func StoreEntries[K, V any](t *testing.T, d *riffletest.Driver, name string, ks serde.Serde[K], vs serde.Serde[V], show func(any) string) []string {
	t.Helper()
	ro, err := d.KeyValueStore(name)
	if err != nil {
		t.Fatalf("KeyValueStore(%q): %v", name, err)
	}
	it, err := state.TypedRead(ro, ks, vs).All()
	if err != nil {
		t.Fatalf("store %q: All: %v", name, err)
	}
	defer it.Close()
	var out []string
	for it.Next() {
		out = append(out, show(it.Key())+"="+show(it.Value()))
	}
	if err := it.Err(); err != nil {
		t.Fatalf("store %q: iterate: %v", name, err)
	}
	return out
}

// WantStrings fails the test if got and want differ.
func WantStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}

// WantSkips fails unless the driver counted exactly the skips in want.
func WantSkips(t *testing.T, d *riffletest.Driver, want map[topology.SkipKey]int64) {
	t.Helper()
	if got := d.Skipped(); !maps.Equal(got, want) {
		t.Errorf("Skipped() = %v, want %v", got, want)
	}
}

// InternalTopics returns the names of the topology's internal topics of
// kind.
func InternalTopics(topo *topology.Topology, kind topology.InternalTopicKind) []string {
	var out []string
	for _, it := range topo.InternalTopics() {
		if it.Kind == kind {
			out = append(out, it.Name)
		}
	}
	return out
}
