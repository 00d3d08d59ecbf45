package riffle

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/topology"
)

// restore catches a store up with its changelog partition: from the offset
// after the one the store has applied (or the start, for a new store) to the
// end, in large batches, each applied atomically with its last offset.
func (a *App) restore(id topology.TaskID, store, topic string, r state.Restorable) error {
	ctx := a.loopCtx
	applied, ok, err := r.AppliedOffset()
	if err != nil {
		return fmt.Errorf("riffle: restore store %q of task %s: %w", store, id, err)
	}
	from := int64(0)
	if ok {
		from = applied + 1
	}
	ends, err := a.listEnds(ctx, id.Partition, topic)
	if err != nil {
		return fmt.Errorf("riffle: restore store %q of task %s: %w", store, id, err)
	}
	end := ends[topic]
	if from > end {
		return fmt.Errorf("riffle: store %q of task %s has applied offset %d of %s[%d], which ends at %d: the changelog was recreated; delete the store's directory (%s) to restore it from scratch",
			store, id, applied, topic, id.Partition, end, a.env.StoreDir(a.cfg.appID, id.String(), store))
	}
	if from == end {
		return nil
	}
	start := time.Now()
	a.log.Info("restoring store", "task", id.String(), "store", store, "changelog", topic, "from", from, "to", end)
	if l := a.cfg.restoreListener; l != nil {
		l.RestoreStart(id.String(), store, from, end)
	}
	opts := append(a.clientOpts("restore"),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {id.Partition: kgo.NewOffset().At(from)}}),
		kgo.FetchMaxBytes(64<<20), kgo.FetchMaxPartitionBytes(16<<20))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("riffle: restore store %q of task %s: %w", store, id, err)
	}
	defer cl.Close()
	var total int64
	batch := make([]state.ChangelogRecord, 0, 4096)
	for last := from - 1; last < end-1; {
		fetches := cl.PollRecords(ctx, 8192)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("riffle: restore store %q of task %s: %w", store, id, err)
		}
		var ferr error
		fetches.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return fmt.Errorf("riffle: restore store %q of task %s: fetch %s[%d]: %w", store, id, topic, id.Partition, ferr)
		}
		batch = batch[:0]
		fetches.EachRecord(func(rec *kgo.Record) {
			if rec.Offset >= end {
				return // written since the restore began: processing reads it
			}
			batch = append(batch, state.ChangelogRecord{Key: rec.Key, Value: rec.Value})
			last = rec.Offset
		})
		if len(batch) == 0 {
			continue
		}
		if err := r.Restore(batch, last); err != nil {
			return fmt.Errorf("riffle: restore store %q of task %s at offset %d: %w", store, id, last, err)
		}
		total += int64(len(batch))
		if l := a.cfg.restoreListener; l != nil {
			l.RestoreBatch(id.String(), store, last, len(batch))
		}
	}
	took := time.Since(start)
	a.log.Info("restored store", "task", id.String(), "store", store, "records", total, "took", took)
	if l := a.cfg.restoreListener; l != nil {
		l.RestoreEnd(id.String(), store, total, took)
	}
	return nil
}

// listEnds lists the end offsets of partition p of topics. A partition
// the brokers do not know yet (a topic just created, whose metadata has not
// reached every broker) or whose leader is moving is asked for again, for
// up to 30s.
func (a *App) listEnds(ctx context.Context, p int32, topics ...string) (map[string]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		out := map[string]int64{}
		ends, err := a.adm.ListEndOffsets(ctx, topics...)
		if err == nil {
			for _, t := range topics {
				e, ok := ends.Lookup(t, p)
				switch {
				case !ok:
					err = fmt.Errorf("end of %s[%d]: the brokers do not know the partition yet", t, p)
				case e.Err != nil:
					err = fmt.Errorf("end of %s[%d]: %w", t, p, e.Err)
				default:
					out[t] = e.Offset
					continue
				}
				break
			}
		} else {
			err = fmt.Errorf("end of %v: %w", topics, err)
		}
		if err == nil {
			return out, nil
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(100 * time.Millisecond):
		}
	}
}
