package pricing

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	_ "embed"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shopspring/decimal"
)

// Price types of the reference data (see data/README.md). Only
// PriceOnDemand is ever used as "the" on-demand rate of a provider; the
// others stay labelled and are shown as what they are.
const (
	PriceOnDemand             = "on_demand"
	PriceOnDemandSuperseded   = "on_demand_superseded" // an older list price, replaced by a newer on_demand row
	PriceOnDemandUncertainSKU = "on_demand_uncertain_sku"
	PriceOnDemandGPUComponent = "on_demand_gpu_component" // GPU charge only, host not included
	PriceOnDemandLegacy       = "on_demand_legacy"
	PriceSpot                 = "spot"
	PriceSpotMinAZ            = "spot_min_az"
	PriceSpotGPUComponent     = "spot_gpu_component"
	PriceCapacityBlock        = "capacity_block"
	PriceSeedText             = "seed_text"
)

// AsOfUndated is the as_of of a rate whose source gives no date.
const AsOfUndated = "undated"

const (
	maxGPUsPerInstance = 1024
	ratesName          = "rates.csv" // the file name Load reports in errors
)

// MaxRates is the most rows a rates file may have: a table is replaced
// through the admin API and journaled, so its size is bounded. The
// providers' full price files are imported (see package importer) into far
// fewer rows: only GPU instances the exchange trades.
const MaxRates = 10_000

// DefaultStaleAfter is how old a rate may be before it is shown as stale
// (120 days).
const DefaultStaleAfter = 120 * 24 * time.Hour

var priceTypes = map[string]bool{
	PriceOnDemand: true, PriceOnDemandSuperseded: true, PriceOnDemandUncertainSKU: true,
	PriceOnDemandGPUComponent: true, PriceOnDemandLegacy: true, PriceSpot: true,
	PriceSpotMinAZ: true, PriceSpotGPUComponent: true, PriceCapacityBlock: true,
	PriceSeedText: true,
}

// header is the exact first line of a rates file: the columns of
// data/gpu_list_prices.csv, in its order.
var header = []string{
	"provider", "gpu_model", "instance_type", "gpus_per_instance", "region",
	"price_type", "usd_per_instance_hour", "usd_per_gpu_hour", "as_of",
	"source", "confidence", "note",
}

// Column indexes into header.
const (
	colProvider = iota
	colModel
	colInstance
	colGPUs
	colRegion
	colPriceType
	colInstancePrice
	colGPUPrice
	colAsOf
	colSource
	colConfidence
	colNote
)

// modelGPU maps the reference data's gpu_model text to engine GPU ids.
// Only exact matches count: "A100 80GB PCIe", "H100 NVL 94GB", "A10",
// "A10G", "B300" and "GB200" are different parts from any engine GPU and
// deliberately have no id.
var modelGPU = map[string]string{
	"H100 SXM 80GB": "h100-sxm",
	"H200":          "h200",
	"B200":          "b200",
	"A100 80GB":     "a100-80gb",
	"A100 40GB":     "a100-40gb",
	"L40S":          "l40s",
	"L4":            "l4",
	"MI300X":        "mi300x",
}

// providerAliases maps provider names that slugify to something other than
// the id the API uses.
var providerAliases = map[string]string{
	"amazon-web-services": "aws",
	"amazon":              "aws",
	"microsoft-azure":     "azure",
	"google-cloud":        "gcp",
	"google":              "gcp",
}

// GPUs returns the engine GPU ids the reference data can map to, sorted.
func GPUs() []string {
	ids := make([]string, 0, len(modelGPU))
	for _, id := range modelGPU {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// ModelGPU returns the engine GPU id for a reference-data gpu_model text
// ("H100 SXM 80GB" → "h100-sxm"), and false for a model gpux does not
// trade.
func ModelGPU(model string) (string, bool) {
	id, ok := modelGPU[model]
	return id, ok
}

// isProviderID reports whether s is already a provider id (lowercase
// letters, digits and single inner dashes), which ProviderID would return
// unchanged unless it is an alias.
func isProviderID(s string) bool {
	if s == "" || s[0] == '-' || s[len(s)-1] == '-' || providerAliases[s] != "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' && s[i-1] != '-') {
			return false
		}
	}
	return true
}

