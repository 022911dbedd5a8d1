package gateway

import (
	"bytes"
	"compress/gzip"
	"context"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/gpux/gpux/api"
	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/sequencer"
	"github.com/gpux/gpux/store/redistest"
)

// TestRoutesMatchOpenAPI: an API node serves every operation of
// openapi.yaml except the engine nodes' internal route, and nothing else.
func TestRoutesMatchOpenAPI(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(api.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths {
		for method := range item {
			switch method {
			case "get", "post", "put", "patch", "delete":
				documented[strings.ToUpper(method)+" "+path] = true
			}
		}
	}
	cl, _ := newCluster(t, 0)
	g := cl.gateway(nil)
	param := regexp.MustCompile(`:([a-z_]+)`)
	served := map[string]bool{}
	for _, r := range g.App().GetRoutes(true) {
		if r.Method == "HEAD" || r.Method == "USE" || r.Path == "/v1" || r.Path == "/" {
			continue
		}
		served[r.Method+" "+param.ReplaceAllString(r.Path, "{$1}")] = true
	}
	internal := map[string]bool{
		"PUT " + param.ReplaceAllString(api.ProvisionPath, "{$1}"): true,
		"GET " + api.FeedSnapshotPath:                              true,
	}
	for k := range served {
		if !documented[k] {
			t.Errorf("%s is served but not in openapi.yaml", k)
		}
	}
	for k := range documented {
		if !served[k] && !internal[k] {
			t.Errorf("%s is in openapi.yaml but not served by an API node", k)
		}
	}
}

// TestRoutingByRegion: a market's orders land on the shard of its region,
// markets of no region shard on the default shard; the lists merge.
func TestRoutingByRegion(t *testing.T) {
	cl, regions := newCluster(t, 1)
	r1 := regions[0]
	g := cl.gateway(nil)
	ownerID, owner := g.account("owner", "owner")
	_ = ownerID

	for _, tc := range []struct {
		market string
		shard  string
	}{
		{"h100-sxm." + r1, r1},
		{"l4.us-east", cl.main},
	} {
		t.Run(tc.market, func(t *testing.T) {
			var l struct{ ID string }
			do(t, g.url, "POST", "/v1/listings", owner, listing(tc.market)).want(t, 201, "").decode(t, &l)
			for shard, n := range cl.nodes {
				got := do(t, "http://"+n.addr, "GET", "/v1/listings/"+l.ID, owner, nil).status
				want := 404
				if shard == tc.shard {
					want = 200
				}
				if got != want {
					t.Errorf("listing on shard %s: got %d, want %d", shard, got, want)
				}
			}
			do(t, g.url, "GET", "/v1/listings/"+l.ID, owner, nil).want(t, 200, "")
			do(t, g.url, "GET", "/v1/markets/"+tc.market+"/book", "", nil).want(t, 200, "")
		})
	}

	var markets []struct{ ID string }
	do(t, g.url, "GET", "/v1/markets", "", nil).want(t, 200, "").decode(t, &markets)
	if got, want := len(markets), 4; got != want {
		t.Errorf("markets: got %d, want %d (%+v)", got, want, markets)
	}
	var prices []struct{ Market string }
	do(t, g.url, "GET", "/v1/prices", "", nil).want(t, 200, "").decode(t, &prices)
	if got, want := len(prices), 4; got != want {
		t.Errorf("prices: got %d, want %d", got, want)
	}
	do(t, g.url, "GET", "/v1/markets/h100-sxm.nowhere/book", "", nil).want(t, 404, "not_found")
}

// TestSameJSONAsDirect: with one shard, what an API node answers is what
// the engine node answers.
func TestSameJSONAsDirect(t *testing.T) {
	cl, _ := newCluster(t, 0)
	g := cl.gateway(nil)
	direct := "http://" + cl.nodes[cl.main].addr
	buyerID, buyer := g.account("buyer", "buyer")
	_, owner := g.account("owner", "owner")
	g.deposit(buyerID, "", "100")
	market := "h100-sxm.us-east"
	do(t, g.url, "POST", "/v1/listings", owner, listing(market)).want(t, 201, "")
	var b struct{ ID string }
	do(t, g.url, "POST", "/v1/bids", buyer, reservedBid(market, "3.00")).want(t, 201, "").decode(t, &b)

	for _, tc := range []struct {
		path, key string
		status    int
	}{
		{"/v1/markets", "", 200},
		{"/v1/markets/" + market, "", 200},
		{"/v1/markets/" + market + "/book", "", 200},
		{"/v1/markets/" + market + "/trades", "", 200},
		{"/v1/bids/" + b.ID, buyer, 200},
		{"/v1/bids?limit=5", buyer, 200},
		{"/v1/listings", owner, 200},
		{"/v1/account/statement", buyer, 200},
		{"/v1/markets/nope.us-east/book", "", 404},
		{"/v1/markets/" + market + "/quote?quantity=1&start=" + hourRFC(3) + "&end=" + hourRFC(4), "", 200},
		{"/v1/markets/" + market + "/history?interval=1h", "", 200},
		{"/v1/prices", "", 200},
		{"/v1/markets/" + market + "/quote?quantity=0&start=" + hourRFC(3) + "&end=" + hourRFC(4), "", 422},
	} {
		t.Run(tc.path, func(t *testing.T) {
			via := do(t, g.url, "GET", tc.path, tc.key, nil)
			dir := do(t, direct, "GET", tc.path, tc.key, nil)
			if via.status != tc.status {
				t.Errorf("status: got %d, want %d (%s)", via.status, tc.status, via.body)
			}
			if via.status != dir.status || !bytes.Equal(via.body, dir.body) {
				t.Errorf("through the API node %d %s\ndirect %d %s", via.status, via.body, dir.status, dir.body)
			}
			if got, want := via.header.Get("Content-Type"), dir.header.Get("Content-Type"); got != want {
				t.Errorf("content type: got %q, want %q", got, want)
			}
		})
	}
	// Errors are the engine node's too.
	bad := reservedBid(market, "3.00")
	bad["quantity"] = 0
	via := do(t, g.url, "POST", "/v1/bids", buyer, bad)
	dir := do(t, direct, "POST", "/v1/bids", buyer, bad)
	if via.status != dir.status || !bytes.Equal(via.body, dir.body) {
		t.Errorf("rejection through the API node %d %s, direct %d %s", via.status, via.body, dir.status, dir.body)
	}
}

// TestNoLeader: a shard without a leader answers writes 503 no_leader
// with Retry-After, and its reads keep answering from a live standby.
func TestNoLeader(t *testing.T) {
	cl, regions := newCluster(t, 1)
	r1 := regions[0]
	g := cl.gateway(nil)
	_, owner := g.account("owner", "owner")
	market := "h100-sxm." + r1
	var l struct{ ID string }
	do(t, g.url, "POST", "/v1/listings", owner, listing(market)).want(t, 201, "").decode(t, &l)

	cl.dropLeader(r1)

	for _, tc := range []struct{ method, path string }{
		{"POST", "/v1/listings"},
		{"DELETE", "/v1/listings/" + l.ID},
	} {
		var body any
		if tc.method == "POST" {
			body = listing(market)
		}
		a := do(t, g.url, tc.method, tc.path, owner, body).want(t, 503, api.CodeNoLeader)
		if a.header.Get("Retry-After") == "" {
			t.Errorf("%s %s: no Retry-After", tc.method, tc.path)
		}
	}
	do(t, g.url, "GET", "/v1/markets/"+market+"/book", "", nil).want(t, 200, "")
	do(t, g.url, "GET", "/v1/listings/"+l.ID, owner, nil).want(t, 200, "")
	do(t, g.url, "GET", "/v1/account", owner, nil).want(t, 200, "")
	// The other shard still takes writes, and the node is ready.
	do(t, g.url, "POST", "/v1/listings", owner, listing("h100-sxm.us-east")).want(t, 201, "")
	do(t, g.url, "GET", "/readyz", "", nil).want(t, 200, "")
	cl.dropLeader(cl.main)
	do(t, g.url, "GET", "/readyz", "", nil).want(t, 503, api.CodeNoLeader)

	var h healthJSON
	do(t, g.url, "GET", "/healthz", "", nil).want(t, 200, "").decode(t, &h)
	if h.Role != "api" || h.Shard != nil || len(h.Shards) != 2 {
		t.Errorf("healthz: got %+v, want role api, shard null, two shards", h)
	}
}

// TestRegistryAuth: an account made through an API node exists on every
// shard with the same id and key hash, any API node authenticates it from
// the registry alone, and no key is in Redis in plain text.
func TestRegistryAuth(t *testing.T) {
	cl, _ := newCluster(t, 2)
	g := cl.gateway(nil)
	id, key := g.account("acme", "buyer", "owner")
	for shard, n := range cl.nodes {
		var a struct{ ID string }
		do(t, "http://"+n.addr, "GET", "/v1/account", key, nil).want(t, 200, "").decode(t, &a)
		if a.ID != id {
			t.Errorf("shard %s: account %s, want %s", shard, a.ID, id)
		}
	}
	g2 := cl.gateway(nil)
	do(t, g2.url, "GET", "/v1/account", key, nil).want(t, 200, "")
	do(t, g2.url, "GET", "/v1/account", "gpux_unknown", nil).want(t, 401, api.CodeUnauthorized)
	do(t, g2.url, "GET", "/v1/account", "", nil).want(t, 401, api.CodeUnauthorized)
	do(t, g2.url, "POST", "/v1/accounts", key, map[string]any{"name": "x", "roles": []string{"buyer"}}).want(t, 403, "forbidden")

	// An idempotent retry answers the same account without its key.
	body := map[string]any{"name": "retry", "roles": []string{"buyer"}}
	var first, again created
	do(t, g.url, "POST", "/v1/accounts", adminKey, body, "Idempotency-Key", "k1").want(t, 201, "").decode(t, &first)
	do(t, g2.url, "POST", "/v1/accounts", adminKey, body, "Idempotency-Key", "k1").want(t, 201, "").decode(t, &again)
	if again.ID != first.ID || again.APIKey != nil || first.APIKey == nil {
		t.Errorf("replay: got %+v after %+v, want the same id and no key", again, first)
	}
	body["name"] = "other"
	do(t, g.url, "POST", "/v1/accounts", adminKey, body, "Idempotency-Key", "k1").want(t, 422, "idempotency_key_reused")

	// No key in plain text anywhere under the registry or the shards.
	ctx := context.Background()
	for _, tag := range []string{cl.registry, cl.main} {
		iter := cl.rdb.Scan(ctx, 0, "gpux:{"+tag+"}:*", 1000).Iterator()
		for iter.Next(ctx) {
			k := iter.Val()
			var vals []string
			switch cl.rdb.Type(ctx, k).Val() {
			case "string":
				vals = []string{cl.rdb.Get(ctx, k).Val()}
			case "hash":
				for f, v := range cl.rdb.HGetAll(ctx, k).Val() {
					vals = append(vals, f, v)
				}
			case "set":
				vals = cl.rdb.SMembers(ctx, k).Val()
			}
			for _, v := range vals {
				for _, secret := range []string{key, *first.APIKey} {
					if strings.Contains(v, secret) || strings.Contains(v, strings.TrimPrefix(secret, api.KeyPrefix)) {
						t.Errorf("key %s holds an API key in plain text", k)
					}
				}
			}
		}
	}
}

// TestShardRequired: with several shards a deposit names its wallet; the
// account's wallets sum in GET /v1/account.
func TestShardRequired(t *testing.T) {
	cl, regions := newCluster(t, 1)
	r1 := regions[0]
	g := cl.gateway(nil)
	id, key := g.account("acme", "buyer")
	do(t, g.url, "POST", "/v1/accounts/"+id+"/deposits", adminKey, map[string]any{"amount": "10"}).want(t, 422, api.CodeShardRequired)
	do(t, g.url, "POST", "/v1/accounts/"+id+"/deposits", adminKey, map[string]any{"amount": "10", "shard": "nowhere"}).want(t, 422, api.CodeUnknownShard)
	do(t, g.url, "POST", "/v1/accounts/"+id+"/deposits", adminKey, map[string]any{"amount": "10", "shard": strings.Repeat("x", 65)}).want(t, 422, api.CodeInvalidValue)
	do(t, g.url, "POST", "/v1/accounts/"+id+"/deposits", adminKey, map[string]any{"amount": "10", "shard": r1, "x": 1}).want(t, 422, api.CodeUnknownField)
	do(t, g.url, "POST", "/v1/accounts/00000000-0000-0000-0000-000000000000/deposits", adminKey, map[string]any{"amount": "10", "shard": r1}).want(t, 404, "not_found")
	g.deposit(id, cl.main, "100.50")
	g.deposit(id, r1, "50")
	do(t, g.url, "POST", "/v1/accounts/"+id+"/withdrawals", adminKey, map[string]any{"amount": "0.5", "shard": cl.main}).want(t, 200, "")
	do(t, g.url, "GET", "/v1/account/statement?shard="+r1, key, nil).want(t, 200, "")

	var a accountJSON
	do(t, g.url, "GET", "/v1/account", key, nil).want(t, 200, "").decode(t, &a)
	if a.Balance != "150.00" || a.Available != "150.00" || a.Held != "0.00" || len(a.Wallets) != 2 {
		t.Fatalf("account: got %+v, want balance 150.00 over two wallets", a)
	}
	for _, w := range a.Wallets {
		want := map[string]string{cl.main: "100.00", r1: "50.00"}[w.Shard]
		if w.Balance != want {
			t.Errorf("wallet %s: got %s, want %s", w.Shard, w.Balance, want)
		}
	}
}

// TestMergedPages: bids on two shards page newest first through one
// cursor, each exactly once.
func TestMergedPages(t *testing.T) {
	cl, regions := newCluster(t, 1)
	r1 := regions[0]
	g := cl.gateway(nil)
	id, buyer := g.account("buyer", "buyer")
	g.deposit(id, cl.main, "1000")
	g.deposit(id, r1, "1000")
	var want []string
	for i := range 5 {
		market := "l4.us-east"
		if i%2 == 1 {
			market = "l4." + r1
		}
		var b struct{ ID string }
		do(t, g.url, "POST", "/v1/bids", buyer, reservedBid(market, "1.00")).want(t, 201, "").decode(t, &b)
		want = append([]string{b.ID}, want...) // newest first
		time.Sleep(2 * time.Millisecond)       // created_at has milliseconds
	}
	var got []string
	cursor := ""
	for range 10 {
		path := "/v1/bids?limit=2"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		var page struct {
			Items []struct {
				ID string `json:"id"`
			} `json:"items"`
			NextCursor *string `json:"next_cursor"`
		}
		do(t, g.url, "GET", path, buyer, nil).want(t, 200, "").decode(t, &page)
		for _, it := range page.Items {
			got = append(got, it.ID)
		}
		if page.NextCursor == nil {
			break
		}
		cursor = *page.NextCursor
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("pages:\n got %v\nwant %v", got, want)
	}
	for _, tc := range []struct{ q, code string }{
		{"cursor=" + strings.Repeat("m", maxCursor+1), api.CodeInvalidCursor},
		{"cursor=m1.!!!", api.CodeInvalidCursor},
		{"cursor=not-a-cursor", api.CodeInvalidCursor},
		{"limit=1001", api.CodeInvalidLimit},
		{"limit=0", api.CodeInvalidLimit},
	} {
		do(t, g.url, "GET", "/v1/bids?"+tc.q, buyer, nil).want(t, 422, tc.code)
	}
}

// walletBalances reads the account's wallet on every shard directly.
func walletBalances(t *testing.T, cl *cluster, key string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for shard, n := range cl.nodes {
		var a struct{ Balance string }
		do(t, "http://"+n.addr, "GET", "/v1/account", key, nil).want(t, 200, "").decode(t, &a)
		out[shard] = a.Balance
	}
	return out
}

// TestTransferExactlyOnce: an API node stops after the withdrawal; another
// API node's sweeper completes the deposit; driving the transfer again
// from the start moves nothing more.
func TestTransferExactlyOnce(t *testing.T) {
	cl, regions := newCluster(t, 1)
	r1 := regions[0]
	g1 := cl.gateway(func(c *Config) {
		c.stopAfter = func(state string) bool { return state == stateWithdrawn }
	})
	id, key := g1.account("acme", "buyer")
	g1.deposit(id, cl.main, "100")

	var tr transferJSON
	do(t, g1.url, "POST", "/v1/account/transfers", key, map[string]any{"from_shard": cl.main, "to_shard": r1, "amount": "40"}, "Idempotency-Key", "t1").
		want(t, 202, "").decode(t, &tr)
	if tr.Status != statePending {
		t.Fatalf("transfer: got %+v, want pending", tr)
	}
	if got := walletBalances(t, cl, key); got[cl.main] != "60.00" || got[r1] != "0.00" {
		t.Fatalf("after the first side: got %v, want 60.00 and 0.00", got)
	}
	g1.stop()

	g2 := cl.gateway(func(c *Config) { c.SweepInterval, c.SweepAfter = 50*time.Millisecond, time.Millisecond })
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := g2.reg.transfer(context.Background(), tr.ID)
		if err != nil {
			t.Fatal(err)
		}
		if st.State == stateCompleted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("transfer still %s", st.State)
		}
		time.Sleep(20 * time.Millisecond)
	}
	want := map[string]string{cl.main: "60.00", r1: "40.00"}
	if got := walletBalances(t, cl, key); got[cl.main] != want[cl.main] || got[r1] != want[r1] {
		t.Fatalf("after the sweeper: got %v, want %v", got, want)
	}
	// The client's retry sees it completed.
	do(t, g2.url, "POST", "/v1/account/transfers", key, map[string]any{"from_shard": cl.main, "to_shard": r1, "amount": "40"}, "Idempotency-Key", "t1").
		want(t, 201, "")
	// Both sides again, from the start: the shards' idempotency keys make
	// them no-ops.
	st, _ := g2.reg.transfer(context.Background(), tr.ID)
	st.State = statePending
	if err := g2.drive(context.Background(), &st); err != nil {
		t.Fatal(err)
	}
	if st.State != stateCompleted {
		t.Errorf("driven again: %s, want completed", st.State)
	}
	if got := walletBalances(t, cl, key); got[cl.main] != want[cl.main] || got[r1] != want[r1] {
		t.Fatalf("after driving again: got %v, want %v", got, want)
	}
}

