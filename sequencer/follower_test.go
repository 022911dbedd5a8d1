package sequencer

import (
	"context"
	"sync"
	"testing"

	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/store"
)

// recordingJournal is a MemoryJournal that says it is durable (so the
// sequencer snapshots through its follower) and keeps a copy of every
// batch and of every snapshot's seq and hash, which trimming would lose.
type recordingJournal struct {
	*store.MemoryJournal
	mu      sync.Mutex
	batches []store.Batch
	snaps   []store.Snapshot
}

func (r *recordingJournal) Durable() bool { return true }

func (r *recordingJournal) Append(ctx context.Context, b store.Batch) error {
	err := r.MemoryJournal.Append(ctx, b)
	if err == nil {
		r.mu.Lock()
		r.batches = append(r.batches, store.Batch{First: b.First, Last: b.Last, Data: append([]byte(nil), b.Data...)})
		r.mu.Unlock()
	}
	return err
}

func (r *recordingJournal) SaveSnapshot(ctx context.Context, s store.Snapshot) error {
	err := r.MemoryJournal.SaveSnapshot(ctx, s)
	if err == nil {
		r.mu.Lock()
		r.snaps = append(r.snaps, store.Snapshot{Seq: s.Seq, Hash: s.Hash})
		r.mu.Unlock()
	}
	return err
}

// TestFollowerSnapshots runs a mixed workload with a snapshot every 100
// commands: every snapshot the follower stored must equal the state a
// fresh engine reaches by applying the journal up to its seq, and a new
// sequencer must recover from the last one to the live state.
func TestFollowerSnapshots(t *testing.T) {
	j := &recordingJournal{MemoryJournal: store.NewMemoryJournal()}
	s := start(t, Config{Journal: j, SnapshotEvery: 100})
	if s.fol == nil {
		t.Fatal("no snapshot follower with a durable journal")
	}
	workload(t, s, 1200, 4)
	// Wait until the follower has caught up and saved what it will: its
	// queue is empty once Close has stopped it.
	want := hashOf(s)
	st := s.Status()
	if err := s.fol.close(context.Background()); err != nil {
		t.Fatal(err)
	}
	j.mu.Lock()
	snaps, batches := append([]store.Snapshot(nil), j.snaps...), j.batches
	j.mu.Unlock()
	if len(snaps) < 5 {
		t.Fatalf("%d snapshots saved during %d commands, want one about every 100", len(snaps), st.LastSeq)
	}
	eng := engine.New(engine.Config{})
	next := 0
	for _, b := range batches {
		for data := b.Data; len(data) > 0; {
			c, rest, err := engine.DecodeCommand(data)
			if err != nil {
				t.Fatal(err)
			}
			data = rest
			eng.Apply(&c)
			for next < len(snaps) && snaps[next].Seq == eng.Seq() {
				if got := eng.Hash(); got != snaps[next].Hash {
					t.Fatalf("snapshot at %d has hash %s; the journal up to it gives %s", snaps[next].Seq, snaps[next].Hash, got)
				}
				next++
			}
		}
	}
	if next != len(snaps) {
		t.Fatalf("checked %d of %d snapshots", next, len(snaps))
	}
	// Recovery from the follower's last snapshot plus the tail.
	s.fol = nil // already stopped; Close must not wait for it again
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	s2 := start(t, Config{Journal: j})
	if got := hashOf(s2); got != want {
		t.Fatalf("recovered %s, live was %s", got, want)
	}
	t.Logf("%d snapshots by the follower; longest sequencer pause %v", len(snaps), st.MaxSnapshotPause)
}
