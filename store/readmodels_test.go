package store_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/gpux/gpux/store"
	"github.com/gpux/gpux/store/redistest"
)

type readModelsImpl struct {
	name string
	open func(tb testing.TB, opt store.ReadModelOptions) store.ReadModelStore
}

func readModelsImpls() []readModelsImpl {
	return []readModelsImpl{
		{"memory", func(tb testing.TB, opt store.ReadModelOptions) store.ReadModelStore {
			return store.NewMemoryReadModels(opt)
		}},
		{"redis", func(tb testing.TB, opt store.ReadModelOptions) store.ReadModelStore {
			return openRedisReadModels(tb, opt)
		}},
	}
}

func openRedisReadModels(tb testing.TB, opt store.ReadModelOptions) *store.ReadModels {
	tb.Helper()
	j := openRedisJournal(tb)
	rm, err := store.NewReadModels(j.Client(), j.Shard(), opt)
	if err != nil {
		tb.Fatalf("NewReadModels: %v", err)
	}
	return rm
}

func forEachReadModels(t *testing.T, opt store.ReadModelOptions, fn func(t *testing.T, rm store.ReadModelStore)) {
	t.Helper()
	for _, impl := range readModelsImpls() {
		t.Run(impl.name, func(t *testing.T) {
			fn(t, impl.open(t, opt))
		})
	}
}

var t0 = time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)

func trade(i int) store.Record {
	return store.Record{ID: fmt.Sprintf("trade-%02d", i), Time: t0.Add(time.Duration(i)*time.Second + 7*time.Nanosecond), Data: fmt.Appendf(nil, `{"n":%d}`, i)}
}

func tradeIDs(rs []store.Record) []string {
	var ids []string
	for _, r := range rs {
		ids = append(ids, r.ID)
	}
	return ids
}

func TestReadModelsTrades(t *testing.T) {
	const market = "h100-sxm.us-east"
	forEachReadModels(t, store.ReadModelOptions{MaxTrades: 5}, func(t *testing.T, rm store.ReadModelStore) {
		var first, second []store.Record
		for i := 1; i <= 4; i++ {
			first = append(first, trade(i))
		}
		for i := 3; i <= 8; i++ { // 3 and 4 are retries
			second = append(second, trade(i))
		}
		for _, batch := range [][]store.Record{first, second, {trade(8)}} {
			if err := rm.AddTrades(t.Context(), market, batch); err != nil {
				t.Fatalf("AddTrades: %v", err)
			}
		}
		if err := rm.AddTrades(t.Context(), "l4.eu-west", []store.Record{trade(99)}); err != nil {
			t.Fatalf("AddTrades other market: %v", err)
		}
		tests := []struct {
			limit int
			want  []string
		}{
			{0, []string{"trade-08", "trade-07", "trade-06", "trade-05", "trade-04"}},
			{2, []string{"trade-08", "trade-07"}},
			{100, []string{"trade-08", "trade-07", "trade-06", "trade-05", "trade-04"}},
		}
		for _, tt := range tests {
			t.Run(fmt.Sprintf("limit %d", tt.limit), func(t *testing.T) {
				got, err := rm.RecentTrades(t.Context(), market, tt.limit)
				if err != nil {
					t.Fatalf("RecentTrades: %v", err)
				}
				if ids := tradeIDs(got); fmt.Sprint(ids) != fmt.Sprint(tt.want) {
					t.Fatalf("RecentTrades(%d) ids = %v, want %v", tt.limit, ids, tt.want)
				}
				for _, r := range got {
					var n int
					fmt.Sscanf(r.ID, "trade-%d", &n)
					want := trade(n)
					if !r.Time.Equal(want.Time) || !bytes.Equal(r.Data, want.Data) {
						t.Errorf("trade %s = %v %q, want %v %q", r.ID, r.Time, r.Data, want.Time, want.Data)
					}
				}
			})
		}
		if got, err := rm.RecentTrades(t.Context(), "a100-80gb.nowhere", 10); err != nil || len(got) != 0 {
			t.Errorf("RecentTrades of an empty market = %v, %v; want none", got, err)
		}
	})
}

