package api_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/gpux/gpux/client"
	"github.com/gpux/gpux/store"
)

// TestRestart: a server restarted on the same Redis shard keeps accounts,
// keys, orders and balances, and idempotency keys.
func TestRestart(t *testing.T) {
	e := newEnv(t, nil)
	owner := e.account("owner", "", client.RoleOwner)
	buyer := e.account("buyer", "500", client.RoleBuyer)
	if _, err := owner.PlaceListing(bg, client.ListingRequest{Market: "b200.eu-west", Quantity: 3, Start: hour(0), End: hour(30), ReservePrice: client.FixedPrice("4.00"), SpotPriceFloor: client.FixedPrice("3.00")}); err != nil {
		t.Fatal(err)
	}
	filled, err := buyer.PlaceBid(bg, client.BidRequest{Type: client.BidReserved, Market: "b200.eu-west", Quantity: 1, Start: hour(5), End: hour(7), LimitPrice: client.FixedPrice("5.00")}, client.WithIdempotencyKey("restart-1"))
	if err != nil || len(filled.Fills) != 1 {
		t.Fatalf("bid: %v %+v", err, filled)
	}
	if _, err := buyer.PlaceBid(bg, client.BidRequest{Type: client.BidReserved, Market: "b200.eu-west", Quantity: 2, Start: hour(5), End: hour(7), LimitPrice: client.FixedPrice("1.00")}); err != nil {
		t.Fatal(err)
	}
	if _, err := buyer.PlaceBid(bg, client.BidRequest{Type: client.BidSpot, Market: "b200.eu-west", Quantity: 1, LimitPrice: client.FixedPrice("3.50")}); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, e, buyer, owner)

	e.restart()

	after := snapshot(t, e, buyer, owner)
	// Book snapshots depend on the clock only through the current hour.
	if !reflect.DeepEqual(before.Buyer, after.Buyer) || !reflect.DeepEqual(before.Owner, after.Owner) ||
		!reflect.DeepEqual(before.Bids, after.Bids) || !reflect.DeepEqual(before.Listings, after.Listings) {
		t.Errorf("state after restart:\nbefore %s\nafter  %s", dump(before), dump(after))
	}
	if after.Buyer.Balance != "492.00" || after.Buyer.Held != "4.00" {
		t.Errorf("buyer after restart: got %+v, want balance 492.00 held 4.00", after.Buyer)
	}
	// Trade history was persisted to the read models.
	hist, err := e.anon.History(bg, "b200.eu-west", client.HistoryQuery{Interval: client.Interval1h, From: hour(-1), To: hour(1)})
	if cs := hist.Candles; err != nil || len(cs) != 1 || cs[0].Open != "4.00" || cs[0].Volume != 2 {
		t.Errorf("history after restart: %v %+v", err, cs)
	}
	// So were the trade log and the spot price history (read models that
	// outlive the engine's memory).
	rm, err := store.NewReadModels(e.journal.Client(), e.shard, store.ReadModelOptions{})
	if err != nil {
		t.Fatal(err)
	}
	trades, err := rm.RecentTrades(bg, "b200.eu-west", 10)
	if err != nil || len(trades) != 1 || trades[0].ID != filled.Fills[0].ID {
		t.Errorf("persisted trades: %v %+v, want the one fill %s", err, trades, filled.Fills[0].ID)
	}
	if pts, err := rm.SpotHistory(bg, "b200.eu-west", time.Time{}, time.Time{}); err != nil || len(pts) == 0 {
		t.Errorf("persisted spot history: %v %+v, want the market's price points", err, pts)
	}
	// The idempotency key survives too.
	again, err := buyer.PlaceBid(bg, client.BidRequest{Type: client.BidReserved, Market: "b200.eu-west", Quantity: 1, Start: hour(5), End: hour(7), LimitPrice: client.FixedPrice("5.00")}, client.WithIdempotencyKey("restart-1"))
	if err != nil || again.ID != filled.ID {
		t.Errorf("idempotent replay after restart: got %q, %v; want %q", again.ID, err, filled.ID)
	}
	// And writes go on.
	if _, err := e.admin.Deposit(bg, buyer.id, "1"); err != nil {
		t.Errorf("deposit after restart: %v", err)
	}
	h, _ := e.anon.Health(bg)
	if h.RecoveredCommands == 0 && h.LastSeq == 0 {
		t.Errorf("health after restart: got %+v", h)
	}
}
