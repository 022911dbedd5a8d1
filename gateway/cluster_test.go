package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gpux/gpux/api"
	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/sequencer"
	"github.com/gpux/gpux/store"
	"github.com/gpux/gpux/store/redistest"
)

const adminKey = "test-admin-key"

var testGPUs = []string{"h100-sxm", "l4"}

// node is an in-process engine node: a sequencer over an in-memory
// journal and the API in front of it, on a loopback port.
type node struct {
	shard string
	addr  string
	seq   *sequencer.Sequencer
	srv   *api.Server
}

// cluster is engine nodes discovered through the contract's keys on the
// shared Redis, under a registry and shard names unique to the test.
type cluster struct {
	tb       testing.TB
	rdb      *redis.Client
	registry string
	main     string // the default shard
	nodes    map[string]*node
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newCluster starts the default shard (markets of region "us-east") and
// one shard per name in regions (each owning its own region's markets).
func newCluster(tb testing.TB, regions int) (*cluster, []string) {
	tb.Helper()
	return newClusterAt(tb, redistest.URL(tb), regions)
}

// newClusterAt is newCluster on the Redis at url.
func newClusterAt(tb testing.TB, url string, regions int) (*cluster, []string) {
	tb.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		tb.Fatal(err)
	}
	cl := &cluster{tb: tb, rdb: redis.NewClient(opt), registry: redistest.ShardAt(tb, url), main: redistest.ShardAt(tb, url), nodes: map[string]*node{}}
	tb.Cleanup(func() { cl.rdb.Close() })
	cl.start(cl.main, engine.Catalogue(testGPUs, []string{"us-east"}))
	var names []string
	for range regions {
		r := redistest.ShardAt(tb, url)
		cl.start(r, engine.Catalogue(testGPUs, []string{r}))
		names = append(names, r)
	}
	return cl, names
}

// start runs an engine node of shard and publishes it as the leader.
func (cl *cluster) start(shard string, markets []engine.Market) *node {
	cl.tb.Helper()
	return cl.startWith(shard, markets, nil)
}

// standby is a sequencer that refuses every write as a node that lost
// its lease does.
type standby struct{ *sequencer.Sequencer }

func (standby) Submit(context.Context, engine.Command, func(*engine.Engine, *engine.Command)) (sequencer.Outcome, error) {
	return sequencer.Outcome{}, sequencer.ErrNotLeader
}

// startWith is start with the node's sequencer wrapped (nil: as it is).
func (cl *cluster) startWith(shard string, markets []engine.Market, wrap func(*sequencer.Sequencer) api.Sequencer) *node {
	tb := cl.tb
	tb.Helper()
	ctx := context.Background()
	seq, err := sequencer.New(sequencer.Config{Journal: store.NewMemoryJournal(), Markets: markets, TickInterval: -1, Logger: quiet()})
	if err != nil {
		tb.Fatal(err)
	}
	var as api.Sequencer = seq
	if wrap != nil {
		as = wrap(seq)
	}
	srv := api.NewServer(api.Config{Sequencer: as, Role: api.RoleEngine, Shard: shard, AdminKey: adminKey, Logger: quiet()})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go srv.Listener(ln)
	if err := seq.Recover(ctx); err != nil {
		tb.Fatalf("recover: %v", err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); seq.Run(runCtx) }()
	n := &node{shard: shard, addr: ln.Addr().String(), seq: seq, srv: srv}
	tb.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx)
		_ = seq.Close(sctx)
		cancel()
		<-done
	})
	cl.nodes[shard] = n
	cl.publish(shard, n.addr, true)
	return n
}

// publish writes what the lease helper's engine nodes write: the shards
// set, the node's heartbeat and, for a leader, the lease.
func (cl *cluster) publish(shard, addr string, leader bool) {
	cl.tb.Helper()
	ctx := context.Background()
	if err := cl.rdb.SAdd(ctx, "gpux:{"+cl.registry+"}:shards", shard).Err(); err != nil {
		cl.tb.Fatal(err)
	}
	if err := cl.rdb.ZAdd(ctx, nodesKey(shard), redis.Z{Score: float64(time.Now().UnixMilli()), Member: addr}).Err(); err != nil {
		cl.tb.Fatal(err)
	}
	if leader {
		if err := cl.rdb.HSet(ctx, leaseKey(shard), "holder", addr, "addr", addr, "token", 1).Err(); err != nil {
			cl.tb.Fatal(err)
		}
	}
}

