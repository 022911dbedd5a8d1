package relay

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/redis/go-redis/v9"

	"github.com/gpux/gpux/api"
	"github.com/gpux/gpux/engine"
)

// Relay limits.
const (
	// maxSnapshotBytes bounds a snapshot read from an engine node.
	maxSnapshotBytes = 32 << 20
	// maxKeyLen bounds an API key looked up in the registry.
	maxKeyLen     = 256
	redisTimeout  = 2 * time.Second
	reconnectWait = 100 * time.Millisecond
	// idleCheck is how long a subscription may be silent before it is
	// pinged (a connection that died quietly shows then).
	idleCheck = 15 * time.Second
)

// Config configures a Relay.
type Config struct {
	Redis redis.UniversalClient
	// Registry is the hash tag of the registry keys: gpux:{<Registry>}:shards
	// (the shards to follow) and gpux:{<Registry>}:keys (API key hash →
	// account). Default "registry".
	Registry string
	// MainShard owns every market whose region has no shard of its own,
	// and the user channels while it is the only shard (default "main");
	// with several, a user channel follows every shard (api.RelayFeed).
	MainShard string
	// AdminKey is sent to engine nodes for snapshots.
	AdminKey string
	// HTTP fetches snapshots (default: a client with a 10 s timeout).
	HTTP *http.Client
	// ShardsEvery is how often the shards set is read again (default 1 s).
	ShardsEvery time.Duration

	// The feed's limits, as in api.Config (FeedConnsPerAddr: 0 = 64,
	// negative = no limit).
	AllowedOrigins   []string
	Heartbeat        time.Duration
	SendQueue        int
	FeedConnsPerAddr int
	Logger           *slog.Logger
}

// Relay is an API node's websocket feed: it follows every shard's feed in
// Redis and serves /v1/ws from it (mount Upgrade and Handler).
type Relay struct {
	cfg    Config
	feed   *api.RelayFeed
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.RWMutex
	shards  []string // sorted
	has     map[string]bool
	pubsubs []*redis.PubSub // closed by Close: a blocked read ignores ctx
}

// New starts a relay: it reads the shards set once (up to a couple of
// seconds; an unreachable Redis is retried in the background), then keeps
// following it. Close stops it.
func New(cfg Config) *Relay {
	if cfg.Registry == "" {
		cfg.Registry = "registry"
	}
	if cfg.MainShard == "" {
		cfg.MainShard = "main"
	}
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.ShardsEvery <= 0 {
		cfg.ShardsEvery = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := &Relay{cfg: cfg, has: map[string]bool{}}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.feed = api.NewRelayFeed(api.RelayConfig{
		Source: source{r}, Authenticate: r.authenticate,
		AllowedOrigins: cfg.AllowedOrigins, Heartbeat: cfg.Heartbeat, SendQueue: cfg.SendQueue,
		FeedConnsPerAddr: cfg.FeedConnsPerAddr, Logger: cfg.Logger,
	})
	// Serve only once the feeds are subscribed: a snapshot fetched before
	// would miss the updates published in between (they would show as a
	// gap and be fetched again, but why start with one).
	t := time.NewTimer(redisTimeout)
	defer t.Stop()
	for _, ready := range r.refreshShards() {
		select {
		case <-ready:
		case <-t.C:
		}
	}
	r.wg.Add(1)
	go r.watchShards()
	return r
}

// Upgrade admits a websocket upgrade (mount it, then Handler, at GET /v1/ws).
func (r *Relay) Upgrade(c *fiber.Ctx) error { return r.feed.Upgrade(c) }

// Listener wraps the listener of the app that mounts the relay: feed
// connections accepted through it write batches of messages in one
// syscall (see api.RelayFeed.Listener).
func (r *Relay) Listener(ln net.Listener) net.Listener { return r.feed.Listener(ln) }

// Handler serves an upgraded feed connection.
func (r *Relay) Handler() fiber.Handler { return r.feed.Handler() }

// Feed is the relay's websocket feed (metrics, client count).
func (r *Relay) Feed() *api.RelayFeed { return r.feed }

// Close closes every feed connection (1001) and stops following Redis.
func (r *Relay) Close() {
	r.cancel()
	r.mu.Lock()
	for _, ps := range r.pubsubs {
		_ = ps.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
	r.feed.Close()
}

func (r *Relay) key(name string) string { return "gpux:{" + r.cfg.Registry + "}:" + name }

func (r *Relay) watchShards() {
	defer r.wg.Done()
	t := time.NewTicker(r.cfg.ShardsEvery)
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
			r.refreshShards()
		}
	}
}

