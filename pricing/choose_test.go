package pricing

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// row is a compact rate line for the choice tests.
type row struct {
	region, instance, price, asOf, priceType string
}

func tableOf(tb testing.TB, rows ...row) *Table {
	tb.Helper()
	var lines []string
	for _, r := range rows {
		set := map[int]string{colProvider: "X", colRegion: r.region, colInstance: r.instance, colGPUPrice: r.price,
			colAsOf: r.asOf, colPriceType: PriceOnDemand}
		if r.priceType != "" {
			set[colPriceType] = r.priceType
		}
		lines = append(lines, rateLine(set))
	}
	return mustLoad(tb, rateFile(lines...))
}

func TestChoose(t *testing.T) {
	tests := []struct {
		name         string
		rows         []row
		priceType    string
		marketRegion string
		want         string // instance picked, "" for none
	}{
		{"same region first, even when older and dearer", []row{
			{"us-east-1", "a", "1.00", "2026-07-20", ""}, {"eu-west-2", "b", "9.00", "2026-01-01", ""}}, PriceOnDemand, "eu-west", "b"},
		{"newest within the region", []row{
			{"westeurope", "a", "1.00", "2026-06-18", ""}, {"northeurope", "b", "2.00", "2026-07-18", ""}}, PriceOnDemand, "eu-west", "b"},
		{"undated never wins over dated, even in region", []row{
			{"us-west-2", "a", "1.00", "undated", ""}, {"us-east-1", "b", "5.00", "2025-01-01", ""}}, PriceOnDemand, "us-west", "b"},
		{"undated used when nothing is dated", []row{
			{"us-west-2", "a", "1.00", "undated", ""}}, PriceOnDemand, "us-west", "a"},
		{"no region row: newest anywhere", []row{
			{"us-east-1", "a", "1.00", "2025-01-01", ""}, {"asia-southeast1", "b", "2.00", "2026-07-30", ""}}, PriceOnDemand, "eu-west", "b"},
		{"no region row, same date: US East first", []row{
			{"asia-southeast1", "a", "1.00", "2026-07-30", ""}, {"us-east4", "b", "2.00", "2026-07-30", ""}}, PriceOnDemand, "eu-west", "b"},
		{"same region and date: cheapest", []row{
			{"us-east4", "a", "3.00", "2026-07-30", ""}, {"us-east1", "b", "2.00", "2026-07-30", ""}}, PriceOnDemand, "us-east", "b"},
		{"superseded never chosen as on-demand", []row{
			{"us-east-1", "a", "1.00", "2026-07-20", PriceOnDemandSuperseded}, {"eu-west-1", "b", "5.00", "2025-01-01", ""}}, PriceOnDemand, "us-east", "b"},
		{"spot chosen among spot rows only", []row{
			{"us-east4", "a", "1.00", "2026-07-30", ""}, {"europe-west4", "b", "2.00", "2026-07-30", PriceSpot}, {"us-east4", "c", "1.50", "2026-07-30", PriceSpot}}, PriceSpot, "eu-west", "b"},
		{"capacity block", []row{{"us-east-2", "a", "4.00", "2026-07-22", PriceCapacityBlock}}, PriceCapacityBlock, "us-east", "a"},
		{"no row of the type", []row{{"us-east-2", "a", "4.00", "2026-07-22", ""}}, PriceSpot, "us-east", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := tableOf(t, tt.rows...)
			r, ok := tab.Choose("h100-sxm", "X", tt.priceType, tt.marketRegion)
			if got := r.InstanceType; !ok && got != "" || ok && got != tt.want || ok != (tt.want != "") {
				t.Fatalf("Choose(%s, %s) = %q (ok %v), want %q", tt.priceType, tt.marketRegion, got, ok, tt.want)
			}
			// Whatever is chosen is of the asked price type and provider.
			if ok && (r.PriceType != tt.priceType || r.Provider != "x") {
				t.Fatalf("Choose returned %+v", r)
			}
		})
	}
}

// OnDemand is Choose without a market region, and Choose is independent of
// the order of the file's lines.
func TestChooseMatchesOnDemandAndIgnoresOrder(t *testing.T) {
	rows := []row{{"us-east-1", "a", "6.00", "2026-07-20", ""}, {"eu-west-1", "b", "5.00", "2026-07-21", ""},
		{"us-west-2", "c", "4.00", "undated", ""}, {"eastus", "d", "6.00", "2026-07-20", ""}}
	rev := slices.Clone(rows)
	slices.Reverse(rev)
	a, b := tableOf(t, rows...), tableOf(t, rev...)
	for _, mr := range []string{"", "us-east", "us-west", "eu-west"} {
		ra, _ := a.Choose("h100-sxm", "x", PriceOnDemand, mr)
		rb, _ := b.Choose("h100-sxm", "x", PriceOnDemand, mr)
		if ra != rb {
			t.Errorf("region %q: %s in one order, %s in the other", mr, ra.InstanceType, rb.InstanceType)
		}
	}
	od, _ := a.OnDemand("h100-sxm", "X")
	ch, _ := a.Choose("h100-sxm", "X", PriceOnDemand, "")
	if od != ch || od.InstanceType != "b" {
		t.Errorf("OnDemand = %s, Choose(\"\") = %s, want both b (newest dated)", od.InstanceType, ch.InstanceType)
	}
}

