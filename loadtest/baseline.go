package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/redis/go-redis/v9"
	"github.com/shopspring/decimal"

	"github.com/gpux/gpux/client"
	"github.com/gpux/gpux/engine"
)

// baselineBid is the body of POST /v1/bids as the API defines it.
type baselineBid struct {
	Type          string          `json:"type"`
	Market        string          `json:"market"`
	Quantity      int64           `json:"quantity"`
	Start         *string         `json:"start"`
	End           *string         `json:"end"`
	LimitPrice    json.RawMessage `json:"limit_price"`
	MinQuantity   *int64          `json:"min_quantity"`
	ExpiresAt     *string         `json:"expires_at"`
	ClientOrderID *string         `json:"client_order_id"`
}

// parse decodes body strictly and parses its times and price, the work any
// server must do before the exchange sees a bid.
func (b *baselineBid) parse(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(b); err != nil {
		return err
	}
	for _, t := range []*string{b.Start, b.End, b.ExpiresAt} {
		if t != nil {
			if _, err := time.Parse(time.RFC3339Nano, *t); err != nil {
				return err
			}
		}
	}
	var p string
	if err := json.Unmarshal(b.LimitPrice, &p); err != nil {
		return err
	}
	_, err := decimal.NewFromString(p)
	return err
}

// startBaseline serves a bare Fiber v2 app on a random loopback port whose
// POST /v1/bids parses the bid body and answers 201 {}. It returns the
// base URL and a stop function.
func startBaseline() (string, func(), error) {
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Post("/v1/bids", func(c *fiber.Ctx) error {
		var b baselineBid
		if err := b.parse(c.Body()); err != nil {
			c.Set(fiber.HeaderContentType, "application/problem+json")
			return c.Status(fiber.StatusBadRequest).SendString(`{"status":400,"code":"malformed_json"}`)
		}
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		return c.Status(fiber.StatusCreated).SendString("{}")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = app.Listener(ln)
	}()
	stop := func() {
		_ = app.ShutdownWithTimeout(5 * time.Second)
		<-done
	}
	return "http://" + ln.Addr().String(), stop, nil
}

// Baseline is the bare-Fiber baseline part of the report.
type Baseline struct {
	Mix          string  `json:"mix"`
	Acked        int64   `json:"acked"`
	Errors       int64   `json:"errors"`
	AckedPerSec  float64 `json:"acked_per_sec"`
	Latency      Latency `json:"latency"`
	Ratio        float64 `json:"target_ratio"`     // target acked/s ÷ baseline acked/s
	BidRatio     float64 `json:"target_bid_ratio"` // target bid acks/s ÷ baseline acked/s
	ElapsedSec   float64 `json:"elapsed_sec"`
	FirstProblem string  `json:"first_error,omitempty"`
}

// runBaseline offers the bid part of the mix, with the same mode, rate or
// concurrency and duration, to a bare Fiber app in this process.
func runBaseline(ctx context.Context, cfg Config, logf func(string, ...any)) (Baseline, error) {
	base, stop, err := startBaseline()
	if err != nil {
		return Baseline{}, fmt.Errorf("baseline: %w", err)
	}
	defer stop()
	mix := cfg.Mix.bidsOnly()
	if mix.total() == 0 {
		mix = Mix{OpReserved: 1}
	}
	hc := newHTTPClient(connsFor(cfg))
	defer hc.CloseIdleConnections()
	c := client.New(base, client.WithAPIKey("baseline"), client.WithHTTPClient(hc))
	g := &generator{
		cfg: cfg, mix: mix, buyers: []*account{{Name: "baseline", Buyer: true, c: c}},
		markets: []market{}, ledger: &ledger{}, rec: newRecorder(), tag: "baseline-" + runTag(), baseline: true,
	}
	for _, m := range cfg.Markets {
		g.markets = append(g.markets, market{ID: m, Price: fallbackPrice})
	}
	warmUp(ctx, c, warmConns(cfg))
	logf("loadtest: baseline: %s load of %s against a bare Fiber app at %s for %s\n", cfg.Mode, mix, base, cfg.Duration)
	pctx, pcancel := context.WithCancel(ctx)
	go progress(pctx, logf, g.rec, nil, time.Now())
	res := g.runLoad(ctx)
	pcancel()
	b := Baseline{
		Mix: mix.String(), Acked: g.rec.acked.Load(), Errors: g.rec.failed.Load(),
		Latency: g.rec.all.Summary(), ElapsedSec: res.Elapsed.Seconds(),
	}
	if res.Elapsed > 0 {
		b.AckedPerSec = float64(b.Acked) / res.Elapsed.Seconds()
	}
	for class, e := range g.rec.errs {
		b.FirstProblem = class + ": " + e.example
		break
	}
	return b, nil
}

// warmConns is how many connections to open before the load.
func warmConns(cfg Config) int {
	if cfg.Mode == ModeClosed {
		return cfg.Concurrency
	}
	return min(cfg.MaxInflight, 256)
}

// connsFor is how many keep-alive connections the load needs.
func connsFor(cfg Config) int {
	if cfg.Mode == ModeClosed {
		return max(cfg.Concurrency, 64)
	}
	return min(max(cfg.MaxInflight, 64), 4096)
}

// Journal is the journal part of the report: the target's own figures
// (from /metrics over the load) next to raw pipelined XADD to its Redis.
type Journal struct {
	Commands        *float64 `json:"journal_commands,omitempty"`
	CommandsPerSec  *float64 `json:"journal_commands_per_sec,omitempty"`
	Batches         *float64 `json:"journal_batches,omitempty"`
	MeanBatch       *float64 `json:"mean_batch_commands,omitempty"`
	MeanAppendMs    *float64 `json:"mean_append_ms,omitempty"`
	RawXADDPerSec   *float64 `json:"raw_xadd_entries_per_sec,omitempty"`
	RawXADDEntries  int64    `json:"raw_xadd_entries,omitempty"`
	RawXADDPipeline int      `json:"raw_xadd_pipeline,omitempty"`
	RawXADDError    string   `json:"raw_xadd_error,omitempty"`
}

// metricsSnap holds the target's /metrics samples that the report uses,
// by name (labels dropped, values of one name summed).
type metricsSnap map[string]float64

var scraped = []string{
	"gpux_journal_batch_commands_sum", "gpux_journal_batch_commands_count",
	"gpux_journal_append_seconds_sum", "gpux_journal_append_seconds_count",
	"gpux_ws_dropped_clients_total", "gpux_feed_overflows_total", "gpux_ws_messages_total",
	"process_cpu_seconds_total",
}

// scrapeMetrics reads the target's /metrics; nil when it has none.
func scrapeMetrics(ctx context.Context, c *client.Client) metricsSnap {
	raw, err := c.Metrics(ctx)
	if err != nil {
		return nil
	}
	m := metricsSnap{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, ok := strings.Cut(line, " ")
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name = name[:i]
			if j := strings.LastIndexByte(line, '}'); j >= 0 {
				rest, ok = strings.TrimSpace(line[j+1:]), true
			}
		}
		if !ok {
			continue
		}
		valStr, _, _ := strings.Cut(strings.TrimSpace(rest), " ")
		for _, want := range scraped {
			if name == want {
				if v, err := strconv.ParseFloat(valStr, 64); err == nil {
					m[name] += v
				}
			}
		}
	}
	return m
}