// refreshShards reads the shards set and follows the feed of any new
// shard; each new shard's channel closes once its feed is subscribed.
func (r *Relay) refreshShards() []chan struct{} {
	ctx, cancel := context.WithTimeout(r.ctx, redisTimeout)
	defer cancel()
	names, err := r.cfg.Redis.SMembers(ctx, r.key("shards")).Result()
	if err != nil {
		if r.ctx.Err() == nil {
			r.cfg.Logger.Warn("feed relay: read shards", "err", err)
		}
		return nil
	}
	slices.Sort(names)
	r.mu.Lock()
	defer r.mu.Unlock()
	var ready []chan struct{}
	for _, s := range names {
		if !r.has[s] {
			r.has[s] = true
			ch := make(chan struct{})
			ready = append(ready, ch)
			r.wg.Add(1)
			go r.follow(s, ch)
		}
	}
	r.shards = names // shards never leave the set
	return ready
}

// follow relays one shard's feed until Close; ready closes once the
// subscription is confirmed (or failed).
func (r *Relay) follow(shard string, ready chan struct{}) {
	defer r.wg.Done()
	var once sync.Once
	isReady := func() { once.Do(func() { close(ready) }) }
	defer isReady()
	ch := FeedChannel(shard)
	var ps *redis.PubSub
	if cc, ok := r.cfg.Redis.(*redis.ClusterClient); ok {
		ps = cc.SSubscribe(r.ctx, ch)
	} else {
		ps = r.cfg.Redis.Subscribe(r.ctx, ch)
	}
	defer ps.Close()
	r.mu.Lock()
	if r.ctx.Err() != nil {
		r.mu.Unlock()
		return
	}
	r.pubsubs = append(r.pubsubs, ps)
	r.mu.Unlock()
	var (
		node string
		n    uint64
		// lostConn: the connection failed; once subscribed again, what
		// was published meanwhile is fetched (the channels, again).
		lostConn bool
	)
	for {
		msg, err := ps.ReceiveTimeout(r.ctx, idleCheck)
		if err != nil {
			if r.ctx.Err() != nil {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if err := ps.Ping(r.ctx); err == nil {
					continue // quiet, and still there
				}
			}
			isReady()
			// The next Receive reconnects and subscribes again.
			if !lostConn {
				r.cfg.Logger.Warn("feed relay: redis", "shard", shard, "err", err)
			}
			lostConn, node = true, ""
			select {
			case <-time.After(reconnectWait):
			case <-r.ctx.Done():
				return
			}
			continue
		}
		m, ok := msg.(*redis.Message)
		if !ok {
			if _, ok := msg.(*redis.Subscription); ok {
				isReady()
				if lostConn {
					lostConn = false
					r.feed.Resync(shard)
				}
			}
			continue // pongs
		}
		b, err := decodeBatch(m.Payload)
		if err != nil {
			r.cfg.Logger.Warn("feed relay: unreadable batch", "shard", shard, "err", err)
			r.feed.Resync(shard)
			continue
		}
		if b.Lost || (node != "" && (b.Node != node || b.N != n+1)) {
			r.feed.Resync(shard)
		}
		node, n = b.Node, b.N
		r.feed.Deliver(shard, b.msgs)
	}
}

type wireBatch struct {
	V    int    `json:"v"`
	Node string `json:"node"`
	N    uint64 `json:"n"`
	Lost bool   `json:"lost"`
	Msgs []struct {
		C string          `json:"c"`
		S uint64          `json:"s"`
		F json.RawMessage `json:"f"`
	} `json:"msgs"`
	msgs []api.FeedMessage
}

