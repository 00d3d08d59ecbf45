package state

import (
	"bytes"
	"cmp"
	"math"
	"math/big"
	"testing"
)

// FuzzWindowLayout checks the properties of the two orders of a segment
// that the stores rely on: a key's windows are contiguous and in order of
// start in the by-key order, whatever the other keys (prefixes of it,
// longer, holding any bytes); the by-time order is by start, then key; and
// the bounds the stores build select exactly the windows in range.
func FuzzWindowLayout(f *testing.F) {
	f.Add([]byte("a"), []byte("ab"), int64(0), int64(-1), int64(5))
	f.Add([]byte(""), []byte("\x00"), int64(math.MinInt64), int64(math.MinInt64), int64(math.MaxInt64))
	f.Add([]byte("\xff"), []byte("\xff\xff"), int64(math.MaxInt64), int64(0), int64(math.MaxInt64))
	f.Add([]byte("k"), []byte("k"), int64(-60001), int64(-60001), int64(-60001))
	f.Fuzz(func(t *testing.T, k1, k2 []byte, s, lo, hi int64) {
		same := bytes.Equal(k1, k2)

		// By key: [k1 at lo, k1 at hi + 0x00) holds k2 at s iff it is k1's
		// window in [lo, hi].
		w := appendByKey(nil, k2, s)
		if len(w) != byKeyLen(k2) {
			t.Fatalf("byKeyLen(%q) = %d, want %d", k2, byKeyLen(k2), len(w))
		}
		lower, upper := appendByKey(nil, k1, lo), append(appendByKey(nil, k1, hi), 0)
		in := bytes.Compare(w, lower) >= 0 && bytes.Compare(w, upper) < 0
		if want := same && lo <= s && s <= hi; in != want {
			t.Fatalf("by key: %q@%d in [%q@%d, %q@%d]: %t, want %t", k2, s, k1, lo, k1, hi, in, want)
		}
		if same {
			if got, want := bytes.Compare(appendByKey(nil, k1, lo), appendByKey(nil, k1, hi)), cmp.Compare(lo, hi); got != want {
				t.Fatalf("by key: %q@%d vs @%d: %d, want %d", k1, lo, hi, got, want)
			}
		}

		// By time: by start, then key bytewise; and [lo, past hi) holds
		// any key at s iff s is in [lo, hi].
		a, b := appendByTime(nil, k1, lo), appendByTime(nil, k2, s)
		if got, want := bytes.Compare(a, b), cmp.Or(cmp.Compare(lo, s), bytes.Compare(k1, k2)); got != want {
			t.Fatalf("by time: %q@%d vs %q@%d: %d, want %d", k1, lo, k2, s, got, want)
		}
		if k, start := parseByTime(b); !bytes.Equal(k, k2) || start != s {
			t.Fatalf("parseByTime(%q@%d) = %q@%d", k2, s, k, start)
		}
		tl, tu := appendSortable(nil, lo), prefixEnd(appendSortable(nil, hi))
		in = bytes.Compare(b, tl) >= 0 && (tu == nil || bytes.Compare(b, tu) < 0)
		if want := lo <= s && s <= hi; in != want {
			t.Fatalf("by time: %q@%d in [%d, %d]: %t, want %t", k2, s, lo, hi, in, want)
		}

		// Segments: seg*interval <= s < (seg+1)*interval, in exact
		// arithmetic, for the smallest interval and another.
		for _, interval := range []int64{minSegmentInterval, segmentIntervalOf(max(hi, 0))} {
			seg := segmentOf(s, interval)
			first := new(big.Int).Mul(big.NewInt(seg), big.NewInt(interval))
			next := new(big.Int).Add(first, big.NewInt(interval))
			if bs := big.NewInt(s); bs.Cmp(first) < 0 || bs.Cmp(next) >= 0 {
				t.Fatalf("segmentOf(%d, %d) = %d", s, interval, seg)
			}
			// Segment prefixes sort as the segments do.
			if got, want := bytes.Compare(appendSegment(nil, seg), appendSegment(nil, segmentOf(lo, interval))), cmp.Compare(seg, segmentOf(lo, interval)); got != want {
				t.Fatalf("segment prefixes of %d and %d: %d, want %d", s, lo, got, want)
			}
		}
	})
}

// TestWindowClock checks the expiry arithmetic at the edges of int64.
func TestWindowClock(t *testing.T) {
	c := windowClock{retention: 10, interval: minSegmentInterval}
	if got := c.minLive(); got != math.MinInt64 {
		t.Errorf("minLive with nothing observed = %d", got)
	}
	for _, tt := range []struct{ observed, want int64 }{
		{math.MinInt64, math.MinInt64},
		{math.MinInt64 + 9, math.MinInt64},
		{math.MinInt64 + 10, math.MinInt64},
		{math.MinInt64 + 11, math.MinInt64 + 1},
		{0, -10},
		{math.MaxInt64, math.MaxInt64 - 10},
	} {
		c := c.advance(tt.observed)
		if got := c.minLive(); got != tt.want {
			t.Errorf("minLive at %d = %d, want %d", tt.observed, got, tt.want)
		}
		if c2 := c.advance(tt.observed - 1); tt.observed > math.MinInt64 && c2 != c {
			t.Errorf("an earlier start moved the clock: %+v -> %+v", c, c2)
		}
	}
	if got := retentionMillis(1500 * 1000); got != 2 {
		t.Errorf("retentionMillis(1.5ms) = %d", got)
	}
	if got := retentionMillis(1); got != 1 {
		t.Errorf("retentionMillis(1ns) = %d", got)
	}
	if got := segmentIntervalOf(10 * 60_000); got != 5*60_000 {
		t.Errorf("segmentIntervalOf(10m) = %d", got)
	}
	if got := segmentIntervalOf(90_000); got != minSegmentInterval {
		t.Errorf("segmentIntervalOf(90s) = %d", got)
	}
}
