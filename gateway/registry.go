package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gpux/gpux/engine"
)

// registry is the account registry every API node reads to authenticate
// without asking a shard, under gpux:{<registry>}:
//
//	keys               hash  lowercase hex SHA-256 of an API key → account id
//	account:<id>       hash  name, roles (comma-separated), created_at
//	                         (RFC 3339), key_hash, and shard:<S> = 1 once
//	                         the account exists on shard S
//	idem:account:<key> string  "<request hash>:<account id>", 24 h: an
//	                         admin's Idempotency-Key for POST /v1/accounts
//	transfer:<id>, transfers:pending, idem:transfer:...: see transfer.go
//
// It never holds an API key, only its SHA-256.
type registry struct {
	rdb redis.UniversalClient
	tag string

	// cache holds accounts found by key hash for cacheTTL: an account's
	// id, name, roles and key never change, so only the shard marks can be
	// behind (a write then provisions again, which is idempotent). Unknown
	// keys are not cached: a new account is valid at once on every node.
	mu    sync.Mutex
	cache map[string]cachedAccount
}

type cachedAccount struct {
	a     account
	until time.Time
}

const (
	cacheTTL = 5 * time.Second
	cacheMax = 4096
)

func (a account) clone() account {
	a.Shards = maps.Clone(a.Shards)
	return a
}

func (r *registry) cached(hash string, now time.Time) (account, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.cache[hash]
	if !ok || now.After(c.until) {
		return account{}, false
	}
	return c.a.clone(), true
}

func (r *registry) remember(a account, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cache == nil || len(r.cache) >= cacheMax {
		r.cache = make(map[string]cachedAccount, 64)
	}
	r.cache[a.KeyHash] = cachedAccount{a: a.clone(), until: now.Add(cacheTTL)}
}

// forget drops a cached account (its shard marks changed).
func (r *registry) forget(hash string) {
	r.mu.Lock()
	delete(r.cache, hash)
	r.mu.Unlock()
}

func (r *registry) key(parts ...string) string {
	return "gpux:{" + r.tag + "}:" + strings.Join(parts, ":")
}

// account is an account as the registry holds it.
type account struct {
	ID        engine.ID
	Name      string
	Roles     engine.Role
	KeyHash   string // lowercase hex
	CreatedAt string // RFC 3339
	Shards    map[string]bool
}

var errNoAccount = errors.New("no such account")

// idemTTL is how long an Idempotency-Key is remembered, as the engine
// does.
const idemTTL = time.Duration(engine.IdempotencyWindow) * time.Millisecond

// byKey resolves an API key to its account (errNoAccount when unknown).
func (r *registry) byKey(ctx context.Context, key string) (account, error) {
	h := sha256.Sum256([]byte(key))
	hash := hex.EncodeToString(h[:])
	now := time.Now()
	if a, ok := r.cached(hash, now); ok {
		return a, nil
	}
	id, err := r.rdb.HGet(ctx, r.key("keys"), hash).Result()
	if errors.Is(err, redis.Nil) {
		return account{}, errNoAccount
	}
	if err != nil {
		return account{}, fmt.Errorf("look up key: %w", err)
	}
	a, err := r.byID(ctx, id)
	if err != nil {
		return account{}, err
	}
	if a.KeyHash != hash {
		return account{}, errNoAccount
	}
	r.remember(a, now)
	return a, nil
}

// byID reads an account (errNoAccount when unknown).
func (r *registry) byID(ctx context.Context, id string) (account, error) {
	pid, err := engine.ParseID(strings.ToLower(id))
	if err != nil {
		return account{}, errNoAccount
	}
	m, err := r.rdb.HGetAll(ctx, r.key("account", pid.String())).Result()
	if err != nil {
		return account{}, fmt.Errorf("read account %s: %w", pid, err)
	}
	if len(m) == 0 || m["key_hash"] == "" {
		return account{}, errNoAccount
	}
	a := account{ID: pid, Name: m["name"], KeyHash: m["key_hash"], CreatedAt: m["created_at"], Shards: map[string]bool{}}
	for _, n := range strings.Split(m["roles"], ",") {
		switch n {
		case "buyer":
			a.Roles |= engine.RoleBuyer
		case "owner":
			a.Roles |= engine.RoleOwner
		}
	}
	for k := range m {
		if s, ok := strings.CutPrefix(k, "shard:"); ok {
			a.Shards[s] = true
		}
	}
	return a, nil
}

