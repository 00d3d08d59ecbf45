package riffle_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/riffle-streams/riffle"
	"github.com/riffle-streams/riffle/internal/itest"
	"github.com/riffle-streams/riffle/stream"
	"github.com/riffle-streams/riffle/table"
	"github.com/riffle-streams/riffle/topology"
)

// TestAppStreamTableJoinAfterRestore runs a stream–table join (clicks
// enriched with user profiles) on the embedded broker, or on
// RIFFLE_BROKERS. After a graceful stop, a new instance starts on an empty
// state directory: the profiles, read before the stop, come back only by
// restoring the table's store from its changelog (the App resumes the
// users topic at its committed offset), and clicks after the restart must
// still be joined with them, and with a profile updated after the restart.
func TestAppStreamTableJoinAfterRestore(t *testing.T) {
	run := fmt.Sprint(time.Now().UnixNano())
	appID, users, clicks, out := "enrich-"+run, "users-"+run, "clicks-"+run, "enriched-"+run
	k := itest.Setup(t, itest.Spec{
		Partitions: 3,
		Topics:     []string{users, clicks, out},
		Delete:     []string{appID + "-profiles-changelog"},
		Groups:     []string{appID},
	})
	b := topology.NewBuilder()
	profiles := table.From[string, string](b, users, table.Materialized("profiles"))
	stream.JoinTable(stream.From[string, string](b, clicks), profiles,
		func(_ string, page, user string) string { return page + " by " + user }, stream.Named("enrich")).To(out)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	tail := k.NewTail(t, out)
	waitFor := func(want map[string]string) {
		t.Helper()
		tail.Until(t, itest.Timeout(), fmt.Sprint(want), func(latest map[string][]byte) (bool, string) {
			var got []string
			ok := true
			for key, v := range want {
				if string(latest[key]) != v {
					ok = false
				}
			}
			for key, v := range latest {
				got = append(got, key+"="+string(v))
			}
			return ok, "latest: " + strings.Join(got, ", ")
		})
	}
	first, _ := startApp(t, k, "first", appID, topo)
	k.ProduceKV(t, users, "ann=Ann", "bob=Bob", "cy=Cy")
	k.ProduceKV(t, clicks, "ann=/home")
	waitFor(map[string]string{"ann": "/home by Ann"})
	k.WaitCaughtUp(t, appID, users, clicks)
	if err := first.Stop(itest.Timeout()); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}

	restores := &itest.RestoreRecorder{}
	second, _ := startApp(t, k, "second", appID, topo, riffle.OnRestore(restores))
	k.ProduceKV(t, clicks, "bob=/cart", "cy=/pay")
	k.ProduceKV(t, users, "ann=Ann B.")
	// The update and the next click are in two topics: which comes first
	// to the task depends on the fetches. Wait until the update is in.
	k.WaitCaughtUp(t, appID, users, clicks)
	k.ProduceKV(t, clicks, "ann=/bye")
	waitFor(map[string]string{"ann": "/bye by Ann B.", "bob": "/cart by Bob", "cy": "/pay by Cy"})
	if n := restores.Total(); n < 3 {
		t.Errorf("restored %d records of the profiles' changelog, want at least 3: %+v", n, restores.Ends())
	}
	if err := second.Stop(itest.Timeout()); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
}

