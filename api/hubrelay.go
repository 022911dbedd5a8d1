package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	fws "github.com/fasthttp/websocket"
	"github.com/gofiber/fiber/v2"

	"github.com/gpux/gpux/engine"
)

// Relay limits.
const (
	// maxChannelName bounds a channel name a relay asks an engine node for
	// (and the snapshot route accepts): every market id fits.
	maxChannelName = 128
	// relayQueue is the batches from the relay waiting for the hub; a full
	// queue makes the hub resynchronise every channel (never block Redis).
	relayQueue = 4096
	// relayBufMax bounds the updates a channel buffers while its snapshot
	// is fetched; past it the fetch is repeated.
	relayBufMax = 4096
	// relayTailMax bounds the updates a user channel sends a new
	// subscriber after its snapshot (well inside a send queue); past it
	// the snapshot is fetched again first.
	relayTailMax = 64
	// relayFetchTimeout bounds one snapshot fetch; relayRetryMax the wait
	// between failed ones (it doubles from relayRetryMin).
	relayFetchTimeout = 10 * time.Second
	relayRetryMin     = 100 * time.Millisecond
	relayRetryMax     = 5 * time.Second
)

// FeedSource is where an API node's feed gets its channels (package relay
// implements it): the engine nodes' hubs, whose messages arrive through
// RelayFeed.Deliver, and their snapshots.
type FeedSource interface {
	// Route names the shard whose engine node serves a book:<market>,
	// trades:<market> or user:<account id> channel (the market → shard
	// rule). prices is served by every shard (Shards), and so is user when
	// there are several.
	Route(channel string) string
	// Shards lists the shards whose feeds are relayed, in a fixed order
	// (prices rows are shown in it).
	Shards() []string
	// Snapshot fetches channel (named as in FeedMessage) from the leader
	// of shard: the message its hub would send a new subscriber now,
	// {"channel","type":"snapshot","seq","data","ts"}. ErrUnknownChannel
	// when the shard has no such market or account; any other error is
	// retried. Called off the hub's goroutine; ctx ends with the feed.
	Snapshot(ctx context.Context, shard, channel string) ([]byte, error)
}

// RelayConfig configures a RelayFeed. Limits mean what they mean in Config.
type RelayConfig struct {
	Source FeedSource
	// Authenticate resolves an auth op's API key to its account; false
	// for an unknown key (the admin key has no account either).
	Authenticate     func(key string) (engine.ID, bool)
	AllowedOrigins   []string
	Heartbeat        time.Duration // default 10 s, at most 15 s
	SendQueue        int           // default 256
	FeedConnsPerAddr int           // 0 = 64; negative = no limit
	Logger           *slog.Logger
	Now              func() time.Time
}

// RelayFeed is the websocket feed of an API node: the protocol of /v1/ws
// (the same code as an engine node's: limits, errors, slow-consumer close,
// heartbeats) over channels that follow the engine nodes' hubs. A channel
// keeps the seq of the engine node that serves it, so a client sees the
// same seqs through any API node and directly. The prices channel, which
// every shard serves for its own markets, has as seq the sum of the shards'
// prices seqs (the shard's own seq when there is one shard): every shard's
// update moves it by one, so every API node counts the same, and each row
// belongs to one shard, so the rows after seq n are the same wherever
// the shards' updates were interleaved differently.
//
// A user channel, with several shards, follows the account on every shard
// as prices does: its seq is the sum of the shards' seqs of user:<id> (a
// shard where the account does not exist yet counts 0), each update's data
// gains "shard", and its snapshot is the account with balance, held and
// available summed and "wallets": [{"shard", ...that shard's account}].
// When the account appears on a shard (its first event there), that shard
// is fetched and every subscriber gets a fresh snapshot: the seq jumps by
// the new shard's seq, on every API node alike; so does a shard that was
// down (left out meanwhile, see down). So, as for prices, every
// API node counts the same: once quiet, all are at the same seq with the
// same wallets. Two shards' updates that cross on their way may be
// numbered in a different order by two API nodes (each shard's own order
// is kept, with no gap); each update names its shard, and balance events
// carry that wallet's balance, so neither order is wrong.
//
// A channel is fetched (snapshot through FeedSource) when it gets its first
// subscriber here, and is kept from the updates that follow; a missed
// update (a seq gap, a lost batch, a new leader) fetches it again, and its
// subscribers get the fresh snapshot: the seq they see jumps, as direct
// clients see it jump after a takeover (seqBase).
type RelayFeed struct {
	fs  *feedServer
	hub *hub
}

