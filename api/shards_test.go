package api_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gpux/gpux/api"
	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/sequencer"
	"github.com/gpux/gpux/store"
)

// TestHealthShardFields: /healthz names the node's role and shard, whether
// it leads the shard and the fencing token it has seen.
func TestHealthShardFields(t *testing.T) {
	for _, tc := range []struct {
		name              string
		role, shard       string
		wantRole, wantSrd string
	}{
		{"default", "", "", "all", "main"},
		{"engine", api.RoleEngine, "us-east", "engine", "us-east"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *api.Config) { c.Role, c.Shard = tc.role, tc.shard })
			st, _, body := e.raw("GET", "/healthz", "", nil)
			if st != 200 {
				t.Fatalf("status %d", st)
			}
			var h map[string]any
			if err := json.Unmarshal(body, &h); err != nil {
				t.Fatal(err)
			}
			if h["role"] != tc.wantRole || h["shard"] != tc.wantSrd || h["leader"] != true || h["fencing_token"] != float64(0) {
				t.Errorf("healthz: got role %v shard %v leader %v fencing_token %v, want %s %s true 0", h["role"], h["shard"], h["leader"], h["fencing_token"], tc.wantRole, tc.wantSrd)
			}
		})
	}
}

// standby is a sequencer that answers every write as a standby does.
type standby struct{ *sequencer.Sequencer }

func (standby) Submit(context.Context, engine.Command, func(*engine.Engine, *engine.Command)) (sequencer.Outcome, error) {
	return sequencer.Outcome{}, sequencer.ErrNotLeader
}

// TestNotLeaderIs503: a write a standby refuses answers 503 no_leader with
// Retry-After; reads still answer.
func TestNotLeaderIs503(t *testing.T) {
	seq, err := sequencer.New(sequencer.Config{Journal: store.NewMemoryJournal(), TickInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	srv := api.NewServer(api.Config{Sequencer: standby{seq}, AdminKey: adminKey, Role: api.RoleEngine, Shard: "us-east"})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Listener(ln)
	if err := seq.Recover(bg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(bg)
	done := make(chan struct{})
	go func() { defer close(done); seq.Run(ctx) }()
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(bg, 10*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx)
		_ = seq.Close(sctx)
		cancel()
		<-done
	})
	e := &env{tb: t, url: "http://" + ln.Addr().String()}
	st, hdr, body := e.raw("POST", "/v1/accounts", adminKey, []byte(`{"name":"a","roles":["buyer"]}`))
	wantProblem(t, st, hdr, body, http.StatusServiceUnavailable, api.CodeNoLeader, "")
	if hdr.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	if st, _, body := e.raw("GET", "/v1/markets/h100-sxm.us-east/book", "", nil); st != 200 {
		t.Errorf("read on a standby: %d %s", st, body)
	}
}

// TestDepositNamesShard: a deposit or withdrawal on an engine node may name
// its own shard and no other.
func TestDepositNamesShard(t *testing.T) {
	e := newEnv(t, func(c *api.Config) { c.Role, c.Shard = api.RoleEngine, "us-east" })
	a := e.account("acme", "", "buyer")
	for _, tc := range []struct {
		body   string
		status int
		code   string
	}{
		{`{"amount":"10"}`, 200, ""},
		{`{"amount":"10","shard":"us-east"}`, 200, ""},
		{`{"amount":"10","shard":"eu-west"}`, 422, api.CodeWrongShard},
		{`{"amount":"10","shard":""}`, 422, api.CodeInvalidValue},
		{`{"amount":"10","shard":"` + strings.Repeat("x", 65) + `"}`, 422, api.CodeInvalidValue},
		{`{"amount":"10","shard":7}`, 422, api.CodeInvalidValue},
	} {
		t.Run(tc.body, func(t *testing.T) {
			for _, path := range []string{"/deposits", "/withdrawals"} {
				st, hdr, body := e.raw("POST", "/v1/accounts/"+a.id+path, adminKey, []byte(tc.body))
				if tc.status == 200 {
					if st != 200 {
						t.Errorf("%s: got %d %s, want 200", path, st, body)
					}
					continue
				}
				wantProblem(t, st, hdr, body, tc.status, tc.code, "shard")
			}
		})
	}
}

// TestProvisionAccount: the internal route creates an account with the
// caller's id and key hash once; a retry answers it; another account on
// the id or key is a conflict; the key then works on this node.
func TestProvisionAccount(t *testing.T) {
	e := newEnv(t, nil)
	key, h := api.NewAPIKey()
	id := "0192f0c8-1111-7000-8000-000000000001"
	body := func(name, hash string) []byte {
		b, _ := json.Marshal(map[string]any{"name": name, "roles": []string{"buyer"}, "key_hash": hash})
		return b
	}
	hash := hex.EncodeToString(h[:])
	path := "/v1/internal/accounts/" + id
	if st, _, b := e.raw("PUT", path, adminKey, body("acme", hash)); st != 201 {
		t.Fatalf("create: %d %s", st, b)
	}
	if st, _, b := e.raw("PUT", path, adminKey, body("acme", hash)); st != 200 {
		t.Fatalf("retry: %d %s", st, b)
	}
	var acct struct{ ID string }
	st, _, b := e.raw("GET", "/v1/account", key, nil)
	if err := json.Unmarshal(b, &acct); st != 200 || err != nil || acct.ID != id {
		t.Fatalf("the key on this node: %d %s, want account %s", st, b, id)
	}
	other := sha256.Sum256([]byte("another key"))
	for _, tc := range []struct {
		name, path, key string
		body            []byte
		status          int
		code, field     string
	}{
		{"other name", path, adminKey, body("other", hash), 409, engine.CodeDuplicateID, "-"},
		{"other key", path, adminKey, body("acme", hex.EncodeToString(other[:])), 409, engine.CodeDuplicateID, "-"},
		{"key on other id", "/v1/internal/accounts/0192f0c8-1111-7000-8000-000000000002", adminKey, body("acme", hash), 409, engine.CodeDuplicateID, "-"},
		{"short hash", path, adminKey, body("acme", "abc"), 422, api.CodeInvalidValue, "key_hash"},
		{"upper hash", path, adminKey, body("acme", strings.ToUpper(hash)), 422, api.CodeInvalidValue, "key_hash"},
		{"no hash", path, adminKey, []byte(`{"name":"acme","roles":["buyer"]}`), 422, api.CodeMissingField, "key_hash"},
		{"bad name", path, adminKey, body("a\u202eb", hash), 422, engine.CodeInvalidName, "name"},
		{"account key", path, key, body("acme", hash), 403, engine.CodeForbidden, ""},
		{"no key", path, "", body("acme", hash), 401, api.CodeUnauthorized, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, hdr, b := e.raw("PUT", tc.path, tc.key, tc.body)
			wantProblem(t, st, hdr, b, tc.status, tc.code, tc.field)
		})
	}
}

