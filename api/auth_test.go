package api_test

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gpux/gpux/api"
	"github.com/gpux/gpux/client"
)

func TestAuthMatrix(t *testing.T) {
	e := newEnv(t, nil)
	owner := e.account("owner", "", client.RoleOwner)
	buyer := e.account("buyer", "1000", client.RoleBuyer)
	other := e.account("other", "1000", client.RoleBuyer, client.RoleOwner)
	l, err := owner.PlaceListing(bg, client.ListingRequest{Market: "l4.us-east", Quantity: 2, Start: hour(0), End: hour(10), ReservePrice: client.FixedPrice("5.00")})
	if err != nil {
		t.Fatal(err)
	}
	b, err := buyer.PlaceBid(bg, client.BidRequest{Type: client.BidReserved, Market: "l4.us-east", Quantity: 1, Start: hour(2), End: hour(3), LimitPrice: client.FixedPrice("1.00")})
	if err != nil {
		t.Fatal(err)
	}
	listingBody := fmt.Sprintf(`{"market":"l4.us-east","quantity":1,"start":%q,"end":%q,"reserve_price":"1.00"}`, hour(0).Format(time.RFC3339), hour(2).Format(time.RFC3339))
	bidBody := fmt.Sprintf(`{"type":"reserved","market":"l4.us-east","quantity":1,"start":%q,"end":%q,"limit_price":"1.00"}`, hour(2).Format(time.RFC3339), hour(3).Format(time.RFC3339))

	keys := map[string]string{"none": "", "bogus": "gpux_nope", "admin": adminKey, "owner": owner.key, "buyer": buyer.key, "other": other.key}
	type req struct{ method, path, body string }
	reqs := map[string]req{
		"create account":   {"POST", "/v1/accounts", `{"name":"z","roles":["buyer"]}`},
		"deposit":          {"POST", "/v1/accounts/" + buyer.id + "/deposits", `{"amount":"1"}`},
		"withdraw":         {"POST", "/v1/accounts/" + buyer.id + "/withdrawals", `{"amount":"1"}`},
		"own account":      {"GET", "/v1/account", ""},
		"place listing":    {"POST", "/v1/listings", listingBody},
		"list listings":    {"GET", "/v1/listings", ""},
		"get listing":      {"GET", "/v1/listings/" + l.ID, ""},
		"cancel listing":   {"DELETE", "/v1/listings/" + l.ID, ""},
		"place bid":        {"POST", "/v1/bids", bidBody},
		"list bids":        {"GET", "/v1/bids", ""},
		"get bid":          {"GET", "/v1/bids/" + b.ID, ""},
		"cancel bid":       {"DELETE", "/v1/bids/" + b.ID, ""},
		"markets (public)": {"GET", "/v1/markets", ""},
	}
	// want[request][caller] = status; 0 means "not this test's business".
	want := map[string]map[string]int{
		"create account":   {"none": 401, "bogus": 401, "owner": 403, "buyer": 403},
		"deposit":          {"none": 401, "bogus": 401, "owner": 403, "buyer": 403},
		"withdraw":         {"none": 401, "bogus": 401, "owner": 403, "buyer": 403},
		"own account":      {"none": 401, "bogus": 401, "admin": 403, "owner": 200, "buyer": 200},
		"place listing":    {"none": 401, "bogus": 401, "admin": 403, "buyer": 403},
		"list listings":    {"none": 401, "bogus": 401, "admin": 403, "buyer": 403, "owner": 200, "other": 200},
		"get listing":      {"none": 401, "admin": 403, "buyer": 403, "other": 404, "owner": 200},
		"cancel listing":   {"none": 401, "admin": 403, "buyer": 403, "other": 404},
		"place bid":        {"none": 401, "bogus": 401, "admin": 403, "owner": 403},
		"list bids":        {"none": 401, "admin": 403, "owner": 403, "buyer": 200, "other": 200},
		"get bid":          {"none": 401, "admin": 403, "owner": 403, "other": 404, "buyer": 200},
		"cancel bid":       {"none": 401, "admin": 403, "owner": 403, "other": 404},
		"markets (public)": {"none": 200, "bogus": 200, "buyer": 200},
	}
	for name, r := range reqs {
		for who, status := range want[name] {
			t.Run(name+"/"+who, func(t *testing.T) {
				seq := e.seq.Status().LastSeq
				var body []byte
				if r.body != "" {
					body = []byte(r.body)
				}
				got, hdr, resp := e.raw(r.method, r.path, keys[who], body)
				if status >= 400 {
					code := map[int]string{401: "unauthorized", 403: "forbidden", 404: "not_found"}[status]
					wantProblem(t, got, hdr, resp, status, code, "-")
					if status != 404 && e.seq.Status().LastSeq != seq {
						t.Errorf("a %d request reached the engine", status)
					}
				} else if got != status {
					t.Errorf("status: got %d, want %d (%s)", got, status, resp)
				}
			})
		}
	}
	// After all that, the orders are untouched.
	if got, _ := buyer.Bid(bg, b.ID); got.Status != "resting" {
		t.Errorf("bid after the cross-account cancel: got %s, want resting", got.Status)
	}
	if got, _ := owner.Listing(bg, l.ID); got.Status != "active" {
		t.Errorf("listing after the cross-account cancel: got %s, want active", got.Status)
	}
}

