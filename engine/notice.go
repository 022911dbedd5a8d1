package engine

import "slices"

// A notice is spot GPUs the clearing took from a running bid that the bid
// keeps until at (the market's preemption notice after the clearing that
// took them). The clearing never sees them: winners and price stay a pure
// function of bids and supply. Physically they still occupy their listing
// (Listing.held), so as many units placed there by the clearing wait
// (placement.pend) until the notice ends. While under notice the bid pays
// the clearing price capped at its own limit: integ is ∫min(price, limit)dt
// in tick·ms, settled into the embedded placement like a running one.
type notice struct {
	placement
	at    Time
	integ int64
}

// accrue adds the capped price over dt to every notice of the book.
func (s *spotBook) accrueNotices(dt Time) {
	if !s.hasPrice {
		return
	}
	for _, n := range s.notices {
		p := min(s.price, n.bid.Limit)
		if p <= 0 {
			continue
		}
		n.integ = satAddInt(n.integ, satMulInt(int64(p), int64(dt)))
	}
}

func satMulInt(a, b int64) int64 {
	if a != 0 && b > maxIntegral/a {
		return maxIntegral
	}
	return min(a*b, maxIntegral)
}

func satAddInt(a, b int64) int64 {
	if b > maxIntegral-a {
		return maxIntegral
	}
	return a + b
}

func (e *Engine) settleNotice(n *notice) {
	e.settleD(&n.placement, n.integ-n.i0)
	n.i0 = n.integ
}

// giveNotice moves take units of p (running, not pending) under notice.
func (e *Engine) giveNotice(p *placement, take int64) {
	b, l := p.bid, p.listing
	sb := &l.m.spot
	e.settle(p)
	e.postPlacement(p)
	p.units -= take
	b.placed -= take
	l.placed -= take
	if p.units == 0 {
		e.dropPlacement(p)
	}
	at := e.now + l.m.Notice()
	var n *notice
	for _, x := range b.notices {
		if x.listing == l && x.at == at {
			n = x
			e.settleNotice(n)
			break
		}
	}
	if n == nil {
		n = &notice{placement: placement{bid: b, listing: l}, at: at}
		sb.notices = append(sb.notices, n)
		b.notices = append(b.notices, n)
	}
	n.units += take
	b.noticed += take
	l.held += take
	b.noticeEv += take
}

// endNotice ends up to units of a notice: settles it, posts its lines and
// frees its GPUs. The caller reconciles the listing (pending placements
// start).
func (e *Engine) endNotice(n *notice, units int64) {
	sb := &n.listing.m.spot
	e.settleNotice(n)
	e.postPlacement(&n.placement)
	n.units -= units
	n.bid.noticed -= units
	n.listing.held -= units
	if n.units == 0 {
		sb.notices = slices.DeleteFunc(sb.notices, func(x *notice) bool { return x == n })
		n.bid.notices = slices.DeleteFunc(n.bid.notices, func(x *notice) bool { return x == n })
	}
	sb.changedListings = append(sb.changedListings, n.listing)
}

// noticesOf lists a bid's notices in the book's order: a copy, since
// callers end notices while they walk it. The bid keeps its own list so
// this does not scan the market's notices (it did: 16 % of SpotChurn).
func (s *spotBook) noticesOf(b *Bid) []*notice {
	if len(b.notices) == 0 {
		return nil
	}
	return slices.Clone(b.notices)
}

// endListingNotices ends every notice on a listing at once: its GPUs are
// gone (cancelled, or taken by a reservation starting).
func (e *Engine) endListingNotices(l *Listing, reason string) {
	sb := &l.m.spot
	for _, n := range slices.Clone(sb.notices) {
		if n.listing != l {
			continue
		}
		b, u := n.bid, n.units
		e.endNotice(n, u)
		e.emit(Event{Kind: EvSpotPreempted, Accounts: [2]ID{b.Buyer}, Market: b.m.ID, Bid: b.ID, Quantity: u, Allocated: b.won, Reason: reason})
		sb.changedBids = append(sb.changedBids, b)
	}
}

// expireNotices ends the notices whose deadline has come, then starts the
// placements that waited for them.
func (e *Engine) expireNotices(m *market) bool {
	sb := &m.spot
	any := false
	for _, n := range slices.Clone(sb.notices) {
		if n.at > e.now {
			continue
		}
		any = true
		b, u := n.bid, n.units
		e.endNotice(n, u)
		e.emit(Event{Kind: EvSpotPreempted, Accounts: [2]ID{b.Buyer}, Market: m.ID, Bid: b.ID, Quantity: u, Allocated: b.won, Reason: ReasonOutbid})
		sb.changedBids = append(sb.changedBids, b)
	}
	return any
}

// reconcile makes a listing's waiting units exactly what its held units
// force: max(0, placed + held − spotUnits). Fewer waiting units start
// (settled first, so they pay only from now), oldest placement first.
func (e *Engine) reconcile(l *Listing) {
	want := max(0, min(l.placed, l.placed+l.held-l.spotUnits))
	for _, p := range l.placements {
		if l.pend <= want {
			break
		}
		if p.pend == 0 {
			continue
		}
		x := min(p.pend, l.pend-want)
		e.settle(p)
		p.pend -= x
		p.bid.pend -= x
		l.pend -= x
		if b := p.bid; b.Status.Open() {
			b.Status = b.spotStatus()
		}
	}
	// More waiting units than before: only new placements add them (see
	// recomputeSpot phase C), so this assigns to the newest placements.
	for i := len(l.placements) - 1; i >= 0 && l.pend < want; i-- {
		p := l.placements[i]
		x := min(p.units-p.pend, want-l.pend)
		if x <= 0 {
			continue
		}
		e.settle(p)
		p.pend += x
		p.bid.pend += x
		l.pend += x
	}
}

// spotStatus is a spot bid's status from its units: preempting while any
// are under notice, running while any run, else waiting.
func (b *Bid) spotStatus() BidStatus {
	switch {
	case b.noticed > 0:
		return BidPreempting
	case b.placed-b.pend > 0:
		return BidRunning
	}
	return BidWaiting
}

// preemptAt is the earliest deadline of a spot bid's notices (0: none).
func (b *Bid) preemptAt() Time {
	var at Time
	if b.spotBid == nil || b.noticed == 0 {
		return 0
	}
	for _, n := range b.m.spot.notices {
		if n.bid == b && (at == 0 || n.at < at) {
			at = n.at
		}
	}
	return at
}

// startsAt is when a waiting spot bid's first waiting units start: the
// earliest notice deadline on a listing where it waits (0: none).
func (b *Bid) startsAt() Time {
	var at Time
	if b.spotBid == nil || b.pend == 0 {
		return 0
	}
	for _, p := range b.placements {
		if p.pend == 0 {
			continue
		}
		for _, n := range b.m.spot.notices {
			if n.listing == p.listing && (at == 0 || n.at < at) {
				at = n.at
			}
		}
	}
	return at
}
