package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gpux/gpux/client"
)

// bidRead is a bid as GET /v1/bids/{id} answers it. client.Bid carries the
// contract's fields; "spent" (spot charges so far) and "held" are additions
// of this server that the money check needs, so the read-back decodes the
// answer itself rather than through client.Bid alone.
type bidRead struct {
	client.Bid
	Spent *string `json:"spent"`
	Held  *string `json:"held"`
}

// listingRead is a listing as GET /v1/listings/{id} answers it, with the
// server's additions "spot_earned" (the owner's net spot income) and
// "sold_gpu_hours".
type listingRead struct {
	client.Listing
	SpotEarned   *string `json:"spot_earned"`
	SoldGPUHours *int64  `json:"sold_gpu_hours"`
}

// reader issues the verification's GETs as a given account, waiting out
// 429s.
type reader struct {
	hc   *http.Client
	base string
}

func (r reader) get(ctx context.Context, key, path string, out any) error {
	return retry(ctx, 50, func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+path, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Accept", "application/json")
		resp, err := r.hc.Do(req)
		if err != nil {
			return fmt.Errorf("GET %s: %w", path, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			e := &client.Error{Status: resp.StatusCode, Detail: strings.TrimSpace(string(body))}
			if ra := resp.Header.Get("Retry-After"); ra != "" {
				if d, err := time.ParseDuration(ra + "s"); err == nil {
					e.RetryAfter = d
				}
			}
			return fmt.Errorf("GET %s: %w", path, e)
		}
		return json.NewDecoder(resp.Body).Decode(out)
	})
}

// reconcile re-sends every create whose outcome was unknown with its
// Idempotency-Key: the server answers with the first response when it had
// applied it, or applies it now. Either way the order becomes known.
// It returns how many stayed unknown.
func reconcile(ctx context.Context, g *generator) int {
	g.ledger.mu.Lock()
	todo := g.ledger.pending
	g.ledger.pending = nil
	g.ledger.mu.Unlock()
	unresolved := 0
	for _, p := range todo {
		var err error
		switch p.op {
		case OpList:
			var l client.Listing
			err = retry(ctx, 10, func() (err error) { l, err = g.owners[p.acct].c.PlaceListing(ctx, p.listing); return err })
			if err == nil {
				g.ledger.addListing(order{l.ID, p.acct}, false)
			}
		default:
			var b client.Bid
			err = retry(ctx, 10, func() (err error) { b, err = g.buyers[p.acct].c.PlaceBid(ctx, p.bid); return err })
			if err == nil {
				g.ledger.addBid(order{b.ID, p.acct}, false)
			}
		}
		switch {
		case err == nil:
			g.ledger.reconciled++
		case unknownOutcome(err):
			unresolved++
		}
	}
	return unresolved
}

// pageAll lists every page of a list endpoint.
func pageAll[T any](ctx context.Context, status string, page func(context.Context, client.ListQuery) (client.Page[T], error)) ([]T, error) {
	var out []T
	q := client.ListQuery{Status: status, Limit: 1000}
	for {
		var p client.Page[T]
		if err := retry(ctx, 50, func() (err error) { p, err = page(ctx, q); return err }); err != nil {
			return out, err
		}
		out = append(out, p.Items...)
		if p.NextCursor == nil || *p.NextCursor == "" || len(p.Items) == 0 {
			return out, nil
		}
		q.Cursor = *p.NextCursor
	}
}

// teardown stops everything that could still move money. It cancels the
// owners' active listings first (which releases every spot bid running on
// them, so no bid moves between running and waiting any more), then every
// open bid of the buyers (a spot bid is charged up to now), and repeats
// until a round finds nothing open. Afterwards balances stand still.
func teardown(ctx context.Context, e *env) (cancelled int, err error) {
	for round := 0; round < 5; round++ {
		n, err := teardownRound(ctx, e)
		cancelled += n
		if err != nil || n == 0 {
			return cancelled, err
		}
	}
	return cancelled, errors.New("orders kept reopening after 5 rounds of cancelling")
}