// NewRelayFeed starts a relay feed; Close stops it.
func NewRelayFeed(cfg RelayConfig) *RelayFeed {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Heartbeat <= 0 || cfg.Heartbeat > 15*time.Second {
		cfg.Heartbeat = 10 * time.Second
	}
	if cfg.SendQueue <= 0 {
		cfg.SendQueue = 256
	}
	if cfg.FeedConnsPerAddr == 0 {
		cfg.FeedConnsPerAddr = defaultFeedConnsPerAddr
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := newMetrics()
	h := &hub{
		metrics: m, log: cfg.Logger, now: cfg.Now,
		reqs: make(chan hubReq, hubRequests), closing: make(chan struct{}), done: make(chan struct{}),
		clients: map[*wsClient]bool{}, channels: map[string]*channel{},
		relay: &relayState{
			src: cfg.Source, ctx: ctx, cancel: cancel,
			in: make(chan relayBatch, relayQueue), fetched: make(chan fetchResult, 64),
			comps: map[compKey]*relayComp{}, prices: map[string]*relayComp{},
		},
	}
	go h.run()
	return &RelayFeed{hub: h, fs: &feedServer{
		cfg:     feedConfig{AllowedOrigins: cfg.AllowedOrigins, Heartbeat: cfg.Heartbeat, SendQueue: cfg.SendQueue, FeedConnsPerAddr: cfg.FeedConnsPerAddr},
		metrics: m, hub: h, conns: &addrCounter{}, auth: cfg.Authenticate,
	}}
}

// Upgrade is the Fiber handler that admits a websocket upgrade (origin,
// connections per address); mount it before Handler at GET /v1/ws. It
// writes its refusals (problem+json) itself, whatever the app's error
// handler.
func (f *RelayFeed) Upgrade(c *fiber.Ctx) error {
	err := f.fs.upgrade(c)
	var p *Problem
	if errors.As(err, &p) {
		return writeProblem(c, p)
	}
	return err
}

// Listener wraps the listener the API node's Fiber app serves on, so that
// feed connections write what is queued for them in one syscall (corked,
// as on engine nodes; without it each message is a write). Other requests
// are not affected.
func (f *RelayFeed) Listener(ln net.Listener) net.Listener {
	return &trackingListener{Listener: ln, conns: &connSet{}}
}

// Handler is the Fiber handler that serves an upgraded feed connection.
func (f *RelayFeed) Handler() fiber.Handler { return f.fs.handler() }

// Metrics serves the feed's Prometheus metrics (gpux_ws_*).
func (f *RelayFeed) Metrics() fiber.Handler { return f.fs.metrics.handler() }

// Clients is the number of open feed connections.
func (f *RelayFeed) Clients() int64 { return f.hub.clientCount() }

// Deliver hands the feed a batch of shard's messages, in the order its hub
// sent them. It never blocks: when the feed cannot keep up it drops the
// batch and fetches every channel again.
func (f *RelayFeed) Deliver(shard string, msgs []FeedMessage) {
	f.hub.relay.offer(relayBatch{shard: shard, msgs: msgs})
}

// Resync says messages of shard were lost (a gap in its batches, a new
// leader): every channel it serves is fetched again. It never blocks.
func (f *RelayFeed) Resync(shard string) {
	f.hub.relay.offer(relayBatch{shard: shard, resync: true})
}

// Close closes every feed connection with 1001 (going away) and stops.
func (f *RelayFeed) Close() { f.hub.close() }

type relayBatch struct {
	shard  string
	msgs   []FeedMessage
	resync bool
}

type fetchResult struct {
	comp  *relayComp
	gen   uint64
	frame []byte
	err   error
}

// relayState is a relay hub's: the parts of its channels and what feeds
// them. comps is owned by the hub's goroutine.
type relayState struct {
	src      FeedSource
	ctx      context.Context
	cancel   context.CancelFunc
	in       chan relayBatch
	fetched  chan fetchResult
	overflow atomic.Bool
	comps    map[compKey]*relayComp
	prices   map[string]*relayComp // shard → its part of prices (also in comps)
}

// addPrices adds shard's part of prices.
func (r *relayState) addPrices(shard string) *relayComp {
	c := &relayComp{channel: "prices", shard: shard}
	r.comps[compKey{"prices", shard}], r.prices[shard] = c, c
	return c
}

func (r *relayState) offer(b relayBatch) {
	select {
	case r.in <- b:
	default:
		r.overflow.Store(true)
	}
}

// compKey names a part of a channel: the hub channel and the shard it
// follows (prices has a part per shard, any other channel one).
type compKey struct{ channel, shard string }

type compState uint8

const (
	compIdle     compState = iota // followed by nobody
	compFetching                  // snapshot on its way; updates are buffered
	compSynced                    // up to date: updates apply in seq order
)

// relayComp is one shard's part of a channel, as that shard's hub has it.
type relayComp struct {
	channel, shard string
	state          compState
	gen            uint64 // fetch generation: answers of older fetches are dropped
	retry          time.Duration
	seq            uint64        // the shard's seq of the last message applied
	buf            []FeedMessage // compFetching: updates that came meanwhile
	ts             string        // ts of the last message applied

	// What a snapshot is built from, by channel kind.
	book   json.RawMessage            // book: the full state last sent
	trades []json.RawMessage          // trades: newest last
	rows   map[string]json.RawMessage // prices: each market's row
	order  []string                   // prices: markets in the shard's order
	// user: the snapshot fetched, and the updates since it; a new
	// subscriber gets both (a user channel's data is events, not state).
	snap       []byte
	snapSeq    uint64
	tail       []FeedMessage
	refreshing bool // a newer snapshot is on its way (tail grew long)
	// absent: a user channel of several shards whose account does not
	// exist on this one (yet): no wallet, seq 0, until a message of it
	// comes (the account was created there) and it is fetched again.
	absent bool
	// multi: a part of a user channel of several shards (it may be down).
	multi bool
}

func (h *hub) runRelay() {
	r := h.relay
	defer close(h.done)
	defer r.cancel()
	for {
		select {
		case <-h.closing:
			for cl := range h.clients {
				cl.drop(closeGoingAway, reasonShutdown)
			}
			return
		case b := <-r.in:
			h.relayBatch(b)
		drain:
			for i := 0; i < 256; i++ {
				select {
				case b := <-r.in:
					h.relayBatch(b)
				default:
					break drain
				}
			}
		case f := <-r.fetched:
			h.relayFetched(f)
		case req := <-h.reqs:
			h.handle(req)
		}
		if r.overflow.Swap(false) {
			h.metrics.feedLost.Inc()
			h.log.Warn("feed relay fell behind; fetching every channel again")
			for len(r.in) > 0 {
				<-r.in
			}
			for _, c := range r.comps {
				h.resyncComp(c, nil)
			}
		}
	}
}

// relaySubscribe adds cl to a channel; its snapshot is sent once every
// part of the channel is synced (at once when it already is).
func (h *hub) relaySubscribe(cl *wsClient, name, key string, account engine.ID) {
	kind, market, _ := strings.Cut(name, ":")
	switch {
	case len(name) > maxChannelName:
		h.feedError(cl, CodeUnknownChannel, "unknown channel "+truncate(name, 80))
		return
	case name == "prices":
	case (kind == "book" || kind == "trades") && market != "":
	case name == userChannelName:
		if account.IsZero() {
			h.feedError(cl, CodeUnauthorized, "send {\"op\":\"auth\",\"key\":...} with an account's key before subscribing to user")
			return
		}
	default:
		h.feedError(cl, CodeUnknownChannel, "unknown channel "+truncate(name, 80)+": use prices, book:<market>, trades:<market> or user")
		return
	}
	c := h.ch(key)
	c.subs[cl] = true
	cl.subs[key] = true
	if c.pending == nil {
		c.pending = map[*wsClient]bool{}
	}
	c.pending[cl] = true
	h.relayServe(key)
}

// compsOf returns the parts of channel key, creating them: the routed
// shard's, and for prices every shard's (those the source lists and any
// that sent prices since), in shard order.
func (h *hub) compsOf(key string) []*relayComp {
	r := h.relay
	if strings.HasPrefix(key, "user:") {
		if shards := r.src.Shards(); len(shards) > 1 {
			// An account's events come from every shard it has a wallet on.
			out := make([]*relayComp, 0, len(shards))
			for _, s := range shards {
				k := compKey{key, s}
				c := r.comps[k]
				if c == nil {
					c = &relayComp{channel: key, shard: s}
					r.comps[k] = c
				}
				c.multi = true
				out = append(out, c)
			}
			return out
		}
	}
	if key != "prices" {
		k := compKey{key, r.src.Route(key)}
		c := r.comps[k]
		if c == nil {
			c = &relayComp{channel: key, shard: k.shard}
			r.comps[k] = c
		}
		return []*relayComp{c}
	}
	for _, s := range r.src.Shards() {
		if r.prices[s] == nil {
			r.addPrices(s)
		}
	}
	out := make([]*relayComp, 0, len(r.prices))
	for _, c := range r.prices {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *relayComp) int { return strings.Compare(a.shard, b.shard) })
	return out
}

