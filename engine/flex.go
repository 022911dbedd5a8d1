package engine

import (
	"math"
	"slices"
)

// bestBlock chooses where a flexible reserved bid fills: among the starts
// s inside [start, end−D] that are still in the future, the block
// [s, s+D) where matching would fill the most GPUs (at least minQ), then at
// the lowest total cost (each fill at the maker's price, as matching
// prices it), then the earliest s.
//
// What a block can fill depends on s only through which listings cover it
// and each one's most-sold hour inside it, and those change only where a
// listing's window or a step of its sold profile (a fill's start or end)
// enters or leaves the block. So the answer is constant between those
// breakpoints and, ties going to the earliest start, it is enough to
// evaluate the block at each breakpoint: O(breakpoints in the window ×
// listings walked × log hours) instead of one evaluation per hour.
func (e *Engine) bestBlock(m *market, need, minQ int64, start, end Time, d int64, limit Price, bidSeq uint64) (Time, bool) {
	first := max(start, e.now.HourStart()+Hour)
	span := Time(d) * Hour
	last := end - span
	if first > last {
		return 0, false
	}
	starts := append(e.flexStarts[:0], first)
	add := func(s Time) {
		if s > first && s <= last {
			starts = append(starts, s)
		}
	}
	m.listings.Ascend(func(l *Listing) bool {
		if l.Reserve > limit {
			return false
		}
		if l.End <= first || l.Start >= end {
			return true
		}
		add(l.Start)             // first start it covers
		add(l.End - span + Hour) // first start it no longer covers
		for _, f := range l.Fills {
			// A step of the sold profile at c enters the block at
			// s = c − D + 1 h and leaves it at s = c.
			for _, c := range [2]Time{f.Start, f.End} {
				add(c - span + Hour)
				add(c)
			}
		}
		return true
	})
	slices.Sort(starts)
	starts = slices.Compact(starts)
	e.flexStarts = starts[:0]
	var best Time
	var bestQ, bestCost int64
	found := false
	for _, s := range starts {
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

// MaxFlexWindow bounds a flexible bid's [start, end), and with it the
// breakpoints one block search (see bestBlock) evaluates on the sequencer.
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
