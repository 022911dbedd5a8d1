package api

import (
	"context"
	fws "github.com/fasthttp/websocket"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/sequencer"
)

// fakeSequencer drives an engine in process, without a journal: enough
// for the hub's own tests.
type fakeSequencer struct {
	mu  sync.RWMutex
	e   *engine.Engine
	seq uint64
}

func (f *fakeSequencer) Submit(_ context.Context, c engine.Command, view func(*engine.Engine, *engine.Command)) (sequencer.Outcome, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	c.Seq, c.Time = f.seq, engine.Time(time.Now().UnixMilli())
	evs, _ := f.e.Apply(&c)
	out := sequencer.Outcome{Seq: c.Seq, Events: append([]engine.Event(nil), evs...)}
	if view != nil {
		view(f.e, &c)
	}
	return out, nil
}

func (f *fakeSequencer) Read(fn func(*engine.Engine)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(f.e)
}

func (f *fakeSequencer) Status() sequencer.Status {
	return sequencer.Status{Ready: true, Writable: true, Journal: "memory"}
}

func newHubServer(t *testing.T) *Server {
	t.Helper()
	s := NewServer(Config{Sequencer: &fakeSequencer{e: engine.New(engine.Config{})}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return s
}

func newTestClient(n int) *wsClient {
	return &wsClient{send: make(chan *fws.PreparedMessage, n), gone: make(chan struct{}), subs: map[string]bool{}}
}

func waitGone(t *testing.T, cl *wsClient, code int) {
	t.Helper()
	select {
	case <-cl.gone:
		if got := cl.closeCode; got != code {
			t.Errorf("close code: got %d, want %d", got, code)
		}
	case <-time.After(hubWait):
		t.Fatal("the client was not dropped")
	}
}

// TestHubOverflow: when the hub falls behind the engine, every feed client
// is dropped (1013) and counted, rather than the sequencer ever blocking.
func TestHubOverflow(t *testing.T) {
	s := newHubServer(t)
	cl := newTestClient(16)
	s.hub.request(hubReq{kind: reqJoin, cl: cl})
	s.hub.request(hubReq{kind: reqSubscribe, cl: cl, channels: []string{"prices"}})
	s.hub.overflow.Store(true) // as publish does when the queue is full
	s.hub.request(hubReq{kind: reqJoin, cl: newTestClient(1)})
	waitGone(t, cl, closeTryLater)
	if got := counterValue(t, s.metrics.feedLost); got != 1 {
		t.Errorf("overflows counted: got %v, want 1", got)
	}
}

// TestHubPublishNeverBlocks: with the hub stopped, publish still returns.
func TestHubPublishNeverBlocks(t *testing.T) {
	s := newHubServer(t)
	s.hub.close()
	done := make(chan struct{})
	go func() {
		for i := 0; i < hubQueue+10; i++ {
			s.hub.publish([]engine.Event{{Kind: engine.EvBalanceChanged, Seq: uint64(i + 1)}})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(hubWait):
		t.Fatal("publish blocked")
	}
	if !s.hub.overflow.Load() {
		t.Error("a full queue did not set the overflow flag")
	}
}

// TestHubSlowClient: a full send queue drops that client only.
func TestHubSlowClient(t *testing.T) {
	s := newHubServer(t)
	slow, fast := newTestClient(1), newTestClient(64)
	for _, cl := range []*wsClient{slow, fast} {
		s.hub.request(hubReq{kind: reqJoin, cl: cl})
		s.hub.request(hubReq{kind: reqSubscribe, cl: cl, channels: []string{"book:h100-sxm.us-east"}})
	}
	// Requests are asynchronous: wait for both snapshots before the change.
	for len(slow.send) < 1 || len(fast.send) < 1 {
		time.Sleep(time.Millisecond)
	}
	// slow's queue holds its snapshot; the next update overflows it.
	f := s.cfg.Sequencer
	var owner engine.ID
	f.Submit(context.Background(), engine.Command{Kind: engine.CmdCreateAccount, Target: engine.ID{1}, Name: "o", Roles: engine.RoleOwner}, func(_ *engine.Engine, c *engine.Command) { owner = c.Target })
	now := engine.Time(time.Now().UnixMilli()).HourStart()
	out, _ := f.Submit(context.Background(), engine.Command{Kind: engine.CmdPlaceListing, Actor: owner, Target: engine.ID{2}, Market: "h100-sxm.us-east", Quantity: 1, Start: now, End: now + engine.Hour, Price: 10000}, nil)
	if len(out.Events) == 0 || out.Events[0].Kind != engine.EvListingPlaced {
		t.Fatalf("listing: %+v", out)
	}
	s.OnEvents(out.Events)
	waitGone(t, slow, closeTryLater)
	select {
	case <-fast.gone:
		t.Fatal("the fast client was dropped too")
	default:
	}
	deadline := time.After(hubWait)
	for got := 0; got < 2; got++ { // snapshot, then the update
		select {
		case <-fast.send:
		case <-deadline:
			t.Fatalf("the fast client got %d messages, want 2", got)
		}
	}
	if got := counterValue(t, s.metrics.wsDropped); got != 1 {
		t.Errorf("dropped: got %v, want 1", got)
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// hubWait bounds every wait in these tests: it only turns a hang into a
// failure, far above any real delay even under a loaded -race run.
const hubWait = 60 * time.Second
