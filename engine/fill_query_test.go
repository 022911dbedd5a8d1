package engine

import "testing"

// TestBestAsk: the lowest reserve with GPUs free from now on, skipping a
// cheaper listing that is sold out and an unknown market; it agrees with
// Book's first ask.
func TestBestAsk(t *testing.T) {
	h := newHarness(t, Config{})
	const m = "h100-sxm.us-east"
	if _, ok := h.e.BestAsk(m); ok {
		t.Errorf("empty market: got an ask")
	}
	owner := h.account("o", RoleOwner, "")
	buyer := h.account("b", RoleBuyer, "10000")
	h.listing(owner, m, 1, h.hour(0), h.hour(10), "1.50", "")
	h.listing(owner, m, 2, h.hour(0), h.hour(10), "2.25", "")
	check := func(want string) {
		t.Helper()
		p, ok := h.e.BestAsk(m)
		book, _ := h.e.Book(m)
		if !ok || p != Price(usd(t, want)) || len(book.Asks) == 0 || book.Asks[0].Price != p {
			t.Errorf("best ask: got %s %v, want %s (book %+v)", p, ok, want, book.Asks)
		}
	}
	check("1.50")
	// Sell the 1.50 listing's every remaining hour: the ask moves up.
	h.reserved(buyer, m, 1, 1, h.hour(1), h.hour(10), "1.50")
	h.advance(Hour) // hour 0 is over: the listing has no free hour left
	check("2.25")
	if _, ok := h.e.BestAsk("nope.us-east"); ok {
		t.Errorf("unknown market: got an ask")
	}
}
