package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/riffle-streams/riffle"
)

// What the dashboard shows.
const (
	// MinutesShown is how many one-minute windows of each region the
	// dashboard shows, the current one included.
	MinutesShown = 15
	// TopProducts is how many trending products it shows.
	TopProducts = 10
	// MaxAlerts is how many low-stock alerts it shows, the latest.
	MaxAlerts = 20
)

// readDashboard reads the whole shop's figures at now from app's stores
// through interactive queries: from this instance's stores or, for keys
// another instance holds, from that instance. Any instance therefore
// answers the same.
func readDashboard(ctx context.Context, app *riffle.App, now time.Time) (Dashboard, error) {
	return buildDashboard(ctx, appStores{app}, now)
}

// passing reports whether err is a read that failed only because a store
// is restoring or its task is moving between instances (the query API's
// 503): it passes without anyone acting.
func passing(err error) bool {
	var qe *riffle.QueryError
	return errors.As(err, &qe) && qe.Status == http.StatusServiceUnavailable
}

// stores is how the dashboard reads the stores of the topology. Every
// store the dashboard reads has string keys; values come as JSON, as the
// query API gives them.
type stores interface {
	// rangeAll returns every entry of a key-value store with a key in
	// [from, to) ("" for an open bound), in the order of the keys' bytes.
	rangeAll(ctx context.Context, store, from, to string) ([]entry, error)
	// windows returns key's windows of a window store that start in
	// [from, to].
	windows(ctx context.Context, store, key string, from, to time.Time) ([]riffle.Window[json.RawMessage], error)
	// allWindows returns every key's windows of a window store that start
	// in [from, to], in order of start, then of the keys' bytes.
	allWindows(ctx context.Context, store string, from, to time.Time) ([]riffle.KeyWindow[string, json.RawMessage], error)
	// get returns key's value in a key-value store; ok is false if the
	// key is absent.
	get(ctx context.Context, store, key string) (v json.RawMessage, ok bool, err error)
	// instances counts the instances running the app.
	instances(ctx context.Context) (int, error)
}

// entry is an entry of a key-value store.
type entry struct {
	key   string
	value json.RawMessage
}

// appStores reads an App's stores through riffle's query functions.
type appStores struct{ app *riffle.App }

func (s appStores) rangeAll(ctx context.Context, store, from, to string) ([]entry, error) {
	var lo, hi *string
	if from != "" {
		lo = &from
	}
	if to != "" {
		hi = &to
	}
	var out []entry
	after := ""
	for {
		page, next, err := riffle.Range[string, json.RawMessage](ctx, s.app, store, lo, hi, after, 1000)
		if err != nil {
			return nil, err
		}
		for _, kv := range page {
			out = append(out, entry{key: kv.Key, value: kv.Value})
		}
		if next == "" {
			return out, nil
		}
		after = next
	}
}

func (s appStores) windows(ctx context.Context, store, key string, from, to time.Time) ([]riffle.Window[json.RawMessage], error) {
	return riffle.Windows[string, json.RawMessage](ctx, s.app, store, key, from, to)
}

func (s appStores) allWindows(ctx context.Context, store string, from, to time.Time) ([]riffle.KeyWindow[string, json.RawMessage], error) {
	var out []riffle.KeyWindow[string, json.RawMessage]
	after := ""
	for {
		page, next, err := riffle.AllWindows[string, json.RawMessage](ctx, s.app, store, from, to, after, 1000)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if next == "" {
			return out, nil
		}
		after = next
	}
}

func (s appStores) get(ctx context.Context, store, key string) (json.RawMessage, bool, error) {
	return riffle.Get[string, json.RawMessage](ctx, s.app, store, key)
}

