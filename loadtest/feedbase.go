package main

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fasthttp/websocket"
	fiberws "github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"
)

// The feed baseline: a bare websocket broadcast server, built on the same
// library as gpuxd's feed (Fiber v2, gofiber/contrib/websocket), that
// replays the updates the target sent during the run — the same channels,
// sizes and timing — to the same number of subscribers, read by the same
// readers. The target's feed figures are then a ratio of what broadcasting
// alone costs on this machine, as the bid figures are of a bare Fiber app.

// sentUpdate is one update the watcher subscriber received from the
// target, for the baseline to replay.
type sentUpdate struct {
	at      time.Duration // since the load started
	channel string
	size    int // bytes of the whole message
}

// maxRecorded bounds the updates recorded for the replay.
const maxRecorded = 1 << 20

// FeedBaseline is the bare broadcast part of the feed report.
type FeedBaseline struct {
	Subscribers    int     `json:"subscribers"`
	Connected      int64   `json:"connected"`
	Replayed       int     `json:"replayed_updates"` // distinct updates broadcast
	Messages       int64   `json:"messages"`
	MessagesPerSec float64 `json:"messages_per_sec"`
	Latency        Latency `json:"latency"`
	Gaps           int64   `json:"seq_gaps"`
	Dropped        int64   `json:"dropped"` // subscribers the bare server dropped (queue full)
	// Ratios of the target to the baseline: delivered messages/s (1 = as
	// fast as bare broadcasting) and p99 delivery latency (1 = as quick).
	MessagesRatio float64 `json:"target_messages_ratio"`
	P99Ratio      float64 `json:"target_p99_ratio"`
}

// bareHub is the bare server's fan-out: one prepared frame per message,
// queued to every subscriber's writer.
type bareHub struct {
	mu      sync.Mutex
	subs    map[chan *websocket.PreparedMessage]bool
	dropped int64
}

func (h *bareHub) broadcast(pm *websocket.PreparedMessage) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for q := range h.subs {
		select {
		case q <- pm:
		default:
			h.dropped++
			delete(h.subs, q)
			close(q)
		}
	}
}

// startBareFeed serves GET /v1/ws: it answers a subscribe with an empty
// snapshot of each channel (seq 0), then relays broadcasts.
func startBareFeed(queue int) (string, *bareHub, func(), error) {
	h := &bareHub{subs: map[chan *websocket.PreparedMessage]bool{}}
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/v1/ws", fiberws.New(func(c *fiberws.Conn) {
		var op struct {
			Channels []string `json:"channels"`
		}
		if err := c.ReadJSON(&op); err != nil {
			return
		}
		q := make(chan *websocket.PreparedMessage, queue)
		now := time.Now().UTC().Format(time.RFC3339Nano)
		for _, ch := range op.Channels {
			if err := c.WriteMessage(websocket.TextMessage, []byte(`{"channel":"`+ch+`","type":"snapshot","seq":0,"data":[],"ts":"`+now+`"}`)); err != nil {
				return
			}
		}
		h.mu.Lock()
		h.subs[q] = true
		h.mu.Unlock()
		go func() { // drain the client's frames so its closes are seen
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					h.mu.Lock()
					if h.subs[q] {
						delete(h.subs, q)
						close(q)
					}
					h.mu.Unlock()
					return
				}
			}
		}()
		for pm := range q {
			_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if err := c.WritePreparedMessage(pm); err != nil {
				return
			}
		}
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = app.Listener(ln)
	}()
	stop := func() {
		_ = app.ShutdownWithTimeout(5 * time.Second)
		<-done
	}
	return "http://" + ln.Addr().String(), h, stop, nil
}

// bareMessage is an update of the given size in the feed's envelope, its
// ts the time it is sent.
func bareMessage(channel string, seq uint64, size int, now time.Time) []byte {
	head := `{"channel":"` + channel + `","type":"update","seq":` + strconv.FormatUint(seq, 10) + `,"data":"`
	tail := `","ts":"` + now.UTC().Format("2006-01-02T15:04:05.000Z07:00") + `"}`
	pad := max(size-len(head)-len(tail), 0)
	return []byte(head + strings.Repeat("x", pad) + tail)
}

// runFeedBaseline replays recorded (the target's updates, in order) to n
// bare-server subscribers of channels and measures them as the target's
// were measured.
func runFeedBaseline(ctx context.Context, cfg Config, channels []string, recorded []sentUpdate, logf func(string, ...any)) (FeedBaseline, error) {
	target, h, stop, err := startBareFeed(256)
	if err != nil {
		return FeedBaseline{}, fmt.Errorf("feed baseline: %w", err)
	}
	defer stop()
	logf("loadtest: feed baseline: %d subscribers of a bare broadcast server, replaying %d updates\n", cfg.Subscribers, len(recorded))
	fs := startFeedsOn(ctx, []string{target}, cfg.TypedFeed, cfg.Subscribers, channels)
	defer fs.stop()
	fs.stats.counting.Store(true)
	start := time.Now()
	seqs := map[string]uint64{}
	for _, u := range recorded {
		if d := time.Until(start.Add(u.at)); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
		seqs[u.channel]++
		pm, err := websocket.NewPreparedMessage(websocket.TextMessage, bareMessage(u.channel, seqs[u.channel], u.size, time.Now()))
		if err != nil {
			return FeedBaseline{}, err
		}
		h.broadcast(pm)
	}
	// Let the last messages arrive, as the target's did while the run
	// wound down.
	wait := time.Now().Add(2 * time.Second)
	want := int64(len(recorded)) * fs.stats.connected.Load()
	for time.Now().Before(wait) && fs.stats.updates.Load() < want {
		time.Sleep(10 * time.Millisecond)
	}
	elapsed := time.Since(start)
	fs.stats.counting.Store(false)
	fs.stop()
	r := fs.stats.report(elapsed)
	h.mu.Lock()
	dropped := h.dropped
	h.mu.Unlock()
	return FeedBaseline{
		Subscribers: cfg.Subscribers, Connected: r.Connected, Replayed: len(recorded), Messages: r.Messages,
		MessagesPerSec: r.MessagesPerSec, Latency: r.Latency, Gaps: r.Gaps, Dropped: dropped,
	}, nil
}
