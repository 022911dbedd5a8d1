package engine

// bidLevels is the tree of a market's resting-bid price levels, best
// (highest) limit first: a treap (priorities from a counter through
// splitmix64, so shapes are deterministic) in which every node also knows,
// over its subtree, the latest hour a bid could start its block
// (lateStart), the earliest hour one could end it (earlyEnd) and the
// shortest block (dur). A listing for [start, end) can fill a bid only when
// the bid's block can lie inside it, which is exactly lateStart ≥ start,
// earlyEnd ≤ end and dur ≤ end − start, so the walk that offers a new
// or freed listing to resting bids (walkFitting) skips every level and
// subtree that holds no such bid.
//
// A level's bounds widen as bids join it; when one leaves, a level of a
// few bids narrows them again (restingBook.remove), a longer one keeps them
// (that would mean walking its queue), so they may promise more than the
// level holds, never less: the walk never skips a bid that fits, and stale
// bounds only make it look at a few that do not. A level that empties is
// deleted, and a new one starts from its first bid.
type bidLevels struct {
	root *blNode
	n    int
	ctr  uint64
	free *blNode // deleted nodes, linked by left, reused: no garbage per level
}

type blNode struct {
	price                                Price
	lv                                   bidLevel
	prio                                 uint64
	lateStart, earlyEnd, dur             Time // this level's bids (see bidLevels)
	subLateStart, subEarlyEnd, subMinDur Time // over the subtree
	left, right                          *blNode
}

// bidBounds returns the latest start, the earliest end and the length of
// the block b can fill: its window itself, or for a flexible bid its
// duration at the end and at the start of the window.
func bidBounds(b *Bid) (lateStart, earlyEnd, dur Time) {
	if b.flexible() {
		d := Time(b.flex().hours) * Hour
		return b.End - d, b.Start + d, d
	}
	return b.Start, b.End, b.End - b.Start
}

func (n *blNode) fix() {
	n.subLateStart, n.subEarlyEnd, n.subMinDur = n.lateStart, n.earlyEnd, n.dur
	if c := n.left; c != nil {
		n.subLateStart, n.subEarlyEnd, n.subMinDur = max(n.subLateStart, c.subLateStart), min(n.subEarlyEnd, c.subEarlyEnd), min(n.subMinDur, c.subMinDur)
	}
	if c := n.right; c != nil {
		n.subLateStart, n.subEarlyEnd, n.subMinDur = max(n.subLateStart, c.subLateStart), min(n.subEarlyEnd, c.subEarlyEnd), min(n.subMinDur, c.subMinDur)
	}
}

// higher orders prices best (highest) first.
func higher(a, b Price) bool { return a > b }

// Len is the number of levels.
func (t *bidLevels) Len() int { return t.n }

// ref returns the level at price, nil when none, valid until the tree next
// changes shape (add, Delete).
func (t *bidLevels) ref(price Price) *bidLevel {
	n := t.root
	for n != nil {
		switch {
		case higher(price, n.price):
			n = n.left
		case higher(n.price, price):
			n = n.right
		default:
			return &n.lv
		}
	}
	return nil
}

// widen makes the level at price (present) and the subtrees above it
// admit a bid with bounds ls, ee, d: bounds only widen, so each node on
// the path takes the max/min in place, with no rebuild.
func (t *bidLevels) widen(price Price, ls, ee, d Time) {
	n := t.root
	for n != nil {
		n.subLateStart, n.subEarlyEnd, n.subMinDur = max(n.subLateStart, ls), min(n.subEarlyEnd, ee), min(n.subMinDur, d)
		switch {
		case higher(price, n.price):
			n = n.left
		case higher(n.price, price):
			n = n.right
		default:
			n.lateStart, n.earlyEnd, n.dur = max(n.lateStart, ls), min(n.earlyEnd, ee), min(n.dur, d)
			return
		}
	}
}

// narrow sets the bounds of the level at price (present) to ls, ee, d,
// those of exactly the bids it holds, and recomputes the subtrees above it.
func (t *bidLevels) narrow(price Price, ls, ee, d Time) {
	t.narrowNode(t.root, price, ls, ee, d)
}

