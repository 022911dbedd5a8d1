package engine

import (
	"errors"
	"testing"
)

func TestMakerPriceAndAllOrNone(t *testing.T) {
	h := newHarness(t, Config{})
	owner := h.account("own", RoleOwner, "")
	buyer := h.account("buy", RoleBuyer, "10000")
	s, e := h.hour(2), h.hour(6) // 4 hours

	// A listing of 3 at 2.00 rests; a bid for 4 (all-or-none) at 2.50 cannot match.
	l1 := h.listing(owner, mkt, 3, h.hour(0), h.hour(24), "2.00", "")
	b, evs := h.reserved(buyer, mkt, 4, 0, s, e, "2.50")
	if n := countKind(evs, EvFilled); n != 0 {
		t.Fatalf("fills = %d, want 0 (all-or-none)", n)
	}
	if got, want := h.balance(buyer).Held, m(t, "40.00"); got != want { // 4 × 4 h × 2.50
		t.Fatalf("held = %s, want %s", got, want)
	}
	// A second listing of 1 at 2.20 completes it: the bid (older) is the maker
	// for the new listing's fill, the old listing is maker for its own.
	l2id := h.newID()
	evs = h.must(Command{Kind: CmdPlaceListing, Actor: owner, Target: l2id, Market: mkt, Quantity: 1, Start: h.hour(1), End: h.hour(12), Price: p(t, "2.20")})
	var fills []Fill
	for _, ev := range evs {
		if ev.Kind == EvFilled {
			fills = append(fills, *ev.Fill)
		}
	}
	if len(fills) != 2 {
		t.Fatalf("fills = %d, want 2", len(fills))
	}
	want := map[ID]struct {
		q     int64
		price string
	}{l1: {3, "2.00"}, l2id: {1, "2.50"}}
	for _, f := range fills {
		w := want[f.ListingID]
		if f.Quantity != w.q || f.Price != p(t, w.price) {
			t.Errorf("fill on %s: %d @ %s, want %d @ %s", f.ListingID, f.Quantity, f.Price, w.q, w.price)
		}
	}
	bv := h.bid(b)
	if bv.Status != BidFilled || bv.Filled != 4 {
		t.Fatalf("bid %s filled %d, want filled 4", bv.Status, bv.Filled)
	}
	// Cost: 3×4×2.00 + 1×4×2.50 = 24 + 10 = 34; hold fully released.
	a := h.balance(buyer)
	if a.Balance != m(t, "9966") || a.Held != 0 {
		t.Fatalf("buyer balance %s held %s, want 9966 held 0", a.Balance, a.Held)
	}
	if got := h.balance(owner).Balance; got != m(t, "34") {
		t.Fatalf("owner balance %s, want 34", got)
	}
}

func TestCheapestFirstThenOldestAndPartialMin(t *testing.T) {
	h := newHarness(t, Config{})
	owner := h.account("own", RoleOwner, "")
	buyer := h.account("buy", RoleBuyer, "10000")
	s, e := h.hour(3), h.hour(5)
	dear := h.listing(owner, mkt, 5, s, e, "3.00", "")
	old := h.listing(owner, mkt, 2, s, e, "2.00", "")
	young := h.listing(owner, mkt, 2, s, e, "2.00", "")
	_ = dear
	// Bid 10 with min 3 at 2.50: takes 2 (old) + 2 (young) = 4 ≥ 3, rests with 6.
	b, evs := h.reserved(buyer, mkt, 10, 3, s, e, "2.50")
	var order []ID
	for _, ev := range evs {
		if ev.Kind == EvFilled {
			order = append(order, ev.Fill.ListingID)
		}
	}
	if len(order) != 2 || order[0] != old || order[1] != young {
		t.Fatalf("fill order %v, want [old young]", order)
	}
	bv := h.bid(b)
	if bv.Status != BidPartiallyFilled || bv.Filled != 4 || bv.MinQuantity != 3 {
		t.Fatalf("bid %s filled %d min %d, want partially_filled 4 min 3", bv.Status, bv.Filled, bv.MinQuantity)
	}
	// Held: the rest, 6 × 2 h × 2.50 = 30.
	if got := h.balance(buyer).Held; got != m(t, "30") {
		t.Fatalf("held %s, want 30", got)
	}
}

