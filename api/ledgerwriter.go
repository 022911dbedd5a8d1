package api

import (
	"sync"

	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/history"
)

// ledgerQueueMax bounds the ledger lines waiting for the writer; past it
// the sequencer's hook waits for the writer (back-pressure, nothing lost).
const ledgerQueueMax = 64 << 10

// ledgerWriter stores the statement lines of each batch off the
// sequencer's goroutine. The statement endpoint already waits until the
// stored lines reach the engine's balance (statementState), so lines may
// land after the command's response; the sequencer no longer waits for a
// read-model write per batch (13 % of its time in BenchmarkPostBid, and a
// Redis round trip per batch with a Redis journal). Lines queued while a
// write runs go out together in the next one.
type ledgerWriter struct {
	st *history.Statements

	mu     sync.Mutex
	cond   *sync.Cond // signalled when queue grows, empties or closed changes
	queue  []engine.Event
	closed bool
	done   chan struct{}
	// writing is the sequence number of the first line of the batch being
	// written, 0 when none is.
	writing uint64
}

// durable is history.ReadSide.LinesDurable: lines queued or being written
// hold snapshots back as lines the store refused do, so no snapshot trims
// a command whose statement lines are only in this process's memory.
func (w *ledgerWriter) durable() uint64 {
	w.mu.Lock()
	low := w.writing
	if low == 0 && len(w.queue) > 0 {
		low = w.queue[0].Seq
	}
	w.mu.Unlock()
	d := w.st.Durable()
	if low != 0 {
		d = min(d, low-1)
	}
	return d
}

func newLedgerWriter(st *history.Statements) *ledgerWriter {
	w := &ledgerWriter{st: st, done: make(chan struct{})}
	w.cond = sync.NewCond(&w.mu)
	go w.run()
	return w
}

// offer queues the EvLedger events of a batch (copied: the sequencer
// reuses its slice). After close it writes them itself.
func (w *ledgerWriter) offer(evs []engine.Event) {
	var lines []engine.Event
	for i := range evs {
		if evs[i].Kind == engine.EvLedger {
			lines = append(lines, evs[i])
		}
	}
	if len(lines) == 0 {
		return
	}
	w.mu.Lock()
	for !w.closed && len(w.queue) >= ledgerQueueMax {
		w.cond.Wait()
	}
	if w.closed {
		w.mu.Unlock()
		w.st.Observe(lines)
		return
	}
	w.queue = append(w.queue, lines...)
	w.cond.Broadcast()
	w.mu.Unlock()
}

func (w *ledgerWriter) run() {
	defer close(w.done)
	w.mu.Lock()
	for {
		for len(w.queue) == 0 && !w.closed {
			w.cond.Wait()
		}
		if len(w.queue) == 0 {
			w.mu.Unlock()
			return
		}
		batch := w.queue
		w.queue = nil
		w.writing = batch[0].Seq
		w.cond.Broadcast() // room again for a waiting offer
		w.mu.Unlock()
		w.st.Observe(batch)
		w.mu.Lock()
		w.writing = 0
		w.cond.Broadcast()
	}
}

// close writes what is queued and stops the goroutine; later offers write
// synchronously, so no line is lost to a shutdown.
func (w *ledgerWriter) close() {
	w.mu.Lock()
	w.closed = true
	w.cond.Broadcast()
	w.mu.Unlock()
	<-w.done
}
