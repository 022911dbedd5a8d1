package api

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/gpux/gpux/engine"
)

// KeyPrefix starts every API key the server issues.
const KeyPrefix = "gpux_"

// NewAPIKey returns a fresh random API key and its SHA-256, which is all the
// engine stores.
func NewAPIKey() (string, [32]byte) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("api: crypto/rand failed: " + err.Error())
	}
	key := KeyPrefix + hex.EncodeToString(b[:])
	return key, sha256.Sum256([]byte(key))
}

// caller is who sent a request, resolved once per request.
type caller struct {
	presented bool // an Authorization header was sent
	valid     bool // it named the admin key or an account's key
	admin     bool
	account   engine.AccountView
}

const callerKey = "gpux.caller"

func callerOf(c *fiber.Ctx) *caller {
	if w, ok := c.Locals(callerKey).(*caller); ok {
		return w
	}
	return &caller{}
}

// bearer extracts the key of "Authorization: Bearer <key>" (a copy).
func bearer(c *fiber.Ctx) (string, bool) {
	h := c.Get(fiber.HeaderAuthorization)
	if h == "" {
		return "", false
	}
	scheme, key, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", true
	}
	return strings.Clone(strings.TrimSpace(key)), true
}

// authenticate resolves a presented key: the admin key, or the account
// whose key hashes to the same SHA-256.
func (s *Server) authenticate(key string) caller {
	w := caller{presented: true}
	if key == "" {
		return w
	}
	if s.cfg.AdminKey != "" && subtle.ConstantTimeCompare([]byte(key), []byte(s.cfg.AdminKey)) == 1 {
		w.valid, w.admin = true, true
		return w
	}
	h, cached := s.keys.get(key)
	if !cached {
		h = sha256.Sum256([]byte(key))
	}
	var (
		acct   engine.AccountView
		stored [32]byte
		ok     bool
	)
	s.read(func(e *engine.Engine) { acct, stored, ok = e.AccountByKeyHash(h) })
	if ok && subtle.ConstantTimeCompare(stored[:], h[:]) == 1 {
		w.valid, w.account = true, acct
		if !cached {
			s.keys.put(key, h)
		}
	}
	return w
}

// keyCacheMax bounds the key hashes kept; a full cache starts over.
const keyCacheMax = 4096

// keyCache remembers the SHA-256 of keys that named an account, so a
// client's every request does not hash its key again. It holds hashes
// only: the account is still looked up in the engine on each request, so
// nothing in it can go stale, and only keys that matched an account get
// in, so unknown keys cannot fill it.
type keyCache struct {
	mu sync.RWMutex
	m  map[string][32]byte
}

func (k *keyCache) get(key string) ([32]byte, bool) {
	k.mu.RLock()
	h, ok := k.m[key]
	k.mu.RUnlock()
	return h, ok
}

func (k *keyCache) put(key string, h [32]byte) {
	k.mu.Lock()
	if k.m == nil || len(k.m) >= keyCacheMax {
		k.m = make(map[string][32]byte, 64)
	}
	k.m[key] = h
	k.mu.Unlock()
}

// identify is the /v1 middleware that resolves the caller and applies the
// rate limit of its key (or of its IP address when it sent no valid key).
func (s *Server) identify(c *fiber.Ctx) error {
	if !s.cfg.Sequencer.Status().Ready {
		return problem(CodeNotReady, "", "the exchange is still recovering")
	}
	w := &caller{}
	if key, ok := bearer(c); ok {
		*w = s.authenticate(key)
	}
	c.Locals(callerKey, w)
	// A request an API node forwards was limited there already.
	if s.limiter != nil && !s.fromGateway(c) {
		id := "ip:" + c.IP()
		switch {
		case w.admin:
			id = "admin"
		case w.valid:
			id = "acct:" + w.account.ID.String()
		}
		if p := rateLimit(s.limiter, c, id, time.Now()); p != nil {
			return p
		}
	}
	return c.Next()
}

// rateLimit spends one token of id's bucket, setting the RateLimit-*
// headers; 429 rate_limited with Retry-After when none is left.
func rateLimit(l *limiter, c *fiber.Ctx, id string, now time.Time) *Problem {
	ok, remaining, wait := l.take(id, now)
	c.Set("RateLimit-Limit", strconv.Itoa(l.rate))
	c.Set("RateLimit-Remaining", strconv.Itoa(remaining))
	if ok {
		return nil
	}
	secs := int(math.Ceil(wait.Seconds()))
	if secs < 1 {
		secs = 1
	}
	c.Set("RateLimit-Reset", strconv.Itoa(secs))
	p := problemf(CodeRateLimited, "", "rate limit of %d requests per second exceeded", l.rate)
	p.retryAfter = secs
	return p
}

// requireAccount answers the caller's account when it holds every role of
// need: 401 without a valid key, 403 for the admin key or a missing role.
func requireAccount(c *fiber.Ctx, need engine.Role) (engine.AccountView, *Problem) {
	w := callerOf(c)
	switch {
	case !w.valid:
		return engine.AccountView{}, unauthorized(w)
	case w.admin:
		return engine.AccountView{}, problem(engine.CodeForbidden, "", "the admin key has no account; use an account's key")
	case !w.account.Roles.Has(need):
		return engine.AccountView{}, problemf(engine.CodeForbidden, "", "the account lacks the %s role", strings.Join(need.Names(), " and "))
	}
	return w.account, nil
}

// requireAdmin admits only the admin key.
func requireAdmin(c *fiber.Ctx) *Problem {
	w := callerOf(c)
	switch {
	case !w.valid:
		return unauthorized(w)
	case !w.admin:
		return problem(engine.CodeForbidden, "", "this needs the admin key")
	}
	return nil
}

func unauthorized(w *caller) *Problem {
	if w.presented {
		return problem(CodeUnauthorized, "", "unknown API key (send Authorization: Bearer <key>)")
	}
	return problem(CodeUnauthorized, "", "an API key is needed (send Authorization: Bearer <key>)")
}

// limiter is a token bucket per key: rate tokens a second, burst 2×rate.
type limiter struct {
	rate  int
	burst float64

	mu      sync.Mutex
	buckets map[string]*bucket
	sweepAt time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rate int) *limiter {
	if rate <= 0 {
		return nil
	}
	return &limiter{rate: rate, burst: float64(2 * rate), buckets: map[string]*bucket{}}
}

// take spends one token of key's bucket; when none is left it reports how
// long until one is.
func (l *limiter) take(key string, now time.Time) (ok bool, remaining int, wait time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.After(l.sweepAt) {
		l.sweep(now)
		l.sweepAt = now.Add(time.Minute)
	}
	b := l.buckets[key]
	if b == nil {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = math.Min(l.burst, b.tokens+dt*float64(l.rate))
		b.last = now
	}
	if b.tokens < 1 {
		return false, 0, time.Duration((1 - b.tokens) / float64(l.rate) * float64(time.Second))
	}
	b.tokens--
	return true, int(b.tokens), 0
}

// sweep forgets buckets that have refilled completely: they would start
// full anyway.
func (l *limiter) sweep(now time.Time) {
	full := time.Duration(l.burst / float64(l.rate) * float64(time.Second))
	for k, b := range l.buckets {
		if now.Sub(b.last) > full {
			delete(l.buckets, k)
		}
	}
}
