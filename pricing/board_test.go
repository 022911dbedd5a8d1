package pricing

import (
	"testing"
	"time"

	"github.com/gpux/gpux/engine"
)

var boardT0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func ems(t time.Time) engine.Time { return engine.Time(t.UnixMilli()) }

func fillEvent(market string, at time.Time, q int64, hours int64, price string) engine.Event {
	p, _ := ParsePrice(price)
	start := ems(at.Truncate(time.Hour).Add(time.Hour))
	return engine.Event{Kind: engine.EvFilled, Market: market, Time: ems(at),
		Fill: engine.Fill{Market: market, Quantity: q, Price: engine.Price(p), Start: start, End: start + engine.Time(hours)*engine.Hour}}
}

func TestBoardIndicesFromEvents(t *testing.T) {
	const mkt = "h100-sxm.us-east"
	b := NewBoard(Default(), engine.Catalogue([]string{"h100-sxm"}, []string{"us-east"}))

	// No price at all: every provider's discount is null, never 0.
	r, _ := b.Row(mkt, Live{}, boardT0, nil)
	if r.SpotPrice != nil || r.LastTradePrice != nil || r.PriceBasis != nil {
		t.Fatalf("empty market row %+v", r)
	}
	for _, p := range []string{"aws", "azure", "gcp"} {
		d, ok := r.Discount[p]
		if !ok || d != nil {
			t.Fatalf("discount %s = %v (present %v), want present and null", p, d, ok)
		}
	}

	// 10 GPU-hours at 2.00 and 30 GPU-hours at 3.00: VWAP 2.75; the engine
	// says the last trade is 3.00.
	b.Observe([]engine.Event{
		fillEvent(mkt, boardT0, 5, 2, "2.00"),
		fillEvent(mkt, boardT0.Add(time.Minute), 10, 3, "3.00"),
	})
	last := Live{LastTrade: 30000, HasLast: true, BestAsk: 40000, HasAsk: true}
	r, _ = b.Row(mkt, last, boardT0.Add(2*time.Minute), nil)
	if *r.VWAP24h != "2.75" || *r.LastTradePrice != "3.00" || *r.PriceBasis != "last_trade" {
		t.Fatalf("vwap %v last %v basis %v, want 2.75, 3.00, last_trade", *r.VWAP24h, *r.LastTradePrice, *r.PriceBasis)
	}
	// AWS on-demand H100 is 6.88: 1 − 3.00/6.88 = 0.5640.
	if d := r.Discount["aws"]; d == nil || *d != "0.5640" {
		t.Fatalf("aws discount %v, want 0.5640", d)
	}
	// A spot price takes precedence over the last trade.
	b.Observe([]engine.Event{{Kind: engine.EvSpotPriceChanged, Market: mkt, Time: ems(boardT0.Add(3 * time.Minute)), Price: 26000, HasPrice: true}})
	spot := last
	spot.Spot, spot.HasSpot = 26000, true
	r, _ = b.Row(mkt, spot, boardT0.Add(3*time.Minute), nil)
	if *r.SpotPrice != "2.60" || *r.PriceBasis != "spot" || *r.Discount["aws"] != "0.6221" {
		t.Fatalf("spot %v basis %v aws %v, want 2.60 spot 0.6221", *r.SpotPrice, *r.PriceBasis, *r.Discount["aws"])
	}
	// The best ask is the basis only without spot price and last trade.
	r, _ = b.Row(mkt, Live{BestAsk: 40000, HasAsk: true}, boardT0.Add(3*time.Minute), nil)
	if *r.PriceBasis != "best_ask" || *r.Discount["aws"] != "0.4186" { // 1 − 4.00/6.88
		t.Fatalf("basis %v aws %v, want best_ask 0.4186", *r.PriceBasis, *r.Discount["aws"])
	}
	// After 24 h the trades leave the VWAP; the last trade stays.
	r, _ = b.Row(mkt, last, boardT0.Add(25*time.Hour), nil)
	if r.VWAP24h != nil || *r.LastTradePrice != "3.00" {
		t.Fatalf("after 24 h: vwap %v last %v", r.VWAP24h, r.LastTradePrice)
	}
	// Trade candles: one minute candle per trade minute, one hour candle
	// holding both (volume = GPU-hours).
	if cs := b.Candles(mkt, KindTrades, Hour, time.Time{}, time.Time{}); len(cs) != 1 || cs[0].Open != 20000 || cs[0].Close != 30000 || cs[0].Volume != 40 {
		t.Fatalf("hour candles %+v", cs)
	}
	if cs := b.Candles(mkt, KindTrades, Minute, time.Time{}, time.Time{}); len(cs) != 2 {
		t.Fatalf("minute candles %+v", cs)
	}
	ups := b.TakeCandles()
	if len(ups) == 0 || len(b.TakeCandles()) != 0 {
		t.Fatalf("candle updates %d, then not forgotten", len(ups))
	}
}

func TestEveryMarketHasHyperscalerRows(t *testing.T) {
	b := NewBoard(Default(), engine.Catalogue(engine.DefaultGPUs, engine.DefaultRegions))
	for _, m := range engine.Catalogue(engine.DefaultGPUs, engine.DefaultRegions) {
		r, ok := b.Row(m.ID, Live{}, boardT0, nil)
		if !ok {
			t.Fatalf("no row for %s", m.ID)
		}
		if len(r.Reference) == 0 {
			t.Errorf("%s: no reference rows", m.ID)
		}
		for _, ref := range r.Reference {
			if ref.Source == "" {
				t.Errorf("%s: %s row without a source", m.ID, ref.Provider)
			}
		}
	}
	if rates := Default().EngineRates(); len(rates) == 0 {
		t.Fatal("no engine rates")
	}
}