// TestTransferRejected: a transfer the source cannot pay fails with its
// code and moves nothing; bad input is refused before anything is
// recorded.
func TestTransferRejected(t *testing.T) {
	cl, regions := newCluster(t, 1)
	r1 := regions[0]
	g := cl.gateway(nil)
	id, key := g.account("acme", "buyer")
	g.deposit(id, cl.main, "10")
	body := map[string]any{"from_shard": cl.main, "to_shard": r1, "amount": "40"}
	do(t, g.url, "POST", "/v1/account/transfers", key, body, "Idempotency-Key", "t2").want(t, 422, "insufficient_funds")
	do(t, g.url, "POST", "/v1/account/transfers", key, body, "Idempotency-Key", "t2").want(t, 422, "insufficient_funds")
	body["amount"] = "5"
	do(t, g.url, "POST", "/v1/account/transfers", key, body, "Idempotency-Key", "t2").want(t, 422, "idempotency_key_reused")
	if got := walletBalances(t, cl, key); got[cl.main] != "10.00" || got[r1] != "0.00" {
		t.Fatalf("got %v, want nothing moved", got)
	}
	for _, tc := range []struct {
		body any
		code string
	}{
		{map[string]any{"from_shard": cl.main, "to_shard": cl.main, "amount": "1"}, api.CodeSameShard},
		{map[string]any{"from_shard": cl.main, "to_shard": "nowhere", "amount": "1"}, api.CodeUnknownShard},
		{map[string]any{"from_shard": strings.Repeat("s", 65), "to_shard": r1, "amount": "1"}, api.CodeInvalidValue},
		{map[string]any{"from_shard": cl.main, "to_shard": r1, "amount": "-1"}, "invalid_amount"},
		{map[string]any{"from_shard": cl.main, "to_shard": r1}, api.CodeMissingField},
		{map[string]any{"from_shard": cl.main, "to_shard": r1, "amount": "1", "extra": true}, api.CodeUnknownField},
	} {
		do(t, g.url, "POST", "/v1/account/transfers", key, tc.body).want(t, 422, tc.code)
	}
	do(t, g.url, "POST", "/v1/account/transfers", key, body, "Idempotency-Key", strings.Repeat("k", 256)).want(t, 422, api.CodeInvalidIdemKey)
	do(t, g.url, "POST", "/v1/account/transfers", "", body).want(t, 401, api.CodeUnauthorized)
	// Over the limit once decoded (small on the wire: a body the server
	// refuses while the client still writes it can reset the connection).
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(bytes.Repeat([]byte(" "), api.BodyLimit+1))
	_ = zw.Close()
	do(t, g.url, "POST", "/v1/account/transfers", key, gz.Bytes(), "Content-Encoding", "gzip").want(t, 413, api.CodeBodyTooLarge)
	n, err := cl.rdb.ZCard(context.Background(), g.reg.key("transfers", "pending")).Result()
	if err != nil || n != 0 {
		t.Errorf("pending transfers: %d %v, want none", n, err)
	}
}

