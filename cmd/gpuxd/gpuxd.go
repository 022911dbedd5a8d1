package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/redis/go-redis/v9"

	"github.com/gpux/gpux/api"
	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/gateway"
	"github.com/gpux/gpux/pricing"
	"github.com/gpux/gpux/relay"
	"github.com/gpux/gpux/sequencer"
	"github.com/gpux/gpux/store"
	"github.com/gpux/gpux/web"
)

// Config is everything an operator chooses; it lives here only.
type Config struct {
	Addr     string
	RedisURL string // redis://... one Redis; redis+cluster://host:port,... a Redis Cluster
	// Role is "all" (one process owns every market, no lease), "engine"
	// (one of Shard's engine nodes: leader or standby by the shard's
	// lease) or "api" (an API node: package gateway routes every request to
	// the engine nodes; no journal, no engine).
	Role  string
	Shard string
	// LeaseTTL is the shard lease's time to live (role engine); the
	// leader renews it about every third of it.
	LeaseTTL time.Duration
	// AdvertiseAddr is the host:port where other nodes reach this node's
	// HTTP API (role engine; in the shard's lease and nodes set). Empty:
	// the listen address, with the hostname when its host part is empty
	// or unspecified.
	AdvertiseAddr    string
	AdminKey         string
	Demo             bool
	RateLimit        int
	RatesFile        string
	RatesStaleAfter  time.Duration // reference rows older than this show "stale": true; <= 0 = never
	SnapshotEvery    int
	SnapshotInterval time.Duration
	FeeBps           int64
	AllowedOrigins   []string
	LogFormat        string // "json" or "text"
	LogLevel         string
	// ShutdownTimeout bounds a graceful stop.
	ShutdownTimeout time.Duration
	// PprofAddr, when set, serves net/http/pprof there (keep it on
	// loopback): how docs/BENCHMARKS.md profiles the server under load.
	PprofAddr string
	// TickInterval is the sequencer's tick period (tests; 0 = 1 s).
	TickInterval time.Duration
	// GPUs and Regions make the market catalogue (every gpu × region); an
	// engine recovered from a snapshot keeps the catalogue it was made with.
	GPUs    []string
	Regions []string
	// PreemptionNotice is every market's spot preemption notice (0 = none:
	// an outbid allocation is preempted at once); MarketNotices overrides
	// it per market id. Like the catalogue, it configures a new exchange:
	// an engine recovered from a snapshot keeps the notices it was made
	// with, and gpuxd warns when the flags disagree with them.
	PreemptionNotice time.Duration
	MarketNotices    map[string]time.Duration
}

// The roles of --role.
const (
	RoleAll    = "all"
	RoleEngine = "engine"
	RoleAPI    = "api"
)

// DefaultConfig is the configuration without flags or environment.
func DefaultConfig() Config {
	return Config{
		Addr: ":8080", Role: RoleAll, Shard: "main", LeaseTTL: 2 * time.Second, RateLimit: 200, LogFormat: "json", LogLevel: "info",
		GPUs: engine.DefaultGPUs, Regions: engine.DefaultRegions,
		SnapshotEvery: 100_000, SnapshotInterval: 5 * time.Minute, ShutdownTimeout: 30 * time.Second,
		RatesStaleAfter:  pricing.DefaultStaleAfter,
		PreemptionNotice: engine.DefaultPreemptionNotice * time.Second,
	}
}

// Main wires the journal, sequencer and API: ParseFlags, Run, Close.
type Main struct {
	Config Config
	// Stdout receives what an operator must see once (generated keys);
	// Stderr the logs.
	Stdout, Stderr io.Writer

	log     *slog.Logger
	journal store.Journal
	// redisJournal is journal when it is in Redis (its client carries the
	// lease).
	redisJournal *store.RedisJournal
	// gateway serves the API on an API node (--role api), with its own
	// Redis client; nil on engine nodes.
	gateway      *gateway.Server
	gatewayRedis redis.UniversalClient
	// relay serves /v1/ws on an API node from the shards' feeds in Redis;
	// feedPub publishes an engine node's feed there. Each nil elsewhere.
	relay      *relay.Relay
	feedPub    *relay.Publisher
	readModels store.ReadModelStore
	seq        *sequencer.Sequencer
	server     *api.Server
	ln         net.Listener

	seqCancel context.CancelFunc
	seqDone   chan error
	serveDone chan error
	failed    chan error
	demo      *demo
	closeOnce sync.Once
	closeErr  error
}

