package api

import (
	"encoding/json"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"

	"github.com/gpux/gpux/engine"
)

// Feed limits.
const (
	wsReadLimit     = 64 << 10
	wsWriteTimeout  = 10 * time.Second
	hubQueue        = 4096 // event batches waiting for the hub
	hubRequests     = 256
	tradeSnapshotN  = 100 // trades in a trades:<market> snapshot
	closeGoingAway  = websocket.CloseGoingAway
	closeTryLater   = websocket.CloseTryAgainLater
	maxChannelsPer  = 256
	userChannelName = "user"
	refreshEvery    = 5 * time.Second
	// pricesEvery caps how often the prices channel is rendered and sent:
	// changes in between coalesce into one update (at most 4 a second).
	pricesEvery = 250 * time.Millisecond
	// maxFeedLag bounds how far the hub may fall behind the engine: a
	// batch older than this when the hub takes it means the hub cannot keep
	// up (too many subscribers for the machine), and every client is
	// dropped with 1013 to resubscribe, rather than lagging without bound.
	maxFeedLag = 5 * time.Second
)

// ---- wire messages ----

// feedMsg is a snapshot or update of a channel.
type feedMsg struct {
	Channel string `json:"channel"`
	Type    string `json:"type"`
	Seq     uint64 `json:"seq"`
	Data    any    `json:"data"`
	TS      string `json:"ts"`
}

// ctlMsg is every other server message (heartbeat, auth, error, ...).
type ctlMsg struct {
	Type     string   `json:"type"`
	TS       string   `json:"ts,omitempty"`
	OK       *bool    `json:"ok,omitempty"`
	Code     string   `json:"code,omitempty"`
	Detail   string   `json:"detail,omitempty"`
	Channels []string `json:"channels,omitempty"`
}

type clientOp struct {
	Op       string   `json:"op"`
	Channels []string `json:"channels"`
	Key      string   `json:"key"`
}

// userEventJSON is the data of a user channel update: one engine event
// concerning the account.
type userEventJSON struct {
	Event     string     `json:"event"`
	Market    string     `json:"market,omitempty"`
	BidID     string     `json:"bid_id,omitempty"`
	ListingID string     `json:"listing_id,omitempty"`
	Fill      *tradeJSON `json:"fill,omitempty"`
	Quantity  int64      `json:"quantity,omitempty"`
	Allocated *int64     `json:"allocated,omitempty"`
	Price     *string    `json:"price,omitempty"`
	Balance   *string    `json:"balance,omitempty"`
	Held      *string    `json:"held,omitempty"`
	Available *string    `json:"available,omitempty"`
	Reason    string     `json:"reason,omitempty"`
}

func renderUserEvent(ev *engine.Event) userEventJSON {
	u := userEventJSON{Event: ev.Kind.String(), Market: ev.Market, Reason: ev.Reason, Quantity: ev.Quantity}
	if !ev.Bid.IsZero() {
		u.BidID = ev.Bid.String()
	}
	if !ev.Listing.IsZero() {
		u.ListingID = ev.Listing.String()
	}
	switch ev.Kind {
	case engine.EvFilled:
		t := renderTrade(ev.Fill)
		u.Fill = &t
	case engine.EvSpotAllocated, engine.EvSpotPreempted, engine.EvSpotMoved, engine.EvSpotReleased:
		a := ev.Allocated
		u.Allocated = &a
	case engine.EvBalanceChanged:
		b, h, av := ev.Balance.String(), ev.Held.String(), (ev.Balance - ev.Held).String()
		u.Balance, u.Held, u.Available = &b, &h, &av
	}
	if ev.HasPrice {
		u.Price = optPrice(ev.Price, true)
	}
	return u
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("api: encode feed message: " + err.Error())
	}
	return b
}

// ---- clients ----

// wsClient is one websocket connection. The hub owns subs; send is its
// bounded queue, written by the hub (and the client's reader for answers)
// and drained by the client's writer; gone closes when the client must go.
type wsClient struct {
	send      chan []byte
	gone      chan struct{}
	goneOnce  sync.Once
	closeCode atomic.Int32
	subs      map[string]bool // hub goroutine only
}

func (cl *wsClient) drop(code int) {
	cl.goneOnce.Do(func() {
		cl.closeCode.Store(int32(code))
		close(cl.gone)
	})
}

// offer queues b without blocking; false when the queue is full.
func (cl *wsClient) offer(b []byte) bool {
	select {
	case <-cl.gone:
		return true // going anyway
	default:
	}
	select {
	case cl.send <- b:
		return true
	default:
		return false
	}
}

// ---- hub ----

