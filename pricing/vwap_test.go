package pricing

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)

func TestVWAP(t *testing.T) {
	type add struct {
		at     time.Duration // after t0
		price  string
		qty    int64
		hours  int64
		counts bool
	}
	tests := []struct {
		name   string
		window time.Duration
		adds   []add
		now    time.Duration
		want   string // "" = no value
	}{
		{"empty", 24 * time.Hour, nil, 0, ""},
		{"weights are GPU-hours: 10 @ 2.00 and 30 @ 3.00", 24 * time.Hour, []add{
			{0, "2.00", 10, 1, true},          // 10 GPU-h
			{time.Minute, "3.00", 5, 6, true}, // 30 GPU-h
		}, time.Hour, "2.75"},
		{"a trade exactly one window old is out", 24 * time.Hour, []add{
			{0, "2.00", 10, 1, true},
			{time.Hour, "3.00", 30, 1, true},
		}, 24 * time.Hour, "3.00"},
		{"one tick before the window edge it is still in", 24 * time.Hour, []add{
			{0, "2.00", 10, 1, true},
			{time.Hour, "3.00", 30, 1, true},
		}, 24*time.Hour - time.Nanosecond, "2.75"},
		{"all evicted", 24 * time.Hour, []add{{0, "2.00", 10, 1, true}}, 48 * time.Hour, ""},
		{"rounds half up to a tick", time.Hour, []add{
			{0, "0.0001", 1, 1, true},
			{0, "0.0002", 1, 1, true}, // 1.5 ticks → 2
		}, 0, "0.0002"},
		{"rounds down under a half", time.Hour, []add{
			{0, "0.0001", 2, 1, true},
			{0, "0.0002", 1, 1, true}, // 1.333 ticks → 1
		}, 0, "0.0001"},
		{"ignored trades", time.Hour, []add{
			{0, "2.00", 0, 5, false},
			{0, "2.00", 5, 0, false},
			{0, "2.00", -1, 5, false},
			{0, "3.00", 1, 1, true},
		}, 0, "3.00"},
		{"out of order trades are placed by time", time.Hour, []add{
			{30 * time.Minute, "3.00", 1, 1, true},
			{0, "1.00", 1, 1, true}, // evicted at now = 1h, though added last
		}, time.Hour, "3.00"},
		{"huge weights stay exact", 24 * time.Hour, []add{
			{0, "100000", math.MaxInt64 / 2, 2, true},
			{0, "0", math.MaxInt64 / 2, 2, true},
			{0, "50000", math.MaxInt64 / 2, 2, true}, // Σ GPU-hours > 2^64
		}, 0, "50000.00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := NewVWAP(tt.window)
			for _, a := range tt.adds {
				p, err := ParsePrice(a.price)
				if err != nil {
					t.Fatal(err)
				}
				if got := v.Add(Trade{Time: t0.Add(a.at), Price: p, Quantity: a.qty, Hours: a.hours}); got != a.counts {
					t.Fatalf("Add(%+v) = %v, want %v", a, got, a.counts)
				}
			}
			got, ok := v.Value(t0.Add(tt.now))
			if tt.want == "" {
				if ok {
					t.Fatalf("Value = %s, want none", FormatPrice(got))
				}
				return
			}
			if !ok || FormatPrice(got) != tt.want {
				t.Fatalf("Value = %s (ok %v), want %s", FormatPrice(got), ok, tt.want)
			}
		})
	}
}

func TestVWAPRejectsBadPrices(t *testing.T) {
	v := NewVWAP(time.Hour)
	for _, p := range []int64{-1, MaxPrice + 1} {
		if v.Add(Trade{Time: t0, Price: p, Quantity: 1, Hours: 1}) {
			t.Errorf("Add with price %d counted", p)
		}
	}
	if _, ok := v.Last(); ok {
		t.Error("Last after only rejected trades ok, want none")
	}
	if v.Add(Trade{Time: t0, Price: 1, Quantity: math.MaxInt64, Hours: 2}) {
		t.Error("Add with overflowing GPU-hours counted")
	}
}

func TestVWAPLast(t *testing.T) {
	v := NewVWAP(24 * time.Hour)
	if _, ok := v.Last(); ok {
		t.Fatal("Last on an empty VWAP ok")
	}
	a := Trade{Time: t0, Price: 20000, Quantity: 1, Hours: 1}
	b := Trade{Time: t0.Add(time.Hour), Price: 30000, Quantity: 1, Hours: 1}
	older := Trade{Time: t0.Add(time.Minute), Price: 10000, Quantity: 1, Hours: 1}
	same := Trade{Time: b.Time, Price: 40000, Quantity: 1, Hours: 1}
	v.Add(a)
	v.Add(b)
	v.Add(older)
	if got, _ := v.Last(); got != b {
		t.Errorf("Last = %+v, want the latest by time %+v", got, b)
	}
	v.Add(same)
	if got, _ := v.Last(); got != same {
		t.Errorf("Last = %+v, want the later Add at the same time %+v", got, same)
	}
	if _, ok := v.Value(t0.Add(72 * time.Hour)); ok {
		t.Error("Value after every trade left the window ok")
	}
	if got, ok := v.Last(); !ok || got != same {
		t.Errorf("Last after eviction = %+v, %v, want %+v", got, ok, same)
	}
}

// A long stream checked against a from-scratch average of the window, with
// the window sliding as it goes; exercises eviction and compaction.
func TestVWAPMatchesRecompute(t *testing.T) {
	const seed = 20261201
	rng := rand.New(rand.NewPCG(seed, 1))
	const window = 24 * time.Hour
	v := NewVWAP(window)
	var all []Trade
	now := t0
	for i := range 5000 {
		now = now.Add(time.Duration(rng.IntN(int(time.Hour))))
		tr := Trade{Time: now, Price: rng.Int64N(200000), Quantity: 1 + rng.Int64N(64), Hours: 1 + rng.Int64N(720)}
		v.Add(tr)
		all = append(all, tr)
		if i%7 != 0 {
			continue
		}
		var pv, w int64
		for _, x := range all {
			if x.Time.After(now.Add(-window)) {
				pv += x.Price * x.Quantity * x.Hours
				w += x.Quantity * x.Hours
			}
		}
		want := (2*pv + w) / (2 * w) // half-up
		got, ok := v.Value(now)
		if !ok || got != want {
			t.Fatalf("seed %d step %d: Value = %d, %v, want %d", seed, i, got, ok, want)
		}
	}
	v.Value(now)
	if live := len(v.trades) - v.head; len(v.trades) > 2*live+1 {
		t.Errorf("seed %d: %d stored trades for %d live ones: old trades are not released", seed, len(v.trades), live)
	}
}
