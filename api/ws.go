package api

import (
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	fws "github.com/fasthttp/websocket"
	"github.com/gofiber/contrib/websocket"

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
	PreemptAt string     `json:"preempt_at,omitempty"` // spot_preempting: when the GPUs leave

	// A ledger event carries one statement line, with the fields of
	// GET /v1/account/statement's items.
	Kind         string  `json:"kind,omitempty"`
	Amount       string  `json:"amount,omitempty"`
	BalanceAfter string  `json:"balance_after,omitempty"`
	Ref          *string `json:"ref,omitempty"` // always sent with a line, "" when it has none (as in the statement)
	At           string  `json:"at,omitempty"`
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
		t := renderTrade(*ev.Fill)
		u.Fill = &t
	case engine.EvSpotAllocated, engine.EvSpotPreempted, engine.EvSpotMoved, engine.EvSpotReleased, engine.EvSpotPreemptionWithdrawn:
		a := ev.Allocated
		u.Allocated = &a
	case engine.EvBalanceChanged:
		b, h, av := ev.Balance.String(), ev.Held.String(), (ev.Balance - ev.Held).String()
		u.Balance, u.Held, u.Available = &b, &h, &av
	case engine.EvSpotPreempting:
		a := ev.Allocated
		u.Allocated = &a
		if ev.PreemptAt != 0 {
			u.PreemptAt = rfc3339ms(ev.PreemptAt)
		}
	case engine.EvLedger:
		ref := ""
		if !ev.Ref.IsZero() {
			ref = ev.Ref.String()
		}
		u.Kind, u.Amount, u.BalanceAfter, u.Ref, u.At = ev.Ledger.String(), ev.Amount.String(), ev.Balance.String(), &ref, rfc3339ms(ev.Time)
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

// prepare frames a text message once, for any number of connections.
func prepare(b []byte) *fws.PreparedMessage {
	pm, err := fws.NewPreparedMessage(fws.TextMessage, b)
	if err != nil {
		panic("api: prepare feed message: " + err.Error()) // only compression can fail, and it is off
	}
	return pm
}

// pricesUpdate is the data of a prices update: the rows that changed.
type pricesUpdate struct {
	Markets []json.RawMessage `json:"markets"`
}

// pricesState brings the prices channel up to date and returns its full
// state (a snapshot's data). Existing subscribers get the markets whose
// rows changed since the last update as {"markets": [...]}; nothing when
// none did. Rendering is skipped when the state was rendered at the same
// point (engine seq and refresh generation) already.
func (h *hub) pricesState(ts engine.Time, at renderPoint) json.RawMessage {
	const name = "prices"
	c := h.ch(name)
	if c.last != nil && c.lastAt == at {
		h.metrics.wsSnapshotsReused.Inc()
		return c.last
	}
	h.metrics.wsSnapshotsRendered.Inc()
	rows := h.s.renderPrices()
	next := make(map[string][]byte, len(rows))
	var changed []json.RawMessage
	full := make([]byte, 0, 64<<10)
	full = append(full, '[')
	for i, r := range rows {
		raw := mustJSON(r)
		next[r.Market] = raw
		if old, ok := h.priceRows[r.Market]; !ok || string(old) != string(raw) {
			changed = append(changed, raw)
		}
		if i > 0 {
			full = append(full, ',')
		}
		full = append(full, raw...)
	}
	full = append(full, ']')
	c.lastAt = at
	if c.last != nil && len(changed) == 0 && len(next) == len(h.priceRows) {
		return c.last
	}
	first := c.last == nil
	c.last, h.priceRows = full, next
	if !first {
		// A market that left (none do today) would need a removal; the
		// rows are keyed by market and the catalogue is fixed.
		h.broadcast(name, name, pricesUpdate{Markets: changed}, ts)
	}
	return c.last
}

// ---- clients ----

// wsClient is one websocket connection. The hub owns subs; send is its
// bounded queue, written by the hub (and the client's reader for answers)
// and drained by the client's writer; gone closes when the client must go.
type wsClient struct {
	send     chan *fws.PreparedMessage
	gone     chan struct{}
	goneOnce sync.Once
	// closeCode and closeReason are set once, before gone closes; read
	// them only after <-gone.
	closeCode   int
	closeReason string
	subs        map[string]bool // hub goroutine only
}

// drop makes the client go with a close frame of code and reason; the
// first call wins.
func (cl *wsClient) drop(code int, reason string) {
	cl.goneOnce.Do(func() {
		cl.closeCode, cl.closeReason = code, reason
		close(cl.gone)
	})
}

// offer queues a message without blocking; false when the queue is full.
func (cl *wsClient) offer(b *fws.PreparedMessage) bool {
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
	reqSnapshot // a channel's snapshot for a relay (feedsnapshot.go)
)

type hubReq struct {
	kind     hubReqKind
	cl       *wsClient
	channels []string
	account  engine.ID // authenticated account; zero = none
	// reply takes a reqSnapshot's answer (the hub never blocks on it: it
	// has room for one).
	reply chan snapshotReply
}

// channel is one feed channel with its own sequence, shared by every
// subscriber.
type channel struct {
	seq  uint64
	subs map[*wsClient]bool
	// pending (relay mode) are subscribers still waiting for their
	// snapshot: updates skip them until it is sent.
	pending map[*wsClient]bool
	last    []byte // full-state channels (book, prices): the data last sent
	// lastAt says which state last shows: the engine seq and the hub's
	// refresh generation it was rendered at. A snapshot asked for at the
	// same point reuses last instead of rendering again.
	lastAt renderPoint
}

// renderPoint is when a full-state channel was rendered: nothing but
// commands (engine seq) and time (refresh generation) move its content.
type renderPoint struct {
	seq, gen uint64
}

// hub fans feed messages out to websocket subscribers. Its state is owned
// by its goroutine. On an engine node (s set) the messages come from the
// engine: publish (the sequencer's hook) only copies events into a bounded
// queue, and a full queue makes the hub reset every subscriber rather than
// ever block the sequencer. On an API node (relay set) they come from the
// engine nodes' hubs through package relay (hubrelay.go); the protocol,
// limits and delivery are the same code.
type hub struct {
	pricesDirty bool        // the prices channel has changes not yet sent
	gen         uint64      // refresh generation: counts refresh ticks
	s           *Server     // engine mode: the server whose engine feeds the hub
	relay       *relayState // relay mode: channels follow engine nodes' hubs
	metrics     *metrics
	log         *slog.Logger
	now         func() time.Time
	// sink, when set (engine mode), gets every message the hub sends on a
	// channel, and every channel is then kept up to date whether or not it
	// has subscribers here: API nodes relay them (FeedSink).
	sink FeedSink
	// seqBase is the seq every channel starts at: 0 without a sink; with
	// one, the time in ms × 256 when the hub started or its node became
	// the shard's leader (leadCheck), so a new leader continues every
	// channel past where the last one stopped and relayed clients see a
	// gap, never a seq that goes back (which the SDK would drop as stale).
	// It holds while a channel averages under 256 messages a ms.
	seqBase  uint64
	leading  bool // sink mode: the node led its shard at the last check
	in       chan []engine.Event
	reqs     chan hubReq
	closing  chan struct{}
	done     chan struct{}
	overflow atomic.Bool
	nclients atomic.Int64
	once     sync.Once

	// priceRows is each market's row of the prices channel as last sent
	// (encoded): an update carries only the rows that differ.
	priceRows map[string][]byte

	clients  map[*wsClient]bool
	channels map[string]*channel
	trades   map[string][]tradeJSON // newest last, per seeded market
	seeded   map[string]uint64      // market → engine seq its ring was seeded at
}

func newHub(s *Server) *hub {
	h := &hub{
		s: s, metrics: s.metrics, log: s.log, now: s.cfg.Now, sink: s.cfg.FeedSink,
		in: make(chan []engine.Event, hubQueue), reqs: make(chan hubReq, hubRequests),
		closing: make(chan struct{}), done: make(chan struct{}),
		clients: map[*wsClient]bool{}, channels: map[string]*channel{},
		trades: map[string][]tradeJSON{}, seeded: map[string]uint64{},
	}
	if h.sink != nil {
		h.seqBase = uint64(h.now().UnixMilli()) << 8
	}
	return h
}

// watched reports whether a channel's messages go anywhere: to its
// subscribers, or to the sink, which takes every channel.
func (h *hub) watched(c *channel) bool {
	return h.sink != nil || (c != nil && len(c.subs) > 0)
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
	if h.relay != nil {
		h.runRelay()
		return
	}
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
				if h.watched(h.channels["prices"]) {
					var ts engine.Time
					var at renderPoint
					h.s.read(func(e *engine.Engine) { ts, at = e.Now(), renderPoint{e.Seq(), h.gen} })
					h.pricesState(ts, at)
				}
			}
		case <-refresh.C:
			h.gen++
			d := newDirty()
			h.s.read(func(e *engine.Engine) {
				d.ts = e.Now()
				if h.sink != nil {
					for _, m := range e.Markets() {
						d.books[m.ID] = d.ts
					}
				}
			})
			for name, c := range h.channels {
				if m, ok := strings.CutPrefix(name, "book:"); ok && len(c.subs) > 0 {
					d.books[m] = d.ts
				}
			}
			d.prices = true
			h.flush(d)
		case <-h.closing:
			for cl := range h.clients {
				cl.drop(closeGoingAway, reasonShutdown)
			}
			return
		case evs := <-h.in:
			h.leadCheck()
			if lag := h.now().Sub(time.UnixMilli(int64(evs[0].Time))); lag > maxFeedLag && (len(h.clients) > 0 || h.sink != nil) {
				h.log.Warn("feed hub is behind the engine", "lag", lag)
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
		case r := <-h.reqs:
			h.handle(r)
		}
		if h.overflow.Swap(false) {
			h.reset()
		}
	}
}

