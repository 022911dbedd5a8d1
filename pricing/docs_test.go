package pricing

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// docs/PRICES.md shows the region table; it must say what MarketRegion
// does.
func TestDocsRegionTable(t *testing.T) {
	doc, err := os.ReadFile("../docs/PRICES.md")
	if err != nil {
		t.Fatal(err)
	}
	code := regexp.MustCompile("`([^`]+)`")
	seen := 0
	for _, line := range strings.Split(string(doc), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) != 6 {
			continue
		}
		m := code.FindStringSubmatch(cells[1])
		if m == nil || !slices.Contains(MarketRegions(), m[1]) {
			continue
		}
		var got []string
		for _, c := range cells[2:5] {
			for _, r := range code.FindAllStringSubmatch(c, -1) {
				got = append(got, r[1])
			}
		}
		slices.Sort(got)
		if want := ProviderRegions(m[1]); !slices.Equal(got, want) {
			t.Errorf("docs/PRICES.md %s: %v, code: %v", m[1], got, want)
		}
		seen++
	}
	if seen != len(MarketRegions()) {
		t.Errorf("docs/PRICES.md has %d region rows, want %d", seen, len(MarketRegions()))
	}
}
