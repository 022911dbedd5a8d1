package api

import (
	"crypto/subtle"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/gpux/gpux/engine"
)

// Roles of a node (gpuxd --role) and the shard a node runs by default.
const (
	RoleAll    = "all"    // one process: every market, one shard
	RoleEngine = "engine" // one shard of several, behind API nodes
	RoleAPI    = "api"    // package gateway: no shard, routes to the engine nodes
	// DefaultShard owns every market of the catalogue that no region shard
	// owns.
	DefaultShard = "main"
)

// GatewayHeader, sent by an API node with the admin key as its value,
// marks a request the API node has already rate-limited: an engine node
// does not count it again (every client of an API node would otherwise
// share that node's address bucket).
const GatewayHeader = "X-Gpux-Gateway"

// ProvisionPath is the internal route through which an API node creates an
// account, with the id and API key hash the registry holds, on every shard
// (PUT, admin key only).
const ProvisionPath = "/v1/internal/accounts/:id"

// TransfersPath moves money between an account's wallets on two shards.
const TransfersPath = "/v1/account/transfers"

// shardRoutes registers what only matters with several shards. An
// engine node (or a single node) serves them too, so every node answers
// every route of the contract.
func (s *Server) shardRoutes(v1 fiber.Router) {
	v1.Put(strings.TrimPrefix(ProvisionPath, "/v1"), s.provisionAccount)
	v1.Post(strings.TrimPrefix(TransfersPath, "/v1"), s.createTransfer)
}

// fromGateway reports a request an API node forwarded (GatewayHeader
// holding the admin key).
func (s *Server) fromGateway(c *fiber.Ctx) bool {
	v := c.Get(GatewayHeader)
	return v != "" && s.cfg.AdminKey != "" && subtle.ConstantTimeCompare([]byte(v), []byte(s.cfg.AdminKey)) == 1
}

type provisionJSON struct {
	Name    *string  `json:"name"`
	Roles   []string `json:"roles"`
	KeyHash *string  `json:"key_hash"`
}

// DecodeProvision validates the body of the internal account route:
// {"name", "roles", "key_hash"} where key_hash is the lowercase hex SHA-256
// of the account's API key. Codes as POST /v1/accounts, and invalid_value
// (field key_hash) for a hash that is not 64 hex digits.
func DecodeProvision(body []byte) (name string, roles engine.Role, keyHash [32]byte, p *Problem) {
	var r provisionJSON
	if p := decodeStrict(body, &r, fieldCodes); p != nil {
		return "", 0, keyHash, p
	}
	in, p := createAccountJSON{Name: r.Name, Roles: r.Roles}.validate()
	if p != nil {
		return "", 0, keyHash, p
	}
	if r.KeyHash == nil {
		return "", 0, keyHash, problem(CodeMissingField, "key_hash", "key_hash is required")
	}
	b, err := hex.DecodeString(*r.KeyHash)
	if err != nil || len(b) != len(keyHash) || strings.ToLower(*r.KeyHash) != *r.KeyHash {
		return "", 0, keyHash, problem(CodeInvalidValue, "key_hash", "key_hash must be 64 lowercase hex digits (the SHA-256 of the API key)")
	}
	copy(keyHash[:], b)
	return in.Name, in.Roles, keyHash, nil
}

// provisionAccount creates the account with the caller's id and key hash
// (201), or answers the same account when it already exists with the same
// key hash, name and roles (200: a retry). Any other account holding the
// id or the key answers 409 duplicate_id and changes nothing.
func (s *Server) provisionAccount(c *fiber.Ctx) error {
	if p := requireAdmin(c); p != nil {
		return p
	}
	id, p := pathID(c, "account")
	if p != nil {
		return p
	}
	name, roles, hash, p := DecodeProvision(c.Body())
	if p != nil {
		return p
	}
	var acct engine.AccountView
	var ok bool
	_, p = s.submit(engine.Command{Kind: engine.CmdCreateAccount, Target: id, Name: name, Roles: roles, KeyHash: hash},
		func(e *engine.Engine, _ *engine.Command) { acct, ok = e.Account(id) })
	switch {
	case p == nil && ok:
		return sendJSON(c, http.StatusCreated, renderAccount(acct))
	case p == nil:
		return problem(CodeInternal, "", "the account was not created")
	case p.Code != engine.CodeDuplicateID:
		return p
	}
	var same bool
	s.read(func(e *engine.Engine) {
		var a engine.AccountView
		if a, _, ok = e.AccountByKeyHash(hash); ok {
			acct, same = a, a.ID == id && a.Name == name && a.Roles == roles
		}
	})
	if !same {
		return p
	}
	return sendJSON(c, http.StatusOK, renderAccount(acct))
}

// Transfer is a validated request to move money between two shards'
// wallets of the caller's account.
type Transfer struct {
	From   string       `json:"from_shard"`
	To     string       `json:"to_shard"`
	Amount engine.Money `json:"amount"`
}

type transferJSON struct {
	From   *string `json:"from_shard"`
	To     *string `json:"to_shard"`
	Amount *string `json:"amount"`
}