func TestWindowMustBeCovered(t *testing.T) {
	h := newHarness(t, Config{})
	owner := h.account("own", RoleOwner, "")
	buyer := h.account("buy", RoleBuyer, "10000")
	h.listing(owner, mkt, 4, h.hour(2), h.hour(5), "1.00", "")
	b, _ := h.reserved(buyer, mkt, 1, 0, h.hour(4), h.hour(6), "9.00")
	if got := h.bid(b).Status; got != BidResting {
		t.Fatalf("status %s, want resting: the listing does not cover hour 5", got)
	}
	// Sold hours reduce what later bids can take, per hour.
	b2, _ := h.reserved(buyer, mkt, 4, 0, h.hour(2), h.hour(4), "9.00")
	if got := h.bid(b2).Status; got != BidFilled {
		t.Fatalf("status %s, want filled", got)
	}
	b3, _ := h.reserved(buyer, mkt, 1, 0, h.hour(3), h.hour(5), "9.00")
	if got := h.bid(b3).Status; got != BidResting {
		t.Fatalf("status %s, want resting: hour 3 is sold out", got)
	}
	b4, _ := h.reserved(buyer, mkt, 4, 0, h.hour(4), h.hour(5), "9.00")
	if got := h.bid(b4).Status; got != BidFilled {
		t.Fatalf("status %s, want filled: hour 4 is free", got)
	}
}

func TestExpiryAndCancelReleaseHold(t *testing.T) {
	h := newHarness(t, Config{})
	buyer := h.account("buy", RoleBuyer, "100")
	b, _ := h.reserved(buyer, mkt, 1, 0, h.hour(2), h.hour(3), "10")
	exp := h.newID()
	h.must(Command{Kind: CmdPlaceBid, BidType: Reserved, Actor: buyer, Target: exp, Market: mkt, Quantity: 1, Start: h.hour(3), End: h.hour(4), Price: p(t, "10"), ExpiresAt: h.now + 30*Second})
	if got := h.balance(buyer).Held; got != m(t, "20") {
		t.Fatalf("held %s, want 20", got)
	}
	evs := h.advance(31 * Second)
	if _, ok := findKind(evs, EvBidExpired, exp); !ok {
		t.Fatalf("no expiry event for the bid with expires_at")
	}
	if got := h.balance(buyer).Held; got != m(t, "10") {
		t.Fatalf("held %s, want 10", got)
	}
	// The other expires at its start, two hours on.
	h.advance(2 * Hour)
	if got := h.bid(b).Status; got != BidExpired {
		t.Fatalf("status %s, want expired at start", got)
	}
	if got := h.balance(buyer); got.Held != 0 || got.Balance != m(t, "100") {
		t.Fatalf("balance %s held %s, want 100 held 0", got.Balance, got.Held)
	}
}

func TestCancelListingKeepsSoldHours(t *testing.T) {
	h := newHarness(t, Config{})
	owner := h.account("own", RoleOwner, "")
	buyer := h.account("buy", RoleBuyer, "1000")
	l := h.listing(owner, mkt, 2, h.hour(1), h.hour(10), "1.00", "")
	b, _ := h.reserved(buyer, mkt, 1, 0, h.hour(2), h.hour(4), "1.00")
	h.must(Command{Kind: CmdCancelListing, Actor: owner, Target: l})
	lv, _ := h.listingView(l)
	if lv.Status != ListingCancelled || len(lv.Fills) != 1 {
		t.Fatalf("listing %s with %d fills, want cancelled with 1", lv.Status, len(lv.Fills))
	}
	if h.bid(b).Status != BidFilled {
		t.Fatalf("the sold contract must stand")
	}
	b2, _ := h.reserved(buyer, mkt, 1, 0, h.hour(5), h.hour(6), "5.00")
	if h.bid(b2).Status != BidResting {
		t.Fatalf("a cancelled listing must not sell")
	}
}

