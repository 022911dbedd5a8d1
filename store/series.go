package store

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// SeriesEntry is one entry of an append-only series the read side keeps
// forever (an account's statement lines, a market's fill samples).
// Entries are ordered by (Score, Key): Score is a time in unix
// milliseconds, Key is unique within the series and must sort in the
// caller's order byte by byte (fixed width), without the byte 0x1f.
type SeriesEntry struct {
	Score int64
	Key   string
	Data  []byte
}

// SeriesPos is a position in a series: the (Score, Key) of an entry.
type SeriesPos struct {
	Score int64
	Key   string
}

// SeriesStore keeps append-only series and sets of pending facts for the
// read side. Unlike the capped read models it never trims: these are
// history that is paged, not dropped. Both ReadModels and
// MemoryReadModels implement it; Redis failures come back wrapping
// ErrUnavailable.
type SeriesStore interface {
	// AddSeries adds es to the series. Adding an entry identical to a
	// stored one (same Score, Key and Data: a replayed event) is a no-op.
	AddSeries(ctx context.Context, series string, es []SeriesEntry) error

	// SeriesRange returns up to limit entries with from <= Score < to,
	// after the position after when it is not nil, in (Score, Key) order.
	SeriesRange(ctx context.Context, series string, from, to int64, after *SeriesPos, limit int) ([]SeriesEntry, error)

	// SeriesNewest returns up to limit of the newest entries, newest first.
	SeriesNewest(ctx context.Context, series string, limit int) ([]SeriesEntry, error)

	// PutFacts stores values under keys of the named set, replacing any.
	PutFacts(ctx context.Context, set string, facts map[string][]byte) error

	// GetFacts returns the value of each key (nil when absent), in order.
	GetFacts(ctx context.Context, set string, keys []string) ([][]byte, error)

	// DeleteFacts removes keys from the set; absent keys are ignored.
	DeleteFacts(ctx context.Context, set string, keys []string) error
}

var (
	_ SeriesStore = (*ReadModels)(nil)
	_ SeriesStore = (*MemoryReadModels)(nil)
)

// seriesSep separates an entry's Key from its Data in a Redis member, so
// members of one score sort by Key.
const seriesSep = "\x1f"

// Redis layout (under the shard's hash tag):
//
//	gpux:{<shard>}:series:<series>   sorted set, score Score, member Key 0x1f Data
//	gpux:{<shard>}:facts:<set>       hash, field key, value the fact

func checkSeriesEntries(series string, es []SeriesEntry) error {
	if err := checkName("series", series); err != nil {
		return err
	}
	for _, e := range es {
		if e.Key == "" || strings.Contains(e.Key, seriesSep) {
			return fmt.Errorf("series %s: key %q: empty or holds 0x1f", series, e.Key)
		}
	}
	return nil
}

// AddSeries adds entries with one ZADD. See SeriesStore.AddSeries.
func (r *ReadModels) AddSeries(ctx context.Context, series string, es []SeriesEntry) error {
	if err := checkSeriesEntries(series, es); err != nil {
		return fmt.Errorf("add series: %w", err)
	}
	if len(es) == 0 {
		return nil
	}
	zs := make([]redis.Z, len(es))
	for i, e := range es {
		zs[i] = redis.Z{Score: float64(e.Score), Member: e.Key + seriesSep + string(e.Data)}
	}
	if err := r.rdb.ZAdd(ctx, r.key("series", series), zs...).Err(); err != nil {
		return wrapRedis("add series "+series, err)
	}
	return nil
}

func parseSeriesMember(z redis.Z) SeriesEntry {
	m, _ := z.Member.(string)
	k, d, _ := strings.Cut(m, seriesSep)
	return SeriesEntry{Score: int64(z.Score), Key: k, Data: []byte(d)}
}

// SeriesRange pages a series. See SeriesStore.SeriesRange.
func (r *ReadModels) SeriesRange(ctx context.Context, series string, from, to int64, after *SeriesPos, limit int) ([]SeriesEntry, error) {
	if limit <= 0 || from >= to {
		return nil, nil
	}
	if after != nil {
		from = max(from, after.Score)
	}
	key := r.key("series", series)
	var out []SeriesEntry
	// Entries sharing after.Score come back first and are skipped up to
	// after.Key; they are few (one account's lines of one millisecond).
	for offset := int64(0); len(out) < limit; {
		count := int64(limit - len(out) + 16)
		zs, err := r.rdb.ZRangeByScoreWithScores(ctx, key, &redis.ZRangeBy{
			Min: strconv.FormatInt(from, 10), Max: "(" + strconv.FormatInt(to, 10), Offset: offset, Count: count,
		}).Result()
		if err != nil {
			return nil, wrapRedis("range series "+series, err)
		}
		for _, z := range zs {
			e := parseSeriesMember(z)
			if after != nil && !seriesAfter(e, *after) {
				continue
			}
			if len(out) < limit {
				out = append(out, e)
			}
		}
		if int64(len(zs)) < count {
			break
		}
		offset += count
	}
	return out, nil
}

func seriesAfter(e SeriesEntry, p SeriesPos) bool {
	return cmp.Or(cmp.Compare(e.Score, p.Score), strings.Compare(e.Key, p.Key)) > 0
}

// SeriesNewest reads the newest entries. See SeriesStore.SeriesNewest.
func (r *ReadModels) SeriesNewest(ctx context.Context, series string, limit int) ([]SeriesEntry, error) {
	if limit <= 0 {
		return nil, nil
	}
	zs, err := r.rdb.ZRevRangeWithScores(ctx, r.key("series", series), 0, int64(limit)-1).Result()
	if err != nil {
		return nil, wrapRedis("newest of series "+series, err)
	}
	out := make([]SeriesEntry, len(zs))
	for i, z := range zs {
		out[i] = parseSeriesMember(z)
	}
	return out, nil
}