// NewMain returns a Main with the default configuration.
func NewMain() *Main {
	return &Main{Config: DefaultConfig(), Stdout: os.Stdout, Stderr: os.Stderr, failed: make(chan error, 2)}
}

// ParseFlags reads flags, falling back to the GPUX_* environment and then
// the defaults.
func (m *Main) ParseFlags(_ context.Context, args []string) error {
	return m.parse(args, os.LookupEnv)
}

func (m *Main) parse(args []string, env func(string) (string, bool)) error {
	c := &m.Config
	fs := flag.NewFlagSet("gpuxd", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	var errs []error
	str := func(p *string, name, envName, usage string) {
		if v, ok := env(envName); ok {
			*p = v
		}
		fs.StringVar(p, name, *p, usage+" (env "+envName+")")
	}
	integer := func(p *int, name, envName, usage string) {
		if v, ok := env(envName); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: not an integer", envName, v))
			}
			*p = n
		}
		fs.IntVar(p, name, *p, usage+" (env "+envName+")")
	}
	boolean := func(p *bool, name, envName, usage string) {
		if v, ok := env(envName); ok {
			b, err := strconv.ParseBool(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: not a boolean", envName, v))
			}
			*p = b
		}
		fs.BoolVar(p, name, *p, usage+" (env "+envName+")")
	}
	duration := func(p *time.Duration, name, envName, usage string) {
		if v, ok := env(envName); ok {
			d, err := time.ParseDuration(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: not a duration", envName, v))
			}
			*p = d
		}
		fs.DurationVar(p, name, *p, usage+" (env "+envName+")")
	}
	origins := strings.Join(c.AllowedOrigins, ",")
	gpus, regions := strings.Join(c.GPUs, ","), strings.Join(c.Regions, ",")
	str(&gpus, "gpus", "GPUX_GPUS", "comma-separated GPU ids of the market catalogue")
	str(&regions, "regions", "GPUX_REGIONS", "comma-separated regions of the market catalogue")
	duration(&c.PreemptionNotice, "preemption-notice", "GPUX_PREEMPTION_NOTICE", "how long an outbid spot allocation keeps its GPUs (whole seconds, at most 1h; 0 = none) for a new exchange's markets")
	var notices string
	str(&notices, "preemption-notice-markets", "GPUX_PREEMPTION_NOTICE_MARKETS", "per-market notices overriding --preemption-notice, e.g. h100-sxm.us-east=5m,l4.eu-west=0s")
	fee := int(c.FeeBps)
	str(&c.Addr, "addr", "GPUX_ADDR", "listen address")
	str(&c.RedisURL, "redis", "GPUX_REDIS_URL", "redis://host:port/db, or redis+cluster://host:port,host:port,... for a Redis Cluster; empty = in-memory journal (nothing survives a restart)")
	str(&c.Role, "role", "GPUX_ROLE", "all (one process, every market), engine (one engine node of --shard: leader or hot standby) or api")
	str(&c.Shard, "shard", "GPUX_SHARD", "shard id (Redis key hash tag); with --role engine, main (every market) or a region of --regions (its markets)")
	duration(&c.LeaseTTL, "lease-ttl", "GPUX_LEASE_TTL", "the shard lease's time to live (--role engine): a standby takes over about this long after its leader dies")
	str(&c.AdvertiseAddr, "advertise-addr", "GPUX_ADVERTISE_ADDR", "host:port where other nodes reach this node's API (--role engine); empty = the listen address (the hostname when its host is empty)")
	str(&c.AdminKey, "admin-key", "GPUX_ADMIN_KEY", "admin API key; empty = generate one and print it")
	boolean(&c.Demo, "demo", "GPUX_DEMO", "seed demo accounts and listings and run simulated bidders")
	integer(&c.RateLimit, "rate-limit", "GPUX_RATE_LIMIT", "requests per second per API key (burst 2x); 0 = off")
	str(&c.RatesFile, "rates", "GPUX_RATES_FILE", "reference rates CSV; empty = the built-in table")
	duration(&c.RatesStaleAfter, "rates-stale-after", "GPUX_RATES_STALE_AFTER", "reference rates older than this are shown as stale (e.g. 2880h = 120 days); 0 = never")
	integer(&c.SnapshotEvery, "snapshot-every", "GPUX_SNAPSHOT_EVERY", "snapshot after this many commands")
	duration(&c.SnapshotInterval, "snapshot-interval", "GPUX_SNAPSHOT_INTERVAL", "snapshot at least this often when there are new commands")
	integer(&fee, "fee-bps", "GPUX_FEE_BPS", "platform fee in basis points")
	str(&origins, "allowed-origins", "GPUX_ALLOWED_ORIGINS", "comma-separated extra origins allowed to open websockets (* = any)")
	str(&c.LogFormat, "log-format", "GPUX_LOG_FORMAT", "json or text")
	str(&c.LogLevel, "log-level", "GPUX_LOG_LEVEL", "debug, info, warn or error")
	duration(&c.ShutdownTimeout, "shutdown-timeout", "GPUX_SHUTDOWN_TIMEOUT", "how long a graceful stop may take")
	str(&c.PprofAddr, "pprof", "GPUX_PPROF_ADDR", "serve /debug/pprof on this address (e.g. 127.0.0.1:6060); empty = off")
	// main handles --healthcheck before parsing; it is declared here so
	// that -h lists it.
	fs.String("healthcheck", "", "probe this URL (default http://127.0.0.1:8080/readyz when given without one), exit 0 on 200 and 1 otherwise; the container health check")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: gpuxd [flags]\n       gpuxd rates import|put ... (reference prices; gpuxd rates for help)\n\ngpuxd runs the gpux exchange: the sequencer over a Redis (or in-memory)\njournal and the HTTP/websocket API with the dashboard at /.\n\nFlags (each also from the environment variable named):\n")
		fs.PrintDefaults()
	}
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" || a == "--h" {
			fs.SetOutput(m.Stdout) // asked for: not an error
		}
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	c.FeeBps = int64(fee)
	c.AllowedOrigins = splitList(origins)
	c.GPUs, c.Regions = splitList(gpus), splitList(regions)
	if len(c.GPUs) == 0 || len(c.Regions) == 0 {
		return errors.New("--gpus and --regions must each name at least one")
	}
	known := map[string]bool{}
	for _, mk := range engine.Catalogue(c.GPUs, c.Regions) {
		if !engine.ValidMarketID(mk.ID) {
			return fmt.Errorf("market %q: gpu and region ids are lowercase letters, digits and dashes", mk.ID)
		}
		known[mk.ID] = true
	}
	if err := checkNotice("--preemption-notice", c.PreemptionNotice); err != nil {
		return err
	}
	c.MarketNotices = nil
	for _, item := range splitList(notices) {
		id, d, ok := strings.Cut(item, "=")
		if !ok || !known[id] {
			return fmt.Errorf("--preemption-notice-markets: %q: want MARKET=DURATION for a market of the catalogue", item)
		}
		dur, err := time.ParseDuration(d)
		if err != nil {
			return fmt.Errorf("--preemption-notice-markets: %q: %w", item, err)
		}
		if err := checkNotice("--preemption-notice-markets "+id, dur); err != nil {
			return err
		}
		if c.MarketNotices == nil {
			c.MarketNotices = map[string]time.Duration{}
		}
		c.MarketNotices[id] = dur
	}
	switch {
	case c.RateLimit < 0:
		return errors.New("--rate-limit must not be negative")
	case c.FeeBps < 0 || c.FeeBps >= 10000:
		return errors.New("--fee-bps must be in [0, 10000)")
	case c.Shard == "":
		return errors.New("--shard must not be empty")
	case c.Role != RoleAll && c.Role != RoleEngine && c.Role != RoleAPI:
		return fmt.Errorf("--role %q: all, engine or api", c.Role)
	case c.Role == RoleEngine && c.RedisURL == "":
		return errors.New("--role engine needs --redis: the shard's lease, journal and standbys live there")
	case c.Role == RoleAPI && c.RedisURL == "":
		return errors.New("--role api needs --redis: the shards' leases, the account registry and the feeds live there")
	case c.Role == RoleAPI && c.AdminKey == "":
		return errors.New("--role api needs --admin-key, the same on every node: it creates accounts and moves money on the engine nodes")
	case c.Role == RoleEngine && c.LeaseTTL < 30*time.Millisecond:
		return fmt.Errorf("--lease-ttl %v: want at least 30ms", c.LeaseTTL)
	case c.LogFormat != "json" && c.LogFormat != "text":
		return fmt.Errorf("--log-format %q: json or text", c.LogFormat)
	}
	if c.AdvertiseAddr != "" {
		if _, _, err := net.SplitHostPort(c.AdvertiseAddr); err != nil {
			return fmt.Errorf("--advertise-addr %q: want host:port: %w", c.AdvertiseAddr, err)
		}
	}
	if _, err := c.ShardMarkets(); err != nil {
		return err
	}
	return nil
}

