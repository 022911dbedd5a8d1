package engine

import (
	"fmt"
)

func (e *Engine) validateWindow(start, end Time, future bool) *Error {
	if start%Hour != 0 {
		return errorf(CodeInvalidWindow, "start", "start must be a whole UTC hour")
	}
	if end%Hour != 0 {
		return errorf(CodeInvalidWindow, "end", "end must be a whole UTC hour")
	}
	if end <= start {
		return errorf(CodeInvalidWindow, "end", "end must be after start")
	}
	if future && start <= e.now {
		return errorf(CodeInvalidWindow, "start", "start must be a whole hour in the future")
	}
	if !future && start < e.now.HourStart() {
		return errorf(CodeInvalidWindow, "start", "start must not be before the current hour")
	}
	if end > e.now+MaxHorizon {
		return errorf(CodeInvalidWindow, "end", "end must be at most 366 days ahead")
	}
	return nil
}

func validQuantity(q int64, field string) *Error {
	if q <= 0 || q > MaxQuantity {
		return errorf(CodeInvalidQuantity, field, fmt.Sprintf("%s must be between 1 and %d", field, MaxQuantity))
	}
	return nil
}

func validPrice(p Price, field string) *Error {
	if p <= 0 || p > MaxPrice {
		return errorf(CodeInvalidPrice, field, field+" must be positive and at most 100000")
	}
	return nil
}

func (e *Engine) market(id string) (*market, *Error) {
	m := e.markets[id]
	if m == nil {
		return nil, errorf(CodeUnknownMarket, "market", fmt.Sprintf("unknown market %q", id))
	}
	return m, nil
}

// ---- listings ----

func (e *Engine) placeListing(c *Command) *Error {
	a, err := e.actor(c, RoleOwner)
	if err != nil {
		return err
	}
	if found, err := e.checkIdem(c); found || err != nil {
		return err
	}
	m, err := e.market(c.Market)
	if err != nil {
		return err
	}
	if err := validQuantity(c.Quantity, "quantity"); err != nil {
		return err
	}
	if err := e.validateWindow(c.Start, c.End, false); err != nil {
		return err
	}
	reserve, floor := c.Price, c.SpotFloor
	if c.PricePeg.Kind != PegNone {
		p, err := e.pegPrice(m, c.PricePeg, "reserve_price")
		if err != nil {
			return err
		}
		reserve = p
	} else if err := validPrice(reserve, "reserve_price"); err != nil {
		return err
	}
	if c.SpotFloorPeg.Kind != PegNone {
		if c.SpotFloorPeg.Kind == PegSpot {
			return errorf(CodeInvalidPeg, "spot_price_floor", "a spot floor cannot follow the spot price it sets")
		}
		p, err := e.pegPrice(m, c.SpotFloorPeg, "spot_price_floor")
		if err != nil {
			return err
		}
		floor = p
	} else if floor != 0 {
		if err := validPrice(floor, "spot_price_floor"); err != nil {
			return err
		}
	}
	if c.Target.IsZero() || e.listings[c.Target] != nil {
		return errorf(CodeDuplicateID, "id", "missing or duplicate listing id")
	}
	l := e.newListing(int((c.End - c.Start) / Hour))
	l.ID, l.Seq, l.Owner, l.Market, l.Quantity = c.Target, e.seq, a.ID, m.ID, c.Quantity
	l.Start, l.End, l.Reserve, l.ReservePeg = c.Start, c.End, reserve, c.PricePeg
	l.SpotFloor, l.FloorPeg, l.Status, l.CreatedAt = floor, c.SpotFloorPeg, ListingActive, e.now
	l.m, l.keyFloor = m, floor
	e.listings[l.ID] = l
	e.listingOrder.add(l)
	a.listings.add(l)
	l.bookKey = listingKey{l.Reserve, l.Seq}
	l.setFreeMask()
	m.listings.Set(l.bookKey, l)
	m.active.add(l)
	if l.ReservePeg.Kind != PegNone || l.FloorPeg.Kind != PegNone {
		m.peggedL = append(m.peggedL, l)
	}
	e.rememberIdem(c, l.ID)
	e.emit(Event{Kind: EvListingPlaced, Accounts: [2]ID{a.ID}, Market: m.ID, Listing: l.ID})
	e.recheckResting(m, l)
	if l.SpotFloor > 0 && l.Start <= e.now {
		m.spot.advance(e.now)
		e.setSpotUnits(l, l.Quantity-l.sold.Max(l.hourIndex(e.now), l.hourIndex(e.now)+1), ReasonHourBoundary)
		e.recomputeSpot(m, ReasonOutbid)
	}
	return nil
}

