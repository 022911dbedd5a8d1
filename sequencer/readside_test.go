package sequencer

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/history"
	"github.com/gpux/gpux/store"
)

// flakyObjects is an ObjectStore whose PutObjects fails while failing is
// set: a Redis that answered the journal's append but not the read
// model's write right after.
type flakyObjects struct {
	store.ObjectStore
	failing atomic.Bool
}

func (f *flakyObjects) PutObjects(ctx context.Context, objs []store.Object) error {
	if f.failing.Load() {
		return errors.New("flaky read model: write refused")
	}
	return f.ObjectStore.PutObjects(ctx, objs)
}

// TestClosedOrderSurvivesCrash: a bid is cancelled (acknowledged) while
// the read model refuses writes, snapshots are then due past the cancel,
// and the process dies before the read model recovers. After a restart on
// the same journal and read model the cancelled bid must still be there.
// Before the read side was a sequencer.ReadSide, the follower saved a
// snapshot past the cancel (trimming the journal that held it) and
// recovery replayed nothing into the read side: the bid was gone.
func TestClosedOrderSurvivesCrash(t *testing.T) {
	j := durableMemory{store.NewMemoryJournal()}
	backing := store.NewMemoryReadModels(store.ReadModelOptions{})
	flaky := &flakyObjects{ObjectStore: backing}
	log := quietLogger()

	// First life: its read side writes through flaky.
	hist := history.New(flaky, log)
	s1, err := New(Config{Journal: j, SnapshotEvery: 3, TickInterval: -1, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	s1.Observe(hist.Observe, nil)
	s1.SetReadSide(history.ReadSide{Closed: hist})
	if err := s1.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	runCtx, stopRun := context.WithCancel(context.Background())
	go s1.Run(runCtx)

	buyer := mustSubmit(t, s1, engine.Command{Kind: engine.CmdCreateAccount, Name: "buyer", Roles: engine.RoleBuyer}).Events[0].Accounts[0]
	mustSubmit(t, s1, engine.Command{Kind: engine.CmdDeposit, Target: buyer, Amount: 1000 * engine.TicksPerUSD})
	placed := mustSubmit(t, s1, engine.Command{Kind: engine.CmdPlaceBid, BidType: engine.Spot, Actor: buyer, Market: "h100-sxm.us-east", Quantity: 1, Price: 20000})
	if placed.Err != nil {
		t.Fatalf("place bid: %v", placed.Err)
	}
	var bid engine.ID
	for _, ev := range placed.Events {
		if !ev.Bid.IsZero() {
			bid = ev.Bid
		}
	}
	flaky.failing.Store(true)
	cancelled := mustSubmit(t, s1, engine.Command{Kind: engine.CmdCancelBid, Actor: buyer, Target: bid})
	if cancelled.Err != nil {
		t.Fatalf("cancel bid: %v", cancelled.Err)
	}
	// Answered: readable at once, from memory.
	if v, ok, err := hist.Bid(context.Background(), bid); err != nil || !ok || v.Status != engine.BidCancelled {
		t.Fatalf("cancelled bid right after the answer: %+v %v %v", v, ok, err)
	}
	// More commands: snapshots fall due past the cancel.
	for range 9 {
		mustSubmit(t, s1, engine.Command{Kind: engine.CmdDeposit, Target: buyer, Amount: 1})
	}
	// Give the follower the chance to save one (it must not, past the
	// cancel, while the read side has not stored it); then "kill" the
	// process: the loop and the follower stop, nothing is flushed.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) && s1.Status().LastSnapshotSeq < cancelled.Seq {
		time.Sleep(10 * time.Millisecond)
	}
	stopRun()
	<-s1.done
	if err := s1.fol.close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if snap, ok, _ := j.LoadSnapshot(context.Background()); ok {
		t.Logf("snapshot at %d, cancel at %d", snap.Seq, cancelled.Seq)
	}

	// Second life, on the same journal and read model (healthy now).
	hist2 := history.New(backing, log)
	s2, err := New(Config{Journal: j, SnapshotEvery: 3, TickInterval: -1, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	s2.Observe(hist2.Observe, nil)
	s2.SetReadSide(history.ReadSide{Closed: hist2})
	if err := s2.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := hist2.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	v, ok, err := hist2.Bid(context.Background(), bid)
	if err != nil || !ok || v.Status != engine.BidCancelled {
		t.Fatalf("cancelled bid %s after the restart: %+v found=%v err=%v", bid, v, ok, err)
	}
	// And it is in the read model itself, not only in memory.
	if _, ok, err := backing.GetObject(context.Background(), "bid", bid.String()); err != nil || !ok {
		t.Fatalf("cancelled bid not stored after the restart: %v %v", ok, err)
	}
}

func quietLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.Default()
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
