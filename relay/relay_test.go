package relay_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/gofiber/fiber/v2"
	"github.com/redis/go-redis/v9"

	"github.com/gpux/gpux/api"
	"github.com/gpux/gpux/client"
	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/pricing"
	"github.com/gpux/gpux/relay"
	"github.com/gpux/gpux/sequencer"
	"github.com/gpux/gpux/store"
	"github.com/gpux/gpux/store/redistest"
)

const adminKey = "relay-test-admin"

// wait bounds every wait for a feed message: it only turns a hang into a
// failure (far above any real delay on a loaded machine).
const wait = 60 * time.Second

var bg = context.Background()

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// cluster is the Redis of a test: the URL of the engines' journals, the
// client of feeds, leases and the registry (the same Redis, or a Redis
// Cluster), and a registry of its own (its hash tag is a random shard
// name, cleaned up).
type cluster struct {
	tb       testing.TB
	url      string
	rdb      redis.UniversalClient
	registry string
}

func newCluster(tb testing.TB) *cluster {
	tb.Helper()
	url := redistest.URL(tb)
	opt, err := store.ClientOptions(url)
	if err != nil {
		tb.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	tb.Cleanup(func() { rdb.Close() })
	return &cluster{tb: tb, url: url, rdb: rdb, registry: redistest.Shard(tb)}
}

// engineNode is an in-process engine node: a sequencer over a Redis
// journal, the API with a feed publisher, and the lease and shards keys an
// API node finds it by.
type engineNode struct {
	tb      testing.TB
	shard   string
	url     string
	addr    string
	srv     *api.Server
	seq     *sequencer.Sequencer
	pub     *relay.Publisher
	journal *store.RedisJournal
	admin   *client.Client
	leader  atomic.Bool
	stop    func()
}

func (c *cluster) startEngine(shard string, markets []engine.Market) *engineNode {
	tb := c.tb
	tb.Helper()
	j, err := store.OpenRedis(bg, c.url, shard)
	if err != nil {
		tb.Fatalf("open journal: %v", err)
	}
	seq, err := sequencer.New(sequencer.Config{Journal: j, Markets: markets, TickInterval: -1, Logger: quiet()})
	if err != nil {
		tb.Fatal(err)
	}
	n := &engineNode{tb: tb, shard: shard, seq: seq, journal: j}
	n.leader.Store(true)
	n.pub = relay.NewPublisher(relay.PublisherConfig{Redis: c.rdb, Shard: shard, Leader: n.leader.Load, Logger: quiet()})
	n.srv = api.NewServer(api.Config{Sequencer: seq, AdminKey: adminKey, FeedSink: n.pub, Logger: quiet()})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go n.srv.Listener(ln)
	if err := seq.Recover(bg); err != nil {
		tb.Fatalf("recover: %v", err)
	}
	ctx, cancel := context.WithCancel(bg)
	done := make(chan struct{})
	go func() {
		defer close(done)
		seq.Run(ctx)
	}()
	n.addr = ln.Addr().String()
	n.url = "http://" + n.addr
	n.admin = client.New(n.url, client.WithAPIKey(adminKey))
	stopped := false
	n.stop = func() {
		if stopped {
			return
		}
		stopped = true
		sctx, scancel := context.WithTimeout(bg, 10*time.Second)
		defer scancel()
		if err := n.srv.Shutdown(sctx); err != nil {
			tb.Errorf("shutdown: %v", err)
		}
		n.pub.Close()
		if err := seq.Close(sctx); err != nil {
			tb.Errorf("close sequencer: %v", err)
		}
		cancel()
		<-done
		j.Close()
	}
	tb.Cleanup(n.stop)
	if out, err := seq.Submit(bg, engine.Command{Kind: engine.CmdSetReferenceRates, Rates: pricing.Default().EngineRates()}, nil); err != nil || out.Err != nil {
		tb.Fatalf("set reference rates: %v %v", err, out.Err)
	}
	// What the lease helper's engine nodes write: this node leads shard.
	if err := c.rdb.HSet(bg, "gpux:{"+shard+"}:lease", "holder", n.addr, "addr", n.addr, "token", 1).Err(); err != nil {
		tb.Fatal(err)
	}
	if err := c.rdb.SAdd(bg, "gpux:{"+c.registry+"}:shards", shard).Err(); err != nil {
		tb.Fatal(err)
	}
	return n
}

// party is an account made on an engine node and registered for API nodes.
type party struct {
	id, key string
}

func (c *cluster) account(n *engineNode, name, money string, roles ...string) party {
	tb := c.tb
	tb.Helper()
	a, err := n.admin.CreateAccount(bg, client.CreateAccountRequest{Name: name, Roles: roles})
	if err != nil {
		tb.Fatalf("create account %s: %v", name, err)
	}
	if money != "" {
		if _, err := n.admin.Deposit(bg, a.ID, money); err != nil {
			tb.Fatalf("deposit: %v", err)
		}
	}
	h := sha256.Sum256([]byte(a.APIKey))
	if err := c.rdb.HSet(bg, "gpux:{"+c.registry+"}:keys", hex.EncodeToString(h[:]), a.ID).Err(); err != nil {
		tb.Fatal(err)
	}
	return party{id: a.ID, key: a.APIKey}
}

// relayNode starts an API node's feed (a Relay behind its own Fiber app)
// and returns its base URL.
func (c *cluster) relayNode(mainShard string, mod func(*relay.Config)) string {
	tb := c.tb
	tb.Helper()
	cfg := relay.Config{Redis: c.rdb, Registry: c.registry, MainShard: mainShard, AdminKey: adminKey, ShardsEvery: 50 * time.Millisecond, FeedConnsPerAddr: -1, Logger: quiet()}
	if mod != nil {
		mod(&cfg)
	}
	r := relay.New(cfg)
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/v1/ws", r.Upgrade, r.Handler())
	app.Get("/metrics", r.Feed().Metrics())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go app.Listener(r.Listener(ln))
	tb.Cleanup(func() {
		r.Close()
		_ = app.ShutdownWithTimeout(5 * time.Second)
	})
	return "http://" + ln.Addr().String()
}

// reader reads a feed, checking that every channel's seq has no gap
// (a snapshot may jump: it starts the channel again).
type reader struct {
	tb   testing.TB
	name string
	f    *client.Feed
	seqs map[string]uint64
	// data is what each channel showed at each seq (its data, compacted).
	data map[string]map[uint64]string
}

func subscribe(tb testing.TB, name string, c *client.Client, channels ...string) *reader {
	tb.Helper()
	ctx, cancel := context.WithTimeout(bg, wait)
	defer cancel()
	f, err := c.Subscribe(ctx, channels)
	if err != nil {
		tb.Fatalf("%s: subscribe: %v", name, err)
	}
	tb.Cleanup(func() { f.Close() })
	return &reader{tb: tb, name: name, f: f, seqs: map[string]uint64{}, data: map[string]map[uint64]string{}}
}

func (r *reader) next(match func(client.Message) bool) client.Message {
	r.tb.Helper()
	ctx, cancel := context.WithTimeout(bg, wait)
	defer cancel()
	for {
		m, err := r.f.Next(ctx)
		if err != nil {
			r.tb.Fatalf("%s: feed: %v", r.name, err)
		}
		r.track(m)
		if match(m) {
			return m
		}
	}
}

func (r *reader) track(m client.Message) {
	r.tb.Helper()
	switch m.Type {
	case client.MsgSnapshot:
		r.seqs[m.Channel] = m.Seq
	case client.MsgUpdate:
		last, ok := r.seqs[m.Channel]
		if !ok {
			r.tb.Errorf("%s: %s: update %d before a snapshot", r.name, m.Channel, m.Seq)
		} else if m.Seq != last+1 {
			r.tb.Errorf("%s: %s: seq %d after %d, want %d", r.name, m.Channel, m.Seq, last, last+1)
		}
		r.seqs[m.Channel] = m.Seq
	default:
		return
	}
	var b bytes.Buffer
	if err := json.Compact(&b, m.Data); err != nil {
		r.tb.Errorf("%s: %s: data: %v", r.name, m.Channel, err)
	}
	if r.data[m.Channel] == nil {
		r.data[m.Channel] = map[uint64]string{}
	}
	r.data[m.Channel][m.Seq] = m.Type + " " + b.String()
}

// drain reads what has arrived until the feed is quiet for a moment.
func (r *reader) drain() {
	r.tb.Helper()
	r.drainQuiet(300 * time.Millisecond)
}

// drainQuiet is drain with the quiet period that ends it.
func (r *reader) drainQuiet(quiet time.Duration) {
	r.tb.Helper()
	for {
		ctx, cancel := context.WithTimeout(bg, quiet)
		m, err := r.f.Next(ctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				r.tb.Fatalf("%s: feed: %v", r.name, err)
			}
			return
		}
		r.track(m)
	}
}

