package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Journal client defaults: short enough that a dead or stalled Redis turns
// into ErrUnavailable within about two seconds instead of stalling the
// sequencer, long enough for a large snapshot on a healthy link.
const (
	DefaultDialTimeout  = 1 * time.Second
	DefaultReadTimeout  = 2 * time.Second
	DefaultWriteTimeout = 2 * time.Second
)

// DefaultBulkTimeout is the read/write timeout OpenRedis gives the calls
// that move whole snapshots or pages of up to 1000 entries (SaveSnapshot,
// LoadSnapshot, Replay), which a short per-command timeout would fail on a
// large state or a slow link.
const DefaultBulkTimeout = 30 * time.Second

// replayPage is how many journal entries Replay reads per round trip.
const replayPage = 1000

var (
	_ Journal = (*RedisJournal)(nil)
	_ Fencer  = (*RedisJournal)(nil)
)

// RedisJournal is a Journal on a Redis Stream, gpux:{<shard>}:journal, with
// the snapshot in a Hash, gpux:{<shard>}:snapshot. Entry ids are
// "<First>-1", so Redis itself rejects an append that is not after the
// newest entry, and an entry can be found by its First.
type RedisJournal struct {
	rdb   redis.UniversalClient // appends and small reads: short timeouts
	bulk  redis.UniversalClient // snapshots and replay pages: rdb, or a twin with DefaultBulkTimeout
	own   bool                  // Close closes rdb and bulk
	shard string

	journalKey  string
	snapshotKey string
	probeKey    string
	fenceKey    string

	// fenced is set by the first Fence; token is the fencing token every
	// write then checks (see Fencer).
	fenced atomic.Bool
	token  atomic.Uint64

	pipeOnce sync.Once
	pipeline *pipeline // AppendAsync's connection; nil without a *redis.Client
}

// ClientOptions parses a redis:// or rediss:// URL into client options with
// the journal's defaults: go-redis retries off (the journal decides what a
// failure means), one dial attempt, short dial/read/write timeouts, and
// context deadlines honoured. Timeouts given in the URL (dial_timeout,
// read_timeout, write_timeout) are kept.
func ClientOptions(url string) (*redis.Options, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("parse redis url: %w", err)
	}
	opt.MaxRetries = -1
	opt.DialerRetries = 1
	if opt.DialTimeout == 0 {
		opt.DialTimeout = DefaultDialTimeout
	}
	if opt.ReadTimeout == 0 {
		opt.ReadTimeout = DefaultReadTimeout
	}
	if opt.WriteTimeout == 0 {
		opt.WriteTimeout = DefaultWriteTimeout
	}
	opt.ContextTimeoutEnabled = true
	return opt, nil
}

// ClusterScheme starts a URL that names a Redis Cluster by some of its
// nodes: redis+cluster://[user:password@]host:port,host:port,...
const ClusterScheme = "redis+cluster://"

// IsClusterURL reports whether url names a Redis Cluster.
func IsClusterURL(url string) bool { return strings.HasPrefix(url, ClusterScheme) }

// ClusterClientOptions parses a redis+cluster:// URL into cluster client
// options with the journal's defaults (see ClientOptions): retries off,
// one dial attempt, short timeouts, context deadlines honoured. Redirects
// (MOVED, ASK) are still followed.
func ClusterClientOptions(url string) (*redis.ClusterOptions, error) {
	if !IsClusterURL(url) {
		return nil, fmt.Errorf("parse redis cluster url: want %shost:port,host:port,...", ClusterScheme)
	}
	rest := strings.TrimPrefix(url, ClusterScheme)
	rest, _, _ = strings.Cut(rest, "/")
	var user, pass string
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		cred := rest[:at]
		rest = rest[at+1:]
		if u, p, ok := strings.Cut(cred, ":"); ok {
			user, pass = u, p
		} else {
			pass = cred
		}
	}
	var addrs []string
	for _, a := range strings.Split(rest, ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, fmt.Errorf("parse redis cluster url: node %q: %w", a, err)
		}
		addrs = append(addrs, a)
	}
	if len(addrs) == 0 {
		return nil, errors.New("parse redis cluster url: no node address")
	}
	return &redis.ClusterOptions{
		Addrs: addrs, Username: user, Password: pass,
		MaxRetries: -1, DialerRetries: 1,
		DialTimeout: DefaultDialTimeout, ReadTimeout: DefaultReadTimeout, WriteTimeout: DefaultWriteTimeout,
		ContextTimeoutEnabled: true,
	}, nil
}

