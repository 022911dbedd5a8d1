package engine

import "testing"

// noticeFix is the market every notice case starts from (notice 180 s):
// listing L (4 GPUs, floor 1.00); x runs 4 GPUs at limit 2.00, then y bids
// 4 at 3.00 at time T. The clearing gives y all 4 at max(1.00, 2.00) =
// 2.00; x keeps them under notice until T+180 s, y waits until then.
type noticeFix struct {
	h             *harness
	owner, l      ID
	x, y, z       ID // accounts
	bx, by        ID // bids
	T             Time
	yEvents       []Event
	xSpentAtStart Money
}

func newNoticeFix(t *testing.T, secs int64) *noticeFix {
	t.Helper()
	h := newHarness(t, noticeConfig(secs))
	f := &noticeFix{h: h}
	f.owner = h.account("own", RoleOwner, "")
	f.x = h.account("x", RoleBuyer, "1000")
	f.y = h.account("y", RoleBuyer, "1000")
	f.z = h.account("z", RoleBuyer, "1000")
	f.l = h.listing(f.owner, mkt, 4, h.hour(0), h.hour(10), "9.00", "1.00")
	f.bx, _ = h.spot(f.x, mkt, 4, "2.00")
	f.T = h.now
	f.by, f.yEvents = h.spot(f.y, mkt, 4, "3.00")
	return f
}

func wantBid(t *testing.T, h *harness, id ID, name string, st BidStatus, spent string) BidView {
	t.Helper()
	b := h.bid(id)
	if b.Status != st || b.Spent != m(t, spent) {
		t.Fatalf("%s: status %v spent %s, want %v spent %s (%+v)", name, b.Status, b.Spent, st, spent, b)
	}
	return b
}

func wantEvent(t *testing.T, evs []Event, k EventKind, bid ID, q int64, reason string) Event {
	t.Helper()
	ev, ok := findKind(evs, k, bid)
	if !ok || ev.Quantity != q || ev.Reason != reason {
		t.Fatalf("%v event = %+v (found %v), want quantity %d reason %q", k, ev, ok, q, reason)
	}
	return ev
}

func TestNoticeStarts(t *testing.T) {
	f := newNoticeFix(t, 180)
	h := f.h
	ev := wantEvent(t, f.yEvents, EvSpotPreempting, f.bx, 4, ReasonOutbid)
	if ev.PreemptAt != f.T+180*Second || ev.Price != p(t, "2.00") {
		t.Fatalf("spot_preempting = %+v, want preempt_at T+180s price 2.00", ev)
	}
	if _, ok := findKind(f.yEvents, EvSpotPreempted, f.bx); ok {
		t.Fatal("x preempted at once despite the notice")
	}
	x := wantBid(t, h, f.bx, "x", BidPreempting, "0")
	y := wantBid(t, h, f.by, "y", BidWaiting, "0")
	if x.Preempting != 4 || x.PreemptAt != f.T+180*Second || y.Pending != 4 || y.StartsAt != f.T+180*Second || y.Allocated != 4 {
		t.Fatalf("x %+v\ny %+v", x, y)
	}
	if sv := h.spotState(mkt); sv.Price != p(t, "2.00") || sv.Allocated != 4 {
		t.Fatalf("spot %+v, want the pure clearing: price 2.00, 4 allocated", sv)
	}

	// The default notice is 120 s.
	h2 := newHarness(t, Config{})
	o := h2.account("own", RoleOwner, "")
	a, b := h2.account("a", RoleBuyer, "100"), h2.account("b", RoleBuyer, "100")
	h2.listing(o, mkt, 1, h2.hour(0), h2.hour(2), "9.00", "1.00")
	ba, _ := h2.spot(a, mkt, 1, "2.00")
	_, evs := h2.spot(b, mkt, 1, "3.00")
	if ev := wantEvent(t, evs, EvSpotPreempting, ba, 1, ReasonOutbid); ev.PreemptAt != h2.now+120*Second {
		t.Fatalf("default notice: preempt_at %d, want now+120s", ev.PreemptAt-h2.now)
	}
}