// TestRedisTradesCapped checks that Redis really trims the stream (MAXLEN ~
// trims whole nodes, so the length is only bounded approximately).
func TestRedisTradesCapped(t *testing.T) {
	rm := openRedisReadModelsWithShard(t, store.ReadModelOptions{MaxTrades: 10})
	var rs []store.Record
	for i := range 1000 {
		rs = append(rs, store.Record{ID: fmt.Sprint(i), Time: t0, Data: []byte("x")})
	}
	if err := rm.rm.AddTrades(t.Context(), "m", rs); err != nil {
		t.Fatalf("AddTrades: %v", err)
	}
	rdb := rm.j.Client()
	n, err := rdb.XLen(t.Context(), "gpux:{"+rm.j.Shard()+"}:trades:m").Result()
	if err != nil || n < 10 || n > 300 {
		t.Errorf("XLEN trades = %d, %v; want between 10 and 300", n, err)
	}
	ids, err := rdb.ZCard(t.Context(), "gpux:{"+rm.j.Shard()+"}:tradeids:m").Result()
	if err != nil || ids != 10 {
		t.Errorf("ZCARD trade ids = %d, %v; want 10", ids, err)
	}
}

type redisReadModels struct {
	j  *store.RedisJournal
	rm *store.ReadModels
}

func openRedisReadModelsWithShard(tb testing.TB, opt store.ReadModelOptions) redisReadModels {
	tb.Helper()
	j := openRedisJournal(tb)
	rm, err := store.NewReadModels(j.Client(), j.Shard(), opt)
	if err != nil {
		tb.Fatalf("NewReadModels: %v", err)
	}
	return redisReadModels{j: j, rm: rm}
}

func TestReadModelsSpot(t *testing.T) {
	const market = "h200.us-west"
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	forEachReadModels(t, store.ReadModelOptions{MaxSpotPoints: 4}, func(t *testing.T, rm store.ReadModelStore) {
		adds := []struct {
			min   int
			price string
		}{
			{0, "1.00"}, {1, "1.10"}, {2, "1.20"}, {3, "1.30"}, {3, "1.30"}, {4, "1.40"}, {5, "1.50"},
		}
		for _, a := range adds {
			if err := rm.AddSpotPrice(t.Context(), market, at(a.min), a.price); err != nil {
				t.Fatalf("AddSpotPrice: %v", err)
			}
		}
		tests := []struct {
			name     string
			from, to time.Time
			want     []string
		}{
			{"everything kept", time.Time{}, time.Time{}, []string{"1.20", "1.30", "1.40", "1.50"}},
			{"from is inclusive", at(3), time.Time{}, []string{"1.30", "1.40", "1.50"}},
			{"to is exclusive", time.Time{}, at(4), []string{"1.20", "1.30"}},
			{"both", at(3), at(5), []string{"1.30", "1.40"}},
			{"empty range", at(10), at(20), nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := rm.SpotHistory(t.Context(), market, tt.from, tt.to)
				if err != nil {
					t.Fatalf("SpotHistory: %v", err)
				}
				var prices []string
				for i, p := range got {
					prices = append(prices, p.Price)
					if i > 0 && !p.Time.After(got[i-1].Time) {
						t.Errorf("point %d at %v not after %v", i, p.Time, got[i-1].Time)
					}
				}
				if fmt.Sprint(prices) != fmt.Sprint(tt.want) {
					t.Errorf("SpotHistory prices = %v, want %v", prices, tt.want)
				}
			})
		}
		got, _ := rm.SpotHistory(t.Context(), market, at(5), time.Time{})
		if len(got) != 1 || !got[0].Time.Equal(at(5)) || got[0].Time.Location() != time.UTC {
			t.Errorf("SpotHistory from 5 = %v, want one point at %v UTC", got, at(5))
		}
	})
}

