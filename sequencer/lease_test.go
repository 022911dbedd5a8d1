package sequencer

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/store"
	"github.com/gpux/gpux/store/redistest"
)

// node is one engine node of a shard in these tests: its own journal
// client and lease handle, and its sequencer.
type node struct {
	j     *store.RedisJournal
	lease *store.Lease
	s     *Sequencer
}

// startNode starts a leased sequencer on the shard and waits until it
// knows whether it leads.
func startNode(t *testing.T, url, shard, name string, ttl time.Duration, cfg Config) *node {
	t.Helper()
	j := openJournal(t, url, shard)
	l, err := store.NewLease(j.Client(), shard, name, name+":80", ttl)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Journal, cfg.Lease = j, l
	s := start(t, cfg)
	select {
	case <-s.Settled():
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: lease not settled within 30s", name)
	}
	return &node{j: j, lease: l, s: s}
}

// waitFor polls cond (hang guard only: the timeout is never the point).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// replayHash is the state a fresh engine reaches from the stored snapshot
// and the journal after it: what any node must agree with.
func replayHash(t *testing.T, j store.Journal) (uint64, string) {
	t.Helper()
	ctx := context.Background()
	eng := engine.New(engine.Config{})
	snap, ok, err := j.LoadSnapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ok {
		if eng, err = engine.Restore(snap.Data); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Replay(ctx, j, eng, nil); err != nil {
		t.Fatal(err)
	}
	return eng.Seq(), eng.Hash()
}

// TestLeaseStandbyTakesOver: the first node leads with token 1, the
// second stands by: it refuses writes with ErrNotLeader, tails the journal
// to the leader's state, and when the leader stops (releasing the lease)
// takes over with token 2 from exactly that state, journal replay
// included.
func TestLeaseStandbyTakesOver(t *testing.T) {
	url, shard := redistest.URL(t), redistest.Shard(t)
	ttl := 300 * time.Millisecond
	a := startNode(t, url, shard, "node-a", ttl, Config{SnapshotEvery: 50})
	b := startNode(t, url, shard, "node-b", ttl, Config{SnapshotEvery: 50})
	if st := a.s.Status(); !st.Leader || !st.Writable || st.FencingToken != 1 {
		t.Fatalf("first node: %+v, want leader, writable, token 1", st)
	}
	if st := b.s.Status(); st.Leader || st.Writable || !st.Ready || st.FencingToken != 1 {
		t.Fatalf("second node: %+v, want a ready standby that has seen token 1", st)
	}
	if _, err := b.s.Submit(context.Background(), engine.Command{Kind: engine.CmdCreateAccount, Name: "x", Roles: engine.RoleBuyer}, nil); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("Submit to the standby = %v, want ErrNotLeader", err)
	}

	workload(t, a.s, 300, 3)
	want := a.s.Status().LastSeq
	waitFor(t, "standby tails to the leader's seq", func() bool { return b.s.Status().LastSeq == want })
	if got, wantHash := hashOf(b.s), hashOf(a.s); got != wantHash {
		t.Fatalf("standby hash %s at seq %d, leader's %s", got, want, wantHash)
	}

	if err := a.s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "standby takes over", func() bool { return b.s.Status().Leader })
	if st := b.s.Status(); !st.Writable || st.FencingToken != 2 {
		t.Fatalf("new leader: %+v, want writable with token 2", st)
	}
	mustSubmit(t, b.s, engine.Command{Kind: engine.CmdCreateAccount, Name: "after", Roles: engine.RoleBuyer})
	seq, h := replayHash(t, b.j)
	if got := hashOf(b.s); seq != b.s.Status().LastSeq || got != h {
		t.Fatalf("new leader at %d hash %s; journal replay gives %d %s", b.s.Status().LastSeq, got, seq, h)
	}
}