func is(typ, channel string) func(client.Message) bool {
	return func(m client.Message) bool { return m.Type == typ && (channel == "" || m.Channel == channel) }
}

// snapshots reads until every channel's snapshot is in.
func (r *reader) snapshots(channels ...string) map[string]client.Message {
	r.tb.Helper()
	got := map[string]client.Message{}
	for len(got) < len(channels) {
		m := r.next(func(m client.Message) bool { return m.Type == client.MsgSnapshot || m.Type == client.MsgError })
		if m.Type == client.MsgError {
			r.tb.Fatalf("%s: error %s: %s", r.name, m.Code, m.Detail)
		}
		got[m.Channel] = m
	}
	return got
}

func hour(n int) time.Time {
	return time.Now().UTC().Truncate(time.Hour).Add(time.Duration(n) * time.Hour)
}

// sameAtSameSeq checks that wherever two readers saw a channel at the same
// seq, they saw the same data; and that they share seqs at all.
func sameAtSameSeq(tb testing.TB, channel string, readers ...*reader) {
	tb.Helper()
	for _, a := range readers {
		for _, b := range readers {
			if a == b {
				continue
			}
			shared := 0
			for seq, da := range a.data[channel] {
				db, ok := b.data[channel][seq]
				if !ok {
					continue
				}
				shared++
				// A snapshot and an update at one seq carry the same data
				// only for books (full state); compare what compares.
				typA, xa, _ := strings.Cut(da, " ")
				typB, xb, _ := strings.Cut(db, " ")
				if xa != xb && (typA == typB || strings.HasPrefix(channel, "book:")) {
					tb.Errorf("%s at seq %d: %s saw %.300s, %s saw %.300s", channel, seq, a.name, da, b.name, db)
				}
			}
			if shared == 0 {
				tb.Errorf("%s: %s and %s saw no seq in common (%v, %v)", channel, a.name, b.name, keys(a.data[channel]), keys(b.data[channel]))
			}
		}
	}
}