// TestMoneyConservedAcrossTransfers: money moves back and forth through
// two API nodes; the sum of the wallets never changes.
func TestMoneyConservedAcrossTransfers(t *testing.T) {
	cl, regions := newCluster(t, 2)
	g1, g2 := cl.gateway(nil), cl.gateway(nil)
	id, key := g1.account("acme", "buyer")
	g1.deposit(id, cl.main, "90")
	shards := append([]string{cl.main}, regions...)
	want := map[string]int{cl.main: 90}
	for i, amt := range []int{30, 20, 10, 25, 5, 40} {
		g := []*apiNode{g1, g2}[i%2]
		from, to := shards[i%3], shards[(i+1)%3]
		if want[from] < amt {
			from, to = to, from
		}
		do(t, g.url, "POST", "/v1/account/transfers", key, map[string]any{"from_shard": from, "to_shard": to, "amount": strconv.Itoa(amt)}).want(t, 201, "")
		want[from] -= amt
		want[to] += amt
	}
	var a accountJSON
	do(t, g2.url, "GET", "/v1/account", key, nil).want(t, 200, "").decode(t, &a)
	if a.Balance != "90.00" || len(a.Wallets) != 3 {
		t.Errorf("sum of wallets: got %s over %d wallets, want 90.00 over 3 (%+v)", a.Balance, len(a.Wallets), a.Wallets)
	}
	got := walletBalances(t, cl, key)
	for _, s := range shards {
		if w := strconv.Itoa(want[s]) + ".00"; got[s] != w {
			t.Errorf("wallet %s: got %s, want %s", s, got[s], w)
		}
	}
}

