package api

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/history"
	"github.com/gpux/gpux/pricing"
	"github.com/gpux/gpux/sequencer"
)

// Paging of list endpoints.
const (
	defaultLimit = 100
	maxLimit     = 1000
	// MaxPageLimit is the largest limit a list or statement page takes.
	MaxPageLimit = maxLimit
)

func sendJSON(c *fiber.Ctx, status int, v any) error {
	b, err := jsonMarshal(v)
	if err != nil {
		return err
	}
	c.Status(status)
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(b)
}

// idemKeyHeader reads the Idempotency-Key header (a copy; "" when absent).
func idemKeyHeader(c *fiber.Ctx) (string, *Problem) {
	k := c.Get("Idempotency-Key")
	if k == "" {
		return "", nil
	}
	if len(k) > maxIdemKeyLen {
		return "", problemf(CodeInvalidIdemKey, "Idempotency-Key", "the Idempotency-Key header is at most %d characters", maxIdemKeyLen)
	}
	return strings.Clone(k), nil
}

// pathID parses an id path parameter; a malformed id is as unknown as a
// missing one (404).
func pathID(c *fiber.Ctx, what string) (engine.ID, *Problem) {
	id, err := engine.ParseID(strings.ToLower(c.Params("id")))
	if err != nil {
		return engine.ID{}, problemf(engine.CodeNotFound, "id", "no such %s", what)
	}
	return id, nil
}

type listParams struct {
	limit  int
	cursor engine.ID
	status string
}

func parseList(c *fiber.Ctx, statuses []string) (listParams, *Problem) {
	lp := listParams{limit: defaultLimit}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			return lp, problemf(CodeInvalidLimit, "limit", "limit must be an integer between 1 and %d", maxLimit)
		}
		lp.limit = n
	}
	if v := c.Query("cursor"); v != "" {
		id, err := engine.ParseID(strings.ToLower(v))
		if err != nil {
			return lp, problem(CodeInvalidCursor, "cursor", "cursor must be the next_cursor of a previous page")
		}
		lp.cursor = id
	}
	if v := c.Query("status"); v != "" {
		if statuses == nil || !slices.Contains(statuses, v) {
			return lp, problemf(CodeInvalidStatus, "status", "status must be one of %s", strings.Join(statuses, ", "))
		}
		lp.status = strings.Clone(v)
	}
	return lp, nil
}

var (
	bidStatuses     = []string{"resting", "filled", "partially_filled", "running", "waiting", "preempting", "cancelled", "expired", "rejected"}
	listingStatuses = []string{"active", "cancelled", "ended"}
)

// ---- operations ----

type healthJSON struct {
	Status            string  `json:"status"`
	Ready             bool    `json:"ready"`
	Writable          bool    `json:"writable"`
	Journal           string  `json:"journal"`
	Durable           bool    `json:"durable"`
	LastSeq           uint64  `json:"last_seq"`
	RecoveredCommands int     `json:"recovered_commands"`
	RecoverySeconds   float64 `json:"recovery_seconds"`
	LastSnapshotSeq   uint64  `json:"last_snapshot_seq"`
	// SnapshotPauseSeconds is how long the last snapshot held the
	// sequencer (the engine's bytes are taken on its goroutine).
	SnapshotPauseSeconds float64 `json:"snapshot_pause_seconds"`
	// MaxSnapshotPauseSeconds is the longest such pause since start.
	MaxSnapshotPauseSeconds float64 `json:"max_snapshot_pause_seconds"`
	FeedClients             int64   `json:"feed_clients"`
	// Role is "all" or "engine" here ("api" on an API node, which has no
	// shard); Shard the shard this node's engine runs. Leader reports
	// that it takes the shard's writes now, FencingToken the newest lease
	// token it holds or has seen (0 without leases).
	Role         string  `json:"role"`
	Shard        *string `json:"shard"`
	Leader       bool    `json:"leader"`
	FencingToken uint64  `json:"fencing_token"`
	// Warning says, for the in-memory journal, that nothing survives a
	// restart.
	Warning string `json:"warning,omitempty"`
}

