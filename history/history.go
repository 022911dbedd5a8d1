// Package history is the exchange's read side: the market's past, built
// from the sequencer's events. The engine holds only the live market; this
// package keeps what it has let go of and answers for it from then on, in
// Redis through the store read models or in memory without Redis:
//
//   - Store (history.go): bids and listings that can no longer change
//     (filled, cancelled, expired, ended); the event that closes one
//     (engine.EvBidClosed, EvListingClosed) carries its final state.
//   - Statements (statement.go): every account's ledger lines.
//   - Prices (prices.go, trades.go): the pricing.Board (24 h VWAP and
//     candles in memory) seeded from the engine and fed by events, and the
//     trade log, spot price history and candles persisted beyond the
//     engine's memory; Prices.Candles merges the stored and in-memory
//     candles for the history endpoint.
//
// Each part has an Observe fed on the sequencer's goroutine before the
// batch's callers hear back (api.Server.OnEvents calls them, in order,
// before the feed hub), so a closed order is readable and the board is up
// to date as soon as a command is answered; what can wait for Redis is
// queued to a writer goroutine instead of blocking the sequencer (closed
// orders too: see Store for how a crash still loses none). The API
// reads from here. The package imports engine types, store and pricing
// (the math); it never changes the engine.
package history

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/store"
)

// Object kinds in the object store.
const (
	kindBid     = "bid"
	kindListing = "listing"
)

// writeTimeout bounds one write of the writer goroutine.
const writeTimeout = 2 * time.Second

// retryTimeout bounds the write while earlier ones failed (something is
// pending): the store is likely still down, and the statements' writes,
// still on the sequencer's goroutine, must not hold it for long.
const retryTimeout = 250 * time.Millisecond

// timeoutFor is the write bound given what is pending.
func timeoutFor(pending int) time.Duration {
	if pending > 0 {
		return retryTimeout
	}
	return writeTimeout
}

// queueMax bounds the closed orders waiting for the writer; past it
// Observe waits for the writer (back-pressure on the sequencer, nothing
// lost).
const queueMax = 64 << 10

// maxBackoff caps the wait between failed writes.
const maxBackoff = 2 * time.Second

// queued is one closed order waiting to be stored, with the sequence
// number of the command that closed it.
type queued struct {
	obj     store.Object
	closeAt uint64
}

// Store holds closed orders. It is safe for concurrent use.
//
// Observe only queues what closed (in memory, where reads find it at
// once); a writer goroutine stores the queue, all of it per write, and
// retries with backoff while the store fails. Durable tells the sequencer
// how far a snapshot may go: an order the engine has forgotten must be
// stored before a snapshot that covers its close (and the journal trimmed
// behind that snapshot) can be saved, or a crash loses it; after a crash
// recovery replays the journal after the snapshot into Replay, which
// stores again whatever closed there (a put keyed by id: idempotent).
type Store struct {
	objs store.ObjectStore
	log  *slog.Logger

	mu      sync.Mutex
	cond    *sync.Cond        // signalled when pending shrinks or grows
	pending []queued          // not yet stored, in close order
	byID    map[string]queued // kind/id of pending
	wake    chan struct{}     // capacity 1: pending grew
}

