package pricing

import (
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gpux/gpux/engine"
)

// Board holds every market's price indices, built from engine events: a
// 24-hour VWAP of reserved trades weighted by GPU-hours, and 1m/1h/1d
// candles of spot prices and of reserved trades. The current spot price and
// last trade are the engine's; callers read them and pass them in (Live).
// It is safe for concurrent use: the sequencer feeds it, handlers read it.
type Board struct {
	table      atomic.Pointer[Table]
	staleAfter atomic.Int64 // a time.Duration
	clock      atomic.Int64 // engine time (Unix ms) of the newest event seen, for ReferenceRows

	mu      sync.Mutex
	markets map[string]*marketIndex
	order   []engine.Market
	candles []CandleUpdate // candles changed since the last TakeCandles
}

// Candle kinds.
const (
	KindSpot   = "spot"
	KindTrades = "trades"
)

// CandleUpdate is a candle that changed, to be persisted.
type CandleUpdate struct {
	Market   string
	Kind     string // KindSpot or KindTrades
	Interval Interval
	Candle   Candle
}

type marketIndex struct {
	engine.Market
	vwap   *VWAP
	spotC  *CandleSeries
	tradeC *CandleSeries
}

// NewBoard makes an empty board for the markets, comparing against table.
func NewBoard(table *Table, markets []engine.Market) *Board {
	b := &Board{markets: map[string]*marketIndex{}, order: markets}
	b.table.Store(table)
	b.staleAfter.Store(int64(DefaultStaleAfter))
	for _, m := range markets {
		b.markets[m.ID] = &marketIndex{Market: m, vwap: NewVWAP(24 * time.Hour), spotC: NewCandleSeries(0), tradeC: NewCandleSeries(0)}
	}
	return b
}

// Table is the reference table the board compares against.
func (b *Board) Table() *Table { return b.table.Load() }

// SetTable replaces the reference table (an operator's run-time update);
// rows built after it returns use t. t must not be nil.
func (b *Board) SetTable(t *Table) { b.table.Store(t) }

// SetStaleAfter sets how old a rate may be before rows show it as stale
// (default DefaultStaleAfter; zero or less: never stale).
func (b *Board) SetStaleAfter(d time.Duration) { b.staleAfter.Store(int64(d)) }

func engineTime(t engine.Time) time.Time { return time.UnixMilli(int64(t)).UTC() }

// Seed loads what the engine already knows (after a recovery): each
// market's recent fills, oldest first, into its VWAP.
func (b *Board) Seed(e *engine.Engine) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tick(e.Now())
	for _, m := range b.order {
		mi := b.markets[m.ID]
		fills := e.Trades(m.ID, 1<<30)
		for i := len(fills) - 1; i >= 0; i-- {
			f := fills[i]
			mi.vwap.Add(Trade{Time: engineTime(f.Time), Price: int64(f.Price), Quantity: f.Quantity, Hours: int64((f.End - f.Start) / engine.Hour)})
		}
	}
}

// Observe folds a batch of engine events into the indices.
func (b *Board) Observe(evs []engine.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range evs {
		ev := &evs[i]
		b.tick(ev.Time)
		mi := b.markets[ev.Market]
		if mi == nil {
			continue
		}
		t := engineTime(ev.Time)
		switch ev.Kind {
		case engine.EvSpotPriceChanged:
			if ev.HasPrice {
				b.observe(mi, KindSpot, mi.spotC, t, int64(ev.Price), 0)
			}
		case engine.EvFilled:
			f := ev.Fill
			tr := Trade{Time: t, Price: int64(f.Price), Quantity: f.Quantity, Hours: int64((f.End - f.Start) / engine.Hour)}
			mi.vwap.Add(tr)
			gh, _ := tr.GPUHours()
			b.observe(mi, KindTrades, mi.tradeC, t, int64(f.Price), gh)
		}
	}
}

// tick moves the board's clock forward to t.
func (b *Board) tick(t engine.Time) {
	if int64(t) > b.clock.Load() {
		b.clock.Store(int64(t))
	}
}