func keys(m map[uint64]string) []uint64 {
	out := make([]uint64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestRelaySameSeqs: a client on relay A, one on relay B and one directly
// on the engine node see the same messages at the same seqs.
func TestRelaySameSeqs(t *testing.T) {
	c := newCluster(t)
	shard := redistest.Shard(t)
	eng := c.startEngine(shard, nil)
	relayA, relayB := c.relayNode(shard, nil), c.relayNode(shard, nil)
	owner := c.account(eng, "owner", "", client.RoleOwner)
	buyer := c.account(eng, "buyer", "1000", client.RoleBuyer)
	const mk = "h100-sxm.us-east"
	chans := []string{"book:" + mk, "trades:" + mk, "prices"}
	readers := []*reader{
		subscribe(t, "direct", client.New(eng.url), chans...),
		subscribe(t, "relay A", client.New(relayA), chans...),
		subscribe(t, "relay B", client.New(relayB), chans...),
	}
	for _, r := range readers {
		r.snapshots(chans...)
	}
	ownerC := client.New(eng.url, client.WithAPIKey(owner.key))
	buyerC := client.New(eng.url, client.WithAPIKey(buyer.key))
	if _, err := ownerC.PlaceListing(bg, client.ListingRequest{Market: mk, Quantity: 4, Start: hour(0), End: hour(12), ReservePrice: client.FixedPrice("3.00")}); err != nil {
		t.Fatal(err)
	}
	b, err := buyerC.PlaceBid(bg, client.BidRequest{Type: client.BidReserved, Market: mk, Quantity: 2, Start: hour(2), End: hour(4), LimitPrice: client.FixedPrice("3.50")})
	if err != nil || len(b.Fills) != 1 {
		t.Fatalf("bid: %v %+v", err, b)
	}
	var tradeSeq []uint64
	for _, r := range readers {
		m := r.next(is(client.MsgUpdate, "trades:"+mk))
		var tr client.Trade
		if err := m.Decode(&tr); err != nil || tr.ID != b.Fills[0].ID {
			t.Errorf("%s: trade update: %v %+v, want fill %s", r.name, err, tr, b.Fills[0].ID)
		}
		tradeSeq = append(tradeSeq, m.Seq)
		r.next(is(client.MsgUpdate, "prices"))
		r.drain()
	}
	if tradeSeq[0] != tradeSeq[1] || tradeSeq[0] != tradeSeq[2] {
		t.Errorf("trade update seqs: direct, A, B got %v, want one seq", tradeSeq)
	}
	for _, ch := range chans {
		sameAtSameSeq(t, ch, readers...)
	}

	// A late subscriber on a relay gets the relay's state at the channel's
	// current seq: the same as a late direct subscriber's.
	late := subscribe(t, "late A", client.New(relayA), "trades:"+mk, "book:"+mk)
	lateDirect := subscribe(t, "late direct", client.New(eng.url), "trades:"+mk, "book:"+mk)
	ls, ds := late.snapshots("trades:"+mk, "book:"+mk), lateDirect.snapshots("trades:"+mk, "book:"+mk)
	for _, ch := range []string{"trades:" + mk, "book:" + mk} {
		if ls[ch].Seq != ds[ch].Seq || late.data[ch][ls[ch].Seq] != lateDirect.data[ch][ds[ch].Seq] {
			t.Errorf("%s late snapshot: relay %d %s, direct %d %s", ch, ls[ch].Seq, late.data[ch][ls[ch].Seq], ds[ch].Seq, lateDirect.data[ch][ds[ch].Seq])
		}
	}
}

// TestRelayUserChannel: user channel events reach their account only, with
// the engine node's seqs; a second connection of the account on the same
// relay catches up to the same seq.
func TestRelayUserChannel(t *testing.T) {
	c := newCluster(t)
	shard := redistest.Shard(t)
	eng := c.startEngine(shard, nil)
	relayA := c.relayNode(shard, nil)
	a := c.account(eng, "a", "100", client.RoleBuyer)
	b := c.account(eng, "b", "100", client.RoleBuyer)
	ra := subscribe(t, "a on relay", client.New(relayA, client.WithAPIKey(a.key)), "user")
	rb := subscribe(t, "b on relay", client.New(relayA, client.WithAPIKey(b.key)), "user")
	direct := subscribe(t, "a direct", client.New(eng.url, client.WithAPIKey(a.key)), "user")
	for _, tc := range []struct {
		r  *reader
		id string
	}{{ra, a.id}, {rb, b.id}, {direct, a.id}} {
		if m := tc.r.next(is(client.MsgAuth, "")); !m.OK {
			t.Fatalf("%s: auth: %+v", tc.r.name, m)
		}
		var acct client.Account
		if err := tc.r.snapshots("user")["user"].Decode(&acct); err != nil || acct.ID != tc.id {
			t.Fatalf("%s: user snapshot: %v %+v, want account %s", tc.r.name, err, acct, tc.id)
		}
	}
	balance := func(r *reader, want string) client.Message {
		t.Helper()
		return r.next(func(m client.Message) bool {
			var ev struct {
				Event   string `json:"event"`
				Balance string `json:"balance"`
			}
			if m.Type != client.MsgUpdate || m.Decode(&ev) != nil || ev.Event != "balance_changed" {
				return false
			}
			if ev.Balance != want {
				t.Errorf("%s: balance_changed to %s, want %s", r.name, ev.Balance, want)
			}
			return true
		})
	}
	if _, err := eng.admin.Deposit(bg, a.id, "5"); err != nil {
		t.Fatal(err)
	}
	ma, md := balance(ra, "105.00"), balance(direct, "105.00")
	if ma.Seq != md.Seq {
		t.Errorf("a's deposit: seq %d on the relay, %d direct", ma.Seq, md.Seq)
	}
	if _, err := eng.admin.Deposit(bg, b.id, "7"); err != nil {
		t.Fatal(err)
	}
	balance(rb, "107.00") // b's first balance change is its own (a's would fail it)
	ra.drain()
	if got := ra.data["user"]; len(got) == 0 {
		t.Fatal("a saw nothing")
	}
	for seq, d := range ra.data["user"] {
		if strings.Contains(d, "107.00") {
			t.Errorf("a saw b's event at seq %d: %s", seq, d)
		}
	}
	sameAtSameSeq(t, "user", ra, direct)

	// A second connection of a on the same relay: snapshot, then the
	// updates since it, up to the channel's seq.
	ra2 := subscribe(t, "a again on relay", client.New(relayA, client.WithAPIKey(a.key)), "user")
	ra2.snapshots("user")
	last := ra.seqs["user"]
	ra2.next(func(m client.Message) bool { return m.Channel == "user" && m.Seq >= last })
	if got := ra2.seqs["user"]; got != last {
		t.Errorf("second connection at seq %d, want %d", got, last)
	}
	if ra2.data["user"][last] != ra.data["user"][last] {
		t.Errorf("second connection at seq %d: %s, want %s", last, ra2.data["user"][last], ra.data["user"][last])
	}
}

// TestRelayGapResnapshots: a batch the publisher could not publish (here:
// not the leader at the time) shows as a gap in the batch numbers, and the
// relay fetches the shard's channels again: its subscriber gets the state it
// missed, at the engine's seq, although that channel sent nothing since.
func TestRelayGapResnapshots(t *testing.T) {
	c := newCluster(t)
	shard := redistest.Shard(t)
	eng := c.startEngine(shard, nil)
	relayA := c.relayNode(shard, nil)
	owner := c.account(eng, "owner", "", client.RoleOwner)
	ownerC := client.New(eng.url, client.WithAPIKey(owner.key))
	const mkA, mkB = "h100-sxm.us-east", "h200.us-west"
	r := subscribe(t, "relay", client.New(relayA), "book:"+mkA)
	direct := subscribe(t, "direct", client.New(eng.url), "book:"+mkA)
	r.snapshots("book:" + mkA)
	direct.snapshots("book:" + mkA)
	list := func(mk string, qty int) {
		t.Helper()
		if _, err := ownerC.PlaceListing(bg, client.ListingRequest{Market: mk, Quantity: qty, Start: hour(0), End: hour(12), ReservePrice: client.FixedPrice("3.00")}); err != nil {
			t.Fatal(err)
		}
	}
	list(mkA, 1)
	r.next(is(client.MsgUpdate, "book:"+mkA)) // the relay follows the shard
	direct.next(is(client.MsgUpdate, "book:"+mkA))

	eng.leader.Store(false)
	list(mkA, 2)
	missed := direct.next(is(client.MsgUpdate, "book:"+mkA))
	ctx, cancel := context.WithTimeout(bg, wait)
	defer cancel()
	if err := eng.pub.Sync(ctx); err != nil { // the batch holding it is dropped
		t.Fatal(err)
	}
	eng.leader.Store(true)
	list(mkB, 1) // another market: book:A sends nothing more

	snap := r.next(is(client.MsgSnapshot, "book:"+mkA))
	if snap.Seq != missed.Seq || r.data["book:"+mkA][snap.Seq][len("snapshot "):] != direct.data["book:"+mkA][missed.Seq][len("update "):] {
		t.Errorf("after the gap: snapshot %d %s, want the missed update %d %s", snap.Seq, r.data["book:"+mkA][snap.Seq], missed.Seq, direct.data["book:"+mkA][missed.Seq])
	}
	// And it goes on from there.
	list(mkA, 3)
	if m, d := r.next(is(client.MsgUpdate, "book:"+mkA)), direct.next(is(client.MsgUpdate, "book:"+mkA)); m.Seq != d.Seq {
		t.Errorf("next update: seq %d on the relay, %d direct", m.Seq, d.Seq)
	}
}

// TestRelayTakeover: a new leader's hub continues every channel past the
// old one's seq, so relayed clients see a gap (a fresh snapshot), never a
// seq going back.
func TestRelayTakeover(t *testing.T) {
	c := newCluster(t)
	shard := redistest.Shard(t)
	eng := c.startEngine(shard, nil)
	relayA := c.relayNode(shard, nil)
	owner := c.account(eng, "owner", "", client.RoleOwner)
	const mk = "h100-sxm.us-east"
	r := subscribe(t, "relay", client.New(relayA), "book:"+mk)
	r.snapshots("book:" + mk)
	if _, err := client.New(eng.url, client.WithAPIKey(owner.key)).PlaceListing(bg, client.ListingRequest{Market: mk, Quantity: 1, Start: hour(0), End: hour(12), ReservePrice: client.FixedPrice("3.00")}); err != nil {
		t.Fatal(err)
	}
	before := r.next(is(client.MsgUpdate, "book:"+mk)).Seq

	eng.stop()
	next := c.startEngine(shard, nil) // recovers the journal, leads the shard
	if _, err := client.New(next.url, client.WithAPIKey(owner.key)).PlaceListing(bg, client.ListingRequest{Market: mk, Quantity: 2, Start: hour(0), End: hour(12), ReservePrice: client.FixedPrice("3.00")}); err != nil {
		t.Fatal(err)
	}
	snap := r.next(is(client.MsgSnapshot, "book:"+mk))
	if snap.Seq <= before {
		t.Errorf("after the takeover: snapshot seq %d, want past %d", snap.Seq, before)
	}
	var bk client.Book
	if err := snap.Decode(&bk); err != nil || len(bk.Asks) == 0 {
		t.Errorf("book after the takeover: %v %+v", err, bk)
	}
}

// TestRelayShards: channels of every market through one API node, routed
// to their shard; prices across shards with the sum of the shards' seqs,
// the same on two API nodes.
func TestRelayShards(t *testing.T) {
	c := newCluster(t)
	mainShard, region := redistest.Shard(t), redistest.Shard(t)
	gpus := []string{"h100-sxm"}
	mainEng := c.startEngine(mainShard, engine.Catalogue(gpus, []string{"us-east"}))
	regionEng := c.startEngine(region, engine.Catalogue(gpus, []string{region}))
	relayA, relayB := c.relayNode(mainShard, nil), c.relayNode(mainShard, nil)
	mkMain, mkRegion := "h100-sxm.us-east", "h100-sxm."+region
	chans := []string{"prices", "book:" + mkMain, "book:" + mkRegion}
	ra := subscribe(t, "relay A", client.New(relayA), chans...)
	rb := subscribe(t, "relay B", client.New(relayB), chans...)
	for _, r := range []*reader{ra, rb} {
		var rows []client.PriceRow
		if err := r.snapshots(chans...)["prices"].Decode(&rows); err != nil || len(rows) != 2 {
			t.Fatalf("%s: prices snapshot: %v %+v, want a row of each shard's market", r.name, err, rows)
		}
	}
	for _, x := range []struct {
		eng *engineNode
		mk  string
	}{{mainEng, mkMain}, {regionEng, mkRegion}} {
		o := c.account(x.eng, "owner", "", client.RoleOwner)
		if _, err := client.New(x.eng.url, client.WithAPIKey(o.key)).PlaceListing(bg, client.ListingRequest{Market: x.mk, Quantity: 1, Start: hour(0), End: hour(12), ReservePrice: client.FixedPrice("3.00")}); err != nil {
			t.Fatal(err)
		}
		for _, r := range []*reader{ra, rb} {
			r.next(is(client.MsgUpdate, "book:"+x.mk))
		}
	}
	for _, r := range []*reader{ra, rb} {
		r.next(is(client.MsgUpdate, "prices"))
		r.drain()
	}
	for _, ch := range chans[1:] {
		sameAtSameSeq(t, ch, ra, rb)
	}
	// Quiet now: fresh subscribers see one prices state at one seq, the
	// sum of the shards' own.
	var sum uint64
	for _, e := range []*engineNode{mainEng, regionEng} {
		sum += subscribe(t, "direct "+e.shard, client.New(e.url), "prices").snapshots("prices")["prices"].Seq
	}
	pa := subscribe(t, "late A", client.New(relayA), "prices").snapshots("prices")["prices"]
	pb := subscribe(t, "late B", client.New(relayB), "prices").snapshots("prices")["prices"]
	if pa.Seq != sum || pb.Seq != sum || !bytes.Equal(compact(t, pa.Data), compact(t, pb.Data)) {
		t.Errorf("prices: A at %d, B at %d, want both at %d (the shards' sum) with the same rows:\n%s\n%s", pa.Seq, pb.Seq, sum, pa.Data, pb.Data)
	}
}

func compact(tb testing.TB, b []byte) []byte {
	tb.Helper()
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		tb.Fatal(err)
	}
	return out.Bytes()
}

// TestRelayLimits: the relay answers like an engine node: unknown and
// unauthorised channels, too many channels, bad keys, connections per
// address.
func TestRelayLimits(t *testing.T) {
	c := newCluster(t)
	shard := redistest.Shard(t)
	c.startEngine(shard, nil)
	relayA := c.relayNode(shard, func(cfg *relay.Config) { cfg.FeedConnsPerAddr = 1 })
	r := subscribe(t, "relay", client.New(relayA))
	errorOf := func(channels ...string) client.Message {
		t.Helper()
		if err := r.f.Subscribe(channels); err != nil {
			t.Fatal(err)
		}
		return r.next(is(client.MsgError, ""))
	}
	many := make([]string, 65)
	for i := range many {
		many[i] = "book:m" + strings.Repeat("x", i)
	}
	for _, tc := range []struct {
		name     string
		channels []string
		code     string
	}{
		{"not a channel", []string{"bogus"}, api.CodeUnknownChannel},
		{"unknown market", []string{"book:nope.nowhere"}, api.CodeUnknownChannel},
		{"long name", []string{"book:" + strings.Repeat("x", 200)}, api.CodeUnknownChannel},
		{"user without auth", []string{"user"}, api.CodeUnauthorized},
		{"too many channels", many, api.CodeTooManyChannels},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if m := errorOf(tc.channels...); m.Code != tc.code {
				t.Errorf("got %s (%s), want %s", m.Code, m.Detail, tc.code)
			}
		})
	}
	t.Run("connections per address", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(bg, wait)
		defer cancel()
		_, err := client.New(relayA).Subscribe(ctx, nil)
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Status != 429 || ce.Code != api.CodeTooManyConns {
			t.Errorf("second connection: got %v, want 429 %s", err, api.CodeTooManyConns)
		}
	})
	r.f.Close()
	t.Run("bad key", func(t *testing.T) {
		var f *client.Feed
		var err error
		// The first connection's slot frees when the relay sees it close.
		for i := 0; i < 100; i++ {
			ctx, cancel := context.WithTimeout(bg, wait)
			f, err = client.New(relayA, client.WithAPIKey("gpux_nope")).Subscribe(ctx, []string{"user"})
			cancel()
			if err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		br := &reader{tb: t, name: "bad key", f: f, seqs: map[string]uint64{}, data: map[string]map[uint64]string{}}
		if m := br.next(is(client.MsgAuth, "")); m.OK || m.Code != api.CodeUnauthorized {
			t.Errorf("auth with an unknown key: %+v", m)
		}
		if m := br.next(is(client.MsgError, "")); m.Code != api.CodeUnauthorized {
			t.Errorf("user after a failed auth: %+v", m)
		}
	})
}

