package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

var _ ReadModelStore = (*ReadModels)(nil)

// ReadModels is a ReadModelStore in Redis, under the shard's hash tag:
//
//	gpux:{<shard>}:trades:<market>            stream, capped with MAXLEN ~
//	gpux:{<shard>}:tradeids:<market>          sorted set of retained trade ids (dedup)
//	gpux:{<shard>}:spot:<market>              sorted set, score unix ms, member "<ms>:<price>"
//	gpux:{<shard>}:candles:<market>:<interval> sorted set, score bucket start unix ms
//	gpux:{<shard>}:idem:<scope>:<key>         string with a TTL
type ReadModels struct {
	rdb   redis.UniversalClient
	shard string
	opt   ReadModelOptions
}

// NewReadModels returns the read models of shard on rdb (for example
// RedisJournal.Client()). It does not take ownership of rdb.
func NewReadModels(rdb redis.UniversalClient, shard string, opt ReadModelOptions) (*ReadModels, error) {
	if err := checkShard(shard); err != nil {
		return nil, fmt.Errorf("new read models: %w", err)
	}
	return &ReadModels{rdb: rdb, shard: shard, opt: opt.withDefaults()}, nil
}

func (r *ReadModels) key(parts ...string) string {
	return shardKey(r.shard, strings.Join(parts, ":"))
}

// addTradesScript appends the trades whose id is not retained yet.
//
// KEYS[1] trade stream, KEYS[2] sorted set of retained ids (score: ms).
// ARGV[1] cap, then (id, ms, time, data) per trade. Returns how many were added.
var addTradesScript = redis.NewScript(`
local cap = tonumber(ARGV[1])
local added = 0
for i = 2, #ARGV, 4 do
  local id = ARGV[i]
  if id == '' or not redis.call('ZSCORE', KEYS[2], id) then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', cap, '*', 'id', id, 't', ARGV[i + 2], 'd', ARGV[i + 3])
    if id ~= '' then
      redis.call('ZADD', KEYS[2], ARGV[i + 1], id)
    end
    added = added + 1
  end
end
if added > 0 then
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(cap + 1))
end
return added
`)

// AddTrades appends trades in one script run. See ReadModelStore.AddTrades.
func (r *ReadModels) AddTrades(ctx context.Context, market string, trades []Record) error {
	if err := checkName("market", market); err != nil {
		return fmt.Errorf("add trades: %w", err)
	}
	if len(trades) == 0 {
		return nil
	}
	args := make([]any, 0, 1+4*len(trades))
	args = append(args, r.opt.MaxTrades)
	for _, t := range trades {
		args = append(args, t.ID, t.Time.UnixMilli(), t.Time.UTC().Format(time.RFC3339Nano), t.Data)
	}
	keys := []string{r.key("trades", market), r.key("tradeids", market)}
	if err := addTradesScript.Run(ctx, r.rdb, keys, args...).Err(); err != nil {
		return wrapRedis(fmt.Sprintf("add %d trades %s", len(trades), market), err)
	}
	return nil
}

// RecentTrades reads the newest trades. See ReadModelStore.RecentTrades.
func (r *ReadModels) RecentTrades(ctx context.Context, market string, limit int) ([]Record, error) {
	if err := checkName("market", market); err != nil {
		return nil, fmt.Errorf("recent trades: %w", err)
	}
	n := limitFor(limit, r.opt.MaxTrades)
	msgs, err := r.rdb.XRevRangeN(ctx, r.key("trades", market), "+", "-", int64(n)).Result()
	if err != nil {
		return nil, wrapRedis("recent trades "+market, err)
	}
	out := make([]Record, 0, len(msgs))
	for _, m := range msgs {
		id, _ := m.Values["id"].(string)
		ts, _ := m.Values["t"].(string)
		d, _ := m.Values["d"].(string)
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return nil, fmt.Errorf("recent trades %s: entry %s: time: %w", market, m.ID, err)
		}
		out = append(out, Record{ID: id, Time: t, Data: []byte(d)})
	}
	return out, nil
}

// AddSpotPrice records an observation and trims the oldest beyond the cap,
// in one transaction. See ReadModelStore.AddSpotPrice.
func (r *ReadModels) AddSpotPrice(ctx context.Context, market string, t time.Time, price string) error {
	if err := checkName("market", market); err != nil {
		return fmt.Errorf("add spot price: %w", err)
	}
	key := r.key("spot", market)
	ms := t.UnixMilli()
	_, err := r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAdd(ctx, key, redis.Z{Score: float64(ms), Member: spotMember(ms, price)})
		p.ZRemRangeByRank(ctx, key, 0, -int64(r.opt.MaxSpotPoints)-1)
		return nil
	})
	if err != nil {
		return wrapRedis(fmt.Sprintf("add spot price %s at %d", market, ms), err)
	}
	return nil
}

func spotMember(ms int64, price string) string {
	return strconv.FormatInt(ms, 10) + ":" + price
}

