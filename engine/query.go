package engine

import (
	"cmp"
	"slices"
)

// AccountView is a copy of an account's public state.
type AccountView struct {
	ID        ID
	Name      string
	Roles     Role
	Balance   Money
	Held      Money
	Available Money
	CreatedAt Time
	// Accrued is spot accrual already in Balance but not yet posted as
	// ledger lines (negative for a buyer): Balance − Accrued is the
	// balance after the account's last EvLedger line.
	Accrued Money
}

func (a *Account) view() AccountView {
	return AccountView{ID: a.ID, Name: a.Name, Roles: a.Roles, Balance: a.Balance, Held: a.Held, Available: a.Available(), CreatedAt: a.CreatedAt, Accrued: a.unposted}
}

// Account returns an account by id.
func (e *Engine) Account(id ID) (AccountView, bool) {
	a := e.accounts[id]
	if a == nil {
		return AccountView{}, false
	}
	return a.view(), true
}

// AccountByKeyHash finds the account whose API key hashes to h.
func (e *Engine) AccountByKeyHash(h [32]byte) (AccountView, [32]byte, bool) {
	a := e.keys[h]
	if a == nil {
		return AccountView{}, [32]byte{}, false
	}
	return a.view(), a.KeyHash, true
}

// BidView is a copy of a bid.
type BidView struct {
	ID            ID
	Buyer         ID
	Type          BidType
	Market        string
	Quantity      int64
	MinQuantity   int64
	Start, End    Time
	ExpiresAt     Time
	Limit         Price
	LimitPeg      Peg
	ClientOrderID string
	Status        BidStatus
	Reason        string
	Filled        int64
	Allocated     int64
	Hold          Money
	Spent         Money
	Fills         []Fill
	CreatedAt     Time
	Seq           uint64 // the placing command's: lists are in Seq order

	// Spot preemption notice: GPUs kept under notice and when the first
	// of them leave; GPUs won but waiting for a notice elsewhere to end
	// and when the first of them start (zeros when none).
	Preempting int64
	PreemptAt  Time
	Pending    int64
	StartsAt   Time

	// Flexible reserved bid: DurationHours > 0 hours somewhere in
	// [FlexStart, FlexEnd); Start and End are the block once it filled.
	DurationHours      int64
	FlexStart, FlexEnd Time
}

func (b *Bid) view() BidView { return b.viewWith(make([]Fill, len(b.Fills()))) }

// viewWith is view with the bid's fills copied into fills, of their
// length: a final view's come from the engine's chunk (newFills).
func (b *Bid) viewWith(fills []Fill) BidView {
	v := BidView{
		ID: b.ID, Seq: b.Seq, Buyer: b.Buyer, Type: b.Type, Market: b.m.ID, Quantity: b.Quantity, MinQuantity: b.MinQuantity,
		Start: b.Start, End: b.End, ExpiresAt: b.ExpiresAt(), Limit: b.Limit, LimitPeg: b.LimitPeg(),
		ClientOrderID: b.ClientOrderID(), Status: b.Status, Reason: b.Reason(), Filled: b.Filled, Allocated: b.Allocated(),
		Hold: b.Hold, Spent: b.spent(), CreatedAt: b.CreatedAt, Fills: fills,
	}
	for i, f := range b.Fills() {
		v.Fills[i] = *f
	}
	if fx := b.flex(); fx != nil {
		v.DurationHours, v.FlexStart, v.FlexEnd = fx.hours, fx.start, fx.end
	}
	if b.spotBid != nil {
		v.Preempting, v.PreemptAt = b.noticed, b.preemptAt()
		v.Pending, v.StartsAt = b.pend, b.startsAt()
	}
	return v
}

// Bid returns a bid by id.
func (e *Engine) Bid(id ID) (BidView, bool) {
	b := e.bids.get(id)
	if b == nil {
		return BidView{}, false
	}
	return b.view(), true
}

// ListingView is a copy of a listing.
type ListingView struct {
	ID          ID
	Owner       ID
	Market      string
	Quantity    int64
	Start, End  Time
	Reserve     Price
	ReservePeg  Peg
	SpotFloor   Price
	FloorPeg    Peg
	Status      ListingStatus
	SpotUnits   int64 // offered to spot this hour
	SpotInUse   int64
	SpotEarned  Money
	Unsold      int64 // GPUs free in every remaining hour
	Fills       []Fill
	CreatedAt   Time
	FilledHours int64  // GPU-hours sold
	Seq         uint64 // the placing command's: lists are in Seq order
}

func (e *Engine) listingView(l *Listing) ListingView {
	return e.listingViewWith(l, make([]Fill, len(l.Fills)))
}

