package api

import (
	"context"
	"maps"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/pricing"
	"github.com/gpux/gpux/store"
)

// priceBoard is the server's pricing.Board (24 h VWAP and candles per
// market), built lazily from the engine once it is recovered
// and then fed by the engine's events through OnEvents.
type priceBoard struct {
	mu  sync.Mutex
	b   *pricing.Board
	seq uint64 // the engine seq the board was seeded at; older events are in the seed

	// The reference table and staleness limit in force, nil and zero
	// until set (then Config.Rates and pricing.DefaultStaleAfter). They
	// are atomics, not under mu: an admin's table is installed from the
	// sequencer goroutine (see putReferenceRates), which must not wait
	// for mu while a reader holding mu waits for the engine.
	table      atomic.Pointer[pricing.Table]
	staleAfter atomic.Int64
	built      atomic.Pointer[pricing.Board] // b, once built
}

// referenceTable is the reference table in force.
func (s *Server) referenceTable() *pricing.Table {
	if t := s.prices.table.Load(); t != nil {
		return t
	}
	return s.cfg.Rates
}

// installReferenceTable makes t the table /v1/prices and the prices feed
// compare against. Safe on any goroutine, the sequencer's included.
func (s *Server) installReferenceTable(t *pricing.Table) {
	pb := &s.prices
	pb.table.Store(t)
	if b := pb.built.Load(); b != nil {
		b.SetTable(t)
	}
}

// SetRatesStaleAfter sets how old a reference rate may be before
// /v1/prices shows it as stale (gpuxd --rates-stale-after); zero or less
// makes nothing stale. Without a call the limit is
// pricing.DefaultStaleAfter.
func (s *Server) SetRatesStaleAfter(d time.Duration) {
	pb := &s.prices
	if d <= 0 {
		d = -1 // stored 0 means "unset"
	}
	pb.staleAfter.Store(int64(d))
	if b := pb.built.Load(); b != nil {
		b.SetStaleAfter(d)
	}
}

func (pb *priceBoard) staleLimit() time.Duration {
	if d := pb.staleAfter.Load(); d != 0 {
		return time.Duration(d)
	}
	return pricing.DefaultStaleAfter
}

// board returns the price board, seeding it from the engine the first
// time; nil before recovery.
func (s *Server) board() *pricing.Board {
	pb := &s.prices
	pb.mu.Lock()
	defer pb.mu.Unlock()
	s.seedBoardLocked()
	return pb.b
}

func (s *Server) seedBoardLocked() {
	pb := &s.prices
	if pb.b != nil {
		return
	}
	s.read(func(e *engine.Engine) {
		b := pricing.NewBoard(s.referenceTable(), e.Markets())
		b.SetStaleAfter(pb.staleLimit())
		b.Seed(e)
		pb.b, pb.seq = b, e.Seq()
	})
	if pb.b != nil {
		// Publish, then re-read what may have been installed meanwhile:
		// installReferenceTable stores before it loads built, so one of
		// the two sees the other's write.
		pb.built.Store(pb.b)
		pb.b.SetTable(s.referenceTable())
		pb.b.SetStaleAfter(pb.staleLimit())
	}
}

// observePrices folds a batch of events into the board (sequencer
// goroutine, through OnEvents).
func (s *Server) observePrices(evs []engine.Event) {
	pb := &s.prices
	pb.mu.Lock()
	defer pb.mu.Unlock()
	s.seedBoardLocked()
	if pb.b == nil {
		return
	}
	i := sort.Search(len(evs), func(i int) bool { return evs[i].Seq > pb.seq })
	if i < len(evs) {
		pb.b.Observe(evs[i:])
	}
}

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

// Candle kinds as the history endpoint names them, and how they are keyed
// in the read models ("<kind>:<interval>").
func candleKey(kind string, iv pricing.Interval) string { return kind + ":" + iv.String() }

// candleWriter persists the read models that outlive the engine's memory
// off the hub's goroutine: the board's changed candles, every fill (the
// per-market trade log) and every spot price change (the spot history).
// When it falls behind, batches are dropped: the in-memory board still
// serves candles and the next change rewrites a candle; a dropped trade or
// spot point is lost from the history only (the journal keeps the truth).
type candleWriter struct {
	rm   store.ReadModelStore
	in   chan historyBatch
	done chan struct{}
}

type historyBatch struct {
	candles []pricing.CandleUpdate
	trades  map[string][]store.Record
	spots   []spotPoint
}

type spotPoint struct {
	market string
	t      time.Time
	price  string
}

func newCandleWriter(rm store.ReadModelStore) *candleWriter {
	w := &candleWriter{rm: rm, in: make(chan historyBatch, 256), done: make(chan struct{})}
	go w.run()
	return w
}

func (w *candleWriter) offer(ups []pricing.CandleUpdate) {
	if len(ups) > 0 {
		w.send(historyBatch{candles: ups})
	}
}

// offerEvents queues the fills and spot price changes of a batch.
func (w *candleWriter) offerEvents(evs []engine.Event) {
	var hb historyBatch
	for i := range evs {
		ev := &evs[i]
		switch ev.Kind {
		case engine.EvFilled:
			data, err := jsonMarshal(renderTrade(ev.Fill))
			if err != nil {
				continue
			}
			if hb.trades == nil {
				hb.trades = map[string][]store.Record{}
			}
			hb.trades[ev.Market] = append(hb.trades[ev.Market], store.Record{ID: ev.Fill.ID.String(), Time: time.UnixMilli(int64(ev.Time)).UTC(), Data: data})
		case engine.EvSpotPriceChanged:
			p := ""
			if ev.HasPrice {
				p = ev.Price.String()
			}
			hb.spots = append(hb.spots, spotPoint{ev.Market, time.UnixMilli(int64(ev.Time)).UTC(), p})
		}
	}
	if hb.trades != nil || hb.spots != nil {
		w.send(hb)
	}
}

func (w *candleWriter) send(hb historyBatch) {
	select {
	case w.in <- hb:
	default:
	}
}

func (w *candleWriter) close() {
	close(w.in)
	<-w.done
}

func (w *candleWriter) run() {
	defer close(w.done)
	for hb := range w.in {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		type key struct{ market, name string }
		groups := map[key][]store.Candle{}
		for _, u := range hb.candles {
			k := key{u.Market, candleKey(u.Kind, u.Interval)}
			groups[k] = append(groups[k], storeCandle(u.Candle))
		}
		for k, cs := range groups {
			_ = w.rm.PutCandles(ctx, k.market, k.name, cs) // a lost write is redone by the next change
		}
		for _, m := range slices.Sorted(maps.Keys(hb.trades)) {
			_ = w.rm.AddTrades(ctx, m, hb.trades[m])
		}
		for _, sp := range hb.spots {
			_ = w.rm.AddSpotPrice(ctx, sp.market, sp.t, sp.price)
		}
		cancel()
	}
}

func storeCandle(c pricing.Candle) store.Candle {
	return store.Candle{
		Start: c.Start, Open: pricing.FormatPrice(c.Open), High: pricing.FormatPrice(c.High),
		Low: pricing.FormatPrice(c.Low), Close: pricing.FormatPrice(c.Close), Volume: strconv.FormatInt(c.Volume, 10),
	}
}

func apiCandle(c pricing.Candle) candleJSON {
	return candleJSON{
		Start: c.Start.UTC().Format(time.RFC3339), Open: pricing.FormatPrice(c.Open), High: pricing.FormatPrice(c.High),
		Low: pricing.FormatPrice(c.Low), Close: pricing.FormatPrice(c.Close), Volume: c.Volume,
	}
}
