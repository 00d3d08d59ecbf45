package riffle

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/riffle-streams/riffle/state"
)

// globalTask is the task name of global stores in the state directory.
const globalTask = "global"

// globals keeps the App's global stores: each is a full copy of its topic,
// every partition, on every instance, read by a consumer of its own outside
// the group. It is rebuilt from the start of the topics when the App
// starts, before the App joins the group (as Kafka Streams bootstraps its
// global stores), then kept up to date in the background while the App
// runs. Readers (the tasks' processors) and the writer share each store,
// which is safe for concurrent use.
type globals struct {
	stores map[string]state.KeyValueStore // by store name
	byTopc map[string]state.KeyValueStore // by topic
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}
	// applied counts the records applied, as the "offset" each store's
	// batches are written with (the stores are rebuilt at each start, so
	// it only needs to grow).
	applied int64
}

// startGlobals opens the global stores, empty, and fills them with their
// topics up to the end offsets as of now, then keeps reading in the
// background until stopGlobals.
func (a *App) startGlobals(ctx context.Context) error {
	specs := a.topo.GlobalStores()
	if len(specs) == 0 {
		return nil
	}
	g := &globals{stores: map[string]state.KeyValueStore{}, byTopc: map[string]state.KeyValueStore{}}
	a.globals = g
	var topics []string
	for _, gs := range specs {
		spec := gs.Spec
		if spec.Backend == state.PersistentBackend {
			// Rebuilt from the topic at each start: what is on disk may be
			// of another run, at offsets it does not record.
			if err := a.env.Wipe(a.cfg.appID, globalTask, spec.Name); err != nil {
				return fmt.Errorf("riffle: global store %q: %w", spec.Name, err)
			}
		}
		kv, err := a.env.OpenKeyValue(a.cfg.appID, globalTask, spec)
		if err != nil {
			return fmt.Errorf("riffle: global store %q: %w", spec.Name, err)
		}
		if _, ok := kv.(state.Restorable); !ok {
			kv.Close()
			return fmt.Errorf("riffle: global store %q: a %T cannot be filled in batches", spec.Name, kv)
		}
		g.stores[spec.Name] = kv
		g.byTopc[gs.Topic] = kv
		topics = append(topics, gs.Topic)
	}
	ends, err := a.adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return fmt.Errorf("riffle: global tables: end offsets of %v: %w", topics, err)
	}
	want := map[string]map[int32]int64{} // partitions still to read up to
	for _, t := range topics {
		ps, ok := ends[t]
		if !ok || len(ps) == 0 {
			return fmt.Errorf("riffle: global table topic %q does not exist", t)
		}
		want[t] = map[int32]int64{}
		for p, o := range ps {
			if o.Err != nil {
				return fmt.Errorf("riffle: global table topic %q: end offset of partition %d: %w", t, p, o.Err)
			}
			if o.Offset > 0 {
				want[t][p] = o.Offset
			}
		}
	}
	opts := append(a.clientOpts("global tables"), kgo.ConsumeTopics(topics...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(64<<20), kgo.FetchMaxPartitionBytes(16<<20))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("riffle: global tables: client: %w", err)
	}
	g.cl = cl
	start := time.Now()
	var total int64
	for remaining(want) > 0 {
		fetches := cl.PollRecords(ctx, 8192)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("riffle: global tables: bootstrap: %w", err)
		}
		n, err := g.apply(fetches)
		if err != nil {
			return err
		}
		total += n
		fetches.EachRecord(func(r *kgo.Record) {
			if end, ok := want[r.Topic][r.Partition]; ok && r.Offset >= end-1 {
				delete(want[r.Topic], r.Partition)
			}
		})
	}
	a.log.Info("global tables loaded", "topics", topics, "records", total, "took", time.Since(start))
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	g.cancel, g.done = cancel, make(chan struct{})
	go func() {
		defer close(g.done)
		for bg.Err() == nil {
			fetches := cl.PollRecords(bg, 8192)
			if fetches.IsClientClosed() || bg.Err() != nil {
				return
			}
			if _, err := g.apply(fetches); err != nil {
				a.setFatal(err)
				return
			}
		}
	}()
	return nil
}

func remaining(want map[string]map[int32]int64) int {
	n := 0
	for _, ps := range want {
		n += len(ps)
	}
	return n
}

// apply writes fetched records to their global stores, a batch per store,
// and returns how many it wrote.
func (g *globals) apply(fetches kgo.Fetches) (int64, error) {
	var ferr error
	fetches.EachError(func(t string, p int32, err error) {
		if !errors.Is(err, context.Canceled) && ferr == nil {
			ferr = fmt.Errorf("riffle: global table topic %q, partition %d: fetch: %w", t, p, err)
		}
	})
	if ferr != nil {
		return 0, ferr
	}
	var n int64
	var err error
	fetches.EachTopic(func(ft kgo.FetchTopic) {
		kv := g.byTopc[ft.Topic]
		if kv == nil || err != nil {
			return
		}
		var batch []state.ChangelogRecord
		ft.EachRecord(func(r *kgo.Record) {
			if r.Key != nil { // a record with no key cannot be looked up
				batch = append(batch, state.ChangelogRecord{Key: r.Key, Value: r.Value})
			}
		})
		if len(batch) == 0 {
			return
		}
		g.applied += int64(len(batch))
		if e := kv.(state.Restorable).Restore(batch, g.applied); e != nil {
			err = fmt.Errorf("riffle: global store %q: apply %d records of %q: %w", kv.Name(), len(batch), ft.Topic, e)
			return
		}
		n += int64(len(batch))
	})
	return n, err
}

// stopGlobals stops the background reader and closes the stores.
func (a *App) stopGlobals() error {
	g := a.globals
	if g == nil {
		return nil
	}
	if g.cancel != nil {
		g.cancel()
	}
	if g.cl != nil {
		g.cl.Close()
	}
	if g.done != nil {
		<-g.done
	}
	var errs []error
	for _, kv := range g.stores {
		errs = append(errs, kv.Close())
	}
	return errors.Join(errs...)
}

// globalStore returns the read-only view of a global store.
func (a *App) globalStore(name string) (state.Store, error) {
	if a.globals != nil {
		if kv, ok := a.globals.stores[name]; ok {
			return state.ReadOnly(kv), nil
		}
	}
	return nil, fmt.Errorf("riffle: no global store %q", name)
}
