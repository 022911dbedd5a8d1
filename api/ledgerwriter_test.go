package api

import (
	"context"
	"sync"
	"testing"

	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/history"
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
