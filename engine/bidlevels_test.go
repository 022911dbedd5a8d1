package engine

import (
	"math/rand/v2"
	"testing"
)

// fitsListing is the recheck's own test of whether a listing for
// [start, end) could fill b, written out again so the test does not trust
// bidBounds.
func fitsListing(b *Bid, start, end Time) bool {
	if b.Start >= start && b.End <= end {
		return true
	}
	return b.flexible() && min(b.End, end)-max(b.Start, start) >= Time(b.flex().hours)*Hour
}

// TestRecheckVisits places a listing beside a book of resting bids, one
// per price level with windows spread over a week, and counts the bids the
// recheck looks at: only those the listing could fill, where the walk
// before the level index looked at every bid priced at or over the
// reserve. Each fitting bid must also have filled (the listing has room
// for all), so skipping lost none.
func TestRecheckVisits(t *testing.T) {
	cases := []struct {
		name       string
		start, end int // hours from now
	}{
		{"three hours", 20, 23},
		{"one hour", 30, 31},
		{"nothing fits", 150, 160},
		{"covers all", 1, 200},
		{"a day", 24, 48},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			owner := h.account("own", RoleOwner, "")
			buyer := h.account("buy", RoleBuyer, "1000000")
			var bids []ID
			for i := range 120 {
				s := h.hour(10 + i%40)
				id, _ := h.reserved(buyer, mkt, 1, 0, s, s+Time(1+i%3)*Hour, ticks(100+i))
				bids = append(bids, id)
			}
			for j := range 20 {
				id := h.newID()
				s := h.hour(5 + 3*j)
				h.must(Command{Kind: CmdPlaceBid, BidType: Reserved, Actor: buyer, Target: id, Market: mkt,
					Quantity: 1, Start: s, End: s + 12*Hour, DurationHours: 3, Price: Price(usd(t, ticks(250+j)))})
				bids = append(bids, id)
			}
			m := h.e.markets[mkt]
			start, end := h.hour(tc.start), h.hour(tc.end)
			var fit []ID
			for _, id := range bids {
				if b := h.e.bids.get(id); fitsListing(b, start, end) {
					fit = append(fit, id)
				}
			}
			before := m.resting.visited
			h.listing(owner, mkt, 1000, start, end, "0.50", "")
			visited := m.resting.visited - before
			t.Logf("%d of %d resting bids fit; the recheck visited %d", len(fit), len(bids), visited)
			if visited != int64(len(fit)) {
				t.Fatalf("the recheck visited %d bids, want the %d that fit", visited, len(fit))
			}
			for _, id := range fit {
				if st := h.bid(id).Status; st != BidFilled {
					t.Fatalf("bid %v is %s, want filled: it fits the listing", id, st)
				}
			}
		})
	}
}

// ticks renders n cents as a price string for the harness.
func ticks(cents int) string {
	return string(rune('0'+cents/100)) + "." + string(rune('0'+cents/10%10)) + string(rune('0'+cents%10))
}

// TestWalkFittingMatchesAscend checks the pruned walk against a filter of
// the whole book, in order, while bids come and go (so level bounds go
// stale: they may only widen what is visited, never lose a bid).
func TestWalkFittingMatchesAscend(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var tbl bidTable
	book := newRestingBook(&tbl)
	var open []*Bid
	var seq uint64
	for step := range 4000 {
		if len(open) > 0 && r.IntN(3) == 0 {
			i := r.IntN(len(open))
			book.remove(open[i])
			open = append(open[:i], open[i+1:]...)
		} else {
			seq++
			b := tbl.alloc()
			s := Time(r.IntN(100)) * Hour
			b.Seq, b.Limit, b.Start, b.End = seq, Price(1+r.IntN(30)), s, s+Time(1+r.IntN(12))*Hour
			book.insert(b)
			open = append(open, b)
		}
		if step%10 != 0 {
			continue
		}
		floor := Price(1 + r.IntN(30))
		s := Time(r.IntN(100)) * Hour
		e := s + Time(1+r.IntN(24))*Hour
		var want, got []uint64
		book.ascend(func(b *Bid) bool {
			if b.Limit < floor {
				return false
			}
			if fitsListing(b, s, e) {
				want = append(want, b.Seq)
			}
			return true
		})
		book.walkFitting(nil, floor, s, e, func(b *Bid) bool {
			if fitsListing(b, s, e) {
				got = append(got, b.Seq)
			}
			return true
		})
		if len(got) != len(want) {
			t.Fatalf("step %d: walk found %v, want %v", step, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("step %d: walk found %v, want %v", step, got, want)
			}
		}
	}
}
