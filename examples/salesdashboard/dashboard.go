package main

import "time"

// Dashboard is everything the page shows, at one moment, for the whole
// shop: the figures come from the stores of every instance through
// interactive queries, so any instance serves the same numbers. It is the
// JSON of GET /api/dashboard and of each server-sent event of
// GET /api/events. Money is in cents, so figures add up exactly.
type Dashboard struct {
	// At is when the figures were read.
	At time.Time `json:"at"`
	// Total is the whole shop since the start.
	Total Totals `json:"total"`
	// Regions are the totals of each region, by revenue, highest first.
	Regions []RegionTotals `json:"regions"`
	// Minutes are the per-minute figures of each region over the last
	// minutes (tumbling one-minute windows), oldest first.
	Minutes []RegionMinute `json:"minutes"`
	// Trending are the ten products with the most units ordered over the
	// last ten minutes (hopping windows), most first.
	Trending []ProductUnits `json:"trending"`
	// Segments are the customers by segment (new or returning) and spend
	// tier.
	Segments []Segment `json:"segments"`
	// Alerts are the latest low-stock alerts, newest first.
	Alerts []StockAlert `json:"alerts"`
	// Rejected counts the orders that were not valid and went to the
	// dead-letter topic.
	Rejected int64 `json:"rejected"`
	// Instances counts the instances running the app.
	Instances int `json:"instances"`
}

// Totals are an order count and the revenue they brought.
type Totals struct {
	Orders       int64 `json:"orders"`
	RevenueCents int64 `json:"revenueCents"`
	// AvgOrderCents is RevenueCents / Orders, 0 with no orders.
	AvgOrderCents int64 `json:"avgOrderCents"`
}

// RegionTotals are the totals of a region.
type RegionTotals struct {
	Region string `json:"region"`
	Totals
}

// RegionMinute is a region's figures in a one-minute window.
type RegionMinute struct {
	Region string    `json:"region"`
	Start  time.Time `json:"start"`
	Totals
}

// ProductUnits is how many units of a product were ordered in a window.
type ProductUnits struct {
	ProductID string `json:"productId"`
	Units     int64  `json:"units"`
}

// Segment counts the customers of a segment and spend tier, and what
// they spent.
type Segment struct {
	// Segment is "new" (one order so far) or "returning".
	Segment string `json:"segment"`
	// Tier is the spend tier of the customer's total spend: "bronze",
	// "silver" or "gold".
	Tier         string `json:"tier"`
	Customers    int64  `json:"customers"`
	RevenueCents int64  `json:"revenueCents"`
}

// StockAlert says a product's stock fell to or below the threshold.
type StockAlert struct {
	ProductID string    `json:"productId"`
	Stock     int64     `json:"stock"`
	Threshold int64     `json:"threshold"`
	At        time.Time `json:"at"`
}
