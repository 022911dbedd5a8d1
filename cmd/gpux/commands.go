package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/gpux/gpux/client"
)

func (a *app) prices(ctx context.Context, g *globals, args []string) error {
	f := a.flags(g, "prices", "", "Every market's spot price, last trade and 24 h VWAP next to the cheapest\n"+
		"on-demand rate of AWS, Azure and Google Cloud, and the discount against it.\n"+
		"A * after the rate marks it stale: older than the server's staleness limit\n"+
		"(gpuxd --rates-stale-after), or undated.")
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	rows, err := g.client().Prices(ctx)
	if err != nil {
		return err
	}
	return a.emit(g, rows, func(w io.Writer) {
		row(w, "MARKET", "SPOT", "LAST", "VWAP 24H", "BEST ASK", "CLOUD ON-DEMAND", "DISCOUNT", "BASIS")
		anyStale := false
		for _, r := range rows {
			cloud, disc := "-", "-"
			if best, ok := bestCloud(r); ok {
				cloud = best.Provider + " " + best.USDPerGPUHour
				if best.Stale {
					cloud += staleMark
					anyStale = true
				}
				disc = percent(r.DiscountVsReference[best.Provider])
			}
			row(w, r.Market, opt(r.SpotPrice), opt(r.LastTradePrice), opt(r.VWAP24h), opt(r.BestAsk), cloud, disc, opt(r.PriceBasis))
		}
		if anyStale {
			// After the rows, so `gpux prices | head` still shows them.
			fmt.Fprintln(w, "\n"+staleLegend)
		}
	})
}

func (a *app) markets(ctx context.Context, g *globals, args []string) error {
	f := a.flags(g, "markets", "", "The markets of the exchange: one GPU type in one region each.")
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	ms, err := g.client().Markets(ctx)
	if err != nil {
		return err
	}
	return a.emit(g, ms, func(w io.Writer) {
		row(w, "MARKET", "GPU", "REGION")
		for _, m := range ms {
			row(w, m.ID, m.GPU, m.Region)
		}
	})
}

func (a *app) book(ctx context.Context, g *globals, args []string) error {
	f := a.flags(g, "book", "MARKET", "A market's spot auction for the hour under way and its resting reserved\n"+
		"bids and unsold listing capacity, best first, by price and window.")
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	b, err := g.client().Book(ctx, pos[0])
	if err != nil {
		return err
	}
	return a.emit(g, b, func(w io.Writer) {
		s := b.Spot
		row(w, "market:", b.Market)
		row(w, "spot:", fmt.Sprintf("price %s  ask %s  supply %d  allocated %d  waiting %d",
			opt(s.Price), opt(s.Ask), s.Supply, s.Allocated, s.Waiting))
		row(w)
		row(w, "SIDE", "PRICE", "QTY", "START", "END", "HOURS")
		for i := len(b.Asks) - 1; i >= 0; i-- { // best ask next to best bid
			l := b.Asks[i]
			row(w, "ask", l.Price, l.Quantity, when(l.Start), when(l.End), hours(l.Start, l.End))
		}
		for _, l := range b.Bids {
			row(w, "bid", l.Price, l.Quantity, when(l.Start), when(l.End), hours(l.Start, l.End))
		}
	})
}

