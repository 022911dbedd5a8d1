package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gpux/gpux/client"
)

// account is one of the run's own accounts.
type account struct {
	Name  string
	ID    string
	Key   string
	Buyer bool
	c     *client.Client
	// start is the balance in ticks right after setup.
	start int64
}

// market is a market the run trades, with a typical price around which
// orders are priced.
type market struct {
	ID    string
	Price float64 // USD per GPU-hour
}

// order is an acknowledged bid or listing of one of the run's accounts.
type order struct {
	ID      string
	Account int // index into buyers (bids) or owners (listings)
}

// pending is a create whose outcome is unknown (transport error, timeout
// or 5xx): the server may or may not have applied it. Re-sending it with
// the same Idempotency-Key after the load settles the question.
type pending struct {
	op      Op
	acct    int
	bid     client.BidRequest
	listing client.ListingRequest
}

// ledger is what the run knows about its own orders.
type ledger struct {
	mu           sync.Mutex
	bids         []order
	listings     []order
	openBids     []order // cancel candidates
	openListings []order // cancel candidates: listings placed during the load
	pending      []pending
	reconciled   int
}

func (l *ledger) addBid(o order, open bool) {
	l.mu.Lock()
	l.bids = append(l.bids, o)
	if open {
		l.openBids = append(l.openBids, o)
	}
	l.mu.Unlock()
}

func (l *ledger) addListing(o order, cancellable bool) {
	l.mu.Lock()
	l.listings = append(l.listings, o)
	if cancellable {
		l.openListings = append(l.openListings, o)
	}
	l.mu.Unlock()
}

func (l *ledger) addPending(p pending) {
	l.mu.Lock()
	l.pending = append(l.pending, p)
	l.mu.Unlock()
}

// takeOpen removes and returns a random cancel candidate: a bid, or
// (one time in six) a listing placed during the load.
func (l *ledger) takeOpen(rng *rand.Rand) (o order, isBid, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	take := func(s *[]order) order {
		i := rng.IntN(len(*s))
		o := (*s)[i]
		(*s)[i] = (*s)[len(*s)-1]
		*s = (*s)[:len(*s)-1]
		return o
	}
	switch {
	case len(l.openListings) > 0 && (rng.IntN(6) == 0 || len(l.openBids) == 0):
		return take(&l.openListings), false, true
	case len(l.openBids) > 0:
		return take(&l.openBids), true, true
	}
	return order{}, false, false
}

func bidOpen(status string) bool {
	switch status {
	case client.BidResting, client.BidPartiallyFilled, client.BidRunning, client.BidWaiting:
		return true
	}
	return false
}

// recorder counts outcomes and latencies.
type recorder struct {
	all      Histogram
	kinds    [numOps]kindStats
	interval atomic.Pointer[Histogram] // since the last progress line
	acked    atomic.Int64
	failed   atomic.Int64
	inflight atomic.Int64

	mu   sync.Mutex
	errs map[string]*errClass
}

type kindStats struct {
	hist   Histogram
	acked  atomic.Int64
	failed atomic.Int64
}

type errClass struct {
	count   int64
	example string
}

func newRecorder() *recorder {
	r := &recorder{errs: map[string]*errClass{}}
	r.interval.Store(new(Histogram))
	return r
}

// done records one finished request of kind op: its latency when
// acknowledged, its error class otherwise.
func (r *recorder) done(op Op, err error, lat time.Duration) {
	k := &r.kinds[op]
	if err == nil {
		r.acked.Add(1)
		k.acked.Add(1)
		r.all.Record(lat)
		k.hist.Record(lat)
		r.interval.Load().Record(lat)
		return
	}
	r.failed.Add(1)
	k.failed.Add(1)
	class := errorClass(err)
	r.mu.Lock()
	e := r.errs[class]
	if e == nil {
		e = &errClass{example: err.Error()}
		r.errs[class] = e
	}
	e.count++
	r.mu.Unlock()
}

// errorClass is "<status> <code>" for an answer of the server (the title
// when there is no code) and "transport: timeout" or "transport: error"
// when no answer came.
func errorClass(err error) string {
	var e *client.Error
	if errors.As(err, &e) {
		code := e.Code
		if code == "" {
			code = http.StatusText(e.Status)
		}
		return strconv.Itoa(e.Status) + " " + code
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "transport: timeout"
	}
	return "transport: error"
}

// unknownOutcome reports whether a create that failed with err may still
// have been applied.
func unknownOutcome(err error) bool {
	var e *client.Error
	if errors.As(err, &e) {
		return e.Status >= 500
	}
	return true
}

