package engine

import (
	"sync"
	"testing"
)

// TestConcurrentQueries runs every read query from several goroutines at
// once over one engine, as the API does under the sequencer's read lock:
// under -race it fails if a query writes anything (a scratch buffer kept
// in the engine, a walk stack kept in a tree).
func TestConcurrentQueries(t *testing.T) {
	s := newSteadyMarket(t)
	for range 3000 {
		s.step()
	}
	e := s.e
	h := e.Now().HourStart()
	var bid, listing ID
	if len(s.bids) > 0 {
		bid = s.bids[0]
	}
	if len(s.lists) > 0 {
		listing = s.lists[0]
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				e.Quote(mkt, 4, 1, h+Hour, h+3*Hour, 0)
				e.QuoteBlock(mkt, 2, 1, h+Hour, h+12*Hour, 2, 0)
				e.Book(mkt)
				e.BestAsk(mkt)
				e.Spot(mkt)
				e.Trades(mkt, 50)
				e.Markets()
				e.Totals()
				e.Bid(bid)
				e.Listing(listing)
				e.BidsOf(s.buyer, "", 20, ID{})
				e.BidsOf(s.buyer, "open", 20, bid)
				e.ListingsOf(s.owner, "", 20, ID{})
				e.Account(s.buyer)
				e.ReferenceRates()
			}
		}()
	}
	wg.Wait()
}
