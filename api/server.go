package api

import (
	"context"
	_ "embed"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/filesystem"

	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/history"
	"github.com/gpux/gpux/pricing"
	"github.com/gpux/gpux/sequencer"
	"github.com/gpux/gpux/store"
)

//go:embed openapi.yaml
var openAPIDocument []byte

// OpenAPI returns the OpenAPI document the server serves at /openapi.yaml.
func OpenAPI() []byte { return append([]byte(nil), openAPIDocument...) }

// Sequencer is what the API needs of the shard's runtime
// (*sequencer.Sequencer implements it).
type Sequencer interface {
	Submit(ctx context.Context, c engine.Command, view func(e *engine.Engine, c *engine.Command)) (sequencer.Outcome, error)
	Read(fn func(e *engine.Engine))
	Status() sequencer.Status
}

var _ Sequencer = (*sequencer.Sequencer)(nil)

// Config configures a Server.
type Config struct {
	Sequencer Sequencer
	// Role is the node's role as /healthz shows it: "all" (the default:
	// one process owns every market) or "engine" (one shard of several).
	Role string
	// Shard is the shard this node's engine runs (default "main"). A
	// deposit or withdrawal that names another shard is refused (422
	// wrong_shard).
	Shard string
	// ReadModels serves history (candles) and remembers the answers of
	// idempotent admin requests; optional (history is then empty and
	// admin idempotency is kept in memory).
	ReadModels store.ReadModelStore
	// Rates are the reference rates shown next to market prices; nil =
	// pricing.Default().
	Rates *pricing.Table
	// AdminKey authorises account creation, deposits and withdrawals.
	// Empty: no request is admin.
	AdminKey string
	// RateLimit is requests per second per API key (IP address for
	// requests without a valid key), burst 2×; 0 = off.
	RateLimit int
	// AllowedOrigins may open websockets besides same-origin pages and
	// pages served from localhost; "*" allows any origin.
	AllowedOrigins []string
	Logger         *slog.Logger
	// Now is the clock validation uses (default time.Now); the engine
	// re-checks every rule with the sequencer's time.
	Now func() time.Time
	// CommandTimeout bounds waiting for one command (default 10 s).
	CommandTimeout time.Duration
	// Heartbeat is the websocket heartbeat period (default 10 s).
	Heartbeat time.Duration
	// SendQueue is each websocket client's queue length (default 256);
	// a client whose queue is full is dropped.
	SendQueue int
	// FeedConnsPerAddr bounds the open websocket connections of one
	// remote address (429 too_many_connections beyond). 0 = 64 while
	// RateLimit is on and no limit when it is off (as for load tests from
	// one machine); negative = no limit.
	FeedConnsPerAddr int
	// FillEstimateRefresh is how often fill estimates are refitted from
	// the read models, off the sequencer (default 30 s).
	FillEstimateRefresh time.Duration
	// Dashboard, when set, is served at / (index.html) and below it; the
	// files come from the web package's embedded tree in gpuxd.
	Dashboard fs.FS
	// FeedSink, when set, gets every message the websocket hub sends, for
	// API nodes to relay (an engine node's relay.Publisher); the hub then
	// keeps every channel up to date. Optional.
	FeedSink FeedSink
}

// Server is the HTTP and websocket API.
type Server struct {
	cfg     Config
	log     *slog.Logger
	app     *fiber.App
	metrics *metrics
	limiter *limiter
	keys    keyCache // SHA-256 of account keys seen
	hub     *hub
	idem    *adminIdem

	baseCtx context.Context
	cancel  context.CancelFunc

	shutdownOnce sync.Once
	conns        connSet
	feedConns    addrCounter
	prices       *history.Prices // price board, candles, trade log, spot history
	history      *history.Store  // closed orders (ReadModels' objects, else memory)
	statements   *history.Statements
	ledger       *ledgerWriter // writes statements' lines off the sequencer's goroutine
	fills        *history.FillEstimates
}

