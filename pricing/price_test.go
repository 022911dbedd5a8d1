package pricing

import (
	"errors"
	"math"
	"testing"
)

func TestFormatPrice(t *testing.T) {
	tests := []struct {
		ticks int64
		want  string
	}{
		{0, "0.00"},
		{1, "0.0001"},
		{100, "0.01"},
		{23900, "2.39"},
		{23905, "2.3905"},
		{23950, "2.395"},
		{120000, "12.00"},
		{MaxPrice, "100000.00"},
		{-23900, "-2.39"},
		{math.MinInt64, "-922337203685477.5808"},
		{math.MaxInt64, "922337203685477.5807"},
	}
	for _, tt := range tests {
		if got := FormatPrice(tt.ticks); got != tt.want {
			t.Errorf("FormatPrice(%d) = %q, want %q", tt.ticks, got, tt.want)
		}
	}
}

func TestParsePrice(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"2.39", 23900, false},
		{"2", 20000, false},
		{"0", 0, false},
		{"0.0001", 1, false},
		{"2.3905", 23905, false},
		{"12.00", 120000, false},
		{"007.5", 75000, false},
		{"100000", MaxPrice, false},
		{"100000.0000", MaxPrice, false},
		{"100000.0001", 0, true},
		{"1000000", 0, true},
		{"99999999999999999999999", 0, true},
		{"2.39051", 0, true}, // no rounding: more than 4 decimals is an error
		{"", 0, true},
		{".5", 0, true},
		{"5.", 0, true},
		{"-2.39", 0, true},
		{"+2.39", 0, true},
		{"1e3", 0, true},
		{" 2.39", 0, true},
		{"2.39 ", 0, true},
		{"2,39", 0, true},
		{"2.3.9", 0, true},
		{"NaN", 0, true},
		{"0x10", 0, true},
		{"２", 0, true}, // full-width digit
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParsePrice(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParsePrice(%q) = %d, want an error", tt.in, got)
				}
				if !errors.Is(err, ErrInvalidPrice) {
					t.Fatalf("ParsePrice(%q) error %v does not wrap ErrInvalidPrice", tt.in, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParsePrice(%q) = %d, %v, want %d, nil", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestFormatParseRoundTrip(t *testing.T) {
	for _, p := range []int64{0, 1, 9, 10, 99, 100, 9999, 10000, 23900, 23905, 123456789, MaxPrice - 1, MaxPrice} {
		got, err := ParsePrice(FormatPrice(p))
		if err != nil || got != p {
			t.Errorf("ParsePrice(FormatPrice(%d)) = %d, %v, want %d", p, got, err, p)
		}
	}
}

func FuzzParsePrice(f *testing.F) {
	for _, s := range []string{"2.39", "0", "100000", "100000.0001", "-1", "1e3", ".5", "007.5000", "2.39051"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePrice(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidPrice) {
				t.Fatalf("ParsePrice(%q) error %v does not wrap ErrInvalidPrice", s, err)
			}
			return
		}
		if p < 0 || p > MaxPrice {
			t.Fatalf("ParsePrice(%q) = %d, outside [0, MaxPrice]", s, p)
		}
		back, err := ParsePrice(FormatPrice(p))
		if err != nil || back != p {
			t.Fatalf("ParsePrice(FormatPrice(%d)) = %d, %v, want %d", p, back, err, p)
		}
	})
}
