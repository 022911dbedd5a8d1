package engine

import "math"

// bestBlock chooses where a flexible reserved bid fills: among the starts
// s inside [start, end−D] that are still in the future, the block
// [s, s+D) where matching would fill the most GPUs (at least minQ), then at
// the lowest total cost (each fill at the maker's price, as matching
// prices it), then the earliest s. It is a scan of the window: each start
// ranks the book like matchReserved does (candidates), so the cost is
// O(starts × listings walked × log hours); docs/MARKET.md says which index
// would make it sub-linear in the window and why it is not built yet.
func (e *Engine) bestBlock(m *market, need, minQ int64, start, end Time, d int64, limit Price, bidSeq uint64) (Time, bool) {
	first := max(start, e.now.HourStart()+Hour)
	span := Time(d) * Hour
	var best Time
	var bestQ, bestCost int64
	found := false
	for s := first; s+span <= end; s += Hour {
		cands, total := e.candidates(m, need, s, s+span, limit, e.cands[:0])
		e.cands = cands[:0]
		if total == 0 || total < minQ || total < bestQ {
			continue
		}
		var cost int64 // per hour; ≤ MaxQuantity × MaxPrice
		for _, c := range cands {
			p := limit
			if c.l.Seq < bidSeq {
				p = c.l.Reserve
			}
			cost += c.q * int64(p)
		}
		if !found || total > bestQ || cost < bestCost {
			best, bestQ, bestCost, found = s, total, cost, true
		}
	}
	return best, found
}

// MaxFlexWindow bounds a flexible bid's [start, end): the block search
// scans every start in it (see bestBlock), on the sequencer.
const MaxFlexWindow = 31 * Day

func validFlex(start, end Time, d int64) *Error {
	if d <= 0 || Time(d)*Hour > end-start {
		return errorf(CodeInvalidWindow, "duration_hours", "duration_hours must be between 1 and the hours from start to end")
	}
	if end-start > MaxFlexWindow {
		return errorf(CodeInvalidWindow, "end", "a flexible bid's window (start to end) is at most 31 days")
	}
	return nil
}

// QuoteBlock is Quote for a flexible reserved bid: quantity GPUs for one
// block of durationHours inside [start, end). The quote's Start and End
// are the block chosen (see bestBlock); MinMet is false when no block can
// be filled. Errors as Quote, and invalid_window for a duration outside
// [1, hours from start to end].
func (e *Engine) QuoteBlock(market string, quantity, minQuantity int64, start, end Time, durationHours int64, limit Price) (Quote, error) {
	m, err := e.market(market)
	if err != nil {
		return Quote{}, err
	}
	if err := validQuantity(quantity, "quantity"); err != nil {
		return Quote{}, err
	}
	if err := e.validateWindow(start, end, true); err != nil {
		return Quote{}, err
	}
	if err := validFlex(start, end, durationHours); err != nil {
		return Quote{}, err
	}
	if minQuantity <= 0 || minQuantity > quantity {
		minQuantity = quantity
	}
	if limit <= 0 {
		limit = MaxPrice
	}
	s, ok := e.bestBlock(m, quantity, minQuantity, start, end, durationHours, limit, math.MaxUint64)
	if !ok {
		return Quote{Market: market, Quantity: quantity, Start: start, End: end}, nil
	}
	return e.Quote(market, quantity, minQuantity, s, s+Time(durationHours)*Hour, limit)
}
