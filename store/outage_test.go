package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gpux/gpux/store"
	"github.com/gpux/gpux/store/redistest"
)

// TestRedisJournalOutage kills a private Redis (kept durable with an
// fsync-always AOF) under an open journal: appends must fail fast with
// ErrUnavailable, and work again on the same journal once Redis is back.
func TestRedisJournalOutage(t *testing.T) {
	srv := redistest.StartServer(t, "--appendonly", "yes", "--appendfsync", "always")
	j, err := store.OpenRedis(t.Context(), srv.URL(), "outage")
	if err != nil {
		t.Fatalf("OpenRedis: %v", err)
	}
	defer j.Close()
	appendAll(t, j, batch(1, 2))

	srv.Stop()
	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Append", func(ctx context.Context) error { return j.Append(ctx, batch(3, 2)) }},
		{"LastSeq", func(ctx context.Context) error { _, err := j.LastSeq(ctx); return err }},
		{"Entry", func(ctx context.Context) error { _, _, err := j.Entry(ctx, 1); return err }},
		{"Replay", func(ctx context.Context) error {
			return j.Replay(ctx, 0, func(store.Batch) error { return nil })
		}},
		{"SaveSnapshot", func(ctx context.Context) error { return j.SaveSnapshot(ctx, store.Snapshot{Seq: 2, Hash: "h"}) }},
		{"LoadSnapshot", func(ctx context.Context) error { _, _, err := j.LoadSnapshot(ctx); return err }},
	}
	for _, c := range calls {
		t.Run(c.name+" while down", func(t *testing.T) {
			// The context is a backstop only: the journal must give up first.
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			start := time.Now()
			err := c.call(ctx)
			if elapsed := time.Since(start); elapsed > 2*time.Second {
				t.Errorf("%s took %v with Redis down, want under 2s", c.name, elapsed)
			}
			if !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("%s with Redis down = %v, want ErrUnavailable", c.name, err)
			}
		})
	}

	srv.Start()
	// The client reconnects by itself (go-redis probes a pool whose dials
	// kept failing once a second); the caller retries on ErrUnavailable.
	retryUnavailable(t, "Append after restart", func() error { return j.Append(t.Context(), batch(3, 2)) })
	var got []store.Batch
	retryUnavailable(t, "Replay after restart", func() (err error) {
		got, err = replayAll(t, j, 0)
		return err
	})
	if !equalBatches(got, []store.Batch{batch(1, 2), batch(3, 2)}) {
		t.Errorf("Replay after restart = %v; want batches 1..2 and 3..4", firsts(got))
	}
}

// retryUnavailable calls fn until it returns nil, for up to 5s, failing
// the test on any error other than ErrUnavailable.
func retryUnavailable(tb testing.TB, what string, fn func() error) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := fn()
		if err == nil {
			return
		}
		if !errors.Is(err, store.ErrUnavailable) || time.Now().After(deadline) {
			tb.Fatalf("%s = %v, want success within 5s", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRedisJournalStalled freezes a private Redis: an append must time out
// with ErrUnavailable instead of hanging, and retrying it once Redis thaws
// must succeed without storing it twice, though the frozen server did
// receive, and later ran, the first attempt.
func TestRedisJournalStalled(t *testing.T) {
	srv := redistest.StartServer(t)
	opt, err := store.ClientOptions(srv.URL())
	if err != nil {
		t.Fatalf("ClientOptions: %v", err)
	}
	opt.ReadTimeout, opt.WriteTimeout = 300*time.Millisecond, 300*time.Millisecond
	j, err := store.OpenRedisOptions(t.Context(), opt, "stalled")
	if err != nil {
		t.Fatalf("OpenRedisOptions: %v", err)
	}
	defer j.Close()
	appendAll(t, j, batch(1, 1))

	srv.Pause()
	start := time.Now()
	err = j.Append(t.Context(), batch(2, 3))
	elapsed := time.Since(start)
	srv.Resume()
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Append to a frozen Redis = %v, want ErrUnavailable", err)
	}
	if elapsed > 2*time.Second {
		t.Errorf("Append to a frozen Redis took %v, want about the 300ms read timeout", elapsed)
	}

	retryUnavailable(t, "retried Append", func() error { return j.Append(t.Context(), batch(2, 3)) })
	n, err := j.Client().XLen(t.Context(), "gpux:{stalled}:journal").Result()
	if err != nil || n != 2 {
		t.Errorf("XLEN = %d, %v; want 2", n, err)
	}
	if b, ok, err := j.Entry(t.Context(), 2); err != nil || !ok || b.Last != 4 {
		t.Errorf("Entry(2) = %+v, %v, %v; want batch 2..4", b, ok, err)
	}
}

func TestOpenRedisUnreachable(t *testing.T) {
	srv := redistest.StartServer(t)
	srv.Stop()
	start := time.Now()
	_, err := store.OpenRedis(t.Context(), srv.URL(), "down")
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("OpenRedis on a stopped server = %v, want ErrUnavailable", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("OpenRedis on a stopped server took %v, want under 2s", elapsed)
	}
}

// TestRedisJournalRefusesWrites puts a private Redis over its maxmemory
// with noeviction: reads still answer, so only a write can tell that an
// append would fail. Append and ProbeWrite must report ErrUnavailable, and
// both must succeed again once the limit is lifted.
func TestRedisJournalRefusesWrites(t *testing.T) {
	srv := redistest.StartServer(t)
	j, err := store.OpenRedis(t.Context(), srv.URL(), "oom")
	if err != nil {
		t.Fatalf("OpenRedis: %v", err)
	}
	defer j.Close()
	appendAll(t, j, batch(1, 1))
	if err := j.ProbeWrite(t.Context()); err != nil {
		t.Fatalf("ProbeWrite on a healthy Redis = %v, want nil", err)
	}
	rdb := j.Client()
	if err := rdb.ConfigSet(t.Context(), "maxmemory-policy", "noeviction").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.ConfigSet(t.Context(), "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := j.LastSeq(t.Context()); err != nil {
		t.Fatalf("LastSeq at maxmemory = %v, want reads to work", err)
	}
	if err := j.ProbeWrite(t.Context()); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("ProbeWrite at maxmemory = %v, want ErrUnavailable", err)
	}
	if err := j.Append(t.Context(), batch(2, 1)); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Append at maxmemory = %v, want ErrUnavailable", err)
	}
	if err := rdb.ConfigSet(t.Context(), "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	if err := j.ProbeWrite(t.Context()); err != nil {
		t.Errorf("ProbeWrite after the limit is lifted = %v, want nil", err)
	}
	appendAll(t, j, batch(2, 1))
}