// relayServe starts fetching key's parts that nobody follows yet, and
// sends its pending subscribers their snapshot when every part is synced.
func (h *hub) relayServe(key string) {
	c := h.channels[key]
	if c == nil || len(c.pending) == 0 {
		return
	}
	ready := true
	for _, p := range h.compsOf(key) {
		switch p.state {
		case compIdle:
			h.startFetch(p, 0)
			ready = false
		case compFetching:
			ready = ready && p.down()
		case compSynced:
			switch {
			case len(p.tail) > relayBufMax:
				h.resyncComp(p, nil) // fresher snapshots keep failing: start over
				ready = false
			case p.snap != nil && len(p.tail) > relayTailMax:
				// Snapshot and tail would flood a new subscriber's queue:
				// wait for a fresher snapshot.
				if !p.refreshing {
					p.refreshing = true
					h.startFetch(p, 0)
				}
				ready = false
			case p.snap != nil && p.seq < p.snapSeq:
				ready = false // a user snapshot ahead of the stream: wait for it
			}
		}
	}
	if ready {
		h.sendSnapshots(key, c, c.pending)
	}
}

// down reports a prices part, or a part of a user channel of several
// shards, whose shard could not be fetched (no leader, unreachable): the
// channel is served without it meanwhile, so the other shards keep
// answering; its rows or wallet come with a fresh snapshot.
func (p *relayComp) down() bool {
	return (p.channel == "prices" || p.multi) && p.state == compFetching && p.retry > 0
}

