package importer

import (
	"maps"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The readers never panic: any input is rows or an error, and rows encode
// to a table pricing.Load accepts or Encode says why not.
func fuzzReader(f *testing.F, seeds []string, read func(string) ([]Row, error)) {
	f.Helper()
	for _, s := range seeds {
		b, err := os.ReadFile(filepath.Join("testdata", s))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
		f.Add(string(b[:len(b)/2]))
	}
	f.Add(`{}`)
	f.Add(`[`)
	f.Fuzz(func(t *testing.T, file string) {
		rows, err := read(file)
		if err != nil {
			return
		}
		if _, err := Encode(rows); err != nil && !strings.Contains(err.Error(), "no GPU instance prices") &&
			!strings.Contains(err.Error(), "imported table does not load") {
			t.Fatalf("Encode: %v", err)
		}
	})
}

func FuzzAWS(f *testing.F) {
	fuzzReader(f, []string{"aws_ec2_offer.json"}, func(s string) ([]Row, error) { return AWS("f", strings.NewReader(s)) })
}

func FuzzAzure(f *testing.F) {
	fuzzReader(f, []string{"azure_page1.json", "azure_page2.json"}, func(s string) ([]Row, error) { return Azure("f", strings.NewReader(s)) })
}

func FuzzGCP(f *testing.F) {
	fuzzReader(f, []string{"gcp_skus_page1.json", "gcp_skus_page2.json"}, func(s string) ([]Row, error) {
		var c GCPCatalog
		if err := c.Read("f", strings.NewReader(s)); err != nil {
			return nil, err
		}
		return c.Rows(), nil
	})
}

// TestCorruptedFiles flips bytes of each fixture (fixed seed, printed on
// failure): every reader answers rows or an error, never a panic, and rows
// it answers encode or Encode says why not.
func TestCorruptedFiles(t *testing.T) {
	const seed = 14
	r := rand.New(rand.NewSource(seed))
	readers := map[string]func(string) ([]Row, error){
		"aws_ec2_offer.json": func(s string) ([]Row, error) { return AWS("f", strings.NewReader(s)) },
		"azure_page1.json":   func(s string) ([]Row, error) { return Azure("f", strings.NewReader(s)) },
		"gcp_skus_page1.json": func(s string) ([]Row, error) {
			var c GCPCatalog
			if err := c.Read("f", strings.NewReader(s)); err != nil {
				return nil, err
			}
			return c.Rows(), nil
		},
	}
	for _, name := range slices.Sorted(maps.Keys(readers)) {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		for i := range 300 {
			m := slices.Clone(b)
			for range 1 + r.Intn(4) {
				m[r.Intn(len(m))] = byte(r.Intn(256))
			}
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("%s mutation %d (seed %d): panic %v", name, i, seed, p)
					}
				}()
				rows, err := readers[name](string(m))
				if err == nil && len(rows) > 0 {
					if _, err := Encode(rows); err != nil && !strings.Contains(err.Error(), "imported table does not load") {
						t.Fatalf("%s mutation %d (seed %d): Encode: %v", name, i, seed, err)
					}
				}
			}()
		}
	}
}
