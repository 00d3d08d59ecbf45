// Package itest holds helpers for integration tests that run Apps against a
// broker: franz-go's kfake through riffle.EmbeddedBroker by default, or a
// real Kafka cluster when the environment variable RIFFLE_BROKERS is set
// (comma-separated bootstrap servers).
//
// On the embedded broker every test gets its own fresh broker. A real
// cluster is shared, so a test names the topics and groups it uses and
// Setup deletes them (and waits until they are gone) before it creates the
// ones the test needs.
//
// Nothing here sleeps to synchronise: waits poll a condition until a
// deadline.
package itest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/riffle-streams/riffle"
)

// EnvBrokers is the environment variable that points the tests at a real
// cluster.
const EnvBrokers = "RIFFLE_BROKERS"

// Real reports whether the tests run against a real cluster.
func Real() bool { return strings.TrimSpace(os.Getenv(EnvBrokers)) != "" }

// Timeout is how long one phase of a test may wait for a condition: short on
// the embedded broker, where everything is in-process, and long on a real
// cluster, where group joins, topic creation and deletion take seconds.
func Timeout() time.Duration {
	if Real() {
		return 60 * time.Second
	}
	return 15 * time.Second
}

// Spec says what a test needs of the cluster.
type Spec struct {
	// Partitions of each topic in Topics.
	Partitions int32
	// Topics are created fresh (deleted first on a real cluster).
	Topics []string
	// Delete are topics deleted on a real cluster and not created: the
	// internal topics of the App, which the App creates itself.
	Delete []string
	// Groups are deleted on a real cluster: the App's consumer group, so
	// it starts with no committed offsets.
	Groups []string
}

// Kafka is the cluster a test runs against, with an admin client.
type Kafka struct {
	Brokers []string
	Real    bool
	Adm     *kadm.Client
	cl      *kgo.Client
}

// Setup returns a cluster prepared per spec: a fresh embedded broker, or the
// real cluster of RIFFLE_BROKERS with the spec's groups and topics deleted
// and its topics created anew. Everything it opens is closed when the test
// ends.
func Setup(t testing.TB, spec Spec) *Kafka {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*Timeout())
	defer cancel()
	k := &Kafka{Real: Real()}
	if k.Real {
		for _, b := range strings.Split(os.Getenv(EnvBrokers), ",") {
			if b = strings.TrimSpace(b); b != "" {
				k.Brokers = append(k.Brokers, b)
			}
		}
	} else {
		b, err := riffle.StartEmbeddedBroker()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		k.Brokers = b.Addrs()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	k.cl, k.Adm = cl, kadm.NewClient(cl)
	if k.Real {
		if err := k.reset(ctx, spec); err != nil {
			t.Fatalf("itest: reset the real cluster: %v", err)
		}
	}
	if err := k.create(ctx, spec.Partitions, spec.Topics); err != nil {
		t.Fatalf("itest: %v", err)
	}
	return k
}

// reset deletes the spec's groups and topics and waits until they are gone.
func (k *Kafka) reset(ctx context.Context, spec Spec) error {
	for _, g := range spec.Groups {
		// A group whose members died keeps them until their sessions
		// expire: retry while it is not empty.
		err := poll(ctx, func() (bool, string, error) {
			resps, err := k.Adm.DeleteGroups(ctx, g)
			if err != nil {
				return false, "", err
			}
			r := resps[g]
			switch {
			case r.Err == nil, errors.Is(r.Err, kerr.GroupIDNotFound):
				return true, "", nil
			case errors.Is(r.Err, kerr.NonEmptyGroup), errors.Is(r.Err, kerr.CoordinatorLoadInProgress),
				errors.Is(r.Err, kerr.CoordinatorNotAvailable), errors.Is(r.Err, kerr.NotCoordinator):
				return false, r.Err.Error(), nil
			}
			return false, "", fmt.Errorf("delete group %q: %w", g, r.Err)
		})
		if err != nil {
			return fmt.Errorf("delete group %q: %w", g, err)
		}
	}
	all := append(append([]string{}, spec.Topics...), spec.Delete...)
	resps, err := k.Adm.DeleteTopics(ctx, all...)
	if err != nil {
		return fmt.Errorf("delete topics %v: %w", all, err)
	}
	for _, r := range resps {
		if r.Err != nil && !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
			return fmt.Errorf("delete topic %q: %w", r.Topic, r.Err)
		}
	}
	return poll(ctx, func() (bool, string, error) {
		d, err := k.Adm.ListTopics(ctx, all...)
		if err != nil {
			return false, "", err
		}
		var left []string
		for _, td := range d {
			if td.Err == nil {
				left = append(left, td.Topic)
			}
		}
		return len(left) == 0, fmt.Sprintf("topics not deleted yet: %v", left), nil
	})
}

// ProduceKV writes keyed records to topic, each given as "key=value" (cut
// at the first '='), partitioned by key as Kafka clients do, and waits
// until they are acknowledged; it fails the test if one is not.
func (k *Kafka) ProduceKV(t testing.TB, topic string, kvs ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout())
	defer cancel()
	recs := make([]*kgo.Record, len(kvs))
	for i, kv := range kvs {
		key, value, _ := strings.Cut(kv, "=")
		recs[i] = &kgo.Record{Topic: topic, Key: []byte(key), Value: []byte(value)}
	}
	if err := k.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("itest: produce to %s: %v", topic, err)
	}
}

