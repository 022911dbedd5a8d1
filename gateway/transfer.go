package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/gpux/gpux/api"
	"github.com/gpux/gpux/engine"
)

// A transfer moves money between two wallets of one account: a withdrawal
// on the source shard, then a deposit on the destination, each an admin
// command journaled by its shard with the idempotency key
// "transfer:<id>", so each applies once however many API nodes retry it
// (the engine remembers the key for engine.IdempotencyWindow, 24 h; the
// sweeper retries every SweepInterval and gives up on a transfer older
// than stuckAfter, well inside that window). The registry records it:
//
//	transfer:<id>        hash  account, from, to, amount (ticks), state,
//	                           code, detail, created_at
//	transfers:pending    zset  id → unix ms of creation, while not final
//	transfer:<id>:lock   who drives it now (30 s)
//	idem:transfer:<account>:<key>  "<request hash>:<id>", 24 h
//
// States: pending (nothing journaled for sure) → withdrawn (the source
// took it) → completed; pending → failed (the source refused: nothing
// moved); withdrawn → refunding (the destination refused) → refunded (the
// source got it back, key "transfer:<id>:refund"). stuck: not final after
// stuckAfter; an operator checks both shards' statements (ref-less
// withdrawal and deposit lines of the same amount) and settles it.
const (
	statePending   = "pending"
	stateWithdrawn = "withdrawn"
	stateCompleted = "completed"
	stateFailed    = "failed"
	stateRefunding = "refunding"
	stateRefunded  = "refunded"
	stateStuck     = "stuck"

	lockTTL = 30 * time.Second
	// stuckAfter leaves an hour of the engine's idempotency window: a side
	// is never retried after its shard may have forgotten the key.
	stuckAfter = idemTTL - time.Hour
)

type transfer struct {
	ID        string
	Account   string
	From, To  string
	Amount    engine.Money
	State     string
	Code      string
	Detail    string
	CreatedAt time.Time
}

func final(state string) bool {
	switch state {
	case stateCompleted, stateFailed, stateRefunded, stateStuck:
		return true
	}
	return false
}

// createTransferScript records a transfer once per Idempotency-Key.
// KEYS: idem record (= KEYS[2] without a key), transfer, pending set.
// ARGV: idem value, id, account, from, to, amount, created_at, created ms,
// ttl ms.
var createTransferScript = redis.NewScript(`
if KEYS[1] ~= KEYS[2] then
  local prev = redis.call('GET', KEYS[1])
  if prev then return prev end
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[9])
end
redis.call('HSET', KEYS[2], 'account', ARGV[3], 'from', ARGV[4], 'to', ARGV[5], 'amount', ARGV[6], 'state', 'pending', 'created_at', ARGV[7])
redis.call('ZADD', KEYS[3], ARGV[8], ARGV[2])
return false
`)

// createTransfer records t (or, for a repeated Idempotency-Key, answers
// the first transfer: replayed, or errIdemReused for another body).
func (r *registry) createTransfer(ctx context.Context, idem, reqHash string, t transfer) (transfer, bool, error) {
	tk := r.key("transfer", t.ID)
	idemKey := tk
	if idem != "" {
		idemKey = r.key("idem", "transfer", t.Account, idem)
	}
	res, err := createTransferScript.Run(ctx, r.rdb, []string{idemKey, tk, r.key("transfers", "pending")},
		reqHash+":"+t.ID, t.ID, t.Account, t.From, t.To, strconv.FormatInt(int64(t.Amount), 10),
		t.CreatedAt.Format(time.RFC3339Nano), t.CreatedAt.UnixMilli(), idemTTL.Milliseconds()).Result()
	if errors.Is(err, redis.Nil) {
		return t, false, nil
	}
	if err != nil {
		return transfer{}, false, fmt.Errorf("record transfer: %w", err)
	}
	prev, _ := res.(string)
	h, id, _ := cut(prev)
	if h != reqHash {
		return transfer{}, false, errIdemReused
	}
	first, err := r.transfer(ctx, id)
	if err != nil {
		return transfer{}, false, err
	}
	return first, true, nil
}

func cut(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

var errNoTransfer = errors.New("no such transfer")

func (r *registry) transfer(ctx context.Context, id string) (transfer, error) {
	m, err := r.rdb.HGetAll(ctx, r.key("transfer", id)).Result()
	if err != nil {
		return transfer{}, fmt.Errorf("read transfer %s: %w", id, err)
	}
	if len(m) == 0 {
		return transfer{}, errNoTransfer
	}
	amt, err := strconv.ParseInt(m["amount"], 10, 64)
	if err != nil {
		return transfer{}, fmt.Errorf("transfer %s amount %q: %w", id, m["amount"], err)
	}
	at, _ := time.Parse(time.RFC3339Nano, m["created_at"])
	return transfer{ID: id, Account: m["account"], From: m["from"], To: m["to"], Amount: engine.Money(amt),
		State: m["state"], Code: m["code"], Detail: m["detail"], CreatedAt: at}, nil
}

// setState records t's state; a final one leaves the pending set.
func (r *registry) setState(ctx context.Context, t transfer) error {
	_, err := r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, r.key("transfer", t.ID), "state", t.State, "code", t.Code, "detail", t.Detail)
		if final(t.State) {
			p.ZRem(ctx, r.key("transfers", "pending"), t.ID)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record transfer %s %s: %w", t.ID, t.State, err)
	}
	return nil
}

