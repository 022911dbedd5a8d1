package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gpux/gpux/store"
	"github.com/gpux/gpux/store/redistest"
)

// journalImpl opens a fresh, empty journal; count reports how many entries
// the backend really holds (XLEN for Redis), independent of Replay.
type journalImpl struct {
	name  string
	open  func(tb testing.TB) store.Journal
	count func(tb testing.TB, j store.Journal) int64
}

func journalImpls() []journalImpl {
	return []journalImpl{
		{
			name: "memory",
			open: func(tb testing.TB) store.Journal { return store.NewMemoryJournal() },
			count: func(tb testing.TB, j store.Journal) int64 {
				return int64(store.MemoryLen(j.(*store.MemoryJournal)))
			},
		},
		{
			name: "redis",
			open: func(tb testing.TB) store.Journal { return openRedisJournal(tb) },
			count: func(tb testing.TB, j store.Journal) int64 {
				tb.Helper()
				rj := j.(*store.RedisJournal)
				n, err := rj.Client().XLen(context.Background(), "gpux:{"+rj.Shard()+"}:journal").Result()
				if err != nil {
					tb.Fatalf("XLEN: %v", err)
				}
				return n
			},
		},
	}
}

// openRedisJournal opens a journal on the shared Redis under a fresh shard
// that is deleted when the test ends.
func openRedisJournal(tb testing.TB) *store.RedisJournal {
	tb.Helper()
	url := redistest.URL(tb)
	j, err := store.OpenRedis(context.Background(), url, redistest.Shard(tb))
	if err != nil {
		tb.Fatalf("OpenRedis: %v", err)
	}
	tb.Cleanup(func() { j.Close() })
	return j
}

// forEachJournal runs fn as a subtest against every implementation.
func forEachJournal(t *testing.T, fn func(t *testing.T, impl journalImpl, j store.Journal)) {
	t.Helper()
	for _, impl := range journalImpls() {
		t.Run(impl.name, func(t *testing.T) {
			fn(t, impl, impl.open(t))
		})
	}
}

// batch is a batch of n commands starting at first, with data derived from
// its numbers so that different batches differ.
func batch(first, n uint64) store.Batch {
	return store.Batch{First: first, Last: first + n - 1, Data: fmt.Appendf(nil, "cmds %d..%d", first, first+n-1)}
}

// appendAll appends bs, failing the test on the first error.
func appendAll(tb testing.TB, j store.Journal, bs ...store.Batch) {
	tb.Helper()
	for _, b := range bs {
		if err := j.Append(context.Background(), b); err != nil {
			tb.Fatalf("Append %d..%d: %v", b.First, b.Last, err)
		}
	}
}

// contiguous returns count batches of 1..3 commands numbered from 1.
func contiguous(count int) []store.Batch {
	bs := make([]store.Batch, count)
	next := uint64(1)
	for i := range bs {
		bs[i] = batch(next, uint64(i%3+1))
		next = bs[i].Last + 1
	}
	return bs
}

// replayAll collects what Replay(after) hands out.
func replayAll(tb testing.TB, j store.Journal, after uint64) ([]store.Batch, error) {
	tb.Helper()
	var got []store.Batch
	err := j.Replay(context.Background(), after, func(b store.Batch) error {
		got = append(got, b)
		return nil
	})
	return got, err
}

func equalBatches(a, b []store.Batch) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].First != b[i].First || a[i].Last != b[i].Last || !bytes.Equal(a[i].Data, b[i].Data) {
			return false
		}
	}
	return true
}

func TestJournalKind(t *testing.T) {
	tests := []struct {
		name    string
		kind    string
		durable bool
	}{
		{"memory", "memory", false},
		{"redis", "redis", true},
	}
	impls := journalImpls()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := impls[i].open(t)
			if got := j.Kind(); got != tt.kind {
				t.Errorf("Kind() = %q, want %q", got, tt.kind)
			}
			if got := j.Durable(); got != tt.durable {
				t.Errorf("Durable() = %v, want %v", got, tt.durable)
			}
		})
	}
}