type hubReqKind uint8

const (
	reqSubscribe hubReqKind = iota + 1
	reqUnsubscribe
	reqJoin
	reqLeave
)

type hubReq struct {
	kind     hubReqKind
	cl       *wsClient
	channels []string
	account  engine.ID // authenticated account; zero = none
}

// channel is one feed channel with its own sequence, shared by every
// subscriber.
type channel struct {
	seq  uint64
	subs map[*wsClient]bool
	last []byte // full-state channels (book, prices): the data last sent
}

// hub fans engine events out to websocket subscribers. Its state is owned
// by its goroutine; publish (the sequencer's hook) only copies events into
// a bounded queue, and a full queue makes the hub reset every subscriber
// rather than ever block the sequencer.
type hub struct {
	pricesDirty bool // the prices channel has changes not yet sent
	s           *Server
	in          chan []engine.Event
	reqs        chan hubReq
	closing     chan struct{}
	done        chan struct{}
	overflow    atomic.Bool
	nclients    atomic.Int64
	once        sync.Once

	clients  map[*wsClient]bool
	channels map[string]*channel
	trades   map[string][]tradeJSON // newest last, per seeded market
	seeded   map[string]uint64      // market → engine seq its ring was seeded at
}

func newHub(s *Server) *hub {
	return &hub{
		s: s, in: make(chan []engine.Event, hubQueue), reqs: make(chan hubReq, hubRequests),
		closing: make(chan struct{}), done: make(chan struct{}),
		clients: map[*wsClient]bool{}, channels: map[string]*channel{},
		trades: map[string][]tradeJSON{}, seeded: map[string]uint64{},
	}
}

func (h *hub) clientCount() int64 { return h.nclients.Load() }

// publish copies a batch's events for the hub; it never blocks.
func (h *hub) publish(events []engine.Event) {
	cp := make([]engine.Event, 0, len(events))
	for _, ev := range events {
		if ev.Kind != engine.EvRejected {
			cp = append(cp, ev)
		}
	}
	if len(cp) == 0 {
		return
	}
	select {
	case h.in <- cp:
	default:
		h.overflow.Store(true)
	}
}

func (h *hub) close() {
	h.once.Do(func() { close(h.closing) })
	<-h.done
}

// request hands r to the hub; false once the hub has stopped.
func (h *hub) request(r hubReq) bool {
	select {
	case h.reqs <- r:
		return true
	case <-h.done:
		return false
	}
}

func (h *hub) run() {
	defer close(h.done)
	// Full-state channels are re-rendered now and then as well: some of
	// their content moves with time alone (the hour under way in a book,
	// the 24 h VWAP), with no event to say so. Unchanged state sends
	// nothing.
	refresh := time.NewTicker(refreshEvery)
	defer refresh.Stop()
	prices := time.NewTicker(pricesEvery)
	defer prices.Stop()
	for {
		select {
		case <-prices.C:
			if h.pricesDirty {
				h.pricesDirty = false
				if c := h.channels["prices"]; c != nil && len(c.subs) > 0 {
					var ts engine.Time
					h.s.read(func(e *engine.Engine) { ts = e.Now() })
					h.updateState("prices", h.s.renderPrices(), ts)
				}
			}
		case <-refresh.C:
			d := newDirty()
			h.s.read(func(e *engine.Engine) { d.ts = e.Now() })
			for name, c := range h.channels {
				if m, ok := strings.CutPrefix(name, "book:"); ok && len(c.subs) > 0 {
					d.books[m] = d.ts
				}
			}
			d.prices = true
			h.flush(d)
		case <-h.closing:
			for cl := range h.clients {
				cl.drop(closeGoingAway)
			}
			return
		case evs := <-h.in:
			if lag := h.s.cfg.Now().Sub(time.UnixMilli(int64(evs[0].Time))); lag > maxFeedLag && len(h.clients) > 0 {
				h.s.log.Warn("feed hub is behind the engine", "lag", lag)
				h.overflow.Store(true)
			}
			dirty := newDirty()
			h.apply(evs, dirty)
		drain:
			for i := 0; i < 256; i++ {
				select {
				case evs := <-h.in:
					h.apply(evs, dirty)
				default:
					break drain
				}
			}
			h.flush(dirty)
			if b := h.s.board(); b != nil {
				ups := b.TakeCandles()
				if h.s.candles != nil {
					h.s.candles.offer(ups)
				}
			}
		case r := <-h.reqs:
			h.handle(r)
		}
		if h.overflow.Swap(false) {
			h.reset()
		}
	}
}

