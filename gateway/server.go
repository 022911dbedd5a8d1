package gateway

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/gpux/gpux/api"
	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/store"
)

// Config configures an API node.
type Config struct {
	// Redis holds the contract's keys: the shards set, leases and nodes,
	// the registry. Required. A *redis.ClusterClient works as well.
	Redis redis.UniversalClient
	// Registry is the hash tag of the registry keys (default "registry":
	// gpux:{registry}:shards, :keys, :account:<id>, ...). Tests use their
	// own to stay apart.
	Registry string
	// DefaultShard owns every market no region shard owns (default
	// "main").
	DefaultShard string
	// AdminKey is the admin key every node shares (--admin-key): it
	// authorises the admin routes here and is what this node sends to
	// engine nodes for registry work and transfers. Empty: no request is
	// admin and accounts cannot be created.
	AdminKey string
	// RateLimit is requests per second per API key (IP address without a
	// valid key), burst 2×; 0 = off. Engine nodes do not count forwarded
	// requests again.
	RateLimit int
	// LeaseTTL is the shards' lease TTL (default 2 s): a node silent for
	// 3×LeaseTTL is ignored.
	LeaseTTL time.Duration
	// TopologyRefresh is how long a reading of the shards, leases and
	// nodes is used (default 250 ms); a node that does not answer makes
	// the next request read again.
	TopologyRefresh time.Duration
	// RequestTimeout bounds one request to an engine node (default 15 s,
	// beyond the engine nodes' 10 s command timeout).
	RequestTimeout time.Duration
	// SweepInterval is how often pending transfers are looked for
	// (default 2 s; negative = no sweeper). SweepAfter is how old a
	// pending transfer must be before the sweeper takes it (default 5 s,
	// so it does not race the request still driving it).
	SweepInterval time.Duration
	SweepAfter    time.Duration
	// Feed, when set, serves GET /v1/ws (the feed relay's upgrade check
	// and websocket handler); without it the route answers 503.
	Feed   []fiber.Handler
	Logger *slog.Logger

	// stopAfter, in tests, makes a transfer stop after it reached a state
	// (as if the node died there).
	stopAfter func(state string) bool
}