// TestJournalAppendReplay appends enough batches to need three Redis pages
// and replays from several positions, including inside a batch.
func TestJournalAppendReplay(t *testing.T) {
	all := contiguous(2500) // batches of 1, 2, 3 commands: 5000 commands
	lastSeq := all[len(all)-1].Last
	tests := []struct {
		name  string
		after uint64
		want  []store.Batch
	}{
		{"from the start", 0, all},
		{"at a batch boundary", all[1499].Last, all[1500:]},
		{"inside a batch", all[1502].First + 1, all[1502:]}, // a 3-command batch straddling after
		{"before the last batch", all[2498].Last, all[2499:]},
		{"at the end", lastSeq, nil},
		{"beyond the end", lastSeq + 10, nil},
	}
	forEachJournal(t, func(t *testing.T, impl journalImpl, j store.Journal) {
		appendAll(t, j, all...)
		if got, err := j.LastSeq(t.Context()); err != nil || got != lastSeq {
			t.Fatalf("LastSeq() = %d, %v; want %d, nil", got, err, lastSeq)
		}
		if got, want := impl.count(t, j), int64(len(all)); got != want {
			t.Fatalf("stored entries = %d, want %d", got, want)
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := replayAll(t, j, tt.after)
				if err != nil {
					t.Fatalf("Replay(%d): %v", tt.after, err)
				}
				if !equalBatches(got, tt.want) {
					t.Fatalf("Replay(%d) gave %d batches (first %+v), want %d", tt.after, len(got), first(got), len(tt.want))
				}
			})
		}
	})
}

func first(bs []store.Batch) store.Batch {
	if len(bs) == 0 {
		return store.Batch{}
	}
	return store.Batch{First: bs[0].First, Last: bs[0].Last}
}

func TestJournalReplayStopsOnError(t *testing.T) {
	forEachJournal(t, func(t *testing.T, _ journalImpl, j store.Journal) {
		appendAll(t, j, contiguous(10)...)
		stop := errors.New("stop here")
		calls := 0
		err := j.Replay(t.Context(), 0, func(store.Batch) error {
			calls++
			if calls == 3 {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) {
			t.Errorf("Replay error = %v, want it to wrap %v", err, stop)
		}
		if calls != 3 {
			t.Errorf("fn called %d times, want 3", calls)
		}
	})
}

func TestJournalReplayGap(t *testing.T) {
	tests := []struct {
		name    string
		batches []store.Batch
		after   uint64
	}{
		{"missing start", []store.Batch{batch(2, 1), batch(3, 1)}, 0},
		{"hole in the middle", []store.Batch{batch(1, 2), batch(4, 1)}, 0},
		{"overlap", []store.Batch{batch(1, 5), batch(3, 1)}, 0},
		{"hole after the start", []store.Batch{batch(1, 1), batch(2, 1), batch(5, 1)}, 1},
	}
	for _, impl := range journalImpls() {
		t.Run(impl.name, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					j := impl.open(t)
					appendAll(t, j, tt.batches...)
					if _, err := replayAll(t, j, tt.after); !errors.Is(err, store.ErrGap) {
						t.Errorf("Replay(%d) error = %v, want ErrGap", tt.after, err)
					}
				})
			}
		})
	}
}

