package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/pricing"
	"github.com/gpux/gpux/store/redistest"
)

const fixtures = "../../pricing/importer/testdata/"

func runRatesCmd(tb testing.TB, args ...string) (code int, stdout, stderr string) {
	tb.Helper()
	var o, e bytes.Buffer
	code = runRates(context.Background(), args, &o, &e)
	return code, o.String(), e.String()
}

// TestRatesImport: the three providers' files become one rates file the
// server loads, each row's source naming its file.
func TestRatesImport(t *testing.T) {
	out := filepath.Join(t.TempDir(), "rates.csv")
	code, _, stderr := runRatesCmd(t, "import", "--aws", fixtures+"aws_ec2_offer.json",
		"--azure", fixtures+"azure_page1.json", "--azure", fixtures+"azure_page2.json",
		"--gcp", fixtures+"gcp_skus_page1.json", "--gcp", fixtures+"gcp_skus_page2.json", "-o", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	tab, err := pricing.LoadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if got := tab.Len(); got != 10 { // 3 AWS + 4 Azure + 3 GCP
		t.Errorf("imported %d rates, want 10", got)
	}
	for _, r := range tab.Rates() {
		var file string
		switch r.Provider {
		case "aws":
			file = "aws_ec2_offer.json"
		case "azure":
			file = "azure_page"
		case "gcp":
			file = "gcp_skus_page"
		}
		if !strings.Contains(r.Source, file) {
			t.Errorf("%s %s %s: source %q does not name its file", r.Provider, r.InstanceType, r.Region, r.Source)
		}
	}
	if r, ok := tab.Choose("h100-sxm", "azure", pricing.PriceSpot, "us-east"); !ok || r.USDPerGPUHour != 49160 || r.AsOf != "2026-10-01" {
		t.Errorf("azure H100 spot %+v, want 4.9160 of 2026-10-01", r)
	}
	// --azure-fetched dates the Azure rows by the fetch.
	code, stdout, stderr := runRatesCmd(t, "import", "--azure", fixtures+"azure_page1.json", "--azure-fetched", "2026-11-28")
	if code != 0 {
		t.Fatalf("--azure-fetched: exit %d: %s", code, stderr)
	}
	fetched, err := pricing.Load(strings.NewReader(stdout))
	if err != nil {
		t.Fatalf("--azure-fetched: %v", err)
	}
	for _, r := range fetched.Rates() {
		if r.AsOf != "2026-11-28" {
			t.Errorf("--azure-fetched: %s %s as_of %s, want 2026-11-28", r.InstanceType, r.Region, r.AsOf)
		}
	}

	// To stdout, with --keep: the rows of the built-in table whose provider
	// and price type the import has none of come along (AWS capacity
	// blocks, superseded prices, the other providers), the rest do not.
	keep := filepath.Join(t.TempDir(), "keep.csv")
	if err := os.WriteFile(keep, pricing.Default().Encode(), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runRatesCmd(t, "import", "--aws", fixtures+"aws_ec2_offer.json", "--keep", keep)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	merged, err := pricing.Load(strings.NewReader(stdout))
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, r := range merged.Rates() {
		count[r.Provider+" "+r.PriceType]++
		if r.Provider == "aws" && r.PriceType == pricing.PriceOnDemand && !strings.Contains(r.Source, "aws_ec2_offer.json") {
			t.Errorf("an old AWS on-demand row was kept: %+v", r)
		}
	}
	if count["aws on_demand"] != 3 || count["aws capacity_block"] == 0 || count["coreweave on_demand"] == 0 ||
		count["lambda on_demand"] == 0 || count["azure on_demand"] == 0 || count["gcp spot"] == 0 {
		t.Errorf("merged rows by provider and type %v, want the 3 imported AWS on-demand rows and the rest from --keep", count)
	}
}

// A bad input file fails the import and leaves -o as it was.
func TestRatesImportFailureWritesNothing(t *testing.T) {
	dir := t.TempDir()
	aws, err := os.ReadFile(fixtures + "aws_ec2_offer.json")
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.json")
	if err := os.WriteFile(truncated, aws[:len(aws)-100], 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.json")
	if err := os.WriteFile(empty, []byte(`{"Items": [], "NextPageLink": null}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "rates.csv")
	if err := os.WriteFile(out, []byte("previous"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"truncated aws", []string{"--aws", truncated, "--gcp", fixtures + "gcp_skus_page1.json"}, 1, "aws offer file truncated.json: at byte"},
		{"missing file", []string{"--azure", filepath.Join(dir, "nope.json")}, 1, "no such file"},
		{"gcp page without the composed SKUs", []string{"--gcp", fixtures + "azure_page2.json"}, 1, "no skus array"},
		{"nothing found", []string{"--azure", empty}, 1, "no GPU instance prices found"},
		{"no input", nil, 2, "give at least one of"},
		{"stray argument", []string{"--aws", truncated, "extra"}, 2, "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runRatesCmd(t, append(append([]string{"import"}, tt.args...), "-o", out)...)
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, tt.code, tt.want)
			}
			if b, _ := os.ReadFile(out); string(b) != "previous" {
				t.Errorf("-o now holds %q, want it untouched", b)
			}
		})
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		t.Errorf("%d files in the output directory, want 3 (no temporary files left)", len(entries))
	}
	if code, _, _ := runRatesCmd(t, "frobnicate"); code != 2 {
		t.Errorf("unknown subcommand: exit %d, want 2", code)
	}
}

func TestRatesStaleAfterFlag(t *testing.T) {
	env := func(kv map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := kv[k]; return v, ok }
	}
	m := NewMain()
	if err := m.parse(nil, env(nil)); err != nil || m.Config.RatesStaleAfter != pricing.DefaultStaleAfter {
		t.Errorf("default %v (%v), want %v", m.Config.RatesStaleAfter, err, pricing.DefaultStaleAfter)
	}
	m = NewMain()
	if err := m.parse(nil, env(map[string]string{"GPUX_RATES_STALE_AFTER": "720h"})); err != nil || m.Config.RatesStaleAfter != 720*time.Hour {
		t.Errorf("env: %v (%v), want 720h", m.Config.RatesStaleAfter, err)
	}
	m = NewMain()
	if err := m.parse([]string{"--rates-stale-after", "24h"}, env(map[string]string{"GPUX_RATES_STALE_AFTER": "720h"})); err != nil || m.Config.RatesStaleAfter != 24*time.Hour {
		t.Errorf("flag over env: %v (%v), want 24h", m.Config.RatesStaleAfter, err)
	}
	m = NewMain()
	m.Stderr = &bytes.Buffer{}
	if err := m.parse(nil, env(map[string]string{"GPUX_RATES_STALE_AFTER": "120 days"})); err == nil {
		t.Error("GPUX_RATES_STALE_AFTER=\"120 days\" accepted")
	}
}

// TestRatesPut: import, then install the file in a running gpuxd from the
// command line; /v1/prices shows it, staleness judged with the server's
// --rates-stale-after.
func TestRatesPut(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "rates.csv")
	if code, _, stderr := runRatesCmd(t, "import", "--aws", fixtures+"aws_ec2_offer.json", "-o", file); code != 0 {
		t.Fatalf("import: exit %d: %s", code, stderr)
	}
	m := newTestMain(t)
	m.Config.RatesStaleAfter = 0 // never stale: the test must not depend on today's date
	if err := m.Run(context.Background()); err != nil {
		m.Close()
		t.Fatal(err)
	}
	defer m.Close()
	url := "http://" + m.Addr()
	if code, _, stderr := runRatesCmd(t, "put", "--addr", url, "--admin-key", "wrong", file); code != 1 || !strings.Contains(stderr, "401") {
		t.Errorf("wrong key: exit %d %q, want 1 and a 401", code, stderr)
	}
	bad := filepath.Join(dir, "bad.csv")
	if err := os.WriteFile(bad, []byte("provider\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runRatesCmd(t, "put", "--addr", url, "--admin-key", "admin", bad); code != 1 || !strings.Contains(stderr, "bad.csv") {
		t.Errorf("bad file: exit %d %q, want 1 naming the file", code, stderr)
	}
	code, stdout, stderr := runRatesCmd(t, "put", "--addr", url, "--admin-key", "admin", file)
	if code != 0 || !strings.Contains(stdout, `"rates":3`) {
		t.Fatalf("put: exit %d stdout %q stderr %q", code, stdout, stderr)
	}
	resp, err := http.Get(url + "/v1/prices")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rows []struct {
		Market    string `json:"market"`
		Reference []struct {
			Region string `json:"region"`
			Source string `json:"source"`
			Stale  bool   `json:"stale"`
		} `json:"reference"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&rows); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Market != "h100-sxm.eu-west" {
			continue
		}
		if len(r.Reference) != 2 || r.Reference[0].Region != "eu-west-2" || r.Reference[0].Stale || !strings.Contains(r.Reference[0].Source, "aws_ec2_offer.json") {
			t.Errorf("h100-sxm.eu-west reference after put: %+v", r.Reference)
		}
		return
	}
	t.Error("no h100-sxm.eu-west row")
}

// TestRatesPutThenRestart pins what docs/PRICES.md says: a table put at run
// time is journaled with its rates and stays in force across a restart,
// unless gpuxd starts with an explicit --rates file, which then wins.
func TestRatesPutThenRestart(t *testing.T) {
	url, shard := redistest.URL(t), redistest.Shard(t)
	file := filepath.Join(t.TempDir(), "rates.csv")
	csv := "provider,gpu_model,instance_type,gpus_per_instance,region,price_type,usd_per_instance_hour,usd_per_gpu_hour,as_of,source,confidence,note\n" +
		"AWS,H100 SXM 80GB,p5.48xlarge,8,us-east-1,on_demand,40.00,5.00,2026-11-20,test,high,\n"
	if err := os.WriteFile(file, []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	start := func() *Main {
		t.Helper()
		m := newTestMain(t)
		m.Config.RedisURL, m.Config.Shard = url, shard
		if err := m.Run(context.Background()); err != nil {
			m.Close()
			t.Fatal(err)
		}
		return m
	}
	awsRate := func(m *Main) engine.Price {
		t.Helper()
		var p engine.Price
		m.seq.Read(func(e *engine.Engine) {
			for _, r := range e.ReferenceRates() {
				if r.GPU == "h100-sxm" && r.Provider == "aws" {
					p = r.Price
				}
			}
		})
		return p
	}
	m := start()
	builtIn := awsRate(m)
	if code, _, stderr := runRatesCmd(t, "put", "--addr", "http://"+m.Addr(), "--admin-key", "admin", file); code != 0 {
		t.Fatalf("put: exit %d: %s", code, stderr)
	}
	if got := awsRate(m); got != 50000 || builtIn == 50000 {
		t.Errorf("engine aws h100 rate %v after put (built-in %v), want 5.00", got, builtIn)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	// The table put at run time outlives the restart: the engine's rates
	// and the table /v1/prices shows.
	m = start()
	if got := awsRate(m); got != 50000 {
		t.Errorf("engine aws h100 rate after restart %v, want the table put at run time (5.00)", got)
	}
	if got, want := m.server.ReferenceTableHash(), mustLoadHash(t, csv); got != want {
		t.Errorf("table after restart: hash %s, want the one put (%s)", got, want)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	// An explicit --rates file at start wins over it.
	builtInFile := filepath.Join(t.TempDir(), "builtin.csv")
	if err := os.WriteFile(builtInFile, pricing.Default().Encode(), 0o644); err != nil {
		t.Fatal(err)
	}
	m = newTestMain(t)
	m.Config.RedisURL, m.Config.Shard, m.Config.RatesFile = url, shard, builtInFile
	if err := m.Run(context.Background()); err != nil {
		m.Close()
		t.Fatal(err)
	}
	defer m.Close()
	if got := awsRate(m); got != builtIn {
		t.Errorf("engine aws h100 rate after a restart with --rates %v, want that file's %v", got, builtIn)
	}
}

func mustLoadHash(tb testing.TB, csv string) string {
	tb.Helper()
	t, err := pricing.Load(strings.NewReader(csv))
	if err != nil {
		tb.Fatal(err)
	}
	return t.Hash()
}
