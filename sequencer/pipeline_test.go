package sequencer

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/store"
)

// heldPipeline is a store.Pipeliner over a MemoryJournal that holds every
// append until the test answers it, so a test decides what the journal did
// with each batch in flight.
type heldPipeline struct {
	*store.MemoryJournal
	mu   sync.Mutex
	held []heldAppend
	more chan struct{} // signalled on each new append
}

type heldAppend struct {
	b    store.Batch
	done func(error)
}

func (p *heldPipeline) AppendAsync(b store.Batch, _ time.Time, done func(error)) {
	p.mu.Lock()
	p.held = append(p.held, heldAppend{store.Batch{First: b.First, Last: b.Last, Data: append([]byte(nil), b.Data...)}, done})
	p.mu.Unlock()
	select {
	case p.more <- struct{}{}:
	default:
	}
}

// waitHeld waits until at least n appends are held and returns them.
func (p *heldPipeline) waitHeld(tb testing.TB, n int) []heldAppend {
	tb.Helper()
	deadline := time.After(10 * time.Second)
	for {
		p.mu.Lock()
		if len(p.held) >= n {
			h := p.held
			p.held = nil
			p.mu.Unlock()
			return h
		}
		p.mu.Unlock()
		select {
		case <-p.more:
		case <-deadline:
			tb.Fatalf("fewer than %d appends in flight after 10s", n)
		}
	}
}

// TestPipelinedFailure sends several batches, then has the journal fail
// the second: the first is acknowledged, the second and everything after
// it answer ErrUnavailable, whether or not the journal stored them, and
// writes resume by themselves with the engine equal to the journal.
func TestPipelinedFailure(t *testing.T) {
	for _, tt := range []struct {
		name string
		// landed: the failed batch and those after it were stored anyway
		// (an append whose answer timed out).
		landed bool
	}{{"refused", false}, {"stored but unanswered", true}} {
		t.Run(tt.name, func(t *testing.T) {
			j := &heldPipeline{MemoryJournal: store.NewMemoryJournal(), more: make(chan struct{}, 1)}
			s := start(t, Config{Journal: j, MaxInFlight: 4, MaxBatch: 1})
			// The account's own create must go through first.
			go func() {
				for _, h := range j.waitHeld(t, 1) {
					h.done(j.Append(context.Background(), h.b))
				}
			}()
			acct := mustSubmit(t, s, engine.Command{Kind: engine.CmdCreateAccount, Name: "a", Roles: engine.RoleBuyer}).Events[0].Accounts[0]

			const n = 4
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					out, err := s.Submit(context.Background(), engine.Command{Kind: engine.CmdDeposit, Target: acct, Amount: 100}, nil)
					if err == nil && out.Err != nil {
						err = out.Err
					}
					errs[i] = err
				}()
				// One command per batch, sent in this order.
				j.waitHeldCount(t, i+1)
			}
			held := j.waitHeld(t, n)
			if tt.landed {
				for _, h := range held {
					if err := j.Append(context.Background(), h.b); err != nil {
						t.Fatal(err)
					}
				}
			}
			// Answer in reverse order: the sequencer must still acknowledge
			// in sequence order and stop at the failure.
			for i := n - 1; i >= 0; i-- {
				h := held[i]
				switch {
				case i == 0:
					h.done(j.Append(context.Background(), h.b)) // a no-op when landed
				case tt.landed:
					h.done(store.ErrUnavailable)
				case i == 1:
					h.done(store.ErrUnavailable)
				default:
					h.done(store.ErrConflict) // the real pipeline refuses what follows a failure
				}
			}
			wg.Wait()
			acked := 0
			for _, err := range errs {
				switch {
				case err == nil:
					acked++
				case !errors.Is(err, ErrUnavailable):
					t.Errorf("submit = %v, want nil or ErrUnavailable", err)
				}
			}
			if acked != 1 {
				t.Errorf("%d of %d deposits acknowledged, want only the first batch's", acked, n)
			}
			// Writes come back by themselves; the engine holds what the
			// journal holds.
			deadline := time.Now().Add(10 * time.Second)
			for !s.Status().Writable {
				if time.Now().After(deadline) {
					t.Fatal("writes did not resume")
				}
				time.Sleep(10 * time.Millisecond)
			}
			last, _ := j.LastSeq(context.Background())
			var bal engine.Money
			var seq uint64
			s.Read(func(e *engine.Engine) { a, _ := e.Account(acct); bal, seq = a.Balance, e.Seq() })
			if seq != last {
				t.Errorf("engine at %d, journal at %d", seq, last)
			}
			want := engine.Money(100)
			if tt.landed {
				want = 100 * n
			}
			if bal != want {
				t.Errorf("balance %d, want %d", bal, want)
			}
		})
	}
}

// waitHeldCount waits until n appends are held, leaving them held.
func (p *heldPipeline) waitHeldCount(tb testing.TB, n int) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p.mu.Lock()
		got := len(p.held)
		p.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d appends held after 10s, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}
