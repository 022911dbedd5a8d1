package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/shopspring/decimal"

	"github.com/gpux/gpux/api"
	"github.com/gpux/gpux/client"
)

// feedReader reads a feed and checks that every channel's seq has no gap.
type feedReader struct {
	tb   testing.TB
	f    *client.Feed
	seqs map[string]uint64
}

// feedWait bounds every wait for a feed message. It only turns a hang into
// a failure: it is far above any real delay, even under a loaded -race run
// (one took over 5 s on a 2-core machine running five test suites), and no
// test asserts on how fast a message comes.
const feedWait = 60 * time.Second

func subscribe(tb testing.TB, c *client.Client, channels ...string) *feedReader {
	tb.Helper()
	ctx, cancel := context.WithTimeout(bg, feedWait)
	defer cancel()
	f, err := c.Subscribe(ctx, channels)
	if err != nil {
		tb.Fatalf("subscribe: %v", err)
	}
	tb.Cleanup(func() { f.Close() })
	return &feedReader{tb: tb, f: f, seqs: map[string]uint64{}}
}

// next returns the next message for which match is true, checking seqs
// of everything read on the way.
func (r *feedReader) next(match func(client.Message) bool) client.Message {
	r.tb.Helper()
	ctx, cancel := context.WithTimeout(bg, feedWait)
	defer cancel()
	for {
		m, err := r.f.Next(ctx)
		if err != nil {
			r.tb.Fatalf("feed: %v", err)
		}
		r.track(m)
		if match(m) {
			return m
		}
	}
}

// drain reads whatever has arrived, checking seqs, until the feed is quiet
// for a moment.
func (r *feedReader) drain() {
	r.tb.Helper()
	for {
		ctx, cancel := context.WithTimeout(bg, 20*time.Millisecond)
		m, err := r.f.Next(ctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				r.tb.Fatalf("feed: %v", err)
			}
			return
		}
		r.track(m)
	}
}

func (r *feedReader) track(m client.Message) {
	r.tb.Helper()
	switch m.Type {
	case client.MsgSnapshot:
		r.seqs[m.Channel] = m.Seq
	case client.MsgUpdate:
		last, ok := r.seqs[m.Channel]
		if !ok {
			r.tb.Errorf("%s: update %d before a snapshot", m.Channel, m.Seq)
		} else if m.Seq != last+1 {
			r.tb.Errorf("%s: seq %d after %d, want %d", m.Channel, m.Seq, last, last+1)
		}
		r.seqs[m.Channel] = m.Seq
	}
}

func is(typ, channel string) func(client.Message) bool {
	return func(m client.Message) bool { return m.Type == typ && (channel == "" || m.Channel == channel) }
}

func TestFeedBookAndTrades(t *testing.T) {
	e := newEnv(t, nil)
	owner := e.account("owner", "", client.RoleOwner)
	buyer := e.account("buyer", "1000", client.RoleBuyer)
	const mk = "h200.us-west"
	r := subscribe(t, e.anon, "book:"+mk, "trades:"+mk, "prices")
	snaps := map[string]client.Message{}
	for len(snaps) < 3 {
		m := r.next(is(client.MsgSnapshot, ""))
		snaps[m.Channel] = m
	}
	var book client.Book
	if err := snaps["book:"+mk].Decode(&book); err != nil || book.Market != mk {
		t.Fatalf("book snapshot: %v %+v", err, book)
	}
	var trades []client.Trade
	if err := snaps["trades:"+mk].Decode(&trades); err != nil || len(trades) != 0 {
		t.Fatalf("trades snapshot: %v %+v", err, trades)
	}

	l, err := owner.PlaceListing(bg, client.ListingRequest{Market: mk, Quantity: 4, Start: hour(0), End: hour(12), ReservePrice: client.FixedPrice("3.00")})
	if err != nil {
		t.Fatal(err)
	}
	m := r.next(is(client.MsgUpdate, "book:"+mk))
	if err := m.Decode(&book); err != nil || len(book.Asks) != 1 || book.Asks[0].Quantity != 4 {
		t.Errorf("book after listing: %v %+v", err, book)
	}
	b, err := buyer.PlaceBid(bg, client.BidRequest{Type: client.BidReserved, Market: mk, Quantity: 2, Start: hour(2), End: hour(4), LimitPrice: client.FixedPrice("3.50")})
	if err != nil || len(b.Fills) != 1 {
		t.Fatalf("bid: %v %+v", err, b)
	}
	m = r.next(is(client.MsgUpdate, "trades:"+mk))
	var tr client.Trade
	if err := m.Decode(&tr); err != nil {
		t.Fatal(err)
	}
	if tr.ID != b.Fills[0].ID || tr.BidID != b.ID || tr.ListingID != l.ID || tr.Market != mk || tr.Price != "3.00" || tr.Quantity != 2 {
		t.Errorf("trade update: got %+v, want the bid's fill %+v", tr, b.Fills[0])
	}
	if m.TS.IsZero() {
		t.Errorf("trade update without ts")
	}
	r.next(is(client.MsgUpdate, "prices"))

	// A second subscriber gets the trade in its snapshot, at the same seq.
	r2 := subscribe(t, e.anon, "trades:"+mk)
	m2 := r2.next(is(client.MsgSnapshot, "trades:"+mk))
	if err := m2.Decode(&trades); err != nil || len(trades) != 1 || trades[0].ID != tr.ID {
		t.Errorf("second snapshot: %v %+v", err, trades)
	}
	if m2.Seq != r.seqs["trades:"+mk] {
		t.Errorf("second snapshot seq: got %d, want %d", m2.Seq, r.seqs["trades:"+mk])
	}
}

