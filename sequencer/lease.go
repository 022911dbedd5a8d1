package sequencer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/store"
)

// Lease is the shard lease a sequencer contends for (*store.Lease
// implements it). Errors reaching the backend wrap store.ErrUnavailable.
type Lease interface {
	// TTL is how long the lease lives after each acquisition or renewal.
	TTL() time.Duration
	// Acquire takes the lease with a new fencing token when nobody holds
	// it (acquired true), or reports who does (acquired false).
	Acquire(ctx context.Context) (h store.LeaseHolder, acquired bool, err error)
	// Renew extends the lease held with token; false: it is not ours.
	Renew(ctx context.Context, token uint64) (bool, error)
	// Release gives up the lease held with token, if it still is.
	Release(ctx context.Context, token uint64) error
	// Heartbeat records that this node serves the shard at now; Leave
	// removes it.
	Heartbeat(ctx context.Context, now time.Time) error
	Leave(ctx context.Context) error
}

var _ Lease = (*store.Lease)(nil)

// Sentinels of the Run loop's phases.
var (
	errPromoted    = errors.New("took the lease: leading")
	errSteppedDown = errors.New("lost the lease: standing by")
)

// tailInterval is how often a standby reads the journal's new entries.
const tailInterval = 50 * time.Millisecond

// Settled is closed once this sequencer knows whether it leads at start:
// at once without a lease; with one, when it has taken the lease and
// caught up (Status().Leader is then true) or has found another node
// holding it. Call it after Run has started.
func (s *Sequencer) Settled() <-chan struct{} { return s.settled }

func (s *Sequencer) settleNow() { s.settle.Do(func() { close(s.settled) }) }

// noteToken raises the newest fencing token seen to tok.
func (s *Sequencer) noteToken(tok uint64) {
	for {
		cur := s.seen.Load()
		if tok <= cur || s.seen.CompareAndSwap(cur, tok) {
			return
		}
	}
}

// keepLease heartbeats the node, renews the lease while it holds it and,
// while it stands by and has caught up, tries to take it. It runs on its
// own goroutine so that a slow Redis never stalls the sequencer loop, and
// talks to the loop through won and lost.
//
// It holds the lease only as long as it can prove it: a renewal that
// finds another holder, or no successful renewal for a whole TTL, counts
// as lost. Safety does not rest on this timing: every journal write checks
// the fence, so an owner that still believes it leads cannot append.
func (s *Sequencer) keepLease(ctx context.Context) {
	defer close(s.leaseDone)
	l := s.cfg.Lease
	ttl := l.TTL()
	beat := ttl / 3
	poll := min(beat, 100*time.Millisecond)
	var lastBeat, renewed time.Time
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.stop:
			return
		case <-t.C:
		}
		now := time.Now()
		// No call may outlast a beat: the next renewal is due by then.
		cctx, cancel := context.WithTimeout(ctx, beat)
		if now.Sub(lastBeat) >= beat {
			if err := l.Heartbeat(cctx, now); err != nil {
				s.log.Debug("lease heartbeat failed", "err", err)
			} else {
				lastBeat = now
			}
		}
		switch tok := s.held.Load(); {
		case tok != 0:
			if now.Sub(renewed) < beat {
				break
			}
			ok, err := l.Renew(cctx, tok)
			switch {
			case err == nil && ok:
				renewed = now
			case err == nil:
				s.loseLease(tok, "another node holds the lease")
			case now.Sub(renewed) >= ttl:
				s.loseLease(tok, "lease not renewed within its ttl: "+err.Error())
			}
		case !s.leading.Load() && s.caughtUp.Load():
			h, ok, err := l.Acquire(cctx)
			if err != nil {
				s.log.Debug("lease acquire failed", "err", err)
				break
			}
			s.noteToken(h.Token)
			if !ok {
				s.settleNow()
				break
			}
			s.held.Store(h.Token)
			renewed = now
			s.log.Info("lease taken", "token", h.Token)
			select {
			case s.won <- h.Token:
			case <-s.stop:
			case <-ctx.Done():
			}
		}
		cancel()
		t.Reset(poll)
	}
}