func TestIdempotency(t *testing.T) {
	e := newEnv(t, nil)
	buyer := e.account("buyer", "1000", client.RoleBuyer)
	other := e.account("other", "1000", client.RoleBuyer)
	owner := e.account("owner", "", client.RoleOwner)
	req := client.BidRequest{Type: client.BidReserved, Market: "l4.eu-west", Quantity: 1, Start: hour(2), End: hour(3), LimitPrice: client.FixedPrice("1.00")}

	t.Run("replay", func(t *testing.T) {
		first, err := buyer.PlaceBid(bg, req, client.WithIdempotencyKey("k-1"))
		if err != nil {
			t.Fatal(err)
		}
		// Same body, formatted differently, through the raw path: same bid, 201.
		body := fmt.Sprintf(`{ "limit_price" : "1.00", "type":"reserved","market":"l4.eu-west","quantity":1,"start":%q,"end":%q}`, hour(2).Format(time.RFC3339), hour(3).Format(time.RFC3339))
		status, _, resp := e.raw("POST", "/v1/bids", buyer.key, []byte(body), "Idempotency-Key", "k-1")
		if status != http.StatusCreated || !contains(resp, first.ID) {
			t.Errorf("replay: got %d %s, want 201 with %s", status, resp, first.ID)
		}
		page, _ := buyer.Bids(bg, client.ListQuery{})
		if len(page.Items) != 1 {
			t.Errorf("bids after replay: got %d, want 1", len(page.Items))
		}
	})
	t.Run("mismatch", func(t *testing.T) {
		r := req
		r.Quantity = 2
		_, err := buyer.PlaceBid(bg, r, client.WithIdempotencyKey("k-1"))
		wantErr(t, err, http.StatusUnprocessableEntity, "idempotency_key_reused")
	})
	t.Run("concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		ids := make([]string, 10)
		errs := make([]error, 10)
		for i := range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				b, err := buyer.PlaceBid(bg, req, client.WithIdempotencyKey("k-conc"))
				ids[i], errs[i] = b.ID, err
			}()
		}
		wg.Wait()
		for i := range 10 {
			if errs[i] != nil || ids[i] != ids[0] {
				t.Errorf("request %d: got %q, %v; want %q", i, ids[i], errs[i], ids[0])
			}
		}
		page, _ := buyer.Bids(bg, client.ListQuery{})
		if len(page.Items) != 2 {
			t.Errorf("bids: got %d, want 2 (one per key)", len(page.Items))
		}
	})
	t.Run("accounts do not share keys", func(t *testing.T) {
		a, err := buyer.PlaceBid(bg, req, client.WithIdempotencyKey("shared"))
		if err != nil {
			t.Fatal(err)
		}
		b, err := other.PlaceBid(bg, req, client.WithIdempotencyKey("shared"))
		if err != nil {
			t.Fatal(err)
		}
		if a.ID == b.ID {
			t.Errorf("two accounts with one key got the same bid %s", a.ID)
		}
	})
	t.Run("listing", func(t *testing.T) {
		lr := client.ListingRequest{Market: "l4.eu-west", Quantity: 1, Start: hour(0), End: hour(5), ReservePrice: client.FixedPrice("9.00")}
		a, err := owner.PlaceListing(bg, lr, client.WithIdempotencyKey("l-1"))
		if err != nil {
			t.Fatal(err)
		}
		b, err := owner.PlaceListing(bg, lr, client.WithIdempotencyKey("l-1"))
		if err != nil || a.ID != b.ID {
			t.Errorf("listing replay: got %q, %v; want %q", b.ID, err, a.ID)
		}
	})
	t.Run("deposit", func(t *testing.T) {
		before, _ := other.Account(bg)
		for range 3 {
			if _, err := e.admin.Deposit(bg, other.id, "10", client.WithIdempotencyKey("d-1")); err != nil {
				t.Fatal(err)
			}
		}
		after, _ := other.Account(bg)
		if before.Balance != "1000.00" || after.Balance != "1010.00" {
			t.Errorf("balance: got %s → %s, want 1000.00 → 1010.00", before.Balance, after.Balance)
		}
		_, err := e.admin.Deposit(bg, other.id, "11", client.WithIdempotencyKey("d-1"))
		wantErr(t, err, http.StatusUnprocessableEntity, "idempotency_key_reused")
	})
	t.Run("create account", func(t *testing.T) {
		a, err := e.admin.CreateAccount(bg, client.CreateAccountRequest{Name: "once", Roles: []string{"buyer"}, IdempotencyKey: "acct-1"})
		if err != nil {
			t.Fatal(err)
		}
		b, err := e.admin.CreateAccount(bg, client.CreateAccountRequest{Name: "once", Roles: []string{"buyer"}, IdempotencyKey: "acct-1"})
		// The key is shown once: a replay answers the same account
		// without it (API.md Additions).
		if err != nil || a.APIKey == "" || b.ID != a.ID || b.APIKey != "" {
			t.Errorf("account replay: got %+v, %v; want the id of %+v without the key", b, err, a)
		}
	})
}

