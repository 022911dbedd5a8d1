package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Op is one kind of request in the load mix.
type Op int

// Ops of the mix.
const (
	OpReserved Op = iota // POST /v1/bids, type reserved
	OpSpot               // POST /v1/bids, type spot
	OpCancel             // DELETE /v1/bids/{id} or /v1/listings/{id} of an open order
	OpList               // POST /v1/listings
	numOps
)

var opNames = [numOps]string{"reserved", "spot", "cancel", "list"}

func (o Op) String() string { return opNames[o] }

// Mix is the share of each Op in the load, as relative weights.
type Mix [numOps]int

// ParseMix reads "reserved=40,spot=30,cancel=15,list=15"; ops left out
// get weight 0.
func ParseMix(s string) (Mix, error) {
	var m Mix
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, w, ok := strings.Cut(part, "=")
		if !ok {
			return m, fmt.Errorf("mix %q: want op=weight", part)
		}
		i := slices.Index(opNames[:], strings.TrimSpace(name))
		if i < 0 {
			return m, fmt.Errorf("mix %q: unknown op (reserved, spot, cancel, list)", name)
		}
		n, err := strconv.Atoi(strings.TrimSpace(w))
		if err != nil || n < 0 {
			return m, fmt.Errorf("mix %q: weight must be a non-negative integer", part)
		}
		m[i] = n
	}
	if m.total() == 0 {
		return m, errors.New("mix: every weight is zero")
	}
	return m, nil
}

func (m Mix) total() int {
	t := 0
	for _, w := range m {
		t += w
	}
	return t
}

// pick maps r in [0, total) to an op.
func (m Mix) pick(r int) Op {
	for i, w := range m {
		if r < w {
			return Op(i)
		}
		r -= w
	}
	return OpReserved
}

func (m Mix) String() string {
	var parts []string
	for i, w := range m {
		parts = append(parts, fmt.Sprintf("%s=%d", opNames[i], w))
	}
	return strings.Join(parts, ",")
}

// bidsOnly keeps the bid ops of m (the baseline serves POST /v1/bids only).
func (m Mix) bidsOnly() Mix {
	return Mix{OpReserved: m[OpReserved], OpSpot: m[OpSpot]}
}

// Modes.
const (
	ModeOpen   = "open"
	ModeClosed = "closed"
)

// DefaultMarkets are catalogue markets the demo bidders of `gpuxd --demo`
// leave alone, so the verification's money balance is not disturbed by
// other traders.
var DefaultMarkets = []string{"h100-sxm.us-west", "h200.eu-west", "a100-80gb.eu-west", "l40s.us-east"}

// Config is one load-test run.
type Config struct {
	Target   string
	AdminKey string
	Duration time.Duration
	Mode     string // ModeOpen or ModeClosed
	// Rate is the offered requests/s in open mode.
	Rate int
	// Concurrency is the number of closed-mode workers.
	Concurrency int
	// MaxInflight bounds open-mode requests in flight; beyond it sends wait,
	// and their latency still counts from the intended send time.
	MaxInflight int
	Mix         Mix
	Subscribers int
	// FeedKinds are the channel kinds each subscriber takes for every
	// market used: "prices" (one channel), "trades", "book".
	FeedKinds []string
	// TypedFeed makes the subscribers client.Feed readers (every message
	// decoded in full) instead of lean envelope readers.
	TypedFeed bool
	// FeedTargets are the base URLs the subscribers connect to, in turn
	// (API nodes in front of the target's shard); empty = Target.
	FeedTargets []string
	Seed        uint64
	Buyers      int
	Owners      int
	Markets     []string
	JSONPath    string
	Baseline    bool
	// FeedBaseline replays the feed's updates through a bare broadcast
	// server to as many subscribers after the run, for a feed ratio.
	FeedBaseline bool
	RedisURL     string
	// FeeBps is the platform fee the target charges (gpuxd --fee-bps);
	// the money check expects it.
	FeeBps int64
	// Deposit is what each buyer account is credited at setup (USD).
	Deposit string
	// RequestTimeout bounds one request.
	RequestTimeout time.Duration
	// Progress receives a line a second; nil = silent.
	Progress io.Writer
}

// DefaultConfig is the configuration without flags.
func DefaultConfig() Config {
	return Config{
		Target: "http://127.0.0.1:8080", Duration: 30 * time.Second, Mode: ModeClosed,
		Rate: 500, Concurrency: 64, MaxInflight: 512,
		Mix:         Mix{OpReserved: 40, OpSpot: 30, OpCancel: 15, OpList: 15},
		Subscribers: 0, FeedKinds: []string{"prices", "trades"}, Seed: 1, Buyers: 16, Owners: 8, Markets: DefaultMarkets,
		Deposit: "1000000000", RequestTimeout: 30 * time.Second,
	}
}

