package relay_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gpux/gpux/client"
	"github.com/gpux/gpux/relay"
	"github.com/gpux/gpux/store/redistest"
)

// startRedisCluster starts three redis-server masters in cluster mode on
// loopback ports (stopped when the test ends) and returns a client of
// the cluster. It skips (fails under CI=true) where that cannot run.
func startRedisCluster(tb testing.TB) *redis.ClusterClient {
	tb.Helper()
	unavailable := func(format string, args ...any) {
		tb.Helper()
		if os.Getenv("CI") == "true" {
			tb.Fatalf(format, args...)
		}
		tb.Skipf(format, args...)
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		unavailable("redis-cli not installed: %v", err)
	}
	var addrs []string
	for i := 0; i < 3; i++ {
		// The cluster bus gets a port of its own (port+10000 may not exist).
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		bus := l.Addr().(*net.TCPAddr).Port
		l.Close()
		s := redistest.StartServer(tb, "--cluster-enabled", "yes", "--cluster-config-file", "nodes-"+strconv.Itoa(i)+".conf", "--cluster-port", strconv.Itoa(bus))
		addrs = append(addrs, s.Addr())
	}
	out, err := exec.Command(cli, append(append([]string{"--cluster", "create"}, addrs...), "--cluster-yes")...).CombinedOutput()
	if err != nil {
		unavailable("redis-cli --cluster create: %v: %s", err, out)
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	tb.Cleanup(func() { cc.Close() })
	deadline := time.Now().Add(wait)
	for {
		ok := true
		for _, a := range addrs {
			c := redis.NewClient(&redis.Options{Addr: a})
			info, err := c.ClusterInfo(bg).Result()
			c.Close()
			if err != nil || !strings.Contains(info, "cluster_state:ok") {
				ok = false
			}
		}
		if ok && cc.Ping(bg).Err() == nil {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("the cluster on %v did not come up", addrs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return cc
}

// TestRelayCluster: on a Redis Cluster the feed goes through sharded
// pub/sub (SPUBLISH/SSUBSCRIBE on the shard's slot); a relayed client
// sees the engine node's seqs. (The engine's journal stays on the shared
// Redis: only the feed, leases and registry are on the cluster here.)
func TestRelayCluster(t *testing.T) {
	cc := startRedisCluster(t)
	c := newCluster(t)
	c.rdb = cc
	shard := redistest.Shard(t)
	eng := c.startEngine(shard, nil)
	relayA := c.relayNode(shard, nil)
	owner := c.account(eng, "owner", "", client.RoleOwner)
	const mk = "h100-sxm.us-east"
	r := subscribe(t, "relay", client.New(relayA), "book:"+mk)
	direct := subscribe(t, "direct", client.New(eng.url), "book:"+mk)
	r.snapshots("book:" + mk)
	direct.snapshots("book:" + mk)
	for q := 1; q <= 3; q++ {
		if _, err := client.New(eng.url, client.WithAPIKey(owner.key)).PlaceListing(bg, client.ListingRequest{Market: mk, Quantity: q, Start: hour(0), End: hour(12), ReservePrice: client.FixedPrice("3.00")}); err != nil {
			t.Fatal(err)
		}
		if m, d := r.next(is(client.MsgUpdate, "book:"+mk)), direct.next(is(client.MsgUpdate, "book:"+mk)); m.Seq != d.Seq || r.data["book:"+mk][m.Seq] != direct.data["book:"+mk][d.Seq] {
			t.Errorf("listing %d: relay %d %s, direct %d %s", q, m.Seq, r.data["book:"+mk][m.Seq], d.Seq, direct.data["book:"+mk][d.Seq])
		}
	}
	// The relay follows the feed as a shard channel (each master counts
	// the shard channels of its own slots).
	var subs atomic.Int64
	err := cc.ForEachMaster(bg, func(ctx context.Context, m *redis.Client) error {
		n, err := m.PubSubShardNumSub(ctx, relay.FeedChannel(shard)).Result()
		subs.Add(n[relay.FeedChannel(shard)])
		return err
	})
	if err != nil || subs.Load() != 1 {
		t.Errorf("shard channel subscribers: %d (%v), want 1", subs.Load(), err)
	}
}