func (a *app) quote(ctx context.Context, g *globals, args []string) error {
	f := a.flags(g, "quote", "MARKET", "What buying reserved GPUs would cost against the book now, without\n"+
		"placing a bid, next to the clouds' on-demand cost of the same GPU-hours.")
	qty := f.Int("quantity", 1, "GPUs")
	start := f.String("start", "+1h", "first hour (RFC 3339, now, +2h, ...)")
	end := f.String("end", "", "end of the window (exclusive)")
	dur := f.String("for", "", "window length in whole hours (e.g. 12h, 3d) instead of --end")
	flexible := f.Int("duration-hours", 0, "the cheapest block of this many hours inside the window")
	limit := f.String("limit", "", "the limit price the fill estimate is for (default: the best ask)")
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	s, e, err := window(a.now(), *start, *end, *dur)
	if err != nil {
		return err
	}
	q, err := g.client().QuoteFor(ctx, pos[0], client.QuoteQuery{Quantity: *qty, Start: s, End: e, DurationHours: *flexible, LimitPrice: *limit})
	if err != nil {
		return err
	}
	return a.emit(g, q, func(w io.Writer) {
		kv(w, "market", q.Market,
			"window", fmt.Sprintf("%s → %s (%d h)", when(q.Start), when(q.End), hours(q.Start, q.End)))
		if q.BlockStart != nil && q.BlockEnd != nil {
			kv(w, "block", fmt.Sprintf("%s → %s (%d h)", when(*q.BlockStart), when(*q.BlockEnd), hours(*q.BlockStart, *q.BlockEnd)))
		}
		kv(w, "filled", fmt.Sprintf("%d of %d GPUs", q.FilledQuantity, q.Quantity),
			"total", q.TotalCost,
			"average", opt(q.AveragePrice)+" per GPU-hour",
			"fill estimate", fillEstimate(q.FillEstimate, q.FillEstimateSamples))
		for _, p := range cloudProviders {
			d, ok := q.DiscountVsReference[p]
			if !ok {
				continue
			}
			row(w, p+":", fmt.Sprintf("on-demand cost %s, discount %s", q.ReferenceCost[p], percent(d)))
		}
		if len(q.Fills) > 0 {
			row(w)
			row(w, "LISTING", "QTY", "PRICE")
			for _, fl := range q.Fills {
				row(w, fl.ListingID, fl.Quantity, fl.Price)
			}
		}
	})
}

func (a *app) bid(ctx context.Context, g *globals, args []string) error {
	f := a.flags(g, "bid", "reserved|spot MARKET", "Place a bid. A reserved bid buys GPUs for a future window and rests until\n"+
		"it fills, expires or is cancelled; a spot bid runs GPUs in the hour under\n"+
		"way while its limit is at or above the clearing price.")
	qty := f.Int("quantity", 1, "GPUs")
	limit := f.String("limit", "", "limit price per GPU-hour: 2.39, ref:aws:0.40 or spot:-0.10 (required)")
	start := f.String("start", "", "reserved: first hour (+2h, RFC 3339)")
	end := f.String("end", "", "reserved: end of the window (exclusive)")
	dur := f.String("for", "", "reserved: window length (12h, 3d) instead of --end")
	minQty := f.Int("min-quantity", 0, "reserved: fill at least this many GPUs or nothing (default all)")
	flexible := f.Int("duration-hours", 0, "reserved: any block of this many hours inside the window")
	expires := f.String("expires", "", "reserved: stop resting at this time (+30m, RFC 3339)")
	orderID := f.String("client-order-id", "", "your own reference for the bid")
	idem := f.String("idempotency-key", "", "repeat-safe key: the same key returns the first bid")
	quiet := f.Bool("q", false, "print only the bid id")
	pos, err := f.parse(args, 2, 2)
	if err != nil {
		return err
	}
	if *limit == "" {
		return usagef("bid: --limit is required")
	}
	price, err := parsePrice(*limit)
	if err != nil {
		return usagef("--limit %v", err)
	}
	req := client.BidRequest{Type: pos[0], Market: pos[1], Quantity: *qty, LimitPrice: price,
		ClientOrderID: *orderID, IdempotencyKey: *idem}
	switch pos[0] {
	case client.BidReserved:
		if *start == "" {
			return usagef("bid reserved: --start is required (e.g. --start +2h --for 12h)")
		}
		if req.Start, req.End, err = window(a.now(), *start, *end, *dur); err != nil {
			return err
		}
		req.MinQuantity, req.DurationHours = *minQty, *flexible
		if *expires != "" {
			if req.ExpiresAt, err = parseTime(*expires, a.now(), false); err != nil {
				return usagef("--expires %v", err)
			}
		}
	case client.BidSpot:
		if *start != "" || *end != "" || *dur != "" || *expires != "" || *minQty != 0 || *flexible != 0 {
			return usagef("bid spot: --start, --end, --for, --expires, --min-quantity and --duration-hours are for reserved bids")
		}
	default:
		return usagef("bid: the type is reserved or spot, not %q", pos[0])
	}
	c := g.client()
	b, err := c.PlaceBid(ctx, req)
	if err != nil {
		return err
	}
	if *quiet {
		fmt.Fprintln(a.stdout, b.ID)
		return nil
	}
	why := ""
	if b.Status == client.BidWaiting {
		why = waitingReason(ctx, c, b)
	}
	return a.emit(g, b, func(w io.Writer) {
		showBid(w, b)
		if why != "" {
			row(w, "why:", why)
		}
		fills(w, b.Fills)
	})
}