// TestNoticeCases are the hard cases of docs/MARKET.md "Preemption
// notice", each from the same start (see noticeFix), with worked numbers:
// 4 GPUs at 2.00 cost 8.00/h, so 90 s cost 0.20 and 180 s 0.40.
func TestNoticeCases(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, f *noticeFix)
	}{
		{"deadline passes: x leaves, y starts", func(t *testing.T, f *noticeFix) {
			h := f.h
			evs := h.advance(180 * Second)
			wantEvent(t, evs, EvSpotPreempted, f.bx, 4, ReasonOutbid)
			wantBid(t, h, f.bx, "x", BidWaiting, "0.40") // 180 s × 4 × min(2.00, 2.00)
			if y := wantBid(t, h, f.by, "y", BidRunning, "0"); y.Pending != 0 {
				t.Fatalf("y still waiting: %+v", y)
			}
			h.advance(180 * Second)
			wantBid(t, h, f.bx, "x", BidWaiting, "0.40")
			wantBid(t, h, f.by, "y", BidRunning, "0.40") // 180 s × 4 × 2.00
		}},
		{"outbidding bid cancelled: notice withdrawn", func(t *testing.T, f *noticeFix) {
			h := f.h
			h.advance(90 * Second)
			evs := h.must(Command{Kind: CmdCancelBid, Actor: f.y, Target: f.by})
			wantEvent(t, evs, EvSpotPreemptionWithdrawn, f.bx, 4, "")
			if _, ok := findKind(evs, EvSpotAllocated, f.bx); ok {
				t.Fatal("withdrawal reported as a new allocation")
			}
			x := wantBid(t, h, f.bx, "x", BidRunning, "0.20")
			if x.Preempting != 0 || x.Allocated != 4 {
				t.Fatalf("x %+v", x)
			}
			evs = h.advance(180 * Second)
			if _, ok := findKind(evs, EvSpotPreempted, f.bx); ok {
				t.Fatal("withdrawn notice still preempted at its old deadline")
			}
			wantBid(t, h, f.bx, "x", BidRunning, "0.40") // + 180 s × 4 × 1.00 (alone: the floor)
		}},
		{"second outbid during the notice: same deadline", func(t *testing.T, f *noticeFix) {
			h := f.h
			h.advance(90 * Second)
			bz, evs := h.spot(f.z, mkt, 4, "4.00")
			wantEvent(t, evs, EvSpotPreempted, f.by, 4, ReasonOutbid) // y only waited: it loses its claim
			wantEvent(t, evs, EvSpotAllocated, bz, 4, "")
			if _, ok := findKind(evs, EvSpotPreempting, f.bx); ok {
				t.Fatal("x given a second notice")
			}
			if z := h.bid(bz); z.Status != BidWaiting || z.StartsAt != f.T+180*Second {
				t.Fatalf("z %+v, want waiting until the first deadline", z)
			}
			if sv := h.spotState(mkt); sv.Price != p(t, "3.00") {
				t.Fatalf("price %s, want 3.00 (y's limit)", sv.Price)
			}
			evs = h.advance(90 * Second)
			wantEvent(t, evs, EvSpotPreempted, f.bx, 4, ReasonOutbid)
			// x paid min(3.00, 2.00) = 2.00 throughout: never above its limit.
			wantBid(t, h, f.bx, "x", BidWaiting, "0.40")
			wantBid(t, h, f.by, "y", BidWaiting, "0")
			wantBid(t, h, bz, "z", BidRunning, "0")
		}},
		{"listing cancelled during the notice: at once", func(t *testing.T, f *noticeFix) {
			h := f.h
			h.advance(90 * Second)
			evs := h.must(Command{Kind: CmdCancelListing, Actor: f.owner, Target: f.l})
			wantEvent(t, evs, EvSpotPreempted, f.bx, 4, ReasonListingCancelled)
			wantEvent(t, evs, EvSpotPreempted, f.by, 4, ReasonListingCancelled)
			wantBid(t, h, f.bx, "x", BidWaiting, "0.20")
			evs = h.advance(180 * Second)
			if n := countKind(evs, EvSpotPreempted); n != 0 {
				t.Fatalf("%d preemptions at the old deadline, want 0", n)
			}
			wantBid(t, h, f.bx, "x", BidWaiting, "0.20")
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, newNoticeFix(t, 180)) })
	}
}

