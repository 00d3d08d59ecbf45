package state

import (
	"context"

	"github.com/cockroachdb/pebble/v2"
)

// Hooks for the tests of package state_test into how window stores keep
// their segments.

// unwrapWindow returns the store under the layers over ws.
func unwrapWindow(ws WindowStore) WindowStore {
	if l, ok := ws.(*loggedWindowStore); ok {
		return unwrapWindow(l.WindowStore)
	}
	return ws
}

// WindowSegments returns the segments ws holds, in order: for an in-memory
// store, those in its map; for a persistent one, those with any entry
// visible in its database.
func WindowSegments(ws WindowStore) []int64 {
	switch s := unwrapWindow(ws).(type) {
	case *memWindowStore:
		s.mu.RLock()
		defer s.mu.RUnlock()
		return append([]int64(nil), s.ids...)
	case *pebbleWindowStore:
		segs, err := s.findSegments()
		if err != nil {
			panic(err)
		}
		return segs
	}
	panic("not a window store")
}

// WindowEntries returns how many entries (both orders) ws holds in segment
// seg: the items of its trees in memory, the keys visible in its database
// on disk.
func WindowEntries(ws WindowStore, seg int64) int {
	switch s := unwrapWindow(ws).(type) {
	case *memWindowStore:
		s.mu.RLock()
		defer s.mu.RUnlock()
		g := s.segs[seg]
		if g == nil {
			return 0
		}
		return g.byKey.count + g.byTime.count
	case *pebbleWindowStore:
		it, err := s.kv.db.NewIter(&pebble.IterOptions{LowerBound: appendSegment(nil, seg), UpperBound: appendSegment(nil, seg+1)})
		if err != nil {
			panic(err)
		}
		defer it.Close()
		n := 0
		for ok := it.First(); ok; ok = it.Next() {
			n++
		}
		return n
	}
	panic("not a window store")
}

// WindowRangeDeletes returns how many segments a persistent window store
// has dropped by a range deletion since it was opened.
func WindowRangeDeletes(ws WindowStore) int64 {
	return unwrapWindow(ws).(*pebbleWindowStore).rangeDeletes.Load()
}

// WindowSegmentInterval returns the segment interval of ws, in ms.
func WindowSegmentInterval(ws WindowStore) int64 {
	switch s := unwrapWindow(ws).(type) {
	case *memWindowStore:
		return s.clock.interval
	case *pebbleWindowStore:
		return s.interval
	}
	panic("not a window store")
}

// WindowTables flushes a persistent window store and returns, summed over
// its sstables, the entries, the point deletions and the range deletions.
func WindowTables(ws WindowStore) (entries, pointDeletions, rangeDeletions uint64) {
	s := unwrapWindow(ws).(*pebbleWindowStore)
	if err := s.Flush(); err != nil {
		panic(err)
	}
	levels, err := s.kv.db.SSTables(pebble.WithProperties())
	if err != nil {
		panic(err)
	}
	for _, level := range levels {
		for _, t := range level {
			entries += t.Properties.NumEntries
			pointDeletions += t.Properties.NumDeletions - t.Properties.NumRangeDeletions
			rangeDeletions += t.Properties.NumRangeDeletions
		}
	}
	return entries, pointDeletions, rangeDeletions
}

// WindowCompact compacts every window of a persistent window store, so
// that reads see a settled database.
func WindowCompact(ws WindowStore) error {
	s := unwrapWindow(ws).(*pebbleWindowStore)
	if err := s.Flush(); err != nil {
		return err
	}
	return s.kv.db.Compact(context.Background(), []byte{dataPrefix}, []byte{dataPrefix + 1}, true)
}
