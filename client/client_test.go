package client_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gpux/gpux/client"
)

// recorded is what the fake server saw of one request.
type recorded struct {
	Method string
	Path   string // escaped path
	Query  url.Values
	Header http.Header
	Body   []byte
}

// fakeServer records every request and answers with Status and Body.
type fakeServer struct {
	*httptest.Server
	Status      int
	ContentType string
	Header      http.Header
	Body        string

	mu   sync.Mutex
	reqs []recorded
}

func newFakeServer(tb testing.TB) *fakeServer {
	tb.Helper()
	f := &fakeServer{Status: http.StatusOK, ContentType: "application/json"}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, recorded{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.Query(), Header: r.Header.Clone(), Body: b})
		status, ctype, body, hdr := f.Status, f.ContentType, f.Body, f.Header
		f.mu.Unlock()
		for k, v := range hdr {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Type", ctype)
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	tb.Cleanup(f.Close)
	return f
}

func (f *fakeServer) last(tb testing.TB) recorded {
	tb.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) == 0 {
		tb.Fatal("server saw no request")
	}
	return f.reqs[len(f.reqs)-1]
}

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func ptr[T any](v T) *T { return &v }

// jsonEqual compares two JSON texts by value.
func jsonEqual(tb testing.TB, got []byte, want string) {
	tb.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		tb.Fatalf("request body %q: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		tb.Fatalf("want body %q: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		tb.Errorf("body: got %s, want %s", got, want)
	}
}

const (
	start = "2026-12-01T08:00:00Z"
	end   = "2026-12-01T12:00:00Z"
)

var fillJSON = `{"id":"f1","listing_id":"l1","quantity":2,"price":"2.10","start":"` + start + `","end":"` + end + `"}`

var fill = client.Fill{ID: "f1", ListingID: "l1", Quantity: 2, Price: "2.10", Start: ts(start), End: ts(end)}

