package client

import (
	"context"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// amountBody is the body of deposits and withdrawals.
type amountBody struct {
	Amount string `json:"amount"`
	Shard  string `json:"shard,omitempty"`
}

// CreateAccount creates an account (admin key needed) and returns it with
// its API key, shown this once. Errors: 401/403 without an admin key; 422
// for an empty name or unknown role.
func (c *Client) CreateAccount(ctx context.Context, req CreateAccountRequest, opts ...CallOption) (AccountCreated, error) {
	var out AccountCreated
	err := c.do(ctx, request{method: http.MethodPost, path: "/v1/accounts", body: req,
		idem: idemKey(req.IdempotencyKey, opts), out: &out})
	return out, err
}

// Deposit credits amount (a positive decimal) to account accountID (admin
// key needed) and returns the account after the deposit.
func (c *Client) Deposit(ctx context.Context, accountID, amount string, opts ...CallOption) (Account, error) {
	var out Account
	err := c.do(ctx, request{method: http.MethodPost, path: pathf("/v1/accounts/%s/deposits", accountID),
		body: amountBody{amount, shardOf(opts)}, idem: idemKey("", opts), out: &out})
	return out, err
}

// Withdraw debits amount from account accountID and returns the account
// after the withdrawal. Errors: 422 "insufficient_funds" when amount exceeds
// the available balance.
func (c *Client) Withdraw(ctx context.Context, accountID, amount string, opts ...CallOption) (Account, error) {
	var out Account
	err := c.do(ctx, request{method: http.MethodPost, path: pathf("/v1/accounts/%s/withdrawals", accountID),
		body: amountBody{amount, shardOf(opts)}, idem: idemKey("", opts), out: &out})
	return out, err
}

// Account returns the caller's own account with balance, held and available.
func (c *Client) Account(ctx context.Context) (Account, error) {
	var out Account
	err := c.do(ctx, request{method: http.MethodGet, path: "/v1/account", out: &out})
	return out, err
}

// Transfer moves money between two of the caller's wallets (shards)
// through an API node: journaled on both shards under one transfer id,
// exactly once (docs/CLUSTER.md). Status is "completed", or "pending" (202:
// an API node's sweeper finishes it); repeating the call with the same
// Idempotency-Key answers the transfer's current state. Errors: 422 with
// the source's code (e.g. "insufficient_funds"), "same_shard",
// "unknown_shard"; an engine node answers 422 (it holds one wallet).
func (c *Client) Transfer(ctx context.Context, req TransferRequest, opts ...CallOption) (Transfer, error) {
	var out Transfer
	err := c.do(ctx, request{method: http.MethodPost, path: "/v1/account/transfers", body: req,
		idem: idemKey(req.IdempotencyKey, opts), out: &out})
	return out, err
}

// Markets lists every market. No key needed.
func (c *Client) Markets(ctx context.Context) ([]Market, error) {
	var out []Market
	err := c.do(ctx, request{method: http.MethodGet, path: "/v1/markets", out: &out})
	return out, err
}

// Book returns a market's order book and spot state. No key needed.
// Errors: 404 for an unknown market.
func (c *Client) Book(ctx context.Context, market string) (Book, error) {
	var out Book
	err := c.do(ctx, request{method: http.MethodGet, path: pathf("/v1/markets/%s/book", market), out: &out})
	return out, err
}

// Prices returns every market's prices next to the cloud reference rates.
// No key needed.
func (c *Client) Prices(ctx context.Context) ([]PriceRow, error) {
	var out []PriceRow
	err := c.do(ctx, request{method: http.MethodGet, path: "/v1/prices", out: &out})
	return out, err
}

// MarketTrades returns a market's recent fills, newest first; limit ≤ 0
// takes the server default (100).
func (c *Client) MarketTrades(ctx context.Context, market string, limit int) (Page[Trade], error) {
	return c.MarketTradesPage(ctx, market, ListQuery{Limit: limit})
}

// MarketTradesPage is MarketTrades with a cursor (Status is ignored).
func (c *Client) MarketTradesPage(ctx context.Context, market string, q ListQuery) (Page[Trade], error) {
	q.Status = ""
	var out Page[Trade]
	err := c.do(ctx, request{method: http.MethodGet, path: pathf("/v1/markets/%s/trades", market),
		query: q.values(), out: &out})
	return out, err
}

// Quote prices buying quantity GPUs over [start, end) against the current
// book without placing a bid. No key needed. Errors: 404 unknown market;
// 422 "invalid_window" for a bad window.
func (c *Client) Quote(ctx context.Context, market string, quantity int, start, end time.Time) (Quote, error) {
	return c.QuoteFor(ctx, market, QuoteQuery{Quantity: quantity, Start: start, End: end})
}

// QuoteFor is Quote with every option: a flexible block (DurationHours)
// and the limit a fill estimate is for. Errors as Quote.
func (c *Client) QuoteFor(ctx context.Context, market string, qq QuoteQuery) (Quote, error) {
	q := url.Values{}
	q.Set("quantity", strconv.Itoa(qq.Quantity))
	if !qq.Start.IsZero() {
		q.Set("start", formatTime(qq.Start))
	}
	if !qq.End.IsZero() {
		q.Set("end", formatTime(qq.End))
	}
	if qq.DurationHours != 0 {
		q.Set("duration_hours", strconv.Itoa(qq.DurationHours))
	}
	if qq.LimitPrice != "" {
		q.Set("limit_price", qq.LimitPrice)
	}
	var out Quote
	err := c.do(ctx, request{method: http.MethodGet, path: pathf("/v1/markets/%s/quote", market), query: q, out: &out})
	return out, err
}

// History returns a market's candles (q.Interval required; q.Kind
// KindTrades by default or KindSpot for the spot clearing price), oldest
// first. No key needed. Errors: 404 unknown market; 422
// "invalid_interval", "invalid_window".
func (c *Client) History(ctx context.Context, market string, q HistoryQuery) (History, error) {
	v := url.Values{}
	if q.Interval != "" {
		v.Set("interval", q.Interval)
	}
	if q.Kind != "" {
		v.Set("kind", q.Kind)
	}
	if !q.From.IsZero() {
		v.Set("from", formatTime(q.From))
	}
	if !q.To.IsZero() {
		v.Set("to", formatTime(q.To))
	}
	var out History
	err := c.do(ctx, request{method: http.MethodGet, path: pathf("/v1/markets/%s/history", market), query: v, out: &out})
	return out, err
}

// Statement returns a page of the caller's statement: one line per
// deposit, withdrawal, reserved fill, spot charge, spot earning and fee in
// [q.From, q.To), whose amounts sum to the balance's change over it.
func (c *Client) Statement(ctx context.Context, q StatementQuery) (Page[StatementLine], error) {
	var out Page[StatementLine]
	err := c.do(ctx, request{method: http.MethodGet, path: "/v1/account/statement", query: q.values(""), out: &out})
	return out, err
}

// StatementCSV returns the caller's statement over [q.From, q.To) as the
// server's CSV (format=csv), unchanged.
func (c *Client) StatementCSV(ctx context.Context, q StatementQuery) ([]byte, error) {
	var out []byte
	err := c.do(ctx, request{method: http.MethodGet, path: "/v1/account/statement", query: q.values("csv"),
		raw: &out, accept: "text/csv, application/problem+json"})
	return out, err
}

// AllStatement iterates over every line of the caller's statement from q
// on, following next_cursor. It stops after the first error, which it
// yields.
func (c *Client) AllStatement(ctx context.Context, q StatementQuery) iter.Seq2[StatementLine, error] {
	return func(yield func(StatementLine, error) bool) {
		for {
			p, err := c.Statement(ctx, q)
			if err != nil {
				yield(StatementLine{}, err)
				return
			}
			for _, l := range p.Items {
				if !yield(l, nil) {
					return
				}
			}
			if p.NextCursor == nil || *p.NextCursor == "" || len(p.Items) == 0 {
				return
			}
			q.Cursor = *p.NextCursor
		}
	}
}

func (q StatementQuery) values(format string) url.Values {
	v := url.Values{}
	if !q.From.IsZero() {
		v.Set("from", formatTime(q.From))
	}
	if !q.To.IsZero() {
		v.Set("to", formatTime(q.To))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	if q.Shard != "" {
		v.Set("shard", q.Shard)
	}
	if format != "" {
		v.Set("format", format)
	}
	return v
}

// PlaceListing offers capacity (owner key needed) and returns the listing
// as it stands right after matching, fills included. Errors: 422 with codes
// such as "invalid_window", "invalid_peg".
func (c *Client) PlaceListing(ctx context.Context, req ListingRequest, opts ...CallOption) (Listing, error) {
	req.Start, req.End = utc(req.Start), utc(req.End)
	var out Listing
	err := c.do(ctx, request{method: http.MethodPost, path: "/v1/listings", body: req,
		idem: idemKey(req.IdempotencyKey, opts), out: &out})
	return out, err
}

// Listing returns one of the caller's listings; 404 for another account's.
func (c *Client) Listing(ctx context.Context, id string) (Listing, error) {
	var out Listing
	err := c.do(ctx, request{method: http.MethodGet, path: pathf("/v1/listings/%s", id), out: &out})
	return out, err
}

// Listings returns a page of the caller's listings, newest first.
func (c *Client) Listings(ctx context.Context, q ListQuery) (Page[Listing], error) {
	var out Page[Listing]
	err := c.do(ctx, request{method: http.MethodGet, path: "/v1/listings", query: q.values(), out: &out})
	return out, err
}

// AllListings iterates over every page of the caller's listings from q on.
// It stops after the first error, which it yields.
func (c *Client) AllListings(ctx context.Context, q ListQuery) iter.Seq2[Listing, error] {
	return all(ctx, q, c.Listings)
}

// CancelListing removes a listing's unsold capacity (sold hours stand) and
// returns the listing.
func (c *Client) CancelListing(ctx context.Context, id string) (Listing, error) {
	var out Listing
	err := c.do(ctx, request{method: http.MethodDelete, path: pathf("/v1/listings/%s", id), out: &out})
	return out, err
}

// PlaceBid places a reserved or spot bid (buyer key needed) and returns it
// as it stands right after matching: fills or spot allocation included.
// Errors: 422 "insufficient_funds", "invalid_window", ...
func (c *Client) PlaceBid(ctx context.Context, req BidRequest, opts ...CallOption) (Bid, error) {
	req.Start, req.End, req.ExpiresAt = utc(req.Start), utc(req.End), utc(req.ExpiresAt)
	var out Bid
	err := c.do(ctx, request{method: http.MethodPost, path: "/v1/bids", body: req,
		idem: idemKey(req.IdempotencyKey, opts), out: &out})
	return out, err
}

// Bid returns one of the caller's bids; 404 for another account's.
func (c *Client) Bid(ctx context.Context, id string) (Bid, error) {
	var out Bid
	err := c.do(ctx, request{method: http.MethodGet, path: pathf("/v1/bids/%s", id), out: &out})
	return out, err
}

// Bids returns a page of the caller's bids, newest first.
func (c *Client) Bids(ctx context.Context, q ListQuery) (Page[Bid], error) {
	var out Page[Bid]
	err := c.do(ctx, request{method: http.MethodGet, path: "/v1/bids", query: q.values(), out: &out})
	return out, err
}

// AllBids iterates over every page of the caller's bids from q on. It stops
// after the first error, which it yields.
func (c *Client) AllBids(ctx context.Context, q ListQuery) iter.Seq2[Bid, error] {
	return all(ctx, q, c.Bids)
}

// CancelBid cancels a bid (a spot bid releases its GPUs) and returns it.
func (c *Client) CancelBid(ctx context.Context, id string) (Bid, error) {
	var out Bid
	err := c.do(ctx, request{method: http.MethodDelete, path: pathf("/v1/bids/%s", id), out: &out})
	return out, err
}

// Health returns the process state; it answers 200 during recovery too.
func (c *Client) Health(ctx context.Context) (Health, error) {
	var out Health
	err := c.do(ctx, request{method: http.MethodGet, path: "/healthz", out: &out})
	return out, err
}

// Ready returns nil once recovery is done and writes are accepted, and an
// *Error with Status 503 before.
func (c *Client) Ready(ctx context.Context) error {
	return c.do(ctx, request{method: http.MethodGet, path: "/readyz"})
}

// Metrics returns the Prometheus text exposition of GET /metrics.
func (c *Client) Metrics(ctx context.Context) ([]byte, error) {
	var out []byte
	err := c.do(ctx, request{method: http.MethodGet, path: "/metrics", raw: &out})
	return out, err
}

// OpenAPI returns the server's OpenAPI document (YAML).
func (c *Client) OpenAPI(ctx context.Context) ([]byte, error) {
	var out []byte
	err := c.do(ctx, request{method: http.MethodGet, path: "/openapi.yaml", raw: &out})
	return out, err
}

func all[T any](ctx context.Context, q ListQuery, page func(context.Context, ListQuery) (Page[T], error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for {
			p, err := page(ctx, q)
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, it := range p.Items {
				if !yield(it, nil) {
					return
				}
			}
			if p.NextCursor == nil || *p.NextCursor == "" || len(p.Items) == 0 {
				return
			}
			q.Cursor = *p.NextCursor
		}
	}
}

// MaxRatesFile is the largest rates file the server takes (its 1 MiB body
// limit); SetReferenceRates refuses a larger one without a request.
const MaxRatesFile = 1 << 20

// ReferenceRates returns the reference-rate table in force as the
// server's canonical rates file (CSV), unchanged; SetReferenceRates takes
// it back. Admin key needed.
func (c *Client) ReferenceRates(ctx context.Context) ([]byte, error) {
	var out []byte
	err := c.do(ctx, request{method: http.MethodGet, path: "/v1/admin/reference-rates",
		raw: &out, accept: "text/csv, application/problem+json"})
	return out, err
}

// SetReferenceRates replaces the server's reference-rate table with a
// rates file (CSV, the columns of GET; at most MaxRatesFile bytes). The
// server checks the whole file first: a bad line answers 422 with the
// line and column in the detail, and nothing changes. Admin key needed.
func (c *Client) SetReferenceRates(ctx context.Context, csv []byte) (ReferenceRatesSet, error) {
	var out ReferenceRatesSet
	if len(csv) > MaxRatesFile {
		return out, fmt.Errorf("gpux: PUT /v1/admin/reference-rates: the rates file has %d bytes, over the server's limit of %d", len(csv), MaxRatesFile)
	}
	if csv == nil {
		csv = []byte{} // still a body: the server answers 422, not a missing Content-Type
	}
	err := c.do(ctx, request{method: http.MethodPut, path: "/v1/admin/reference-rates",
		rawBody: csv, contentType: "text/csv", out: &out})
	return out, err
}