// OpenRedis connects to the Redis at url (see ClientOptions), or to the
// Redis Cluster a redis+cluster:// url names (see ClusterClientOptions),
// and returns the journal of shard. It fails, wrapping ErrUnavailable,
// when Redis does not answer a PING. Close closes the connection.
func OpenRedis(ctx context.Context, url, shard string) (*RedisJournal, error) {
	if IsClusterURL(url) {
		opt, err := ClusterClientOptions(url)
		if err != nil {
			return nil, err
		}
		return OpenRedisCluster(ctx, opt, shard)
	}
	opt, err := ClientOptions(url)
	if err != nil {
		return nil, err
	}
	return OpenRedisOptions(ctx, opt, shard)
}

// OpenRedisOptions is OpenRedis with explicit client options. Retries are
// forced off (MaxRetries -1); everything else is used as given, except
// that SaveSnapshot, LoadSnapshot and Replay run on a second, small pool
// whose read and write timeouts are at least DefaultBulkTimeout (a
// context deadline still bounds them).
func OpenRedisOptions(ctx context.Context, opt *redis.Options, shard string) (*RedisJournal, error) {
	o := *opt
	o.MaxRetries = -1
	if err := checkShard(shard); err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	bo := o
	bo.PoolSize = 2
	bo.MinIdleConns, bo.MaxIdleConns = 0, 0
	if bo.ReadTimeout >= 0 {
		bo.ReadTimeout = max(bo.ReadTimeout, DefaultBulkTimeout)
	}
	if bo.WriteTimeout >= 0 {
		bo.WriteTimeout = max(bo.WriteTimeout, DefaultBulkTimeout)
	}
	j, err := NewRedisJournal(redis.NewClient(&o), shard)
	if err != nil {
		return nil, err
	}
	j.bulk, j.own = redis.NewClient(&bo), true
	if err := j.rdb.Ping(ctx).Err(); err != nil {
		j.Close()
		return nil, wrapRedis(fmt.Sprintf("open journal %s: ping %s", shard, o.Addr), err)
	}
	return j, nil
}

// OpenRedisCluster is OpenRedisOptions on a Redis Cluster: the journal,
// its snapshot and its fence live in the slot of the shard's hash tag.
func OpenRedisCluster(ctx context.Context, opt *redis.ClusterOptions, shard string) (*RedisJournal, error) {
	o := *opt
	o.MaxRetries = -1
	if err := checkShard(shard); err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	bo := o
	bo.PoolSize = 2
	bo.MinIdleConns, bo.MaxIdleConns = 0, 0
	bo.ReadTimeout = max(bo.ReadTimeout, DefaultBulkTimeout)
	bo.WriteTimeout = max(bo.WriteTimeout, DefaultBulkTimeout)
	j, err := NewRedisJournal(redis.NewClusterClient(&o), shard)
	if err != nil {
		return nil, err
	}
	j.bulk, j.own = redis.NewClusterClient(&bo), true
	// A read of the journal's key, not a PING: the master of the shard's
	// slot must answer, not just some node of the cluster.
	if err := j.rdb.Exists(ctx, j.journalKey).Err(); err != nil {
		j.Close()
		return nil, wrapRedis(fmt.Sprintf("open journal %s: reach cluster %v", shard, o.Addrs), err)
	}
	return j, nil
}