func teardownRound(ctx context.Context, e *env) (int, error) {
	var (
		mu        sync.Mutex
		errs      []error
		cancelled int
		wg        sync.WaitGroup
	)
	count := func(n int, err error) {
		mu.Lock()
		cancelled += n
		if err != nil {
			errs = append(errs, err)
		}
		mu.Unlock()
	}
	for _, o := range e.owners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ls, err := pageAll(ctx, client.ListingActive, o.c.Listings)
			if err != nil {
				count(0, fmt.Errorf("list active listings of %s: %w", o.Name, err))
				return
			}
			n := 0
			for _, l := range ls {
				err := retry(ctx, 50, func() error { _, err := o.c.CancelListing(ctx, l.ID); return err })
				if err != nil && !client.IsCode(err, "not_open") {
					count(n, fmt.Errorf("cancel listing %s of %s: %w", l.ID, o.Name, err))
					return
				}
				n++
			}
			count(n, nil)
		}()
	}
	wg.Wait()
	for _, b := range e.buyers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			for _, st := range []string{client.BidResting, client.BidPartiallyFilled, client.BidRunning, client.BidWaiting} {
				bids, err := pageAll(ctx, st, b.c.Bids)
				if err != nil {
					count(n, fmt.Errorf("list %s bids of %s: %w", st, b.Name, err))
					return
				}
				for _, bid := range bids {
					err := retry(ctx, 50, func() error { _, err := b.c.CancelBid(ctx, bid.ID); return err })
					if err != nil && !client.IsCode(err, "not_open") {
						count(n, fmt.Errorf("cancel bid %s of %s: %w", bid.ID, b.Name, err))
						return
					}
					n++
				}
			}
			count(n, nil)
		}()
	}
	wg.Wait()
	return cancelled, errors.Join(errs...)
}

// Verify is the verification part of the report.
type Verify struct {
	OK       bool     `json:"ok"`
	Failures []string `json:"failures,omitempty"`
	Notes    []string `json:"notes,omitempty"`

	Cancelled    int    `json:"cancelled_at_teardown"`
	Reconciled   int    `json:"reconciled"`
	Unresolved   int    `json:"unresolved"`
	Adopted      int    `json:"adopted"`
	BidsRead     int    `json:"bids_read"`
	ListingsRead int    `json:"listings_read"`
	Fills        int    `json:"fills"`
	ForeignFills int    `json:"foreign_fills"`
	BidGPUHours  int64  `json:"bid_gpu_hours"`
	ListGPUHours int64  `json:"listing_gpu_hours"`
	FeedTrades   int    `json:"feed_trades_seen"`
	FeedFills    int    `json:"feed_trades_expected"`
	FeedChecked  bool   `json:"feed_checked"`
	BuyersDecr   string `json:"buyers_decrease"`
	OwnersIncr   string `json:"owners_increase"`
	ReservedCost string `json:"reserved_cost"`
	ListingNet   string `json:"listing_fills_net"`
	SpotSpent    string `json:"spot_spent"`
	SpotEarned   string `json:"spot_earned"`
	ReservedFees string `json:"reserved_fees"`
	ImpliedFees  string `json:"implied_fees"`
}

// maxListed is how many failures of one kind are spelled out.
const maxListed = 10

type failures struct {
	list  []string
	count map[string]int
}

func (f *failures) add(kind, format string, args ...any) {
	if f.count == nil {
		f.count = map[string]int{}
	}
	f.count[kind]++
	if f.count[kind] <= maxListed {
		f.list = append(f.list, fmt.Sprintf(format, args...))
	} else if f.count[kind] == maxListed+1 {
		f.list = append(f.list, fmt.Sprintf("(further %s failures not listed)", kind))
	}
}

// fillRec is one fill as one side reported it.
type fillRec struct {
	bid, listing string
	quantity     int
	price        int64 // ticks
	hours        int64
}

func (f fillRec) gpuHours() int64 { return int64(f.quantity) * f.hours }
func (f fillRec) cost() int64     { return f.gpuHours() * f.price }