func TestRejectionsChangeNothing(t *testing.T) {
	h := newHarness(t, Config{})
	owner := h.account("own", RoleOwner, "")
	buyer := h.account("buy", RoleBuyer, "10")
	h.reserved(buyer, mkt, 1, 0, h.hour(1), h.hour(2), "1.00")
	before := h.e.Hash()
	cases := []struct {
		name string
		c    Command
		code string
	}{
		{"unknown market", Command{Kind: CmdPlaceBid, BidType: Reserved, Actor: buyer, Market: "h100-sxm.mars", Quantity: 1, Start: h.hour(1), End: h.hour(2), Price: 1}, CodeUnknownMarket},
		{"zero quantity", Command{Kind: CmdPlaceBid, BidType: Reserved, Actor: buyer, Market: mkt, Quantity: 0, Start: h.hour(1), End: h.hour(2), Price: 1}, CodeInvalidQuantity},
		{"zero price", Command{Kind: CmdPlaceBid, BidType: Reserved, Actor: buyer, Market: mkt, Quantity: 1, Start: h.hour(1), End: h.hour(2)}, CodeInvalidPrice},
		{"end before start", Command{Kind: CmdPlaceBid, BidType: Reserved, Actor: buyer, Market: mkt, Quantity: 1, Start: h.hour(3), End: h.hour(2), Price: 1}, CodeInvalidWindow},
		{"start not whole hour", Command{Kind: CmdPlaceBid, BidType: Reserved, Actor: buyer, Market: mkt, Quantity: 1, Start: h.hour(1) + Second, End: h.hour(2), Price: 1}, CodeInvalidWindow},
		{"start in the past hour", Command{Kind: CmdPlaceBid, BidType: Reserved, Actor: buyer, Market: mkt, Quantity: 1, Start: h.hour(0), End: h.hour(2), Price: 1}, CodeInvalidWindow},
		{"beyond horizon", Command{Kind: CmdPlaceBid, BidType: Reserved, Actor: buyer, Market: mkt, Quantity: 1, Start: h.hour(1), End: h.hour(24 * 367), Price: 1}, CodeInvalidWindow},
		{"insufficient funds", Command{Kind: CmdPlaceBid, BidType: Reserved, Actor: buyer, Market: mkt, Quantity: 1, Start: h.hour(1), End: h.hour(2), Price: p(t, "9.01")}, CodeInsufficientFunds},
		{"owner cannot bid", Command{Kind: CmdPlaceBid, BidType: Reserved, Actor: owner, Market: mkt, Quantity: 1, Start: h.hour(1), End: h.hour(2), Price: 1}, CodeForbidden},
		{"buyer cannot list", Command{Kind: CmdPlaceListing, Actor: buyer, Market: mkt, Quantity: 1, Start: h.hour(1), End: h.hour(2), Price: 1}, CodeForbidden},
		{"min above quantity", Command{Kind: CmdPlaceBid, BidType: Reserved, Actor: buyer, Market: mkt, Quantity: 1, MinQuantity: 2, Start: h.hour(1), End: h.hour(2), Price: 1}, CodeInvalidQuantity},
		{"withdraw too much", Command{Kind: CmdWithdraw, Actor: buyer, Target: buyer, Amount: m(t, "9.01")}, CodeInsufficientFunds},
		{"spot peg on spot floor", Command{Kind: CmdPlaceListing, Actor: owner, Market: mkt, Quantity: 1, Start: h.hour(0), End: h.hour(2), Price: 1, SpotFloorPeg: Peg{Kind: PegSpot}}, CodeInvalidPeg},
		{"cancel someone else's", Command{Kind: CmdCancelListing, Actor: buyer, Target: testID(999)}, CodeNotFound},
		{"bad type", Command{Kind: CmdPlaceBid, BidType: 9, Actor: buyer, Market: mkt, Quantity: 1, Price: 1}, CodeInvalidType},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.c.Target.IsZero() {
				tc.c.Target = h.newID()
			}
			evs, err := h.apply(tc.c)
			var ee *Error
			if !errors.As(err, &ee) || ee.Code != tc.code {
				t.Fatalf("err = %v, want code %s", err, tc.code)
			}
			if len(evs) != 1 || evs[0].Kind != EvRejected {
				t.Fatalf("events %v, want one rejection", evs)
			}
			// Only seq moved: compare hashes of states with equal seq.
			after := h.e.Hash()
			h.e.seq--
			if h.e.Hash() != before {
				t.Fatalf("state changed by a rejected command")
			}
			h.e.seq++
			before = after
		})
	}
}