// reset drops every client after the hub lost events: their channels
// would have gaps the seq could not show for full-state channels.
func (h *hub) reset() {
	h.s.metrics.feedLost.Inc()
	h.s.log.Warn("feed hub fell behind the engine; disconnecting every feed client")
	for cl := range h.clients {
		cl.drop(closeTryLater)
		h.remove(cl)
	}
	for len(h.in) > 0 {
		<-h.in
	}
	h.trades, h.seeded = map[string][]tradeJSON{}, map[string]uint64{}
	for _, ch := range h.channels {
		ch.last = nil
	}
	// The price board is fed before the hub's queue, so it missed nothing.
}

type dirtySet struct {
	books  map[string]engine.Time
	prices bool
	ts     engine.Time
}

func newDirty() *dirtySet { return &dirtySet{books: map[string]engine.Time{}} }

func (h *hub) ch(name string) *channel {
	c := h.channels[name]
	if c == nil {
		c = &channel{subs: map[*wsClient]bool{}}
		h.channels[name] = c
	}
	return c
}

// broadcast sends an update to every subscriber of name (when there is
// one), advancing the channel's seq.
func (h *hub) broadcast(name, wireName string, data any, ts engine.Time) {
	c := h.channels[name]
	if c == nil || len(c.subs) == 0 {
		return
	}
	c.seq++
	b := mustJSON(feedMsg{Channel: wireName, Type: "update", Seq: c.seq, Data: data, TS: rfc3339ms(ts)})
	for cl := range c.subs {
		h.deliver(cl, b)
	}
}

func (h *hub) deliver(cl *wsClient, b []byte) {
	if cl.offer(b) {
		h.s.metrics.wsMessages.Inc()
		return
	}
	h.s.metrics.wsDropped.Inc()
	cl.drop(closeTryLater)
	h.remove(cl)
}

func (h *hub) remove(cl *wsClient) {
	for name := range cl.subs {
		h.leave(name, cl)
	}
	cl.subs = map[string]bool{}
	if h.clients[cl] {
		delete(h.clients, cl)
		h.nclients.Add(-1)
		h.s.metrics.wsClients.Dec()
	}
}

// leave takes cl off a channel; a user channel nobody watches is
// forgotten (there is one per account), market channels are kept.
func (h *hub) leave(name string, cl *wsClient) {
	c := h.channels[name]
	if c == nil {
		return
	}
	delete(c.subs, cl)
	if len(c.subs) == 0 && strings.HasPrefix(name, "user:") {
		delete(h.channels, name)
	}
}

func (h *hub) apply(evs []engine.Event, d *dirtySet) {
	if h.s.candles != nil {
		h.s.candles.offerEvents(evs)
	}
	for i := range evs {
		ev := &evs[i]
		d.ts = max(d.ts, ev.Time)
		if ev.Market != "" {
			// Any change of a market can move its row of prices (best
			// ask, forward curve) as well as its book.
			d.books[ev.Market] = max(d.books[ev.Market], ev.Time)
			d.prices = true
		}
		switch ev.Kind {
		case engine.EvFilled:
			d.prices = true
			if at, ok := h.seeded[ev.Market]; ok && ev.Seq > at {
				t := renderTrade(ev.Fill)
				ring := append(h.trades[ev.Market], t)
				if len(ring) > 2*tradeSnapshotN {
					ring = append(ring[:0:0], ring[len(ring)-tradeSnapshotN:]...)
				}
				h.trades[ev.Market] = ring
				h.broadcast("trades:"+ev.Market, "trades:"+ev.Market, t, ev.Time)
			}
		case engine.EvSpotPriceChanged, engine.EvReferenceRatesSet:
			d.prices = true
		}
		if ev.Kind == engine.EvLedger || ev.Kind == engine.EvBidClosed || ev.Kind == engine.EvListingClosed {
			continue // read-side events (statements, history), not part of the user feed's contract
		}
		var sent engine.ID
		for _, a := range ev.Accounts {
			if a.IsZero() || a == sent {
				continue
			}
			sent = a
			if c := h.channels["user:"+a.String()]; c != nil && len(c.subs) > 0 {
				h.broadcast("user:"+a.String(), userChannelName, renderUserEvent(ev), ev.Time)
			}
		}
	}
}

// flush renders the full-state channels the events touched and sends
// those that changed.
func (h *hub) flush(d *dirtySet) {
	for m, ts := range d.books {
		name := "book:" + m
		if c := h.channels[name]; c == nil || len(c.subs) == 0 {
			continue
		}
		var b engine.BookView
		var ok bool
		h.s.read(func(e *engine.Engine) { b, ok = e.Book(m) })
		if ok {
			h.updateState(name, renderBook(b), ts)
		}
	}
	if d.prices {
		h.pricesDirty = true // sent by the prices ticker, coalesced
	}
}