// TestProvisionMissedShard: a shard without a leader when the account was
// made gets it from a retry with the same Idempotency-Key, and a shard
// started later gets it before the account's first write there.
func TestProvisionMissedShard(t *testing.T) {
	cl, regions := newCluster(t, 1)
	r1 := regions[0]
	g := cl.gateway(nil)
	cl.dropLeader(r1)
	body := map[string]any{"name": "acme", "roles": []string{"buyer"}}
	var first created
	do(t, g.url, "POST", "/v1/accounts", adminKey, body, "Idempotency-Key", "a1").want(t, 201, "").decode(t, &first)
	key := *first.APIKey
	direct := "http://" + cl.nodes[r1].addr
	do(t, direct, "GET", "/v1/account", key, nil).want(t, 401, api.CodeUnauthorized)

	cl.publish(r1, cl.nodes[r1].addr, true)
	do(t, g.url, "POST", "/v1/accounts", adminKey, body, "Idempotency-Key", "a1").want(t, 201, "")
	do(t, direct, "GET", "/v1/account", key, nil).want(t, 200, "")

	late := redistest.Shard(t)
	n := cl.start(late, engine.Catalogue(testGPUs, []string{late}))
	do(t, "http://"+n.addr, "GET", "/v1/account", key, nil).want(t, 401, api.CodeUnauthorized)
	g.deposit(first.ID, late, "5")
	var a accountJSON
	do(t, g.url, "GET", "/v1/account", key, nil).want(t, 200, "").decode(t, &a)
	if a.Balance != "5.00" || len(a.Wallets) != 3 {
		t.Errorf("account: got %+v, want 5.00 over three wallets", a)
	}
}

