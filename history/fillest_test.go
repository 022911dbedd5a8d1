package history_test

import (
	"context"
	"encoding/binary"
	"math"
	"testing"
	"time"

	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/history"
	"github.com/gpux/gpux/store"
	"github.com/gpux/gpux/store/redistest"
)

const market = "h100-sxm.us-east"

// market drives a real engine and hands every command's events to the
// fill estimates, as the sequencer's hook does.
type marketSim struct {
	tb  testing.TB
	e   *engine.Engine
	f   *history.FillEstimates
	now engine.Time
	n   uint64
	// lag leaves the worker's queue until a refresh, as a worker that
	// falls behind the sequencer would.
	lag bool
}

func newMarketSim(tb testing.TB, ss store.SeriesStore) *marketSim {
	m := &marketSim{tb: tb, e: engine.New(engine.Config{}), now: engine.Time(1796083200000) + 10*engine.Minute}
	m.f = history.NewFillEstimates(ss, func(fn func(*engine.Engine)) { fn(m.e) }, 0, nil)
	return m
}

func (m *marketSim) id() engine.ID {
	m.n++
	var id engine.ID
	id[0] = 0x01
	binary.BigEndian.PutUint64(id[8:], m.n)
	return id
}

func (m *marketSim) do(c engine.Command) engine.ID {
	m.tb.Helper()
	c.Time = m.now
	if c.Target.IsZero() {
		c.Target = m.id()
	}
	evs, err := m.e.Apply(&c)
	if err != nil {
		m.tb.Fatalf("%s: %v", c.Kind, err)
	}
	m.f.Observe(append([]engine.Event(nil), evs...))
	if !m.lag {
		m.f.Drain(context.Background())
	}
	return c.Target
}

func (m *marketSim) account(roles engine.Role) engine.ID {
	a := m.do(engine.Command{Kind: engine.CmdCreateAccount, Name: "a", Roles: roles})
	m.do(engine.Command{Kind: engine.CmdDeposit, Target: a, Amount: 1_000_000 * engine.TicksPerUSD})
	return a
}

// TestFillEstimateKnownHistory: 40 reserved bids rest 50 % under the best
// ask; 20 fill after 30 minutes, 10 are cancelled after 2 hours (censored)
// and 10 fill after 5 hours. Kaplan–Meier: S(30m) = 1 − 20/40 = 0.5, the
// censored leave the risk set, S(5h) = 0.5 × (1 − 10/10) = 0. So
// p_fill_1h = 0.5, p_fill_24h = 1, median 30 min, 40 samples; bids at the
// ask (another bucket) have none; and with 29 samples there is no estimate.
func TestFillEstimateKnownHistory(t *testing.T) {
	for _, name := range []string{"memory", "redis", "memory lagging worker"} {
		t.Run(name, func(t *testing.T) {
			var ss store.SeriesStore
			if name == "redis" {
				ss = openReadModels(t)
			}
			m := newMarketSim(t, ss)
			m.lag = name == "memory lagging worker"
			owner, buyer := m.account(engine.RoleOwner), m.account(engine.RoleBuyer)
			h := m.now.HourStart()
			start, end := h+48*engine.Hour, h+50*engine.Hour
			listing := func(q int64, price engine.Price) {
				m.do(engine.Command{Kind: engine.CmdPlaceListing, Actor: owner, Market: market, Quantity: q, Start: m.now.HourStart(), End: h + 100*engine.Hour, Price: price})
			}
			listing(1, 2*engine.TicksPerUSD) // the best ask: 2.00, never taken
			var bids []engine.ID
			for range 40 {
				bids = append(bids, m.do(engine.Command{Kind: engine.CmdPlaceBid, Actor: buyer, BidType: engine.Reserved, Market: market, Quantity: 1, Start: start, End: end, Price: engine.TicksPerUSD}))
			}
			refresh := func() {
				t.Helper()
				m.f.Drain(context.Background())
				if err := m.f.Refresh(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			m.now += 30 * engine.Minute
			listing(20, engine.TicksPerUSD) // fills the 20 oldest
			m.now += 90 * engine.Minute
			for _, b := range bids[20:29] {
				m.do(engine.Command{Kind: engine.CmdCancelBid, Actor: buyer, Target: b})
			}
			refresh()
			if est, n := m.f.Estimate(market, engine.Reserved, engine.TicksPerUSD, 2*engine.TicksPerUSD); est != nil || n != 29 {
				t.Errorf("29 samples: got %+v, %d; want no estimate and 29 samples", est, n)
			}
			m.do(engine.Command{Kind: engine.CmdCancelBid, Actor: buyer, Target: bids[29]})
			m.now += 3 * engine.Hour
			listing(10, engine.TicksPerUSD)

			refresh()
			est, n := m.f.Estimate(market, engine.Reserved, engine.TicksPerUSD, 2*engine.TicksPerUSD)
			if est == nil || n != 40 {
				t.Fatalf("got %+v, %d samples; want an estimate on 40", est, n)
			}
			if math.Abs(est.PFill1h-0.5) > 1e-9 || math.Abs(est.PFill24h-1) > 1e-9 || est.Median == nil || *est.Median != 30*time.Minute || est.Samples != 40 {
				t.Errorf("estimate: got %+v (median %v), want p1h 0.5, p24h 1, median 30m, 40 samples", est, est.Median)
			}
			// A limit at the ask is another bucket: no history there.
			if est, n := m.f.Estimate(market, engine.Reserved, 2*engine.TicksPerUSD, 2*engine.TicksPerUSD); est != nil || n != 0 {
				t.Errorf("at the ask: got %+v, %d; want nothing", est, n)
			}
			// A bid that fills when placed never rested: no new sample.
			m.do(engine.Command{Kind: engine.CmdPlaceBid, Actor: buyer, BidType: engine.Reserved, Market: market, Quantity: 1, Start: start, End: end, Price: 2 * engine.TicksPerUSD})
			refresh()
			if _, n := m.f.Estimate(market, engine.Reserved, 2*engine.TicksPerUSD, 2*engine.TicksPerUSD); n != 0 {
				t.Errorf("an immediate fill: got %d samples at the ask, want 0", n)
			}
		})
	}
}

// openReadModels opens the read models of an isolated Redis shard (the
// shard's keys are deleted at cleanup).
func openReadModels(tb testing.TB) *store.ReadModels {
	tb.Helper()
	j, err := store.OpenRedis(context.Background(), redistest.URL(tb), redistest.Shard(tb))
	if err != nil {
		tb.Fatalf("open redis: %v", err)
	}
	tb.Cleanup(func() { j.Close() })
	rm, err := store.NewReadModels(j.Client(), j.Shard(), store.ReadModelOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	return rm
}