// markShard records that the account exists on shard.
func (r *registry) markShard(ctx context.Context, a *account, shard string) error {
	r.forget(a.KeyHash)
	if err := r.rdb.HSet(ctx, r.key("account", a.ID.String()), "shard:"+shard, "1").Err(); err != nil {
		return fmt.Errorf("mark account %s on shard %s: %w", a.ID, shard, err)
	}
	return nil
}

// createScript registers an account once per Idempotency-Key: when the
// key's record exists it returns it and writes nothing; otherwise it
// writes the record, the account and its key hash, atomically (all keys
// share the registry's hash tag).
//
// KEYS: idem record, account hash, keys hash.
// ARGV: idem value, id, key hash, name, roles, created_at, ttl ms.
var createScript = redis.NewScript(`
if KEYS[1] ~= KEYS[2] then
  local prev = redis.call('GET', KEYS[1])
  if prev then return prev end
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[7])
end
redis.call('HSET', KEYS[2], 'name', ARGV[4], 'roles', ARGV[5], 'created_at', ARGV[6], 'key_hash', ARGV[3])
redis.call('HSET', KEYS[3], ARGV[3], ARGV[2])
return false
`)

// create registers a new account with a fresh id and the SHA-256 of its
// key. With an idempotency key it is done once: a repeat returns the
// first account and replayed (same request hash) or errIdemReused.
func (r *registry) create(ctx context.Context, idem string, reqHash string, a account) (account, bool, error) {
	idemKey := r.key("account", a.ID.String()) // no key: the script skips the record
	if idem != "" {
		idemKey = r.key("idem", "account", idem)
	}
	roles := strings.Join(a.Roles.Names(), ",")
	res, err := createScript.Run(ctx, r.rdb,
		[]string{idemKey, r.key("account", a.ID.String()), r.key("keys")},
		reqHash+":"+a.ID.String(), a.ID.String(), a.KeyHash, a.Name, roles, a.CreatedAt, idemTTL.Milliseconds()).Result()
	if errors.Is(err, redis.Nil) {
		return a, false, nil
	}
	if err != nil {
		return account{}, false, fmt.Errorf("register account: %w", err)
	}
	prev, _ := res.(string)
	h, id, _ := strings.Cut(prev, ":")
	if h != reqHash {
		return account{}, false, errIdemReused
	}
	first, err := r.byID(ctx, id)
	if err != nil {
		return account{}, false, fmt.Errorf("read the key's first account %s: %w", id, err)
	}
	return first, true, nil
}

var errIdemReused = errors.New("idempotency key reused with another request")

// pinScript records which shard an Idempotency-Key's write went to, or
// answers the shard it went to before. KEYS: the record. ARGV: shard, ttl
// ms. It answers "1:<shard>" when it made the record, "0:<shard>" when
// the record was there.
var pinScript = redis.NewScript(`
local prev = redis.call('GET', KEYS[1])
if prev then return '0:' .. prev end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return '1:' .. ARGV[1]
`)

// pin returns the shard the write with actor's Idempotency-Key key goes
// to: the first one it went to (24 h), so a retry reaches the shard that
// remembers the key; a retry that would route elsewhere has another body.
// made reports that this call made the record.
func (r *registry) pin(ctx context.Context, actor, key, shard string) (first string, made bool, err error) {
	res, err := pinScript.Run(ctx, r.rdb, []string{r.pinKey(actor, key)}, shard, idemTTL.Milliseconds()).Text()
	if err != nil {
		return "", false, fmt.Errorf("pin idempotency key: %w", err)
	}
	m, first, _ := strings.Cut(res, ":")
	return first, m == "1", nil
}

// unpin forgets a record pin made, for a write the shard refused (a
// refused write does not use up its key).
func (r *registry) unpin(ctx context.Context, actor, key string) error {
	return r.rdb.Del(ctx, r.pinKey(actor, key)).Err()
}

func (r *registry) pinKey(actor, key string) string { return r.key("idem", "route", actor, key) }
