package api_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/gpux/gpux/api"
	"github.com/gpux/gpux/client"
	"github.com/gpux/gpux/engine"
)

func dialFeed(tb testing.TB, e *env, d *websocket.Dialer, hdr http.Header) (*websocket.Conn, *http.Response) {
	tb.Helper()
	if d == nil {
		d = &websocket.Dialer{}
	}
	c, resp, err := d.Dial("ws"+strings.TrimPrefix(e.url, "http")+"/v1/ws", hdr)
	if err != nil {
		tb.Fatalf("dial feed: %v", err)
	}
	tb.Cleanup(func() { c.Close() })
	return c, resp
}

// readClose reads until the server closes and returns the close error.
func readClose(tb testing.TB, c *websocket.Conn) *websocket.CloseError {
	tb.Helper()
	_ = c.SetReadDeadline(time.Now().Add(feedWait))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) {
				tb.Fatalf("read: got %v, want a close frame", err)
			}
			return ce
		}
	}
}

// TestFeedMessageLimit: a client message over 64 KiB closes the
// connection with 1009 (message too big) before the server buffers it.
func TestFeedMessageLimit(t *testing.T) {
	e := newEnv(t, nil)
	c, _ := dialFeed(t, e, nil, nil)
	big := `{"op":"subscribe","channels":["` + strings.Repeat("x", 64<<10) + `"]}`
	if err := c.WriteMessage(websocket.TextMessage, []byte(big)); err != nil {
		t.Fatal(err)
	}
	if ce := readClose(t, c); ce.Code != websocket.CloseMessageTooBig {
		t.Errorf("close: got %d %q, want %d", ce.Code, ce.Text, websocket.CloseMessageTooBig)
	}
}

// TestFeedNoCompression: the server never agrees to permessage-deflate, so
// a client cannot send a small compressed frame that inflates past the
// read limit's meaning, and no per-connection compressor state exists.
func TestFeedNoCompression(t *testing.T) {
	e := newEnv(t, nil)
	_, resp := dialFeed(t, e, &websocket.Dialer{EnableCompression: true}, nil)
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		t.Errorf("extensions: got %q, want none", ext)
	}
}

// metric reads one unlabelled sample from /metrics.
func metric(tb testing.TB, e *env, name string) float64 {
	tb.Helper()
	m, err := e.anon.Metrics(bg)
	if err != nil {
		tb.Fatal(err)
	}
	sm := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` ([0-9.e+]+)$`).FindSubmatch(m)
	if sm == nil {
		tb.Fatalf("no %s in /metrics", name)
	}
	v, _ := strconv.ParseFloat(string(sm[1]), 64)
	return v
}

type wireMsg struct {
	Type     string   `json:"type"`
	Channel  string   `json:"channel"`
	Code     string   `json:"code"`
	Channels []string `json:"channels"`
}

// readUntil reads raw messages until stop returns true, returning them.
func readUntil(tb testing.TB, c *websocket.Conn, stop func(wireMsg) bool) []wireMsg {
	tb.Helper()
	_ = c.SetReadDeadline(time.Now().Add(feedWait))
	var got []wireMsg
	for {
		_, b, err := c.ReadMessage()
		if err != nil {
			tb.Fatalf("read after %d messages: %v", len(got), err)
		}
		var m wireMsg
		if err := json.Unmarshal(b, &m); err != nil {
			tb.Fatalf("message %s: %v", b, err)
		}
		got = append(got, m)
		if stop(m) {
			return got
		}
	}
}

func allChannels() []string {
	chans := []string{"prices"}
	for _, g := range engine.DefaultGPUs {
		for _, r := range engine.DefaultRegions {
			chans = append(chans, "book:"+g+"."+r, "trades:"+g+"."+r)
		}
	}
	return chans
}