// listingViewWith is listingView with the listing's fills copied into
// fills, of their length, like Bid.viewWith.
func (e *Engine) listingViewWith(l *Listing, fills []Fill) ListingView {
	v := ListingView{
		ID: l.ID, Seq: l.Seq, Owner: l.Owner, Market: l.Market, Quantity: l.Quantity, Start: l.Start, End: l.End,
		Reserve: l.Reserve, ReservePeg: l.ReservePeg, SpotFloor: l.SpotFloor, FloorPeg: l.FloorPeg,
		Status: l.Status, SpotUnits: l.spotUnits, SpotInUse: l.placed, SpotEarned: l.SpotEarned,
		CreatedAt: l.CreatedAt, Fills: fills,
	}
	for i, f := range l.Fills {
		v.Fills[i] = *f
		v.FilledHours += f.GPUHours()
	}
	if l.Status == ListingActive {
		v.Unsold = l.Quantity - l.sold.Max(l.hourIndex(max(l.Start, e.now.HourStart())), l.sold.n)
	}
	return v
}

// Listing returns a listing by id.
func (e *Engine) Listing(id ID) (ListingView, bool) {
	l := e.listings[id]
	if l == nil {
		return ListingView{}, false
	}
	return e.listingView(l), true
}

// BidsOf lists an account's open bids, newest first, optionally only those
// with the given status, starting after the bid with id cursor (zero: from
// the newest). next is the cursor for the following page, zero when none.
// Closed bids have left the engine (EvBidClosed); the read side lists them.
func (e *Engine) BidsOf(account ID, status string, limit int, cursor ID) (out []BidView, next ID) {
	before, ok := e.cursorSeq(cursor, func(id ID) (uint64, bool) {
		b := e.bids.get(id)
		return seqOf(b, b != nil && b.Buyer == account)
	})
	if !ok {
		return nil, ID{}
	}
	out = e.BidsBefore(account, status, cursor, before, limit+1)
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ID
	}
	return out, next
}

// BidsBefore lists up to limit of an account's open bids with Seq < before
// (0: from the newest), newest first, optionally only those with status.
// cursor is the order the page continues after, whose Seq is before: when
// it is one of the account's open bids the walk starts just below it, so
// a deep page costs what it lists (plus the bids status skips), not the
// account's newer bids. Any other cursor (zero, closed, another
// account's) gives the same answer from a walk that starts at the newest.
func (e *Engine) BidsBefore(account ID, status string, cursor ID, before uint64, limit int) []BidView {
	out, _ := e.bidsBefore(account, status, cursor, before, limit)
	return out
}

// bidsBefore is BidsBefore that also says how many bids it looked at.
func (e *Engine) bidsBefore(account ID, status string, cursor ID, before uint64, limit int) (out []BidView, visited int) {
	a := e.accounts[account]
	if a == nil || limit <= 0 {
		return nil, 0
	}
	start := a.bidTail
	if before != 0 && !cursor.IsZero() {
		if b := e.bids.get(cursor); b != nil && b.Buyer == account && b.Seq == before {
			start = b.aPrev
		}
	}
	visited = e.bids.accountFrom(start, before, func(b *Bid) bool {
		if status == "" || b.Status.String() == status {
			out = append(out, b.view())
		}
		return len(out) < limit
	})
	return out, visited
}

// ListingsOf lists an account's active listings like BidsOf.
func (e *Engine) ListingsOf(account ID, status string, limit int, cursor ID) (out []ListingView, next ID) {
	before, ok := e.cursorSeq(cursor, func(id ID) (uint64, bool) {
		l := e.listings[id]
		return seqOf(l, l != nil && l.Owner == account)
	})
	if !ok {
		return nil, ID{}
	}
	out = e.ListingsBefore(account, status, cursor, before, limit+1)
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ID
	}
	return out, next
}

// ListingsBefore lists an account's active listings like BidsBefore.
func (e *Engine) ListingsBefore(account ID, status string, cursor ID, before uint64, limit int) []ListingView {
	out, _ := e.listingsBefore(account, status, cursor, before, limit)
	return out
}

// listingsBefore is ListingsBefore that also says how many listings it
// looked at.
func (e *Engine) listingsBefore(account ID, status string, cursor ID, before uint64, limit int) (out []ListingView, visited int) {
	a := e.accounts[account]
	if a == nil || limit <= 0 {
		return nil, 0
	}
	start := a.listings.tail
	if before != 0 && !cursor.IsZero() {
		if l := e.listings[cursor]; l != nil && l.Owner == account && l.Seq == before && a.listings.has(l) {
			start = a.listings.below(l)
		}
	}
	visited = a.listings.from(start, before, func(l *Listing) bool {
		if status == "" || l.Status.String() == status {
			out = append(out, e.listingView(l))
		}
		return len(out) < limit
	})
	return out, visited
}

type seqer interface{ seq() uint64 }

