package stream_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/riffle-streams/riffle/riffletest"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/stream"
	"github.com/riffle-streams/riffle/table"
	"github.com/riffle-streams/riffle/topology"
)

// joinDriver builds b and returns a driver on backend.
func joinDriver(t *testing.T, b *topology.Builder, backend state.Backend) (*topology.Topology, *riffletest.Driver) {
	t.Helper()
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := riffletest.New(topo, riffletest.WithBackend(backend))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return topo, d
}

func readStrings(t *testing.T, out *riffletest.OutputTopic[string, string]) []string {
	t.Helper()
	kvs, err := out.ReadKeyValues()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, kv := range kvs {
		got = append(got, kv.Key+"="+kv.Value)
	}
	return got
}

// TestJoinTable: each click looks up its user's current profile; a click
// before the profile exists, or after it is deleted, is dropped by the
// inner join and joined with an absent profile by the left join; profile
// updates emit nothing, and the next click sees the update.
func TestJoinTable(t *testing.T) {
	eachBackendW(t, func(t *testing.T, backend state.Backend) {
		b := topology.NewBuilder()
		users := table.From[string, string](b, "users")
		clicks := stream.From[string, string](b, "clicks")
		stream.JoinTable(clicks, users, func(_ string, page, user string) string { return page + " by " + user }, stream.Named("inner")).To("inner-out")
		stream.LeftJoinTable(clicks, users, func(_ string, page string, user stream.Maybe[string]) string {
			if !user.OK {
				return page + " by ?"
			}
			return page + " by " + user.Value
		}, stream.Named("left")).To("left-out")
		_, d := joinDriver(t, b, backend)
		usersIn := riffletest.Input(d, "users", serde.String(), serde.String())
		clicksIn := riffletest.Input(d, "clicks", serde.String(), serde.String())
		inner := riffletest.Output(d, "inner-out", serde.String(), serde.String())
		left := riffletest.Output(d, "left-out", serde.String(), serde.String())
		steps := []struct {
			user          bool // a profile update, else a click
			key, value    string
			inner, lefted []string
		}{
			{false, "u1", "/home", nil, []string{"u1=/home by ?"}}, // no profile yet
			{true, "u1", "Ann", nil, nil},                          // a table update emits nothing
			{false, "u1", "/cart", []string{"u1=/cart by Ann"}, []string{"u1=/cart by Ann"}},
			{true, "u1", "Ann B.", nil, nil},
			{false, "u1", "/pay", []string{"u1=/pay by Ann B."}, []string{"u1=/pay by Ann B."}},
			{false, "u2", "/home", nil, []string{"u2=/home by ?"}},
		}
		for i, s := range steps {
			var err error
			if s.user {
				err = usersIn.Pipe(s.key, s.value)
			} else {
				err = clicksIn.Pipe(s.key, s.value)
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := readStrings(t, inner); strings.Join(got, " ") != strings.Join(s.inner, " ") {
				t.Fatalf("step %d: inner join gave %v, want %v", i, got, s.inner)
			}
			if got := readStrings(t, left); strings.Join(got, " ") != strings.Join(s.lefted, " ") {
				t.Fatalf("step %d: left join gave %v, want %v", i, got, s.lefted)
			}
		}
		// A tombstone deletes the profile: the inner join drops the next
		// click, the left join joins it with an absent profile.
		if err := d.PipeRaw("users", []byte("u1"), nil, time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := clicksIn.Pipe("u1", "/bye"); err != nil {
			t.Fatal(err)
		}
		if got := readStrings(t, inner); len(got) != 0 {
			t.Errorf("inner join after the tombstone: %v", got)
		}
		if got := readStrings(t, left); strings.Join(got, " ") != "u1=/bye by ?" {
			t.Errorf("left join after the tombstone: %v", got)
		}
	})
}

// TestJoinTableKeepsTimestamp: the result has the stream record's
// timestamp, not the table's.
func TestJoinTableKeepsTimestamp(t *testing.T) {
	b := topology.NewBuilder()
	stream.JoinTable(stream.From[string, string](b, "s"), table.From[string, string](b, "t"),
		func(_ string, a, b string) string { return a + b }).To("out")
	_, d := joinDriver(t, b, state.InMemoryBackend)
	if err := riffletest.Input(d, "t", serde.String(), serde.String()).PipeAt("k", "T", time.UnixMilli(5_000)); err != nil {
		t.Fatal(err)
	}
	if err := riffletest.Input(d, "s", serde.String(), serde.String()).PipeAt("k", "S", time.UnixMilli(3_000)); err != nil {
		t.Fatal(err)
	}
	recs, err := riffletest.Output(d, "out", serde.String(), serde.String()).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Value != "ST" || recs[0].Timestamp.UnixMilli() != 3_000 {
		t.Fatalf("got %+v", recs)
	}
}

// TestJoinTableNullKeys: records with a null key or value are skipped and
// counted, not a crash; a null-keyed table update changes nothing.
func TestJoinTableNullKeys(t *testing.T) {
	b := topology.NewBuilder()
	bytesTable := table.From[[]byte, string](b, "t", table.WithKeySerde(serde.ByteArray()))
	s := stream.From[[]byte, []byte](b, "s", stream.WithKeySerde(serde.ByteArray()), stream.WithValueSerde(serde.ByteArray()))
	stream.LeftJoinTable(s, bytesTable, func(_ []byte, v []byte, t stream.Maybe[string]) string {
		return string(v) + "+" + t.Value
	}, stream.Named("j")).To("out", stream.WithKeySerde(serde.ByteArray()))
	_, d := joinDriver(t, b, state.InMemoryBackend)
	for _, r := range []struct{ topic, key, value []byte }{
		{[]byte("t"), []byte("k"), []byte("T")},
		{[]byte("s"), nil, []byte("v")}, // null key
		{[]byte("s"), []byte("k"), nil}, // null value
		{[]byte("s"), []byte("k"), []byte("v")},
	} {
		if err := d.PipeRaw(string(r.topic), r.key, r.value, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	out, err := riffletest.Output(d, "out", serde.ByteArray(), serde.String()).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0].Value != "v+T" {
		t.Errorf("joined: %+v", out)
	}
	sk := d.Skipped()
	if sk[topology.SkipKey{Node: "j", Reason: "null key"}] != 1 || sk[topology.SkipKey{Node: "j", Reason: "null value"}] != 1 {
		t.Errorf("skipped: %v", sk)
	}
}

// TestJoinTableRepartitions: a re-keyed stream is repartitioned, through a
// topic named after the join, before it is joined; a table that keeps no
// store gets one, named after the join; the two sides meet in one
// sub-topology.
func TestJoinTableRepartitions(t *testing.T) {
	b := topology.NewBuilder()
	users := table.From[string, string](b, "users").Filter(func(_, v string) bool { return v != "" })
	byUser := stream.SelectKey(stream.From[string, string](b, "clicks"), func(_, v string) string { return strings.Split(v, " ")[0] })
	stream.JoinTable(byUser, users, func(_ string, c, u string) string { return u + ": " + c }, stream.Named("enrich")).To("out")
	topo, d := joinDriver(t, b, state.InMemoryBackend)
	var names []string
	for _, it := range topo.InternalTopics() {
		names = append(names, it.Kind.String()+" "+it.Resolve("app"))
	}
	want := "repartition app-enrich-repartition"
	if !strings.Contains(strings.Join(names, " "), want) {
		t.Errorf("internal topics %v: want %s", names, want)
	}
	if _, ok := topo.Store("enrich-table"); !ok {
		t.Errorf("no store enrich-table:\n%s", topo.Describe())
	}
	if a, b := topo.SubTopologyOf("app", "users"), topo.SubTopologyOf("app", "app-enrich-repartition"); a == nil || a != b {
		t.Errorf("users and the repartitioned clicks are in sub-topologies %v and %v:\n%s", a, b, topo.Describe())
	}
	if err := riffletest.Input(d, "users", serde.String(), serde.String()).Pipe("ann", "Ann"); err != nil {
		t.Fatal(err)
	}
	if err := riffletest.Input(d, "clicks", serde.String(), serde.String()).Pipe("x", "ann /home"); err != nil {
		t.Fatal(err)
	}
	got := readStrings(t, riffletest.Output(d, "out", serde.String(), serde.String()))
	if strings.Join(got, " ") != "ann=Ann: ann /home" {
		t.Errorf("joined: %v", got)
	}
}

// TestJoinGlobal: the lookup key comes from the record; no
// repartitioning, whatever the stream's key; inner and left.
func TestJoinGlobal(t *testing.T) {
	eachBackendW(t, func(t *testing.T, backend state.Backend) {
		b := topology.NewBuilder()
		regions := table.Global[string, string](b, "regions")
		orders := stream.SelectKey(stream.From[string, string](b, "orders"), func(k, _ string) string { return "order-" + k })
		region := func(_ string, v string) string { return strings.Split(v, ",")[0] }
		stream.JoinGlobal(orders, regions, region, func(_ string, v, r string) string { return v + "@" + r }, stream.Named("inner")).To("inner-out")
		stream.LeftJoinGlobal(orders, regions, region, func(_ string, v string, r stream.Maybe[string]) string {
			return fmt.Sprintf("%s@%s/%v", v, r.Value, r.OK)
		}, stream.Named("left")).To("left-out")
		topo, d := joinDriver(t, b, backend)
		for _, it := range topo.InternalTopics() {
			if it.Kind == topology.RepartitionTopic {
				t.Errorf("a global join repartitioned: %v", it.Resolve("app"))
			}
		}
		if err := riffletest.Input(d, "regions", serde.String(), serde.String()).Pipe("eu", "Europe"); err != nil {
			t.Fatal(err)
		}
		ordersIn := riffletest.Input(d, "orders", serde.String(), serde.String())
		_ = ordersIn.Pipe("1", "eu,10")
		_ = ordersIn.Pipe("2", "us,20")
		if got := readStrings(t, riffletest.Output(d, "inner-out", serde.String(), serde.String())); strings.Join(got, " ") != "order-1=eu,10@Europe" {
			t.Errorf("inner: %v", got)
		}
		if got := readStrings(t, riffletest.Output(d, "left-out", serde.String(), serde.String())); strings.Join(got, " ") != "order-1=eu,10@Europe/true order-2=us,20@/false" {
			t.Errorf("left: %v", got)
		}
	})
}

// TestJoinTableChecked: a nil joiner fails the build, naming the join.
func TestJoinTableChecked(t *testing.T) {
	b := topology.NewBuilder()
	stream.JoinTable[string, string, string, string](stream.From[string, string](b, "s"), table.From[string, string](b, "t"), nil, stream.Named("j"))
	if _, err := b.Build(); err == nil || !strings.Contains(err.Error(), `"j"`) {
		t.Errorf("Build: %v", err)
	}
}
