package pricing

import "github.com/shopspring/decimal"

// Discount is how much cheaper a market price is than a reference rate:
// 1 − market/reference, as a decimal fraction with exactly four decimals
// ("0.6221", "0.0000", "-0.1250"). The quotient is computed exactly and
// rounded once, half away from zero, to four decimals; a result that
// rounds to zero is "0.0000", never "-0.0000".
//
// A negative discount means the market is dearer than the reference and is
// returned as such. ok is false, and the string empty, when there is no
// market price (hasPrice false), the market price is negative, or the
// reference is not positive: the API shows null then, never 0 or NaN.
func Discount(marketPrice int64, hasPrice bool, reference int64) (string, bool) {
	if !hasPrice || marketPrice < 0 || reference <= 0 {
		return "", false
	}
	ref := decimal.NewFromInt(reference)
	// (ref − market) / ref, exact in decimal (no int64 overflow), rounded
	// half away from zero by DivRound.
	d := ref.Sub(decimal.NewFromInt(marketPrice)).DivRound(ref, 4)
	return d.StringFixed(4), true
}