// TestFencedLeaderStepsDown: another node takes the shard while the
// leader still believes it leads (its lease deleted, as after a pause
// past its TTL). The leader's next appends are fenced: every command
// submitted then fails with ErrNotLeader, nothing of it is stored or
// applied, and the leader steps down to a standby that follows the new
// owner's journal.
func TestFencedLeaderStepsDown(t *testing.T) {
	url, shard := redistest.URL(t), redistest.Shard(t)
	// A long TTL: the keeper's renewals (every 20 s) must not notice
	// before the appends do.
	a := startNode(t, url, shard, "node-a", time.Minute, Config{})
	workload(t, a.s, 60, 2)
	before := a.s.Status().LastSeq
	hashBefore := hashOf(a.s)

	rdb := a.j.Client()
	if err := rdb.Del(context.Background(), "gpux:{"+shard+"}:lease").Err(); err != nil {
		t.Fatal(err)
	}
	thief, err := store.NewLease(rdb, shard, "node-c", "node-c:80", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	h, ok, err := thief.Acquire(context.Background())
	if err != nil || !ok || h.Token != 2 {
		t.Fatalf("thief Acquire = %+v %v %v, want token 2", h, ok, err)
	}

	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = a.s.Submit(context.Background(), engine.Command{Kind: engine.CmdCreateAccount, Name: "late", Roles: engine.RoleBuyer}, nil)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, ErrNotLeader) {
			t.Errorf("command %d after the takeover = %v, want ErrNotLeader", i, err)
		}
	}
	waitFor(t, "old leader reports the step-down", func() bool { return !a.s.Status().Leader })
	if st := a.s.Status(); st.Writable || st.LastSeq != before {
		t.Fatalf("after stepping down: %+v, want not writable at seq %d", st, before)
	}
	if got := hashOf(a.s); got != hashBefore {
		t.Fatalf("state changed by fenced commands: hash %s, want %s", got, hashBefore)
	}
	if last, err := a.j.LastSeq(context.Background()); err != nil || last != before {
		t.Fatalf("journal ends at %d (%v), want %d: a fenced command was stored", last, err, before)
	}

	// The new owner appends; the stepped-down node tails it.
	owner, err := store.NewRedisJournal(rdb, shard)
	if err != nil {
		t.Fatal(err)
	}
	owner.Fence(h.Token)
	eng := engine.New(engine.Config{})
	if _, err := Replay(context.Background(), owner, eng, nil); err != nil {
		t.Fatal(err)
	}
	c := engine.Command{Kind: engine.CmdCreateAccount, Seq: before + 1, Time: eng.Now() + 1, Target: engine.ID{1}, Name: "new owner", Roles: engine.RoleBuyer}
	if err := owner.Append(context.Background(), store.Batch{First: before + 1, Last: before + 1, Data: engine.AppendCommand(nil, &c)}); err != nil {
		t.Fatal(err)
	}
	eng.Apply(&c)
	waitFor(t, "stepped-down node tails the new owner's append", func() bool { return a.s.Status().LastSeq == before+1 })
	if got := hashOf(a.s); got != eng.Hash() {
		t.Fatalf("standby hash %s, new owner's state %s", got, eng.Hash())
	}
	// It learns the new token when it next tries the lease.
	waitFor(t, "stepped-down node sees token 2", func() bool { return a.s.Status().FencingToken == 2 })
	if st := a.s.Status(); st.Leader {
		t.Fatalf("stepped-down node leads again while node-c holds the lease: %+v", st)
	}
}

// TestLeaseLostOnRenewal: an idle leader (no command to be fenced) whose
// lease another node has taken learns it at its next renewal and steps
// down; a write then answers ErrNotLeader. When the other node releases
// the lease, it takes it back with a new token.
func TestLeaseLostOnRenewal(t *testing.T) {
	url, shard := redistest.URL(t), redistest.Shard(t)
	a := startNode(t, url, shard, "node-a", 300*time.Millisecond, Config{})
	rdb := a.j.Client()
	if err := rdb.Del(context.Background(), "gpux:{"+shard+"}:lease").Err(); err != nil {
		t.Fatal(err)
	}
	thief, err := store.NewLease(rdb, shard, "node-c", "node-c:80", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	h, ok, err := thief.Acquire(context.Background())
	if err != nil || !ok {
		t.Fatalf("thief Acquire = %+v %v %v", h, ok, err)
	}
	waitFor(t, "leader steps down at its renewal", func() bool { return !a.s.Status().Leader })
	if _, err := a.s.Submit(context.Background(), engine.Command{Kind: engine.CmdCreateAccount, Name: "x", Roles: engine.RoleBuyer}, nil); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("Submit after stepping down = %v, want ErrNotLeader", err)
	}
	if err := thief.Release(context.Background(), h.Token); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "node takes the lease back", func() bool { return a.s.Status().Leader })
	if st := a.s.Status(); st.FencingToken != h.Token+1 {
		t.Fatalf("token after taking the lease back = %d, want %d", st.FencingToken, h.Token+1)
	}
	mustSubmit(t, a.s, engine.Command{Kind: engine.CmdCreateAccount, Name: "back", Roles: engine.RoleBuyer})
}

// TestLeaseNeedsFencer: a lease on a journal that cannot be fenced is a
// configuration error, not a silent unfenced leader.
func TestLeaseNeedsFencer(t *testing.T) {
	url, shard := redistest.URL(t), redistest.Shard(t)
	j := openJournal(t, url, shard)
	l, err := store.NewLease(j.Client(), shard, "n", "n:80", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Journal: store.NewMemoryJournal(), Lease: l}); err == nil {
		t.Fatal("New with a lease and a memory journal succeeded")
	}
}
