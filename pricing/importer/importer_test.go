package importer

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gpux/gpux/pricing"
)

// got is a row reduced to what the tests compare.
type got struct {
	instance, region, priceType, instancePrice, gpuPrice, asOf string
}

func reduce(rows []Row) []got {
	var out []got
	for _, r := range dedupe(rows) {
		out = append(out, got{r.InstanceType, r.Region, r.PriceType, r.InstancePrice.String(), r.GPUPrice().StringFixed(4), r.AsOf})
	}
	return out
}

func open(tb testing.TB, name string) *os.File {
	tb.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	return f
}

func read(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestAWS(t *testing.T) {
	rows, err := AWS("aws_ec2_offer.json", open(t, "aws_ec2_offer.json"))
	if err != nil {
		t.Fatal(err)
	}
	// Windows, dedicated, SQL, unused-reservation and m5 SKUs are skipped;
	// the Reserved terms are skipped whole.
	want := []got{
		{"p5.48xlarge", "eu-west-2", "on_demand", "61.6448", "7.7056", "2026-11-20"},
		{"p5.48xlarge", "us-east-1", "on_demand", "55.04", "6.8800", "2026-11-20"},
		{"g6.xlarge", "us-west-2", "on_demand", "0.8048", "0.8048", "2026-11-20"},
	}
	if g := reduce(rows); !slices.Equal(g, want) {
		t.Fatalf("AWS rows\n got %v\nwant %v", g, want)
	}
	r := dedupe(rows)[0]
	if r.Provider != "AWS" || r.Model != "H100 SXM 80GB" || r.GPUsPerInstance != 8 || r.Confidence != "high" ||
		r.Source != "AWS Price List AmazonEC2 offer file aws_ec2_offer.json (version 20261120213726, published 2026-11-20T21:37:26Z)" {
		t.Errorf("AWS row provenance %+v", r)
	}
}

// Terms before products (the order is not guaranteed by JSON) read the
// same.
func TestAWSTermsFirst(t *testing.T) {
	file := string(read(t, "aws_ec2_offer.json"))
	p, q := strings.Index(file, `"products"`), strings.Index(file, `"terms"`)
	end := strings.LastIndex(file, "}")
	products := strings.TrimSuffix(strings.TrimSpace(file[p:q]), ",")
	terms := strings.TrimSpace(file[q:end])
	swapped := file[:p] + terms + ",\n" + products + "\n}"
	a, err := AWS("a", strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	b, err := AWS("a", strings.NewReader(swapped))
	if err != nil {
		t.Fatalf("terms first: %v", err)
	}
	if !slices.Equal(reduce(a), reduce(b)) {
		t.Errorf("terms first: %v, want %v", reduce(b), reduce(a))
	}
}

func TestAzure(t *testing.T) {
	var rows []Row
	for _, name := range []string{"azure_page1.json", "azure_page2.json"} {
		page, err := Azure(name, open(t, name))
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, page...)
	}
	// Windows, Low Priority, Reservation, DevTest and D2s items are skipped;
	// page 2's older eastus H100 price (2025-01-01) loses to page 1's.
	want := []got{
		{"Standard_ND96isr_H100_v5", "eastus", "on_demand", "98.32", "12.2900", "2026-10-01"},
		{"Standard_ND96isr_H100_v5", "eastus", "spot", "39.328", "4.9160", "2026-10-01"},
		{"Standard_ND96isr_H100_v5", "westeurope", "on_demand", "127.816", "15.9770", "2026-10-01"},
		{"Standard_ND96isr_H200_v5", "eastus2", "on_demand", "84.8", "10.6000", "2026-06-01"},
	}
	if g := reduce(rows); !slices.Equal(g, want) {
		t.Fatalf("Azure rows\n got %v\nwant %v", g, want)
	}
}

func TestAzureFetched(t *testing.T) {
	rows, err := Azure("azure_page2.json", open(t, "azure_page2.json"))
	if err != nil {
		t.Fatal(err)
	}
	dated, err := AzureFetched(rows, "2026-11-28")
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range dated {
		if r.AsOf != "2026-11-28" || !strings.Contains(r.Note, "in effect since "+rows[i].AsOf+", fetched 2026-11-28") {
			t.Errorf("row %d: as_of %s note %q", i, r.AsOf, r.Note)
		}
	}
	if rows[0].AsOf == "2026-11-28" {
		t.Error("AzureFetched changed its input")
	}
	for day, want := range map[string]string{
		"2026-05-31": "before Standard_ND96isr_H200_v5 eastus2's effectiveStartDate 2026-06-01",
		"28.11.2026": "want YYYY-MM-DD",
	} {
		if _, err := AzureFetched(rows, day); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("AzureFetched(%s) error %v, want %q", day, err, want)
		}
	}
}