// TestJournalDuplicateAppend retries appends whose outcome the caller did
// not learn: the retry must succeed and store nothing more.
func TestJournalDuplicateAppend(t *testing.T) {
	forEachJournal(t, func(t *testing.T, impl journalImpl, j store.Journal) {
		bs := contiguous(3)
		appendAll(t, j, bs...)
		for _, b := range bs {
			retry := store.Batch{First: b.First, Last: b.Last, Data: bytes.Clone(b.Data)}
			if err := j.Append(t.Context(), retry); err != nil {
				t.Errorf("retry Append %d..%d = %v, want nil", b.First, b.Last, err)
			}
		}
		if got, want := impl.count(t, j), int64(len(bs)); got != want {
			t.Errorf("stored entries = %d, want %d", got, want)
		}
		got, ok, err := j.Entry(t.Context(), bs[1].First)
		if err != nil || !ok || !equalBatches([]store.Batch{got}, bs[1:2]) {
			t.Errorf("Entry(%d) = %+v, %v, %v; want %+v, true, nil", bs[1].First, got, ok, err, bs[1])
		}
		if _, ok, err := j.Entry(t.Context(), bs[1].First+1); ok || err != nil {
			t.Errorf("Entry inside a batch = ok %v, %v; want false, nil", ok, err)
		}
	})
}

func TestJournalConflict(t *testing.T) {
	// Stored: 1..1, 2..3, 4..6, 7..7, then a snapshot at 3 trims 1..1 and 2..3.
	tests := []struct {
		name string
		b    store.Batch
	}{
		{"same first, different data", store.Batch{First: 4, Last: 6, Data: []byte("other")}},
		{"same first, different last", store.Batch{First: 4, Last: 5, Data: batch(4, 3).Data}},
		{"inside a stored batch", batch(5, 1)},
		{"trimmed by a snapshot", batch(2, 2)},
	}
	forEachJournal(t, func(t *testing.T, impl journalImpl, j store.Journal) {
		appendAll(t, j, batch(1, 1), batch(2, 2), batch(4, 3), batch(7, 1))
		if err := j.SaveSnapshot(t.Context(), store.Snapshot{Seq: 3, Hash: "h3"}); err != nil {
			t.Fatalf("SaveSnapshot: %v", err)
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := j.Append(t.Context(), tt.b)
				if !errors.Is(err, store.ErrConflict) {
					t.Errorf("Append %d..%d = %v, want ErrConflict", tt.b.First, tt.b.Last, err)
				}
				if errors.Is(err, store.ErrUnavailable) {
					t.Errorf("Append %d..%d = %v, must not be ErrUnavailable", tt.b.First, tt.b.Last, err)
				}
			})
		}
		if got, want := impl.count(t, j), int64(2); got != want {
			t.Errorf("stored entries = %d, want %d", got, want)
		}
		got, _, err := j.Entry(t.Context(), 4)
		if err != nil || !bytes.Equal(got.Data, batch(4, 3).Data) {
			t.Errorf("Entry(4) = %q, %v; want the original bytes", got.Data, err)
		}
	})
}

func TestJournalInvalidBatch(t *testing.T) {
	tests := []struct {
		name string
		b    store.Batch
	}{
		{"first zero", store.Batch{First: 0, Last: 1}},
		{"last before first", store.Batch{First: 5, Last: 4}},
	}
	forEachJournal(t, func(t *testing.T, impl journalImpl, j store.Journal) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := j.Append(t.Context(), tt.b)
				if err == nil || errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrUnavailable) {
					t.Errorf("Append(%+v) = %v, want a validation error", tt.b, err)
				}
			})
		}
		if got := impl.count(t, j); got != 0 {
			t.Errorf("stored entries = %d, want 0", got)
		}
	})
}

