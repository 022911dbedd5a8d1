package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gpux/gpux/client"
	"github.com/gpux/gpux/store"
	"github.com/gpux/gpux/store/redistest"
)

func TestParseFlags(t *testing.T) {
	env := func(kv map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := kv[k]; return v, ok }
	}
	t.Run("defaults", func(t *testing.T) {
		m := NewMain()
		if err := m.parse(nil, env(nil)); err != nil {
			t.Fatal(err)
		}
		c := m.Config
		if c.Addr != ":8080" || c.RateLimit != 200 || c.Shard != "main" || c.RedisURL != "" || c.Demo || c.AdminKey != "" {
			t.Errorf("defaults: got %+v", c)
		}
	})
	t.Run("env then flags", func(t *testing.T) {
		m := NewMain()
		err := m.parse([]string{"--rate-limit", "7", "--demo"}, env(map[string]string{
			"GPUX_ADDR": ":9000", "GPUX_RATE_LIMIT": "50", "GPUX_REDIS_URL": "redis://x:1/0", "GPUX_ADMIN_KEY": "k",
			"GPUX_RATES_FILE": "/r.csv", "GPUX_ALLOWED_ORIGINS": "https://a.example, https://b.example",
		}))
		if err != nil {
			t.Fatal(err)
		}
		c := m.Config
		if c.Addr != ":9000" || c.RateLimit != 7 || c.RedisURL != "redis://x:1/0" || c.AdminKey != "k" || !c.Demo || c.RatesFile != "/r.csv" || len(c.AllowedOrigins) != 2 {
			t.Errorf("config: got %+v", c)
		}
	})
	t.Run("engine node", func(t *testing.T) {
		m := NewMain()
		err := m.parse([]string{"--role", "engine", "--shard", "eu-west", "--regions", "us-east,eu-west", "--gpus", "h100-sxm,l4"},
			env(map[string]string{"GPUX_REDIS_URL": "redis+cluster://a:1,b:2", "GPUX_LEASE_TTL": "500ms", "GPUX_ADVERTISE_ADDR": "node-1:8080"}))
		if err != nil {
			t.Fatal(err)
		}
		c := m.Config
		if c.Role != RoleEngine || c.Shard != "eu-west" || c.LeaseTTL != 500*time.Millisecond || c.AdvertiseAddr != "node-1:8080" {
			t.Errorf("config: got %+v", c)
		}
		ms, err := c.ShardMarkets()
		if err != nil || len(ms) != 2 || ms[0].ID != "h100-sxm.eu-west" || ms[1].ID != "l4.eu-west" {
			t.Errorf("markets of shard eu-west: %v, %v; want h100-sxm.eu-west and l4.eu-west", ms, err)
		}
		c.Shard = "main"
		if ms, err := c.ShardMarkets(); err != nil || len(ms) != 4 {
			t.Errorf("markets of shard main: %d, %v; want all 4", len(ms), err)
		}
	})
	t.Run("role defaults", func(t *testing.T) {
		m := NewMain()
		if err := m.parse(nil, env(nil)); err != nil {
			t.Fatal(err)
		}
		if c := m.Config; c.Role != RoleAll || c.LeaseTTL != 2*time.Second || c.AdvertiseAddr != "" {
			t.Errorf("defaults: role %q lease ttl %v advertise %q; want all, 2s, empty", c.Role, c.LeaseTTL, c.AdvertiseAddr)
		}
	})
	t.Run("advertise address", func(t *testing.T) {
		host, _ := os.Hostname()
		ln := &net.TCPAddr{IP: net.IPv6zero, Port: 8123}
		for _, tc := range []struct{ addr, flag, want string }{
			{":8080", "", net.JoinHostPort(host, "8123")},
			{"0.0.0.0:0", "", net.JoinHostPort(host, "8123")},
			{"127.0.0.1:0", "", "127.0.0.1:8123"},
			{":8080", "gpuxd-1:9000", "gpuxd-1:9000"},
		} {
			c := DefaultConfig()
			c.Addr, c.AdvertiseAddr = tc.addr, tc.flag
			if got, err := c.advertise(ln); err != nil || got != tc.want {
				t.Errorf("--addr %q --advertise-addr %q: %q, %v; want %q", tc.addr, tc.flag, got, err, tc.want)
			}
		}
	})
	t.Run("catalogue", func(t *testing.T) {
		m := NewMain()
		if err := m.parse([]string{"--gpus", "h100-sxm, gb200"}, env(map[string]string{"GPUX_REGIONS": "ap-south"})); err != nil {
			t.Fatal(err)
		}
		if got := m.Config.GPUs; len(got) != 2 || got[1] != "gb200" || len(m.Config.Regions) != 1 || m.Config.Regions[0] != "ap-south" {
			t.Errorf("catalogue: got %v × %v", m.Config.GPUs, m.Config.Regions)
		}
	})
	for name, tc := range map[string]struct {
		args []string
		env  map[string]string
	}{
		"bad env int":               {env: map[string]string{"GPUX_RATE_LIMIT": "lots"}},
		"bad gpu id":                {args: []string{"--gpus", "H100 SXM"}},
		"no regions":                {env: map[string]string{"GPUX_REGIONS": " , "}},
		"negative limit":            {args: []string{"--rate-limit=-1"}},
		"bad format":                {args: []string{"--log-format=xml"}},
		"extra args":                {args: []string{"serve"}},
		"unknown flag":              {args: []string{"--nope"}},
		"unknown role":              {args: []string{"--role", "worker"}},
		"engine without redis":      {args: []string{"--role", "engine"}},
		"engine shard not a region": {args: []string{"--role", "engine", "--redis", "redis://x:1/0", "--shard", "mars"}},
		"tiny lease ttl":            {args: []string{"--role", "engine", "--redis", "redis://x:1/0", "--lease-ttl", "1ms"}},
		"bad lease ttl env":         {env: map[string]string{"GPUX_LEASE_TTL": "soon"}},
		"bad advertise addr":        {args: []string{"--advertise-addr", "nohost"}},
	} {
		t.Run(name, func(t *testing.T) {
			m := NewMain()
			m.Stderr = io.Discard
			if err := m.parse(tc.args, env(tc.env)); err == nil {
				t.Errorf("got no error")
			}
		})
	}
}