// TestTransferRefunded: a destination that refuses the deposit (it would
// pass the most money a shard holds) gives the money back to the source.
func TestTransferRefunded(t *testing.T) {
	cl, regions := newCluster(t, 1)
	r1 := regions[0]
	g := cl.gateway(nil)
	id, key := g.account("acme", "buyer")
	g.deposit(id, cl.main, "10")
	whale, _ := g.account("whale", "buyer")
	for range int(engine.MaxMoney / engine.MaxAmount) {
		g.deposit(whale, r1, "1000000000000")
	}
	do(t, g.url, "POST", "/v1/account/transfers", key, map[string]any{"from_shard": cl.main, "to_shard": r1, "amount": "4"}, "Idempotency-Key", "r1").
		want(t, 422, engine.CodeAmountTooLarge)
	if got := walletBalances(t, cl, key); got[cl.main] != "10.00" || got[r1] != "0.00" {
		t.Fatalf("after the refund: got %v, want 10.00 and 0.00", got)
	}
	var st struct {
		Items []struct{ Kind, Amount string }
	}
	do(t, g.url, "GET", "/v1/account/statement?shard="+cl.main, key, nil).want(t, 200, "").decode(t, &st)
	var kinds []string
	for _, it := range st.Items {
		kinds = append(kinds, it.Kind+" "+it.Amount)
	}
	if got, want := strings.Join(kinds, ", "), "deposit 10.00, withdrawal -4.00, deposit 4.00"; !strings.Contains(got, want) {
		t.Errorf("statement: got %s, want %s", got, want)
	}
}

