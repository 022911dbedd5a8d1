package importer

import (
	"bytes"
	"cmp"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/gpux/gpux/pricing"
)

// Row is one imported price: a rates-file line before it is written.
type Row struct {
	Provider        string // "AWS", "Azure", "GCP"
	Model           string // gpu_model
	InstanceType    string
	GPUsPerInstance int
	Region          string
	PriceType       string // pricing.PriceOnDemand or pricing.PriceSpot
	InstancePrice   decimal.Decimal
	AsOf            string // YYYY-MM-DD
	Source          string
	Confidence      string
	Note            string
}

// GPUPrice is the instance price per GPU, rounded half-up to 4 places as
// the rates file holds it.
func (r Row) GPUPrice() decimal.Decimal {
	return r.InstancePrice.DivRound(decimal.NewFromInt(int64(r.GPUsPerInstance)), 4)
}

func (r Row) key() string {
	return strings.Join([]string{r.Provider, r.Model, r.PriceType, r.Region, r.InstanceType}, "\x00")
}

// dateOf returns the UTC date of an RFC 3339 time ("2026-11-20T21:37:26Z"
// → "2026-11-20").
func dateOf(ts string) (string, error) {
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return "", fmt.Errorf("%q is not an RFC 3339 time", ts)
	}
	return t.UTC().Format(time.DateOnly), nil
}

// dedupe keeps one row per rates-file key: the newest as_of, then the
// lowest price (a provider file can list a price again with a later
// effective date).
func dedupe(rows []Row) []Row {
	best := map[string]int{}
	var out []Row
	for _, r := range rows {
		i, ok := best[r.key()]
		if !ok {
			best[r.key()] = len(out)
			out = append(out, r)
			continue
		}
		cur := out[i]
		if r.AsOf > cur.AsOf || r.AsOf == cur.AsOf && r.InstancePrice.LessThan(cur.InstancePrice) {
			out[i] = r
		}
	}
	slices.SortFunc(out, func(a, b Row) int {
		return cmp.Or(cmp.Compare(a.Provider, b.Provider), cmp.Compare(a.Model, b.Model), cmp.Compare(a.InstanceType, b.InstanceType),
			cmp.Compare(a.Region, b.Region), cmp.Compare(a.PriceType, b.PriceType))
	})
	return out
}

var header = []string{
	"provider", "gpu_model", "instance_type", "gpus_per_instance", "region",
	"price_type", "usd_per_instance_hour", "usd_per_gpu_hour", "as_of",
	"source", "confidence", "note",
}

// Encode writes rows as a rates file and checks it loads with
// pricing.Load (the importers produce nothing the server would refuse).
// Duplicate keys keep the newest, then cheapest, row.
func Encode(rows []Row) ([]byte, error) {
	rows = dedupe(rows)
	if len(rows) == 0 {
		return nil, fmt.Errorf("no GPU instance prices found")
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write(header) // a bytes.Buffer does not fail
	for _, r := range rows {
		_ = w.Write([]string{
			r.Provider, r.Model, r.InstanceType, strconv.Itoa(r.GPUsPerInstance), r.Region, r.PriceType,
			r.InstancePrice.String(), r.GPUPrice().StringFixed(4), r.AsOf, r.Source, r.Confidence, r.Note,
		})
	}
	w.Flush()
	if _, err := pricing.Load(bytes.NewReader(buf.Bytes())); err != nil {
		return nil, fmt.Errorf("imported table does not load: %w", err)
	}
	return buf.Bytes(), nil
}

// WriteFile writes data to path atomically: to a temporary file in the
// same directory, synced, then renamed over path. On any error path is
// untouched and the temporary file removed.
func WriteFile(path string, data []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Chmod(f.Name(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// Merge adds to an imported rates file the rows of keep whose provider and
// price type the import has no row of: CoreWeave and Lambda next to freshly
// imported AWS, Azure and GCP rows, and AWS's capacity-block rows next to
// its imported on-demand ones. It checks the result loads.
func Merge(imported []byte, keep *pricing.Table) ([]byte, error) {
	tab, err := pricing.Load(bytes.NewReader(imported))
	if err != nil {
		return nil, fmt.Errorf("merge: %w", err)
	}
	have := map[[2]string]bool{}
	for _, r := range tab.Rates() {
		have[[2]string{r.Provider, r.PriceType}] = true
	}
	var buf bytes.Buffer
	buf.Write(imported)
	w := csv.NewWriter(&buf)
	for _, r := range keep.Rates() {
		if have[[2]string{r.Provider, r.PriceType}] {
			continue
		}
		_ = w.Write([]string{
			r.ProviderName, r.Model, r.InstanceType, strconv.Itoa(r.GPUsPerInstance), r.Region, r.PriceType,
			r.USDPerInstanceHour, pricing.FormatPrice(r.USDPerGPUHour), r.AsOf, r.Source, r.Confidence, r.Note,
		})
	}
	w.Flush()
	if _, err := pricing.Load(bytes.NewReader(buf.Bytes())); err != nil {
		return nil, fmt.Errorf("merge: %w", err)
	}
	return buf.Bytes(), nil
}
