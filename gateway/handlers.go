package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/gpux/gpux/api"
	"github.com/gpux/gpux/engine"
)

func sendJSON(c *fiber.Ctx, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	c.Status(status)
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(b)
}

// ---- accounts ----

type accountCreatedJSON struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Roles       []string `json:"roles"`
	APIKey      *string  `json:"api_key"`
	APIKeyShown bool     `json:"api_key_shown"`
}

// createAccount registers the account (id, key hash) in the registry, then
// creates it on every shard that has a leader. A shard it misses (no
// leader now, or started later) gets it before this node sends it the
// account's first write (ensureOn), and a retry with the same
// Idempotency-Key provisions every shard again; so the answer does not
// wait for every shard, and the key, shown once, is never lost to a shard
// that was down.
func (g *Server) createAccount(c *fiber.Ctx) error {
	if p := requireAdmin(c); p != nil {
		return p
	}
	idem, p := api.IdempotencyKey(c)
	if p != nil {
		return p
	}
	name, roles, p := api.DecodeCreateAccount(c.Body())
	if p != nil {
		return p
	}
	key, hash := api.NewAPIKey()
	a := account{
		ID: engine.ID(uuid.Must(uuid.NewV7())), Name: name, Roles: roles, KeyHash: hex.EncodeToString(hash[:]),
		CreatedAt: time.Now().UTC().Format(time.RFC3339Nano), Shards: map[string]bool{},
	}
	canon, _ := json.Marshal(struct {
		Name  string   `json:"name"`
		Roles []string `json:"roles"`
	}{name, roles.Names()})
	rh := sha256.Sum256(canon)
	ctx := c.UserContext()
	a, replayed, err := g.reg.create(ctx, idem, hex.EncodeToString(rh[:]), a)
	switch {
	case errors.Is(err, errIdemReused):
		return api.NewProblem(engine.CodeIdempotencyReused, "Idempotency-Key", "the key was used with a different request")
	case err != nil:
		g.log.Warn("registry unavailable", "err", err)
		return api.NewProblem(api.CodeUnavailable, "", "the account registry cannot be written right now: retry with the same Idempotency-Key")
	}
	g.provisionAll(ctx, &a)
	out := accountCreatedJSON{ID: a.ID.String(), Name: a.Name, Roles: a.Roles.Names()}
	if !replayed {
		out.APIKey, out.APIKeyShown = &key, true
	}
	return sendJSON(c, http.StatusCreated, out)
}

// provisionAll creates a on every shard with a leader that does not have
// it yet, concurrently; failures are logged and left to ensureOn.
func (g *Server) provisionAll(ctx context.Context, a *account) {
	t, p := g.topology(ctx)
	if p != nil {
		return
	}
	var wg sync.WaitGroup
	for _, n := range t.names {
		if a.Shards[n] || t.shards[n].Leader == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if p := g.provision(ctx, a, n); p != nil {
				g.log.Warn("account not yet on shard", "account", a.ID, "shard", n, "err", p)
			}
		}()
	}
	wg.Wait()
}

// ensureOn makes sure a exists on shard before a write for it goes there.
func (g *Server) ensureOn(ctx context.Context, a *account, shard string) *api.Problem {
	if a.Shards[shard] {
		return nil
	}
	if p := g.provision(ctx, a, shard); p != nil {
		return p
	}
	a.Shards[shard] = true
	return nil
}

// provision creates a on shard through the internal route (idempotent:
// an identical account already there answers 200) and records it.
func (g *Server) provision(ctx context.Context, a *account, shard string) *api.Problem {
	body, _ := json.Marshal(map[string]any{"name": a.Name, "roles": a.Roles.Names(), "key_hash": a.KeyHash})
	r, p := g.write(ctx, shard, call{method: http.MethodPut, path: "/v1/internal/accounts/" + a.ID.String(), body: body, auth: "Bearer " + g.cfg.AdminKey})
	if p != nil {
		return p
	}
	if r.status >= 500 {
		// A leader that just stepped down, a journal that is down: retry.
		return api.NewProblem(api.CodeNoLeader, "", fmt.Sprintf("shard %q cannot take the account right now (%d): retry shortly", shard, r.status))
	}
	if r.status != http.StatusOK && r.status != http.StatusCreated {
		g.log.Error("provision account", "account", a.ID, "shard", shard, "status", r.status, "body", string(r.body))
		return api.NewProblem(api.CodeInternal, "", fmt.Sprintf("the account could not be created on shard %q", shard))
	}
	if err := g.reg.markShard(ctx, a, shard); err != nil {
		g.log.Warn("registry unavailable", "err", err) // the next write provisions again: harmless
	}
	return nil
}