// loseLease is the keeper's side of losing the lease of tok: stop
// renewing it, and tell the loop.
func (s *Sequencer) loseLease(tok uint64, why string) {
	if !s.held.CompareAndSwap(tok, 0) {
		return
	}
	s.log.Warn("lease lost", "token", tok, "why", why)
	select {
	case s.lost <- tok:
	default:
	}
}

// standby tails the journal into the engine and answers every command
// with ErrNotLeader until the keeper takes the lease; then it catches up
// with the end of the journal and returns errPromoted.
func (s *Sequencer) standby(ctx context.Context) error {
	s.log.Info("standing by", "seq", s.Status().LastSeq)
	t := time.NewTicker(tailInterval)
	defer t.Stop()
	s.tailLogged(ctx)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.stop:
			return nil
		case r := <-s.in:
			// Queued before this node stopped leading: never sequenced.
			fail([]*request{r}, ErrNotLeader)
		case <-t.C:
			s.tailLogged(ctx)
		case tok := <-s.won:
			if err := s.promote(ctx, tok); err != nil {
				s.log.Error("took the lease but could not catch up; giving it up", "token", tok, "err", err)
				s.giveUp(ctx, tok)
				continue
			}
			return errPromoted
		}
	}
}

// tailLogged tails and logs a failure (the next tick tries again).
func (s *Sequencer) tailLogged(ctx context.Context) {
	if _, err := s.tail(ctx); err != nil {
		s.log.Warn("standby: journal tail failed", "seq", s.Status().LastSeq, "err", err)
	}
}

// tail applies the journal's entries after the engine's sequence number,
// feeding the read side as recovery does. A snapshot newer than the
// engine (the leader trimmed entries this standby had not read yet) is
// restored first.
func (s *Sequencer) tail(ctx context.Context) (int, error) {
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	onEvents, flush := s.recoverInto()
	n := 0
	err := s.cfg.Journal.Replay(cctx, s.engineSeq(), func(b store.Batch) error {
		s.mu.Lock()
		k, err := applyBatch(s.eng, b, onEvents)
		s.mu.Unlock()
		n += k
		return err
	})
	if err == nil && n == 0 {
		// Replay finds no gap in a journal trimmed empty past the engine:
		// the journal's end (the snapshot's seq) tells.
		var last uint64
		if last, err = s.cfg.Journal.LastSeq(cctx); err == nil && last > s.engineSeq() {
			err = fmt.Errorf("%w: journal ends at %d, no entry after %d", store.ErrGap, last, s.engineSeq())
		}
	}
	if errors.Is(err, store.ErrGap) {
		if err = s.jumpToSnapshot(cctx); err == nil {
			var m int
			m, err = s.tail(ctx)
			n += m
		}
	}
	flush()
	s.mu.RLock()
	seq, now := s.eng.Seq(), s.eng.Now()
	s.mu.RUnlock()
	s.lastTime = max(s.lastTime, now)
	s.statMu.Lock()
	s.stat.LastSeq = seq
	s.statMu.Unlock()
	if err != nil {
		return n, fmt.Errorf("tail journal after %d: %w", seq, err)
	}
	s.caughtUp.Store(true)
	return n, nil
}

func (s *Sequencer) engineSeq() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.eng.Seq()
}

// jumpToSnapshot restores the stored snapshot when it is ahead of the
// engine. The read side misses the events of the commands it skips; the
// leader fed them to the shared read models already.
func (s *Sequencer) jumpToSnapshot(ctx context.Context) error {
	snap, ok, err := s.cfg.Journal.LoadSnapshot(ctx)
	if err != nil {
		return fmt.Errorf("load snapshot: %w", err)
	}
	if !ok || snap.Seq <= s.engineSeq() {
		return fmt.Errorf("%w: and no newer snapshot to restore", store.ErrGap)
	}
	if got := engine.HashOf(snap.Data); got != snap.Hash {
		return fmt.Errorf("snapshot at %d: hash %s, stored %s", snap.Seq, got, snap.Hash)
	}
	eng, err := engine.Restore(snap.Data)
	if err != nil {
		return fmt.Errorf("restore snapshot at %d: %w", snap.Seq, err)
	}
	s.mu.Lock()
	s.eng = eng
	s.mu.Unlock()
	s.log.Info("standby restored a newer snapshot", "seq", snap.Seq)
	return nil
}

