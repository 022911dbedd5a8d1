package pricing

import "testing"

func TestDiscount(t *testing.T) {
	tests := []struct {
		name      string
		market    int64
		hasPrice  bool
		reference int64
		want      string
		wantOK    bool
	}{
		{"aws h100 6.88 vs market 2.60", 26000, true, 68800, "0.6221", true}, // 1 − 2.6/6.88 = 0.622093…
		{"same price", 68800, true, 68800, "0.0000", true},
		{"free", 0, true, 68800, "1.0000", true},
		{"dearer than the cloud", 22500, true, 20000, "-0.1250", true},
		{"exact half rounds up", 9995, true, 100000, "0.9001", true},             // 0.90005
		{"half away from zero, negative", 100005, true, 100000, "-0.0001", true}, // −0.00005 → −0.0001
		{"tiny negative rounds to zero without sign", 1000001, true, 1000000, "0.0000", true},
		{"under a half rounds down", 9996, true, 100000, "0.9000", true}, // 0.90004
		{"no market price", 26000, false, 68800, "", false},
		{"zero reference", 26000, true, 0, "", false},
		{"negative reference", 26000, true, -1, "", false},
		{"negative market price", -1, true, 68800, "", false},
		{"huge values do not overflow", 1 << 62, true, 1, "-4611686018427387903.0000", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Discount(tt.market, tt.hasPrice, tt.reference)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("Discount(%d, %v, %d) = %q, %v, want %q, %v", tt.market, tt.hasPrice, tt.reference, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