// dropLeader removes the shard's lease: the shard has no leader, its node
// stays listed as a live standby.
func (cl *cluster) dropLeader(shard string) {
	cl.tb.Helper()
	if err := cl.rdb.Del(context.Background(), leaseKey(shard)).Err(); err != nil {
		cl.tb.Fatal(err)
	}
}

// gateway starts an API node in front of the cluster; mod adjusts its
// config (the sweeper is off unless mod turns it on).
func (cl *cluster) gateway(mod func(*Config)) *apiNode {
	tb := cl.tb
	tb.Helper()
	cfg := Config{Redis: cl.rdb, Registry: cl.registry, DefaultShard: cl.main, AdminKey: adminKey, LeaseTTL: time.Hour, SweepInterval: -1, Logger: quiet(),
		// Every request reads the topology: a test changes it and acts at once.
		TopologyRefresh: time.Nanosecond}
	if mod != nil {
		mod(&cfg)
	}
	g, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go g.Listener(ln)
	a := &apiNode{Server: g, tb: tb, url: "http://" + ln.Addr().String()}
	tb.Cleanup(a.stop)
	return a
}

type apiNode struct {
	*Server
	tb      testing.TB
	url     string
	stopped bool
}

func (a *apiNode) stop() {
	if a.stopped {
		return
	}
	a.stopped = true
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Shutdown(ctx); err != nil {
		a.tb.Errorf("shutdown api node: %v", err)
	}
}

// answer is an HTTP answer.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request to base (an API node's URL or "http://" + an engine
// node's address).
func do(tb testing.TB, base, method, path, key string, body any, hdr ...string) answer {
	tb.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	case string:
		r = bytes.NewReader([]byte(b))
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			tb.Fatal(err)
		}
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, base+path, r)
	if err != nil {
		tb.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: b}
}

// want checks the status and, for a problem, its code.
func (a answer) want(tb testing.TB, status int, code string) answer {
	tb.Helper()
	if a.status != status {
		tb.Fatalf("status: got %d, want %d (body %s)", a.status, status, a.body)
	}
	if code != "" {
		var p struct {
			Code string `json:"code"`
		}
		_ = json.Unmarshal(a.body, &p)
		if p.Code != code {
			tb.Fatalf("code: got %q, want %q (body %s)", p.Code, code, a.body)
		}
		if ct := a.header.Get("Content-Type"); ct != "application/problem+json" {
			tb.Errorf("content type: got %q, want application/problem+json", ct)
		}
	}
	return a
}

func (a answer) decode(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		tb.Fatalf("decode %s: %v", a.body, err)
	}
}

type created struct {
	ID     string  `json:"id"`
	APIKey *string `json:"api_key"`
}

// account creates an account through the API node.
func (a *apiNode) account(name string, roles ...string) (id, key string) {
	a.tb.Helper()
	var c created
	do(a.tb, a.url, "POST", "/v1/accounts", adminKey, map[string]any{"name": name, "roles": roles}).want(a.tb, 201, "").decode(a.tb, &c)
	if c.APIKey == nil {
		a.tb.Fatal("no api key in a first answer")
	}
	return c.ID, *c.APIKey
}

// deposit credits amount to the account's wallet on shard.
func (a *apiNode) deposit(id, shard, amount string) {
	a.tb.Helper()
	body := map[string]any{"amount": amount}
	if shard != "" {
		body["shard"] = shard
	}
	do(a.tb, a.url, "POST", "/v1/accounts/"+id+"/deposits", adminKey, body).want(a.tb, 200, "")
}

// hourRFC is the start of the current UTC hour plus n hours.
func hourRFC(n int) string {
	return time.Now().UTC().Truncate(time.Hour).Add(time.Duration(n) * time.Hour).Format(time.RFC3339)
}

func listing(market string) map[string]any {
	return map[string]any{"market": market, "quantity": 2, "start": hourRFC(2), "end": hourRFC(6), "reserve_price": "2.00"}
}

func reservedBid(market, limit string) map[string]any {
	return map[string]any{"type": "reserved", "market": market, "quantity": 1, "start": hourRFC(3), "end": hourRFC(4), "limit_price": limit}
}