// Server is an API node: the public HTTP API for every market, served by
// forwarding to engine nodes.
type Server struct {
	cfg     Config
	log     *slog.Logger
	app     *fiber.App
	http    *http.Client
	disc    *discovery
	reg     *registry
	limiter *api.RateLimiter

	metrics  *prometheus.Registry
	requests *prometheus.CounterVec

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

// New builds an API node and starts its transfer sweeper; call Listener
// to serve and Shutdown to stop.
func New(cfg Config) (*Server, error) {
	if cfg.Redis == nil {
		return nil, errors.New("gateway: Config.Redis is required")
	}
	if cfg.Registry == "" {
		cfg.Registry = "registry"
	}
	if cfg.DefaultShard == "" {
		cfg.DefaultShard = api.DefaultShard
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 2 * time.Second
	}
	if cfg.TopologyRefresh <= 0 {
		cfg.TopologyRefresh = 250 * time.Millisecond
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 15 * time.Second
	}
	if cfg.SweepInterval == 0 {
		cfg.SweepInterval = 2 * time.Second
	}
	if cfg.SweepAfter <= 0 {
		cfg.SweepAfter = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	g := &Server{
		cfg: cfg, log: cfg.Logger,
		http: &http.Client{Timeout: cfg.RequestTimeout, Transport: &http.Transport{
			Proxy: nil, MaxIdleConns: 256, MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second,
			DialContext: (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		}},
		disc:    &discovery{rdb: cfg.Redis, registry: cfg.Registry, ttl: cfg.LeaseTTL, refresh: cfg.TopologyRefresh},
		reg:     &registry{rdb: cfg.Redis, tag: cfg.Registry},
		limiter: api.NewRateLimiter(cfg.RateLimit),
		metrics: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gpux_gateway_requests_total", Help: "Requests an API node answered, by route and status.",
		}, []string{"method", "route", "status"}),
		done: make(chan struct{}),
	}
	g.metrics.MustRegister(g.requests)
	g.ctx, g.cancel = context.WithCancel(context.Background())
	g.app = fiber.New(fiber.Config{
		AppName:               "gpuxd-api",
		BodyLimit:             api.BodyLimit,
		ReadBufferSize:        api.HeaderLimit,
		Immutable:             true,
		DisableStartupMessage: true,
		ErrorHandler:          api.ErrorHandler(cfg.Logger),
		ReadTimeout:           30 * time.Second,
		WriteTimeout:          30 * time.Second,
		IdleTimeout:           2 * time.Minute,
	})
	g.routes()
	if cfg.SweepInterval > 0 {
		go g.sweep()
	} else {
		close(g.done)
	}
	return g, nil
}

// App exposes the Fiber app (tests list its routes).
func (g *Server) App() *fiber.App { return g.app }

func (g *Server) routes() {
	a := g.app
	a.Use(g.observe)
	a.Get("/healthz", g.health)
	a.Get("/readyz", g.ready)
	a.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(g.metrics, promhttp.HandlerOpts{})))
	a.Get("/openapi.yaml", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, "application/yaml")
		return c.Send(api.OpenAPI())
	})

	v1 := a.Group("/v1", g.identify, api.DecodeBody)
	v1.Post("/accounts", g.createAccount)
	v1.Post("/accounts/:id/deposits", g.moveMoney)
	v1.Post("/accounts/:id/withdrawals", g.moveMoney)
	v1.Get("/account", g.getAccount)
	v1.Get("/account/statement", g.getStatement)
	v1.Post("/account/transfers", g.createTransfer)

	v1.Get("/markets", g.listMarkets)
	v1.Get("/markets/:market", g.byMarket)
	v1.Get("/markets/:market/book", g.byMarket)
	v1.Get("/markets/:market/trades", g.byMarket)
	v1.Get("/markets/:market/quote", g.byMarket)
	v1.Get("/markets/:market/history", g.byMarket)
	v1.Get("/prices", g.listPrices)
	v1.Get("/admin/reference-rates", g.getRates)
	v1.Put("/admin/reference-rates", g.putRates)

	v1.Post("/listings", g.createOrder)
	v1.Get("/listings", g.listOrders)
	v1.Get("/listings/:id", g.getOrder)
	v1.Delete("/listings/:id", g.cancelOrder)

	v1.Post("/bids", g.createOrder)
	v1.Get("/bids", g.listOrders)
	v1.Get("/bids/:id", g.getOrder)
	v1.Delete("/bids/:id", g.cancelOrder)

	if len(g.cfg.Feed) > 0 {
		v1.Get("/ws", g.cfg.Feed...)
	} else {
		v1.Get("/ws", func(c *fiber.Ctx) error {
			return api.NewProblem(api.CodeNotReady, "", "this API node relays no feed")
		})
	}
}