// TestAppGlobalTableJoin joins orders with a global table of regions on
// the embedded broker, or on RIFFLE_BROKERS. The two topics have different
// partition counts: a global table needs no co-partitioning. The regions
// written before the App starts are loaded before it processes anything;
// one written while it runs reaches the join.
func TestAppGlobalTableJoin(t *testing.T) {
	run := fmt.Sprint(time.Now().UnixNano())
	appID, regions, orders, out := "regions-"+run, "regions-"+run, "orders-"+run, "orders-out-"+run
	k := itest.Setup(t, itest.Spec{Partitions: 3, Topics: []string{orders, out}, Groups: []string{appID}})
	if err := k.CreateTopics(t, 2, regions); err != nil {
		t.Fatal(err)
	}
	b := topology.NewBuilder()
	g := table.Global[string, string](b, regions)
	stream.LeftJoinGlobal(stream.From[string, string](b, orders), g,
		func(_ string, order string) string { return strings.Split(order, ",")[0] },
		func(_ string, order string, region stream.Maybe[string]) string {
			if !region.OK {
				return order + "@?"
			}
			return order + "@" + region.Value
		}, stream.Named("by-region")).To(out)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	k.ProduceKV(t, regions, "eu=Europe", "us=Americas", "ap=Asia")

	running, _ := startApp(t, k, "app", appID, topo)
	k.ProduceKV(t, orders, "1=eu,10", "2=us,20", "3=xx,30")
	tail := k.NewTail(t, out)
	tail.Until(t, itest.Timeout(), "the first orders joined", func(latest map[string][]byte) (bool, string) {
		got := fmt.Sprintf("%s %s %s", latest["1"], latest["2"], latest["3"])
		return got == "eu,10@Europe us,20@Americas xx,30@?", got
	})

	// A region added while the App runs reaches the join once the global
	// reader has it: order again until an order finds it.
	k.ProduceKV(t, regions, "xx=Nowhere")
	n := 100
	itest.Eventually(t, itest.Timeout(), "an order to find the new region", func() (bool, string) {
		n++
		key := fmt.Sprint(n)
		k.ProduceKV(t, orders, key+"=xx,1")
		var v string
		tail.Until(t, itest.Timeout(), "order "+key, func(latest map[string][]byte) (bool, string) {
			v = string(latest[key])
			return v != "", "not yet"
		})
		return v == "xx,1@Nowhere", "order " + key + " gave " + v
	})
	if err := running.Stop(itest.Timeout()); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
}

// TestAppJoinsInTimestampOrder: a stream–table join started on a backlog
// processes the records of its two topics in timestamp order, as Kafka
// Streams does, whatever order they were written and fetched in. The
// clicks are written first, but their timestamps are later than the
// profiles': every click must find its profile (an inner join drops a click
// processed before it).
func TestAppJoinsInTimestampOrder(t *testing.T) {
	run := fmt.Sprint(time.Now().UnixNano())
	appID, users, clicks, out := "ordered-"+run, "o-users-"+run, "o-clicks-"+run, "o-out-"+run
	k := itest.Setup(t, itest.Spec{Partitions: 2, Topics: []string{users, clicks, out}, Groups: []string{appID}})
	b := topology.NewBuilder()
	stream.JoinTable(stream.From[string, string](b, clicks), table.From[string, string](b, users),
		func(_ string, page, user string) string { return page + " by " + user }).To(out)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	prod, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	const n = 10000
	base := time.Now().Add(-time.Hour)
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Topic: clicks, Key: []byte(fmt.Sprint("u", i)), Value: []byte("/p"), Timestamp: base.Add(time.Second + time.Duration(i)*time.Millisecond)})
	}
	for i := range n {
		recs = append(recs, &kgo.Record{Topic: users, Key: []byte(fmt.Sprint("u", i)), Value: []byte(fmt.Sprint("U", i)), Timestamp: base.Add(time.Duration(i) * time.Microsecond)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), itest.Timeout())
	defer cancel()
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	running, _ := startApp(t, k, "app", appID, topo)
	k.WaitCaughtUp(t, appID, users, clicks)
	joined, err := k.ReadAll(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	if len(joined) != n {
		t.Errorf("%d clicks joined, want %d: clicks were processed before older profiles", len(joined), n)
	}
	if err := running.Stop(itest.Timeout()); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
}

// TestAppForeignKeyJoin runs a foreign-key join on the embedded broker, or
// on RIFFLE_BROKERS: orders (3 partitions) name a product (2 partitions).
// The subscription topic takes the products' partition count and the
// response topic the orders'; an order that changes its product is joined
// with the new one.
func TestAppForeignKeyJoin(t *testing.T) {
	run := fmt.Sprint(time.Now().UnixNano())
	appID, orders, products, out := "fk-"+run, "fk-orders-"+run, "fk-products-"+run, "fk-out-"+run
	k := itest.Setup(t, itest.Spec{Partitions: 3, Topics: []string{orders, out}, Groups: []string{appID}})
	if err := k.CreateTopics(t, 2, products); err != nil {
		t.Fatal(err)
	}
	b := topology.NewBuilder()
	joined := table.JoinForeign(table.From[string, string](b, orders), table.From[string, string](b, products),
		func(order string) string { return strings.Split(order, ",")[0] },
		func(order, product string) string { return order + "=" + product }, table.Named("order-products"))
	joined.To(out)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	running, _ := startApp(t, k, "app", appID, topo)
	k.ProduceKV(t, products, "apple=Apple 1kg", "pear=Pear 1kg")
	k.ProduceKV(t, orders, "o1=apple,2", "o2=pear,1", "o3=apple,5")
	tail := k.NewTail(t, out)
	check := func(want string) {
		t.Helper()
		tail.Until(t, itest.Timeout(), want, func(latest map[string][]byte) (bool, string) {
			got := fmt.Sprintf("o1=%s o2=%s o3=%s", latest["o1"], latest["o2"], latest["o3"])
			return got == want, got
		})
	}
	check("o1=apple,2=Apple 1kg o2=pear,1=Pear 1kg o3=apple,5=Apple 1kg")
	k.ProduceKV(t, products, "apple=Apple 2kg")
	k.ProduceKV(t, orders, "o2=apple,1")
	check("o1=apple,2=Apple 2kg o2=apple,1=Apple 2kg o3=apple,5=Apple 2kg")
	details, err := k.Adm.ListTopics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for suffix, want := range map[string]int{"-subscription-registration-repartition": 2, "-subscription-response-repartition": 3} {
		name := appID + "-order-products" + suffix
		if got := len(details[name].Partitions); got != want {
			t.Errorf("%s has %d partitions, want %d", name, got, want)
		}
	}
	if err := running.Stop(itest.Timeout()); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
}

// TestAppJoinNotCoPartitioned: a join of two topics with different
// partition counts fails at start with an error that names both topics and
// their counts, before anything is processed.
func TestAppJoinNotCoPartitioned(t *testing.T) {
	run := fmt.Sprint(time.Now().UnixNano())
	appID, users, clicks := "copart-"+run, "cp-users-"+run, "cp-clicks-"+run
	k := itest.Setup(t, itest.Spec{Partitions: 3, Topics: []string{clicks, clicks + "-out"}, Groups: []string{appID}})
	if err := k.CreateTopics(t, 2, users); err != nil {
		t.Fatal(err)
	}
	b := topology.NewBuilder()
	stream.JoinTable(stream.From[string, string](b, clicks), table.From[string, string](b, users),
		func(_ string, c, u string) string { return c + u }).To(clicks + "-out")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	app, err := riffle.New(topo, riffle.ApplicationID(appID), riffle.BootstrapServers(k.Brokers...),
		riffle.StateDir(t.TempDir()), riffle.Logger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), itest.Timeout())
	defer cancel()
	err = app.Run(ctx)
	for _, want := range []string{"not co-partitioned", clicks + " (3 partitions)", users + " (2 partitions)"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Run: %v, want an error with %q", err, want)
		}
	}
}

