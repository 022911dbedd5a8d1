package engine

import "testing"

func TestSpotUniformSecondPrice(t *testing.T) {
	// Notice off: this is the immediate preemption; notice_test.go has
	// the same market with a notice.
	h := newHarness(t, noticeConfig(-1))
	owner := h.account("own", RoleOwner, "")
	x := h.account("x", RoleBuyer, "1000")
	y := h.account("y", RoleBuyer, "1000")
	z := h.account("z", RoleBuyer, "1000")
	h.listing(owner, mkt, 3, h.hour(0), h.hour(10), "9.00", "1.00")
	h.listing(owner, mkt, 2, h.hour(0), h.hour(10), "9.00", "1.50")

	if sv := h.spotState(mkt); sv.HasPrice || !sv.HasAsk || sv.Ask != p(t, "1.00") || sv.Supply != 5 {
		t.Fatalf("empty market: %+v, want no price, ask 1.00, supply 5", sv)
	}
	bx, _ := h.spot(x, mkt, 2, "3.00")
	if sv := h.spotState(mkt); sv.Price != p(t, "1.00") || sv.Allocated != 2 {
		t.Fatalf("after x: %+v, want price 1.00 allocated 2", sv)
	}
	by, _ := h.spot(y, mkt, 2, "2.00")
	if sv := h.spotState(mkt); sv.Price != p(t, "1.50") || sv.Allocated != 4 {
		t.Fatalf("after y: %+v, want price 1.50 (4th unit's floor) allocated 4", sv)
	}
	// z outbids y: 5 units clear, the price is the first losing bid's limit.
	bz, evs := h.spot(z, mkt, 3, "2.50")
	sv := h.spotState(mkt)
	if sv.Price != p(t, "2.00") || sv.Allocated != 5 || sv.Waiting != 2 {
		t.Fatalf("after z: %+v, want price 2.00 allocated 5 waiting 2", sv)
	}
	ev, ok := findKind(evs, EvSpotPreempted, by)
	if !ok || ev.Quantity != 2 || ev.Reason != ReasonOutbid {
		t.Fatalf("y preempted = %+v %v, want 2 outbid", ev, ok)
	}
	if ev, ok := findKind(evs, EvSpotAllocated, bz); !ok || ev.Quantity != 3 {
		t.Fatalf("z allocated = %+v, want 3", ev)
	}
	if h.bid(bx).Allocated != 2 || h.bid(by).Status != BidWaiting || h.bid(bz).Status != BidRunning {
		t.Fatalf("statuses x %v y %v z %v", h.bid(bx), h.bid(by).Status, h.bid(bz).Status)
	}
	// Cancelling z lets y back in at 1.50.
	evs = h.must(Command{Kind: CmdCancelBid, Actor: z, Target: bz})
	if ev, ok := findKind(evs, EvSpotAllocated, by); !ok || ev.Quantity != 2 {
		t.Fatalf("y re-allocated = %+v, want 2", ev)
	}
	if sv := h.spotState(mkt); sv.Price != p(t, "1.50") {
		t.Fatalf("price %s, want 1.50", sv.Price)
	}
}

func TestSpotCheaperListingMovesBid(t *testing.T) {
	h := newHarness(t, Config{})
	owner := h.account("own", RoleOwner, "")
	x := h.account("x", RoleBuyer, "1000")
	a := h.listing(owner, mkt, 2, h.hour(0), h.hour(10), "9.00", "1.00")
	b := h.listing(owner, mkt, 2, h.hour(0), h.hour(10), "9.00", "1.50")
	bx, _ := h.spot(x, mkt, 3, "3.00")
	if sv := h.spotState(mkt); sv.Price != p(t, "1.50") {
		t.Fatalf("price %s, want 1.50", sv.Price)
	}
	lc := h.newID()
	evs := h.must(Command{Kind: CmdPlaceListing, Actor: owner, Target: lc, Market: mkt, Quantity: 2, Start: h.hour(0), End: h.hour(10), Price: p(t, "9.00"), SpotFloor: p(t, "0.50")})
	ev, ok := findKind(evs, EvSpotMoved, bx)
	if !ok || ev.Quantity != 2 || ev.Allocated != 3 {
		t.Fatalf("moved = %+v %v, want 2 GPUs moved, 3 held", ev, ok)
	}
	if countKind(evs, EvSpotPreempted) != 0 {
		t.Fatalf("a move is not a net preemption: %v", evs)
	}
	if sv := h.spotState(mkt); sv.Price != p(t, "1.00") {
		t.Fatalf("price %s, want 1.00", sv.Price)
	}
	inUse := map[ID]int64{}
	for _, id := range []ID{a, b, lc} {
		lv, _ := h.listingView(id)
		inUse[id] = lv.SpotInUse
	}
	if inUse[lc] != 2 || inUse[a] != 1 || inUse[b] != 0 {
		t.Fatalf("in use %v, want c 2, a 1, b 0", inUse)
	}
}