func (b *Board) observe(mi *marketIndex, kind string, cs *CandleSeries, t time.Time, price, volume int64) {
	if !cs.Observe(t, price, volume) {
		return
	}
	for _, iv := range Intervals() {
		if c, ok := cs.Last(iv); ok {
			b.candles = append(b.candles, CandleUpdate{Market: mi.ID, Kind: kind, Interval: iv, Candle: c})
		}
	}
}

// TakeCandles returns the candles changed since the last call, the newest
// state of each (market, kind, interval, start) once, and forgets them.
func (b *Board) TakeCandles() []CandleUpdate {
	b.mu.Lock()
	defer b.mu.Unlock()
	type key struct {
		m, k string
		iv   Interval
		s    int64
	}
	last := map[key]int{}
	for i, u := range b.candles {
		last[key{u.Market, u.Kind, u.Interval, u.Candle.Start.UnixMilli()}] = i
	}
	idx := slices.Sorted(maps.Values(last))
	out := make([]CandleUpdate, len(idx))
	for i, j := range idx {
		out[i] = b.candles[j]
	}
	b.candles = b.candles[:0]
	return out
}

// Candles returns a market's in-memory candles of one kind and interval
// within [from, to) (zero times: unbounded), oldest first.
func (b *Board) Candles(market, kind string, iv Interval, from, to time.Time) []Candle {
	b.mu.Lock()
	defer b.mu.Unlock()
	mi := b.markets[market]
	if mi == nil {
		return nil
	}
	cs := mi.spotC
	if kind == KindTrades {
		cs = mi.tradeC
	}
	var out []Candle
	for _, c := range cs.Candles(iv) {
		if (!from.IsZero() && c.Start.Before(from)) || (!to.IsZero() && !c.Start.Before(to)) {
			continue
		}
		out = append(out, c)
	}
	return out
}

// Reference is one reference row as the API shows it.
type Reference struct {
	Provider      string  `json:"provider"`
	InstanceType  string  `json:"instance_type"`
	USDPerGPUHour string  `json:"usd_per_gpu_hour"`
	PriceType     string  `json:"price_type"`
	AsOf          *string `json:"as_of"` // null when the source is undated
	Source        string  `json:"source"`
	Region        string  `json:"region"` // the provider's own region name
	Confidence    string  `json:"confidence"`
	// SameRegion: the provider region maps to the market's region (see
	// MarketRegion); always false where no market region applies (quotes).
	SameRegion bool `json:"same_region"`
	// Stale: older than the staleness limit when the row was built, or
	// undated.
	Stale bool `json:"stale"`
}

// Basis names the rows a provider's discounts were computed against, one
// per price type; a price type without a row for the GPU is absent.
type Basis struct {
	OnDemand      *Reference `json:"on_demand,omitempty"`
	Spot          *Reference `json:"spot,omitempty"`
	CapacityBlock *Reference `json:"capacity_block,omitempty"`
}

// Row is one market's entry of GET /v1/prices.
type Row struct {
	Market         string  `json:"market"`
	GPU            string  `json:"gpu"`
	Region         string  `json:"region"`
	SpotPrice      *string `json:"spot_price"`
	LastTradePrice *string `json:"last_trade_price"`
	VWAP24h        *string `json:"vwap_24h"`
	BestAsk        *string `json:"best_ask"`
	SpotSupply     int64   `json:"spot_supply"`
	SpotAllocated  int64   `json:"spot_allocated"`
	SpotWaiting    int64   `json:"spot_waiting"`
	PriceBasis     *string `json:"price_basis"` // which price the discounts use: spot, last_trade or best_ask
	// Reference lists every row of the GPU, the market's own region's
	// rows first.
	Reference []Reference `json:"reference"`
	// Discount is against each provider's chosen on-demand row, Spot and
	// CapacityBlock against its chosen spot and capacity-block rows;
	// DiscountBasis names each chosen row. A provider without a row of the
	// price type is absent from that map; with no market price, present
	// providers map to null.
	Discount              map[string]*string `json:"discount_vs_reference"`
	DiscountSpot          map[string]*string `json:"discount_vs_spot"`
	DiscountCapacityBlock map[string]*string `json:"discount_vs_capacity_block"`
	DiscountBasis         map[string]Basis   `json:"discount_basis"`
	ForwardCurve          []CurvePoint       `json:"forward_curve,omitempty"`
}

