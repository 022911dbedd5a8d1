// Command gpuxd runs the gpux exchange: one shard's sequencer over a Redis
// (or in-memory) journal, and the HTTP/websocket API in front of it.
//
// Configuration comes from flags, each with an environment variable of the
// same meaning (see API.md): --addr/GPUX_ADDR, --redis/GPUX_REDIS_URL,
// --admin-key/GPUX_ADMIN_KEY, --demo/GPUX_DEMO, --rate-limit/GPUX_RATE_LIMIT,
// --rates/GPUX_RATES_FILE, --shard/GPUX_SHARD and the snapshot settings.
// SIGTERM or SIGINT stops it gracefully: no new connections, in-flight
// requests finish, websockets close with 1001, the journal is flushed and a
// final snapshot written, and the process exits 0.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	m := NewMain()
	if err := m.ParseFlags(ctx, os.Args[1:]); err != nil {
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