func TestFeedUser(t *testing.T) {
	e := newEnv(t, nil)
	owner := e.account("owner", "", client.RoleOwner)
	a := e.account("a", "1000", client.RoleBuyer)
	b := e.account("b", "1000", client.RoleBuyer)
	const mk = "l40s.eu-west"
	if _, err := owner.PlaceListing(bg, client.ListingRequest{Market: mk, Quantity: 2, Start: hour(0), End: hour(12), ReservePrice: client.FixedPrice("1.00"), SpotPriceFloor: client.FixedPrice("0.50")}); err != nil {
		t.Fatal(err)
	}
	r := subscribe(t, a.Client, "user")
	if m := r.next(func(m client.Message) bool { return m.Type == client.MsgAuth }); !m.OK {
		t.Fatalf("auth: got %+v", m)
	}
	snap := r.next(is(client.MsgSnapshot, "user"))
	var acct client.Account
	if err := snap.Decode(&acct); err != nil || acct.ID != a.id || acct.Balance != "1000.00" {
		t.Fatalf("user snapshot: %v %+v", err, acct)
	}

	bidA, err := a.PlaceBid(bg, client.BidRequest{Type: client.BidSpot, Market: mk, Quantity: 2, LimitPrice: client.FixedPrice("2.00")})
	if err != nil || bidA.Allocated != 2 {
		t.Fatalf("spot a: %v %+v", err, bidA)
	}
	if _, err := b.PlaceBid(bg, client.BidRequest{Type: client.BidSpot, Market: mk, Quantity: 2, LimitPrice: client.FixedPrice("3.00")}); err != nil {
		t.Fatal(err)
	}
	type userEvent struct {
		Event     string `json:"event"`
		BidID     string `json:"bid_id"`
		Allocated *int   `json:"allocated"`
		Reason    string `json:"reason"`
		PreemptAt string `json:"preempt_at"`
		Price     string `json:"price"`
		Fill      *client.Trade
	}
	var ev userEvent
	// Outbid, a's GPUs go under the market's preemption notice (API.md
	// "Spot preemption notice"): spot_preempting now, spot_preempted only
	// at the deadline, minutes away.
	r.next(func(m client.Message) bool {
		if m.Type != client.MsgUpdate || m.Channel != "user" {
			return false
		}
		ev = userEvent{}
		_ = m.Decode(&ev)
		return ev.Event == "spot_preempting"
	})
	if at, err := time.Parse(time.RFC3339, ev.PreemptAt); ev.BidID != bidA.ID || err != nil || !at.After(time.Now()) || ev.Price == "" {
		t.Errorf("preemption notice: got %+v, want bid %s, a preempt_at ahead and a price", ev, bidA.ID)
	}

	bid, err := a.PlaceBid(bg, client.BidRequest{Type: client.BidReserved, Market: mk, Quantity: 1, Start: hour(3), End: hour(5), LimitPrice: client.FixedPrice("1.00")})
	if err != nil || len(bid.Fills) != 1 {
		t.Fatalf("reserved: %v %+v", err, bid)
	}
	r.next(func(m client.Message) bool {
		if m.Type != client.MsgUpdate || m.Channel != "user" {
			return false
		}
		ev = userEvent{}
		_ = m.Decode(&ev)
		return ev.Event == "filled"
	})
	if ev.Fill == nil || ev.Fill.ID != bid.Fills[0].ID {
		t.Errorf("fill event: got %+v, want fill %s", ev, bid.Fills[0].ID)
	}
	r.next(func(m client.Message) bool {
		if m.Type != client.MsgUpdate || m.Channel != "user" {
			return false
		}
		ev = userEvent{}
		_ = m.Decode(&ev)
		return ev.Event == "balance_changed"
	})
}

