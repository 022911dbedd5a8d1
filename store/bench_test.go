package store_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/gpux/gpux/store"
)

const (
	benchPayload = 256  // bytes per command
	benchBatch   = 64   // commands per pipeline or batch
	benchTrim    = 1024 // batches between trims that keep the server's memory bounded (16 MB)
)

// BenchmarkXADDRaw is the baseline: the fastest the journal could go with
// go-redis, pipelines of 64 XADDs of one 256-byte command each, auto ids.
// One op is one entry.
func BenchmarkXADDRaw(b *testing.B) {
	j := openRedisJournal(b)
	rdb := j.Client()
	key := "gpux:{" + j.Shard() + "}:raw"
	payload := bytes.Repeat([]byte("x"), benchPayload)
	ctx := context.Background()
	b.SetBytes(benchPayload)
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(benchBatch, b.N-done)
		_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for range n {
				p.XAdd(ctx, &redis.XAddArgs{Stream: key, ID: "*", Values: []any{"d", payload}})
			}
			return nil
		})
		if err != nil {
			b.Fatalf("pipeline: %v", err)
		}
		done += n
		if done%(benchTrim*benchBatch) == 0 {
			b.StopTimer()
			if err := rdb.Del(ctx, key).Err(); err != nil {
				b.Fatalf("DEL: %v", err)
			}
			b.StartTimer()
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkJournalAppend appends batches of 64 commands of 256 bytes, one
// XADD and one round trip each, as the sequencer's group commit does. One
// op is one batch.
func BenchmarkJournalAppend(b *testing.B) {
	j := openRedisJournal(b)
	data := bytes.Repeat([]byte("x"), benchPayload*benchBatch)
	ctx := context.Background()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		first := uint64(i)*benchBatch + 1
		if err := j.Append(ctx, store.Batch{First: first, Last: first + benchBatch - 1, Data: data}); err != nil {
			b.Fatalf("Append: %v", err)
		}
		if (i+1)%benchTrim == 0 {
			b.StopTimer()
			trim(b, j, first+benchBatch-1)
			b.StartTimer()
		}
	}
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "commands/s")
}

// trim drops the journal up to seq with a snapshot, as a running exchange does.
func trim(b *testing.B, j store.Journal, seq uint64) {
	b.Helper()
	if err := j.SaveSnapshot(context.Background(), store.Snapshot{Seq: seq, Hash: "bench"}); err != nil {
		b.Fatalf("SaveSnapshot: %v", err)
	}
}

// BenchmarkJournalReplay replays 2000 batches of 64 commands (128000
// commands, 32 MB), the recovery path. One op is one full replay.
func BenchmarkJournalReplay(b *testing.B) {
	j := openRedisJournal(b)
	ctx := context.Background()
	data := bytes.Repeat([]byte("x"), benchPayload*benchBatch)
	const batches = 2000
	for i := range batches {
		first := uint64(i)*benchBatch + 1
		if err := j.Append(ctx, store.Batch{First: first, Last: first + benchBatch - 1, Data: data}); err != nil {
			b.Fatalf("Append: %v", err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		n := 0
		if err := j.Replay(ctx, 0, func(store.Batch) error { n++; return nil }); err != nil {
			b.Fatalf("Replay: %v", err)
		}
		if n != batches {
			b.Fatalf("replayed %d batches, want %d", n, batches)
		}
	}
	b.ReportMetric(float64(b.N*batches*benchBatch)/b.Elapsed().Seconds(), "commands/s")
}

// BenchmarkMemoryJournalAppend is the in-memory journal on the same batches.
func BenchmarkMemoryJournalAppend(b *testing.B) {
	j := store.NewMemoryJournal()
	data := bytes.Repeat([]byte("x"), benchPayload*benchBatch)
	ctx := context.Background()
	b.ReportAllocs()
	for i := range b.N {
		first := uint64(i)*benchBatch + 1
		if err := j.Append(ctx, store.Batch{First: first, Last: first + benchBatch - 1, Data: data}); err != nil {
			b.Fatalf("Append: %v", err)
		}
		if (i+1)%benchTrim == 0 {
			b.StopTimer()
			trim(b, j, first+benchBatch-1)
			b.StartTimer()
		}
	}
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "commands/s")
}