// pickShard resolves the shard a deposit, withdrawal or statement names:
// it must exist; without one, a deployment with one shard uses it and
// one with several answers 422 shard_required.
func (g *Server) pickShard(ctx context.Context, named string) (string, *api.Problem) {
	t, p := g.topology(ctx)
	if p != nil {
		return "", p
	}
	if named != "" {
		if !t.has(named) {
			return "", api.NewProblem(api.CodeUnknownShard, "shard", fmt.Sprintf("no engine node of shard %q was ever started", truncate(named, 64)))
		}
		return named, nil
	}
	switch len(t.names) {
	case 0:
		return "", api.NewProblem(api.CodeNoLeader, "", "no engine node was ever started")
	case 1:
		return t.names[0], nil
	}
	return "", api.NewProblem(api.CodeShardRequired, "shard", "this deployment runs several shards ("+strings.Join(t.names, ", ")+"): name the wallet's shard")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// moveMoney forwards a deposit or withdrawal to the leader of the shard
// it names (or the only one); the answer is that shard's wallet, as the
// engine node renders it.
func (g *Server) moveMoney(c *fiber.Ctx) error {
	if p := requireAdmin(c); p != nil {
		return p
	}
	a, err := g.reg.byID(c.UserContext(), c.Params("id"))
	switch {
	case errors.Is(err, errNoAccount):
		return api.NewProblem(engine.CodeNotFound, "id", "no such account")
	case err != nil:
		return api.NewProblem(api.CodeUnavailable, "", "the account registry cannot be read right now")
	}
	idem, p := api.IdempotencyKey(c)
	if p != nil {
		return p
	}
	_, named, p := api.DecodeMoneyMove(c.Body())
	if p != nil {
		return p
	}
	shard, p := g.pickShard(c.UserContext(), named)
	if p != nil {
		return p
	}
	done, p := g.pinIdem(c.UserContext(), "admin", idem, shard)
	if p != nil {
		return p
	}
	if p := g.ensureOn(c.UserContext(), &a, shard); p != nil {
		return p
	}
	cl := clientCall(c)
	cl.path = "/v1/accounts/" + a.ID.String() + "/" + lastSegment(c.Path())
	r, p := g.write(c.UserContext(), shard, cl)
	if p != nil {
		return p
	}
	done(r.status)
	return relay(c, r)
}

func lastSegment(p string) string { return p[strings.LastIndexByte(p, '/')+1:] }

type walletJSON struct {
	Shard     string `json:"shard"`
	Balance   string `json:"balance"`
	Held      string `json:"held"`
	Available string `json:"available"`
}

type accountJSON struct {
	ID        string       `json:"id"`
	Name      string       `json:"name"`
	Roles     []string     `json:"roles"`
	Balance   string       `json:"balance"`
	Held      string       `json:"held"`
	Available string       `json:"available"`
	CreatedAt string       `json:"created_at"`
	Wallets   []walletJSON `json:"wallets"`
}

// getAccount sums the account's wallets on every shard (a shard where it
// does not exist yet holds nothing). A shard no node of which answers
// makes it 503: a sum without one wallet would be wrong.
func (g *Server) getAccount(c *fiber.Ctx) error {
	a, p := requireAccount(c, 0)
	if p != nil {
		return p
	}
	t, p := g.topology(c.UserContext())
	if p != nil {
		return p
	}
	replies, p := g.readAll(c.UserContext(), t.names, clientCall(c))
	if p != nil {
		return p
	}
	roles := a.Roles.Names()
	if roles == nil {
		roles = []string{}
	}
	out := accountJSON{ID: a.ID.String(), Name: a.Name, Roles: roles, CreatedAt: a.CreatedAt, Wallets: []walletJSON{}}
	var bal, held, avail int64
	for i, r := range replies {
		if r.status == http.StatusUnauthorized {
			continue // not on this shard yet: an empty wallet
		}
		if r.status != http.StatusOK {
			return relay(c, r)
		}
		var w walletJSON
		if err := json.Unmarshal(r.body, &w); err != nil {
			return fmt.Errorf("account of shard %s: %w", t.names[i], err)
		}
		w.Shard = t.names[i]
		for _, f := range []struct {
			s   string
			sum *int64
		}{{w.Balance, &bal}, {w.Held, &held}, {w.Available, &avail}} {
			v, err := engine.ParseTicks(f.s)
			if err != nil {
				return fmt.Errorf("account of shard %s: amount %q: %w", t.names[i], f.s, err)
			}
			*f.sum += v
		}
		out.Wallets = append(out.Wallets, w)
	}
	out.Balance, out.Held, out.Available = engine.Money(bal).String(), engine.Money(held).String(), engine.Money(avail).String()
	return sendJSON(c, http.StatusOK, out)
}

// readAll reads cl from every shard in names, concurrently; any shard
// without an answering node makes it fail.
func (g *Server) readAll(ctx context.Context, names []string, cl call) ([]reply, *api.Problem) {
	out := make([]reply, len(names))
	probs := make([]*api.Problem, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], probs[i] = g.read(ctx, n, cl)
		}()
	}
	wg.Wait()
	for _, p := range probs {
		if p != nil {
			return nil, p
		}
	}
	return out, nil
}

