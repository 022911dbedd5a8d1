package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/fasthttp/websocket"
)

// ErrClosed is returned by Feed methods after Close.
var ErrClosed = errors.New("gpux: feed closed")

const (
	feedWriteTimeout = 10 * time.Second
	feedBuffer       = 256
	feedReadLimit    = 32 << 20
)

// Feed is a websocket subscription to /v1/ws. Next returns messages in the
// order the server sent them. Snapshots carry a channel's current Seq and
// updates follow with Seq+1, Seq+2, …; a gap means a missed message and
// calls for Unsubscribe + Subscribe to get a fresh snapshot. Heartbeats
// ("heartbeat", at least every 15 s) are returned like any other message.
//
// A Feed is safe for concurrent use; Next is meant for one reader.
type Feed struct {
	conn *websocket.Conn
	key  string

	wmu    sync.Mutex // serialises writes and guards authed
	authed bool

	msgs      chan Message  // closed by the reader when it stops
	err       error         // why the reader stopped; read after msgs is closed
	closed    chan struct{} // closed by Close
	closeOnce sync.Once
}

// Subscribe dials the websocket feed next to the client's base URL (http →
// ws, https → wss, path /v1/ws) and subscribes to channels: "prices",
// "book:<market>", "trades:<market>", "user". When the client has a key and
// "user" is among channels, it first sends {"op":"auth"}; the answer arrives
// as a message of type "auth". ctx bounds the dial only; the feed lives until
// Close or until the server goes away. A refused handshake returns *Error.
func (c *Client) Subscribe(ctx context.Context, channels []string) (*Feed, error) {
	target, err := c.wsURL()
	if err != nil {
		return nil, err
	}
	d := websocket.Dialer{HandshakeTimeout: 15 * time.Second, Proxy: http.ProxyFromEnvironment}
	if t, ok := c.hc.Transport.(*http.Transport); ok {
		d.TLSClientConfig = t.TLSClientConfig
		d.Proxy = t.Proxy
	}
	conn, resp, err := d.DialContext(ctx, target, http.Header{"User-Agent": {"gpux-client/1"}})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			defer resp.Body.Close()
			return nil, parseError(resp)
		}
		return nil, fmt.Errorf("gpux: dial %s: %w", target, err)
	}
	conn.SetReadLimit(feedReadLimit)
	f := &Feed{
		conn:   conn,
		key:    c.key,
		msgs:   make(chan Message, feedBuffer),
		closed: make(chan struct{}),
	}
	go f.read()
	if len(channels) > 0 {
		if err := f.Subscribe(channels); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

func (c *Client) wsURL() (string, error) {
	target, err := c.endpoint("/v1/ws", nil)
	if err != nil {
		return "", err
	}
	switch c.base.Scheme {
	case "http", "ws":
		return "ws" + target[len(c.base.Scheme):], nil
	case "https", "wss":
		return "wss" + target[len(c.base.Scheme):], nil
	default:
		return "", fmt.Errorf("gpux: base URL scheme %q has no websocket equivalent", c.base.Scheme)
	}
}

// Next returns the next message. Callers must ignore message types they do
// not know. Errors: ctx.Err() when ctx ends first (the feed stays usable),
// ErrClosed after Close, otherwise the error that ended the connection
// (after every message received before it has been returned).
func (f *Feed) Next(ctx context.Context) (Message, error) {
	// Prefer a buffered message over a cancelled ctx so nothing is lost.
	select {
	case m, ok := <-f.msgs:
		if !ok {
			return Message{}, f.err
		}
		return m, nil
	default:
	}
	select {
	case m, ok := <-f.msgs:
		if !ok {
			return Message{}, f.err
		}
		return m, nil
	case <-ctx.Done():
		return Message{}, ctx.Err()
	}
}

// Subscribe adds channels; each answers with a snapshot. When the feed's
// client had a key, "user" is among channels and the feed has not
// authenticated yet, it sends {"op":"auth"} first.
func (f *Feed) Subscribe(channels []string) error {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	if f.key != "" && !f.authed && slices.Contains(channels, "user") {
		if err := f.writeLocked(struct {
			Op  string `json:"op"`
			Key string `json:"key"`
		}{"auth", f.key}); err != nil {
			return err
		}
		f.authed = true
	}
	return f.writeLocked(channelsOp{"subscribe", channels})
}

// Unsubscribe removes channels.
func (f *Feed) Unsubscribe(channels []string) error {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	return f.writeLocked(channelsOp{"unsubscribe", channels})
}

// Close ends the feed; pending and later Next calls return ErrClosed once
// buffered messages are drained. It is safe to call more than once.
func (f *Feed) Close() error {
	var err error
	f.closeOnce.Do(func() {
		close(f.closed)
		// WriteControl may run concurrently with other writes.
		_ = f.conn.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""),
			time.Now().Add(time.Second))
		err = f.conn.Close()
	})
	return err
}

type channelsOp struct {
	Op       string   `json:"op"`
	Channels []string `json:"channels"`
}

func (f *Feed) writeLocked(v any) error {
	select {
	case <-f.closed:
		return ErrClosed
	default:
	}
	_ = f.conn.SetWriteDeadline(time.Now().Add(feedWriteTimeout))
	if err := f.conn.WriteJSON(v); err != nil {
		return fmt.Errorf("gpux: feed write: %w", err)
	}
	return nil
}

// read owns the read side of the connection until it fails or Close.
func (f *Feed) read() {
	defer close(f.msgs)
	for {
		_, b, err := f.conn.ReadMessage()
		if err != nil {
			select {
			case <-f.closed:
				f.err = ErrClosed
			default:
				f.err = fmt.Errorf("gpux: feed: %w", err)
			}
			return
		}
		m := Message{Raw: b} // ReadMessage returns a new slice each time
		if err := json.Unmarshal(b, &m); err != nil {
			f.err = fmt.Errorf("gpux: feed: malformed message %.200q: %w", b, err)
			f.conn.Close()
			return
		}
		select {
		case f.msgs <- m:
		case <-f.closed:
			f.err = ErrClosed
			return
		}
	}
}
