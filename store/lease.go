package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// RegistryShardsKey is the set of shard names that have had an engine
// node: gpux:{registry}:shards.
const RegistryShardsKey = "gpux:{registry}:shards"

// LeaseHolder is who holds a shard's lease: the holder's node id, the
// host:port of its HTTP API, and its fencing token.
type LeaseHolder struct {
	Holder string
	Addr   string
	Token  uint64
}

// Lease is one engine node's handle on its shard's lease in Redis:
//
//   - gpux:{<shard>}:lease, a hash (holder, addr, token) with a PX TTL,
//     absent while the shard has no leader;
//   - gpux:{<shard>}:fence, the fencing counter: every acquisition INCRs it
//     and the result is the holder's token, which a fenced journal checks
//     on every write (see Fencer);
//   - gpux:{<shard>}:nodes, a sorted set of the shard's engine nodes (their
//     advertise addrs) scored by the unix ms of their last Heartbeat.
//
// The lease and the fence share the shard's hash tag, so the scripts that
// touch both are legal on a Redis Cluster. A Lease is safe for concurrent
// use; errors reaching Redis wrap ErrUnavailable.
type Lease struct {
	rdb    redis.UniversalClient
	shard  string
	holder string
	addr   string
	ttl    time.Duration

	leaseKey, fenceKey, nodesKey string
}

// NewLease returns the handle of the node holder (an id unique to the
// process), whose HTTP API other nodes reach at addr, on shard's lease,
// which lives ttl after each acquisition or renewal.
func NewLease(rdb redis.UniversalClient, shard, holder, addr string, ttl time.Duration) (*Lease, error) {
	if err := checkShard(shard); err != nil {
		return nil, fmt.Errorf("new lease: %w", err)
	}
	switch {
	case holder == "":
		return nil, errors.New("new lease: empty holder id")
	case addr == "":
		return nil, errors.New("new lease: empty advertise address")
	case ttl < 10*time.Millisecond:
		return nil, fmt.Errorf("new lease: ttl %v: want at least 10ms", ttl)
	}
	return &Lease{
		rdb: rdb, shard: shard, holder: holder, addr: addr, ttl: ttl,
		leaseKey: shardKey(shard, "lease"), fenceKey: shardKey(shard, "fence"), nodesKey: shardKey(shard, "nodes"),
	}, nil
}

// TTL returns the lease's time to live.
func (l *Lease) TTL() time.Duration { return l.ttl }

// Holder returns this node's id.
func (l *Lease) Holder() string { return l.holder }

// acquireScript takes the lease when nobody holds it (a new token from the
// fence counter), or returns the current holder. A holder that finds its
// own lease keeps it and its token.
//
// KEYS[1] lease hash, KEYS[2] fence counter. ARGV: holder, addr, ttl ms.
// Returns {acquired (0/1), holder, addr, token}.
var acquireScript = redis.NewScript(`
local cur = redis.call('HMGET', KEYS[1], 'holder', 'addr', 'token')
if cur[1] then
  if cur[1] == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
    return {1, cur[1], cur[2] or '', cur[3] or '0'}
  end
  return {0, cur[1], cur[2] or '', cur[3] or '0'}
end
local t = tostring(redis.call('INCR', KEYS[2]))
redis.call('HSET', KEYS[1], 'holder', ARGV[1], 'addr', ARGV[2], 'token', t)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1, ARGV[1], ARGV[2], t}
`)

// Acquire takes the lease if nobody holds it, with a new fencing token.
// It returns acquired true and this node as the holder, or acquired false
// and the node that holds it.
func (l *Lease) Acquire(ctx context.Context) (h LeaseHolder, acquired bool, err error) {
	v, err := acquireScript.Run(ctx, l.rdb, []string{l.leaseKey, l.fenceKey}, l.holder, l.addr, l.ttl.Milliseconds()).Slice()
	if err != nil {
		return LeaseHolder{}, false, wrapRedis(fmt.Sprintf("lease %s: acquire", l.shard), err)
	}
	if len(v) != 4 {
		return LeaseHolder{}, false, fmt.Errorf("lease %s: acquire: reply of %d elements", l.shard, len(v))
	}
	ok, _ := v[0].(int64)
	h.Holder, _ = v[1].(string)
	h.Addr, _ = v[2].(string)
	tok, _ := v[3].(string)
	if h.Token, err = strconv.ParseUint(tok, 10, 64); err != nil {
		return LeaseHolder{}, false, fmt.Errorf("lease %s: acquire: token %q: %w", l.shard, tok, err)
	}
	return h, ok == 1, nil
}

