package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gpux/gpux/client"
	"github.com/gpux/gpux/internal/gpuxdtest"
)

// The end-to-end tests build the real gpux and gpuxd binaries once and
// run gpux against a gpuxd on a loopback port (in-memory journal).

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds gpux into a temporary directory once, and gpuxd through
// gpuxdtest.
func binaries(tb testing.TB) (gpux, gpuxd string) {
	tb.Helper()
	if testing.Short() {
		tb.Skip("builds binaries")
	}
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "gpux-e2e-"); buildErr != nil {
			return
		}
		if out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, "gpux"), ".").CombinedOutput(); err != nil {
			buildErr = errors.New("build gpux: " + err.Error() + "\n" + string(out))
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return filepath.Join(binDir, "gpux"), gpuxdtest.Binary(tb)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	gpuxdtest.Cleanup()
	os.Exit(code)
}

// server is a running gpuxd.
type server struct {
	URL string
}

const adminKey = "admin-e2e"

// startServer runs gpuxd (in-memory journal) with extra args until the
// test ends.
func startServer(tb testing.TB, args ...string) *server {
	tb.Helper()
	_, gpuxd := binaries(tb)
	p := gpuxdtest.Start(tb, gpuxd, gpuxdtest.Options{
		Args: append([]string{"--addr", "127.0.0.1:0", "--admin-key", adminKey,
			"--log-format", "json", "--rate-limit", "0"}, args...),
		Env:          append(os.Environ(), "GPUX_REDIS_URL="),
		Graceful:     true,
		ReadyTimeout: 30 * time.Second,
	})
	return &server{URL: p.URL()}
}

// result is one run of the gpux binary.
type result struct {
	Stdout, Stderr string
	Code           int
}

