package gateway

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"
	"time"

	"github.com/gpux/gpux/api"
	"github.com/gpux/gpux/engine"
)

type stmtPageJSON struct {
	Items      []stmtLine `json:"items"`
	NextCursor *string    `json:"next_cursor"`
}

// posted drops the spot_accrued lines (their at and amount are the
// engine's now, which moves between two reads).
func posted(lines []stmtLine) []stmtLine {
	var out []stmtLine
	for _, l := range lines {
		if l.Kind != "spot_accrued" {
			l.at = time.Time{}
			out = append(out, l)
		}
	}
	return out
}

// readStatement pages the merged statement through with limit (0: one
// page without a limit).
func readStatement(t *testing.T, g *apiNode, key string, limit string) []stmtLine {
	t.Helper()
	var all []stmtLine
	cursor := ""
	for range 50 {
		path := "/v1/account/statement?"
		if limit != "" {
			path += "limit=" + limit + "&"
		}
		if cursor != "" {
			path += "cursor=" + cursor
		}
		var page stmtPageJSON
		do(t, g.url, "GET", path, key, nil).want(t, 200, "").decode(t, &page)
		all = append(all, page.Items...)
		if page.NextCursor == nil {
			return all
		}
		cursor = *page.NextCursor
	}
	t.Fatal("the statement did not end in 50 pages")
	return nil
}