// TestJournalSnapshot saves snapshots over batches 1..3, 4..6, 7..9, 10..10
// and checks what is trimmed and what the journal then reports.
func TestJournalSnapshot(t *testing.T) {
	bs := []store.Batch{batch(1, 3), batch(4, 3), batch(7, 3), batch(10, 1)}
	tests := []struct {
		name      string
		seq       uint64
		keptFirst []uint64 // Firsts of the batches left, in order
		lastSeq   uint64
	}{
		{"at zero trims nothing", 0, []uint64{1, 4, 7, 10}, 10},
		{"at a batch boundary", 6, []uint64{7, 10}, 10},
		{"inside a batch keeps it", 5, []uint64{4, 7, 10}, 10},
		{"covering everything", 10, nil, 10},
		{"beyond the journal", 12, nil, 12},
	}
	for _, impl := range journalImpls() {
		t.Run(impl.name, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					j := impl.open(t)
					appendAll(t, j, bs...)
					taken := time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)
					want := store.Snapshot{Seq: tt.seq, Hash: fmt.Sprintf("hash-%d", tt.seq), Data: []byte("state"), TakenAt: taken}
					if err := j.SaveSnapshot(t.Context(), want); err != nil {
						t.Fatalf("SaveSnapshot: %v", err)
					}
					got, ok, err := j.LoadSnapshot(t.Context())
					if err != nil || !ok {
						t.Fatalf("LoadSnapshot = ok %v, %v; want true, nil", ok, err)
					}
					if got.Seq != want.Seq || got.Hash != want.Hash || !bytes.Equal(got.Data, want.Data) || !got.TakenAt.Equal(want.TakenAt) {
						t.Errorf("LoadSnapshot = %+v, want %+v", got, want)
					}
					if n := impl.count(t, j); n != int64(len(tt.keptFirst)) {
						t.Errorf("stored entries = %d, want %d", n, len(tt.keptFirst))
					}
					for _, b := range bs {
						_, ok, err := j.Entry(t.Context(), b.First)
						if err != nil {
							t.Fatalf("Entry(%d): %v", b.First, err)
						}
						if want := contains(tt.keptFirst, b.First); ok != want {
							t.Errorf("Entry(%d) present = %v, want %v", b.First, ok, want)
						}
					}
					replayed, err := replayAll(t, j, tt.seq)
					if err != nil {
						t.Fatalf("Replay(%d) after snapshot: %v", tt.seq, err)
					}
					if got := firsts(replayed); !equalUints(got, tt.keptFirst) {
						t.Errorf("Replay(%d) firsts = %v, want %v", tt.seq, got, tt.keptFirst)
					}
					if got, err := j.LastSeq(t.Context()); err != nil || got != tt.lastSeq {
						t.Errorf("LastSeq() = %d, %v; want %d, nil", got, err, tt.lastSeq)
					}
				})
			}
		})
	}
}

func contains(s []uint64, v uint64) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func firsts(bs []store.Batch) []uint64 {
	var out []uint64
	for _, b := range bs {
		out = append(out, b.First)
	}
	return out
}

func equalUints(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestJournalSnapshotRules(t *testing.T) {
	forEachJournal(t, func(t *testing.T, impl journalImpl, j store.Journal) {
		if s, ok, err := j.LoadSnapshot(t.Context()); ok || err != nil || s.Seq != 0 || s.Data != nil {
			t.Fatalf("LoadSnapshot on empty = %+v, %v, %v; want zero, false, nil", s, ok, err)
		}
		if got, err := j.LastSeq(t.Context()); got != 0 || err != nil {
			t.Fatalf("LastSeq on empty = %d, %v; want 0, nil", got, err)
		}
		save := func(seq uint64, hash string) error {
			return j.SaveSnapshot(t.Context(), store.Snapshot{Seq: seq, Hash: hash, Data: []byte(hash), TakenAt: time.Now()})
		}
		if err := save(10, "a"); err != nil {
			t.Fatalf("SaveSnapshot(10): %v", err)
		}
		tests := []struct {
			name     string
			seq      uint64
			hash     string
			conflict bool
		}{
			{"same seq and hash again", 10, "a", false},
			{"same seq, other hash", 10, "b", true},
			{"older seq", 9, "a", true},
			{"newer seq", 11, "c", false},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := save(tt.seq, tt.hash)
				if got := errors.Is(err, store.ErrConflict); got != tt.conflict || (err != nil && !tt.conflict) {
					t.Errorf("SaveSnapshot(%d, %q) = %v, want conflict %v", tt.seq, tt.hash, err, tt.conflict)
				}
			})
		}
		got, _, err := j.LoadSnapshot(t.Context())
		if err != nil || got.Seq != 11 || got.Hash != "c" {
			t.Errorf("LoadSnapshot = %d %q, %v; want 11 \"c\"", got.Seq, got.Hash, err)
		}
	})
}

