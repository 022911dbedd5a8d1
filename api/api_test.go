package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gpux/gpux/client"
)

func TestHappyPath(t *testing.T) {
	e := newEnv(t, nil)
	owner := e.account("owner", "", client.RoleOwner)
	buyer := e.account("buyer", "10000.00", client.RoleBuyer)

	t.Run("account", func(t *testing.T) {
		a, err := buyer.Account(bg)
		if err != nil {
			t.Fatal(err)
		}
		if a.ID != buyer.id || a.Name != "buyer" || a.Balance != "10000.00" || a.Held != "0.00" || a.Available != "10000.00" || !slices.Equal(a.Roles, []string{"buyer"}) {
			t.Errorf("account: got %+v", a)
		}
		w, err := e.admin.Withdraw(bg, buyer.id, "1000")
		if err != nil {
			t.Fatal(err)
		}
		if w.Balance != "9000.00" {
			t.Errorf("after withdrawal: got balance %s, want 9000.00", w.Balance)
		}
		d, err := e.admin.Deposit(bg, buyer.id, "1000.5")
		if err != nil {
			t.Fatal(err)
		}
		if d.Balance != "10000.50" {
			t.Errorf("after deposit: got balance %s, want 10000.50", d.Balance)
		}
	})

	t.Run("markets", func(t *testing.T) {
		ms, err := e.anon.Markets(bg)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(ms, func(m client.Market) bool {
			return m.ID == "h100-sxm.us-east" && m.GPU == "h100-sxm" && m.Region == "us-east" &&
				m.PreemptionNoticeSeconds != nil && *m.PreemptionNoticeSeconds == 120
		}) {
			t.Errorf("markets: got %v, want h100-sxm.us-east among them", ms)
		}
		b, err := e.anon.Book(bg, "h100-sxm.us-east")
		if err != nil {
			t.Fatal(err)
		}
		if b.Market != "h100-sxm.us-east" || b.Spot.Price != nil || b.Bids == nil || b.Asks == nil {
			t.Errorf("empty book: got %+v", b)
		}
		_, err = e.anon.Book(bg, "nope.us-east")
		wantErr(t, err, http.StatusNotFound, "not_found")
	})

	start, end := hour(2), hour(6)
	var listingID string
	t.Run("listing", func(t *testing.T) {
		l, err := owner.PlaceListing(bg, client.ListingRequest{
			Market: "h100-sxm.us-east", Quantity: 8, Start: hour(0), End: hour(24),
			ReservePrice: client.FixedPrice("2.10"), SpotPriceFloor: client.FixedPrice("1.80"),
		})
		if err != nil {
			t.Fatal(err)
		}
		listingID = l.ID
		if l.Status != "active" || l.ReservePrice != "2.10" || l.SpotPriceFloor == nil || *l.SpotPriceFloor != "1.80" || len(l.Fills) != 0 || l.Quantity != 8 {
			t.Errorf("listing: got %+v", l)
		}
		got, err := owner.Listing(bg, l.ID)
		if err != nil || got.ID != l.ID {
			t.Fatalf("get listing: %v %+v", err, got)
		}
	})

	var bidID string
	t.Run("reserved bid fills", func(t *testing.T) {
		b, err := buyer.PlaceBid(bg, client.BidRequest{
			Type: client.BidReserved, Market: "h100-sxm.us-east", Quantity: 4, Start: start, End: end,
			LimitPrice: client.FixedPrice("2.50"), ClientOrderID: "r-1",
		})
		if err != nil {
			t.Fatal(err)
		}
		bidID = b.ID
		if b.Status != "filled" || b.FilledQuantity != 4 || len(b.Fills) != 1 {
			t.Fatalf("bid: got %+v, want filled with one fill", b)
		}
		f := b.Fills[0]
		if f.ListingID != listingID || f.Price != "2.10" || f.Quantity != 4 || !f.Start.Equal(start) || !f.End.Equal(end) {
			t.Errorf("fill: got %+v, want 4 at the maker's 2.10 from %s", f, listingID)
		}
		a, _ := buyer.Account(bg)
		// 4 GPUs × 4 h × 2.10 = 33.60 charged; the hold is released.
		if a.Balance != "9966.90" || a.Held != "0.00" {
			t.Errorf("buyer after fill: got %+v", a)
		}
		trades, err := e.anon.MarketTrades(bg, "h100-sxm.us-east", 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(trades.Items) != 1 || trades.Items[0].ID != f.ID || trades.Items[0].BidID != b.ID || trades.NextCursor != nil {
			t.Errorf("trades: got %+v", trades)
		}
		l, _ := owner.Listing(bg, listingID)
		if len(l.Fills) != 1 || l.Fills[0].ID != f.ID {
			t.Errorf("listing fills: got %+v", l.Fills)
		}
	})

	t.Run("spot bid runs", func(t *testing.T) {
		b, err := buyer.PlaceBid(bg, client.BidRequest{Type: client.BidSpot, Market: "h100-sxm.us-east", Quantity: 2, LimitPrice: client.FixedPrice("3.00")})
		if err != nil {
			t.Fatal(err)
		}
		if b.Status != "running" || b.Allocated != 2 || b.Start != nil {
			t.Errorf("spot bid: got %+v, want running with 2", b)
		}
		book, _ := e.anon.Book(bg, "h100-sxm.us-east")
		if book.Spot.Price == nil || *book.Spot.Price != "1.80" || book.Spot.Allocated != 2 || book.Spot.Supply != 8 {
			t.Errorf("book spot: got %+v", book.Spot)
		}
		prices, err := e.anon.Prices(bg)
		if err != nil {
			t.Fatal(err)
		}
		var row *client.PriceRow
		for i := range prices {
			if prices[i].Market == "h100-sxm.us-east" {
				row = &prices[i]
			}
		}
		if row == nil || row.SpotPrice == nil || *row.SpotPrice != "1.80" || row.LastTradePrice == nil || *row.LastTradePrice != "2.10" || len(row.Reference) == 0 {
			t.Fatalf("price row: got %+v", row)
		}
		if d, ok := row.DiscountVsReference["aws"]; !ok || d == nil || *d != "0.7384" {
			t.Errorf("discount vs aws: got %v, want 0.7384 (1 - 1.80/6.88)", d)
		}
		var raw []map[string]any
		status, _, body := e.raw("GET", "/v1/prices", "", nil)
		if err := json.Unmarshal(body, &raw); status != 200 || err != nil {
			t.Fatalf("prices: %d %v", status, err)
		}
		for _, r := range raw {
			if r["market"] == "h100-sxm.us-east" && (r["vwap_24h"] != "2.10" || r["price_basis"] != "spot" || r["best_ask"] != "2.10" ||
				r["spot_supply"] != float64(book.Spot.Supply) || r["spot_allocated"] != float64(book.Spot.Allocated) || r["spot_waiting"] != float64(book.Spot.Waiting)) {
				t.Errorf("price row extras: got vwap %v basis %v best ask %v spot %v/%v/%v", r["vwap_24h"], r["price_basis"], r["best_ask"], r["spot_supply"], r["spot_allocated"], r["spot_waiting"])
			}
		}
		c, err := buyer.CancelBid(bg, b.ID)
		if err != nil {
			t.Fatal(err)
		}
		if c.Status != "cancelled" || c.Allocated != 0 {
			t.Errorf("cancelled spot: got %+v", c)
		}
		_, err = buyer.CancelBid(bg, b.ID)
		wantErr(t, err, http.StatusUnprocessableEntity, "not_open")
	})

	t.Run("lists", func(t *testing.T) {
		for i := 0; i < 3; i++ {
			if _, err := buyer.PlaceBid(bg, client.BidRequest{Type: client.BidReserved, Market: "h200.us-east", Quantity: 1, Start: start, End: end, LimitPrice: client.FixedPrice("1.00")}); err != nil {
				t.Fatal(err)
			}
		}
		var ids []string
		for b, err := range buyer.AllBids(bg, client.ListQuery{Limit: 2}) {
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, b.ID)
		}
		if len(ids) != 5 || ids[4] != bidID {
			t.Errorf("all bids newest first: got %v, want 5 ending with %s", ids, bidID)
		}
		p, err := buyer.Bids(bg, client.ListQuery{Status: "resting"})
		if err != nil || len(p.Items) != 3 {
			t.Errorf("resting bids: got %d, %v", len(p.Items), err)
		}
		ls, err := owner.Listings(bg, client.ListQuery{})
		if err != nil || len(ls.Items) != 1 || ls.NextCursor != nil {
			t.Errorf("listings: got %+v, %v", ls, err)
		}
	})

	t.Run("quote", func(t *testing.T) {
		q, err := e.anon.Quote(bg, "h100-sxm.us-east", 2, hour(8), hour(10))
		if err != nil {
			t.Fatal(err)
		}
		if q.FilledQuantity != 2 || !q.MinQuantityMet || q.TotalCost != "8.40" || q.AveragePrice == nil || *q.AveragePrice != "2.10" || len(q.Fills) != 1 || q.Fills[0].ListingID != listingID {
			t.Errorf("quote: got %+v", q)
		}
		// The same 4 GPU-hours at AWS's 6.88 on-demand rate: 27.52.
		if q.ReferenceCost["aws"] != "27.52" || q.DiscountVsReference["aws"] == nil || *q.DiscountVsReference["aws"] != "0.6948" {
			t.Errorf("quote against aws: cost %q discount %v, want 27.52 and 0.6948", q.ReferenceCost["aws"], q.DiscountVsReference["aws"])
		}
		_, err = e.anon.Quote(bg, "h100-sxm.us-east", 2, hour(10), hour(8))
		wantErr(t, err, http.StatusUnprocessableEntity, "invalid_window")
		// More than the book holds: what there is, and min_quantity_met false.
		q, err = e.anon.Quote(bg, "h100-sxm.us-east", 50, hour(8), hour(10))
		if err != nil || q.FilledQuantity != 8 || q.MinQuantityMet || len(q.Fills) != 1 {
			t.Errorf("short quote: %v %+v", err, q)
		}
	})

	t.Run("history", func(t *testing.T) {
		h, err := e.anon.History(bg, "h100-sxm.us-east", client.HistoryQuery{Interval: client.Interval1h, From: hour(-24), To: hour(1)})
		if err != nil {
			t.Fatal(err)
		}
		cs := h.Candles
		// One reserved fill so far: 4 GPUs × 4 h at 2.10.
		if len(cs) != 1 || cs[0].Open != "2.10" || cs[0].Close != "2.10" || cs[0].Volume != 16 || !cs[0].Start.Equal(hour(0)) {
			t.Errorf("trade candles: got %+v", cs)
		}
		status, _, body := e.raw("GET", "/v1/markets/h100-sxm.us-east/history?interval=1m&kind=spot", "", nil)
		if status != http.StatusOK || !strings.Contains(string(body), `"open":"1.80"`) || !strings.Contains(string(body), `"kind":"spot"`) {
			t.Errorf("spot candles: got %d %s", status, body)
		}
		_, err = e.anon.History(bg, "h100-sxm.us-east", client.HistoryQuery{Interval: "5m", From: hour(-24), To: hour(1)})
		wantErr(t, err, http.StatusUnprocessableEntity, "invalid_interval")
	})

	t.Run("cancel listing", func(t *testing.T) {
		l, err := owner.CancelListing(bg, listingID)
		if err != nil {
			t.Fatal(err)
		}
		if l.Status != "cancelled" || len(l.Fills) != 1 {
			t.Errorf("cancelled listing: got %+v, want cancelled keeping its fill", l)
		}
	})

	t.Run("operations", func(t *testing.T) {
		h, err := e.anon.Health(bg)
		if err != nil {
			t.Fatal(err)
		}
		if h.Status != "ok" || h.Journal != "redis" || !h.Durable || h.LastSeq == 0 {
			t.Errorf("health: got %+v", h)
		}
		if err := e.anon.Ready(bg); err != nil {
			t.Errorf("ready: %v", err)
		}
		m, err := e.anon.Metrics(bg)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"gpux_http_requests_total", "gpux_http_request_duration_seconds", "gpux_engine_commands_total", "gpux_journal_batch_commands", "gpux_journal_append_seconds", "gpux_ws_clients", "gpux_ws_dropped_clients_total"} {
			if !bytes.Contains(m, []byte(name)) {
				t.Errorf("metrics: %s missing", name)
			}
		}
		if !bytes.Contains(m, []byte(`route="/v1/bids"`)) {
			t.Errorf("metrics: no route label for /v1/bids")
		}
		doc, err := e.anon.OpenAPI(bg)
		if err != nil || !strings.HasPrefix(string(doc), "openapi: 3.0.3") {
			t.Errorf("openapi: %v %.40q", err, doc)
		}
	})
}

