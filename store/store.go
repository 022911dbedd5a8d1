// Package store keeps the exchange durable in Redis: the per-shard journal
// of sequenced command batches, engine snapshots, and the read models the API
// serves history from (recent trades, spot price history, candles,
// idempotency answers).
//
// The package is engine-agnostic: a journal entry and a snapshot are opaque
// bytes plus the sequence numbers they cover, so store never imports the
// engine and never decodes a command. It owns the Redis key layout and the
// failure semantics the runtime relies on:
//
//   - an Append either stores the batch, finds the identical batch already
//     stored (a retried append is a no-op), reports ErrConflict, or reports
//     ErrUnavailable when Redis could not be reached in time (the outcome is
//     then unknown and the caller must not advance the engine);
//   - go-redis retries are off for the journal client: a failure comes back
//     fast and the caller decides what to do.
//
// Every key of a shard carries the shard as a Redis Cluster hash tag
// (gpux:{<shard>}:journal, gpux:{<shard>}:snapshot, ...), so one shard's keys
// live on one node and its multi-key scripts stay legal.
//
// MemoryJournal and MemoryReadModels implement the same contracts in process
// for running without Redis; nothing they hold survives a restart.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Errors reported by journals and read models. Test with errors.Is; the
// returned errors wrap them with the operation that failed.
var (
	// ErrUnavailable wraps every connection, timeout or "server not ready"
	// failure, a cancelled or expired context included (which the error
	// then wraps too). The outcome of a write that fails with it is
	// unknown: it may or may not have been stored. Retrying the same
	// Append is safe.
	ErrUnavailable = errors.New("journal unavailable")

	// ErrConflict reports that an entry with the same id exists with
	// different bytes, that the id lies at or below the newest entry but no
	// such entry exists (trimmed, or inside an older batch), or that a
	// snapshot older than (or disagreeing with) the stored one was saved.
	ErrConflict = errors.New("journal conflict")

	// ErrGap reports that Replay found the stored batches not contiguous:
	// a sequence number after the replay start is missing (trimmed or never
	// written) or covered twice.
	ErrGap = errors.New("journal gap")

	// ErrFenced reports that a fenced journal (see Fencer) refused a write
	// because the shard's fencing counter no longer equals the writer's
	// token: another node has taken the shard's lease since. The outcome is
	// known: nothing was stored, and no later write with that token will be.
	ErrFenced = errors.New("journal fenced: another node holds the shard's lease")
)

// Fencer is a Journal whose writes a shard lease can fence (RedisJournal).
type Fencer interface {
	// Fence makes every later Append, AppendAsync and SaveSnapshot check,
	// atomically with the write, that the shard's fencing counter
	// gpux:{<shard>}:fence equals token, and fail with ErrFenced
	// otherwise. Token 0 fences out every write (a node that holds no
	// lease). A journal that was never fenced checks nothing.
	Fence(token uint64)
}

// Batch is one journal entry: encoded commands with sequence numbers
// First..Last (inclusive). Sequence numbers start at 1 and the batches of a
// journal are contiguous: each batch's First is the previous batch's Last+1.
// Data is opaque to the store.
type Batch struct {
	First, Last uint64
	Data        []byte
}

func (b Batch) validate() error {
	if b.First == 0 {
		return errors.New("invalid batch: sequence numbers start at 1")
	}
	if b.Last < b.First {
		return fmt.Errorf("invalid batch: last %d before first %d", b.Last, b.First)
	}
	return nil
}

// Snapshot is an encoded engine state covering every command up to and
// including Seq. Hash is the engine's state hash, checked after recovery.
type Snapshot struct {
	Seq     uint64
	Hash    string
	Data    []byte
	TakenAt time.Time
}

// Journal is the durable, ordered log of one shard's command batches plus
// its newest snapshot. One goroutine (the shard's sequencer) appends; any
// goroutine may read. Implementations are safe for concurrent use.
type Journal interface {
	// Kind names the backend: "redis" or "memory".
	Kind() string

	// Durable reports whether an appended batch survives a process restart.
	Durable() bool

	// Append stores b. Appending a batch identical to a stored one (same
	// First, Last and Data) is a no-op that returns nil, so an append whose
	// outcome was unknown can be retried. It returns an error wrapping
	// ErrConflict when an entry with b.First exists with different bytes or
	// when b.First is not after the newest entry and no entry starts there,
	// and ErrUnavailable when the backend could not be reached (outcome
	// unknown). Append does not check that b follows the newest batch
	// without a gap: the sequencer owns numbering, and Replay checks it.
	Append(ctx context.Context, b Batch) error

	// LastSeq returns the Last of the newest stored batch, or the snapshot's
	// Seq when that is larger (the journal was trimmed empty), or 0.
	LastSeq(ctx context.Context) (uint64, error)

	// Replay calls fn with every stored batch whose Last is greater than
	// after, in order, reading a page at a time. The first batch may start
	// at or before after (a batch straddling it); the caller skips the
	// commands it already has. Replay stops at and returns the first error
	// of fn (wrapped), or an error wrapping ErrGap when the batches do not
	// cover every sequence number from after+1 on contiguously.
	Replay(ctx context.Context, after uint64, fn func(Batch) error) error

	// Entry returns the batch whose First is first, with ok false when no
	// such entry is stored. Use it to re-verify the tail after an outage.
	Entry(ctx context.Context, first uint64) (b Batch, ok bool, err error)

	// SaveSnapshot stores s as the shard's snapshot and then trims the
	// journal entries it wholly covers (Last <= s.Seq); a batch straddling
	// s.Seq is kept. Saving a snapshot older than the stored one, or one
	// with the same Seq and a different Hash, returns an error wrapping
	// ErrConflict and changes nothing.
	SaveSnapshot(ctx context.Context, s Snapshot) error

	// LoadSnapshot returns the stored snapshot, or ok false (and a nil
	// error) when there is none.
	LoadSnapshot(ctx context.Context) (s Snapshot, ok bool, err error)

	// ProbeWrite checks that the backend takes writes now, with a write
	// outside the journal and its snapshot (they are unchanged). It returns
	// nil, or an error wrapping ErrUnavailable when the backend cannot be
	// reached or refuses writes while answering reads (Redis at maxmemory
	// with noeviction, an AOF it cannot write: a full disk). A reachable
	// tail is not enough to resume writes; this is.
	ProbeWrite(ctx context.Context) error

	// Close releases the journal's resources. The journal is unusable after.
	Close() error
}