// recheckResting offers a new or cheaper listing to resting bids, best bid
// first; each bid re-ranks every listing, so it may combine old and new.
// Only a bid the listing has room for can newly match (nothing else grew),
// and the walk stops once the listing is sold out in every hour.
//
// The bids that could use the listing (limit at or over its reserve, window
// inside its window) are collected by walking the book (walkFitting, which
// skips the price levels that hold none of them), then offered in
// that order: matching one bid fills only that bid, so the others stay
// where they were and the order is the book's. A walk stops once the bids
// it collected want at least what the listing has free; if the listing is
// not sold out after them, the next walk resumes after the last one
// collected, so the bids offered and their order are those of one whole
// walk, without collecting a long book behind a small listing.
func (e *Engine) recheckResting(m *market, l *Listing) {
	var after *bidKey
	var last bidKey
	for l.sold.MinAll() < l.Quantity {
		free := l.Quantity - l.sold.MinAll() // the most free in any hour
		bids := e.recheck[:0]
		var want int64
		more := false
		m.resting.walkFitting(after, l.Reserve, l.Start, l.End, func(b *Bid) bool {
			if b.Limit < l.Reserve {
				return false
			}
			if b.Start >= l.Start && b.End <= l.End ||
				b.flexible() && min(b.End, l.End)-max(b.Start, l.Start) >= Time(b.flex().hours)*Hour {
				if want >= free {
					more = true
					return false
				}
				bids = append(bids, b)
				want += b.Quantity - b.Filled
			}
			return true
		})
		if len(bids) > 0 {
			last = bids[len(bids)-1].key()
			after = &last
		}
		for _, b := range bids {
			if l.sold.MinAll() >= l.Quantity {
				break
			}
			if b.Status.Open() && (b.flexible() || l.sold.Max(l.hourIndex(b.Start), l.hourIndex(b.End)) < l.Quantity) {
				e.matchReserved(b)
			}
		}
		clear(bids)
		e.recheck = bids[:0]
		if !more {
			return
		}
	}
}

func (e *Engine) cancelListing(c *Command) *Error {
	l := e.listings[c.Target]
	if l == nil || l.Owner != c.Actor {
		return errorf(CodeNotFound, "id", "no such listing")
	}
	if l.Status != ListingActive {
		return errorf(CodeNotOpen, "id", "the listing is "+l.Status.String())
	}
	m := l.m
	e.endListing(l, ListingCancelled, ReasonListingCancelled)
	e.recomputeSpot(m, ReasonListingCancelled)
	e.emit(Event{Kind: EvListingCancelled, Accounts: [2]ID{l.Owner}, Market: m.ID, Listing: l.ID})
	e.retireListing(l)
	return nil
}

// endListing takes a listing's unsold capacity off the book; sold hours
// stand as contracts. The caller recomputes spot.
func (e *Engine) endListing(l *Listing, st ListingStatus, reason string) {
	m := l.m
	m.listings.Delete(l.bookKey)
	m.spot.advance(e.now)
	e.setSpotUnits(l, 0, reason)
	l.Status = st
	if l.ReservePeg.Kind != PegNone || l.FloorPeg.Kind != PegNone {
		m.peggedL = removeListing(m.peggedL, l)
	}
}

func removeListing(s []*Listing, l *Listing) []*Listing {
	for i, x := range s {
		if x == l {
			return append(s[:i], s[i+1:]...)
		}
	}
	return s
}

func removeBid(s []*Bid, b *Bid) []*Bid {
	for i, x := range s {
		if x == b {
			return append(s[:i], s[i+1:]...)
		}
	}
	return s
}

// ---- bids ----

