package api

import (
	"time"

	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/pricing"
)

// referenceTable is the reference table in force.
func (s *Server) referenceTable() *pricing.Table { return s.prices.Table() }

// installReferenceTable makes t the table /v1/prices and the prices feed
// compare against. Safe on any goroutine, the sequencer's included.
func (s *Server) installReferenceTable(t *pricing.Table) { s.prices.SetTable(t) }

// ReferenceTableHash is the hash of the reference table in force.
func (s *Server) ReferenceTableHash() string { return s.referenceTable().Hash() }

// SetReferenceTable puts t in force for /v1/prices and the feeds (gpuxd
// uses it at start for the table the journal kept).
func (s *Server) SetReferenceTable(t *pricing.Table) { s.installReferenceTable(t) }

// SetRatesStaleAfter sets how old a reference rate may be before
// /v1/prices shows it as stale (gpuxd --rates-stale-after); zero or less
// makes nothing stale. Without a call the limit is
// pricing.DefaultStaleAfter.
func (s *Server) SetRatesStaleAfter(d time.Duration) { s.prices.SetStaleAfter(d) }

// board returns the read side's price board; nil before recovery.
func (s *Server) board() *pricing.Board { return s.prices.Board() }

// renderPrices builds GET /v1/prices (and the prices channel) from the
// engine's books and the board.
func (s *Server) renderPrices() []pricing.Row {
	b := s.board()
	if b == nil {
		return []pricing.Row{}
	}
	type book struct {
		id     string
		spot   engine.SpotView
		last   []engine.Fill
		ask    engine.Price
		hasAsk bool
		bids   []pricing.Order
		asks   []pricing.Order
	}
	var books []book
	var engineNow time.Time
	s.read(func(e *engine.Engine) {
		// Staleness is judged at the engine's clock (the time of the last
		// sequenced command or tick), like everything else in the row.
		engineNow = time.UnixMilli(int64(e.Now())).UTC()
		for _, m := range e.Markets() {
			bv, _ := e.Book(m.ID)
			bk := book{id: m.ID, spot: bv.Spot, last: e.Trades(m.ID, 1)}
			for _, l := range bv.Asks {
				if !bk.hasAsk || l.Price < bk.ask {
					bk.ask, bk.hasAsk = l.Price, true
				}
				bk.asks = append(bk.asks, order(l))
			}
			for _, l := range bv.Bids {
				bk.bids = append(bk.bids, order(l))
			}
			books = append(books, bk)
		}
	})
	now := s.cfg.Now()
	rows := make([]pricing.Row, 0, len(books))
	for _, bk := range books {
		// Spot price and last trade come from the engine, read with the
		// book: the board's event-fed copies may trail it by a batch.
		live := pricing.Live{Now: engineNow, Spot: int64(bk.spot.Price), HasSpot: bk.spot.HasPrice, BestAsk: int64(bk.ask), HasAsk: bk.hasAsk}
		if len(bk.last) > 0 {
			live.LastTrade, live.HasLast = int64(bk.last[0].Price), true
		}
		if r, ok := b.Row(bk.id, live, now, pricing.ForwardCurve(now, bk.bids, bk.asks)); ok {
			r.SpotSupply, r.SpotAllocated, r.SpotWaiting = bk.spot.Supply, bk.spot.Allocated, bk.spot.Waiting
			rows = append(rows, r)
		}
	}
	return rows
}

func order(l engine.Level) pricing.Order {
	return pricing.Order{Price: int64(l.Price), Quantity: l.Quantity, Start: time.UnixMilli(int64(l.Start)).UTC(), End: time.UnixMilli(int64(l.End)).UTC()}
}