// verify reads every order of the run back and checks that the books
// balance. Balances must stand still (teardown ran). watcher, when not
// nil, is checked against the fills as well.
func verify(ctx context.Context, g *generator, e *env, rd reader, watcher *feedStats, unresolved int) Verify {
	c := &verification{g: g, e: e, rd: rd}
	c.v.Unresolved = unresolved
	if c.completeness(ctx) && c.readBack(ctx) {
		c.checkOrders()
		c.checkFills()
		c.checkMoney()
		c.checkFeed(watcher)
	}
	c.v.Failures = c.f.list
	c.v.OK = len(c.f.list) == 0
	return c.v
}

// verification is one run of verify: what was read and what was found.
type verification struct {
	g  *generator
	e  *env
	rd reader
	v  Verify
	f  failures

	bids, listings []order // acknowledged (and adopted) orders
	accts          []*account
	before, after  []client.Account
	bidOut         []bidRead
	listOut        []listingRead

	ownBid, ownListing  map[string]bool
	bidFills, listFills map[string]fillRec // by fill id, as each side reports it

	spent, earned          int64 // bids' spot charges, listings' spot income
	haveSpent, haveEarned  bool  // the target reports them
	reservedCost, listNet  int64 // fills' cost on the bid side, net of fees on the listing side
	reservedFees, spotBids int64
}

// completeness compares the server's lists of the accounts' orders with
// the acknowledged ones. An order the run never saw acknowledged can only
// come from a create whose outcome stayed unknown; such orders are
// adopted (and checked) as long as there are no more of them than that.
func (c *verification) completeness(ctx context.Context) bool {
	c.g.ledger.mu.Lock()
	c.bids = slices.Clone(c.g.ledger.bids)
	c.listings = slices.Clone(c.g.ledger.listings)
	c.g.ledger.mu.Unlock()
	known := map[string]bool{}
	for _, o := range append(slices.Clone(c.bids), c.listings...) {
		known[o.ID] = true
	}
	listed := map[string]bool{}
	var strayBids, strayListings []order
	for i, b := range c.e.buyers {
		all, err := pageAll(ctx, "", b.c.Bids)
		if err != nil {
			c.f.add("list", "list bids of %s: %v", b.Name, err)
			return false
		}
		for _, x := range all {
			listed[x.ID] = true
			if !known[x.ID] {
				strayBids = append(strayBids, order{x.ID, i})
			}
		}
	}
	for i, o := range c.e.owners {
		all, err := pageAll(ctx, "", o.c.Listings)
		if err != nil {
			c.f.add("list", "list listings of %s: %v", o.Name, err)
			return false
		}
		for _, x := range all {
			listed[x.ID] = true
			if !known[x.ID] {
				strayListings = append(strayListings, order{x.ID, i})
			}
		}
	}
	if n := len(strayBids) + len(strayListings); n > 0 {
		if n > c.v.Unresolved {
			c.f.add("stray", "the server holds %d orders of the run's accounts that were never acknowledged (only %d creates had an unknown outcome), e.g. %s",
				n, c.v.Unresolved, append(strayBids, strayListings...)[0].ID)
		}
		c.v.Adopted = n
		c.bids = append(c.bids, strayBids...)
		c.listings = append(c.listings, strayListings...)
	}
	for _, o := range append(slices.Clone(c.bids), c.listings...) {
		if !listed[o.ID] {
			c.f.add("missing", "acknowledged order %s is missing from its account's list", o.ID)
		}
	}
	return true
}