func TestRatesFileError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rates.csv")
	b, err := os.ReadFile("../../pricing/rates.csv")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitN(string(b), "\n", 4)
	lines[2] = strings.Replace(lines[2], "on_demand", "free_lunch", 1)
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	m := newTestMain(t)
	m.Config.RatesFile = path
	err = m.Run(context.Background())
	m.Close()
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("got %v, want an error naming line 3", err)
	}
}

func newTestMain(t *testing.T) *Main {
	t.Helper()
	m := NewMain()
	m.Config.Addr = "127.0.0.1:0"
	m.Config.AdminKey = "admin"
	m.Config.LogFormat = "text"
	m.Stdout, m.Stderr = io.Discard, io.Discard
	return m
}

// TestRestartKeepsState runs gpuxd twice on one Redis shard.
func TestRestartKeepsState(t *testing.T) {
	url, shard := redistest.URL(t), redistest.Shard(t)
	start := func() (*Main, *client.Client) {
		m := newTestMain(t)
		m.Config.RedisURL, m.Config.Shard = url, shard
		if err := m.Run(context.Background()); err != nil {
			m.Close()
			t.Fatal(err)
		}
		return m, client.New("http://"+m.Addr(), client.WithAPIKey("admin"))
	}
	m, admin := start()
	ctx := context.Background()
	a, err := admin.CreateAccount(ctx, client.CreateAccountRequest{Name: "keeper", Roles: []string{"buyer", "owner"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Deposit(ctx, a.ID, "123.45"); err != nil {
		t.Fatal(err)
	}
	user := admin.WithKey(a.APIKey)
	l, err := user.PlaceListing(ctx, client.ListingRequest{Market: "h100-sxm.us-east", Quantity: 2, Start: time.Now().UTC().Truncate(time.Hour), End: time.Now().UTC().Truncate(time.Hour).Add(5 * time.Hour), ReservePrice: client.FixedPrice("2.00")})
	if err != nil {
		t.Fatal(err)
	}
	h, err := admin.Health(ctx)
	if err != nil || h.Journal != "redis" || !h.Durable {
		t.Errorf("health: %v %+v", err, h)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	m, admin = start()
	defer m.Close()
	user = admin.WithKey(a.APIKey)
	acct, err := user.Account(ctx)
	if err != nil {
		t.Fatalf("the key does not work after a restart: %v", err)
	}
	if acct.Balance != "123.45" || acct.Name != "keeper" {
		t.Errorf("account after restart: got %+v", acct)
	}
	got, err := user.Listing(ctx, l.ID)
	if err != nil || got.Status != "active" {
		t.Errorf("listing after restart: %v %+v", err, got)
	}
	p, err := admin.Prices(ctx)
	if err != nil || len(p) == 0 || len(p[0].DiscountVsReference) == 0 {
		t.Errorf("prices: %v %+v", err, p)
	}
}

func TestDemo(t *testing.T) {
	m := newTestMain(t)
	var out bytes.Buffer
	m.Stdout = &out
	m.Config.Demo = true
	if err := m.Run(context.Background()); err != nil {
		m.Close()
		t.Fatal(err)
	}
	defer m.Close()
	if n := strings.Count(out.String(), "demo account"); n != 5 {
		t.Errorf("printed %d demo accounts, want 5:\n%s", n, out.String())
	}
	c := client.New("http://" + m.Addr())
	h0, _ := c.Health(context.Background())
	time.Sleep(2500 * time.Millisecond)
	h1, _ := c.Health(context.Background())
	if h1.LastSeq <= h0.LastSeq+1 {
		t.Errorf("simulated bidders: last seq %d → %d, want movement", h0.LastSeq, h1.LastSeq)
	}
	if h1.Journal != "memory" || h1.Durable {
		t.Errorf("health: got %+v, want a non-durable memory journal", h1)
	}
	b, err := c.Book(context.Background(), "h100-sxm.us-east")
	if err != nil || len(b.Asks) == 0 {
		t.Errorf("demo book: %v %+v", err, b)
	}
}

// TestSignal builds gpuxd, starts it and stops it with SIGTERM: it must
// exit 0 after stopping cleanly.
func TestSignal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	bin := filepath.Join(t.TempDir(), "gpuxd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "--addr", "127.0.0.1:0", "--log-format", "json")
	cmd.Env = append(os.Environ(), "GPUX_REDIS_URL=", "GPUX_ADMIN_KEY=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout syncBuffer
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	addr := make(chan string, 1)
	var logs syncBuffer
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.Write(append(sc.Bytes(), '\n'))
			var rec struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "ready" {
				addr <- rec.Addr
			}
		}
	}()
	var a string
	select {
	case a = <-addr:
	case <-time.After(20 * time.Second):
		t.Fatalf("gpuxd never became ready:\n%s", logs.String())
	}
	c := client.New("http://" + a)
	if err := c.Ready(context.Background()); err != nil {
		t.Fatalf("ready: %v", err)
	}
	if !strings.Contains(stdout.String(), "generated admin key") {
		t.Errorf("no generated admin key printed: %q", stdout.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Errorf("exit: %v\n%s", err, logs.String())
		} else if err != nil {
			t.Error(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("gpuxd did not stop within 15 s of SIGTERM")
	}
	if !strings.Contains(logs.String(), "in-memory journal") {
		t.Errorf("no warning about the in-memory journal in the logs")
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestRatesFileApplied: a rates file replaces the table, and the engine's
// reference rates follow it, so pegs resolve against what /v1/prices shows.
func TestRatesFileApplied(t *testing.T) {
	b, err := os.ReadFile("../../pricing/rates.csv")
	if err != nil {
		t.Fatal(err)
	}
	// AWS H100 SXM on-demand is 6.88 on its two us-east-1 lines; make it 8.00.
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "AWS,H100 SXM 80GB,") && strings.Contains(line, ",on_demand,") {
			line = strings.Replace(line, ",6.88,2026-07-20,", ",8.00,2026-07-20,", 1)
		}
		out = append(out, line)
	}
	path := filepath.Join(t.TempDir(), "rates.csv")
	if err := os.WriteFile(path, []byte(strings.Join(out, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	m := newTestMain(t)
	m.Config.RatesFile = path
	if err := m.Run(context.Background()); err != nil {
		m.Close()
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	admin := client.New("http://"+m.Addr(), client.WithAPIKey("admin"))
	a, err := admin.CreateAccount(ctx, client.CreateAccountRequest{Name: "o", Roles: []string{"owner"}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Hour)
	l, err := admin.WithKey(a.APIKey).PlaceListing(ctx, client.ListingRequest{Market: "h100-sxm.us-east", Quantity: 1, Start: now, End: now.Add(2 * time.Hour), ReservePrice: client.ReferencePeg("aws", "0.50")})
	if err != nil {
		t.Fatal(err)
	}
	if l.ReservePrice != "4.00" {
		t.Errorf("reference peg: got %s, want 4.00 (half of the file's 8.00)", l.ReservePrice)
	}
}

func TestHealthcheck(t *testing.T) {
	ready := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	if got := healthcheck(srv.URL+"/readyz", time.Second); got != 0 {
		t.Fatalf("ready server: exit %d, want 0", got)
	}
	ready = false
	if got := healthcheck(srv.URL+"/readyz", time.Second); got != 1 {
		t.Fatalf("unready server: exit %d, want 1", got)
	}
	srv.Close()
	if got := healthcheck(srv.URL+"/readyz", time.Second); got != 1 {
		t.Fatalf("no server: exit %d, want 1", got)
	}
}

// TestEngineNodes runs two engine nodes of one region shard in process on
// the shared Redis: the first takes the lease and serves writes, the
// second stands by (refusing writes) and registers itself; when the first
// stops, the second takes over with the next fencing token and serves the
// account the first created.
func TestEngineNodes(t *testing.T) {
	url, shard := redistest.URL(t), redistest.Shard(t)
	t.Cleanup(func() {
		rdb := redis.NewClient(&redis.Options{Addr: redistest.SharedAddr})
		defer rdb.Close()
		rdb.SRem(context.Background(), store.RegistryShardsKey, shard)
	})
	start := func() (*Main, *client.Client) {
		t.Helper()
		m := newTestMain(t)
		m.Config.RedisURL, m.Config.Shard, m.Config.Role = url, shard, RoleEngine
		m.Config.Regions = []string{"us-east", shard}
		m.Config.LeaseTTL = 300 * time.Millisecond
		m.Config.Addr = "127.0.0.1:0"
		if err := m.Run(context.Background()); err != nil {
			m.Close()
			t.Fatal(err)
		}
		return m, client.New("http://"+m.Addr(), client.WithAPIKey("admin"))
	}
	ctx := context.Background()
	m1, admin1 := start()
	defer m1.Close()
	if st := m1.seq.Status(); !st.Leader || st.FencingToken == 0 {
		t.Fatalf("first node: leader %v token %d, want the leader", st.Leader, st.FencingToken)
	}
	a, err := admin1.CreateAccount(ctx, client.CreateAccountRequest{Name: "n1", Roles: []string{"buyer"}})
	if err != nil {
		t.Fatal(err)
	}
	m2, admin2 := start()
	defer m2.Close()
	st2 := m2.seq.Status()
	if st2.Leader || st2.FencingToken != m1.seq.Status().FencingToken {
		t.Fatalf("second node: leader %v token %d, want a standby that saw token %d", st2.Leader, st2.FencingToken, m1.seq.Status().FencingToken)
	}
	if _, err := admin2.CreateAccount(ctx, client.CreateAccountRequest{Name: "n2", Roles: []string{"buyer"}}); err == nil {
		t.Fatal("the standby accepted a write")
	}
	rdb := redis.NewClient(&redis.Options{Addr: redistest.SharedAddr})
	defer rdb.Close()
	if ok, err := rdb.SIsMember(ctx, store.RegistryShardsKey, shard).Result(); err != nil || !ok {
		t.Errorf("shard registered: %v, %v", ok, err)
	}
	nodes, err := rdb.ZRange(ctx, "gpux:{"+shard+"}:nodes", 0, -1).Result()
	if err != nil || len(nodes) != 2 {
		t.Errorf("nodes set = %v, %v; want both nodes", nodes, err)
	}
	tok := m1.seq.Status().FencingToken
	if err := m1.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !m2.seq.Status().Leader {
		if time.Now().After(deadline) {
			t.Fatal("the standby did not take over within 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := m2.seq.Status().FencingToken; got != tok+1 {
		t.Errorf("token after takeover %d, want %d", got, tok+1)
	}
	if _, err := admin2.Deposit(ctx, a.ID, "5.00"); err != nil {
		t.Fatalf("deposit through the new leader: %v", err)
	}
}

// TestRoleAPINotBuilt: --role api is accepted by the flags and refused at
// start with a message that says why.
func TestRoleAPINotBuilt(t *testing.T) {
	m := newTestMain(t)
	m.Config.Role = RoleAPI
	err := m.Run(context.Background())
	m.Close()
	if err == nil || !strings.Contains(err.Error(), "role api: not built in this binary yet") {
		t.Fatalf("Run with --role api = %v", err)
	}
}