// SpotHistory reads observations in a time range. See ReadModelStore.SpotHistory.
func (r *ReadModels) SpotHistory(ctx context.Context, market string, from, to time.Time) ([]PricePoint, error) {
	if err := checkName("market", market); err != nil {
		return nil, fmt.Errorf("spot history: %w", err)
	}
	members, err := r.rdb.ZRangeByScore(ctx, r.key("spot", market), scoreRange(from, to)).Result()
	if err != nil {
		return nil, wrapRedis("spot history "+market, err)
	}
	out := make([]PricePoint, 0, len(members))
	for _, m := range members {
		s, price, ok := strings.Cut(m, ":")
		ms, err := strconv.ParseInt(s, 10, 64)
		if !ok || err != nil {
			return nil, fmt.Errorf("spot history %s: malformed member %q", market, m)
		}
		out = append(out, PricePoint{Time: time.UnixMilli(ms).UTC(), Price: price})
	}
	return out, nil
}

// scoreRange is the half-open range [from, to) in unix ms; zero times are
// unbounded.
func scoreRange(from, to time.Time) *redis.ZRangeBy {
	zr := &redis.ZRangeBy{Min: "-inf", Max: "+inf"}
	if !from.IsZero() {
		zr.Min = strconv.FormatInt(from.UnixMilli(), 10)
	}
	if !to.IsZero() {
		zr.Max = "(" + strconv.FormatInt(to.UnixMilli(), 10)
	}
	return zr
}

// candleJSON is a candle as stored; the start is in the member too so two
// buckets with equal prices stay distinct members.
type candleJSON struct {
	Start  int64  `json:"s"`
	Open   string `json:"o"`
	High   string `json:"h"`
	Low    string `json:"l"`
	Close  string `json:"c"`
	Volume string `json:"v"`
}

// PutCandles replaces the candles' buckets and trims the oldest beyond the
// cap, in one transaction. See ReadModelStore.PutCandles.
func (r *ReadModels) PutCandles(ctx context.Context, market, interval string, cs []Candle) error {
	if err := checkName("market", market); err != nil {
		return fmt.Errorf("put candles: %w", err)
	}
	if err := checkName("interval", interval); err != nil {
		return fmt.Errorf("put candles %s: %w", market, err)
	}
	if len(cs) == 0 {
		return nil
	}
	key := r.key("candles", market, interval)
	members := make([]redis.Z, len(cs))
	for i, c := range cs {
		ms := c.Start.UnixMilli()
		b, err := json.Marshal(candleJSON{Start: ms, Open: c.Open, High: c.High, Low: c.Low, Close: c.Close, Volume: c.Volume})
		if err != nil {
			return fmt.Errorf("put candles %s %s: %w", market, interval, err)
		}
		members[i] = redis.Z{Score: float64(ms), Member: b}
	}
	_, err := r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, z := range members {
			s := strconv.FormatInt(int64(z.Score), 10)
			p.ZRemRangeByScore(ctx, key, s, s)
			p.ZAdd(ctx, key, z)
		}
		p.ZRemRangeByRank(ctx, key, 0, -int64(r.opt.MaxCandles)-1)
		return nil
	})
	if err != nil {
		return wrapRedis(fmt.Sprintf("put %d candles %s %s", len(cs), market, interval), err)
	}
	return nil
}

// Candles reads the candles in a time range. See ReadModelStore.Candles.
func (r *ReadModels) Candles(ctx context.Context, market, interval string, from, to time.Time) ([]Candle, error) {
	if err := checkName("market", market); err != nil {
		return nil, fmt.Errorf("candles: %w", err)
	}
	if err := checkName("interval", interval); err != nil {
		return nil, fmt.Errorf("candles %s: %w", market, err)
	}
	members, err := r.rdb.ZRangeByScore(ctx, r.key("candles", market, interval), scoreRange(from, to)).Result()
	if err != nil {
		return nil, wrapRedis(fmt.Sprintf("candles %s %s", market, interval), err)
	}
	out := make([]Candle, 0, len(members))
	for _, m := range members {
		var c candleJSON
		if err := json.Unmarshal([]byte(m), &c); err != nil {
			return nil, fmt.Errorf("candles %s %s: decode %q: %w", market, interval, m, err)
		}
		out = append(out, Candle{Start: time.UnixMilli(c.Start).UTC(), Open: c.Open, High: c.High, Low: c.Low, Close: c.Close, Volume: c.Volume})
	}
	return out, nil
}

// PutIdempotent stores an answer with a TTL. See ReadModelStore.PutIdempotent.
func (r *ReadModels) PutIdempotent(ctx context.Context, scope, key string, value []byte, ttl time.Duration) error {
	if err := checkIdem(scope, key, ttl); err != nil {
		return fmt.Errorf("put idempotent: %w", err)
	}
	if err := r.rdb.Set(ctx, r.key("idem", scope, key), value, ttl).Err(); err != nil {
		return wrapRedis(fmt.Sprintf("put idempotent %s:%s", scope, key), err)
	}
	return nil
}

// GetIdempotent reads an unexpired answer. See ReadModelStore.GetIdempotent.
func (r *ReadModels) GetIdempotent(ctx context.Context, scope, key string) ([]byte, bool, error) {
	if err := checkIdem(scope, key, time.Second); err != nil {
		return nil, false, fmt.Errorf("get idempotent: %w", err)
	}
	v, err := r.rdb.Get(ctx, r.key("idem", scope, key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, wrapRedis(fmt.Sprintf("get idempotent %s:%s", scope, key), err)
	}
	return v, true, nil
}

func checkIdem(scope, key string, ttl time.Duration) error {
	if err := checkName("scope", scope); err != nil {
		return err
	}
	if err := checkName("key", key); err != nil {
		return err
	}
	return checkIdemTTL(ttl)
}
