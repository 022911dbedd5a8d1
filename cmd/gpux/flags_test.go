package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gpux/gpux/client"
)

var now = time.Date(2026, 11, 29, 18, 47, 13, 0, time.UTC)

func TestParseTime(t *testing.T) {
	tests := []struct {
		in   string
		hour bool
		want time.Time
		bad  bool
	}{
		{in: "now", want: now},
		{in: "now", hour: true, want: now.Truncate(time.Hour)},
		{in: "+2h", hour: true, want: time.Date(2026, 11, 29, 20, 0, 0, 0, time.UTC)},
		{in: "+90m", want: now.Add(90 * time.Minute)},
		{in: "-24h", want: now.Add(-24 * time.Hour)},
		{in: "+3d", hour: true, want: time.Date(2026, 12, 2, 18, 0, 0, 0, time.UTC)},
		{in: "2026-12-01T08:00:00+01:00", want: time.Date(2026, 12, 1, 7, 0, 0, 0, time.UTC)},
		{in: "+2x", bad: true},
		{in: "+-2h", bad: true},
		{in: "+1.5d", bad: true},
		{in: "+99999d", bad: true},
		{in: "tomorrow", bad: true},
		{in: "2026-12-01", bad: true},
	}
	for _, tt := range tests {
		got, err := parseTime(tt.in, now, tt.hour)
		if tt.bad {
			if err == nil {
				t.Errorf("parseTime(%q): got %v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("parseTime(%q, hour %v): got %v, %v; want %v", tt.in, tt.hour, got, err, tt.want)
		}
	}
}

func TestWindow(t *testing.T) {
	s, e, err := window(now, "+2h", "", "12h")
	if err != nil || !s.Equal(time.Date(2026, 11, 29, 20, 0, 0, 0, time.UTC)) || e.Sub(s) != 12*time.Hour {
		t.Errorf("--start +2h --for 12h: got %v → %v, %v", s, e, err)
	}
	s, e, err = window(now, "now", "+1d", "")
	if err != nil || !s.Equal(now.Truncate(time.Hour)) || e.Sub(s) != 24*time.Hour {
		t.Errorf("--start now --end +1d: got %v → %v, %v", s, e, err)
	}
	for _, bad := range [][3]string{{"+1h", "", ""}, {"+1h", "+3h", "2h"}, {"+1h", "", "90m"}, {"+1h", "", "0h"}, {"x", "", "1h"}, {"+1h", "y", ""}} {
		if _, _, err := window(now, bad[0], bad[1], bad[2]); err == nil {
			t.Errorf("window(%q): got no error", bad)
		}
	}
}

func TestParsePrice(t *testing.T) {
	tests := []struct {
		in   string
		want string // JSON of the price
		bad  bool
	}{
		{in: "2.39", want: `"2.39"`},
		{in: "ref:aws:0.40", want: `{"peg":"reference","provider":"aws","discount":"0.40"}`},
		{in: "ref:gcp:0.5:3.00:1.00", want: `{"peg":"reference","provider":"gcp","discount":"0.5","cap":"3.00","floor":"1.00"}`},
		{in: "spot:-0.10", want: `{"peg":"spot","offset":"-0.10"}`},
		{in: "", bad: true},
		{in: "ref:aws", bad: true},
		{in: "spot", bad: true},
		{in: "spot:1:2", bad: true},
		{in: "ref:a:b:c:d:e", bad: true},
		{in: "2:39", bad: true},
	}
	for _, tt := range tests {
		p, err := parsePrice(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("parsePrice(%q): got %v, want an error", tt.in, p)
			}
			continue
		}
		b, _ := p.MarshalJSON()
		if err != nil || string(b) != tt.want {
			t.Errorf("parsePrice(%q): got %s, %v; want %s", tt.in, b, err, tt.want)
		}
	}
}

// TestStatement runs `gpux statement` against a stand-in server that
// answers GET /v1/account/statement as API.md "Additions" specifies: JSON
// in pages, CSV unchanged (TestCLIWalkthrough runs it against gpuxd).
func TestStatement(t *testing.T) {
	var mu sync.Mutex
	var seen []url.Values
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/account/statement" || r.Header.Get("Authorization") != "Bearer k" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		q := r.URL.Query()
		mu.Lock()
		seen = append(seen, q)
		mu.Unlock()
		switch {
		case q.Get("format") == "csv":
			w.Header().Set("Content-Type", "text/csv")
			w.Write([]byte("at,kind,amount,balance_after,ref\n2026-11-29T10:00:00Z,deposit,100.00,100.00,d1\n"))
		case q.Get("cursor") == "":
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"items":[{"at":"2026-11-29T10:00:00Z","kind":"deposit","amount":"100.00","balance_after":"100.00","ref":"d1"},
				{"at":"2026-11-29T11:00:00Z","kind":"reserved_fill","amount":"-25.0000","balance_after":"75.00","ref":"b1"}],"next_cursor":"p2"}`))
		default:
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"items":[{"at":"2026-11-29T12:00:00Z","kind":"spot_accrued","amount":"-0.4123","balance_after":"74.5877","ref":"b2"}],"next_cursor":null}`))
		}
	}))
	defer srv.Close()
	run := func(args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		a := &app{stdout: &out, stderr: &errb, now: func() time.Time { return now },
			getenv: func(k string) string { return map[string]string{"GPUX_URL": srv.URL, "GPUX_API_KEY": "k"}[k] }}
		code := a.run(context.Background(), args)
		return out.String(), errb.String(), code
	}

	out, stderr, code := run("statement", "--from", "-24h", "--to", "now")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"deposit", "reserved_fill", "-25.0000", "spot_accrued", "3 lines", "net  74.5877"} {
		if !strings.Contains(out, want) {
			t.Errorf("statement: got\n%s\nwant %q", out, want)
		}
	}
	mu.Lock()
	first, second := seen[0], seen[1]
	mu.Unlock()
	if first.Get("from") != "2026-11-28T18:47:13Z" || first.Get("to") != "2026-11-29T18:47:13Z" || second.Get("cursor") != "p2" {
		t.Errorf("queries: got %v then %v, want from/to 24 h apart ending now, then cursor p2", first, second)
	}

	out, _, code = run("statement", "--csv")
	if code != 0 || out != "at,kind,amount,balance_after,ref\n2026-11-29T10:00:00Z,deposit,100.00,100.00,d1\n" {
		t.Errorf("--csv: exit %d, got %q, want the server's CSV unchanged", code, out)
	}
	out, _, _ = run("statement", "--json")
	var lines []client.StatementLine
	if err := json.Unmarshal([]byte(out), &lines); err != nil || len(lines) != 3 || lines[2].Kind != client.StatementSpotAccrued {
		t.Errorf("--json: got %s (%v), want all 3 lines", out, err)
	}
	if _, stderr, code := run("statement", "--from", "yesterday"); code != exitUsage || !strings.Contains(stderr, "--from") {
		t.Errorf("bad --from: exit %d, stderr %q; want 2", code, stderr)
	}
}

