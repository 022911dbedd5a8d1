package engine

import (
	"cmp"
	"math/bits"
	"slices"
)

// spotBook is one market's spot auction. Demand holds every open spot bid
// (limit desc, then oldest) weighted by its quantity; supply holds each
// offering listing as up to two entries, its units in use and its free
// units, ordered by floor, then in-use first, then oldest listing. Both are
// order-statistic trees, so the clearing (k winning units) is a binary
// search of selects, and a recompute only visits entries whose status can
// have changed: those between the old and the new boundary, plus what the
// command touched.
type spotBook struct {
	demand *osTree[bidKey, *Bid]
	supply *osTree[supplyKey, *Listing]

	k        int64
	price    Price
	hasPrice bool

	// integ is ∫price dt in tick·ms since the last settlement of every
	// placement (each tick); a placement owes units × (integ − i0).
	integ int64
	lastT Time

	dBound bidKey
	sBound supplyKey

	changedBids     []*Bid
	changedListings []*Listing

	notices []*notice // in the order given
}

type supplyKey struct {
	floor Price
	free  uint8 // 0: units in use, 1: free units
	seq   uint64
}

func cmpSupplyKey(a, b supplyKey) int {
	switch {
	case a.floor != b.floor:
		if a.floor < b.floor {
			return -1
		}
		return 1
	case a.free != b.free:
		if a.free < b.free {
			return -1
		}
		return 1
	case a.seq < b.seq:
		return -1
	case a.seq > b.seq:
		return 1
	}
	return 0
}

func (s *spotBook) init() {
	s.demand = newOSTree[bidKey, *Bid](cmpBidKey)
	s.supply = newOSTree[supplyKey, *Listing](cmpSupplyKey)
}

// advance accrues the price in force up to now. The integral saturates at
// maxIntegral (see money.go): every tick settles and restarts it, so only a
// gap of weeks without a tick reaches it, and then each buyer pays what it
// has available and is released.
func (s *spotBook) advance(now Time) {
	if now > s.lastT {
		s.accrueNotices(now - s.lastT)
	}
	if s.hasPrice && now > s.lastT {
		hi, lo := bits.Mul64(uint64(s.price), uint64(now-s.lastT))
		if hi != 0 || lo > uint64(maxIntegral-s.integ) {
			s.integ = maxIntegral
		} else {
			s.integ += int64(lo)
		}
	}
	if now > s.lastT {
		s.lastT = now
	}
}

const msPerHour = uint64(Hour)

// settle charges a placement for the price accrued since it was last
// settled. A buyer who cannot pay in full pays what is available and is
// released at the next tick.
func (e *Engine) settle(p *placement) {
	sb := &p.listing.m.spot
	d := sb.integ - p.i0
	p.i0 = sb.integ
	e.settleD(p, d)
}

// settleD charges a placement's running units (units − pend) for d
// tick·ms of price.
func (e *Engine) settleD(p *placement, d int64) {
	if d <= 0 || p.units-p.pend == 0 {
		return
	}
	hi, lo := bits.Mul64(uint64(p.units-p.pend), uint64(d))
	var carry uint64
	lo, carry = bits.Add64(lo, uint64(p.rem), 0)
	hi += carry
	q, r := bits.Div64(hi, lo, msPerHour) // units ≤ MaxQuantity, d < 2^63: hi < msPerHour
	p.rem = int64(r)
	amt := MaxMoney // more than anyone can pay: cut to the buyer's available below
	if q < uint64(MaxMoney) {
		amt = Money(q)
	}
	if amt == 0 {
		return
	}
	b := p.bid
	buyer := e.accounts[b.Buyer]
	if avail := buyer.Available(); amt > avail {
		amt = max(avail, 0)
		b.broke = true
	}
	if amt == 0 {
		return
	}
	owner := e.accounts[p.listing.Owner]
	fee := e.pay(buyer, owner, amt, &p.feeRem)
	b.Spent = satAdd(b.Spent, amt)
	p.listing.SpotEarned = satAdd(p.listing.SpotEarned, amt-fee)
	// Posted later as ledger lines; each is at most the buyer's balance.
	p.charged += amt
	p.earned += amt - fee
	p.fees += fee
	buyer.unposted -= amt
	owner.unposted += amt - fee
	if fee != 0 {
		e.accounts[FeeAccount].unposted += fee
	}
}

