package importer

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/gpux/gpux/pricing"
)

// azureItem is one price of a Retail Prices API page.
type azureItem struct {
	CurrencyCode       string      `json:"currencyCode"`
	RetailPrice        json.Number `json:"retailPrice"`
	ArmRegionName      string      `json:"armRegionName"`
	ArmSkuName         string      `json:"armSkuName"`
	SkuName            string      `json:"skuName"`
	ProductName        string      `json:"productName"`
	ServiceName        string      `json:"serviceName"`
	UnitOfMeasure      string      `json:"unitOfMeasure"`
	Type               string      `json:"type"`
	EffectiveStartDate string      `json:"effectiveStartDate"`
}

// Azure reads one page of the Azure Retail Prices API
// (prices.azure.com/api/retail/prices, {"Items": [...], "NextPageLink":
// ...}); call it once per page file and concatenate the rows. It keeps the
// Linux pay-as-you-go ("Consumption", not Windows, skuName without "Spot"
// or "Low Priority") and Spot ("Consumption", skuName with "Spot") hourly
// prices of the Virtual Machines of the mapping table, in USD; reservation,
// savings-plan, DevTest and Low Priority prices are skipped. as_of is each
// item's effectiveStartDate (the day that price took effect: Azure pages
// carry no publication date); name goes into source. A page in another
// currency is an error, not a silent conversion.
func Azure(name string, r io.Reader) ([]Row, error) {
	s := newStream(name, r)
	var rows []Row
	items := false
	i := 0
	err := s.object("page", func(key string) error {
		if key != "Items" {
			return s.skip()
		}
		items = true
		return s.array("Items", func() error {
			var it azureItem
			if err := s.decode(&it); err != nil {
				return err
			}
			row, ok, err := azureRow(name, it)
			if err != nil {
				return s.errorf("Items[%d]: %v", i, err)
			}
			i++
			if ok {
				rows = append(rows, row)
			}
			return nil
		})
	})
	if err == nil {
		err = s.end()
	}
	if err != nil {
		return nil, fmt.Errorf("azure retail prices page %w", err)
	}
	if !items {
		return nil, fmt.Errorf("azure retail prices page %s: no Items array", name)
	}
	return rows, nil
}

func azureRow(name string, it azureItem) (Row, bool, error) {
	in, ok := azureInstances[it.ArmSkuName]
	if !ok || it.ServiceName != "Virtual Machines" || it.Type != "Consumption" || it.UnitOfMeasure != "1 Hour" ||
		strings.Contains(it.ProductName, "Windows") || strings.Contains(it.SkuName, "Low Priority") {
		return Row{}, false, nil
	}
	if it.CurrencyCode != "" && it.CurrencyCode != "USD" {
		return Row{}, false, fmt.Errorf("currencyCode %q: only USD pages are imported", it.CurrencyCode)
	}
	p, err := decimal.NewFromString(string(it.RetailPrice))
	if err != nil {
		return Row{}, false, fmt.Errorf("retailPrice %q is not a number", it.RetailPrice)
	}
	if p.Sign() <= 0 {
		return Row{}, false, nil
	}
	asOf, err := dateOf(it.EffectiveStartDate)
	if err != nil {
		return Row{}, false, fmt.Errorf("effectiveStartDate: %v", err)
	}
	if it.ArmRegionName == "" {
		return Row{}, false, fmt.Errorf("%s: empty armRegionName", it.ArmSkuName)
	}
	row := Row{
		Provider: "Azure", Model: in.model, InstanceType: it.ArmSkuName, GPUsPerInstance: in.gpus, Region: it.ArmRegionName,
		PriceType: pricing.PriceOnDemand, InstancePrice: p, AsOf: asOf, Confidence: "high",
		Source: "Azure Retail Prices API page " + name + " (effectiveStartDate " + it.EffectiveStartDate + ")",
		Note:   "Linux pay-as-you-go; " + it.ProductName + " " + it.SkuName,
	}
	if strings.Contains(it.SkuName, "Spot") {
		row.PriceType, row.Confidence, row.Note = pricing.PriceSpot, "medium", "Linux Spot (volatile); "+it.ProductName+" "+it.SkuName
	}
	return row, true, nil
}

// AzureFetched dates Azure rows by the day their pages were fetched: the
// Retail Prices API says since when a price is in effect
// (effectiveStartDate, the readers' as_of), not that it still is, so a
// price unchanged for years would show as stale. Each row's as_of becomes
// day (YYYY-MM-DD) and its note keeps the effective date. A day before a
// row's effective date is an error.
func AzureFetched(rows []Row, day string) ([]Row, error) {
	if _, err := time.Parse(time.DateOnly, day); err != nil {
		return nil, fmt.Errorf("fetch date %q: want YYYY-MM-DD", day)
	}
	out := make([]Row, len(rows))
	for i, r := range rows {
		if day < r.AsOf {
			return nil, fmt.Errorf("fetch date %s is before %s %s's effectiveStartDate %s", day, r.InstanceType, r.Region, r.AsOf)
		}
		r.Note += "; in effect since " + r.AsOf + ", fetched " + day
		r.AsOf = day
		out[i] = r
	}
	return out, nil
}