func decodeBatch(payload string) (wireBatch, error) {
	var b wireBatch
	if err := json.Unmarshal([]byte(payload), &b); err != nil {
		return b, fmt.Errorf("decode feed batch: %w", err)
	}
	if b.V != 1 {
		return b, fmt.Errorf("feed batch version %d, want 1", b.V)
	}
	b.msgs = make([]api.FeedMessage, len(b.Msgs))
	for i, m := range b.Msgs {
		b.msgs[i] = api.FeedMessage{Channel: m.C, Seq: m.S, Frame: m.F}
	}
	return b, nil
}

// authenticate resolves an API key through the registry.
func (r *Relay) authenticate(key string) (engine.ID, bool) {
	if key == "" || len(key) > maxKeyLen {
		return engine.ID{}, false
	}
	h := sha256.Sum256([]byte(key))
	ctx, cancel := context.WithTimeout(r.ctx, redisTimeout)
	defer cancel()
	id, err := r.cfg.Redis.HGet(ctx, r.key("keys"), hex.EncodeToString(h[:])).Result()
	if err != nil {
		if !errors.Is(err, redis.Nil) {
			r.cfg.Logger.Warn("feed relay: look up API key", "err", err)
		}
		return engine.ID{}, false
	}
	a, err := engine.ParseID(id)
	if err != nil {
		r.cfg.Logger.Warn("feed relay: registry holds a bad account id", "id", id, "err", err)
		return engine.ID{}, false
	}
	return a, !a.IsZero()
}

// source is the relay as the feed's api.FeedSource.
type source struct{ r *Relay }

var _ api.FeedSource = source{}

// Route applies the market → shard rule: a market <gpu>.<region> belongs to
// shard <region> when that shard exists, otherwise to the main shard. A
// user channel is routed here only while there is one shard; with several
// the feed follows it on every shard (Shards), as prices.
func (s source) Route(channel string) string {
	kind, rest, _ := strings.Cut(channel, ":")
	if kind == "book" || kind == "trades" {
		if i := strings.LastIndexByte(rest, '.'); i >= 0 {
			region := rest[i+1:]
			s.r.mu.RLock()
			ok := s.r.has[region]
			s.r.mu.RUnlock()
			if ok {
				return region
			}
		}
	}
	return s.r.cfg.MainShard
}

// Shards lists the shards known so far, sorted.
func (s source) Shards() []string {
	s.r.mu.RLock()
	defer s.r.mu.RUnlock()
	return slices.Clone(s.r.shards)
}

// Snapshot fetches a channel's snapshot from the shard's leader (the addr
// in its lease).
func (s source) Snapshot(ctx context.Context, shard, channel string) ([]byte, error) {
	r := s.r
	addr, err := r.cfg.Redis.HGet(ctx, "gpux:{"+shard+"}:lease", "addr").Result()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("snapshot of %s: shard %s has no leader", channel, shard)
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot of %s: read lease of shard %s: %w", channel, shard, err)
	}
	u := "http://" + addr + api.FeedSnapshotPath + "?channel=" + url.QueryEscape(channel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("snapshot of %s: %w", channel, err)
	}
	req.Header.Set("Authorization", "Bearer "+r.cfg.AdminKey)
	resp, err := r.cfg.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("snapshot of %s from %s: %w", channel, addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxSnapshotBytes+1))
	if err != nil {
		return nil, fmt.Errorf("snapshot of %s from %s: %w", channel, addr, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("snapshot of %s from %s: %w", channel, addr, api.ErrUnknownChannel)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("snapshot of %s from %s: status %d: %s", channel, addr, resp.StatusCode, truncate(string(body), 200))
	case len(body) > maxSnapshotBytes:
		return nil, fmt.Errorf("snapshot of %s from %s: more than %d bytes", channel, addr, maxSnapshotBytes)
	}
	return body, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
