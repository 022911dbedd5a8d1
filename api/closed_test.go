package api_test

import (
	"io"
	"net/http"
	"reflect"
	"testing"

	"github.com/gpux/gpux/client"
)

// TestClosedOrdersAcrossRestart: orders that have left the engine (filled,
// cancelled) answer GET and lists with the same JSON as before, from the
// read side, before and after a restart whose snapshot no longer holds
// them; pages merge open and closed orders newest first; cancelling a
// closed order still answers not_open.
func TestClosedOrdersAcrossRestart(t *testing.T) {
	e := newEnv(t, nil)
	owner := e.account("owner", "", client.RoleOwner)
	buyer := e.account("buyer", "500", client.RoleBuyer)
	const mk = "l40s.us-west"
	l1, err := owner.PlaceListing(bg, client.ListingRequest{Market: mk, Quantity: 2, Start: hour(2), End: hour(8), ReservePrice: client.FixedPrice("2.00")})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	place := func(q int, limit string) client.Bid {
		t.Helper()
		b, err := buyer.PlaceBid(bg, client.BidRequest{Type: client.BidReserved, Market: mk, Quantity: q, Start: hour(3), End: hour(5), LimitPrice: client.FixedPrice(limit)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, b.ID)
		return b
	}
	filled := place(1, "2.50") // fills at once: its create answer comes from the closing event
	if filled.Status != "filled" || len(filled.Fills) != 1 {
		t.Fatalf("filled bid: %+v", filled)
	}
	resting := place(5, "1.00")
	cancelled := place(3, "1.50")
	if got, err := buyer.CancelBid(bg, cancelled.ID); err != nil || got.Status != "cancelled" {
		t.Fatalf("cancel: %v %+v", err, got)
	}
	spot, err := buyer.PlaceBid(bg, client.BidRequest{Type: client.BidSpot, Market: mk, Quantity: 1, LimitPrice: client.FixedPrice("1.00")})
	if err != nil {
		t.Fatal(err)
	}
	ids = append(ids, spot.ID)
	if _, err := owner.CancelListing(bg, l1.ID); err != nil {
		t.Fatal(err)
	}

	raw := func(p party, path string) string {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, e.url+path, nil)
		req.Header.Set("Authorization", "Bearer "+p.key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, res.StatusCode, b)
		}
		return string(b)
	}
	paths := []struct {
		p    party
		path string
	}{
		{buyer, "/v1/bids/" + filled.ID},
		{buyer, "/v1/bids/" + cancelled.ID},
		{buyer, "/v1/bids/" + resting.ID},
		{buyer, "/v1/bids?limit=1000"},
		{buyer, "/v1/bids?status=filled"},
		{buyer, "/v1/bids?status=resting"},
		{owner, "/v1/listings/" + l1.ID},
		{owner, "/v1/listings?limit=10"},
	}
	before := map[string]string{}
	for _, x := range paths {
		before[x.path] = raw(x.p, x.path)
	}
	// Pages of one merge open and closed orders, newest first.
	var paged []string
	q := client.ListQuery{Limit: 1}
	for {
		pg, err := buyer.Bids(bg, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range pg.Items {
			paged = append(paged, b.ID)
		}
		if pg.NextCursor == nil {
			break
		}
		q.Cursor = *pg.NextCursor
	}
	want := []string{ids[3], ids[2], ids[1], ids[0]}
	if !reflect.DeepEqual(paged, want) {
		t.Fatalf("pages of one: %v, want newest first %v", paged, want)
	}
	_, err = buyer.CancelBid(bg, filled.ID)
	wantErr(t, err, http.StatusUnprocessableEntity, "not_open")

	e.restart() // the final snapshot holds only the open orders

	for _, x := range paths {
		if got := raw(x.p, x.path); got != before[x.path] {
			t.Errorf("GET %s after restart:\n got %s\nwant %s", x.path, got, before[x.path])
		}
	}
	other := e.account("other", "", client.RoleBuyer)
	_, err = other.Bid(bg, filled.ID)
	wantErr(t, err, http.StatusNotFound, "not_found")
}