// A reservation starting at the hour boundary takes the GPUs at once, even
// under notice: reserved use of the hour comes first.
func TestNoticeHourBoundary(t *testing.T) {
	h := newHarness(t, noticeConfig(180))
	owner := h.account("own", RoleOwner, "")
	x, y, r := h.account("x", RoleBuyer, "1000"), h.account("y", RoleBuyer, "1000"), h.account("r", RoleBuyer, "1000")
	h.listing(owner, mkt, 4, h.hour(0), h.hour(10), "9.00", "1.00")
	h.reserved(r, mkt, 4, 4, h.hour(1), h.hour(2), "9.00")
	h.now = h.hour(1) - 90*Second
	bx, _ := h.spot(x, mkt, 4, "2.00")
	by, evs := h.spot(y, mkt, 4, "3.00")
	wantEvent(t, evs, EvSpotPreempting, bx, 4, ReasonOutbid)
	evs = h.advance(90 * Second) // 01:00: the reservation starts
	wantEvent(t, evs, EvSpotPreempted, bx, 4, ReasonReservationStarting)
	wantEvent(t, evs, EvSpotPreempted, by, 4, ReasonReservationStarting)
	if b := wantBid(t, h, bx, "x", BidWaiting, "0.20"); b.Preempting != 0 {
		t.Fatalf("x %+v", b)
	}
	wantBid(t, h, by, "y", BidWaiting, "0")
}

// A budget spent during the notice releases the bid at once and the
// waiting bid starts before the deadline.
func TestNoticeBudgetRunsOut(t *testing.T) {
	h := newHarness(t, noticeConfig(180))
	owner := h.account("own", RoleOwner, "")
	x, y := h.account("x", RoleBuyer, "8.00"), h.account("y", RoleBuyer, "1000")
	h.listing(owner, mkt, 4, h.hour(0), h.hour(10), "9.00", "1.00")
	bx, _ := h.spot(x, mkt, 4, "2.00")
	h.advance(6930 * Second) // alone at 1.00: 4 × 1.00 × 6930/3600 = 7.70
	wantBid(t, h, bx, "x", BidRunning, "7.70")
	by, _ := h.spot(y, mkt, 4, "3.00")
	h.advance(90 * Second) // 0.20 under notice at 2.00: 0.10 left
	wantBid(t, h, bx, "x", BidPreempting, "7.90")
	evs := h.advance(60 * Second) // owes 0.1333, has 0.10
	wantEvent(t, evs, EvSpotReleased, bx, 4, ReasonInsufficientFunds)
	wantBid(t, h, bx, "x", BidCancelled, "8.00")
	if a := h.balance(x); a.Balance != 0 {
		t.Fatalf("x balance %s, want 0", a.Balance)
	}
	if b := wantBid(t, h, by, "y", BidRunning, "0"); b.Pending != 0 {
		t.Fatalf("y %+v, want running before its starts_at", b)
	}
}

// Uniform pricing holds while part of the GPUs are under notice: everyone
// pays the one clearing price (x's notice capped at its own limit).
func TestNoticeUniformPrice(t *testing.T) {
	h := newHarness(t, noticeConfig(180))
	owner := h.account("own", RoleOwner, "")
	x, y := h.account("x", RoleBuyer, "1000"), h.account("y", RoleBuyer, "1000")
	h.listing(owner, mkt, 4, h.hour(0), h.hour(10), "9.00", "1.00")
	h.listing(owner, mkt, 2, h.hour(0), h.hour(10), "9.00", "1.50")
	bx, _ := h.spot(x, mkt, 4, "2.00")
	by, evs := h.spot(y, mkt, 4, "3.00")
	// 6 units clear: y's 4 and x's best 2; price max(1.50, 2.00) = 2.00.
	wantEvent(t, evs, EvSpotPreempting, bx, 2, ReasonOutbid)
	if sv := h.spotState(mkt); sv.Price != p(t, "2.00") || sv.Allocated != 6 {
		t.Fatalf("spot %+v, want price 2.00, 6 allocated", sv)
	}
	xb := wantBid(t, h, bx, "x", BidPreempting, "0")
	yb := wantBid(t, h, by, "y", BidRunning, "0")
	if xb.Allocated != 2 || xb.Preempting != 2 || yb.Allocated != 4 || yb.Pending != 2 {
		t.Fatalf("x %+v\ny %+v", xb, yb)
	}
	h.advance(180 * Second)
	wantBid(t, h, bx, "x", BidRunning, "0.40") // (2 running + 2 noticed) × 2.00 × 0.05 h
	wantBid(t, h, by, "y", BidRunning, "0.20") // 2 running × 2.00 × 0.05 h
	h.advance(180 * Second)
	wantBid(t, h, bx, "x", BidRunning, "0.60")
	wantBid(t, h, by, "y", BidRunning, "0.60")
}
