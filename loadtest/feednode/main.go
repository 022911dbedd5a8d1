// Command feednode runs one node of a feed fan-out measurement: an engine
// node whose hub publishes its feed to Redis (package relay's Publisher),
// or an API node that relays it (relay.Relay serving /v1/ws). It stands in
// for gpuxd --role engine|api until gpuxd wires the relay, so the load test
// can measure feed delivery through API nodes (docs/BENCHMARKS.md); it is a
// measuring tool, not a way to run the exchange.
//
//	feednode -role engine -addr 127.0.0.1:18601 -redis redis://127.0.0.1:6379/0 -shard bench -registry bench-reg -admin-key lt-admin
//	feednode -role api -addr 127.0.0.1:18611 -redis redis://127.0.0.1:6379/0 -shard bench -registry bench-reg -admin-key lt-admin
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/redis/go-redis/v9"

	"github.com/gpux/gpux/api"
	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/pricing"
	"github.com/gpux/gpux/relay"
	"github.com/gpux/gpux/sequencer"
	"github.com/gpux/gpux/store"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "feednode:", err)
		os.Exit(1)
	}
}

func run() error {
	role := flag.String("role", "engine", "engine (the shard's leader, publishing its feed) or api (a relay)")
	addr := flag.String("addr", "127.0.0.1:18601", "listen address")
	redisURL := flag.String("redis", "redis://127.0.0.1:6379/0", "Redis URL")
	shard := flag.String("shard", "bench", "the shard (engine: its journal's; api: the main shard)")
	registry := flag.String("registry", "bench-registry", "the registry's hash tag")
	adminKey := flag.String("admin-key", "", "admin key (engine: of the API; api: to fetch snapshots)")
	pprofAddr := flag.String("pprof", "", "serve net/http/pprof on this address (for profiles during a run)")
	flag.Parse()
	if *pprofAddr != "" {
		go func() { _ = http.ListenAndServe(*pprofAddr, nil) }()
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opt, err := store.ClientOptions(*redisURL)
	if err != nil {
		return err
	}
	switch *role {
	case "engine":
		return runEngine(ctx, log, opt, *addr, *shard, *registry, *adminKey)
	case "api":
		return runAPI(ctx, log, opt, *addr, *shard, *registry, *adminKey)
	}
	return fmt.Errorf("-role %q: want engine or api", *role)
}

func runEngine(ctx context.Context, log *slog.Logger, opt *redis.Options, addr, shard, registry, adminKey string) error {
	j, err := store.OpenRedisOptions(ctx, opt, shard)
	if err != nil {
		return err
	}
	defer j.Close()
	rm, err := store.NewReadModels(j.Client(), shard, store.ReadModelOptions{})
	if err != nil {
		return err
	}
	seq, err := sequencer.New(sequencer.Config{Journal: j, Logger: log})
	if err != nil {
		return err
	}
	pub := relay.NewPublisher(relay.PublisherConfig{Redis: j.Client(), Shard: shard, Logger: log})
	srv := api.NewServer(api.Config{Sequencer: seq, ReadModels: rm, AdminKey: adminKey, FeedSink: pub, Logger: log})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	go srv.Listener(ln)
	if err := seq.Recover(ctx); err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	seqCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		seq.Run(seqCtx)
	}()
	if out, err := seq.Submit(ctx, engine.Command{Kind: engine.CmdSetReferenceRates, Rates: pricing.Default().EngineRates()}, nil); err != nil || out.Err != nil {
		return fmt.Errorf("set reference rates: %v %v", err, out.Err)
	}
	rdb := j.Client()
	if err := rdb.HSet(ctx, "gpux:{"+shard+"}:lease", "holder", addr, "addr", addr, "token", 1).Err(); err != nil {
		return err
	}
	if err := rdb.SAdd(ctx, "gpux:{"+registry+"}:shards", shard).Err(); err != nil {
		return err
	}
	<-ctx.Done()
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	_ = srv.Shutdown(sctx)
	pub.Close()
	_ = seq.Close(sctx)
	cancel()
	<-done
	return nil
}

func runAPI(ctx context.Context, log *slog.Logger, opt *redis.Options, addr, shard, registry, adminKey string) error {
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	r := relay.New(relay.Config{Redis: rdb, Registry: registry, MainShard: shard, AdminKey: adminKey, FeedConnsPerAddr: -1, Logger: log})
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/v1/ws", r.Upgrade, r.Handler())
	app.Get("/metrics", r.Feed().Metrics())
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	go app.Listener(r.Listener(ln))
	<-ctx.Done()
	r.Close()
	return app.ShutdownWithTimeout(5 * time.Second)
}