// TestAccountWallets: through an API node the account carries a wallet per
// shard, and gpux account lists them under the sums; a deposit names its
// shard with --shard.
func TestAccountWallets(t *testing.T) {
	var depositBody string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/v1/account":
			w.Write([]byte(`{"id":"a1","name":"acme","roles":["buyer"],"balance":"300.00","held":"20.00","available":"280.00",
				"created_at":"2026-11-29T10:00:00Z","wallets":[{"shard":"eu-west","balance":"100.00","held":"0.00","available":"100.00"},
				{"shard":"us-east","balance":"200.00","held":"20.00","available":"180.00"}]}`))
		case "/v1/accounts/a1/deposits":
			b, _ := io.ReadAll(r.Body)
			depositBody = string(b)
			w.Write([]byte(`{"id":"a1","name":"acme","roles":["buyer"],"balance":"110.00","held":"0.00","available":"110.00"}`))
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	run := func(args ...string) (string, int) {
		var out, errb bytes.Buffer
		a := &app{stdout: &out, stderr: &errb, now: time.Now,
			getenv: func(k string) string { return map[string]string{"GPUX_URL": srv.URL, "GPUX_API_KEY": "k"}[k] }}
		code := a.run(context.Background(), args)
		return out.String() + errb.String(), code
	}
	out, code := run("account")
	if code != 0 {
		t.Fatalf("account: exit %d: %s", code, out)
	}
	for _, want := range []string{"balance:    300.00", "SHARD    BALANCE", "eu-west  100.00", "us-east  200.00   20.00  180.00"} {
		if !strings.Contains(out, want) {
			t.Errorf("account: got\n%s\nwant %q", out, want)
		}
	}
	if out, code := run("deposit", "a1", "10", "--shard", "eu-west"); code != 0 || !strings.Contains(depositBody, `"shard":"eu-west"`) {
		t.Errorf("deposit --shard: exit %d, body sent %s (%s)", code, depositBody, out)
	}
}