// leadCheck re-bases every channel when the node has just become its
// shard's leader (sink mode): as a standby its hub counted from its own
// start, which may be before the old leader's, so its seqs could be
// behind those relays last saw. Its own subscribers see the jump as a gap.
func (h *hub) leadCheck() {
	if h.sink == nil {
		return
	}
	lead := h.s.cfg.Sequencer.Status().Leader
	if lead && !h.leading {
		base := uint64(h.now().UnixMilli()) << 8
		h.seqBase = max(h.seqBase, base)
		for _, c := range h.channels {
			c.seq = max(c.seq+1, base)
		}
	}
	h.leading = lead
}

// reset drops every client after the hub lost events: their channels
// would have gaps the seq could not show for full-state channels.
func (h *hub) reset() {
	h.metrics.feedLost.Inc()
	h.log.Warn("feed hub fell behind the engine; disconnecting every feed client")
	for cl := range h.clients {
		cl.drop(closeTryLater, reasonFeedReset)
		h.remove(cl)
	}
	for len(h.in) > 0 {
		<-h.in
	}
	h.trades, h.seeded = map[string][]tradeJSON{}, map[string]uint64{}
	h.priceRows = nil
	for _, ch := range h.channels {
		ch.last = nil
		if h.sink != nil {
			// Relays hold these channels at their seq: skip one, so that
			// a seq never names two states and the next message shows a
			// gap even to a relay that missed the sink's notice.
			ch.seq++
		}
	}
	if h.sink != nil {
		h.sink.Lost()
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
		c = &channel{subs: map[*wsClient]bool{}, seq: h.seqBase}
		h.channels[name] = c
	}
	return c
}