func TestPegs(t *testing.T) {
	e := newEnv(t, nil)
	owner := e.account("owner", "", client.RoleOwner)
	buyer := e.account("buyer", "10000", client.RoleBuyer)
	const mk = "h100-sxm.eu-west"
	ref := client.ReferencePeg("aws", "0.40")
	ref.Peg.Cap = "5.00"
	l, err := owner.PlaceListing(bg, client.ListingRequest{Market: mk, Quantity: 4, Start: hour(0), End: hour(24), ReservePrice: ref, SpotPriceFloor: client.ReferencePeg("AWS", "0.70")})
	if err != nil {
		t.Fatal(err)
	}
	// aws on-demand h100-sxm is 6.88: 6.88 × 0.60 = 4.128; the floor 6.88 × 0.30 = 2.064.
	if l.ReservePrice != "4.128" || l.ReservePricePeg == nil || l.ReservePricePeg.Kind != "reference" || l.ReservePricePeg.Provider != "aws" || l.ReservePricePeg.Discount != "0.40" || l.ReservePricePeg.Cap != "5.00" {
		t.Errorf("pegged reserve: got %s %+v", l.ReservePrice, l.ReservePricePeg)
	}
	if l.SpotPriceFloor == nil || *l.SpotPriceFloor != "2.064" || l.SpotPriceFloorPeg == nil {
		t.Errorf("pegged floor: got %v %+v", l.SpotPriceFloor, l.SpotPriceFloorPeg)
	}
	s, err := buyer.PlaceBid(bg, client.BidRequest{Type: client.BidSpot, Market: mk, Quantity: 1, LimitPrice: client.ReferencePeg("aws", "0.50")})
	if err != nil || s.LimitPrice != "3.44" || s.Status != "running" {
		t.Fatalf("pegged spot bid: %v %+v", err, s)
	}
	b, err := buyer.PlaceBid(bg, client.BidRequest{Type: client.BidReserved, Market: mk, Quantity: 1, Start: hour(1), End: hour(2), LimitPrice: client.SpotPeg("3.00")})
	if err != nil {
		t.Fatal(err)
	}
	// Spot clears at the floor 2.064 (one bid, four GPUs): 2.064 + 3.00 = 5.064 ≥ 4.128, so it fills at the maker's 4.128.
	if b.LimitPrice != "5.064" || b.LimitPricePeg == nil || b.LimitPricePeg.Offset != "3.00" || b.Status != "filled" || b.Fills[0].Price != "4.128" {
		t.Errorf("spot-pegged reserved bid: got %+v", b)
	}
}