// readBack reads the accounts, every order (one GET each, 32 at a time),
// and the accounts again: balances must not have moved in between.
func (c *verification) readBack(ctx context.Context) bool {
	c.accts = append(append([]*account(nil), c.e.buyers...), c.e.owners...)
	var ok bool
	if c.before, ok = c.readAccounts(ctx); !ok {
		return false
	}
	c.bidOut = make([]bidRead, len(c.bids))
	c.listOut = make([]listingRead, len(c.listings))
	type job struct {
		key, path string
		out       any
	}
	jobs := make(chan job)
	var (
		mu   sync.Mutex
		errs []string
		wg   sync.WaitGroup
	)
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if err := c.rd.get(ctx, j.key, j.path, j.out); err != nil {
					mu.Lock()
					errs = append(errs, err.Error())
					mu.Unlock()
				}
			}
		}()
	}
	for i, o := range c.bids {
		jobs <- job{c.e.buyers[o.Account].Key, "/v1/bids/" + url.PathEscape(o.ID), &c.bidOut[i]}
	}
	for i, o := range c.listings {
		jobs <- job{c.e.owners[o.Account].Key, "/v1/listings/" + url.PathEscape(o.ID), &c.listOut[i]}
	}
	close(jobs)
	wg.Wait()
	for _, msg := range errs {
		c.f.add("read", "read back: %s", msg)
	}
	if len(errs) > 0 {
		return false
	}
	c.v.BidsRead, c.v.ListingsRead = len(c.bidOut), len(c.listOut)
	if c.after, ok = c.readAccounts(ctx); !ok {
		return false
	}
	for i, a := range c.accts {
		if c.before[i].Balance != c.after[i].Balance || c.before[i].Held != c.after[i].Held {
			c.f.add("moving", "account %s moved while being read: balance %s → %s, held %s → %s (teardown left something running)",
				a.Name, c.before[i].Balance, c.after[i].Balance, c.before[i].Held, c.after[i].Held)
		}
	}
	return true
}

func (c *verification) readAccounts(ctx context.Context) ([]client.Account, bool) {
	out := make([]client.Account, len(c.accts))
	for i, a := range c.accts {
		if err := c.rd.get(ctx, a.Key, "/v1/account", &out[i]); err != nil {
			c.f.add("account", "read account %s: %v", a.Name, err)
			return nil, false
		}
	}
	return out, true
}

// money parses a decimal amount of an order, recording a failure when it
// does not parse; nil (not reported by the target) gives ok false.
func (c *verification) money(what, id string, s *string) (int64, bool) {
	if s == nil {
		return 0, false
	}
	t, err := parseTicks(*s)
	if err != nil {
		c.f.add("amount", "%s %s: %v", what, id, err)
	}
	return t, true
}

// checkOrders checks each order on its own (filled quantity, closed after
// teardown, nothing held) and collects its fills and spot money.
func (c *verification) checkOrders() {
	c.ownBid, c.ownListing = map[string]bool{}, map[string]bool{}
	for _, b := range c.bidOut {
		c.ownBid[b.ID] = true
	}
	for _, l := range c.listOut {
		c.ownListing[l.ID] = true
	}
	c.bidFills, c.listFills = map[string]fillRec{}, map[string]fillRec{}
	record := func(side map[string]fillRec, fl client.Fill, bidID, listingID string) {
		p, err := parseTicks(fl.Price)
		if err != nil {
			c.f.add("fill", "fill %s: price %v", fl.ID, err)
			return
		}
		side[fl.ID] = fillRec{bid: bidID, listing: listingID, quantity: fl.Quantity, price: p,
			hours: int64(fl.End.Sub(fl.Start) / time.Hour)}
	}
	c.haveSpent, c.haveEarned = true, true
	for _, b := range c.bidOut {
		sum := 0
		for _, fl := range b.Fills {
			sum += fl.Quantity
			record(c.bidFills, fl, b.ID, fl.ListingID)
			if fl.BidID != "" && fl.BidID != b.ID {
				c.f.add("fill", "bid %s carries fill %s of bid %s", b.ID, fl.ID, fl.BidID)
			}
			if b.Start != nil && b.End != nil && (!fl.Start.Equal(*b.Start) || !fl.End.Equal(*b.End)) {
				c.f.add("fill", "bid %s: fill %s window %s–%s is not the bid's %s–%s", b.ID, fl.ID, fl.Start, fl.End, *b.Start, *b.End)
			}
		}
		switch {
		case sum != b.FilledQuantity:
			c.f.add("bid", "bid %s: filled_quantity %d, its fills sum to %d", b.ID, b.FilledQuantity, sum)
		case b.FilledQuantity > b.Quantity:
			c.f.add("bid", "bid %s: filled %d of %d", b.ID, b.FilledQuantity, b.Quantity)
		case bidOpen(b.Status):
			c.f.add("bid", "bid %s is still %s after teardown", b.ID, b.Status)
		case b.Allocated != 0:
			c.f.add("bid", "bid %s still holds %d GPUs after teardown", b.ID, b.Allocated)
		}
		if held, ok := c.money("bid", b.ID, b.Held); ok && held != 0 {
			c.f.add("bid", "bid %s still holds %s USD after teardown", b.ID, *b.Held)
		}
		if b.Type == client.BidSpot {
			c.spotBids++
		}
		if s, ok := c.money("bid", b.ID, b.Spent); ok {
			c.spent += s
		} else {
			c.haveSpent = false
		}
	}
	for _, l := range c.listOut {
		var hours int64
		for _, fl := range l.Fills {
			record(c.listFills, fl, fl.BidID, l.ID)
			hours += int64(fl.Quantity) * int64(fl.End.Sub(fl.Start)/time.Hour)
		}
		if l.SoldGPUHours != nil && *l.SoldGPUHours != hours {
			c.f.add("listing", "listing %s: sold_gpu_hours %d, its fills sum to %d", l.ID, *l.SoldGPUHours, hours)
		}
		if l.Status == client.ListingActive {
			c.f.add("listing", "listing %s is still active after teardown", l.ID)
		}
		if s, ok := c.money("listing", l.ID, l.SpotEarned); ok {
			c.earned += s
		} else {
			c.haveEarned = false
		}
	}
}