// renewScript extends the lease while it is the caller's with its token.
// A lease that expired with nobody taking it since (the fence still equals
// the token) is taken back with the same token: no other node can have
// written in between.
//
// KEYS[1] lease hash, KEYS[2] fence counter. ARGV: holder, token, ttl ms,
// addr. Returns 1 when the caller holds the lease, 0 otherwise.
var renewScript = redis.NewScript(`
local h = redis.call('HGET', KEYS[1], 'holder')
if h then
  if h ~= ARGV[1] or redis.call('HGET', KEYS[1], 'token') ~= ARGV[2] then return 0 end
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'holder', ARGV[1], 'addr', ARGV[4], 'token', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`)

// Renew extends the lease held with token by another TTL. It returns
// false (and a nil error) when the lease is no longer this node's.
func (l *Lease) Renew(ctx context.Context, token uint64) (bool, error) {
	n, err := renewScript.Run(ctx, l.rdb, []string{l.leaseKey, l.fenceKey},
		l.holder, strconv.FormatUint(token, 10), l.ttl.Milliseconds(), l.addr).Int()
	if err != nil {
		return false, wrapRedis(fmt.Sprintf("lease %s: renew %d", l.shard, token), err)
	}
	return n == 1, nil
}

// releaseScript deletes the lease if it is still the caller's.
// KEYS[1] lease hash. ARGV: holder, token.
var releaseScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'holder') == ARGV[1] and redis.call('HGET', KEYS[1], 'token') == ARGV[2] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// Release gives the lease up if this node still holds it with token, so a
// standby takes over without waiting for the TTL. The fence is unchanged:
// the next holder's acquisition moves it.
func (l *Lease) Release(ctx context.Context, token uint64) error {
	if err := releaseScript.Run(ctx, l.rdb, []string{l.leaseKey}, l.holder, strconv.FormatUint(token, 10)).Err(); err != nil {
		return wrapRedis(fmt.Sprintf("lease %s: release %d", l.shard, token), err)
	}
	return nil
}

// Current returns the lease's holder, with ok false when nobody holds it.
func (l *Lease) Current(ctx context.Context) (h LeaseHolder, ok bool, err error) {
	m, err := l.rdb.HGetAll(ctx, l.leaseKey).Result()
	if err != nil {
		return LeaseHolder{}, false, wrapRedis(fmt.Sprintf("lease %s: read", l.shard), err)
	}
	if len(m) == 0 {
		return LeaseHolder{}, false, nil
	}
	tok, err := strconv.ParseUint(m["token"], 10, 64)
	if err != nil {
		return LeaseHolder{}, false, fmt.Errorf("lease %s: token %q: %w", l.shard, m["token"], err)
	}
	return LeaseHolder{Holder: m["holder"], Addr: m["addr"], Token: tok}, true, nil
}

// nodesKeep is how long a node that stopped heartbeating stays in the
// nodes set before a heartbeat of another node removes it; readers ignore
// members older than three TTLs long before.
const nodesKeep = time.Hour

// Heartbeat records that this node serves the shard at now: its advertise
// addr scored by unix ms in the nodes set. Members silent for an hour are
// removed, so the set stays small.
func (l *Lease) Heartbeat(ctx context.Context, now time.Time) error {
	_, err := l.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAdd(ctx, l.nodesKey, redis.Z{Score: float64(now.UnixMilli()), Member: l.addr})
		p.ZRemRangeByScore(ctx, l.nodesKey, "-inf", "("+strconv.FormatInt(now.Add(-nodesKeep).UnixMilli(), 10))
		return nil
	})
	if err != nil {
		return wrapRedis(fmt.Sprintf("lease %s: heartbeat", l.shard), err)
	}
	return nil
}

// Leave removes this node from the nodes set (a graceful stop).
func (l *Lease) Leave(ctx context.Context) error {
	if err := l.rdb.ZRem(ctx, l.nodesKey, l.addr).Err(); err != nil {
		return wrapRedis(fmt.Sprintf("lease %s: leave", l.shard), err)
	}
	return nil
}

// Register adds the shard to the registry's set of shards
// (gpux:{registry}:shards), which API nodes route by.
func (l *Lease) Register(ctx context.Context) error {
	if err := l.rdb.SAdd(ctx, RegistryShardsKey, l.shard).Err(); err != nil {
		return wrapRedis(fmt.Sprintf("lease %s: register shard", l.shard), err)
	}
	return nil
}
