// Package survival estimates how long a resting limit order waits for a fill,
// from the market's own history of resting orders, with the Kaplan–Meier
// product-limit estimator. An order that was cancelled or expired before it
// filled is right-censored: it says "no fill in the first t", not "never".
// That is the treatment Lo, MacKinlay and Zhang (2002) gave limit-order
// execution times, and it is what keeps the estimate honest when most orders
// are withdrawn before they fill.
//
// Orders are bucketed by how far their limit sits from the market's price
// when they were placed (the clearing price for spot, the best ask for
// reserved), because a bid 30 % under the ask does not wait like one at it.
//
// The package is pure computation over a slice of observations: it does no
// I/O and holds no state. The read side feeds it from closed orders; it never
// runs on the sequencer goroutine.
package survival

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MinSamples is the fewest observations in a bucket for which an estimate
// is given; with fewer, Estimate returns nil.
const MinSamples = 30

// Observation is one resting order's life: how long it rested and whether
// that ended in a fill (true) or in a cancel or expiry (false: censored).
type Observation struct {
	Waited time.Duration
	Filled bool
}

// Estimate answers "will a limit like this fill, and when?".
type Estimate struct {
	// PFill1h and PFill24h are the estimated probabilities of a fill within
	// one hour and within 24 hours, 1 − S(t).
	PFill1h  float64
	PFill24h float64
	// Median is the smallest observed wait by which half the orders are
	// estimated to have filled; nil when the curve never falls to one half
	// (too many orders censored or unfilled to say).
	Median *time.Duration
	// Samples is the number of observations the estimate rests on.
	Samples int
}

// Curve is a Kaplan–Meier survival curve: S(t) is the probability that an
// order is still unfilled after waiting t.
type Curve struct {
	times []time.Duration // distinct fill times, ascending
	surv  []float64       // S just after times[i]
	n     int
}

// Fit builds the survival curve of obs. It does not modify obs. Ties follow
// the usual convention: an order censored at the same instant as fills is
// counted as still at risk for those fills.
func Fit(obs []Observation) Curve {
	sorted := slices.Clone(obs)
	slices.SortFunc(sorted, func(a, b Observation) int {
		// fills before censorings at equal times, so the censored are at risk
		return cmp.Or(cmp.Compare(a.Waited, b.Waited), -cmpBool(a.Filled, b.Filled))
	})
	c := Curve{n: len(sorted)}
	s := 1.0
	atRisk := len(sorted)
	for i := 0; i < len(sorted); {
		t := sorted[i].Waited
		fills, leaving := 0, 0
		for ; i < len(sorted) && sorted[i].Waited == t; i++ {
			if sorted[i].Filled {
				fills++
			}
			leaving++
		}
		if fills > 0 {
			s *= 1 - float64(fills)/float64(atRisk)
			c.times = append(c.times, t)
			c.surv = append(c.surv, s)
		}
		atRisk -= leaving
	}
	return c
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// S is the estimated probability of still being unfilled after waiting t.
func (c Curve) S(t time.Duration) float64 {
	// last fill time ≤ t
	i, found := slices.BinarySearch(c.times, t)
	if !found {
		i--
	}
	if i < 0 {
		return 1
	}
	return c.surv[i]
}

// Median is the first fill time at which S falls to one half or below.
func (c Curve) Median() (time.Duration, bool) {
	for i, s := range c.surv {
		if s <= 0.5 {
			return c.times[i], true
		}
	}
	return 0, false
}

// EstimateOf summarises obs, or returns nil with fewer than MinSamples
// observations.
func EstimateOf(obs []Observation) *Estimate {
	if len(obs) < MinSamples {
		return nil
	}
	c := Fit(obs)
	e := &Estimate{
		PFill1h:  round4(1 - c.S(time.Hour)),
		PFill24h: round4(1 - c.S(24*time.Hour)),
		Samples:  len(obs),
	}
	if m, ok := c.Median(); ok {
		e.Median = &m
	}
	return e
}

func round4(x float64) float64 { return math.Round(x*10000) / 10000 }

// Bucket is a band of distance between an order's limit and the market's
// price when it was placed, in basis points of that price: 0 means at or
// through the price.
type Bucket int

// Buckets, by the upper edge of the gap below the price they hold.
var bucketEdges = []int64{0, 100, 300, 1000, 2500}

// Buckets is the number of distance bands.
var Buckets = len(bucketEdges) + 1

// BucketOf places a buyer's limit relative to the price it faced (both in
// the same integer unit, e.g. ticks). A price ≤ 0 (no price in the market)
// puts the order in the farthest band, since nothing was trading near it.
func BucketOf(limit, price int64) Bucket {
	if price <= 0 {
		return Bucket(len(bucketEdges))
	}
	gap := price - limit
	if gap <= 0 {
		return 0
	}
	// gap/price in basis points without overflow: prices are bounded far
	// below 2^63/10^4 by the engine's limits, so gap*10000 fits.
	bps := gap * 10000 / price
	for i, edge := range bucketEdges[1:] {
		if bps <= edge {
			return Bucket(i + 1)
		}
	}
	return Bucket(len(bucketEdges))
}

// String names the band, e.g. "1%-3% below".
func (b Bucket) String() string {
	switch {
	case b <= 0:
		return "at or above price"
	case int(b) >= len(bucketEdges):
		return ">" + pct(bucketEdges[len(bucketEdges)-1]) + " below"
	}
	return pct(bucketEdges[b-1]) + "-" + pct(bucketEdges[b]) + " below"
}

func pct(bps int64) string {
	s := strconv.FormatInt(bps/100, 10)
	if frac := bps % 100; frac != 0 {
		s += strings.TrimRight("."+strconv.FormatInt(frac+100, 10)[1:], "0")
	}
	return s + "%"
}