// NewServer builds the server and its routes; call Listen or Listener to
// serve. A sequencer that can be observed (*sequencer.Sequencer) gets the
// server's OnEvents and OnBatch attached here, so build the server before
// the sequencer runs; otherwise feed the hooks yourself.
func NewServer(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Rates == nil {
		cfg.Rates = pricing.Default()
	}
	if cfg.Role == "" {
		cfg.Role = RoleAll
	}
	if cfg.Shard == "" {
		cfg.Shard = DefaultShard
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.CommandTimeout <= 0 {
		cfg.CommandTimeout = 10 * time.Second
	}
	if cfg.Heartbeat <= 0 || cfg.Heartbeat > 15*time.Second {
		cfg.Heartbeat = 10 * time.Second
	}
	if cfg.FeedConnsPerAddr == 0 && cfg.RateLimit > 0 {
		cfg.FeedConnsPerAddr = defaultFeedConnsPerAddr
	}
	if cfg.SendQueue <= 0 {
		cfg.SendQueue = 256
	}
	s := &Server{cfg: cfg, log: cfg.Logger, metrics: newMetrics(), limiter: newLimiter(cfg.RateLimit)}
	s.registerMarketMetrics()
	s.baseCtx, s.cancel = context.WithCancel(context.Background())
	s.idem = newAdminIdem(cfg.ReadModels)
	objs, _ := cfg.ReadModels.(store.ObjectStore)
	s.history = history.New(objs, cfg.Logger)
	series, _ := cfg.ReadModels.(store.SeriesStore)
	s.statements = history.NewStatements(series, cfg.Logger)
	s.ledger = newLedgerWriter(s.statements)
	s.prices = history.NewPrices(func(fn func(e *engine.Engine)) { s.read(fn) }, cfg.Rates, cfg.ReadModels, cfg.Logger)
	s.fills = history.NewFillEstimates(series, func(fn func(*engine.Engine)) {
		if cfg.Sequencer != nil {
			cfg.Sequencer.Read(fn)
		}
	}, 0, cfg.Logger)
	s.hub = newHub(s)
	s.app = fiber.New(fiber.Config{
		AppName:               "gpuxd",
		BodyLimit:             BodyLimit,
		ReadBufferSize:        HeaderLimit,
		Immutable:             true, // values taken from a request never alias fasthttp's buffers
		DisableStartupMessage: true,
		ErrorHandler:          s.errorHandler,
		ReadTimeout:           30 * time.Second,
		WriteTimeout:          30 * time.Second,
		IdleTimeout:           2 * time.Minute,
	})
	s.routes()
	go s.hub.run()
	if cfg.FillEstimateRefresh <= 0 {
		cfg.FillEstimateRefresh = 30 * time.Second
	}
	go s.fills.Run(s.baseCtx, cfg.FillEstimateRefresh)
	if o, ok := cfg.Sequencer.(observable); ok {
		o.Observe(s.OnEvents, s.OnBatch)
		o.SetReadSide(history.ReadSide{Closed: s.history, Lines: s.statements, LinesDurable: s.ledger.durable})
	}
	return s
}

// observable is a sequencer that takes event and batch hooks.
type observable interface {
	Observe(onEvents func([]engine.Event), onBatch func(int, time.Duration))
	SetReadSide(sequencer.ReadSide)
}

var _ observable = (*sequencer.Sequencer)(nil)

// App exposes the Fiber app (tests list its routes).
func (s *Server) App() *fiber.App { return s.app }

func (s *Server) routes() {
	a := s.app
	a.Use(s.observe)
	a.Get("/healthz", s.health)
	a.Get("/readyz", s.ready)
	a.Get("/metrics", s.metrics.handler())
	a.Get("/openapi.yaml", s.openapi)

	v1 := a.Group("/v1", s.identify, s.decodeBody)
	v1.Post("/accounts", s.createAccount)
	v1.Post("/accounts/:id/deposits", s.deposit)
	v1.Post("/accounts/:id/withdrawals", s.withdraw)
	v1.Get("/account", s.getAccount)
	v1.Get("/account/statement", s.getStatement)

	v1.Get("/markets", s.listMarkets)
	v1.Get("/markets/:market", s.getMarket)
	v1.Get("/markets/:market/book", s.getBook)
	v1.Get("/markets/:market/trades", s.listMarketTrades)
	v1.Get("/markets/:market/quote", s.getQuote)
	v1.Get("/markets/:market/history", s.getHistory)
	v1.Get("/prices", s.listPrices)
	s.rateRoutes(v1)

	v1.Post("/listings", s.createListing)
	v1.Get("/listings", s.listListings)
	v1.Get("/listings/:id", s.getListing)
	v1.Delete("/listings/:id", s.cancelListing)

	v1.Post("/bids", s.createBid)
	v1.Get("/bids", s.listBids)
	v1.Get("/bids/:id", s.getBid)
	v1.Delete("/bids/:id", s.cancelBid)

	// The websocket feed, and the snapshots API nodes' relays start from.
	feed := s.feedServer()
	v1.Get("/ws", feed.upgrade, feed.handler())
	v1.Get(strings.TrimPrefix(FeedSnapshotPath, "/v1"), s.feedSnapshot)

	// Shards: the internal account route and transfers (shards.go).
	s.shardRoutes(v1)

	if s.cfg.Dashboard != nil {
		a.Use("/", filesystem.New(filesystem.Config{Root: http.FS(s.cfg.Dashboard), Index: "index.html"}))
	}
}

// Listen serves on addr until Shutdown.
func (s *Server) Listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return s.Listener(ln)
}

