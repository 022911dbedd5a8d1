package api

import (
	"encoding/json"
	"net"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	fws "github.com/fasthttp/websocket"
	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"
	"golang.org/x/time/rate"

	"github.com/gpux/gpux/engine"
)

// Limits of one websocket connection and of one remote address (on an
// engine node and on an API node alike). They bound
// the work a client can ask of the hub, which serves every subscriber:
// without them one connection naming "prices" 6,000 times made the hub
// render 6,000 snapshots and put every feed seconds behind.
const (
	// maxChannelsPer is the channels one connection may hold (every
	// market's book and trades, prices and user fit).
	maxChannelsPer = 64
	// wsOpsPerSecond and wsOpsBurst bound the ops a connection sends;
	// an op over the rate answers rate_limited and does nothing.
	wsOpsPerSecond = 10
	wsOpsBurst     = 20
	// Snapshots cost the hub work in proportion to what they hold; a
	// subscribe spends snapshot tokens (prices: snapshotCostPrices, any
	// other channel: 1) from a bucket refilled at snapshotsPerSecond, and
	// one that finds too few answers rate_limited and does nothing. The
	// burst lets a new connection subscribe to every channel at once.
	snapshotsPerSecond = 16
	snapshotBurst      = 128
	snapshotCostPrices = 8
	// defaultFeedConnsPerAddr is Config.FeedConnsPerAddr's default while
	// rate limits are on.
	defaultFeedConnsPerAddr = 64
)

// Close reasons sent with the close frame, so a client can tell why.
const (
	reasonSlowConsumer = "slow consumer"
	reasonFeedReset    = "server busy: the feed fell behind the exchange; reconnect and resubscribe"
	reasonShutdown     = "shutting down"
)

// feedServer serves the websocket protocol of /v1/ws over a hub: the same
// code on an engine node (a hub fed by its engine) and on an API node (a
// hub fed by the relay, RelayFeed).
type feedServer struct {
	cfg     feedConfig
	metrics *metrics
	hub     *hub
	conns   *addrCounter
	// auth resolves an auth op's key to an account; false for an unknown
	// key (and for the admin key, which has no account).
	auth func(key string) (engine.ID, bool)
}

// feedConfig is the part of Config a feed server uses (same meanings).
type feedConfig struct {
	AllowedOrigins   []string
	Heartbeat        time.Duration
	SendQueue        int
	FeedConnsPerAddr int
}

// feedServer is the server's own feed, over its engine's hub.
func (s *Server) feedServer() *feedServer {
	return &feedServer{
		cfg:     feedConfig{AllowedOrigins: s.cfg.AllowedOrigins, Heartbeat: s.cfg.Heartbeat, SendQueue: s.cfg.SendQueue, FeedConnsPerAddr: s.cfg.FeedConnsPerAddr},
		metrics: s.metrics, hub: s.hub, conns: &s.feedConns,
		auth: func(key string) (engine.ID, bool) {
			w := s.authenticate(key)
			return w.account.ID, w.valid && !w.admin
		},
	}
}

// upgrade admits websocket upgrades from allowed origins, at most
// FeedConnsPerAddr at a time from one address.
func (s *feedServer) upgrade(c *fiber.Ctx) error {
	if !websocket.IsWebSocketUpgrade(c) {
		return problem(CodeUpgradeRequired, "", "GET /v1/ws expects a websocket upgrade")
	}
	if origin := c.Get(fiber.HeaderOrigin); origin != "" && !originAllowed(s.cfg.AllowedOrigins, origin, c.Hostname()) {
		return problemf(CodeForbiddenOrigin, "Origin", "origin %q may not open the feed", truncate(origin, 100))
	}
	addr := c.IP()
	if !s.conns.acquire(addr, s.cfg.FeedConnsPerAddr) {
		p := problemf(CodeTooManyConns, "", "at most %d feed connections per address", s.cfg.FeedConnsPerAddr)
		p.retryAfter = defaultRetryAfterSecs
		return p
	}
	// serveFeed releases it when the connection ends.
	c.Locals(feedAddrKey, addr)
	// The connection the websocket will write to, so its writer can cork
	// it (fasthttp hands the listener's conn to the upgrade).
	if tc, ok := c.Context().Conn().(*trackedConn); ok {
		c.Locals(feedConnKey, tc)
	}
	err := c.Next()
	if c.Response().StatusCode() != fiber.StatusSwitchingProtocols {
		s.conns.release(addr) // the upgrade failed: serve never ran
	}
	return err
}

