package sequencer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/store"
)

// follower is a second engine that applies every journaled batch on its
// own goroutine and takes the snapshots, so that the sequencer never stops
// for one, whatever the state's size: determinism makes the follower's
// state at sequence number n the leader's state at n, byte for byte.
//
// It recovers its engine itself, from the same snapshot and journal as the
// sequencer, on its own goroutine. The sequencer hands it each applied
// batch's encoded commands (a copy)
// through an unbounded queue, so a snapshot in progress delays the
// follower, never the sequencer. Batches the leader applied from the
// journal (after an outage) are not handed over: the follower notices the
// jump in sequence numbers and reads them from the journal, which no one
// trims past the follower's own snapshots.
//
// The price is a second copy of the engine in memory and a second core's
// worth of apply work.
type follower struct {
	j        store.Journal
	log      *slog.Logger
	every    int
	interval time.Duration
	now      func() time.Time
	saved    func(seq uint64) // after each stored snapshot
	rs       ReadSide         // a snapshot waits for it (nil: none)

	mu     sync.Mutex
	queue  [][]byte
	closed bool
	wake   chan struct{} // capacity 1
	done   chan struct{}
	quit   chan struct{} // closed by close: a snapshot stops waiting for the read side

	// base is the snapshot the follower recovers from (nil: a new engine
	// with cfg's markets and fee) before it applies anything queued.
	base   []byte
	newEng engine.Config
	upTo   uint64 // the leader's recovered seq: where the follower's recovery stops

	// Owned by the follower goroutine.
	eng       *engine.Engine
	sinceSnap int
	lastSnap  time.Time
}

func newFollower(base []byte, upTo uint64, j store.Journal, cfg Config, saved func(uint64)) *follower {
	return &follower{
		upTo: upTo,
		j:    j, log: cfg.Logger, every: cfg.SnapshotEvery, interval: cfg.SnapshotInterval, now: cfg.Now, saved: saved, rs: cfg.ReadSide,
		wake: make(chan struct{}, 1), done: make(chan struct{}), quit: make(chan struct{}), lastSnap: time.Now(),
		base: base, newEng: engine.Config{Markets: cfg.Markets, FeeBps: cfg.FeeBps},
	}
}