// ProviderID returns the lowercase id of a provider name: a few known
// aliases ("Google Cloud" → "gcp"), otherwise the name lowercased with every
// run of other characters than a-z and 0-9 replaced by one "-" ("AWS" →
// "aws", "CoreWeave" → "coreweave", "Lambda Labs" → "lambda-labs"). It
// returns "" for a name without letters or digits.
func ProviderID(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if ('a' <= r && r <= 'z') || ('0' <= r && r <= '9') {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
		} else {
			dash = true
		}
	}
	id := b.String()
	if alias, ok := providerAliases[id]; ok {
		return alias
	}
	return id
}

// ReferenceRate is one public list price of a GPU instance, per GPU-hour.
type ReferenceRate struct {
	Provider        string `json:"provider"`      // lowercase id: "aws", "azure", "gcp", "coreweave", "lambda", ...
	ProviderName    string `json:"provider_name"` // as written in the file: "AWS", "CoreWeave"
	Model           string `json:"gpu_model"`     // as written in the file: "H100 SXM 80GB"
	GPU             string `json:"gpu"`           // engine id: "h100-sxm"
	InstanceType    string `json:"instance_type"`
	GPUsPerInstance int    `json:"gpus_per_instance"`
	Region          string `json:"region"`     // the provider's own region name, or a description such as "(not stated)"
	PriceType       string `json:"price_type"` // one of the Price* constants
	// USDPerInstanceHour is the file's instance price as a canonical
	// decimal string, "" when the file left it empty. It is provenance
	// only and never used in a computation.
	USDPerInstanceHour string `json:"usd_per_instance_hour,omitempty"`
	// USDPerGPUHour is the price in ticks (1/10000 USD per GPU-hour): the
	// file's decimal rounded half-up to four places.
	USDPerGPUHour int64  `json:"usd_per_gpu_hour_ticks"`
	AsOf          string `json:"as_of"` // "YYYY-MM-DD" or "undated"
	Source        string `json:"source"`
	Confidence    string `json:"confidence"` // "high", "medium" or "low"
	Note          string `json:"note,omitempty"`
}

// LoadError is the error Load returns for a bad rates file: which file,
// line (1-based, the header is line 1) and column, and what is wrong.
type LoadError struct {
	File   string // "rates.csv" for Load, the path for LoadFile
	Line   int    // 0 when the problem is not on one line (an empty file)
	Column string // a header column name, "" when the problem is the whole line
	Value  string // the offending value, when there is one
	Reason string
}

var _ error = (*LoadError)(nil)

// Error formats as `rates.csv line 7: usd_per_gpu_hour "abc": not a decimal`.
func (e *LoadError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, " line %d", e.Line)
	}
	b.WriteString(": ")
	if e.Column != "" {
		fmt.Fprintf(&b, "%s %q: ", e.Column, e.Value)
	}
	b.WriteString(e.Reason)
	return b.String()
}

// Table is an immutable set of reference rates, indexed by GPU. Its methods
// are safe for concurrent use.
type Table struct {
	rates    []ReferenceRate             // canonical order, see Rates
	byGPU    map[string][]ReferenceRate  // sub-slices of rates
	onDemand map[[2]string]ReferenceRate // [gpu, provider] → the rate OnDemand returns
}

//go:embed rates.csv
var embeddedRates []byte

var defaultTable = sync.OnceValue(func() *Table {
	t, err := load(bytes.NewReader(embeddedRates), ratesName, false)
	if err != nil {
		panic("pricing: embedded rates.csv: " + err.Error())
	}
	return t
})

