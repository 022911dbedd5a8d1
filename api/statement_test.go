package api_test

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/gpux/gpux/api"
	"github.com/gpux/gpux/client"
	"github.com/gpux/gpux/sequencer"
)

// fakeClock is the engine's and the API's clock in tests that move time.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newClockEnv starts a server whose engine and validation run on clock.
func newClockEnv(tb testing.TB, clock *fakeClock) *env {
	tb.Helper()
	return newEnvSeq(tb, func(c *api.Config) { c.Now = clock.Now }, func(c *sequencer.Config) { c.Now = clock.Now })
}

// statementOf reads a whole statement through the client, pages of limit.
func statementOf(tb testing.TB, p party, q client.StatementQuery) []client.StatementLine {
	tb.Helper()
	var out []client.StatementLine
	for l, err := range p.AllStatement(bg, q) {
		if err != nil {
			tb.Fatalf("statement: %v", err)
		}
		out = append(out, l)
	}
	return out
}

// checkStatement checks that lines chain (each balance_after is the
// previous plus amount) and sum to want − start, and returns the sum.
func checkStatement(tb testing.TB, who string, lines []client.StatementLine, start, want string) {
	tb.Helper()
	bal := decimal.RequireFromString(start)
	sum := decimal.Zero
	for i, l := range lines {
		a := decimal.RequireFromString(l.Amount)
		sum = sum.Add(a)
		bal = bal.Add(a)
		if !bal.Equal(decimal.RequireFromString(l.BalanceAfter)) {
			tb.Errorf("%s line %d %+v: balance_after %s, want %s (previous + amount)", who, i, l, l.BalanceAfter, bal)
		}
	}
	if w := decimal.RequireFromString(want).Sub(decimal.RequireFromString(start)); !sum.Equal(w) {
		tb.Errorf("%s: amounts sum to %s, want %s (balance %s − %s)\n%s", who, sum, w, want, start, dumpLines(lines))
	}
}

func dumpLines(ls []client.StatementLine) string {
	var b strings.Builder
	for _, l := range ls {
		fmt.Fprintf(&b, "  %s %-16s %10s %10s %s\n", l.At.Format(time.RFC3339Nano), l.Kind, l.Amount, l.BalanceAfter, l.Ref)
	}
	return b.String()
}

func kinds(ls []client.StatementLine) string {
	var k []string
	for _, l := range ls {
		k = append(k, l.Kind)
	}
	return strings.Join(k, ",")
}