// sendSnapshots sends key's snapshot, built from its parts, to to (which
// may be c.pending: those are no longer pending afterwards).
func (h *hub) sendSnapshots(key string, c *channel, to map[*wsClient]bool) {
	if len(to) == 0 {
		return
	}
	parts := h.compsOf(key)
	var frames []*fws.PreparedMessage
	ts := rfc3339ms(engine.Time(h.now().UnixMilli()))
	switch kind, _, _ := strings.Cut(key, ":"); kind {
	case "prices":
		var seq uint64
		data := []byte{'['}
		for _, p := range parts {
			seq += p.seq
			if p.state != compSynced {
				continue // down (see relayServe): no rows yet
			}
			for _, m := range p.order {
				if len(data) > 1 {
					data = append(data, ',')
				}
				data = append(data, p.rows[m]...)
			}
		}
		data = append(data, ']')
		c.seq = seq
		frames = append(frames, prepare(mustJSON(feedMsg{Channel: key, Type: "snapshot", Seq: seq, Data: json.RawMessage(data), TS: ts})))
	case "book":
		p := parts[0]
		c.seq = p.seq
		frames = append(frames, prepare(mustJSON(feedMsg{Channel: key, Type: "snapshot", Seq: p.seq, Data: p.book, TS: ts})))
	case "trades":
		p := parts[0]
		snap := make([]json.RawMessage, 0, tradeSnapshotN)
		for i := len(p.trades) - 1; i >= 0 && len(snap) < tradeSnapshotN; i-- {
			snap = append(snap, p.trades[i])
		}
		c.seq = p.seq
		frames = append(frames, prepare(mustJSON(feedMsg{Channel: key, Type: "snapshot", Seq: p.seq, Data: snap, TS: ts})))
	case "user":
		if len(parts) > 1 {
			frames = h.userSnapshot(key, c, parts)
			break
		}
		p := parts[0]
		c.seq = p.seq
		frames = append(frames, prepare(p.snap))
		for _, m := range p.tail {
			frames = append(frames, prepare(m.Frame))
		}
	}
	for cl := range to {
		delete(c.pending, cl)
		for _, f := range frames {
			h.deliver(cl, f)
		}
	}
}

