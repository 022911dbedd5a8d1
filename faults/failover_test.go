package faults

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gpux/gpux/client"
	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/sequencer"
	"github.com/gpux/gpux/store"
	"github.com/gpux/gpux/store/redistest"
)

// failoverTTL is the lease TTL of the failover tests: short, so that a
// takeover happens within the CI budget.
const failoverTTL = "1s"

// startEngine starts one engine node of shard (role engine).
func startEngine(tb testing.TB, redisURL, shard string, extra ...string) *daemon {
	tb.Helper()
	return startGpuxd(tb, redisURL, shard, append([]string{"--role", "engine", "--lease-ttl", failoverTTL}, extra...)...)
}

// leaderWatch follows the shard's lease in Redis, as an API node does:
// the base URL of the leader's HTTP API, "" while the shard has none.
type leaderWatch struct {
	addr   atomic.Value // string
	since  atomic.Int64 // unix ns when addr last changed
	stop   chan struct{}
	wg     sync.WaitGroup
	client *redis.Client
	key    string
}

func watchLeader(tb testing.TB, redisURL, shard string) *leaderWatch {
	tb.Helper()
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		tb.Fatal(err)
	}
	w := &leaderWatch{stop: make(chan struct{}), client: redis.NewClient(opt), key: "gpux:{" + shard + "}:lease"}
	w.addr.Store("")
	w.poll()
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(10 * time.Millisecond):
				w.poll()
			}
		}
	}()
	tb.Cleanup(func() {
		close(w.stop)
		w.wg.Wait()
		w.client.Close()
	})
	return w
}

func (w *leaderWatch) poll() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	addr, err := w.client.HGet(ctx, w.key, "addr").Result()
	if errors.Is(err, redis.Nil) {
		if w.addr.Load().(string) != "" {
			w.since.Store(time.Now().UnixNano())
		}
		w.addr.Store("")
		return
	}
	if err == nil && addr != w.addr.Load().(string) {
		w.since.Store(time.Now().UnixNano())
		w.addr.Store(addr)
	}
}

// changedAt is when the lease last named a new leader (as polled).
func (w *leaderWatch) changedAt() time.Time { return time.Unix(0, w.since.Load()) }

// url is the leader's base URL; with no leader, an address nothing
// listens on, so that a write fails at once and counts as unanswered.
func (w *leaderWatch) url() string {
	if a := w.addr.Load().(string); a != "" {
		return "http://" + a
	}
	return "http://127.0.0.1:1"
}