// delta is after − before of name, when both have it.
func delta(before, after metricsSnap, name string) *float64 {
	a, ok1 := after[name]
	b, ok2 := before[name]
	if !ok1 || !ok2 {
		return nil
	}
	d := a - b
	return &d
}

func journalFromMetrics(before, after metricsSnap, elapsed time.Duration) Journal {
	var j Journal
	j.Commands = delta(before, after, "gpux_journal_batch_commands_sum")
	j.Batches = delta(before, after, "gpux_journal_batch_commands_count")
	secs := delta(before, after, "gpux_journal_append_seconds_sum")
	appends := delta(before, after, "gpux_journal_append_seconds_count")
	if j.Commands != nil && elapsed > 0 {
		v := *j.Commands / elapsed.Seconds()
		j.CommandsPerSec = &v
	}
	if j.Commands != nil && j.Batches != nil && *j.Batches > 0 {
		v := *j.Commands / *j.Batches
		j.MeanBatch = &v
	}
	if secs != nil && appends != nil && *appends > 0 {
		v := *secs / *appends * 1000
		j.MeanAppendMs = &v
	}
	return j
}

// measureXADD appends a realistic encoded command to a throwaway stream
// of the Redis at url with pipelines of 64 from 4 connections for d, and
// deletes the stream afterwards.
func measureXADD(ctx context.Context, url string, d time.Duration) (entries int64, perSec float64, err error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return 0, 0, fmt.Errorf("redis url: %w", err)
	}
	opt.PoolSize = 8
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return 0, 0, fmt.Errorf("redis ping: %w", err)
	}
	key := "gpux:{lt-raw-" + runTag() + "}:raw"
	defer rdb.Del(context.WithoutCancel(ctx), key)
	payload := engine.AppendCommand(nil, &engine.Command{
		Seq: 1, Time: engine.Time(time.Now().UnixMilli()), Kind: engine.CmdPlaceBid, Actor: engine.ID{1}, Target: engine.ID{2},
		Market: "h100-sxm.us-west", BidType: engine.Reserved, Quantity: 4, Start: 1796083200000, End: 1796083200000 + 8*engine.Hour,
		Price: 23900, IdemKey: "lt-0123456789abcdef-1234567", IdemHash: [32]byte{1, 2, 3},
	})
	const pipeline, workers = 64, 4
	var n atomic.Int64
	var (
		errOnce  sync.Once
		firstErr error
	)
	dctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	begin := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for dctx.Err() == nil {
				pipe := rdb.Pipeline()
				for k := 0; k < pipeline; k++ {
					pipe.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []any{"l", "1", "d", payload}})
				}
				if _, err := pipe.Exec(ctx); err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				n.Add(pipeline)
			}
		}()
	}
	wg.Wait()
	el := time.Since(begin)
	if firstErr != nil {
		return n.Load(), 0, firstErr
	}
	return n.Load(), float64(n.Load()) / el.Seconds(), nil
}
