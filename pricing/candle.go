package pricing

import (
	"fmt"
	"slices"
	"time"
)

// Interval is the length of a candle.
type Interval int

// Candle intervals. Candles start at multiples of the interval in UTC: a
// minute, an hour, a day at 00:00 UTC.
const (
	Minute Interval = iota + 1 // "1m"
	Hour                       // "1h"
	Day                        // "1d"
)

var intervalNames = [...]string{Minute: "1m", Hour: "1h", Day: "1d"}

// Intervals returns every interval, shortest first.
func Intervals() []Interval { return []Interval{Minute, Hour, Day} }

// ParseInterval parses "1m", "1h" or "1d".
func ParseInterval(s string) (Interval, error) {
	for _, iv := range Intervals() {
		if intervalNames[iv] == s {
			return iv, nil
		}
	}
	return 0, fmt.Errorf("interval %q: want 1m, 1h or 1d", s)
}

func (iv Interval) valid() bool { return iv >= Minute && iv <= Day }

// String returns "1m", "1h" or "1d", and "Interval(n)" for an invalid one.
func (iv Interval) String() string {
	if !iv.valid() {
		return fmt.Sprintf("Interval(%d)", int(iv))
	}
	return intervalNames[iv]
}

// Duration returns the interval's length; 0 for an invalid interval.
func (iv Interval) Duration() time.Duration {
	switch iv {
	case Minute:
		return time.Minute
	case Hour:
		return time.Hour
	case Day:
		return 24 * time.Hour
	}
	return 0
}

// Start returns the start of the interval that holds t, in UTC. Go time
// has no leap seconds, so days start at 00:00 UTC.
func (iv Interval) Start(t time.Time) time.Time { return t.UTC().Truncate(iv.Duration()) }

// Candle is the open, high, low and close price (ticks) of one interval
// starting at Start, and the volume observed in it (GPU-hours or a count of
// samples: whatever the caller passes to Observe).
type Candle struct {
	Start  time.Time `json:"start"`
	Open   int64     `json:"open"`
	High   int64     `json:"high"`
	Low    int64     `json:"low"`
	Close  int64     `json:"close"`
	Volume int64     `json:"volume"`
}

// merge folds a later candle (or observation) of the same interval into c.
func (c *Candle) merge(o Candle) {
	c.High = max(c.High, o.High)
	c.Low = min(c.Low, o.Low)
	c.Close = o.Close
	c.Volume += o.Volume
}

// DefaultCandleKeep is a sensible number of candles to keep per interval:
// a day of minutes, two months of hours, four years of days.
const DefaultCandleKeep = 1440

// CandleSeries builds 1m, 1h and 1d candles from price observations, keeping
// the newest keep candles of each interval. Intervals without observations
// have no candle (no gap filling). Not safe for concurrent use.
type CandleSeries struct {
	keep   int
	series [Day + 1][]Candle // by Interval, oldest first; may hold up to 2×keep
	last   time.Time
	has    bool
}

// NewCandleSeries returns an empty series that keeps the newest keep
// candles per interval; keep < 1 means DefaultCandleKeep.
func NewCandleSeries(keep int) *CandleSeries {
	if keep < 1 {
		keep = DefaultCandleKeep
	}
	return &CandleSeries{keep: keep}
}

// Observe records a price (ticks) with its volume at time t into the
// candle of every interval, and reports whether it was recorded.
// Observations must come in non-decreasing time: one before the latest
// recorded observation, with a negative price or a negative volume is
// dropped (false). A volume of 0 records a price sample without volume.
func (s *CandleSeries) Observe(t time.Time, price, volume int64) bool {
	if price < 0 || volume < 0 || (s.has && t.Before(s.last)) {
		return false
	}
	s.last, s.has = t, true
	for _, iv := range Intervals() {
		o := Candle{Start: iv.Start(t), Open: price, High: price, Low: price, Close: price, Volume: volume}
		cs := s.series[iv]
		if n := len(cs); n > 0 && cs[n-1].Start.Equal(o.Start) {
			cs[n-1].merge(o)
			continue
		}
		cs = append(cs, o)
		// Trim only when twice over the bound, so trimming copies each
		// candle O(1) times on average.
		if len(cs) > 2*s.keep {
			n := copy(cs, cs[len(cs)-s.keep:])
			cs = cs[:n]
		}
		s.series[iv] = cs
	}
	return true
}

// Candles returns the newest candles of an interval (at most keep), oldest
// first, as a copy; nil for an invalid interval or no observations.
func (s *CandleSeries) Candles(iv Interval) []Candle {
	if !iv.valid() {
		return nil
	}
	cs := s.series[iv]
	return slices.Clone(cs[max(0, len(cs)-s.keep):])
}

// Last returns the newest candle of an interval, the one still forming;
// false for an invalid interval or no observations.
func (s *CandleSeries) Last(iv Interval) (Candle, bool) {
	if !iv.valid() || len(s.series[iv]) == 0 {
		return Candle{}, false
	}
	cs := s.series[iv]
	return cs[len(cs)-1], true
}

// RollUp builds candles of a longer interval from shorter ones (1m → 1h,
// 1m → 1d, 1h → 1d): candles are taken in Start order and grouped by the
// interval that holds their Start; a group opens at its first candle's
// Open, closes at its last's Close, spans their highest High and lowest Low
// and sums their Volume. Rolling up the complete 1m candles of a series
// gives exactly its 1h candles. The input is not modified; RollUp returns
// nil for an invalid interval or no candles.
func RollUp(cs []Candle, iv Interval) []Candle {
	if !iv.valid() || len(cs) == 0 {
		return nil
	}
	sorted := slices.Clone(cs)
	slices.SortStableFunc(sorted, func(a, b Candle) int { return a.Start.Compare(b.Start) })
	var out []Candle
	for _, c := range sorted {
		start := iv.Start(c.Start)
		if n := len(out); n > 0 && out[n-1].Start.Equal(start) {
			out[n-1].merge(c)
			continue
		}
		c.Start = start
		out = append(out, c)
	}
	return out
}