// TestFeedUserLedger: every money movement of the account reaches its user
// channel as a ledger event carrying the same line as its statement, and
// the lines chain from the snapshot's balance.
func TestFeedUserLedger(t *testing.T) {
	e := newEnv(t, nil)
	owner := e.account("owner", "", client.RoleOwner)
	a := e.account("a", "1000", client.RoleBuyer)
	const mk = "h200.us-west"
	r := subscribe(t, a.Client, "user")
	if m := r.next(is(client.MsgAuth, "")); !m.OK {
		t.Fatalf("auth: got %+v", m)
	}
	var acct client.Account
	if err := r.next(is(client.MsgSnapshot, "user")).Decode(&acct); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.Deposit(bg, a.id, "25.50"); err != nil {
		t.Fatal(err)
	}
	if _, err := owner.PlaceListing(bg, client.ListingRequest{Market: mk, Quantity: 4, Start: hour(0), End: hour(12), ReservePrice: client.FixedPrice("3.00")}); err != nil {
		t.Fatal(err)
	}
	bid, err := a.PlaceBid(bg, client.BidRequest{Type: client.BidReserved, Market: mk, Quantity: 2, Start: hour(2), End: hour(4), LimitPrice: client.FixedPrice("3.50")})
	if err != nil || len(bid.Fills) != 1 {
		t.Fatalf("bid: %v %+v", err, bid)
	}

	type ledgerEvent struct {
		Event        string  `json:"event"`
		Kind         string  `json:"kind"`
		Amount       string  `json:"amount"`
		BalanceAfter string  `json:"balance_after"`
		Ref          *string `json:"ref"`
		At           string  `json:"at"`
	}
	var got []ledgerEvent
	for len(got) < 2 {
		r.next(func(m client.Message) bool {
			var ev ledgerEvent
			if m.Type != client.MsgUpdate || m.Channel != "user" || m.Decode(&ev) != nil || ev.Event != "ledger" {
				return false
			}
			got = append(got, ev)
			return true
		})
	}

	page, err := a.Statement(bg, client.StatementQuery{})
	if err != nil {
		t.Fatal(err)
	}
	// The statement's lines after the snapshot, without the closing
	// spot_accrued line of a period that ends now.
	var want []client.StatementLine
	for _, l := range page.Items {
		if l.Kind != "spot_accrued" {
			want = append(want, l)
		}
	}
	if len(want) < 2 {
		t.Fatalf("statement: got %+v, want the deposits and the fill", page.Items)
	}
	want = want[len(want)-2:]
	if want[0].Kind != "deposit" || want[1].Kind != "reserved_fill" || want[1].Ref != bid.Fills[0].ID {
		t.Fatalf("statement tail: got %+v, want a deposit and the fill %s", want, bid.Fills[0].ID)
	}
	prev := decimal.RequireFromString(acct.Balance)
	for i, ev := range got {
		w := want[i]
		if ev.Ref == nil {
			t.Errorf("ledger event %d without ref: %+v", i, ev)
			continue
		}
		at, err := time.Parse(time.RFC3339, ev.At)
		if ev.Kind != w.Kind || ev.Amount != w.Amount || ev.BalanceAfter != w.BalanceAfter || *ev.Ref != w.Ref || err != nil || !at.Equal(w.At) {
			t.Errorf("ledger event %d: got %+v (ref %q), want the statement line %+v", i, ev, *ev.Ref, w)
		}
		if next := prev.Add(decimal.RequireFromString(ev.Amount)); !next.Equal(decimal.RequireFromString(ev.BalanceAfter)) {
			t.Errorf("ledger event %d: balance_after %s, want %s + %s", i, ev.BalanceAfter, prev, ev.Amount)
		}
		prev = decimal.RequireFromString(ev.BalanceAfter)
	}
	if got[0].Amount != "25.50" {
		t.Errorf("deposit line amount: got %s, want 25.50", got[0].Amount)
	}
}