// TestTransferWaitsForLeader: a transfer whose source has no leader is
// pending; the sweeper completes it once the shard has one again.
func TestTransferWaitsForLeader(t *testing.T) {
	cl, regions := newCluster(t, 1)
	r1 := regions[0]
	g := cl.gateway(func(c *Config) { c.SweepInterval, c.SweepAfter = 50*time.Millisecond, time.Millisecond })
	id, key := g.account("acme", "buyer")
	g.deposit(id, cl.main, "10")
	cl.dropLeader(cl.main)
	var tr transferJSON
	do(t, g.url, "POST", "/v1/account/transfers", key, map[string]any{"from_shard": cl.main, "to_shard": r1, "amount": "4"}).want(t, 202, "").decode(t, &tr)
	if tr.Status != statePending {
		t.Fatalf("transfer: got %+v, want pending", tr)
	}
	cl.publish(cl.main, cl.nodes[cl.main].addr, true)
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := g.reg.transfer(context.Background(), tr.ID)
		if err != nil {
			t.Fatal(err)
		}
		if st.State == stateCompleted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("transfer still %s", st.State)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := walletBalances(t, cl, key); got[cl.main] != "6.00" || got[r1] != "4.00" {
		t.Fatalf("got %v, want 6.00 and 4.00", got)
	}
}

