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
// queued to a writer goroutine instead of blocking the sequencer. The API
// reads from here. The package imports engine types, store and pricing
// (the math); it never changes the engine.
package history

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
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

// writeTimeout bounds one batch's write from the sequencer's goroutine.
const writeTimeout = 2 * time.Second

// retryTimeout bounds the write while earlier ones failed (something is
// pending): the store is likely still down, and with pipelined journal
// appends several batches complete before the sequencer sees the journal
// fail, each of which would otherwise hold it for a whole writeTimeout (the
// fault suite's frozen Redis kept /readyz at 200 for over 15 s).
const retryTimeout = 250 * time.Millisecond

// timeoutFor is the write bound given what is pending.
func timeoutFor(pending int) time.Duration {
	if pending > 0 {
		return retryTimeout
	}
	return writeTimeout
}

// Store holds closed orders. It is safe for concurrent use.
type Store struct {
	objs store.ObjectStore
	log  *slog.Logger

	// Objects not yet written (the store failed): readable here, and
	// retried with the next batch. The journal and the read models share
	// Redis, so this only holds what closed while Redis failed between a
	// journal append and this write.
	mu      sync.Mutex
	pending []store.Object
	byID    map[string]store.Object // kind/id of pending
}

// New returns a Store on objs; nil objs keeps closed orders in memory.
func New(objs store.ObjectStore, log *slog.Logger) *Store {
	if objs == nil {
		objs = store.NewMemoryReadModels(store.ReadModelOptions{})
	}
	if log == nil {
		log = slog.Default()
	}
	return &Store{objs: objs, log: log, byID: map[string]store.Object{}}
}

// Observe stores the closed orders among a batch's events. It blocks for
// the write (at most writeTimeout): the engine has already forgotten them,
// so a snapshot without them must not be saved before they are stored
// (the sequencer saves snapshots after its observers return). A failed
// write is kept in memory, served from there, and retried.
func (s *Store) Observe(evs []engine.Event) {
	var objs []store.Object
	for i := range evs {
		ev := &evs[i]
		switch {
		case ev.Kind == engine.EvBidClosed && ev.FinalBid != nil:
			objs = append(objs, bidObject(ev.FinalBid))
		case ev.Kind == engine.EvListingClosed && ev.FinalListing != nil:
			objs = append(objs, listingObject(ev.FinalListing))
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(objs) == 0 && len(s.pending) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeoutFor(len(s.pending)))
	objs = append(s.pending, objs...)
	defer cancel()
	if err := s.objs.PutObjects(ctx, objs); err != nil {
		s.log.Error("closed orders not stored yet; kept in memory", "objects", len(objs), "err", err)
		s.pending = objs
		for _, o := range objs {
			s.byID[o.Kind+"/"+o.ID] = o
		}
		return
	}
	s.pending = nil
	clear(s.byID)
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
	o, ok := s.byID[kind+"/"+id.String()]
	s.mu.Unlock()
	if ok {
		return o, true, nil
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
	s.mu.Lock()
	for _, o := range s.pending {
		if o.Kind == kind && o.Owner == owner.String() && (status == "" || o.Status == status) && (before == 0 || o.Seq < before) {
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