// waitingReason explains why a spot bid holds no GPUs, from the book.
func waitingReason(ctx context.Context, c *client.Client, b client.Bid) string {
	bk, err := c.Book(ctx, b.Market)
	if err != nil {
		return ""
	}
	s := bk.Spot
	switch {
	case s.Supply == 0:
		return "no GPUs are offered to spot in " + b.Market + " this hour; the bid runs as soon as some are"
	case s.Ask == nil:
		return fmt.Sprintf("all %d spot GPUs are taken by bids at or above the clearing price %s", s.Supply, opt(s.Price))
	default:
		return fmt.Sprintf("the cheapest free spot GPU asks %s, above your limit %s", *s.Ask, b.LimitPrice)
	}
}

func showBid(w io.Writer, b client.Bid) {
	kv(w, "id", b.ID, "type", b.Type, "market", b.Market, "status", b.Status)
	if b.Reason != "" {
		row(w, "reason:", b.Reason)
	}
	kv(w, "quantity", fmt.Sprint(b.Quantity), "limit", b.LimitPrice)
	if b.Type == client.BidReserved {
		kv(w, "window", whenp(b.Start)+" → "+whenp(b.End), "filled", fmt.Sprint(b.FilledQuantity))
	} else {
		kv(w, "allocated", fmt.Sprint(b.Allocated))
	}
	if b.PreemptAt != nil {
		kv(w, "preempt at", whenp(b.PreemptAt))
	}
	kv(w, "held", b.Held, "cost", cost(b))
}

// cost is what a bid has cost so far: a reserved bid's fills (GPUs ×
// hours × price, paid when they fill), a spot bid's spent.
func cost(b client.Bid) string {
	if b.Type != client.BidReserved {
		return b.Spent
	}
	sum := decimal.Zero
	for _, f := range b.Fills {
		p, err := decimal.NewFromString(f.Price)
		if err != nil {
			return "?"
		}
		sum = sum.Add(p.Mul(decimal.NewFromInt(int64(f.Quantity) * hours(f.Start, f.End))))
	}
	return sum.StringFixed(2)
}

func (a *app) listing(ctx context.Context, g *globals, args []string) error {
	f := a.flags(g, "listing", "create MARKET", "Offer GPUs for a window (owner). Unsold capacity of the hour under way\n"+
		"serves spot when --spot-floor is set.")
	qty := f.Int("quantity", 1, "GPUs")
	start := f.String("start", "now", "first hour: now (the hour under way), +2h, RFC 3339")
	end := f.String("end", "", "end of the window (exclusive)")
	dur := f.String("for", "", "window length (24h, 7d) instead of --end")
	reserve := f.String("reserve", "", "reserve price per GPU-hour: 2.39 or ref:aws:0.60 (required)")
	floor := f.String("spot-floor", "", "offer unsold hours to spot at no less than this (2.10 or ref:aws:0.70)")
	idem := f.String("idempotency-key", "", "repeat-safe key: the same key returns the first listing")
	quiet := f.Bool("q", false, "print only the listing id")
	pos, err := f.parse(args, 2, 2)
	if err != nil {
		return err
	}
	if pos[0] != "create" {
		return usagef("listing: only \"create\" (see gpux listings and gpux cancel)")
	}
	if *reserve == "" {
		return usagef("listing create: --reserve is required")
	}
	req := client.ListingRequest{Market: pos[1], Quantity: *qty, IdempotencyKey: *idem}
	if req.ReservePrice, err = parsePrice(*reserve); err != nil {
		return usagef("--reserve %v", err)
	}
	if *floor != "" {
		if req.SpotPriceFloor, err = parsePrice(*floor); err != nil {
			return usagef("--spot-floor %v", err)
		}
	}
	if req.Start, req.End, err = window(a.now(), *start, *end, *dur); err != nil {
		return err
	}
	l, err := g.client().PlaceListing(ctx, req)
	if err != nil {
		return err
	}
	if *quiet {
		fmt.Fprintln(a.stdout, l.ID)
		return nil
	}
	return a.emit(g, l, func(w io.Writer) {
		showListing(w, l)
		fills(w, l.Fills)
	})
}

