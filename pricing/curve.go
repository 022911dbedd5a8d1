package pricing

import (
	"encoding/json"
	"time"
)

// Order is a resting order as the forward curve sees it: Quantity GPUs for
// every hour of [Start, End) at Price ticks per GPU-hour.
type Order struct {
	Price    int64
	Quantity int64
	Start    time.Time
	End      time.Time
}

// Tenor buckets: when an order's window starts, relative to now.
const (
	Tenor24h   = "24h"   // starts before now + 24 h (including windows already under way)
	Tenor7d    = "7d"    // starts in [now + 24 h, now + 7 d)
	Tenor30d   = "30d"   // starts in [now + 7 d, now + 30 d)
	TenorLater = "later" // starts at now + 30 d or later
)

// Duration buckets: how long an order's whole window is.
const (
	DurationLE24h  = "le24h"  // End − Start ≤ 24 h
	DurationLE7d   = "le7d"   // 24 h < End − Start ≤ 7 d
	DurationLonger = "longer" // End − Start > 7 d
)

const oneDay = 24 * time.Hour

var (
	tenors    = [...]string{Tenor24h, Tenor7d, Tenor30d, TenorLater}
	durations = [...]string{DurationLE24h, DurationLE7d, DurationLonger}
)

func tenorIndex(now, start time.Time) int {
	switch d := start.Sub(now); {
	case d < oneDay:
		return 0
	case d < 7*oneDay:
		return 1
	case d < 30*oneDay:
		return 2
	}
	return 3
}

func durationIndex(d time.Duration) int {
	switch {
	case d <= oneDay:
		return 0
	case d <= 7*oneDay:
		return 1
	}
	return 2
}

// CurvePoint is the best bid and best ask of one tenor × duration bucket.
// Prices are ticks; a side is present when its Has flag is true, and then
// its quantity is the sum of the GPUs of the orders at the best price.
type CurvePoint struct {
	Tenor       string
	Duration    string
	HasBid      bool
	BestBid     int64
	BidQuantity int64
	HasAsk      bool
	BestAsk     int64
	AskQuantity int64
}

var _ json.Marshaler = CurvePoint{}

// MarshalJSON writes the API's shape: {"tenor", "duration", "best_bid",
// "bid_quantity", "best_ask", "ask_quantity"}, prices as decimal strings
// (FormatPrice), a missing side as null prices and 0 quantity.
func (p CurvePoint) MarshalJSON() ([]byte, error) {
	price := func(has bool, ticks int64) *string {
		if !has {
			return nil
		}
		s := FormatPrice(ticks)
		return &s
	}
	return json.Marshal(struct {
		Tenor       string  `json:"tenor"`
		Duration    string  `json:"duration"`
		BestBid     *string `json:"best_bid"`
		BidQuantity int64   `json:"bid_quantity"`
		BestAsk     *string `json:"best_ask"`
		AskQuantity int64   `json:"ask_quantity"`
	}{p.Tenor, p.Duration, price(p.HasBid, p.BestBid), p.BidQuantity, price(p.HasAsk, p.BestAsk), p.AskQuantity})
}

// ForwardCurve buckets resting orders by tenor (when their window starts,
// relative to now) and duration (End − Start) and returns, for every bucket
// with at least one order, the best bid (highest price) and best ask
// (lowest price). Points come in tenor order 24h, 7d, 30d, later, and
// within a tenor in duration order le24h, le7d, longer. Orders that cannot
// trade are left out: Quantity ≤ 0, Price < 0, End not after Start, or End
// at or before now.
func ForwardCurve(now time.Time, bids, asks []Order) []CurvePoint {
	var grid [len(tenors)][len(durations)]CurvePoint
	add := func(o Order, bid bool) {
		if o.Quantity <= 0 || o.Price < 0 || !o.End.After(o.Start) || !o.End.After(now) {
			return
		}
		p := &grid[tenorIndex(now, o.Start)][durationIndex(o.End.Sub(o.Start))]
		has, best, qty := &p.HasAsk, &p.BestAsk, &p.AskQuantity
		if bid {
			has, best, qty = &p.HasBid, &p.BestBid, &p.BidQuantity
		}
		switch {
		case !*has || (bid && o.Price > *best) || (!bid && o.Price < *best):
			*has, *best, *qty = true, o.Price, o.Quantity
		case o.Price == *best:
			*qty += o.Quantity
		}
	}
	for _, o := range bids {
		add(o, true)
	}
	for _, o := range asks {
		add(o, false)
	}
	var out []CurvePoint
	for i := range grid {
		for j := range grid[i] {
			if p := grid[i][j]; p.HasBid || p.HasAsk {
				p.Tenor, p.Duration = tenors[i], durations[j]
				out = append(out, p)
			}
		}
	}
	return out
}
