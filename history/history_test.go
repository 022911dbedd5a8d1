package history

import (
	"context"
	"math"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/store"
)

// flaky is an ObjectStore whose writes fail while down is set.
type flaky struct {
	store.ObjectStore
	down atomic.Bool
}

func (f *flaky) PutObjects(ctx context.Context, objs []store.Object) error {
	if f.down.Load() {
		return store.ErrUnavailable
	}
	return f.ObjectStore.PutObjects(ctx, objs)
}

func closedBid(n byte, buyer engine.ID, st engine.BidStatus) engine.Event {
	v := &engine.BidView{ID: engine.ID{0: 1, 15: n}, Buyer: buyer, Seq: uint64(n), Status: st, Type: engine.Reserved, Market: "l4.us-east",
		Fills: []engine.Fill{{ID: engine.ID{0: 2, 15: n}, Quantity: 1, Price: 20000}}}
	return engine.Event{Kind: engine.EvBidClosed, Seq: uint64(n), Bid: v.ID, FinalBid: v}
}

func TestStoreServesClosedOrders(t *testing.T) {
	ctx := context.Background()
	f := &flaky{ObjectStore: store.NewMemoryReadModels(store.ReadModelOptions{})}
	s := New(f, nil)
	alice := engine.ID{0: 9, 15: 1}
	s.Observe([]engine.Event{closedBid(1, alice, engine.BidFilled), {Kind: engine.EvHourStarted}})
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if d := s.Durable(); d != math.MaxUint64 {
		t.Fatalf("durable with nothing pending: %d", d)
	}
	f.down.Store(true)
	s.Observe([]engine.Event{closedBid(2, alice, engine.BidCancelled)})
	// The writer cannot store bid 2 (closed by command 2): snapshots may
	// cover command 1 at most.
	if d := s.Durable(); d != 1 {
		t.Fatalf("durable with bid 2 pending: %d, want 1", d)
	}
	// Bid 2 is only pending, yet served.
	for n, st := range map[byte]engine.BidStatus{1: engine.BidFilled, 2: engine.BidCancelled} {
		want := closedBid(n, alice, st).FinalBid
		got, ok, err := s.Bid(ctx, want.ID)
		if err != nil || !ok || !reflect.DeepEqual(got, *want) {
			t.Fatalf("bid %d: %+v %v %v, want %+v", n, got, ok, err, *want)
		}
	}
	list := func(status string) []uint64 {
		t.Helper()
		bs, err := s.BidsBefore(ctx, alice, status, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []uint64
		for _, b := range bs {
			seqs = append(seqs, b.Seq)
		}
		return seqs
	}
	if got := list(""); len(got) != 2 {
		t.Fatalf("list with one pending: %v, want both", got)
	}
	// Back up: the writer's next retry stores what was pending.
	f.down.Store(false)
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := s.Flush(fctx); err != nil {
		t.Fatalf("after the store came back: %v", err)
	}
	if d := s.Durable(); d != math.MaxUint64 {
		t.Fatalf("durable after the flush: %d", d)
	}
	if _, ok, _ := f.ObjectStore.GetObject(ctx, kindBid, closedBid(2, alice, 0).Bid.String()); !ok {
		t.Fatal("the pending bid was not written when the store came back")
	}
	if got := list("cancelled"); !reflect.DeepEqual(got, []uint64{2}) {
		t.Fatalf("cancelled: %v, want [2]", got)
	}
	if _, ok, err := s.Bid(ctx, engine.ID{0: 1, 15: 7}); ok || err != nil {
		t.Fatalf("unknown bid: ok %v err %v", ok, err)
	}
}