// DecodeTransfer validates {"from_shard", "to_shard", "amount"}. Codes:
// malformed_json, unknown_field, duplicate_key, missing_field,
// invalid_amount, invalid_value (a shard name empty or over 64 bytes) and
// same_shard.
func DecodeTransfer(body []byte) (Transfer, *Problem) {
	var r transferJSON
	if p := decodeStrict(body, &r, fieldCodes); p != nil {
		return Transfer{}, p
	}
	for _, f := range []struct {
		name string
		v    *string
	}{{"from_shard", r.From}, {"to_shard", r.To}} {
		if f.v == nil {
			return Transfer{}, problemf(CodeMissingField, f.name, "%s is required", f.name)
		}
		if n := len(*f.v); n == 0 || n > maxShardLen {
			return Transfer{}, problemf(CodeInvalidValue, f.name, "%s must be a shard name of 1 to %d bytes", f.name, maxShardLen)
		}
	}
	if r.Amount == nil {
		return Transfer{}, problem(CodeMissingField, "amount", "amount is required")
	}
	v, err := engine.ParseTicks(*r.Amount)
	if err != nil || v <= 0 || v > engine.MaxAmount {
		return Transfer{}, problem(engine.CodeInvalidAmount, "amount", "amount must be a positive decimal string with at most 4 places, at most 1000000000000")
	}
	if *r.From == *r.To {
		return Transfer{}, problem(CodeSameShard, "to_shard", "to_shard must differ from from_shard")
	}
	return Transfer{From: *r.From, To: *r.To, Amount: engine.Money(v)}, nil
}

// createTransfer: a node that runs one shard has no other wallet to move
// money to, so every valid transfer names a shard it does not know (role
// all) or is sent to the wrong node (role engine: API nodes move money).
func (s *Server) createTransfer(c *fiber.Ctx) error {
	if _, p := requireAccount(c, 0); p != nil {
		return p
	}
	if _, p := idemKeyHeader(c); p != nil {
		return p
	}
	t, p := DecodeTransfer(c.Body())
	if p != nil {
		return p
	}
	field, other := "to_shard", t.To
	if t.From != s.cfg.Shard {
		field, other = "from_shard", t.From
	}
	if s.cfg.Role == RoleEngine {
		return problemf(CodeWrongShard, field, "shard %q is not this node's (%q): transfers between shards go through an API node", truncate(other, maxShardLen), s.cfg.Shard)
	}
	return problemf(CodeUnknownShard, field, "this exchange runs one shard, %q: there is no shard %q", s.cfg.Shard, truncate(other, maxShardLen))
}

// ---- what API nodes (package gateway) share with this package ----

// NewProblem returns the problem of code (its status from the one code →
// status table; a 503 carries Retry-After: 1).
func NewProblem(code, field, detail string) *Problem { return problem(code, field, detail) }

// WriteProblem renders p as application/problem+json.
func WriteProblem(c *fiber.Ctx, p *Problem) error { return writeProblem(c, p) }

// ErrorHandler is a Fiber error handler that renders every error as this
// package's server does: a *Problem as itself, Fiber's errors mapped to
// codes, anything else a logged 500.
func ErrorHandler(log *slog.Logger) fiber.ErrorHandler {
	return func(c *fiber.Ctx, err error) error { return renderError(log, c, err) }
}

// DecodeBody is the /v1 middleware that undoes Content-Encoding under the
// body limit (see decodeBody).
func DecodeBody(c *fiber.Ctx) error { return decodeBodyLimited(c) }

// DecodeCreateAccount validates the body of POST /v1/accounts.
func DecodeCreateAccount(body []byte) (name string, roles engine.Role, p *Problem) {
	in, p := decodeCreateAccount(body)
	return in.Name, in.Roles, p
}

// IdempotencyKey reads and bounds the Idempotency-Key header ("" when
// absent; 422 invalid_idempotency_key when too long).
func IdempotencyKey(c *fiber.Ctx) (string, *Problem) { return idemKeyHeader(c) }

// BearerKey returns the key of "Authorization: Bearer <key>" (a copy) and
// whether an Authorization header was sent at all.
func BearerKey(c *fiber.Ctx) (key string, presented bool) { return bearer(c) }

// Unauthorized is the 401 of a request without a valid key (presented:
// whether it sent one).
func Unauthorized(presented bool) *Problem { return unauthorized(&caller{presented: presented}) }

// RateLimiter is a token bucket per caller: rate requests a second, burst
// 2×rate.
type RateLimiter struct{ l *limiter }

// NewRateLimiter returns a limiter, or nil when rate ≤ 0 (no limit).
func NewRateLimiter(rate int) *RateLimiter {
	if rate <= 0 {
		return nil
	}
	return &RateLimiter{l: newLimiter(rate)}
}

// Limit spends one token of id's bucket and sets the RateLimit-* headers;
// it answers 429 rate_limited (with Retry-After) when none is left. A nil
// limiter admits everything.
func (r *RateLimiter) Limit(c *fiber.Ctx, id string) *Problem {
	if r == nil {
		return nil
	}
	return rateLimit(r.l, c, id, time.Now())
}