// generator builds and sends the requests of the mix.
type generator struct {
	cfg      Config
	mix      Mix
	buyers   []*account
	owners   []*account
	markets  []market
	ledger   *ledger
	rec      *recorder
	tag      string // unique to the run; prefixes idempotency keys
	idemSeq  atomic.Uint64
	baseline bool // the target is the bare Fiber app: nothing to remember
}

func (g *generator) idemKey() string {
	return fmt.Sprintf("lt-%s-%d", g.tag, g.idemSeq.Add(1))
}

func price(p float64) client.Price {
	return client.FixedPrice(strconv.FormatFloat(max(p, 0.01), 'f', 2, 64))
}

// reservedBid is a bid for 1–8 GPUs over a 1–24 h window starting 1–72 h
// ahead, limit within ±20 % of the market's typical price; a quarter take
// partial fills (min_quantity), a fifth expire within minutes.
func (g *generator) reservedBid(rng *rand.Rand, now time.Time) client.BidRequest {
	m := g.markets[rng.IntN(len(g.markets))]
	q := 1 + rng.IntN(8)
	start := now.Truncate(time.Hour).Add(time.Duration(1+rng.IntN(72)) * time.Hour)
	req := client.BidRequest{
		Type: client.BidReserved, Market: m.ID, Quantity: q,
		Start: start, End: start.Add(time.Duration(1+rng.IntN(24)) * time.Hour),
		LimitPrice: price(m.Price * (0.8 + 0.4*rng.Float64())),
	}
	if rng.IntN(4) == 0 {
		req.MinQuantity = 1 + rng.IntN(q)
	}
	if rng.IntN(5) == 0 {
		req.ExpiresAt = now.Truncate(time.Second).Add(time.Duration(30+rng.IntN(600)) * time.Second)
	}
	req.IdempotencyKey = g.idemKey()
	return req
}

// spotBid asks for 1–4 GPUs now at a limit around the listings' floors.
func (g *generator) spotBid(rng *rand.Rand) client.BidRequest {
	m := g.markets[rng.IntN(len(g.markets))]
	return client.BidRequest{
		Type: client.BidSpot, Market: m.ID, Quantity: 1 + rng.IntN(4),
		LimitPrice:     price(m.Price * 0.7 * (0.8 + 0.6*rng.Float64())),
		IdempotencyKey: g.idemKey(),
	}
}

// listing offers 8–64 GPUs from the current hour for a week, reserve within
// ±15 % of the typical price and a spot floor 60–80 % of the reserve.
func (g *generator) listing(rng *rand.Rand, now time.Time) client.ListingRequest {
	m := g.markets[rng.IntN(len(g.markets))]
	reserve := m.Price * (0.85 + 0.3*rng.Float64())
	start := now.Truncate(time.Hour)
	return client.ListingRequest{
		Market: m.ID, Quantity: 8 + rng.IntN(57), Start: start, End: start.Add(7 * 24 * time.Hour),
		ReservePrice: price(reserve), SpotPriceFloor: price(reserve * (0.6 + 0.2*rng.Float64())),
		IdempotencyKey: g.idemKey(),
	}
}

// execute sends one request of kind op and returns the kind it really was
// (a cancel with nothing open to cancel becomes a reserved bid) and its
// error (nil = acknowledged).
func (g *generator) execute(ctx context.Context, rng *rand.Rand, op Op) (Op, error) {
	now := time.Now()
	if op == OpCancel {
		o, isBid, ok := g.ledger.takeOpen(rng)
		if !ok {
			op = OpReserved
		} else if isBid {
			_, err := g.buyers[o.Account].c.CancelBid(ctx, o.ID)
			return op, err
		} else {
			_, err := g.owners[o.Account].c.CancelListing(ctx, o.ID)
			return op, err
		}
	}
	switch op {
	case OpReserved, OpSpot:
		var req client.BidRequest
		if op == OpReserved {
			req = g.reservedBid(rng, now)
		} else {
			req = g.spotBid(rng)
		}
		i := rng.IntN(len(g.buyers))
		b, err := g.buyers[i].c.PlaceBid(ctx, req)
		if g.baseline {
			return op, err
		}
		switch {
		case err == nil:
			g.ledger.addBid(order{b.ID, i}, bidOpen(b.Status))
		case unknownOutcome(err):
			g.ledger.addPending(pending{op: op, acct: i, bid: req})
		}
		return op, err
	default: // OpList
		req := g.listing(rng, now)
		i := rng.IntN(len(g.owners))
		l, err := g.owners[i].c.PlaceListing(ctx, req)
		switch {
		case err == nil:
			g.ledger.addListing(order{l.ID, i}, l.Status == client.ListingActive)
		case unknownOutcome(err):
			g.ledger.addPending(pending{op: op, acct: i, listing: req})
		}
		return op, err
	}
}