// ---- markets ----

// byMarket sends a market's read to a node of the shard that owns it; a
// market no shard owns goes to any shard, which answers its 404.
func (g *Server) byMarket(c *fiber.Ctx) error {
	t, p := g.topology(c.UserContext())
	if p != nil {
		return p
	}
	shard := t.owner(c.Params("market"), g.cfg.DefaultShard)
	if shard == "" {
		if shard = t.anyLeader(g.cfg.DefaultShard); shard == "" {
			return noLeader(g.cfg.DefaultShard)
		}
	}
	r, p := g.read(c.UserContext(), shard, clientCall(c))
	if p != nil {
		return p
	}
	return relay(c, r)
}

// MissingShardsHeader names, on a merged market list (GET /v1/markets,
// /v1/prices), the shards left out because no node of theirs answered.
const MissingShardsHeader = "X-Gpux-Missing-Shards"

// mergeMarkets reads a market list (GET /v1/markets, /v1/prices) from
// every shard and keeps each market from the shard that owns it, in
// shard-name order; field names the market id in an item. A shard no node
// of which answers is left out and named in MissingShardsHeader (a list
// of markets is still useful without one region's); when none answers it
// is that shard's 503.
func (g *Server) mergeMarkets(c *fiber.Ctx, field string) error {
	t, p := g.topology(c.UserContext())
	if p != nil {
		return p
	}
	if len(t.names) == 0 {
		return noLeader(g.cfg.DefaultShard)
	}
	if len(t.names) == 1 {
		r, p := g.read(c.UserContext(), t.names[0], clientCall(c))
		if p != nil {
			return p
		}
		return relay(c, r)
	}
	// The request is read here: a fiber.Ctx is not safe across goroutines.
	cl, ctx := clientCall(c), c.UserContext()
	replies := make([]reply, len(t.names))
	probs := make([]*api.Problem, len(t.names))
	var wg sync.WaitGroup
	for i, n := range t.names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replies[i], probs[i] = g.read(ctx, n, cl)
		}()
	}
	wg.Wait()
	out := []json.RawMessage{}
	var missing []string
	var down *api.Problem
	var downReply *reply
	for i, r := range replies {
		switch {
		case probs[i] != nil:
			missing, down = append(missing, t.names[i]), probs[i]
			continue
		case r.status == http.StatusServiceUnavailable:
			missing, downReply = append(missing, t.names[i]), &replies[i]
			continue
		case r.status != http.StatusOK:
			return relay(c, r)
		}
		var items []json.RawMessage
		if err := json.Unmarshal(r.body, &items); err != nil {
			return fmt.Errorf("markets of shard %s: %w", t.names[i], err)
		}
		for _, it := range items {
			var m map[string]json.RawMessage
			var id string
			if json.Unmarshal(it, &m) != nil || json.Unmarshal(m[field], &id) != nil {
				continue
			}
			if t.owner(id, g.cfg.DefaultShard) == t.names[i] {
				out = append(out, it)
			}
		}
	}
	if len(missing) == len(t.names) {
		if downReply != nil {
			return relay(c, *downReply)
		}
		return down
	}
	if len(missing) > 0 {
		c.Set(MissingShardsHeader, strings.Join(missing, ","))
	}
	return sendJSON(c, http.StatusOK, out)
}