// TestJournalAfterTrimmedEmpty continues a journal a snapshot emptied.
func TestJournalAfterTrimmedEmpty(t *testing.T) {
	forEachJournal(t, func(t *testing.T, impl journalImpl, j store.Journal) {
		appendAll(t, j, batch(1, 2), batch(3, 2))
		if err := j.SaveSnapshot(t.Context(), store.Snapshot{Seq: 4, Hash: "h"}); err != nil {
			t.Fatalf("SaveSnapshot: %v", err)
		}
		if got, err := j.LastSeq(t.Context()); got != 4 || err != nil {
			t.Fatalf("LastSeq = %d, %v; want 4, nil", got, err)
		}
		if err := j.Append(t.Context(), batch(3, 2)); !errors.Is(err, store.ErrConflict) {
			t.Errorf("re-Append of a trimmed batch = %v, want ErrConflict", err)
		}
		appendAll(t, j, batch(5, 1))
		got, err := replayAll(t, j, 4)
		if err != nil || !equalBatches(got, []store.Batch{batch(5, 1)}) {
			t.Errorf("Replay(4) = %v, %v; want batch 5..5", firsts(got), err)
		}
		if _, err := replayAll(t, j, 0); !errors.Is(err, store.ErrGap) {
			t.Errorf("Replay(0) over a trimmed start = %v, want ErrGap", err)
		}
	})
}

func TestJournalCancelledContext(t *testing.T) {
	forEachJournal(t, func(t *testing.T, impl journalImpl, j store.Journal) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		err := j.Append(ctx, batch(1, 1))
		if !errors.Is(err, store.ErrUnavailable) || !errors.Is(err, context.Canceled) {
			t.Errorf("Append with a cancelled context = %v, want ErrUnavailable and context.Canceled", err)
		}
	})
}

func TestJournalClose(t *testing.T) {
	forEachJournal(t, func(t *testing.T, impl journalImpl, j store.Journal) {
		if err := j.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := j.Append(t.Context(), batch(1, 1)); !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("Append after Close = %v, want ErrUnavailable", err)
		}
	})
}

func TestOpenRedisBadShard(t *testing.T) {
	url := redistest.URL(t)
	for _, shard := range []string{"", "a{b}", "x}"} {
		if j, err := store.OpenRedis(t.Context(), url, shard); err == nil {
			j.Close()
			t.Errorf("OpenRedis(shard %q) succeeded, want an error", shard)
		}
	}
}

// TestRedisKeysCarryShardTag checks the key layout other tools rely on.
func TestRedisKeysCarryShardTag(t *testing.T) {
	j := openRedisJournal(t)
	appendAll(t, j, batch(1, 1))
	if err := j.SaveSnapshot(t.Context(), store.Snapshot{Seq: 0, Hash: "h"}); err != nil {
		t.Fatalf("SaveSnapshot: %v", err)
	}
	rdb := j.Client()
	for key, typ := range map[string]string{
		"gpux:{" + j.Shard() + "}:journal":  "stream",
		"gpux:{" + j.Shard() + "}:snapshot": "hash",
	} {
		if got, err := rdb.Type(t.Context(), key).Result(); err != nil || got != typ {
			t.Errorf("TYPE %s = %q, %v; want %q", key, got, err, typ)
		}
	}
	msgs, err := rdb.XRange(t.Context(), "gpux:{"+j.Shard()+"}:journal", "-", "+").Result()
	if err != nil || len(msgs) != 1 || msgs[0].ID != "1-1" {
		t.Errorf("journal entries = %v, %v; want one with id 1-1", msgs, err)
	}
	var _ redis.UniversalClient = rdb
}
