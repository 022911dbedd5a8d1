package gateway

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gpux/gpux/api"
	"github.com/gpux/gpux/sequencer"
	"github.com/gpux/gpux/store"
	"github.com/gpux/gpux/store/redistest"
)

// leased is an engine node as gpuxd --role engine runs it: a Redis
// journal, the shard's lease (advertising its own address) and the API.
type leased struct {
	addr string
	seq  *sequencer.Sequencer
	srv  *api.Server
	stop func()
}

func startLeased(t *testing.T, url, shard, name string, ttl time.Duration) *leased {
	t.Helper()
	ctx := context.Background()
	j, err := store.OpenRedis(ctx, url, shard)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := store.NewLease(j.Client(), shard, name, ln.Addr().String(), ttl)
	if err != nil {
		t.Fatal(err)
	}
	seq, err := sequencer.New(sequencer.Config{Journal: j, Lease: l, TickInterval: -1, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	srv := api.NewServer(api.Config{Sequencer: seq, Role: api.RoleEngine, Shard: shard, AdminKey: adminKey, Logger: quiet()})
	go srv.Listener(ln)
	if err := seq.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); seq.Run(runCtx) }()
	select {
	case <-seq.Settled():
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: lease not settled", name)
	}
	n := &leased{addr: ln.Addr().String(), seq: seq, srv: srv}
	stopped := false
	n.stop = func() {
		if stopped {
			return
		}
		stopped = true
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx)
		_ = seq.Close(sctx)
		cancel()
		<-done
		j.Close()
	}
	t.Cleanup(n.stop)
	return n
}

// TestFailoverThroughAPINode: two leased engine nodes of one shard behind
// an API node. The leader stops; until the standby takes over, every write
// answers 503 no_leader (never another status) and reads keep answering;
// then writes go to the new leader and nothing acknowledged is lost.
func TestFailoverThroughAPINode(t *testing.T) {
	url := redistest.URL(t)
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	cl := &cluster{tb: t, rdb: redis.NewClient(opt), registry: redistest.Shard(t), main: redistest.Shard(t), nodes: map[string]*node{}}
	t.Cleanup(func() { cl.rdb.Close() })
	ttl := 300 * time.Millisecond
	a := startLeased(t, url, cl.main, "node-a", ttl)
	b := startLeased(t, url, cl.main, "node-b", ttl)
	if !a.seq.Status().Leader || b.seq.Status().Leader {
		t.Fatal("want node-a leading and node-b standing by")
	}
	// The lease's Register writes the deployment's registry; this test's
	// registry is its own.
	if err := cl.rdb.SAdd(context.Background(), "gpux:{"+cl.registry+"}:shards", cl.main).Err(); err != nil {
		t.Fatal(err)
	}
	g := cl.gateway(func(c *Config) { c.LeaseTTL = ttl })
	id, owner := g.account("owner", "owner")
	g.deposit(id, "", "1")
	var first struct{ ID string }
	do(t, g.url, "POST", "/v1/listings", owner, listing("h100-sxm.us-east")).want(t, 201, "").decode(t, &first)

	// A standby's reads trail the leader by its tailing: wait until it has
	// the listing, so the reads below see it however the failover goes.
	want := a.seq.Status().LastSeq
	for deadline := time.Now().Add(30 * time.Second); b.seq.Status().LastSeq < want; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("standby did not tail to the leader within 30 s") // hang guard only
		}
	}
	a.stop()
	statuses := map[int]int{}
	deadline := time.Now().Add(30 * time.Second) // hang guard only
	for {
		r := do(t, g.url, "POST", "/v1/listings", owner, listing("h100-sxm.us-east"), "Idempotency-Key", "after-failover")
		statuses[r.status]++
		if r.status == 201 {
			break
		}
		if r.status != 503 {
			t.Fatalf("write during failover: %d %s, want 503 or 201", r.status, r.body)
		}
		r.want(t, 503, api.CodeNoLeader)
		if r.header.Get("Retry-After") == "" {
			t.Fatal("503 without Retry-After")
		}
		do(t, g.url, "GET", "/v1/listings/"+first.ID, owner, nil).want(t, 200, "")
		if time.Now().After(deadline) {
			t.Fatal("no leader within 30 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("answers during failover: %v", statuses)
	if !b.seq.Status().Leader {
		t.Error("node-b does not lead after the failover")
	}
	do(t, g.url, "GET", "/v1/listings/"+first.ID, owner, nil).want(t, 200, "")
	var h healthJSON
	do(t, g.url, "GET", "/healthz", "", nil).want(t, 200, "").decode(t, &h)
	if len(h.Shards) != 1 || h.Shards[0].Leader == nil || *h.Shards[0].Leader != b.addr {
		t.Errorf("healthz: got %+v, want node-b (%s) leading", h.Shards, b.addr)
	}
}