// relayBatch applies a batch of a shard's messages.
func (h *hub) relayBatch(b relayBatch) {
	r := h.relay
	if b.resync {
		for _, c := range r.comps {
			if c.shard == b.shard {
				h.resyncComp(c, nil)
			}
		}
	}
	for i := range b.msgs {
		m := &b.msgs[i]
		p := r.comps[compKey{m.Channel, b.shard}]
		if p == nil {
			c := h.channels[m.Channel]
			switch {
			case c == nil || len(c.subs) == 0:
			case m.Channel == "prices":
				// A shard that came up after prices was synced: take it in.
				h.resyncComp(r.addPrices(b.shard), m)
			case strings.HasPrefix(m.Channel, "user:"):
				// A shard that came up after the channel was synced.
				h.compsOf(m.Channel)
				if p = r.comps[compKey{m.Channel, b.shard}]; p != nil {
					h.resyncComp(p, m)
				}
			}
			continue
		}
		h.relayUpdate(p, m)
	}
}

// relayUpdate applies one message to a part and forwards it.
func (h *hub) relayUpdate(p *relayComp, m *FeedMessage) {
	switch p.state {
	case compIdle:
		if c := h.channels[p.channel]; c != nil && len(c.subs) > 0 {
			h.resyncComp(p, m) // a part of a watched channel (a new shard's prices)
		}
		return
	case compFetching:
		if len(p.buf) >= relayBufMax {
			h.resyncComp(p, m) // the snapshot is too slow to come: start over
			return
		}
		p.buf = append(p.buf, *m)
		return
	}
	switch {
	case p.absent:
		h.resyncComp(p, m) // the account now exists on this shard
		return
	case m.Seq <= p.seq:
		return // the snapshot already shows it
	case m.Seq != p.seq+1:
		h.resyncComp(p, m)
		return
	}
	data, ok := h.applyContent(p, m)
	if !ok {
		h.resyncComp(p, nil)
		return
	}
	h.relayForward(p, m, data)
	if c := h.channels[p.channel]; c != nil && len(c.pending) > 0 {
		h.relayServe(p.channel) // a user snapshot the stream has now reached
	}
}

// applyContent moves a part to m; false when m cannot be read (never from a
// hub; the part is then fetched again).
func (h *hub) applyContent(p *relayComp, m *FeedMessage) (json.RawMessage, bool) {
	var msg struct {
		Data json.RawMessage `json:"data"`
		TS   string          `json:"ts"`
	}
	if err := json.Unmarshal(m.Frame, &msg); err != nil {
		h.log.Warn("feed relay: unreadable message", "channel", p.channel, "shard", p.shard, "err", err)
		return nil, false
	}
	switch kind, _, _ := strings.Cut(p.channel, ":"); kind {
	case "prices":
		var u pricesUpdate
		if err := json.Unmarshal(msg.Data, &u); err != nil {
			return nil, false
		}
		if !p.setRows(u.Markets) {
			return nil, false
		}
	case "book":
		p.book = msg.Data
	case "trades":
		p.trades = append(p.trades, msg.Data)
		if len(p.trades) > 2*tradeSnapshotN {
			p.trades = append(p.trades[:0:0], p.trades[len(p.trades)-tradeSnapshotN:]...)
		}
	case "user":
		if m.Seq > p.snapSeq {
			p.tail = append(p.tail, *m)
		}
		if len(p.tail) > relayTailMax && !p.refreshing {
			p.refreshing = true
			h.startFetch(p, 0)
		}
	}
	p.seq, p.ts = m.Seq, msg.TS
	return msg.Data, true
}

