package api_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
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
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
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
