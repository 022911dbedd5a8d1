package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gpux/gpux/store"
	"github.com/gpux/gpux/store/redistest"
)

// openLeases returns n lease handles (holders a, b, ...) on one fresh
// shard of the shared Redis, with the journal they share.
func openLeases(t *testing.T, n int, ttl time.Duration) (*store.RedisJournal, []*store.Lease) {
	t.Helper()
	j := openRedisJournal(t)
	var ls []*store.Lease
	for i := range n {
		name := string(rune('a' + i))
		l, err := store.NewLease(j.Client(), j.Shard(), "node-"+name, "host-"+name+":80", ttl)
		if err != nil {
			t.Fatalf("NewLease: %v", err)
		}
		ls = append(ls, l)
	}
	return j, ls
}

func mustAcquire(t *testing.T, l *store.Lease) store.LeaseHolder {
	t.Helper()
	h, ok, err := l.Acquire(context.Background())
	if err != nil || !ok {
		t.Fatalf("Acquire = %+v, %v, %v; want acquired", h, ok, err)
	}
	return h
}

// TestLeaseTokens: the first acquisition gets token 1; while it is held
// another node learns the holder and its address; after a release the
// next acquisition gets a new, larger token; renewals work only for the
// holder with its token.
func TestLeaseTokens(t *testing.T) {
	ctx := context.Background()
	_, ls := openLeases(t, 2, time.Minute)
	a, b := ls[0], ls[1]
	h := mustAcquire(t, a)
	if h.Token != 1 || h.Holder != "node-a" || h.Addr != "host-a:80" {
		t.Fatalf("first acquisition = %+v, want node-a host-a:80 token 1", h)
	}
	if again := mustAcquire(t, a); again.Token != 1 {
		t.Fatalf("the holder acquiring again = %+v, want its own token 1", again)
	}
	got, ok, err := b.Acquire(ctx)
	if err != nil || ok || got.Holder != "node-a" || got.Addr != "host-a:80" || got.Token != 1 {
		t.Fatalf("b.Acquire while a holds = %+v, %v, %v; want not acquired, holder node-a token 1", got, ok, err)
	}
	for _, tt := range []struct {
		name  string
		l     *store.Lease
		token uint64
		want  bool
	}{
		{"holder", a, 1, true},
		{"holder, wrong token", a, 2, false},
		{"other node", b, 1, false},
	} {
		if ok, err := tt.l.Renew(ctx, tt.token); err != nil || ok != tt.want {
			t.Errorf("%s: Renew(%d) = %v, %v; want %v", tt.name, tt.token, ok, err, tt.want)
		}
	}
	if err := b.Release(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if cur, ok, err := a.Current(ctx); err != nil || !ok || cur.Holder != "node-a" {
		t.Fatalf("after another node's Release: Current = %+v, %v, %v; want still node-a", cur, ok, err)
	}
	if err := a.Release(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := a.Current(ctx); err != nil || ok {
		t.Fatalf("after Release: Current ok = %v, %v; want no holder", ok, err)
	}
	if h := mustAcquire(t, b); h.Token != 2 || h.Holder != "node-b" {
		t.Fatalf("acquisition after release = %+v, want node-b token 2", h)
	}
	if ok, err := a.Renew(ctx, 1); err != nil || ok {
		t.Fatalf("old holder's Renew(1) after b took over = %v, %v; want false", ok, err)
	}
}

// TestLeaseExpiry: a lease not renewed lapses after its TTL; its holder
// takes it back with the same token when nobody took it in between, and
// not once another node has.
func TestLeaseExpiry(t *testing.T) {
	ctx := context.Background()
	_, ls := openLeases(t, 2, 50*time.Millisecond)
	a, b := ls[0], ls[1]
	mustAcquire(t, a)
	waitNoHolder(t, a)
	if ok, err := a.Renew(ctx, 1); err != nil || !ok {
		t.Fatalf("Renew after a lapse nobody used = %v, %v; want true", ok, err)
	}
	waitNoHolder(t, a)
	if h := mustAcquire(t, b); h.Token != 2 {
		t.Fatalf("b's acquisition after the lapse = %+v, want token 2", h)
	}
	if ok, err := a.Renew(ctx, 1); err != nil || ok {
		t.Fatalf("a's Renew after b took over = %v, %v; want false", ok, err)
	}
}

// waitNoHolder waits (hang guard only) until the lease has lapsed.
func waitNoHolder(t *testing.T, l *store.Lease) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, ok, err := l.Current(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("lease did not lapse within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFencedWrites: once fenced with its token, a journal appends (Append
// and AppendAsync) and snapshots while the fence equals the token; after
// another node's acquisition every write fails with ErrFenced and stores
// nothing. A journal fenced with token 0 writes nothing; one never fenced
// checks nothing (role all).
func TestFencedWrites(t *testing.T) {
	ctx := context.Background()
	j, ls := openLeases(t, 2, time.Minute)
	old, err := store.NewRedisJournal(j.Client(), j.Shard())
	if err != nil {
		t.Fatal(err)
	}
	appendAll(t, old, batch(1, 2)) // never fenced: no check, no lease needed
	h := mustAcquire(t, ls[0])
	old.Fence(h.Token)
	appendAll(t, old, batch(3, 1))
	if errs := startAll(old, 5*time.Second, batch(4, 2)); errs[0] != nil {
		t.Fatalf("fenced AppendAsync with the current token = %v", errs[0])
	}
	if err := old.SaveSnapshot(ctx, store.Snapshot{Seq: 3, Hash: "h3", Data: []byte("s3"), TakenAt: time.Now()}); err != nil {
		t.Fatalf("fenced SaveSnapshot with the current token = %v", err)
	}

	// Another node takes over: the lease lapses (released here) and it
	// acquires with token 2.
	if err := ls[0].Release(ctx, h.Token); err != nil {
		t.Fatal(err)
	}
	if h2 := mustAcquire(t, ls[1]); h2.Token != h.Token+1 {
		t.Fatalf("takeover token = %d, want %d", h2.Token, h.Token+1)
	}
	for _, tt := range []struct {
		name  string
		write func() error
	}{
		{"Append", func() error { return old.Append(ctx, batch(6, 1)) }},
		{"AppendAsync", func() error {
			errs := startAll(old, 5*time.Second, batch(6, 1), batch(7, 1))
			if !errors.Is(errs[0], store.ErrFenced) {
				return errs[0]
			}
			return errs[1]
		}},
		{"SaveSnapshot", func() error {
			return old.SaveSnapshot(ctx, store.Snapshot{Seq: 5, Hash: "h5", Data: []byte("s5"), TakenAt: time.Now()})
		}},
	} {
		if err := tt.write(); !errors.Is(err, store.ErrFenced) {
			t.Errorf("%s with the old token = %v, want ErrFenced", tt.name, err)
		}
	}
	if last, err := j.LastSeq(ctx); err != nil || last != 5 {
		t.Fatalf("LastSeq after fenced writes = %d, %v; want 5 (nothing stored)", last, err)
	}
	if s, _, err := j.LoadSnapshot(ctx); err != nil || s.Seq != 3 {
		t.Fatalf("snapshot after a fenced save = %d, %v; want 3", s.Seq, err)
	}

	standby, err := store.NewRedisJournal(j.Client(), j.Shard())
	if err != nil {
		t.Fatal(err)
	}
	standby.Fence(0)
	if err := standby.Append(ctx, batch(6, 1)); !errors.Is(err, store.ErrFenced) {
		t.Errorf("Append fenced with token 0 = %v, want ErrFenced", err)
	}
	newOwner, err := store.NewRedisJournal(j.Client(), j.Shard())
	if err != nil {
		t.Fatal(err)
	}
	newOwner.Fence(h.Token + 1)
	appendAll(t, newOwner, batch(6, 1))
	// A retried append of a stored batch stays a no-op when fenced.
	appendAll(t, newOwner, batch(6, 1))
}

// TestLeaseRegistryAndNodes: Register adds the shard to the registry set;
// Heartbeat scores the node's address with the time, Leave removes it.
func TestLeaseRegistryAndNodes(t *testing.T) {
	ctx := context.Background()
	j, ls := openLeases(t, 1, time.Second)
	l, rdb := ls[0], j.Client()
	t.Cleanup(func() { rdb.SRem(context.Background(), store.RegistryShardsKey, j.Shard()) })
	if err := l.Register(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, err := rdb.SIsMember(ctx, store.RegistryShardsKey, j.Shard()).Result(); err != nil || !ok {
		t.Fatalf("shard in %s = %v, %v; want true", store.RegistryShardsKey, ok, err)
	}
	now := time.UnixMilli(1_800_000_000_000)
	if err := l.Heartbeat(ctx, now); err != nil {
		t.Fatal(err)
	}
	nodes := "gpux:{" + j.Shard() + "}:nodes"
	if score, err := rdb.ZScore(ctx, nodes, "host-a:80").Result(); err != nil || int64(score) != now.UnixMilli() {
		t.Fatalf("heartbeat score = %v, %v; want %d", score, err, now.UnixMilli())
	}
	if err := l.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := rdb.ZCard(ctx, nodes).Result(); err != nil || n != 0 {
		t.Fatalf("nodes after Leave = %d, %v; want 0", n, err)
	}
}

// TestNewLeaseRejects bad arguments.
func TestNewLeaseRejects(t *testing.T) {
	j := openRedisJournal(t)
	for _, tt := range []struct {
		name, shard, holder, addr string
		ttl                       time.Duration
	}{
		{"braces", "a{b}", "h", "x:1", time.Second},
		{"no holder", "s", "", "x:1", time.Second},
		{"no addr", "s", "h", "", time.Second},
		{"tiny ttl", "s", "h", "x:1", time.Millisecond},
	} {
		if _, err := store.NewLease(j.Client(), tt.shard, tt.holder, tt.addr, tt.ttl); err == nil {
			t.Errorf("%s: NewLease succeeded", tt.name)
		}
	}
}

// TestClusterClientOptions parses redis+cluster:// URLs.
func TestClusterClientOptions(t *testing.T) {
	for _, tt := range []struct {
		url        string
		addrs      []string
		user, pass string
		bad        bool
	}{
		{url: "redis+cluster://a:1,b:2", addrs: []string{"a:1", "b:2"}},
		{url: "redis+cluster://u:p@a:1, b:2/0", addrs: []string{"a:1", "b:2"}, user: "u", pass: "p"},
		{url: "redis+cluster://secret@127.0.0.1:7000", addrs: []string{"127.0.0.1:7000"}, pass: "secret"},
		{url: "redis+cluster://", bad: true},
		{url: "redis+cluster://nohost", bad: true},
		{url: "redis://a:1", bad: true},
	} {
		opt, err := store.ClusterClientOptions(tt.url)
		if tt.bad {
			if err == nil {
				t.Errorf("%s: parsed, want an error", tt.url)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.url, err)
			continue
		}
		if len(opt.Addrs) != len(tt.addrs) || opt.Addrs[0] != tt.addrs[0] || opt.Username != tt.user || opt.Password != tt.pass || opt.MaxRetries != -1 {
			t.Errorf("%s: addrs %v user %q pass %q retries %d; want %v %q %q -1", tt.url, opt.Addrs, opt.Username, opt.Password, opt.MaxRetries, tt.addrs, tt.user, tt.pass)
		}
	}
}

// TestClusterJournal runs two shards' journals on a loopback Redis Cluster
// of three masters: the pipelined append (its raw connection to the
// master of the journal's slot), Append, snapshots, the lease and the
// fence all work there, each shard on its own slot.
func TestClusterJournal(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	ctx := context.Background()
	for _, shard := range []string{"us-east", "eu-west"} {
		j, err := store.OpenRedis(ctx, c.URL(), shard)
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		if _, ok := j.Client().(*redis.ClusterClient); !ok {
			t.Fatalf("%s: client %T, want a *redis.ClusterClient", shard, j.Client())
		}
		l, err := store.NewLease(j.Client(), shard, "node-a", "a:80", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		h := mustAcquire(t, l)
		j.Fence(h.Token)
		bs := contiguous(50)
		for i, err := range startAll(j, 5*time.Second, bs...) {
			if err != nil {
				t.Fatalf("%s: pipelined batch %d: %v", shard, bs[i].First, err)
			}
		}
		next := bs[len(bs)-1].Last + 1
		appendAll(t, j, batch(next, 1))
		if err := j.SaveSnapshot(ctx, store.Snapshot{Seq: next, Hash: "h", Data: []byte("s"), TakenAt: time.Now()}); err != nil {
			t.Fatalf("%s: snapshot: %v", shard, err)
		}
		if last, err := j.LastSeq(ctx); err != nil || last != next {
			t.Fatalf("%s: LastSeq = %d, %v; want %d", shard, last, err, next)
		}
		j.Fence(h.Token + 1)
		if errs := startAll(j, 5*time.Second, batch(next+1, 1)); !errors.Is(errs[0], store.ErrFenced) {
			t.Fatalf("%s: pipelined append with a token that is not the fence = %v, want ErrFenced", shard, errs[0])
		}
	}
}
