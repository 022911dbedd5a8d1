package history

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/pricing"
	"github.com/gpux/gpux/store"
)

const testMarket = "l4.us-east"

// newTestPrices returns Prices over a recovered engine with one market and
// read models in memory.
func newTestPrices(t *testing.T) (*Prices, *store.MemoryReadModels) {
	t.Helper()
	e := engine.New(engine.Config{Markets: []engine.Market{{ID: testMarket, GPU: "l4", Region: "us-east"}}})
	rm := store.NewMemoryReadModels(store.ReadModelOptions{})
	p := NewPrices(func(fn func(*engine.Engine)) { fn(e) }, nil, rm, nil)
	t.Cleanup(p.Close)
	return p, rm
}

// batch is a fill and a spot price change at t, as the sequencer hands
// them over.
func batch(seq uint64, t time.Time, price engine.Price) []engine.Event {
	at := engine.Time(t.UnixMilli())
	f := engine.Fill{ID: engine.ID{0: 3, 15: byte(seq)}, Market: testMarket, BidID: engine.ID{0: 1}, ListingID: engine.ID{0: 2},
		Quantity: 2, Price: price, Start: at + engine.Hour, End: at + 3*engine.Hour, Time: at}
	return []engine.Event{
		{Seq: seq, Kind: engine.EvFilled, Market: testMarket, Time: at, Fill: &f},
		{Seq: seq, Kind: engine.EvSpotPriceChanged, Market: testMarket, Time: at, Price: price, HasPrice: true},
	}
}

func TestPricesPersistsTheMarketsHistory(t *testing.T) {
	ctx := context.Background()
	p, rm := newTestPrices(t)
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	evs := batch(1, t0, 20000)
	p.Observe(evs)
	p.Close() // writes what is queued

	trades, err := rm.RecentTrades(ctx, testMarket, 10)
	if err != nil || len(trades) != 1 {
		t.Fatalf("trade log: %v %+v, want one trade", err, trades)
	}
	want, _ := json.Marshal(TradeOf(*evs[0].Fill))
	if string(trades[0].Data) != string(want) || trades[0].ID != evs[0].Fill.ID.String() {
		t.Errorf("stored trade: %s %s, want %s", trades[0].ID, trades[0].Data, want)
	}
	pts, err := rm.SpotHistory(ctx, testMarket, time.Time{}, time.Time{})
	if err != nil || !reflect.DeepEqual(pts, []store.PricePoint{{Time: t0, Price: "2.00"}}) {
		t.Errorf("spot history: %v %+v, want 2.00 at %v", err, pts, t0)
	}
	for _, key := range []string{"trades:1h", "spot:1m", "trades:1d"} {
		cs, err := rm.Candles(ctx, testMarket, key, time.Time{}, time.Time{})
		if err != nil || len(cs) != 1 || cs[0].Open != "2.00" {
			t.Errorf("stored %s candles: %v %+v, want one opening at 2.00", key, err, cs)
		}
	}
}

func TestPricesCandlesMergeStoredAndBoard(t *testing.T) {
	ctx := context.Background()
	p, rm := newTestPrices(t)
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	p.Observe(batch(1, t0, 20000))
	p.Close()
	// Older buckets come from the read models only; a stored bucket the
	// board also holds shows the board's (newer) state.
	stored := []store.Candle{
		{Start: t0.Add(-time.Hour), Open: "1.00", High: "1.50", Low: "1.00", Close: "1.25", Volume: "4"},
		{Start: t0, Open: "9.99", High: "9.99", Low: "9.99", Close: "9.99", Volume: "1"},
	}
	if err := rm.PutCandles(ctx, testMarket, "trades:1h", stored); err != nil {
		t.Fatal(err)
	}
	got := p.Candles(ctx, testMarket, pricing.KindTrades, pricing.Hour, t0.Add(-2*time.Hour), t0.Add(2*time.Hour))
	want := []Candle{
		{Start: "2026-03-01T09:00:00Z", Open: "1.00", High: "1.50", Low: "1.00", Close: "1.25", Volume: 4},
		{Start: "2026-03-01T10:00:00Z", Open: "2.00", High: "2.00", Low: "2.00", Close: "2.00", Volume: 4},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("candles:\n got %+v\nwant %+v", got, want)
	}
	// After Close the board still moves; nothing is written.
	p.Observe(batch(2, t0.Add(time.Hour), 30000))
	got = p.Candles(ctx, testMarket, pricing.KindTrades, pricing.Hour, t0.Add(time.Hour), t0.Add(2*time.Hour))
	if len(got) != 1 || got[0].Open != "3.00" {
		t.Errorf("board after Close: %+v, want the 11:00 candle at 3.00", got)
	}
	if trades, _ := rm.RecentTrades(ctx, testMarket, 10); len(trades) != 1 {
		t.Errorf("trade log after Close: %d trades, want the 1 written before", len(trades))
	}
	// An empty window is an empty list, not null.
	if b, _ := json.Marshal(p.Candles(ctx, testMarket, pricing.KindSpot, pricing.Day, t0.Add(-48*time.Hour), t0.Add(-47*time.Hour))); string(b) != "[]" {
		t.Errorf("empty window: %s, want []", b)
	}
}

// stuck is a read model store whose writes wait until release is closed.
type stuck struct {
	*store.MemoryReadModels
	release chan struct{}
}

func (s *stuck) PutCandles(ctx context.Context, market, interval string, cs []store.Candle) error {
	<-s.release
	return s.MemoryReadModels.PutCandles(context.Background(), market, interval, cs)
}

func TestPricesObserveNeverWaitsForTheStore(t *testing.T) {
	e := engine.New(engine.Config{Markets: []engine.Market{{ID: testMarket, GPU: "l4", Region: "us-east"}}})
	rm := &stuck{MemoryReadModels: store.NewMemoryReadModels(store.ReadModelOptions{}), release: make(chan struct{})}
	p := NewPrices(func(fn func(*engine.Engine)) { fn(e) }, nil, rm, nil)
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	// Far more batches than the queue holds, while the store is stuck:
	// Observe returns (batches are dropped), or the test hangs.
	n := 4 * writerQueue
	for i := 1; i <= n; i++ {
		p.Observe(batch(uint64(i), t0.Add(time.Duration(i)*time.Second), engine.Price(10000+i)))
	}
	close(rm.release)
	p.Close()
	// Candles are taken from the board when written, so the last state of
	// the bucket is stored even though its batch may have been dropped.
	cs, err := rm.Candles(context.Background(), testMarket, "trades:1h", time.Time{}, time.Time{})
	if wantClose := pricing.FormatPrice(int64(10000 + n)); err != nil || len(cs) != 1 || cs[0].Close != wantClose {
		t.Fatalf("stored 1h candle: %v %+v, want one closing at %s", err, cs, wantClose)
	}
}