func (e *Engine) placeBid(c *Command) *Error {
	a, err := e.actor(c, RoleBuyer)
	if err != nil {
		return err
	}
	if found, err := e.checkIdem(c); found || err != nil {
		return err
	}
	m, err := e.market(c.Market)
	if err != nil {
		return err
	}
	if c.BidType != Reserved && c.BidType != Spot {
		return errorf(CodeInvalidType, "type", "type must be reserved or spot")
	}
	if err := validQuantity(c.Quantity, "quantity"); err != nil {
		return err
	}
	limit := c.Price
	if c.PricePeg.Kind != PegNone {
		if c.BidType == Spot && c.PricePeg.Kind == PegSpot {
			return errorf(CodeInvalidPeg, "limit_price", "a spot bid cannot follow the spot price it sets")
		}
		p, err := e.pegPrice(m, c.PricePeg, "limit_price")
		if err != nil {
			return err
		}
		limit = p
	} else if err := validPrice(limit, "limit_price"); err != nil {
		return err
	}
	if c.ClientOrderID != "" {
		if len(c.ClientOrderID) > 64 {
			return errorf(CodeInvalidCommand, "client_order_id", "client_order_id is at most 64 characters")
		}
		if a.coids[c.ClientOrderID] != nil {
			return errorf(CodeDuplicateClientOrder, "client_order_id", "an open order already uses this client_order_id")
		}
	}
	if c.Target.IsZero() || e.bids.get(c.Target) != nil {
		return errorf(CodeDuplicateID, "id", "missing or duplicate bid id")
	}
	if c.BidType == Reserved {
		if err := e.validateWindow(c.Start, c.End, true); err != nil {
			return err
		}
		minQ := c.MinQuantity
		if minQ == 0 {
			minQ = c.Quantity
		}
		if minQ < 0 || minQ > c.Quantity {
			return errorf(CodeInvalidQuantity, "min_quantity", "min_quantity must be between 1 and quantity")
		}
		if c.ExpiresAt != 0 && c.ExpiresAt <= e.now {
			return errorf(CodeInvalidWindow, "expires_at", "expires_at must be in the future")
		}
		hours := int64((c.End - c.Start) / Hour)
		if c.DurationHours != 0 {
			if err := validFlex(c.Start, c.End, c.DurationHours); err != nil {
				return err
			}
			hours = c.DurationHours
		}
		hold, ok := mulMoney(c.Quantity, hours, limit)
		if !ok {
			return errorf(CodeAmountTooLarge, "limit_price", fmt.Sprintf("the bid's hold (quantity × hours × limit) would pass %s", MaxMoney))
		}
		if hold > a.Available() {
			return errorf(CodeInsufficientFunds, "limit_price", fmt.Sprintf("the bid needs %s held; %s is available", hold, a.Available()))
		}
		b := e.newBid(a, m, c, limit)
		b.Start, b.End, b.MinQuantity = c.Start, c.End, minQ
		if c.ExpiresAt != 0 {
			b.ext().expiresAt = c.ExpiresAt
		}
		if c.DurationHours != 0 {
			b.ext().flex = flexBid{c.DurationHours, c.Start, c.End}
		}
		e.acceptBid(a, b, c)
		b.Hold = hold
		a.Held += hold
		e.touch(a)
		b.Status = BidResting
		m.resting.insert(b)
		e.expiries.push(b)
		e.emit(Event{Kind: EvBidPlaced, Accounts: [2]ID{a.ID}, Market: m.ID, Bid: b.ID})
		e.matchReserved(b)
		return nil
	}
	if c.Start != 0 || c.End != 0 || c.MinQuantity != 0 || c.ExpiresAt != 0 || c.DurationHours != 0 {
		return errorf(CodeInvalidWindow, "start", "a spot bid has no window, duration_hours, min_quantity or expires_at")
	}
	need, ok := mulMoney(c.Quantity, 1, limit)
	if !ok {
		return errorf(CodeAmountTooLarge, "limit_price", fmt.Sprintf("an hour at the limit would pass %s", MaxMoney))
	}
	if need > a.Available() {
		return errorf(CodeInsufficientFunds, "limit_price", fmt.Sprintf("a spot bid needs one hour at its limit (%s) available; %s is", need, a.Available()))
	}
	b := e.newBid(a, m, c, limit)
	b.spotBid = &spotBid{}
	e.acceptBid(a, b, c)
	b.Status = BidWaiting
	e.emit(Event{Kind: EvBidPlaced, Accounts: [2]ID{a.ID}, Market: m.ID, Bid: b.ID})
	m.spot.advance(e.now)
	e.addSpotBid(b)
	e.recomputeSpot(m, ReasonOutbid)
	return nil
}

// newBid takes a slot for a validated bid and sets what every bid has.
func (e *Engine) newBid(a *Account, m *market, c *Command, limit Price) *Bid {
	b := e.bids.alloc()
	b.ID, b.Seq, b.Buyer, b.m, b.Type, b.Quantity = c.Target, e.seq, a.ID, m, c.BidType, c.Quantity
	b.Limit, b.CreatedAt = limit, e.now
	if c.PricePeg.Kind != PegNone {
		b.ext().limitPeg = c.PricePeg
	}
	if c.ClientOrderID != "" {
		b.ext().clientOrderID = c.ClientOrderID
	}
	return b
}

