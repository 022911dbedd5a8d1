package pricing

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// TicksPerUSD is the number of price ticks in one US dollar.
const TicksPerUSD = 10000

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
func FormatPrice(ticks int64) string {
	neg := ticks < 0
	u := uint64(ticks)
	if neg {
		u = -u // two's complement: also right for math.MinInt64
	}
	frac := strconv.FormatUint(u%TicksPerUSD+TicksPerUSD, 10)[1:] // 4 digits, zero-padded
	frac = strings.TrimRight(frac, "0")
	for len(frac) < 2 {
		frac += "0"
	}
	s := strconv.FormatUint(u/TicksPerUSD, 10) + "." + frac
	if neg {
		return "-" + s
	}
	return s
}

// ParsePrice parses a USD amount per GPU-hour into ticks. It accepts only
// ASCII digits with an optional fraction of one to four digits ("2",
// "2.39", "0.0005"): no sign, no exponent, no spaces, no leading or
// trailing dot, no more than four decimals (nothing is rounded). The value
// must not exceed MaxPrice; zero is accepted (callers that need a positive
// price check that themselves). Every error wraps ErrInvalidPrice.
func ParsePrice(s string) (int64, error) {
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" || (hasDot && frac == "") || !allDigits(whole) || !allDigits(frac) {
		return 0, fmt.Errorf("price %q: not a plain decimal: %w", s, ErrInvalidPrice)
	}
	if len(frac) > 4 {
		return 0, fmt.Errorf("price %q: more than 4 decimals: %w", s, ErrInvalidPrice)
	}
	whole = strings.TrimLeft(whole, "0")
	// MaxPrice has 6 whole digits; anything longer is too large and would
	// overflow the conversion below.
	if len(whole) > 6 {
		return 0, fmt.Errorf("price %q: above the maximum %s: %w", s, FormatPrice(MaxPrice), ErrInvalidPrice)
	}
	w, _ := strconv.ParseInt("0"+whole, 10, 64)
	f, _ := strconv.ParseInt(frac+strings.Repeat("0", 4-len(frac)), 10, 64)
	v := w*TicksPerUSD + f
	if v > MaxPrice {
		return 0, fmt.Errorf("price %q: above the maximum %s: %w", s, FormatPrice(MaxPrice), ErrInvalidPrice)
	}
	return v, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
