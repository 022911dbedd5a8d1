package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/gpux/gpux/client"
)

// feedStats is what the websocket subscribers observed.
type feedStats struct {
	reader      string
	subscribers int
	channels    []string
	lat         Histogram // update ts (engine event time) → receive time
	messages    atomic.Int64
	updates     atomic.Int64
	gaps        atomic.Int64
	connected   atomic.Int64
	dialFailed  atomic.Int64
	live        atomic.Int64
	slowDropped atomic.Int64 // closed by the server with 1013: send queue full
	goingAway   atomic.Int64 // closed with 1001 (server shutting down)
	otherClosed atomic.Int64
	counting    atomic.Bool // count messages and latency only while load runs
	firstDial   error

	// The first subscriber remembers every trade id it saw, so the
	// verification can check the feed against the fills read back.
	mu          sync.Mutex
	trades      map[string]bool
	watcherOK   atomic.Bool  // it stayed connected and saw no gap
	watcherLast atomic.Int64 // unix ns of its last snapshot or update
	// It also records every update it counts (when, channel, size) for
	// the feed baseline to replay; countStart is when counting began.
	countStart atomic.Int64 // unix ns
	recorded   []sentUpdate // under mu
}

// startCounting starts counting messages and latency (and recording).
func (st *feedStats) startCounting() {
	st.countStart.Store(time.Now().UnixNano())
	st.counting.Store(true)
}

// feeds is the running set of subscribers.
type feeds struct {
	stats  *feedStats
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// feedChannels are the channels every subscriber takes: "prices" and
// "<kind>:<market>" of every market for the other kinds.
func feedChannels(kinds []string, markets []market) []string {
	var ch []string
	for _, k := range kinds {
		if k == "prices" {
			ch = append(ch, k)
			continue
		}
		for _, m := range markets {
			ch = append(ch, k+":"+m.ID)
		}
	}
	return ch
}

// startFeeds dials n subscribers (at most 64 handshakes at a time) and
// returns once every subscriber has its snapshots (or failed, or a minute
// has passed), so the load never races the subscriptions. typed makes
// them client.Feed subscribers; otherwise they are lean readers (see
// rawFeed).
//
// Subscriber i connects to targets[i % len(targets)] (API nodes relaying
// the same feed, or the server itself).
func startFeeds(ctx context.Context, targets []string, typed bool, n int, kinds []string, markets []market) *feeds {
	return startFeedsOn(ctx, targets, typed, n, feedChannels(kinds, markets))
}

// startFeedsOn is startFeeds with the channels named.
func startFeedsOn(ctx context.Context, targets []string, typed bool, n int, channels []string) *feeds {
	st := &feedStats{reader: "envelope", subscribers: n, trades: map[string]bool{}, channels: channels}
	if typed {
		st.reader = "client.Feed"
	}
	ctx, cancel := context.WithCancel(ctx)
	fs := &feeds{stats: st, cancel: cancel}
	if n == 0 {
		return fs
	}
	sem := make(chan struct{}, 64)
	var ready sync.WaitGroup
	var errOnce sync.Once
	for i := 0; i < n; i++ {
		ready.Add(1)
		fs.wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer fs.wg.Done()
			var readyOnce sync.Once
			isReady := func() { readyOnce.Do(ready.Done) }
			defer isReady()
			dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
			var (
				f   feedConn
				err error
			)
			target := targets[i%len(targets)]
			if typed {
				var tf *client.Feed
				if tf, err = client.New(target).Subscribe(dctx, channels); err == nil {
					f = typedFeed{tf}
				}
			} else {
				f, err = dialRaw(dctx, target, channels)
			}
			dcancel()
			<-sem
			if err != nil {
				st.dialFailed.Add(1)
				errOnce.Do(func() { st.firstDial = err })
				return
			}
			st.connected.Add(1)
			st.live.Add(1)
			defer st.live.Add(-1)
			stop := context.AfterFunc(ctx, func() { f.Close() })
			defer stop()
			defer f.Close()
			if i == 0 && slices.ContainsFunc(channels, func(c string) bool { return strings.HasPrefix(c, "trades:") }) {
				st.watcherOK.Store(true)
			}
			st.read(ctx, f, i == 0, len(channels), isReady)
		}()
	}
	done := make(chan struct{})
	go func() {
		ready.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
	}
	return fs
}