func (g *Server) listMarkets(c *fiber.Ctx) error { return g.mergeMarkets(c, "id") }
func (g *Server) listPrices(c *fiber.Ctx) error  { return g.mergeMarkets(c, "market") }

// getRates answers the reference table of the default shard (every shard
// gets the same table from putRates).
func (g *Server) getRates(c *fiber.Ctx) error {
	if p := requireAdmin(c); p != nil {
		return p
	}
	t, p := g.topology(c.UserContext())
	if p != nil {
		return p
	}
	shard := t.owner("", g.cfg.DefaultShard)
	if shard == "" && len(t.names) > 0 {
		shard = t.names[0]
	}
	if shard == "" {
		return noLeader(g.cfg.DefaultShard)
	}
	r, p := g.read(c.UserContext(), shard, clientCall(c))
	if p != nil {
		return p
	}
	return relay(c, r)
}

// putRates sets the table on every shard's leader in turn and answers the
// first failure, or the last shard's answer. A shard without a leader makes
// it 503 after the shards before it took the table: repeating the PUT
// completes it (setting the same table again changes nothing).
func (g *Server) putRates(c *fiber.Ctx) error {
	if p := requireAdmin(c); p != nil {
		return p
	}
	t, p := g.topology(c.UserContext())
	if p != nil {
		return p
	}
	if len(t.names) == 0 {
		return noLeader(g.cfg.DefaultShard)
	}
	cl := clientCall(c)
	var last reply
	for _, n := range t.names {
		r, p := g.write(c.UserContext(), n, cl)
		if p != nil {
			return p
		}
		if r.status/100 != 2 {
			return relay(c, r)
		}
		last = r
	}
	return relay(c, last)
}

// ---- bids and listings ----

// createOrder sends a new bid or listing to the leader of its market's
// shard. A body whose market cannot be read goes to any leader, whose
// answer is the precise validation error an engine node gives.
func (g *Server) createOrder(c *fiber.Ctx) error {
	a, p := requireOrderRole(c)
	if p != nil {
		return p
	}
	t, p := g.topology(c.UserContext())
	if p != nil {
		return p
	}
	var body struct {
		Market json.RawMessage `json:"market"`
	}
	var market string
	if json.Unmarshal(c.Body(), &body) == nil {
		_ = json.Unmarshal(body.Market, &market)
	}
	shard := t.owner(market, g.cfg.DefaultShard)
	if shard == "" {
		if shard = t.anyLeader(g.cfg.DefaultShard); shard == "" {
			return noLeader(g.cfg.DefaultShard)
		}
	}
	idem, p := api.IdempotencyKey(c)
	if p != nil {
		return p
	}
	done, p := g.pinIdem(c.UserContext(), a.ID.String(), idem, shard)
	if p != nil {
		return p
	}
	if p := g.ensureOn(c.UserContext(), a, shard); p != nil {
		return p
	}
	r, p := g.write(c.UserContext(), shard, clientCall(c))
	if p != nil {
		return p
	}
	done(r.status)
	return relay(c, r)
}

// pinIdem makes a write with an Idempotency-Key go where its first
// attempt went: each shard remembers only the keys it saw, so the same
// key sent with a body that routes to another shard is a different
// request (422 idempotency_key_reused, as one node would answer it). The
// returned func, given the shard's answer, forgets a pin this request
// made when the shard refused the write (4xx: the key is not used up).
func (g *Server) pinIdem(ctx context.Context, actor, idem, shard string) (func(status int), *api.Problem) {
	if idem == "" {
		return func(int) {}, nil
	}
	first, made, err := g.reg.pin(ctx, actor, idem, shard)
	if err != nil {
		g.log.Warn("registry unavailable", "err", err)
		return nil, api.NewProblem(api.CodeUnavailable, "", "idempotency keys cannot be checked right now")
	}
	if first != shard {
		return nil, api.NewProblem(engine.CodeIdempotencyReused, "Idempotency-Key", "the key was used with a different request")
	}
	return func(status int) {
		if made && status >= 400 && status < 500 {
			if err := g.reg.unpin(ctx, actor, idem); err != nil {
				g.log.Warn("registry unavailable", "err", err)
			}
		}
	}, nil
}