// CreateTopics creates topics with partitions each, beside the spec's, and
// waits until every partition has a leader.
func (k *Kafka) CreateTopics(t testing.TB, partitions int32, topics ...string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*Timeout())
	defer cancel()
	return k.create(ctx, partitions, topics)
}

// create creates topics, retrying while a deletion of the same name is
// still under way.
func (k *Kafka) create(ctx context.Context, partitions int32, topics []string) error {
	for _, topic := range topics {
		err := poll(ctx, func() (bool, string, error) {
			r, err := k.Adm.CreateTopic(ctx, partitions, -1, nil, topic)
			if err == nil {
				err = r.Err
			}
			switch {
			case err == nil:
				return true, "", nil
			case errors.Is(err, kerr.TopicAlreadyExists):
				return false, "topic still being deleted", nil
			}
			return false, "", err
		})
		if err != nil {
			return fmt.Errorf("create topic %q: %w", topic, err)
		}
	}
	// Wait until the metadata shows every partition with a leader.
	return poll(ctx, func() (bool, string, error) {
		d, err := k.Adm.ListTopics(ctx, topics...)
		if err != nil {
			return false, "", err
		}
		for _, topic := range topics {
			td, ok := d[topic]
			if !ok || td.Err != nil || int32(len(td.Partitions)) != partitions {
				return false, fmt.Sprintf("topic %q not ready", topic), nil
			}
			for _, p := range td.Partitions {
				if p.Err != nil || p.Leader < 0 {
					return false, fmt.Sprintf("topic %q partition %d has no leader", topic, p.Partition), nil
				}
			}
		}
		return true, "", nil
	})
}

// poll calls cond until it is done, fails with an error Kafka does not
// call retriable, or ctx ends.
func poll(ctx context.Context, cond func() (done bool, why string, err error)) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var why string
	for {
		done, w, err := cond()
		if err != nil && !kerr.IsRetriable(err) {
			return err
		}
		if err != nil {
			w = err.Error()
		}
		if done {
			return nil
		}
		why = w
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %s", ctx.Err(), why)
		case <-tick.C:
		}
	}
}

// Eventually polls cond until it returns true and fails the test with cond's
// last explanation if it has not within timeout. It returns how long it took.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := poll(ctx, func() (bool, string, error) {
		ok, why := cond()
		return ok, why, nil
	})
	if err != nil {
		t.Fatalf("waiting %v for %s: %v", timeout, what, err)
	}
	return time.Since(start)
}

// Line is a record produced to an input topic, with where it landed.
type Line struct {
	Value     string
	Partition int32
	Offset    int64
}

// Producer produces values to a topic round-robin over its partitions, so
// keyless records spread evenly, and remembers where each landed.
type Producer struct {
	cl    *kgo.Client
	topic string
}

// NewProducer returns a producer to topic, closed when the test ends.
func (k *Kafka) NewProducer(t testing.TB, topic string) *Producer {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &Producer{cl: cl, topic: topic}
}

// Produce writes values, keyless, and waits until all are acknowledged.
func (p *Producer) Produce(ctx context.Context, values ...string) ([]Line, error) {
	recs := make([]*kgo.Record, len(values))
	for i, v := range values {
		recs[i] = &kgo.Record{Topic: p.topic, Value: []byte(v)}
	}
	res := p.cl.ProduceSync(ctx, recs...)
	if err := res.FirstErr(); err != nil {
		return nil, fmt.Errorf("produce to %s: %w", p.topic, err)
	}
	out := make([]Line, len(res))
	for i, r := range res {
		out[i] = Line{Value: string(r.Record.Value), Partition: r.Record.Partition, Offset: r.Record.Offset}
	}
	return out, nil
}

// Offsets is topic -> partition -> offset.
type Offsets map[string]map[int32]int64

// Get returns the offset of t and p, 0 if absent.
func (o Offsets) Get(t string, p int32) int64 { return o[t][p] }

func (o Offsets) set(t string, p int32, off int64) {
	if o[t] == nil {
		o[t] = map[int32]int64{}
	}
	o[t][p] = off
}

// String prints the offsets sorted, as topic[p]=offset.
func (o Offsets) String() string {
	var parts []string
	for t, ps := range o {
		for p, off := range ps {
			parts = append(parts, fmt.Sprintf("%s[%d]=%d", t, p, off))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// EndOffsets returns the end offsets (high watermarks) of topics.
func (k *Kafka) EndOffsets(ctx context.Context, topics ...string) (Offsets, error) {
	l, err := k.Adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, err
	}
	out := Offsets{}
	var errs []error
	l.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			errs = append(errs, fmt.Errorf("end offset of %s[%d]: %w", o.Topic, o.Partition, o.Err))
			return
		}
		out.set(o.Topic, o.Partition, o.Offset)
	})
	for _, t := range topics {
		if _, ok := out[t]; !ok {
			errs = append(errs, fmt.Errorf("no end offsets for %s", t))
		}
	}
	return out, errors.Join(errs...)
}

