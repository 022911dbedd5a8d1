package engine

import "math/bits"

// Money bounds. Every amount the engine keeps fits in an int64 with room to
// spare, and none can pass its bound:
//
//   - MaxAmount bounds one deposit or withdrawal (an input limit: larger
//     is invalid_amount).
//   - MaxMoney bounds all the money inside the engine: the sum of every
//     balance, the fee account's included, which is deposits less
//     withdrawals. A deposit that would take it past MaxMoney is rejected
//     with amount_too_large and changes nothing. Because the ledger only
//     moves money between accounts, no balance, hold (held ≤ balance),
//     charge (≤ the buyer's available funds) or earning (a charge less the
//     fee) can then pass MaxMoney either, however many buyers pay one
//     owner.
//   - A reserved bid's hold (quantity × hours × limit) and a spot bid's
//     hour at its limit are computed with overflow checks; past MaxMoney
//     the bid is rejected with amount_too_large. (With the input limits
//     MaxQuantity, MaxPrice and MaxHorizon the largest hold is 8.8e17
//     ticks, under MaxMoney, so today this check never fires; it guards
//     the limits' future.)
//   - Spot accrual: each market's price integral saturates at
//     maxIntegral (about 53 days at MaxPrice without a tick); a placement
//     owes units × integral / hour, computed in 128 bits, and pays at
//     most what its buyer has available — the bid is then released with
//     insufficient_funds at the tick. So an accrual that would pass any
//     bound is cut, deterministically, to what the buyer can pay.
//   - Bid.Spent and Listing.SpotEarned are running totals for display;
//     they stop at MaxMoney rather than wrap (they move no money).
//   - The platform fee is computed in 128 bits; Config.FeeBps must be in
//     [0, 10000].
const (
	MaxAmount       = 1_000_000_000_000 * TicksPerUSD   // one deposit or withdrawal: 1e12 USD (untyped: the API compares int64s with it)
	MaxMoney  Money = 100_000_000_000_000 * TicksPerUSD // all money in the engine: 1e14 USD = 1e18 ticks
)

// maxIntegral caps a market's spot price integral (tick·ms).
const maxIntegral = int64(1) << 62

// mulMoney returns q × hours × price, or ok false when it passes MaxMoney
// (or an operand is negative).
func mulMoney(q, hours int64, price Price) (Money, bool) {
	if q < 0 || hours < 0 || price < 0 {
		return 0, false
	}
	hi, lo := bits.Mul64(uint64(q), uint64(hours))
	if hi != 0 {
		return 0, false
	}
	hi, lo = bits.Mul64(lo, uint64(price))
	if hi != 0 || lo > uint64(MaxMoney) {
		return 0, false
	}
	return Money(lo), true
}

// addMoney returns a + b for amounts in [0, MaxMoney], or ok false when the
// sum passes MaxMoney.
func addMoney(a, b Money) (Money, bool) {
	s := a + b // both ≤ MaxMoney < MaxInt64/2: cannot wrap
	if a < 0 || b < 0 || s > MaxMoney {
		return 0, false
	}
	return s, true
}

// satAdd adds a non-negative amount to a running total, stopping at
// MaxMoney.
func satAdd(total, x Money) Money {
	if s, ok := addMoney(total, x); ok {
		return s
	}
	return MaxMoney
}

// feeOf splits the platform fee off a charge: fee = (amt × bps + rem) /
// 10000 in 128 bits, returning the fee and the new sub-tick remainder.
func feeOf(amt Money, bps, rem int64) (fee Money, newRem int64) {
	hi, lo := bits.Mul64(uint64(amt), uint64(bps))
	var carry uint64
	lo, carry = bits.Add64(lo, uint64(rem), 0)
	hi += carry
	q, r := bits.Div64(hi, lo, 10000) // amt ≤ MaxMoney, bps ≤ 10000: hi < 10000
	return Money(q), int64(r)
}

// credit adds a non-negative amount to a balance. The caller moves money
// that already exists (a charge, a fee), so the MaxMoney bound on the total
// makes overflow impossible; the check turns a broken invariant into a
// loud stop rather than a silent wrap.
func credit(a *Account, amt Money) {
	b, ok := addMoney(a.Balance, amt)
	if !ok {
		panic("engine: a balance passed MaxMoney; money is not conserved")
	}
	a.Balance = b
}