// promote makes this node the shard's leader with token tok: it reads the
// journal to its end (the previous owner can no longer append: taking the
// lease moved the fence), fences the journal with tok, starts the snapshot
// follower and opens writes.
func (s *Sequencer) promote(ctx context.Context, tok uint64) error {
	if s.repairing.Load() {
		// A repair from the previous term may still apply journaled
		// batches to the engine: leading now would apply them twice.
		return errors.New("a journal repair of the previous term is still running")
	}
	for i := 0; ; i++ {
		if _, err := s.tail(ctx); err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, s.cfg.AppendTimeout)
		last, err := s.cfg.Journal.LastSeq(cctx)
		cancel()
		if err != nil {
			return fmt.Errorf("journal tail: %w", err)
		}
		seq := s.engineSeq()
		if last == seq {
			break
		}
		if last < seq || i >= 3 {
			return fmt.Errorf("journal ends at %d, engine at %d", last, seq)
		}
	}
	s.cfg.Journal.(store.Fencer).Fence(tok)
	s.term = tok
	s.mu.RLock()
	seq, hash := s.eng.Seq(), s.eng.Hash()
	s.mu.RUnlock()
	if s.cfg.Journal.Durable() {
		// The follower rebuilds its engine from the stored snapshot and
		// the journal after it, up to seq, on its own goroutine.
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		snap, ok, err := s.cfg.Journal.LoadSnapshot(cctx)
		cancel()
		if err != nil {
			return fmt.Errorf("load snapshot for the follower: %w", err)
		}
		var base []byte
		if ok {
			base = snap.Data
		}
		s.fol = newFollower(base, seq, s.cfg.Journal, s.cfg, s.snapshotSaved)
		go s.fol.run()
	}
	s.sinceSnap = 0
	s.lastSnap = time.Now()
	s.writable.Store(true)
	s.leading.Store(true)
	s.settleNow()
	s.log.Info("leading", "token", tok, "seq", seq, "hash", hash)
	return nil
}

// giveUp releases a lease this node took but cannot use.
func (s *Sequencer) giveUp(ctx context.Context, tok uint64) {
	if !s.held.CompareAndSwap(tok, 0) {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, s.cfg.AppendTimeout)
	defer cancel()
	if err := s.cfg.Lease.Release(cctx, tok); err != nil {
		s.log.Warn("lease not released; it lapses after its ttl", "token", tok, "err", err)
	}
}

// stepDown turns a leader that lost its lease into a standby from its
// last applied sequence number: the follower stops (its snapshots would
// be fenced anyway) and the keeper stops renewing.
func (s *Sequencer) stepDown() {
	s.leading.Store(false)
	s.held.CompareAndSwap(s.term, 0)
	if f := s.fol; f != nil {
		s.fol = nil
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			f.close(ctx)
		}()
	}
	s.log.Warn("stepped down: standing by", "token", s.term, "seq", s.engineSeq())
}

// leaveLease releases the lease (when held) and leaves the nodes set, at
// Close, once the loop and the keeper have stopped.
func (s *Sequencer) leaveLease(ctx context.Context) {
	if s.cfg.Lease == nil {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, s.cfg.AppendTimeout)
	defer cancel()
	if tok := s.held.Swap(0); tok != 0 {
		if err := s.cfg.Lease.Release(cctx, tok); err != nil {
			s.log.Warn("lease not released; it lapses after its ttl", "token", tok, "err", err)
		} else {
			s.log.Info("lease released", "token", tok)
		}
	}
	if err := s.cfg.Lease.Leave(cctx); err != nil {
		s.log.Warn("node not removed from the shard's nodes", "err", err)
	}
}