// Record is one entry of a read-model stream (a trade). ID is the record's
// stable id (a trade id); adding a record whose ID is already among the
// retained records is a no-op. Data is opaque.
type Record struct {
	ID   string
	Time time.Time
	Data []byte
}

// PricePoint is one spot price observation. Price is a decimal string.
type PricePoint struct {
	Time  time.Time
	Price string
}

// Candle is one OHLCV bucket starting at Start. Prices and volume are
// decimal strings; the store never parses them.
type Candle struct {
	Start                  time.Time
	Open, High, Low, Close string
	Volume                 string
}

// ReadModelStore holds one shard's history read models. They are rebuilt
// from events and never the source of truth: losing them loses history
// views, not money. Implementations are safe for concurrent use; Redis
// failures come back wrapping ErrUnavailable.
//
// Time ranges are half-open, [from, to); a zero from or to leaves that side
// unbounded. Spot and candle times are kept to the millisecond.
type ReadModelStore interface {
	// AddTrades appends trades to the market's trade history, oldest first,
	// keeping about ReadModelOptions.MaxTrades of the newest. A record whose
	// non-empty ID is already among the retained ones is skipped.
	AddTrades(ctx context.Context, market string, trades []Record) error

	// RecentTrades returns up to limit of the newest trades, newest first.
	// A limit <= 0 or above MaxTrades means MaxTrades.
	RecentTrades(ctx context.Context, market string, limit int) ([]Record, error)

	// AddSpotPrice records the market's spot price at t, keeping the newest
	// ReadModelOptions.MaxSpotPoints observations. Recording the same
	// (t, price) twice keeps one.
	AddSpotPrice(ctx context.Context, market string, t time.Time, price string) error

	// SpotHistory returns the observations with from <= Time < to, oldest
	// first.
	SpotHistory(ctx context.Context, market string, from, to time.Time) ([]PricePoint, error)

	// PutCandles stores cs for the market and interval (e.g. "1m", "1h"),
	// replacing any candle with the same Start, keeping the newest
	// ReadModelOptions.MaxCandles buckets.
	PutCandles(ctx context.Context, market, interval string, cs []Candle) error

	// Candles returns the candles with from <= Start < to, oldest first.
	Candles(ctx context.Context, market, interval string, from, to time.Time) ([]Candle, error)

	// PutIdempotent stores value under (scope, key) for ttl, replacing any
	// earlier value. ttl must be positive.
	PutIdempotent(ctx context.Context, scope, key string, value []byte, ttl time.Duration) error

	// GetIdempotent returns the unexpired value under (scope, key), with ok
	// false when there is none.
	GetIdempotent(ctx context.Context, scope, key string) (value []byte, ok bool, err error)
}

// ReadModelOptions bounds the read models. Zero fields take the defaults.
type ReadModelOptions struct {
	MaxTrades     int // trades kept per market; default 10000
	MaxSpotPoints int // spot observations kept per market; default 10000
	MaxCandles    int // candles kept per market and interval; default 10000
}

// DefaultReadModelCap is the default for every ReadModelOptions field.
const DefaultReadModelCap = 10000

func (o ReadModelOptions) withDefaults() ReadModelOptions {
	if o.MaxTrades <= 0 {
		o.MaxTrades = DefaultReadModelCap
	}
	if o.MaxSpotPoints <= 0 {
		o.MaxSpotPoints = DefaultReadModelCap
	}
	if o.MaxCandles <= 0 {
		o.MaxCandles = DefaultReadModelCap
	}
	return o
}

// checkName rejects empty names.
func checkName(what, s string) error {
	if s == "" {
		return fmt.Errorf("empty %s", what)
	}
	return nil
}

// checkShard rejects shard ids that would break the key layout: empty ones,
// and braces, which would change the Redis Cluster hash tag. (Braces later
// in a key are harmless: Redis hashes the first {...} only.)
func checkShard(s string) error {
	if s == "" {
		return errors.New("empty shard")
	}
	if strings.ContainsAny(s, "{}") {
		return fmt.Errorf("shard %q: must not contain braces", s)
	}
	return nil
}

func checkIdemTTL(ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("idempotency ttl %v: must be positive", ttl)
	}
	return nil
}

// limitFor maps a RecentTrades limit to the number of records to return.
func limitFor(limit, max int) int {
	if limit <= 0 || limit > max {
		return max
	}
	return limit
}
