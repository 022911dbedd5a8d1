package gateway

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis keys of the contract between engine nodes and API nodes
// (docs/CLUSTER.md). Every key of a shard carries the shard's hash tag,
// every registry key the registry's, so each group lives in one Cluster
// slot.
func leaseKey(shard string) string { return "gpux:{" + shard + "}:lease" }
func nodesKey(shard string) string { return "gpux:{" + shard + "}:nodes" }

// shard is what an API node knows of one shard: its leader's address (""
// while it has none) and the live engine nodes (leader or standby), the
// most recent heartbeat first.
type shard struct {
	Name   string
	Leader string
	Nodes  []string
}

// readers are the addresses a read may go to: the leader first, then the
// standbys.
func (s *shard) readers() []string {
	out := make([]string, 0, len(s.Nodes)+1)
	if s.Leader != "" {
		out = append(out, s.Leader)
	}
	for _, n := range s.Nodes {
		if n != s.Leader {
			out = append(out, n)
		}
	}
	return out
}

// topology is one reading of the shards set, the leases and the nodes.
type topology struct {
	at     time.Time
	names  []string // sorted
	shards map[string]*shard
}

func (t *topology) has(name string) bool { _, ok := t.shards[name]; return ok }

// owner is the shard of a market: `<gpu>.<region>` belongs to shard
// <region> when there is one, else to the default shard; "" when neither
// exists (no engine node could know the market).
func (t *topology) owner(market, defaultShard string) string {
	if _, region, ok := strings.Cut(market, "."); ok && t.has(region) {
		return region
	}
	if t.has(defaultShard) {
		return defaultShard
	}
	return ""
}

// anyLeader is a shard with a leader, the default shard preferred: where a
// request goes that names no market the engine could route by (it answers
// the precise validation error).
func (t *topology) anyLeader(defaultShard string) string {
	if s := t.shards[defaultShard]; s != nil && s.Leader != "" {
		return defaultShard
	}
	for _, n := range t.names {
		if t.shards[n].Leader != "" {
			return n
		}
	}
	return ""
}

// discovery reads the topology from Redis and caches it for refresh.
type discovery struct {
	rdb      redis.UniversalClient
	registry string
	ttl      time.Duration // lease TTL: nodes silent for 3×ttl are dead
	refresh  time.Duration

	mu  sync.Mutex
	cur *topology
}

func (d *discovery) shardsKey() string { return "gpux:{" + d.registry + "}:shards" }

// get returns a topology no older than the refresh period (a fresh one
// when force). When Redis fails it keeps serving the last reading for up
// to 3×ttl, then fails.
func (d *discovery) get(ctx context.Context, force bool) (*topology, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	if d.cur != nil && !force && now.Sub(d.cur.at) < d.refresh {
		return d.cur, nil
	}
	t, err := d.read(ctx, now)
	if err != nil {
		if d.cur != nil && now.Sub(d.cur.at) < 3*d.ttl {
			return d.cur, nil
		}
		return nil, err
	}
	d.cur = t
	return t, nil
}

// invalidate makes the next get read Redis again (a node did not answer).
func (d *discovery) invalidate() {
	d.mu.Lock()
	if d.cur != nil {
		d.cur.at = time.Time{}
	}
	d.mu.Unlock()
}

func (d *discovery) read(ctx context.Context, now time.Time) (*topology, error) {
	names, err := d.rdb.SMembers(ctx, d.shardsKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("read shards set: %w", err)
	}
	slices.Sort(names)
	t := &topology{at: now, names: names, shards: make(map[string]*shard, len(names))}
	if len(names) == 0 {
		return t, nil
	}
	minScore := strconv.FormatInt(now.Add(-3*d.ttl).UnixMilli(), 10)
	leases := make([]*redis.StringCmd, len(names))
	nodes := make([]*redis.StringSliceCmd, len(names))
	// The pipeline's own error is its first failed command's, and a
	// missing lease fails its HGET with redis.Nil: look at each command.
	_, _ = d.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, n := range names {
			leases[i] = p.HGet(ctx, leaseKey(n), "addr")
			nodes[i] = p.ZRevRangeByScore(ctx, nodesKey(n), &redis.ZRangeBy{Min: minScore, Max: "+inf"})
		}
		return nil
	})
	for i := range names {
		if e := leases[i].Err(); e != nil && !errors.Is(e, redis.Nil) {
			return nil, fmt.Errorf("read lease of shard %s: %w", names[i], e)
		}
		if e := nodes[i].Err(); e != nil {
			return nil, fmt.Errorf("read nodes of shard %s: %w", names[i], e)
		}
	}
	for i, n := range names {
		s := &shard{Name: n, Nodes: nodes[i].Val()}
		s.Leader, _ = leases[i].Result()
		t.shards[n] = s
	}
	return t, nil
}
