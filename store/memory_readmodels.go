package store

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

var _ ReadModelStore = (*MemoryReadModels)(nil)

// MemoryReadModels is a ReadModelStore in process memory with the same caps,
// ordering, ranges and millisecond precision as ReadModels.
//
// Each list keeps up to twice its cap and is cut back to the cap when it
// outgrows that, so adding is amortized O(1); reads only ever see the newest
// cap entries, as with Redis.
type MemoryReadModels struct {
	opt ReadModelOptions

	mu       sync.Mutex
	trades   map[string][]Record // per market, oldest first
	tradeIDs map[string]map[string]struct{}
	spot     map[string][]spotPoint // per market, by (ms, member)
	candles  map[string][]Candle    // per market+interval, by Start
	idem     map[string]idemValue
	swept    int // len(idem) after the last sweep of expired values

	objOnce sync.Once
	obj     *memObjects // closed orders (objects.go)

	seriesOnce sync.Once
	ser        *memSeries // statements, fill samples (series.go)
}

// newest returns the newest limit elements of s.
func newest[T any](s []T, limit int) []T {
	return s[max(0, len(s)-limit):]
}

// compact cuts s back to its newest limit elements once it holds more than
// twice as many, returning the new slice and the elements cut.
func compact[T any](s []T, limit int) (kept, cut []T) {
	if len(s) <= 2*limit {
		return s, nil
	}
	n := len(s) - limit
	cut = slices.Clone(s[:n])
	return slices.Delete(s, 0, n), cut
}

type spotPoint struct {
	ms     int64
	member string
	price  string
}

type idemValue struct {
	value   []byte
	expires time.Time
}

// NewMemoryReadModels returns empty in-memory read models.
func NewMemoryReadModels(opt ReadModelOptions) *MemoryReadModels {
	return &MemoryReadModels{
		opt:      opt.withDefaults(),
		trades:   make(map[string][]Record),
		tradeIDs: make(map[string]map[string]struct{}),
		spot:     make(map[string][]spotPoint),
		candles:  make(map[string][]Candle),
		idem:     make(map[string]idemValue),
	}
}