// Default returns the table built into the binary from rates.csv, a copy of
// the rows of data/gpu_list_prices.csv whose gpu_model maps to an engine GPU
// id. Rows with any other model would be skipped. The embedded file is
// checked by the tests, so Default never fails; it returns the same *Table
// on every call.
func Default() *Table { return defaultTable() }

// LoadFile reads a rates file (the same columns as rates.csv) so an
// operator can replace the table without a rebuild. Errors are as for Load,
// with the path as the file name.
func LoadFile(path string) (*Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load reference rates: %w", err)
	}
	defer f.Close()
	return load(f, path, true)
}

// Load reads a rates file: a CSV whose header is exactly the columns of
// data/gpu_list_prices.csv, then one rate per line. It is strict: the first
// bad line fails the whole file with a *LoadError naming line and column,
// and so does a file of more than MaxRates rows.
// A line fails when it has the wrong number of columns, an empty provider,
// instance_type, region or source, a gpu_model with no engine GPU id, a
// gpus_per_instance that is not an integer in 1..1024, an unknown
// price_type, a usd_per_gpu_hour that is not a plain decimal ("6.88"), is
// not positive, rounds to zero or exceeds MaxPrice, a non-empty
// usd_per_instance_hour that is not a positive decimal, an as_of other than
// a valid YYYY-MM-DD date or "undated", a confidence other than high,
// medium or low, or the same provider, GPU, price_type, region and
// instance_type as an earlier line. A file without rows is an error too.
// Fields are trimmed of surrounding spaces; a UTF-8 byte order mark is
// ignored.
func Load(r io.Reader) (*Table, error) { return load(r, ratesName, true) }

// load reads a rates file; strictModels makes an unknown gpu_model an error
// instead of a skipped line.
func load(r io.Reader, name string, strictModels bool) (*Table, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1 // counted below, to report it our way
	cr.ReuseRecord = true
	fail := func(line int, col int, value, reason string) error {
		e := &LoadError{File: name, Line: line, Value: value, Reason: reason}
		if col >= 0 {
			e.Column = header[col]
		}
		return e
	}

	var rates []ReferenceRate
	seen := map[string]int{} // rate key → line
	for first := true; ; first = false {
		rec, err := cr.Read()
		if err == io.EOF {
			if first {
				return nil, fail(0, -1, "", "empty file, want a header line")
			}
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, fail(pe.StartLine, -1, "", pe.Err.Error())
			}
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		line, _ := cr.FieldPos(0)
		for i := range rec {
			rec[i] = strings.TrimSpace(rec[i])
		}
		if first {
			if len(rec) > 0 {
				rec[0] = strings.TrimPrefix(rec[0], "\uFEFF")
			}
			if !slices.Equal(rec, header) {
				return nil, fail(line, -1, "", fmt.Sprintf("header %q, want %q", strings.Join(rec, ","), strings.Join(header, ",")))
			}
			continue
		}
		if len(rec) != len(header) {
			return nil, fail(line, -1, "", fmt.Sprintf("%d columns, want %d", len(rec), len(header)))
		}
		rate, col, reason := parseRate(rec)
		if col == colModel && !strictModels {
			continue
		}
		if reason != "" {
			return nil, fail(line, col, rec[col], reason)
		}
		if len(rates) == MaxRates {
			return nil, fail(line, -1, "", fmt.Sprintf("more than %d rates", MaxRates))
		}
		k := rate.key()
		if prev, dup := seen[k]; dup {
			return nil, fail(line, -1, "", fmt.Sprintf("same provider, gpu_model, price_type, region and instance_type as line %d", prev))
		}
		seen[k] = line
		rates = append(rates, rate)
	}
	if len(rates) == 0 {
		return nil, fail(0, -1, "", "no rates")
	}
	return newTable(rates), nil
}

var plainDecimal = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)

