package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/gpux/gpux/store"
	"github.com/gpux/gpux/store/redistest"
)

// startAll starts every batch of bs on the pipeline at once and returns
// their outcomes in order.
func startAll(j store.Pipeliner, timeout time.Duration, bs ...store.Batch) []error {
	dones := make([]chan error, len(bs))
	deadline := time.Now().Add(timeout)
	for i, b := range bs {
		done := make(chan error, 1)
		dones[i] = done
		j.AppendAsync(b, deadline, func(err error) { done <- err })
	}
	errs := make([]error, len(bs))
	for i, d := range dones {
		errs[i] = <-d
	}
	return errs
}

// TestPipelineInOrder streams 300 batches with every one in flight before
// the first answer: all are stored, in order; a batch that does not follow
// the newest stored one is refused (a retry too), as is everything after it.
func TestPipelineInOrder(t *testing.T) {
	j := openRedisJournal(t)
	bs := contiguous(300)
	for i, err := range startAll(j, 5*time.Second, bs...) {
		if err != nil {
			t.Fatalf("batch %d: %v", bs[i].First, err)
		}
	}
	got, err := replayAll(t, j, 0)
	if err != nil || !equalBatches(got, bs) {
		t.Fatalf("Replay = %d batches, %v; want the 300 streamed", len(got), err)
	}
	next := bs[len(bs)-1].Last + 1
	// A batch after a gap is refused, and so is the one after it, which
	// follows the refused batch but not the journal.
	for i, err := range startAll(j, 5*time.Second, batch(next+1, 2), batch(next+3, 1)) {
		if !errors.Is(err, store.ErrConflict) {
			t.Errorf("batch %d after a gap = %v, want ErrConflict", i, err)
		}
	}
	for _, b := range []store.Batch{bs[len(bs)-1], batch(next-1, 2)} {
		if errs := startAll(j, 5*time.Second, b); !errors.Is(errs[0], store.ErrConflict) {
			t.Errorf("batch %d..%d at the tail %d = %v, want ErrConflict", b.First, b.Last, next-1, errs[0])
		}
	}
	if errs := startAll(j, 5*time.Second, batch(next, 1)); errs[0] != nil {
		t.Fatalf("the batch that follows = %v, want stored", errs[0])
	}
	// A snapshot that trims the whole stream: the next batch follows it.
	if err := j.SaveSnapshot(t.Context(), store.Snapshot{Seq: next, Hash: "h", Data: []byte("s")}); err != nil {
		t.Fatal(err)
	}
	if errs := startAll(j, 5*time.Second, batch(next+2, 1), batch(next+1, 1), batch(next+2, 1)); errs[0] == nil || errs[1] != nil || errs[2] != nil {
		t.Fatalf("after a snapshot that emptied the stream = %v; want a conflict, then both stored", errs)
	}
}

// TestPipelineOutage fails every pending append by its deadline when Redis
// is frozen, and when it is killed, and streams again on a new connection
// once it is back.
func TestPipelineOutage(t *testing.T) {
	srv := redistest.StartServer(t, "--appendonly", "yes", "--appendfsync", "always")
	j, err := store.OpenRedis(t.Context(), srv.URL(), "pipe")
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	bs := contiguous(40)
	for _, err := range startAll(j, 5*time.Second, bs[:10]...) {
		if err != nil {
			t.Fatal(err)
		}
	}
	srv.Pause()
	start := time.Now()
	errs := startAll(j, 300*time.Millisecond, bs[10:20]...)
	elapsed := time.Since(start)
	srv.Resume()
	for i, err := range errs {
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("append %d to a frozen Redis = %v, want ErrUnavailable", bs[10+i].First, err)
		}
	}
	if elapsed > 2*time.Second {
		t.Errorf("appends to a frozen Redis took %v to fail, want about the 300ms deadline", elapsed)
	}
	// The frozen server ran what it had received once it thawed: the tail
	// is wherever it got to, and the pipeline goes on from there.
	last, err := j.LastSeq(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var rest []store.Batch
	for _, b := range bs {
		if b.First > last {
			rest = append(rest, b)
		}
	}
	srv.Stop()
	for i, err := range startAll(j, time.Second, rest[:3]...) {
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("append %d to a stopped Redis = %v, want ErrUnavailable", rest[i].First, err)
		}
	}
	srv.Start()
	for i, err := range startAll(j, 5*time.Second, rest...) {
		if err != nil {
			t.Fatalf("append %d after restart: %v", rest[i].First, err)
		}
	}
	got, err := replayAll(t, j, 0)
	if err != nil || !equalBatches(got, bs) {
		t.Fatalf("Replay = %d batches, %v; want all 40", len(got), err)
	}
}

// TestPipelineScriptFlushed: after SCRIPT FLUSH the next append fails, and
// the one after it loads the script again on a new connection.
// It flushes a private server's scripts, never the shared one's.
func TestPipelineScriptFlushed(t *testing.T) {
	srv := redistest.StartServer(t)
	j, err := store.OpenRedis(t.Context(), srv.URL(), "flush")
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if errs := startAll(j, 5*time.Second, batch(1, 1)); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if err := j.Client().ScriptFlush(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	errs := startAll(j, 5*time.Second, batch(2, 1))
	if errs[0] == nil {
		t.Fatal("append after SCRIPT FLUSH succeeded on the old connection, want NOSCRIPT")
	}
	if errs := startAll(j, 5*time.Second, batch(2, 1)); errs[0] != nil {
		t.Fatalf("append on a new connection = %v, want stored", errs[0])
	}
}
