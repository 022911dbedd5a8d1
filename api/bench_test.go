package api_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/gpux/gpux/api"
	"github.com/gpux/gpux/client"
	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/pricing"
	"github.com/gpux/gpux/sequencer"
	"github.com/gpux/gpux/store"
)

// BenchmarkPostBid drives POST /v1/bids end to end (HTTP parsing, auth,
// strict decoding, the sequencer over an in-memory journal, the engine,
// the response) through an in-memory listener, one keep-alive connection
// per parallel worker, each worker its own buyer: the request path without
// the kernel. Report with -benchmem; compare runs of the same machine.
func BenchmarkPostBid(b *testing.B) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seq, err := sequencer.New(sequencer.Config{Journal: store.NewMemoryJournal(), TickInterval: -1, Logger: logger})
	if err != nil {
		b.Fatal(err)
	}
	srv := api.NewServer(api.Config{AdminKey: adminKey, Logger: logger, Sequencer: seq,
		ReadModels: store.NewMemoryReadModels(store.ReadModelOptions{})})
	ln := fasthttputil.NewInmemoryListener()
	go srv.Listener(ln)
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx)
		_ = seq.Close(sctx)
	}()
	if err := seq.Recover(ctx); err != nil {
		b.Fatal(err)
	}
	go seq.Run(ctx)
	if out, err := seq.Submit(ctx, engine.Command{Kind: engine.CmdSetReferenceRates, Rates: pricing.Default().EngineRates()}, nil); err != nil || out.Err != nil {
		b.Fatalf("set reference rates: %v %v", err, out.Err)
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) { return ln.Dial() }}}
	url := "http://gpux.bench"
	admin := client.New(url, client.WithAPIKey(adminKey), client.WithHTTPClient(hc))
	owner, err := admin.CreateAccount(ctx, client.CreateAccountRequest{Name: "owner", Roles: []string{client.RoleOwner}})
	if err != nil {
		b.Fatal(err)
	}
	const mk = "h100-sxm.us-east"
	start := time.Now().UTC().Truncate(time.Hour).Add(time.Hour)
	oc := client.New(url, client.WithAPIKey(owner.APIKey), client.WithHTTPClient(hc))
	for range 4 { // room for 400,000 one-GPU-hour fills; b.N stays below
		if _, err := oc.PlaceListing(ctx, client.ListingRequest{Market: mk, Quantity: 100_000, Start: start, End: start.Add(24 * time.Hour), ReservePrice: client.FixedPrice("1.00")}); err != nil {
			b.Fatal(err)
		}
	}
	keys := make(chan string, 64)
	for i := range cap(keys) {
		a, err := admin.CreateAccount(ctx, client.CreateAccountRequest{Name: fmt.Sprint("buyer", i), Roles: []string{client.RoleBuyer}})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := admin.Deposit(ctx, a.ID, "100000000"); err != nil {
			b.Fatal(err)
		}
		keys <- a.APIKey
	}
	body := fmt.Sprintf(`{"type":"reserved","market":%q,"quantity":1,"start":%q,"end":%q,"limit_price":"2.00"}`,
		mk, start.Format(time.RFC3339), start.Add(time.Hour).Format(time.RFC3339))

	b.ReportAllocs()
	b.SetParallelism(16) // 32 workers on 2 cores, as the load test: enough for group commit
	cpu0 := cpuTime(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		key := <-keys
		conn, err := ln.Dial()
		if err != nil {
			b.Error(err)
			return
		}
		defer conn.Close()
		req := "POST /v1/bids HTTP/1.1\r\nHost: gpux.bench\r\nAuthorization: Bearer " + key +
			"\r\nContent-Type: application/json\r\nContent-Length: " + fmt.Sprint(len(body)) + "\r\n\r\n" + body
		br := bufio.NewReader(conn)
		for pb.Next() {
			if _, err := io.WriteString(conn, req); err != nil {
				b.Error(err)
				return
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				b.Error(err)
				return
			}
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				b.Errorf("status %d: %s", resp.StatusCode, msg)
				return
			}
		}
	})
	// CPU time of the process (server and the light in-memory client) per
	// request: steadier than ns/op on a machine shared with other work.
	b.ReportMetric(float64((cpuTime(b)-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

func cpuTime(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