func contains(b []byte, s string) bool {
	return len(s) > 0 && string(b) != "" && stringContains(string(b), s)
}

func stringContains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, func(c *api.Config) { c.RateLimit = 5 })
	buyer := e.account("buyer", "", client.RoleBuyer)
	other := e.account("other", "", client.RoleBuyer)
	var limited bool
	for i := 0; i < 40 && !limited; i++ {
		status, hdr, body := e.raw("GET", "/v1/account", buyer.key, nil)
		if hdr.Get("RateLimit-Limit") != "5" || hdr.Get("RateLimit-Remaining") == "" {
			t.Fatalf("rate limit headers: got %v", hdr)
		}
		if status == http.StatusTooManyRequests {
			limited = true
			wantProblem(t, status, hdr, body, 429, "rate_limited", "")
			if ra, err := strconv.Atoi(hdr.Get("Retry-After")); err != nil || ra < 1 {
				t.Errorf("Retry-After: got %q", hdr.Get("Retry-After"))
			}
			if i < 10 {
				t.Errorf("limited after %d requests, want a burst of 10", i)
			}
		}
	}
	if !limited {
		t.Fatal("never rate limited")
	}
	// Another key has its own bucket.
	if _, err := other.Account(bg); err != nil {
		t.Errorf("other key: %v", err)
	}
	_, err := buyer.Account(bg)
	wantErr(t, err, http.StatusTooManyRequests, "rate_limited")
	var ce *client.Error
	if asClientError(err, &ce) && ce.RetryAfter <= 0 {
		t.Errorf("client RetryAfter: got %v", ce.RetryAfter)
	}
}