// NewRedisJournal returns the journal of shard on an existing client, which
// should have retries off and short timeouts (see ClientOptions). Close does
// not close rdb.
func NewRedisJournal(rdb redis.UniversalClient, shard string) (*RedisJournal, error) {
	if err := checkShard(shard); err != nil {
		return nil, fmt.Errorf("new redis journal: %w", err)
	}
	return &RedisJournal{
		rdb:         rdb,
		bulk:        rdb,
		shard:       shard,
		journalKey:  shardKey(shard, "journal"),
		snapshotKey: shardKey(shard, "snapshot"),
		probeKey:    shardKey(shard, "probe"),
		fenceKey:    shardKey(shard, "fence"),
	}, nil
}

// shardKey returns the key gpux:{<shard>}:<suffix>.
func shardKey(shard, suffix string) string {
	return "gpux:{" + shard + "}:" + suffix
}

// Fence sets the token every later write checks. See Fencer.
func (j *RedisJournal) Fence(token uint64) {
	j.token.Store(token)
	j.fenced.Store(true)
}

// fenceArg is the token argument of the write scripts: "" (no check) for
// a journal never fenced, else the token in decimal.
func (j *RedisJournal) fenceArg() string {
	if !j.fenced.Load() {
		return ""
	}
	return strconv.FormatUint(j.token.Load(), 10)
}

// Client returns the journal's Redis client, e.g. to build ReadModels on
// the same connection.
func (j *RedisJournal) Client() redis.UniversalClient { return j.rdb }

// Shard returns the shard the journal belongs to.
func (j *RedisJournal) Shard() string { return j.shard }

// Kind returns "redis".
func (j *RedisJournal) Kind() string { return "redis" }

// Durable returns true: an acknowledged append is in Redis. (How durable
// Redis itself is depends on its appendonly/fsync configuration.)
func (j *RedisJournal) Durable() bool { return true }

// Close closes the append pipeline's connection (pending appends fail
// with ErrUnavailable) and the clients if OpenRedis created them.
func (j *RedisJournal) Close() error {
	if p := j.pipe(); p != nil {
		p.close()
	}
	if !j.own {
		return nil
	}
	err := errors.Join(j.rdb.Close(), j.bulk.Close())
	if err != nil {
		return fmt.Errorf("close journal %s: %w", j.shard, err)
	}
	return nil
}

// entryID is the stream id of the batch starting at first.
func entryID(first uint64) string {
	return strconv.FormatUint(first, 10) + "-1"
}

// Append stores b with one XADD at id "<First>-1". See Journal.Append.
func (j *RedisJournal) Append(ctx context.Context, b Batch) error {
	if err := b.validate(); err != nil {
		return fmt.Errorf("journal append %d: %w", b.First, err)
	}
	var err error
	if tok := j.fenceArg(); tok != "" {
		err = appendFencedScript.Run(ctx, j.rdb, []string{j.journalKey, j.fenceKey},
			entryID(b.First), strconv.FormatUint(b.Last, 10), b.Data, tok).Err()
		if redis.HasErrorPrefix(err, "GPUXFENCED") {
			return fmt.Errorf("journal append %d: %w: %s", b.First, ErrFenced, err)
		}
	} else {
		err = j.rdb.XAdd(ctx, &redis.XAddArgs{
			Stream: j.journalKey,
			ID:     entryID(b.First),
			Values: []any{"l", strconv.FormatUint(b.Last, 10), "d", b.Data},
		}).Err()
	}
	if err == nil {
		return nil
	}
	if !isIDNotAfterTop(err) {
		return wrapRedis(fmt.Sprintf("journal append %d", b.First), err)
	}
	// The id is at or below the newest entry: this is either a retry of an
	// append that did land, or a real conflict.
	got, ok, err := j.Entry(ctx, b.First)
	if err != nil {
		return fmt.Errorf("journal append %d: check existing entry: %w", b.First, err)
	}
	if !ok {
		return fmt.Errorf("journal append %d: %w: not after the newest entry and no entry starts there (trimmed or inside another batch)", b.First, ErrConflict)
	}
	if got.Last != b.Last || !bytes.Equal(got.Data, b.Data) {
		return fmt.Errorf("journal append %d: %w: stored batch %d..%d (%d bytes) differs from %d..%d (%d bytes)",
			b.First, ErrConflict, got.First, got.Last, len(got.Data), b.First, b.Last, len(b.Data))
	}
	return nil
}

