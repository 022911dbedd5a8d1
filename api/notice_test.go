package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/gpux/gpux/client"
)

// An outbid spot bid shows its notice: status preempting with preempt_at;
// the bid that outbid it waits with starts_at; markets show the notice.
func TestSpotPreemptionNoticeRendered(t *testing.T) {
	e := newEnv(t, nil)
	bg := context.Background()
	status, _, body := e.raw("GET", "/v1/markets", "", nil)
	var ms []map[string]any
	if err := json.Unmarshal(body, &ms); status != http.StatusOK || err != nil || len(ms) == 0 || ms[0]["preemption_notice_seconds"] != float64(120) {
		t.Fatalf("markets: %d %s, want preemption_notice_seconds 120", status, body)
	}
	owner := e.account("own", "", "owner")
	a, b := e.account("a", "1000", "buyer"), e.account("b", "1000", "buyer")
	now := time.Now().UTC().Truncate(time.Hour)
	if _, err := owner.PlaceListing(bg, client.ListingRequest{Market: "h100-sxm.us-east", Quantity: 1, Start: now, End: now.Add(24 * time.Hour),
		ReservePrice: client.FixedPrice("9.00"), SpotPriceFloor: client.FixedPrice("1.00")}); err != nil {
		t.Fatal(err)
	}
	ba, err := a.PlaceBid(bg, client.BidRequest{Type: client.BidSpot, Market: "h100-sxm.us-east", Quantity: 1, LimitPrice: client.FixedPrice("2.00")})
	if err != nil {
		t.Fatal(err)
	}
	bb, err := b.PlaceBid(bg, client.BidRequest{Type: client.BidSpot, Market: "h100-sxm.us-east", Quantity: 1, LimitPrice: client.FixedPrice("3.00")})
	if err != nil {
		t.Fatal(err)
	}
	get := func(p party, id string) map[string]any {
		t.Helper()
		status, _, body := e.raw("GET", "/v1/bids/"+id, p.key, nil)
		var m map[string]any
		if err := json.Unmarshal(body, &m); status != http.StatusOK || err != nil {
			t.Fatalf("get bid: %d %s", status, body)
		}
		return m
	}
	va, vb := get(a, ba.ID), get(b, bb.ID)
	if va["status"] != "preempting" || va["preempt_at"] == nil || va["preempting"] != float64(1) {
		t.Errorf("outbid bid: %v, want preempting with preempt_at", va)
	}
	if vb["status"] != "waiting" || vb["starts_at"] != va["preempt_at"] || vb["pending"] != float64(1) {
		t.Errorf("outbidding bid: %v, want waiting with starts_at = %v", vb, va["preempt_at"])
	}
	status, _, body = e.raw("GET", "/v1/bids?status=preempting", a.key, nil)
	if status != http.StatusOK {
		t.Errorf("list preempting bids: %d %s", status, body)
	}
}
