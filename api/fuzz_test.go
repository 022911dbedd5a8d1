package api

import (
	"testing"
	"time"

	"github.com/gpux/gpux/engine"
)

func fuzzChecker() checker {
	markets := map[string]bool{}
	for _, m := range engine.Catalogue(engine.DefaultGPUs, engine.DefaultRegions) {
		markets[m.ID] = true
	}
	return checker{now: time.Date(2026, 11, 28, 20, 30, 0, 0, time.UTC), hasMarket: func(id string) bool { return markets[id] }}
}

// checkRejection asserts that a rejection is a well-formed 4xx problem.
func checkRejection(t *testing.T, p *Problem) {
	t.Helper()
	if p.Status < 400 || p.Status > 499 {
		t.Fatalf("rejection with status %d: %+v", p.Status, p)
	}
	if st, ok := statusOf[p.Code]; !ok || st != p.Status {
		t.Fatalf("code %q not in the status table (or status %d differs): %+v", p.Code, p.Status, p)
	}
	if p.Type == "" || p.Title == "" || p.Detail == "" {
		t.Fatalf("incomplete problem: %+v", p)
	}
}

var fuzzSeeds = []string{
	`{"type":"reserved","market":"h100-sxm.us-east","quantity":2,"start":"2026-11-29T00:00:00Z","end":"2026-11-29T04:00:00Z","limit_price":"2.50","min_quantity":1,"expires_at":"2026-11-28T23:00:00Z","client_order_id":"a"}`,
	`{"type":"spot","market":"h100-sxm.us-east","quantity":1,"limit_price":{"peg":"reference","provider":"aws","discount":"0.40","cap":"3.00"}}`,
	`{"type":"reserved","market":"h200.eu-west","quantity":1,"start":"2026-11-29T00:00:00Z","end":"2026-11-29T01:00:00Z","limit_price":{"peg":"spot","offset":"-0.10","floor":"1"}}`,
	`{"market":"l4.us-west","quantity":3,"start":"2026-11-28T20:00:00Z","end":"2026-12-01T00:00:00Z","reserve_price":"1.00","spot_price_floor":"0.5"}`,
	`{"market":"l4.us-west","quantity":3,"start":"2026-11-28T20:00:00Z","end":"2026-12-01T00:00:00Z","reserve_price":{"peg":"spot","offset":"0.05"},"spot_price_floor":{"peg":"reference","provider":"gcp","discount":"0.7"}}`,
	`{"type":`, `[]`, `null`, `""`, `{"quantity":1e400}`, `{"limit_price":{"peg":{}}}`, `{"start":"2026-11-29T00:00:00.5Z"}`,
}

func FuzzDecodeBid(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	k := fuzzChecker()
	f.Fuzz(func(t *testing.T, body []byte) {
		in, p := k.decodeBid(body)
		if p != nil {
			checkRejection(t, p)
			return
		}
		c := in.command()
		if c.Quantity < 1 || c.Quantity > engine.MaxQuantity || (c.BidType != engine.Reserved && c.BidType != engine.Spot) {
			t.Fatalf("accepted an invalid bid: %+v", c)
		}
		if c.PricePeg.Kind == engine.PegNone && (c.Price <= 0 || c.Price > engine.MaxPrice) {
			t.Fatalf("accepted an invalid price: %+v", c)
		}
		if c.BidType == engine.Reserved && (c.Start%engine.Hour != 0 || c.End <= c.Start || c.MinQuantity > c.Quantity) {
			t.Fatalf("accepted an invalid window: %+v", c)
		}
		if c.BidType == engine.Spot && (c.Start != 0 || c.End != 0 || c.PricePeg.Kind == engine.PegSpot) {
			t.Fatalf("accepted an invalid spot bid: %+v", c)
		}
		_ = idemHash("POST", "/v1/bids", in)
	})
}

func FuzzDecodeListing(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	k := fuzzChecker()
	f.Fuzz(func(t *testing.T, body []byte) {
		in, p := k.decodeListing(body)
		if p != nil {
			checkRejection(t, p)
			return
		}
		c := in.command()
		if c.Quantity < 1 || c.Quantity > engine.MaxQuantity || c.Start%engine.Hour != 0 || c.End <= c.Start {
			t.Fatalf("accepted an invalid listing: %+v", c)
		}
		if c.SpotFloorPeg.Kind == engine.PegSpot {
			t.Fatalf("accepted a spot-pegged floor: %+v", c)
		}
		_ = idemHash("POST", "/v1/listings", in)
	})
}

func FuzzDecodeSmall(f *testing.F) {
	f.Add([]byte(`{"amount":"1.00"}`))
	f.Add([]byte(`{"name":"x","roles":["buyer","owner"]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if _, p := decodeAmount(body); p != nil {
			checkRejection(t, p)
		}
		if _, p := decodeCreateAccount(body); p != nil {
			checkRejection(t, p)
		}
	})
}