// Committed returns the offsets group has committed, for every topic.
func (k *Kafka) Committed(ctx context.Context, group string) (Offsets, error) {
	r, err := k.Adm.FetchOffsets(ctx, group)
	if err != nil {
		return nil, err
	}
	if err := r.Error(); err != nil {
		return nil, err
	}
	out := Offsets{}
	r.Each(func(o kadm.OffsetResponse) {
		if o.At >= 0 {
			out.set(o.Topic, o.Partition, o.At)
		}
	})
	return out, nil
}

// CaughtUp reports whether group has committed the end of every partition of
// topics (a partition with no records needs no commit). The committed
// offsets are fetched before the end offsets, so if the App commits its
// input only after all it caused is written (at-least-once) and topics
// lists every topic it reads, upstream first, then once CaughtUp holds and
// nothing more is produced to its inputs, everything the App will write has
// been written. It says what is missing when it does not hold.
func (k *Kafka) CaughtUp(ctx context.Context, group string, topics ...string) (bool, string, error) {
	committed, err := k.Committed(ctx, group)
	if err != nil {
		return false, "", err
	}
	ends, err := k.EndOffsets(ctx, topics...)
	if err != nil {
		return false, "", err
	}
	var lag []string
	for _, t := range topics {
		for p, end := range ends[t] {
			if c := committed.Get(t, p); c != end {
				lag = append(lag, fmt.Sprintf("%s[%d] committed %d of %d", t, p, c, end))
			}
		}
	}
	sort.Strings(lag)
	return len(lag) == 0, strings.Join(lag, ", "), nil
}

// WaitCaughtUp waits until CaughtUp holds for group and topics, failing
// the test after Timeout.
func (k *Kafka) WaitCaughtUp(t testing.TB, group string, topics ...string) {
	t.Helper()
	Eventually(t, Timeout(), group+" to commit the end of "+strings.Join(topics, ", "), func() (bool, string) {
		ok, why, err := k.CaughtUp(context.Background(), group, topics...)
		if err != nil {
			return false, err.Error()
		}
		return ok, why
	})
}

// ReadAll reads every record of topic from the start up to its end offsets
// as of the call. It expects a record at the last offset of each partition:
// it is for topics that are neither compacted nor transactional.
func (k *Kafka) ReadAll(ctx context.Context, topic string) ([]*kgo.Record, error) {
	ends, err := k.EndOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	want := map[int32]int64{}
	starts := map[int32]kgo.Offset{}
	for p, end := range ends[topic] {
		if end > 0 {
			want[p] = end
			starts[p] = kgo.NewOffset().AtStart()
		}
	}
	if len(want) == 0 {
		return nil, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: starts}))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var out []*kgo.Record
	for len(want) > 0 {
		f := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return out, fmt.Errorf("read %s: %w (still to read up to: %v)", topic, err, want)
		}
		var ferr error
		f.EachError(func(t string, p int32, err error) { ferr = fmt.Errorf("read %s[%d]: %w", t, p, err) })
		if ferr != nil {
			return out, ferr
		}
		f.EachRecord(func(r *kgo.Record) {
			end, ok := want[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			out = append(out, r)
			if r.Offset == end-1 {
				delete(want, r.Partition)
			}
		})
	}
	return out, nil
}

// Latest reads topic to its end and returns the latest value of each key.
func (k *Kafka) Latest(ctx context.Context, topic string) (map[string][]byte, error) {
	recs, err := k.ReadAll(ctx, topic)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, r := range recs { // in offset order within each partition; a key lives in one partition
		out[string(r.Key)] = r.Value
	}
	return out, nil
}

// Tail follows a topic from its start and keeps the latest value of every
// key seen.
type Tail struct {
	cl     *kgo.Client
	topic  string
	latest map[string][]byte
	n      int
}

// NewTail returns a Tail of topic, closed when the test ends.
func (k *Kafka) NewTail(t testing.TB, topic string) *Tail {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &Tail{cl: cl, topic: topic, latest: map[string][]byte{}}
}

// Records returns how many records the Tail has read.
func (tl *Tail) Records() int { return tl.n }

// Latest returns the latest value of every key read so far. The map is the
// Tail's own: read it, do not keep it.
func (tl *Tail) Latest() map[string][]byte { return tl.latest }

// Until reads until cond holds of the latest values, or timeout passes; it
// fails the test then, with cond's last explanation. It returns how long
// it took.
func (tl *Tail) Until(t testing.TB, timeout time.Duration, what string, cond func(latest map[string][]byte) (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		ok, why := cond(tl.latest)
		if ok {
			return time.Since(start)
		}
		f := tl.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("waiting %v for %s on %s (%d records read): %s", timeout, what, tl.topic, tl.n, why)
		}
		f.EachError(func(tp string, p int32, err error) {
			t.Logf("itest: fetch %s[%d]: %v", tp, p, err)
		})
		f.EachRecord(func(r *kgo.Record) {
			tl.latest[string(r.Key)] = r.Value
			tl.n++
		})
	}
}