func priceStr(has bool, ticks int64) *string {
	if !has {
		return nil
	}
	s := FormatPrice(ticks)
	return &s
}

// reference renders one rate for a market of marketRegion ("" for none),
// judging staleness at now.
func (b *Board) reference(r ReferenceRate, marketRegion string, now time.Time) Reference {
	ref := Reference{Provider: r.Provider, InstanceType: r.InstanceType, USDPerGPUHour: FormatPrice(r.USDPerGPUHour),
		PriceType: r.PriceType, Source: r.Source, Region: r.Region, Confidence: r.Confidence,
		SameRegion: marketRegion != "" && MarketRegion(r.Region) == marketRegion,
		Stale:      r.Stale(now, time.Duration(b.staleAfter.Load()))}
	if r.AsOf != AsOfUndated {
		asOf := r.AsOf
		ref.AsOf = &asOf
	}
	return ref
}

// ReferenceRows lists a GPU's reference rows (every price type, labelled)
// in the table's order, nil for a GPU without rows. Staleness is judged at
// the engine time of the newest event the board has seen (Seed, Observe).
func (b *Board) ReferenceRows(gpu string) []Reference {
	return b.RegionalReferenceRows(gpu, "", time.UnixMilli(b.clock.Load()).UTC())
}

// RegionalReferenceRows lists a GPU's reference rows for a market of
// marketRegion: the rows whose provider region maps to it first, then the
// rest, each group in the table's order (provider, price type, region,
// instance type).
func (b *Board) RegionalReferenceRows(gpu, marketRegion string, now time.Time) []Reference {
	var out []Reference
	for _, r := range b.table.Load().ForGPU(gpu) {
		out = append(out, b.reference(r, marketRegion, now))
	}
	slices.SortStableFunc(out, func(x, y Reference) int {
		switch {
		case x.SameRegion == y.SameRegion:
			return 0
		case x.SameRegion:
			return -1
		}
		return 1
	})
	return out
}

// Discounts compares a price with each provider's on-demand rate for the
// GPU (Table.OnDemand, no market region): 1 − price / rate. A provider
// without an on-demand row is absent; with no price every present
// provider maps to null.
func (b *Board) Discounts(gpu string, price int64, has bool) map[string]*string {
	d, _ := b.discounts(b.table.Load(), gpu, PriceOnDemand, "", price, has, time.Time{})
	return d
}

// discounts compares a price with each provider's chosen row of priceType
// for a market of marketRegion, and returns the rows it used.
func (b *Board) discounts(t *Table, gpu, priceType, marketRegion string, price int64, has bool, now time.Time) (map[string]*string, map[string]Reference) {
	out, used := map[string]*string{}, map[string]Reference{}
	for _, p := range t.Providers(gpu) {
		r, ok := t.Choose(gpu, p, priceType, marketRegion)
		if !ok {
			continue
		}
		used[p] = b.reference(r, marketRegion, now)
		if d, ok := Discount(price, has, r.USDPerGPUHour); ok {
			out[p] = &d
		} else {
			out[p] = nil
		}
	}
	return out, used
}

// Live is what a caller read from the engine at one instant. It wins over
// the board's event-fed copies, which may trail the engine by a batch.
type Live struct {
	// Now is the time staleness is judged at; zero means the time passed
	// to Row. The API passes the engine's clock (see docs/PRICES.md).
	Now       time.Time
	Spot      int64
	HasSpot   bool
	LastTrade int64
	HasLast   bool
	BestAsk   int64 // the cheapest unsold reserved capacity
	HasAsk    bool
}