// recover builds the follower's engine the way Recover built the
// leader's: the snapshot, then the journal after it, up to the leader's
// recovered seq and no further: a batch after it may not have been seen by
// the sequencer's observers yet, and no snapshot may cover such a batch.
func (f *follower) recover() error {
	eng := engine.New(f.newEng)
	if f.base != nil {
		var err error
		if eng, err = engine.Restore(f.base); err != nil {
			return fmt.Errorf("follower: restore snapshot: %w", err)
		}
		f.base = nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if _, err := replayTo(ctx, f.j, eng, f.upTo); err != nil {
		return fmt.Errorf("follower: %w", err)
	}
	f.eng = eng
	return nil
}

// errReplayDone ends a bounded replay.
var errReplayDone = errors.New("replay reached its end")

// replayTo applies the journaled commands after eng's seq up to and
// including upTo, and fails unless it reaches upTo.
func replayTo(ctx context.Context, j store.Journal, eng *engine.Engine, upTo uint64) (int, error) {
	n := 0
	err := j.Replay(ctx, eng.Seq(), func(b store.Batch) error {
		for data := b.Data; len(data) > 0; {
			c, rest, err := engine.DecodeCommand(data)
			if err != nil {
				return fmt.Errorf("batch %d: %w", b.First, err)
			}
			data = rest
			switch {
			case c.Seq <= eng.Seq():
				continue
			case c.Seq > upTo:
				return errReplayDone
			case c.Seq != eng.Seq()+1:
				return fmt.Errorf("batch %d: command %d does not follow %d", b.First, c.Seq, eng.Seq())
			}
			eng.Apply(&c)
			n++
		}
		return nil
	})
	if err != nil && !errors.Is(err, errReplayDone) {
		return n, fmt.Errorf("replay journal to %d: %w", upTo, err)
	}
	if eng.Seq() != upTo {
		return n, fmt.Errorf("replay journal to %d: it ends at %d", upTo, eng.Seq())
	}
	return n, nil
}

// push queues a copy of one applied batch's encoded commands. It never
// blocks on the follower.
func (f *follower) push(data []byte) {
	b := append([]byte(nil), data...)
	f.mu.Lock()
	if !f.closed {
		f.queue = append(f.queue, b)
	}
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// close stops the follower after it has applied what is queued (it takes
// no snapshot for it: the sequencer's Close writes the final one) and
// waits for it, or for ctx.
func (f *follower) close(ctx context.Context) error {
	f.mu.Lock()
	if !f.closed {
		close(f.quit)
	}
	f.closed = true
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
	select {
	case <-f.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop snapshot follower: %w", ctx.Err())
	}
}

// run applies queued batches and snapshots when one is due.
func (f *follower) run() {
	defer close(f.done)
	if err := f.recover(); err != nil {
		f.log.Error("snapshot follower did not start; no snapshots until restart", "err", err)
		f.drainForever()
		return
	}
	for {
		f.mu.Lock()
		q, closed := f.queue, f.closed
		f.queue = nil
		f.mu.Unlock()
		for _, data := range q {
			if err := f.apply(data); err != nil {
				// The follower cannot go on; snapshots stop, the sequencer
				// does not. The next start replays a longer journal.
				f.log.Error("snapshot follower stopped; no more snapshots until restart", "err", err)
				f.drainForever()
				return
			}
			// Due snapshots are taken between batches, not once per
			// drain: a follower that fell behind still snapshots every
			// f.every commands, so what a restart replays stays bounded.
			if f.sinceSnap >= f.every {
				f.snapshot()
			}
		}
		if closed {
			return
		}
		if f.sinceSnap > 0 && time.Since(f.lastSnap) >= f.interval {
			f.snapshot()
		}
		if len(q) == 0 {
			<-f.wake
		}
	}
}

// drainForever drops what is pushed until close, so push stays cheap.
func (f *follower) drainForever() {
	for {
		f.mu.Lock()
		f.queue = nil
		closed := f.closed
		f.mu.Unlock()
		if closed {
			return
		}
		<-f.wake
	}
}

func (f *follower) apply(data []byte) error {
	for len(data) > 0 {
		c, rest, err := engine.DecodeCommand(data)
		if err != nil {
			return fmt.Errorf("follower: decode command after %d: %w", f.eng.Seq(), err)
		}
		data = rest
		if c.Seq <= f.eng.Seq() {
			continue
		}
		if c.Seq != f.eng.Seq()+1 {
			// The leader applied batches from the journal (repair): read
			// them from there too.
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			n, err := replayTo(ctx, f.j, f.eng, c.Seq-1)
			cancel()
			if err != nil {
				return fmt.Errorf("follower: catch up from %d: %w", f.eng.Seq(), err)
			}
			f.sinceSnap += n
			if c.Seq <= f.eng.Seq() {
				continue
			}
			if c.Seq != f.eng.Seq()+1 {
				return fmt.Errorf("follower: command %d does not follow %d", c.Seq, f.eng.Seq())
			}
		}
		f.eng.ApplyReplay(&c) // nobody reads a follower's events
		f.sinceSnap++
	}
	return nil
}

func (f *follower) snapshot() {
	data := f.eng.Snapshot()
	snap := store.Snapshot{Seq: f.eng.Seq(), Hash: engine.HashOf(data), Data: data, TakenAt: f.now()}
	f.sinceSnap = 0
	f.lastSnap = time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Every batch the follower holds went through the observers first; the
	// read side may still be storing what it closed.
	if err := waitReadSide(ctx, f.rs, snap.Seq, f.quit); err != nil {
		f.log.Warn("snapshot not saved", "seq", snap.Seq, "err", err)
		return
	}
	if err := f.j.SaveSnapshot(ctx, snap); err != nil {
		f.log.Warn("snapshot not saved", "seq", snap.Seq, "err", err)
		return
	}
	f.saved(snap.Seq)
	f.log.Info("snapshot saved", "seq", snap.Seq, "bytes", len(snap.Data), "by", "follower")
}
