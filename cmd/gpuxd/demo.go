package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/gpux/gpux/api"
	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/sequencer"
)

// demo seeds accounts and listings and runs simulated buyers that place and
// cancel spot and reserved bids about once a second, so prices move.
type demo struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type demoListing struct {
	market      string
	quantity    int64
	reserve     string
	floor       string // "" = not offered to spot
	startOffset time.Duration
}

var demoListings = []demoListing{
	{"h100-sxm.us-east", 16, "2.80", "2.10", 0},
	{"h100-sxm.us-east", 8, "2.60", "", time.Hour},
	{"h100-sxm.eu-west", 8, "3.00", "2.40", 0},
	{"h200.us-east", 8, "3.40", "2.70", 0},
	{"b200.us-west", 8, "5.20", "4.10", 0},
	{"a100-80gb.us-east", 16, "1.40", "0.95", 0},
	{"l40s.us-west", 16, "0.95", "0.60", 0},
	{"mi300x.eu-west", 8, "2.30", "", 2 * time.Hour},
}

// demoMarkets are the markets simulated buyers trade, with a typical price.
var demoMarkets = map[string]float64{
	"h100-sxm.us-east": 2.4, "h100-sxm.eu-west": 2.7, "h200.us-east": 3.0,
	"b200.us-west": 4.6, "a100-80gb.us-east": 1.1, "l40s.us-west": 0.75,
}

func submit(ctx context.Context, seq *sequencer.Sequencer, c engine.Command) (engine.ID, error) {
	var id engine.ID
	out, err := seq.Submit(ctx, c, func(_ *engine.Engine, cc *engine.Command) { id = cc.Target })
	if err != nil {
		return id, err
	}
	if out.Err != nil {
		return id, out.Err
	}
	return id, nil
}

func startDemo(ctx context.Context, seq *sequencer.Sequencer, log *slog.Logger, out io.Writer) (*demo, error) {
	type acct struct {
		name  string
		roles engine.Role
		cash  string
		id    engine.ID
	}
	accts := []*acct{
		{name: "demo-owner-1", roles: engine.RoleOwner, cash: "0"},
		{name: "demo-owner-2", roles: engine.RoleOwner | engine.RoleBuyer, cash: "10000"},
		{name: "demo-buyer-1", roles: engine.RoleBuyer, cash: "250000"},
		{name: "demo-buyer-2", roles: engine.RoleBuyer, cash: "250000"},
		{name: "demo-buyer-3", roles: engine.RoleBuyer, cash: "250000"},
	}
	for _, a := range accts {
		key, hash := api.NewAPIKey()
		id, err := submit(ctx, seq, engine.Command{Kind: engine.CmdCreateAccount, Name: a.name, Roles: a.roles, KeyHash: hash})
		if err != nil {
			return nil, fmt.Errorf("create %s: %w", a.name, err)
		}
		a.id = id
		if a.cash != "0" {
			amt, _ := engine.ParseTicks(a.cash)
			if _, err := submit(ctx, seq, engine.Command{Kind: engine.CmdDeposit, Target: id, Amount: engine.Money(amt)}); err != nil {
				return nil, fmt.Errorf("deposit %s: %w", a.name, err)
			}
		}
		fmt.Fprintf(out, "gpuxd: demo account %-13s %-12s id %s key %s\n", a.name, fmt.Sprint(a.roles.Names()), id, key)
	}
	hour := engine.Time(time.Now().UnixMilli()).HourStart()
	for i, l := range demoListings {
		owned := false
		seq.Read(func(e *engine.Engine) { owned = e.HasMarket(l.market) })
		if !owned {
			continue // a custom catalogue without this market
		}
		owner := accts[i%2]
		reserve, _ := engine.ParseTicks(l.reserve)
		c := engine.Command{
			Kind: engine.CmdPlaceListing, Actor: owner.id, Market: l.market, Quantity: l.quantity,
			Start: hour + engine.Time(l.startOffset.Milliseconds()), End: hour + 7*engine.Day, Price: engine.Price(reserve),
		}
		if l.floor != "" {
			f, _ := engine.ParseTicks(l.floor)
			c.SpotFloor = engine.Price(f)
		}
		if _, err := submit(ctx, seq, c); err != nil {
			return nil, fmt.Errorf("listing in %s: %w", l.market, err)
		}
	}
	runCtx, cancel := context.WithCancel(context.Background())
	d := &demo{cancel: cancel}
	var buyers []engine.ID
	for _, a := range accts[2:] {
		buyers = append(buyers, a.id)
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		simulate(runCtx, seq, log, buyers)
	}()
	log.Info("demo seeded", "accounts", len(accts), "listings", len(demoListings))
	return d, nil
}

func (d *demo) stop() {
	d.cancel()
	d.wg.Wait()
}

// simulate places and cancels bids about once a second until ctx ends.
func simulate(ctx context.Context, seq *sequencer.Sequencer, log *slog.Logger, buyers []engine.ID) {
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	markets := make([]string, 0, len(demoMarkets))
	for m := range demoMarkets {
		markets = append(markets, m)
	}
	type open struct {
		buyer, bid engine.ID
	}
	var spot []open
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		buyer := buyers[rng.IntN(len(buyers))]
		market := markets[rng.IntN(len(markets))]
		typical := demoMarkets[market]
		price := func(spread float64) engine.Price {
			return engine.Price((typical * (1 + spread*(rng.Float64()*2-1))) * engine.TicksPerUSD)
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		var err error
		switch r := rng.IntN(10); {
		case r < 5 || len(spot) == 0:
			var id engine.ID
			id, err = submit(cctx, seq, engine.Command{
				Kind: engine.CmdPlaceBid, Actor: buyer, BidType: engine.Spot, Market: market,
				Quantity: int64(1 + rng.IntN(4)), Price: price(0.25),
			})
			if err == nil {
				spot = append(spot, open{buyer, id})
			}
		case r < 8:
			i := rng.IntN(len(spot))
			o := spot[i]
			spot = append(spot[:i], spot[i+1:]...)
			_, err = submit(cctx, seq, engine.Command{Kind: engine.CmdCancelBid, Actor: o.buyer, Target: o.bid})
		default:
			start := engine.Time(time.Now().UnixMilli()).HourStart() + engine.Time(1+rng.IntN(24))*engine.Hour
			_, err = submit(cctx, seq, engine.Command{
				Kind: engine.CmdPlaceBid, Actor: buyer, BidType: engine.Reserved, Market: market,
				Quantity: int64(1 + rng.IntN(2)), Start: start, End: start + engine.Time(1+rng.IntN(8))*engine.Hour,
				Price: price(0.3),
			})
		}
		cancel()
		if err != nil && ctx.Err() == nil {
			log.Debug("simulated order not placed", "market", market, "err", err)
		}
		if len(spot) > 40 {
			spot = spot[1:]
		}
	}
}
