package importer

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/gpux/gpux/pricing"
)

// gcpSKUJSON is one SKU of a Cloud Billing Catalog page
// (services/6F81-5844-456A/skus: {"skus": [...], "nextPageToken": ...}).
type gcpSKUJSON struct {
	SkuID       string `json:"skuId"`
	Description string `json:"description"`
	Category    struct {
		ResourceFamily string `json:"resourceFamily"`
		ResourceGroup  string `json:"resourceGroup"`
		UsageType      string `json:"usageType"`
	} `json:"category"`
	ServiceRegions []string         `json:"serviceRegions"`
	PricingInfo    []gcpPricingInfo `json:"pricingInfo"`
}

// gcpSKU is a SKU the composition table uses, as kept from the pages.
type gcpSKU struct {
	id, file  string
	component string // the description without region and Spot words
	priceType string // pricing.PriceOnDemand or pricing.PriceSpot
	regions   []string
	unit      string
	price     decimal.Decimal // per unit
	effective string          // RFC 3339
}

// GCPCatalog gathers the Compute Engine SKUs that GPU machine prices are
// composed of, across the pages of the catalog, then composes them (Rows).
type GCPCatalog struct {
	skus  []gcpSKU
	files []string
}

// gcpComponents are the SKU descriptions the composition table names, with
// the unit each must be priced in.
func gcpComponents() map[string]string {
	m := map[string]string{localSSDSKU: "GiBy.mo"}
	for _, mt := range gcpMachines {
		m[mt.gpuSKU], m[mt.coreSKU], m[mt.ramSKU] = "h", "h", "GiBy.h"
	}
	return m
}

// Read reads one page file of Compute Engine SKUs and keeps the on-demand
// ("OnDemand") and Spot ("Preemptible") SKUs the composition table uses;
// commitment and other usage types are skipped. A SKU priced in another
// currency or unit than the table expects is an error.
func (c *GCPCatalog) Read(name string, r io.Reader) error {
	s := newStream(name, r)
	comps := gcpComponents()
	found := false
	i := 0
	err := s.object("page", func(key string) error {
		if key != "skus" {
			return s.skip()
		}
		found = true
		return s.array("skus", func() error {
			var j gcpSKUJSON
			if err := s.decode(&j); err != nil {
				return err
			}
			sku, ok, err := gcpKeep(name, j, comps)
			if err != nil {
				return s.errorf("skus[%d] %s: %v", i, j.SkuID, err)
			}
			i++
			if ok {
				c.skus = append(c.skus, sku)
			}
			return nil
		})
	})
	if err == nil {
		err = s.end()
	}
	if err != nil {
		return fmt.Errorf("gcp catalog page %w", err)
	}
	if !found {
		return fmt.Errorf("gcp catalog page %s: no skus array", name)
	}
	c.files = append(c.files, name)
	return nil
}

// gcpComponent strips the region and Spot words from a SKU description:
// "Spot Preemptible A3 Instance Core running in Americas" → "A3 Instance
// Core", "Nvidia H100 80GB GPU attached to Spot Preemptible VMs running in
// Americas" → "Nvidia H100 80GB GPU", "SSD backed Local Storage in Iowa" →
// "SSD backed Local Storage". ok is false for a description of neither
// form.
func gcpComponent(desc string) (string, bool) {
	d := strings.TrimPrefix(desc, "Spot Preemptible ")
	d = strings.Replace(d, " attached to Spot Preemptible VMs", "", 1)
	for _, sep := range []string{" running in ", " in "} {
		if i := strings.Index(d, sep); i > 0 {
			return d[:i], true
		}
	}
	return "", false
}

func gcpKeep(file string, j gcpSKUJSON, comps map[string]string) (gcpSKU, bool, error) {
	var pt string
	switch j.Category.UsageType {
	case "OnDemand":
		pt = pricing.PriceOnDemand
	case "Preemptible":
		pt = pricing.PriceSpot
	default:
		return gcpSKU{}, false, nil
	}
	comp, ok := gcpComponent(j.Description)
	if !ok {
		return gcpSKU{}, false, nil
	}
	unit, ok := comps[comp]
	if !ok || len(j.PricingInfo) == 0 {
		return gcpSKU{}, false, nil
	}
	// The newest pricing; its last tier is the rate past any free usage.
	pi := slices.MaxFunc(j.PricingInfo, func(a, b gcpPricingInfo) int { return cmp.Compare(a.EffectiveTime, b.EffectiveTime) })
	pe := pi.PricingExpression
	if pe.UsageUnit != unit {
		return gcpSKU{}, false, fmt.Errorf("%q priced per %q, want %q", j.Description, pe.UsageUnit, unit)
	}
	if len(pe.TieredRates) == 0 {
		return gcpSKU{}, false, fmt.Errorf("%q has no tieredRates", j.Description)
	}
	up := pe.TieredRates[len(pe.TieredRates)-1].UnitPrice
	if up.CurrencyCode != "" && up.CurrencyCode != "USD" {
		return gcpSKU{}, false, fmt.Errorf("currencyCode %q: only USD is imported", up.CurrencyCode)
	}
	units, err := decimal.NewFromString(cmp.Or(string(up.Units), "0"))
	if err != nil {
		return gcpSKU{}, false, fmt.Errorf("units %q is not an integer", up.Units)
	}
	nanos, err := decimal.NewFromString(cmp.Or(string(up.Nanos), "0"))
	if err != nil {
		return gcpSKU{}, false, fmt.Errorf("nanos %q is not an integer", up.Nanos)
	}
	price := units.Add(nanos.Shift(-9))
	if slices.Contains(j.ServiceRegions, "") {
		return gcpSKU{}, false, fmt.Errorf("%q lists an empty service region", j.Description)
	}
	if _, err := dateOf(pi.EffectiveTime); err != nil {
		return gcpSKU{}, false, fmt.Errorf("effectiveTime: %v", err)
	}
	return gcpSKU{id: j.SkuID, file: file, component: comp, priceType: pt, regions: j.ServiceRegions, unit: unit,
		price: price, effective: pi.EffectiveTime}, true, nil
}