// updateState sends data as an update of a full-state channel when it
// differs from what the channel last showed.
func (h *hub) updateState(name string, data any, ts engine.Time) {
	c := h.ch(name)
	raw := mustJSON(data)
	if c.last != nil && string(c.last) == string(raw) {
		return
	}
	c.last = raw
	h.broadcast(name, name, json.RawMessage(raw), ts)
}

func (h *hub) handle(r hubReq) {
	cl := r.cl
	switch r.kind {
	case reqJoin:
		if !h.clients[cl] {
			h.clients[cl] = true
			h.nclients.Add(1)
			h.s.metrics.wsClients.Inc()
		}
	case reqLeave:
		h.remove(cl)
	case reqSubscribe:
		if !h.clients[cl] {
			return
		}
		for _, name := range r.channels {
			h.subscribe(cl, name, r.account)
		}
	case reqUnsubscribe:
		var done []string
		for _, name := range r.channels {
			key := name
			if name == userChannelName && !r.account.IsZero() {
				key = "user:" + r.account.String()
			}
			if cl.subs[key] {
				h.leave(key, cl)
				delete(cl.subs, key)
				done = append(done, name)
			}
		}
		h.deliver(cl, mustJSON(ctlMsg{Type: "unsubscribed", Channels: done}))
	}
}

func (h *hub) feedError(cl *wsClient, code, detail string) {
	h.deliver(cl, mustJSON(ctlMsg{Type: "error", Code: code, Detail: detail}))
}

// subscribe adds cl to a channel and sends it a snapshot carrying the
// channel's current seq; updates then follow with seq+1, ...
func (h *hub) subscribe(cl *wsClient, name string, account engine.ID) {
	if len(cl.subs) >= maxChannelsPer {
		h.feedError(cl, "too_many_channels", "at most 256 channels per connection")
		return
	}
	kind, market, _ := strings.Cut(name, ":")
	var (
		key  = name
		data any
		now  engine.Time
		ok   = true
	)
	switch {
	case name == "prices":
		h.s.read(func(e *engine.Engine) { now = e.Now() })
		data = h.freshState(name, h.s.renderPrices(), now)
	case kind == "book" && market != "":
		var b engine.BookView
		h.s.read(func(e *engine.Engine) { b, ok = e.Book(market); now = e.Now() })
		if ok {
			data = h.freshState(name, renderBook(b), now)
		}
	case kind == "trades" && market != "":
		h.s.read(func(e *engine.Engine) {
			if ok = e.HasMarket(market); !ok {
				return
			}
			now = e.Now()
			if _, seeded := h.seeded[market]; !seeded {
				fs := e.Trades(market, tradeSnapshotN)
				ring := make([]tradeJSON, len(fs))
				for i, f := range fs {
					ring[len(fs)-1-i] = renderTrade(f)
				}
				h.trades[market], h.seeded[market] = ring, e.Seq()
			}
		})
		if ok {
			ring := h.trades[market]
			snap := make([]tradeJSON, 0, len(ring))
			for i := len(ring) - 1; i >= 0 && len(snap) < tradeSnapshotN; i-- {
				snap = append(snap, ring[i])
			}
			data = snap
		}
	case name == userChannelName:
		if account.IsZero() {
			h.feedError(cl, CodeUnauthorized, "send {\"op\":\"auth\",\"key\":...} with an account's key before subscribing to user")
			return
		}
		key = "user:" + account.String()
		var a engine.AccountView
		h.s.read(func(e *engine.Engine) { a, ok = e.Account(account); now = e.Now() })
		if ok {
			data = renderAccount(a)
		}
	default:
		h.feedError(cl, "unknown_channel", "unknown channel "+truncate(name, 80)+": use prices, book:<market>, trades:<market> or user")
		return
	}
	if !ok {
		h.feedError(cl, "unknown_channel", "unknown market in channel "+truncate(name, 80))
		return
	}
	c := h.ch(key)
	c.subs[cl] = true
	cl.subs[key] = true
	h.deliver(cl, mustJSON(feedMsg{Channel: name, Type: "snapshot", Seq: c.seq, Data: data, TS: rfc3339ms(now)}))
}

// freshState renders a full-state channel for a new subscriber. When the
// state moved on since the channel's last message, existing subscribers get
// it as an update first, so every subscriber sees the same state at the
// same seq.
func (h *hub) freshState(name string, data any, now engine.Time) json.RawMessage {
	raw := mustJSON(data)
	c := h.ch(name)
	if c.last == nil || string(c.last) != string(raw) {
		c.last = raw
		h.broadcast(name, name, json.RawMessage(raw), now)
	}
	return raw
}

