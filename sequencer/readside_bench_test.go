package sequencer

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/history"
	"github.com/gpux/gpux/store"
	"github.com/gpux/gpux/store/redistest"
)

// BenchmarkClosedOrders journals bid-then-cancel pairs (every cancel
// closes a bid the read side must store) on a Redis journal, without a
// read side ("bare") and with history's closed orders in Redis read models
// on the same Redis ("history"): the ratio is what the read side costs the
// sequencer.
func BenchmarkClosedOrders(b *testing.B) {
	url := benchRedis(b)
	const workers = 64
	for _, withHistory := range []bool{false, true} {
		name := "bare"
		if withHistory {
			name = "history"
		}
		b.Run(name, func(b *testing.B) {
			shard := redistest.ShardAt(b, url)
			j, err := store.OpenRedis(context.Background(), url, shard)
			if err != nil {
				b.Fatal(err)
			}
			defer j.Close()
			cfg := Config{Journal: j, MaxInFlight: benchInFlight(), TickInterval: -1, Logger: quietLogger()}
			s, err := New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			if withHistory {
				rm, err := store.NewReadModels(j.Client(), shard, store.ReadModelOptions{})
				if err != nil {
					b.Fatal(err)
				}
				cs := &countingObjects{ObjectStore: rm}
				defer func() { b.ReportMetric(float64(cs.objs.Load())/float64(max(1, cs.calls.Load())), "objects/write") }()
				h := history.New(cs, quietLogger())
				s.Observe(h.Observe, nil)
				s.SetReadSide(history.ReadSide{Closed: h})
			}
			if err := s.Recover(context.Background()); err != nil {
				b.Fatal(err)
			}
			go s.Run(context.Background())
			defer s.Close(context.Background())
			buyer := mustSubmit(b, s, engine.Command{Kind: engine.CmdCreateAccount, Name: "b", Roles: engine.RoleBuyer}).Events[0].Accounts[0]
			mustSubmit(b, s, engine.Command{Kind: engine.CmdDeposit, Target: buyer, Amount: 1_000_000_000 * engine.TicksPerUSD})
			b.ResetTimer()
			var wg sync.WaitGroup
			per := (b.N/2 + workers - 1) / workers
			for range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range per {
						out, err := s.Submit(context.Background(), engine.Command{Kind: engine.CmdPlaceBid, BidType: engine.Spot, Actor: buyer, Market: "h100-sxm.us-east", Quantity: 1, Price: 10000}, nil)
						if err != nil || out.Err != nil {
							b.Errorf("place: %v %v", err, out.Err)
							return
						}
						var bid engine.ID
						for _, ev := range out.Events {
							if !ev.Bid.IsZero() {
								bid = ev.Bid
							}
						}
						if _, err := s.Submit(context.Background(), engine.Command{Kind: engine.CmdCancelBid, Actor: buyer, Target: bid}, nil); err != nil {
							b.Errorf("cancel: %v", err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(2*per*workers)/b.Elapsed().Seconds(), "commands/s")
		})
	}
}

// countingObjects counts the read side's writes.
type countingObjects struct {
	store.ObjectStore
	calls, objs atomic.Int64
}

func (c *countingObjects) PutObjects(ctx context.Context, objs []store.Object) error {
	c.calls.Add(1)
	c.objs.Add(int64(len(objs)))
	return c.ObjectStore.PutObjects(ctx, objs)
}