func TestTradesPaging(t *testing.T) {
	e := newEnv(t, nil)
	owner := e.account("owner", "", client.RoleOwner)
	buyer := e.account("buyer", "10000", client.RoleBuyer)
	const mk = "mi300x.us-west"
	if _, err := owner.PlaceListing(bg, client.ListingRequest{Market: mk, Quantity: 10, Start: hour(0), End: hour(24), ReservePrice: client.FixedPrice("1.00")}); err != nil {
		t.Fatal(err)
	}
	var fills []string
	for i := range 5 {
		b, err := buyer.PlaceBid(bg, client.BidRequest{Type: client.BidReserved, Market: mk, Quantity: 1, Start: hour(2 + i), End: hour(3 + i), LimitPrice: client.FixedPrice("1.00")})
		if err != nil || len(b.Fills) != 1 {
			t.Fatalf("bid %d: %v %+v", i, err, b)
		}
		fills = append([]string{b.Fills[0].ID}, fills...) // newest first
	}
	var got []string
	q := client.ListQuery{Limit: 2}
	for {
		p, err := e.anon.MarketTradesPage(bg, mk, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, tr := range p.Items {
			got = append(got, tr.ID)
		}
		if p.NextCursor == nil {
			break
		}
		q.Cursor = *p.NextCursor
	}
	if !slices.Equal(got, fills) {
		t.Errorf("trades by page: got %v, want %v", got, fills)
	}
}