// broadcast sends an update to every subscriber of name and to the sink
// (when there is one), advancing the channel's seq.
func (h *hub) broadcast(name, wireName string, data any, ts engine.Time) {
	c := h.channels[name]
	if !h.watched(c) {
		return
	}
	c = h.ch(name)
	c.seq++
	// Encoded and framed once, shared by every subscriber: a subscriber's
	// writer copies the prepared frame and does no JSON work.
	raw := mustJSON(feedMsg{Channel: wireName, Type: "update", Seq: c.seq, Data: data, TS: rfc3339ms(ts)})
	if h.sink != nil {
		h.sink.Publish(FeedMessage{Channel: name, Seq: c.seq, Frame: raw})
	}
	if len(c.subs) == 0 {
		return
	}
	b := prepare(raw)
	for cl := range c.subs {
		h.deliver(cl, b)
	}
}

func (h *hub) deliver(cl *wsClient, b *fws.PreparedMessage) {
	if cl.offer(b) {
		h.metrics.wsMessages.Inc()
		return
	}
	h.metrics.wsDropped.Inc()
	cl.drop(closeTryLater, reasonSlowConsumer)
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
		h.metrics.wsClients.Dec()
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
	if c.pending != nil {
		delete(c.pending, cl)
	}
	// With a sink, a user channel keeps its seq for the relays.
	if len(c.subs) == 0 && strings.HasPrefix(name, "user:") && h.sink == nil {
		delete(h.channels, name)
		if h.relay != nil {
			h.relayForget(name)
		}
	}
}

