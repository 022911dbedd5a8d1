package engine

import "sort"

// seqList holds live objects in sequence order (oldest first) with O(log n)
// removal: a removed entry becomes a tombstone, and the list is compacted
// once tombstones outnumber live entries, so its size stays within twice
// the live count and order is never disturbed.
type seqList[T any] struct {
	s    []seqEntry[T]
	dead int
}

type seqEntry[T any] struct {
	seq uint64
	v   *T // nil: removed
}

// add appends v; seq must be larger than every seq added before.
func (l *seqList[T]) add(seq uint64, v *T) { l.s = append(l.s, seqEntry[T]{seq, v}) }

// remove drops the entry with seq, if present.
func (l *seqList[T]) remove(seq uint64) {
	i := sort.Search(len(l.s), func(j int) bool { return l.s[j].seq >= seq })
	if i == len(l.s) || l.s[i].seq != seq || l.s[i].v == nil {
		return
	}
	l.s[i].v = nil
	l.dead++
	if l.dead > 32 && l.dead*2 > len(l.s) {
		live := l.s[:0]
		for _, x := range l.s {
			if x.v != nil {
				live = append(live, x)
			}
		}
		clear(l.s[len(live):])
		l.s = live
		l.dead = 0
	}
}

// len is the number of live entries.
func (l *seqList[T]) len() int { return len(l.s) - l.dead }

// all returns the live entries, oldest first.
func (l *seqList[T]) all() []*T {
	out := make([]*T, 0, l.len())
	for _, x := range l.s {
		if x.v != nil {
			out = append(out, x.v)
		}
	}
	return out
}

// before visits live entries with seq < before (0: all), newest first,
// until fn returns false.
func (l *seqList[T]) before(before uint64, fn func(*T) bool) {
	i := len(l.s)
	if before != 0 {
		i = sort.Search(len(l.s), func(j int) bool { return l.s[j].seq >= before })
	}
	for i--; i >= 0; i-- {
		if v := l.s[i].v; v != nil && !fn(v) {
			return
		}
	}
}