// setRows replaces the rows of the markets in rows (adding new ones last).
func (p *relayComp) setRows(rows []json.RawMessage) bool {
	if p.rows == nil {
		p.rows = map[string]json.RawMessage{}
	}
	for _, raw := range rows {
		var row struct {
			Market string `json:"market"`
		}
		if err := json.Unmarshal(raw, &row); err != nil || row.Market == "" {
			return false
		}
		if _, ok := p.rows[row.Market]; !ok {
			p.order = append(p.order, row.Market)
		}
		p.rows[row.Market] = raw
	}
	return true
}

// relayForward sends an applied message to the channel's subscribers that
// have their snapshot: as it came, but for prices, whose seq is the sum of
// its parts'.
func (h *hub) relayForward(p *relayComp, m *FeedMessage, data json.RawMessage) {
	c := h.channels[p.channel]
	if c == nil || len(c.subs) == 0 {
		return
	}
	frame := m.Frame
	if p.multi {
		// A user channel of several shards: the seq is the sum of its
		// parts', as for prices, and the event names its shard.
		var seq uint64
		for _, q := range h.compsOf(p.channel) {
			seq += q.seq
		}
		c.seq = seq
		frame = mustJSON(feedMsg{Channel: userChannelName, Type: "update", Seq: seq, Data: withShard(data, p.shard), TS: p.ts})
	} else if p.channel == "prices" {
		var seq uint64
		for _, q := range h.compsOf("prices") {
			seq += q.seq
		}
		c.seq = seq
		if seq != m.Seq {
			frame = mustJSON(feedMsg{Channel: "prices", Type: "update", Seq: seq, Data: data, TS: p.ts})
		}
	} else {
		c.seq = p.seq
	}
	pm := prepare(frame)
	for cl := range c.subs {
		if !c.pending[cl] {
			h.deliver(cl, pm)
		}
	}
}

// resyncComp fetches a part again after it missed a message (m, when
// given, is the first message after the gap, kept for after the snapshot).
// A part of a channel nobody here watches goes idle instead.
func (h *hub) resyncComp(p *relayComp, m *FeedMessage) {
	if c := h.channels[p.channel]; c == nil || len(c.subs) == 0 {
		*p = relayComp{channel: p.channel, shard: p.shard, gen: p.gen + 1}
		return
	}
	p.state, p.buf, p.refreshing = compFetching, p.buf[:0], false
	if m != nil {
		p.buf = append(p.buf, *m)
	}
	h.startFetch(p, 0)
}

// startFetch fetches a part's snapshot off the hub's goroutine, after
// delay; the answer comes back on relay.fetched.
func (h *hub) startFetch(p *relayComp, delay time.Duration) {
	r := h.relay
	if p.state == compIdle {
		p.state = compFetching
	}
	p.gen++
	gen, shard, channel := p.gen, p.shard, p.channel
	go func() {
		if delay > 0 {
			t := time.NewTimer(delay)
			defer t.Stop()
			select {
			case <-t.C:
			case <-r.ctx.Done():
				return
			}
		}
		ctx, cancel := context.WithTimeout(r.ctx, relayFetchTimeout)
		frame, err := r.src.Snapshot(ctx, shard, channel)
		cancel()
		select {
		case r.fetched <- fetchResult{comp: p, gen: gen, frame: frame, err: err}:
		case <-r.ctx.Done():
		}
	}()
}