const (
	feedAddrKey = "gpux.feed.addr"
	feedConnKey = "gpux.feed.conn"
	// writeBatch bounds the queued messages one write takes.
	writeBatch = 64
)

// addrCounter counts open feed connections per remote address.
type addrCounter struct {
	mu sync.Mutex
	n  map[string]int
}

// acquire counts one more connection of addr unless it already has max
// (max <= 0: no limit).
func (a *addrCounter) acquire(addr string, max int) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n == nil {
		a.n = map[string]int{}
	}
	if max > 0 && a.n[addr] >= max {
		return false
	}
	a.n[addr]++
	return true
}

func (a *addrCounter) release(addr string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n[addr]--; a.n[addr] <= 0 {
		delete(a.n, addr)
	}
}

// originAllowed admits the same origin as the request, localhost pages, and
// allowed ("*" for any).
func originAllowed(allowed []string, origin, host string) bool {
	if slices.Contains(allowed, "*") || slices.Contains(allowed, origin) {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if u.Host == host {
		return true
	}
	switch h := u.Hostname(); h {
	case "localhost", "127.0.0.1", "::1":
		return true
	default:
		if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() {
			return true
		}
	}
	return false
}

func (s *feedServer) handler() fiber.Handler {
	// EnableCompression stays off: permessage-deflate would let a client
	// send frames that inflate on the server, and costs a compressor per
	// connection.
	return websocket.New(s.serve, websocket.Config{Origins: []string{"*"}, ReadBufferSize: 4096, WriteBufferSize: 4096, EnableCompression: false})
}

// serve runs one websocket: a reader goroutine takes ops, this
// goroutine writes queued messages and heartbeats until the client goes.
func (s *feedServer) serve(conn *websocket.Conn) {
	if addr, ok := conn.Locals(feedAddrKey).(string); ok {
		defer s.conns.release(addr)
	}
	cl := &wsClient{send: make(chan *fws.PreparedMessage, s.cfg.SendQueue), gone: make(chan struct{}), subs: map[string]bool{}}
	if !s.hub.request(hubReq{kind: reqJoin, cl: cl}) {
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(closeGoingAway, reasonShutdown), time.Now().Add(time.Second))
		return
	}
	defer s.hub.request(hubReq{kind: reqLeave, cl: cl})
	conn.SetReadLimit(wsReadLimit)

	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		s.read(conn, cl)
	}()
	defer func() {
		_ = conn.Close() // ends the reader if it still runs
		<-readerDone     // the contrib package recycles conn once we return
	}()

	heartbeat := time.NewTicker(s.cfg.Heartbeat)
	defer heartbeat.Stop()
	tc, _ := conn.Locals(feedConnKey).(*trackedConn)
	// writeQueued writes pm and whatever else is queued by then; with the
	// connection corked the frames leave in one write (a few for a long
	// queue) instead of one each.
	writeQueued := func(pm *fws.PreparedMessage) bool {
		_ = conn.SetWriteDeadline(time.Now().Add(wsWriteTimeout))
		if tc != nil {
			tc.cork()
		}
		err := conn.WritePreparedMessage(pm)
		for n := 1; err == nil && n < writeBatch; n++ {
			select {
			case pm = <-cl.send:
				err = conn.WritePreparedMessage(pm)
				continue
			default:
			}
			break
		}
		if tc != nil {
			if uerr := tc.uncork(); err == nil {
				err = uerr
			}
		}
		return err == nil
	}
	for {
		select {
		case pm := <-cl.send:
			if !writeQueued(pm) {
				return
			}
		case now := <-heartbeat.C:
			if !writeQueued(prepare(mustJSON(ctlMsg{Type: "heartbeat", TS: now.UTC().Format("2006-01-02T15:04:05.000Z07:00")}))) {
				return
			}
		case <-cl.gone:
			_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(cl.closeCode, cl.closeReason), time.Now().Add(time.Second))
			return
		case <-readerDone:
			return
		}
	}
}

// feedLimits are one connection's budgets (reader goroutine only).
type feedLimits struct {
	ops   *rate.Limiter
	snaps *rate.Limiter
}

func newFeedLimits() feedLimits {
	return feedLimits{
		ops:   rate.NewLimiter(wsOpsPerSecond, wsOpsBurst),
		snaps: rate.NewLimiter(snapshotsPerSecond, snapshotBurst),
	}
}

// snapshotCost is what subscribing to channels costs the hub: a snapshot
// each, the prices snapshot (every market) more.
func snapshotCost(channels []string) int {
	n := 0
	for _, c := range channels {
		if c == "prices" {
			n += snapshotCostPrices
		} else {
			n++
		}
	}
	return n
}