// postPlacement emits the ledger lines for what a placement has been
// charged since its last lines: the buyer's charge, the owner's earning and
// the fee.
func (e *Engine) postPlacement(p *placement) {
	if p.charged == 0 {
		return
	}
	buyer, owner := e.accounts[p.bid.Buyer], e.accounts[p.listing.Owner]
	buyer.unposted += p.charged
	e.post(buyer, LedgerSpotCharge, -p.charged, p.bid.ID)
	if p.earned != 0 {
		owner.unposted -= p.earned
		e.post(owner, LedgerSpotEarning, p.earned, p.listing.ID)
	}
	if p.fees != 0 {
		f := e.accounts[FeeAccount]
		f.unposted -= p.fees
		e.post(f, LedgerFee, p.fees, p.bid.ID)
	}
	p.charged, p.earned, p.fees = 0, 0, 0
}

// postMarket settles every placement of a market and posts its lines.
func (e *Engine) postMarket(m *market) {
	sb := &m.spot
	sb.advance(e.now)
	var cum int64
	sb.demand.Ascend(nil, func(_ bidKey, b *Bid, w int64) bool {
		if cum >= sb.k {
			return false
		}
		cum += w
		for _, p := range b.placements {
			e.settle(p)
			e.postPlacement(p)
		}
		return true
	})
	for _, n := range sb.notices {
		e.settleNotice(n)
		e.postPlacement(&n.placement)
	}
}

// release frees n units of a placement, its waiting (never started) units
// first.
func (e *Engine) release(p *placement, n int64) {
	e.settle(p)
	e.postPlacement(p)
	if x := min(n, p.pend); x > 0 {
		p.pend -= x
		p.bid.pend -= x
		p.listing.pend -= x
	}
	p.units -= n
	p.bid.placed -= n
	p.listing.placed -= n
	if p.units == 0 {
		e.dropPlacement(p)
	}
}

func (e *Engine) dropPlacement(p *placement) {
	p.bid.placements = slices.DeleteFunc(p.bid.placements, func(x *placement) bool { return x == p })
	p.listing.placements = slices.DeleteFunc(p.listing.placements, func(x *placement) bool { return x == p })
}

func (e *Engine) place(b *Bid, l *Listing, n int64) *placement {
	for _, p := range b.placements {
		if p.listing == l {
			e.settle(p)
			e.postPlacement(p)
			p.units += n
			b.placed += n
			l.placed += n
			return p
		}
	}
	p := &placement{bid: b, listing: l, units: n, i0: l.m.spot.integ}
	b.placements = append(b.placements, p)
	l.placements = append(l.placements, p)
	b.placed += n
	l.placed += n
	return p
}

func (e *Engine) addSpotBid(b *Bid) {
	sb := &b.m.spot
	sb.demand.Add(b.key(), b, b.Quantity) // absent: new, or deleted before a reprice
	sb.changedBids = append(sb.changedBids, b)
}

// closeSpot ends a spot bid: its GPUs are settled and freed. The caller
// recomputes the market.
func (e *Engine) closeSpot(b *Bid, st BidStatus, reason string) {
	sb := &b.m.spot
	sb.advance(e.now)
	for _, p := range slices.Clone(b.placements) {
		sb.changedListings = append(sb.changedListings, p.listing)
		e.release(p, p.units)
	}
	held := b.noticed
	for _, n := range sb.noticesOf(b) {
		e.endNotice(n, n.units)
	}
	sb.demand.Delete(b.key())
	if reason == ReasonInsufficientFunds {
		e.emit(Event{Kind: EvSpotReleased, Accounts: [2]ID{b.Buyer}, Market: b.m.ID, Bid: b.ID, Quantity: b.won + held, Reason: reason})
	}
	b.won = 0
	b.Status = st
	b.setReason(reason)
	b.broke = false
	e.forgetOpen(e.accounts[b.Buyer], b)
}

