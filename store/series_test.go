package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/gpux/gpux/store"
)

func openSeries(t *testing.T, name string) store.SeriesStore {
	t.Helper()
	if name == "memory" {
		return store.NewMemoryReadModels(store.ReadModelOptions{})
	}
	return openRedisReadModels(t, store.ReadModelOptions{})
}

func seriesKeys(es []store.SeriesEntry) string {
	s := ""
	for _, e := range es {
		s += fmt.Sprintf("%d/%s=%s ", e.Score, e.Key, e.Data)
	}
	return s
}

func TestSeries(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"memory", "redis"} {
		t.Run(name, func(t *testing.T) {
			ss := openSeries(t, name)
			var es []store.SeriesEntry
			// five entries share score 20: paging must walk through them by key
			for i := range 10 {
				score := int64(10 * (i/5 + 1))
				if i == 9 {
					score = 30
				}
				es = append(es, store.SeriesEntry{Score: score, Key: fmt.Sprintf("k%02d", i), Data: []byte(fmt.Sprintf("d%d", i))})
			}
			if err := ss.AddSeries(ctx, "a", es[5:]); err != nil {
				t.Fatal(err)
			}
			if err := ss.AddSeries(ctx, "a", es); err != nil { // overlapping: a replay
				t.Fatal(err)
			}
			all, err := ss.SeriesRange(ctx, "a", 0, store.MaxSeriesScore, nil, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := seriesKeys(all), seriesKeys(es); got != want {
				t.Fatalf("all: got %s, want %s", got, want)
			}
			// page by 3 from score 10 to 30 (exclusive)
			var got []store.SeriesEntry
			var after *store.SeriesPos
			for range 10 {
				p, err := ss.SeriesRange(ctx, "a", 10, 30, after, 3)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, p...)
				if len(p) < 3 {
					break
				}
				after = &store.SeriesPos{Score: p[len(p)-1].Score, Key: p[len(p)-1].Key}
			}
			if g, w := seriesKeys(got), seriesKeys(es[:9]); g != w {
				t.Errorf("paged: got %s, want %s", g, w)
			}
			newest, err := ss.SeriesNewest(ctx, "a", 2)
			if err != nil {
				t.Fatal(err)
			}
			if g, w := seriesKeys(newest), seriesKeys([]store.SeriesEntry{es[9], es[8]}); g != w {
				t.Errorf("newest: got %s, want %s", g, w)
			}
			if err := ss.AddSeries(ctx, "a", []store.SeriesEntry{{Score: 1, Key: "bad\x1fkey"}}); err == nil {
				t.Error("a key holding the separator: got nil error")
			}

			if err := ss.PutFacts(ctx, "f", map[string][]byte{"x": []byte("1"), "y": []byte("2")}); err != nil {
				t.Fatal(err)
			}
			if err := ss.DeleteFacts(ctx, "f", []string{"x", "nope"}); err != nil {
				t.Fatal(err)
			}
			vs, err := ss.GetFacts(ctx, "f", []string{"x", "y"})
			if err != nil {
				t.Fatal(err)
			}
			if vs[0] != nil || string(vs[1]) != "2" {
				t.Errorf("facts: got %q, want [nil 2]", vs)
			}
		})
	}
}