func showListing(w io.Writer, l client.Listing) {
	kv(w, "id", l.ID, "market", l.Market, "status", l.Status,
		"quantity", fmt.Sprint(l.Quantity),
		"window", when(l.Start)+" → "+when(l.End),
		"reserve", l.ReservePrice, "spot floor", opt(l.SpotPriceFloor),
		"sold", fmt.Sprintf("%d GPU-hours", l.SoldGPUHours),
		"spot", fmt.Sprintf("%d of %d GPUs running, earned %s", l.SpotAllocated, l.SpotSupply, l.SpotEarned))
}

func (a *app) orders(ctx context.Context, g *globals, args []string) error {
	f := a.flags(g, "orders", "", "Your bids, newest first.")
	status := f.String("status", "", "only bids with this status (resting, running, waiting, filled, ...)")
	limit := f.Int("limit", 100, "at most this many (1..1000)")
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	p, err := g.client().Bids(ctx, client.ListQuery{Status: *status, Limit: *limit})
	if err != nil {
		return err
	}
	return a.emit(g, p, func(w io.Writer) {
		row(w, "ID", "TYPE", "MARKET", "QTY", "LIMIT", "STATUS", "FILLED", "RUNNING", "START", "END", "COST")
		for _, b := range p.Items {
			row(w, b.ID, b.Type, b.Market, b.Quantity, b.LimitPrice, b.Status, b.FilledQuantity, b.Allocated, whenp(b.Start), whenp(b.End), cost(b))
		}
	})
}

func (a *app) listings(ctx context.Context, g *globals, args []string) error {
	f := a.flags(g, "listings", "", "Your listings, newest first.")
	status := f.String("status", "", "only listings with this status (active, cancelled, ended)")
	limit := f.Int("limit", 100, "at most this many (1..1000)")
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	p, err := g.client().Listings(ctx, client.ListQuery{Status: *status, Limit: *limit})
	if err != nil {
		return err
	}
	return a.emit(g, p, func(w io.Writer) {
		row(w, "ID", "MARKET", "QTY", "RESERVE", "SPOT FLOOR", "STATUS", "SOLD GPU-H", "SPOT RUNNING", "START", "END", "SPOT EARNED")
		for _, l := range p.Items {
			row(w, l.ID, l.Market, l.Quantity, l.ReservePrice, opt(l.SpotPriceFloor), l.Status, l.SoldGPUHours, l.SpotAllocated, when(l.Start), when(l.End), l.SpotEarned)
		}
	})
}

// cancelled is one line of `cancel`'s answer.
type cancelled struct {
	Kind    string          `json:"kind"` // "bid" or "listing"
	Bid     *client.Bid     `json:"bid,omitempty"`
	Listing *client.Listing `json:"listing,omitempty"`
}

func (a *app) cancel(ctx context.Context, g *globals, args []string) error {
	f := a.flags(g, "cancel", "ID...", "Cancel bids or listings: a bid stops resting or releases its spot GPUs;\n"+
		"a listing's unsold capacity is removed (sold hours stand).")
	ids, err := f.parse(args, 1, -1)
	if err != nil {
		return err
	}
	c := g.client()
	var out []cancelled
	var failed []error
	for _, id := range ids {
		b, err := c.CancelBid(ctx, id)
		if err == nil {
			out = append(out, cancelled{Kind: "bid", Bid: &b})
			continue
		}
		if !client.IsStatus(err, http.StatusNotFound) && !client.IsStatus(err, http.StatusForbidden) {
			return err
		}
		l, err := c.CancelListing(ctx, id)
		if err == nil {
			out = append(out, cancelled{Kind: "listing", Listing: &l})
			continue
		}
		if !client.IsStatus(err, http.StatusNotFound) && !client.IsStatus(err, http.StatusForbidden) {
			return err
		}
		failed = append(failed, fmt.Errorf("%s: no bid or listing of yours has this id", id))
	}
	if err := a.emit(g, out, func(w io.Writer) {
		row(w, "KIND", "ID", "STATUS")
		for _, x := range out {
			if x.Bid != nil {
				row(w, "bid", x.Bid.ID, x.Bid.Status)
			} else {
				row(w, "listing", x.Listing.ID, x.Listing.Status)
			}
		}
	}); err != nil {
		return err
	}
	if len(failed) > 0 {
		return cliError{errors.Join(failed...).Error()}
	}
	return nil
}

