package engine

import (
	"encoding/binary"
	"testing"
)

// t0 is a fixed engine start: 2026-12-01T00:00:00Z, plus 10 minutes.
var t0 = Time(1796083200000) + 10*60*Second

type harness struct {
	tb  testing.TB
	e   *Engine
	now Time
	n   uint64
	log []Command // every command applied, for replays

	// Final states of closed objects, from EvBidClosed and
	// EvListingClosed: the engine forgets them, the read side keeps them.
	closedBids     map[ID]BidView
	closedListings map[ID]ListingView
}

func newHarness(tb testing.TB, cfg Config) *harness {
	tb.Helper()
	h := &harness{tb: tb, e: New(cfg), now: t0, closedBids: map[ID]BidView{}, closedListings: map[ID]ListingView{}}
	return h
}

func testID(n uint64) ID {
	var id ID
	binary.BigEndian.PutUint64(id[8:], n)
	id[0] = 0x01
	return id
}

func (h *harness) newID() ID { h.n++; return testID(h.n) }

// apply stamps and applies c, returning its events (copied).
func (h *harness) apply(c Command) ([]Event, error) {
	h.tb.Helper()
	c.Time = h.now
	h.log = append(h.log, c)
	evs, err := h.e.Apply(&c)
	h.keepClosed(evs)
	if err != nil {
		return append([]Event(nil), evs...), err
	}
	return append([]Event(nil), evs...), nil
}

func (h *harness) must(c Command) []Event {
	h.tb.Helper()
	evs, err := h.apply(c)
	if err != nil {
		h.tb.Fatalf("%s: %v", c.Kind, err)
	}
	return evs
}

func (h *harness) account(name string, roles Role, deposit string) ID {
	h.tb.Helper()
	id := h.newID()
	h.must(Command{Kind: CmdCreateAccount, Target: id, Name: name, Roles: roles})
	if deposit != "" {
		h.must(Command{Kind: CmdDeposit, Target: id, Amount: Money(usd(h.tb, deposit))})
	}
	return id
}

func usd(tb testing.TB, s string) int64 {
	tb.Helper()
	v, err := ParseTicks(s)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

func (h *harness) hour(n int) Time { return h.now.HourStart() + Time(n)*Hour }

func (h *harness) listing(owner ID, market string, q int64, start, end Time, reserve, floor string) ID {
	h.tb.Helper()
	id := h.newID()
	c := Command{Kind: CmdPlaceListing, Actor: owner, Target: id, Market: market, Quantity: q, Start: start, End: end, Price: Price(usd(h.tb, reserve))}
	if floor != "" {
		c.SpotFloor = Price(usd(h.tb, floor))
	}
	h.must(c)
	return id
}

func (h *harness) reserved(buyer ID, market string, q, minQ int64, start, end Time, limit string) (ID, []Event) {
	h.tb.Helper()
	id := h.newID()
	evs := h.must(Command{Kind: CmdPlaceBid, BidType: Reserved, Actor: buyer, Target: id, Market: market, Quantity: q, MinQuantity: minQ, Start: start, End: end, Price: Price(usd(h.tb, limit))})
	return id, evs
}

func (h *harness) spot(buyer ID, market string, q int64, limit string) (ID, []Event) {
	h.tb.Helper()
	id := h.newID()
	evs := h.must(Command{Kind: CmdPlaceBid, BidType: Spot, Actor: buyer, Target: id, Market: market, Quantity: q, Price: Price(usd(h.tb, limit))})
	return id, evs
}

func (h *harness) advance(d Time) []Event {
	h.tb.Helper()
	h.now += d
	return h.must(Command{Kind: CmdTick})
}

func (h *harness) keepClosed(evs []Event) {
	for _, ev := range evs {
		switch ev.Kind {
		case EvBidClosed:
			h.closedBids[ev.Bid] = *ev.FinalBid
		case EvListingClosed:
			h.closedListings[ev.Listing] = *ev.FinalListing
		}
	}
}

// listing returns a listing, open (from the engine) or closed.
func (h *harness) listingView(id ID) (ListingView, bool) {
	if l, ok := h.e.Listing(id); ok {
		return l, true
	}
	l, ok := h.closedListings[id]
	return l, ok
}

// bid returns a bid, open (from the engine) or closed; it fails the test
// when the bid is unknown.
func (h *harness) bid(id ID) BidView {
	h.tb.Helper()
	b, ok := h.e.Bid(id)
	if !ok {
		b, ok = h.closedBids[id]
	}
	if !ok {
		h.tb.Fatalf("bid %s not found", id)
	}
	return b
}

func (h *harness) balance(id ID) AccountView {
	h.tb.Helper()
	a, ok := h.e.Account(id)
	if !ok {
		h.tb.Fatalf("account %s not found", id)
	}
	return a
}

func (h *harness) spotState(market string) SpotView {
	h.tb.Helper()
	v, _ := h.e.Spot(market)
	return v
}

func countKind(evs []Event, k EventKind) int {
	n := 0
	for _, e := range evs {
		if e.Kind == k {
			n++
		}
	}
	return n
}

func findKind(evs []Event, k EventKind, bid ID) (Event, bool) {
	for _, e := range evs {
		if e.Kind == k && (bid.IsZero() || e.Bid == bid) {
			return e, true
		}
	}
	return Event{}, false
}

func p(tb testing.TB, s string) Price { tb.Helper(); return Price(usd(tb, s)) }
func m(tb testing.TB, s string) Money { tb.Helper(); return Money(usd(tb, s)) }

const mkt = "h100-sxm.us-east"

// noticeConfig is the default catalogue with every market's preemption
// notice set to secs (negative: none).
func noticeConfig(secs int64) Config {
	ms := Catalogue(DefaultGPUs, DefaultRegions)
	for i := range ms {
		ms[i].PreemptionNoticeSeconds = secs
	}
	return Config{Markets: ms}
}