func (s *Server) health(c *fiber.Ctx) error {
	st := s.cfg.Sequencer.Status()
	h := healthJSON{
		Status: "ok", Ready: st.Ready, Writable: st.Writable, Journal: st.Journal, Durable: st.Durable,
		LastSeq: st.LastSeq, RecoveredCommands: st.RecoveredCommands, RecoverySeconds: st.RecoverySeconds,
		LastSnapshotSeq: st.LastSnapshotSeq, SnapshotPauseSeconds: st.SnapshotPause.Seconds(), MaxSnapshotPauseSeconds: st.MaxSnapshotPause.Seconds(), FeedClients: s.hub.clientCount(),
		Role: s.cfg.Role, Shard: &s.cfg.Shard, Leader: st.Leader, FencingToken: st.FencingToken,
	}
	if !st.Durable {
		h.Warning = "in-memory journal: every account, order and balance is lost when the process stops"
	}
	switch {
	case !st.Ready:
		h.Status = "recovering"
	case !st.Writable:
		h.Status = "degraded"
	}
	return sendJSON(c, http.StatusOK, h)
}

func (s *Server) ready(c *fiber.Ctx) error {
	st := s.cfg.Sequencer.Status()
	switch {
	case !st.Ready:
		return problem(CodeNotReady, "", "the exchange is still recovering")
	case !st.Writable:
		return problem(CodeUnavailable, "", "the journal does not accept writes")
	}
	return sendJSON(c, http.StatusOK, fiber.Map{"status": "ready"})
}

func (s *Server) openapi(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, "application/yaml")
	return c.Send(openAPIDocument)
}

// ---- accounts ----

func (s *Server) createAccount(c *fiber.Ctx) error {
	if p := requireAdmin(c); p != nil {
		return p
	}
	idem, p := idemKeyHeader(c)
	if p != nil {
		return p
	}
	in, p := decodeCreateAccount(c.Body())
	if p != nil {
		return p
	}
	ih := idemHash(fiber.MethodPost, "/v1/accounts", in)
	return s.idem.do(c, idem, ih, func() (int, any, *Problem) {
		key, hash := NewAPIKey()
		var acct engine.AccountView
		var ok bool
		replayed := false
		_, p := s.submit(engine.Command{Kind: engine.CmdCreateAccount, Name: in.Name, Roles: in.Roles, KeyHash: hash, IdemKey: idem, IdemHash: ih},
			func(e *engine.Engine, cmd *engine.Command) {
				if acct, ok = e.Account(cmd.Target); ok {
					return
				}
				// The engine remembered the key: a retry of a create whose
				// first answer was lost. The key was shown then; it cannot
				// be shown again.
				if id, _, found := e.IdempotentTarget(engine.ID{}, idem); found {
					acct, ok = e.Account(id)
					replayed = true
				}
			})
		if p != nil {
			return 0, nil, p
		}
		if !ok {
			return 0, nil, problem(CodeInternal, "", "the account was not created")
		}
		out := accountCreatedJSON{ID: acct.ID.String(), Name: acct.Name, Roles: acct.Roles.Names()}
		if !replayed {
			out.APIKey, out.APIKeyShown = &key, true
		}
		return http.StatusCreated, out, nil
	})
}

func (s *Server) deposit(c *fiber.Ctx) error  { return s.moveMoney(c, engine.CmdDeposit) }
func (s *Server) withdraw(c *fiber.Ctx) error { return s.moveMoney(c, engine.CmdWithdraw) }

