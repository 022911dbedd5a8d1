package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gpux/gpux/client"
)

// errVerify is returned by run when the read-back did not add up; the
// report's Verify.Failures say why.
var errVerify = errors.New("VERIFY FAILED")

// run performs one load test: the optional baselines, setup on the target,
// subscribers, the load, then (even when ctx ended the load early) the
// reconciliation of unknown outcomes, the teardown of open orders and the
// verification. It returns the report so far with any error; errVerify
// when only the verification failed.
func run(ctx context.Context, cfg Config) (Report, error) {
	if err := cfg.validate(); err != nil {
		return Report{}, err
	}
	logf := func(format string, args ...any) {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, format, args...)
		}
	}
	tag := runTag()
	rep := Report{
		Target: cfg.Target, Mode: cfg.Mode, Duration: cfg.Duration.String(), Seed: cfg.Seed, Tag: tag,
		Mix: cfg.Mix.String(), Markets: cfg.Markets, Buyers: cfg.Buyers, Owners: cfg.Owners,
		Started: time.Now().UTC().Format(time.RFC3339),
	}
	if cfg.Mode == ModeOpen {
		rep.Rate = cfg.Rate
	} else {
		rep.Concurrency = cfg.Concurrency
	}
	hc := newHTTPClient(connsFor(cfg))
	defer hc.CloseIdleConnections()
	admin := client.New(cfg.Target, client.WithAPIKey(cfg.AdminKey), client.WithHTTPClient(hc))
	if err := retry(ctx, 20, func() error { return admin.Ready(ctx) }); err != nil {
		return rep, fmt.Errorf("target %s is not ready: %w", cfg.Target, err)
	}

	if cfg.Baseline {
		b, err := runBaseline(ctx, cfg, logf)
		if err != nil {
			return rep, err
		}
		rep.Baseline = &b
	}
	if cfg.RedisURL != "" {
		logf("loadtest: raw pipelined XADD to %s for 3s\n", cfg.RedisURL)
		n, perSec, err := measureXADD(ctx, cfg.RedisURL, 3*time.Second)
		j := &Journal{RawXADDEntries: n, RawXADDPipeline: 64}
		if err != nil {
			j.RawXADDError = err.Error()
		} else {
			j.RawXADDPerSec = &perSec
		}
		rep.Journal = j
	}

	logf("loadtest: setting up %d buyers and %d owners in %v (run %s)\n", cfg.Buyers, cfg.Owners, cfg.Markets, tag)
	e, err := setup(ctx, cfg, admin, tag)
	if err != nil {
		return rep, fmt.Errorf("setup: %w", err)
	}
	g := &generator{
		cfg: cfg, mix: cfg.Mix, buyers: e.buyers, owners: e.owners, markets: e.markets,
		ledger: &ledger{}, rec: newRecorder(), tag: tag,
	}
	for _, o := range e.setupListings {
		g.ledger.addListing(o, false)
	}

	if cfg.Subscribers > 0 {
		logf("loadtest: connecting %d websocket subscribers\n", cfg.Subscribers)
	}
	feedTargets := cfg.FeedTargets
	if len(feedTargets) == 0 {
		feedTargets = []string{cfg.Target}
	}
	fs := startFeeds(context.WithoutCancel(ctx), feedTargets, cfg.TypedFeed, cfg.Subscribers, cfg.FeedKinds, e.markets)
	defer fs.stop()
	before := scrapeMetrics(ctx, admin)

	warmUp(ctx, admin, warmConns(cfg))
	logf("loadtest: %s load for %s\n", cfg.Mode, cfg.Duration)
	fs.stats.startCounting()
	pctx, pcancel := context.WithCancel(ctx)
	go progress(pctx, logf, g.rec, fs.stats, time.Now())
	cpu0 := processCPU()
	res := g.runLoad(ctx)
	rep.GeneratorCPUSec = (processCPU() - cpu0).Seconds()
	pcancel()
	fs.stats.counting.Store(false)
	rep.fillLoad(g.rec, res)

	// The load may have been cut short by ctx; the checks run regardless.
	vctx := context.WithoutCancel(ctx)
	after := scrapeMetrics(vctx, admin)
	if before != nil && after != nil {
		j := journalFromMetrics(before, after, res.Elapsed)
		if rep.Journal != nil {
			j.RawXADDPerSec, j.RawXADDEntries, j.RawXADDPipeline, j.RawXADDError =
				rep.Journal.RawXADDPerSec, rep.Journal.RawXADDEntries, rep.Journal.RawXADDPipeline, rep.Journal.RawXADDError
		}
		rep.Journal = &j
		rep.TargetCPUSec = delta(before, after, "process_cpu_seconds_total")
	}
	if rep.Baseline != nil && rep.Baseline.AckedPerSec > 0 {
		rep.Baseline.Ratio = rep.AckedPerSec / rep.Baseline.AckedPerSec
		rep.Baseline.BidRatio = rep.bidAckedPerSec() / rep.Baseline.AckedPerSec
	}

	logf("loadtest: load done; reconciling %d unknown outcomes, cancelling open orders\n", len(g.ledger.pending))
	t0 := time.Now()
	unresolved := reconcile(vctx, g)
	cancelled, terr := teardown(vctx, e)
	logf("loadtest: teardown cancelled %d open orders in %.1fs; reading back\n", cancelled, time.Since(t0).Seconds())
	t1 := time.Now()
	v := verify(vctx, g, e, reader{hc: hc, base: cfg.Target}, fs.stats, unresolved)
	logf("loadtest: read back %d bids and %d listings in %.1fs\n", v.BidsRead, v.ListingsRead, time.Since(t1).Seconds())
	v.Cancelled, v.Reconciled = cancelled, g.ledger.reconciled
	if terr != nil {
		v.Failures = append(v.Failures, "teardown: "+terr.Error())
		v.OK = false
	}
	rep.Verify = v

	fs.stop()
	rep.Feed = fs.stats.report(res.Elapsed)
	if d := delta(before, scrapeMetrics(vctx, admin), "gpux_ws_dropped_clients_total"); d != nil && cfg.Subscribers > 0 {
		rep.Feed.ServerDropped = d
	}
	if cfg.FeedBaseline && cfg.Subscribers > 0 {
		fs.stats.mu.Lock()
		recorded := fs.stats.recorded
		fs.stats.mu.Unlock()
		b, err := runFeedBaseline(vctx, cfg, fs.stats.channels, recorded, logf)
		if err != nil {
			return rep, err
		}
		if b.MessagesPerSec > 0 {
			b.MessagesRatio = rep.Feed.MessagesPerSec / b.MessagesPerSec
		}
		if b.Latency.P99 > 0 {
			b.P99Ratio = rep.Feed.Latency.P99 / b.Latency.P99
		}
		rep.Feed.Baseline = &b
	}

	if cfg.JSONPath != "" {
		if err := rep.writeJSON(cfg.JSONPath); err != nil {
			return rep, fmt.Errorf("write %s: %w", cfg.JSONPath, err)
		}
	}
	if !rep.Verify.OK {
		return rep, errVerify
	}
	return rep, nil
}