func (a *app) account(ctx context.Context, g *globals, args []string) error {
	f := a.flags(g, "account", "", "Your account: balance, money held by open bids, and what is available.")
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	acc, err := g.client().Account(ctx)
	if err != nil {
		return err
	}
	return a.emit(g, acc, func(w io.Writer) {
		kv(w, "id", acc.ID, "name", acc.Name, "roles", roles(acc.Roles),
			"balance", acc.Balance, "held", acc.Held, "available", acc.Available)
		if len(acc.Wallets) > 0 {
			io.WriteString(w, "\n")
			row(w, "SHARD", "BALANCE", "HELD", "AVAILABLE")
			for _, wl := range acc.Wallets {
				row(w, wl.Shard, wl.Balance, wl.Held, wl.Available)
			}
		}
	})
}

func (a *app) transfer(ctx context.Context, g *globals, args []string) error {
	f := a.flags(g, "transfer", "--from SHARD --to SHARD AMOUNT", "Move money between two of your wallets, on two shards, through an API node:\n"+
		"journaled on both shards under one transfer id, exactly once. A pending\n"+
		"transfer is finished by the API nodes; repeat with the same\n"+
		"--idempotency-key to see how far it got.")
	from := f.String("from", "", "the shard whose wallet pays (required)")
	to := f.String("to", "", "the shard whose wallet receives (required)")
	idem := f.String("idempotency-key", "", "repeat-safe key: the same key transfers once")
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	if *from == "" || *to == "" {
		return usagef("--from and --to are required")
	}
	tr, err := g.client().Transfer(ctx, client.TransferRequest{FromShard: *from, ToShard: *to, Amount: pos[0], IdempotencyKey: *idem})
	if err != nil {
		return err
	}
	return a.emit(g, tr, func(w io.Writer) {
		kv(w, "id", tr.ID, "from", tr.FromShard, "to", tr.ToShard, "amount", tr.Amount, "status", tr.Status)
	})
}

func (a *app) statement(ctx context.Context, g *globals, args []string) error {
	f := a.flags(g, "statement", "", "What moved your balance: deposits, withdrawals, reserved fills, spot\n"+
		"charges and earnings, fees. The amounts sum to the balance's change.")
	from := f.String("from", "", "start of the period (-24h, RFC 3339); default: the server's")
	to := f.String("to", "", "end of the period (now, RFC 3339); default: now")
	csv := f.Bool("csv", false, "print the server's CSV")
	limit := f.Int("limit", 0, "lines per request (default: the server's)")
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	var q client.StatementQuery
	var err error
	if *from != "" {
		if q.From, err = parseTime(*from, a.now(), false); err != nil {
			return usagef("--from %v", err)
		}
	}
	if *to != "" {
		if q.To, err = parseTime(*to, a.now(), false); err != nil {
			return usagef("--to %v", err)
		}
	}
	q.Limit = *limit
	c := g.client()
	if *csv {
		b, err := c.StatementCSV(ctx, q)
		if err != nil {
			return err
		}
		_, err = a.stdout.Write(b)
		return err
	}
	var lines []client.StatementLine
	for l, err := range c.AllStatement(ctx, q) {
		if err != nil {
			return err
		}
		lines = append(lines, l)
	}
	if lines == nil {
		lines = []client.StatementLine{}
	}
	return a.emit(g, lines, func(w io.Writer) {
		row(w, "AT", "KIND", "AMOUNT", "BALANCE AFTER", "REF")
		for _, l := range lines {
			row(w, l.At.UTC().Format("2006-01-02 15:04:05"), l.Kind, l.Amount, l.BalanceAfter, l.Ref)
		}
		net, err := sumAmounts(lines)
		if err == nil {
			row(w)
			row(w, fmt.Sprintf("%d lines", len(lines)), "net", net)
		}
	})
}