// TestIdempotencyAcrossShards: an Idempotency-Key's retry reaches the
// shard of its first attempt; the same key with a body for another shard
// is a different request; a refused write does not use its key up.
func TestIdempotencyAcrossShards(t *testing.T) {
	cl, regions := newCluster(t, 1)
	r1 := regions[0]
	g := cl.gateway(nil)
	id, buyer := g.account("buyer", "buyer")
	g.deposit(id, cl.main, "100")
	g.deposit(id, r1, "100")

	var first, again struct{ ID string }
	do(t, g.url, "POST", "/v1/bids", buyer, reservedBid("l4.us-east", "1.00"), "Idempotency-Key", "b1").want(t, 201, "").decode(t, &first)
	do(t, g.url, "POST", "/v1/bids", buyer, reservedBid("l4.us-east", "1.00"), "Idempotency-Key", "b1").want(t, 201, "").decode(t, &again)
	if again.ID != first.ID {
		t.Errorf("retry: got bid %s, want %s", again.ID, first.ID)
	}
	do(t, g.url, "POST", "/v1/bids", buyer, reservedBid("l4."+r1, "1.00"), "Idempotency-Key", "b1").want(t, 422, "idempotency_key_reused")

	bad := reservedBid("l4.us-east", "1.00")
	bad["quantity"] = 0
	do(t, g.url, "POST", "/v1/bids", buyer, bad, "Idempotency-Key", "b2").want(t, 422, "invalid_quantity")
	do(t, g.url, "POST", "/v1/bids", buyer, reservedBid("l4."+r1, "1.00"), "Idempotency-Key", "b2").want(t, 201, "")

	dep := func(shard string) answer {
		return do(t, g.url, "POST", "/v1/accounts/"+id+"/deposits", adminKey, map[string]any{"amount": "7", "shard": shard}, "Idempotency-Key", "d1")
	}
	dep(cl.main).want(t, 200, "")
	dep(r1).want(t, 422, "idempotency_key_reused")
	dep(cl.main).want(t, 200, "")
	if got := walletBalances(t, cl, buyer); got[cl.main] != "107.00" || got[r1] != "100.00" {
		t.Errorf("wallets: got %v, want 107.00 and 100.00", got)
	}
}

// TestDeadLeader: a lease that names a node that no longer answers makes
// writes 503 no_leader (their outcome unknown) while reads go to a live
// standby.
func TestDeadLeader(t *testing.T) {
	cl, _ := newCluster(t, 0)
	g := cl.gateway(nil)
	_, owner := g.account("owner", "owner")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	if err := cl.rdb.HSet(context.Background(), leaseKey(cl.main), "addr", dead).Err(); err != nil {
		t.Fatal(err)
	}
	a := do(t, g.url, "POST", "/v1/listings", owner, listing("h100-sxm.us-east")).want(t, 503, api.CodeNoLeader)
	if a.header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	do(t, g.url, "GET", "/v1/markets/h100-sxm.us-east/book", "", nil).want(t, 200, "")
	do(t, g.url, "GET", "/v1/listings", owner, nil).want(t, 200, "")
}

