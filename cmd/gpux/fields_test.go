package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/gpux/gpux/client"
)

// TestClientCoversServerFields reads every kind of answer from a real
// gpuxd and decodes it into the client's types with unknown fields
// forbidden: a field the server sends and the SDK drops fails here.
func TestClientCoversServerFields(t *testing.T) {
	s := startServer(t)
	ctx := t.Context()
	f := ownerListsBuyerFunded(t, s, 48*time.Hour)
	buyer, now := f.buyer, f.now
	for _, req := range []client.BidRequest{
		{Type: client.BidReserved, Market: market, Quantity: 2, Start: now.Add(3 * time.Hour), End: now.Add(5 * time.Hour), LimitPrice: client.FixedPrice("2.50")},
		{Type: client.BidReserved, Market: market, Quantity: 1, Start: now.Add(60 * time.Hour), End: now.Add(70 * time.Hour), LimitPrice: client.FixedPrice("1.00")},
		{Type: client.BidSpot, Market: market, Quantity: 2, LimitPrice: client.FixedPrice("2.00")},
	} {
		if _, err := buyer.PlaceBid(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	from, to := now.Add(-time.Hour).Format(time.RFC3339), now.Add(2*time.Hour).Format(time.RFC3339)
	tests := []struct {
		path, key string
		into      any
	}{
		{"/v1/markets", "", &[]client.Market{}},
		{"/v1/markets/" + market + "/book", "", &client.Book{}},
		{"/v1/markets/" + market + "/trades", "", &client.Page[client.Trade]{}},
		{"/v1/markets/" + market + "/history?interval=1m&from=" + from + "&to=" + to, "", &client.History{}},
		{"/v1/markets/" + market + "/history?interval=1m&kind=spot&from=" + from + "&to=" + to, "", &client.History{}},
		{"/v1/markets/" + market + "/quote?quantity=2&start=" + now.Add(6*time.Hour).Format(time.RFC3339) + "&end=" + now.Add(8*time.Hour).Format(time.RFC3339), "", &client.Quote{}},
		{"/v1/prices", "", &[]client.PriceRow{}},
		{"/v1/account", f.buyerKey, &client.Account{}},
		{"/v1/bids", f.buyerKey, &client.Page[client.Bid]{}},
		{"/v1/listings", f.ownerKey, &client.Page[client.Listing]{}},
		{"/healthz", "", &client.Health{}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+tt.path, nil)
			if tt.key != "" {
				req.Header.Set("Authorization", "Bearer "+tt.key)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			if err := dec.Decode(tt.into); err != nil {
				t.Errorf("the client's %T lacks what the server sends: %v\n%.600s", tt.into, err, body)
			}
		})
	}
}
