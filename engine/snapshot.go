package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// snapshotMagic names the encoding: 4 added preemption notices and flexible
// reserved bids, 5 the reference table. Restore also reads 4.
const (
	snapshotMagic   = "GPUXSNAP5"
	snapshotMagicV4 = "GPUXSNAP4"
)

// Snapshot encodes the whole state deterministically: the same state gives
// the same bytes. Derived indexes (books, trees, heaps) are rebuilt on
// Restore, so the encoding holds only what they are derived from.
func (e *Engine) Snapshot() []byte {
	// Sized up front: growing a buffer of tens of MiB by doubling copies
	// it several times over, on the sequencer goroutine.
	w := wbuf{b: make([]byte, 0, 1<<16+128*(e.bids.len()+e.listingOrder.len()))}
	w.s(snapshotMagic)
	w.u(uint64(len(e.cfg.Markets)))
	for _, m := range e.cfg.Markets {
		w.s(m.ID)
		w.s(m.GPU)
		w.s(m.Region)
		w.i(m.PreemptionNoticeSeconds)
	}
	w.i(e.cfg.FeeBps)
	w.u(uint64(e.cfg.RecentTrades))
	w.u(e.seq)
	w.i(int64(e.now))
	w.u(e.fillCounter)
	w.i(int64(e.supply))

	rates := e.ReferenceRates()
	w.u(uint64(len(rates)))
	for _, r := range rates {
		w.s(r.GPU)
		w.s(r.Provider)
		w.i(int64(r.Price))
	}
	w.s(e.ratesTable)

	w.u(uint64(len(e.accountOrder)))
	for _, a := range e.accountOrder {
		w.id(a.ID)
		w.s(a.Name)
		w.u(uint64(a.Roles))
		w.h(a.KeyHash)
		w.i(int64(a.Balance))
		w.i(int64(a.Held))
		w.i(int64(a.CreatedAt))
		w.u(a.Seq)
		w.i(int64(a.unposted))
	}

	listings, bids := e.sortedListings(), e.sortedBids()
	// Fills of open objects, each once, in first-seen order (listings,
	// then bids, both in sequence order): restore rebuilds sold capacity
	// from them.
	var fills []*Fill
	seen := map[*Fill]bool{}
	for _, l := range listings {
		for _, f := range l.Fills {
			if !seen[f] {
				seen[f] = true
				fills = append(fills, f)
			}
		}
	}
	for _, b := range bids {
		for _, f := range b.Fills() {
			if !seen[f] {
				seen[f] = true
				fills = append(fills, f)
			}
		}
	}
	w.u(uint64(len(fills)))
	for _, f := range fills {
		w.fill(f)
	}

	w.u(uint64(len(listings)))
	for _, l := range listings {
		w.id(l.ID)
		w.u(l.Seq)
		w.id(l.Owner)
		w.s(l.Market)
		w.i(l.Quantity)
		w.i(int64(l.Start))
		w.i(int64(l.End))
		w.i(int64(l.Reserve))
		w.peg(l.ReservePeg)
		w.i(int64(l.SpotFloor))
		w.peg(l.FloorPeg)
		w.u(uint64(l.Status))
		w.i(int64(l.CreatedAt))
		w.i(int64(l.SpotEarned))
		w.i(l.spotUnits)
		w.i(l.inUse)
		w.i(int64(l.keyFloor))
	}

	w.u(uint64(len(bids)))
	for _, b := range bids {
		w.id(b.ID)
		w.u(b.Seq)
		w.id(b.Buyer)
		w.s(b.m.ID)
		w.u(uint64(b.Type))
		w.i(b.Quantity)
		w.i(b.MinQuantity)
		w.i(int64(b.Start))
		w.i(int64(b.End))
		w.i(int64(b.ExpiresAt()))
		w.i(int64(b.Limit))
		w.peg(b.LimitPeg())
		w.s(b.ClientOrderID())
		w.u(uint64(b.Status))
		w.s(b.Reason())
		w.i(int64(b.CreatedAt))
		w.i(b.Filled)
		w.i(int64(b.Hold))
		fx := b.flex()
		if fx == nil {
			fx = &flexBid{} // a fixed bid writes zeros
		}
		w.i(fx.hours)
		w.i(int64(fx.start))
		w.i(int64(fx.end))
		sp := b.spotBid
		if sp == nil {
			sp = &spotBid{} // a reserved bid writes zeros
		}
		w.i(int64(sp.Spent))
		w.i(sp.won)
		w.bool(sp.broke)
		w.u(uint64(len(b.Fills())))
		for _, f := range b.Fills() {
			w.id(f.ID)
		}
		w.u(uint64(len(sp.placements)))
		for _, p := range sp.placements {
			w.id(p.listing.ID)
			w.i(p.units)
			w.i(p.pend)
			w.i(p.i0)
			w.i(p.rem)
			w.i(p.feeRem)
			w.i(int64(p.charged))
			w.i(int64(p.earned))
			w.i(int64(p.fees))
		}
	}
	// Listing-side order of fills and placements matters to later commands.
	for _, l := range listings {
		w.u(uint64(len(l.Fills)))
		for _, f := range l.Fills {
			w.id(f.ID)
		}
		w.u(uint64(len(l.placements)))
		for _, p := range l.placements {
			w.id(p.bid.ID)
		}
	}

	for _, m := range e.marketOrder {
		sb := &m.spot
		w.i(sb.k)
		w.i(int64(sb.price))
		w.bool(sb.hasPrice)
		w.i(sb.integ)
		w.i(int64(sb.lastT))
		w.i(int64(sb.dBound.price))
		w.u(sb.dBound.seq)
		w.i(int64(sb.sBound.floor))
		w.u(uint64(sb.sBound.free))
		w.u(sb.sBound.seq)
		w.u(uint64(m.tradeN))
		w.u(uint64(len(m.trades)))
		for i := range m.trades {
			w.fill(&m.trades[i])
		}
		w.u(uint64(len(m.pegged)))
		for _, b := range m.pegged {
			w.id(b.ID)
		}
		w.u(uint64(len(m.peggedL)))
		for _, l := range m.peggedL {
			w.id(l.ID)
		}
		w.u(uint64(len(sb.notices)))
		for _, n := range sb.notices {
			w.id(n.bid.ID)
			w.id(n.listing.ID)
			w.i(n.units)
			w.i(int64(n.at))
			w.i(n.integ)
			w.i(n.i0)
			w.i(n.rem)
			w.i(n.feeRem)
			w.i(int64(n.charged))
			w.i(int64(n.earned))
			w.i(int64(n.fees))
		}
	}

	w.u(uint64(len(e.idemQueue)))
	for _, ent := range e.idemQueue {
		w.id(ent.key.account)
		w.s(ent.key.key)
		w.h(ent.hash)
		w.id(ent.target)
		w.i(int64(ent.expires))
	}
	return w.b
}

