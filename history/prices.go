package history

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/pricing"
	"github.com/gpux/gpux/store"
)

// Prices is the market's price history: the pricing.Board (24 h VWAP and
// candles per market, in memory) seeded from the engine once it is
// recovered and then fed by the sequencer's events, and the read models
// that outlive the engine's memory: every candle the board changes, every
// fill (the per-market trade log) and every spot price change (the spot
// history). It is safe for concurrent use.
//
// Observe runs on the sequencer's goroutine before the batch's callers
// hear back, so the board never trails a command's response. It does not
// wait for Redis: the persistent writes go through a bounded queue to a
// goroutine of their own (see writer).
type Prices struct {
	read  func(fn func(e *engine.Engine)) // fn under the sequencer's read lock; not called before recovery
	rates *pricing.Table                  // the table in force until SetTable
	log   *slog.Logger

	mu     sync.Mutex
	b      *pricing.Board
	seq    uint64  // the engine seq the board was seeded at; older events are in the seed
	w      *writer // nil without read models
	closed bool

	// The reference table and staleness limit in force, nil and zero
	// until set (then rates and pricing.DefaultStaleAfter). They are
	// atomics, not under mu: an admin's table is installed from the
	// sequencer goroutine, which must not wait for mu while a reader
	// holding mu waits for the engine.
	table      atomic.Pointer[pricing.Table]
	staleAfter atomic.Int64
	built      atomic.Pointer[pricing.Board] // b, once built

	rm store.ReadModelStore // nil: candles come from the board only
}

// NewPrices returns the price history. read runs a function on the
// engine under the sequencer's read lock and skips it before recovery;
// rates is the reference table until SetTable (nil: pricing.Default());
// rm, when not nil, keeps candles, trades and spot prices beyond the
// engine's memory. Close stops the writer.
func NewPrices(read func(fn func(e *engine.Engine)), rates *pricing.Table, rm store.ReadModelStore, log *slog.Logger) *Prices {
	if rates == nil {
		rates = pricing.Default()
	}
	if log == nil {
		log = slog.Default()
	}
	p := &Prices{read: read, rates: rates, log: log, rm: rm}
	if rm != nil {
		p.w = newWriter(rm, p)
	}
	return p
}

// Table is the reference table in force.
func (p *Prices) Table() *pricing.Table {
	if t := p.table.Load(); t != nil {
		return t
	}
	return p.rates
}

// SetTable makes t the table the board compares against. Safe on any
// goroutine, the sequencer's included.
func (p *Prices) SetTable(t *pricing.Table) {
	p.table.Store(t)
	if b := p.built.Load(); b != nil {
		b.SetTable(t)
	}
}

// SetStaleAfter sets how old a reference rate may be before it shows as
// stale; zero or less makes nothing stale. Without a call the limit is
// pricing.DefaultStaleAfter.
func (p *Prices) SetStaleAfter(d time.Duration) {
	if d <= 0 {
		d = -1 // stored 0 means "unset"
	}
	p.staleAfter.Store(int64(d))
	if b := p.built.Load(); b != nil {
		b.SetStaleAfter(d)
	}
}

func (p *Prices) staleLimit() time.Duration {
	if d := p.staleAfter.Load(); d != 0 {
		return time.Duration(d)
	}
	return pricing.DefaultStaleAfter
}

// Board returns the price board, seeding it from the engine the first
// time; nil before recovery.
func (p *Prices) Board() *pricing.Board {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seedLocked()
	return p.b
}

func (p *Prices) seedLocked() {
	if p.b != nil {
		return
	}
	p.read(func(e *engine.Engine) {
		b := pricing.NewBoard(p.Table(), e.Markets())
		b.SetStaleAfter(p.staleLimit())
		b.Seed(e)
		p.b, p.seq = b, e.Seq()
	})
	if p.b != nil {
		// Publish, then re-read what may have been installed meanwhile:
		// SetTable stores before it loads built, so one of the two sees
		// the other's write.
		p.built.Store(p.b)
		p.b.SetTable(p.Table())
		p.b.SetStaleAfter(p.staleLimit())
	}
}

// Observe folds a batch of events into the board and queues its fills,
// spot price changes and changed candles for the read models. It runs on
// the sequencer's goroutine and never waits for Redis.
func (p *Prices) Observe(evs []engine.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seedLocked()
	if p.b == nil {
		return
	}
	i := sort.Search(len(evs), func(i int) bool { return evs[i].Seq > p.seq })
	if i < len(evs) {
		p.b.Observe(evs[i:])
	}
	if p.w == nil || p.closed {
		p.b.TakeCandles() // nothing keeps them: do not let them pile up
		return
	}
	p.w.offer(evs)
}

// Close stops the writer after it has written what is queued. Events
// observed later still move the board; they are not persisted.
func (p *Prices) Close() {
	p.mu.Lock()
	if p.closed || p.w == nil {
		p.closed = true
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	p.w.close()
}

// Candles returns a market's candles of one kind (pricing.KindTrades or
// KindSpot) and interval within [from, to), oldest first: those kept in
// the read models, overlaid with the board's in-memory candles (the newer
// state of a bucket wins). A read model that cannot be read is logged and
// left out: the board still answers for what it holds.
func (p *Prices) Candles(ctx context.Context, market, kind string, iv pricing.Interval, from, to time.Time) []Candle {
	byStart := map[int64]Candle{}
	if p.rm != nil {
		cs, err := p.rm.Candles(ctx, market, candleKey(kind, iv), from, to)
		if err != nil {
			p.log.Warn("stored history unavailable", "market", market, "err", err)
		}
		for _, cd := range cs {
			byStart[cd.Start.UnixMilli()] = storedCandle(cd)
		}
	}
	if b := p.Board(); b != nil {
		for _, cd := range b.Candles(market, kind, iv, from, to) {
			byStart[cd.Start.UnixMilli()] = boardCandle(cd)
		}
	}
	out := make([]Candle, 0, len(byStart))
	for _, k := range slices.Sorted(maps.Keys(byStart)) {
		out = append(out, byStart[k])
	}
	return out
}

// Candle is one candle as the history endpoint shows it.
type Candle struct {
	Start  string `json:"start"`
	Open   string `json:"open"`
	High   string `json:"high"`
	Low    string `json:"low"`
	Close  string `json:"close"`
	Volume int64  `json:"volume"`
}

// candleKey is how candles are keyed in the read models:
// "<kind>:<interval>".
func candleKey(kind string, iv pricing.Interval) string { return kind + ":" + iv.String() }

func storedCandle(c store.Candle) Candle {
	vol, _ := strconv.ParseInt(strings.Split(c.Volume, ".")[0], 10, 64)
	return Candle{Start: c.Start.UTC().Format(time.RFC3339), Open: c.Open, High: c.High, Low: c.Low, Close: c.Close, Volume: vol}
}

func boardCandle(c pricing.Candle) Candle {
	return Candle{
		Start: c.Start.UTC().Format(time.RFC3339), Open: pricing.FormatPrice(c.Open), High: pricing.FormatPrice(c.High),
		Low: pricing.FormatPrice(c.Low), Close: pricing.FormatPrice(c.Close), Volume: c.Volume,
	}
}

func toStoreCandle(c pricing.Candle) store.Candle {
	return store.Candle{
		Start: c.Start, Open: pricing.FormatPrice(c.Open), High: pricing.FormatPrice(c.High),
		Low: pricing.FormatPrice(c.Low), Close: pricing.FormatPrice(c.Close), Volume: strconv.FormatInt(c.Volume, 10),
	}
}
