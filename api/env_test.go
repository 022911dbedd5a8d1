package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gpux/gpux/api"
	"github.com/gpux/gpux/client"
	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/pricing"
	"github.com/gpux/gpux/sequencer"
	"github.com/gpux/gpux/store"
	"github.com/gpux/gpux/store/redistest"
)

const adminKey = "test-admin-key"

// env is a real server on a random loopback port: the sequencer over a
// Redis journal on an isolated shard, and the API in front of it.
type env struct {
	tb      testing.TB
	url     string
	redis   string
	shard   string
	cfg     api.Config
	journal *store.RedisJournal
	seq     *sequencer.Sequencer
	srv     *api.Server
	admin   *client.Client
	anon    *client.Client
	cancel  context.CancelFunc
	runDone chan struct{}
	stopped bool
	seqMod  func(*sequencer.Config) // adjusts the sequencer's config; nil = none
}

// newEnv starts a server; mod adjusts the API config.
func newEnv(tb testing.TB, mod func(*api.Config)) *env {
	tb.Helper()
	return newEnvSeq(tb, mod, nil)
}

// newEnvSeq starts a server; mod adjusts the API config, seqMod the
// sequencer's.
func newEnvSeq(tb testing.TB, mod func(*api.Config), seqMod func(*sequencer.Config)) *env {
	tb.Helper()
	e := &env{tb: tb, redis: redistest.URL(tb), shard: redistest.Shard(tb), seqMod: seqMod}
	e.cfg = api.Config{AdminKey: adminKey, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if mod != nil {
		mod(&e.cfg)
	}
	e.start()
	tb.Cleanup(e.stop)
	return e
}

// start opens the journal, recovers and serves.
func (e *env) start() {
	tb := e.tb
	tb.Helper()
	ctx := context.Background()
	j, err := store.OpenRedis(ctx, e.redis, e.shard)
	if err != nil {
		tb.Fatalf("open redis: %v", err)
	}
	e.journal = j
	rm, err := store.NewReadModels(j.Client(), e.shard, store.ReadModelOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	scfg := sequencer.Config{Journal: j, TickInterval: -1, Logger: e.cfg.Logger}
	if e.seqMod != nil {
		e.seqMod(&scfg)
	}
	e.seq, err = sequencer.New(scfg)
	if err != nil {
		tb.Fatal(err)
	}
	cfg := e.cfg
	cfg.Sequencer, cfg.ReadModels = e.seq, rm
	e.srv = api.NewServer(cfg)
	addr := "127.0.0.1:0"
	if e.url != "" {
		addr = e.url[len("http://"):] // a restart keeps the address, so clients keep working
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	go e.srv.Listener(ln)
	if err := e.seq.Recover(ctx); err != nil {
		tb.Fatalf("recover: %v", err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	e.cancel = cancel
	e.runDone = make(chan struct{})
	go func() {
		defer close(e.runDone)
		e.seq.Run(runCtx)
	}()
	e.url = "http://" + ln.Addr().String()
	e.admin = client.New(e.url, client.WithAPIKey(adminKey))
	e.anon = client.New(e.url)
	e.stopped = false
	// Reference rates, as gpuxd sets them at start.
	rates := pricing.Default().EngineRates()
	if out, err := e.seq.Submit(ctx, engine.Command{Kind: engine.CmdSetReferenceRates, Rates: rates}, nil); err != nil || out.Err != nil {
		tb.Fatalf("set reference rates: %v %v", err, out.Err)
	}
}

// stop shuts the server and sequencer down as gpuxd does.
func (e *env) stop() {
	if e.stopped {
		return
	}
	e.stopped = true
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		e.tb.Errorf("shutdown api: %v", err)
	}
	if err := e.seq.Close(ctx); err != nil {
		e.tb.Errorf("close sequencer: %v", err)
	}
	e.cancel()
	<-e.runDone
	e.journal.Close()
}

func (e *env) restart() {
	e.tb.Helper()
	e.stop()
	e.start()
}

// tick submits a tick so engine time moves (automatic ticks are off).
func (e *env) tick() {
	e.tb.Helper()
	if _, err := e.seq.Submit(context.Background(), engine.Command{Kind: engine.CmdTick}, nil); err != nil {
		e.tb.Fatal(err)
	}
}

type party struct {
	*client.Client
	id  string
	key string
}

// account creates an account with roles and deposits money ("" = none).
func (e *env) account(name string, money string, roles ...string) party {
	e.tb.Helper()
	ctx := context.Background()
	a, err := e.admin.CreateAccount(ctx, client.CreateAccountRequest{Name: name, Roles: roles})
	if err != nil {
		e.tb.Fatalf("create account %s: %v", name, err)
	}
	if money != "" {
		if _, err := e.admin.Deposit(ctx, a.ID, money); err != nil {
			e.tb.Fatalf("deposit: %v", err)
		}
	}
	return party{Client: client.New(e.url, client.WithAPIKey(a.APIKey)), id: a.ID, key: a.APIKey}
}

// raw sends a request with a raw body and returns status, headers, body.
func (e *env) raw(method, path, key string, body []byte, hdr ...string) (int, http.Header, []byte) {
	e.tb.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, r)
	if err != nil {
		e.tb.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

type problemBody struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Code   string `json:"code"`
	Detail string `json:"detail"`
	Field  string `json:"field"`
}

// wantProblem checks a problem+json answer.
func wantProblem(tb testing.TB, status int, hdr http.Header, body []byte, wantStatus int, wantCode, wantField string) {
	tb.Helper()
	if status != wantStatus {
		tb.Errorf("status: got %d, want %d (body %s)", status, wantStatus, body)
	}
	if ct := hdr.Get("Content-Type"); ct != "application/problem+json" {
		tb.Errorf("content type: got %q, want application/problem+json", ct)
	}
	var p problemBody
	if err := json.Unmarshal(body, &p); err != nil {
		tb.Fatalf("problem body %s: %v", body, err)
	}
	if p.Status != wantStatus || p.Code != wantCode || p.Type == "" || p.Title == "" || p.Detail == "" {
		tb.Errorf("problem: got %+v, want status %d code %q with type, title, detail", p, wantStatus, wantCode)
	}
	if wantField != "-" && p.Field != wantField {
		tb.Errorf("problem field: got %q, want %q (%+v)", p.Field, wantField, p)
	}
}

// wantErr checks a client error's status and code.
func wantErr(tb testing.TB, err error, status int, code string) {
	tb.Helper()
	var ce *client.Error
	if err == nil {
		tb.Fatalf("got no error, want %d %s", status, code)
	}
	if !asClientError(err, &ce) {
		tb.Fatalf("got %v, want a *client.Error %d %s", err, status, code)
	}
	if ce.Status != status || (code != "" && ce.Code != code) {
		tb.Errorf("got %d %q (%s), want %d %q", ce.Status, ce.Code, ce.Detail, status, code)
	}
}

func asClientError(err error, ce **client.Error) bool {
	e, ok := err.(*client.Error)
	if ok {
		*ce = e
	}
	return ok
}

// hour returns the start of the current UTC hour plus n hours.
func hour(n int) time.Time {
	return time.Now().UTC().Truncate(time.Hour).Add(time.Duration(n) * time.Hour)
}

var bg = context.Background()
