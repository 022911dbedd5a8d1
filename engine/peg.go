package engine

import (
	"fmt"
	"slices"
)

// pegPrice resolves a peg against the engine's reference rates or the
// market's spot price, clamped to the peg's floor and cap.
func (e *Engine) pegPrice(m *market, p Peg, field string) (Price, *Error) {
	var price Price
	switch p.Kind {
	case PegReference:
		rate, ok := e.rates[[2]string{m.GPU, p.Provider}]
		if !ok {
			return 0, errorf(CodeInvalidPeg, field, fmt.Sprintf("no %s reference rate for %s", p.Provider, m.GPU))
		}
		if p.Discount <= -10000 || p.Discount >= 10000 {
			return 0, errorf(CodeInvalidPeg, field, "discount must be between -1 and 1")
		}
		price = Price(int64(rate) * (10000 - p.Discount) / 10000)
	case PegSpot:
		if !m.spot.hasPrice {
			return 0, errorf(CodeInvalidPeg, field, "the market has no spot price to follow")
		}
		if p.Offset <= -MaxPrice || p.Offset >= MaxPrice {
			return 0, errorf(CodeInvalidPeg, field, "offset out of range")
		}
		price = m.spot.price + p.Offset
	default:
		return 0, errorf(CodeInvalidPeg, field, "unknown peg")
	}
	if p.Cap < 0 || p.Floor < 0 || (p.Cap != 0 && p.Floor > p.Cap) {
		return 0, errorf(CodeInvalidPeg, field, "cap and floor must be positive with floor <= cap")
	}
	if p.Floor != 0 && price < p.Floor {
		price = p.Floor
	}
	if p.Cap != 0 && price > p.Cap {
		price = p.Cap
	}
	if err := validPrice(price, field); err != nil {
		return 0, errorf(CodeInvalidPrice, field, fmt.Sprintf("the peg resolves to %s, which is not a valid price", price))
	}
	return price, nil
}

func (e *Engine) setReferenceRates(c *Command) *Error {
	if !c.Actor.IsZero() {
		return errorf(CodeForbidden, "", "only the operator sets reference rates")
	}
	if len(c.RatesTable) > MaxRatesTable {
		return errorf(CodeInvalidCommand, "rates_table", fmt.Sprintf("the reference table is %d bytes; at most %d", len(c.RatesTable), MaxRatesTable))
	}
	rates := make(map[[2]string]Price, len(c.Rates))
	for i, r := range c.Rates {
		if r.GPU == "" || r.Provider == "" {
			return errorf(CodeInvalidCommand, fmt.Sprintf("rates[%d]", i), "gpu and provider are required")
		}
		if err := validPrice(r.Price, fmt.Sprintf("rates[%d].price", i)); err != nil {
			return err
		}
		rates[[2]string{r.GPU, r.Provider}] = r.Price
	}
	e.rates = rates
	e.ratesTable = string(c.RatesTable)
	e.emit(Event{Kind: EvReferenceRatesSet})
	e.reprice(PegReference)
	return nil
}

// MaxRatesTable bounds the reference table a SetReferenceRates carries.
const MaxRatesTable = 1 << 20

// ReferenceTable is the table the last SetReferenceRates carried (its
// canonical CSV), nil when it carried none.
func (e *Engine) ReferenceTable() []byte {
	if e.ratesTable == "" {
		return nil
	}
	return []byte(e.ratesTable)
}

// ReferenceRates lists the rates pegs resolve against, sorted.
func (e *Engine) ReferenceRates() []ReferenceRate {
	out := make([]ReferenceRate, 0, len(e.rates))
	for k, p := range e.rates {
		out = append(out, ReferenceRate{GPU: k[0], Provider: k[1], Price: p})
	}
	slices.SortFunc(out, func(a, b ReferenceRate) int {
		if a.GPU != b.GPU {
			if a.GPU < b.GPU {
				return -1
			}
			return 1
		}
		if a.Provider < b.Provider {
			return -1
		}
		if a.Provider > b.Provider {
			return 1
		}
		return 0
	})
	return out
}

func (e *Engine) repriceSpotPegs() { e.reprice(PegSpot) }

// reprice recomputes every open order pegged with kind, moves it in its
// book, adjusts holds and re-matches. An order whose peg no longer resolves
// keeps its last price; a bid whose larger hold cannot be covered is
// cancelled with insufficient_funds.
func (e *Engine) reprice(kind PegKind) {
	for _, m := range e.marketOrder {
		spotTouched := false
		for _, l := range slices.Clone(m.peggedL) {
			if l.ReservePeg.Kind == kind {
				if p, err := e.pegPrice(m, l.ReservePeg, "reserve_price"); err == nil && p != l.Reserve {
					onBook := m.listings.Has(l.bookKey)
					m.listings.Delete(l.bookKey)
					l.Reserve = p
					l.bookKey = listingKey{p, l.Seq}
					if onBook {
						m.listings.Set(l.bookKey, l)
					}
					e.emit(Event{Kind: EvListingRepriced, Accounts: [2]ID{l.Owner}, Market: m.ID, Listing: l.ID, Price: p, HasPrice: true})
					e.recheckResting(m, l)
				}
			}
			if l.FloorPeg.Kind == kind {
				if p, err := e.pegPrice(m, l.FloorPeg, "spot_price_floor"); err == nil && p != l.SpotFloor {
					m.spot.advance(e.now)
					l.SpotFloor = p
					e.rekeySupply(l, p)
					spotTouched = true
				}
			}
		}
		for _, b := range slices.Clone(m.pegged) {
			if b.pegKind() != kind || !b.Status.Open() {
				continue
			}
			p, err := e.pegPrice(m, b.x.limitPeg, "limit_price")
			if err != nil || p == b.Limit {
				continue
			}
			if b.Type == Spot {
				m.spot.advance(e.now)
				m.spot.demand.Delete(b.key())
				b.Limit = p
				e.addSpotBid(b)
				spotTouched = true
				e.emit(Event{Kind: EvBidRepriced, Accounts: [2]ID{b.Buyer}, Market: m.ID, Bid: b.ID, Price: p, HasPrice: true})
				continue
			}
			a := e.accounts[b.Buyer]
			// A hold past MaxMoney can never be covered (available ≤ MaxMoney).
			hold, ok := mulMoney(b.Quantity-b.Filled, b.Hours(), p)
			if !ok || hold-b.Hold > a.Available() {
				e.closeReserved(b, BidCancelled)
				b.setReason(ReasonInsufficientFunds)
				e.emit(Event{Kind: EvBidCancelled, Accounts: [2]ID{b.Buyer}, Market: m.ID, Bid: b.ID, Reason: ReasonInsufficientFunds})
				e.retireBid(b)
				continue
			}
			a.Held += hold - b.Hold
			b.Hold = hold
			e.touch(a)
			m.resting.remove(b)
			b.Limit = p
			m.resting.insert(b)
			e.emit(Event{Kind: EvBidRepriced, Accounts: [2]ID{b.Buyer}, Market: m.ID, Bid: b.ID, Price: p, HasPrice: true})
			e.matchReserved(b)
		}
		if spotTouched {
			e.recomputeSpot(m, ReasonOutbid)
		}
	}
}
