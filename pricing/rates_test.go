package pricing

import (
	"bytes"
	"encoding/csv"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestDefaultCoverage documents which providers have an on-demand rate for
// each engine GPU in the embedded table, which row OnDemand picks, and which
// providers have rows of other price types only. "-" means the data has no
// on-demand row for that provider.
func TestDefaultCoverage(t *testing.T) {
	type pick struct {
		instance string
		price    string
	}
	none := pick{}
	tests := []struct {
		gpu       string
		providers []string // every provider with any row for the GPU
		aws       pick
		azure     pick
		gcp       pick
		others    map[string]pick // on-demand picks of other providers
	}{
		{
			gpu: "h100-sxm", providers: []string{"aws", "azure", "coreweave", "gcp", "lambda"},
			aws:    pick{"p5.48xlarge", "6.88"},
			azure:  pick{"Standard_ND96isr_H100_v5", "12.29"},                                                          // eastus before westeurope, japaneast
			gcp:    pick{"a3-highgpu-8g", "11.0695"},                                                                   // us-east4 before the cheaper us-central1 (other US)
			others: map[string]pick{"coreweave": {"NVIDIA HGX H100", "6.155"}, "lambda": {"gpu_8x_h100_sxm5", "3.99"}}, // 2.99 is superseded
		},
		{
			// GCP's H200 rows were dropped from the data (no dated source).
			gpu: "h200", providers: []string{"aws", "azure", "coreweave"},
			aws:    pick{"p5en.48xlarge", "7.912"},
			azure:  pick{"Standard_ND96isr_H200_v5", "10.60"},
			gcp:    none,
			others: map[string]pick{"coreweave": {"NVIDIA HGX H200", "6.305"}},
		},
		{
			gpu: "b200", providers: []string{"aws", "coreweave", "lambda"},
			aws:    pick{"p6-b200.48xlarge", "14.2416"},
			azure:  none,
			gcp:    none,
			others: map[string]pick{"coreweave": {"NVIDIA HGX B200", "8.60"}, "lambda": {"gpu_8x_b200_sxm6", "6.69"}},
		},
		{
			gpu: "a100-80gb", providers: []string{"aws", "azure", "coreweave", "gcp", "lambda"},
			aws:    pick{"p4de.24xlarge", "3.4309"},
			azure:  pick{"Standard_ND96amsr_A100_v4", "4.0963"},
			gcp:    pick{"a2-ultragpu-8g", "5.5649"}, // us-east5 before the cheaper us-central1
			others: map[string]pick{"coreweave": {"NVIDIA A100", "2.70"}, "lambda": {"gpu_8x_a100_80gb_sxm4", "1.79"}},
		},
		{
			gpu: "a100-40gb", providers: []string{"aws", "azure", "gcp", "lambda"},
			aws:    pick{"p4d.24xlarge", "2.7447"},
			azure:  pick{"Standard_ND96asr_v4", "3.3996"},
			gcp:    pick{"a2-highgpu-1g", "3.6734"}, // same price as -8g: instance order decides
			others: map[string]pick{"lambda": {"gpu_1x_a100_sxm4", "1.29"}},
		},
		{
			gpu: "l40s", providers: []string{"aws", "coreweave"},
			aws:    pick{"g6e.xlarge", "1.861"},
			azure:  none,
			gcp:    none,
			others: map[string]pick{"coreweave": {"NVIDIA L40S", "2.25"}},
		},
		{
			gpu: "l4", providers: []string{"aws", "gcp"},
			aws:   pick{"g6.xlarge", "0.8048"},
			azure: none,
			gcp:   pick{"g2-standard-12", "1.0004"},
		},
		{
			gpu: "mi300x", providers: []string{"azure"},
			aws:   none,
			azure: pick{"Standard_ND96isr_MI300X_v5", "6.00"},
			gcp:   none,
		},
	}
	tab := Default()
	var gpus []string
	for _, tt := range tests {
		gpus = append(gpus, tt.gpu)
		t.Run(tt.gpu, func(t *testing.T) {
			if got := tab.Providers(tt.gpu); !slices.Equal(got, tt.providers) {
				t.Errorf("Providers(%q) = %v, want %v", tt.gpu, got, tt.providers)
			}
			want := map[string]pick{"aws": tt.aws, "azure": tt.azure, "gcp": tt.gcp}
			for p, w := range tt.others {
				want[p] = w
			}
			for _, p := range append([]string{"aws", "azure", "gcp", "coreweave", "lambda"}, tt.providers...) {
				r, ok := tab.OnDemand(tt.gpu, p)
				var got pick
				if ok {
					got = pick{r.InstanceType, FormatPrice(r.USDPerGPUHour)}
					if r.PriceType != PriceOnDemand || r.GPU != tt.gpu || r.Provider != p {
						t.Errorf("OnDemand(%q, %q) = %+v: wrong price type, GPU or provider", tt.gpu, p, r)
					}
				}
				if got != want[p] {
					t.Errorf("OnDemand(%q, %q) = %v (ok %v), want %v", tt.gpu, p, got, ok, want[p])
				}
			}
		})
	}
	if got := GPUs(); !slices.Equal(got, sortedCopy(gpus)) {
		t.Errorf("GPUs() = %v, want the 8 engine ids %v", got, sortedCopy(gpus))
	}
}

func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestDefaultTable(t *testing.T) {
	tab := Default()
	if tab != Default() {
		t.Error("Default() returned different tables on two calls")
	}
	if got, want := tab.Len(), 80; got != want {
		t.Errorf("Default().Len() = %d, want %d (rows of gpu_list_prices.csv with an engine GPU)", got, want)
	}
	for _, r := range tab.Rates() {
		// Every embedded row is dated since the data was re-dated.
		if _, err := time.Parse(time.DateOnly, r.AsOf); err != nil {
			t.Errorf("%s %s %s: as_of %q is not a date", r.Provider, r.GPU, r.InstanceType, r.AsOf)
		}
		if r.Source == "" || r.Confidence == "" {
			t.Errorf("%s %s %s: empty source or confidence", r.Provider, r.GPU, r.InstanceType)
		}
	}
	// A figure from the data, with its provenance.
	r, ok := tab.OnDemand("h100-sxm", "AWS")
	if !ok || r.USDPerGPUHour != 68800 || r.AsOf != "2026-07-20" || r.ProviderName != "AWS" ||
		r.Model != "H100 SXM 80GB" || r.GPUsPerInstance != 8 || r.Region != "us-east-1" ||
		r.USDPerInstanceHour != "55.04" || r.Confidence != "high" || !strings.HasPrefix(r.Source, "aws/karpenter-provider-aws") {
		t.Errorf(`OnDemand("h100-sxm", "AWS") = %+v, %v, want the p5.48xlarge 6.88 row of 2026-07-20`, r, ok)
	}
	if _, ok := tab.OnDemand("h100-sxm", "oracle"); ok {
		t.Error(`OnDemand("h100-sxm", "oracle") ok, want no rate`)
	}
	if got := tab.ForGPU("gb200"); got != nil {
		t.Errorf(`ForGPU("gb200") = %v, want nil`, got)
	}
}

// Spot, capacity-block and the other non-on_demand rows stay in the table,
// labelled, and are never what OnDemand returns.
func TestNonOnDemandRowsStayLabelled(t *testing.T) {
	tab := Default()
	seen := map[string]bool{}
	for _, gpu := range GPUs() {
		for _, r := range tab.ForGPU(gpu) {
			seen[r.PriceType] = true
			od, ok := tab.OnDemand(gpu, r.Provider)
			if r.PriceType != PriceOnDemand && ok && od == r {
				t.Errorf("OnDemand(%q, %q) returned a %s row", gpu, r.Provider, r.PriceType)
			}
		}
	}
	for _, pt := range []string{PriceSpot, PriceCapacityBlock, PriceOnDemandSuperseded} {
		if !seen[pt] {
			t.Errorf("no %s row in the embedded table, want the data's rows kept", pt)
		}
	}
}

func TestForGPUOrder(t *testing.T) {
	rates := Default().ForGPU("h100-sxm")
	if len(rates) == 0 {
		t.Fatal(`ForGPU("h100-sxm") is empty`)
	}
	key := func(r ReferenceRate) []string { return []string{r.Provider, r.PriceType, r.Region, r.InstanceType} }
	for i := 1; i < len(rates); i++ {
		if slices.Compare(key(rates[i-1]), key(rates[i])) >= 0 {
			t.Errorf("ForGPU order: %v before %v, want provider, price_type, region, instance order", key(rates[i-1]), key(rates[i]))
		}
	}
	// A copy: changing it does not change the table.
	rates[0].USDPerGPUHour = 1
	if Default().ForGPU("h100-sxm")[0].USDPerGPUHour == 1 {
		t.Error("ForGPU returned the table's own slice")
	}
}

func TestOnDemandRule(t *testing.T) {
	tests := []struct {
		name  string
		rows  []string // provider,region,instance,price
		want  string   // instance picked
		price string
	}{
		{"us-east before cheaper elsewhere", []string{"X,eu-west-1,a,1.00", "X,us-west-2,b,2.00", "X,us-east-1,c,3.00"}, "c", "3.00"},
		{"other US before the rest", []string{"X,(not stated),a,1.00", "X,us-central1,b,2.00"}, "b", "2.00"},
		{"azure eastus2 counts as us-east", []string{"X,westus2,a,1.00", "X,eastus2,b,2.00"}, "b", "2.00"},
		{"azure westus counts as US", []string{"X,North America,a,1.00", "X,westus,b,2.00"}, "b", "2.00"},
		{"then lowest price", []string{"X,us-east-1,a,3.00", "X,us-east4,b,2.50"}, "b", "2.50"},
		{"then region, then instance, bytewise", []string{"X,us-east-2,b,2.00", "X,us-east-1,c,2.00", "X,us-east-1,a,2.00"}, "a", "2.00"},
		{"only on_demand rows count", []string{"X,us-east-1,a,9.00,spot", "X,eu-west-1,b,5.00"}, "b", "5.00"},
		{"no on_demand row", []string{"X,us-east-1,a,1.00,capacity_block", "X,us-east-1,b,1.00,on_demand_legacy"}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var lines []string
			for _, row := range tt.rows {
				f := strings.Split(row, ",")
				pt := PriceOnDemand
				if len(f) == 5 {
					pt = f[4]
				}
				lines = append(lines, rateLine(map[int]string{
					colProvider: f[0], colRegion: f[1], colInstance: f[2], colGPUPrice: f[3], colPriceType: pt,
				}))
			}
			tab := mustLoad(t, rateFile(lines...))
			r, ok := tab.OnDemand("h100-sxm", "x")
			if tt.want == "" {
				if ok {
					t.Fatalf("OnDemand = %+v, want none", r)
				}
				return
			}
			if !ok || r.InstanceType != tt.want || FormatPrice(r.USDPerGPUHour) != tt.price {
				t.Fatalf("OnDemand = %q at %s (ok %v), want %q at %s", r.InstanceType, FormatPrice(r.USDPerGPUHour), ok, tt.want, tt.price)
			}
		})
	}
}

