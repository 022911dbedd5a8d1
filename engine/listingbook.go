package engine

import "math/bits"

// listingBook holds a market's active listings with unsold capacity,
// cheapest reserve first, then oldest: a treap (priorities from a counter
// through splitmix64, so shapes are deterministic) in which every node also
// knows the earliest start and the latest end of the listings below it.
// A reserved bid for [start, end) can only fill from a listing that covers
// the whole window, so the walk for it (walkCovering) skips every subtree
// whose earliest start is after start or whose latest end is before end:
// a bid visits the listings that can cover it, not every cheaper one.
//
// Each node also holds the union of its subtree's free-hour masks (see
// freeMask): a subtree none of whose listings has a GPU free in some hour
// of the bid's window is skipped too, and so is such a listing itself.
type listingBook struct {
	root  *lbNode
	n     int
	ctr   uint64
	free  *lbNode   // deleted nodes, linked by left, reused: no garbage per listing
	stack []*lbNode // walk scratch
}

type lbNode struct {
	key              listingKey
	l                *Listing
	prio             uint64
	minStart, maxEnd Time   // over the subtree
	free             uint64 // union of the subtree's free masks
	left, right      *lbNode
}

func (n *lbNode) fix() {
	n.minStart, n.maxEnd, n.free = n.l.Start, n.l.End, n.l.freeMask
	if c := n.left; c != nil {
		n.minStart, n.maxEnd, n.free = min(n.minStart, c.minStart), max(n.maxEnd, c.maxEnd), n.free|c.free
	}
	if c := n.right; c != nil {
		n.minStart, n.maxEnd, n.free = min(n.minStart, c.minStart), max(n.maxEnd, c.maxEnd), n.free|c.free
	}
}

// hourBits maps the hours of [start, end) to bits by hour mod 64 (all
// bits for 64 hours or more).
func hourBits(start, end Time) uint64 {
	n := uint64((end - start) / Hour)
	if n >= 64 {
		return ^uint64(0)
	}
	return bits.RotateLeft64(1<<n-1, int(uint64(start/Hour)%64))
}

// setFreeMask records which hours of a listing's window have a GPU free,
// as bits by hour mod 64; a window longer than flatHours says every hour
// (it is never skipped by mask). A window of at most 48 hours has each
// hour on its own bit, so for a listing a clear bit inside its window
// means that hour is sold out; in a union of listings, that no listing of
// it has that hour free.
func (l *Listing) setFreeMask() {
	if !l.sold.flat {
		l.freeMask = ^uint64(0)
		return
	}
	var m uint64
	for i, sold := range l.sold.max {
		if sold < l.Quantity {
			m |= 1 << (uint64(l.Start/Hour+Time(i)) % 64)
		}
	}
	l.freeMask = m
}

// Len is the number of listings on the book.
func (t *listingBook) Len() int { return t.n }

// Has reports whether key is on the book.
func (t *listingBook) Has(key listingKey) bool {
	n := t.root
	for n != nil {
		switch c := cmpListingKey(key, n.key); {
		case c < 0:
			n = n.left
		case c > 0:
			n = n.right
		default:
			return true
		}
	}
	return false
}

// Set puts l on the book at key (not already there).
func (t *listingBook) Set(key listingKey, l *Listing) {
	t.ctr++
	nn := t.free
	if nn != nil {
		t.free = nn.left
	} else {
		nn = &lbNode{}
	}
	*nn = lbNode{key: key, l: l, prio: splitmix(t.ctr)}
	nn.fix()
	t.root = t.insert(t.root, nn)
	t.n++
}

func (t *listingBook) insert(n, nn *lbNode) *lbNode {
	if n == nil {
		return nn
	}
	if nn.prio > n.prio {
		nn.left, nn.right = t.split(n, nn.key)
		nn.fix()
		return nn
	}
	if cmpListingKey(nn.key, n.key) < 0 {
		n.left = t.insert(n.left, nn)
	} else {
		n.right = t.insert(n.right, nn)
	}
	n.fix()
	return n
}

func (t *listingBook) split(n *lbNode, key listingKey) (l, r *lbNode) {
	if n == nil {
		return nil, nil
	}
	if cmpListingKey(n.key, key) < 0 {
		n.right, r = t.split(n.right, key)
		n.fix()
		return n, r
	}
	l, n.left = t.split(n.left, key)
	n.fix()
	return l, n
}

func mergeLB(l, r *lbNode) *lbNode {
	if l == nil {
		return r
	}
	if r == nil {
		return l
	}
	if l.prio > r.prio {
		l.right = mergeLB(l.right, r)
		l.fix()
		return l
	}
	r.left = mergeLB(l, r.left)
	r.fix()
	return r
}

// Delete takes key off the book; it reports whether it was there.
func (t *listingBook) Delete(key listingKey) bool {
	var found bool
	t.root = t.del(t.root, key, &found)
	if found {
		t.n--
	}
	return found
}

func (t *listingBook) del(n *lbNode, key listingKey, found *bool) *lbNode {
	if n == nil {
		return nil
	}
	switch c := cmpListingKey(key, n.key); {
	case c < 0:
		n.left = t.del(n.left, key, found)
	case c > 0:
		n.right = t.del(n.right, key, found)
	default:
		*found = true
		m := mergeLB(n.left, n.right)
		*n = lbNode{left: t.free} // the free list holds no listings
		t.free = n
		return m
	}
	n.fix()
	return n
}

// Ascend visits every listing, cheapest first, until fn returns false.
func (t *listingBook) Ascend(fn func(*Listing) bool) {
	t.walk(maxTime, minTime, Price(1<<62), 0, fn)
}

const (
	minTime Time = -1 << 63
	maxTime Time = 1<<63 - 1
)

// walkCovering visits, cheapest first, the listings with a reserve of at
// most limit whose window covers [start, end) (Start ≤ start and
// End ≥ end) until fn returns false.
// It walks iteratively with a reused stack, pruning subtrees that hold no
// such listing. fn must not change the book.
func (t *listingBook) walkCovering(start, end Time, limit Price, fn func(*Listing) bool) {
	t.walk(start, end, limit, hourBits(start, end), fn)
}

// walk is walkCovering that also skips listings and subtrees without a
// GPU free in every hour whose bit is in want (0: no such condition).
func (t *listingBook) walk(start, end Time, limit Price, want uint64, fn func(*Listing) bool) {
	st := t.stack[:0]
	t.stack = nil // a walk inside fn gets its own
	n := t.root
	for {
		for n != nil && n.minStart <= start && n.maxEnd >= end && n.free&want == want {
			st = append(st, n)
			n = n.left
		}
		if len(st) == 0 {
			break
		}
		n = st[len(st)-1]
		st = st[:len(st)-1]
		if n.key.price > limit {
			break // every listing after it is dearer still
		}
		if l := n.l; l.Start <= start && l.End >= end && l.freeMask&want == want && !fn(l) {
			break
		}
		n = n.right
	}
	clear(st)
	t.stack = st[:0]
}