// setSpotUnits changes how many units a listing offers to spot this hour.
// Units it loses come out of its free part first.
func (e *Engine) setSpotUnits(l *Listing, units int64, reason string) {
	sb := &l.m.spot
	if l.held > 0 && units < l.placed+l.held {
		// The GPUs are going: units under notice leave at once.
		e.endListingNotices(l, reason)
	}
	l.spotUnits = units
	e.setSegments(l, min(l.inUse, units))
	l.cutReason = reason
	sb.changedListings = append(sb.changedListings, l)
}

func (e *Engine) setSegments(l *Listing, inUse int64) {
	sb := &l.m.spot
	k0 := supplyKey{l.keyFloor, 0, l.Seq}
	k1 := supplyKey{l.keyFloor, 1, l.Seq}
	if inUse > 0 {
		sb.supply.Set(k0, l, inUse)
	} else {
		sb.supply.Delete(k0)
	}
	if free := l.spotUnits - inUse; free > 0 {
		sb.supply.Set(k1, l, free)
	} else {
		sb.supply.Delete(k1)
	}
	l.inUse = inUse
}

// rekeySupply moves a listing's supply entries to a new floor.
func (e *Engine) rekeySupply(l *Listing, floor Price) {
	sb := &l.m.spot
	sb.supply.Delete(supplyKey{l.keyFloor, 0, l.Seq})
	sb.supply.Delete(supplyKey{l.keyFloor, 1, l.Seq})
	l.keyFloor = floor
	e.setSegments(l, l.inUse)
	sb.changedListings = append(sb.changedListings, l)
}

