package api_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/gpux/gpux/api"
	"github.com/gpux/gpux/client"
	"github.com/gpux/gpux/engine"
)

// fakeSource is a hand-written api.FeedSource: the snapshots the test
// sets, per shard and channel. (Package relay's tests run the real one,
// engine nodes and Redis; this one reaches the relay hub's corners.)
type fakeSource struct {
	mu      sync.Mutex
	shards  []string
	route   string                   // the shard of every non-prices channel
	snaps   map[string]func() []byte // shard/channel → its snapshot now; absent = unknown
	fetches map[string]int
	down    map[string]bool // shards without a leader
}

func (f *fakeSource) Route(string) string { return f.route }

func (f *fakeSource) Shards() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.shards...)
}

func (f *fakeSource) Snapshot(_ context.Context, shard, channel string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fetches[shard+"/"+channel]++
	if f.down[shard] {
		return nil, fmt.Errorf("fake: shard %s has no leader", shard)
	}
	s, ok := f.snaps[shard+"/"+channel]
	if !ok {
		return nil, fmt.Errorf("fake: %s/%s: %w", shard, channel, api.ErrUnknownChannel)
	}
	return s(), nil
}

func (f *fakeSource) set(shard, channel string, snap func() []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.snaps[shard+"/"+channel] = snap
}

func (f *fakeSource) fetched(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fetches[key]
}

func frame(channel, typ string, seq uint64, data string) []byte {
	return fmt.Appendf(nil, `{"channel":%q,"type":%q,"seq":%d,"data":%s,"ts":"2026-11-29T00:00:00.000Z"}`, channel, typ, seq, data)
}

func fixed(b []byte) func() []byte { return func() []byte { return b } }