func TestSpotStickyOnTie(t *testing.T) {
	h := newHarness(t, Config{})
	owner := h.account("own", RoleOwner, "")
	x := h.account("x", RoleBuyer, "1000")
	a := h.listing(owner, mkt, 1, h.hour(0), h.hour(10), "9.00", "1.00")
	h.spot(x, mkt, 1, "3.00")
	// A newer listing at the same floor must not displace the unit in use.
	evs := h.must(Command{Kind: CmdPlaceListing, Actor: owner, Target: h.newID(), Market: mkt, Quantity: 1, Start: h.hour(0), End: h.hour(10), Price: p(t, "9.00"), SpotFloor: p(t, "1.00")})
	if countKind(evs, EvSpotMoved)+countKind(evs, EvSpotPreempted) != 0 {
		t.Fatalf("equal-floor listing moved a bid: %v", evs)
	}
	if lv, _ := h.listingView(a); lv.SpotInUse != 1 {
		t.Fatalf("listing a in use %d, want 1", lv.SpotInUse)
	}
}

func TestReservationStartingPreemptsSpot(t *testing.T) {
	h := newHarness(t, Config{})
	owner := h.account("own", RoleOwner, "")
	x := h.account("x", RoleBuyer, "1000")
	r := h.account("r", RoleBuyer, "1000")
	h.listing(owner, mkt, 2, h.hour(0), h.hour(5), "1.00", "1.00")
	bx, _ := h.spot(x, mkt, 2, "3.00")
	rb, _ := h.reserved(r, mkt, 1, 0, h.hour(1), h.hour(2), "2.00")
	if bv := h.bid(rb); bv.Status != BidFilled || bv.Fills[0].Price != p(t, "1.00") {
		t.Fatalf("reserved bid %v, want filled at the listing's 1.00", bv)
	}
	if h.bid(bx).Allocated != 2 {
		t.Fatalf("spot keeps the current hour until the reservation starts")
	}
	evs := h.advance(h.hour(1) - h.now)
	ev, ok := findKind(evs, EvSpotPreempted, bx)
	if !ok || ev.Quantity != 1 || ev.Reason != ReasonReservationStarting {
		t.Fatalf("preempted = %+v %v, want 1 reservation_starting", ev, ok)
	}
	// The hour after, the GPU comes back.
	evs = h.advance(Hour)
	if ev, ok := findKind(evs, EvSpotAllocated, bx); !ok || ev.Quantity != 1 {
		t.Fatalf("re-allocated = %+v %v, want 1", ev, ok)
	}
}

func TestSpotAccrualAndBudgetStop(t *testing.T) {
	h := newHarness(t, Config{FeeBps: 100}) // 1% fee
	owner := h.account("own", RoleOwner, "")
	x := h.account("x", RoleBuyer, "10")
	h.listing(owner, mkt, 1, h.hour(0), h.hour(30), "9.00", "4.00")
	bx, _ := h.spot(x, mkt, 1, "10.00")
	if sv := h.spotState(mkt); sv.Price != p(t, "4.00") {
		t.Fatalf("price %s, want 4.00", sv.Price)
	}
	// 30 minutes at 4.00 = 2.00; in 1-second ticks the remainder carries.
	for i := 0; i < 1800; i++ {
		h.advance(Second)
	}
	if got := h.balance(x).Balance; got != m(t, "8.00") {
		t.Fatalf("buyer balance %s, want 8.00", got)
	}
	if got := h.balance(owner).Balance; got != m(t, "1.98") {
		t.Fatalf("owner balance %s, want 1.98 (2.00 less 1%%)", got)
	}
	if got := h.balance(FeeAccount).Balance; got != m(t, "0.02") {
		t.Fatalf("fee %s, want 0.02", got)
	}
	// Two more hours cost 8.00: the balance runs out and the bid is released.
	var evs []Event
	for i := 0; i < 4 && h.bid(bx).Status == BidRunning; i++ {
		evs = h.advance(Hour)
	}
	ev, ok := findKind(evs, EvSpotReleased, bx)
	if !ok || ev.Reason != ReasonInsufficientFunds {
		t.Fatalf("released = %+v %v, want insufficient_funds", ev, ok)
	}
	bv := h.bid(bx)
	if bv.Allocated != 0 || bv.Status != BidCancelled || bv.Reason != ReasonInsufficientFunds {
		t.Fatalf("bid %+v, want cancelled, reason insufficient_funds, allocated 0", bv)
	}
	if got := h.balance(x).Balance; got < 0 || got != 0 {
		t.Fatalf("buyer balance %s, want 0", got)
	}
	tot := h.e.Totals()
	if tot.Balances != tot.Supply {
		t.Fatalf("money not conserved: %+v", tot)
	}
}

func TestListingCancelPreemptsSpot(t *testing.T) {
	h := newHarness(t, Config{})
	owner := h.account("own", RoleOwner, "")
	x := h.account("x", RoleBuyer, "1000")
	l := h.listing(owner, mkt, 2, h.hour(0), h.hour(5), "1.00", "1.00")
	bx, _ := h.spot(x, mkt, 2, "3.00")
	evs := h.must(Command{Kind: CmdCancelListing, Actor: owner, Target: l})
	ev, ok := findKind(evs, EvSpotPreempted, bx)
	if !ok || ev.Quantity != 2 || ev.Reason != ReasonListingCancelled {
		t.Fatalf("preempted = %+v %v, want 2 listing_cancelled", ev, ok)
	}
	if sv := h.spotState(mkt); sv.HasPrice {
		t.Fatalf("no supply, no price: %+v", sv)
	}
}
