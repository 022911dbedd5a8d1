package api

import (
	"context"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/history"
	"github.com/gpux/gpux/store"
	"github.com/gpux/gpux/store/redistest"
)

// TestLedgerWriter: lines offered from many batches, with the queue past
// its bound, all land; close writes what is queued, and a batch after
// close is written by offer itself.
func TestLedgerWriter(t *testing.T) {
	st := history.NewStatements(nil, nil)
	w := newLedgerWriter(st)
	acct := engine.ID{7}
	const batches, perBatch = 25, 3000 // 75,000 lines: over ledgerQueueMax
	var balance engine.Money
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the sequencer's hook: one goroutine, batches in order
		defer wg.Done()
		for b := range batches {
			evs := make([]engine.Event, 0, perBatch+1)
			evs = append(evs, engine.Event{Kind: engine.EvBalanceChanged, Accounts: [2]engine.ID{acct}})
			for i := range perBatch {
				balance += 10
				evs = append(evs, engine.Event{Kind: engine.EvLedger, Seq: uint64(b*perBatch + i + 1), Time: engine.Time(1000 + b),
					Accounts: [2]engine.ID{acct}, Ledger: engine.LedgerDeposit, Amount: 10, Balance: balance})
			}
			w.offer(evs)
			clear(evs) // the sequencer reuses its slice
		}
	}()
	wg.Wait()
	w.close()
	ctx := context.Background()
	if got, err := st.LastBalance(ctx, acct); err != nil || got != balance {
		t.Fatalf("last balance after close: got %v %v, want %v", got, err, balance)
	}
	lines, err := st.Lines(ctx, acct, 0, 1<<62, nil, batches*perBatch+10)
	if err != nil || len(lines) != batches*perBatch {
		t.Fatalf("lines: got %d %v, want %d", len(lines), err, batches*perBatch)
	}
	balance += 5
	w.offer([]engine.Event{{Kind: engine.EvLedger, Seq: batches*perBatch + 1, Time: 5000, Accounts: [2]engine.ID{acct}, Ledger: engine.LedgerDeposit, Amount: 5, Balance: balance}})
	if got, err := st.LastBalance(ctx, acct); err != nil || got != balance {
		t.Fatalf("last balance of a batch after close: got %v %v, want %v", got, err, balance)
	}
}

// TestLedgerWriterDurable: the writer's durable mark (the sequencer's
// snapshot bound for statement lines) stays below lines the store refused
// until a later write stores them, and is open when everything is stored.
func TestLedgerWriterDurable(t *testing.T) {
	srv := redistest.StartServer(t)
	j, err := store.OpenRedis(context.Background(), srv.URL(), "ledger-durable")
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	rm, err := store.NewReadModels(j.Client(), j.Shard(), store.ReadModelOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w := newLedgerWriter(history.NewStatements(rm, nil))
	defer w.close()
	acct := engine.ID{8}
	offer := func(seq uint64) {
		t.Helper()
		w.offer([]engine.Event{{Kind: engine.EvLedger, Seq: seq, Time: engine.Time(seq), Accounts: [2]engine.ID{acct},
			Ledger: engine.LedgerDeposit, Amount: 1, Balance: engine.Money(seq)}})
	}
	settled := func(want uint64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for w.durable() != want {
			if time.Now().After(deadline) {
				t.Fatalf("durable = %d, want %d", w.durable(), want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	offer(2)
	settled(math.MaxUint64)
	srv.Stop()
	offer(5)
	settled(4)
	srv.Start()
	offer(6)
	settled(math.MaxUint64)
}
