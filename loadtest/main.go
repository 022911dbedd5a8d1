// Command loadtest sizes a gpux exchange: it drives a server through the
// typed client (reserved and spot bids, cancels, new listings) in open or
// closed loop, watches the websocket feed with many subscribers, and
// reports acknowledged orders/s, errors by class and latency percentiles.
// Then it stops the load, cancels whatever is still open, reads every
// acknowledged order back and checks that GPU-hours and money add up
// between the run's buyers and owners; a mismatch prints VERIFY FAILED and
// exits 1.
//
// It creates its own accounts (through the admin API) and never touches
// anyone else's orders. With -baseline it first runs the same bid load
// against a bare Fiber app in this process, and with -redis raw pipelined
// XADD, so the target's figures come with a ceiling measured on the same
// machine.
//
//	go run ./loadtest -target http://127.0.0.1:8080 -admin-key "$GPUX_ADMIN_KEY" \
//		-mode closed -concurrency 64 -duration 30s -baseline -json report.json
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// The first signal ends the load early (the checks still run); a
		// second one kills the process as usual.
		<-ctx.Done()
		stop()
	}()

	cfg, err := parseFlags(os.Args[1:], os.LookupEnv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(2)
	}
	cfg.Progress = os.Stderr
	rep, err := run(ctx, cfg)
	if rep.ElapsedSec > 0 {
		rep.writeText(os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}