func (a *app) accounts(ctx context.Context, g *globals, args []string) error {
	f := a.flags(g, "accounts", "create NAME", "Create an account (admin key needed). Its API key is shown this once.")
	rl := f.String("roles", "buyer", "buyer, owner or buyer,owner")
	idem := f.String("idempotency-key", "", "repeat-safe key: the same key returns the first account")
	quiet := f.Bool("q", false, "print only \"ID KEY\"")
	pos, err := f.parse(args, 2, 2)
	if err != nil {
		return err
	}
	if pos[0] != "create" {
		return usagef("accounts: only \"create\"")
	}
	req := client.CreateAccountRequest{Name: pos[1], Roles: strings.Split(*rl, ","), IdempotencyKey: *idem}
	acc, err := g.client().CreateAccount(ctx, req)
	if err != nil {
		return err
	}
	if *quiet {
		fmt.Fprintln(a.stdout, acc.ID, acc.APIKey)
		return nil
	}
	return a.emit(g, acc, func(w io.Writer) {
		kv(w, "id", acc.ID, "name", acc.Name, "roles", roles(acc.Roles), "api key", acc.APIKey)
		row(w, "", "(shown this once: keep it)")
	})
}

func (a *app) deposit(ctx context.Context, g *globals, args []string) error {
	f := a.flags(g, "deposit", "ACCOUNT_ID AMOUNT", "Credit money to an account (admin key needed).")
	idem := f.String("idempotency-key", "", "repeat-safe key: the same key deposits once")
	shard := f.String("shard", "", "the shard whose wallet gets it (needed through an API node of several shards)")
	pos, err := f.parse(args, 2, 2)
	if err != nil {
		return err
	}
	var opts []client.CallOption
	if *idem != "" {
		opts = append(opts, client.WithIdempotencyKey(*idem))
	}
	if *shard != "" {
		opts = append(opts, client.WithShard(*shard))
	}
	acc, err := g.client().Deposit(ctx, pos[0], pos[1], opts...)
	if err != nil {
		return err
	}
	return a.emit(g, acc, func(w io.Writer) {
		kv(w, "id", acc.ID, "name", acc.Name, "balance", acc.Balance, "held", acc.Held, "available", acc.Available)
	})
}

func (a *app) rates(ctx context.Context, g *globals, args []string) error {
	f := a.flags(g, "rates", "get | put FILE", "The reference-rate table /v1/prices compares against (admin key needed).\n"+
		"get prints the table in force as a rates file (CSV); put FILE replaces it\n"+
		"with a rates file (at most 1 MiB; gpuxd rates import writes one). The\n"+
		"server checks the whole file first: a bad line is refused with its line\n"+
		"and column, and nothing changes. A restart of gpuxd loads its --rates\n"+
		"file (or the built-in table) again.")
	pos, err := f.parse(args, 1, 2)
	if err != nil {
		return err
	}
	switch {
	case pos[0] == "get" && len(pos) == 1:
		b, err := g.client().ReferenceRates(ctx)
		if err != nil {
			return err
		}
		_, err = a.stdout.Write(b)
		return err
	case pos[0] == "put" && len(pos) == 2:
		data, err := readLimited(pos[1], client.MaxRatesFile)
		if err != nil {
			return err
		}
		set, err := g.client().SetReferenceRates(ctx, data)
		if err != nil {
			return err
		}
		return a.emit(g, set, func(w io.Writer) {
			kv(w, "rates", fmt.Sprint(set.Rates), "engine rates", fmt.Sprint(set.EngineRates), "hash", set.Hash, "seq", fmt.Sprint(set.Seq))
		})
	}
	return usagef("rates: \"get\" or \"put FILE\"")
}

// readLimited reads a file of at most limit bytes; a larger one is a
// usage error, found without reading more than limit+1 bytes.
func readLimited(path string, limit int) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, usagef("%v", err)
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > limit {
		return nil, usagef("%s: over %d bytes, the server's limit for a rates file", path, limit)
	}
	return b, nil
}

// fillEstimate is a one-line reading of a fill estimate: the chances of
// filling within 1 h and 24 h, the median wait, and the samples it rests
// on (or why there is none).
func fillEstimate(fe *client.FillEstimate, samples int) string {
	if fe == nil {
		return fmt.Sprintf("none yet (%d of 30 samples)", samples)
	}
	median := "not reached"
	if fe.MedianSeconds != nil {
		median = (time.Duration(*fe.MedianSeconds) * time.Second).String()
	}
	return fmt.Sprintf("p(fill) %s in 1 h, %s in 24 h, median %s (%d samples)", fe.PFill1h, fe.PFill24h, median, fe.Samples)
}