// appendFencedScript is Append's XADD behind the fencing check: the check
// and the write are one atomic step, so an owner that lost its lease can
// never append after the new owner's first write. XADD runs under pcall so
// that its refusal of an id not after the top comes back as itself.
//
// KEYS[1] journal stream, KEYS[2] fence counter.
// ARGV: entry id, Last, data, token.
var appendFencedScript = redis.NewScript(`
if redis.call('GET', KEYS[2]) ~= ARGV[4] then
  return redis.error_reply('GPUXFENCED journal fenced: token ' .. ARGV[4] .. ' is not the shard fence ' .. tostring(redis.call('GET', KEYS[2])))
end
return redis.pcall('XADD', KEYS[1], ARGV[1], 'l', ARGV[2], 'd', ARGV[3])
`)

// isIDNotAfterTop reports whether err is XADD's refusal of an explicit id
// equal to or smaller than the stream's newest id.
func isIDNotAfterTop(err error) bool {
	var rerr redis.Error
	return errors.As(err, &rerr) && strings.Contains(rerr.Error(), "equal or smaller than the target stream top item")
}

// Entry returns the batch starting at first. See Journal.Entry.
func (j *RedisJournal) Entry(ctx context.Context, first uint64) (Batch, bool, error) {
	id := entryID(first)
	msgs, err := j.rdb.XRange(ctx, j.journalKey, id, id).Result()
	if err != nil {
		return Batch{}, false, wrapRedis(fmt.Sprintf("journal entry %d", first), err)
	}
	if len(msgs) == 0 {
		return Batch{}, false, nil
	}
	b, err := decodeEntry(msgs[0])
	if err != nil {
		return Batch{}, false, fmt.Errorf("journal entry %d: %w", first, err)
	}
	return b, true, nil
}

// decodeEntry turns a stream entry back into a Batch.
func decodeEntry(m redis.XMessage) (Batch, error) {
	ms, _, ok := strings.Cut(m.ID, "-")
	if !ok {
		return Batch{}, fmt.Errorf("decode entry %s: malformed id", m.ID)
	}
	first, err := strconv.ParseUint(ms, 10, 64)
	if err != nil {
		return Batch{}, fmt.Errorf("decode entry %s: %w", m.ID, err)
	}
	l, _ := m.Values["l"].(string)
	last, err := strconv.ParseUint(l, 10, 64)
	if err != nil {
		return Batch{}, fmt.Errorf("decode entry %s: field l: %w", m.ID, err)
	}
	d, ok := m.Values["d"].(string)
	if !ok {
		return Batch{}, fmt.Errorf("decode entry %s: field d missing", m.ID)
	}
	return Batch{First: first, Last: last, Data: []byte(d)}, nil
}

// LastSeq returns the newest stored sequence number. See Journal.LastSeq.
func (j *RedisJournal) LastSeq(ctx context.Context) (uint64, error) {
	var top *redis.XMessageSliceCmd
	var snap *redis.StringCmd
	_, err := j.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		top = p.XRevRangeN(ctx, j.journalKey, "+", "-", 1)
		snap = p.HGet(ctx, j.snapshotKey, "seq")
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, wrapRedis("journal last seq", err)
	}
	var last uint64
	if msgs := top.Val(); len(msgs) > 0 {
		b, err := decodeEntry(msgs[0])
		if err != nil {
			return 0, fmt.Errorf("journal last seq: %w", err)
		}
		last = b.Last
	}
	if s := snap.Val(); s != "" {
		seq, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("journal last seq: snapshot seq %q: %w", s, err)
		}
		last = max(last, seq)
	}
	return last, nil
}