func (h *hub) apply(evs []engine.Event, d *dirtySet) {
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
			at, ok := h.seeded[ev.Market]
			if !ok && h.sink != nil {
				// Relays follow every market's trades: seed the ring now;
				// fills it already holds are not sent again.
				h.s.read(func(e *engine.Engine) { at, ok = h.seed(e, ev.Market), true })
			}
			if ok && ev.Seq > at {
				t := renderTrade(*ev.Fill)
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
		if ev.Kind == engine.EvBidClosed || ev.Kind == engine.EvListingClosed {
			continue // read-side events (history), not part of the user feed's contract
		}
		var sent engine.ID
		for _, a := range ev.Accounts {
			if a.IsZero() || a == sent {
				continue
			}
			sent = a
			if h.watched(h.channels["user:"+a.String()]) {
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
		if !h.watched(h.channels[name]) {
			continue
		}
		var b engine.BookView
		var ok bool
		var at renderPoint
		h.s.read(func(e *engine.Engine) { b, ok = e.Book(m); at = renderPoint{e.Seq(), h.gen} })
		if ok {
			h.updateState(name, renderBook(b), ts, at)
		}
	}
	if d.prices {
		h.pricesDirty = true // sent by the prices ticker, coalesced
	}
}

// updateState sends data as an update of a full-state channel when it
// differs from what the channel last showed.
func (h *hub) updateState(name string, data any, ts engine.Time, at renderPoint) {
	c := h.ch(name)
	raw := mustJSON(data)
	if c.last != nil && string(c.last) == string(raw) {
		c.lastAt = at
		return
	}
	c.last, c.lastAt = raw, at
	h.broadcast(name, name, json.RawMessage(raw), ts)
}

func (h *hub) handle(r hubReq) {
	cl := r.cl
	switch r.kind {
	case reqJoin:
		if !h.clients[cl] {
			h.clients[cl] = true
			h.nclients.Add(1)
			h.metrics.wsClients.Inc()
		}
	case reqLeave:
		h.remove(cl)
	case reqSnapshot:
		h.answerSnapshot(r)
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
		h.deliver(cl, prepare(mustJSON(ctlMsg{Type: "unsubscribed", Channels: done})))
	}
}

func (h *hub) feedError(cl *wsClient, code, detail string) {
	h.metrics.wsRejected.WithLabelValues(code).Inc()
	h.deliver(cl, prepare(mustJSON(ctlMsg{Type: "error", Code: code, Detail: detail})))
}

// subscribe adds cl to a channel and sends it a snapshot carrying the
// channel's current seq; updates then follow with seq+1, ...
func (h *hub) subscribe(cl *wsClient, name string, account engine.ID) {
	held := name
	if name == userChannelName && !account.IsZero() {
		held = "user:" + account.String()
	}
	if len(cl.subs) >= maxChannelsPer && !cl.subs[held] {
		h.feedError(cl, CodeTooManyChannels, "at most "+strconv.Itoa(maxChannelsPer)+" channels per connection")
		return
	}
	if h.relay != nil {
		h.relaySubscribe(cl, name, held, account)
		return
	}
	key, data, now, code, detail := h.snapshot(name, account)
	if code != "" {
		h.feedError(cl, code, detail)
		return
	}
	c := h.ch(key)
	c.subs[cl] = true
	cl.subs[key] = true
	h.deliver(cl, prepare(mustJSON(feedMsg{Channel: name, Type: "snapshot", Seq: c.seq, Data: data, TS: rfc3339ms(now)})))
}

// snapshot renders channel name (of account, for user) as it is now, for a
// new subscriber: the hub key it is held under (user:<account> for user),
// its data and the engine time. code (unknown_channel, unauthorized) and
// detail say why there is none. Full-state channels whose state moved on
// send the change to their subscribers first (freshState), so the
// channel's seq after snapshot names exactly this state.
func (h *hub) snapshot(name string, account engine.ID) (key string, data any, now engine.Time, code, detail string) {
	kind, market, _ := strings.Cut(name, ":")
	key = name
	ok := true
	switch {
	case name == "prices":
		var at renderPoint
		h.s.read(func(e *engine.Engine) { now, at = e.Now(), renderPoint{e.Seq(), h.gen} })
		data = h.pricesState(now, at)
	case kind == "book" && market != "":
		var b engine.BookView
		var at renderPoint
		h.s.read(func(e *engine.Engine) {
			now, at = e.Now(), renderPoint{e.Seq(), h.gen}
			if c := h.channels[name]; c != nil && c.last != nil && c.lastAt == at {
				return // freshState reuses the last rendering
			}
			b, ok = e.Book(market)
		})
		if ok {
			data = h.freshState(name, now, at, func() any { return renderBook(b) })
		}
	case kind == "trades" && market != "":
		h.s.read(func(e *engine.Engine) {
			if ok = e.HasMarket(market); !ok {
				return
			}
			now = e.Now()
			if _, seeded := h.seeded[market]; !seeded {
				h.seed(e, market)
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
			return "", nil, 0, CodeUnauthorized, "send {\"op\":\"auth\",\"key\":...} with an account's key before subscribing to user"
		}
		key = "user:" + account.String()
		var a engine.AccountView
		h.s.read(func(e *engine.Engine) { a, ok = e.Account(account); now = e.Now() })
		if ok {
			data = renderAccount(a)
		}
	default:
		return "", nil, 0, CodeUnknownChannel, "unknown channel " + truncate(name, 80) + ": use prices, book:<market>, trades:<market> or user"
	}
	if !ok {
		return "", nil, 0, CodeUnknownChannel, "unknown market in channel " + truncate(name, 80)
	}
	return key, data, now, "", ""
}

// seed fills market's trade ring from the engine and returns the engine
// seq it shows: fills of later commands are appended as they come.
func (h *hub) seed(e *engine.Engine, market string) uint64 {
	fs := e.Trades(market, tradeSnapshotN)
	ring := make([]tradeJSON, len(fs))
	for i, f := range fs {
		ring[len(fs)-1-i] = renderTrade(f)
	}
	h.trades[market], h.seeded[market] = ring, e.Seq()
	return e.Seq()
}

// freshState renders a full-state channel for a new subscriber. When the
// state moved on since the channel's last message, existing subscribers get
// it as an update first, so every subscriber sees the same state at the
// same seq.
//
// render is called only when the channel's last rendering is older than
// at: a burst of subscribers between two changes costs one rendering.
func (h *hub) freshState(name string, now engine.Time, at renderPoint, render func() any) json.RawMessage {
	c := h.ch(name)
	if c.last != nil && c.lastAt == at {
		h.metrics.wsSnapshotsReused.Inc()
		return c.last
	}
	h.metrics.wsSnapshotsRendered.Inc()
	raw := mustJSON(render())
	if c.last == nil || string(c.last) != string(raw) {
		c.last = raw
		h.broadcast(name, name, json.RawMessage(raw), now)
	}
	c.lastAt = at
	return raw
}