// lock claims the right to drive a transfer for lockTTL; unlock gives it
// back. Two drivers at once would still apply each side once (the
// shards' idempotency keys); the lock only saves the duplicate work.
func (r *registry) lock(ctx context.Context, id, owner string) bool {
	ok, err := r.rdb.SetNX(ctx, r.key("transfer", id, "lock"), owner, lockTTL).Result()
	return err == nil && ok
}

var unlockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

func (r *registry) unlock(ctx context.Context, id, owner string) {
	_ = unlockScript.Run(ctx, r.rdb, []string{r.key("transfer", id, "lock")}, owner).Err()
}

// errStopped: the test hook stopped a transfer (as if the node died).
var errStopped = errors.New("stopped by test hook")

// drive moves t through its states until it is final or a side cannot be
// decided now (a shard without a leader, a leader that did not answer):
// then it stays where it is for the sweeper.
func (g *Server) drive(ctx context.Context, t *transfer) error {
	a, err := g.reg.byID(ctx, t.Account)
	if err != nil {
		return fmt.Errorf("transfer %s: account %s: %w", t.ID, t.Account, err)
	}
	for !final(t.State) {
		if g.cfg.stopAfter != nil && g.cfg.stopAfter(t.State) {
			return errStopped
		}
		if time.Since(t.CreatedAt) > stuckAfter {
			g.log.Error("transfer not completed inside the idempotency window: settle it by hand", "transfer", t.ID, "state", t.State)
			t.State = stateStuck
			return g.reg.setState(ctx, *t)
		}
		var (
			shard, kind, key   string
			okState, rejection string
		)
		switch t.State {
		case statePending:
			shard, kind, key, okState, rejection = t.From, "withdrawals", "transfer:"+t.ID, stateWithdrawn, stateFailed
		case stateWithdrawn:
			shard, kind, key, okState, rejection = t.To, "deposits", "transfer:"+t.ID, stateCompleted, stateRefunding
		case stateRefunding:
			shard, kind, key, okState, rejection = t.From, "deposits", "transfer:"+t.ID+":refund", stateRefunded, stateStuck
		default:
			return fmt.Errorf("transfer %s: unknown state %q", t.ID, t.State)
		}
		done, code, detail := g.side(ctx, &a, shard, kind, key, t.Amount)
		if !done {
			return nil
		}
		if code == "" {
			t.State = okState
		} else {
			t.State = rejection
			if t.Code == "" { // a refund keeps the destination's reason
				t.Code, t.Detail = code, detail
			}
			if rejection == stateStuck {
				g.log.Error("transfer refund refused: settle it by hand", "transfer", t.ID, "code", code, "detail", detail)
			}
		}
		if err := g.reg.setState(ctx, *t); err != nil {
			return err
		}
	}
	return nil
}

// side runs one side of a transfer: done is false when its outcome is
// unknown or it could not be sent (retry later); code is the shard's
// rejection ("" when applied, now or before).
func (g *Server) side(ctx context.Context, a *account, shard, kind, key string, amount engine.Money) (done bool, code, detail string) {
	if p := g.ensureOn(ctx, a, shard); p != nil {
		return false, "", ""
	}
	body, _ := json.Marshal(map[string]string{"amount": amount.String(), "shard": shard})
	r, p := g.write(ctx, shard, call{method: http.MethodPost, path: "/v1/accounts/" + a.ID.String() + "/" + kind, body: body, auth: "Bearer " + g.cfg.AdminKey, idem: key})
	switch {
	case p != nil:
		return false, "", ""
	case r.status/100 == 2:
		return true, "", ""
	case r.status >= 500, r.status == http.StatusTooManyRequests, r.status == http.StatusRequestTimeout:
		return false, "", ""
	}
	var pb struct {
		Code   string `json:"code"`
		Detail string `json:"detail"`
	}
	_ = json.Unmarshal(r.body, &pb)
	if pb.Code == "" {
		pb.Code = api.CodeInternal
	}
	return true, pb.Code, pb.Detail
}

type transferJSON struct {
	ID        string  `json:"id"`
	From      string  `json:"from_shard"`
	To        string  `json:"to_shard"`
	Amount    string  `json:"amount"`
	Status    string  `json:"status"`
	Code      *string `json:"code,omitempty"`
	CreatedAt string  `json:"created_at"`
}

