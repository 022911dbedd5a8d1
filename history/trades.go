package history

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"time"

	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/pricing"
	"github.com/gpux/gpux/store"
)

// Trade is one fill as the trade log keeps it and the API shows it
// (GET /v1/markets/{market}/trades, the trades:<market> channel).
type Trade struct {
	ID        string `json:"id"`
	BidID     string `json:"bid_id"`
	ListingID string `json:"listing_id"`
	Market    string `json:"market"`
	Quantity  int64  `json:"quantity"`
	Price     string `json:"price"`
	Start     string `json:"start"`
	End       string `json:"end"`
	Time      string `json:"time"`
}

// TradeOf renders a fill.
func TradeOf(f engine.Fill) Trade {
	return Trade{
		ID: f.ID.String(), BidID: f.BidID.String(), ListingID: f.ListingID.String(), Market: f.Market,
		Quantity: f.Quantity, Price: f.Price.String(), Start: rfc3339(f.Start), End: rfc3339(f.End), Time: rfc3339(f.Time),
	}
}

func rfc3339(t engine.Time) string { return time.UnixMilli(int64(t)).UTC().Format(time.RFC3339Nano) }

// writerQueue bounds the batches waiting for the writer.
const writerQueue = 256

// writer persists the price history off the sequencer's goroutine: the
// board's changed candles, every fill and every spot price change. When
// it falls behind, batches are dropped: the in-memory board still serves
// candles and keeps every changed candle until the next write takes it; a
// dropped trade or spot point is lost from the history only (the journal
// keeps the truth).
type writer struct {
	rm   store.ReadModelStore
	p    *Prices // its board's changed candles are taken with each write
	in   chan []engine.Event
	done chan struct{}
}

func newWriter(rm store.ReadModelStore, p *Prices) *writer {
	w := &writer{rm: rm, p: p, in: make(chan []engine.Event, writerQueue), done: make(chan struct{})}
	go w.run()
	return w
}

// offer queues a copy of the batch's fills and spot price changes (the
// sequencer reuses its slice); it never blocks. Only these events change
// candles, so a batch without them has nothing to write.
func (w *writer) offer(evs []engine.Event) {
	var keep []engine.Event
	for i := range evs {
		if k := evs[i].Kind; k == engine.EvFilled || k == engine.EvSpotPriceChanged {
			keep = append(keep, evs[i])
		}
	}
	if len(keep) == 0 {
		return
	}
	select {
	case w.in <- keep:
	default:
	}
}

// close writes what is queued and stops; no offer may follow.
func (w *writer) close() {
	close(w.in)
	<-w.done
}

func (w *writer) run() {
	defer close(w.done)
	for evs := range w.in {
		// Batches queued meanwhile go out in this write.
	drain:
		for len(evs) < 64<<10 {
			select {
			case more, ok := <-w.in:
				if !ok {
					break drain
				}
				evs = append(evs, more...)
			default:
				break drain
			}
		}
		w.write(evs)
	}
}

func (w *writer) write(evs []engine.Event) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var candles []pricing.CandleUpdate
	if b := w.p.built.Load(); b != nil {
		candles = b.TakeCandles()
	}
	type key struct{ market, name string }
	groups := map[key][]store.Candle{}
	for _, u := range candles {
		k := key{u.Market, candleKey(u.Kind, u.Interval)}
		groups[k] = append(groups[k], toStoreCandle(u.Candle))
	}
	for k, cs := range groups {
		_ = w.rm.PutCandles(ctx, k.market, k.name, cs) // a lost write is redone by the next change
	}
	trades := map[string][]store.Record{}
	for i := range evs {
		ev := &evs[i]
		switch ev.Kind {
		case engine.EvFilled:
			data, err := json.Marshal(TradeOf(*ev.Fill))
			if err != nil {
				continue
			}
			trades[ev.Market] = append(trades[ev.Market], store.Record{ID: ev.Fill.ID.String(), Time: time.UnixMilli(int64(ev.Time)).UTC(), Data: data})
		case engine.EvSpotPriceChanged:
			p := ""
			if ev.HasPrice {
				p = ev.Price.String()
			}
			_ = w.rm.AddSpotPrice(ctx, ev.Market, time.UnixMilli(int64(ev.Time)).UTC(), p)
		}
	}
	for _, m := range slices.Sorted(maps.Keys(trades)) {
		_ = w.rm.AddTrades(ctx, m, trades[m])
	}
}
