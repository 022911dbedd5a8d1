// Command gpux is the command-line client of a gpux exchange: prices and
// books for anyone, bids and listings for buyers and owners, accounts and
// deposits and the reference-rate table for the admin, and a live view of
// the websocket feed.
//
// Of gpux's packages it imports client only, and it holds no exchange logic:
// it turns flags into requests and answers into tables (text/tabwriter)
// or, with --json, into the server's JSON for scripts.
//
// Configuration: --url (GPUX_URL, default http://localhost:8080) and
// --api-key (GPUX_API_KEY). Exit codes: 0 success; 1 the server refused
// the request (a 4xx problem: its code, field and detail are printed);
// 2 usage error (unknown command or flag, bad argument); 3 the server
// could not be reached or is unavailable (network error, timeout, 5xx,
// 429 after retries).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Exit codes, documented in the package comment and `gpux help`.
const (
	exitOK          = 0
	exitAPI         = 1
	exitUsage       = 2
	exitUnavailable = 3
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := (&app{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, now: time.Now}).run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// app is one invocation of gpux: where output goes, the environment and
// the clock (tests replace them).
type app struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	now            func() time.Time
}

// command is one subcommand: its name as typed, a one-line summary for
// the command list, and the function that parses its arguments and runs.
type command struct {
	name    string
	summary string
	run     func(a *app, ctx context.Context, g *globals, args []string) error
}

func commands() []command {
	return []command{
		{"prices", "every market's spot, last trade and 24 h VWAP next to AWS, Azure and Google Cloud", (*app).prices},
		{"markets", "list markets", (*app).markets},
		{"book", "a market's order book and spot auction: book MARKET", (*app).book},
		{"quote", "price a reservation without placing it: quote MARKET --quantity N --start +2h --for 12h", (*app).quote},
		{"bid", "place a bid: bid reserved|spot MARKET --quantity N --limit PRICE ...", (*app).bid},
		{"listing", "offer capacity (owner): listing create MARKET --quantity N --reserve PRICE ...", (*app).listing},
		{"orders", "your bids, newest first", (*app).orders},
		{"listings", "your listings, newest first", (*app).listings},
		{"cancel", "cancel bids or listings by id: cancel ID...", (*app).cancel},
		{"account", "your balance, held and available money (per shard through an API node)", (*app).account},
		{"transfer", "move money between your wallets on two shards: transfer --from SHARD --to SHARD AMOUNT", (*app).transfer},
		{"statement", "what moved your balance: statement [--from -24h] [--to now] [--csv]", (*app).statement},
		{"watch", "follow feed channels live: watch prices book:MARKET trades:MARKET user", (*app).watch},
		{"accounts", "admin: accounts create NAME --roles buyer,owner", (*app).accounts},
		{"deposit", "admin: deposit ACCOUNT_ID AMOUNT [--shard S]", (*app).deposit},
		{"rates", "admin: the reference-rate table: rates get | rates put FILE", (*app).rates},
	}
}

// run executes args and returns the exit code.
func (a *app) run(ctx context.Context, args []string) int {
	g := a.defaults()
	rest, err := g.parseLeading(args)
	if err != nil {
		return a.fail(err, g)
	}
	if len(rest) == 0 || rest[0] == "help" || rest[0] == "-h" || rest[0] == "--help" {
		if len(rest) > 1 {
			rest = []string{rest[1], "-h"}
		} else {
			a.usage(a.stdout)
			return exitOK
		}
	}
	for _, c := range commands() {
		if c.name == rest[0] {
			err := c.run(a, ctx, g, rest[1:])
			return a.fail(err, g)
		}
	}
	return a.fail(usagef("unknown command %q (see gpux help)", rest[0]), g)
}

func (a *app) usage(w io.Writer) {
	fmt.Fprint(w, `gpux is the command-line client of a gpux exchange.

Usage: gpux [global flags] COMMAND [flags] [arguments]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Global flags (before or after the command):
  --url URL        server (env GPUX_URL, default http://localhost:8080)
  --api-key KEY    API key (env GPUX_API_KEY)
  --json           print the server's JSON instead of a table
  --timeout D      per-request timeout (default 30s)

Times: RFC 3339 (2026-12-01T08:00:00Z), "now", or relative to now
(+2h, -24h, +3d, +90m); --start/--end round down to the whole hour.
--for 12h sets the end relative to the start.

Prices: a decimal (2.39), a reference peg ref:aws:0.40 (AWS on-demand less
40 %), or a spot peg spot:-0.10 (spot price less 0.10).

Exit codes: 0 ok; 1 the server refused the request (its code, field and
detail are printed); 2 usage error; 3 server unreachable or unavailable.

Run "gpux help COMMAND" for a command's flags.
`)
}
