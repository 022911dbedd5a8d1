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
		Fill: &engine.Fill{Market: market, Quantity: q, Price: engine.Price(p), Start: start, End: start + engine.Time(hours)*engine.Hour}}
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

// A market's row compares it with rows of its own region: those come first,
// the on-demand discount uses one of them where the provider has one, and
// discount_basis says which row each discount used.
func TestRowRegionalBasis(t *testing.T) {
	tab := tableOf(t,
		row{"us-east-1", "od-us", "8.00", "2026-07-20", ""},
		row{"eu-west-2", "od-eu", "10.00", "2026-07-01", ""},
		row{"us-east-1", "old-eu", "20.00", "2025-01-01", PriceOnDemandSuperseded},
		row{"eu-west-2", "cb-eu", "5.00", "2026-07-22", PriceCapacityBlock},
		row{"us-east-1", "cb-us", "4.00", "2026-07-22", PriceCapacityBlock},
		row{"us-east4", "spot-us", "2.00", "2026-07-30", PriceSpot},
	)
	b := NewBoard(tab, engine.Catalogue([]string{"h100-sxm"}, []string{"us-east", "eu-west"}))
	now := time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC)
	live := Live{Spot: 30000, HasSpot: true}

	r, _ := b.Row("h100-sxm.eu-west", live, now, nil)
	var order []string
	for _, ref := range r.Reference {
		order = append(order, ref.InstanceType)
	}
	// eu-west-2 rows first (capacity block, on-demand: table order), then the rest.
	if want := []string{"cb-eu", "od-eu", "cb-us", "od-us", "old-eu", "spot-us"}; !equalStrings(order, want) {
		t.Errorf("eu-west reference order %v, want %v", order, want)
	}
	for _, ref := range r.Reference {
		if ref.SameRegion != (ref.Region == "eu-west-2") {
			t.Errorf("%s in %s: same_region %v", ref.InstanceType, ref.Region, ref.SameRegion)
		}
	}
	x := r.DiscountBasis["x"]
	if x.OnDemand == nil || x.OnDemand.InstanceType != "od-eu" || !x.OnDemand.SameRegion {
		t.Fatalf("eu-west on-demand basis %+v, want od-eu in region", x.OnDemand)
	}
	if d := r.Discount["x"]; d == nil || *d != "0.7000" { // 1 − 3.00/10.00
		t.Errorf("eu-west discount_vs_reference %v, want 0.7000", d)
	}
	if x.CapacityBlock == nil || x.CapacityBlock.InstanceType != "cb-eu" || *r.DiscountCapacityBlock["x"] != "0.4000" {
		t.Errorf("eu-west capacity block basis %+v discount %v, want cb-eu 0.4000", x.CapacityBlock, r.DiscountCapacityBlock["x"])
	}
	// The only spot row is in another region: used, and says so.
	if x.Spot == nil || x.Spot.InstanceType != "spot-us" || x.Spot.SameRegion || *r.DiscountSpot["x"] != "-0.5000" {
		t.Errorf("eu-west spot basis %+v discount %v, want spot-us out of region, -0.5000", x.Spot, r.DiscountSpot["x"])
	}

	r, _ = b.Row("h100-sxm.us-east", live, now, nil)
	if x := r.DiscountBasis["x"]; x.OnDemand.InstanceType != "od-us" || *r.Discount["x"] != "0.6250" || x.CapacityBlock.InstanceType != "cb-us" {
		t.Errorf("us-east basis %+v discount %v, want od-us 0.6250 and cb-us", x, *r.Discount["x"])
	}
	if r.Reference[0].Region != "us-east-1" {
		t.Errorf("us-east first reference row in %s", r.Reference[0].Region)
	}
}

// Staleness is judged at Live.Now (the engine's clock in the API) against
// the board's limit.
func TestRowStale(t *testing.T) {
	tab := tableOf(t, row{"us-east-1", "a", "8.00", "2026-07-20", ""})
	b := NewBoard(tab, engine.Catalogue([]string{"h100-sxm"}, []string{"us-east"}))
	asOf := time.Date(2026, 7, 20, 0, 0, 0, 0, time.UTC)
	stale := func(now time.Time) bool {
		t.Helper()
		r, _ := b.Row("h100-sxm.us-east", Live{Now: now}, boardT0, nil)
		if r.Reference[0].Stale != r.DiscountBasis["x"].OnDemand.Stale {
			t.Fatal("reference row and discount basis disagree on stale")
		}
		return r.Reference[0].Stale
	}
	if stale(asOf.Add(DefaultStaleAfter)) || !stale(asOf.Add(DefaultStaleAfter+time.Millisecond)) {
		t.Errorf("default limit: stale at exactly 120 days or not just after")
	}
	b.SetStaleAfter(24 * time.Hour)
	if !stale(asOf.Add(25 * time.Hour)) {
		t.Error("limit 24 h: not stale after 25 h")
	}
	// The board's own clock (from events) serves ReferenceRows.
	b.Observe([]engine.Event{{Kind: engine.EvHourStarted, Time: ems(asOf.Add(2 * time.Hour))}})
	if refs := b.ReferenceRows("h100-sxm"); refs[0].Stale {
		t.Error("ReferenceRows stale 2 h after as_of with a 24 h limit")
	}
	b.Observe([]engine.Event{{Kind: engine.EvHourStarted, Time: ems(asOf.Add(48 * time.Hour))}})
	if refs := b.ReferenceRows("h100-sxm"); !refs[0].Stale {
		t.Error("ReferenceRows not stale 48 h after as_of with a 24 h limit")
	}
}

func TestBoardSetTable(t *testing.T) {
	b := NewBoard(tableOf(t, row{"us-east-1", "a", "8.00", "2026-07-20", ""}), engine.Catalogue([]string{"h100-sxm"}, []string{"us-east"}))
	b.SetTable(tableOf(t, row{"us-east-1", "b", "4.00", "2026-11-20", ""}))
	r, _ := b.Row("h100-sxm.us-east", Live{Spot: 20000, HasSpot: true}, boardT0, nil)
	if len(r.Reference) != 1 || r.Reference[0].InstanceType != "b" || *r.Discount["x"] != "0.5000" {
		t.Fatalf("after SetTable: %+v discount %v, want row b at 0.5000", r.Reference, *r.Discount["x"])
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