// New returns a Store on objs; nil objs keeps closed orders in memory. Its
// writer goroutine lives as long as the process (it idles when nothing is
// pending).
func New(objs store.ObjectStore, log *slog.Logger) *Store {
	if objs == nil {
		objs = store.NewMemoryReadModels(store.ReadModelOptions{})
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Store{objs: objs, log: log, byID: map[string]queued{}, wake: make(chan struct{}, 1)}
	s.cond = sync.NewCond(&s.mu)
	go s.write()
	return s
}

// Observe queues the closed orders among a batch's events for the writer.
// It does not wait for the store: reads find a queued order at once, so a
// closed order is readable as soon as its command is answered, and
// Durable holds snapshots back until it is stored. It waits only when
// queueMax orders are already waiting.
func (s *Store) Observe(evs []engine.Event) {
	var objs []queued
	for i := range evs {
		ev := &evs[i]
		switch {
		case ev.Kind == engine.EvBidClosed && ev.FinalBid != nil:
			objs = append(objs, queued{bidObject(ev.FinalBid), ev.Seq})
		case ev.Kind == engine.EvListingClosed && ev.FinalListing != nil:
			objs = append(objs, queued{listingObject(ev.FinalListing), ev.Seq})
		}
	}
	if len(objs) == 0 {
		return
	}
	s.mu.Lock()
	for len(s.pending) >= queueMax {
		s.cond.Wait()
	}
	s.pending = append(s.pending, objs...)
	for _, q := range objs {
		s.byID[q.obj.Kind+"/"+q.obj.ID] = q
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Replay is Observe for recovery: the sequencer feeds it the events of the
// journaled commands after the snapshot it restored, so what closed there
// and was lost with the process's memory is stored again.
func (s *Store) Replay(evs []engine.Event) { s.Observe(evs) }

// Durable is the highest sequence number a snapshot may cover: every
// order closed by a command up to it is stored. With nothing waiting it is
// math.MaxUint64 (everything observed is stored).
func (s *Store) Durable() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) == 0 {
		return math.MaxUint64
	}
	return s.pending[0].closeAt - 1
}

// Flush waits until every order observed so far is stored, or ctx ends.
func (s *Store) Flush(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		s.mu.Lock()
		n := len(s.pending)
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("flush %d closed orders: %w", n, ctx.Err())
		case <-t.C:
		}
	}
}

