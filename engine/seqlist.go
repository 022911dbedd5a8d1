package engine

// listingList holds active listings in sequence order (oldest first),
// linked through the listings themselves (Listing.links[which]), so adding
// and removing are O(1) and allocate nothing. A listing is on three such
// lists: the engine's, its owner's and its market's.
type listingList struct {
	head, tail *Listing
	n          int
	which      uint8
}

type listingLink struct {
	prev, next *Listing
	in         bool
}

const (
	inEngine = iota
	inAccount
	inMarket
)

// add appends l; its Seq must be larger than every Seq added before.
func (s *listingList) add(l *Listing) {
	k := &l.links[s.which]
	if k.in {
		return
	}
	*k = listingLink{prev: s.tail, in: true}
	if s.tail != nil {
		s.tail.links[s.which].next = l
	} else {
		s.head = l
	}
	s.tail = l
	s.n++
}

// remove drops l, if it is on the list.
func (s *listingList) remove(l *Listing) {
	k := &l.links[s.which]
	if !k.in {
		return
	}
	if k.prev != nil {
		k.prev.links[s.which].next = k.next
	} else {
		s.head = k.next
	}
	if k.next != nil {
		k.next.links[s.which].prev = k.prev
	} else {
		s.tail = k.prev
	}
	*k = listingLink{}
	s.n--
}

// len is the number of listings on the list.
func (s *listingList) len() int { return s.n }

// all returns the listings, oldest first.
func (s *listingList) all() []*Listing {
	out := make([]*Listing, 0, s.n)
	for l := s.head; l != nil; l = l.links[s.which].next {
		out = append(out, l)
	}
	return out
}

// before visits listings with Seq < before (0: all), newest first, until
// fn returns false. It starts from the newest (see accountBefore).
func (s *listingList) before(before uint64, fn func(*Listing) bool) {
	for l := s.tail; l != nil; {
		prev := l.links[s.which].prev
		if (before == 0 || l.Seq < before) && !fn(l) {
			return
		}
		l = prev
	}
}