// TestRelaySlowConsumer: a relayed client that does not read is closed
// with 1013 "slow consumer", and the others keep their feed.
func TestRelaySlowConsumer(t *testing.T) {
	c := newCluster(t)
	shard := redistest.Shard(t)
	eng := c.startEngine(shard, nil)
	relayA := c.relayNode(shard, func(cfg *relay.Config) { cfg.SendQueue = 64 })
	owner := c.account(eng, "owner", "", client.RoleOwner)
	buyer := c.account(eng, "buyer", "100000", client.RoleBuyer)
	ownerC := client.New(eng.url, client.WithAPIKey(owner.key))
	buyerC := client.New(eng.url, client.WithAPIKey(buyer.key))
	const mk = "a100-40gb.us-east"
	if _, err := ownerC.PlaceListing(bg, client.ListingRequest{Market: mk, Quantity: 2, Start: hour(0), End: hour(12), ReservePrice: client.FixedPrice("9.00"), SpotPriceFloor: client.FixedPrice("0.10")}); err != nil {
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
	slow, _, err := d.Dial("ws"+strings.TrimPrefix(relayA, "http")+"/v1/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	if err := slow.WriteJSON(map[string]any{"op": "subscribe", "channels": []string{"prices", "book:" + mk}}); err != nil {
		t.Fatal(err)
	}
	fast := subscribe(t, "fast", client.New(relayA), "book:"+mk)
	fast.snapshots("book:" + mk)
	dropped := func() float64 {
		m, err := client.New(relayA).Metrics(bg)
		if err != nil {
			t.Fatal(err)
		}
		sm := regexp.MustCompile(`(?m)^gpux_ws_dropped_clients_total ([0-9.e+]+)$`).FindSubmatch(m)
		if sm == nil {
			t.Fatal("no gpux_ws_dropped_clients_total")
		}
		v, _ := strconv.ParseFloat(string(sm[1]), 64)
		return v
	}
	var ids []string
	n := 0
	for i := 0; i < 5000 && (i%10 != 0 || dropped() == 0); i++ {
		// Each spot bid moves the book and mostly the clearing price.
		b, err := buyerC.PlaceBid(bg, client.BidRequest{Type: client.BidSpot, Market: mk, Quantity: 1, LimitPrice: client.FixedPrice(strconv.Itoa(1+(i*37)%97) + ".00")})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, b.ID)
		if len(ids) > 150 {
			if _, err := buyerC.CancelBid(bg, ids[0]); err != nil {
				t.Fatal(err)
			}
			ids = ids[1:]
		}
		if i%5 == 0 {
			// A few messages at a time: far below the 64-message queue
			// even under -race on a loaded machine.
			fast.drainQuiet(20 * time.Millisecond)
		}
		n = i
	}
	t.Logf("%d spot bids until the slow client was dropped", n)
	if got := dropped(); got != 1 {
		t.Fatalf("dropped clients: got %v, want 1 (the slow one)", got)
	}
	// What the slow client finds at the end of its buffer: close 1013.
	_ = slow.SetReadDeadline(time.Now().Add(wait))
	for {
		if _, _, err := slow.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.CloseTryAgainLater || ce.Text != "slow consumer" {
				t.Errorf("slow client: got %v, want close 1013 slow consumer", err)
			}
			break
		}
	}
	// The fast one still follows.
	if _, err := ownerC.PlaceListing(bg, client.ListingRequest{Market: mk, Quantity: 1, Start: hour(0), End: hour(12), ReservePrice: client.FixedPrice("9.00")}); err != nil {
		t.Fatal(err)
	}
	fast.next(is(client.MsgUpdate, "book:"+mk))
}