// TestTransferOnOneShard: a node that runs one shard refuses every
// transfer with a precise code.
func TestTransferOnOneShard(t *testing.T) {
	for _, tc := range []struct {
		role, body, code, field string
	}{
		{"", `{"from_shard":"main","to_shard":"eu-west","amount":"1"}`, api.CodeUnknownShard, "to_shard"},
		{"", `{"from_shard":"eu-west","to_shard":"main","amount":"1"}`, api.CodeUnknownShard, "from_shard"},
		{"", `{"from_shard":"main","to_shard":"main","amount":"1"}`, api.CodeSameShard, "to_shard"},
		{"", `{"from_shard":"main","to_shard":"x","amount":"0"}`, engine.CodeInvalidAmount, "amount"},
		{api.RoleEngine, `{"from_shard":"main","to_shard":"eu-west","amount":"1"}`, api.CodeWrongShard, "to_shard"},
	} {
		t.Run(tc.role+tc.body, func(t *testing.T) {
			e := newEnv(t, func(c *api.Config) { c.Role = tc.role })
			a := e.account("acme", "10", "buyer")
			st, hdr, b := e.raw("POST", "/v1/account/transfers", a.key, []byte(tc.body))
			wantProblem(t, st, hdr, b, 422, tc.code, tc.field)
		})
	}
}

// TestGatewayRequestsNotLimitedTwice: requests an API node forwards
// (GatewayHeader with the admin key) are not counted by an engine node's
// rate limit; a wrong header value is counted as any request.
func TestGatewayRequestsNotLimitedTwice(t *testing.T) {
	e := newEnv(t, func(c *api.Config) { c.RateLimit = 1 })
	limited := func(hdr ...string) int {
		n := 0
		for range 10 {
			if st, _, _ := e.raw("GET", "/v1/markets", "", nil, hdr...); st == http.StatusTooManyRequests {
				n++
			}
		}
		return n
	}
	if n := limited(api.GatewayHeader, adminKey); n != 0 {
		t.Errorf("forwarded requests limited %d times, want 0", n)
	}
	if n := limited(api.GatewayHeader, "wrong"); n == 0 {
		t.Error("requests with a wrong gateway header were not limited")
	}
}