// parseRate turns one record into a rate. On failure it returns the column
// at fault and the reason; reason is "" on success.
func parseRate(rec []string) (r ReferenceRate, col int, reason string) {
	r = ReferenceRate{
		ProviderName: rec[colProvider],
		Provider:     ProviderID(rec[colProvider]),
		Model:        rec[colModel],
		InstanceType: rec[colInstance],
		Region:       rec[colRegion],
		PriceType:    rec[colPriceType],
		AsOf:         rec[colAsOf],
		Source:       rec[colSource],
		Confidence:   rec[colConfidence],
		Note:         rec[colNote],
	}
	if r.Provider == "" {
		return r, colProvider, "no provider name"
	}
	var ok bool
	if r.GPU, ok = modelGPU[r.Model]; !ok {
		return r, colModel, "no engine GPU id for this model (known: " + strings.Join(knownModels(), ", ") + ")"
	}
	if r.InstanceType == "" {
		return r, colInstance, "empty"
	}
	n, err := strconv.Atoi(rec[colGPUs])
	if err != nil || n < 1 || n > maxGPUsPerInstance {
		return r, colGPUs, fmt.Sprintf("not an integer in 1..%d", maxGPUsPerInstance)
	}
	r.GPUsPerInstance = n
	if r.Region == "" {
		return r, colRegion, "empty"
	}
	if !priceTypes[r.PriceType] {
		return r, colPriceType, "unknown price type"
	}
	if s := rec[colInstancePrice]; s != "" {
		d, reason := parsePositiveDecimal(s)
		if reason != "" {
			return r, colInstancePrice, reason
		}
		r.USDPerInstanceHour = d.String()
	}
	d, reason := parsePositiveDecimal(rec[colGPUPrice])
	if reason != "" {
		return r, colGPUPrice, reason
	}
	// Round half-up to 4 places (decimal.Round rounds half away from zero,
	// the same thing for a positive number), then count ticks.
	ticks := d.Round(4).Shift(4)
	switch {
	case ticks.Sign() == 0:
		return r, colGPUPrice, "rounds to zero at 4 decimals"
	case ticks.GreaterThan(decimal.NewFromInt(MaxPrice)):
		return r, colGPUPrice, "above the maximum " + FormatPrice(MaxPrice)
	}
	r.USDPerGPUHour = ticks.IntPart()
	if r.AsOf != AsOfUndated {
		if _, err := time.Parse(time.DateOnly, r.AsOf); err != nil {
			return r, colAsOf, `not a date YYYY-MM-DD or "undated"`
		}
	}
	if r.Source == "" {
		return r, colSource, "empty"
	}
	switch r.Confidence {
	case "high", "medium", "low":
	default:
		return r, colConfidence, "not high, medium or low"
	}
	return r, 0, ""
}

// parsePositiveDecimal accepts digits with an optional fraction and no
// other characters, and a value above zero.
func parsePositiveDecimal(s string) (decimal.Decimal, string) {
	if strings.HasPrefix(s, "-") && plainDecimal.MatchString(s[1:]) {
		return decimal.Decimal{}, "must be positive"
	}
	if len(s) > 40 || !plainDecimal.MatchString(s) {
		return decimal.Decimal{}, "not a decimal"
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return decimal.Decimal{}, "not a decimal"
	}
	if d.Sign() <= 0 {
		return decimal.Decimal{}, "must be positive"
	}
	return d, ""
}

func knownModels() []string {
	ms := make([]string, 0, len(modelGPU))
	for m := range modelGPU {
		ms = append(ms, m)
	}
	slices.Sort(ms)
	return ms
}

// key identifies a rate within a table; two lines with the same key are a
// file error.
func (r ReferenceRate) key() string {
	return strings.Join([]string{r.Provider, r.GPU, r.PriceType, r.Region, r.InstanceType}, "\x00")
}

