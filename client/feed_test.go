package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/gpux/gpux/client"
)

// wsServer accepts websocket connections on /v1/ws and hands the server
// side of each to the test, which then plays the server.
func wsServer(tb testing.TB) (*httptest.Server, <-chan *websocket.Conn) {
	tb.Helper()
	conns := make(chan *websocket.Conn, 4)
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/ws" {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"title":"Not Found","status":404,"code":"not_found"}`))
			return
		}
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			tb.Errorf("upgrade: %v", err)
			return
		}
		tb.Cleanup(func() { conn.Close() })
		conns <- conn
	}))
	tb.Cleanup(srv.Close)
	return srv, conns
}

func accept(tb testing.TB, conns <-chan *websocket.Conn) *websocket.Conn {
	tb.Helper()
	select {
	case c := <-conns:
		return c
	case <-time.After(5 * time.Second):
		tb.Fatal("no websocket connection")
		return nil
	}
}

// expectOp reads one client message and compares it with want by value.
func expectOp(tb testing.TB, conn *websocket.Conn, want string) {
	tb.Helper()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := conn.ReadMessage()
	if err != nil {
		tb.Fatalf("server read: %v", err)
	}
	jsonEqual(tb, b, want)
}

func send(tb testing.TB, conn *websocket.Conn, msg string) {
	tb.Helper()
	if err := conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		tb.Fatalf("server write: %v", err)
	}
}

func next(tb testing.TB, f *client.Feed) client.Message {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), 5*time.Second)
	defer cancel()
	m, err := f.Next(ctx)
	if err != nil {
		tb.Fatalf("Next: %v", err)
	}
	return m
}

func TestFeedRoundTrip(t *testing.T) {
	srv, conns := wsServer(t)
	c := client.New(srv.URL, client.WithAPIKey("sk_buyer"))
	feed, err := c.Subscribe(t.Context(), []string{"prices", "user"})
	if err != nil {
		t.Fatal(err)
	}
	defer feed.Close()
	conn := accept(t, conns)

	expectOp(t, conn, `{"op":"auth","key":"sk_buyer"}`)
	expectOp(t, conn, `{"op":"subscribe","channels":["prices","user"]}`)

	sent := []string{
		`{"type":"auth","ok":true}`,
		`{"channel":"prices","type":"snapshot","seq":7,"data":[{"market":"m"}],"ts":"2026-12-01T08:00:00.123Z"}`,
		`{"type":"heartbeat","ts":"2026-12-01T08:00:15Z"}`,
		`{"type":"welcome","motd":"hi"}`,
	}
	for _, m := range sent {
		send(t, conn, m)
	}
	send(t, conn, `{"channel":"trades:m","type":"update","seq":8,"data":{"id":"f1","bid_id":"b1","listing_id":"l1","market":"m","quantity":1,"price":"2.10","start":"`+start+`","end":"`+end+`"},"ts":"2026-12-01T08:00:16Z"}`)

	// Raw keeps each message as sent, the unknown "motd" included.
	want := []client.Message{
		{Type: "auth", OK: true, Raw: json.RawMessage(sent[0])},
		{Channel: "prices", Type: "snapshot", Seq: 7, Data: json.RawMessage(`[{"market":"m"}]`), TS: ts("2026-12-01T08:00:00Z").Add(123 * time.Millisecond), Raw: json.RawMessage(sent[1])},
		{Type: "heartbeat", TS: ts("2026-12-01T08:00:15Z"), Raw: json.RawMessage(sent[2])},
		{Type: "welcome", Raw: json.RawMessage(sent[3])},
	}
	for i, w := range want {
		if got := next(t, feed); !reflect.DeepEqual(got, w) {
			t.Errorf("message %d:\n got %#v\nwant %#v", i, got, w)
		}
	}
	upd := next(t, feed)
	var tr client.Trade
	if err := upd.Decode(&tr); err != nil {
		t.Fatal(err)
	}
	wantTrade := client.Trade{ID: "f1", BidID: "b1", ListingID: "l1", Market: "m", Quantity: 1, Price: "2.10", Start: ts(start), End: ts(end)}
	if upd.Seq != 8 || upd.Type != client.MsgUpdate || tr != wantTrade {
		t.Errorf("update: got seq %d type %q trade %+v, want seq 8 update %+v", upd.Seq, upd.Type, tr, wantTrade)
	}

	t.Run("cancelled Next keeps the feed", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		defer cancel()
		if _, err := feed.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Next: got %v, want %v", err, context.DeadlineExceeded)
		}
		send(t, conn, `{"type":"heartbeat","ts":"2026-12-01T08:00:30Z"}`)
		if got := next(t, feed); got.Type != client.MsgHeartbeat {
			t.Errorf("type: got %q, want heartbeat", got.Type)
		}
	})

	t.Run("subscribe and unsubscribe", func(t *testing.T) {
		if err := feed.Unsubscribe([]string{"prices"}); err != nil {
			t.Fatal(err)
		}
		expectOp(t, conn, `{"op":"unsubscribe","channels":["prices"]}`)
		// Already authenticated: no second auth.
		if err := feed.Subscribe([]string{"user", "bogus"}); err != nil {
			t.Fatal(err)
		}
		expectOp(t, conn, `{"op":"subscribe","channels":["user","bogus"]}`)
		const msg = `{"type":"error","code":"unknown_channel","detail":"bogus"}`
		send(t, conn, msg)
		if got, want := next(t, feed), (client.Message{Type: "error", Code: "unknown_channel", Detail: "bogus", Raw: json.RawMessage(msg)}); !reflect.DeepEqual(got, want) {
			t.Errorf("got %#v, want %#v", got, want)
		}
	})

	t.Run("close", func(t *testing.T) {
		if err := feed.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := feed.Next(t.Context()); !errors.Is(err, client.ErrClosed) {
			t.Errorf("Next after Close: got %v, want %v", err, client.ErrClosed)
		}
		if err := feed.Subscribe([]string{"prices"}); !errors.Is(err, client.ErrClosed) {
			t.Errorf("Subscribe after Close: got %v, want %v", err, client.ErrClosed)
		}
		if err := feed.Close(); err != nil {
			t.Errorf("second Close: got %v, want nil", err)
		}
	})
}