// startRelayFeed serves a RelayFeed over src on a loopback port.
func startRelayFeed(t *testing.T, src api.FeedSource, account engine.ID) (*api.RelayFeed, string) {
	t.Helper()
	f := api.NewRelayFeed(api.RelayConfig{
		Source:           src,
		Authenticate:     func(key string) (engine.ID, bool) { return account, key == "k" },
		FeedConnsPerAddr: -1,
		Logger:           slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/v1/ws", f.Upgrade, f.Handler())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go app.Listener(f.Listener(ln))
	t.Cleanup(func() {
		f.Close()
		_ = app.ShutdownWithTimeout(5 * time.Second)
	})
	return f, "http://" + ln.Addr().String()
}

// TestRelayFeedPrices: prices across shards has the sum of the shards'
// seqs and their rows in shard order; a shard's gap fetches its part again
// and subscribers get a fresh snapshot.
func TestRelayFeedPrices(t *testing.T) {
	src := &fakeSource{shards: []string{"a", "b"}, route: "a", snaps: map[string]func() []byte{}, fetches: map[string]int{}}
	src.set("a", "prices", fixed(frame("prices", "snapshot", 10, `[{"market":"x.a","v":1}]`)))
	src.set("b", "prices", fixed(frame("prices", "snapshot", 20, `[{"market":"y.b","v":1}]`)))
	f, url := startRelayFeed(t, src, engine.ID{})
	r := subscribe(t, client.New(url), "prices")
	snap := r.next(is(client.MsgSnapshot, "prices"))
	if got, want := string(compactJSON(t, snap.Data)), `[{"market":"x.a","v":1},{"market":"y.b","v":1}]`; snap.Seq != 30 || got != want {
		t.Fatalf("snapshot: seq %d %s, want 30 %s", snap.Seq, got, want)
	}

	f.Deliver("b", []api.FeedMessage{{Channel: "prices", Seq: 21, Frame: frame("prices", "update", 21, `{"markets":[{"market":"y.b","v":2}]}`)}})
	up := r.next(is(client.MsgUpdate, "prices"))
	if got, want := string(compactJSON(t, up.Data)), `{"markets":[{"market":"y.b","v":2}]}`; up.Seq != 31 || got != want {
		t.Errorf("update: seq %d %s, want 31 %s", up.Seq, got, want)
	}

	// Shard a skips 11: its part is fetched again (now at 12) and the
	// subscriber gets the whole table at 12 + 21.
	src.set("a", "prices", fixed(frame("prices", "snapshot", 12, `[{"market":"x.a","v":3}]`)))
	f.Deliver("a", []api.FeedMessage{{Channel: "prices", Seq: 12, Frame: frame("prices", "update", 12, `{"markets":[{"market":"x.a","v":3}]}`)}})
	snap = r.next(is(client.MsgSnapshot, "prices"))
	if got, want := string(compactJSON(t, snap.Data)), `[{"market":"x.a","v":3},{"market":"y.b","v":2}]`; snap.Seq != 33 || got != want {
		t.Errorf("after a gap: seq %d %s, want 33 %s", snap.Seq, got, want)
	}
	late := subscribe(t, client.New(url), "prices").next(is(client.MsgSnapshot, "prices"))
	if late.Seq != 33 || string(compactJSON(t, late.Data)) != string(compactJSON(t, snap.Data)) {
		t.Errorf("late snapshot: seq %d %s, want 33 %s", late.Seq, late.Data, snap.Data)
	}
}

// TestRelayFeedUserTail: a user channel's new subscriber gets the last
// snapshot and the updates since; once those are too many, a fresher
// snapshot first. An unknown channel answers unknown_channel.
func TestRelayFeedUserTail(t *testing.T) {
	account := engine.ID{7}
	ch := "user:" + account.String()
	src := &fakeSource{shards: []string{"a"}, route: "a", snaps: map[string]func() []byte{}, fetches: map[string]int{}}
	var (
		mu  sync.Mutex
		now uint64 = 5
	)
	src.set("a", ch, func() []byte {
		mu.Lock()
		defer mu.Unlock()
		return frame("user", "snapshot", now, fmt.Sprintf(`{"at_seq":%d}`, now))
	})
	f, url := startRelayFeed(t, src, account)
	authed := client.New(url, client.WithAPIKey("k"))
	first := subscribe(t, authed, "user")
	if m := first.next(is(client.MsgSnapshot, "user")); m.Seq != 5 {
		t.Fatalf("snapshot seq %d, want 5", m.Seq)
	}
	deliver := func(from, to uint64) {
		t.Helper()
		var msgs []api.FeedMessage
		for s := from; s <= to; s++ {
			msgs = append(msgs, api.FeedMessage{Channel: ch, Seq: s, Frame: frame("user", "update", s, `{"event":"balance_changed"}`)})
		}
		mu.Lock()
		now = to
		mu.Unlock()
		f.Deliver("a", msgs)
		for s := from; s <= to; s++ {
			first.next(is(client.MsgUpdate, "user")) // checks the seqs
		}
	}
	deliver(6, 8)
	second := subscribe(t, authed, "user")
	if m := second.next(is(client.MsgSnapshot, "user")); m.Seq != 5 {
		t.Errorf("second subscriber's snapshot: seq %d, want the stored one (5)", m.Seq)
	}
	second.next(func(m client.Message) bool { return m.Seq == 8 }) // 6, 7, 8 in order

	// Past the tail a new subscriber may get; in steps the first
	// subscriber's send queue (256) holds.
	for from := uint64(9); from <= 300; from += 50 {
		deliver(from, min(from+49, 300))
	}
	third := subscribe(t, authed, "user")
	m := third.next(is(client.MsgSnapshot, "user"))
	if m.Seq < 300-64 {
		t.Errorf("third subscriber's snapshot: seq %d, want a fresh one (at most 64 behind 300)", m.Seq)
	}
	if m.Seq < 300 {
		third.next(func(m client.Message) bool { return m.Seq == 300 }) // the rest in order
	}
	if n := src.fetched("a/" + ch); n < 2 {
		t.Errorf("snapshot fetched %d times, want a refresh", n)
	}

	t.Run("unknown channel", func(t *testing.T) {
		if err := first.f.Subscribe([]string{"book:nope.nowhere"}); err != nil {
			t.Fatal(err)
		}
		if m := first.next(is(client.MsgError, "")); m.Code != api.CodeUnknownChannel || !strings.Contains(m.Detail, "book:nope.nowhere") {
			t.Errorf("got %s %q, want unknown_channel", m.Code, m.Detail)
		}
	})
}

// TestRelayFeedPricesShardDown: prices answers without a shard that has
// no leader, and sends a fresh snapshot with its rows once it has one.
func TestRelayFeedPricesShardDown(t *testing.T) {
	src := &fakeSource{shards: []string{"a", "b"}, route: "a", snaps: map[string]func() []byte{}, fetches: map[string]int{}, down: map[string]bool{"b": true}}
	src.set("a", "prices", fixed(frame("prices", "snapshot", 10, `[{"market":"x.a","v":1}]`)))
	src.set("b", "prices", fixed(frame("prices", "snapshot", 20, `[{"market":"y.b","v":1}]`)))
	_, url := startRelayFeed(t, src, engine.ID{})
	r := subscribe(t, client.New(url), "prices")
	snap := r.next(is(client.MsgSnapshot, "prices"))
	if got, want := string(compactJSON(t, snap.Data)), `[{"market":"x.a","v":1}]`; snap.Seq != 10 || got != want {
		t.Fatalf("without b: seq %d %s, want 10 %s", snap.Seq, got, want)
	}
	src.mu.Lock()
	src.down["b"] = false
	src.mu.Unlock()
	snap = r.next(is(client.MsgSnapshot, "prices")) // b's retry finds it
	if got, want := string(compactJSON(t, snap.Data)), `[{"market":"x.a","v":1},{"market":"y.b","v":1}]`; snap.Seq != 30 || got != want {
		t.Errorf("with b back: seq %d %s, want 30 %s", snap.Seq, got, want)
	}
}

// TestRelayFeedUserShards: with several shards an account's user channel
// follows every shard: its snapshot sums the wallets (and lists them), its
// seq is the sum of the shards' seqs, each event names its shard; a shard
// where the account is created later joins with a fresh snapshot; a new
// subscriber gets the same seqs.
func TestRelayFeedUserShards(t *testing.T) {
	account := engine.ID{9}
	ch := "user:" + account.String()
	src := &fakeSource{shards: []string{"a", "b"}, route: "a", snaps: map[string]func() []byte{}, fetches: map[string]int{}}
	acct := func(bal string) string {
		return fmt.Sprintf(`{"id":%q,"name":"x","roles":["buyer"],"balance":%q,"held":"1.00","available":"0.00","created_at":"2026-11-29T00:00:00Z"}`, account.String(), bal)
	}
	src.set("a", ch, fixed(frame("user", "snapshot", 5, acct("10.00"))))
	f, url := startRelayFeed(t, src, account)
	authed := client.New(url, client.WithAPIKey("k"))
	type userSnap struct {
		Balance string `json:"balance"`
		Held    string `json:"held"`
		Wallets []struct {
			Shard   string `json:"shard"`
			Balance string `json:"balance"`
		} `json:"wallets"`
	}
	snapOf := func(m client.Message) userSnap {
		t.Helper()
		var s userSnap
		if err := m.Decode(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	shardOf := func(m client.Message) string {
		t.Helper()
		var e struct{ Shard string }
		if err := m.Decode(&e); err != nil {
			t.Fatal(err)
		}
		return e.Shard
	}
	update := func(shard string, seq uint64) {
		f.Deliver(shard, []api.FeedMessage{{Channel: ch, Seq: seq, Frame: frame("user", "update", seq, `{"event":"balance_changed"}`)}})
	}

	first := subscribe(t, authed, "user")
	m := first.next(is(client.MsgSnapshot, "user"))
	if s := snapOf(m); m.Seq != 5 || s.Balance != "10.00" || len(s.Wallets) != 1 || s.Wallets[0].Shard != "a" {
		t.Fatalf("snapshot without a wallet on b: seq %d %+v, want seq 5, balance 10.00, wallet a", m.Seq, s)
	}
	update("a", 6)
	if m := first.next(is(client.MsgUpdate, "user")); m.Seq != 6 || shardOf(m) != "a" {
		t.Fatalf("update of a: seq %d shard %q, want 6 a", m.Seq, shardOf(m))
	}

	// The account is created on b (its hub's seqs start far up): b joins.
	src.set("b", ch, fixed(frame("user", "snapshot", 1001, acct("5.50"))))
	update("b", 1001)
	m = first.next(is(client.MsgSnapshot, "user"))
	if s := snapOf(m); m.Seq != 5+1001 || s.Balance != "15.50" || s.Held != "2.00" || len(s.Wallets) != 2 {
		t.Fatalf("snapshot with b: seq %d %+v, want seq 1006, balance 15.50 over 2 wallets", m.Seq, s)
	}
	if m := first.next(is(client.MsgUpdate, "user")); m.Seq != 1007 || shardOf(m) != "a" {
		t.Fatalf("a's update after the snapshot: seq %d shard %q, want 1007 a", m.Seq, shardOf(m))
	}
	update("b", 1002)
	update("a", 7)
	for _, want := range []struct {
		seq   uint64
		shard string
	}{{1008, "b"}, {1009, "a"}} {
		if m := first.next(is(client.MsgUpdate, "user")); m.Seq != want.seq || shardOf(m) != want.shard {
			t.Errorf("update: seq %d shard %q, want %d %s", m.Seq, shardOf(m), want.seq, want.shard)
		}
	}
	// A new subscriber: the stored snapshots and every update since,
	// ending at the same seq.
	second := subscribe(t, authed, "user")
	if m := second.next(is(client.MsgSnapshot, "user")); m.Seq != 1006 {
		t.Errorf("second subscriber's snapshot: seq %d, want 1006", m.Seq)
	}
	second.next(func(m client.Message) bool { return m.Seq == 1009 }) // 1007..1009 in order

	t.Run("a shard down", func(t *testing.T) {
		third := engine.ID{11}
		ch3 := "user:" + third.String()
		src.mu.Lock()
		src.down = map[string]bool{"b": true}
		src.mu.Unlock()
		src.set("a", ch3, fixed(frame("user", "snapshot", 3, acct("1.00"))))
		src.set("b", ch3, fixed(frame("user", "snapshot", 2000, acct("2.00"))))
		_, url := startRelayFeed(t, src, third)
		r := subscribe(t, client.New(url, client.WithAPIKey("k")), "user")
		m := r.next(is(client.MsgSnapshot, "user"))
		if s := snapOf(m); m.Seq != 3 || s.Balance != "1.00" || len(s.Wallets) != 1 {
			t.Errorf("snapshot with b down: seq %d %+v, want a's alone at 3", m.Seq, s)
		}
		src.mu.Lock()
		src.down = nil
		src.mu.Unlock()
		m = r.next(is(client.MsgSnapshot, "user")) // b is fetched again
		if s := snapOf(m); m.Seq != 2003 || s.Balance != "3.00" || len(s.Wallets) != 2 {
			t.Errorf("snapshot once b is back: seq %d %+v, want 2003, 3.00 over 2 wallets", m.Seq, s)
		}
	})

	t.Run("no shard knows the account", func(t *testing.T) {
		other := engine.ID{10}
		_, url := startRelayFeed(t, src, other)
		r := subscribe(t, client.New(url, client.WithAPIKey("k")), "user")
		if m := r.next(is(client.MsgError, "")); m.Code != api.CodeUnknownChannel {
			t.Errorf("got %s %q, want unknown_channel", m.Code, m.Detail)
		}
	})
}
