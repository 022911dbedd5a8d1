package pricing

import (
	"maps"
	"slices"
	"strings"
)

// marketRegions is the documented table (docs/PRICES.md) of which
// provider regions count as a market region's own. Provider region names
// do not collide across AWS, Azure and Google Cloud, so one list per
// market region serves every provider. Regions that belong to no market
// region (us-central1, centralus, Asia, CoreWeave's "North America",
// Lambda's "all listed regions") are compared only when a provider has no
// row in the market's region.
var marketRegions = map[string][]string{
	"us-east": {
		"us-east-1", "us-east-2", // AWS: N. Virginia, Ohio
		"eastus", "eastus2", // Azure: Virginia
		"us-east1", "us-east4", "us-east5", // Google Cloud: S. Carolina, N. Virginia, Columbus
	},
	"us-west": {
		"us-west-1", "us-west-2", // AWS: N. California, Oregon
		"westus", "westus2", "westus3", // Azure: California, Washington, Arizona
		"us-west1", "us-west2", "us-west3", "us-west4", // Google Cloud: Oregon, Los Angeles, Salt Lake City, Las Vegas
	},
	"eu-west": {
		"eu-west-1", "eu-west-2", "eu-west-3", // AWS: Ireland, London, Paris
		"westeurope", "northeurope", "uksouth", "francecentral", // Azure: Netherlands, Ireland, London, Paris
		"europe-west1", "europe-west2", "europe-west4", "europe-west9", // Google Cloud: Belgium, London, Netherlands, Paris
	},
}

// providerRegions maps a provider region name to its market region.
var providerRegions = func() map[string]string {
	m := map[string]string{}
	for mr, prs := range marketRegions {
		for _, pr := range prs {
			m[pr] = mr
		}
	}
	return m
}()

// MarketRegion returns the market region ("us-east", "us-west",
// "eu-west") a provider region belongs to, or "" when it belongs to none.
// The match ignores case and surrounding spaces.
func MarketRegion(pr string) string {
	if mr, ok := providerRegions[pr]; ok { // the common case: no allocation
		return mr
	}
	return providerRegions[strings.ToLower(strings.TrimSpace(pr))]
}

// ProviderRegions returns the provider regions mapped to a market region,
// sorted; nil for a market region with none.
func ProviderRegions(marketRegion string) []string {
	prs := slices.Clone(marketRegions[marketRegion])
	slices.Sort(prs)
	return prs
}

// MarketRegions returns the market regions the table maps, sorted.
func MarketRegions() []string { return slices.Sorted(maps.Keys(marketRegions)) }
