package faults

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/history"
	"github.com/gpux/gpux/sequencer"
	"github.com/gpux/gpux/store"
)

// audited is the state the journal in Redis holds, rebuilt by the test
// itself: the stored snapshot (hash checked) plus every batch after it.
type audited struct {
	seq         uint64
	hash        string
	snapshotSeq uint64
	replayed    int
	totals      engine.Totals
}

// audit rebuilds the shard's state from Redis alone and checks it against
// what the load was told: every acknowledged command is in it, and money is
// conserved to the tick. The caller compares seq and hash with what gpuxd
// recovers next.
func audit(tb testing.TB, redisURL, shard string, l *ledger) audited {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	j, err := store.OpenRedis(ctx, redisURL, shard)
	if err != nil {
		tb.Fatalf("audit: open journal: %v", err)
	}
	defer j.Close()
	var a audited
	eng := engine.New(engine.Config{Markets: l.catalogue, FeeBps: feeBps})
	snap, ok, err := j.LoadSnapshot(ctx)
	if err != nil {
		tb.Fatalf("audit: load snapshot: %v", err)
	}
	if ok {
		if got := engine.HashOf(snap.Data); got != snap.Hash {
			tb.Fatalf("audit: snapshot at %d: data hashes to %s, stored hash %s", snap.Seq, got, snap.Hash)
		}
		if eng, err = engine.Restore(snap.Data); err != nil {
			tb.Fatalf("audit: restore snapshot at %d: %v", snap.Seq, err)
		}
		a.snapshotSeq = snap.Seq
	}
	// As recovery does, the journal after the snapshot is replayed into
	// the read side too: an order it closed may not have been stored
	// before the kill (the read side is written off the sequencer's
	// goroutine), and gpuxd's recovery stores it again. The audit keeps
	// those in memory so it checks Redis as gpuxd left it.
	tail := history.New(nil, nil)
	if a.replayed, err = sequencer.Replay(ctx, j, eng, tail.Replay); err != nil {
		tb.Fatalf("audit: replay: %v", err)
	}
	last, err := j.LastSeq(ctx)
	if err != nil {
		tb.Fatalf("audit: last seq: %v", err)
	}
	if last != eng.Seq() {
		tb.Fatalf("audit: journal ends at %d, replay reached %d", last, eng.Seq())
	}
	a.seq, a.hash, a.totals = eng.Seq(), eng.Hash(), eng.Totals()
	rm, err := store.NewReadModels(j.Client(), shard, store.ReadModelOptions{})
	if err != nil {
		tb.Fatalf("audit: read models: %v", err)
	}
	checkAcked(tb, eng, readSide{history.New(rm, nil), tail}, l)
	checkMoney(tb, a.totals, l)
	return a
}

// readSide finds a closed order in Redis's read models, else among those
// the journal after the snapshot closes (replayed into memory).
type readSide struct{ stored, tail *history.Store }

func (r readSide) Bid(ctx context.Context, id engine.ID) (engine.BidView, bool, error) {
	if v, ok, err := r.stored.Bid(ctx, id); ok || err != nil {
		return v, ok, err
	}
	return r.tail.Bid(ctx, id)
}

func (r readSide) Listing(ctx context.Context, id engine.ID) (engine.ListingView, bool, error) {
	if v, ok, err := r.stored.Listing(ctx, id); ok || err != nil {
		return v, ok, err
	}
	return r.tail.Listing(ctx, id)
}

// checkAcked fails tb for every acknowledged command that neither the
// engine nor, for orders that closed and left it, the read side has.
func checkAcked(tb testing.TB, eng *engine.Engine, closed readSide, l *ledger) {
	tb.Helper()
	l.mu.Lock()
	acked := append([]op(nil), l.acked...)
	l.mu.Unlock()
	var missing []string
	for _, o := range acked {
		if why := present(eng, closed, o); why != "" {
			missing = append(missing, why)
		}
	}
	if len(missing) > 0 {
		tb.Fatalf("%d of %d acknowledged commands are not in the journal, e.g. %v", len(missing), len(acked), missing[:min(5, len(missing))])
	}
}

// present returns "" when o's effect is in eng (or, for a cancel, in the
// read side the cancelled order moved to), or why not.
func present(eng *engine.Engine, closed readSide, o op) string {
	ctx := context.Background()
	switch o.kind {
	case opCancelBid:
		id := mustID(o.target)
		b, ok := eng.Bid(id)
		if !ok {
			var err error
			if b, ok, err = closed.Bid(ctx, id); err != nil {
				return fmt.Sprintf("cancel of bid %s: read side: %v", o.target, err)
			}
		}
		if !ok || b.Status != engine.BidCancelled {
			return fmt.Sprintf("cancel of bid %s (found %v, status %v)", o.target, ok, b.Status)
		}
	case opCancelListing:
		id := mustID(o.target)
		ls, ok := eng.Listing(id)
		if !ok {
			var err error
			if ls, ok, err = closed.Listing(ctx, id); err != nil {
				return fmt.Sprintf("cancel of listing %s: read side: %v", o.target, err)
			}
		}
		if !ok || ls.Status != engine.ListingCancelled {
			return fmt.Sprintf("cancel of listing %s (found %v, status %v)", o.target, ok, ls.Status)
		}
	default:
		// Creates and money movements are found by their Idempotency-Key,
		// which the engine journals with the command.
		target, _, ok := eng.IdempotentTarget(o.actor, o.key)
		if !ok || target != mustID(o.target) {
			return fmt.Sprintf("%s %s key %s (found %v, target %s)", opNames[o.kind], o.target, o.key, ok, target)
		}
	}
	return ""
}

func mustID(s string) engine.ID {
	id, err := engine.ParseID(s)
	if err != nil {
		panic(fmt.Sprintf("id %q: %v", s, err))
	}
	return id
}

// checkMoney checks conservation inside the engine (deposits − withdrawals
// = the sum of every balance, the fee account's included) and against the
// load: every acknowledged deposit and withdrawal is counted, and nothing
// beyond what was acknowledged or left unknown.
func checkMoney(tb testing.TB, t engine.Totals, l *ledger) {
	tb.Helper()
	if t.Supply != t.Balances {
		tb.Fatalf("money not conserved: deposits − withdrawals %d ≠ balances %d (ticks)", t.Supply, t.Balances)
	}
	if t.Held < 0 || t.Held > t.Balances {
		tb.Fatalf("holds %d outside [0, balances %d]", t.Held, t.Balances)
	}
	l.mu.Lock()
	dep, depU, wd, wdU := l.ackedDeposits, l.unknownDeposits, l.ackedWithdrawals, l.unknownWithdrawals
	l.mu.Unlock()
	// The engine keeps only deposits less withdrawals (its supply): every
	// acknowledged movement must be in it, and an unknown outcome may or may
	// not be.
	if lo, hi := dep-wd-wdU, dep+depU-wd; int64(t.Supply) < lo || int64(t.Supply) > hi {
		tb.Fatalf("deposits − withdrawals in the journal %d ticks, want between %d and %d (acknowledged %d − %d, unknown outcomes +%d/−%d)", t.Supply, lo, hi, dep, wd, depU, wdU)
	}
}

// sameState fails tb unless what gpuxd recovered is what the audit rebuilt.
func sameState(tb testing.TB, d *daemon, a audited) {
	tb.Helper()
	if d.recovered.Seq != a.seq || d.recovered.Hash != a.hash {
		tb.Fatalf("gpuxd recovered seq %d hash %s; a replay of the journal gives seq %d hash %s", d.recovered.Seq, d.recovered.Hash, a.seq, a.hash)
	}
}