// checkFills matches every fill between the run's own bids and listings
// on both sides and sums GPU-hours from each.
func (c *verification) checkFills() {
	fee := c.g.cfg.FeeBps
	for id, bf := range c.bidFills {
		c.reservedCost += bf.cost()
		c.reservedFees += bf.cost() * fee / 10000
		if !c.ownListing[bf.listing] {
			c.v.ForeignFills++
			continue
		}
		c.v.BidGPUHours += bf.gpuHours()
		lf, ok := c.listFills[id]
		switch {
		case !ok:
			c.f.add("fill", "fill %s is on bid %s but not on listing %s", id, bf.bid, bf.listing)
		case lf.quantity != bf.quantity || lf.price != bf.price || lf.hours != bf.hours || (lf.bid != "" && lf.bid != bf.bid):
			c.f.add("fill", "fill %s differs: bid side %+v, listing side %+v", id, bf, lf)
		}
	}
	for id, lf := range c.listFills {
		c.listNet += lf.cost() - lf.cost()*fee/10000
		if lf.bid != "" && !c.ownBid[lf.bid] {
			c.v.ForeignFills++
			continue
		}
		c.v.ListGPUHours += lf.gpuHours()
		if _, ok := c.bidFills[id]; !ok {
			c.f.add("fill", "fill %s is on listing %s but not on bid %s", id, lf.listing, lf.bid)
		}
	}
	c.v.Fills = len(c.bidFills)
	if c.v.BidGPUHours != c.v.ListGPUHours {
		c.f.add("hours", "GPU-hours filled: bids say %d, listings say %d", c.v.BidGPUHours, c.v.ListGPUHours)
	}
}