// warnMarketDrift says when the recovered exchange's markets run other
// preemption notices than the flags ask for: the journaled configuration
// wins, as it must for replay to give the same state.
func (m *Main) warnMarketDrift(log *slog.Logger) {
	want := map[string]int64{}
	for _, mk := range m.Config.Markets() {
		want[mk.ID] = mk.NoticeSeconds()
	}
	m.seq.Read(func(e *engine.Engine) {
		for _, mk := range e.Markets() {
			if w, ok := want[mk.ID]; ok && w != mk.NoticeSeconds() {
				log.Warn("market keeps the preemption notice it was created with; the flag applies to a new exchange",
					"market", mk.ID, "notice_seconds", mk.NoticeSeconds(), "flag_seconds", w)
			}
		}
	})
}

// checkNotice accepts a preemption notice the engine can hold: whole
// seconds from 0 (none) to engine.MaxPreemptionNotice.
func checkNotice(name string, d time.Duration) error {
	if d < 0 || d > engine.MaxPreemptionNotice*time.Second || d%time.Second != 0 {
		return fmt.Errorf("%s: %v: want whole seconds from 0s (no notice) to %ds", name, d, engine.MaxPreemptionNotice)
	}
	return nil
}

// Markets is the market catalogue with each market's preemption notice.
func (c Config) Markets() []engine.Market {
	ms := engine.Catalogue(c.GPUs, c.Regions)
	for i := range ms {
		d, ok := c.MarketNotices[ms[i].ID]
		if !ok {
			d = c.PreemptionNotice
		}
		// The engine's own spellings: 0 is its default, -1 none. The
		// default stays 0 so a default exchange's state (and hash) is the
		// same whoever built it, a replay tool or an older gpuxd.
		switch secs := int64(d / time.Second); secs {
		case engine.DefaultPreemptionNotice:
			ms[i].PreemptionNoticeSeconds = 0
		case 0:
			ms[i].PreemptionNoticeSeconds = -1
		default:
			ms[i].PreemptionNoticeSeconds = secs
		}
	}
	return ms
}