func (s *Server) moveMoney(c *fiber.Ctx, kind engine.Kind) error {
	if p := requireAdmin(c); p != nil {
		return p
	}
	id, p := pathID(c, "account")
	if p != nil {
		return p
	}
	idem, p := idemKeyHeader(c)
	if p != nil {
		return p
	}
	amount, shard, p := DecodeMoneyMove(c.Body())
	if p != nil {
		return p
	}
	// The shard is not part of the idempotency hash: on this node it can
	// only name this node's shard, the same wallet as no shard at all.
	if shard != "" && shard != s.cfg.Shard {
		return problemf(CodeWrongShard, "shard", "this node runs shard %q, not %q: send it to an API node, or to a node of that shard", s.cfg.Shard, truncate(shard, maxShardLen))
	}
	path := "/v1/accounts/" + id.String() + "/" + kind.String()
	ih := idemHash(fiber.MethodPost, path, amount)
	return s.idem.do(c, idem, ih, func() (int, any, *Problem) {
		var acct engine.AccountView
		_, p := s.submit(engine.Command{Kind: kind, Target: id, Amount: amount, IdemKey: idem, IdemHash: ih},
			func(e *engine.Engine, cmd *engine.Command) { acct, _ = e.Account(cmd.Target) })
		if p != nil {
			return 0, nil, p
		}
		return http.StatusOK, renderAccount(acct), nil
	})
}

func (s *Server) getAccount(c *fiber.Ctx) error {
	a, p := requireAccount(c, 0)
	if p != nil {
		return p
	}
	var ok bool
	s.read(func(e *engine.Engine) { a, ok = e.Account(a.ID) })
	if !ok {
		return problem(engine.CodeNotFound, "", "no such account")
	}
	return sendJSON(c, http.StatusOK, renderAccount(a))
}

// ---- markets ----

func (s *Server) listMarkets(c *fiber.Ctx) error {
	var ms []engine.Market
	s.read(func(e *engine.Engine) { ms = e.Markets() })
	out := make([]marketJSON, len(ms))
	for i, m := range ms {
		out[i] = renderMarket(m)
	}
	return sendJSON(c, http.StatusOK, out)
}

// getMarket returns one market with its settings.
func (s *Server) getMarket(c *fiber.Ctx) error {
	id := c.Params("market")
	var out *marketJSON
	s.read(func(e *engine.Engine) {
		for _, m := range e.Markets() {
			if m.ID == id {
				r := renderMarket(m)
				out = &r
			}
		}
	})
	if out == nil {
		return unknownMarket(id)
	}
	return sendJSON(c, http.StatusOK, out)
}

func unknownMarket(id string) *Problem {
	return problemf(engine.CodeNotFound, "market", "unknown market %q", truncate(id, 64))
}

func (s *Server) getBook(c *fiber.Ctx) error {
	market := c.Params("market")
	var b engine.BookView
	var ok bool
	s.read(func(e *engine.Engine) { b, ok = e.Book(market) })
	if !ok {
		return unknownMarket(market)
	}
	return sendJSON(c, http.StatusOK, renderBook(b))
}

func (s *Server) listMarketTrades(c *fiber.Ctx) error {
	market := c.Params("market")
	lp, p := parseList(c, nil)
	if p != nil {
		return p
	}
	var fills []engine.Fill
	var ok bool
	// The engine keeps each market's most recent fills (1000 by default);
	// pages walk that ring, newest first.
	s.read(func(e *engine.Engine) {
		if ok = e.HasMarket(market); ok {
			fills = e.Trades(market, 1<<20)
		}
	})
	if !ok {
		return unknownMarket(market)
	}
	start := 0
	if !lp.cursor.IsZero() {
		start = len(fills)
		for i, f := range fills {
			if f.ID == lp.cursor {
				start = i + 1
				break
			}
		}
	}
	page := fills[start:]
	var next *string
	if len(page) > lp.limit {
		page = page[:lp.limit]
		next = cursorOf(page[len(page)-1].ID)
	}
	out := pageJSON[tradeJSON]{Items: make([]tradeJSON, len(page)), NextCursor: next}
	for i, f := range page {
		out.Items[i] = renderTrade(f)
	}
	return sendJSON(c, http.StatusOK, out)
}

func (s *Server) listPrices(c *fiber.Ctx) error {
	return sendJSON(c, http.StatusOK, s.renderPrices())
}