// checkMoney compares the balances' movement with what the orders say:
// buyers paid their fills plus their spot charges, owners received their
// fills (net of fees) plus their spot income, and, among the run's own
// accounts, what buyers lost owners gained, less the fees.
func (c *verification) checkMoney() {
	var buyersDecr, ownersIncr int64
	for i, a := range c.accts {
		acct := c.after[i]
		bal, err1 := parseTicks(acct.Balance)
		held, err2 := parseTicks(acct.Held)
		avail, err3 := parseTicks(acct.Available)
		if err := errors.Join(err1, err2, err3); err != nil {
			c.f.add("account", "account %s: %v", a.Name, err)
			continue
		}
		if held != 0 {
			c.f.add("held", "account %s still has %s held after every order closed", a.Name, acct.Held)
		}
		if avail != bal-held {
			c.f.add("held", "account %s: available %s ≠ balance %s − held %s", a.Name, acct.Available, acct.Balance, acct.Held)
		}
		if a.Buyer {
			buyersDecr += a.start - bal
		} else {
			ownersIncr += bal - a.start
		}
	}
	v := &c.v
	v.BuyersDecr, v.OwnersIncr = usd(buyersDecr), usd(ownersIncr)
	v.ReservedCost, v.ReservedFees, v.ListingNet = usd(c.reservedCost), usd(c.reservedFees), usd(c.listNet)
	v.ImpliedFees = usd(buyersDecr - ownersIncr)
	if c.haveSpent {
		v.SpotSpent = usd(c.spent)
		if buyersDecr != c.reservedCost+c.spent {
			c.f.add("money", "buyers' balances fell by %s, but their fills cost %s and spot charges (bids' spent) come to %s: %s unexplained",
				usd(buyersDecr), usd(c.reservedCost), usd(c.spent), usd(buyersDecr-c.reservedCost-c.spent))
		}
	} else {
		v.Notes = append(v.Notes, "the target's bids carry no \"spent\": spot charges are checked only through balances")
	}
	if c.haveEarned {
		v.SpotEarned = usd(c.earned)
		if ownersIncr != c.listNet+c.earned {
			c.f.add("money", "owners' balances rose by %s, but their listings' fills (net of fees) come to %s and spot income (spot_earned) to %s: %s unexplained",
				usd(ownersIncr), usd(c.listNet), usd(c.earned), usd(ownersIncr-c.listNet-c.earned))
		}
	}
	switch {
	case v.ForeignFills > 0:
		v.Notes = append(v.Notes, fmt.Sprintf("%d fills with accounts outside the run: buyers' and owners' totals are not compared", v.ForeignFills))
	case c.g.cfg.FeeBps == 0:
		if buyersDecr != ownersIncr {
			c.f.add("money", "with no fee, buyers' balances fell by %s but owners' rose by %s (difference %s; bids' spot charges %s, listings' spot income %s; spot bids of accounts outside the run on the run's listings would explain a difference there)",
				usd(buyersDecr), usd(ownersIncr), usd(buyersDecr-ownersIncr), usd(c.spent), usd(c.earned))
		}
	case c.haveSpent:
		// Spot fees are rounded per placement with a carried remainder:
		// allow a tick per spot bid.
		spotFees := buyersDecr - ownersIncr - c.reservedFees
		want := c.spent * c.g.cfg.FeeBps / 10000
		if d := spotFees - want; spotFees < 0 || d > c.spotBids+1 || -d > c.spotBids+1 {
			c.f.add("money", "fees: buyers − owners = %s; reserved fees %s leave %s for spot fees, expected about %s",
				usd(buyersDecr-ownersIncr), usd(c.reservedFees), usd(spotFees), usd(want))
		}
	}
}

// checkFeed checks that the first subscriber, if it stayed connected
// without a seq gap, saw every fill between the run's accounts on
// trades:<market>. The feed may trail the responses by seconds when it is
// overloaded, so it waits while the feed still delivers (up to 3
// minutes); only a feed that has gone quiet with fills missing lost them.
func (c *verification) checkFeed(watcher *feedStats) {
	if watcher == nil || watcher.subscribers == 0 || !watcher.watcherOK.Load() {
		return
	}
	quiet := func() bool { return time.Since(time.Unix(0, watcher.watcherLast.Load())) > 5*time.Second }
	var missing int
	var example string
	begin := time.Now()
	for {
		missing, c.v.FeedFills, c.v.FeedTrades = 0, 0, 0
		watcher.mu.Lock()
		for id, bf := range c.bidFills {
			if !c.ownListing[bf.listing] {
				continue
			}
			c.v.FeedFills++
			if watcher.trades[id] {
				c.v.FeedTrades++
			} else {
				missing++
				example = id
			}
		}
		watcher.mu.Unlock()
		if missing == 0 || quiet() || time.Since(begin) > 3*time.Minute || !watcher.watcherOK.Load() {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	switch {
	case !watcher.watcherOK.Load():
	case missing == 0:
		c.v.FeedChecked = true
	case quiet():
		c.v.FeedChecked = true
		c.f.add("feed", "%d of %d fills never appeared on trades:<market> for a subscriber that stayed connected without a seq gap, and its feed has gone quiet (e.g. %s)",
			missing, c.v.FeedFills, example)
	default:
		c.v.Notes = append(c.v.Notes, fmt.Sprintf("feed not checked: subscriber 0 was still catching up after %s (%d of %d fills seen)",
			time.Since(begin).Round(time.Second), c.v.FeedTrades, c.v.FeedFills))
	}
}