func (s appStores) instances(ctx context.Context) (int, error) {
	md, err := s.app.Metadata(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, in := range md {
		if in.Error == "" {
			n++
		}
	}
	return n, nil
}

// buildDashboard reads every figure of the dashboard at now from st.
func buildDashboard(ctx context.Context, st stores, now time.Time) (Dashboard, error) {
	d := Dashboard{At: now.UTC()}
	var err error
	if d.Regions, err = readRegions(ctx, st); err != nil {
		return Dashboard{}, err
	}
	for _, r := range d.Regions {
		d.Total.Orders += r.Orders
		d.Total.RevenueCents += r.RevenueCents
	}
	d.Total = totals(Sales{Orders: d.Total.Orders, RevenueCents: d.Total.RevenueCents})
	if d.Minutes, err = readMinutes(ctx, st, d.Regions, now); err != nil {
		return Dashboard{}, err
	}
	if d.Trending, err = readTrending(ctx, st, now); err != nil {
		return Dashboard{}, err
	}
	if d.Segments, err = readSegments(ctx, st); err != nil {
		return Dashboard{}, err
	}
	if d.Alerts, err = readAlerts(ctx, st); err != nil {
		return Dashboard{}, err
	}
	v, ok, err := st.get(ctx, StoreRejected, OrdersTopic)
	if err != nil {
		return Dashboard{}, fmt.Errorf("read the rejected orders (store %q): %w", StoreRejected, err)
	}
	if ok {
		if err := json.Unmarshal(v, &d.Rejected); err != nil {
			return Dashboard{}, fmt.Errorf("read the rejected orders (store %q): %w", StoreRejected, err)
		}
	}
	if d.Instances, err = st.instances(ctx); err != nil {
		return Dashboard{}, fmt.Errorf("read the instances: %w", err)
	}
	return d, nil
}

// totals adds the average order value to s.
func totals(s Sales) Totals {
	t := Totals{Orders: s.Orders, RevenueCents: s.RevenueCents}
	if s.Orders > 0 {
		t.AvgOrderCents = s.RevenueCents / s.Orders
	}
	return t
}

// readRegions returns each region's totals, highest revenue first.
func readRegions(ctx context.Context, st stores) ([]RegionTotals, error) {
	es, err := st.rangeAll(ctx, StoreRegionTotals, "", "")
	if err != nil {
		return nil, fmt.Errorf("read the regions' totals (store %q): %w", StoreRegionTotals, err)
	}
	out := make([]RegionTotals, 0, len(es))
	for _, e := range es {
		var s Sales
		if err := json.Unmarshal(e.value, &s); err != nil {
			return nil, fmt.Errorf("read the totals of region %q (store %q): %w", e.key, StoreRegionTotals, err)
		}
		out = append(out, RegionTotals{Region: e.key, Totals: totals(s)})
	}
	slices.SortFunc(out, func(a, b RegionTotals) int {
		return cmp.Or(cmp.Compare(b.RevenueCents, a.RevenueCents), cmp.Compare(a.Region, b.Region))
	})
	return out, nil
}

// readMinutes returns each region's figures in the last MinutesShown
// one-minute windows, oldest first (regions by name within a minute).
func readMinutes(ctx context.Context, st stores, regions []RegionTotals, now time.Time) ([]RegionMinute, error) {
	from := now.Truncate(Minute).Add(-(MinutesShown - 1) * Minute)
	out := []RegionMinute{}
	for _, r := range regions {
		ws, err := st.windows(ctx, StoreRegionMinutes, r.Region, from, now)
		if err != nil {
			return nil, fmt.Errorf("read the minutes of region %q (store %q): %w", r.Region, StoreRegionMinutes, err)
		}
		for _, w := range ws {
			var s Sales
			if err := json.Unmarshal(w.Value, &s); err != nil {
				return nil, fmt.Errorf("read the minute %v of region %q (store %q): %w", w.Start, r.Region, StoreRegionMinutes, err)
			}
			out = append(out, RegionMinute{Region: r.Region, Start: w.Start.UTC(), Totals: totals(s)})
		}
	}
	slices.SortFunc(out, func(a, b RegionMinute) int {
		return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.Region, b.Region))
	})
	return out, nil
}

// TrendingStart returns the start of the trending window the dashboard
// shows at now: the hopping window that ends first after now, which holds
// the last TrendingWindow minus less than one TrendingAdvance.
func TrendingStart(now time.Time) time.Time {
	return now.Truncate(TrendingAdvance).Add(TrendingAdvance - TrendingWindow).UTC()
}

// readTrending returns the TopProducts products with the most units in the
// trending window at now, most first: every product's window of that
// start, listed across instances.
func readTrending(ctx context.Context, st stores, now time.Time) ([]ProductUnits, error) {
	start := TrendingStart(now)
	ws, err := st.allWindows(ctx, StoreProductUnits, start, start)
	if err != nil {
		return nil, fmt.Errorf("read the trending products (store %q): %w", StoreProductUnits, err)
	}
	out := []ProductUnits{}
	for _, w := range ws {
		var units int64
		if err := json.Unmarshal(w.Value, &units); err != nil {
			return nil, fmt.Errorf("read the trending units of %q (store %q): %w", w.Key, StoreProductUnits, err)
		}
		if units > 0 {
			out = append(out, ProductUnits{ProductID: w.Key, Units: units})
		}
	}
	return topProducts(out, TopProducts), nil
}

// topProducts sorts ps by units, most first (then by id), and keeps n.
func topProducts(ps []ProductUnits, n int) []ProductUnits {
	slices.SortFunc(ps, func(a, b ProductUnits) int {
		return cmp.Or(cmp.Compare(b.Units, a.Units), cmp.Compare(a.ProductID, b.ProductID))
	})
	return ps[:min(n, len(ps))]
}

// readSegments returns every segment and tier, new ones first, bronze to
// gold, those with no customers included.
func readSegments(ctx context.Context, st stores) ([]Segment, error) {
	es, err := st.rangeAll(ctx, StoreSegments, "", "")
	if err != nil {
		return nil, fmt.Errorf("read the segments (store %q): %w", StoreSegments, err)
	}
	byKey := map[string]SegmentTotals{}
	for _, e := range es {
		var t SegmentTotals
		if err := json.Unmarshal(e.value, &t); err != nil {
			return nil, fmt.Errorf("read segment %q (store %q): %w", e.key, StoreSegments, err)
		}
		byKey[e.key] = t
	}
	out := make([]Segment, 0, 6)
	for _, s := range []string{"new", "returning"} {
		for _, tier := range []string{"bronze", "silver", "gold"} {
			t := byKey[s+"|"+tier]
			out = append(out, Segment{Segment: s, Tier: tier, Customers: t.Customers, RevenueCents: t.RevenueCents})
		}
	}
	return out, nil
}

// readAlerts returns the latest MaxAlerts low-stock alerts, newest first.
func readAlerts(ctx context.Context, st stores) ([]StockAlert, error) {
	es, err := st.rangeAll(ctx, StoreAlerts, "", "")
	if err != nil {
		return nil, fmt.Errorf("read the low-stock alerts (store %q): %w", StoreAlerts, err)
	}
	out := make([]StockAlert, 0, len(es))
	for _, e := range es {
		var a StockAlert
		if err := json.Unmarshal(e.value, &a); err != nil {
			return nil, fmt.Errorf("read the low-stock alert of %q (store %q): %w", e.key, StoreAlerts, err)
		}
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b StockAlert) int {
		return cmp.Or(b.At.Compare(a.At), cmp.Compare(a.ProductID, b.ProductID))
	})
	return out[:min(MaxAlerts, len(out))], nil
}