func TestDuplicateClientOrderID(t *testing.T) {
	h := newHarness(t, Config{})
	buyer := h.account("buy", RoleBuyer, "100")
	c := Command{Kind: CmdPlaceBid, BidType: Reserved, Actor: buyer, Market: mkt, Quantity: 1, Start: h.hour(1), End: h.hour(2), Price: 1, ClientOrderID: "x"}
	c.Target = h.newID()
	h.must(c)
	c.Target = h.newID()
	if _, err := h.apply(c); !isCode(err, CodeDuplicateClientOrder) {
		t.Fatalf("err = %v, want duplicate_client_order_id", err)
	}
	h.must(Command{Kind: CmdCancelBid, Actor: buyer, Target: testID(h.n - 1)})
	c.Target = h.newID()
	h.must(c) // free again once the first is closed
}

func TestIdempotencyKey(t *testing.T) {
	h := newHarness(t, Config{})
	buyer := h.account("buy", RoleBuyer, "100")
	c := Command{Kind: CmdPlaceBid, BidType: Reserved, Actor: buyer, Market: mkt, Quantity: 1, Start: h.hour(1), End: h.hour(2), Price: 1, IdemKey: "k1", IdemHash: [32]byte{1}}
	c.Target = h.newID()
	first := c.Target
	h.must(c)
	c.Target = h.newID()
	evs := h.must(c)
	if ev, ok := findKind(evs, EvIdempotentReplay, first); !ok || ev.Bid != first {
		t.Fatalf("replay events %v, want idempotent replay of %s", evs, first)
	}
	if _, ok := h.e.Bid(c.Target); ok {
		t.Fatal("a replay created a second bid")
	}
	c.IdemHash = [32]byte{2}
	c.Target = h.newID()
	if _, err := h.apply(c); !isCode(err, CodeIdempotencyReused) {
		t.Fatalf("err = %v, want idempotency_key_reused", err)
	}
	h.advance(IdempotencyWindow + Second)
	c.Target = h.newID()
	c.Start, c.End = h.hour(1), h.hour(2)
	h.must(c) // forgotten after 24 h
}

func isCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

func TestQuoteEqualsFills(t *testing.T) {
	h := newHarness(t, Config{})
	owner := h.account("own", RoleOwner, "")
	buyer := h.account("buy", RoleBuyer, "100000")
	h.listing(owner, mkt, 3, h.hour(0), h.hour(48), "2.10", "")
	h.listing(owner, mkt, 2, h.hour(2), h.hour(10), "1.90", "")
	h.listing(owner, mkt, 4, h.hour(0), h.hour(48), "2.50", "")
	q, err := h.e.Quote(mkt, 6, 0, h.hour(3), h.hour(7), 0)
	if err != nil {
		t.Fatal(err)
	}
	// 2 @ 1.90 + 3 @ 2.10 + 1 @ 2.50, for 4 hours: 15.20 + 25.20 + 10.00.
	if !q.MinMet || q.Filled != 6 || q.Cost != m(t, "50.40") || len(q.Fills) != 3 {
		t.Fatalf("quote %+v, want 6 GPUs for 50.40 in 3 fills", q)
	}
	b, _ := h.reserved(buyer, mkt, 6, 0, h.hour(3), h.hour(7), "9.00")
	bv := h.bid(b)
	if len(bv.Fills) != len(q.Fills) {
		t.Fatalf("bid got %d fills, quote said %d", len(bv.Fills), len(q.Fills))
	}
	for i, f := range bv.Fills {
		if f.ListingID != q.Fills[i].Listing || f.Quantity != q.Fills[i].Quantity || f.Price != q.Fills[i].Price {
			t.Errorf("fill %d: got %+v, quote %+v", i, f, q.Fills[i])
		}
	}
	if q2, _ := h.e.Quote(mkt, 100, 0, h.hour(3), h.hour(7), 0); q2.MinMet || len(q2.Fills) != 0 {
		t.Fatalf("an all-or-none quote that cannot fill: %+v", q2)
	}
	if _, err := h.e.Quote("nope.nowhere", 1, 0, h.hour(3), h.hour(7), 0); !isCode(err, CodeUnknownMarket) {
		t.Fatalf("err %v, want unknown_market", err)
	}
}

