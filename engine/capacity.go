package engine

// soldHours records, for each hour of a listing's window, how many GPUs are
// sold. It is a segment tree with lazy range-add and range-max, so "how many
// GPUs are free in every hour of [a, b)" and "sell q GPUs in every hour of
// [a, b)" are O(log hours) whatever the window's length. A window of at
// most flatHours is a plain array instead (flat): a loop over a few hours
// is cheaper than the tree's recursion, and matching asks that question of
// every listing it passes.
type soldHours struct {
	buf    []int64 // max, min and lazy, one allocation
	n      int
	flat   bool // max[h] is hour h's sold count; minAll caches their minimum
	minAll int64
	max    []int64 // max over the node's range, including its own pending add
	min    []int64 // min likewise, so "sold out in every hour" is O(1)
	lazy   []int64 // add pending for the node's whole range (already in max/min)
}

func newSoldHours(hours int) *soldHours {
	return (&soldHours{}).reset(hours)
}

// reset makes s an empty record of hours, reusing its buffer when it is
// large enough.
func (s *soldHours) reset(hours int) *soldHours {
	if hours <= flatHours {
		buf := s.buf
		if cap(buf) >= hours {
			buf = buf[:hours]
			clear(buf)
		} else {
			buf = make([]int64, hours)
		}
		*s = soldHours{buf: buf, n: hours, flat: true, max: buf}
		return s
	}
	size := 1
	for size < hours {
		size <<= 1
	}
	buf := s.buf
	if cap(buf) >= 6*size {
		buf = buf[:6*size]
		clear(buf)
	} else {
		buf = make([]int64, 6*size) // one allocation for the three arrays
	}
	*s = soldHours{buf: buf, n: hours, max: buf[: 2*size : 2*size], min: buf[2*size : 4*size : 4*size], lazy: buf[4*size : 6*size : 6*size]}
	// Padding leaves beyond the window never count as the minimum.
	for i := size + hours; i < 2*size; i++ {
		s.min[i] = 1 << 62
	}
	for i := size - 1; i >= 1; i-- {
		s.min[i] = min(s.min[2*i], s.min[2*i+1])
	}
	return s
}

const flatHours = 48

// MinAll is the fewest GPUs sold in any hour of the window.
func (s *soldHours) MinAll() int64 {
	if s.flat {
		return s.minAll
	}
	return s.min[1]
}

// Max returns the largest number sold in any hour of [a, b) (hour offsets
// from the window's start); 0 for an empty range.
func (s *soldHours) Max(a, b int) int64 {
	if a < 0 {
		a = 0
	}
	if b > s.n {
		b = s.n
	}
	if a >= b {
		return 0
	}
	if s.flat {
		m := s.max[a]
		for _, x := range s.max[a+1 : b] {
			m = max(m, x)
		}
		return m
	}
	return s.query(1, 0, len(s.max)/2, a, b)
}

func (s *soldHours) query(node, lo, hi, a, b int) int64 {
	if a <= lo && hi <= b {
		return s.max[node]
	}
	mid := (lo + hi) / 2
	var best int64 = -1 << 62
	if a < mid {
		best = s.query(2*node, lo, mid, a, b)
	}
	if b > mid {
		if r := s.query(2*node+1, mid, hi, a, b); r > best {
			best = r
		}
	}
	return best + s.lazy[node]
}

// Add adds q to every hour of [a, b).
func (s *soldHours) Add(a, b int, q int64) {
	if a < 0 {
		a = 0
	}
	if b > s.n {
		b = s.n
	}
	if a >= b {
		return
	}
	if s.flat {
		for h := a; h < b; h++ {
			s.max[h] += q
		}
		m := s.max[0]
		for _, x := range s.max[1:] {
			m = min(m, x)
		}
		s.minAll = m
		return
	}
	s.add(1, 0, len(s.max)/2, a, b, q)
}

func (s *soldHours) add(node, lo, hi, a, b int, q int64) {
	if a <= lo && hi <= b {
		s.max[node] += q
		s.min[node] += q
		s.lazy[node] += q
		return
	}
	mid := (lo + hi) / 2
	if a < mid {
		s.add(2*node, lo, mid, a, b, q)
	}
	if b > mid {
		s.add(2*node+1, mid, hi, a, b, q)
	}
	m := s.max[2*node]
	if s.max[2*node+1] > m {
		m = s.max[2*node+1]
	}
	s.max[node] = m + s.lazy[node]
	s.min[node] = min(s.min[2*node], s.min[2*node+1]) + s.lazy[node]
}