// dedupe returns channels without repeats, in first-seen order.
func dedupe(channels []string) []string {
	seen := make(map[string]bool, len(channels))
	out := channels[:0:0]
	for _, c := range channels {
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}

// feedOp is a validated client op.
type feedOp struct {
	kind     hubReqKind // reqSubscribe, reqUnsubscribe; 0 for auth
	channels []string
	key      string
}

// parseFeedOp decodes and checks one client message; the problem it
// returns is sent to the client as {"type": "error"}.
func parseFeedOp(b []byte) (feedOp, *ctlMsg) {
	var op clientOp
	if err := json.Unmarshal(b, &op); err != nil {
		return feedOp{}, &ctlMsg{Type: "error", Code: CodeMalformedJSON, Detail: "a message must be a JSON object with an op"}
	}
	if dup, ok := duplicateKey(b); ok {
		return feedOp{}, &ctlMsg{Type: "error", Code: CodeDuplicateKey, Detail: "duplicate key " + strconv.Quote(truncate(dup, 64))}
	}
	switch op.Op {
	case "auth":
		return feedOp{key: op.Key}, nil
	case "subscribe", "unsubscribe":
		if len(op.Channels) == 0 {
			return feedOp{}, &ctlMsg{Type: "error", Code: CodeMissingField, Detail: "channels is required"}
		}
		chans := dedupe(op.Channels)
		if len(chans) > maxChannelsPer {
			return feedOp{}, &ctlMsg{Type: "error", Code: CodeTooManyChannels, Detail: "at most " + strconv.Itoa(maxChannelsPer) + " channels per connection"}
		}
		kind := reqSubscribe
		if op.Op == "unsubscribe" {
			kind = reqUnsubscribe
		}
		return feedOp{kind: kind, channels: chans}, nil
	}
	return feedOp{}, &ctlMsg{Type: "error", Code: CodeUnknownOp, Detail: "op must be subscribe, unsubscribe or auth"}
}

// read handles client ops until the connection fails.
//
// Auth rule: a connection authenticates once. A second auth after a
// successful one is refused with already_authenticated and changes
// nothing, so the user channel never streams two accounts on one
// connection; open a new connection for another account.
func (s *feedServer) read(conn *websocket.Conn, cl *wsClient) {
	var account engine.ID
	lim := newFeedLimits()
	reply := func(m ctlMsg) {
		if m.Code != "" {
			s.metrics.wsRejected.WithLabelValues(m.Code).Inc()
		}
		cl.offer(prepare(mustJSON(m)))
	}
	for {
		_, b, err := conn.ReadMessage()
		if err != nil {
			cl.drop(websocket.CloseNormalClosure, "")
			return
		}
		if !lim.ops.Allow() {
			reply(ctlMsg{Type: "error", Code: CodeRateLimited, Detail: "at most " + strconv.Itoa(wsOpsPerSecond) + " ops per second (burst " + strconv.Itoa(wsOpsBurst) + "); this op was ignored"})
			continue
		}
		op, bad := parseFeedOp(b)
		if bad != nil {
			reply(*bad)
			continue
		}
		switch op.kind {
		case 0: // auth
			if !account.IsZero() {
				no := false
				reply(ctlMsg{Type: "auth", OK: &no, Code: CodeAlreadyAuthenticated, Detail: "this connection is already authenticated; open a new one for another account"})
				continue
			}
			id, ok := s.auth(op.key)
			if !ok || id.IsZero() {
				no := false
				reply(ctlMsg{Type: "auth", OK: &no, Code: CodeUnauthorized, Detail: "unknown API key"})
				continue
			}
			account = id
			yes := true
			reply(ctlMsg{Type: "auth", OK: &yes})
		case reqSubscribe:
			if cost := snapshotCost(op.channels); !lim.snaps.AllowN(time.Now(), cost) {
				reply(ctlMsg{Type: "error", Code: CodeRateLimited, Detail: "too many snapshots: subscribing costs one per channel (prices " + strconv.Itoa(snapshotCostPrices) + "), " + strconv.Itoa(snapshotsPerSecond) + " a second, burst " + strconv.Itoa(snapshotBurst) + "; this op was ignored", Channels: op.channels})
				continue
			}
			fallthrough
		case reqUnsubscribe:
			if !s.hub.request(hubReq{kind: op.kind, cl: cl, channels: op.channels, account: account}) {
				return
			}
		}
	}
}
