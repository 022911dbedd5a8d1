package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shopspring/decimal"

	"github.com/gpux/gpux/client"
)

// fallbackPrice is the typical price of a market with no reference rate.
const fallbackPrice = 2.00

// newHTTPClient returns an HTTP client that keeps up to conns connections
// to the target alive (the default of 2 would make every concurrent
// request open a new connection).
func newHTTPClient(conns int) *http.Client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        0, // no overall limit
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &http.Client{Transport: tr}
}

// warmUp opens about n keep-alive connections to c's server (n concurrent
// GET /healthz), so the load does not start with a storm of handshakes.
func warmUp(ctx context.Context, c *client.Client, n int) {
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = c.Health(ctx)
		}()
	}
	wg.Wait()
}

// runTag is a short random tag that makes account names and idempotency
// keys unique to one run, so runs with the same seed never collide.
func runTag() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// retry calls fn until it succeeds, fails with something other than a
// 429, 503 or transport error, or attempts run out; it waits Retry-After
// (or a short backoff) in between.
func retry(ctx context.Context, attempts int, fn func() error) error {
	var err error
	for i := 0; i < attempts; i++ {
		if err = fn(); err == nil {
			return nil
		}
		var e *client.Error
		wait := time.Duration(50<<min(i, 5)) * time.Millisecond
		if errors.As(err, &e) {
			if e.Status != http.StatusTooManyRequests && e.Status != http.StatusServiceUnavailable && e.Status != http.StatusGatewayTimeout {
				return err
			}
			if e.RetryAfter > 0 {
				wait = e.RetryAfter
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
	}
	return err
}

// parseTicks parses a decimal USD string into ticks of 1/10000 USD (the
// server's unit), refusing anything finer.
func parseTicks(s string) (int64, error) {
	d, err := decimal.NewFromString(s)
	if err != nil {
		return 0, fmt.Errorf("amount %q: %w", s, err)
	}
	t := d.Shift(4)
	if !t.Equal(t.Truncate(0)) {
		return 0, fmt.Errorf("amount %q: finer than 1/10000", s)
	}
	return t.IntPart(), nil
}

// usd formats ticks as a decimal USD string.
func usd(ticks int64) string { return decimal.New(ticks, -4).StringFixed(4) }

// env is the run's accounts and markets on the target.
type env struct {
	buyers, owners []*account
	markets        []market
	setupListings  []order
}

// setup checks the markets, prices them from the reference rates, creates
// the run's buyer and owner accounts (buyers funded with cfg.Deposit) and
// lists capacity from the current hour on in every market, offered to spot
// too, so bids can match from the first request.
func setup(ctx context.Context, cfg Config, admin *client.Client, tag string) (*env, error) {
	var have []client.Market
	if err := retry(ctx, 10, func() (err error) { have, err = admin.Markets(ctx); return err }); err != nil {
		return nil, fmt.Errorf("list markets: %w", err)
	}
	known := map[string]bool{}
	for _, m := range have {
		known[m.ID] = true
	}
	var rows []client.PriceRow
	if err := retry(ctx, 10, func() (err error) { rows, err = admin.Prices(ctx); return err }); err != nil {
		return nil, fmt.Errorf("prices: %w", err)
	}
	e := &env{}
	for _, id := range cfg.Markets {
		if !known[id] {
			return nil, fmt.Errorf("market %q is not traded by the target", id)
		}
		e.markets = append(e.markets, market{ID: id, Price: typicalPrice(rows, id)})
	}

	make1 := func(role string, i int) (*account, error) {
		name := fmt.Sprintf("loadtest-s%d-%s-%s-%02d", cfg.Seed, tag, role, i)
		var created client.AccountCreated
		err := retry(ctx, 10, func() (err error) {
			created, err = admin.CreateAccount(ctx, client.CreateAccountRequest{Name: name, Roles: []string{role}, IdempotencyKey: "create-" + name})
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("create account %s: %w", name, err)
		}
		a := &account{Name: name, ID: created.ID, Key: created.APIKey, Buyer: role == client.RoleBuyer, c: admin.WithKey(created.APIKey)}
		if a.Buyer {
			err := retry(ctx, 10, func() error {
				_, err := admin.Deposit(ctx, a.ID, cfg.Deposit, client.WithIdempotencyKey("deposit-"+name))
				return err
			})
			if err != nil {
				return nil, fmt.Errorf("deposit to %s: %w", name, err)
			}
		}
		return a, nil
	}
	for i := 0; i < cfg.Buyers; i++ {
		a, err := make1(client.RoleBuyer, i)
		if err != nil {
			return nil, err
		}
		e.buyers = append(e.buyers, a)
	}
	for i := 0; i < cfg.Owners; i++ {
		a, err := make1(client.RoleOwner, i)
		if err != nil {
			return nil, err
		}
		e.owners = append(e.owners, a)
	}

	// 64 GPUs per owner and market for a week from the current hour.
	rng := mrand.New(mrand.NewPCG(cfg.Seed, math.MaxUint32))
	hour := time.Now().Truncate(time.Hour)
	for oi, o := range e.owners {
		for _, m := range e.markets {
			reserve := m.Price * (0.9 + 0.2*rng.Float64())
			req := client.ListingRequest{
				Market: m.ID, Quantity: 64, Start: hour, End: hour.Add(7 * 24 * time.Hour),
				ReservePrice: price(reserve), SpotPriceFloor: price(reserve * 0.7),
				IdempotencyKey: "setup-" + o.Name + "-" + m.ID,
			}
			var l client.Listing
			err := retry(ctx, 10, func() (err error) { l, err = o.c.PlaceListing(ctx, req); return err })
			if err != nil {
				return nil, fmt.Errorf("setup listing of %s in %s: %w", o.Name, m.ID, err)
			}
			e.setupListings = append(e.setupListings, order{l.ID, oi})
		}
	}

	// Balances from here on are what the load moves.
	for _, a := range append(append([]*account(nil), e.buyers...), e.owners...) {
		var acct client.Account
		if err := retry(ctx, 10, func() (err error) { acct, err = a.c.Account(ctx); return err }); err != nil {
			return nil, fmt.Errorf("read account %s: %w", a.Name, err)
		}
		t, err := parseTicks(acct.Balance)
		if err != nil {
			return nil, fmt.Errorf("account %s: %w", a.Name, err)
		}
		a.start = t
	}
	return e, nil
}

// typicalPrice is 60 % of the cheapest on-demand reference rate of the
// market's GPU (roughly where a GPU marketplace clears), or fallbackPrice.
func typicalPrice(rows []client.PriceRow, id string) float64 {
	best := math.Inf(1)
	for _, r := range rows {
		if r.Market != id {
			continue
		}
		for _, ref := range r.Reference {
			if ref.PriceType != "" && !strings.Contains(strings.ReplaceAll(ref.PriceType, "-", "_"), "on_demand") {
				continue
			}
			if v, err := strconv.ParseFloat(ref.USDPerGPUHour, 64); err == nil && v > 0 {
				best = math.Min(best, v)
			}
		}
	}
	if math.IsInf(best, 1) {
		return fallbackPrice
	}
	return math.Round(best*0.6*100) / 100
}
