package engine

import (
	"encoding/binary"
	"math/bits"
	"slices"
)

// The open bids live in a slab: pages of Bid values that never move, so a
// *Bid stays valid while the bid is open, and every index that points at a
// bid (the id table, a price level's queue, its account's list) holds a
// 4-byte handle instead of an 8-byte pointer and its own allocation. A
// retired bid's slot goes on a free list and is reused by the next bid, so
// placing and cancelling allocate nothing. This is what keeps a resting
// bid under 200 bytes of heap (TestRestingBidMemory).
//
// Handle 0 is never used: it means "none" in every link.

const (
	bidPageBits = 8
	bidPageSize = 1 << bidPageBits
)

type bidTable struct {
	pages [][]Bid
	top   uint32 // handles handed out so far (the highest in use or freed)
	free  uint32 // first free handle, linked through Bid.aNext
	n     int    // open bids

	// slots is an open-addressing hash table (linear probing, power-of-two
	// size, at most 3/4 full) of handles by bid id; 0 is an empty slot.
	slots []uint32
}

// at returns the bid with handle h (h != 0).
func (t *bidTable) at(h uint32) *Bid {
	return &t.pages[h>>bidPageBits][h&(bidPageSize-1)]
}

// alloc returns a zeroed bid with its handle set; the caller fills it and
// adds it with add.
func (t *bidTable) alloc() *Bid {
	h := t.free
	if h != 0 {
		t.free = t.at(h).aNext
	} else {
		t.top++
		h = t.top
		if int(h>>bidPageBits) == len(t.pages) {
			t.pages = append(t.pages, make([]Bid, bidPageSize))
		}
	}
	b := t.at(h)
	*b = Bid{h: h, heapIdx: -1}
	return b
}

// release puts a retired bid's slot on the free list. The slot keeps its
// last state (a caller still holding the pointer within the same command
// reads a closed bid) but drops what it points to, so the garbage
// collector frees its fills and spot state.
func (t *bidTable) release(b *Bid) {
	b.x, b.spotBid = nil, nil
	b.aNext = t.free
	t.free = b.h
}

func hashID(id ID) uint64 {
	a := binary.LittleEndian.Uint64(id[:8])
	c := binary.LittleEndian.Uint64(id[8:])
	return splitmix(a ^ bits.RotateLeft64(c, 31))
}

// get returns the open bid with id, nil when none.
func (t *bidTable) get(id ID) *Bid {
	if len(t.slots) == 0 {
		return nil
	}
	mask := uint64(len(t.slots) - 1)
	for i := hashID(id) & mask; ; i = (i + 1) & mask {
		h := t.slots[i]
		if h == 0 {
			return nil
		}
		if b := t.at(h); b.ID == id {
			return b
		}
	}
}

// add indexes b by its id (absent: the caller checked).
func (t *bidTable) add(b *Bid) {
	if (t.n+1)*4 > len(t.slots)*3 {
		t.grow()
	}
	t.put(b)
	t.n++
}

func (t *bidTable) put(b *Bid) {
	mask := uint64(len(t.slots) - 1)
	i := hashID(b.ID) & mask
	for t.slots[i] != 0 {
		i = (i + 1) & mask
	}
	t.slots[i] = b.h
}

func (t *bidTable) grow() {
	old := t.slots
	t.slots = make([]uint32, max(64, 2*len(old)))
	for _, h := range old {
		if h != 0 {
			t.put(t.at(h))
		}
	}
}

// remove unindexes b, shifting later entries of its probe run back so no
// tombstone is left (lookups stay short however many bids come and go).
func (t *bidTable) remove(b *Bid) {
	mask := uint64(len(t.slots) - 1)
	i := hashID(b.ID) & mask
	for t.slots[i] != b.h {
		if t.slots[i] == 0 {
			return
		}
		i = (i + 1) & mask
	}
	t.n--
	for j := i; ; {
		j = (j + 1) & mask
		h := t.slots[j]
		if h == 0 {
			break
		}
		// Move j's entry into the hole at i unless its home slot k lies
		// cyclically in (i, j].
		k := hashID(t.at(h).ID) & mask
		if (i < j && (k <= i || k > j)) || (i > j && k <= i && k > j) {
			t.slots[i] = h
			i = j
		}
	}
	t.slots[i] = 0
}

// len is the number of open bids.
func (t *bidTable) len() int { return t.n }

// all returns the open bids in sequence order (oldest first).
func (t *bidTable) all() []*Bid {
	out := make([]*Bid, 0, t.n)
	for _, h := range t.slots {
		if h != 0 {
			out = append(out, t.at(h))
		}
	}
	slices.SortFunc(out, func(a, b *Bid) int {
		if a.Seq < b.Seq {
			return -1
		}
		if a.Seq > b.Seq {
			return 1
		}
		return 0
	})
	return out
}

// ---- an account's open bids: a list in sequence order ----

func (t *bidTable) linkAccount(a *Account, b *Bid) {
	b.aPrev, b.aNext = a.bidTail, 0
	if a.bidTail != 0 {
		t.at(a.bidTail).aNext = b.h
	} else {
		a.bidHead = b.h
	}
	a.bidTail = b.h
	a.nBids++
}

func (t *bidTable) unlinkAccount(a *Account, b *Bid) {
	if b.aPrev != 0 {
		t.at(b.aPrev).aNext = b.aNext
	} else {
		a.bidHead = b.aNext
	}
	if b.aNext != 0 {
		t.at(b.aNext).aPrev = b.aPrev
	} else {
		a.bidTail = b.aPrev
	}
	b.aPrev, b.aNext = 0, 0
	a.nBids--
}