func TestReadModelsCandles(t *testing.T) {
	const market = "b200.eu-west"
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	candle := func(h int, close string) store.Candle {
		return store.Candle{Start: at(h), Open: "2.0000", High: "2.5", Low: "1.9", Close: close, Volume: fmt.Sprint(h * 10)}
	}
	forEachReadModels(t, store.ReadModelOptions{MaxCandles: 3}, func(t *testing.T, rm store.ReadModelStore) {
		puts := [][]store.Candle{
			{candle(0, "2.1"), candle(1, "2.2")},
			{candle(2, "2.3")},
			{candle(2, "2.35"), candle(3, "2.4")}, // replaces hour 2, pushes hour 0 out
		}
		for _, cs := range puts {
			if err := rm.PutCandles(t.Context(), market, "1h", cs); err != nil {
				t.Fatalf("PutCandles: %v", err)
			}
		}
		// Same buckets, other interval: must not mix.
		if err := rm.PutCandles(t.Context(), market, "1m", []store.Candle{candle(1, "9.9")}); err != nil {
			t.Fatalf("PutCandles 1m: %v", err)
		}
		tests := []struct {
			name     string
			interval string
			from, to time.Time
			want     []store.Candle
		}{
			{"all", "1h", time.Time{}, time.Time{}, []store.Candle{candle(1, "2.2"), candle(2, "2.35"), candle(3, "2.4")}},
			{"half-open range", "1h", at(2), at(3), []store.Candle{candle(2, "2.35")}},
			{"other interval", "1m", time.Time{}, time.Time{}, []store.Candle{candle(1, "9.9")}},
			{"unknown interval", "1d", time.Time{}, time.Time{}, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := rm.Candles(t.Context(), market, tt.interval, tt.from, tt.to)
				if err != nil {
					t.Fatalf("Candles: %v", err)
				}
				if len(got) != len(tt.want) {
					t.Fatalf("Candles = %+v, want %+v", got, tt.want)
				}
				for i := range got {
					g, w := got[i], tt.want[i]
					if !g.Start.Equal(w.Start) || g.Open != w.Open || g.High != w.High || g.Low != w.Low || g.Close != w.Close || g.Volume != w.Volume {
						t.Errorf("candle %d = %+v, want %+v", i, g, w)
					}
				}
			})
		}
	})
}

func TestReadModelsIdempotent(t *testing.T) {
	forEachReadModels(t, store.ReadModelOptions{}, func(t *testing.T, rm store.ReadModelStore) {
		ctx := t.Context()
		if err := rm.PutIdempotent(ctx, "acct-1", "key-1", []byte(`{"id":1}`), time.Hour); err != nil {
			t.Fatalf("PutIdempotent: %v", err)
		}
		if err := rm.PutIdempotent(ctx, "acct-2", "key-1", []byte(`{"id":2}`), time.Hour); err != nil {
			t.Fatalf("PutIdempotent: %v", err)
		}
		if err := rm.PutIdempotent(ctx, "acct-1", "short", []byte("soon gone"), 100*time.Millisecond); err != nil {
			t.Fatalf("PutIdempotent: %v", err)
		}
		if err := rm.PutIdempotent(ctx, "acct-1", "never", []byte("x"), 0); err == nil {
			t.Errorf("PutIdempotent with ttl 0 succeeded, want an error")
		}
		tests := []struct {
			scope, key string
			want       string
			ok         bool
		}{
			{"acct-1", "key-1", `{"id":1}`, true},
			{"acct-2", "key-1", `{"id":2}`, true},
			{"acct-1", "missing", "", false},
			{"acct-1", "never", "", false},
			{"acct-1", "short", "soon gone", true},
		}
		for _, tt := range tests {
			got, ok, err := rm.GetIdempotent(ctx, tt.scope, tt.key)
			if err != nil || ok != tt.ok || string(got) != tt.want {
				t.Errorf("GetIdempotent(%s, %s) = %q, %v, %v; want %q, %v, nil", tt.scope, tt.key, got, ok, err, tt.want, tt.ok)
			}
		}
		time.Sleep(300 * time.Millisecond)
		if got, ok, err := rm.GetIdempotent(ctx, "acct-1", "short"); ok || err != nil {
			t.Errorf("GetIdempotent after ttl = %q, %v, %v; want nothing", got, ok, err)
		}
	})
}