// compareRates is the canonical order: GPU, provider, price type, region,
// instance type. Keys are unique in a table, so the order is total.
func compareRates(a, b ReferenceRate) int {
	return cmp.Or(
		cmp.Compare(a.GPU, b.GPU),
		cmp.Compare(a.Provider, b.Provider),
		cmp.Compare(a.PriceType, b.PriceType),
		cmp.Compare(a.Region, b.Region),
		cmp.Compare(a.InstanceType, b.InstanceType),
	)
}

func newTable(rates []ReferenceRate) *Table {
	slices.SortFunc(rates, compareRates)
	t := &Table{
		rates:    rates,
		byGPU:    map[string][]ReferenceRate{},
		onDemand: map[[2]string]ReferenceRate{},
	}
	for i := 0; i < len(rates); {
		j := i
		for j < len(rates) && rates[j].GPU == rates[i].GPU {
			j++
		}
		t.byGPU[rates[i].GPU] = rates[i:j:j]
		i = j
	}
	for _, r := range rates {
		if r.PriceType != PriceOnDemand {
			continue
		}
		k := [2]string{r.GPU, r.Provider}
		if cur, ok := t.onDemand[k]; !ok || betterRate(r, cur, "") {
			t.onDemand[k] = r
		}
	}
	return t
}

// betterRate reports whether a is preferred over b as the rate a market in
// marketRegion ("" for none) compares against; see Choose for the rule.
// Each step runs only when the ones before tie: this is on the path of
// every /v1/prices render, and the region rank is a regexp match.
func betterRate(a, b ReferenceRate, marketRegion string) bool {
	if c := cmp.Compare(undatedRank(a), undatedRank(b)); c != 0 {
		return c < 0
	}
	if c := cmp.Compare(sameRegionRank(a, marketRegion), sameRegionRank(b, marketRegion)); c != 0 {
		return c < 0
	}
	if c := cmp.Compare(a.AsOf, b.AsOf); c != 0 { // YYYY-MM-DD: byte order is date order
		return c > 0 // newest first
	}
	return cmp.Or(
		cmp.Compare(regionRank(a.Region), regionRank(b.Region)),
		cmp.Compare(a.USDPerGPUHour, b.USDPerGPUHour),
		cmp.Compare(a.Region, b.Region),
		cmp.Compare(a.InstanceType, b.InstanceType),
	) < 0
}

func undatedRank(r ReferenceRate) int {
	if r.AsOf == AsOfUndated {
		return 1
	}
	return 0
}

func sameRegionRank(r ReferenceRate, marketRegion string) int {
	if marketRegion != "" && MarketRegion(r.Region) == marketRegion {
		return 0
	}
	return 1
}

var (
	usEast   = regexp.MustCompile(`^(us-east|eastus)`)      // AWS us-east-1, GCP us-east4, Azure eastus2
	usRegion = regexp.MustCompile(`^(us-|[a-z]*us[0-9]*$)`) // GCP us-central1, Azure westus2
)

// regionRank orders regions when no row is in the market's region: 0 US
// East, 1 other US, 2 the rest (other continents and descriptions such as
// "North America" or "all listed regions").
func regionRank(region string) int {
	region = strings.ToLower(region)
	switch {
	case usEast.MatchString(region):
		return 0
	case usRegion.MatchString(region):
		return 1
	}
	return 2
}

// Len returns the number of rates in the table.
func (t *Table) Len() int { return len(t.rates) }

// Rates returns every rate in canonical order (GPU, provider, price type,
// region, instance type). The slice is a copy.
func (t *Table) Rates() []ReferenceRate { return slices.Clone(t.rates) }

// ForGPU returns the rates of one engine GPU id, every price type, ordered
// by provider, price type, region, instance type; nil for an unknown GPU.
// The slice is a copy.
func (t *Table) ForGPU(gpu string) []ReferenceRate { return slices.Clone(t.byGPU[gpu]) }

// Providers returns the ids of the providers with at least one rate (of
// any price type) for the GPU, sorted; nil for an unknown GPU.
func (t *Table) Providers(gpu string) []string {
	var ps []string
	for _, r := range t.byGPU[gpu] {
		if len(ps) == 0 || ps[len(ps)-1] != r.Provider {
			ps = append(ps, r.Provider)
		}
	}
	return ps
}