// ---- connection handling ----

// wsUpgrade admits websocket upgrades from allowed origins.
func (s *Server) wsUpgrade(c *fiber.Ctx) error {
	if !websocket.IsWebSocketUpgrade(c) {
		return problem(CodeUpgradeRequired, "", "GET /v1/ws expects a websocket upgrade")
	}
	if origin := c.Get(fiber.HeaderOrigin); origin != "" && !s.originAllowed(origin, c.Hostname()) {
		return problemf(CodeForbiddenOrigin, "Origin", "origin %q may not open the feed", truncate(origin, 100))
	}
	return c.Next()
}

// originAllowed admits the same origin as the request, localhost pages, and
// Config.AllowedOrigins ("*" for any).
func (s *Server) originAllowed(origin, host string) bool {
	if slices.Contains(s.cfg.AllowedOrigins, "*") || slices.Contains(s.cfg.AllowedOrigins, origin) {
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

func (s *Server) wsHandler() fiber.Handler {
	return websocket.New(s.serveFeed, websocket.Config{Origins: []string{"*"}, ReadBufferSize: 4096, WriteBufferSize: 4096})
}

// serveFeed runs one websocket: a reader goroutine takes ops, this
// goroutine writes queued messages and heartbeats until the client goes.
func (s *Server) serveFeed(conn *websocket.Conn) {
	cl := &wsClient{send: make(chan []byte, s.cfg.SendQueue), gone: make(chan struct{}), subs: map[string]bool{}}
	if !s.hub.request(hubReq{kind: reqJoin, cl: cl}) {
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(closeGoingAway, "shutting down"), time.Now().Add(time.Second))
		return
	}
	defer s.hub.request(hubReq{kind: reqLeave, cl: cl})
	conn.SetReadLimit(wsReadLimit)

	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		s.readFeed(conn, cl)
	}()
	defer func() {
		_ = conn.Close() // ends the reader if it still runs
		<-readerDone     // the contrib package recycles conn once we return
	}()

	heartbeat := time.NewTicker(s.cfg.Heartbeat)
	defer heartbeat.Stop()
	write := func(b []byte) bool {
		_ = conn.SetWriteDeadline(time.Now().Add(wsWriteTimeout))
		return conn.WriteMessage(websocket.TextMessage, b) == nil
	}
	for {
		select {
		case b := <-cl.send:
			if !write(b) {
				return
			}
		case now := <-heartbeat.C:
			if !write(mustJSON(ctlMsg{Type: "heartbeat", TS: now.UTC().Format("2006-01-02T15:04:05.000Z07:00")})) {
				return
			}
		case <-cl.gone:
			code := int(cl.closeCode.Load())
			reason := "going away"
			if code == closeTryLater {
				reason = "too slow: send queue full; reconnect and resubscribe"
			}
			_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
			return
		case <-readerDone:
			return
		}
	}
}

// readFeed handles client ops until the connection fails.
func (s *Server) readFeed(conn *websocket.Conn, cl *wsClient) {
	var account engine.ID
	reply := func(m ctlMsg) { cl.offer(mustJSON(m)) }
	for {
		_, b, err := conn.ReadMessage()
		if err != nil {
			cl.drop(websocket.CloseNormalClosure)
			return
		}
		var op clientOp
		if err := json.Unmarshal(b, &op); err != nil {
			reply(ctlMsg{Type: "error", Code: CodeMalformedJSON, Detail: "a message must be a JSON object with an op"})
			continue
		}
		switch op.Op {
		case "auth":
			w := s.authenticate(op.Key)
			if !w.valid || w.admin {
				no := false
				reply(ctlMsg{Type: "auth", OK: &no, Code: CodeUnauthorized, Detail: "unknown API key"})
				continue
			}
			account = w.account.ID
			yes := true
			reply(ctlMsg{Type: "auth", OK: &yes})
		case "subscribe", "unsubscribe":
			if len(op.Channels) == 0 {
				reply(ctlMsg{Type: "error", Code: CodeMissingField, Detail: "channels is required"})
				continue
			}
			kind := reqSubscribe
			if op.Op == "unsubscribe" {
				kind = reqUnsubscribe
			}
			if !s.hub.request(hubReq{kind: kind, cl: cl, channels: op.Channels, account: account}) {
				return
			}
		default:
			reply(ctlMsg{Type: "error", Code: "unknown_op", Detail: "op must be subscribe, unsubscribe or auth"})
		}
	}
}