func (b *Bid) seq() uint64     { return b.Seq }
func (l *Listing) seq() uint64 { return l.Seq }

func seqOf[T seqer](x T, ok bool) (uint64, bool) {
	if !ok {
		return 0, false
	}
	return x.seq(), true
}

// cursorSeq maps a page cursor to the sequence number pages continue
// below: zero cursor, from the newest (0).
func (e *Engine) cursorSeq(cursor ID, find func(ID) (uint64, bool)) (uint64, bool) {
	if cursor.IsZero() {
		return 0, true
	}
	return find(cursor)
}

// Markets lists the markets this engine owns, in catalogue order.
func (e *Engine) Markets() []Market {
	out := make([]Market, len(e.marketOrder))
	for i, m := range e.marketOrder {
		out[i] = m.Market
	}
	return out
}

// HasMarket reports whether the engine owns the market.
func (e *Engine) HasMarket(id string) bool { return e.markets[id] != nil }

// SpotView is a market's spot state.
type SpotView struct {
	Price     Price
	HasPrice  bool
	Ask       Price // cheapest floor with free units
	HasAsk    bool
	Supply    int64
	Allocated int64
	Waiting   int64
}

// Spot returns a market's spot state.
func (e *Engine) Spot(market string) (SpotView, bool) {
	m := e.markets[market]
	if m == nil {
		return SpotView{}, false
	}
	sb := &m.spot
	v := SpotView{Price: sb.price, HasPrice: sb.hasPrice, Supply: sb.supply.Total(), Allocated: sb.k, Waiting: sb.demand.Total() - sb.k}
	sb.supply.Ascend(nil, func(k supplyKey, _ *Listing, w int64) bool {
		if k.free == 1 && w > 0 {
			v.Ask, v.HasAsk = k.floor, true
			return false
		}
		return true
	})
	return v, true
}

// Level is one aggregated row of the reserved book.
type Level struct {
	Price      Price
	Quantity   int64
	Start, End Time
}

// BookView is a market's aggregated book.
type BookView struct {
	Market string
	Spot   SpotView
	Bids   []Level // resting reserved bids, best (highest) first
	Asks   []Level // unsold listing capacity, cheapest first
}

// Book aggregates a market's resting reserved bids and unsold listing
// capacity by price and window, best first. An ask's quantity is what the
// listing has free in every hour from now to its end.
func (e *Engine) Book(market string) (BookView, bool) {
	m := e.markets[market]
	if m == nil {
		return BookView{}, false
	}
	v := BookView{Market: market}
	v.Spot, _ = e.Spot(market)
	m.resting.ascend(func(b *Bid) bool {
		v.Bids = addLevel(v.Bids, Level{b.Limit, b.Quantity - b.Filled, b.Start, b.End})
		return true
	})
	hour := e.now.HourStart()
	m.listings.Ascend(func(l *Listing) bool {
		from := max(l.Start, hour)
		if from >= l.End {
			return true
		}
		free := l.Quantity - l.sold.Max(l.hourIndex(from), l.sold.n)
		if free > 0 {
			v.Asks = addLevel(v.Asks, Level{l.Reserve, free, from, l.End})
		}
		return true
	})
	sortLevels(v.Bids, true)
	sortLevels(v.Asks, false)
	return v, true
}

func addLevel(ls []Level, x Level) []Level {
	for i := range ls {
		if ls[i].Price == x.Price && ls[i].Start == x.Start && ls[i].End == x.End {
			ls[i].Quantity += x.Quantity
			return ls
		}
	}
	return append(ls, x)
}

func sortLevels(ls []Level, desc bool) {
	slices.SortStableFunc(ls, func(a, b Level) int {
		c := cmp.Compare(a.Price, b.Price)
		if desc {
			c = -c
		}
		return cmp.Or(c, cmp.Compare(a.Start, b.Start), cmp.Compare(a.End, b.End))
	})
}

// Trades returns a market's most recent fills, newest first.
func (e *Engine) Trades(market string, limit int) []Fill {
	m := e.markets[market]
	if m == nil {
		return nil
	}
	n := len(m.trades)
	out := make([]Fill, 0, min(limit, n))
	for i := 0; i < n && len(out) < limit; i++ {
		idx := (m.tradeN - 1 - i) % len(m.trades)
		if idx < 0 {
			idx += len(m.trades)
		}
		out = append(out, m.trades[idx])
	}
	return out
}

// Totals are the ledger's aggregate figures, for conservation checks.
// Supply is deposits less withdrawals (at most MaxMoney); money is
// conserved when Balances equals it.
type Totals struct {
	Supply, Balances, Held Money
}

// Totals sums the ledger.
func (e *Engine) Totals() Totals {
	t := Totals{Supply: e.supply}
	for _, a := range e.accountOrder {
		t.Balances += a.Balance
		t.Held += a.Held
	}
	return t
}