func TestProviderID(t *testing.T) {
	for in, want := range map[string]string{
		"AWS": "aws", "Azure": "azure", "GCP": "gcp", "CoreWeave": "coreweave", "Lambda": "lambda",
		"Lambda Labs": "lambda-labs", "  Vast.ai ": "vast-ai", "Google Cloud": "gcp", "Microsoft Azure": "azure",
		"Amazon Web Services": "aws", "---": "", "": "",
	} {
		if got := ProviderID(in); got != want {
			t.Errorf("ProviderID(%q) = %q, want %q", in, got, want)
		}
	}
}

// goodRow holds one valid rate, column by column.
var goodRow = []string{
	"AWS", "H100 SXM 80GB", "p5.48xlarge", "8", "us-east-1", "on_demand",
	"55.04", "6.88", "2026-07-20", "karpenter @6fc13b52", "high", "a note, with a comma",
}

// rateLine returns goodRow as a CSV line with some columns replaced.
func rateLine(set map[int]string) string {
	row := slices.Clone(goodRow)
	for i, v := range set {
		row[i] = v
	}
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(row)
	w.Flush()
	return strings.TrimSuffix(b.String(), "\n")
}

// instances returns good lines that differ in instance_type.
func instances(names ...string) []string {
	var lines []string
	for _, n := range names {
		lines = append(lines, rateLine(map[int]string{colInstance: n}))
	}
	return lines
}