// OnDemand returns the one on-demand rate of a provider for a GPU without
// regard to a market region: the rate the engine's reference pegs resolve
// against and quotes price GPU-hours at. ok is false when the provider has
// no on_demand row. provider is an id or a name ("aws", "AWS"). It is
// Choose(gpu, provider, PriceOnDemand, "").
func (t *Table) OnDemand(gpu, provider string) (ReferenceRate, bool) {
	r, ok := t.onDemand[[2]string{gpu, ProviderID(provider)}]
	return r, ok
}

// Choose returns the rate of one price type that a market of marketRegion
// (a market region such as "us-east"; "" for none) compares a provider
// against; ok is false when the provider has no row of that price type for
// the GPU. Only rows of exactly that price type qualify: an on-demand
// choice never takes a superseded, GPU-component, legacy, spot or
// capacity-block row. Among several rows the rule is, in order:
//
//  1. a dated row before an undated one (an undated row never wins over a
//     dated one, whatever its region);
//  2. a row whose provider region maps to marketRegion (see MarketRegion)
//     before any other;
//  3. the newest as_of;
//  4. a US East region before another US region before anything else;
//  5. the lowest USDPerGPUHour;
//  6. region, then instance type, in byte order, so the choice is total.
func (t *Table) Choose(gpu, provider, priceType, marketRegion string) (ReferenceRate, bool) {
	if !isProviderID(provider) {
		provider = ProviderID(provider)
	}
	var best ReferenceRate
	found := false
	for _, r := range t.byGPU[gpu] {
		if r.Provider != provider || r.PriceType != priceType {
			continue
		}
		if !found || betterRate(r, best, marketRegion) {
			best, found = r, true
		}
	}
	return best, found
}

// Stale reports whether the rate is older than limit at now: its as_of day
// began more than limit before now. An undated rate is always stale (its
// age cannot be shown), and a limit of zero or less makes nothing stale.
func (r ReferenceRate) Stale(now time.Time, limit time.Duration) bool {
	if limit <= 0 {
		return false
	}
	d, ok := asOfDay(r.AsOf)
	if !ok {
		return true
	}
	return now.Sub(d) > limit
}

// asOfDay parses a YYYY-MM-DD as_of (checked by Load) without time.Parse,
// which costs more than the rest of a reference row's rendering.
func asOfDay(s string) (time.Time, bool) {
	if len(s) != len(time.DateOnly) || s[4] != '-' || s[7] != '-' {
		return time.Time{}, false
	}
	y, err1 := strconv.Atoi(s[:4])
	m, err2 := strconv.Atoi(s[5:7])
	d, err3 := strconv.Atoi(s[8:])
	if err1 != nil || err2 != nil || err3 != nil {
		return time.Time{}, false
	}
	return time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC), true
}

// Encode returns the table as a rates file in canonical form: the header,
// then every rate in the order of Rates, with usd_per_gpu_hour written as
// FormatPrice of its ticks. Load(Encode()) gives an equal table, and equal
// tables encode to equal bytes, so the encoding can travel in a journaled
// command and be hashed.
func (t *Table) Encode() []byte {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write(header) // a bytes.Buffer does not fail
	for _, r := range t.rates {
		_ = w.Write([]string{
			r.ProviderName, r.Model, r.InstanceType, strconv.Itoa(r.GPUsPerInstance),
			r.Region, r.PriceType, r.USDPerInstanceHour, FormatPrice(r.USDPerGPUHour),
			r.AsOf, r.Source, r.Confidence, r.Note,
		})
	}
	w.Flush()
	return buf.Bytes()
}

// Hash returns the hex SHA-256 of Encode: equal for equal tables.
func (t *Table) Hash() string {
	sum := sha256.Sum256(t.Encode())
	return hex.EncodeToString(sum[:])
}
