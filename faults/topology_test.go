package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/gpux/gpux/client"
	"github.com/gpux/gpux/store/redistest"
)

// call sends one JSON request and returns the status, the headers and the
// decoded body (nil when it is not a JSON object).
func call(t *testing.T, hc *http.Client, method, url, key string, body any) (int, http.Header, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, nil
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, resp.Header, m
}

func mustCall(t *testing.T, hc *http.Client, want int, method, url, key string, body any) map[string]any {
	t.Helper()
	st, _, m := call(t, hc, method, url, key, body)
	if st != want {
		t.Fatalf("%s %s: %d %v, want %d", method, url, st, m, want)
	}
	return m
}

// TestTopology starts, without Docker, the topology of
// docker-compose.cluster.yml on loopback ports: a Redis Cluster of three
// masters with a replica each, two region shards each with an owner and a
// standby engine node, and two API nodes. Through the API nodes, one
// account trades in both shards, its wallets sum, money moves between
// them, its statement merges both wallets' lines (summing to the
// balance), and a trade reaches websocket subscribers of both API nodes
// and of the engine node with the same seq. Then one shard's leader is
// killed with SIGKILL: writes to its markets through an API node answer
// 503 with Retry-After (never another status) and reads keep answering,
// until the standby takes the writes, with everything acknowledged before
// still there.
func TestTopology(t *testing.T) {
	c := redistest.StartClusterReplicas(t, 3, 1)
	url := c.URL()
	shards, masters := clusterShards(t, c)
	t.Logf("shards %v on masters %v", shards, masters)
	regions := join(shards)
	leaders := map[string]*daemon{}
	for _, s := range shards {
		leaders[s] = startEngine(t, url, s, "--regions", regions)
		startEngine(t, url, s, "--regions", regions) // its standby
	}
	apis := []*daemon{
		startGpuxd(t, url, "main", "--role", "api", "--regions", regions),
		startGpuxd(t, url, "main", "--role", "api", "--regions", regions),
	}
	ctx := context.Background()
	for _, a := range apis {
		deadline := time.Now().Add(30 * time.Second)
		for client.New(a.url()).Ready(ctx) != nil {
			if time.Now().After(deadline) {
				t.Fatalf("API node %s not ready within 30s:\n%s", a.addr, a.logs.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	a0, a1 := apis[0].url(), apis[1].url()

	h := mustCall(t, hc, 200, "GET", a1+"/healthz", "", nil)
	if h["role"] != "api" || h["shard"] != nil {
		t.Errorf("API node /healthz role %v shard %v", h["role"], h["shard"])
	}

	acct := mustCall(t, hc, 201, "POST", a0+"/v1/accounts", adminKey, map[string]any{"name": "both", "roles": []string{"buyer", "owner"}})
	id, key := acct["id"].(string), acct["api_key"].(string)
	st, _, m := call(t, hc, "POST", a1+"/v1/accounts/"+id+"/deposits", adminKey, map[string]any{"amount": "100.00"})
	if st != 422 || m["code"] != "shard_required" {
		t.Errorf("deposit without a shard: %d %v, want 422 shard_required", st, m)
	}
	for _, s := range shards { // through the SDK: client.WithShard
		if _, err := client.New(a1, client.WithAPIKey(adminKey)).Deposit(ctx, id, "1000.00", client.WithShard(s)); err != nil {
			t.Fatalf("deposit to %s: %v", s, err)
		}
	}

	// Feeds: the first shard's trades channel through each API node and
	// straight from its leader; the trades below must arrive at the same
	// seqs on all three.
	feedMarket := faultGPUs[0] + "." + shards[0]
	var feeds []*client.Feed
	var feedSeen []string
	for _, base := range []string{a0, a1, leaders[shards[0]].url()} {
		f, err := client.New(base).Subscribe(ctx, []string{"trades:" + feedMarket})
		if err != nil {
			t.Fatalf("subscribe through %s: %v", base, err)
		}
		defer f.Close()
		feeds = append(feeds, f)
	}

	// A listing and a crossing bid in each shard's market, each sent
	// through the other API node than the listing.
	start := time.Now().UTC().Truncate(time.Hour).Add(2 * time.Hour)
	bids := map[string]string{}
	for i, s := range shards {
		market := faultGPUs[0] + "." + s
		mustCall(t, hc, 201, "POST", apis[i].url()+"/v1/listings", key, map[string]any{
			"market": market, "quantity": 4, "start": start, "end": start.Add(3 * time.Hour), "reserve_price": "2.00"})
		b := mustCall(t, hc, 201, "POST", apis[1-i].url()+"/v1/bids", key, map[string]any{
			"type": "reserved", "market": market, "quantity": 2, "start": start, "end": start.Add(2 * time.Hour), "limit_price": "3.00"})
		bids[s] = b["id"].(string)
		if b["status"] != "filled" {
			t.Errorf("bid in %s: status %v, want filled", market, b["status"])
		}
	}
	for i, f := range feeds {
		var got []string
		fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		for len(got) == 0 {
			m, err := f.Next(fctx)
			if err != nil {
				t.Fatalf("feed %d: %v (got %v)", i, err, got)
			}
			if m.Channel == "trades:"+feedMarket && m.Type == "update" {
				got = append(got, fmt.Sprintf("%d %s", m.Seq, m.Data))
			}
		}
		cancel()
		feedSeen = append(feedSeen, got[0])
	}
	for i := 1; i < len(feedSeen); i++ {
		if feedSeen[i] != feedSeen[0] {
			t.Errorf("the trade through feed %d is %q, through feed 0 %q: want the same seq and data through every node", i, feedSeen[i], feedSeen[0])
		}
	}
	t.Logf("trade on %s through both API nodes and directly: %.60s", feedMarket, feedSeen[0])
	wallets := func(base string) map[string]any {
		t.Helper()
		a := mustCall(t, hc, 200, "GET", base+"/v1/account", key, nil)
		ws, _ := a["wallets"].([]any)
		if len(ws) != len(shards) {
			t.Fatalf("account through %s: wallets %v, want one per shard", base, a["wallets"])
		}
		return a
	}
	before := wallets(a0)
	if after := wallets(a1); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("the two API nodes answer different accounts:\n%v\n%v", before, after)
	}
	tr, err := client.New(a0, client.WithAPIKey(key)).Transfer(ctx, client.TransferRequest{FromShard: shards[0], ToShard: shards[1], Amount: "250.00"})
	if err != nil || tr.Status != "completed" {
		t.Fatalf("transfer: %+v %v, want completed", tr, err)
	}
	moved, err := client.New(a1, client.WithAPIKey(key)).Account(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if moved.Balance != before["balance"] || len(moved.Wallets) != 2 {
		t.Errorf("account after a transfer %+v, balance %v before: a transfer between wallets changes no sum", moved, before["balance"])
	}
	for _, w := range moved.Wallets {
		for _, b := range before["wallets"].([]any) {
			if bw := b.(map[string]any); bw["shard"] == w.Shard {
				t.Logf("wallet %s: %v before the transfer, %s after", w.Shard, bw["balance"], w.Balance)
			}
		}
	}

	// The statement through an API node merges both wallets' lines, each
	// naming its shard; their amounts sum to the summed balance (the
	// account started empty). ?shard= gives one wallet's.
	stmt, err := client.New(a1, client.WithAPIKey(key)).Statement(ctx, client.StatementQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	sum, shardsSeen := decimal.Zero, map[string]bool{}
	for _, l := range stmt.Items {
		sum = sum.Add(decimal.RequireFromString(l.Amount))
		shardsSeen[l.Shard] = true
	}
	if bal := decimal.RequireFromString(moved.Balance); !sum.Equal(bal) || len(shardsSeen) != 2 || stmt.NextCursor != nil {
		t.Errorf("merged statement: %d lines summing to %s over shards %v, want the balance %s over both", len(stmt.Items), sum, shardsSeen, bal)
	}
	one, err := client.New(a0, client.WithAPIKey(key)).Statement(ctx, client.StatementQuery{Shard: shards[1], Limit: 1000})
	if err != nil || len(one.Items) == 0 || len(one.Items) >= len(stmt.Items) {
		t.Errorf("statement of %s: %d lines (%v), want some but fewer than the merged %d", shards[1], len(one.Items), err, len(stmt.Items))
	}

	// Kill shard 0's leader; write to its market through an API node until
	// the standby takes it.
	down := shards[0]
	market := faultGPUs[0] + "." + down
	killed := time.Now()
	leaders[down].kill()
	var refused, reads int
	for {
		st, hdr, m := call(t, hc, "POST", a0+"/v1/bids", key, map[string]any{
			"type": "reserved", "market": market, "quantity": 1, "start": start, "end": start.Add(time.Hour), "limit_price": "1.00"})
		if st == 201 {
			break
		}
		if st != 503 || hdr.Get("Retry-After") == "" {
			t.Fatalf("write to %s without a leader: %d (Retry-After %q) %v, want 503 with Retry-After", market, st, hdr.Get("Retry-After"), m)
		}
		refused++
		if st, _, m := call(t, hc, "GET", a1+"/v1/bids/"+bids[down], key, nil); st != 200 {
			t.Fatalf("read of a bid of %s without a leader: %d %v, want 200 (a standby answers)", down, st, m)
		}
		reads++
		if time.Since(killed) > 60*time.Second {
			t.Fatalf("no leader for %s within 60s of the kill", down)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("shard %s: SIGKILL of its leader → first write accepted through an API node after %v (%d writes answered 503 meanwhile, %d reads answered)",
		down, time.Since(killed).Round(time.Millisecond), refused, reads)
	for _, s := range shards {
		b := mustCall(t, hc, 200, "GET", a1+"/v1/bids/"+bids[s], key, nil)
		if b["status"] != "filled" {
			t.Errorf("bid %s of %s after the failover: %v", bids[s], s, b["status"])
		}
	}
	if got := wallets(a0); got["balance"] == nil || !strings.Contains(fmt.Sprint(got["wallets"]), shards[1]) {
		t.Errorf("account after the failover: %v", got)
	}
}
