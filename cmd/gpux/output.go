package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shopspring/decimal"

	"github.com/gpux/gpux/client"
)

// emit prints v as indented JSON with --json, otherwise whatever table
// draws through a tabwriter.
func (a *app) emit(g *globals, v any, table func(w io.Writer)) error {
	if g.json {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

// row writes tab-separated cells and a newline.
func row(w io.Writer, cells ...any) {
	for i, c := range cells {
		if i > 0 {
			io.WriteString(w, "\t")
		}
		fmt.Fprint(w, c)
	}
	io.WriteString(w, "\n")
}

// opt shows a nullable decimal, "-" for null.
func opt(p *string) string {
	if p == nil {
		return "-"
	}
	return *p
}

const timeLayout = "2006-01-02 15:04"

// when shows a time in UTC to the minute, "-" for none.
func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(timeLayout)
}

func whenp(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return when(*t)
}

// percent shows a fraction ("0.6213") as a percentage ("62.1%").
func percent(frac *string) string {
	if frac == nil {
		return "-"
	}
	d, err := decimal.NewFromString(*frac)
	if err != nil {
		return *frac
	}
	return d.Shift(2).StringFixed(1) + "%"
}

// staleMark follows a reference rate whose row is stale: older than the
// server's staleness limit (--rates-stale-after), or undated. The legend
// under the table says so.
const (
	staleMark   = "*"
	staleLegend = "* stale: the rate is older than the server's staleness limit, or undated"
)

// cloudProviders are the clouds whose on-demand rate `prices` compares with.
var cloudProviders = []string{"aws", "azure", "gcp"}

// bestCloud returns the cheapest of AWS, Azure and Google Cloud's
// on-demand rates for a market's GPU, ok false when there is none. Each
// provider's rate is the row the server's discounts use
// (discount_basis); a server without that map falls back to the provider's
// cheapest on-demand row.
func bestCloud(r client.PriceRow) (best client.Reference, ok bool) {
	var bestRate decimal.Decimal
	for _, p := range cloudProviders {
		ref, found := onDemand(r, p)
		if !found {
			continue
		}
		d, err := decimal.NewFromString(ref.USDPerGPUHour)
		if err != nil {
			continue
		}
		if !ok || d.LessThan(bestRate) {
			best, bestRate, ok = ref, d, true
		}
	}
	return best, ok
}

// onDemand is provider's on-demand row behind the discount.
func onDemand(r client.PriceRow, provider string) (client.Reference, bool) {
	if b, ok := r.DiscountBasis[provider]; ok && b.OnDemand != nil {
		return *b.OnDemand, true
	}
	var best client.Reference
	var bestRate decimal.Decimal
	found := false
	for _, ref := range r.Reference {
		if ref.Provider != provider || ref.PriceType != "on_demand" {
			continue
		}
		d, err := decimal.NewFromString(ref.USDPerGPUHour)
		if err == nil && (!found || d.LessThan(bestRate)) {
			best, bestRate, found = ref, d, true
		}
	}
	return best, found
}

// hours is the length of [start, end) in whole hours.
func hours(start, end time.Time) int64 { return int64(end.Sub(start) / time.Hour) }

// kv writes "key  value" lines.
func kv(w io.Writer, pairs ...string) {
	for i := 0; i+1 < len(pairs); i += 2 {
		row(w, pairs[i]+":", pairs[i+1])
	}
}

func roles(r []string) string { return strings.Join(r, ",") }

// fills writes a fills table, nothing when there are none.
func fills(w io.Writer, fs []client.Fill) {
	if len(fs) == 0 {
		return
	}
	row(w)
	row(w, "FILL", "QTY", "PRICE", "START", "END")
	for _, f := range fs {
		row(w, f.ID, f.Quantity, f.Price, when(f.Start), when(f.End))
	}
}
