package store

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
)

var _ Journal = (*MemoryJournal)(nil)

// MemoryJournal is a Journal held in process memory, for running without
// Redis and for tests. It has the same duplicate, conflict, trimming and gap
// semantics as RedisJournal; nothing survives the process.
type MemoryJournal struct {
	mu      sync.Mutex
	batches []Batch // ordered by First
	top     uint64  // First of the newest batch ever appended (0: none); like a stream's last id, trimming keeps it
	snap    Snapshot
	hasSnap bool
	closed  bool
}

// NewMemoryJournal returns an empty in-memory journal.
func NewMemoryJournal() *MemoryJournal { return &MemoryJournal{} }

// Kind returns "memory".
func (m *MemoryJournal) Kind() string { return "memory" }

// Durable returns false.
func (m *MemoryJournal) Durable() bool { return false }

// Close marks the journal closed; later calls fail with ErrUnavailable.
func (m *MemoryJournal) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

// ready reports why the journal cannot serve a call, or nil.
func (m *MemoryJournal) ready(ctx context.Context) error {
	if m.closed {
		return fmt.Errorf("%w: memory journal closed", ErrUnavailable)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// ProbeWrite fails only once the journal is closed. See Journal.ProbeWrite.
func (m *MemoryJournal) ProbeWrite(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.ready(ctx); err != nil {
		return fmt.Errorf("journal probe write: %w", err)
	}
	return nil
}

// Append stores a copy of b. See Journal.Append.
func (m *MemoryJournal) Append(ctx context.Context, b Batch) error {
	if err := b.validate(); err != nil {
		return fmt.Errorf("journal append %d: %w", b.First, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.ready(ctx); err != nil {
		return fmt.Errorf("journal append %d: %w", b.First, err)
	}
	if b.First > m.top {
		m.batches = append(m.batches, Batch{First: b.First, Last: b.Last, Data: bytes.Clone(b.Data)})
		m.top = b.First
		return nil
	}
	got, ok := m.entryLocked(b.First)
	if !ok {
		return fmt.Errorf("journal append %d: %w: not after the newest entry and no entry starts there (trimmed or inside another batch)", b.First, ErrConflict)
	}
	if got.Last != b.Last || !bytes.Equal(got.Data, b.Data) {
		return fmt.Errorf("journal append %d: %w: stored batch %d..%d (%d bytes) differs from %d..%d (%d bytes)",
			b.First, ErrConflict, got.First, got.Last, len(got.Data), b.First, b.Last, len(b.Data))
	}
	return nil
}

func (m *MemoryJournal) entryLocked(first uint64) (Batch, bool) {
	i, ok := sort.Find(len(m.batches), func(i int) int {
		switch f := m.batches[i].First; {
		case first < f:
			return -1
		case first > f:
			return 1
		}
		return 0
	})
	if !ok {
		return Batch{}, false
	}
	return m.batches[i], true
}

// Entry returns a copy of the batch starting at first. See Journal.Entry.
func (m *MemoryJournal) Entry(ctx context.Context, first uint64) (Batch, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.ready(ctx); err != nil {
		return Batch{}, false, fmt.Errorf("journal entry %d: %w", first, err)
	}
	b, ok := m.entryLocked(first)
	b.Data = bytes.Clone(b.Data)
	return b, ok, nil
}

// LastSeq returns the newest stored sequence number. See Journal.LastSeq.
func (m *MemoryJournal) LastSeq(ctx context.Context) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.ready(ctx); err != nil {
		return 0, fmt.Errorf("journal last seq: %w", err)
	}
	var last uint64
	if n := len(m.batches); n > 0 {
		last = m.batches[n-1].Last
	}
	if m.hasSnap {
		last = max(last, m.snap.Seq)
	}
	return last, nil
}

// Replay calls fn with copies of the batches after a sequence number, in
// pages; fn may call other methods of the journal. See Journal.Replay.
func (m *MemoryJournal) Replay(ctx context.Context, after uint64, fn func(Batch) error) error {
	if after == math.MaxUint64 {
		return nil
	}
	r := replayer{after: after, next: after + 1, fn: fn}
	// Position on the first batch with Last > after; the lock is dropped
	// while fn runs, so each page resumes after the last First it saw.
	var resume uint64
	started := false
	for {
		page, err := m.page(ctx, after, resume, started)
		if err != nil {
			return fmt.Errorf("journal replay after %d: %w", after, err)
		}
		for _, b := range page {
			if err := r.emit(b); err != nil {
				return err
			}
		}
		if len(page) < replayPage {
			return nil
		}
		resume, started = page[len(page)-1].First, true
	}
}

// page copies up to replayPage batches: the first ones with Last > after
// or, once started, those with First > resume.
func (m *MemoryJournal) page(ctx context.Context, after, resume uint64, started bool) ([]Batch, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.ready(ctx); err != nil {
		return nil, err
	}
	var i int
	if started {
		i = sort.Search(len(m.batches), func(i int) bool { return m.batches[i].First > resume })
	} else {
		i = sort.Search(len(m.batches), func(i int) bool { return m.batches[i].Last > after })
	}
	end := min(i+replayPage, len(m.batches))
	page := slices.Clone(m.batches[i:end])
	for k := range page {
		page[k].Data = bytes.Clone(page[k].Data)
	}
	return page, nil
}

// SaveSnapshot stores a copy of s and trims the batches it wholly covers.
// See Journal.SaveSnapshot.
func (m *MemoryJournal) SaveSnapshot(ctx context.Context, s Snapshot) error {
	if s.Seq == math.MaxUint64 {
		return fmt.Errorf("journal save snapshot %d: seq out of range", s.Seq)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.ready(ctx); err != nil {
		return fmt.Errorf("journal save snapshot %d: %w", s.Seq, err)
	}
	if m.hasSnap {
		if s.Seq < m.snap.Seq {
			return fmt.Errorf("journal save snapshot %d: %w: older than stored %d", s.Seq, ErrConflict, m.snap.Seq)
		}
		if s.Seq == m.snap.Seq && s.Hash != m.snap.Hash {
			return fmt.Errorf("journal save snapshot %d: %w: hash differs from stored", s.Seq, ErrConflict)
		}
	}
	m.snap = Snapshot{Seq: s.Seq, Hash: s.Hash, Data: bytes.Clone(s.Data), TakenAt: s.TakenAt.UTC()}
	m.hasSnap = true
	// Drop every batch with Last <= s.Seq; a straddling batch stays, and so
	// does everything after it, exactly as XTRIM MINID does on the stream.
	keep := sort.Search(len(m.batches), func(i int) bool { return m.batches[i].Last > s.Seq })
	if keep > 0 {
		m.batches = slices.Delete(m.batches, 0, keep)
	}
	return nil
}

// LoadSnapshot returns a copy of the stored snapshot. See Journal.LoadSnapshot.
func (m *MemoryJournal) LoadSnapshot(ctx context.Context) (Snapshot, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.ready(ctx); err != nil {
		return Snapshot{}, false, fmt.Errorf("journal load snapshot: %w", err)
	}
	if !m.hasSnap {
		return Snapshot{}, false, nil
	}
	s := m.snap
	s.Data = bytes.Clone(s.Data)
	return s, true, nil
}