func rateFile(lines ...string) string {
	return strings.Join(append([]string{strings.Join(header, ",")}, lines...), "\n") + "\n"
}

func mustLoad(tb testing.TB, file string) *Table {
	tb.Helper()
	tab, err := Load(strings.NewReader(file))
	if err != nil {
		tb.Fatalf("Load: %v\nfile:\n%s", err, file)
	}
	return tab
}

func TestLoadGood(t *testing.T) {
	file := "\uFEFF" + rateFile(
		rateLine(nil),
		rateLine(map[int]string{colProvider: "Google Cloud", colModel: "L4", colInstance: "g2-standard-4", colGPUs: "1",
			colRegion: " us-central1 ", colPriceType: "spot", colInstancePrice: "", colGPUPrice: "0.123456",
			colAsOf: "undated", colConfidence: "low", colNote: ""}),
		"",
		rateLine(map[int]string{colProvider: "Lambda", colGPUPrice: "2.99995", colInstance: "x", colInstancePrice: "23.9996"}),
	)
	tab := mustLoad(t, file)
	if got := tab.Len(); got != 3 {
		t.Fatalf("Len() = %d, want 3", got)
	}
	r, ok := tab.OnDemand("h100-sxm", "aws")
	want := ReferenceRate{
		Provider: "aws", ProviderName: "AWS", Model: "H100 SXM 80GB", GPU: "h100-sxm", InstanceType: "p5.48xlarge",
		GPUsPerInstance: 8, Region: "us-east-1", PriceType: "on_demand", USDPerInstanceHour: "55.04",
		USDPerGPUHour: 68800, AsOf: "2026-07-20", Source: "karpenter @6fc13b52", Confidence: "high",
		Note: "a note, with a comma",
	}
	if !ok || r != want {
		t.Errorf("OnDemand(h100-sxm, aws) = %+v, %v\nwant %+v", r, ok, want)
	}
	l4 := tab.ForGPU("l4")
	if len(l4) != 1 || l4[0].Provider != "gcp" || l4[0].ProviderName != "Google Cloud" || l4[0].Region != "us-central1" ||
		l4[0].USDPerGPUHour != 1235 || l4[0].USDPerInstanceHour != "" || l4[0].PriceType != PriceSpot {
		t.Errorf(`ForGPU("l4") = %+v, want the gcp spot row at 1235 ticks (0.123456 rounded half-up)`, l4)
	}
	if _, ok := tab.OnDemand("l4", "gcp"); ok {
		t.Error(`OnDemand("l4", "gcp") ok for a spot-only provider`)
	}
	if r, _ := tab.OnDemand("h100-sxm", "lambda"); r.USDPerGPUHour != 30000 {
		t.Errorf("lambda 2.99995 → %d ticks, want 30000 (half-up)", r.USDPerGPUHour)
	}
}

