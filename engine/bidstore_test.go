package engine

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestListingBookCovering checks walkCovering against a filter of the
// whole sorted set, through random inserts and deletes: the same
// listings with a GPU free in every hour of the window, in the same order,
// for random windows, limits and sold hours (the free-hour masks).
func TestListingBookCovering(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	var book listingBook
	live := map[uint64]*Listing{}
	for step := 0; step < 5000; step++ {
		seq := uint64(r.IntN(400))
		if l := live[seq]; l != nil {
			if !book.Delete(l.bookKey) {
				t.Fatalf("step %d: listing %d not found", step, seq)
			}
			delete(live, seq)
		} else {
			s := Time(r.IntN(100)) * Hour
			l := &Listing{Seq: seq, Start: s, End: s + Time(1+r.IntN(60))*Hour, Reserve: Price(r.IntN(50)), Quantity: 2}
			l.sold = newSoldHours(int((l.End - l.Start) / Hour))
			for i := r.IntN(4); i > 0; i-- { // some hours sold out, some half sold
				a := r.IntN(l.sold.n)
				l.sold.Add(a, a+1+r.IntN(3), int64(1+r.IntN(2)))
			}
			l.setFreeMask()
			l.bookKey = listingKey{l.Reserve, l.Seq}
			book.Set(l.bookKey, l)
			live[seq] = l
		}
		if book.Len() != len(live) {
			t.Fatalf("step %d: %d on the book, want %d", step, book.Len(), len(live))
		}
		var all []*Listing
		for _, l := range live {
			all = append(all, l)
		}
		slices.SortFunc(all, func(a, b *Listing) int { return cmpListingKey(a.bookKey, b.bookKey) })
		for q := 0; q < 5; q++ {
			s := Time(r.IntN(150)) * Hour
			e := s + Time(1+r.IntN(30))*Hour
			limit := Price(r.IntN(60))
			var want, got []uint64
			for _, l := range all {
				if l.Reserve <= limit && l.Start <= s && l.End >= e && l.sold.Max(l.hourIndex(s), l.hourIndex(e)) < l.Quantity {
					want = append(want, l.Seq)
				}
			}
			book.walkCovering(s, e, limit, func(l *Listing) bool {
				// The walk may pass a covering listing sold out in the
				// window only when its mask cannot say so (a long window).
				if l.sold.Max(l.hourIndex(s), l.hourIndex(e)) < l.Quantity {
					got = append(got, l.Seq)
				} else if l.sold.flat {
					t.Fatalf("step %d: walk passed listing %d, sold out in [%d, %d)", step, l.Seq, s/Hour, e/Hour)
				}
				return true
			})
			if !slices.Equal(got, want) {
				t.Fatalf("step %d: [%d, %d) limit %d: walk %v, want %v", step, s/Hour, e/Hour, limit, got, want)
			}
		}
		var asc []uint64
		book.Ascend(func(l *Listing) bool { asc = append(asc, l.Seq); return true })
		if len(asc) != len(all) {
			t.Fatalf("step %d: Ascend visits %d of %d", step, len(asc), len(all))
		}
	}
}

// TestBidTableAgainstMap checks the open-addressing id index and the
// slab's free list against a map, through random adds and removes (the
// removes exercise the backward shift that replaces tombstones).
func TestBidTableAgainstMap(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	tab := &bidTable{}
	ref := map[ID]*Bid{}
	for step := 0; step < 50000; step++ {
		id := testID(uint64(r.IntN(3000)))
		if b := ref[id]; b != nil {
			if tab.get(id) != b {
				t.Fatalf("step %d: get %v is not the bid added", step, id)
			}
			tab.remove(b)
			tab.release(b)
			delete(ref, id)
		} else {
			if tab.get(id) != nil {
				t.Fatalf("step %d: get %v finds a removed bid", step, id)
			}
			b := tab.alloc()
			b.ID = id
			tab.add(b)
			ref[id] = b
		}
		if tab.len() != len(ref) {
			t.Fatalf("step %d: %d indexed, want %d", step, tab.len(), len(ref))
		}
	}
	for id, b := range ref {
		if tab.get(id) != b {
			t.Fatalf("bid %v lost", id)
		}
	}
	if int(tab.top) > 3000 {
		t.Fatalf("%d slots handed out for at most 3000 bids at once: the free list is not reused", tab.top)
	}
}

// TestSoldHoursAgainstArray checks both forms of soldHours (the flat array
// of short windows, the segment tree of long ones) against a plain array,
// through random sales and queries, including reuse by reset.
func TestSoldHoursAgainstArray(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 26))
	s := newSoldHours(1)
	for _, hours := range []int{1, 2, 7, flatHours, flatHours + 1, 100, 3, 700, 5} {
		s = s.reset(hours)
		ref := make([]int64, hours)
		for step := 0; step < 2000; step++ {
			a, b := r.IntN(hours+2)-1, r.IntN(hours+2)-1
			if a > b {
				a, b = b, a
			}
			if r.IntN(2) == 0 {
				q := int64(r.IntN(5))
				s.Add(a, b, q)
				for h := max(a, 0); h < min(b, hours); h++ {
					ref[h] += q
				}
			}
			var want int64
			for h := max(a, 0); h < min(b, hours); h++ {
				want = max(want, ref[h])
			}
			if got := s.Max(a, b); got != want {
				t.Fatalf("%d hours, step %d: Max(%d, %d) = %d, want %d", hours, step, a, b, got, want)
			}
			if got, want := s.MinAll(), slices.Min(ref); got != want {
				t.Fatalf("%d hours, step %d: MinAll = %d, want %d", hours, step, got, want)
			}
		}
	}
}