type quoteFillJSON struct {
	ListingID string `json:"listing_id"`
	Quantity  int64  `json:"quantity"`
	Price     string `json:"price"`
}

type quoteJSON struct {
	Market              string              `json:"market"`
	Quantity            int64               `json:"quantity"`
	MinQuantity         int64               `json:"min_quantity"`
	Start               string              `json:"start"`
	End                 string              `json:"end"`
	DurationHours       int64               `json:"duration_hours,omitempty"`
	BlockStart          *string             `json:"block_start,omitempty"` // flexible: the block chosen
	BlockEnd            *string             `json:"block_end,omitempty"`
	Fills               []quoteFillJSON     `json:"fills"`
	FilledQuantity      int64               `json:"filled_quantity"`
	TotalCost           string              `json:"total_cost"`
	AveragePrice        *string             `json:"average_price"`
	MinQuantityMet      bool                `json:"min_quantity_met"`
	Reference           []pricing.Reference `json:"reference"`
	DiscountVsReference map[string]*string  `json:"discount_vs_reference"`
	// ReferenceCost is what the quote's GPU-hours would cost at each
	// provider's on-demand rate.
	ReferenceCost map[string]string `json:"reference_cost"`
	// FillEstimate is for a bid at limit_price (default: the best ask)
	// that rests (estimate.go); null with too few samples.
	FillEstimate        *fillEstimateJSON `json:"fill_estimate"`
	FillEstimateSamples int               `json:"fill_estimate_samples"`
}

// getQuote prices a reserved bid of quantity GPUs over [start, end) placed
// now without a limit, the way matching would fill it (engine.Quote), and
// sets the average price next to the cloud reference rates. It shows what
// the book holds even when that is less than min_quantity (default:
// quantity); min_quantity_met says whether a bid would trade.
func (s *Server) getQuote(c *fiber.Ctx) error {
	market := c.Params("market")
	var ok bool
	var gpu string
	s.read(func(e *engine.Engine) {
		for _, m := range e.Markets() {
			if m.ID == market {
				ok, gpu = true, m.GPU
			}
		}
	})
	if !ok {
		return unknownMarket(market)
	}
	intParam := func(name string) (*int64, *Problem) {
		v := c.Query(name)
		if v == "" {
			return nil, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, problemf(engine.CodeInvalidQuantity, name, "%s must be an integer", name)
		}
		return &n, nil
	}
	qp, p := intParam("quantity")
	if p != nil {
		return p
	}
	quantity, p := quantity(qp, "quantity", true)
	if p != nil {
		return p
	}
	mp, p := intParam("min_quantity")
	if p != nil {
		return p
	}
	minQ, p := quantityParam(mp, quantity)
	if p != nil {
		return p
	}
	startS, endS := c.Query("start"), c.Query("end")
	start, p := parseTime(optString(startS), "start", true)
	if p != nil {
		return p
	}
	end, p := parseTime(optString(endS), "end", true)
	if p != nil {
		return p
	}
	if p := s.checker().window(start, end, true); p != nil {
		return p
	}
	dp, p := intParam("duration_hours")
	if p != nil {
		return p
	}
	var q engine.Quote
	var err error
	if dp != nil {
		s.read(func(e *engine.Engine) { q, err = e.QuoteBlock(market, quantity, 1, start, end, *dp, 0) })
	} else {
		s.read(func(e *engine.Engine) { q, err = e.Quote(market, quantity, 1, start, end, 0) })
	}
	if err != nil {
		var ee *engine.Error
		if errors.As(err, &ee) {
			return fromEngine(ee)
		}
		return err
	}
	var limit engine.Price
	if v := c.Query("limit_price"); v != "" {
		if limit, p = parsePositivePrice(v, "limit_price"); p != nil {
			return p
		}
	}
	out := quoteJSON{
		Market: market, Quantity: quantity, MinQuantity: minQ, Start: rfc3339(start), End: rfc3339(end),
		Fills: make([]quoteFillJSON, len(q.Fills)), FilledQuantity: q.Filled, TotalCost: q.Cost.String(),
		MinQuantityMet: q.Filled >= minQ,
	}
	hours := int64((end - start) / engine.Hour)
	if dp != nil {
		out.DurationHours, hours = *dp, *dp
		if q.Filled > 0 {
			out.BlockStart, out.BlockEnd = optTime(q.Start), optTime(q.End)
		}
	}
	for i, f := range q.Fills {
		out.Fills[i] = quoteFillJSON{ListingID: f.Listing.String(), Quantity: f.Quantity, Price: f.Price.String()}
	}
	var avg engine.Price
	if gh := q.Filled * hours; gh > 0 {
		avg = engine.Price((int64(q.Cost) + gh/2) / gh)
		out.AveragePrice = optPrice(avg, true)
	}
	out.Reference, out.DiscountVsReference, out.ReferenceCost = []pricing.Reference{}, map[string]*string{}, map[string]string{}
	if b := s.board(); b != nil {
		if refs := b.ReferenceRows(gpu); refs != nil {
			out.Reference = refs
		}
		out.DiscountVsReference = b.Discounts(gpu, int64(avg), out.AveragePrice != nil)
		out.ReferenceCost = b.ReferenceCosts(gpu, q.Filled*hours)
	}
	out.FillEstimate, out.FillEstimateSamples = s.estimateFor(market, engine.Reserved, limit)
	return sendJSON(c, http.StatusOK, out)
}

