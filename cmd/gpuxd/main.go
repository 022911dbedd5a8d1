// Command gpuxd runs the gpux exchange: one shard's sequencer over a Redis
// (or in-memory) journal, and the HTTP/websocket API in front of it.
//
// Configuration comes from flags, each with an environment variable of the
// same meaning (see API.md): --addr/GPUX_ADDR, --redis/GPUX_REDIS_URL,
// --admin-key/GPUX_ADMIN_KEY, --demo/GPUX_DEMO, --rate-limit/GPUX_RATE_LIMIT,
// --rates/GPUX_RATES_FILE, --rates-stale-after/GPUX_RATES_STALE_AFTER,
// --shard/GPUX_SHARD and the snapshot settings. --role/GPUX_ROLE engine
// makes it one engine node of its shard (leader or hot standby by the
// shard's lease, --lease-ttl/GPUX_LEASE_TTL, reachable by other nodes at
// --advertise-addr/GPUX_ADVERTISE_ADDR); --redis redis+cluster://... runs
// it on a Redis Cluster. `gpuxd rates import` builds
// a rates file from the providers' price files and `gpuxd rates put`
// installs one in a running server (see docs/PRICES.md).
// SIGTERM or SIGINT stops it gracefully: no new connections, in-flight
// requests finish, websockets close with 1001, the journal is flushed and a
// final snapshot written, and the process exits 0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// healthcheck GETs url and returns the exit code: 0 on 200, 1 otherwise.
func healthcheck(url string, timeout time.Duration) int {
	c := http.Client{Timeout: timeout}
	resp, err := c.Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gpuxd: healthcheck:", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "gpuxd: healthcheck:", resp.Status)
		return 1
	}
	return 0
}

func main() {
	// gpuxd rates import|put: offline tools for the reference table.
	if len(os.Args) > 1 && os.Args[1] == "rates" {
		os.Exit(runRates(context.Background(), os.Args[2:], os.Stdout, os.Stderr))
	}
	// --healthcheck URL: probe a running gpuxd (the container health check;
	// distroless images have no curl) and exit 0 on 200.
	for i, a := range os.Args[1:] {
		if a == "--healthcheck" || a == "-healthcheck" {
			url := "http://127.0.0.1:8080/readyz"
			if i+2 < len(os.Args) {
				url = os.Args[i+2]
			}
			os.Exit(healthcheck(url, 3*time.Second))
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	m := NewMain()
	if err := m.ParseFlags(ctx, os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "gpuxd:", err)
		os.Exit(2)
	}
	if err := m.Run(ctx); err != nil {
		m.Close()
		fmt.Fprintln(os.Stderr, "gpuxd:", err)
		os.Exit(1)
	}
	select {
	case <-ctx.Done():
	case err := <-m.Failed():
		fmt.Fprintln(os.Stderr, "gpuxd:", err)
		m.Close()
		os.Exit(1)
	}
	stop()
	if err := m.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "gpuxd: shutdown:", err)
		os.Exit(1)
	}
}