// Listener serves on ln until Shutdown.
func (s *Server) Listener(ln net.Listener) error {
	err := s.app.Listener(&trackingListener{Listener: ln, conns: &s.conns})
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections, closes every websocket with 1001
// (going away), waits for in-flight requests (or ctx) and stops the feed.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	s.shutdownOnce.Do(func() {
		s.hub.close()
		// fasthttp counts a connection that has not sent a byte yet as
		// active, and would wait for it until its read timeout: close
		// those as net/http does.
		stop := make(chan struct{})
		go func() {
			t := time.NewTicker(50 * time.Millisecond)
			defer t.Stop()
			for {
				s.conns.closeUnused()
				select {
				case <-stop:
					return
				case <-t.C:
				}
			}
		}()
		err = s.app.ShutdownWithContext(ctx)
		close(stop)
		s.cancel()
		s.prices.Close() // later batches still move the board; they are no longer persisted
		s.ledger.close() // lines of later batches are written in OnEvents itself
	})
	return err
}

// OnEvents is the sequencer's events hook, run on its goroutine after a
// batch is journaled and before the batch's callers hear back. It is the
// one fan-out of the engine's events, in this order:
//
//  1. the read side (package history), which answers for the market's
//     past: closed orders are queued first (the engine has forgotten
//     them; they are stored off this goroutine, and the sequencer saves
//     no snapshot past what is not stored yet: sequencer.ReadSide),
//     statement lines are queued (the statement endpoint waits for them),
//     and the price board is fed, so /v1/prices and the history never
//     trail a response; trades, spot prices and candles are queued for
//     Redis without waiting;
//  2. the feed hub, last, which only delivers: it copies the events into
//     its queue and never blocks the sequencer.
func (s *Server) OnEvents(events []engine.Event) {
	s.history.Observe(events)
	s.ledger.offer(events)
	s.fills.Observe(events) // queues for its worker: never blocks, never reads the engine
	s.prices.Observe(events)
	s.hub.publish(events)
}

// OnBatch is the sequencer's batch hook (metrics).
func (s *Server) OnBatch(commands int, journalLatency time.Duration) {
	s.metrics.batchSize.Observe(float64(commands))
	s.metrics.batchLat.Observe(journalLatency.Seconds())
}