// Listener serves on ln until Shutdown.
func (g *Server) Listener(ln net.Listener) error {
	err := g.app.Listener(ln)
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting, waits for in-flight requests (or ctx) and
// stops the sweeper. A transfer it interrupts stays pending for the next
// sweeper, here or on another API node.
func (g *Server) Shutdown(ctx context.Context) error {
	err := g.app.ShutdownWithContext(ctx)
	g.cancel()
	select {
	case <-g.done:
	case <-ctx.Done():
	}
	g.http.CloseIdleConnections()
	return err
}

// observe counts every answer by route and status.
func (g *Server) observe(c *fiber.Ctx) error {
	err := c.Next()
	if err != nil {
		if herr := api.ErrorHandler(g.log)(c, err); herr != nil {
			return herr
		}
	}
	route := "unmatched"
	if r := c.Route(); r != nil && r.Path != "/" {
		route = r.Path
	}
	g.requests.WithLabelValues(c.Method(), route, strconv.Itoa(c.Response().StatusCode())).Inc()
	return nil
}

// caller is who sent a request.
type caller struct {
	presented bool
	admin     bool
	account   *account
}

const callerKey = "gpux.gateway.caller"

func callerOf(c *fiber.Ctx) *caller {
	if w, ok := c.Locals(callerKey).(*caller); ok {
		return w
	}
	return &caller{}
}

// identify resolves the caller from the registry (no shard is asked) and
// applies the rate limit of its key, or of its address without one.
func (g *Server) identify(c *fiber.Ctx) error {
	w := &caller{}
	if key, ok := api.BearerKey(c); ok {
		w.presented = true
		switch {
		case key == "":
		case g.cfg.AdminKey != "" && subtle.ConstantTimeCompare([]byte(key), []byte(g.cfg.AdminKey)) == 1:
			w.admin = true
		default:
			a, err := g.reg.byKey(c.UserContext(), key)
			switch {
			case errors.Is(err, errNoAccount):
			case err != nil:
				g.log.Warn("registry unavailable", "err", err)
				return api.NewProblem(api.CodeUnavailable, "", "the account registry cannot be read right now")
			default:
				w.account = &a
			}
		}
	}
	c.Locals(callerKey, w)
	id := "ip:" + c.IP()
	switch {
	case w.admin:
		id = "admin"
	case w.account != nil:
		id = "acct:" + w.account.ID.String()
	}
	if p := g.limiter.Limit(c, id); p != nil {
		return p
	}
	return c.Next()
}

// requireAccount answers the caller's account when it holds every role
// of need, with the same answers as an engine node.
func requireAccount(c *fiber.Ctx, need engine.Role) (*account, *api.Problem) {
	w := callerOf(c)
	switch {
	case w.admin:
		return nil, api.NewProblem(engine.CodeForbidden, "", "the admin key has no account; use an account's key")
	case w.account == nil:
		return nil, api.Unauthorized(w.presented)
	case !w.account.Roles.Has(need):
		return nil, api.NewProblem(engine.CodeForbidden, "", "the account lacks the "+joinRoles(need)+" role")
	}
	return w.account, nil
}

func joinRoles(r engine.Role) string {
	out := ""
	for i, n := range r.Names() {
		if i > 0 {
			out += " and "
		}
		out += n
	}
	return out
}

// requireAdmin admits only the admin key.
func requireAdmin(c *fiber.Ctx) *api.Problem {
	w := callerOf(c)
	switch {
	case w.admin:
		return nil
	case w.account == nil:
		return api.Unauthorized(w.presented)
	}
	return api.NewProblem(engine.CodeForbidden, "", "this needs the admin key")
}

type shardHealth struct {
	Shard  string   `json:"shard"`
	Leader *string  `json:"leader"`
	Nodes  []string `json:"nodes"`
}

type healthJSON struct {
	Status string        `json:"status"`
	Role   string        `json:"role"`
	Shard  *string       `json:"shard"` // always null: an API node runs no shard
	Ready  bool          `json:"ready"`
	Shards []shardHealth `json:"shards"`
}

// health: 200 while the process runs; status "degraded" when Redis cannot
// be read or no shard has a leader.
func (g *Server) health(c *fiber.Ctx) error {
	h := healthJSON{Status: "ok", Role: api.RoleAPI, Shards: []shardHealth{}}
	t, err := g.disc.get(c.UserContext(), false)
	if err != nil {
		h.Status = "degraded"
		return sendJSON(c, http.StatusOK, h)
	}
	for _, n := range t.names {
		s := t.shards[n]
		sh := shardHealth{Shard: n, Nodes: s.Nodes}
		if sh.Nodes == nil {
			sh.Nodes = []string{}
		}
		if s.Leader != "" {
			l := s.Leader
			sh.Leader = &l
			h.Ready = true
		}
		h.Shards = append(h.Shards, sh)
	}
	if !h.Ready {
		h.Status = "degraded"
	}
	return sendJSON(c, http.StatusOK, h)
}

// ready: 200 once Redis answers and at least one shard has a leader.
func (g *Server) ready(c *fiber.Ctx) error {
	t, err := g.disc.get(c.UserContext(), true)
	if err != nil {
		return api.NewProblem(api.CodeNotReady, "", "Redis cannot be read")
	}
	if t.anyLeader(g.cfg.DefaultShard) == "" {
		return api.NewProblem(api.CodeNoLeader, "", "no shard has a leader")
	}
	return sendJSON(c, http.StatusOK, fiber.Map{"status": "ready"})
}

// Dial opens the Redis an API node reads (gpuxd --redis): a redis:// URL
// is a single Redis, a redis+cluster:// URL a Redis Cluster, each with the
// journal's client defaults (no go-redis retries, short timeouts: a
// request answers 503 rather than wait). It does not connect yet; the
// caller closes it after Shutdown.
func Dial(url string) (redis.UniversalClient, error) {
	if store.IsClusterURL(url) {
		opt, err := store.ClusterClientOptions(url)
		if err != nil {
			return nil, err
		}
		return redis.NewClusterClient(opt), nil
	}
	opt, err := store.ClientOptions(url)
	if err != nil {
		return nil, err
	}
	return redis.NewClient(opt), nil
}