// relayFetched takes a part's snapshot: the part continues from it with
// the updates buffered meanwhile, and the channel's subscribers get a
// snapshot.
func (h *hub) relayFetched(f fetchResult) {
	p := f.comp
	if h.relay.comps[compKey{p.channel, p.shard}] != p || p.gen != f.gen || p.state == compIdle {
		return // forgotten or fetched again since
	}
	if f.err != nil {
		if errors.Is(f.err, ErrUnknownChannel) {
			if strings.HasPrefix(p.channel, "user:") && len(h.compsOf(p.channel)) > 1 {
				h.relayAbsent(p)
				return
			}
			h.relayUnknown(p)
			return
		}
		p.retry = min(max(2*p.retry, relayRetryMin), relayRetryMax)
		h.log.Warn("feed relay: snapshot failed; retrying", "channel", p.channel, "shard", p.shard, "in", p.retry, "err", f.err)
		h.startFetch(p, p.retry)
		h.relayServe(p.channel) // prices can answer without this shard
		return
	}
	var snap struct {
		Seq  uint64          `json:"seq"`
		Data json.RawMessage `json:"data"`
		TS   string          `json:"ts"`
	}
	if err := json.Unmarshal(f.frame, &snap); err != nil {
		p.retry = min(max(2*p.retry, relayRetryMin), relayRetryMax)
		h.log.Warn("feed relay: unreadable snapshot; retrying", "channel", p.channel, "shard", p.shard, "err", err)
		h.startFetch(p, p.retry)
		return
	}
	p.retry, p.absent = 0, false
	kind, _, _ := strings.Cut(p.channel, ":")
	if p.state == compSynced {
		// A user channel's newer snapshot, fetched while it kept going:
		// keep the updates that follow it.
		p.snap, p.snapSeq, p.refreshing = f.frame, snap.Seq, false
		p.tail = slices.DeleteFunc(p.tail, func(m FeedMessage) bool { return m.Seq <= snap.Seq })
		h.relayServe(p.channel)
		return
	}
	switch kind {
	case "prices":
		var rows []json.RawMessage
		if err := json.Unmarshal(snap.Data, &rows); err != nil {
			h.startFetch(p, relayRetryMax)
			return
		}
		p.rows, p.order = nil, nil
		if !p.setRows(rows) {
			h.startFetch(p, relayRetryMax)
			return
		}
	case "book":
		p.book = snap.Data
	case "trades":
		var ts []json.RawMessage
		if err := json.Unmarshal(snap.Data, &ts); err != nil {
			h.startFetch(p, relayRetryMax)
			return
		}
		slices.Reverse(ts) // newest first → newest last
		p.trades = ts
	case "user":
		p.snap, p.snapSeq, p.tail = f.frame, snap.Seq, nil
	}
	p.seq, p.ts, p.state = snap.Seq, snap.TS, compSynced
	buf := p.buf
	p.buf = nil
	for i := range buf {
		m := &buf[i]
		if m.Seq <= p.seq {
			continue
		}
		if m.Seq != p.seq+1 {
			// Still a gap: the snapshot is older than the stream's hole.
			p.state = compFetching
			p.buf = append(p.buf, buf[i:]...)
			h.startFetch(p, relayRetryMin)
			return
		}
		if _, ok := h.applyContent(p, m); !ok {
			h.resyncComp(p, nil)
			return
		}
	}
	h.relaySynced(p.channel)
}

// relaySynced sends every subscriber of key a snapshot once all its parts
// are synced: pending subscribers their first, the others a fresh one
// after the gap that caused the fetch.
func (h *hub) relaySynced(key string) {
	c := h.channels[key]
	if c == nil {
		return
	}
	for _, q := range h.compsOf(key) {
		if q.state != compSynced && !q.down() {
			return // the rest of the channel is still on its way
		}
	}
	h.sendSnapshots(key, c, copySet(c.subs))
}

// relayAbsent takes a user channel part whose shard does not know the
// account: no wallet there, seq 0. A message that came meanwhile (the
// account was just created there) fetches it again instead; when no shard
// knows the account the channel is unknown.
func (h *hub) relayAbsent(p *relayComp) {
	if len(p.buf) > 0 {
		h.startFetch(p, relayRetryMin)
		return
	}
	*p = relayComp{channel: p.channel, shard: p.shard, gen: p.gen, state: compSynced, absent: true, multi: true}
	parts := h.compsOf(p.channel)
	if !slices.ContainsFunc(parts, func(q *relayComp) bool { return !q.absent }) {
		h.relayForget(p.channel)
		h.relayUnknown(p)
		return
	}
	h.relaySynced(p.channel)
}