// request runs one op with its own timeout (so stopping the load never
// cuts a request short, which would leave its outcome unknown) and records
// it with the latency measured from since.
func (g *generator) request(rng *rand.Rand, op Op, since time.Time) error {
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.RequestTimeout)
	defer cancel()
	g.rec.inflight.Add(1)
	op, err := g.execute(ctx, rng, op)
	g.rec.inflight.Add(-1)
	g.rec.done(op, err, time.Since(since))
	return err
}

// loadResult is what a load phase measured.
type loadResult struct {
	Elapsed time.Duration
	// Offered is the number of requests sent (open mode: scheduled).
	Offered int64
}

// runLoad offers the mix for cfg.Duration (or until ctx ends) in the
// configured mode and waits for every request to finish.
func (g *generator) runLoad(ctx context.Context) loadResult {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.Duration)
	defer cancel()
	begin := time.Now()
	var offered atomic.Int64
	var wg sync.WaitGroup
	total := g.mix.total()
	if g.cfg.Mode == ModeClosed {
		for w := 0; w < g.cfg.Concurrency; w++ {
			rng := rand.New(rand.NewPCG(g.cfg.Seed, uint64(w)))
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					offered.Add(1)
					err := g.request(rng, g.mix.pick(rng.IntN(total)), time.Now())
					if client.IsStatus(err, http.StatusTooManyRequests) {
						g.backOff(ctx, err)
					}
				}
			}()
		}
		wg.Wait()
		return loadResult{Elapsed: time.Since(begin), Offered: offered.Load()}
	}

	// Open loop: request i is due at begin + i/rate whatever happened to
	// the earlier ones; its latency counts from that intended time, so a
	// stalled server shows up as latency instead of as fewer requests.
	rng := rand.New(rand.NewPCG(g.cfg.Seed, 0))
	slots := make(chan struct{}, g.cfg.MaxInflight)
	interval := time.Second / time.Duration(g.cfg.Rate)
	end := begin.Add(g.cfg.Duration)
loop:
	for i := int64(0); ; i++ {
		due := begin.Add(time.Duration(i) * interval)
		if !due.Before(end) {
			break
		}
		if d := time.Until(due); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				break loop
			case <-t.C:
			}
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			break loop
		}
		op := g.mix.pick(rng.IntN(total))
		r := rand.New(rand.NewPCG(g.cfg.Seed, rng.Uint64()))
		offered.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			g.request(r, op, due)
		}()
	}
	wg.Wait()
	return loadResult{Elapsed: time.Since(begin), Offered: offered.Load()}
}

// backOff waits out a 429's Retry-After (closed mode respects it).
func (g *generator) backOff(ctx context.Context, err error) {
	var e *client.Error
	d := 100 * time.Millisecond
	if errors.As(err, &e) && e.RetryAfter > 0 {
		d = e.RetryAfter
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// progress prints a line to w every second until ctx ends.
func progress(ctx context.Context, w func(format string, args ...any), rec *recorder, feeds *feedStats, begin time.Time) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last, lastFeed, lastAt := int64(0), int64(0), begin
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			h := rec.interval.Swap(new(Histogram))
			acked := rec.acked.Load()
			dt := now.Sub(lastAt).Seconds()
			line := fmt.Sprintf("loadtest: %4.0fs  acked %7.0f/s  total %9d  errors %6d  last 1s p50 %7.2fms p99 %8.2fms  in flight %5d",
				now.Sub(begin).Seconds(), float64(acked-last)/dt, acked, rec.failed.Load(),
				ms(h.Quantile(0.5)), ms(h.Quantile(0.99)), rec.inflight.Load())
			if feeds != nil && feeds.subscribers > 0 {
				msgs := feeds.messages.Load()
				line += fmt.Sprintf("  feed %7.0f msg/s p99 %7.2fms  ws %d/%d", float64(msgs-lastFeed)/dt,
					ms(feeds.lat.Quantile(0.99)), feeds.live.Load(), feeds.subscribers)
				lastFeed = msgs
			}
			w("%s\n", line)
			last, lastAt = acked, now
		}
	}
}
