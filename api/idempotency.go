package api

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/store"
)

// adminIdem makes the admin's creating POSTs (accounts, deposits,
// withdrawals) idempotent per Idempotency-Key. Bids and listings do not use
// it: the engine itself remembers their keys, journaled with the command.
//
// Here the exact first answer is stored after the command succeeded, in
// the read models when the server has them (else in memory), for 24 h, and
// requests with the same key are serialised in this process. The engine
// also remembers the key, journaled with the command, so a retry whose
// stored answer was lost (a crash, a 503 after the journal took the
// command) still applies nothing twice: it is answered from current state.
// An account's API key is shown once, in the first answer only: the
// stored answer holds "api_key": null (see redactor).
type adminIdem struct {
	rm store.ReadModelStore

	mu    sync.Mutex
	locks map[string]*keyLock
	mem   map[string]memAnswer
}

type keyLock struct {
	mu   sync.Mutex
	refs int
}

type memAnswer struct {
	value   []byte
	expires time.Time
}

// redactor is an answer holding a secret: redacted is the same answer
// without it, the form that is stored for replays.
type redactor interface {
	redacted() any
}

var _ redactor = accountCreatedJSON{}

// redacted is the account's answer without its API key, as a replay
// shows it: "api_key": null, "api_key_shown": false.
func (a accountCreatedJSON) redacted() any {
	a.APIKey, a.APIKeyShown = nil, false
	return a
}

// storedAnswer is what is remembered under a key.
type storedAnswer struct {
	Hash   string          `json:"h"`
	Status int             `json:"s"`
	Body   json.RawMessage `json:"b"`
}

const (
	adminIdemScope = "admin"
	adminIdemTTL   = time.Duration(engine.IdempotencyWindow) * time.Millisecond
)

func newAdminIdem(rm store.ReadModelStore) *adminIdem {
	return &adminIdem{rm: rm, locks: map[string]*keyLock{}, mem: map[string]memAnswer{}}
}

func (a *adminIdem) lock(key string) func() {
	a.mu.Lock()
	l := a.locks[key]
	if l == nil {
		l = &keyLock{}
		a.locks[key] = l
	}
	l.refs++
	a.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		a.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(a.locks, key)
		}
		a.mu.Unlock()
	}
}

func (a *adminIdem) get(ctx context.Context, key string) ([]byte, bool, error) {
	if a.rm != nil {
		return a.rm.GetIdempotent(ctx, adminIdemScope, key)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	for k, v := range a.mem {
		if now.After(v.expires) {
			delete(a.mem, k)
		}
	}
	v, ok := a.mem[key]
	return v.value, ok, nil
}

func (a *adminIdem) put(ctx context.Context, key string, value []byte) error {
	if a.rm != nil {
		return a.rm.PutIdempotent(ctx, adminIdemScope, key, value, adminIdemTTL)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.mem[key] = memAnswer{value: value, expires: time.Now().Add(adminIdemTTL)}
	return nil
}

// do runs fn once per key and hash and answers with its result; a repeat
// with the same key gets the stored answer, one with another body 422
// idempotency_key_reused. Without a key it just runs fn.
func (a *adminIdem) do(c *fiber.Ctx, key string, hash [32]byte, fn func() (int, any, *Problem)) error {
	if key == "" {
		status, body, p := fn()
		if p != nil {
			return p
		}
		return sendJSON(c, status, body)
	}
	unlock := a.lock(key)
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h := hex.EncodeToString(hash[:])
	if b, ok, err := a.get(ctx, key); err != nil {
		return problem(CodeUnavailable, "", "idempotency keys cannot be checked right now")
	} else if ok {
		var st storedAnswer
		if json.Unmarshal(b, &st) == nil {
			if st.Hash != h {
				return problem(engine.CodeIdempotencyReused, "Idempotency-Key", "the key was used with a different request")
			}
			c.Status(st.Status)
			c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
			return c.Send(st.Body)
		}
	}
	status, body, p := fn()
	if p != nil {
		return p
	}
	raw, err := jsonMarshal(body)
	if err != nil {
		return err
	}
	// The stored answer is what a replay gets; a secret in it (a new API
	// key) is left out, so it is never at rest in plain text.
	keep := raw
	if r, ok := body.(redactor); ok {
		if keep, err = jsonMarshal(r.redacted()); err != nil {
			return err
		}
	}
	stored, _ := json.Marshal(storedAnswer{Hash: h, Status: status, Body: keep})
	if err := a.put(ctx, key, stored); err != nil {
		// The command is applied; only a retry's dedup is lost.
		c.Set("Idempotency-Stored", "false")
	}
	c.Status(status)
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	if status == 0 {
		c.Status(http.StatusOK)
	}
	return c.Send(raw)
}
