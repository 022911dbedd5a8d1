package api_test

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gpux/gpux/api"
	"github.com/gpux/gpux/client"
	"github.com/gpux/gpux/sequencer"
	"github.com/gpux/gpux/store"
	"github.com/gpux/gpux/store/redistest"
)

// TestRecovering: before recovery the server answers health (200,
// "recovering"), readiness 503 and the API 503, all with Retry-After.
func TestRecovering(t *testing.T) {
	seq, err := sequencer.New(sequencer.Config{Journal: store.NewMemoryJournal(), TickInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	srv := api.NewServer(api.Config{Sequencer: seq, AdminKey: adminKey, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Listener(ln)
	defer srv.Shutdown(bg)
	e := &env{tb: t, url: "http://" + ln.Addr().String()}
	c := client.New(e.url)
	h, err := c.Health(bg)
	if err != nil || h.Status != "recovering" || h.Journal != "memory" || h.Durable {
		t.Errorf("health: %v %+v", err, h)
	}
	for _, path := range []string{"/readyz", "/v1/markets", "/v1/account"} {
		status, hdr, body := e.raw("GET", path, "", nil)
		wantProblem(t, status, hdr, body, http.StatusServiceUnavailable, "not_ready", "")
		if hdr.Get("Retry-After") == "" {
			t.Errorf("%s: no Retry-After", path)
		}
	}
}

// TestJournalOutage: with Redis stalled, writes answer 503 with
// Retry-After and change nothing, reads keep working, and writes resume
// when Redis is back.
func TestJournalOutage(t *testing.T) {
	rs := redistest.StartServer(t)
	e := &env{tb: t, redis: rs.URL(), shard: "outage"}
	e.cfg = api.Config{AdminKey: adminKey, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	e.start()
	t.Cleanup(e.stop)
	buyer := e.account("buyer", "10", client.RoleBuyer)
	req := client.BidRequest{Type: client.BidReserved, Market: "l4.us-east", Quantity: 1, Start: hour(2), End: hour(3), LimitPrice: client.FixedPrice("1.00")}

	rs.Pause()
	paused := true
	defer func() {
		if paused {
			rs.Resume()
		}
	}()
	_, err := buyer.PlaceBid(bg, req, client.WithIdempotencyKey("outage-1"))
	wantErr(t, err, http.StatusServiceUnavailable, "journal_unavailable")
	var ce *client.Error
	if asClientError(err, &ce) && ce.RetryAfter <= 0 {
		t.Errorf("no Retry-After on 503")
	}
	if err := e.anon.Ready(bg); err == nil {
		t.Errorf("ready while the journal is down")
	}
	_, err = e.admin.Deposit(bg, buyer.id, "5")
	wantErr(t, err, http.StatusServiceUnavailable, "journal_unavailable")
	a, err := buyer.Account(bg)
	if err != nil || a.Balance != "10.00" {
		t.Errorf("read during the outage: %v %+v", err, a)
	}
	rs.Resume()
	paused = false
	deadline := time.Now().Add(15 * time.Second)
	for e.anon.Ready(bg) != nil {
		if time.Now().After(deadline) {
			t.Fatal("writes did not resume")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The outcome of a 503 is unknown (the stalled append may have landed);
	// retrying with the same key gives exactly one bid either way.
	b, err := buyer.PlaceBid(bg, req, client.WithIdempotencyKey("outage-1"))
	if err != nil {
		t.Fatalf("retry after the outage: %v", err)
	}
	page, _ := buyer.Bids(bg, client.ListQuery{})
	if len(page.Items) != 1 || page.Items[0].ID != b.ID {
		t.Errorf("bids after the retry: got %d, want exactly %s", len(page.Items), b.ID)
	}
}