// waitLeader waits until the lease names d (hang guard only).
func (w *leaderWatch) waitLeader(tb testing.TB, d *daemon) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for w.addr.Load().(string) != d.addr {
		if time.Now().After(deadline) {
			tb.Fatalf("lease does not name %s within 30s (it names %q)", d.addr, w.addr.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// failoverClient has a short timeout: a request to a frozen owner gives
// up soon and the load moves on to the new leader.
func failoverClient() *http.Client {
	return &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 5 * time.Second}}
}

// firstWrite sends deposits through the shard's current leader until one
// is accepted, recording each in the ledger, and returns when it was.
func firstWrite(t *testing.T, l *ledger, w *leaderWatch) time.Time {
	t.Helper()
	// A short timeout: a probe sent to a frozen owner gives up soon (its
	// outcome is then unknown), which bounds how much of the measured
	// time is the probe's own wait.
	hc := &http.Client{Timeout: 500 * time.Millisecond}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		amt := int64(1000)
		key := newKey()
		c := client.New(w.url(), client.WithHTTPClient(hc), client.WithAPIKey(adminKey))
		_, err := c.Deposit(context.Background(), l.buyers[0].id, ticks(amt), client.WithIdempotencyKey(key))
		ok, unknown := l.outcome(err)
		if ok {
			l.ack(op{kind: opDeposit, key: key, target: l.buyers[0].id, amount: amt})
			return time.Now()
		}
		if unknown {
			l.mu.Lock()
			l.unknownDeposits += amt
			l.mu.Unlock()
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no write accepted within 60s of the fault")
	return time.Time{}
}

// finish stops the nodes gracefully, the standby first (so it does not
// take over and append), and checks the journal from Redis alone: every
// acknowledged command is in it, money is conserved, and the leader's
// final state is exactly a replay of the journal.
func finish(t *testing.T, redisURL, shard string, l *ledger, leader *daemon, standbys ...*daemon) audited {
	t.Helper()
	for _, d := range standbys {
		if err := d.term(30 * time.Second); err != nil {
			t.Fatalf("SIGTERM standby: %v\n%s", err, d.logs.String())
		}
		if d.final.Leader {
			t.Fatalf("standby %s stopped as a leader: %+v", d.addr, d.final)
		}
	}
	if err := leader.term(30 * time.Second); err != nil {
		t.Fatalf("SIGTERM leader: %v\n%s", err, leader.logs.String())
	}
	a := audit(t, redisURL, shard, l)
	if f := leader.final; !f.Leader || f.Seq != a.seq || f.Hash != a.hash {
		t.Fatalf("leader's final state %+v; a replay of the journal gives seq %d hash %s", f, a.seq, a.hash)
	}
	return a
}

// TestFailoverKill9 kills the shard's owner with SIGKILL under continuous
// write load: the standby takes the lease once it lapses, catches up and
// takes writes; nothing acknowledged is lost and the new leader's state is
// a replay of the journal. The kill → first accepted write time is logged
// (docs/DURABILITY.md), not asserted.
func TestFailoverKill9(t *testing.T) {
	srv := redistest.StartServer(t, "--appendonly", "yes", "--appendfsync", "always")
	shard := "main"
	a := startEngine(t, srv.URL(), shard, "--snapshot-every", "100")
	w := watchLeader(t, srv.URL(), shard)
	w.waitLeader(t, a)
	b := startEngine(t, srv.URL(), shard, "--snapshot-every", "100")
	l := setupLedger(t, a)
	ld := startLoadAt(l, w.url, 6, uint64(time.Now().UnixNano()), failoverClient())
	waitAcks(t, l, 100, 20*time.Second)

	a.kill()
	killed := time.Now()
	accepted := firstWrite(t, l, w)
	w.waitLeader(t, b)
	// The load goes on against the new leader for a while.
	before := ackCount(l)
	waitAcks(t, l, before+100, 20*time.Second)
	ld.stop()
	t.Logf("kill -9 of the owner → lease names the standby: %v, first write accepted by it: %v (lease ttl %s); acknowledged: %s",
		w.changedAt().Sub(killed).Round(time.Millisecond), accepted.Sub(killed).Round(time.Millisecond), failoverTTL, l.summary())
	au := finish(t, srv.URL(), shard, l, b)
	t.Logf("journal: %d commands; new leader's final hash equals the replay's", au.seq)
}

// TestFailoverSIGSTOP freezes the owner (SIGSTOP) past its lease: the
// standby takes over and takes writes. Commands sent to the frozen owner
// meanwhile wait in its socket; after SIGCONT its appends are refused by
// the fence, so none of them is acknowledged or stored, and it steps down
// to a standby. Nothing acknowledged is lost and the new leader's state
// is a replay of the journal.
func TestFailoverSIGSTOP(t *testing.T) {
	srv := redistest.StartServer(t, "--appendonly", "yes", "--appendfsync", "always")
	shard := "main"
	a := startEngine(t, srv.URL(), shard, "--snapshot-every", "100")
	w := watchLeader(t, srv.URL(), shard)
	w.waitLeader(t, a)
	b := startEngine(t, srv.URL(), shard, "--snapshot-every", "100")
	l := setupLedger(t, a)
	ld := startLoadAt(l, w.url, 6, uint64(time.Now().UnixNano()), failoverClient())
	waitAcks(t, l, 100, 20*time.Second)

	if err := a.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	// Deposits straight to the frozen owner, with a client that waits for
	// its answer: they reach it only after SIGCONT, after the takeover.
	type late struct {
		key string
		err error
	}
	lates := make([]late, 8)
	var lateWG sync.WaitGroup
	patient := client.New(a.url(), client.WithAPIKey(adminKey), client.WithHTTPClient(&http.Client{Timeout: 60 * time.Second}))
	for i := range lates {
		lates[i].key = newKey()
		lateWG.Add(1)
		go func() {
			defer lateWG.Done()
			_, lates[i].err = patient.Deposit(context.Background(), l.buyers[1].id, ticks(777), client.WithIdempotencyKey(lates[i].key))
		}()
	}
	accepted := firstWrite(t, l, w)
	w.waitLeader(t, b)
	before := ackCount(l)
	waitAcks(t, l, before+100, 20*time.Second)
	t.Logf("SIGSTOP of the owner → lease names the standby: %v, first write accepted by it: %v (lease ttl %s)",
		w.changedAt().Sub(stopped).Round(time.Millisecond), accepted.Sub(stopped).Round(time.Millisecond), failoverTTL)

	if err := a.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	lateWG.Wait()
	for i, lt := range lates {
		if lt.err == nil {
			t.Errorf("deposit %d sent to the frozen owner was acknowledged after the takeover", i)
		}
		var ce *client.Error
		if !errors.As(lt.err, &ce) || ce.Status < 500 {
			t.Errorf("deposit %d to the old owner: %v, want a 5xx answer (not leader)", i, lt.err)
		}
	}
	waitLog(t, a, "stepped down: standing by", 30*time.Second)
	ld.stop()
	t.Logf("acknowledged: %s", l.summary())
	au := finish(t, srv.URL(), shard, l, b, a)
	// None of the deposits the old owner got after the takeover exists.
	for i, lt := range lates {
		if found := journaled(t, srv.URL(), shard, l, lt.key); found {
			t.Errorf("deposit %d sent to the old owner after the takeover is in the journal", i)
		}
	}
	t.Logf("journal: %d commands; new leader's final hash equals the replay's; the old owner stepped down", au.seq)
}

// waitLog waits until d has logged a line containing msg (hang guard).
func waitLog(t *testing.T, d *daemon, msg string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(d.logs.String(), msg) {
		if time.Now().After(deadline) {
			t.Fatalf("gpuxd %s did not log %q within %v:\n%s", d.addr, msg, timeout, d.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// journaled reports whether an admin deposit with idempotency key key is
// in the shard's journal (replayed from Redis alone).
func journaled(t *testing.T, redisURL, shard string, l *ledger, key string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	j, err := store.OpenRedis(ctx, redisURL, shard)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	eng := replayed(t, ctx, j, l)
	_, _, ok := eng.IdempotentTarget(zeroID, key)
	return ok
}

// zeroID is the actor of admin commands (their idempotency keys' scope).
var zeroID engine.ID

// replayed rebuilds the shard's engine from Redis alone: the stored
// snapshot and the journal after it.
func replayed(t *testing.T, ctx context.Context, j *store.RedisJournal, l *ledger) *engine.Engine {
	t.Helper()
	eng := engine.New(engine.Config{Markets: l.catalogue, FeeBps: feeBps})
	snap, ok, err := j.LoadSnapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ok {
		if eng, err = engine.Restore(snap.Data); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := sequencer.Replay(ctx, j, eng, nil); err != nil {
		t.Fatal(err)
	}
	return eng
}
