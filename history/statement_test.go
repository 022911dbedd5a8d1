package history_test

import (
	"context"
	"testing"

	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/history"
	"github.com/gpux/gpux/store"
)

// downSeries is a SeriesStore whose writes fail while down is set.
type downSeries struct {
	store.SeriesStore
	down bool
}

func (d *downSeries) AddSeries(ctx context.Context, series string, es []store.SeriesEntry) error {
	if d.down {
		return store.ErrUnavailable
	}
	return d.SeriesStore.AddSeries(ctx, series, es)
}

func ledger(seq uint64, at engine.Time, acct engine.ID, kind engine.LedgerKind, amount, balance engine.Money) engine.Event {
	return engine.Event{Kind: engine.EvLedger, Seq: seq, Time: at, Accounts: [2]engine.ID{acct}, Ledger: kind, Amount: amount, Balance: balance}
}

// TestStatementsStoreDown: lines a failing store did not take are served
// from memory and written with the next batch; a replayed batch changes
// nothing; two lines of one command keep their order.
func TestStatementsStoreDown(t *testing.T) {
	ctx := context.Background()
	ss := &downSeries{SeriesStore: store.NewMemoryReadModels(store.ReadModelOptions{})}
	st := history.NewStatements(ss, nil)
	a := engine.ID{0: 1, 15: 1}
	batch1 := []engine.Event{ledger(1, 1000, a, engine.LedgerDeposit, 500, 500), ledger(1, 1000, a, engine.LedgerWithdrawal, -100, 400)}
	st.Observe(batch1)
	ss.down = true
	st.Observe([]engine.Event{ledger(2, 2000, a, engine.LedgerDeposit, 50, 450)})
	check := func(when string) {
		t.Helper()
		ls, err := st.Lines(ctx, a, 0, 1<<62, nil, 10)
		if err != nil {
			t.Fatal(err)
		}
		var got []engine.Money
		for _, l := range ls {
			got = append(got, l.BalanceAfter)
		}
		if len(got) != 3 || got[0] != 500 || got[1] != 400 || got[2] != 450 {
			t.Errorf("%s: balances %v, want [500 400 450]", when, got)
		}
		if b, err := st.LastBalance(ctx, a); err != nil || b != 450 {
			t.Errorf("%s: last balance %d, %v; want 450", when, b, err)
		}
	}
	check("store down")
	ss.down = false
	st.Observe(batch1) // a replay of the first batch, and the retry
	check("store back")
	ls, _ := ss.SeriesRange(ctx, "stmt:"+a.String(), 0, store.MaxSeriesScore, nil, 10)
	if len(ls) != 3 {
		t.Errorf("stored: %d lines, want 3 (the retried one written, the replay not doubled)", len(ls))
	}
}