// TestAppForeignKeyJoinOnAggregation: the right side of a foreign-key
// join is an aggregation of a re-keyed stream, so its sub-topology reads
// no external topic; the runtime still finds a partition count for every
// internal topic, and the join works.
func TestAppForeignKeyJoinOnAggregation(t *testing.T) {
	run := fmt.Sprint(time.Now().UnixNano())
	appID, orders, sales, out := "fkagg-"+run, "fkagg-orders-"+run, "fkagg-sales-"+run, "fkagg-out-"+run
	k := itest.Setup(t, itest.Spec{Partitions: 3, Topics: []string{orders, out}, Groups: []string{appID}})
	if err := k.CreateTopics(t, 2, sales); err != nil {
		t.Fatal(err)
	}
	b := topology.NewBuilder()
	// Units sold per product, from sales keyed by sale id, value product.
	sold := stream.GroupBy(stream.From[string, string](b, sales), func(_, product string) string { return product },
		stream.Named("by-product")).Count(stream.Named("sold"))
	joined := table.JoinForeign(table.From[string, string](b, orders), sold,
		func(order string) string { return order },
		func(order string, n int64) string { return fmt.Sprintf("%s sold %d", order, n) }, table.Named("popularity"))
	joined.To(out)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	running, _ := startApp(t, k, "app", appID, topo)
	k.ProduceKV(t, sales, "s1=apple", "s2=apple", "s3=pear")
	k.ProduceKV(t, orders, "o1=apple", "o2=pear")
	tail := k.NewTail(t, out)
	tail.Until(t, itest.Timeout(), "the joined popularity", func(latest map[string][]byte) (bool, string) {
		got := fmt.Sprintf("o1=%s o2=%s", latest["o1"], latest["o2"])
		return got == "o1=apple sold 2 o2=pear sold 1", got
	})
	if err := running.Stop(itest.Timeout()); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
}