// write is the writer goroutine: it stores everything pending in one
// write, drops it from pending once stored, and backs off while the store
// fails.
func (s *Store) write() {
	backoff := 50 * time.Millisecond
	for {
		s.mu.Lock()
		n := len(s.pending)
		objs := make([]store.Object, n)
		for i, q := range s.pending[:n] {
			objs[i] = q.obj
		}
		s.mu.Unlock()
		if n == 0 {
			<-s.wake
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
		err := s.objs.PutObjects(ctx, objs)
		cancel()
		if err != nil {
			s.log.Error("closed orders not stored yet; kept in memory and retried", "objects", n, "err", err)
			time.Sleep(backoff)
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff = 50 * time.Millisecond
		s.mu.Lock()
		for _, q := range s.pending[:n] {
			k := q.obj.Kind + "/" + q.obj.ID
			if cur, ok := s.byID[k]; ok && cur.closeAt == q.closeAt {
				delete(s.byID, k)
			}
		}
		s.pending = append(s.pending[:0:0], s.pending[n:]...)
		s.cond.Broadcast()
		s.mu.Unlock()
	}
}

func bidObject(b *engine.BidView) store.Object {
	data, _ := json.Marshal(b) // plain data: cannot fail
	return store.Object{Kind: kindBid, ID: b.ID.String(), Owner: b.Buyer.String(), Status: b.Status.String(), Seq: b.Seq, Data: data}
}

func listingObject(l *engine.ListingView) store.Object {
	data, _ := json.Marshal(l)
	return store.Object{Kind: kindListing, ID: l.ID.String(), Owner: l.Owner.String(), Status: l.Status.String(), Seq: l.Seq, Data: data}
}

// get finds one object, pending ones first.
func (s *Store) get(ctx context.Context, kind string, id engine.ID) (store.Object, bool, error) {
	s.mu.Lock()
	q, ok := s.byID[kind+"/"+id.String()]
	s.mu.Unlock()
	if ok {
		return q.obj, true, nil
	}
	o, ok, err := s.objs.GetObject(ctx, kind, id.String())
	if err != nil {
		return o, false, fmt.Errorf("closed %s %s: %w", kind, id, err)
	}
	return o, ok, nil
}

// list pages an owner's objects, merging pending ones in.
func (s *Store) list(ctx context.Context, kind string, owner engine.ID, status string, before uint64, limit int) ([]store.Object, error) {
	objs, err := s.objs.ListObjects(ctx, kind, owner.String(), status, before, limit)
	if err != nil {
		return nil, fmt.Errorf("closed %ss of %s: %w", kind, owner, err)
	}
	// An order may be both stored and still pending (the writer has not
	// dropped it yet): list it once.
	stored := make(map[string]bool, len(objs))
	for _, o := range objs {
		stored[o.ID] = true
	}
	s.mu.Lock()
	for _, q := range s.pending {
		if o := q.obj; o.Kind == kind && o.Owner == owner.String() && (status == "" || o.Status == status) && (before == 0 || o.Seq < before) && !stored[o.ID] {
			stored[o.ID] = true
			objs = append(objs, o)
		}
	}
	s.mu.Unlock()
	return objs, nil
}

// Bid returns a closed bid's final state; ok false when the read side has
// no such bid (it may be open: ask the engine first).
func (s *Store) Bid(ctx context.Context, id engine.ID) (engine.BidView, bool, error) {
	o, ok, err := s.get(ctx, kindBid, id)
	if !ok || err != nil {
		return engine.BidView{}, false, err
	}
	var v engine.BidView
	if err := json.Unmarshal(o.Data, &v); err != nil {
		return v, false, fmt.Errorf("closed bid %s: %w", id, err)
	}
	return v, true, nil
}

// Listing returns a closed listing's final state, like Bid.
func (s *Store) Listing(ctx context.Context, id engine.ID) (engine.ListingView, bool, error) {
	o, ok, err := s.get(ctx, kindListing, id)
	if !ok || err != nil {
		return engine.ListingView{}, false, err
	}
	var v engine.ListingView
	if err := json.Unmarshal(o.Data, &v); err != nil {
		return v, false, fmt.Errorf("closed listing %s: %w", id, err)
	}
	return v, true, nil
}

// BidsBefore lists up to limit of an account's closed bids with Seq <
// before (0: from the newest), newest first, only those with status when
// it is not empty (as engine.Engine.BidsBefore does for open ones).
func (s *Store) BidsBefore(ctx context.Context, account engine.ID, status string, before uint64, limit int) ([]engine.BidView, error) {
	objs, err := s.list(ctx, kindBid, account, status, before, limit)
	if err != nil {
		return nil, err
	}
	out := make([]engine.BidView, len(objs))
	for i, o := range objs {
		if err := json.Unmarshal(o.Data, &out[i]); err != nil {
			return nil, fmt.Errorf("closed bid %s: %w", o.ID, err)
		}
	}
	return out, nil
}

// ListingsBefore lists an account's closed listings like BidsBefore.
func (s *Store) ListingsBefore(ctx context.Context, account engine.ID, status string, before uint64, limit int) ([]engine.ListingView, error) {
	objs, err := s.list(ctx, kindListing, account, status, before, limit)
	if err != nil {
		return nil, err
	}
	out := make([]engine.ListingView, len(objs))
	for i, o := range objs {
		if err := json.Unmarshal(o.Data, &out[i]); err != nil {
			return nil, fmt.Errorf("closed listing %s: %w", o.ID, err)
		}
	}
	return out, nil
}

// ReadSide is the read side as the sequencer sees it (sequencer.ReadSide):
// closed orders and statement lines. Recovery replays into both (both
// writes are idempotent: objects keyed by id, lines by sequence number),
// and snapshots wait for both (Durable).
type ReadSide struct {
	Closed *Store
	Lines  *Statements // nil: none
	// LinesDurable, when set, is Durable of the lines as a writer that
	// stores them off the sequencer's goroutine sees it (lines it has
	// queued or is writing hold it back too); nil: Lines.Durable.
	LinesDurable func() uint64
}

// Replay stores what the recovered commands' events closed or posted.
func (r ReadSide) Replay(evs []engine.Event) {
	r.Closed.Replay(evs)
	if r.Lines != nil {
		r.Lines.Observe(evs)
	}
}

// Durable is the lower of the closed orders' and the lines' Durable.
func (r ReadSide) Durable() uint64 {
	d := r.Closed.Durable()
	switch {
	case r.LinesDurable != nil:
		d = min(d, r.LinesDurable())
	case r.Lines != nil:
		d = min(d, r.Lines.Durable())
	}
	return d
}

// Flush waits for the closed orders to be stored. Lines still queued hold
// the final snapshot back through Durable.
func (r ReadSide) Flush(ctx context.Context) error { return r.Closed.Flush(ctx) }