// feedMsg is one server message as the subscribers need it. Data is only
// valid until the next call of next.
type feedMsg struct {
	Channel string
	Type    string
	Seq     uint64
	TS      time.Time
	Data    []byte
	Size    int // bytes of the whole message (typed readers: estimated)
}

// feedConn is one subscriber's connection.
type feedConn interface {
	next() (feedMsg, error)
	Close() error
}

// typedFeed reads through the project's client.Feed, which decodes every
// message in full.
type typedFeed struct{ f *client.Feed }

func (t typedFeed) next() (feedMsg, error) {
	m, err := t.f.Next(context.Background())
	if err != nil {
		return feedMsg{}, err
	}
	// The envelope around data is about 100 bytes.
	return feedMsg{Channel: m.Channel, Type: m.Type, Seq: m.Seq, TS: m.TS, Data: m.Data, Size: len(m.Data) + len(m.Channel) + 90}, nil
}

func (t typedFeed) Close() error { return t.f.Close() }

// rawFeed speaks the feed protocol on a bare websocket and reads only a
// message's envelope (channel, type, seq, ts), reusing one buffer. A
// "prices" snapshot carries the full price table (tens of KiB) and an
// update the rows that changed; decoding all of it for thousands of
// subscribers on the load generator's machine would measure the generator
// rather than the server.
type rawFeed struct {
	conn *websocket.Conn
	buf  bytes.Buffer
}

func dialRaw(ctx context.Context, target string, channels []string) (*rawFeed, error) {
	u, err := url.Parse(strings.TrimRight(target, "/") + "/v1/ws")
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	}
	d := websocket.Dialer{HandshakeTimeout: 15 * time.Second, ReadBufferSize: 64 << 10}
	conn, resp, err := d.DialContext(ctx, u.String(), http.Header{"User-Agent": {"gpux-loadtest/1"}})
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial %s: %w (HTTP %d)", u, err, resp.StatusCode)
		}
		return nil, fmt.Errorf("dial %s: %w", u, err)
	}
	conn.SetReadLimit(32 << 20)
	_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := conn.WriteJSON(map[string]any{"op": "subscribe", "channels": channels}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	return &rawFeed{conn: conn}, nil
}

func (r *rawFeed) next() (feedMsg, error) {
	_, rd, err := r.conn.NextReader()
	if err != nil {
		return feedMsg{}, err
	}
	r.buf.Reset()
	if _, err := r.buf.ReadFrom(rd); err != nil {
		return feedMsg{}, err
	}
	m, err := parseEnvelope(r.buf.Bytes())
	m.Size = r.buf.Len()
	return m, err
}

func (r *rawFeed) Close() error { return r.conn.Close() }

// parseEnvelope reads channel, type, seq and ts of a feed message without
// decoding its data. The server writes the data last but one, before ts;
// anything that does not look like that is decoded in full.
func parseEnvelope(b []byte) (feedMsg, error) {
	var m feedMsg
	head, tail := b, []byte(nil)
	if i := bytes.Index(b, []byte(`"data":`)); i >= 0 {
		head = b[:i]
		if j := bytes.LastIndex(b, []byte(`"ts":"`)); j > i {
			tail = b[j:]
			m.Data = bytes.TrimRight(b[i+len(`"data":`):j], " \t\r\n,")
		}
	}
	var ok bool
	if m.Type, ok = stringField(head, `"type":"`); !ok {
		return parseFull(b)
	}
	m.Channel, _ = stringField(head, `"channel":"`)
	if i := bytes.Index(head, []byte(`"seq":`)); i >= 0 {
		rest := head[i+len(`"seq":`):]
		n := 0
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		m.Seq, _ = strconv.ParseUint(string(rest[:n]), 10, 64)
	}
	if tail == nil {
		tail = head
	}
	if ts, ok := stringField(tail, `"ts":"`); ok {
		m.TS, _ = time.Parse(time.RFC3339Nano, ts)
	}
	return m, nil
}

func stringField(b []byte, key string) (string, bool) {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return "", false
	}
	rest := b[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return "", false
	}
	return string(rest[:j]), true
}

func parseFull(b []byte) (feedMsg, error) {
	var m client.Message
	if err := json.Unmarshal(b, &m); err != nil {
		return feedMsg{}, fmt.Errorf("malformed feed message %.100q: %w", b, err)
	}
	return feedMsg{Channel: m.Channel, Type: m.Type, Seq: m.Seq, TS: m.TS, Data: m.Data}, nil
}