func TestFeedErrors(t *testing.T) {
	e := newEnv(t, nil)
	r := subscribe(t, e.anon)
	codes := func(channels ...string) string {
		if err := r.f.Subscribe(channels); err != nil {
			t.Fatal(err)
		}
		return r.next(is(client.MsgError, "")).Code
	}
	if got := codes("weather"); got != "unknown_channel" {
		t.Errorf("unknown channel: got %q", got)
	}
	if got := codes("book:nope.nowhere"); got != "unknown_channel" {
		t.Errorf("unknown market: got %q", got)
	}
	if got := codes("user"); got != "unauthorized" {
		t.Errorf("user without auth: got %q", got)
	}
	// A bad key is refused.
	bad := subscribe(t, client.New(e.url, client.WithAPIKey("gpux_bogus")), "user")
	if m := bad.next(func(m client.Message) bool { return m.Type == client.MsgAuth }); m.OK {
		t.Errorf("auth with a bogus key: got ok")
	}
	// Plain HTTP to the feed is a problem, not a hang.
	status, hdr, body := e.raw("GET", "/v1/ws", "", nil)
	wantProblem(t, status, hdr, body, http.StatusBadRequest, "upgrade_required", "")
	// Foreign origins are refused; localhost is fine.
	d := websocket.Dialer{}
	wsURL := "ws" + strings.TrimPrefix(e.url, "http") + "/v1/ws"
	if _, resp, err := d.Dial(wsURL, http.Header{"Origin": {"https://evil.example"}}); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("foreign origin: got %v %v, want 403", resp, err)
	}
	c, _, err := d.Dial(wsURL, http.Header{"Origin": {"http://localhost:3000"}})
	if err != nil {
		t.Fatalf("localhost origin: %v", err)
	}
	c.Close()
}

// TestFeedSlowClient: a client that never reads is dropped once its queue
// is full; another keeps receiving with no gap.
func TestFeedSlowClient(t *testing.T) {
	e := newEnv(t, func(c *api.Config) { c.SendQueue = 16 })
	owner := e.account("owner", "", client.RoleOwner)
	buyer := e.account("buyer", "100000", client.RoleBuyer)
	const mk = "a100-40gb.us-east"
	if _, err := owner.PlaceListing(bg, client.ListingRequest{Market: mk, Quantity: 2, Start: hour(0), End: hour(12), ReservePrice: client.FixedPrice("9.00"), SpotPriceFloor: client.FixedPrice("0.10")}); err != nil {
		t.Fatal(err)
	}
	// The slow client: a tiny receive buffer, and it never reads.
	d := websocket.Dialer{NetDial: func(network, addr string) (net.Conn, error) {
		nd := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048) })
			return errors.Join(err, serr)
		}}
		return nd.Dial(network, addr)
	}}
	slow, _, err := d.Dial("ws"+strings.TrimPrefix(e.url, "http")+"/v1/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	if err := slow.WriteJSON(map[string]any{"op": "subscribe", "channels": []string{"prices", "book:" + mk}}); err != nil {
		t.Fatal(err)
	}
	fast := subscribe(t, e.anon, "book:"+mk)
	fast.next(is(client.MsgSnapshot, "book:"+mk))

	dropped := func() float64 {
		m, err := e.anon.Metrics(bg)
		if err != nil {
			t.Fatal(err)
		}
		re := regexp.MustCompile(`(?m)^gpux_ws_dropped_clients_total ([0-9.e+]+)$`)
		sm := re.FindSubmatch(m)
		if sm == nil {
			t.Fatal("no gpux_ws_dropped_clients_total")
		}
		v, _ := strconv.ParseFloat(string(sm[1]), 64)
		return v
	}
	var ids []string
	for i := 0; i < 5000 && (i%10 != 0 || dropped() == 0); i++ {
		// Two GPUs, many bidders: each new spot bid changes the book
		// (waiting GPUs) and mostly the clearing price, so the large
		// prices channel updates too.
		b, err := buyer.PlaceBid(bg, client.BidRequest{Type: client.BidSpot, Market: mk, Quantity: 1, LimitPrice: client.FixedPrice(strconv.Itoa(1+(i*37)%97) + ".00")})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, b.ID)
		if len(ids) > 150 {
			if _, err := buyer.CancelBid(bg, ids[0]); err != nil {
				t.Fatal(err)
			}
			ids = ids[1:]
		}
		if i%5 == 0 {
			// The fast reader keeps up, checking seqs: a few updates at a
			// time stay far below the 16-message queue even on a loaded
			// machine.
			fast.drain()
		}
	}
	if dropped() == 0 {
		t.Fatal("the slow client was never dropped")
	}
	// The fast client was not dropped: it still gets updates, with no gap.
	fast.drain()
	if _, err := buyer.PlaceBid(bg, client.BidRequest{Type: client.BidSpot, Market: mk, Quantity: 3, LimitPrice: client.FixedPrice("77.00")}); err != nil {
		t.Fatal(err)
	}
	fast.next(is(client.MsgUpdate, "book:"+mk))
	// The slow client's connection ends with "try again later".
	_ = slow.SetReadDeadline(time.Now().Add(feedWait))
	for {
		if _, _, err := slow.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) && (ce.Code != websocket.CloseTryAgainLater || ce.Text != "slow consumer") {
				t.Errorf("slow client closed with %d %q, want %d %q", ce.Code, ce.Text, websocket.CloseTryAgainLater, "slow consumer")
			}
			break
		}
	}
}