func TestRedisIdempotentTTL(t *testing.T) {
	rm := openRedisReadModelsWithShard(t, store.ReadModelOptions{})
	if err := rm.rm.PutIdempotent(t.Context(), "s", "k", []byte("v"), time.Minute); err != nil {
		t.Fatalf("PutIdempotent: %v", err)
	}
	ttl, err := rm.j.Client().PTTL(t.Context(), "gpux:{"+rm.j.Shard()+"}:idem:s:k").Result()
	if err != nil || ttl <= 50*time.Second || ttl > time.Minute {
		t.Errorf("PTTL = %v, %v; want just under 1m", ttl, err)
	}
}

// TestReadModelsManyAdds adds far more than the caps, one at a time, so
// every trimming path (Redis trims, memory compactions) runs repeatedly.
func TestReadModelsManyAdds(t *testing.T) {
	const market, n, limit = "l40s.ap-south", 50, 3
	forEachReadModels(t, store.ReadModelOptions{MaxTrades: limit, MaxSpotPoints: limit, MaxCandles: limit}, func(t *testing.T, rm store.ReadModelStore) {
		ctx := t.Context()
		for i := range n {
			at := t0.Add(time.Duration(i) * time.Minute)
			if err := rm.AddTrades(ctx, market, []store.Record{trade(i)}); err != nil {
				t.Fatalf("AddTrades: %v", err)
			}
			if err := rm.AddSpotPrice(ctx, market, at, fmt.Sprint(i)); err != nil {
				t.Fatalf("AddSpotPrice: %v", err)
			}
			if err := rm.PutCandles(ctx, market, "1m", []store.Candle{{Start: at, Open: "1", High: "1", Low: "1", Close: fmt.Sprint(i), Volume: "0"}}); err != nil {
				t.Fatalf("PutCandles: %v", err)
			}
		}
		trades, err := rm.RecentTrades(ctx, market, 0)
		if got, want := fmt.Sprint(tradeIDs(trades)), "[trade-49 trade-48 trade-47]"; err != nil || got != want {
			t.Errorf("RecentTrades = %v, %v; want %v", got, err, want)
		}
		spot, err := rm.SpotHistory(ctx, market, time.Time{}, time.Time{})
		var prices []string
		for _, p := range spot {
			prices = append(prices, p.Price)
		}
		if got, want := fmt.Sprint(prices), "[47 48 49]"; err != nil || got != want {
			t.Errorf("SpotHistory = %v, %v; want %v", got, err, want)
		}
		candles, err := rm.Candles(ctx, market, "1m", time.Time{}, time.Time{})
		var closes []string
		for _, c := range candles {
			closes = append(closes, c.Close)
		}
		if got, want := fmt.Sprint(closes), "[47 48 49]"; err != nil || got != want {
			t.Errorf("Candles = %v, %v; want %v", got, err, want)
		}
	})
}

// TestShardCleanup checks that redistest.Shard leaves nothing behind.
func TestShardCleanup(t *testing.T) {
	url := redistest.URL(t)
	var shard string
	t.Run("writes", func(t *testing.T) {
		shard = redistest.Shard(t)
		j, err := store.OpenRedis(t.Context(), url, shard)
		if err != nil {
			t.Fatalf("OpenRedis: %v", err)
		}
		defer j.Close()
		appendAll(t, j, batch(1, 1))
		rm, err := store.NewReadModels(j.Client(), shard, store.ReadModelOptions{})
		if err != nil {
			t.Fatalf("NewReadModels: %v", err)
		}
		if err := rm.AddSpotPrice(t.Context(), "m", t0, "1"); err != nil {
			t.Fatalf("AddSpotPrice: %v", err)
		}
	})
	j, err := store.OpenRedis(t.Context(), url, shard)
	if err != nil {
		t.Fatalf("OpenRedis: %v", err)
	}
	defer j.Close()
	keys, err := j.Client().Keys(t.Context(), "gpux:{"+shard+"}:*").Result()
	if err != nil || len(keys) != 0 {
		t.Errorf("keys left after the test = %v, %v; want none", keys, err)
	}
}
