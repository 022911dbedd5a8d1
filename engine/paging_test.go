package engine

import (
	"slices"
	"testing"
)

// pagingMarket is an engine where one buyer and one owner hold many open
// orders, interleaved with another account's so the lists are not the
// engine's: every third bid is a spot bid (waiting, no capacity), the
// rest reserved bids resting with no listing under them.
type pagingMarket struct {
	h              *harness
	buyer, owner   ID
	other          ID   // another buyer, owner of otherBid
	otherBid       ID   // one of other's open bids
	bids, listings []ID // the buyer's and the owner's, oldest first
}

func newPagingMarket(t *testing.T, n int) *pagingMarket {
	t.Helper()
	h := newHarness(t, Config{})
	pm := &pagingMarket{h: h}
	pm.buyer = h.account("buy", RoleBuyer, "10000000")
	pm.owner = h.account("own", RoleOwner, "")
	pm.other = h.account("oth", RoleBuyer, "10000000")
	for i := range n {
		var id ID
		if i%3 == 2 {
			id, _ = h.spot(pm.buyer, mkt, 1, "0.01")
		} else {
			id, _ = h.reserved(pm.buyer, mkt, 1, 0, h.hour(1), h.hour(2), "0.01")
		}
		pm.bids = append(pm.bids, id)
		// Listings far above any bid's limit stay active and unsold.
		pm.listings = append(pm.listings, h.listing(pm.owner, mkt, 1, h.hour(1), h.hour(3), "500.00", ""))
		if i%10 == 0 {
			pm.otherBid, _ = h.reserved(pm.other, mkt, 1, 0, h.hour(1), h.hour(2), "0.01")
		}
	}
	return pm
}

// TestDeepPagesWalkWhatTheyList pages through an account's open bids and
// listings and counts the entries each page's walk looks at: a page that
// continues after an open order of the account starts at it, so even the
// deepest page looks at no more than it lists plus what the status filter
// skips, where a walk from the newest looked at every newer order. A
// closed or another account's cursor gives the answer a walk from the
// newest gives.
func TestDeepPagesWalkWhatTheyList(t *testing.T) {
	const n, limit = 900, 7
	pm := newPagingMarket(t, n)
	e := pm.h.e

	type page struct {
		ids     []ID
		seqs    []uint64
		visited int
	}
	bidPage := func(status string, cursor ID, before uint64, lim int) page {
		vs, visited := e.bidsBefore(pm.buyer, status, cursor, before, lim)
		var p page
		for _, v := range vs {
			p.ids, p.seqs = append(p.ids, v.ID), append(p.seqs, v.Seq)
		}
		p.visited = visited
		return p
	}
	listingPage := func(status string, cursor ID, before uint64, lim int) page {
		vs, visited := e.listingsBefore(pm.owner, status, cursor, before, lim)
		var p page
		for _, v := range vs {
			p.ids, p.seqs = append(p.ids, v.ID), append(p.seqs, v.Seq)
		}
		p.visited = visited
		return p
	}
	newestFirst := func(ids []ID) []ID {
		out := slices.Clone(ids)
		slices.Reverse(out)
		return out
	}
	spotOnly := func(ids []ID) []ID {
		var out []ID
		for i, id := range ids {
			if i%3 == 2 {
				out = append(out, id)
			}
		}
		return newestFirst(out)
	}

	for _, tc := range []struct {
		name   string
		status string
		list   func(status string, cursor ID, before uint64, lim int) page
		want   []ID // every page together, newest first
		// most is how many entries a page of lim may look at.
		most func(lim int) int
	}{
		{"bids", "", bidPage, newestFirst(pm.bids), func(lim int) int { return lim }},
		{"bids/waiting", "waiting", bidPage, spotOnly(pm.bids), func(lim int) int { return 3 * lim }},
		{"listings", "", listingPage, newestFirst(pm.listings), func(lim int) int { return lim }},
		{"listings/active", "active", listingPage, newestFirst(pm.listings), func(lim int) int { return lim }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Page as BidsOf and the API do: ask for limit+1, continue
			// after the last one kept.
			var got []ID
			var cursor ID
			var before uint64
			pages := 0
			for {
				p := tc.list(tc.status, cursor, before, limit+1)
				if p.visited > tc.most(limit+1) {
					t.Fatalf("page %d (after %d orders) looked at %d entries for %d, want at most %d",
						pages, len(got), p.visited, limit+1, tc.most(limit+1))
				}
				pages++
				if len(p.ids) <= limit {
					got = append(got, p.ids...)
					break
				}
				got = append(got, p.ids[:limit]...)
				cursor, before = p.ids[limit-1], p.seqs[limit-1]
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("paged %d orders, want %d (or a different order)", len(got), len(tc.want))
			}
		})
	}

	// The deepest cursor's seq, with a cursor the walk cannot start at:
	// the answer is the same, from a walk past every newer order.
	deep := pm.bids[limit]
	dv := pm.h.bid(deep)
	want := bidPage("", ID{}, dv.Seq, limit)
	if got := bidPage("", pm.otherBid, dv.Seq, limit); !slices.Equal(got.ids, want.ids) || got.visited < n-limit {
		t.Fatalf("another account's cursor: %d orders after %d visits, want %v after a walk from the newest", len(got.ids), got.visited, want.ids)
	}
	if got := bidPage("", deep, dv.Seq+1, limit); !slices.Equal(got.ids, bidPage("", ID{}, dv.Seq+1, limit).ids) || got.visited < n-limit {
		t.Fatalf("a cursor whose seq is not before: %d visits, want a walk from the newest", got.visited)
	}
	pm.h.must(Command{Kind: CmdCancelBid, Actor: pm.buyer, Target: deep})
	if got := bidPage("", deep, dv.Seq, limit); !slices.Equal(got.ids, want.ids) || len(got.ids) != limit {
		t.Fatalf("closed cursor: %v, want %v", got.ids, want.ids)
	}

	deepL := pm.listings[limit]
	lv, _ := e.Listing(deepL)
	wantL := listingPage("", ID{}, lv.Seq, limit)
	pm.h.must(Command{Kind: CmdCancelListing, Actor: pm.owner, Target: deepL})
	if got := listingPage("", deepL, lv.Seq, limit); !slices.Equal(got.ids, wantL.ids) || len(got.ids) != limit {
		t.Fatalf("closed listing cursor: %v, want %v", got.ids, wantL.ids)
	}

	// BidsOf pages the same way through its own cursors.
	var all []ID
	for cursor := (ID{}); ; {
		bs, next := e.BidsOf(pm.buyer, "", limit, cursor)
		for _, b := range bs {
			all = append(all, b.ID)
		}
		if next.IsZero() {
			break
		}
		cursor = next
	}
	wantAll := slices.DeleteFunc(newestFirst(pm.bids), func(id ID) bool { return id == deep })
	if !slices.Equal(all, wantAll) {
		t.Fatalf("BidsOf paged %d bids, want %d", len(all), len(wantAll))
	}
}
