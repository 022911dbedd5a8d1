package pricing

import (
	"math/bits"
	"time"
)

// Trade is one fill as the indices see it: Quantity GPUs for Hours hours at
// Price ticks per GPU-hour. Its weight is Quantity×Hours GPU-hours.
type Trade struct {
	Time     time.Time
	Price    int64
	Quantity int64
	Hours    int64
}

// GPUHours returns Quantity×Hours, and false when either is not positive
// or the product overflows int64.
func (t Trade) GPUHours() (int64, bool) {
	if t.Quantity <= 0 || t.Hours <= 0 {
		return 0, false
	}
	hi, lo := bits.Mul64(uint64(t.Quantity), uint64(t.Hours))
	if hi != 0 || lo > 1<<63-1 {
		return 0, false
	}
	return int64(lo), true
}

// VWAP is a rolling volume-weighted average price over the trades of the
// last window (24 h for the published index), weighted by GPU-hours. It
// keeps the trades in the window in time order and exact 128-bit integer
// sums, so Add and Value cost O(1) amortised for trades that arrive in
// time order. The zero value is not usable; call NewVWAP. Not safe for
// concurrent use.
type VWAP struct {
	window time.Duration
	trades []weightedTrade // trades[head:] are in the window, oldest first
	head   int
	sumPV  uint128 // Σ price × GPU-hours
	sumV   uint128 // Σ GPU-hours
	last   Trade
	has    bool
}

type weightedTrade struct {
	t     time.Time
	price uint64
	gh    uint64
}

// NewVWAP returns an empty average over the given window (it must be
// positive; 24*time.Hour for the published index).
func NewVWAP(window time.Duration) *VWAP {
	if window <= 0 {
		panic("pricing: NewVWAP: window must be positive")
	}
	return &VWAP{window: window}
}

// Add records a trade and reports whether it counts. A trade with a price
// outside [0, MaxPrice] or a non-positive or overflowing GPU-hour weight is
// ignored (false) and changes nothing, Last included. Trades are expected in
// non-decreasing Time; an older one is inserted in its place, at O(n) cost.
func (v *VWAP) Add(t Trade) bool {
	gh, ok := t.GPUHours()
	if !ok || t.Price < 0 || t.Price > MaxPrice {
		return false
	}
	w := weightedTrade{t: t.Time, price: uint64(t.Price), gh: uint64(gh)}
	v.sumPV = v.sumPV.add(mul64(w.price, w.gh))
	v.sumV = v.sumV.add(uint128{lo: w.gh})
	i := len(v.trades)
	v.trades = append(v.trades, w)
	for i > v.head && v.trades[i-1].t.After(w.t) {
		v.trades[i] = v.trades[i-1]
		i--
	}
	v.trades[i] = w
	if !v.has || !t.Time.Before(v.last.Time) {
		v.last, v.has = t, true
	}
	return true
}

// Value returns the average price over the trades with Time after
// now − window, rounded half-up to a whole tick, and false when there are
// none. It first drops the trades at or before now − window for good, so
// now must not go backwards between calls. A trade later than now still
// counts.
func (v *VWAP) Value(now time.Time) (int64, bool) {
	cutoff := now.Add(-v.window)
	for v.head < len(v.trades) && !v.trades[v.head].t.After(cutoff) {
		w := v.trades[v.head]
		v.sumPV = v.sumPV.sub(mul64(w.price, w.gh))
		v.sumV = v.sumV.sub(uint128{lo: w.gh})
		v.trades[v.head] = weightedTrade{}
		v.head++
	}
	// Compact once the dead prefix is half the slice: each trade is copied
	// O(1) times on average.
	if v.head > 0 && v.head >= len(v.trades)/2 {
		n := copy(v.trades, v.trades[v.head:])
		clear(v.trades[n:])
		v.trades = v.trades[:n]
		v.head = 0
	}
	if v.sumV.isZero() {
		return 0, false
	}
	return int64(v.sumPV.divRound(v.sumV)), true
}

// Last returns the most recent trade added (greatest Time, the later Add on
// a tie), even when it has left the window; false before the first trade.
func (v *VWAP) Last() (Trade, bool) { return v.last, v.has }

// uint128 is an unsigned 128-bit integer. A window's sums do not overflow
// it: each price × GPU-hours term is below 2^30 × 2^63, so it would take
// 2^35 trades of 2^63 GPU-hours each.
type uint128 struct{ hi, lo uint64 }

func mul64(a, b uint64) uint128 {
	hi, lo := bits.Mul64(a, b)
	return uint128{hi, lo}
}

func (x uint128) add(y uint128) uint128 {
	lo, c := bits.Add64(x.lo, y.lo, 0)
	hi, _ := bits.Add64(x.hi, y.hi, c)
	return uint128{hi, lo}
}

func (x uint128) sub(y uint128) uint128 {
	lo, b := bits.Sub64(x.lo, y.lo, 0)
	hi, _ := bits.Sub64(x.hi, y.hi, b)
	return uint128{hi, lo}
}

func (x uint128) isZero() bool { return x.hi == 0 && x.lo == 0 }

// divRound returns x/y rounded half-up, for a quotient that fits in 63 bits
// (a weighted average of int64 prices always does).
func (x uint128) divRound(y uint128) uint64 {
	// Shift both so the divisor fits in 64 bits; for the sums of a window
	// it already does, the loop is for the impossible-in-practice case of
	// more than 2^64 GPU-hours, where dropping low bits changes only the
	// rounding.
	for y.hi != 0 {
		x = uint128{x.hi >> 1, x.hi<<63 | x.lo>>1}
		y = uint128{y.hi >> 1, y.hi<<63 | y.lo>>1}
	}
	q, r := bits.Div64(x.hi, x.lo, y.lo)
	// Half-up: round up when 2r ≥ y, written so 2r cannot overflow.
	if r >= y.lo-r {
		q++
	}
	return q
}
