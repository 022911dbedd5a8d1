package history

import (
	"context"
	"math"
	"testing"

	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/store"
	"github.com/gpux/gpux/store/redistest"
)

// TestStatementsDurable: lines the store refuses (its Redis is down) wait
// in memory and hold Durable, and with it the read side's, just below
// their sequence number, so no snapshot trims the commands only this
// process's memory has the lines of; once a later write stores them,
// Durable is open again.
func TestStatementsDurable(t *testing.T) {
	srv := redistest.StartServer(t)
	j, err := store.OpenRedis(context.Background(), srv.URL(), "stmt-durable")
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	rm, err := store.NewReadModels(j.Client(), j.Shard(), store.ReadModelOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st := NewStatements(rm, nil)
	rs := ReadSide{Closed: New(nil, nil), Lines: st}
	acct := engine.ID{9}
	line := func(seq uint64, bal engine.Money) []engine.Event {
		return []engine.Event{{Kind: engine.EvLedger, Seq: seq, Time: engine.Time(1000 + seq), Accounts: [2]engine.ID{acct},
			Ledger: engine.LedgerDeposit, Amount: 10, Balance: bal}}
	}
	st.Observe(line(3, 10))
	if d := rs.Durable(); d != math.MaxUint64 {
		t.Fatalf("durable with every line stored = %d, want MaxUint64", d)
	}
	srv.Stop()
	st.Observe(line(7, 20))
	st.Observe(line(8, 30))
	if d := rs.Durable(); d != 6 {
		t.Fatalf("durable with lines 7 and 8 refused = %d, want 6", d)
	}
	srv.Start()
	st.Observe(line(9, 40)) // retries 7 and 8 with it
	if d := rs.Durable(); d != math.MaxUint64 {
		t.Fatalf("durable once the lines are stored = %d, want MaxUint64", d)
	}
	// The restarted server kept nothing (no persistence): what it holds is
	// what the retry wrote, the lines refused during the outage included.
	lines, err := st.Lines(context.Background(), acct, 0, 1<<62, nil, 10)
	if err != nil || len(lines) != 3 || lines[0].BalanceAfter != 20 || lines[2].BalanceAfter != 40 {
		t.Fatalf("lines after the outage: %+v %v, want the lines of 7, 8 and 9", lines, err)
	}
}