// sortedListings and sortedBids are the open listings and bids in
// sequence order: the engine appends them as they are made, so no sort is
// needed.
func (e *Engine) sortedListings() []*Listing { return e.listingOrder.all() }

func (e *Engine) sortedBids() []*Bid { return e.bids.all() }

func (w *wbuf) fill(f *Fill) {
	w.id(f.ID)
	w.s(f.Market)
	w.id(f.BidID)
	w.id(f.ListingID)
	w.id(f.Buyer)
	w.id(f.Owner)
	w.i(f.Quantity)
	w.i(int64(f.Price))
	w.i(int64(f.Start))
	w.i(int64(f.End))
	w.i(int64(f.Time))
	w.i(int64(f.Fee))
}

func (r *rbuf) fill() Fill {
	return Fill{ID: r.id(), Market: r.s(), BidID: r.id(), ListingID: r.id(), Buyer: r.id(), Owner: r.id(),
		Quantity: r.i(), Price: Price(r.i()), Start: Time(r.i()), End: Time(r.i()), Time: Time(r.i()), Fee: Money(r.i())}
}

// Hash is the hex SHA-256 of the snapshot: equal states, equal hashes.
func (e *Engine) Hash() string {
	h := sha256.Sum256(e.Snapshot())
	return hex.EncodeToString(h[:])
}

// HashOf is the hash of snapshot bytes, as Hash computes it.
func HashOf(snapshot []byte) string {
	h := sha256.Sum256(snapshot)
	return hex.EncodeToString(h[:])
}