// quantityParam validates an optional min_quantity against quantity; absent
// means quantity.
func quantityParam(p *int64, quantity int64) (int64, *Problem) {
	if p == nil {
		return quantity, nil
	}
	if *p < 1 || *p > quantity {
		return 0, problem(engine.CodeInvalidQuantity, "min_quantity", "min_quantity must be between 1 and quantity")
	}
	return *p, nil
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

type candleJSON = history.Candle

type historyJSON struct {
	Market   string       `json:"market"`
	Interval string       `json:"interval"`
	Kind     string       `json:"kind"`
	Candles  []candleJSON `json:"candles"`
}

// getHistory answers a market's candles of reserved trades (kind=trades,
// the default; volume in GPU-hours) or of spot clearing prices (kind=spot;
// volume 0), as the read side merges them (history.Prices.Candles).
func (s *Server) getHistory(c *fiber.Ctx) error {
	market := c.Params("market")
	var ok bool
	s.read(func(e *engine.Engine) { ok = e.HasMarket(market) })
	if !ok {
		return unknownMarket(market)
	}
	ivs := c.Query("interval")
	if ivs == "" {
		return problem(CodeMissingField, "interval", "interval is required: 1m, 1h or 1d")
	}
	iv, err := pricing.ParseInterval(ivs)
	if err != nil {
		return problem(CodeInvalidInterval, "interval", "interval must be 1m, 1h or 1d")
	}
	kind := c.Query("kind", pricing.KindTrades)
	if kind != pricing.KindTrades && kind != pricing.KindSpot {
		return problem(CodeInvalidValue, "kind", "kind must be trades or spot")
	}
	to := s.cfg.Now().UTC()
	if v := c.Query("to"); v != "" {
		t, p := parseTime(&v, "to", true)
		if p != nil {
			return p
		}
		to = time.UnixMilli(int64(t)).UTC()
	}
	from := to.Add(-1000 * iv.Duration())
	if v := c.Query("from"); v != "" {
		t, p := parseTime(&v, "from", true)
		if p != nil {
			return p
		}
		from = time.UnixMilli(int64(t)).UTC()
	}
	if !from.Before(to) {
		return problem(engine.CodeInvalidWindow, "to", "to must be after from")
	}
	cs := s.prices.Candles(c.UserContext(), market, kind, iv, from, to)
	out := historyJSON{Market: market, Interval: iv.String(), Kind: kind, Candles: cs}
	return sendJSON(c, http.StatusOK, out)
}

// ---- bids and listings ----

// orderAPI is what differs between bids and listings for the four
// handlers they share (create, get, list, cancel). Open orders live in the
// engine; closed ones have left it for the read side (history.Store), so
// every read asks the engine first and the history second.
type orderAPI[V, Out any] struct {
	noun     string // "bid", "listing"
	path     string // the collection's path, for idempotency hashes
	role     engine.Role
	statuses []string
	cancel   engine.Kind
	decode   func(s *Server, body []byte) (engine.Command, any, *Problem) // the command and its canonical form
	get      func(e *engine.Engine, id engine.ID) (V, bool)
	// list pages open orders below cursor, whose Seq is before (the
	// engine starts its walk at the cursor when it is open).
	list   func(e *engine.Engine, account engine.ID, status string, cursor engine.ID, before uint64, limit int) []V
	closed func(h *history.Store, ctx context.Context, id engine.ID) (V, bool, error)
	// closedList pages closed orders like list does open ones.
	closedList func(h *history.Store, ctx context.Context, account engine.ID, status string, before uint64, limit int) ([]V, error)
	// final finds the final state in the event that closed the order.
	final  func(ev *engine.Event, id engine.ID) (V, bool)
	key    func(V) (id, owner engine.ID, seq uint64, status string)
	render func(V) Out
	// decorate, when set, adds what the server knows beyond the order
	// (a resting bid's fill estimate) to a single order's answer.
	decorate func(s *Server, v V, out *Out)
}

var bidAPI = orderAPI[engine.BidView, bidOut]{
	noun: "bid", path: "/v1/bids", role: engine.RoleBuyer, statuses: bidStatuses, cancel: engine.CmdCancelBid,
	decode: func(s *Server, body []byte) (engine.Command, any, *Problem) {
		in, p := s.checker().decodeBid(body)
		if p != nil {
			return engine.Command{}, nil, p
		}
		return in.command(), in, nil
	},
	get:        (*engine.Engine).Bid,
	list:       (*engine.Engine).BidsBefore,
	closed:     (*history.Store).Bid,
	closedList: (*history.Store).BidsBefore,
	final: func(ev *engine.Event, id engine.ID) (engine.BidView, bool) {
		if ev.Kind == engine.EvBidClosed && ev.Bid == id && ev.FinalBid != nil {
			return *ev.FinalBid, true
		}
		return engine.BidView{}, false
	},
	key: func(v engine.BidView) (engine.ID, engine.ID, uint64, string) {
		return v.ID, v.Buyer, v.Seq, v.Status.String()
	},
	render:   renderBid,
	decorate: decorateBid,
}

var listingAPI = orderAPI[engine.ListingView, listingOut]{
	noun: "listing", path: "/v1/listings", role: engine.RoleOwner, statuses: listingStatuses, cancel: engine.CmdCancelListing,
	decode: func(s *Server, body []byte) (engine.Command, any, *Problem) {
		in, p := s.checker().decodeListing(body)
		if p != nil {
			return engine.Command{}, nil, p
		}
		return in.command(), in, nil
	},
	get:        (*engine.Engine).Listing,
	list:       (*engine.Engine).ListingsBefore,
	closed:     (*history.Store).Listing,
	closedList: (*history.Store).ListingsBefore,
	final: func(ev *engine.Event, id engine.ID) (engine.ListingView, bool) {
		if ev.Kind == engine.EvListingClosed && ev.Listing == id && ev.FinalListing != nil {
			return *ev.FinalListing, true
		}
		return engine.ListingView{}, false
	},
	key: func(v engine.ListingView) (engine.ID, engine.ID, uint64, string) {
		return v.ID, v.Owner, v.Seq, v.Status.String()
	},
	render: renderListing,
}

func (s *Server) createBid(c *fiber.Ctx) error     { return createOrder(s, c, bidAPI) }
func (s *Server) getBid(c *fiber.Ctx) error        { return getOrder(s, c, bidAPI) }
func (s *Server) listBids(c *fiber.Ctx) error      { return listOrders(s, c, bidAPI) }
func (s *Server) cancelBid(c *fiber.Ctx) error     { return cancelOrder(s, c, bidAPI) }
func (s *Server) createListing(c *fiber.Ctx) error { return createOrder(s, c, listingAPI) }
func (s *Server) getListing(c *fiber.Ctx) error    { return getOrder(s, c, listingAPI) }
func (s *Server) listListings(c *fiber.Ctx) error  { return listOrders(s, c, listingAPI) }
func (s *Server) cancelListing(c *fiber.Ctx) error { return cancelOrder(s, c, listingAPI) }

// findOrder answers an order by id: open from the engine, else closed
// from the history. ok is false when it is unknown or not the account's.
func findOrder[V, Out any](s *Server, ctx context.Context, o orderAPI[V, Out], account, id engine.ID) (v V, ok bool, p *Problem) {
	s.read(func(e *engine.Engine) { v, ok = o.get(e, id) })
	if !ok {
		var err error
		if v, ok, err = o.closed(s.history, ctx, id); err != nil {
			s.log.Warn("closed order unavailable", "id", id, "err", err)
			return v, false, problem(CodeUnavailable, "", "the order history is unavailable; retry")
		}
	}
	if !ok {
		return v, false, nil
	}
	_, owner, _, _ := o.key(v)
	return v, owner == account, nil
}

// afterCommand finds the order a command made or acted on: open in the
// engine (seen by the sequencer's view), closed by the command itself (its
// closing event), or closed before (an idempotent replay: the history).
func afterCommand[V, Out any](s *Server, ctx context.Context, o orderAPI[V, Out], out sequencer.Outcome, view V, ok bool, id, account engine.ID) (V, bool, *Problem) {
	if ok {
		return view, true, nil
	}
	for i := range out.Events {
		if v, found := o.final(&out.Events[i], id); found {
			return v, true, nil
		}
	}
	return findOrder(s, ctx, o, account, id)
}

func createOrder[V, Out any](s *Server, c *fiber.Ctx, o orderAPI[V, Out]) error {
	a, p := requireAccount(c, o.role)
	if p != nil {
		return p
	}
	idem, p := idemKeyHeader(c)
	if p != nil {
		return p
	}
	cmd, canonical, p := o.decode(s, c.Body())
	if p != nil {
		return p
	}
	cmd.Actor = a.ID
	if idem != "" {
		cmd.IdemKey, cmd.IdemHash = idem, idemHash(fiber.MethodPost, o.path, canonical)
	}
	var view V
	var ok bool
	var id engine.ID
	out, p := s.submit(cmd, func(e *engine.Engine, cc *engine.Command) {
		id = cc.Target
		if _, exists := o.get(e, id); !exists && cc.IdemKey != "" {
			// An idempotent replay: answer with the order the key made.
			if first, _, found := e.IdempotentTarget(cc.Actor, cc.IdemKey); found {
				id = first
			}
		}
		view, ok = o.get(e, id)
		if ok {
			_, owner, _, _ := o.key(view)
			ok = owner == cc.Actor
		}
	})
	if p != nil {
		return p
	}
	view, ok, p = afterCommand(s, c.UserContext(), o, out, view, ok, id, a.ID)
	if p != nil {
		return p
	}
	if !ok {
		return problem(CodeInternal, "", "the "+o.noun+" was not created")
	}
	res := o.render(view)
	if o.decorate != nil {
		o.decorate(s, view, &res)
	}
	return sendJSON(c, http.StatusCreated, res)
}

func getOrder[V, Out any](s *Server, c *fiber.Ctx, o orderAPI[V, Out]) error {
	a, p := requireAccount(c, o.role)
	if p != nil {
		return p
	}
	id, p := pathID(c, o.noun)
	if p != nil {
		return p
	}
	v, ok, p := findOrder(s, c.UserContext(), o, a.ID, id)
	if p != nil {
		return p
	}
	if !ok {
		// Someone else's order answers exactly as a missing one.
		return problem(engine.CodeNotFound, "id", "no such "+o.noun)
	}
	res := o.render(v)
	if o.decorate != nil {
		o.decorate(s, v, &res)
	}
	return sendJSON(c, http.StatusOK, res)
}

// listOrders pages an account's orders newest first: the open ones from
// the engine merged with the closed ones from the history, by sequence.
// The engine is read first, so an order that closes in between shows up in
// both and the history's (newer) state wins; it is never missed.
func listOrders[V, Out any](s *Server, c *fiber.Ctx, o orderAPI[V, Out]) error {
	a, p := requireAccount(c, o.role)
	if p != nil {
		return p
	}
	lp, p := parseList(c, o.statuses)
	if p != nil {
		return p
	}
	ctx := c.UserContext()
	var before uint64
	if !lp.cursor.IsZero() {
		v, ok, p := findOrder(s, ctx, o, a.ID, lp.cursor)
		if p != nil {
			return p
		}
		if !ok {
			return sendJSON(c, http.StatusOK, pageJSON[Out]{Items: []Out{}})
		}
		_, _, before, _ = o.key(v)
	}
	var open []V
	s.read(func(e *engine.Engine) { open = o.list(e, a.ID, lp.status, lp.cursor, before, lp.limit+1) })
	closed, err := o.closedList(s.history, ctx, a.ID, lp.status, before, lp.limit+1)
	if err != nil {
		s.log.Warn("closed orders unavailable", "account", a.ID, "err", err)
		return problem(CodeUnavailable, "", "the order history is unavailable; retry")
	}
	seen := make(map[engine.ID]bool, len(closed))
	all := make([]V, 0, len(open)+len(closed))
	for _, v := range closed {
		id, _, _, _ := o.key(v)
		seen[id] = true
		all = append(all, v)
	}
	for _, v := range open {
		if id, _, _, _ := o.key(v); !seen[id] {
			all = append(all, v)
		}
	}
	slices.SortFunc(all, func(x, y V) int {
		_, _, sx, _ := o.key(x)
		_, _, sy, _ := o.key(y)
		return cmp.Compare(sy, sx)
	})
	var next engine.ID
	if len(all) > lp.limit {
		all = all[:lp.limit]
		next, _, _, _ = o.key(all[lp.limit-1])
	}
	out := pageJSON[Out]{Items: make([]Out, len(all)), NextCursor: cursorOf(next)}
	for i, v := range all {
		out.Items[i] = o.render(v)
	}
	return sendJSON(c, http.StatusOK, out)
}

func cancelOrder[V, Out any](s *Server, c *fiber.Ctx, o orderAPI[V, Out]) error {
	a, p := requireAccount(c, o.role)
	if p != nil {
		return p
	}
	id, p := pathID(c, o.noun)
	if p != nil {
		return p
	}
	var view V
	var ok bool
	out, p := s.submit(engine.Command{Kind: o.cancel, Actor: a.ID, Target: id},
		func(e *engine.Engine, cc *engine.Command) { view, ok = o.get(e, cc.Target) })
	if p != nil {
		if p.Code != engine.CodeNotFound {
			return p
		}
		// The engine knows only open orders: one of the account's that
		// has closed answers as before, not_open.
		v, found, hp := findOrder(s, c.UserContext(), o, a.ID, id)
		if hp != nil || !found {
			return p
		}
		_, _, _, st := o.key(v)
		return problem(engine.CodeNotOpen, "id", "the "+o.noun+" is "+st)
	}
	view, ok, p = afterCommand(s, c.UserContext(), o, out, view, ok, id, a.ID)
	if p != nil {
		return p
	}
	if !ok {
		return problem(CodeInternal, "", "the "+o.noun+" was cancelled but cannot be read")
	}
	return sendJSON(c, http.StatusOK, o.render(view))
}