// TestStatement: deposits, a reserved fill, spot running across a tick and
// an hour boundary, and a withdrawal; the statement's amounts sum exactly
// to the balance GET /v1/account shows at the same engine time, for buyer
// and owner, in JSON pages and in CSV, and again after a restart.
func TestStatement(t *testing.T) {
	clock := &fakeClock{t: hour(0).Add(10 * time.Minute)}
	e := newClockEnv(t, clock)
	const market = "h100-sxm.us-east"
	owner := e.account("owner", "", client.RoleOwner)
	buyer := e.account("buyer", "1000", client.RoleBuyer)
	if _, err := e.admin.Deposit(bg, buyer.id, "500.25"); err != nil {
		t.Fatal(err)
	}
	if _, err := owner.PlaceListing(bg, client.ListingRequest{Market: market, Quantity: 4, Start: hour(0), End: hour(30),
		ReservePrice: client.FixedPrice("2.00"), SpotPriceFloor: client.FixedPrice("1.5")}); err != nil {
		t.Fatal(err)
	}
	res, err := buyer.PlaceBid(bg, client.BidRequest{Type: client.BidReserved, Market: market, Quantity: 1, Start: hour(5), End: hour(7), LimitPrice: client.FixedPrice("3")})
	if err != nil || res.Status != "filled" {
		t.Fatalf("reserved bid: %v %+v", err, res)
	}
	spot, err := buyer.PlaceBid(bg, client.BidRequest{Type: client.BidSpot, Market: market, Quantity: 2, LimitPrice: client.FixedPrice("2.5")})
	if err != nil || spot.Allocated != 2 {
		t.Fatalf("spot bid: %v %+v", err, spot)
	}
	clock.Add(7*time.Minute + 123*time.Millisecond)
	e.tick()
	clock.Add(55 * time.Minute) // into the next hour: the hourly posting
	e.tick()
	clock.Add(3*time.Minute + 7*time.Millisecond)
	if _, err := e.admin.Withdraw(bg, buyer.id, "100"); err != nil {
		t.Fatal(err)
	}
	clock.Add(2 * time.Minute)
	e.tick() // accrues, not posted before the next hour

	read := func() (buyerLines, ownerLines []client.StatementLine) {
		t.Helper()
		buyerLines = statementOf(t, buyer, client.StatementQuery{Limit: 2})
		acct, err := buyer.Account(bg)
		if err != nil {
			t.Fatal(err)
		}
		checkStatement(t, "buyer", buyerLines, "0", acct.Balance)
		ownerLines = statementOf(t, owner, client.StatementQuery{})
		oacct, err := owner.Account(bg)
		if err != nil {
			t.Fatal(err)
		}
		checkStatement(t, "owner", ownerLines, "0", oacct.Balance)
		if n := len(buyerLines); n == 0 || buyerLines[n-1].Kind != client.StatementSpotAccrued || buyerLines[n-1].BalanceAfter != acct.Balance {
			t.Errorf("buyer statement does not close with spot_accrued at balance %s:\n%s", acct.Balance, dumpLines(buyerLines))
		}
		return buyerLines, ownerLines
	}
	bl, ol := read()
	// deposit, deposit, reserved fill, spot posted at the hour, withdrawal
	// (the withdrawal settles nothing: spot is posted hourly), accrued.
	if got, want := kinds(bl), "deposit,deposit,reserved_fill,spot_charge,withdrawal,spot_accrued"; got != want {
		t.Errorf("buyer kinds: got %s, want %s\n%s", got, want, dumpLines(bl))
	}
	if got, want := kinds(ol), "reserved_earning,spot_earning,spot_accrued"; got != want {
		t.Errorf("owner kinds: got %s, want %s\n%s", got, want, dumpLines(ol))
	}
	if bl[2].Ref != res.Fills[0].ID || bl[2].Amount != "-4.00" || bl[3].Ref != spot.ID {
		t.Errorf("refs and amounts: got\n%s want the fill %s at -4.00, then the spot bid %s", dumpLines(bl), res.Fills[0].ID, spot.ID)
	}
	// Spot at 1.50 × 2 GPUs = 3.00 an hour: 5 min 0.007 s accrued since
	// the hour's posting is 0.2503...; the engine rounds per settlement.
	if acc := decimal.RequireFromString(bl[5].Amount); !acc.IsNegative() || acc.LessThan(decimal.RequireFromString("-0.26")) {
		t.Errorf("spot accrued: got %s, want about -0.25", bl[5].Amount)
	}

	// CSV agrees with JSON line for line.
	csvBytes, err := buyer.StatementCSV(bg, client.StatementQuery{})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(csvBytes)).ReadAll()
	if err != nil {
		t.Fatalf("csv: %v\n%s", err, csvBytes)
	}
	if len(recs) != len(bl)+1 || strings.Join(recs[0], ",") != "at,kind,amount,balance_after,ref" {
		t.Fatalf("csv: got %d records (%q), want a header and %d lines", len(recs), recs, len(bl))
	}
	for i, l := range bl {
		r := recs[i+1]
		at, err := time.Parse(time.RFC3339Nano, r[0])
		if err != nil || !at.Equal(l.At) || r[1] != l.Kind || r[2] != l.Amount || r[3] != l.BalanceAfter || r[4] != l.Ref {
			t.Errorf("csv line %d: got %q, want %+v", i, r, l)
		}
	}

	// A closed period in the past: no spot_accrued, and the lines chain.
	past := statementOf(t, buyer, client.StatementQuery{To: clock.Now().Add(-time.Minute)})
	if kinds(past) != "deposit,deposit,reserved_fill,spot_charge,withdrawal" {
		t.Errorf("period ending a minute ago: got\n%s", dumpLines(past))
	}

	// Survives a restart (Redis read models), then goes on.
	e.restart()
	bl2, ol2 := read()
	if dumpLines(bl2) != dumpLines(bl) || dumpLines(ol2) != dumpLines(ol) {
		t.Errorf("after restart:\n%s%s\nbefore:\n%s%s", dumpLines(bl2), dumpLines(ol2), dumpLines(bl), dumpLines(ol))
	}
	clock.Add(90 * time.Minute)
	e.tick()
	read()
}

// TestStatementLimits: every input of the statement is checked.
func TestStatementLimits(t *testing.T) {
	e := newEnv(t, nil)
	buyer := e.account("buyer", "10", client.RoleBuyer)
	for i := range 3 {
		if _, err := e.admin.Deposit(bg, buyer.id, fmt.Sprint(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	const path = "/v1/account/statement"
	for _, tc := range []struct {
		name, query, code, field string
		status                   int
	}{
		{"bad from", "?from=yesterday", "invalid_time", "from", 422},
		{"bad to", "?to=2026-13-01T00:00:00Z", "invalid_time", "to", 422},
		{"to before from", "?from=2026-12-01T00:00:00Z&to=2026-11-01T00:00:00Z", "invalid_time", "to", 422},
		{"limit zero", "?limit=0", "invalid_limit", "limit", 422},
		{"limit over 1000", "?limit=1001", "invalid_limit", "limit", 422},
		{"cursor garbage", "?cursor=abc", "invalid_cursor", "cursor", 422},
		{"cursor forged", "?cursor=MTIzLnh5eg", "invalid_cursor", "cursor", 422}, // "123.xyz"
		{"cursor too long", "?cursor=" + strings.Repeat("A", 129), "invalid_cursor", "cursor", 422},
		{"format", "?format=xml", "invalid_value", "format", 422},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, hdr, body := e.raw("GET", path+tc.query, buyer.key, nil)
			wantProblem(t, st, hdr, body, tc.status, tc.code, tc.field)
		})
	}
	st, hdr, body := e.raw("GET", path, "", nil)
	wantProblem(t, st, hdr, body, http.StatusUnauthorized, "unauthorized", "-")
	st, hdr, body = e.raw("GET", path, adminKey, nil)
	wantProblem(t, st, hdr, body, http.StatusForbidden, "forbidden", "-")

	// limit 1000 is accepted; paging by 1 walks every line once.
	if st, _, body := e.raw("GET", path+"?limit=1000", buyer.key, nil); st != 200 {
		t.Errorf("limit=1000: got %d %s", st, body)
	}
	one := statementOf(t, buyer, client.StatementQuery{Limit: 1})
	if got := kinds(one); got != "deposit,deposit,deposit,deposit,spot_accrued" {
		t.Errorf("paged by 1: got %s", got)
	}
	checkStatement(t, "buyer", one, "0", "16.00")
}