func TestPegReferenceRepricesAndMatches(t *testing.T) {
	h := newHarness(t, Config{})
	owner := h.account("own", RoleOwner, "")
	buyer := h.account("buy", RoleBuyer, "100000")
	h.must(Command{Kind: CmdSetReferenceRates, Rates: []ReferenceRate{{GPU: "h100-sxm", Provider: "aws", Price: p(t, "6.88")}}})
	// 40 % under AWS: 6.88 × 0.6 = 4.128.
	l := h.newID()
	h.must(Command{Kind: CmdPlaceListing, Actor: owner, Target: l, Market: mkt, Quantity: 2, Start: h.hour(0), End: h.hour(24),
		PricePeg: Peg{Kind: PegReference, Provider: "aws", Discount: 4000}})
	if lv, _ := h.listingView(l); lv.Reserve != p(t, "4.128") {
		t.Fatalf("pegged reserve %s, want 4.128", lv.Reserve)
	}
	b, _ := h.reserved(buyer, mkt, 2, 0, h.hour(2), h.hour(4), "3.50")
	if h.bid(b).Status != BidResting {
		t.Fatal("3.50 must not reach 4.128")
	}
	// AWS cuts its price: 5.50 × 0.6 = 3.30, the resting bid now matches at
	// the listing's price (the listing was placed first: it is the maker).
	evs := h.must(Command{Kind: CmdSetReferenceRates, Rates: []ReferenceRate{{GPU: "h100-sxm", Provider: "aws", Price: p(t, "5.50")}}})
	if _, ok := findKind(evs, EvListingRepriced, ID{}); !ok {
		t.Fatal("no repricing event")
	}
	bv := h.bid(b)
	if bv.Status != BidFilled || bv.Fills[0].Price != p(t, "3.30") {
		t.Fatalf("bid %s fills %+v, want filled at 3.30", bv.Status, bv.Fills)
	}
	if got := h.balance(buyer).Balance; got != m(t, "99986.80") { // 2 GPUs × 2 h × 3.30
		t.Fatalf("buyer balance %s, want 99986.80", got)
	}
	// Replaying the same commands reproduces it.
	replayed := New(Config{})
	for i := range h.log {
		replayed.Apply(&h.log[i])
	}
	if replayed.Hash() != h.e.Hash() {
		t.Fatal("replay of the peg scenario differs")
	}
}

func TestIdempotentMoneyAndAccounts(t *testing.T) {
	h := newHarness(t, Config{})
	acct := h.newID()
	create := Command{Kind: CmdCreateAccount, Target: acct, Name: "x", Roles: RoleBuyer, IdemKey: "c1", IdemHash: [32]byte{1}}
	h.must(create)
	create.Target = h.newID()
	evs := h.must(create)
	if ev, ok := findKind(evs, EvIdempotentReplay, ID{}); !ok || ev.Accounts[0] != acct {
		t.Fatalf("account replay %v, want the first account", evs)
	}
	if _, ok := h.e.Account(create.Target); ok {
		t.Fatal("a retried create made a second account")
	}
	dep := Command{Kind: CmdDeposit, Target: acct, Amount: m(t, "10"), IdemKey: "d1", IdemHash: [32]byte{2}}
	h.must(dep)
	h.must(dep) // the retry of a deposit whose answer was lost
	if got := h.balance(acct).Balance; got != m(t, "10") {
		t.Fatalf("balance %s after a retried deposit, want 10", got)
	}
	dep.Amount = m(t, "20")
	dep.IdemHash = [32]byte{3}
	if _, err := h.apply(dep); !isCode(err, CodeIdempotencyReused) {
		t.Fatalf("err %v, want idempotency_key_reused", err)
	}
	wd := Command{Kind: CmdWithdraw, Target: acct, Amount: m(t, "4"), IdemKey: "w1", IdemHash: [32]byte{4}}
	h.must(wd)
	h.must(wd)
	if got := h.balance(acct).Balance; got != m(t, "6") {
		t.Fatalf("balance %s after a retried withdrawal, want 6", got)
	}
}

