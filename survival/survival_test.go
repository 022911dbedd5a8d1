package survival

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// freireich is the 6-MP arm of Freireich et al. (1963), the textbook
// Kaplan–Meier example: weeks in remission, "+" censored.
var freireich = []struct {
	weeks  int
	filled bool
}{
	{6, true}, {6, true}, {6, true}, {6, false}, {7, true}, {9, false}, {10, true},
	{10, false}, {11, false}, {13, true}, {16, true}, {17, false}, {19, false},
	{20, false}, {22, true}, {23, true}, {25, false}, {32, false}, {32, false},
	{34, false}, {35, false},
}

func week(n int) time.Duration { return time.Duration(n) * 7 * 24 * time.Hour }

func TestFitKnownAnswer(t *testing.T) {
	var obs []Observation
	for _, f := range freireich {
		obs = append(obs, Observation{Waited: week(f.weeks), Filled: f.filled})
	}
	c := Fit(obs)
	// Published values, to three places.
	for _, tc := range []struct {
		weeks int
		want  float64
	}{
		{5, 1}, {6, 0.857}, {7, 0.807}, {9, 0.807}, {10, 0.753}, {12, 0.753},
		{13, 0.690}, {16, 0.627}, {21, 0.627}, {22, 0.538}, {23, 0.448}, {40, 0.448},
	} {
		if got := c.S(week(tc.weeks)); math.Abs(got-tc.want) > 0.0005 {
			t.Errorf("S(%d weeks) = %.4f, want %.3f", tc.weeks, got, tc.want)
		}
	}
	m, ok := c.Median()
	if !ok || m != week(23) {
		t.Errorf("median = %v, %v; want 23 weeks", m, ok)
	}
}

func TestFitTiesCountCensoredAtRisk(t *testing.T) {
	// Two fills and two censorings at 1h out of 4: the censored were still
	// waiting when the fills happened, so S(1h) = 1 − 2/4.
	obs := []Observation{{time.Hour, false}, {time.Hour, true}, {time.Hour, false}, {time.Hour, true}}
	if got := Fit(obs).S(time.Hour); got != 0.5 {
		t.Fatalf("S(1h) = %v, want 0.5", got)
	}
}

func TestEstimateNeedsSamples(t *testing.T) {
	obs := make([]Observation, MinSamples-1)
	for i := range obs {
		obs[i] = Observation{Waited: time.Minute, Filled: true}
	}
	if e := EstimateOf(obs); e != nil {
		t.Fatalf("estimate with %d samples = %+v, want nil", len(obs), e)
	}
	obs = append(obs, Observation{Waited: time.Minute, Filled: true})
	e := EstimateOf(obs)
	if e == nil || e.Samples != MinSamples || e.PFill1h != 1 || e.Median == nil || *e.Median != time.Minute {
		t.Fatalf("estimate with %d samples = %+v, want all filled at 1m", len(obs), e)
	}
}

// TestEstimateSyntheticHistory draws fill times from an exponential law with
// a known rate and cancels orders at independent exponential times: the
// Kaplan–Meier estimate must recover the true fill probabilities, where
// counting only the orders that filled (ignoring the censoring) would not.
func TestEstimateSyntheticHistory(t *testing.T) {
	const seed = 42
	rng := rand.New(rand.NewPCG(seed, seed))
	meanFill := 6 * time.Hour   // true P(fill ≤ 1h) = 1 − e^{−1/6} ≈ 0.1535
	meanCancel := 4 * time.Hour // most orders are cancelled before they fill
	var obs []Observation
	filled := 0
	for range 20000 {
		f := time.Duration(rng.ExpFloat64() * float64(meanFill))
		c := time.Duration(rng.ExpFloat64() * float64(meanCancel))
		if f <= c {
			obs = append(obs, Observation{Waited: f, Filled: true})
			filled++
		} else {
			obs = append(obs, Observation{Waited: c, Filled: false})
		}
	}
	e := EstimateOf(obs)
	if e == nil {
		t.Fatalf("seed %d: no estimate", seed)
	}
	want1h := 1 - math.Exp(-1.0/6)
	want24h := 1 - math.Exp(-4.0)
	wantMedian := time.Duration(math.Ln2 * float64(meanFill))
	if math.Abs(e.PFill1h-want1h) > 0.01 {
		t.Errorf("seed %d: p_fill_1h = %.4f, want %.4f ± 0.01", seed, e.PFill1h, want1h)
	}
	if math.Abs(e.PFill24h-want24h) > 0.05 {
		t.Errorf("seed %d: p_fill_24h = %.4f, want %.4f ± 0.05", seed, e.PFill24h, want24h)
	}
	if e.Median == nil || (*e.Median-wantMedian).Abs() > 20*time.Minute {
		t.Errorf("seed %d: median = %v, want %v ± 20m", seed, e.Median, wantMedian)
	}
	// The naive share of orders that filled is far off: censoring matters.
	if naive := float64(filled) / float64(len(obs)); math.Abs(naive-want24h) < 0.2 {
		t.Errorf("seed %d: naive fill share %.3f is close to the truth %.3f; the test would not tell KM from counting", seed, naive, want24h)
	}
}

func TestBucketOf(t *testing.T) {
	for _, tc := range []struct {
		limit, price int64
		want         Bucket
		name         string
	}{
		{100, 100, 0, "at or above price"},
		{120, 100, 0, "at or above price"},
		{99, 100, 1, "0%-1% below"},
		{98, 100, 2, "1%-3% below"},
		{97, 100, 2, "1%-3% below"},
		{91, 100, 3, "3%-10% below"},
		{80, 100, 4, "10%-25% below"},
		{50, 100, 5, ">25% below"},
		{50, 0, 5, ">25% below"},
		{23_9000, 24_0000, 1, "0%-1% below"},
	} {
		got := BucketOf(tc.limit, tc.price)
		if got != tc.want || got.String() != tc.name {
			t.Errorf("BucketOf(%d, %d) = %d %q, want %d %q", tc.limit, tc.price, got, got, tc.want, tc.name)
		}
	}
}