// accountFrom visits an account's open bids from the one with handle h
// (0: none) towards the oldest, those with Seq < before (0: all), until fn
// returns false, and returns how many it looked at. Starting at the
// account's newest (a.bidTail) walks past every newer bid; a page that
// starts just below its cursor bid walks only what it lists.
func (t *bidTable) accountFrom(h uint32, before uint64, fn func(*Bid) bool) (visited int) {
	for h != 0 {
		b := t.at(h)
		h = b.aPrev
		visited++
		if before != 0 && b.Seq >= before {
			continue
		}
		if !fn(b) {
			break
		}
	}
	return visited
}

// ---- resting reserved bids: one tree node per price, a queue per level ----

// bidLevel is the queue of one price's resting bids, oldest first.
type bidLevel struct{ head, tail uint32 }

// restingBook holds a market's resting reserved bids, best (highest)
// limit first, then oldest: a tree with one node per price, each holding
// its bids' queue linked through Bid.qPrev/qNext.
//
// The levels know the windows of their bids (see bidLevels), so the walk
// for a new or freed listing (walkFitting) skips the levels that hold no
// bid it could fill.
type restingBook struct {
	t      *bidTable
	levels *bidLevels
	n      int

	// visited counts the bids walkFitting has looked at: what
	// TestRecheckVisits holds down. Only the engine's own command path
	// walks, so it is written under the sequencer's write lock.
	visited int64
}

func newRestingBook(t *bidTable) restingBook {
	return restingBook{t: t, levels: &bidLevels{}}
}

// insert queues b at its limit in sequence order: at the tail, except a
// repriced bid, which keeps its place among older and newer bids.
func (r *restingBook) insert(b *Bid) {
	if b.inBook {
		return
	}
	b.inBook = true
	r.n++
	ls, ee, d := bidBounds(b)
	lv := r.levels.ref(b.Limit)
	if lv == nil {
		b.qPrev, b.qNext = 0, 0
		r.levels.add(b.Limit, bidLevel{b.h, b.h}, ls, ee, d) // ref found no level
		return
	}
	r.levels.widen(b.Limit, ls, ee, d)
	after := lv.tail
	for after != 0 && r.t.at(after).Seq > b.Seq {
		after = r.t.at(after).qPrev
	}
	b.qPrev = after
	if after == 0 {
		b.qNext = lv.head
		lv.head = b.h
	} else {
		a := r.t.at(after)
		b.qNext = a.qNext
		a.qNext = b.h
	}
	if b.qNext == 0 {
		lv.tail = b.h
	} else {
		r.t.at(b.qNext).qPrev = b.h
	}
}

// remove takes b out of the book (nothing when it is not in it). The
// bid's Limit must be the one it was inserted with.
func (r *restingBook) remove(b *Bid) {
	if !b.inBook {
		return
	}
	b.inBook = false
	r.n--
	lv := r.levels.ref(b.Limit)
	if b.qPrev != 0 {
		r.t.at(b.qPrev).qNext = b.qNext
	} else {
		lv.head = b.qNext
	}
	if b.qNext != 0 {
		r.t.at(b.qNext).qPrev = b.qPrev
	} else {
		lv.tail = b.qPrev
	}
	b.qPrev, b.qNext = 0, 0
	if lv.head == 0 {
		r.levels.Delete(b.Limit)
		return
	}
	// Narrow a short level's bounds to the bids left in it, so a level
	// that once held a bid of another window stops being walked for it;
	// a longer level keeps its wider bounds rather than cost a walk of
	// its queue on every removal.
	const narrowUpTo = 8
	ls, ee, d := minTime, maxTime, maxTime
	h, k := lv.head, 0
	for ; h != 0 && k < narrowUpTo; k++ {
		x := r.t.at(h)
		h = x.qNext
		bls, bee, bd := bidBounds(x)
		ls, ee, d = max(ls, bls), min(ee, bee), min(d, bd)
	}
	if h == 0 {
		r.levels.narrow(b.Limit, ls, ee, d)
	}
}

// ascend visits the resting bids best first until fn returns false. fn
// must not change the book.
func (r *restingBook) ascend(fn func(*Bid) bool) { r.ascendAfter(nil, fn) }

// ascendAfter is ascend starting after the bid with key after (nil: from
// the best).
func (r *restingBook) ascendAfter(after *bidKey, fn func(*Bid) bool) {
	r.walk(after, 0, minTime, maxTime, maxTime, fn)
}

// walkFitting is ascendAfter over the bids with a limit of at least floor
// in the levels whose bounds admit a block inside [start, end): it
// visits, in the book's order, every bid a listing for that window at that
// reserve could fill, and skips whole levels (and subtrees of levels) that
// hold none. It counts the bids it visits in r.visited.
func (r *restingBook) walkFitting(after *bidKey, floor Price, start, end Time, fn func(*Bid) bool) {
	r.walk(after, floor, start, end, end-start, func(b *Bid) bool {
		r.visited++
		return fn(b)
	})
}

func (r *restingBook) walk(after *bidKey, floor Price, start, end, span Time, fn func(*Bid) bool) {
	var from *Price
	if after != nil {
		from = &after.price
	}
	r.levels.walk(from, floor, start, end, span, func(p Price, lv bidLevel) bool {
		for h := lv.head; h != 0; {
			b := r.t.at(h)
			h = b.qNext
			if after != nil && p == after.price && b.Seq <= after.seq {
				continue
			}
			if !fn(b) {
				return false
			}
		}
		return true
	})
}

// len is the number of resting bids.
func (r *restingBook) len() int { return r.n }
