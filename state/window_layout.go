package state

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"time"
)

// Window stores, in memory and on disk, share the same shape.
//
// # Segments
//
// Windows are grouped into segments by start time: segment n holds the
// windows whose start is in [n*interval, (n+1)*interval). The segment
// interval is Kafka Streams' default, max(retention/2, 60s), so about three
// segments are live at a time. A persistent store keeps the interval it was
// created with, so a store reopened with another retention still finds its
// windows.
//
// # Observed time and expiry
//
// A store tracks the largest window start it has been given, by Put
// (deletions too) or by Restore: its observed stream time T. A window is
// live while its start is at least T - retention; older windows are
// expired. Expired windows are invisible to Fetch, FetchRange and FetchAll
// at once, a Put of one is ignored, and every segment that holds expired
// windows only (each one whose end is at or before T - retention) is
// dropped as a whole when T moves: in memory, the segment's trees are let
// go; on disk, one range deletion covers the segment. Nothing is ever
// deleted one window at a time for expiry.
//
// # Two orders
//
// FetchRange wants a key's windows together; FetchAll wants windows by
// start, then key. Each segment therefore keeps every window twice, with
// the value, in two orders:
//
//   - by key: uvarint(len(key)) key start — a key's windows are contiguous
//     and in order of start. The length prefix keeps a key that is a prefix
//     of another ("a", "ab") from interleaving with it.
//   - by time: start key — windows in order of start, then key bytewise.
//
// So FetchRange is one seek per segment in range and FetchAll one seek per
// segment in range, each then reading only what it returns; a Put writes
// two entries (in one atomic batch on disk). Starts are written as 8 bytes
// big-endian with the sign bit flipped, so that negative times sort first.
//
// On disk, a window's Pebble key is
//
//	dataPrefix | segment (8, sign-flipped) | family (byKeyFamily or byTimeFamily) | the order's key
//
// and the store's own metadata (applied offset, observed time, segment
// interval) lives under metaPrefix, where no window can be.

// minSegmentInterval is the smallest segment interval, in milliseconds.
const minSegmentInterval int64 = 60_000

// The families of a segment's entries, after the segment id in a Pebble
// key.
const (
	byKeyFamily  byte = 0x00
	byTimeFamily byte = 0x01
)

// segmentIntervalOf returns the segment interval, in milliseconds, of a
// store that keeps windows for retention milliseconds.
func segmentIntervalOf(retention int64) int64 {
	return max(retention/2, minSegmentInterval)
}

// retentionMillis returns d in milliseconds, rounded up, at least 1.
func retentionMillis(d time.Duration) int64 {
	ms := int64(d / time.Millisecond)
	if d%time.Millisecond != 0 {
		ms++
	}
	return max(ms, 1)
}

// segmentOf returns the segment of a window starting at start: start
// divided by interval, rounded down.
func segmentOf(start, interval int64) int64 {
	q := start / interval
	if start%interval != 0 && start < 0 {
		q--
	}
	return q
}

// windowClock is a store's observed stream time and what follows from it.
// It is a value: a writer works out the next clock, writes, and then keeps
// it.
type windowClock struct {
	retention int64 // ms
	interval  int64 // ms
	observed  int64 // the largest start seen, if has
	has       bool
}

// advance returns the clock after a window starting at start is seen.
func (c windowClock) advance(start int64) windowClock {
	if !c.has || start > c.observed {
		c.observed, c.has = start, true
	}
	return c
}

// minLive returns the earliest start of a live window.
func (c windowClock) minLive() int64 {
	if !c.has || c.observed < math.MinInt64+c.retention {
		return math.MinInt64
	}
	return c.observed - c.retention
}

// minLiveSegment returns the earliest segment that may hold live windows:
// every segment before it is expired.
func (c windowClock) minLiveSegment() int64 {
	return segmentOf(c.minLive(), c.interval)
}

// appendSortable appends v as 8 bytes big-endian with the sign bit
// flipped, so that the bytes sort as the numbers do.
func appendSortable(dst []byte, v int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(v)^(1<<63))
}

// sortableInt64 undoes appendSortable; b has at least 8 bytes.
func sortableInt64(b []byte) int64 {
	return int64(binary.BigEndian.Uint64(b) ^ (1 << 63))
}

// appendByKey appends the by-key order's key of key's window at start.
func appendByKey(dst, key []byte, start int64) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(key)))
	dst = append(dst, key...)
	return appendSortable(dst, start)
}

// byKeyLen is the length of appendByKey's output.
func byKeyLen(key []byte) int {
	return uvarintLen(uint64(len(key))) + len(key) + 8
}

// uvarintLen returns the length of v as a uvarint.
func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// appendByTime appends the by-time order's key of key's window at start.
func appendByTime(dst, key []byte, start int64) []byte {
	return append(appendSortable(dst, start), key...)
}

// parseByTime undoes appendByTime; b has at least 8 bytes. The key it
// returns is a part of b.
func parseByTime(b []byte) (key []byte, start int64) {
	return b[8:len(b):len(b)], sortableInt64(b)
}

// windowRecord is a changelog record of a window store, decoded.
type windowRecord struct {
	key   []byte
	start int64
	value []byte // nil: deleted
}

// decodeWindowRecords splits the keys of records, which must be
// [WindowKey]s. It fails, naming the record, on a nil key or one too short
// to be windowed. The slices of what it returns are those of records.
func decodeWindowRecords(records []ChangelogRecord) ([]windowRecord, error) {
	out := make([]windowRecord, len(records))
	for i, r := range records {
		if r.Key == nil {
			return nil, ErrNilKey
		}
		key, start, err := SplitWindowKey(r.Key)
		if err != nil {
			// SplitWindowKey's errors say "state: " already.
			return nil, fmt.Errorf("record %d: %s", i, strings.TrimPrefix(err.Error(), "state: "))
		}
		out[i] = windowRecord{key: key, start: start, value: r.Value}
	}
	return out, nil
}
