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

// from visits listings from l (nil: none) towards the oldest, those with
// Seq < before (0: all), until fn returns false, and returns how many it
// looked at. Starting at the tail walks past every newer listing; a page
// that starts just below its cursor listing walks only what it lists.
func (s *listingList) from(l *Listing, before uint64, fn func(*Listing) bool) (visited int) {
	for l != nil {
		prev := l.links[s.which].prev
		visited++
		if (before == 0 || l.Seq < before) && !fn(l) {
			break
		}
		l = prev
	}
	return visited
}

// below is the listing just older than l on the list, nil when l is the
// oldest or not on it.
func (s *listingList) below(l *Listing) *Listing { return l.links[s.which].prev }

// has reports whether l is on the list.
func (s *listingList) has(l *Listing) bool { return l.links[s.which].in }