// Restore rebuilds an engine from Snapshot bytes; it continues exactly as
// the engine that made them would.
func Restore(data []byte) (*Engine, error) {
	r := rbuf{b: data}
	magic := r.s()
	if magic != snapshotMagic && magic != snapshotMagicV4 {
		return nil, fmt.Errorf("restore: not a gpux snapshot (magic %q)", magic)
	}
	var cfg Config
	nm := r.n(1 << 16)
	for i := 0; i < nm; i++ {
		cfg.Markets = append(cfg.Markets, Market{ID: r.s(), GPU: r.s(), Region: r.s(), PreemptionNoticeSeconds: r.i()})
	}
	cfg.FeeBps = r.i()
	cfg.RecentTrades = int(r.u())
	if r.err != nil {
		return nil, fmt.Errorf("restore config: %w", r.err)
	}
	e := New(cfg)
	e.seq = r.u()
	e.now = Time(r.i())
	e.fillCounter = r.u()
	e.supply = Money(r.i())
	for i, n := 0, r.n(1<<20); i < n; i++ {
		e.rates[[2]string{r.s(), r.s()}] = Price(r.i())
	}
	if magic != snapshotMagicV4 {
		e.ratesTable = r.s()
	}

	e.accountOrder = e.accountOrder[:0]
	clear(e.accounts)
	for i, n := 0, r.n(len(data)); i < n && r.err == nil; i++ {
		a := &Account{ID: r.id(), Name: r.s(), Roles: Role(r.u()), KeyHash: r.h(), Balance: Money(r.i()),
			Held: Money(r.i()), CreatedAt: Time(r.i()), Seq: r.u(), unposted: Money(r.i()), coids: map[string]*Bid{}, listings: listingList{which: inAccount}}
		e.accounts[a.ID] = a
		e.accountOrder = append(e.accountOrder, a)
		if a.KeyHash != ([32]byte{}) {
			e.keys[a.KeyHash] = a
		}
	}

	fills := map[ID]*Fill{}
	for i, n := 0, r.n(len(data)); i < n && r.err == nil; i++ {
		f := r.fill()
		fills[f.ID] = &f
	}

	nl := r.n(len(data))
	listings := make([]*Listing, 0, nl)
	for i := 0; i < nl && r.err == nil; i++ {
		l := &Listing{ID: r.id(), Seq: r.u(), Owner: r.id(), Market: r.s(), Quantity: r.i(), Start: Time(r.i()),
			End: Time(r.i()), Reserve: Price(r.i()), ReservePeg: r.peg(), SpotFloor: Price(r.i()), FloorPeg: r.peg(),
			Status: ListingStatus(r.u()), CreatedAt: Time(r.i()), SpotEarned: Money(r.i())}
		l.spotUnits, l.inUse, l.keyFloor = r.i(), r.i(), Price(r.i())
		m, a := e.markets[l.Market], e.accounts[l.Owner]
		if m == nil || a == nil || l.End <= l.Start {
			return nil, fmt.Errorf("restore listing %s: bad market, owner or window", l.ID)
		}
		l.m = m
		l.sold = newSoldHours(int((l.End - l.Start) / Hour))
		e.listings[l.ID] = l
		e.listingOrder.add(l)
		a.listings.add(l)
		listings = append(listings, l)
	}

	nb := r.n(len(data))
	for i := 0; i < nb && r.err == nil; i++ {
		b := e.bids.alloc()
		b.ID, b.Seq, b.Buyer = r.id(), r.u(), r.id()
		market := r.s()
		b.Type, b.Quantity, b.MinQuantity = BidType(r.u()), r.i(), r.i()
		b.Start, b.End = Time(r.i()), Time(r.i())
		if exp := Time(r.i()); exp != 0 {
			b.ext().expiresAt = exp
		}
		b.Limit = Price(r.i())
		if pg := r.peg(); pg.Kind != PegNone {
			b.ext().limitPeg = pg
		}
		if coid := r.s(); coid != "" {
			b.ext().clientOrderID = coid
		}
		b.Status = BidStatus(r.u())
		reason, ok := reasonOf(r.s())
		if !ok {
			return nil, fmt.Errorf("restore bid %s: unknown close reason", b.ID)
		}
		b.closeReason = reason
		b.CreatedAt, b.Filled, b.Hold = Time(r.i()), r.i(), Money(r.i())
		if fx := (flexBid{r.i(), Time(r.i()), Time(r.i())}); fx.hours > 0 {
			b.ext().flex = fx
		}
		sp := &spotBid{Spent: Money(r.i()), won: r.i(), broke: r.bool()}
		if b.Type == Spot {
			b.spotBid = sp
		}
		m, a := e.markets[market], e.accounts[b.Buyer]
		if m == nil || a == nil {
			return nil, fmt.Errorf("restore bid %s: bad market or buyer", b.ID)
		}
		if r.err == nil && e.bids.get(b.ID) != nil {
			return nil, fmt.Errorf("restore bid %s: duplicate id", b.ID)
		}
		b.m = m
		for j, nf := 0, r.n(len(data)); j < nf && r.err == nil; j++ {
			f := fills[r.id()]
			if f == nil {
				return nil, fmt.Errorf("restore bid %s: unknown fill", b.ID)
			}
			x := b.ext()
			x.fills = append(x.fills, f)
		}
		for j, np := 0, r.n(len(data)); j < np && r.err == nil; j++ {
			l := e.listings[r.id()]
			if l == nil {
				return nil, fmt.Errorf("restore bid %s: placement on unknown listing", b.ID)
			}
			p := &placement{bid: b, listing: l, units: r.i(), pend: r.i(), i0: r.i(), rem: r.i(), feeRem: r.i(),
				charged: Money(r.i()), earned: Money(r.i()), fees: Money(r.i())}
			sp.placements = append(sp.placements, p)
			sp.placed += p.units
			l.placed += p.units
			sp.pend += p.pend
			l.pend += p.pend
		}
		e.bids.add(b)
		e.bids.linkAccount(a, b)
		if coid := b.ClientOrderID(); coid != "" && b.Status.Open() {
			a.coids[coid] = b
		}
		switch {
		case b.Type == Reserved && (b.Status == BidResting || b.Status == BidPartiallyFilled):
			m.resting.insert(b)
			e.expiries = append(e.expiries, b)
		case b.Type == Spot && b.Status.Open():
			m.spot.demand.Set(b.key(), b, b.Quantity)
		}
	}
	e.expiries.init()

	for _, l := range listings {
		for j, n := 0, r.n(len(data)); j < n && r.err == nil; j++ {
			f := fills[r.id()]
			if f == nil {
				return nil, fmt.Errorf("restore listing %s: unknown fill", l.ID)
			}
			l.Fills = append(l.Fills, f)
			l.sold.Add(l.hourIndex(f.Start), l.hourIndex(f.End), f.Quantity)
		}
		for j, n := 0, r.n(len(data)); j < n && r.err == nil; j++ {
			b := e.bids.get(r.id())
			if b == nil {
				return nil, fmt.Errorf("restore listing %s: unknown placement bid", l.ID)
			}
			for _, p := range b.placements {
				if p.listing == l {
					l.placements = append(l.placements, p)
				}
			}
		}
		l.bookKey = listingKey{l.Reserve, l.Seq}
		l.setFreeMask()
		if l.Status == ListingActive {
			l.m.active.add(l)
			if l.sold.MinAll() < l.Quantity {
				l.m.listings.Set(l.bookKey, l)
			}
		}
		if l.spotUnits > 0 {
			e.setSegments(l, l.inUse)
		}
	}

	for _, m := range e.marketOrder {
		sb := &m.spot
		sb.k = r.i()
		sb.price = Price(r.i())
		sb.hasPrice = r.bool()
		sb.integ = r.i()
		sb.lastT = Time(r.i())
		sb.dBound = bidKey{Price(r.i()), r.u()}
		sb.sBound = supplyKey{Price(r.i()), uint8(r.u()), r.u()}
		m.tradeN = int(r.u())
		for j, n := 0, r.n(len(data)); j < n && r.err == nil; j++ {
			m.trades = append(m.trades, r.fill())
		}
		for j, n := 0, r.n(len(data)); j < n && r.err == nil; j++ {
			if b := e.bids.get(r.id()); b != nil {
				m.pegged = append(m.pegged, b)
			}
		}
		for j, n := 0, r.n(len(data)); j < n && r.err == nil; j++ {
			if l := e.listings[r.id()]; l != nil {
				m.peggedL = append(m.peggedL, l)
			}
		}
		for j, n := 0, r.n(len(data)); j < n && r.err == nil; j++ {
			b, l := e.bids.get(r.id()), e.listings[r.id()]
			if b == nil || b.spotBid == nil || l == nil {
				return nil, fmt.Errorf("restore market %s: notice of unknown bid or listing", m.ID)
			}
			nt := &notice{placement: placement{bid: b, listing: l, units: r.i()}, at: Time(r.i()), integ: r.i()}
			nt.i0, nt.rem, nt.feeRem = r.i(), r.i(), r.i()
			nt.charged, nt.earned, nt.fees = Money(r.i()), Money(r.i()), Money(r.i())
			sb.notices = append(sb.notices, nt)
			b.notices = append(b.notices, nt)
			b.noticed += nt.units
			l.held += nt.units
		}
	}

	for i, n := 0, r.n(len(data)); i < n && r.err == nil; i++ {
		ent := &idemEntry{key: idemKey{r.id(), r.s()}, hash: r.h(), target: r.id(), expires: Time(r.i())}
		e.idem[ent.key] = ent
		e.idemQueue = append(e.idemQueue, ent)
	}
	if r.err != nil {
		return nil, fmt.Errorf("restore: %w", r.err)
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("restore: %d trailing bytes", len(r.b))
	}
	return e, nil
}