func TestGCPComposition(t *testing.T) {
	var c GCPCatalog
	for _, name := range []string{"gcp_skus_page1.json", "gcp_skus_page2.json"} {
		if err := c.Read(name, open(t, name)); err != nil {
			t.Fatal(err)
		}
	}
	rows := c.Rows()
	// a3-highgpu-8g us-east4 on demand (its RAM SKU is on page 2):
	//   8 × 9.796 + 208 × 0.0331 + 1872 × 0.00443 + 6000/730 × 0.088
	//   = 78.368 + 6.8848 + 8.29296 + 0.7232876712... = 94.269048 (6 places)
	// Spot: 8 × 2.939 + 208 × 0.00993 + 1872 × 0.001329 + 6000/730 × 0.0352
	//   = 23.512 + 2.06544 + 2.487888 + 0.2893150684... = 28.354643
	// g2-standard-12 us-central1: 0.56 + 12 × 0.024988 + 48 × 0.002927 =
	//   1.000352, as_of the L4 SKU's older effectiveTime. No us-east4 G2
	//   core SKU and no europe-west4 A3 core SKU: those are not composed.
	want := []got{
		{"a3-highgpu-8g", "us-east4", "on_demand", "94.269048", "11.7836", "2026-11-20"},
		{"a3-highgpu-8g", "us-east4", "spot", "28.354643", "3.5443", "2026-11-20"},
		{"g2-standard-12", "us-central1", "on_demand", "1.000352", "1.0004", "2026-11-19"},
	}
	if g := reduce(rows); !slices.Equal(g, want) {
		t.Fatalf("GCP rows\n got %v\nwant %v", g, want)
	}
	for _, r := range rows {
		if r.InstanceType == "a3-highgpu-8g" && r.PriceType == pricing.PriceOnDemand {
			if !strings.Contains(r.Source, "gcp_skus_page1.json gcp_skus_page2.json") || !strings.Contains(r.Source, "A1B2-C3D4-E5F6") ||
				!strings.Contains(r.Note, "208 × A3 Instance Core 0.0331") || !strings.Contains(r.Note, "6000 GiB / 730 h × SSD backed Local Storage 0.088") {
				t.Errorf("a3 provenance: source %q note %q", r.Source, r.Note)
			}
		}
	}
}

func TestGCPComponent(t *testing.T) {
	for desc, want := range map[string]string{
		"Nvidia H100 80GB GPU running in Americas":                                   "Nvidia H100 80GB GPU",
		"Nvidia H100 80GB GPU attached to Spot Preemptible VMs running in Americas":  "Nvidia H100 80GB GPU",
		"Spot Preemptible A3 Instance Core running in Americas":                      "A3 Instance Core",
		"SSD backed Local Storage in Iowa":                                           "SSD backed Local Storage",
		"SSD backed Local Storage attached to Spot Preemptible VMs in Iowa":          "SSD backed Local Storage",
		"Nvidia H100 80GB GPU attached to DWS Defined Duration VMs running in Texas": "Nvidia H100 80GB GPU attached to DWS Defined Duration VMs",
		"Licensing Fee for Debian":                                                   "",
	} {
		got, _ := gcpComponent(desc)
		if got != want {
			t.Errorf("gcpComponent(%q) = %q, want %q", desc, got, want)
		}
	}
}