// TestClosedObjectsLeaveTheEngine: a filled bid and a cancelled listing
// leave every index, and the events that closed them carry their final
// state, as the engine showed it.
func TestClosedObjectsLeaveTheEngine(t *testing.T) {
	h := newHarness(t, Config{})
	owner := h.account("own", RoleOwner, "")
	buyer := h.account("buy", RoleBuyer, "1000")
	l := h.listing(owner, mkt, 4, h.hour(1), h.hour(3), "2.00", "")
	bid, evs := h.reserved(buyer, mkt, 4, 0, h.hour(1), h.hour(3), "2.50")
	closed, ok := findKind(evs, EvBidClosed, bid)
	if !ok || closed.FinalBid == nil {
		t.Fatalf("events %v: no bid_closed with the final state", evs)
	}
	if fb := closed.FinalBid; fb.Status != BidFilled || fb.Filled != 4 || len(fb.Fills) != 1 || fb.Hold != 0 || fb.Seq == 0 {
		t.Fatalf("final bid %+v, want filled 4 in one fill, nothing held", fb)
	}
	if _, ok := h.e.Bid(bid); ok {
		t.Fatal("the filled bid is still in the engine")
	}
	if bs, _ := h.e.BidsOf(buyer, "", 10, ID{}); len(bs) != 0 {
		t.Fatalf("open bids %v, want none", bs)
	}
	// The listing keeps its fill while it is active; a cancel closes it.
	lv, ok := h.e.Listing(l)
	if !ok || len(lv.Fills) != 1 {
		t.Fatalf("listing %+v %v: want active with one fill", lv, ok)
	}
	evs = h.must(Command{Kind: CmdCancelListing, Actor: owner, Target: l})
	closed, ok = findKind(evs, EvListingClosed, ID{})
	if !ok || closed.Listing != l || closed.FinalListing.Status != ListingCancelled || len(closed.FinalListing.Fills) != 1 || closed.FinalListing.FilledHours != 8 {
		t.Fatalf("listing_closed %+v %v: want cancelled with its fill", closed, ok)
	}
	if _, ok := h.e.Listing(l); ok || h.e.listingOrder.len() != 0 || h.e.marketOrder[0].active.len() != 0 {
		t.Fatal("the cancelled listing is still in the engine")
	}
	// The snapshot holds neither, and restores to the same state.
	r, err := Restore(h.e.Snapshot())
	if err != nil || r.Hash() != h.e.Hash() {
		t.Fatalf("restore: %v, hash equal %v", err, err == nil && r.Hash() == h.e.Hash())
	}
}

// TestFinalViewFillsAreTheirOwn: the fills of closed orders' final views
// share one allocation (newFills), each capped at its length, so a reader
// appending to one view's fills never writes into another's, and every
// copy equals the EvFilled record it came from.
func TestFinalViewFillsAreTheirOwn(t *testing.T) {
	h := newHarness(t, Config{})
	owner := h.account("own", RoleOwner, "")
	buyer := h.account("buy", RoleBuyer, "1000")
	var finals []*BidView
	fills := map[ID]Fill{}
	for range 5 {
		h.listing(owner, mkt, 1, h.hour(1), h.hour(3), "2.00", "")
		_, evs := h.reserved(buyer, mkt, 1, 0, h.hour(1), h.hour(3), "2.50")
		for _, ev := range evs {
			switch ev.Kind {
			case EvFilled:
				fills[ev.Bid] = *ev.Fill
			case EvBidClosed:
				finals = append(finals, ev.FinalBid)
			}
		}
	}
	if len(finals) != 5 {
		t.Fatalf("%d bids closed, want 5", len(finals))
	}
	for i, v := range finals {
		if len(v.Fills) != 1 || cap(v.Fills) != 1 || v.Fills[0] != fills[v.ID] {
			t.Fatalf("final bid %d: fills %+v (cap %d), want exactly its fill %+v", i, v.Fills, cap(v.Fills), fills[v.ID])
		}
	}
	_ = append(finals[0].Fills, Fill{Quantity: 99})
	if finals[1].Fills[0] != fills[finals[1].ID] {
		t.Fatal("appending to one final view's fills changed the next view's")
	}
}