// PutFacts stores facts with one HSET. See SeriesStore.PutFacts.
func (r *ReadModels) PutFacts(ctx context.Context, set string, facts map[string][]byte) error {
	if len(facts) == 0 {
		return nil
	}
	args := make([]any, 0, 2*len(facts))
	for k, v := range facts {
		args = append(args, k, v)
	}
	if err := r.rdb.HSet(ctx, r.key("facts", set), args...).Err(); err != nil {
		return wrapRedis("put facts "+set, err)
	}
	return nil
}

// GetFacts reads facts with one HMGET. See SeriesStore.GetFacts.
func (r *ReadModels) GetFacts(ctx context.Context, set string, keys []string) ([][]byte, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	vs, err := r.rdb.HMGet(ctx, r.key("facts", set), keys...).Result()
	if err != nil {
		return nil, wrapRedis("get facts "+set, err)
	}
	out := make([][]byte, len(keys))
	for i, v := range vs {
		if s, ok := v.(string); ok {
			out[i] = []byte(s)
		}
	}
	return out, nil
}

// DeleteFacts removes facts with one HDEL. See SeriesStore.DeleteFacts.
func (r *ReadModels) DeleteFacts(ctx context.Context, set string, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	if err := r.rdb.HDel(ctx, r.key("facts", set), keys...).Err(); err != nil {
		return wrapRedis("delete facts "+set, err)
	}
	return nil
}

// memSeries is MemoryReadModels' series and facts.
type memSeries struct {
	mu     sync.Mutex
	series map[string][]SeriesEntry // by (Score, Key, Data)
	facts  map[string]map[string][]byte
}

func (m *MemoryReadModels) seriesStore() *memSeries {
	m.seriesOnce.Do(func() {
		m.ser = &memSeries{series: map[string][]SeriesEntry{}, facts: map[string]map[string][]byte{}}
	})
	return m.ser
}

func compareEntry(a, b SeriesEntry) int {
	return cmp.Or(cmp.Compare(a.Score, b.Score), strings.Compare(a.Key, b.Key), bytes.Compare(a.Data, b.Data))
}

// AddSeries adds copies of es. See SeriesStore.AddSeries.
func (m *MemoryReadModels) AddSeries(ctx context.Context, series string, es []SeriesEntry) error {
	if err := checkSeriesEntries(series, es); err != nil {
		return fmt.Errorf("add series: %w", err)
	}
	s := m.seriesStore()
	s.mu.Lock()
	defer s.mu.Unlock()
	list := s.series[series]
	for _, e := range es {
		e.Data = slices.Clone(e.Data)
		i, found := slices.BinarySearchFunc(list, e, compareEntry)
		if !found {
			list = slices.Insert(list, i, e)
		}
	}
	s.series[series] = list
	return nil
}

// SeriesRange pages a series. See SeriesStore.SeriesRange.
func (m *MemoryReadModels) SeriesRange(ctx context.Context, series string, from, to int64, after *SeriesPos, limit int) ([]SeriesEntry, error) {
	s := m.seriesStore()
	s.mu.Lock()
	defer s.mu.Unlock()
	list := s.series[series]
	start := SeriesEntry{Score: from}
	i, _ := slices.BinarySearchFunc(list, start, compareEntry)
	var out []SeriesEntry
	for ; i < len(list) && len(out) < limit && list[i].Score < to; i++ {
		e := list[i]
		if after != nil && !seriesAfter(e, *after) {
			continue
		}
		e.Data = slices.Clone(e.Data)
		out = append(out, e)
	}
	return out, nil
}

// SeriesNewest reads the newest entries. See SeriesStore.SeriesNewest.
func (m *MemoryReadModels) SeriesNewest(ctx context.Context, series string, limit int) ([]SeriesEntry, error) {
	s := m.seriesStore()
	s.mu.Lock()
	defer s.mu.Unlock()
	list := s.series[series]
	var out []SeriesEntry
	for i := len(list) - 1; i >= 0 && len(out) < limit; i-- {
		e := list[i]
		e.Data = slices.Clone(e.Data)
		out = append(out, e)
	}
	return out, nil
}

// PutFacts stores copies of facts. See SeriesStore.PutFacts.
func (m *MemoryReadModels) PutFacts(ctx context.Context, set string, facts map[string][]byte) error {
	s := m.seriesStore()
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.facts[set]
	if f == nil {
		f = map[string][]byte{}
		s.facts[set] = f
	}
	for k, v := range facts {
		f[k] = slices.Clone(v)
	}
	return nil
}

// GetFacts reads facts. See SeriesStore.GetFacts.
func (m *MemoryReadModels) GetFacts(ctx context.Context, set string, keys []string) ([][]byte, error) {
	s := m.seriesStore()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]byte, len(keys))
	for i, k := range keys {
		out[i] = slices.Clone(s.facts[set][k])
	}
	return out, nil
}

// DeleteFacts removes facts. See SeriesStore.DeleteFacts.
func (m *MemoryReadModels) DeleteFacts(ctx context.Context, set string, keys []string) error {
	s := m.seriesStore()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		delete(s.facts[set], k)
	}
	return nil
}

// MaxSeriesScore is an upper bound for SeriesRange's to: no time reaches it.
const MaxSeriesScore = math.MaxInt64