// gcpPricingInfo is one dated pricing of a SKU.
type gcpPricingInfo struct {
	EffectiveTime     string `json:"effectiveTime"`
	PricingExpression struct {
		UsageUnit   string `json:"usageUnit"`
		TieredRates []struct {
			StartUsageAmount json.Number `json:"startUsageAmount"`
			UnitPrice        struct {
				CurrencyCode string      `json:"currencyCode"`
				Units        json.Number `json:"units"`
				Nanos        json.Number `json:"nanos"`
			} `json:"unitPrice"`
		} `json:"tieredRates"`
	} `json:"pricingExpression"`
}

// find returns the SKU of a component, price type and region: the newest
// by effectiveTime when several match.
func (c *GCPCatalog) find(component, priceType, region string) (gcpSKU, bool) {
	var best gcpSKU
	ok := false
	for _, s := range c.skus {
		if s.component == component && s.priceType == priceType && slices.Contains(s.regions, region) &&
			(!ok || s.effective > best.effective) {
			best, ok = s, true
		}
	}
	return best, ok
}

// Rows composes every machine type of the table in every region where all
// its SKUs are priced, for on-demand and Spot:
//
//	gpus × GPU SKU + vcpus × core SKU + memGiB × RAM SKU + localSSDGiB × SSD SKU / 730
//
// (the SSD term only for machine types that bundle Local SSD). as_of is
// the oldest effectiveTime of the SKUs used; source names the page files
// and the SKU ids, note the composition.
func (c *GCPCatalog) Rows() []Row {
	var rows []Row
	for _, mt := range gcpMachines {
		for _, pt := range []string{pricing.PriceOnDemand, pricing.PriceSpot} {
			regions := map[string]bool{}
			for _, s := range c.skus {
				if s.component == mt.gpuSKU && s.priceType == pt {
					for _, r := range s.regions {
						regions[r] = true
					}
				}
			}
			for _, region := range slices.Sorted(maps.Keys(regions)) {
				if row, ok := c.compose(mt, pt, region); ok {
					rows = append(rows, row)
				}
			}
		}
	}
	return rows
}

func (c *GCPCatalog) compose(mt gcpMachine, pt, region string) (Row, bool) {
	type part struct {
		sku gcpSKU
		qty decimal.Decimal
		of  string
	}
	parts := []part{{qty: decimal.NewFromInt(int64(mt.gpus)), of: mt.gpuSKU}, {qty: decimal.NewFromInt(mt.vcpus), of: mt.coreSKU},
		{qty: decimal.NewFromInt(mt.memGiB), of: mt.ramSKU}}
	if mt.localSSDGiB > 0 {
		parts = append(parts, part{qty: decimal.NewFromInt(mt.localSSDGiB).DivRound(decimal.NewFromInt(hoursPerMonth), 12), of: localSSDSKU})
	}
	total := decimal.Zero
	asOf := ""
	var ids, terms, files []string
	for i := range parts {
		p := &parts[i]
		s, ok := c.find(p.of, pt, region)
		if !ok {
			return Row{}, false
		}
		p.sku = s
		total = total.Add(s.price.Mul(p.qty))
		d, _ := dateOf(s.effective) // checked in gcpKeep
		if asOf == "" || d < asOf {
			asOf = d
		}
		ids = append(ids, s.id)
		if !slices.Contains(files, s.file) {
			files = append(files, s.file)
		}
		q := p.qty.String()
		if p.of == localSSDSKU {
			q = fmt.Sprintf("%d GiB / %d h", mt.localSSDGiB, hoursPerMonth)
		}
		terms = append(terms, fmt.Sprintf("%s × %s %s", q, p.of, s.price.String()))
	}
	total = total.Round(6)
	conf := "high"
	if pt == pricing.PriceSpot {
		conf = "medium"
	}
	return Row{
		Provider: "GCP", Model: mt.model, InstanceType: mt.machineType, GPUsPerInstance: mt.gpus, Region: region, PriceType: pt,
		InstancePrice: total, AsOf: asOf, Confidence: conf,
		Source: "Google Cloud Billing Catalog, Compute Engine SKUs " + strings.Join(files, " ") + " (SKU " + strings.Join(ids, ", ") + ")",
		Note:   strings.Join(terms, " + "),
	}, true
}
