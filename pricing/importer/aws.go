package importer

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/shopspring/decimal"

	"github.com/gpux/gpux/pricing"
)

// awsProduct is one entry of the offer file's products map.
type awsProduct struct {
	ProductFamily string            `json:"productFamily"`
	Attributes    map[string]string `json:"attributes"`
}

// awsTerm is one offer term of a SKU under terms.OnDemand.
type awsTerm struct {
	PriceDimensions map[string]struct {
		Unit         string                 `json:"unit"`
		PricePerUnit map[string]json.Number `json:"pricePerUnit"`
	} `json:"priceDimensions"`
}

type awsSKU struct {
	instanceType, region string
}

// AWS reads an Amazon EC2 bulk offer file (the Price List's
// offers/v1.0/aws/AmazonEC2/current/index.json, or one region's file) and
// returns the on-demand price of every instance type of the mapping table
// in every region: Linux, shared tenancy, no pre-installed software,
// capacitystatus "Used" (not reservation or dedicated-host SKUs), from the
// SKU's hourly price dimension in USD under terms.OnDemand. as_of is the
// file's publicationDate; name (the file's base name) goes into source.
//
// The file is read token by token: the products and terms of other
// instance types are skipped as they stream past, and the Reserved terms
// are skipped whole, so memory stays small for a file of gigabytes.
// Products come before terms in AWS's files; a file with terms first is
// read too, keeping each on-demand SKU's price until products arrive.
func AWS(name string, r io.Reader) ([]Row, error) {
	s := newStream(name, r)
	var offerCode, version, published string
	skus := map[string]awsSKU{}            // matching products
	prices := map[string]decimal.Decimal{} // SKU → hourly USD price
	productsSeen := false
	err := s.object("offer file", func(key string) error {
		switch key {
		case "offerCode", "version", "publicationDate":
			var v string
			if err := s.decode(&v); err != nil {
				return err
			}
			switch key {
			case "offerCode":
				offerCode = v
			case "version":
				version = v
			default:
				published = v
			}
			return nil
		case "products":
			productsSeen = true
			return s.object("products", func(sku string) error {
				var p awsProduct
				if err := s.decode(&p); err != nil {
					return err
				}
				if it, ok := awsMatch(p); ok {
					skus[sku] = it
				}
				return nil
			})
		case "terms":
			return s.object("terms", func(kind string) error {
				if kind != "OnDemand" {
					return s.skip()
				}
				return s.object("terms.OnDemand", func(sku string) error {
					if productsSeen {
						if _, ok := skus[sku]; !ok {
							return s.skip()
						}
					}
					var terms map[string]awsTerm
					if err := s.decode(&terms); err != nil {
						return err
					}
					p, ok, err := awsHourly(terms)
					if err != nil {
						return s.errorf("terms.OnDemand[%s]: %v", sku, err)
					}
					if ok {
						prices[sku] = p
					}
					return nil
				})
			})
		}
		return s.skip()
	})
	if err == nil {
		err = s.end()
	}
	if err != nil {
		return nil, fmt.Errorf("aws offer file %w", err)
	}
	if offerCode != "AmazonEC2" {
		return nil, fmt.Errorf("aws offer file %s: offerCode %q, want AmazonEC2", name, offerCode)
	}
	if published == "" {
		return nil, fmt.Errorf("aws offer file %s: no publicationDate", name)
	}
	asOf, err := dateOf(published)
	if err != nil {
		return nil, fmt.Errorf("aws offer file %s: publicationDate: %v", name, err)
	}
	source := fmt.Sprintf("AWS Price List AmazonEC2 offer file %s (version %s, published %s)", name, version, published)
	var rows []Row
	for _, sku := range slices.Sorted(maps.Keys(skus)) {
		p, ok := prices[sku]
		if !ok {
			continue
		}
		it := skus[sku]
		in := awsInstances[it.instanceType]
		rows = append(rows, Row{
			Provider: "AWS", Model: in.model, InstanceType: it.instanceType, GPUsPerInstance: in.gpus, Region: it.region,
			PriceType: pricing.PriceOnDemand, InstancePrice: p, AsOf: asOf, Source: source, Confidence: "high",
			Note: "Linux, shared tenancy, on-demand; SKU " + sku,
		})
	}
	return rows, nil
}

// awsMatch reports whether a product is the plain Linux on-demand SKU of
// an instance type of the mapping table, and where.
func awsMatch(p awsProduct) (awsSKU, bool) {
	a := p.Attributes
	it := a["instanceType"]
	if _, ok := awsInstances[it]; !ok || p.ProductFamily != "Compute Instance" {
		return awsSKU{}, false
	}
	if a["operatingSystem"] != "Linux" || a["tenancy"] != "Shared" || a["preInstalledSw"] != "NA" || a["capacitystatus"] != "Used" {
		return awsSKU{}, false
	}
	if lm := a["licenseModel"]; lm != "" && lm != "No License required" {
		return awsSKU{}, false
	}
	if mo := a["marketoption"]; mo != "" && mo != "OnDemand" {
		return awsSKU{}, false
	}
	if a["regionCode"] == "" {
		return awsSKU{}, false
	}
	return awsSKU{instanceType: it, region: a["regionCode"]}, true
}

// awsHourly returns a SKU's on-demand hourly USD price: the price
// dimension with unit "Hrs" (the first by offer term and rate code when
// there are several); ok is false when there is none or it is zero.
func awsHourly(terms map[string]awsTerm) (decimal.Decimal, bool, error) {
	for _, tc := range slices.Sorted(maps.Keys(terms)) {
		dims := terms[tc].PriceDimensions
		for _, rc := range slices.Sorted(maps.Keys(dims)) {
			d := dims[rc]
			if d.Unit != "Hrs" {
				continue
			}
			usd, ok := d.PricePerUnit["USD"]
			if !ok {
				continue
			}
			p, err := decimal.NewFromString(string(usd))
			if err != nil {
				return decimal.Decimal{}, false, fmt.Errorf("price %q is not a decimal", usd)
			}
			if p.Sign() <= 0 {
				return decimal.Decimal{}, false, nil
			}
			return p, true, nil
		}
	}
	return decimal.Decimal{}, false, nil
}