// AddTrades appends copies of trades. See ReadModelStore.AddTrades.
func (m *MemoryReadModels) AddTrades(ctx context.Context, market string, trades []Record) error {
	if err := checkName("market", market); err != nil {
		return fmt.Errorf("add trades: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	log, ids := m.trades[market], m.tradeIDs[market]
	if ids == nil {
		ids = make(map[string]struct{})
		m.tradeIDs[market] = ids
	}
	for _, t := range trades {
		if _, dup := ids[t.ID]; dup && t.ID != "" {
			continue
		}
		log = append(log, Record{ID: t.ID, Time: t.Time.UTC(), Data: bytes.Clone(t.Data)})
		ids[t.ID] = struct{}{}
	}
	log, cut := compact(log, m.opt.MaxTrades)
	for _, r := range cut {
		delete(ids, r.ID)
	}
	m.trades[market] = log
	return nil
}

// RecentTrades returns copies of the newest trades, newest first. See
// ReadModelStore.RecentTrades.
func (m *MemoryReadModels) RecentTrades(ctx context.Context, market string, limit int) ([]Record, error) {
	if err := checkName("market", market); err != nil {
		return nil, fmt.Errorf("recent trades: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	log := newest(m.trades[market], m.opt.MaxTrades)
	n := min(limitFor(limit, m.opt.MaxTrades), len(log))
	out := make([]Record, 0, n)
	for i := len(log) - 1; i >= len(log)-n; i-- {
		r := log[i]
		r.Data = bytes.Clone(r.Data)
		out = append(out, r)
	}
	return out, nil
}

// AddSpotPrice records an observation. See ReadModelStore.AddSpotPrice.
func (m *MemoryReadModels) AddSpotPrice(ctx context.Context, market string, t time.Time, price string) error {
	if err := checkName("market", market); err != nil {
		return fmt.Errorf("add spot price: %w", err)
	}
	ms := t.UnixMilli()
	p := spotPoint{ms: ms, member: spotMember(ms, price), price: price}
	m.mu.Lock()
	defer m.mu.Unlock()
	pts := m.spot[market]
	// Sorted like a Redis sorted set: by score, then by member.
	i, found := slices.BinarySearchFunc(pts, p, compareSpot)
	if !found {
		pts = slices.Insert(pts, i, p)
	}
	m.spot[market], _ = compact(pts, m.opt.MaxSpotPoints)
	return nil
}

func compareSpot(a, b spotPoint) int {
	return cmp.Or(cmp.Compare(a.ms, b.ms), cmp.Compare(a.member, b.member))
}

// SpotHistory returns the observations in [from, to). See
// ReadModelStore.SpotHistory.
func (m *MemoryReadModels) SpotHistory(ctx context.Context, market string, from, to time.Time) ([]PricePoint, error) {
	if err := checkName("market", market); err != nil {
		return nil, fmt.Errorf("spot history: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []PricePoint
	for _, p := range newest(m.spot[market], m.opt.MaxSpotPoints) {
		if inRange(p.ms, from, to) {
			out = append(out, PricePoint{Time: time.UnixMilli(p.ms).UTC(), Price: p.price})
		}
	}
	return out, nil
}

// inRange reports whether ms lies in [from, to), zero bounds open.
func inRange(ms int64, from, to time.Time) bool {
	return (from.IsZero() || ms >= from.UnixMilli()) && (to.IsZero() || ms < to.UnixMilli())
}

// PutCandles stores candles, replacing equal starts. See
// ReadModelStore.PutCandles.
func (m *MemoryReadModels) PutCandles(ctx context.Context, market, interval string, cs []Candle) error {
	if err := checkName("market", market); err != nil {
		return fmt.Errorf("put candles: %w", err)
	}
	if err := checkName("interval", interval); err != nil {
		return fmt.Errorf("put candles %s: %w", market, err)
	}
	key := market + ":" + interval
	m.mu.Lock()
	defer m.mu.Unlock()
	list := m.candles[key]
	for _, c := range cs {
		c.Start = time.UnixMilli(c.Start.UnixMilli()).UTC()
		i, found := slices.BinarySearchFunc(list, c, func(a, b Candle) int { return a.Start.Compare(b.Start) })
		if found {
			list[i] = c
		} else {
			list = slices.Insert(list, i, c)
		}
	}
	m.candles[key], _ = compact(list, m.opt.MaxCandles)
	return nil
}

// Candles returns the candles in [from, to). See ReadModelStore.Candles.
func (m *MemoryReadModels) Candles(ctx context.Context, market, interval string, from, to time.Time) ([]Candle, error) {
	if err := checkName("market", market); err != nil {
		return nil, fmt.Errorf("candles: %w", err)
	}
	if err := checkName("interval", interval); err != nil {
		return nil, fmt.Errorf("candles %s: %w", market, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Candle
	for _, c := range newest(m.candles[market+":"+interval], m.opt.MaxCandles) {
		if inRange(c.Start.UnixMilli(), from, to) {
			out = append(out, c)
		}
	}
	return out, nil
}

// PutIdempotent stores a copy of value until ttl passes. See
// ReadModelStore.PutIdempotent.
func (m *MemoryReadModels) PutIdempotent(ctx context.Context, scope, key string, value []byte, ttl time.Duration) error {
	if err := checkIdem(scope, key, ttl); err != nil {
		return fmt.Errorf("put idempotent: %w", err)
	}
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.idem[scope+":"+key] = idemValue{value: bytes.Clone(value), expires: now.Add(ttl)}
	// Expired values are dropped when read; sweep the rest whenever the map
	// has doubled since the last sweep, so it stays bounded at O(1) amortized.
	if len(m.idem) >= 2*max(m.swept, 512) {
		for k, v := range m.idem {
			if !now.Before(v.expires) {
				delete(m.idem, k)
			}
		}
		m.swept = len(m.idem)
	}
	return nil
}

// GetIdempotent returns a copy of the unexpired value. See
// ReadModelStore.GetIdempotent.
func (m *MemoryReadModels) GetIdempotent(ctx context.Context, scope, key string) ([]byte, bool, error) {
	if err := checkIdem(scope, key, time.Second); err != nil {
		return nil, false, fmt.Errorf("get idempotent: %w", err)
	}
	k := scope + ":" + key
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.idem[k]
	if !ok {
		return nil, false, nil
	}
	if !time.Now().Before(v.expires) {
		delete(m.idem, k)
		return nil, false, nil
	}
	return bytes.Clone(v.value), true, nil
}