// createTransfer records the transfer, drives it as far as it goes now
// and answers its state: 201 completed, 202 pending (the sweeper goes on),
// 422 with the shard's code when it failed or was refunded.
func (g *Server) createTransfer(c *fiber.Ctx) error {
	a, p := requireAccount(c, 0)
	if p != nil {
		return p
	}
	idem, p := api.IdempotencyKey(c)
	if p != nil {
		return p
	}
	in, p := api.DecodeTransfer(c.Body())
	if p != nil {
		return p
	}
	ctx := c.UserContext()
	top, p := g.topology(ctx)
	if p != nil {
		return p
	}
	for _, f := range []struct{ field, name string }{{"from_shard", in.From}, {"to_shard", in.To}} {
		if !top.has(f.name) {
			return api.NewProblem(api.CodeUnknownShard, f.field, fmt.Sprintf("no engine node of shard %q was ever started", truncate(f.name, 64)))
		}
	}
	canon, _ := json.Marshal(in)
	rh := sha256.Sum256(canon)
	t := transfer{ID: uuid.Must(uuid.NewV7()).String(), Account: a.ID.String(), From: in.From, To: in.To, Amount: in.Amount, State: statePending, CreatedAt: time.Now().UTC()}
	t, _, err := g.reg.createTransfer(ctx, idem, hex.EncodeToString(rh[:]), t)
	switch {
	case errors.Is(err, errIdemReused):
		return api.NewProblem(engine.CodeIdempotencyReused, "Idempotency-Key", "the key was used with a different request")
	case err != nil:
		g.log.Warn("registry unavailable", "err", err)
		return api.NewProblem(api.CodeUnavailable, "", "the transfer cannot be recorded right now: retry with the same Idempotency-Key")
	}
	if !final(t.State) {
		owner := uuid.NewString()
		if g.reg.lock(ctx, t.ID, owner) {
			err := g.drive(ctx, &t)
			g.reg.unlock(context.Background(), t.ID, owner)
			if err != nil && !errors.Is(err, errStopped) {
				g.log.Warn("transfer not driven", "transfer", t.ID, "err", err)
			}
		}
	}
	return answerTransfer(c, t)
}

func answerTransfer(c *fiber.Ctx, t transfer) error {
	out := transferJSON{ID: t.ID, From: t.From, To: t.To, Amount: t.Amount.String(), Status: t.State, CreatedAt: t.CreatedAt.Format(time.RFC3339Nano)}
	switch t.State {
	case stateCompleted:
		return sendJSON(c, http.StatusCreated, out)
	case stateFailed, stateRefunded:
		return api.NewProblem(t.Code, "amount", fmt.Sprintf("transfer %s %s: %s", t.ID, t.State, t.Detail))
	case stateStuck:
		out.Code = &t.Code
		return sendJSON(c, http.StatusAccepted, out)
	}
	out.Status = statePending
	return sendJSON(c, http.StatusAccepted, out)
}

// sweep completes the transfers whose API node stopped driving them,
// every SweepInterval, until Shutdown.
func (g *Server) sweep() {
	defer close(g.done)
	tk := time.NewTicker(g.cfg.SweepInterval)
	defer tk.Stop()
	for {
		select {
		case <-g.ctx.Done():
			return
		case <-tk.C:
		}
		if _, err := g.sweepOnce(g.ctx); err != nil && g.ctx.Err() == nil {
			g.log.Warn("transfer sweep", "err", err)
		}
	}
}

// sweepOnce drives every pending transfer older than SweepAfter (100 at
// a time) that no one else drives; it reports how many it took.
func (g *Server) sweepOnce(ctx context.Context) (int, error) {
	upTo := strconv.FormatInt(time.Now().Add(-g.cfg.SweepAfter).UnixMilli(), 10)
	ids, err := g.cfg.Redis.ZRangeByScore(ctx, g.reg.key("transfers", "pending"), &redis.ZRangeBy{Min: "-inf", Max: upTo, Count: 100}).Result()
	if err != nil {
		return 0, fmt.Errorf("list pending transfers: %w", err)
	}
	n := 0
	for _, id := range ids {
		owner := uuid.NewString()
		if !g.reg.lock(ctx, id, owner) {
			continue
		}
		n++
		t, err := g.reg.transfer(ctx, id)
		if err == nil {
			err = g.drive(ctx, &t)
		}
		g.reg.unlock(context.Background(), id, owner)
		if errors.Is(err, errNoTransfer) {
			_ = g.cfg.Redis.ZRem(ctx, g.reg.key("transfers", "pending"), id).Err()
		} else if err != nil && !errors.Is(err, errStopped) {
			g.log.Warn("transfer not driven", "transfer", id, "err", err)
		}
	}
	return n, nil
}
