package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
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
	status, _, body = e.raw("GET", "/v1/markets/h100-sxm.us-east", "", nil)
	var one map[string]any
	if err := json.Unmarshal(body, &one); status != http.StatusOK || err != nil || one["id"] != "h100-sxm.us-east" || one["preemption_notice_seconds"] != float64(120) {
		t.Fatalf("one market: %d %s", status, body)
	}
	if status, _, body := e.raw("GET", "/v1/markets/nope.us-east", "", nil); status != http.StatusNotFound {
		t.Fatalf("unknown market: %d %s", status, body)
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

// A flexible reserved bid through the API: the quote and the bid agree on
// the block, the bid shows its bounds and duration, its fill the block;
// bad durations are precise problems.
func TestFlexibleReservationAPI(t *testing.T) {
	e := newEnv(t, nil)
	bg := context.Background()
	owner := e.account("own", "", "owner")
	x := e.account("x", "1000", "buyer")
	for _, l := range []struct {
		from, to int
		price    string
	}{{1, 4, "3.00"}, {3, 7, "2.00"}} {
		if _, err := owner.PlaceListing(bg, client.ListingRequest{Market: "h100-sxm.us-east", Quantity: 4, Start: hour(l.from), End: hour(l.to),
			ReservePrice: client.FixedPrice(l.price)}); err != nil {
			t.Fatal(err)
		}
	}
	// 4 GPUs for 2 h in [h1, h7): h3 and h4 both cost 4 × 2.00 = 8.00/h; the earliest wins.
	q := "/v1/markets/h100-sxm.us-east/quote?quantity=4&duration_hours=2&start=" + hour(1).Format(time.RFC3339) + "&end=" + hour(7).Format(time.RFC3339)
	status, _, body := e.raw("GET", q, "", nil)
	var quote map[string]any
	if err := json.Unmarshal(body, &quote); status != http.StatusOK || err != nil || quote["block_start"] != hour(3).Format(time.RFC3339) ||
		quote["total_cost"] != "16.00" || quote["average_price"] != "2.00" {
		t.Fatalf("quote: %d %s, want block h3, 16.00 at 2.00", status, body)
	}
	bid := func(extra string) (int, map[string]any) {
		t.Helper()
		b := `{"type":"reserved","market":"h100-sxm.us-east","quantity":4,"limit_price":"5.00","start":"` + hour(1).Format(time.RFC3339) +
			`","end":"` + hour(7).Format(time.RFC3339) + `"` + extra + `}`
		status, _, body := e.raw("POST", "/v1/bids", x.key, []byte(b))
		var m map[string]any
		json.Unmarshal(body, &m)
		return status, m
	}
	for _, c := range []struct {
		extra, field string
	}{{`,"duration_hours":0`, "duration_hours"}, {`,"duration_hours":7`, "duration_hours"}, {`,"duration_hours":"2"`, "duration_hours"}} {
		if status, m := bid(c.extra); status/100 != 4 || m["field"] != c.field && !strings.Contains(fmt.Sprint(m), c.field) {
			t.Errorf("%s: %d %v, want a problem on %s", c.extra, status, m, c.field)
		}
	}
	status, m := bid(`,"duration_hours":2`)
	if status != http.StatusCreated && status != http.StatusOK {
		t.Fatalf("flexible bid: %d %v", status, m)
	}
	fills, _ := m["fills"].([]any)
	if m["status"] != "filled" || m["duration_hours"] != float64(2) || m["start"] != hour(1).Format(time.RFC3339) || len(fills) != 1 ||
		fills[0].(map[string]any)["start"] != hour(3).Format(time.RFC3339) {
		t.Fatalf("flexible bid: %v, want filled, bounds h1–h7, one fill at h3", m)
	}
	spot := `{"type":"spot","market":"h100-sxm.us-east","quantity":1,"limit_price":"5.00","duration_hours":2}`
	if status, _, body := e.raw("POST", "/v1/bids", x.key, []byte(spot)); status/100 != 4 || !strings.Contains(string(body), "duration_hours") {
		t.Errorf("spot with duration_hours: %d %s", status, body)
	}
}
