package pricing

import (
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

func TestParseInterval(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Interval
		dur  time.Duration
	}{
		{"1m", Minute, time.Minute},
		{"1h", Hour, time.Hour},
		{"1d", Day, 24 * time.Hour},
	} {
		got, err := ParseInterval(tt.in)
		if err != nil || got != tt.want || got.String() != tt.in || got.Duration() != tt.dur {
			t.Errorf("ParseInterval(%q) = %v (%v), %v, want %v (%v)", tt.in, got, got.Duration(), err, tt.want, tt.dur)
		}
	}
	for _, bad := range []string{"", "1M", "60m", "1w", "1s", "1 h"} {
		if iv, err := ParseInterval(bad); err == nil {
			t.Errorf("ParseInterval(%q) = %v, want an error", bad, iv)
		}
	}
	if got := Interval(9).String(); got != "Interval(9)" {
		t.Errorf("Interval(9).String() = %q", got)
	}
}

func at(h, m, s int) time.Time { return time.Date(2026, 12, 1, h, m, s, 0, time.UTC) }

func TestCandleOHLC(t *testing.T) {
	s := NewCandleSeries(10)
	obs := []struct {
		t      time.Time
		price  int64
		volume int64
	}{
		{at(8, 0, 0), 25000, 10},
		{at(8, 0, 30), 27000, 5},
		{at(8, 0, 59), 24000, 0}, // a price sample without volume
		{at(8, 1, 0), 26000, 8},  // next minute, same hour
		{at(9, 15, 0), 30000, 1}, // next hour
	}
	for _, o := range obs {
		if !s.Observe(o.t, o.price, o.volume) {
			t.Fatalf("Observe(%v, %d, %d) = false", o.t, o.price, o.volume)
		}
	}
	want := map[Interval][]Candle{
		Minute: {
			{Start: at(8, 0, 0), Open: 25000, High: 27000, Low: 24000, Close: 24000, Volume: 15},
			{Start: at(8, 1, 0), Open: 26000, High: 26000, Low: 26000, Close: 26000, Volume: 8},
			{Start: at(9, 15, 0), Open: 30000, High: 30000, Low: 30000, Close: 30000, Volume: 1},
		},
		Hour: {
			{Start: at(8, 0, 0), Open: 25000, High: 27000, Low: 24000, Close: 26000, Volume: 23},
			{Start: at(9, 0, 0), Open: 30000, High: 30000, Low: 30000, Close: 30000, Volume: 1},
		},
		Day: {
			{Start: at(0, 0, 0), Open: 25000, High: 30000, Low: 24000, Close: 30000, Volume: 24},
		},
	}
	for _, iv := range Intervals() {
		if got := s.Candles(iv); !reflect.DeepEqual(got, want[iv]) {
			t.Errorf("Candles(%v) =\n %+v\nwant\n %+v", iv, got, want[iv])
		}
		last, ok := s.Last(iv)
		if w := want[iv][len(want[iv])-1]; !ok || last != w {
			t.Errorf("Last(%v) = %+v, %v, want %+v", iv, last, ok, w)
		}
	}
	if got := s.Candles(Interval(0)); got != nil {
		t.Errorf("Candles(invalid) = %v, want nil", got)
	}
}

func TestCandleObserveRejects(t *testing.T) {
	s := NewCandleSeries(10)
	s.Observe(at(8, 0, 0), 25000, 1)
	for _, tt := range []struct {
		name   string
		t      time.Time
		price  int64
		volume int64
	}{
		{"earlier than the last observation", at(7, 59, 59), 1, 1},
		{"negative price", at(8, 0, 1), -1, 1},
		{"negative volume", at(8, 0, 1), 1, -1},
	} {
		if s.Observe(tt.t, tt.price, tt.volume) {
			t.Errorf("%s: Observe = true, want false", tt.name)
		}
	}
	want := Candle{Start: at(8, 0, 0), Open: 25000, High: 25000, Low: 25000, Close: 25000, Volume: 1}
	if got, _ := s.Last(Minute); got != want {
		t.Errorf("after rejected observations Last(1m) = %+v, want %+v", got, want)
	}
	if !s.Observe(at(8, 0, 0), 25000, 1) {
		t.Error("Observe at the same time as the last = false, want true")
	}
}