func (e *Engine) acceptBid(a *Account, b *Bid, c *Command) {
	e.bids.add(b)
	e.bids.linkAccount(a, b)
	if coid := b.ClientOrderID(); coid != "" {
		a.coids[coid] = b
	}
	if b.pegKind() != PegNone {
		b.m.pegged = append(b.m.pegged, b)
	}
	e.rememberIdem(c, b.ID)
}

func (e *Engine) cancelBid(c *Command) *Error {
	b := e.bids.get(c.Target)
	if b == nil || b.Buyer != c.Actor {
		return errorf(CodeNotFound, "id", "no such bid")
	}
	if !b.Status.Open() {
		return errorf(CodeNotOpen, "id", "the bid is "+b.Status.String())
	}
	if b.Type == Reserved {
		e.closeReserved(b, BidCancelled)
	} else {
		e.closeSpot(b, BidCancelled, ReasonCancelled)
		e.recomputeSpot(b.m, ReasonOutbid)
	}
	e.emit(Event{Kind: EvBidCancelled, Accounts: [2]ID{b.Buyer}, Market: b.m.ID, Bid: b.ID, Reason: ReasonCancelled})
	e.retireBid(b)
	return nil
}

// closeReserved ends a resting reserved bid and releases its hold.
func (e *Engine) closeReserved(b *Bid, st BidStatus) {
	a := e.accounts[b.Buyer]
	b.m.resting.remove(b)
	a.Held -= b.Hold
	b.Hold = 0
	e.touch(a)
	b.Status = st
	e.forgetOpen(a, b)
}

func (e *Engine) forgetOpen(a *Account, b *Bid) {
	if coid := b.ClientOrderID(); coid != "" && a.coids[coid] == b {
		delete(a.coids, coid)
	}
	if b.pegKind() != PegNone {
		b.m.pegged = removeBid(b.m.pegged, b)
	}
}

// matchReserved fills what it can of a resting reserved bid from listings
// that cover its whole window, cheapest reserve first, then oldest; it
// trades only when at least MinQuantity can be filled at once.
func (e *Engine) matchReserved(b *Bid) {
	if b.flexible() {
		fx := b.flex()
		s, ok := e.bestBlock(b.m, b.Quantity, b.MinQuantity, b.Start, b.End, fx.hours, b.Limit, b.Seq, false)
		if !ok {
			return
		}
		// Pinned: from here on an ordinary reserved bid for the block.
		if b.heapIdx >= 0 {
			e.expiries.remove(int(b.heapIdx)) // before its expiry changes
		}
		b.Start, b.End = s, s+Time(fx.hours)*Hour
		e.expiries.push(b)
	}
	cands, total := e.candidates(b.m, b.Quantity-b.Filled, b.Start, b.End, b.Limit, e.cands[:0])
	e.cands = cands[:0]
	if total < b.MinQuantity {
		return
	}
	for _, c := range cands {
		e.fill(b, c.l, c.q)
	}
	if b.Filled == b.Quantity {
		e.closeReserved(b, BidFilled)
		e.retireBid(b)
		return
	}
	b.Status = BidPartiallyFilled
	if rest := b.Quantity - b.Filled; b.MinQuantity > rest {
		b.MinQuantity = rest
	}
}

// candidates ranks the listings a reserved order for need GPUs over
// [start, end) at limit would fill from: cheapest reserve, then oldest,
// each covering the whole window, at most need GPUs in all.
func (e *Engine) candidates(m *market, need int64, start, end Time, limit Price, cands []candidate) ([]candidate, int64) {
	var total int64
	m.listings.walkCovering(start, end, limit, func(l *Listing) bool {
		if l.Reserve > limit {
			return false
		}
		avail := l.Quantity - l.sold.Max(l.hourIndex(start), l.hourIndex(end))
		if avail <= 0 {
			return true
		}
		take := min(avail, need-total)
		cands = append(cands, candidate{l, take})
		total += take
		return total < need
	})
	return cands, total
}

// QuoteFill is one fill a quoted bid would get.
type QuoteFill struct {
	Listing  ID
	Quantity int64
	Price    Price
}

// Quote is what a reserved bid placed now would trade: the fills, exactly
// as matching would make them (the bid would be the taker, so each fill is
// at the listing's reserve), whether min_quantity is met, and the cost.
type Quote struct {
	Market     string
	Quantity   int64
	Start, End Time
	Fills      []QuoteFill
	Filled     int64
	Cost       Money
	MinMet     bool
}