// A malformed, truncated or wrong file fails with an error that names the
// file and says what is wrong.
func TestBadFiles(t *testing.T) {
	aws := string(read(t, "aws_ec2_offer.json"))
	az := string(read(t, "azure_page1.json"))
	gcp := string(read(t, "gcp_skus_page1.json"))
	readGCP := func(name string, r *strings.Reader) error {
		var c GCPCatalog
		return c.Read(name, r)
	}
	readAWS := func(name string, r *strings.Reader) error { _, err := AWS(name, r); return err }
	readAzure := func(name string, r *strings.Reader) error { _, err := Azure(name, r); return err }
	tests := []struct {
		name string
		read func(string, *strings.Reader) error
		file string
		want string
	}{
		{"aws truncated in products", readAWS, aws[:len(aws)/3], "aws offer file f.json: at byte"},
		{"aws truncated in products says so", readAWS, aws[:len(aws)/3], "file ends early (truncated?)"},
		{"aws truncated in terms", readAWS, aws[:len(aws)-200], "file ends early"},
		{"aws cut after the last brace", readAWS, aws[:strings.LastIndex(aws, "}")], "file ends early"},
		{"aws not JSON", readAWS, "<html>503</html>", "malformed JSON"},
		{"aws trailing data", readAWS, aws + "{}", "unexpected data after the top-level object"},
		{"aws no publicationDate", readAWS, strings.Replace(aws, `"publicationDate"`, `"publicationDateX"`, 1), "no publicationDate"},
		{"aws bad publicationDate", readAWS, strings.Replace(aws, "2026-11-20T21:37:26Z", "20 Nov 2026", 1), "publicationDate"},
		{"aws other offer", readAWS, strings.Replace(aws, `"AmazonEC2"`, `"AmazonS3"`, 1), `offerCode "AmazonS3", want AmazonEC2`},
		{"aws bad price", readAWS, strings.Replace(aws, `"55.0400000000"`, `"55,04"`, 1), "malformed JSON"},
		{"aws products not an object", readAWS, `{"products": [1]}`, `products: want "{"`},
		{"azure truncated", readAzure, az[:len(az)/2], "azure retail prices page f.json: at byte"},
		{"azure no Items", readAzure, `{"items": []}`, "no Items array"},
		{"azure other currency", readAzure, strings.Replace(az, `"currencyCode": "USD"`, `"currencyCode": "EUR"`, 1), `Items[0]: currencyCode "EUR"`},
		{"azure bad date", readAzure, strings.Replace(az, `"2026-10-01T00:00:00Z"`, `"soon"`, 1), "effectiveStartDate"},
		{"gcp truncated", readGCP, gcp[:len(gcp)/2], "gcp catalog page f.json: at byte"},
		{"gcp no skus", readGCP, `{"services": []}`, "no skus array"},
		{"gcp wrong unit", readGCP, strings.Replace(gcp, `"usageUnit": "GiBy.mo"`, `"usageUnit": "GiBy.h"`, 1), `priced per "GiBy.h", want "GiBy.mo"`},
		{"gcp bad units", readGCP, strings.Replace(gcp, `"units": "9"`, `"units": "nine"`, 1), "malformed JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.read("f.json", strings.NewReader(tt.file))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestEncodeLoads(t *testing.T) {
	rows, err := AWS("aws_ec2_offer.json", open(t, "aws_ec2_offer.json"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := Encode(rows)
	if err != nil {
		t.Fatal(err)
	}
	tab, err := pricing.Load(bytes.NewReader(data))
	if err != nil || tab.Len() != 3 {
		t.Fatalf("Load(Encode) = %v, want 3 rates", err)
	}
	r, ok := tab.Choose("h100-sxm", "aws", pricing.PriceOnDemand, "eu-west")
	if !ok || r.Region != "eu-west-2" || r.USDPerGPUHour != 77056 || r.AsOf != "2026-11-20" || r.USDPerInstanceHour != "61.6448" {
		t.Errorf("eu-west AWS H100 %+v", r)
	}
	if _, err := Encode(nil); err == nil || !strings.Contains(err.Error(), "no GPU instance prices") {
		t.Errorf("Encode(nil) error %v, want no GPU instance prices", err)
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rates.csv")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, []byte("new")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "new" {
		t.Errorf("file holds %q, want new", b)
	}
	// A directory that does not exist: an error, nothing left behind.
	if err := WriteFile(filepath.Join(dir, "missing", "rates.csv"), []byte("x")); err == nil {
		t.Error("WriteFile into a missing directory succeeded")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only rates.csv (no temporary files)", len(entries))
	}
}