func TestCandleKeepsNewest(t *testing.T) {
	const keep = 5
	s := NewCandleSeries(keep)
	for i := range 23 {
		s.Observe(t0.Add(time.Duration(i)*time.Minute), int64(i), 1)
	}
	got := s.Candles(Minute)
	if len(got) != keep {
		t.Fatalf("len(Candles(1m)) = %d, want %d", len(got), keep)
	}
	for i, c := range got {
		if want := int64(23 - keep + i); c.Open != want || !c.Start.Equal(t0.Add(time.Duration(want)*time.Minute)) {
			t.Errorf("candle %d = %+v, want open %d at minute %d", i, c, want, want)
		}
	}
	if n := len(s.series[Minute]); n > 2*keep {
		t.Errorf("stored %d minute candles, want at most %d", n, 2*keep)
	}
	if got := NewCandleSeries(0).keep; got != DefaultCandleKeep {
		t.Errorf("NewCandleSeries(0) keeps %d, want DefaultCandleKeep", got)
	}
}

// Rolling up the 1m candles of a series gives its 1h candles, and 1h (or
// 1m) rolled up gives its 1d candles, for a random stream from a fixed seed.
func TestRollUpEqualsDirect(t *testing.T) {
	const seed = 42
	rng := rand.New(rand.NewPCG(seed, 2))
	s := NewCandleSeries(100_000)
	now := time.Date(2026, 12, 1, 22, 17, 3, 0, time.UTC)
	for range 20_000 {
		now = now.Add(time.Duration(rng.IntN(int(90 * time.Second)))) // several per minute, some minutes empty
		s.Observe(now, 10000+rng.Int64N(50000), rng.Int64N(10))
	}
	minutes, hours, days := s.Candles(Minute), s.Candles(Hour), s.Candles(Day)
	if len(days) < 3 {
		t.Fatalf("seed %d: only %d days observed, want a stream across several", seed, len(days))
	}
	for _, tt := range []struct {
		name string
		got  []Candle
		want []Candle
	}{
		{"1m → 1h", RollUp(minutes, Hour), hours},
		{"1h → 1d", RollUp(hours, Day), days},
		{"1m → 1d", RollUp(minutes, Day), days},
		{"1m → 1m", RollUp(minutes, Minute), minutes},
	} {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("seed %d: %s: roll-up differs from observing directly (%d vs %d candles)", seed, tt.name, len(tt.got), len(tt.want))
		}
	}
}

func TestRollUp(t *testing.T) {
	in := []Candle{
		// out of order on purpose: RollUp sorts by Start
		{Start: at(9, 5, 0), Open: 5, High: 9, Low: 5, Close: 6, Volume: 1},
		{Start: at(8, 59, 0), Open: 1, High: 4, Low: 1, Close: 2, Volume: 2},
		{Start: at(8, 0, 0), Open: 3, High: 3, Low: 0, Close: 1, Volume: 3},
		{Start: at(9, 30, 0), Open: 7, High: 8, Low: 2, Close: 3, Volume: 4},
	}
	orig := append([]Candle(nil), in...)
	want := []Candle{
		{Start: at(8, 0, 0), Open: 3, High: 4, Low: 0, Close: 2, Volume: 5},
		{Start: at(9, 0, 0), Open: 5, High: 9, Low: 2, Close: 3, Volume: 5},
	}
	if got := RollUp(in, Hour); !reflect.DeepEqual(got, want) {
		t.Errorf("RollUp(1h) =\n %+v\nwant\n %+v", got, want)
	}
	if !reflect.DeepEqual(in, orig) {
		t.Error("RollUp modified its input")
	}
	if got := RollUp(nil, Hour); got != nil {
		t.Errorf("RollUp(nil) = %v, want nil", got)
	}
	if got := RollUp(in, Interval(7)); got != nil {
		t.Errorf("RollUp(invalid interval) = %v, want nil", got)
	}
}