func TestLoadErrors(t *testing.T) {
	hdr := strings.Join(header, ",")
	good := rateLine(nil)
	tests := []struct {
		name string
		file string
		want string // the whole error message
	}{
		{"empty file", "", `rates.csv: empty file, want a header line`},
		{"header only", hdr + "\n", `rates.csv: no rates`},
		{"wrong header", strings.Replace(hdr, "usd_per_gpu_hour", "price", 1) + "\n" + good + "\n",
			`rates.csv line 1: header "provider,gpu_model,instance_type,gpus_per_instance,region,price_type,usd_per_instance_hour,price,as_of,source,confidence,note", want "` + hdr + `"`},
		{"header missing a column", strings.TrimSuffix(hdr, ",note") + "\n",
			`rates.csv line 1: header "provider,gpu_model,instance_type,gpus_per_instance,region,price_type,usd_per_instance_hour,usd_per_gpu_hour,as_of,source,confidence", want "` + hdr + `"`},
		{"too few columns", rateFile(good, strings.Join(goodRow[:11], ",")), `rates.csv line 3: 11 columns, want 12`},
		{"too many columns", rateFile(good + ",extra"), `rates.csv line 2: 13 columns, want 12`},
		{"bad quoting", rateFile(good, `AWS,"H100`+"\n"), `rates.csv line 3: extraneous or missing " in quoted-field`},
		{"price not a decimal", rateFile(instances("a", "b", "c", "d", "e")...) + rateLine(map[int]string{colGPUPrice: "abc"}) + "\n",
			`rates.csv line 7: usd_per_gpu_hour "abc": not a decimal`},
		{"price with exponent", rateFile(rateLine(map[int]string{colGPUPrice: "6.88e0"})), `rates.csv line 2: usd_per_gpu_hour "6.88e0": not a decimal`},
		{"price empty", rateFile(rateLine(map[int]string{colGPUPrice: ""})), `rates.csv line 2: usd_per_gpu_hour "": not a decimal`},
		{"negative price", rateFile(rateLine(map[int]string{colGPUPrice: "-6.88"})), `rates.csv line 2: usd_per_gpu_hour "-6.88": must be positive`},
		{"zero price", rateFile(rateLine(map[int]string{colGPUPrice: "0.0000"})), `rates.csv line 2: usd_per_gpu_hour "0.0000": must be positive`},
		{"price rounds to zero", rateFile(rateLine(map[int]string{colGPUPrice: "0.00004"})), `rates.csv line 2: usd_per_gpu_hour "0.00004": rounds to zero at 4 decimals`},
		{"price too large", rateFile(rateLine(map[int]string{colGPUPrice: "100000.0001"})), `rates.csv line 2: usd_per_gpu_hour "100000.0001": above the maximum 100000.00`},
		{"bad instance price", rateFile(rateLine(map[int]string{colInstancePrice: "n/a"})), `rates.csv line 2: usd_per_instance_hour "n/a": not a decimal`},
		{"gpus not a number", rateFile(rateLine(map[int]string{colGPUs: "eight"})), `rates.csv line 2: gpus_per_instance "eight": not an integer in 1..1024`},
		{"gpus zero", rateFile(rateLine(map[int]string{colGPUs: "0"})), `rates.csv line 2: gpus_per_instance "0": not an integer in 1..1024`},
		{"gpus fraction", rateFile(rateLine(map[int]string{colGPUs: "1.5"})), `rates.csv line 2: gpus_per_instance "1.5": not an integer in 1..1024`},
		{"bad date", rateFile(rateLine(map[int]string{colAsOf: "2026-02-30"})), `rates.csv line 2: as_of "2026-02-30": not a date YYYY-MM-DD or "undated"`},
		{"date with a comment", rateFile(rateLine(map[int]string{colAsOf: "2026-04-07 (last_verified)"})), `rates.csv line 2: as_of "2026-04-07 (last_verified)": not a date YYYY-MM-DD or "undated"`},
		{"unknown price type", rateFile(rateLine(map[int]string{colPriceType: "reserved_1y"})), `rates.csv line 2: price_type "reserved_1y": unknown price type`},
		{"unknown model", rateFile(rateLine(map[int]string{colModel: "GB200"})),
			`rates.csv line 2: gpu_model "GB200": no engine GPU id for this model (known: A100 40GB, A100 80GB, B200, H100 SXM 80GB, H200, L4, L40S, MI300X)`},
		{"empty provider", rateFile(rateLine(map[int]string{colProvider: " "})), `rates.csv line 2: provider "": no provider name`},
		{"empty instance", rateFile(rateLine(map[int]string{colInstance: ""})), `rates.csv line 2: instance_type "": empty`},
		{"empty region", rateFile(rateLine(map[int]string{colRegion: ""})), `rates.csv line 2: region "": empty`},
		{"empty source", rateFile(rateLine(map[int]string{colSource: ""})), `rates.csv line 2: source "": empty`},
		{"bad confidence", rateFile(rateLine(map[int]string{colConfidence: "certain"})), `rates.csv line 2: confidence "certain": not high, medium or low`},
		{"duplicate", rateFile(good, rateLine(map[int]string{colProvider: "aws", colGPUPrice: "7.00"})),
			`rates.csv line 3: same provider, gpu_model, price_type, region and instance_type as line 2`},
		{"line numbers count quoted newlines", rateFile(rateLine(map[int]string{colNote: "two\nlines"}), rateLine(map[int]string{colInstance: "y", colGPUs: "x"})),
			`rates.csv line 4: gpus_per_instance "x": not an integer in 1..1024`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab, err := Load(strings.NewReader(tt.file))
			if err == nil {
				t.Fatalf("Load = %d rates, want error %q", tab.Len(), tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Fatalf("Load error\n got %s\nwant %s", got, tt.want)
			}
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("Load error %T, want *LoadError", err)
			}
		})
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "rates.csv")
	if err := os.WriteFile(good, []byte(rateFile(rateLine(nil))), 0o600); err != nil {
		t.Fatal(err)
	}
	tab, err := LoadFile(good)
	if err != nil || tab.Len() != 1 {
		t.Fatalf("LoadFile(good) = %v, %v, want 1 rate", tab, err)
	}
	bad := filepath.Join(dir, "bad.csv")
	if err := os.WriteFile(bad, []byte(rateFile(rateLine(map[int]string{colPriceType: "spot_maybe"}))), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = LoadFile(bad)
	if want := bad + ` line 2: price_type "spot_maybe": unknown price type`; err == nil || err.Error() != want {
		t.Errorf("LoadFile(bad) error = %v, want %s", err, want)
	}
	if _, err := LoadFile(filepath.Join(dir, "missing.csv")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadFile(missing) error = %v, want os.ErrNotExist", err)
	}
}