// TestFeedSubscribeFlood: one connection naming "prices" 6,000 times in one
// subscribe gets one snapshot, and connections flooding the hub with
// subscribes are refused (rate_limited) while another subscriber's feed
// goes on, with nobody disconnected. Before the limits the 6,000 snapshots
// were all rendered and queued: the flooder was dropped as "send queue
// full", and three of them put the hub so far behind that every
// subscriber was.
func TestFeedSubscribeFlood(t *testing.T) {
	e := newEnv(t, nil)
	owner := e.account("owner", "", client.RoleOwner)
	buyer := e.account("buyer", "100000", client.RoleBuyer)
	const mk = "h100-sxm.us-east"
	if _, err := owner.PlaceListing(bg, client.ListingRequest{Market: mk, Quantity: 8, Start: hour(0), End: hour(48), ReservePrice: client.FixedPrice("3.00")}); err != nil {
		t.Fatal(err)
	}
	obs := subscribe(t, e.anon, "trades:"+mk, "prices")
	obs.next(is(client.MsgSnapshot, "trades:"+mk))
	obs.next(is(client.MsgSnapshot, "prices"))

	t.Run("6000 times prices", func(t *testing.T) {
		c, _ := dialFeed(t, e, nil, nil)
		chans := make([]string, 6000)
		for i := range chans {
			chans[i] = "prices"
		}
		if err := c.WriteJSON(map[string]any{"op": "subscribe", "channels": chans}); err != nil {
			t.Fatal(err)
		}
		// An unsubscribe goes through the hub after the subscribe: its
		// answer marks the end of what the subscribe caused.
		if err := c.WriteJSON(map[string]any{"op": "unsubscribe", "channels": []string{"none"}}); err != nil {
			t.Fatal(err)
		}
		msgs := readUntil(t, c, func(m wireMsg) bool { return m.Type == "unsubscribed" })
		snaps := 0
		for _, m := range msgs {
			if m.Type == "snapshot" && m.Channel == "prices" {
				snaps++
			}
		}
		if snaps != 1 {
			t.Errorf("prices snapshots: got %d, want 1", snaps)
		}
	})

	t.Run("three flooders", func(t *testing.T) {
		type result struct {
			limited int
			closed  *websocket.CloseError
		}
		const flooders = 3
		results := make(chan result, flooders)
		var conns []*websocket.Conn
		for range flooders {
			c, _ := dialFeed(t, e, nil, nil)
			conns = append(conns, c)
			go func() {
				var r result
				defer func() { results <- r }()
				for {
					_, b, err := c.ReadMessage()
					if err != nil {
						errors.As(err, &r.closed)
						return
					}
					var m wireMsg
					if json.Unmarshal(b, &m) == nil && m.Code == "rate_limited" {
						r.limited++
					}
				}
			}()
			for range 100 {
				if err := c.WriteJSON(map[string]any{"op": "subscribe", "channels": allChannels()}); err != nil {
					t.Fatal(err)
				}
			}
		}
		// The observer's feed goes on, gap-free (feedReader checks seqs).
		b, err := buyer.PlaceBid(bg, client.BidRequest{Type: client.BidReserved, Market: mk, Quantity: 1, Start: hour(2), End: hour(3), LimitPrice: client.FixedPrice("3.00")})
		if err != nil || len(b.Fills) != 1 {
			t.Fatalf("bid: %v %+v", err, b)
		}
		m := obs.next(is(client.MsgUpdate, "trades:"+mk))
		var tr client.Trade
		if err := m.Decode(&tr); err != nil || tr.BidID != b.ID {
			t.Errorf("trade update: %v %+v, want bid %s", err, tr, b.ID)
		}
		for _, c := range conns {
			c.Close()
		}
		for range flooders {
			r := <-results
			if r.closed != nil {
				t.Errorf("a flooder was disconnected by the server: %d %q", r.closed.Code, r.closed.Text)
			}
			if r.limited == 0 {
				t.Errorf("a flooder sent 100 subscribes of %d channels and was never rate_limited", len(allChannels()))
			}
		}
		for _, name := range []string{"gpux_feed_overflows_total", "gpux_ws_dropped_clients_total"} {
			if v := metric(t, e, name); v != 0 {
				t.Errorf("%s: got %v, want 0", name, v)
			}
		}
		t.Logf("snapshots rendered %v, reused %v", metric(t, e, "gpux_ws_snapshots_rendered_total"), metric(t, e, "gpux_ws_snapshots_reused_total"))
	})
}

