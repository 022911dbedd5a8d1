package api_test

import (
	"encoding/json"
	"testing"

	"github.com/gpux/gpux/client"
	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/pricing"
)

// TestPricesCoverEveryMarket: every catalogue market has its AWS, Azure and
// GCP reference rows, with as_of and source, wherever the data has them.
func TestPricesCoverEveryMarket(t *testing.T) {
	e := newEnv(t, nil)
	rows, err := e.anon.Prices(bg)
	if err != nil {
		t.Fatal(err)
	}
	byMarket := map[string]client.PriceRow{}
	for _, r := range rows {
		byMarket[r.Market] = r
	}
	table := pricing.Default()
	for _, m := range engine.Catalogue(engine.DefaultGPUs, engine.DefaultRegions) {
		r, ok := byMarket[m.ID]
		if !ok {
			t.Errorf("%s: no row", m.ID)
			continue
		}
		for _, provider := range []string{"aws", "azure", "gcp"} {
			var want []pricing.ReferenceRate
			for _, rr := range table.ForGPU(m.GPU) {
				if rr.Provider == provider {
					want = append(want, rr)
				}
			}
			var got []client.Reference
			for _, ref := range r.Reference {
				if ref.Provider == provider {
					got = append(got, ref)
				}
			}
			if len(got) != len(want) {
				t.Errorf("%s %s: %d reference rows, the data has %d", m.ID, provider, len(got), len(want))
				continue
			}
			for i, ref := range got {
				if ref.Source == "" || ref.USDPerGPUHour == "" || ref.PriceType == "" {
					t.Errorf("%s %s row %d: %+v lacks source, price or type", m.ID, provider, i, ref)
				}
				if wantAsOf := want[i].AsOf; wantAsOf != pricing.AsOfUndated && ref.AsOf != wantAsOf {
					t.Errorf("%s %s row %d: as_of %q, want %q", m.ID, provider, i, ref.AsOf, wantAsOf)
				}
			}
			_, hasOnDemand := table.OnDemand(m.GPU, provider)
			if d, present := r.DiscountVsReference[provider]; present != hasOnDemand || (present && d != nil) {
				t.Errorf("%s %s: discount %v (present %v), want present=%v and null with no market price", m.ID, provider, d, present, hasOnDemand)
			}
		}
	}
}

// TestPricesFeedAfterTrade: the prices channel pushes an update once a
// trade sets a market's last price.
func TestPricesFeedAfterTrade(t *testing.T) {
	e := newEnv(t, nil)
	owner := e.account("owner", "", client.RoleOwner)
	buyer := e.account("buyer", "1000", client.RoleBuyer)
	feed := subscribe(t, e.anon, "prices")
	feed.next(is(client.MsgSnapshot, "prices"))
	if _, err := owner.PlaceListing(bg, client.ListingRequest{Market: "l4.us-west", Quantity: 2, Start: hour(0), End: hour(10), ReservePrice: client.FixedPrice("0.50")}); err != nil {
		t.Fatal(err)
	}
	if _, err := buyer.PlaceBid(bg, client.BidRequest{Type: client.BidReserved, Market: "l4.us-west", Quantity: 2, Start: hour(2), End: hour(4), LimitPrice: client.FixedPrice("0.60")}); err != nil {
		t.Fatal(err)
	}
	feed.next(func(m client.Message) bool {
		if m.Type != client.MsgUpdate || m.Channel != "prices" {
			return false
		}
		var rows []client.PriceRow
		if err := json.Unmarshal(m.Data, &rows); err != nil {
			t.Fatalf("prices update: %v", err)
		}
		for _, r := range rows {
			if r.Market == "l4.us-west" && r.LastTradePrice != nil {
				if *r.LastTradePrice != "0.50" {
					t.Fatalf("last trade %s, want 0.50 (the listing is the maker)", *r.LastTradePrice)
				}
				return true
			}
		}
		return false
	})
}