// findOrder asks every shard for the order (its id says nothing of its
// shard) and answers the shard that has it ("" and the 404 to relay when
// none does).
func (g *Server) findOrder(c *fiber.Ctx) (string, reply, *api.Problem) {
	t, p := g.topology(c.UserContext())
	if p != nil {
		return "", reply{}, p
	}
	cl := call{method: http.MethodGet, path: c.Path(), auth: strings.Clone(c.Get(fiber.HeaderAuthorization))}
	out := make([]reply, len(t.names))
	probs := make([]*api.Problem, len(t.names))
	var wg sync.WaitGroup
	for i, n := range t.names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], probs[i] = g.read(c.UserContext(), n, cl)
		}()
	}
	wg.Wait()
	var notFound reply
	var down *api.Problem
	for i, r := range out {
		switch {
		case probs[i] != nil:
			down = probs[i]
		case r.status == http.StatusOK:
			return t.names[i], r, nil
		case r.status == http.StatusNotFound, r.status == http.StatusUnauthorized:
			if r.status == http.StatusNotFound {
				notFound = r
			}
		default:
			return "", r, nil
		}
	}
	if down != nil {
		// A shard that cannot answer may hold it.
		return "", reply{}, down
	}
	if notFound.status == 0 {
		return "", reply{}, api.NewProblem(engine.CodeNotFound, "id", "no such "+noun(c))
	}
	return "", notFound, nil
}

// requireOrderRole is requireAccount with the role an order route needs:
// owner for listings, buyer for bids.
func requireOrderRole(c *fiber.Ctx) (*account, *api.Problem) {
	need := engine.RoleBuyer
	if noun(c) == "listing" {
		need = engine.RoleOwner
	}
	return requireAccount(c, need)
}

func noun(c *fiber.Ctx) string {
	if strings.Contains(c.Path(), "/listings") {
		return "listing"
	}
	return "bid"
}

func (g *Server) getOrder(c *fiber.Ctx) error {
	if _, p := requireOrderRole(c); p != nil {
		return p
	}
	_, r, p := g.findOrder(c)
	if p != nil {
		return p
	}
	return relay(c, r)
}

// cancelOrder finds the order's shard, then cancels on its leader.
func (g *Server) cancelOrder(c *fiber.Ctx) error {
	if _, p := requireOrderRole(c); p != nil {
		return p
	}
	shard, r, p := g.findOrder(c)
	if p != nil {
		return p
	}
	if shard == "" {
		return relay(c, r)
	}
	r, p = g.write(c.UserContext(), shard, clientCall(c))
	if p != nil {
		return p
	}
	return relay(c, r)
}

// maxCursor bounds the cursor of a merged list a client sends back.
const maxCursor = 2048

// cursorPrefix marks a merged list's cursor: a position on every shard.
const cursorPrefix = "m1."

