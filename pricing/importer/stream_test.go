package importer

import (
	"fmt"
	"io"
	"runtime"
	"testing"
)

// offerGen is an EC2 offer file of n products (one p5.48xlarge SKU that
// matches, the rest m5 SKUs that do not) with their OnDemand and Reserved
// terms, generated as it is read: the file never exists whole. Every
// megabyte it collects garbage and samples the live heap.
type offerGen struct {
	chunks  []func(i int) string // sections of the file between the glue
	n       int
	section int // index into chunks; len(chunks) = the closing glue
	i       int // next element of the section; -1 = the section's opening glue
	cur     string
	read    int64
	next    int64
	maxHeap uint64
}

var offerGlue = []string{
	`{"formatVersion":"v1.0","offerCode":"AmazonEC2","version":"20261120213726","publicationDate":"2026-11-20T21:37:26Z","products":{`,
	`},"terms":{"OnDemand":{`,
	`},"Reserved":{`,
	`}}}`,
}

func newOfferGen(n int) *offerGen {
	sku := func(i int) string { return fmt.Sprintf("SKU%013d", i) }
	product := func(i int) string {
		it := "m5.large"
		if i == n/2 {
			it = "p5.48xlarge"
		}
		return fmt.Sprintf(`%q:{"sku":%q,"productFamily":"Compute Instance","attributes":{"instanceType":%q,"regionCode":"us-east-1","operatingSystem":"Linux","tenancy":"Shared","preInstalledSw":"NA","capacitystatus":"Used","licenseModel":"No License required","usagetype":"BoxUsage","location":"US East (N. Virginia)"}}`, sku(i), sku(i), it)
	}
	term := func(code, unit, usd string) func(i int) string {
		return func(i int) string {
			return fmt.Sprintf(`%q:{"%s.%s":{"offerTermCode":%q,"sku":%q,"effectiveDate":"2026-11-01T00:00:00Z","priceDimensions":{"%s.%s.6YS6EN2CT7":{"unit":%q,"pricePerUnit":{"USD":%q},"appliesTo":[]}},"termAttributes":{}}}`,
				sku(i), sku(i), code, code, sku(i), sku(i), code, unit, usd)
		}
	}
	return &offerGen{n: n, i: -1, chunks: []func(int) string{product, term("JRTCKXETXF", "Hrs", "55.0400000000"), term("38NPMPTW36", "Quantity", "290000")}}
}

// chunk returns the next piece of the file, "" at its end.
func (g *offerGen) chunk() string {
	switch {
	case g.section > len(g.chunks):
		return ""
	case g.i < 0 || g.section == len(g.chunks):
		s := offerGlue[g.section]
		g.i = 0
		if g.section == len(g.chunks) {
			g.section++
		}
		return s
	case g.i == g.n:
		g.section, g.i = g.section+1, -1
		return g.chunk()
	}
	s := g.chunks[g.section](g.i)
	if g.i > 0 {
		s = "," + s
	}
	g.i++
	return s
}

func (g *offerGen) Read(p []byte) (int, error) {
	if g.cur == "" {
		if g.cur = g.chunk(); g.cur == "" {
			return 0, io.EOF
		}
	}
	n := copy(p, g.cur)
	g.cur = g.cur[n:]
	g.read += int64(n)
	if g.read >= g.next {
		g.next += 1 << 20
		runtime.GC() // HeapAlloc is then what is live, not garbage awaiting collection
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		g.maxHeap = max(g.maxHeap, ms.HeapAlloc)
	}
	return n, nil
}

// TestAWSStreams: reading a large offer file keeps the live heap far below
// the file's size: the importer holds only the SKUs it keeps, never the
// file (reading it whole would grow the heap by at least its size).
func TestAWSStreams(t *testing.T) {
	n := 6_000 // about 5.5 MB of JSON
	if testing.Short() {
		n = 3_000
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	g := newOfferGen(n)
	rows, err := AWS("generated.json", g)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].InstanceType != "p5.48xlarge" || rows[0].GPUPrice().StringFixed(4) != "6.8800" {
		t.Fatalf("rows %+v, want the one p5.48xlarge at 6.88", rows)
	}
	growth := int64(g.maxHeap) - int64(base)
	t.Logf("read %d bytes; live heap grew at most %d bytes", g.read, growth)
	if growth > g.read/8 {
		t.Errorf("live heap grew by %d bytes reading %d: the file is being held", growth, g.read)
	}
}
