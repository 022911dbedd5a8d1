package engine

// osTree is an order-statistic treap: an ordered set of unique keys, each
// carrying a weight (GPU units), with O(log n) insert, delete, weight update,
// rank (units before a key) and select (the entry holding the i-th unit).
// Priorities come from a counter mixed by splitmix64, so shapes are
// deterministic; behaviour never depends on shape anyway.
type osTree[K any, V any] struct {
	root *osNode[K, V]
	cmp  func(a, b K) int
	n    int
	ctr  uint64
	free *osNode[K, V] // deleted nodes, linked by left, reused by Set: no garbage per order
}

type osNode[K any, V any] struct {
	key         K
	val         V
	w, sum      int64
	prio        uint64
	left, right *osNode[K, V]
}

func newOSTree[K any, V any](cmp func(a, b K) int) *osTree[K, V] {
	return &osTree[K, V]{cmp: cmp}
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func (n *osNode[K, V]) fix() {
	n.sum = n.w
	if n.left != nil {
		n.sum += n.left.sum
	}
	if n.right != nil {
		n.sum += n.right.sum
	}
}

func sumOf[K any, V any](n *osNode[K, V]) int64 {
	if n == nil {
		return 0
	}
	return n.sum
}

// Len is the number of keys.
func (t *osTree[K, V]) Len() int { return t.n }

// Total is the sum of all weights.
func (t *osTree[K, V]) Total() int64 { return sumOf(t.root) }

// Get returns the value and weight stored at key.
func (t *osTree[K, V]) Get(key K) (V, int64, bool) {
	n := t.root
	for n != nil {
		c := t.cmp(key, n.key)
		switch {
		case c < 0:
			n = n.left
		case c > 0:
			n = n.right
		default:
			return n.val, n.w, true
		}
	}
	var zero V
	return zero, 0, false
}

// ref returns a pointer to the value stored at key (nil when absent),
// valid until the tree next changes shape (Set of a new key, Delete).
func (t *osTree[K, V]) ref(key K) *V {
	n := t.root
	for n != nil {
		c := t.cmp(key, n.key)
		switch {
		case c < 0:
			n = n.left
		case c > 0:
			n = n.right
		default:
			return &n.val
		}
	}
	return nil
}

// Set inserts key or replaces its value and weight.
func (t *osTree[K, V]) Set(key K, val V, w int64) {
	if t.update(t.root, key, val, w) {
		return
	}
	t.Add(key, val, w)
}

// Add inserts key, which must be absent: a caller that knows the key is
// new (a bid's key holds its unique Seq) saves Set's search for it, a walk
// the full depth of the tree. A present key panics rather than corrupt
// the tree with a duplicate.
func (t *osTree[K, V]) Add(key K, val V, w int64) {
	t.ctr++
	nn := t.free
	if nn != nil {
		t.free = nn.left
		*nn = osNode[K, V]{key: key, val: val, w: w, sum: w, prio: splitmix(t.ctr)}
	} else {
		nn = &osNode[K, V]{key: key, val: val, w: w, sum: w, prio: splitmix(t.ctr)}
	}
	t.root = t.insert(t.root, nn)
	t.n++
}

// update changes an existing key's value and weight in place; it reports
// whether the key was found. Iterative: one walk finds the node, and when
// the weight changes a second adds the difference to the sums on its path.
func (t *osTree[K, V]) update(root *osNode[K, V], key K, val V, w int64) bool {
	n := root
	for n != nil {
		c := t.cmp(key, n.key)
		if c == 0 {
			break
		}
		if c < 0 {
			n = n.left
		} else {
			n = n.right
		}
	}
	if n == nil {
		return false
	}
	n.val = val
	if d := w - n.w; d != 0 {
		n.w = w
		for p := root; p != n; {
			p.sum += d
			if t.cmp(key, p.key) < 0 {
				p = p.left
			} else {
				p = p.right
			}
		}
		n.sum += d
	}
	return true
}

func (t *osTree[K, V]) insert(n, nn *osNode[K, V]) *osNode[K, V] {
	if n == nil {
		return nn
	}
	if nn.prio > n.prio {
		nn.left, nn.right = t.split(n, nn.key)
		nn.fix()
		return nn
	}
	c := t.cmp(nn.key, n.key)
	if c == 0 {
		panic("engine: osTree.Add of a key already present")
	}
	if c < 0 {
		n.left = t.insert(n.left, nn)
	} else {
		n.right = t.insert(n.right, nn)
	}
	n.fix()
	return n
}

// split divides n into keys < key and keys > key (key itself is absent).
func (t *osTree[K, V]) split(n *osNode[K, V], key K) (l, r *osNode[K, V]) {
	if n == nil {
		return nil, nil
	}
	c := t.cmp(n.key, key)
	if c == 0 {
		panic("engine: osTree.Add of a key already present")
	}
	if c < 0 {
		n.right, r = t.split(n.right, key)
		n.fix()
		return n, r
	}
	l, n.left = t.split(n.left, key)
	n.fix()
	return l, n
}

func merge[K any, V any](l, r *osNode[K, V]) *osNode[K, V] {
	if l == nil {
		return r
	}
	if r == nil {
		return l
	}
	if l.prio > r.prio {
		l.right = merge(l.right, r)
		l.fix()
		return l
	}
	r.left = merge(l, r.left)
	r.fix()
	return r
}

// Delete removes key; it reports whether it was present.
func (t *osTree[K, V]) Delete(key K) bool {
	var found bool
	t.root = t.del(t.root, key, &found)
	if found {
		t.n--
	}
	return found
}

func (t *osTree[K, V]) del(n *osNode[K, V], key K, found *bool) *osNode[K, V] {
	if n == nil {
		return nil
	}
	c := t.cmp(key, n.key)
	switch {
	case c < 0:
		n.left = t.del(n.left, key, found)
	case c > 0:
		n.right = t.del(n.right, key, found)
	default:
		*found = true
		m := merge(n.left, n.right)
		*n = osNode[K, V]{left: t.free} // drop the value: the free list holds no orders
		t.free = n
		return m
	}
	n.fix()
	return n
}

// Rank is the total weight of keys strictly before key.
func (t *osTree[K, V]) Rank(key K) int64 {
	var r int64
	n := t.root
	for n != nil {
		if t.cmp(key, n.key) <= 0 {
			n = n.left
		} else {
			r += sumOf(n.left) + n.w
			n = n.right
		}
	}
	return r
}

// Select returns the entry holding unit i (0-based over cumulative weight)
// and the total weight before that entry. ok is false when i is out of range.
func (t *osTree[K, V]) Select(i int64) (key K, val V, before int64, ok bool) {
	n := t.root
	for n != nil {
		ls := sumOf(n.left)
		switch {
		case i < ls:
			n = n.left
		case i < ls+n.w:
			return n.key, n.val, before + ls, true
		default:
			i -= ls + n.w
			before += ls + n.w
			n = n.right
		}
	}
	return key, val, 0, false
}

// Ascend calls fn for keys >= from in order (from all keys when from is nil)
// until fn returns false.
func (t *osTree[K, V]) Ascend(from *K, fn func(key K, val V, w int64) bool) {
	t.ascend(t.root, from, fn)
}

func (t *osTree[K, V]) ascend(n *osNode[K, V], from *K, fn func(K, V, int64) bool) bool {
	if n == nil {
		return true
	}
	if from != nil && t.cmp(n.key, *from) < 0 {
		return t.ascend(n.right, from, fn)
	}
	if !t.ascend(n.left, from, fn) {
		return false
	}
	if !fn(n.key, n.val, n.w) {
		return false
	}
	return t.ascend(n.right, nil, fn)
}