func TestEndpoints(t *testing.T) {
	berlin := time.FixedZone("CET", 3600)
	tests := []struct {
		name   string
		key    string
		call   func(context.Context, *client.Client) (any, error)
		method string
		path   string
		query  url.Values
		body   string // "" for no body
		idem   string
		status int
		resp   string
		want   any
	}{
		{
			name: "CreateAccount",
			key:  "admin",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.CreateAccount(ctx, client.CreateAccountRequest{Name: "acme", Roles: []string{client.RoleBuyer, client.RoleOwner}, IdempotencyKey: "k1"})
			},
			method: "POST", path: "/v1/accounts",
			body:   `{"name":"acme","roles":["buyer","owner"]}`,
			idem:   "k1",
			status: http.StatusCreated,
			resp:   `{"id":"a1","name":"acme","roles":["buyer","owner"],"api_key":"sk_1","extra":true}`,
			want:   client.AccountCreated{ID: "a1", Name: "acme", Roles: []string{"buyer", "owner"}, APIKey: "sk_1"},
		},
		{
			name: "CreateAccount call option overrides field",
			key:  "admin",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.CreateAccount(ctx, client.CreateAccountRequest{Name: "acme", Roles: []string{"buyer"}, IdempotencyKey: "field"}, client.WithIdempotencyKey("opt"))
			},
			method: "POST", path: "/v1/accounts",
			body: `{"name":"acme","roles":["buyer"]}`, idem: "opt", status: http.StatusCreated,
			resp: `{"id":"a1","name":"acme","roles":["buyer"],"api_key":"sk_1"}`,
			want: client.AccountCreated{ID: "a1", Name: "acme", Roles: []string{"buyer"}, APIKey: "sk_1"},
		},
		{
			name: "Deposit",
			key:  "admin",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.Deposit(ctx, "a1", "1000.00", client.WithIdempotencyKey("d1"))
			},
			method: "POST", path: "/v1/accounts/a1/deposits",
			body: `{"amount":"1000.00"}`, idem: "d1",
			resp: `{"id":"a1","name":"acme","roles":["buyer"],"balance":"1000.00","held":"0","available":"1000.00"}`,
			want: client.Account{ID: "a1", Name: "acme", Roles: []string{"buyer"}, Balance: "1000.00", Held: "0", Available: "1000.00"},
		},
		{
			name: "Withdraw",
			key:  "admin",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.Withdraw(ctx, "a/1", "10.5")
			},
			method: "POST", path: "/v1/accounts/a%2F1/withdrawals",
			body: `{"amount":"10.5"}`,
			resp: `{"id":"a/1","balance":"989.50","held":"0","available":"989.50"}`,
			want: client.Account{ID: "a/1", Balance: "989.50", Held: "0", Available: "989.50"},
		},
		{
			name:   "Account",
			key:    "k",
			call:   func(ctx context.Context, c *client.Client) (any, error) { return c.Account(ctx) },
			method: "GET", path: "/v1/account",
			resp: `{"id":"a1","name":"acme","roles":["owner"],"balance":"5","held":"2","available":"3"}`,
			want: client.Account{ID: "a1", Name: "acme", Roles: []string{"owner"}, Balance: "5", Held: "2", Available: "3"},
		},
		{
			name:   "Markets without key",
			call:   func(ctx context.Context, c *client.Client) (any, error) { return c.Markets(ctx) },
			method: "GET", path: "/v1/markets",
			resp: `[{"id":"h100-sxm.us-east","gpu":"h100-sxm","region":"us-east"}]`,
			want: []client.Market{{ID: "h100-sxm.us-east", GPU: "h100-sxm", Region: "us-east"}},
		},
		{
			name:   "Book",
			call:   func(ctx context.Context, c *client.Client) (any, error) { return c.Book(ctx, "h100-sxm.us-east") },
			method: "GET", path: "/v1/markets/h100-sxm.us-east/book",
			resp: `{"market":"h100-sxm.us-east","spot":{"price":null,"ask":"1.90","supply":8,"allocated":0,"waiting":3},
				"bids":[{"price":"2.00","quantity":4,"start":"` + start + `","end":"` + end + `"}],"asks":[]}`,
			want: client.Book{
				Market: "h100-sxm.us-east",
				Spot:   client.Spot{Ask: ptr("1.90"), Supply: 8, Waiting: 3},
				Bids:   []client.Level{{Price: "2.00", Quantity: 4, Start: ts(start), End: ts(end)}},
				Asks:   []client.Level{},
			},
		},
		{
			name:   "Prices",
			call:   func(ctx context.Context, c *client.Client) (any, error) { return c.Prices(ctx) },
			method: "GET", path: "/v1/prices",
			resp: `[{"market":"h100-sxm.us-east","gpu":"h100-sxm","region":"us-east","spot_price":"2.10","last_trade_price":null,
				"reference":[{"provider":"aws","instance_type":"p5.48xlarge","usd_per_gpu_hour":"5.55","price_type":"on_demand","as_of":"2026-01-15","source":"https://aws"}],
				"discount_vs_reference":{"aws":"0.6216","gcp":null}}]`,
			want: []client.PriceRow{{
				Market: "h100-sxm.us-east", GPU: "h100-sxm", Region: "us-east", SpotPrice: ptr("2.10"),
				Reference:           []client.Reference{{Provider: "aws", InstanceType: "p5.48xlarge", USDPerGPUHour: "5.55", PriceType: "on_demand", AsOf: "2026-01-15", Source: "https://aws"}},
				DiscountVsReference: map[string]*string{"aws": ptr("0.6216"), "gcp": nil},
			}},
		},
		{
			name: "MarketTrades",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.MarketTrades(ctx, "h100-sxm.us-east", 5)
			},
			method: "GET", path: "/v1/markets/h100-sxm.us-east/trades",
			query: url.Values{"limit": {"5"}},
			resp:  `{"items":[{"id":"f1","bid_id":"b1","listing_id":"l1","market":"h100-sxm.us-east","quantity":2,"price":"2.10","start":"` + start + `","end":"` + end + `"}],"next_cursor":"c2"}`,
			want: client.Page[client.Trade]{
				Items:      []client.Trade{{ID: "f1", BidID: "b1", ListingID: "l1", Market: "h100-sxm.us-east", Quantity: 2, Price: "2.10", Start: ts(start), End: ts(end)}},
				NextCursor: ptr("c2"),
			},
		},
		{
			name: "Quote converts times to UTC",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.Quote(ctx, "h100-sxm.us-east", 4, ts(start).In(berlin), ts(end))
			},
			method: "GET", path: "/v1/markets/h100-sxm.us-east/quote",
			query: url.Values{"quantity": {"4"}, "start": {start}, "end": {end}},
			resp: `{"market":"h100-sxm.us-east","quantity":4,"start":"` + start + `","end":"` + end + `",
				"fills":[{"listing_id":"l1","quantity":4,"price":"2.10"}],"filled_quantity":4,"total_cost":"33.60",
				"average_price":"2.10","min_quantity_met":true,"reference":[],"discount_vs_reference":{"aws":"0.6216"}}`,
			want: client.Quote{
				Market: "h100-sxm.us-east", Quantity: 4, Start: ts(start), End: ts(end),
				Fills:          []client.QuoteFill{{ListingID: "l1", Quantity: 4, Price: "2.10"}},
				FilledQuantity: 4, TotalCost: "33.60", AveragePrice: ptr("2.10"), MinQuantityMet: true,
				Reference: []client.Reference{}, DiscountVsReference: map[string]*string{"aws": ptr("0.6216")},
			},
		},
		{
			name: "History",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.History(ctx, "h100-sxm.us-east", client.HistoryQuery{Interval: client.Interval1h, From: ts(start), To: ts(end)})
			},
			method: "GET", path: "/v1/markets/h100-sxm.us-east/history",
			query: url.Values{"interval": {"1h"}, "from": {start}, "to": {end}},
			resp:  `{"market":"h100-sxm.us-east","interval":"1h","kind":"trades","candles":[{"start":"` + start + `","open":"2.00","high":"2.20","low":"1.90","close":"2.10","volume":12}]}`,
			want: client.History{Market: "h100-sxm.us-east", Interval: "1h", Kind: "trades",
				Candles: []client.Candle{{Start: ts(start), Open: "2.00", High: "2.20", Low: "1.90", Close: "2.10", Volume: 12}}},
		},
		{
			name: "History of spot",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.History(ctx, "h100-sxm.us-east", client.HistoryQuery{Interval: client.Interval1m, Kind: client.KindSpot})
			},
			method: "GET", path: "/v1/markets/h100-sxm.us-east/history",
			query: url.Values{"interval": {"1m"}, "kind": {"spot"}},
			resp:  `{"market":"h100-sxm.us-east","interval":"1m","kind":"spot","candles":[{"start":"` + start + `","open":"2.00","high":"2.00","low":"2.00","close":"2.00","volume":0}]}`,
			want: client.History{Market: "h100-sxm.us-east", Interval: "1m", Kind: "spot",
				Candles: []client.Candle{{Start: ts(start), Open: "2.00", High: "2.00", Low: "2.00", Close: "2.00"}}},
		},
		{
			name: "Statement",
			key:  "buyer",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.Statement(ctx, client.StatementQuery{From: ts(start), To: ts(end), Limit: 2})
			},
			method: "GET", path: "/v1/account/statement",
			query: url.Values{"from": {start}, "to": {end}, "limit": {"2"}},
			resp: `{"items":[{"at":"` + start + `","kind":"deposit","amount":"100.00","balance_after":"100.00","ref":"d1"},
				{"at":"` + end + `","kind":"spot_charge","amount":"-2.10","balance_after":"97.90","ref":"b1"}],"next_cursor":"c2"}`,
			want: client.Page[client.StatementLine]{Items: []client.StatementLine{
				{At: ts(start), Kind: client.StatementDeposit, Amount: "100.00", BalanceAfter: "100.00", Ref: "d1"},
				{At: ts(end), Kind: client.StatementSpotCharge, Amount: "-2.10", BalanceAfter: "97.90", Ref: "b1"},
			}, NextCursor: ptr("c2")},
		},
		{
			name: "PlaceListing with pegs",
			key:  "owner",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				floor := client.ReferencePeg("aws", "0.70")
				floor.Peg.Floor = "0.50"
				return c.PlaceListing(ctx, client.ListingRequest{
					Market: "h100-sxm.us-east", Quantity: 8, Start: ts(start).In(berlin), End: ts(end),
					ReservePrice: client.SpotPeg("-0.10"), SpotPriceFloor: floor, IdempotencyKey: "L1",
				})
			},
			method: "POST", path: "/v1/listings", idem: "L1",
			body: `{"market":"h100-sxm.us-east","quantity":8,"start":"` + start + `","end":"` + end + `",
				"reserve_price":{"peg":"spot","offset":"-0.10"},
				"spot_price_floor":{"peg":"reference","provider":"aws","discount":"0.70","floor":"0.50"}}`,
			status: http.StatusCreated,
			resp: `{"id":"l1","market":"h100-sxm.us-east","quantity":8,"start":"` + start + `","end":"` + end + `",
				"reserve_price":"2.00","reserve_price_peg":{"peg":"spot","offset":"-0.10"},
				"spot_price_floor":"1.66","spot_price_floor_peg":{"peg":"reference","provider":"aws","discount":"0.70","floor":"0.50"},
				"status":"active","fills":[` + fillJSON + `]}`,
			want: client.Listing{
				ID: "l1", Market: "h100-sxm.us-east", Quantity: 8, Start: ts(start), End: ts(end),
				ReservePrice: "2.00", ReservePricePeg: &client.Peg{Kind: "spot", Offset: "-0.10"},
				SpotPriceFloor: ptr("1.66"), SpotPriceFloorPeg: &client.Peg{Kind: "reference", Provider: "aws", Discount: "0.70", Floor: "0.50"},
				Status: "active", Fills: []client.Fill{fill},
			},
		},
		{
			name: "PlaceListing fixed price without floor",
			key:  "owner",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.PlaceListing(ctx, client.ListingRequest{Market: "m", Quantity: 1, Start: ts(start), End: ts(end), ReservePrice: client.FixedPrice("2.39")})
			},
			method: "POST", path: "/v1/listings",
			body:   `{"market":"m","quantity":1,"start":"` + start + `","end":"` + end + `","reserve_price":"2.39"}`,
			status: http.StatusCreated,
			resp:   `{"id":"l2","market":"m","quantity":1,"start":"` + start + `","end":"` + end + `","reserve_price":"2.39","spot_price_floor":null,"status":"active","fills":[]}`,
			want:   client.Listing{ID: "l2", Market: "m", Quantity: 1, Start: ts(start), End: ts(end), ReservePrice: "2.39", Status: "active", Fills: []client.Fill{}},
		},
		{
			name:   "Listing",
			key:    "owner",
			call:   func(ctx context.Context, c *client.Client) (any, error) { return c.Listing(ctx, "l1") },
			method: "GET", path: "/v1/listings/l1",
			resp: `{"id":"l1","status":"ended"}`,
			want: client.Listing{ID: "l1", Status: "ended"},
		},
		{
			name: "Listings",
			key:  "owner",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.Listings(ctx, client.ListQuery{Status: client.ListingActive, Limit: 10, Cursor: "c1"})
			},
			method: "GET", path: "/v1/listings",
			query: url.Values{"status": {"active"}, "limit": {"10"}, "cursor": {"c1"}},
			resp:  `{"items":[{"id":"l1"}],"next_cursor":null}`,
			want:  client.Page[client.Listing]{Items: []client.Listing{{ID: "l1"}}},
		},
		{
			name:   "CancelListing",
			key:    "owner",
			call:   func(ctx context.Context, c *client.Client) (any, error) { return c.CancelListing(ctx, "l1") },
			method: "DELETE", path: "/v1/listings/l1",
			resp: `{"id":"l1","status":"cancelled"}`,
			want: client.Listing{ID: "l1", Status: "cancelled"},
		},
		{
			name: "PlaceBid reserved",
			key:  "buyer",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				lp := client.ReferencePeg("aws", "0.40")
				lp.Peg.Cap = "3.00"
				return c.PlaceBid(ctx, client.BidRequest{
					Type: client.BidReserved, Market: "h100-sxm.us-east", Quantity: 2, Start: ts(start), End: ts(end),
					LimitPrice: lp, MinQuantity: 1, ExpiresAt: ts(start).Add(-time.Hour).In(berlin), ClientOrderID: "o1",
				}, client.WithIdempotencyKey("B1"))
			},
			method: "POST", path: "/v1/bids", idem: "B1",
			body: `{"type":"reserved","market":"h100-sxm.us-east","quantity":2,"start":"` + start + `","end":"` + end + `",
				"limit_price":{"peg":"reference","provider":"aws","discount":"0.40","cap":"3.00"},"min_quantity":1,
				"expires_at":"2026-12-01T07:00:00Z","client_order_id":"o1"}`,
			status: http.StatusCreated,
			resp: `{"id":"b1","type":"reserved","market":"h100-sxm.us-east","quantity":2,"start":"` + start + `","end":"` + end + `",
				"limit_price":"3.00","limit_price_peg":{"peg":"reference","provider":"aws","discount":"0.40","cap":"3.00"},
				"status":"filled","filled_quantity":2,"allocated":0,"fills":[` + fillJSON + `]}`,
			want: client.Bid{
				ID: "b1", Type: "reserved", Market: "h100-sxm.us-east", Quantity: 2, Start: ptr(ts(start)), End: ptr(ts(end)),
				LimitPrice: "3.00", LimitPricePeg: &client.Peg{Kind: "reference", Provider: "aws", Discount: "0.40", Cap: "3.00"},
				Status: "filled", FilledQuantity: 2, Fills: []client.Fill{fill},
			},
		},
		{
			name: "PlaceBid spot sends no window",
			key:  "buyer",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.PlaceBid(ctx, client.BidRequest{Type: client.BidSpot, Market: "m", Quantity: 3, LimitPrice: client.FixedPrice("2.50")})
			},
			method: "POST", path: "/v1/bids",
			body:   `{"type":"spot","market":"m","quantity":3,"limit_price":"2.50"}`,
			status: http.StatusCreated,
			resp:   `{"id":"b2","type":"spot","market":"m","quantity":3,"limit_price":"2.50","status":"running","filled_quantity":0,"allocated":3,"fills":[]}`,
			want:   client.Bid{ID: "b2", Type: "spot", Market: "m", Quantity: 3, LimitPrice: "2.50", Status: "running", Allocated: 3, Fills: []client.Fill{}},
		},
		{
			name:   "Bid",
			key:    "buyer",
			call:   func(ctx context.Context, c *client.Client) (any, error) { return c.Bid(ctx, "b1") },
			method: "GET", path: "/v1/bids/b1",
			resp: `{"id":"b1","status":"resting"}`,
			want: client.Bid{ID: "b1", Status: "resting"},
		},
		{
			name:   "Bids default query",
			key:    "buyer",
			call:   func(ctx context.Context, c *client.Client) (any, error) { return c.Bids(ctx, client.ListQuery{}) },
			method: "GET", path: "/v1/bids",
			query: url.Values{},
			resp:  `{"items":[],"next_cursor":null}`,
			want:  client.Page[client.Bid]{Items: []client.Bid{}},
		},
		{
			name:   "CancelBid",
			key:    "buyer",
			call:   func(ctx context.Context, c *client.Client) (any, error) { return c.CancelBid(ctx, "b1") },
			method: "DELETE", path: "/v1/bids/b1",
			resp: `{"id":"b1","status":"cancelled","allocated":0}`,
			want: client.Bid{ID: "b1", Status: "cancelled"},
		},
		{
			name:   "Health",
			call:   func(ctx context.Context, c *client.Client) (any, error) { return c.Health(ctx) },
			method: "GET", path: "/healthz",
			resp: `{"status":"ok","journal":"redis","durable":true,"last_seq":42,"recovered_commands":40,"recovery_seconds":0.25}`,
			want: client.Health{Status: "ok", Journal: "redis", Durable: true, LastSeq: 42, RecoveredCommands: 40, RecoverySeconds: 0.25},
		},
		{
			name:   "Ready",
			call:   func(ctx context.Context, c *client.Client) (any, error) { return nil, c.Ready(ctx) },
			method: "GET", path: "/readyz",
			resp: `{"status":"ready"}`,
		},
		{
			name: "Metrics",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				b, err := c.Metrics(ctx)
				return string(b), err
			},
			method: "GET", path: "/metrics",
			resp: "gpux_up 1\n",
			want: "gpux_up 1\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeServer(t)
			if tt.status != 0 {
				srv.Status = tt.status
			}
			srv.Body = tt.resp
			var opts []client.Option
			if tt.key != "" {
				opts = append(opts, client.WithAPIKey(tt.key))
			}
			c := client.New(srv.URL+"/", opts...)
			got, err := tt.call(t.Context(), c)
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			r := srv.last(t)
			if r.Method != tt.method || r.Path != tt.path {
				t.Errorf("request: got %s %s, want %s %s", r.Method, r.Path, tt.method, tt.path)
			}
			if tt.query != nil && !reflect.DeepEqual(r.Query, tt.query) {
				t.Errorf("query: got %v, want %v", r.Query, tt.query)
			}
			wantAuth := ""
			if tt.key != "" {
				wantAuth = "Bearer " + tt.key
			}
			if got, want := r.Header.Get("Authorization"), wantAuth; got != want {
				t.Errorf("Authorization: got %q, want %q", got, want)
			}
			if got, want := r.Header.Get("Idempotency-Key"), tt.idem; got != want {
				t.Errorf("Idempotency-Key: got %q, want %q", got, want)
			}
			if tt.body == "" {
				if len(r.Body) != 0 {
					t.Errorf("body: got %s, want none", r.Body)
				}
			} else {
				jsonEqual(t, r.Body, tt.body)
				if got, want := r.Header.Get("Content-Type"), "application/json"; got != want {
					t.Errorf("Content-Type: got %q, want %q", got, want)
				}
			}
			if tt.want != nil && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("response:\n got %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestWithKeyCopies(t *testing.T) {
	srv := newFakeServer(t)
	srv.Body = `{}`
	admin := client.New(srv.URL, client.WithAPIKey("admin"))
	buyer := admin.WithKey("buyer")
	if _, err := buyer.Account(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, want := srv.last(t).Header.Get("Authorization"), "Bearer buyer"; got != want {
		t.Errorf("copy: got %q, want %q", got, want)
	}
	if _, err := admin.Account(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, want := srv.last(t).Header.Get("Authorization"), "Bearer admin"; got != want {
		t.Errorf("original: got %q, want %q", got, want)
	}
}

func TestBasePathPrefix(t *testing.T) {
	srv := newFakeServer(t)
	srv.Body = `[]`
	c := client.New(srv.URL + "/gpux/")
	if _, err := c.Markets(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, want := srv.last(t).Path, "/gpux/v1/markets"; got != want {
		t.Errorf("path: got %q, want %q", got, want)
	}
}

func TestWithHTTPClient(t *testing.T) {
	srv := newFakeServer(t)
	srv.Body = `[]`
	var calls int
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		calls++
		return http.DefaultTransport.RoundTrip(r)
	})}
	if _, err := client.New(srv.URL, client.WithHTTPClient(hc)).Markets(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, want := calls, 1; got != want {
		t.Errorf("transport calls: got %d, want %d", got, want)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestAllBidsFollowsCursor(t *testing.T) {
	pages := map[string]string{
		"":   `{"items":[{"id":"b3"},{"id":"b2"}],"next_cursor":"c1"}`,
		"c1": `{"items":[{"id":"b1"}],"next_cursor":null}`,
	}
	var mu sync.Mutex
	var limits []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		limits = append(limits, r.URL.Query().Get("limit"))
		mu.Unlock()
		body, ok := pages[r.URL.Query().Get("cursor")]
		if !ok {
			http.Error(w, "bad cursor", http.StatusBadRequest)
			return
		}
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	var ids []string
	for b, err := range client.New(srv.URL).AllBids(t.Context(), client.ListQuery{Limit: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, b.ID)
	}
	if want := []string{"b3", "b2", "b1"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("ids: got %v, want %v", ids, want)
	}
	if want := []string{"2", "2"}; !reflect.DeepEqual(limits, want) {
		t.Errorf("limits: got %v, want %v", limits, want)
	}
}

func TestTransportErrorNamesOperation(t *testing.T) {
	srv := newFakeServer(t)
	url := srv.URL
	srv.Close()
	_, err := client.New(url).Bid(t.Context(), "b1")
	if err == nil {
		t.Fatal("got nil error, want a transport error")
	}
	if got, want := err.Error(), "GET /v1/bids/b1"; !strings.Contains(got, want) {
		t.Errorf("error: got %q, want it to contain %q", got, want)
	}
}

func TestInvalidBaseURL(t *testing.T) {
	if _, err := client.New("::not a url").Markets(t.Context()); err == nil {
		t.Error("got nil error, want an invalid base URL error")
	}
}