func (t *bidLevels) narrowNode(n *blNode, price Price, ls, ee, d Time) {
	switch {
	case n == nil:
		return
	case higher(price, n.price):
		t.narrowNode(n.left, price, ls, ee, d)
	case higher(n.price, price):
		t.narrowNode(n.right, price, ls, ee, d)
	default:
		n.lateStart, n.earlyEnd, n.dur = ls, ee, d
	}
	n.fix()
}

// add puts a new level (price absent) holding lv with bounds ls, ee, d.
func (t *bidLevels) add(price Price, lv bidLevel, ls, ee, d Time) {
	t.ctr++
	nn := t.free
	if nn != nil {
		t.free = nn.left
	} else {
		nn = &blNode{}
	}
	*nn = blNode{price: price, lv: lv, prio: splitmix(t.ctr), lateStart: ls, earlyEnd: ee, dur: d}
	nn.fix()
	t.root = t.insert(t.root, nn)
	t.n++
}

func (t *bidLevels) insert(n, nn *blNode) *blNode {
	if n == nil {
		return nn
	}
	if nn.prio > n.prio {
		nn.left, nn.right = t.split(n, nn.price)
		nn.fix()
		return nn
	}
	if higher(nn.price, n.price) {
		n.left = t.insert(n.left, nn)
	} else {
		n.right = t.insert(n.right, nn)
	}
	n.fix()
	return n
}

func (t *bidLevels) split(n *blNode, price Price) (l, r *blNode) {
	if n == nil {
		return nil, nil
	}
	if higher(n.price, price) {
		n.right, r = t.split(n.right, price)
		n.fix()
		return n, r
	}
	l, n.left = t.split(n.left, price)
	n.fix()
	return l, n
}

func mergeBL(l, r *blNode) *blNode {
	if l == nil {
		return r
	}
	if r == nil {
		return l
	}
	if l.prio > r.prio {
		l.right = mergeBL(l.right, r)
		l.fix()
		return l
	}
	r.left = mergeBL(l, r.left)
	r.fix()
	return r
}

// Delete takes the level at price off the tree.
func (t *bidLevels) Delete(price Price) {
	var found bool
	t.root = t.del(t.root, price, &found)
	if found {
		t.n--
	}
}

func (t *bidLevels) del(n *blNode, price Price, found *bool) *blNode {
	if n == nil {
		return nil
	}
	switch {
	case higher(price, n.price):
		n.left = t.del(n.left, price, found)
	case higher(n.price, price):
		n.right = t.del(n.right, price, found)
	default:
		*found = true
		m := mergeBL(n.left, n.right)
		*n = blNode{left: t.free}
		t.free = n
		return m
	}
	n.fix()
	return n
}

// walk calls fn for the levels best first, from the level at price from
// on (nil: from the best), whose limit is at least floor and whose bounds
// admit a block inside [start, end) of at most span — lateStart ≥ start,
// earlyEnd ≤ end, dur ≤ span (end − start; the caller passes it so that a
// walk of every level, start = minTime and end = span = maxTime, does not
// overflow) — until fn returns false. fn must not change the tree.
func (t *bidLevels) walk(from *Price, floor Price, start, end, span Time, fn func(Price, bidLevel) bool) {
	t.walkNode(t.root, from, floor, start, end, span, fn)
}

func (t *bidLevels) walkNode(n *blNode, from *Price, floor Price, start, end, span Time, fn func(Price, bidLevel) bool) bool {
	if n == nil || n.subLateStart < start || n.subEarlyEnd > end || n.subMinDur > span {
		return true
	}
	if from != nil && higher(n.price, *from) {
		return t.walkNode(n.right, from, floor, start, end, span, fn)
	}
	if !t.walkNode(n.left, from, floor, start, end, span, fn) {
		return false
	}
	if n.price < floor {
		return false // every level after it is lower still
	}
	if n.lateStart >= start && n.earlyEnd <= end && n.dur <= span && !fn(n.price, n.lv) {
		return false
	}
	return t.walkNode(n.right, nil, floor, start, end, span, fn)
}