// TestFeedLimits: each per-connection and per-address limit answers as
// documented.
func TestFeedLimits(t *testing.T) {
	e := newEnv(t, func(c *api.Config) { c.FeedConnsPerAddr = 3 })
	t.Run("too many channels in one subscribe", func(t *testing.T) {
		c, _ := dialFeed(t, e, nil, nil)
		chans := make([]string, 65)
		for i := range chans {
			chans[i] = "book:m" + strconv.Itoa(i)
		}
		if err := c.WriteJSON(map[string]any{"op": "subscribe", "channels": chans}); err != nil {
			t.Fatal(err)
		}
		msgs := readUntil(t, c, func(m wireMsg) bool { return m.Type == "error" })
		if m := msgs[len(msgs)-1]; m.Code != "too_many_channels" {
			t.Errorf("got %+v, want too_many_channels", m)
		}
	})
	t.Run("ops per second", func(t *testing.T) {
		c, _ := dialFeed(t, e, nil, nil)
		for range 100 {
			if err := c.WriteJSON(map[string]any{"op": "unsubscribe", "channels": []string{"x"}}); err != nil {
				t.Fatal(err)
			}
		}
		readUntil(t, c, func(m wireMsg) bool { return m.Type == "error" && m.Code == "rate_limited" })
	})
	t.Run("snapshot budget", func(t *testing.T) {
		c, _ := dialFeed(t, e, nil, nil)
		for range 3 { // 3 × (8 + 48) > 128
			if err := c.WriteJSON(map[string]any{"op": "subscribe", "channels": allChannels()}); err != nil {
				t.Fatal(err)
			}
		}
		readUntil(t, c, func(m wireMsg) bool { return m.Type == "error" && m.Code == "rate_limited" })
	})
	t.Run("connections per address", func(t *testing.T) {
		// The earlier subtests' connections may still hold places (their
		// release follows the close): whatever is free is at most 3.
		var open []*websocket.Conn
		url := "ws" + strings.TrimPrefix(e.url, "http") + "/v1/ws"
		for range 10 {
			c, resp, err := (&websocket.Dialer{}).Dial(url, nil)
			if err != nil {
				if resp == nil {
					t.Fatalf("dial: %v", err)
				}
				var buf bytes.Buffer
				_, _ = buf.ReadFrom(resp.Body)
				wantProblem(t, resp.StatusCode, resp.Header, buf.Bytes(), http.StatusTooManyRequests, "too_many_connections", "")
				if resp.Header.Get("Retry-After") == "" {
					t.Error("429 without Retry-After")
				}
				break
			}
			open = append(open, c)
		}
		if len(open) > 3 {
			t.Fatalf("opened %d connections from one address, want at most 3", len(open))
		}
		if len(open) == 10 {
			t.Fatal("never refused")
		}
		// A closed connection frees its place.
		for _, c := range open {
			c.Close()
		}
		for deadline := time.Now().Add(feedWait); ; {
			c, _, err := (&websocket.Dialer{}).Dial(url, nil)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no place freed after closing: %v", err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// TestFeedReauth: a second auth on one connection is refused and changes
// nothing: the user channel streams the first account only. Before, the
// second auth answered ok and a second "user" subscribe streamed the new
// account beside the old one.
func TestFeedReauth(t *testing.T) {
	e := newEnv(t, nil)
	a := e.account("a", "", client.RoleBuyer)
	b := e.account("b", "", client.RoleBuyer)
	c, _ := dialFeed(t, e, nil, nil)
	send := func(v any) {
		t.Helper()
		if err := c.WriteJSON(v); err != nil {
			t.Fatal(err)
		}
	}
	send(map[string]any{"op": "auth", "key": a.key})
	if m := readUntil(t, c, func(w wireMsg) bool { return w.Type == "auth" }); m[len(m)-1].Code != "" {
		t.Fatalf("first auth: %+v", m[len(m)-1])
	}
	send(map[string]any{"op": "subscribe", "channels": []string{"user"}})
	readUntil(t, c, func(w wireMsg) bool { return w.Type == "snapshot" })
	send(map[string]any{"op": "auth", "key": b.key})
	if m := readUntil(t, c, func(w wireMsg) bool { return w.Type == "auth" }); m[len(m)-1].Code != "already_authenticated" {
		t.Errorf("second auth: got %+v, want already_authenticated", m[len(m)-1])
	}
	// A fresh user snapshot is still a's account.
	send(map[string]any{"op": "subscribe", "channels": []string{"user"}})
	_ = c.SetReadDeadline(time.Now().Add(feedWait))
	for {
		var m struct {
			Type string `json:"type"`
			Data struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		if err := c.ReadJSON(&m); err != nil {
			t.Fatal(err)
		}
		if m.Type == "snapshot" {
			if m.Data.ID != a.id {
				t.Errorf("user snapshot after a second auth: got account %s, want %s (a)", m.Data.ID, a.id)
			}
			break
		}
	}
	// b's balance changes never reach this connection; a's do.
	if _, err := e.admin.Deposit(bg, b.id, "5"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.Deposit(bg, a.id, "7"); err != nil {
		t.Fatal(err)
	}
	for {
		var m struct {
			Type string `json:"type"`
			Data struct {
				Event   string `json:"event"`
				Balance string `json:"balance"`
			} `json:"data"`
		}
		if err := c.ReadJSON(&m); err != nil {
			t.Fatal(err)
		}
		if m.Type == "update" && m.Data.Event == "balance_changed" {
			if m.Data.Balance != "7.00" {
				t.Errorf("first balance update: got %+v, want a's 7.00", m.Data)
			}
			break
		}
	}
}
