package pricing

import (
	"errors"
	"fmt"

	"github.com/gpux/gpux/engine"
)

// TicksPerUSD is the number of price ticks in one US dollar.
const TicksPerUSD = engine.TicksPerUSD

// MaxPrice is the largest price ParsePrice accepts: 100000 USD per GPU-hour,
// in ticks. It is far above any real GPU price and keeps every product of a
// price with a GPU-hour count of a realistic order well inside int64.
const MaxPrice int64 = 100_000 * TicksPerUSD

// ErrInvalidPrice is wrapped by every error ParsePrice returns, so callers
// can map it to one API error code.
var ErrInvalidPrice = errors.New("invalid price")

// FormatPrice formats ticks as a decimal USD string with trailing zeros
// trimmed but at least two decimals: 23900 → "2.39", 23905 → "2.3905",
// 120000 → "12.00", 0 → "0.00". Negative values get a leading "-".
// ParsePrice(FormatPrice(p)) == p for every p in [0, MaxPrice].
func FormatPrice(ticks int64) string { return engine.Price(ticks).String() }

// ParsePrice parses a USD amount per GPU-hour into ticks. It accepts only
// ASCII digits with an optional fraction of one to four digits ("2",
// "2.39", "0.0005"): no sign, no exponent, no spaces, no leading or
// trailing dot, no more than four decimals (nothing is rounded). The value
// must not exceed MaxPrice; zero is accepted (callers that need a positive
// price check that themselves). Every error wraps ErrInvalidPrice.
func ParsePrice(s string) (int64, error) {
	v, err := engine.ParseTicks(s)
	if err != nil {
		return 0, fmt.Errorf("price %w: %w", err, ErrInvalidPrice)
	}
	if v > MaxPrice {
		return 0, fmt.Errorf("price %q: above the maximum %s: %w", s, FormatPrice(MaxPrice), ErrInvalidPrice)
	}
	return v, nil
}