// TestTransferStuck: a transfer still pending near the end of the shards'
// idempotency window is never sent again (a side sent after a shard forgot
// its key could apply twice): the sweeper marks it stuck and moves nothing.
func TestTransferStuck(t *testing.T) {
	cl, regions := newCluster(t, 1)
	r1 := regions[0]
	g := cl.gateway(nil)
	id, key := g.account("acme", "buyer")
	g.deposit(id, cl.main, "10")
	old := time.Now().Add(-stuckAfter - time.Minute).UTC()
	tr := transfer{ID: "01a20000-0000-7000-8000-000000000001", Account: id, From: cl.main, To: r1, Amount: 4 * engine.TicksPerUSD, State: statePending, CreatedAt: old}
	ctx := context.Background()
	if _, _, err := g.reg.createTransfer(ctx, "", "h", tr); err != nil {
		t.Fatal(err)
	}
	n, err := g.sweepOnce(ctx)
	if err != nil || n != 1 {
		t.Fatalf("sweep: took %d (%v), want 1", n, err)
	}
	st, err := g.reg.transfer(ctx, tr.ID)
	if err != nil || st.State != stateStuck {
		t.Fatalf("transfer: %+v %v, want stuck", st, err)
	}
	if got := walletBalances(t, cl, key); got[cl.main] != "10.00" || got[r1] != "0.00" {
		t.Errorf("got %v, want nothing moved", got)
	}
	if n, _ := g.sweepOnce(ctx); n != 0 {
		t.Errorf("a stuck transfer was taken again (%d)", n)
	}
}

// TestRateLimitAndMetrics: an API node limits each key and counts what it
// answers.
func TestRateLimitAndMetrics(t *testing.T) {
	cl, _ := newCluster(t, 0)
	g := cl.gateway(func(c *Config) { c.RateLimit = 1 })
	var limited answer
	for range 10 {
		if a := do(t, g.url, "GET", "/v1/markets", "", nil); a.status == 429 {
			limited = a
		}
	}
	limited.want(t, 429, api.CodeRateLimited)
	if limited.header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	m := do(t, g.url, "GET", "/metrics", "", nil).want(t, 200, "")
	// A request refused by the /v1 middleware counts under the group's route.
	if !bytes.Contains(m.body, []byte(`gpux_gateway_requests_total{method="GET",route="/v1",status="429"}`)) {
		t.Errorf("metrics lack the 429s:\n%s", m.body)
	}
}

// TestLeaderSteppedDown: a lease that still names a node which no longer
// leads (it refuses writes with no_leader) makes the account's first write
// there 503 no_leader with Retry-After, never another status.
func TestLeaderSteppedDown(t *testing.T) {
	cl, _ := newCluster(t, 0)
	stale := redistest.Shard(t)
	cl.startWith(stale, engine.Catalogue(testGPUs, []string{stale}), func(s *sequencer.Sequencer) api.Sequencer { return standby{s} })
	g := cl.gateway(nil)
	id, owner := g.account("owner", "owner")
	for _, tc := range []struct {
		method, path, key string
		body              any
	}{
		{"POST", "/v1/listings", owner, listing("h100-sxm." + stale)},
		{"POST", "/v1/accounts/" + id + "/deposits", adminKey, map[string]any{"amount": "1", "shard": stale}},
	} {
		a := do(t, g.url, tc.method, tc.path, tc.key, tc.body).want(t, 503, api.CodeNoLeader)
		if a.header.Get("Retry-After") == "" {
			t.Errorf("%s %s: no Retry-After", tc.method, tc.path)
		}
	}
	do(t, g.url, "GET", "/v1/markets/h100-sxm."+stale+"/book", "", nil).want(t, 200, "")
}

// TestRedisDown: without Redis an API node cannot tell who a new key is,
// register an account or see any leader: each answers 503 with
// Retry-After, never a guess.
func TestRedisDown(t *testing.T) {
	srv := redistest.StartServer(t)
	cl, _ := newClusterAt(t, srv.URL(), 0)
	g := cl.gateway(func(c *Config) { c.LeaseTTL = 50 * time.Millisecond })
	g.account("acme", "buyer")
	do(t, g.url, "GET", "/readyz", "", nil).want(t, 200, "")

	srv.Stop()
	defer srv.Start()                  // the cleanups delete the test's keys there
	time.Sleep(200 * time.Millisecond) // past 3 × lease TTL: the last reading is no longer used
	for _, tc := range []struct {
		method, path, key string
		body              any
		code              string
	}{
		{"GET", "/readyz", "", nil, api.CodeNotReady},
		{"GET", "/v1/account", "gpux_someone", nil, api.CodeUnavailable},
		{"POST", "/v1/accounts", adminKey, map[string]any{"name": "x", "roles": []string{"buyer"}}, api.CodeUnavailable},
		{"GET", "/v1/markets", "", nil, api.CodeUnavailable},
	} {
		a := do(t, g.url, tc.method, tc.path, tc.key, tc.body).want(t, 503, tc.code)
		if a.header.Get("Retry-After") == "" {
			t.Errorf("%s %s: no Retry-After", tc.method, tc.path)
		}
	}
}
