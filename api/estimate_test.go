package api_test

import (
	"encoding/json"
	"net/url"
	"testing"
	"time"

	"github.com/gpux/gpux/api"
	"github.com/gpux/gpux/client"
	"github.com/gpux/gpux/sequencer"
)

// TestFillEstimateEndToEnd: a quote and a resting bid carry
// "fill_estimate": null (with the sample count) until the market has 30
// closed resting bids in the bucket, and the estimate once it has: 30 bids
// rest 50 % under the best ask, 15 fill after 30 minutes, 15 are cancelled
// after 90 (censored), so p_fill_1h = p_fill_24h = 0.5 and the median is
// 1800 s.
func TestFillEstimateEndToEnd(t *testing.T) {
	clock := &fakeClock{t: hour(0).Add(10 * time.Minute)}
	e := newEnvSeq(t, func(c *api.Config) { c.Now = clock.Now; c.FillEstimateRefresh = 10 * time.Millisecond },
		func(c *sequencer.Config) { c.Now = clock.Now })
	const market = "l4.us-east"
	owner := e.account("owner", "", client.RoleOwner)
	buyer := e.account("buyer", "100000", client.RoleBuyer)
	listing := func(q int) {
		t.Helper()
		if _, err := owner.PlaceListing(bg, client.ListingRequest{Market: market, Quantity: q, Start: clock.Now().Truncate(time.Hour), End: hour(100), ReservePrice: client.FixedPrice("1.00")}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := owner.PlaceListing(bg, client.ListingRequest{Market: market, Quantity: 1, Start: hour(0), End: hour(100), ReservePrice: client.FixedPrice("2.00")}); err != nil {
		t.Fatal(err)
	}
	bid := func() client.Bid {
		t.Helper()
		b, err := buyer.PlaceBid(bg, client.BidRequest{Type: client.BidReserved, Market: market, Quantity: 1, Start: hour(48), End: hour(50), LimitPrice: client.FixedPrice("1.00")})
		if err != nil || b.Status != "resting" {
			t.Fatalf("bid: %v %+v", err, b)
		}
		return b
	}
	type quoteOut struct {
		client.Quote
		Samples int `json:"fill_estimate_samples"`
	}
	q := url.Values{"quantity": {"1"}, "start": {hour(48).Format(time.RFC3339)}, "end": {hour(50).Format(time.RFC3339)}, "limit_price": {"1.00"}}
	quote := func() quoteOut {
		t.Helper()
		st, _, body := e.raw("GET", "/v1/markets/"+market+"/quote?"+q.Encode(), "", nil)
		var out quoteOut
		if err := json.Unmarshal(body, &out); st != 200 || err != nil {
			t.Fatalf("quote: %d %s %v", st, body, err)
		}
		return out
	}
	// waitSamples polls until the background refresh has seen n samples.
	waitSamples := func(n int) quoteOut {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			out := quote()
			if out.Samples == n {
				return out
			}
			if time.Now().After(deadline) {
				t.Fatalf("quote samples: got %d, want %d", out.Samples, n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	var bids []client.Bid
	for range 30 {
		bids = append(bids, bid())
	}
	if b := bids[0]; b.FillEstimate != nil {
		t.Errorf("first resting bid: got estimate %+v, want null", b.FillEstimate)
	}
	clock.Add(30 * time.Minute)
	listing(15) // fills the 15 oldest
	clock.Add(time.Hour)
	for _, b := range bids[15:29] {
		if _, err := buyer.CancelBid(bg, b.ID); err != nil {
			t.Fatal(err)
		}
	}
	if out := waitSamples(29); out.FillEstimate != nil {
		t.Errorf("29 samples: got %+v, want fill_estimate null", out.FillEstimate)
	}
	if _, err := buyer.CancelBid(bg, bids[29].ID); err != nil {
		t.Fatal(err)
	}
	out := waitSamples(30)
	want := client.FillEstimate{PFill1h: "0.5000", PFill24h: "0.5000", Samples: 30}
	if fe := out.FillEstimate; fe == nil || fe.PFill1h != want.PFill1h || fe.PFill24h != want.PFill24h || fe.Samples != 30 || fe.MedianSeconds == nil || *fe.MedianSeconds != 1800 {
		t.Errorf("30 samples: got %+v, want %+v with median 1800 s", fe, want)
	}
	// A resting bid of the same bucket carries it too; one at the ask
	// (no history there) carries null.
	if b := bid(); b.FillEstimate == nil || b.FillEstimate.PFill1h != "0.5000" || b.FillEstimate.Samples != 30 {
		t.Errorf("resting bid: got %+v, want the estimate", b.FillEstimate)
	}
	if qq, err := e.anon.Quote(bg, market, 1, hour(48), hour(50)); err != nil || qq.FillEstimate != nil {
		t.Errorf("quote at the ask: %v %+v, want fill_estimate null", err, qq.FillEstimate)
	}
	for _, bad := range []string{"abc", "0", "-1", "1.00001"} {
		q.Set("limit_price", bad)
		st, hdr, body := e.raw("GET", "/v1/markets/"+market+"/quote?"+q.Encode(), "", nil)
		wantProblem(t, st, hdr, body, 422, "invalid_price", "limit_price")
	}
}