// listOrders pages the caller's bids or listings newest first across
// shards. With one shard it is that shard's page, unchanged. With several
// each shard's next page is read from its own position and merged by
// created_at, each shard's order kept (mergeNewest); the cursor holds
// every shard's position ("" for not started, "-" for done).
func (g *Server) listOrders(c *fiber.Ctx) error {
	if _, p := requireOrderRole(c); p != nil {
		return p
	}
	t, p := g.topology(c.UserContext())
	if p != nil {
		return p
	}
	if len(t.names) == 1 {
		r, p := g.read(c.UserContext(), t.names[0], clientCall(c))
		if p != nil {
			return p
		}
		return relay(c, r)
	}
	limit := 100
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return api.NewProblem(api.CodeInvalidLimit, "limit", "limit must be an integer between 1 and 1000")
		}
		limit = n
	}
	pos := map[string]string{}
	if v := c.Query("cursor"); v != "" {
		if len(v) > maxCursor || !strings.HasPrefix(v, cursorPrefix) {
			return invalidCursor()
		}
		b, err := base64.RawURLEncoding.DecodeString(v[len(cursorPrefix):])
		if err != nil || json.Unmarshal(b, &pos) != nil {
			return invalidCursor()
		}
	}
	type item struct {
		shard string
		at    time.Time
		id    string
		raw   json.RawMessage
	}
	var all []item
	more := map[string]bool{} // shards whose page was not their last
	for _, n := range t.names {
		if pos[n] == "-" {
			continue
		}
		q := url.Values{"limit": {strconv.Itoa(limit)}}
		if s := c.Query("status"); s != "" {
			q.Set("status", s)
		}
		if pos[n] != "" {
			q.Set("cursor", pos[n])
		}
		r, p := g.read(c.UserContext(), n, call{method: http.MethodGet, path: c.Path() + "?" + q.Encode(), auth: strings.Clone(c.Get(fiber.HeaderAuthorization))})
		if p != nil {
			return p
		}
		if r.status == http.StatusUnauthorized {
			continue // no wallet there: nothing to list
		}
		if r.status != http.StatusOK {
			return relay(c, r)
		}
		var page struct {
			Items      []json.RawMessage `json:"items"`
			NextCursor *string           `json:"next_cursor"`
		}
		if err := json.Unmarshal(r.body, &page); err != nil {
			return fmt.Errorf("page of shard %s: %w", n, err)
		}
		more[n] = page.NextCursor != nil
		for _, raw := range page.Items {
			var k struct {
				ID        string `json:"id"`
				CreatedAt string `json:"created_at"`
			}
			if err := json.Unmarshal(raw, &k); err != nil {
				return fmt.Errorf("item of shard %s: %w", n, err)
			}
			at, _ := time.Parse(time.RFC3339Nano, k.CreatedAt)
			all = append(all, item{shard: n, at: at, id: k.ID, raw: raw})
		}
	}
	all = mergeNewest(all, func(x item) (string, time.Time) { return x.shard, x.at })
	taken := all
	if len(taken) > limit {
		taken = taken[:limit]
	}
	next := map[string]string{}
	for _, n := range t.names {
		next[n] = pos[n]
	}
	for _, it := range taken {
		next[it.shard] = it.id
	}
	// A shard is done when its whole last page was taken and it had no
	// more; a shard that answered nothing (no wallet) is done too.
	left := map[string]int{}
	for _, it := range all[len(taken):] {
		left[it.shard]++
	}
	open := false
	for _, n := range t.names {
		if next[n] == "-" {
			continue
		}
		if !more[n] && left[n] == 0 {
			next[n] = "-"
			continue
		}
		open = true
	}
	items := make([]json.RawMessage, len(taken))
	for i, it := range taken {
		items[i] = it.raw
	}
	out := struct {
		Items      []json.RawMessage `json:"items"`
		NextCursor *string           `json:"next_cursor"`
	}{Items: items}
	if open {
		b, _ := json.Marshal(next)
		s := cursorPrefix + base64.RawURLEncoding.EncodeToString(b)
		out.NextCursor = &s
	}
	return sendJSON(c, http.StatusOK, out)
}

// mergeNewest orders items newest first across shards while keeping each
// shard's own order (its page order, by sequence): a shard's cursor is
// the last item taken from it, so an item of the same shard must never
// be taken after one the shard lists later, even at an equal created_at.
// items holds each shard's page in order, shard after shard; ties between
// shards go to the shard listed first.
func mergeNewest[T any](items []T, key func(T) (string, time.Time)) []T {
	return mergeBy(items, key, func(a, b time.Time) bool { return a.After(b) })
}

// mergeBy is mergeNewest with the order between shards given by before
// (a strictly before b): mergeNewest's, or oldest first for statements.
func mergeBy[T any](items []T, key func(T) (string, time.Time), before func(a, b time.Time) bool) []T {
	var order []string
	heads := map[string][]T{}
	for _, it := range items {
		s, _ := key(it)
		if _, ok := heads[s]; !ok {
			order = append(order, s)
		}
		heads[s] = append(heads[s], it)
	}
	out := make([]T, 0, len(items))
	for len(out) < len(items) {
		best := ""
		var bestAt time.Time
		for _, s := range order {
			if len(heads[s]) == 0 {
				continue
			}
			if _, at := key(heads[s][0]); best == "" || before(at, bestAt) {
				best, bestAt = s, at
			}
		}
		out = append(out, heads[best][0])
		heads[best] = heads[best][1:]
	}
	return out
}

func invalidCursor() *api.Problem {
	return api.NewProblem(api.CodeInvalidCursor, "cursor", "cursor must be the next_cursor of a previous page")
}