// gpux runs the gpux binary against s (nil: no GPUX_URL) with key as
// GPUX_API_KEY.
func gpux(tb testing.TB, s *server, key string, args ...string) result {
	tb.Helper()
	bin, _ := binaries(tb)
	ctx, cancel := context.WithTimeout(tb.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = []string{"GPUX_API_KEY=" + key, "PATH=" + os.Getenv("PATH")}
	if s != nil {
		cmd.Env = append(cmd.Env, "GPUX_URL="+s.URL)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	case err != nil:
		tb.Fatalf("gpux %v: %v", args, err)
	}
	return r
}

// ok runs gpux and fails the test unless it exits 0.
func ok(tb testing.TB, s *server, key string, args ...string) string {
	tb.Helper()
	r := gpux(tb, s, key, args...)
	if r.Code != 0 {
		tb.Fatalf("gpux %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// okJSON runs gpux --json and decodes its output into v.
func okJSON(tb testing.TB, s *server, key string, v any, args ...string) {
	tb.Helper()
	out := ok(tb, s, key, append(args, "--json")...)
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		tb.Fatalf("gpux %s --json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

const market = "h100-sxm.us-east"

// TestCLIWalkthrough is the README's walkthrough: the admin creates an
// owner and a buyer, the owner lists capacity, the buyer quotes, bids
// reserved and spot, and both look at what happened.
func TestCLIWalkthrough(t *testing.T) {
	s := startServer(t)

	// accounts create -q prints "ID KEY" for shell capture.
	owner := strings.Fields(ok(t, s, adminKey, "accounts", "create", "acme-gpus", "--roles", "owner", "-q"))
	buyer := strings.Fields(ok(t, s, adminKey, "accounts", "create", "alice", "--roles", "buyer", "-q"))
	if len(owner) != 2 || len(buyer) != 2 || !strings.HasPrefix(buyer[1], "gpux_") {
		t.Fatalf("accounts create -q: got %q and %q, want ID KEY", owner, buyer)
	}
	ownerKey, buyerID, buyerKey := owner[1], buyer[0], buyer[1]

	var acc client.Account
	okJSON(t, s, adminKey, &acc, "deposit", buyerID, "1000")
	if acc.ID != buyerID || acc.Balance != "1000.00" {
		t.Fatalf("deposit: got %+v, want balance 1000.00 on %s", acc, buyerID)
	}

	var l client.Listing
	okJSON(t, s, ownerKey, &l, "listing", "create", market, "--quantity", "4", "--start", "now", "--for", "48h",
		"--reserve", "2.50", "--spot-floor", "1.90")
	if l.Status != client.ListingActive || l.Quantity != 4 || l.End.Sub(l.Start) != 48*time.Hour || l.Start.Minute() != 0 {
		t.Fatalf("listing: got %+v, want 4 GPUs active for 48 whole hours", l)
	}

	var q client.Quote
	okJSON(t, s, "", &q, "quote", market, "--quantity", "2", "--start", "+2h", "--for", "10h")
	if q.FilledQuantity != 2 || q.TotalCost != "50.00" || q.AveragePrice == nil || *q.AveragePrice != "2.50" {
		t.Fatalf("quote: got %+v, want 2 GPUs × 10 h at 2.50 = 50.00", q)
	}
	if out := ok(t, s, "", "quote", market, "--quantity", "2", "--start", "+2h", "--for", "10h"); !regexp.MustCompile(`total:\s+50.00\n`).MatchString(out) || !strings.Contains(out, "aws:") ||
		!regexp.MustCompile(`fill estimate:\s+none yet \(0 of 30 samples\)`).MatchString(out) {
		t.Errorf("quote table: got\n%s\nwant the total, the fill estimate's sample count and the AWS comparison", out)
	}
	// A flexible quote: the cheapest 6-hour block inside the same window.
	var fq client.Quote
	okJSON(t, s, "", &fq, "quote", market, "--quantity", "2", "--start", "+2h", "--for", "10h", "--duration-hours", "6")
	if fq.DurationHours != 6 || fq.BlockStart == nil || fq.BlockEnd == nil || fq.BlockEnd.Sub(*fq.BlockStart) != 6*time.Hour || fq.TotalCost != "30.00" {
		t.Fatalf("flexible quote: got %+v, want a 6 h block of 2 GPUs at 2.50 = 30.00", fq)
	}
	if out := ok(t, s, "", "quote", market, "--quantity", "2", "--start", "+2h", "--for", "10h", "--duration-hours", "6"); !regexp.MustCompile(`block:\s+.+\(6 h\)`).MatchString(out) {
		t.Errorf("flexible quote table: got\n%s\nwant the block", out)
	}

	var rb client.Bid
	okJSON(t, s, buyerKey, &rb, "bid", "reserved", market, "--quantity", "2", "--start", "+2h", "--for", "10h", "--limit", "2.60")
	if rb.Status != client.BidFilled || len(rb.Fills) != 1 || rb.Fills[0].Price != "2.50" || rb.Fills[0].ListingID != l.ID {
		t.Fatalf("reserved bid: got %+v, want filled at 2.50 from %s", rb, l.ID)
	}
	if out := ok(t, s, buyerKey, "orders"); !strings.Contains(out, "50.00") {
		t.Errorf("orders: got\n%s\nwant the reserved bid's cost 50.00", out)
	}
	okJSON(t, s, buyerKey, &acc, "account")
	if acc.Balance != "950.00" {
		t.Errorf("balance after 20 GPU-hours at 2.50: got %s, want 950.00", acc.Balance)
	}

	// A spot bid under the floor waits, and the CLI says why.
	r := gpux(t, s, buyerKey, "bid", "spot", market, "--quantity", "1", "--limit", "1.50")
	if r.Code != 0 || !strings.Contains(r.Stdout, "status:     waiting") || !strings.Contains(r.Stdout, "why:") {
		t.Errorf("waiting spot bid: exit %d, got\n%s\nwant status waiting and a why line", r.Code, r.Stdout)
	}
	spotID := strings.TrimSpace(ok(t, s, buyerKey, "bid", "spot", market, "--quantity", "1", "--limit", "2.00", "-q"))
	var cs []cancelled
	okJSON(t, s, buyerKey, &cs, "cancel", spotID)
	if len(cs) != 1 || cs[0].Kind != "bid" || cs[0].Bid.Status != client.BidCancelled {
		t.Errorf("cancel: got %+v, want the bid cancelled", cs)
	}
	var bids client.Page[client.Bid]
	okJSON(t, s, buyerKey, &bids, "orders")
	if len(bids.Items) != 3 || bids.Items[0].ID != spotID || bids.Items[0].Status != client.BidCancelled || bids.Items[2].ID != rb.ID {
		t.Errorf("orders: got %+v, want the cancelled spot bid first and the reserved bid last", bids.Items)
	}
	if out := ok(t, s, buyerKey, "orders", "--status", "filled"); !strings.Contains(out, rb.ID) || strings.Contains(out, spotID) {
		t.Errorf("orders --status filled: got\n%s\nwant only %s", out, rb.ID)
	}

	var ls client.Page[client.Listing]
	okJSON(t, s, ownerKey, &ls, "listings")
	if len(ls.Items) != 1 || ls.Items[0].SoldGPUHours != 20 {
		t.Errorf("listings: got %+v, want one with 20 GPU-hours sold", ls.Items)
	}

	book := ok(t, s, "", "book", market)
	for _, want := range []string{"spot:    price -  ask 1.90  supply 4", "waiting 1", "ask   2.50"} {
		if !strings.Contains(book, want) {
			t.Errorf("book: got\n%s\nwant a line containing %q", book, want)
		}
	}
	prices := ok(t, s, "", "prices")
	if !strings.Contains(prices, "CLOUD ON-DEMAND") || !strings.Contains(prices, market) {
		t.Errorf("prices: got\n%s", prices)
	}
	var rows []client.PriceRow
	okJSON(t, s, "", &rows, "prices")
	for _, row := range rows {
		if row.Market == market && (row.LastTradePrice == nil || *row.LastTradePrice != "2.50" || len(row.ForwardCurve) == 0) {
			t.Errorf("prices --json %s: got %+v, want last trade 2.50 and a forward curve", market, row)
		}
	}
	var ms []client.Market
	okJSON(t, s, "", &ms, "markets")
	if len(ms) == 0 {
		t.Errorf("markets: none")
	}

	// The statement: what moved the buyer's balance, closing with spot
	// accrued since the last posted line (api's TestStatement checks the
	// sums at one engine time; here the server ticks on its own).
	var lines []client.StatementLine
	okJSON(t, s, buyerKey, &lines, "statement")
	if n := len(lines); n < 3 || lines[0].Kind != client.StatementDeposit || lines[0].Amount != "1000.00" ||
		lines[1].Kind != client.StatementReserved || lines[1].Amount != "-50.00" || lines[1].Ref != rb.Fills[0].ID ||
		lines[n-1].Kind != client.StatementSpotAccrued {
		t.Errorf("statement --json: got %+v, want the deposit, the fill of %s and spot_accrued last", lines, rb.Fills[0].ID)
	}
	if out := ok(t, s, buyerKey, "statement", "--csv"); !strings.HasPrefix(out, "at,kind,amount,balance_after,ref\n") || !strings.Contains(out, ",reserved_fill,-50.00,950.00,"+rb.Fills[0].ID+"\n") {
		t.Errorf("statement --csv: got\n%s", out)
	}

	// Cancelling the listing leaves the sold hours standing.
	out := ok(t, s, ownerKey, "cancel", l.ID)
	if !strings.Contains(out, "listing") || !strings.Contains(out, "cancelled") {
		t.Errorf("cancel listing: got\n%s", out)
	}
	r = gpux(t, s, buyerKey, "cancel", l.ID)
	if r.Code != exitAPI || !strings.Contains(r.Stderr, "no bid or listing of yours") {
		t.Errorf("cancelling someone else's listing: exit %d, stderr %q; want 1 and no such bid or listing", r.Code, r.Stderr)
	}
}

// TestCLIErrors checks exit codes and that a problem's code, field and
// detail reach the user.
func TestCLIErrors(t *testing.T) {
	s := startServer(t)
	buyer := strings.Fields(ok(t, s, adminKey, "accounts", "create", "bob", "--roles", "buyer", "-q"))
	tests := []struct {
		name   string
		server *server
		key    string
		args   []string
		code   int
		stderr []string
	}{
		{"unknown command", s, "", []string{"sell"}, exitUsage, []string{`unknown command "sell"`}},
		{"unknown flag", s, "", []string{"prices", "--color"}, exitUsage, []string{"flag provided but not defined"}},
		{"missing argument", s, "", []string{"book"}, exitUsage, []string{"usage: gpux book"}},
		{"bad relative time", s, buyer[1], []string{"bid", "reserved", market, "--start", "+2x", "--for", "1h", "--limit", "2"}, exitUsage, []string{"--start", "+2h/-24h/+3d"}},
		{"end and for", s, buyer[1], []string{"quote", market, "--end", "+3h", "--for", "1h"}, exitUsage, []string{"not both"}},
		{"bad price", s, buyer[1], []string{"bid", "spot", market, "--limit", "ref:aws"}, exitUsage, []string{"ref:PROVIDER:DISCOUNT"}},
		{"rule broken", s, buyer[1], []string{"bid", "spot", market, "--limit", "2.00"}, exitAPI,
			[]string{"error 422 insufficient_funds", "field: limit_price"}},
		{"window in the past", s, buyer[1], []string{"bid", "reserved", market, "--start", "-3h", "--for", "1h", "--limit", "2"}, exitAPI,
			[]string{"422 invalid_window", "field: start"}},
		{"no key", s, "", []string{"account"}, exitAPI, []string{"error 401"}},
		{"wrong role", s, buyer[1], []string{"accounts", "create", "eve"}, exitAPI, []string{"error 403"}},
		{"unknown market", s, "", []string{"book", "tpu.mars"}, exitAPI, []string{"404", "field: market"}},
		{"unreachable", &server{URL: "http://127.0.0.1:1"}, "", []string{"markets"}, exitUnavailable, []string{"connection refused"}},
		{"transfer without --to", s, buyer[1], []string{"transfer", "--from", "main", "5"}, exitUsage, []string{"--from and --to are required"}},
		{"transfer on a one-shard node", s, buyer[1], []string{"transfer", "--from", "main", "--to", "eu-west", "5"}, exitAPI, []string{"error 422"}},
		{"deposit to another shard", s, adminKey, []string{"deposit", buyer[0], "5", "--shard", "eu-west"}, exitAPI, []string{"422 wrong_shard"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := gpux(t, tt.server, tt.key, tt.args...)
			if r.Code != tt.code {
				t.Errorf("exit: got %d, want %d\nstderr: %s", r.Code, tt.code, r.Stderr)
			}
			for _, w := range tt.stderr {
				if !strings.Contains(r.Stderr, w) {
					t.Errorf("stderr: got %q, want it to contain %q", r.Stderr, w)
				}
			}
		})
	}
	t.Run("json problem", func(t *testing.T) {
		r := gpux(t, s, buyer[1], "bid", "spot", market, "--limit", "2.00", "--json")
		var p struct {
			Status              int
			Code, Field, Detail string
		}
		if err := json.Unmarshal([]byte(r.Stderr), &p); err != nil || p.Status != 422 || p.Code != "insufficient_funds" || p.Field != "limit_price" || p.Detail == "" {
			t.Errorf("--json error: got %q (%v), want the problem as JSON", r.Stderr, err)
		}
	})
	t.Run("help", func(t *testing.T) {
		for _, args := range [][]string{{"-h"}, {"help"}, {"help", "bid"}, {"bid", "-h"}} {
			r := gpux(t, nil, "", args...)
			if r.Code != 0 || strings.Count(r.Stdout, "Usage: gpux") != 1 {
				t.Errorf("gpux %v: exit %d, stdout %q; want 0 and the usage once", args, r.Code, r.Stdout)
			}
		}
		if r := gpux(t, nil, "", "help"); !strings.Contains(r.Stdout, "Exit codes") {
			t.Errorf("help: no exit codes documented")
		}
		if r := gpux(t, nil, "", "bid", "-h"); !strings.Contains(r.Stdout, "-limit") {
			t.Errorf("bid -h: no --limit")
		}
	})
}

// TestCLIWatch runs `gpux watch` and checks it prints a trade made while
// it runs, in both output forms.
func TestCLIWatch(t *testing.T) {
	s := startServer(t)
	bin, _ := binaries(t)
	admin := client.New(s.URL, client.WithAPIKey(adminKey))
	ctx := t.Context()
	o, err := admin.CreateAccount(ctx, client.CreateAccountRequest{Name: "o", Roles: []string{"owner"}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := admin.CreateAccount(ctx, client.CreateAccountRequest{Name: "b", Roles: []string{"buyer"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Deposit(ctx, b.ID, "1000"); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Hour)
	if _, err := admin.WithKey(o.APIKey).PlaceListing(ctx, client.ListingRequest{Market: market, Quantity: 8,
		Start: now, End: now.Add(24 * time.Hour), ReservePrice: client.FixedPrice("2.40")}); err != nil {
		t.Fatal(err)
	}

	// --json first: the market has no trade yet, so its snapshot is at
	// seq 0, which a re-encoding with omitempty used to drop.
	for _, asJSON := range []bool{true, false} {
		args := []string{"watch", "trades:" + market, "--count", "2"}
		if asJSON {
			args = append(args, "--json")
		}
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = []string{"GPUX_URL=" + s.URL}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr gpuxdtest.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 16)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		nextLine := func() string {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("watch ended early; stderr: %s", stderr.String())
				}
				return l
			case <-time.After(20 * time.Second):
				t.Fatalf("watch printed nothing; stderr: %s", stderr.String())
			}
			return ""
		}
		// The snapshot first, then the trade.
		got := []string{nextLine()}
		bid, err := admin.WithKey(b.APIKey).PlaceBid(ctx, client.BidRequest{Type: client.BidReserved, Market: market, Quantity: 3,
			Start: now.Add(3 * time.Hour), End: now.Add(5 * time.Hour), LimitPrice: client.FixedPrice("2.50")})
		if err != nil || len(bid.Fills) != 1 {
			t.Fatalf("bid: %+v, %v", bid, err)
		}
		got = append(got, nextLine())
		all := strings.Join(got, "\n")
		if asJSON {
			// Each line is the server's message as sent: the snapshot
			// of a market without trades is at seq 0 and says so.
			for i, l := range got {
				var m map[string]any
				if err := json.Unmarshal([]byte(l), &m); err != nil {
					t.Fatalf("--json line %q: %v", l, err)
				}
				if seq, ok := m["seq"]; !ok || seq != float64(i) {
					t.Errorf("--json line %d %q: seq %v (present %v), want %d", i, l, seq, ok, i)
				}
			}
			var trade client.Trade
			for _, l := range got {
				var m client.Message
				if err := json.Unmarshal([]byte(l), &m); err != nil {
					t.Fatalf("--json line %q: %v", l, err)
				}
				if m.Channel == "trades:"+market && m.Type == client.MsgUpdate {
					m.Decode(&trade)
				}
			}
			if trade.ID != bid.Fills[0].ID || trade.Quantity != 3 || trade.Price != "2.40" {
				t.Errorf("--json: got trade %+v in\n%s\nwant fill %s", trade, all, bid.Fills[0].ID)
			}
		} else if !strings.Contains(all, "3 GPUs @ 2.40") || !strings.Contains(all, "snapshot") {
			t.Errorf("watch: got\n%s\nwant the snapshots and the trade of 3 GPUs @ 2.40", all)
		}
		if err := cmd.Wait(); err != nil {
			t.Errorf("watch --count 2 exit: %v; stderr %s", err, stderr.String())
		}
	}
}

// TestGpuxdHelp: `gpuxd -h` exits 0 and lists every flag, --healthcheck
// included (it is handled before flag parsing, so it was missing).
func TestGpuxdHelp(t *testing.T) {
	_, gpuxd := binaries(t)
	out, err := exec.Command(gpuxd, "-h").Output()
	if err != nil {
		t.Fatalf("gpuxd -h: %v", err)
	}
	for _, f := range []string{"addr", "redis", "admin-key", "demo", "rate-limit", "healthcheck", "rates", "shard",
		"allowed-origins", "log-format", "log-level", "pprof", "gpus", "regions", "fee-bps", "snapshot-every"} {
		if !strings.Contains(string(out), "  -"+f+" ") && !strings.Contains(string(out), "  -"+f+"\n") {
			t.Errorf("gpuxd -h does not list --%s:\n%s", f, out)
		}
	}
}

// TestMarketMetrics scrapes gpuxd's /metrics after a trade and a spot
// allocation: the per-market gauges a Grafana board charts.
func TestMarketMetrics(t *testing.T) {
	s := startServer(t)
	ctx := t.Context()
	f := ownerListsBuyerFunded(t, s, 24*time.Hour)
	buyer, now := f.buyer, f.now
	if _, err := buyer.PlaceBid(ctx, client.BidRequest{Type: client.BidReserved, Market: market, Quantity: 2,
		Start: now.Add(3 * time.Hour), End: now.Add(5 * time.Hour), LimitPrice: client.FixedPrice("2.50")}); err != nil {
		t.Fatal(err)
	}
	if _, err := buyer.PlaceBid(ctx, client.BidRequest{Type: client.BidSpot, Market: market, Quantity: 3, LimitPrice: client.FixedPrice("2.00")}); err != nil {
		t.Fatal(err)
	}
	if _, err := buyer.PlaceBid(ctx, client.BidRequest{Type: client.BidSpot, Market: market, Quantity: 9, LimitPrice: client.FixedPrice("1.50")}); err != nil {
		t.Fatal(err)
	}
	text, err := client.New(s.URL).Metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	labels := `{gpu="h100-sxm",market="h100-sxm.us-east",region="us-east"}`
	for _, want := range []string{
		"gpux_market_spot_price_usd" + labels + " 1.75",
		"gpux_market_spot_supply_gpus" + labels + " 8",
		"gpux_market_spot_allocated_gpus" + labels + " 3",
		"gpux_market_spot_waiting_gpus" + labels + " 9",
		"gpux_market_spot_ask_usd" + labels + " 1.75",
		"gpux_market_last_trade_price_usd" + labels + " 2.4",
		"gpux_market_best_ask_usd" + labels + " 2.4",
		`gpux_market_spot_supply_gpus{gpu="h200",market="h200.us-east",region="us-east"} 0`,
	} {
		if !strings.Contains(string(text), want+"\n") {
			t.Errorf("/metrics has no line %q", want)
		}
	}
	// A market with nothing to price has no price samples at all, rather
	// than a misleading 0.
	if strings.Contains(string(text), `gpux_market_spot_price_usd{gpu="h200"`) {
		t.Errorf("/metrics shows a spot price for h200 with nothing clearing")
	}
}

// TestCLIWatchUser: watch authenticates with the API key before it
// subscribes to the account's own channel.
func TestCLIWatchUser(t *testing.T) {
	s := startServer(t)
	bin, _ := binaries(t)
	admin := client.New(s.URL, client.WithAPIKey(adminKey))
	b, err := admin.CreateAccount(t.Context(), client.CreateAccountRequest{Name: "watcher", Roles: []string{"buyer"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "watch", "user")
	cmd.Env = []string{"GPUX_URL=" + s.URL, "GPUX_API_KEY=" + b.APIKey}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() || !strings.Contains(sc.Text(), "snapshot #0 watcher balance 0.00") {
		t.Fatalf("first line: got %q, want the account snapshot", sc.Text())
	}
	if _, err := admin.Deposit(t.Context(), b.ID, "12.34"); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() {
		if strings.Contains(sc.Text(), "balance_changed balance 12.34") {
			return
		}
	}
	t.Fatalf("no balance_changed line after the deposit (%v)", sc.Err())
}

// TestExampleProgram builds examples/pricewatch (its own module, importing
// client/ by the module path) and runs it against gpuxd until it has
// printed one live trade.
func TestExampleProgram(t *testing.T) {
	s := startServer(t)
	bin := filepath.Join(t.TempDir(), "pricewatch")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = "../../examples/pricewatch"
	build.Env = append(os.Environ(), "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build examples/pricewatch: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-url", s.URL, "-market", market, "-trades", "1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr gpuxdtest.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), market+" spot ") {
		t.Fatalf("first line: got %q, want the market's spot price; stderr %s", sc.Text(), stderr.String())
	}
	admin := client.New(s.URL, client.WithAPIKey(adminKey))
	o, _ := admin.CreateAccount(ctx, client.CreateAccountRequest{Name: "o", Roles: []string{"owner"}})
	b, _ := admin.CreateAccount(ctx, client.CreateAccountRequest{Name: "b", Roles: []string{"buyer"}})
	if _, err := admin.Deposit(ctx, b.ID, "1000"); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Hour)
	if _, err := admin.WithKey(o.APIKey).PlaceListing(ctx, client.ListingRequest{Market: market, Quantity: 4, Start: now,
		End: now.Add(24 * time.Hour), ReservePrice: client.FixedPrice("2.40")}); err != nil {
		t.Fatal(err)
	}
	// The program subscribes after printing prices; retry the trade
	// until it shows up, so a subscription still under way is no flake.
	var out []string
	done := make(chan struct{})
	go func() {
		for sc.Scan() {
			out = append(out, sc.Text())
		}
		close(done)
	}()
	for h := 3; ; h += 2 {
		if _, err := admin.WithKey(b.APIKey).PlaceBid(ctx, client.BidRequest{Type: client.BidReserved, Market: market, Quantity: 1,
			Start: now.Add(time.Duration(h) * time.Hour), End: now.Add(time.Duration(h+1) * time.Hour), LimitPrice: client.FixedPrice("2.50")}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-done:
			if err := cmd.Wait(); err != nil {
				t.Fatalf("pricewatch: %v; stderr %s", err, stderr.String())
			}
			if last := out[len(out)-1]; !strings.HasPrefix(last, "trade 1 GPUs at 2.40") {
				t.Errorf("last line: got %q, want the trade", last)
			}
			return
		case <-time.After(500 * time.Millisecond):
		}
		if h > 20 {
			t.Fatalf("pricewatch saw no trade; stderr %s", stderr.String())
		}
	}
}

// TestCLIPricesStale checks that a stale reference rate is marked in the
// prices table, explained by a legend, and passes through --json as the
// server sent it (true, and false rather than absent), and that the
// client decodes every field of /v1/prices.
func TestCLIPricesStale(t *testing.T) {
	// Every dated row of the built-in table is more than an hour old, and
	// undated rows are always stale: with 1h every row is stale whatever
	// today's date; with 0 staleness is off and none is.
	stale := startServer(t, "--rates-stale-after", "1h")
	fresh := startServer(t, "--rates-stale-after", "0")

	tests := []struct {
		name  string
		s     *server
		stale bool
	}{
		{"older than the limit", stale, true},
		{"staleness off", fresh, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := ok(t, tt.s, "", "prices")
			line := lineWith(out, market+" ")
			if got := regexp.MustCompile(`(aws|azure|gcp) [0-9.]+\*\s`).MatchString(line); got != tt.stale {
				t.Errorf("prices: %s row %q: stale mark %v, want %v", market, line, got, tt.stale)
			}
			if got := strings.HasSuffix(strings.TrimRight(out, "\n"), "\n"+staleLegend); got != tt.stale {
				t.Errorf("prices: legend at the end %v, want %v; got\n%s", got, tt.stale, out)
			}

			var rows []map[string]any
			if err := json.Unmarshal([]byte(ok(t, tt.s, "", "prices", "--json")), &rows); err != nil {
				t.Fatal(err)
			}
			refs := 0
			for _, r := range rows {
				for _, k := range []string{"discount_basis", "discount_vs_spot", "discount_vs_capacity_block", "discount_vs_reference"} {
					if _, ok := r[k]; !ok {
						t.Errorf("prices --json %v: no %s", r["market"], k)
					}
				}
				for _, ref := range r["reference"].([]any) {
					ref := ref.(map[string]any)
					refs++
					if got, ok := ref["stale"].(bool); !ok || got != tt.stale {
						t.Fatalf("prices --json %v: reference row %v: stale %v, want %v", r["market"], ref, ref["stale"], tt.stale)
					}
					for _, k := range []string{"region", "same_region", "confidence"} {
						if _, ok := ref[k]; !ok {
							t.Fatalf("prices --json %v: reference row %v has no %s", r["market"], ref, k)
						}
					}
				}
			}
			if refs == 0 {
				t.Fatal("prices --json: no reference rows")
			}
		})
	}

	t.Run("client knows every field", func(t *testing.T) {
		// The server's own bytes, decoded strictly: a field the API has
		// and client.PriceRow lacks fails here.
		resp, err := http.Get(stale.URL + "/v1/prices")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		dec := json.NewDecoder(resp.Body)
		dec.DisallowUnknownFields()
		var rows []client.PriceRow
		if err := dec.Decode(&rows); err != nil {
			t.Fatalf("decode /v1/prices into []client.PriceRow: %v", err)
		}
		for _, r := range rows {
			b, ok := r.DiscountBasis["aws"]
			if r.Market == market && (!ok || b.OnDemand == nil || !b.OnDemand.Stale || b.OnDemand.Region == "" || r.DiscountVsSpot == nil) {
				t.Errorf("%s: got basis %+v, spot discounts %v; want AWS's stale on-demand row with its region", market, b, r.DiscountVsSpot)
			}
		}
	})
}

// lineWith returns the first line of out that contains s.
func lineWith(out, s string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

// TestCLIRates reads the reference-rate table with `gpux rates get`,
// replaces it with `gpux rates put FILE` and sees /v1/prices follow, and
// checks the refusals: no admin key, a bad line, a file over the limit.
func TestCLIRates(t *testing.T) {
	s := startServer(t)
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}

	if r := gpux(t, s, "", "rates", "get"); r.Code != exitAPI || !strings.Contains(r.Stderr, "401") {
		t.Errorf("rates get without a key: exit %d, stderr %q; want 1 and the 401", r.Code, r.Stderr)
	}
	table := ok(t, s, adminKey, "rates", "get")
	const header = "provider,gpu_model,instance_type,gpus_per_instance,region,price_type,usd_per_instance_hour,usd_per_gpu_hour,as_of,source,confidence,note\n"
	if !strings.HasPrefix(table, header) {
		t.Fatalf("rates get: got %.300q, want a rates file", table)
	}
	// The built-in AWS H100 on-demand rate in us-east-1 (6.88 as of
	// 2026-07-20, stale after 120 days) becomes 5.00 as of today.
	awsH100 := regexp.MustCompile(`(?m)^(AWS,H100 SXM 80GB,p5\.48xlarge,8,us-east-1,on_demand),[^,]*,[^,]*,[^,]*,`)
	if !awsH100.MatchString(table) {
		t.Fatalf("rates get: no AWS H100 us-east-1 on-demand row in\n%.2000s", table)
	}
	today := time.Now().UTC().Format(time.DateOnly)
	newTable := awsH100.ReplaceAllString(table, "${1},40,5,"+today+",")

	var set client.ReferenceRatesSet
	okJSON(t, s, adminKey, &set, "rates", "put", write("new.csv", []byte(newTable)))
	rows := strings.Count(table, "\n") - 1
	if set.Rates != rows || set.EngineRates == 0 || set.Seq == 0 {
		t.Errorf("rates put --json: got %+v, want %d rates, engine rates and a seq", set, rows)
	}
	got := ok(t, s, adminKey, "rates", "get")
	if sum := sha256.Sum256([]byte(got)); hex.EncodeToString(sum[:]) != set.Hash {
		t.Errorf("rates get after put: hash %x, want %s (what put answered)", sum, set.Hash)
	}
	if row := lineWith(got, "p5.48xlarge,8,us-east-1,on_demand,"); !strings.Contains(row, ",on_demand,40,5.00,"+today+",") {
		t.Errorf("rates get after put: AWS H100 row %q, want 40 per instance, 5.00 per GPU as of %s", row, today)
	}
	line := lineWith(ok(t, s, "", "prices"), market+" ")
	if !strings.Contains(line, "aws 5.00 ") {
		t.Errorf("prices after rates put: %s row %q, want aws 5.00 without a stale mark", market, line)
	}
	if out := ok(t, s, adminKey, "rates", "put", write("again.csv", []byte(got))); !strings.Contains(out, "hash:") || !strings.Contains(out, set.Hash) {
		t.Errorf("rates put table: got\n%s\nwant the same hash %s", out, set.Hash)
	}

	tests := []struct {
		name   string
		args   []string
		key    string
		code   int
		stderr string
	}{
		{"no admin key", []string{"rates", "put", write("ok.csv", []byte(got))}, "", exitAPI, "401"},
		{"bad line", []string{"rates", "put", write("bad.csv", []byte(header+"AWS,H100 SXM 80GB,p5.48xlarge,8,us-east-1,on_sale,55.04,6.88,2026-07-20,x,high,\n"))},
			adminKey, exitAPI, "line 2"},
		{"over the limit", []string{"rates", "put", write("big.csv", bytes.Repeat([]byte("a"), client.MaxRatesFile+1))}, adminKey, exitUsage, "server's limit"},
		{"no such file", []string{"rates", "put", filepath.Join(dir, "missing.csv")}, adminKey, exitUsage, "missing.csv"},
		{"no file", []string{"rates", "put"}, adminKey, exitUsage, "put FILE"},
		{"unknown verb", []string{"rates", "delete"}, adminKey, exitUsage, "put FILE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := gpux(t, s, tt.key, tt.args...); r.Code != tt.code || !strings.Contains(r.Stderr, tt.stderr) {
				t.Errorf("gpux %s: exit %d, stderr %q; want %d and %q", strings.Join(tt.args, " "), r.Code, r.Stderr, tt.code, tt.stderr)
			}
		})
	}
	if after := ok(t, s, adminKey, "rates", "get"); after != got {
		t.Errorf("rates get after the refusals: the table changed")
	}
}

// funded is the market both server-reading tests start from.
type funded struct {
	admin, buyer       *client.Client
	ownerKey, buyerKey string
	now                time.Time // the hour the listing starts
}

// ownerListsBuyerFunded sets it up: an owner listing 8 GPUs of market
// from this hour for d (reserve 2.40, spot floor 1.75) and a buyer with
// 10,000 USD.
func ownerListsBuyerFunded(t *testing.T, s *server, d time.Duration) funded {
	t.Helper()
	ctx := t.Context()
	admin := client.New(s.URL, client.WithAPIKey(adminKey))
	o, err := admin.CreateAccount(ctx, client.CreateAccountRequest{Name: "o", Roles: []string{"owner"}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := admin.CreateAccount(ctx, client.CreateAccountRequest{Name: "b", Roles: []string{"buyer"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Deposit(ctx, b.ID, "10000"); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Hour)
	if _, err := admin.WithKey(o.APIKey).PlaceListing(ctx, client.ListingRequest{Market: market, Quantity: 8, Start: now,
		End: now.Add(d), ReservePrice: client.FixedPrice("2.40"), SpotPriceFloor: client.FixedPrice("1.75")}); err != nil {
		t.Fatal(err)
	}
	return funded{admin: admin, buyer: admin.WithKey(b.APIKey), ownerKey: o.APIKey, buyerKey: b.APIKey, now: now}
}