// parseFlags reads args over DefaultConfig; env supplies GPUX_ADMIN_KEY.
func parseFlags(args []string, env func(string) (string, bool), stderr io.Writer) (Config, error) {
	c := DefaultConfig()
	if v, ok := env("GPUX_ADMIN_KEY"); ok {
		c.AdminKey = v
	}
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: go run ./loadtest [flags]\n\n"+
			"Drives a gpux server through its HTTP API and websocket feed, reports\n"+
			"throughput and latency, then reads every acknowledged order back and\n"+
			"checks that GPU-hours and money add up (exit 1 and VERIFY FAILED if not).\n\n")
		fs.PrintDefaults()
	}
	mix := c.Mix.String()
	markets := strings.Join(c.Markets, ",")
	kinds := strings.Join(c.FeedKinds, ",")
	fs.StringVar(&c.Target, "target", c.Target, "base URL of the gpux server")
	fs.StringVar(&c.AdminKey, "admin-key", c.AdminKey, "admin API key (env GPUX_ADMIN_KEY)")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "how long to offer load")
	fs.StringVar(&c.Mode, "mode", c.Mode, "open (fixed -rate, latency from the intended send time) or closed (-concurrency workers, as fast as possible)")
	fs.IntVar(&c.Rate, "rate", c.Rate, "open mode: offered requests/s")
	fs.IntVar(&c.Concurrency, "concurrency", c.Concurrency, "closed mode: workers")
	fs.IntVar(&c.MaxInflight, "max-inflight", c.MaxInflight, "open mode: requests in flight (and connections) at most; later sends wait for a slot and the wait counts as latency")
	fs.StringVar(&mix, "mix", mix, "relative weights of reserved bids, spot bids, cancels and new listings")
	fs.IntVar(&c.Subscribers, "subscribers", c.Subscribers, "websocket clients subscribed to prices and trades:<market> of every market used")
	fs.StringVar(&kinds, "feed", kinds, "channels each subscriber takes: prices, trades (trades:<market> of every market), book (book:<market>)")
	feedTargets := ""
	fs.StringVar(&feedTargets, "feed-targets", feedTargets, "comma-separated base URLs the subscribers connect to in turn (API nodes relaying the target's feed); default -target")
	fs.BoolVar(&c.TypedFeed, "feed-typed", c.TypedFeed, "subscribers read through client.Feed, decoding every message in full (costs the generator far more CPU)")
	fs.Uint64Var(&c.Seed, "seed", c.Seed, "random seed of the request stream (account names carry it)")
	fs.IntVar(&c.Buyers, "buyers", c.Buyers, "buyer accounts to create")
	fs.IntVar(&c.Owners, "owners", c.Owners, "owner accounts to create")
	fs.StringVar(&markets, "markets", markets, "comma-separated markets to trade")
	fs.StringVar(&c.JSONPath, "json", c.JSONPath, "also write the report as JSON to this file")
	fs.BoolVar(&c.Baseline, "baseline", c.Baseline, "first run the same bid load against an in-process bare Fiber app and report the target as a ratio of it")
	fs.BoolVar(&c.FeedBaseline, "feed-baseline", c.FeedBaseline, "after the run, replay the updates the subscribers got (same channels, sizes, timing) through an in-process bare websocket broadcast server to as many subscribers, and report the feed as a ratio of it")
	fs.StringVar(&c.RedisURL, "redis", c.RedisURL, "redis://host:port/db (the target's journal Redis) to measure raw pipelined XADD on for 3s, next to the target's journal figures from /metrics")
	fs.Int64Var(&c.FeeBps, "fee-bps", c.FeeBps, "platform fee of the target in basis points (gpuxd --fee-bps), for the money check")
	fs.StringVar(&c.Deposit, "deposit", c.Deposit, "USD deposited to each buyer")
	fs.DurationVar(&c.RequestTimeout, "request-timeout", c.RequestTimeout, "timeout of one request")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	var err error
	if c.Mix, err = ParseMix(mix); err != nil {
		return c, err
	}
	c.FeedKinds = nil
	for k := range strings.SplitSeq(kinds, ",") {
		if k = strings.TrimSpace(k); k != "" {
			c.FeedKinds = append(c.FeedKinds, k)
		}
	}
	for t := range strings.SplitSeq(feedTargets, ",") {
		if t = strings.TrimSpace(t); t != "" {
			c.FeedTargets = append(c.FeedTargets, t)
		}
	}
	c.Markets = nil
	for m := range strings.SplitSeq(markets, ",") {
		if m = strings.TrimSpace(m); m != "" {
			c.Markets = append(c.Markets, m)
		}
	}
	return c, c.validate()
}

func (c *Config) validate() error {
	switch {
	case c.Mode != ModeOpen && c.Mode != ModeClosed:
		return fmt.Errorf("-mode %q: open or closed", c.Mode)
	case c.Mode == ModeOpen && c.Rate <= 0:
		return errors.New("-rate must be positive in open mode")
	case c.Mode == ModeClosed && c.Concurrency <= 0:
		return errors.New("-concurrency must be positive in closed mode")
	case c.Duration <= 0:
		return errors.New("-duration must be positive")
	case c.Buyers <= 0 || c.Owners <= 0:
		return errors.New("-buyers and -owners must be positive")
	case len(c.Markets) == 0:
		return errors.New("-markets: at least one market")
	case c.Subscribers < 0:
		return errors.New("-subscribers must not be negative")
	case c.Subscribers > 0 && len(c.FeedKinds) == 0:
		return errors.New("-feed: at least one of prices, trades, book")
	case c.FeeBps < 0 || c.FeeBps >= 10000:
		return errors.New("-fee-bps must be in [0, 10000)")
	case c.AdminKey == "":
		return errors.New("an admin key is needed to create accounts: -admin-key or GPUX_ADMIN_KEY")
	}
	for _, k := range c.FeedKinds {
		if k != "prices" && k != "trades" && k != "book" {
			return fmt.Errorf("-feed %q: prices, trades or book", k)
		}
	}
	if c.MaxInflight <= 0 {
		c.MaxInflight = 512
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 30 * time.Second
	}
	if c.Deposit == "" {
		c.Deposit = "1000000000"
	}
	if c.Mix.total() == 0 {
		return errors.New("-mix: every weight is zero")
	}
	return nil
}