// ShardMarkets is the catalogue part this node's engine owns: every
// market with --role all, or with --role engine and shard main; the
// markets of the region a shard is named after otherwise.
func (c Config) ShardMarkets() ([]engine.Market, error) {
	all := c.Markets()
	if c.Role != RoleEngine || c.Shard == "main" {
		return all, nil
	}
	var out []engine.Market
	for _, mk := range all {
		if mk.Region == c.Shard {
			out = append(out, mk)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--shard %q with --role engine: want main or a region of --regions (%s)", c.Shard, strings.Join(c.Regions, ","))
	}
	return out, nil
}

// advertise is the address other nodes reach this node's API at: the
// flag, else the listen address's host (the hostname when it is empty or
// unspecified) with the port actually listened on.
func (c Config) advertise(ln net.Addr) (string, error) {
	if c.AdvertiseAddr != "" {
		return c.AdvertiseAddr, nil
	}
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return "", fmt.Errorf("advertise address from --addr %q: %w", c.Addr, err)
	}
	_, port, err := net.SplitHostPort(ln.String())
	if err != nil {
		return "", fmt.Errorf("advertise address from %s: %w", ln, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if host, err = os.Hostname(); err != nil {
			return "", fmt.Errorf("advertise address: hostname: %w (set --advertise-addr)", err)
		}
	}
	return net.JoinHostPort(host, port), nil
}

// nodeID is an id unique to this process: hostname, pid and random bits.
func nodeID() string {
	host, _ := os.Hostname()
	var b [6]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

func (m *Main) logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(m.Config.LogLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", m.Config.LogLevel, err)
	}
	opts := &slog.HandlerOptions{Level: level}
	if m.Config.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(m.Stderr, opts)), nil
	}
	return slog.New(slog.NewJSONHandler(m.Stderr, opts)), nil
}