// TestMergedStatement: without ?shard= the statement through an API node
// is every wallet's lines, oldest first, each shard's in its own order, in
// pages of any size and as CSV; the amounts sum to the summed balance; a
// transfer is a withdrawal on one wallet and a deposit on the other.
func TestMergedStatement(t *testing.T) {
	cl, regions := newCluster(t, 1)
	r1 := regions[0]
	g := cl.gateway(nil)
	id, key := g.account("acme", "buyer")
	step := func() { time.Sleep(3 * time.Millisecond) } // at has milliseconds
	g.deposit(id, cl.main, "100.50")
	step()
	g.deposit(id, r1, "50")
	step()
	do(t, g.url, "POST", "/v1/accounts/"+id+"/withdrawals", adminKey, map[string]any{"amount": "0.5", "shard": cl.main}).want(t, 200, "")
	step()
	do(t, g.url, "POST", "/v1/account/transfers", key, map[string]any{"from_shard": cl.main, "to_shard": r1, "amount": "30"}).want(t, 201, "")
	step()
	g.deposit(id, r1, "7")

	whole := readStatement(t, g, key, "")
	type want struct{ shard, kind, amount, after string }
	wantLines := []want{
		{cl.main, "deposit", "100.50", "100.50"},
		{r1, "deposit", "50.00", "50.00"},
		{cl.main, "withdrawal", "-0.50", "100.00"},
		{cl.main, "withdrawal", "-30.00", "70.00"},
		{r1, "deposit", "30.00", "80.00"},
		{r1, "deposit", "7.00", "87.00"},
	}
	got := posted(whole)
	if len(got) != len(wantLines) {
		t.Fatalf("lines: got %d, want %d: %+v", len(got), len(wantLines), whole)
	}
	for i, w := range wantLines {
		if l := got[i]; l.Shard != w.shard || l.Kind != w.kind || l.Amount != w.amount || l.BalanceAfter != w.after {
			t.Errorf("line %d: got %+v, want %+v", i, l, w)
		}
	}
	var sum int64
	var prev time.Time
	for _, l := range whole {
		abs, neg := strings.CutPrefix(l.Amount, "-")
		v, err := engine.ParseTicks(abs)
		if err != nil {
			t.Fatalf("amount %q: %v", l.Amount, err)
		}
		if neg {
			v = -v
		}
		sum += v
		at, err := time.Parse(time.RFC3339Nano, l.At)
		if err != nil || at.Before(prev) {
			t.Errorf("line %+v: at not in order after %v (%v)", l, prev, err)
		}
		prev = at
	}
	var a accountJSON
	do(t, g.url, "GET", "/v1/account", key, nil).want(t, 200, "").decode(t, &a)
	if s := engine.Money(sum).String(); s != a.Balance || a.Balance != "157.00" {
		t.Errorf("sum of amounts %s, summed balance %s, want both 157.00", s, a.Balance)
	}

	for _, limit := range []string{"1", "2", "3", "1000"} {
		paged := posted(readStatement(t, g, key, limit))
		if len(paged) != len(got) {
			t.Fatalf("limit %s: got %d posted lines, want %d: %+v", limit, len(paged), len(got), paged)
		}
		for i := range got {
			if paged[i] != got[i] {
				t.Errorf("limit %s, line %d: got %+v, want %+v", limit, i, paged[i], got[i])
			}
		}
	}

	// CSV: the same lines with a shard column; a limit gives Next-Cursor.
	r := do(t, g.url, "GET", "/v1/account/statement?format=csv", key, nil).want(t, 200, "")
	rows, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rows[0], ",") != "at,kind,amount,balance_after,ref,shard" {
		t.Errorf("csv header: %v", rows[0])
	}
	var fromCSV []stmtLine
	for _, row := range rows[1:] {
		fromCSV = append(fromCSV, stmtLine{At: row[0], Kind: row[1], Amount: row[2], BalanceAfter: row[3], Ref: row[4], Shard: row[5]})
	}
	if c := posted(fromCSV); len(c) != len(got) || c[0] != got[0] || c[len(c)-1] != got[len(got)-1] {
		t.Errorf("csv lines: got %+v, want %+v", c, got)
	}
	r = do(t, g.url, "GET", "/v1/account/statement?format=csv&limit=2", key, nil).want(t, 200, "")
	if r.header.Get("Next-Cursor") == "" || strings.Count(string(r.body), "\n") != 3 {
		t.Errorf("csv with limit 2: Next-Cursor %q, body %s", r.header.Get("Next-Cursor"), r.body)
	}

	// One wallet's view is still there; a period is each shard's.
	var one stmtPageJSON
	do(t, g.url, "GET", "/v1/account/statement?shard="+r1, key, nil).want(t, 200, "").decode(t, &one)
	if p := posted(one.Items); len(p) != 3 || p[0].Shard != "" {
		t.Errorf("?shard=%s: got %+v, want its 3 lines without a shard", r1, one.Items)
	}
	var none stmtPageJSON
	do(t, g.url, "GET", "/v1/account/statement?to=2020-01-01T00:00:00Z", key, nil).want(t, 200, "").decode(t, &none)
	if len(none.Items) != 0 || none.NextCursor != nil {
		t.Errorf("a period before the account: got %+v", none)
	}

	// An account with a wallet on one shard only.
	_, other := g.account("other", "buyer")
	var empty stmtPageJSON
	do(t, g.url, "GET", "/v1/account/statement", other, nil).want(t, 200, "").decode(t, &empty)
	if len(posted(empty.Items)) != 0 || empty.NextCursor != nil {
		t.Errorf("an account without lines: got %+v", empty)
	}

	for _, tc := range []struct{ q, code string }{
		{"cursor=" + strings.Repeat("s", maxStmtCursor+1), api.CodeInvalidCursor},
		{"cursor=s1.!!!", api.CodeInvalidCursor},
		{"cursor=m1.e30", api.CodeInvalidCursor},                 // an order list's
		{"cursor=s1.eyJ4Ijp7ImsiOi0xfX0", api.CodeInvalidCursor}, // {"x":{"k":-1}}
		{"limit=1001", api.CodeInvalidLimit},
		{"limit=0", api.CodeInvalidLimit},
		{"format=xml", api.CodeInvalidValue},
		{"from=yesterday", "invalid_time"},
		{"shard=nowhere", api.CodeUnknownShard},
	} {
		do(t, g.url, "GET", "/v1/account/statement?"+tc.q, key, nil).want(t, 422, tc.code)
	}
	do(t, g.url, "GET", "/v1/account/statement", "", nil).want(t, 401, "")
}