// read consumes one subscriber's messages until ctx ends or the server
// closes the connection.
func (st *feedStats) read(ctx context.Context, f feedConn, watcher bool, channels int, ready func()) {
	last := map[string]uint64{}
	snapshots := 0
	for {
		m, err := f.next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, client.ErrClosed) {
				return
			}
			if watcher {
				st.watcherOK.Store(false)
			}
			var ce *websocket.CloseError
			switch {
			case errors.As(err, &ce) && ce.Code == websocket.CloseTryAgainLater:
				st.slowDropped.Add(1)
			case errors.As(err, &ce) && ce.Code == websocket.CloseGoingAway:
				st.goingAway.Add(1)
			default:
				st.otherClosed.Add(1)
			}
			return
		}
		now := time.Now()
		if watcher && (m.Type == client.MsgUpdate || m.Type == client.MsgSnapshot) {
			st.watcherLast.Store(now.UnixNano())
		}
		counting := st.counting.Load()
		if counting {
			st.messages.Add(1)
		}
		switch m.Type {
		case client.MsgSnapshot:
			last[m.Channel] = m.Seq
			if snapshots++; snapshots == channels {
				ready()
			}
			if watcher && strings.HasPrefix(m.Channel, "trades:") {
				var ts []client.Trade
				if json.Unmarshal(m.Data, &ts) == nil {
					st.mu.Lock()
					for _, t := range ts {
						st.trades[t.ID] = true
					}
					st.mu.Unlock()
				}
			}
		case client.MsgUpdate:
			if prev, ok := last[m.Channel]; ok && m.Seq != prev+1 {
				st.gaps.Add(1)
				if watcher {
					st.watcherOK.Store(false)
				}
			}
			last[m.Channel] = m.Seq
			if counting {
				st.updates.Add(1)
				if !m.TS.IsZero() {
					st.lat.Record(now.Sub(m.TS))
				}
				if watcher {
					st.mu.Lock()
					if len(st.recorded) < maxRecorded {
						st.recorded = append(st.recorded, sentUpdate{at: time.Duration(now.UnixNano() - st.countStart.Load()), channel: m.Channel, size: m.Size})
					}
					st.mu.Unlock()
				}
			}
			if watcher && strings.HasPrefix(m.Channel, "trades:") {
				var t client.Trade
				if json.Unmarshal(m.Data, &t) == nil {
					st.mu.Lock()
					st.trades[t.ID] = true
					st.mu.Unlock()
				}
			}
		}
	}
}

// stop closes every subscriber and waits for them.
func (fs *feeds) stop() {
	fs.cancel()
	fs.wg.Wait()
}

// FeedReport is the feed part of the report.
type FeedReport struct {
	Subscribers    int      `json:"subscribers"`
	Channels       []string `json:"channels"`
	Reader         string   `json:"reader"` // "envelope" (lean) or "client.Feed"
	Connected      int64    `json:"connected"`
	DialFailed     int64    `json:"dial_failed"`
	DialError      string   `json:"dial_error,omitempty"`
	Messages       int64    `json:"messages"`
	MessagesPerSec float64  `json:"messages_per_sec"`
	Updates        int64    `json:"updates"`
	Latency        Latency  `json:"latency"`
	Gaps           int64    `json:"seq_gaps"`
	SlowDropped    int64    `json:"slow_clients_dropped"`
	GoingAway      int64    `json:"closed_going_away"`
	OtherClosed    int64    `json:"closed_other"`
	// ServerDropped is the target's gpux_ws_dropped_clients_total over the
	// run, when its /metrics has it.
	ServerDropped *float64 `json:"server_dropped,omitempty"`
	// Baseline is the same updates broadcast by a bare server (-feed-baseline).
	Baseline *FeedBaseline `json:"baseline,omitempty"`
}

func (st *feedStats) report(elapsed time.Duration) FeedReport {
	r := FeedReport{
		Subscribers: st.subscribers, Channels: st.channels, Reader: st.reader, Connected: st.connected.Load(), DialFailed: st.dialFailed.Load(),
		Messages: st.messages.Load(), Updates: st.updates.Load(), Latency: st.lat.Summary(),
		Gaps: st.gaps.Load(), SlowDropped: st.slowDropped.Load(), GoingAway: st.goingAway.Load(),
		OtherClosed: st.otherClosed.Load(),
	}
	if st.firstDial != nil {
		r.DialError = st.firstDial.Error()
	}
	if elapsed > 0 {
		r.MessagesPerSec = float64(r.Messages) / elapsed.Seconds()
	}
	return r
}