// Quote walks the book for a reserved bid of quantity GPUs over
// [start, end) with the given limit (0 = no limit) and minQuantity (0 =
// all-or-none). It changes nothing. Errors: unknown_market,
// invalid_quantity, invalid_window.
func (e *Engine) Quote(market string, quantity, minQuantity int64, start, end Time, limit Price) (Quote, error) {
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
	if minQuantity <= 0 || minQuantity > quantity {
		minQuantity = quantity
	}
	if limit <= 0 {
		limit = MaxPrice
	}
	cands, total := e.candidates(m, quantity, start, end, limit, nil)
	q := Quote{Market: market, Quantity: quantity, Start: start, End: end, MinMet: total >= minQuantity && total > 0}
	if !q.MinMet {
		return q, nil
	}
	hours := int64((end - start) / Hour)
	for _, c := range cands {
		q.Fills = append(q.Fills, QuoteFill{Listing: c.l.ID, Quantity: c.q, Price: c.l.Reserve})
		q.Filled += c.q
		cost, ok := mulMoney(c.q, hours, c.l.Reserve)
		if ok {
			q.Cost, ok = addMoney(q.Cost, cost)
		}
		if !ok {
			return Quote{}, errorf(CodeAmountTooLarge, "quantity", fmt.Sprintf("the cost would pass %s", MaxMoney))
		}
	}
	return q, nil
}

// fill trades q GPUs of listing l to bid b for the bid's whole window at
// the maker's price.
func (e *Engine) fill(b *Bid, l *Listing, q int64) {
	price := b.Limit
	if l.Seq < b.Seq {
		price = l.Reserve
	}
	buyer, owner := e.accounts[b.Buyer], e.accounts[l.Owner]
	hours := b.Hours()
	// Both are at most the hold placed for the bid, which mulMoney bounded.
	cost, ok1 := mulMoney(q, hours, price)
	release, ok2 := mulMoney(q, hours, b.Limit)
	if !ok1 || !ok2 {
		panic("engine: a fill passed MaxMoney inside its bid's hold")
	}
	if release > b.Hold || b.Filled+q == b.Quantity {
		release = b.Hold // the last fill releases what is left, whatever repricing did
	}
	buyer.Held -= release
	b.Hold -= release
	fee := e.pay(buyer, owner, cost, nil)
	b.Filled += q
	l.sold.Add(l.hourIndex(b.Start), l.hourIndex(b.End), q)
	e.fillCounter++
	fid := fillID(e.now, e.fillCounter)
	e.post(buyer, LedgerReservedFill, -cost, fid)
	e.post(owner, LedgerReservedEarning, cost-fee, fid)
	if fee != 0 {
		e.post(e.accounts[FeeAccount], LedgerFee, fee, fid)
	}
	f := e.newFill()
	*f = Fill{
		ID: fid, Market: b.m.ID, BidID: b.ID, ListingID: l.ID,
		Buyer: b.Buyer, Owner: l.Owner, Quantity: q, Price: price, Start: b.Start, End: b.End,
		Time: e.now, Fee: fee,
	}
	x := b.ext()
	x.fills = append(x.fills, f)
	l.Fills = append(l.Fills, f)
	if l.sold.MinAll() >= l.Quantity {
		// Sold out in every hour: off the book, so matching never walks it.
		l.m.listings.Delete(l.bookKey)
	} else {
		old := l.freeMask
		l.setFreeMask()
		if l.freeMask != old && l.m.listings.Delete(l.bookKey) {
			l.m.listings.Set(l.bookKey, l) // again, so the unions on its path hold the new mask
		}
	}
	m := b.m
	if len(m.trades) < e.cfg.RecentTrades {
		m.trades = append(m.trades, *f)
	} else {
		m.trades[m.tradeN%e.cfg.RecentTrades] = *f
	}
	m.tradeN++
	e.emit(Event{Kind: EvFilled, Accounts: [2]ID{b.Buyer, l.Owner}, Market: b.m.ID, Bid: b.ID, Listing: l.ID, Fill: f, Quantity: q, Price: price, HasPrice: true})
}

// fillID makes a UUIDv7-shaped id from the engine time and a counter, so
// fills get ids without randomness.
func fillID(t Time, n uint64) ID {
	var id ID
	ms := uint64(t)
	for i := 0; i < 6; i++ {
		id[i] = byte(ms >> (40 - 8*i))
	}
	id[6] = 0x70 | byte(n>>60)&0x0f
	id[7] = byte(n >> 52)
	id[8] = 0x80 | byte(n>>46)&0x3f
	for i := 9; i < 16; i++ {
		id[i] = byte(n >> (8 * (15 - i)))
	}
	return id
}