func TestStale(t *testing.T) {
	now := time.Date(2026, 11, 29, 18, 0, 0, 0, time.UTC)
	tests := []struct {
		asOf  string
		limit time.Duration
		want  bool
	}{
		{"2026-08-02", DefaultStaleAfter, false}, // the day began 119 d 18 h before now
		{"2026-08-01", DefaultStaleAfter, true},  // 120 d 18 h
		{"2026-11-29", 24 * time.Hour, false},
		{"2026-11-27", 24 * time.Hour, true},
		{"undated", DefaultStaleAfter, true},
		{"2020-01-01", 0, false}, // no limit
	}
	for _, tt := range tests {
		r := ReferenceRate{AsOf: tt.asOf}
		if got := r.Stale(now, tt.limit); got != tt.want {
			t.Errorf("Stale(as_of %s, limit %v) = %v, want %v", tt.asOf, tt.limit, got, tt.want)
		}
	}
}

func TestMarketRegion(t *testing.T) {
	for pr, want := range map[string]string{
		"us-east-1": "us-east", "eastus": "us-east", "us-east4": "us-east", " EastUS2 ": "us-east",
		"us-west-2": "us-west", "westus2": "us-west", "us-west1": "us-west",
		"eu-west-1": "eu-west", "westeurope": "eu-west", "europe-west4": "eu-west", "eu-west-2": "eu-west",
		"us-central1": "", "japaneast": "", "North America": "", "all listed regions": "", "": "",
	} {
		if got := MarketRegion(pr); got != want {
			t.Errorf("MarketRegion(%q) = %q, want %q", pr, got, want)
		}
	}
	if got, want := MarketRegions(), []string{"eu-west", "us-east", "us-west"}; !slices.Equal(got, want) {
		t.Errorf("MarketRegions() = %v, want %v", got, want)
	}
	// Every provider region maps back to its market region, and no provider
	// region is listed twice.
	seen := map[string]string{}
	for _, mr := range MarketRegions() {
		for _, pr := range ProviderRegions(mr) {
			if prev, dup := seen[pr]; dup {
				t.Errorf("%s listed under %s and %s", pr, prev, mr)
			}
			seen[pr] = mr
			if MarketRegion(pr) != mr {
				t.Errorf("MarketRegion(%q) = %q, want %q", pr, MarketRegion(pr), mr)
			}
		}
	}
}

// Every engine market region has, for AWS, Azure and GCP, an on-demand row
// chosen for the H100 in the embedded table, and the eu-west market is
// compared with a European row wherever the data has one.
func TestDefaultRegionalChoice(t *testing.T) {
	tab := Default()
	tests := []struct {
		provider, marketRegion, wantRegion string
	}{
		{"aws", "us-east", "us-east-1"},
		{"aws", "eu-west", "us-east-1"}, // the data has no dated AWS on-demand row outside us-east-1
		{"azure", "eu-west", "westeurope"},
		{"azure", "us-east", "eastus"},
		{"gcp", "eu-west", "europe-west4"},
		{"gcp", "us-east", "us-east4"},
		{"gcp", "us-west", "us-east4"}, // no us-west row: US East first
	}
	for _, tt := range tests {
		r, ok := tab.Choose("h100-sxm", tt.provider, PriceOnDemand, tt.marketRegion)
		if !ok || r.Region != tt.wantRegion {
			t.Errorf("Choose(h100-sxm, %s, on_demand, %s) = %s (ok %v), want %s", tt.provider, tt.marketRegion, r.Region, ok, tt.wantRegion)
		}
	}
}

func TestLoadRowLimit(t *testing.T) {
	var b strings.Builder
	b.WriteString(strings.Join(header, ",") + "\n")
	for i := range MaxRates + 1 {
		b.WriteString(rateLine(map[int]string{colInstance: fmt.Sprintf("i%d", i)}) + "\n")
	}
	_, err := Load(strings.NewReader(b.String()))
	if want := fmt.Sprintf("rates.csv line %d: more than %d rates", MaxRates+2, MaxRates); err == nil || err.Error() != want {
		t.Fatalf("Load(%d rows) error = %v, want %s", MaxRates+1, err, want)
	}
	// Exactly MaxRates loads.
	s := b.String()
	s = s[:strings.LastIndex(strings.TrimSuffix(s, "\n"), "\n")+1]
	if tab, err := Load(strings.NewReader(s)); err != nil || tab.Len() != MaxRates {
		t.Fatalf("Load(%d rows) = %v, want %d rates", MaxRates, err, MaxRates)
	}
}