// userSnapshot builds the snapshot of a user channel of several shards:
// the account with balance, held and available summed over its wallets
// and "wallets": [{"shard", ...each shard's account}], at the sum of the
// parts' snapshot seqs, then each part's updates since its snapshot,
// numbered on from there (in shard order) and naming their shard.
func (h *hub) userSnapshot(key string, c *channel, parts []*relayComp) []*fws.PreparedMessage {
	var seq uint64
	var merged map[string]json.RawMessage
	sums := map[string]int64{"balance": 0, "held": 0, "available": 0}
	wallets := []json.RawMessage{}
	var ts string
	for _, p := range parts {
		if p.absent || p.snap == nil {
			continue
		}
		var snap struct {
			Data json.RawMessage `json:"data"`
			TS   string          `json:"ts"`
		}
		var acct map[string]json.RawMessage
		if json.Unmarshal(p.snap, &snap) != nil || json.Unmarshal(snap.Data, &acct) != nil {
			continue // never from a hub: relayFetched read it already
		}
		seq += p.snapSeq
		ts = max(ts, snap.TS)
		for f := range sums {
			var v string
			_ = json.Unmarshal(acct[f], &v)
			sums[f] += signedTicks(v)
		}
		if merged == nil {
			merged = acct
		}
		wallets = append(wallets, withShard(snap.Data, p.shard))
	}
	if merged == nil {
		merged = map[string]json.RawMessage{}
	}
	for f, v := range sums {
		merged[f] = mustJSON(engine.Money(v).String())
	}
	merged["wallets"] = mustJSON(wallets)
	frames := []*fws.PreparedMessage{prepare(mustJSON(feedMsg{Channel: userChannelName, Type: "snapshot", Seq: seq, Data: merged, TS: ts}))}
	for _, p := range parts {
		for _, m := range p.tail {
			var msg struct {
				Data json.RawMessage `json:"data"`
				TS   string          `json:"ts"`
			}
			if json.Unmarshal(m.Frame, &msg) != nil {
				continue
			}
			seq++
			frames = append(frames, prepare(mustJSON(feedMsg{Channel: userChannelName, Type: "update", Seq: seq, Data: withShard(msg.Data, p.shard), TS: msg.TS})))
		}
	}
	c.seq = seq
	return frames
}

// signedTicks reads an amount as engine.Money renders it ("-" for a
// negative one); 0 for anything else.
func signedTicks(s string) int64 {
	abs, neg := strings.CutPrefix(s, "-")
	v, err := engine.ParseTicks(abs)
	if err != nil {
		return 0
	}
	if neg {
		return -v
	}
	return v
}

// withShard is a JSON object with "shard" added first.
func withShard(obj json.RawMessage, shard string) json.RawMessage {
	if len(obj) < 2 || obj[0] != '{' {
		return obj // never from a hub: its events and accounts are objects
	}
	out := append([]byte(`{"shard":`), mustJSON(shard)...)
	if rest := bytes.TrimSpace(obj[1:]); len(rest) > 0 && rest[0] != '}' {
		out = append(out, ',')
	}
	return append(out, obj[1:]...)
}

// relayUnknown answers the subscribers of a channel no shard has with
// unknown_channel and forgets it.
func (h *hub) relayUnknown(p *relayComp) {
	delete(h.relay.comps, compKey{p.channel, p.shard})
	c := h.channels[p.channel]
	if c == nil {
		return
	}
	name := p.channel
	if strings.HasPrefix(name, "user:") {
		name = userChannelName
	}
	for cl := range c.subs {
		delete(cl.subs, p.channel)
		h.feedError(cl, CodeUnknownChannel, "unknown market or account in channel "+truncate(name, 80))
	}
	delete(h.channels, p.channel)
}

// relayForget drops the parts of a channel nobody watches any more.
func (h *hub) relayForget(key string) {
	for k := range h.relay.comps {
		if k.channel == key {
			delete(h.relay.comps, k)
		}
	}
}

// copySet copies a set (the hub sends to it while changing the original).
func copySet(m map[*wsClient]bool) map[*wsClient]bool {
	out := make(map[*wsClient]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}