// read runs fn on the engine under the sequencer's read lock; it reports
// false (and skips fn) before recovery has produced an engine.
func (s *Server) read(fn func(e *engine.Engine)) bool {
	ran := false
	s.cfg.Sequencer.Read(func(e *engine.Engine) {
		if e != nil {
			ran = true
			fn(e)
		}
	})
	return ran
}

func (s *Server) checker() checker {
	return checker{now: s.cfg.Now(), hasMarket: func(id string) bool {
		ok := false
		s.read(func(e *engine.Engine) { ok = e.HasMarket(id) })
		return ok
	}}
}

// submit runs one command through the sequencer, counting it. A rejection
// by the engine comes back as a Problem as well.
func (s *Server) submit(cmd engine.Command, view func(e *engine.Engine, c *engine.Command)) (sequencer.Outcome, *Problem) {
	ctx, cancel := context.WithTimeout(s.baseCtx, s.cfg.CommandTimeout)
	defer cancel()
	out, err := s.cfg.Sequencer.Submit(ctx, cmd, view)
	kind := cmd.Kind.String()
	if err != nil {
		s.metrics.commands.WithLabelValues(kind, "error").Inc()
		return out, fromSubmit(err)
	}
	if out.Err != nil {
		s.metrics.commands.WithLabelValues(kind, out.Err.Code).Inc()
		return out, fromEngine(out.Err)
	}
	s.metrics.commands.WithLabelValues(kind, "ok").Inc()
	return out, nil
}

// connSet tracks the server's connections so Shutdown can close those
// that never sent a request.
type connSet struct {
	mu sync.Mutex
	m  map[*trackedConn]bool
}

func (cs *connSet) add(c *trackedConn) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.m == nil {
		cs.m = map[*trackedConn]bool{}
	}
	cs.m[c] = true
}

func (cs *connSet) remove(c *trackedConn) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	delete(cs.m, c)
}

func (cs *connSet) closeUnused() {
	cs.mu.Lock()
	var idle []*trackedConn
	for c := range cs.m {
		if !c.used.Load() {
			idle = append(idle, c)
		}
	}
	cs.mu.Unlock()
	for _, c := range idle {
		_ = c.Close()
	}
}

type trackingListener struct {
	net.Listener
	conns *connSet
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, set: l.conns}
	l.conns.add(tc)
	return tc, nil
}

type trackedConn struct {
	net.Conn
	set  *connSet
	used atomic.Bool
	once sync.Once

	// wmu orders writes and guards corking: while corked, writes collect
	// in wbuf and uncork sends them in one Write (a feed writer corks
	// around a batch of queued messages). wmu is held across the
	// underlying Write so bytes never interleave or reorder.
	wmu    sync.Mutex
	corked bool
	wbuf   []byte
}

// corkLimit is how much a corked connection collects before it writes
// anyway.
const corkLimit = 64 << 10

func (c *trackedConn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.corked {
		c.wbuf = append(c.wbuf, b...)
		if len(c.wbuf) < corkLimit {
			return len(b), nil
		}
		err := c.flushLocked()
		return len(b), err
	}
	return c.Conn.Write(b)
}

// cork makes writes collect until uncork.
func (c *trackedConn) cork() {
	c.wmu.Lock()
	c.corked = true
	c.wmu.Unlock()
}

// uncork writes what was collected, in one Write.
func (c *trackedConn) uncork() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.corked = false
	return c.flushLocked()
}

func (c *trackedConn) flushLocked() error {
	if len(c.wbuf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.wbuf)
	if cap(c.wbuf) > 2*corkLimit {
		c.wbuf = nil // a prices burst: do not keep its buffer
	} else {
		c.wbuf = c.wbuf[:0]
	}
	return err
}

func (c *trackedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.used.Store(true)
	}
	return n, err
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { c.set.remove(c) })
	return c.Conn.Close()
}