// Replay streams the batches after a sequence number. See Journal.Replay.
func (j *RedisJournal) Replay(ctx context.Context, after uint64, fn func(Batch) error) error {
	if after == math.MaxUint64 {
		return nil
	}
	r := replayer{after: after, next: after + 1, fn: fn}
	if after > 0 {
		// A batch starting at or before after may still cover commands
		// after it: the newest entry with First <= after.
		msgs, err := j.bulk.XRevRangeN(ctx, j.journalKey, entryID(after), "-", 1).Result()
		if err != nil {
			return wrapRedis(fmt.Sprintf("journal replay after %d", after), err)
		}
		if len(msgs) > 0 {
			b, err := decodeEntry(msgs[0])
			if err != nil {
				return fmt.Errorf("journal replay after %d: %w", after, err)
			}
			if b.Last > after {
				if err := r.emit(b); err != nil {
					return err
				}
			}
		}
	}
	start := entryID(after + 1)
	for {
		msgs, err := j.bulk.XRangeN(ctx, j.journalKey, start, "+", replayPage).Result()
		if err != nil {
			return wrapRedis(fmt.Sprintf("journal replay after %d: page from %s", after, start), err)
		}
		for _, m := range msgs {
			b, err := decodeEntry(m)
			if err != nil {
				return fmt.Errorf("journal replay after %d: %w", after, err)
			}
			if err := r.emit(b); err != nil {
				return err
			}
		}
		if len(msgs) < replayPage {
			return nil
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
}

// replayer checks that replayed batches are contiguous before handing them
// on; both journals use it so they report gaps the same way.
type replayer struct {
	after uint64
	next  uint64 // the sequence number the next batch must start at
	fn    func(Batch) error
}

func (r *replayer) emit(b Batch) error {
	// Only the first batch may start before next: the one straddling after.
	if b.First != r.next && (r.next != r.after+1 || b.First > r.next) {
		return fmt.Errorf("journal replay after %d: %w: want a batch starting at %d, found %d..%d", r.after, ErrGap, r.next, b.First, b.Last)
	}
	if err := r.fn(b); err != nil {
		return fmt.Errorf("journal replay after %d: batch %d..%d: %w", r.after, b.First, b.Last, err)
	}
	r.next = b.Last + 1
	return nil
}

// saveSnapshotScript stores the snapshot unless a newer one (or a different
// one at the same seq) is stored, then trims the journal entries it wholly
// covers. Sequence numbers travel as decimal strings and are compared as
// such, so they stay exact beyond 2^53.
//
// KEYS[1] snapshot hash, KEYS[2] journal stream, KEYS[3] fence counter.
// ARGV: seq, hash, data, taken_at, id of entry <seq>-1, id <seq+1>-0,
// fencing token ("" = no check).
var saveSnapshotScript = redis.NewScript(`
local function less(a, b)
  if #a ~= #b then return #a < #b end
  return a < b
end
if ARGV[7] ~= '' and redis.call('GET', KEYS[3]) ~= ARGV[7] then
  return redis.error_reply('GPUXFENCED snapshot fenced: token ' .. ARGV[7] .. ' is not the shard fence')
end
local cur = redis.call('HMGET', KEYS[1], 'seq', 'hash')
if cur[1] then
  if less(ARGV[1], cur[1]) then
    return redis.error_reply('GPUXSTALE snapshot ' .. ARGV[1] .. ' is older than stored ' .. cur[1])
  end
  if cur[1] == ARGV[1] and cur[2] ~= ARGV[2] then
    return redis.error_reply('GPUXHASH snapshot ' .. ARGV[1] .. ' hash differs from stored ' .. tostring(cur[2]))
  end
end
redis.call('HSET', KEYS[1], 'seq', ARGV[1], 'hash', ARGV[2], 'data', ARGV[3], 'taken_at', ARGV[4])
local minid = ARGV[6]
local e = redis.call('XREVRANGE', KEYS[2], ARGV[5], '-', 'COUNT', 1)
if #e == 1 then
  local f = e[1][2]
  for i = 1, #f, 2 do
    if f[i] == 'l' and less(ARGV[1], f[i + 1]) then
      minid = e[1][1]
    end
  end
end
return redis.call('XTRIM', KEYS[2], 'MINID', minid)
`)

// SaveSnapshot stores s and trims the journal it covers, atomically, in one
// script. See Journal.SaveSnapshot.
func (j *RedisJournal) SaveSnapshot(ctx context.Context, s Snapshot) error {
	if s.Seq == math.MaxUint64 {
		return fmt.Errorf("journal save snapshot %d: seq out of range", s.Seq)
	}
	seq := strconv.FormatUint(s.Seq, 10)
	err := saveSnapshotScript.Run(ctx, j.bulk, []string{j.snapshotKey, j.journalKey, j.fenceKey},
		seq, s.Hash, s.Data, s.TakenAt.UTC().Format(time.RFC3339Nano),
		entryID(s.Seq), strconv.FormatUint(s.Seq+1, 10)+"-0", j.fenceArg(),
	).Err()
	if err != nil {
		if redis.HasErrorPrefix(err, "GPUXFENCED") {
			return fmt.Errorf("journal save snapshot %d: %w: %s", s.Seq, ErrFenced, err)
		}
		if redis.HasErrorPrefix(err, "GPUXSTALE") || redis.HasErrorPrefix(err, "GPUXHASH") {
			return fmt.Errorf("journal save snapshot %d: %w: %s", s.Seq, ErrConflict, err)
		}
		return wrapRedis(fmt.Sprintf("journal save snapshot %d", s.Seq), err)
	}
	return nil
}

// LoadSnapshot returns the stored snapshot. See Journal.LoadSnapshot.
func (j *RedisJournal) LoadSnapshot(ctx context.Context) (Snapshot, bool, error) {
	m, err := j.bulk.HGetAll(ctx, j.snapshotKey).Result()
	if err != nil {
		return Snapshot{}, false, wrapRedis("journal load snapshot", err)
	}
	if len(m) == 0 {
		return Snapshot{}, false, nil
	}
	seq, err := strconv.ParseUint(m["seq"], 10, 64)
	if err != nil {
		return Snapshot{}, false, fmt.Errorf("journal load snapshot: seq %q: %w", m["seq"], err)
	}
	takenAt, err := time.Parse(time.RFC3339Nano, m["taken_at"])
	if err != nil {
		return Snapshot{}, false, fmt.Errorf("journal load snapshot %d: taken_at: %w", seq, err)
	}
	return Snapshot{Seq: seq, Hash: m["hash"], Data: []byte(m["data"]), TakenAt: takenAt}, true, nil
}

// ProbeWrite sets gpux:{<shard>}:probe, a key nothing reads: Redis refuses
// it exactly when it would refuse an XADD (OOM, MISCONF, READONLY). See
// Journal.ProbeWrite.
func (j *RedisJournal) ProbeWrite(ctx context.Context) error {
	if err := j.rdb.Set(ctx, j.probeKey, "1", 0).Err(); err != nil {
		return wrapRedis("journal probe write", err)
	}
	return nil
}

// wrapRedis wraps err with op, adding ErrUnavailable when the failure means
// Redis could not serve the request right now rather than that it refused it.
func wrapRedis(op string, err error) error {
	if isUnavailable(err) {
		return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// isUnavailable classifies err: anything that is not a server reply (dial
// and I/O errors, timeouts, a closed client or pool, a cancelled context)
// and the replies by which a server says "not now".
func isUnavailable(err error) bool {
	if err == nil || errors.Is(err, redis.Nil) {
		return false
	}
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		return true
	}
	for _, p := range notNowReplies {
		if redis.HasErrorPrefix(err, p) {
			return true
		}
	}
	return false
}

// notNowReplies are the prefixes of the error replies by which Redis says
// "not now" rather than "no": loading, read-only replica, cluster down or
// moving, out of memory (maxmemory with noeviction), the AOF or RDB cannot
// be written (MISCONF: a full disk), a busy script, too many clients, and
// on a Cluster a slot that moved (MOVED, ASK: the pipeline's raw connection
// does not follow redirects; its next dial finds the new master).
// Checked by prefix so the append pipeline's own replies classify alike.
var notNowReplies = []string{
	"LOADING", "READONLY", "CLUSTERDOWN", "TRYAGAIN", "MASTERDOWN", "OOM ",
	"NOREPLICAS", "BUSY", "MISCONF", "max number of clients", "MOVED ", "ASK ",
}