// TestFeedShutdown: Shutdown closes feeds with 1001.
func TestFeedShutdown(t *testing.T) {
	e := newEnv(t, nil)
	d := websocket.Dialer{}
	c, _, err := d.Dial("ws"+strings.TrimPrefix(e.url, "http")+"/v1/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WriteJSON(map[string]any{"op": "subscribe", "channels": []string{"prices"}}); err != nil {
		t.Fatal(err)
	}
	_, b, err := c.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	var snap struct {
		Type string `json:"type"`
		TS   string `json:"ts"`
	}
	_ = json.Unmarshal(b, &snap)
	if snap.Type != "snapshot" || !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`).MatchString(snap.TS) {
		t.Errorf("snapshot: got type %q ts %q, want RFC 3339 with milliseconds", snap.Type, snap.TS)
	}
	e.stop()
	_ = c.SetReadDeadline(time.Now().Add(feedWait))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
			t.Errorf("after shutdown: got %v, want close 1001", err)
		}
		break
	}
}

// TestFeedPricesDelta: after its snapshot (every market) the prices channel
// sends only the markets that changed, as {"markets": [...]}.
func TestFeedPricesDelta(t *testing.T) {
	e := newEnv(t, nil)
	owner := e.account("owner", "", client.RoleOwner)
	buyer := e.account("buyer", "1000", client.RoleBuyer)
	feed := subscribe(t, e.anon, "prices")
	var all []client.PriceRow
	if err := feed.next(is(client.MsgSnapshot, "prices")).Decode(&all); err != nil || len(all) < 2 {
		t.Fatalf("snapshot: %v, %d rows", err, len(all))
	}
	const mk = "l4.us-west"
	if _, err := owner.PlaceListing(bg, client.ListingRequest{Market: mk, Quantity: 2, Start: hour(0), End: hour(10), ReservePrice: client.FixedPrice("0.50")}); err != nil {
		t.Fatal(err)
	}
	if _, err := buyer.PlaceBid(bg, client.BidRequest{Type: client.BidReserved, Market: mk, Quantity: 2, Start: hour(2), End: hour(4), LimitPrice: client.FixedPrice("0.60")}); err != nil {
		t.Fatal(err)
	}
	feed.next(func(m client.Message) bool {
		if m.Type != client.MsgUpdate || m.Channel != "prices" {
			return false
		}
		var up struct {
			Markets []client.PriceRow `json:"markets"`
		}
		if err := json.Unmarshal(m.Data, &up); err != nil {
			t.Fatalf("update %s: %v", m.Data, err)
		}
		if len(up.Markets) == 0 || len(up.Markets) >= len(all) {
			t.Fatalf("update holds %d of %d markets, want only those that changed", len(up.Markets), len(all))
		}
		for _, r := range up.Markets {
			if r.Market == mk && r.LastTradePrice != nil {
				return true
			}
		}
		return false
	})
}
