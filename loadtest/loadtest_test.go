package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
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

const testAdminKey = "loadtest-admin-key"

// startServer runs the exchange in this process on a random loopback port,
// wired as cmd/gpuxd wires it: a journal (a Redis shard of the shared test
// Redis when it answers, the memory journal otherwise), the sequencer, the
// API (which attaches itself to the sequencer's hooks) listening before
// recovery, then
// recovery, the sequencer loop and the reference rates. It returns the
// base URL and stops everything when the test ends.
func startServer(tb testing.TB) string {
	tb.Helper()
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	var (
		journal    store.Journal
		readModels store.ReadModelStore
	)
	if redisUp() {
		url, shard := redistest.URL(tb), redistest.Shard(tb)
		j, err := store.OpenRedis(ctx, url, shard)
		if err != nil {
			tb.Fatalf("open redis journal: %v", err)
		}
		if readModels, err = store.NewReadModels(j.Client(), shard, store.ReadModelOptions{}); err != nil {
			tb.Fatal(err)
		}
		journal = j
		tb.Logf("journal: redis shard %s", shard)
	} else {
		journal = store.NewMemoryJournal()
		readModels = store.NewMemoryReadModels(store.ReadModelOptions{})
		tb.Logf("journal: memory (no redis at %s)", redistest.SharedAddr)
	}

	seq, err := sequencer.New(sequencer.Config{
		Journal: journal, Logger: logger,
	})
	if err != nil {
		tb.Fatal(err)
	}
	rates := pricing.Default()
	srv := api.NewServer(api.Config{
		Sequencer: seq, ReadModels: readModels, Rates: rates, AdminKey: testAdminKey,
		RateLimit: 200, Logger: logger,
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	serveDone := make(chan error, 1)
	go func() { serveDone <- srv.Listener(ln) }()
	if err := seq.Recover(ctx); err != nil {
		tb.Fatalf("recover: %v", err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	runDone := make(chan struct{})
	go func() {
		defer close(runDone)
		seq.Run(runCtx)
	}()
	tb.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		if err := srv.Shutdown(sctx); err != nil {
			tb.Errorf("shutdown api: %v", err)
		}
		<-serveDone
		if err := seq.Close(sctx); err != nil {
			tb.Errorf("close sequencer: %v", err)
		}
		cancel()
		<-runDone
		if err := journal.Close(); err != nil {
			tb.Errorf("close journal: %v", err)
		}
	})

	// Reference rates, as gpuxd sets them at start.
	var markets []engine.Market
	seq.Read(func(e *engine.Engine) { markets = e.Markets() })
	var want []engine.ReferenceRate
	gpus := map[string]bool{}
	for _, m := range markets {
		gpus[m.GPU] = true
	}
	for _, g := range pricing.GPUs() {
		if !gpus[g] {
			continue
		}
		for _, p := range rates.Providers(g) {
			if r, ok := rates.OnDemand(g, p); ok {
				want = append(want, engine.ReferenceRate{GPU: g, Provider: r.Provider, Price: engine.Price(r.USDPerGPUHour)})
			}
		}
	}
	if out, err := seq.Submit(ctx, engine.Command{Kind: engine.CmdSetReferenceRates, Rates: want}, nil); err != nil || out.Err != nil {
		tb.Fatalf("set reference rates: %v %v", err, out.Err)
	}
	return "http://" + ln.Addr().String()
}

// redisUp reports whether the shared test Redis accepts connections.
func redisUp() bool {
	c, err := net.DialTimeout("tcp", redistest.SharedAddr, 300*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// TestSmoke runs short loads against an in-process server and checks that
// they complete, verify, acknowledge orders and write a parseable report.
func TestSmoke(t *testing.T) {
	url := startServer(t)
	for _, tc := range []struct {
		name string
		mod  func(*Config)
	}{
		{"open", func(c *Config) {
			c.Mode, c.Rate, c.Duration, c.Subscribers, c.FeedBaseline = ModeOpen, 40, 4*time.Second, 5, true
		}},
		{"closed typed feed", func(c *Config) {
			c.Mode, c.Concurrency, c.Duration, c.Subscribers, c.TypedFeed = ModeClosed, 4, 3*time.Second, 5, true
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Target, cfg.AdminKey = url, testAdminKey
			cfg.Buyers, cfg.Owners = 3, 2
			cfg.Seed = 7
			cfg.JSONPath = filepath.Join(t.TempDir(), "report.json")
			var progress strings.Builder
			cfg.Progress = &lockedWriter{w: &progress}
			tc.mod(&cfg)

			rep, err := run(context.Background(), cfg)
			var text strings.Builder
			rep.writeText(&text)
			if err != nil {
				t.Fatalf("run: got error %v, want none\n%s", err, text.String())
			}
			if !rep.Verify.OK {
				t.Errorf("verify: got failures %q, want none", rep.Verify.Failures)
			}
			if rep.Acked == 0 {
				t.Errorf("acked: got 0, want > 0\n%s", text.String())
			}
			if rep.Verify.BidsRead == 0 || rep.Verify.ListingsRead == 0 {
				t.Errorf("read back: got %d bids, %d listings, want some of each", rep.Verify.BidsRead, rep.Verify.ListingsRead)
			}
			if rep.Feed.Connected != 5 {
				t.Errorf("feed: got %d subscribers connected, want 5", rep.Feed.Connected)
			}
			if cfg.FeedBaseline {
				b := rep.Feed.Baseline
				switch {
				case b == nil:
					t.Error("feed baseline: none in the report")
				case b.Connected != 5 || b.Replayed == 0:
					t.Errorf("feed baseline: got %+v, want 5 subscribers and the run's updates replayed", b)
				case b.Messages != int64(b.Replayed)*5 || b.Gaps != 0 || b.Dropped != 0:
					t.Errorf("feed baseline: %d messages (gaps %d, dropped %d), want every one of %d updates at each of 5 subscribers", b.Messages, b.Gaps, b.Dropped, b.Replayed)
				case b.P99Ratio <= 0:
					t.Errorf("feed baseline: p99 ratio %v, want > 0", b.P99Ratio)
				}
			}
			if !strings.Contains(text.String(), "verify: OK") {
				t.Errorf("text report: got no \"verify: OK\" line:\n%s", text.String())
			}
			b, err := os.ReadFile(cfg.JSONPath)
			if err != nil {
				t.Fatalf("read JSON report: %v", err)
			}
			var got Report
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("JSON report does not parse: %v\n%s", err, b)
			}
			if got.Acked != rep.Acked || !got.Verify.OK {
				t.Errorf("JSON report: got acked %d ok %v, want acked %d ok true", got.Acked, got.Verify.OK, rep.Acked)
			}
			t.Logf("%s", text.String())
		})
	}
}

// TestVerifyCatchesMoneyMismatch runs a tiny load, then moves money behind
// the load test's back and checks that verification fails.
func TestVerifyCatchesMoneyMismatch(t *testing.T) {
	url := startServer(t)
	cfg := DefaultConfig()
	cfg.Target, cfg.AdminKey = url, testAdminKey
	cfg.Mode, cfg.Rate, cfg.Duration = ModeOpen, 20, time.Second
	cfg.Buyers, cfg.Owners = 1, 1
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	hc := newHTTPClient(8)
	admin := client.New(url, client.WithAPIKey(testAdminKey), client.WithHTTPClient(hc))
	ctx := context.Background()
	e, err := setup(ctx, cfg, admin, runTag())
	if err != nil {
		t.Fatalf("setup: %v", err)
	}
	g := &generator{cfg: cfg, mix: cfg.Mix, buyers: e.buyers, owners: e.owners, markets: e.markets, ledger: &ledger{}, rec: newRecorder(), tag: runTag()}
	for _, o := range e.setupListings {
		g.ledger.addListing(o, false)
	}
	g.runLoad(ctx)
	if _, err := teardown(ctx, e); err != nil {
		t.Fatalf("teardown: %v", err)
	}
	rd := reader{hc: hc, base: url}
	if v := verify(ctx, g, e, rd, nil, 0); !v.OK {
		t.Fatalf("verify before tampering: got failures %q, want none", v.Failures)
	}
	if _, err := admin.Deposit(ctx, e.owners[0].ID, "1.00"); err != nil {
		t.Fatalf("deposit: %v", err)
	}
	v := verify(ctx, g, e, rd, nil, 0)
	if v.OK {
		t.Fatalf("verify after an outside deposit to an owner: got OK, want a money failure")
	}
	if !strings.Contains(strings.Join(v.Failures, "\n"), "owners") {
		t.Errorf("failures: got %q, want one about the owners' balances", v.Failures)
	}
}

// TestBaselineApp checks the bare Fiber app parses bids like the API.
func TestBaselineApp(t *testing.T) {
	base, stop, err := startBaseline()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	for _, tc := range []struct {
		name string
		body string
		want int
	}{
		{"reserved", `{"type":"reserved","market":"h100-sxm.us-west","quantity":2,"start":"2030-01-01T10:00:00Z","end":"2030-01-01T12:00:00Z","limit_price":"2.39","min_quantity":1}`, http.StatusCreated},
		{"spot", `{"type":"spot","market":"h100-sxm.us-west","quantity":1,"limit_price":"1.10"}`, http.StatusCreated},
		{"malformed", `{"type":`, http.StatusBadRequest},
		{"unknown field", `{"type":"spot","colour":"red"}`, http.StatusBadRequest},
		{"bad price", `{"type":"spot","market":"m","quantity":1,"limit_price":"cheap"}`, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Post(base+"/v1/bids", "application/json", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status: got %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
}

func TestHistogram(t *testing.T) {
	t.Run("exact below 128ns", func(t *testing.T) {
		var h Histogram
		for v := 0; v < 100; v++ {
			h.Record(time.Duration(v))
		}
		if got, want := h.Quantile(0.5), time.Duration(49); got != want {
			t.Errorf("p50: got %v, want %v", got, want)
		}
		if got, want := h.Max(), time.Duration(99); got != want {
			t.Errorf("max: got %v, want %v", got, want)
		}
	})
	t.Run("relative error", func(t *testing.T) {
		var h Histogram
		for i := 1; i <= 100000; i++ {
			h.Record(time.Duration(i) * time.Microsecond)
		}
		for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
			want := time.Duration(q*100000) * time.Microsecond
			got := h.Quantile(q)
			if diff := float64(got-want) / float64(want); diff < 0 || diff > 1.0/subCount {
				t.Errorf("q%.3f: got %v, want %v within +%.2f%%", q, got, want, 100.0/subCount)
			}
		}
		if got, want := h.Max(), 100*time.Millisecond; got != want {
			t.Errorf("max: got %v, want %v", got, want)
		}
	})
	t.Run("buckets are contiguous", func(t *testing.T) {
		prev := int64(-1)
		for i := 0; i < histBuckets; i++ {
			hi := bucketHigh(i)
			if i > 0 && bucketOf(prev+1) != i {
				t.Fatalf("bucket %d: starts at %d, which maps to bucket %d", i, prev+1, bucketOf(prev+1))
			}
			if bucketOf(hi) != i {
				t.Fatalf("bucket %d: high %d maps to bucket %d", i, hi, bucketOf(hi))
			}
			if hi == int64(^uint64(0)>>1) {
				break
			}
			prev = hi
		}
	})
	t.Run("merge", func(t *testing.T) {
		var a, b Histogram
		a.Record(time.Millisecond)
		b.Record(3 * time.Millisecond)
		a.Merge(&b)
		if a.Count() != 2 || a.Max() != 3*time.Millisecond || a.Mean() != 2*time.Millisecond {
			t.Errorf("merged: got count %d max %v mean %v, want 2, 3ms, 2ms", a.Count(), a.Max(), a.Mean())
		}
	})
}

func TestParseEnvelope(t *testing.T) {
	for _, tc := range []struct {
		name, msg string
		want      feedMsg
		data      string
	}{
		{
			name: "update",
			msg:  `{"channel":"trades:h200.eu-west","type":"update","seq":42,"data":{"id":"f1","type":"x","ts":"nope"},"ts":"2026-11-28T20:25:25.114Z"}`,
			want: feedMsg{Channel: "trades:h200.eu-west", Type: "update", Seq: 42, TS: time.Date(2026, 11, 28, 20, 25, 25, 114e6, time.UTC)},
			data: `{"id":"f1","type":"x","ts":"nope"}`,
		},
		{
			name: "snapshot with array data",
			msg:  `{"channel":"prices","type":"snapshot","seq":0,"data":[{"market":"m","price_type":"on_demand"}],"ts":"2026-11-28T20:25:25.000Z"}`,
			want: feedMsg{Channel: "prices", Type: "snapshot", Seq: 0, TS: time.Date(2026, 11, 28, 20, 25, 25, 0, time.UTC)},
			data: `[{"market":"m","price_type":"on_demand"}]`,
		},
		{
			name: "heartbeat",
			msg:  `{"type":"heartbeat","ts":"2026-11-28T20:25:26.500Z"}`,
			want: feedMsg{Type: "heartbeat", TS: time.Date(2026, 11, 28, 20, 25, 26, 500e6, time.UTC)},
		},
		{
			name: "other field order",
			msg:  `{"seq":3,"ts":"2026-11-28T20:25:26.500Z","channel":"prices","type":"update"}`,
			want: feedMsg{Channel: "prices", Type: "update", Seq: 3, TS: time.Date(2026, 11, 28, 20, 25, 26, 500e6, time.UTC)},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseEnvelope([]byte(tc.msg))
			if err != nil {
				t.Fatal(err)
			}
			if string(got.Data) != tc.data {
				t.Errorf("data: got %s, want %s", got.Data, tc.data)
			}
			got.Data = nil
			if got.Channel != tc.want.Channel || got.Type != tc.want.Type || got.Seq != tc.want.Seq || !got.TS.Equal(tc.want.TS) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseMix(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Mix
		wantErr bool
	}{
		{in: "reserved=40,spot=30,cancel=15,list=15", want: Mix{40, 30, 15, 15}},
		{in: "spot=1", want: Mix{OpSpot: 1}},
		{in: " reserved = 3 , list=1 ", want: Mix{OpReserved: 3, OpList: 1}},
		{in: "reserved=0", wantErr: true},
		{in: "buy=3", wantErr: true},
		{in: "spot=-1", wantErr: true},
		{in: "spot", wantErr: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseMix(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error: got %v, want error %v", err, tc.wantErr)
			}
			if err == nil && got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseFlags(t *testing.T) {
	env := func(k string) (string, bool) {
		if k == "GPUX_ADMIN_KEY" {
			return "from-env", true
		}
		return "", false
	}
	cfg, err := parseFlags([]string{"-mode", "open", "-rate", "250", "-markets", "h200.us-east, l4.eu-west"}, env, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AdminKey != "from-env" || cfg.Rate != 250 || cfg.Mode != ModeOpen || len(cfg.Markets) != 2 || cfg.Markets[1] != "l4.eu-west" {
		t.Errorf("got %+v", cfg)
	}
	if _, err := parseFlags([]string{"-mode", "sideways"}, env, io.Discard); err == nil {
		t.Errorf("-mode sideways: got no error, want one")
	}
	noKey := func(string) (string, bool) { return "", false }
	if _, err := parseFlags(nil, noKey, io.Discard); err == nil || !strings.Contains(err.Error(), "admin key") {
		t.Errorf("no admin key: got %v, want an error naming the admin key", err)
	}
}

func TestParseTicks(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  bool
	}{
		{in: "2.39", want: 23900}, {in: "0", want: 0}, {in: "-1.5", want: -15000},
		{in: "1000000000.0000", want: 10000000000000}, {in: "0.00001", err: true}, {in: "x", err: true},
	} {
		got, err := parseTicks(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("parseTicks(%q): got %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
	if got, want := usd(23900), "2.3900"; got != want {
		t.Errorf("usd: got %q, want %q", got, want)
	}
}

// lockedWriter serialises writes of the progress goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
