package importer

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

// docs/PRICES.md shows the instance mapping and the GCP composition; they
// must say what the importers do.
func TestDocsMappingTables(t *testing.T) {
	b, err := os.ReadFile("../../docs/PRICES.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for name, in := range awsInstances {
		if !strings.Contains(doc, "`"+name+"`") || !strings.Contains(doc, "| AWS |") {
			t.Errorf("docs/PRICES.md does not list AWS %s (%s)", name, in.model)
		}
	}
	for name, in := range azureInstances {
		row := fmt.Sprintf("| Azure | `%s` | %s | %d |", name, in.model, in.gpus)
		if !strings.Contains(doc, row) {
			t.Errorf("docs/PRICES.md lacks the row %q", row)
		}
	}
	for _, m := range gcpMachines {
		row := fmt.Sprintf("| `%s` | %s | %d × `%s` | %d × `%s` | %d × `%s` |", m.machineType, m.model, m.gpus, m.gpuSKU, m.vcpus, m.coreSKU, m.memGiB, m.ramSKU)
		if !strings.Contains(doc, row) {
			t.Errorf("docs/PRICES.md lacks the composition row %q", row)
		}
		ssd := regexp.MustCompile(regexp.QuoteMeta(row) + ` (\d+) GiB`).FindStringSubmatch(doc)
		switch {
		case ssd == nil && m.localSSDGiB != 0:
			t.Errorf("docs/PRICES.md %s: no Local SSD, code %d GiB", m.machineType, m.localSSDGiB)
		case ssd != nil && ssd[1] != fmt.Sprint(m.localSSDGiB):
			t.Errorf("docs/PRICES.md %s: %s GiB Local SSD, code %d", m.machineType, ssd[1], m.localSSDGiB)
		}
	}
}
