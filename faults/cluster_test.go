package faults

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/store/redistest"
)

// clusterShards picks two region shards whose keys (their hash tags) live
// on different masters of the cluster, and returns each one's master.
func clusterShards(t *testing.T, c *redistest.Cluster) (shards, masters []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	defer rdb.Close()
	for _, r := range []string{"us-east", "eu-west", "us-west", "ap-south", "eu-north", "ap-east", "sa-east", "us-central"} {
		m, err := rdb.MasterForKey(ctx, "gpux:{"+r+"}:journal")
		if err != nil {
			t.Fatalf("master of shard %s: %v", r, err)
		}
		addr := m.Options().Addr
		if len(masters) == 0 || masters[0] != addr {
			shards, masters = append(shards, r), append(masters, addr)
		}
		if len(shards) == 2 {
			return shards, masters
		}
	}
	t.Fatalf("no two candidate shards on different masters: %v on %v", shards, masters)
	return nil, nil
}

// TestClusterShards runs two region shards, each a gpuxd --role engine,
// on a loopback Redis Cluster of three masters, with their journals on
// different masters: both take mixed load (the pipelined append goes to
// its shard's master), are killed with SIGKILL, and each restarted node
// recovers exactly the state a replay of its journal gives, with every
// acknowledged command in it.
func TestClusterShards(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	url := c.URL()
	shards, masters := clusterShards(t, c)
	t.Logf("shards %v on masters %v", shards, masters)
	regions := strings.Join(shards, ",")

	type shardRun struct {
		shard string
		d     *daemon
		l     *ledger
		ld    *load
		au    audited
	}
	var runs []*shardRun
	for i, s := range shards {
		d := startEngine(t, url, s, "--regions", regions, "--snapshot-every", "50")
		l := setupLedger(t, d)
		l.catalogue = engine.Catalogue(faultGPUs, []string{s})
		l.markets = nil
		for _, mk := range l.catalogue {
			l.markets = append(l.markets, mk.ID)
		}
		runs = append(runs, &shardRun{shard: s, d: d, l: l, ld: startLoad(l, d, 4, uint64(time.Now().UnixNano())+uint64(i))})
	}
	for _, r := range runs {
		waitAcks(t, r.l, 150, 30*time.Second)
	}
	for _, r := range runs {
		r.d.kill()
		r.ld.stop()
	}
	for _, r := range runs {
		r.au = audit(t, url, r.shard, r.l)
		d := startEngine(t, url, r.shard, "--regions", regions)
		sameState(t, d, r.au)
		t.Logf("shard %s: %d commands journaled, recovered from snapshot %d + %d replayed; acknowledged: %s",
			r.shard, r.au.seq, d.recovered.SnapshotSeq, d.recovered.Replayed, r.l.summary())
	}
}