// Row builds a market's prices entry from live engine figures, the
// board's 24-hour VWAP and the reference table; curve may be nil.
func (b *Board) Row(market string, live Live, now time.Time, curve []CurvePoint) (Row, bool) {
	b.mu.Lock()
	mi := b.markets[market]
	if mi == nil {
		b.mu.Unlock()
		return Row{}, false
	}
	vwap, hasVWAP := mi.vwap.Value(now)
	b.mu.Unlock()

	ratesNow := live.Now
	if ratesNow.IsZero() {
		ratesNow = now
	}
	r := Row{Market: mi.ID, GPU: mi.GPU, Region: mi.Region, SpotPrice: priceStr(live.HasSpot, live.Spot),
		LastTradePrice: priceStr(live.HasLast, live.LastTrade), VWAP24h: priceStr(hasVWAP, vwap), BestAsk: priceStr(live.HasAsk, live.BestAsk),
		Reference: b.RegionalReferenceRows(mi.GPU, mi.Region, ratesNow), ForwardCurve: curve}
	basis, price, has := "", int64(0), false
	switch {
	case live.HasSpot:
		basis, price, has = "spot", live.Spot, true
	case live.HasLast:
		basis, price, has = "last_trade", live.LastTrade, true
	case live.HasAsk:
		basis, price, has = "best_ask", live.BestAsk, true
	}
	if has {
		r.PriceBasis = &basis
	}
	// One table for the whole row, even if an operator replaces it now.
	t := b.table.Load()
	var od, spot, cb map[string]Reference
	r.Discount, od = b.discounts(t, mi.GPU, PriceOnDemand, mi.Region, price, has, ratesNow)
	r.DiscountSpot, spot = b.discounts(t, mi.GPU, PriceSpot, mi.Region, price, has, ratesNow)
	r.DiscountCapacityBlock, cb = b.discounts(t, mi.GPU, PriceCapacityBlock, mi.Region, price, has, ratesNow)
	r.DiscountBasis = map[string]Basis{}
	for _, p := range t.Providers(mi.GPU) {
		var bs Basis
		if ref, ok := od[p]; ok {
			bs.OnDemand = &ref
		}
		if ref, ok := spot[p]; ok {
			bs.Spot = &ref
		}
		if ref, ok := cb[p]; ok {
			bs.CapacityBlock = &ref
		}
		if bs != (Basis{}) {
			r.DiscountBasis[p] = bs
		}
	}
	if r.Reference == nil {
		r.Reference = []Reference{}
	}
	return r, true
}

// EngineRates turns the table's on-demand rates into the engine's reference
// rates (one per GPU × provider), which pegs resolve against.
func (t *Table) EngineRates() []engine.ReferenceRate {
	var out []engine.ReferenceRate
	for _, gpu := range GPUs() {
		for _, p := range t.Providers(gpu) {
			if r, ok := t.OnDemand(gpu, p); ok {
				out = append(out, engine.ReferenceRate{GPU: gpu, Provider: p, Price: engine.Price(r.USDPerGPUHour)})
			}
		}
	}
	slices.SortFunc(out, func(a, b engine.ReferenceRate) int {
		if a.GPU != b.GPU {
			if a.GPU < b.GPU {
				return -1
			}
			return 1
		}
		if a.Provider < b.Provider {
			return -1
		}
		if a.Provider > b.Provider {
			return 1
		}
		return 0
	})
	return out
}

// ReferenceCosts prices gpuHours at each provider's on-demand rate for the
// GPU: what the same GPU-hours would cost there, as decimal strings.
func (b *Board) ReferenceCosts(gpu string, gpuHours int64) map[string]string {
	out := map[string]string{}
	t := b.table.Load()
	for _, p := range t.Providers(gpu) {
		if r, ok := t.OnDemand(gpu, p); ok {
			out[p] = FormatPrice(r.USDPerGPUHour * gpuHours)
		}
	}
	return out
}