func TestFeedAnonymousSkipsAuth(t *testing.T) {
	srv, conns := wsServer(t)
	feed, err := client.New(srv.URL).Subscribe(t.Context(), []string{"book:m", "user"})
	if err != nil {
		t.Fatal(err)
	}
	defer feed.Close()
	conn := accept(t, conns)
	expectOp(t, conn, `{"op":"subscribe","channels":["book:m","user"]}`)
}

func TestFeedPublicChannelsSkipAuth(t *testing.T) {
	srv, conns := wsServer(t)
	feed, err := client.New(srv.URL, client.WithAPIKey("k")).Subscribe(t.Context(), []string{"prices"})
	if err != nil {
		t.Fatal(err)
	}
	defer feed.Close()
	conn := accept(t, conns)
	expectOp(t, conn, `{"op":"subscribe","channels":["prices"]}`)
	// Adding "user" later authenticates first.
	if err := feed.Subscribe([]string{"user"}); err != nil {
		t.Fatal(err)
	}
	expectOp(t, conn, `{"op":"auth","key":"k"}`)
	expectOp(t, conn, `{"op":"subscribe","channels":["user"]}`)
}

func TestFeedServerGoesAway(t *testing.T) {
	srv, conns := wsServer(t)
	feed, err := client.New(srv.URL).Subscribe(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer feed.Close()
	conn := accept(t, conns)
	send(t, conn, `{"type":"heartbeat","ts":"2026-12-01T08:00:00Z"}`)
	conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "shutdown"))
	conn.Close()
	// Messages sent before the close are still delivered.
	if got := next(t, feed); got.Type != client.MsgHeartbeat {
		t.Errorf("type: got %q, want heartbeat", got.Type)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err = feed.Next(ctx)
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
		t.Errorf("Next: got %v, want a going-away close error", err)
	}
}

func TestFeedHandshakeRefused(t *testing.T) {
	srv, _ := wsServer(t)
	// The fake answers problem+json 404 to anything but /v1/ws.
	_, err := client.New(srv.URL+"/elsewhere").Subscribe(t.Context(), nil)
	var e *client.Error
	if !errors.As(err, &e) || e.Status != http.StatusNotFound || e.Code != "not_found" {
		t.Errorf("Subscribe: got %v, want *client.Error 404 not_found", err)
	}
}