// The shared source data has models gpux does not trade (A10, B300, GB200,
// ...): as an operator's file it is rejected, not silently trimmed.
func TestLoadFileRejectsRawSourceData(t *testing.T) {
	const path = "../../shared/data/gpu_list_prices.csv" // outside the repo: absent in CI
	if _, err := os.Stat(path); err != nil {
		t.Skipf("source data not here: %v", err)
	}
	_, err := LoadFile(path)
	var le *LoadError
	if !errors.As(err, &le) || le.Line < 2 {
		t.Fatalf("LoadFile(%s) error = %v, want a *LoadError on a data line", path, err)
	}
}

func TestDefaultSkipsUnknownModels(t *testing.T) {
	file := rateFile(rateLine(map[int]string{colModel: "B300"}), rateLine(nil))
	tab, err := load(strings.NewReader(file), ratesName, false)
	if err != nil || tab.Len() != 1 {
		t.Fatalf("lenient load = %v, %v, want 1 rate (B300 skipped)", tab, err)
	}
	if _, err := Load(strings.NewReader(file)); err == nil {
		t.Fatal("strict Load accepted a B300 row")
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	tab := Default()
	enc := tab.Encode()
	back, err := Load(bytes.NewReader(enc))
	if err != nil {
		t.Fatalf("Load(Encode()): %v", err)
	}
	if !reflect.DeepEqual(back.Rates(), tab.Rates()) {
		t.Error("Load(Encode()) rates differ from the original")
	}
	if !bytes.Equal(back.Encode(), enc) {
		t.Error("Encode is not stable across a round trip")
	}
	if back.Hash() != tab.Hash() || len(tab.Hash()) != 64 {
		t.Errorf("Hash() = %s and %s, want equal 64-hex-digit hashes", back.Hash(), tab.Hash())
	}

	// Order in the file does not matter; content does.
	a := mustLoad(t, rateFile(rateLine(nil), rateLine(map[int]string{colProvider: "Azure", colRegion: "eastus"})))
	b := mustLoad(t, rateFile(rateLine(map[int]string{colProvider: "Azure", colRegion: "eastus"}), rateLine(nil)))
	c := mustLoad(t, rateFile(rateLine(map[int]string{colProvider: "Azure", colRegion: "eastus", colGPUPrice: "6.8801"}), rateLine(nil)))
	if a.Hash() != b.Hash() {
		t.Error("tables with the same rows in another order hash differently")
	}
	if a.Hash() == c.Hash() {
		t.Error("tables with different prices hash the same")
	}
}

func FuzzLoad(f *testing.F) {
	f.Add(string(embeddedRates))
	f.Add(rateFile(rateLine(nil)))
	f.Add(rateFile(rateLine(map[int]string{colGPUPrice: "-1"})))
	f.Add(rateFile(rateLine(map[int]string{colNote: "a\"b\nc"})))
	f.Add("provider\n\"")
	f.Fuzz(func(t *testing.T, file string) {
		tab, err := Load(strings.NewReader(file))
		if err != nil {
			return
		}
		// Whatever loads must survive its own canonical encoding.
		back, err := Load(bytes.NewReader(tab.Encode()))
		if err != nil {
			t.Fatalf("Load(Encode()) of a loaded table: %v", err)
		}
		if back.Hash() != tab.Hash() {
			t.Fatal("Encode is not stable across a round trip")
		}
		for _, gpu := range GPUs() {
			for _, p := range tab.Providers(gpu) {
				if r, ok := tab.OnDemand(gpu, p); ok && (r.PriceType != PriceOnDemand || r.USDPerGPUHour <= 0) {
					t.Fatalf("OnDemand(%q, %q) = %+v", gpu, p, r)
				}
			}
		}
	})
}

// rates.csv is the shared data's rows whose model gpux trades, line for
// line: a re-dated data file is copied in again, not edited here.
func TestEmbeddedMatchesSharedData(t *testing.T) {
	const path = "../../shared/data/gpu_list_prices.csv" // beside the repository
	src, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("source data not here: %v", err)
	}
	var want []string
	for i, line := range strings.Split(strings.TrimSuffix(string(src), "\n"), "\n") {
		rec, err := csv.NewReader(strings.NewReader(line)).Read()
		if err != nil {
			t.Fatalf("%s line %d: %v", path, i+1, err)
		}
		if _, ok := ModelGPU(rec[colModel]); i == 0 || ok {
			want = append(want, line)
		}
	}
	got := strings.Split(strings.TrimSuffix(string(embeddedRates), "\n"), "\n")
	if !slices.Equal(got, want) {
		t.Errorf("pricing/rates.csv (%d lines) is not the %d lines of %s with a traded gpu_model", len(got), len(want), path)
	}
}