// Addr is the address the API listens on, once Run has started it.
func (m *Main) Addr() string {
	if m.ln == nil {
		return ""
	}
	return m.ln.Addr().String()
}

// AdminKey is the admin key in force (generated by Run when none was set).
func (m *Main) AdminKey() string { return m.Config.AdminKey }

// Failed reports a fatal error of the server or the sequencer after Run.
func (m *Main) Failed() <-chan error { return m.failed }

// Run opens the journal, starts listening (health answers during
// recovery), recovers the engine, starts the sequencer, brings the
// engine's reference rates in line with the rates table and, with --demo,
// seeds demo data and starts simulated bidders. It returns once the
// exchange is ready; Close stops it.
func (m *Main) Run(ctx context.Context) error {
	log, err := m.logger()
	if err != nil {
		return err
	}
	m.log = log
	if m.Config.Role == RoleAPI {
		return m.runAPINode(log)
	}
	markets, err := m.Config.ShardMarkets()
	if err != nil {
		return err
	}
	rates := pricing.Default()
	if m.Config.RatesFile != "" {
		if rates, err = pricing.LoadFile(m.Config.RatesFile); err != nil {
			return err // a *pricing.LoadError names file, line and column
		}
	}
	if m.Config.RedisURL != "" {
		j, err := store.OpenRedis(ctx, m.Config.RedisURL, m.Config.Shard)
		if err != nil {
			return fmt.Errorf("open journal: %w", err)
		}
		m.journal = j
		m.redisJournal = j
		if m.readModels, err = store.NewReadModels(j.Client(), m.Config.Shard, store.ReadModelOptions{}); err != nil {
			return err
		}
		log.Info("journal", "kind", "redis", "shard", m.Config.Shard, "cluster", store.IsClusterURL(m.Config.RedisURL))
	} else {
		m.journal = store.NewMemoryJournal()
		m.readModels = store.NewMemoryReadModels(store.ReadModelOptions{})
		log.Warn("NO REDIS CONFIGURED: running on an in-memory journal; every account, order and balance is lost when this process stops (set --redis or GPUX_REDIS_URL)")
	}
	if m.Config.AdminKey == "" {
		key, _ := api.NewAPIKey()
		m.Config.AdminKey = key
		fmt.Fprintf(m.Stdout, "gpuxd: generated admin key (set --admin-key or GPUX_ADMIN_KEY to choose one): %s\n", key)
	}

	if m.ln, err = net.Listen("tcp", m.Config.Addr); err != nil {
		return fmt.Errorf("listen %s: %w", m.Config.Addr, err)
	}
	var lease sequencer.Lease
	if m.Config.Role == RoleEngine {
		adv, err := m.Config.advertise(m.ln.Addr())
		if err != nil {
			return err
		}
		l, err := store.NewLease(m.redisJournal.Client(), m.Config.Shard, nodeID(), adv, m.Config.LeaseTTL)
		if err != nil {
			return err
		}
		if err := l.Register(ctx); err != nil {
			return err
		}
		lease = l
		log.Info("engine node", "shard", m.Config.Shard, "holder", l.Holder(), "advertise_addr", adv, "lease_ttl", m.Config.LeaseTTL.String(), "markets", len(markets))
	}
	m.seq, err = sequencer.New(sequencer.Config{
		Journal: m.journal, FeeBps: m.Config.FeeBps, Markets: markets, Lease: lease,
		SnapshotEvery: m.Config.SnapshotEvery, SnapshotInterval: m.Config.SnapshotInterval,
		TickInterval: m.Config.TickInterval, Logger: log.With("component", "sequencer"),
	})
	if err != nil {
		return err
	}
	var sink api.FeedSink
	if m.Config.Role == RoleEngine {
		m.feedPub = relay.NewPublisher(relay.PublisherConfig{
			Redis: m.redisJournal.Client(), Shard: m.Config.Shard,
			Leader: m.seq.Leader, Logger: log.With("component", "feed"),
		})
		sink = m.feedPub
	}
	m.server = api.NewServer(api.Config{
		Sequencer: m.seq, ReadModels: m.readModels, Rates: rates, AdminKey: m.Config.AdminKey,
		RateLimit: m.Config.RateLimit, AllowedOrigins: m.Config.AllowedOrigins, Logger: log.With("component", "api"),
		Dashboard: web.FS(), Role: m.Config.Role, Shard: m.Config.Shard, FeedSink: sink,
	})
	m.server.SetRatesStaleAfter(m.Config.RatesStaleAfter)

	if m.Config.PprofAddr != "" {
		pl, err := net.Listen("tcp", m.Config.PprofAddr)
		if err != nil {
			return fmt.Errorf("pprof listen: %w", err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		go http.Serve(pl, mux) //nolint:errcheck // ends with the process
		log.Info("pprof", "addr", pl.Addr().String())
	}
	m.serveDone = make(chan error, 1)
	go func() {
		err := m.server.Listener(m.ln)
		m.serveDone <- err
		if err != nil {
			m.failed <- fmt.Errorf("serve: %w", err)
		}
	}()
	log.Info("listening; recovering", "addr", m.ln.Addr().String())

	if err := m.seq.Recover(ctx); err != nil {
		return err
	}
	seqCtx, cancel := context.WithCancel(context.Background())
	m.seqCancel = cancel
	m.seqDone = make(chan error, 1)
	go func() {
		err := m.seq.Run(seqCtx)
		m.seqDone <- err
		if err != nil && !errors.Is(err, context.Canceled) {
			m.failed <- fmt.Errorf("sequencer: %w", err)
		}
	}()
	leader := true
	if lease != nil {
		// A new shard's first node takes the lease; another finds it held
		// and stands by. Either way it is ready: a standby serves reads.
		select {
		case <-m.seq.Settled():
		case <-time.After(3*m.Config.LeaseTTL + 5*time.Second):
			log.Warn("lease undecided (Redis slow?); starting as a standby")
		case <-ctx.Done():
			return ctx.Err()
		}
		leader = m.seq.Status().Leader
	}
	if leader {
		if err := m.syncReferenceRates(ctx, rates); err != nil {
			if lease == nil || !errors.Is(err, sequencer.ErrNotLeader) {
				return err
			}
			log.Warn("lease lost before the reference rates were synced", "err", err)
		}
	} else {
		log.Info("standby: the leader keeps the reference rates and any demo")
	}
	if m.Config.Demo && leader {
		m.demo, err = startDemo(ctx, m.seq, log.With("component", "demo"), m.Stdout)
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
	}
	m.warnMarketDrift(log)
	st := m.seq.Status()
	log.Info("ready", "addr", m.ln.Addr().String(), "journal", st.Journal, "durable", st.Durable,
		"last_seq", st.LastSeq, "recovered_commands", st.RecoveredCommands, "recovery_seconds", st.RecoverySeconds,
		"role", m.Config.Role, "shard", m.Config.Shard, "leader", st.Leader, "fencing_token", st.FencingToken)
	return nil
}

// runAPINode starts an API node (--role api): no journal, no engine; it
// routes every request to the engine nodes of the shards (package
// gateway) and is ready once it reaches Redis and a shard has a leader.
func (m *Main) runAPINode(log *slog.Logger) error {
	rdb, err := gateway.Dial(m.Config.RedisURL)
	if err != nil {
		return fmt.Errorf("api node: %w", err)
	}
	m.gatewayRedis = rdb
	perAddr := 0 // the feed's default limit per address, as on an engine node
	if m.Config.RateLimit == 0 {
		perAddr = -1
	}
	m.relay = relay.New(relay.Config{
		Redis: rdb, AdminKey: m.Config.AdminKey, AllowedOrigins: m.Config.AllowedOrigins,
		FeedConnsPerAddr: perAddr, Logger: log.With("component", "relay"),
	})
	m.gateway, err = gateway.New(gateway.Config{
		Redis: rdb, AdminKey: m.Config.AdminKey, RateLimit: m.Config.RateLimit,
		LeaseTTL: m.Config.LeaseTTL, Logger: log.With("component", "gateway"),
		Feed: []fiber.Handler{m.relay.Upgrade, m.relay.Handler()},
	})
	if err != nil {
		return fmt.Errorf("api node: %w", err)
	}
	if m.ln, err = net.Listen("tcp", m.Config.Addr); err != nil {
		return fmt.Errorf("listen %s: %w", m.Config.Addr, err)
	}
	m.serveDone = make(chan error, 1)
	go func() {
		err := m.gateway.Listener(m.relay.Listener(m.ln))
		m.serveDone <- err
		if err != nil {
			m.failed <- fmt.Errorf("serve: %w", err)
		}
	}()
	log.Info("ready", "addr", m.ln.Addr().String(), "role", m.Config.Role, "cluster", store.IsClusterURL(m.Config.RedisURL))
	return nil
}

// syncReferenceRates puts the reference table in force after recovery.
// A table an admin installed at run time is journaled with its rates, so
// without an explicit --rates file it stays in force across restarts;
// otherwise the configured table (--rates, or the built-in one) applies and
// a SetReferenceRates is journaled when the engine's rates differ from it
// or the engine still holds a run-time table, so pegs resolve against
// what the API shows.
func (m *Main) syncReferenceRates(ctx context.Context, t *pricing.Table) error {
	var have []engine.ReferenceRate
	var kept []byte
	m.seq.Read(func(e *engine.Engine) { have, kept = e.ReferenceRates(), e.ReferenceTable() })
	if kept != nil && m.Config.RatesFile == "" {
		kt, err := pricing.Load(bytes.NewReader(kept))
		if err == nil && slices.Equal(kt.EngineRates(), have) {
			m.server.SetReferenceTable(kt)
			m.log.Info("reference table put at run time kept from the journal", "rows", kt.Len(), "hash", kt.Hash())
			return nil
		}
		m.log.Warn("the journal's reference table does not match its rates; using the configured table", "err", err)
	}
	want := t.EngineRates()
	if slices.Equal(have, want) && kept == nil {
		return nil
	}
	out, err := m.seq.Submit(ctx, engine.Command{Kind: engine.CmdSetReferenceRates, Rates: want}, nil)
	if err != nil {
		return fmt.Errorf("set reference rates: %w", err)
	}
	if out.Err != nil {
		return fmt.Errorf("set reference rates: %w", out.Err)
	}
	m.log.Info("reference rates set", "rates", len(want), "seq", out.Seq)
	return nil
}

// Close stops gracefully: demo bidders, then the API (no new connections,
// websockets closed with 1001, in-flight requests finished), then the
// sequencer (queued commands run, journal flushed, final snapshot), then
// the journal. It is safe to call more than once.
func (m *Main) Close() error {
	m.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), m.Config.ShutdownTimeout)
		defer cancel()
		var errs []error
		if m.demo != nil {
			m.demo.stop()
		}
		if m.ln != nil && m.serveDone == nil {
			m.ln.Close() // Run failed between listening and serving
		}
		if m.relay != nil {
			m.relay.Close()
		}
		if m.gateway != nil {
			if err := m.gateway.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("stop api node: %w", err))
			}
			if m.serveDone != nil {
				select {
				case <-m.serveDone:
				case <-ctx.Done():
				}
			}
		}
		if m.gatewayRedis != nil {
			m.gatewayRedis.Close()
		}
		if m.server != nil {
			if err := m.server.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("stop api: %w", err))
			}
			if m.serveDone != nil {
				select {
				case <-m.serveDone:
				case <-ctx.Done():
				}
			}
		}
		if m.feedPub != nil {
			m.feedPub.Close() // after the hub stopped, before the sequencer
		}
		if m.seq != nil && m.seqDone != nil {
			if err := m.seq.Close(ctx); err != nil {
				errs = append(errs, err)
			}
			m.seqCancel()
			<-m.seqDone
		}
		if m.journal != nil {
			if err := m.journal.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close journal: %w", err))
			}
		}
		if m.log != nil {
			m.log.Info("stopped")
		}
		m.closeErr = errors.Join(errs...)
	})
	return m.closeErr
}