// clearing finds k, the number of winning units, and the uniform price.
// k is the largest m ≤ min(demand, supply) whose m-th best bid unit pays
// at least the m-th cheapest supply unit's floor (that holds for every
// smaller m). A command moves it by a few units, so the search gallops out
// from the last k and then bisects: O(log distance) pairs of selects, not
// O(log units).
func (sb *spotBook) clearing() (k int64, price Price, has bool) {
	d, s := sb.demand.Total(), sb.supply.Total()
	top := min(d, s)
	crosses := func(m int64) bool { // m in [1, top]
		dk, _, _, _ := sb.demand.Select(m - 1)
		sk, _, _, _ := sb.supply.Select(m - 1)
		return dk.price >= sk.floor
	}
	// Bracket k in [lo, hi] with crosses(lo) (or lo = 0) and, above hi,
	// nothing crosses.
	lo, hi := int64(0), top
	if k0 := min(sb.k, top); k0 > 0 && crosses(k0) {
		lo = k0
		for step := int64(1); ; step *= 2 {
			m := lo + step
			if m > top {
				break
			}
			if !crosses(m) {
				hi = m - 1
				break
			}
			lo = m
		}
	} else if k0 > 0 {
		hi = k0 - 1
		for step := int64(1); ; step *= 2 {
			m := hi - step + 1 // the lowest of the next block down
			if m < 1 {
				break
			}
			if crosses(m) {
				lo = m
				break
			}
			hi = m - 1
		}
	}
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if crosses(mid) {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	k = lo
	if k == 0 {
		return 0, 0, false
	}
	sk, _, _, _ := sb.supply.Select(k - 1)
	price = sk.floor
	if k < d {
		if dk, _, _, _ := sb.demand.Select(k); dk.price > price {
			price = dk.price
		}
	}
	return k, price, true
}

// recomputeSpot clears the market again after a change and moves GPUs:
// the k cheapest supply units are in use, the k best demand units win, and
// a bid keeps the units it holds while it still wins them and they are
// still in use; only the difference moves.
func (e *Engine) recomputeSpot(m *market, reason string) {
	sb := &m.spot
	sb.advance(e.now)
	e.epoch++
	ep := e.epoch
	k, price, has := sb.clearing()

	// Scratch lists, reused: recomputeSpot never runs inside itself.
	tl, tb := e.spotL[:0], e.spotB[:0]
	defer func() {
		clear(tl)
		clear(tb)
		e.spotL, e.spotB = tl[:0], tb[:0]
	}()
	addL := func(l *Listing) {
		if l.mark != ep {
			l.mark = ep
			l.newInUse = l.inUse
			tl = append(tl, l)
		}
	}
	addB := func(b *Bid) {
		if b.mark != ep {
			b.mark = ep
			b.newWon = b.won
			tb = append(tb, b)
		}
	}

	// Listings whose in-use count can change.
	var newS supplyKey
	if k > 0 {
		newS, _, _, _ = sb.supply.Select(k - 1)
	}
	walkBetween(sb.supply, sb.k > 0, sb.sBound, k > 0, newS, cmpSupplyKey, addL)
	for _, l := range sb.changedListings {
		addL(l)
	}
	for _, l := range tl {
		l.newInUse = 0
		for free := uint8(0); free < 2; free++ {
			key := supplyKey{l.keyFloor, free, l.Seq}
			if _, w, ok := sb.supply.Get(key); ok {
				l.newInUse += clamp(k-sb.supply.Rank(key), 0, w)
			}
		}
	}

	// Bids whose winning count can change.
	var newD bidKey
	if k > 0 {
		newD, _, _, _ = sb.demand.Select(k - 1)
	}
	walkBetween(sb.demand, sb.k > 0, sb.dBound, k > 0, newD, cmpBidKey, addB)
	for _, b := range sb.changedBids {
		addB(b)
	}
	for _, b := range tb {
		if b.Status.Open() {
			b.newWon = clamp(k-sb.demand.Rank(b.key()), 0, b.Quantity)
		} else {
			b.newWon = 0
		}
	}

	// A: listings with fewer units in use shed placements, from bids that
	// lose units anyway first, then from others (who then move).
	for i := 0; i < len(tl); i++ {
		l := tl[i]
		over := l.placed - l.newInUse
		if over <= 0 {
			continue
		}
		for _, p := range slices.Clone(l.placements) {
			b := p.bid
			losing := b.placed - b.won
			if b.mark == ep {
				losing = b.placed - b.newWon
			}
			if take := min(over, losing, p.units); take > 0 {
				if b.reason == "" {
					b.reason = l.cutReason
				}
				e.shed(p, take, l.cutReason == "")
				over -= take
			}
		}
		ps := slices.Clone(l.placements)
		for j := len(ps) - 1; j >= 0 && over > 0; j-- {
			p := ps[j]
			take := min(over, p.units)
			addB(p.bid)
			p.bid.displaced += take
			e.release(p, take)
			over -= take
		}
	}
	// B: bids that win fewer units leave their dearest listings first.
	for _, b := range tb {
		over := b.placed - b.newWon
		if over <= 0 {
			continue
		}
		// Units that never started go first, then the dearest listings'.
		ps := slices.Clone(b.placements)
		slices.SortFunc(ps, func(x, y *placement) int {
			return cmp.Or(cmp.Compare(min(y.pend, 1), min(x.pend, 1)), cmp.Compare(y.listing.keyFloor, x.listing.keyFloor), cmp.Compare(y.listing.Seq, x.listing.Seq))
		})
		for _, p := range ps {
			if over == 0 {
				break
			}
			take := min(over, p.units)
			addL(p.listing)
			e.shed(p, take, true)
			over -= take
		}
	}
	// Withdrawal: a bid under notice that the clearing gives units again
	// takes back its own GPUs first; whoever waited for them on that
	// listing gives the place up and is placed below like any other.
	for _, b := range tb {
		if b.noticed == 0 || b.newWon <= b.placed {
			continue
		}
		need := b.newWon - b.placed
		for _, n := range sb.noticesOf(b) {
			r := min(need, n.units)
			if r == 0 {
				break
			}
			need -= r
			l := n.listing
			addL(l)
			// Back on its own GPUs as far as the clearing still uses l
			// (bumping bids that only waited for them); the rest is
			// placed below like any need, which the buyer feels as a move.
			own := int64(0)
			for _, q := range l.placements {
				if q.bid == b {
					own = q.pend
				}
			}
			back := min(r, max(0, l.newInUse-l.placed+l.pend-own))
			e.endNotice(n, r)
			b.withdrawn += r
			b.displaced += r - back
			if back == 0 {
				continue
			}
			e.place(b, l, back)
			over := l.placed - l.newInUse
			ps := slices.Clone(l.placements)
			for pass := 0; pass < 2 && over > 0; pass++ {
				for j := len(ps) - 1; j >= 0 && over > 0; j-- {
					q := ps[j]
					if q.bid == b || q.units == 0 || (pass == 0 && q.pend == 0) {
						continue
					}
					take := min(over, q.units)
					if pass == 0 {
						take = min(take, q.pend)
					} else {
						q.bid.displaced += take
					}
					addB(q.bid)
					e.release(q, take)
					over -= take
				}
			}
		}
	}
	// C: bids that need units take the cheapest listings with room.
	var needs []*Bid
	for _, b := range tb {
		if b.newWon > b.placed {
			needs = append(needs, b)
		}
	}
	var rooms []*Listing
	for _, l := range tl {
		if l.newInUse > l.placed {
			rooms = append(rooms, l)
		}
	}
	slices.SortFunc(needs, func(x, y *Bid) int { return cmpBidKey(x.key(), y.key()) })
	slices.SortFunc(rooms, func(x, y *Listing) int {
		return cmpSupplyKey(supplyKey{x.keyFloor, 0, x.Seq}, supplyKey{y.keyFloor, 0, y.Seq})
	})
	ri := 0
	for _, b := range needs {
		for b.newWon > b.placed {
			if ri == len(rooms) {
				panic("engine: spot placement out of balance")
			}
			l := rooms[ri]
			n := min(b.newWon-b.placed, l.newInUse-l.placed)
			p := e.place(b, l, n)
			// Units still held under notice on l make the new ones wait.
			if w := min(n, max(0, l.placed+l.held-l.spotUnits)-l.pend); w > 0 {
				p.pend += w
				b.pend += w
				l.pend += w
			}
			if l.newInUse == l.placed {
				ri++
			}
		}
	}
	if ri < len(rooms) && rooms[ri].newInUse > rooms[ri].placed {
		for _, b := range tb {
			println("bid", b.Seq, b.won, b.newWon, b.placed, b.noticed, b.pend, b.Status.String())
		}
		for _, l := range tl {
			println("lst", l.Seq, l.inUse, l.newInUse, l.placed, l.held, l.pend, l.spotUnits)
		}
		panic("engine: spot supply in use without a bid")
	}

	for _, l := range tl {
		e.reconcile(l)
	}
	for _, l := range sb.changedListings {
		e.reconcile(l)
	}
	for _, b := range tb {
		old := b.won
		if b.withdrawn > 0 {
			e.emit(Event{Kind: EvSpotPreemptionWithdrawn, Accounts: [2]ID{b.Buyer}, Market: m.ID, Bid: b.ID, Quantity: b.withdrawn, Allocated: b.newWon})
		}
		if b.noticeEv > 0 {
			e.emit(Event{Kind: EvSpotPreempting, Accounts: [2]ID{b.Buyer}, Market: m.ID, Bid: b.ID, Quantity: b.noticeEv, Allocated: b.newWon,
				PreemptAt: e.now + m.Notice(), Price: min(price, b.Limit), HasPrice: has, Reason: ReasonOutbid})
		}
		switch {
		case b.newWon-b.withdrawn > old:
			e.emit(Event{Kind: EvSpotAllocated, Accounts: [2]ID{b.Buyer}, Market: m.ID, Bid: b.ID, Quantity: b.newWon - b.withdrawn - old, Allocated: b.newWon})
		case b.newWon+b.noticeEv < old:
			r := b.reason
			if r == "" {
				r = reason
			}
			e.emit(Event{Kind: EvSpotPreempted, Accounts: [2]ID{b.Buyer}, Market: m.ID, Bid: b.ID, Quantity: old - b.newWon - b.noticeEv, Allocated: b.newWon, Reason: r})
		}
		b.noticeEv, b.withdrawn = 0, 0
		if b.displaced > 0 && b.newWon > 0 {
			e.emit(Event{Kind: EvSpotMoved, Accounts: [2]ID{b.Buyer}, Market: m.ID, Bid: b.ID, Quantity: min(b.displaced, b.newWon), Allocated: b.newWon})
		}
		b.won = b.newWon
		b.displaced = 0
		b.reason = ""
		if b.Status == BidRunning || b.Status == BidWaiting || b.Status == BidPreempting {
			b.Status = b.spotStatus()
		}
	}
	for _, l := range tl {
		e.setSegments(l, l.newInUse)
		l.cutReason = ""
	}

	sb.k = k
	if k > 0 {
		sb.sBound, _, _, _ = sb.supply.Select(k - 1)
		sb.dBound, _, _, _ = sb.demand.Select(k - 1)
	}
	if has != sb.hasPrice || price != sb.price {
		sb.price, sb.hasPrice = price, has
		e.emit(Event{Kind: EvSpotPriceChanged, Market: m.ID, Price: price, HasPrice: has})
	}
	sb.changedBids = sb.changedBids[:0]
	sb.changedListings = sb.changedListings[:0]
}

// shed takes take units off a placement: units that never started go at
// once; running ones go under notice when withNotice and the market gives
// one, else at once.
func (e *Engine) shed(p *placement, take int64, withNotice bool) {
	if x := min(take, p.pend); x > 0 {
		e.release(p, x)
		take -= x
	}
	if take == 0 {
		return
	}
	if withNotice && p.listing.m.Notice() > 0 {
		e.giveNotice(p, take)
	} else {
		e.release(p, take)
	}
}

// walkBetween visits the entries from the lower of two boundary keys to
// the higher, inclusive; a missing boundary (k = 0) means the start.
func walkBetween[K any, V any](t *osTree[K, V], hasA bool, a K, hasB bool, b K, cmp func(K, K) int, fn func(V)) {
	if !hasA && !hasB {
		return
	}
	var from *K
	to := a
	switch {
	case hasA && hasB:
		lo, hi := a, b
		if cmp(lo, hi) > 0 {
			lo, hi = hi, lo
		}
		from, to = &lo, hi
	case hasB:
		to = b
	}
	t.Ascend(from, func(key K, v V, _ int64) bool {
		if cmp(key, to) > 0 {
			return false
		}
		fn(v)
		return true
	})
}

func clamp(x, lo, hi int64) int64 {
	return max(lo, min(x, hi))
}

// settleMarket charges every placement for the price accrued so far,
// restarts the integral at zero, and releases bids whose money ran out.
func (e *Engine) settleMarket(m *market) {
	sb := &m.spot
	sb.advance(e.now)
	var broke []*Bid
	var cum int64
	sb.demand.Ascend(nil, func(_ bidKey, b *Bid, w int64) bool {
		if cum >= sb.k {
			return false
		}
		cum += w
		for _, p := range b.placements {
			e.settle(p)
			p.i0 = 0
		}
		if b.won > 0 {
			perSecond := (Money(b.won)*Money(sb.price) + 3599) / 3600 // ≤ MaxQuantity × MaxPrice: no overflow
			if b.broke || e.accounts[b.Buyer].Available() < perSecond {
				broke = append(broke, b)
			}
		}
		return true
	})
	sb.integ = 0
	// Bids under notice pay too, and a budget spent under notice ends the
	// notice at once (the bid is released like any other).
	for _, n := range sb.notices {
		e.settleNotice(n)
		n.i0, n.integ = 0, 0
		b := n.bid
		perSecond := (Money(b.noticed)*Money(min(sb.price, b.Limit)) + 3599) / 3600
		if (b.broke || e.accounts[b.Buyer].Available() < perSecond) && !slices.Contains(broke, b) {
			broke = append(broke, b)
		}
	}
	for _, b := range broke {
		e.closeSpot(b, BidCancelled, ReasonInsufficientFunds)
	}
	if len(broke) > 0 {
		e.recomputeSpot(m, ReasonOutbid)
	}
	for _, b := range broke {
		e.retireBid(b)
	}
}
