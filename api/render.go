package api

import (
	"encoding/json"
	"time"

	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/history"
)

// Response bodies. Field names are the contract of API.md; extras are
// additions, never renames.

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// rfc3339 formats engine time as RFC 3339 UTC (sub-second digits only when
// there are any).
func rfc3339(t engine.Time) string {
	return time.UnixMilli(int64(t)).UTC().Format(time.RFC3339Nano)
}

// rfc3339ms formats engine time with exactly three sub-second digits, as
// the feed's ts.
func rfc3339ms(t engine.Time) string {
	return time.UnixMilli(int64(t)).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

func optTime(t engine.Time) *string {
	if t == 0 {
		return nil
	}
	s := rfc3339(t)
	return &s
}

func optPrice(p engine.Price, ok bool) *string {
	if !ok {
		return nil
	}
	s := p.String()
	return &s
}

type accountJSON struct {
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	Roles     []string `json:"roles"`
	Balance   string   `json:"balance"`
	Held      string   `json:"held"`
	Available string   `json:"available"`
	CreatedAt string   `json:"created_at"`
}

func renderAccount(a engine.AccountView) accountJSON {
	roles := a.Roles.Names()
	if roles == nil {
		roles = []string{}
	}
	return accountJSON{
		ID: a.ID.String(), Name: a.Name, Roles: roles, Balance: a.Balance.String(),
		Held: a.Held.String(), Available: a.Available.String(), CreatedAt: rfc3339(a.CreatedAt),
	}
}

// accountCreatedJSON answers POST /v1/accounts. APIKey is nil when the
// key cannot be shown (a replay); it is never stored (see redacted).
type accountCreatedJSON struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Roles       []string `json:"roles"`
	APIKey      *string  `json:"api_key"`
	APIKeyShown bool     `json:"api_key_shown"`
}

type pegOut struct {
	Peg      string  `json:"peg"`
	Provider string  `json:"provider,omitempty"`
	Discount string  `json:"discount,omitempty"`
	Offset   string  `json:"offset,omitempty"`
	Cap      *string `json:"cap,omitempty"`
	Floor    *string `json:"floor,omitempty"`
}

func renderPeg(p engine.Peg) *pegOut {
	var out pegOut
	switch p.Kind {
	case engine.PegReference:
		out = pegOut{Peg: "reference", Provider: p.Provider, Discount: engine.Price(p.Discount).String()}
	case engine.PegSpot:
		out = pegOut{Peg: "spot", Offset: p.Offset.String()}
	default:
		return nil
	}
	out.Cap = optPrice(p.Cap, p.Cap != 0)
	out.Floor = optPrice(p.Floor, p.Floor != 0)
	return &out
}

type fillJSON struct {
	ID        string `json:"id"`
	BidID     string `json:"bid_id"`
	ListingID string `json:"listing_id"`
	Quantity  int64  `json:"quantity"`
	Price     string `json:"price"`
	Start     string `json:"start"`
	End       string `json:"end"`
	Time      string `json:"time"`
}

func renderFills(fs []engine.Fill) []fillJSON {
	out := make([]fillJSON, len(fs))
	for i, f := range fs {
		out[i] = fillJSON{
			ID: f.ID.String(), BidID: f.BidID.String(), ListingID: f.ListingID.String(), Quantity: f.Quantity,
			Price: f.Price.String(), Start: rfc3339(f.Start), End: rfc3339(f.End), Time: rfc3339(f.Time),
		}
	}
	return out
}

// tradeJSON is a fill as the trade log keeps it (history.Trade).
type tradeJSON = history.Trade

func renderTrade(f engine.Fill) tradeJSON { return history.TradeOf(f) }

type bidOut struct {
	ID             string     `json:"id"`
	Type           string     `json:"type"`
	Market         string     `json:"market"`
	Quantity       int64      `json:"quantity"`
	Start          *string    `json:"start,omitempty"`
	End            *string    `json:"end,omitempty"`
	LimitPrice     string     `json:"limit_price"`
	LimitPricePeg  *pegOut    `json:"limit_price_peg,omitempty"`
	MinQuantity    int64      `json:"min_quantity,omitempty"`
	ExpiresAt      *string    `json:"expires_at,omitempty"`
	ClientOrderID  string     `json:"client_order_id,omitempty"`
	Status         string     `json:"status"`
	Reason         string     `json:"reason,omitempty"`
	FilledQuantity int64      `json:"filled_quantity"`
	Allocated      int64      `json:"allocated"`
	Held           string     `json:"held"`
	Spent          string     `json:"spent"`
	Fills          []fillJSON `json:"fills"`
	CreatedAt      string     `json:"created_at"`
	// A resting bid's fill estimate (estimate.go); absent otherwise.
	FillEstimate        json.RawMessage `json:"fill_estimate,omitempty"`
	FillEstimateSamples *int            `json:"fill_estimate_samples,omitempty"`
}

func renderBid(b engine.BidView) bidOut {
	out := bidOut{
		ID: b.ID.String(), Type: b.Type.String(), Market: b.Market, Quantity: b.Quantity,
		LimitPrice: b.Limit.String(), LimitPricePeg: renderPeg(b.LimitPeg), ClientOrderID: b.ClientOrderID,
		Status: b.Status.String(), Reason: b.Reason, FilledQuantity: b.Filled, Allocated: b.Allocated,
		Held: b.Hold.String(), Spent: b.Spent.String(), Fills: renderFills(b.Fills), CreatedAt: rfc3339(b.CreatedAt),
	}
	if b.Type == engine.Reserved {
		out.Start, out.End = optTime(b.Start), optTime(b.End)
		out.MinQuantity = b.MinQuantity
		out.ExpiresAt = optTime(b.ExpiresAt)
	}
	return out
}

type listingOut struct {
	ID                string     `json:"id"`
	Market            string     `json:"market"`
	Quantity          int64      `json:"quantity"`
	Start             string     `json:"start"`
	End               string     `json:"end"`
	ReservePrice      string     `json:"reserve_price"`
	ReservePricePeg   *pegOut    `json:"reserve_price_peg,omitempty"`
	SpotPriceFloor    *string    `json:"spot_price_floor"`
	SpotPriceFloorPeg *pegOut    `json:"spot_price_floor_peg,omitempty"`
	Status            string     `json:"status"`
	Unsold            int64      `json:"unsold_quantity"`
	SpotSupply        int64      `json:"spot_supply"`
	SpotAllocated     int64      `json:"spot_allocated"`
	SpotEarned        string     `json:"spot_earned"`
	SoldGPUHours      int64      `json:"sold_gpu_hours"`
	Fills             []fillJSON `json:"fills"`
	CreatedAt         string     `json:"created_at"`
}

func renderListing(l engine.ListingView) listingOut {
	return listingOut{
		ID: l.ID.String(), Market: l.Market, Quantity: l.Quantity, Start: rfc3339(l.Start), End: rfc3339(l.End),
		ReservePrice: l.Reserve.String(), ReservePricePeg: renderPeg(l.ReservePeg),
		SpotPriceFloor: optPrice(l.SpotFloor, l.SpotFloor != 0), SpotPriceFloorPeg: renderPeg(l.FloorPeg),
		Status: l.Status.String(), Unsold: l.Unsold, SpotSupply: l.SpotUnits, SpotAllocated: l.SpotInUse,
		SpotEarned: l.SpotEarned.String(), SoldGPUHours: l.FilledHours, Fills: renderFills(l.Fills),
		CreatedAt: rfc3339(l.CreatedAt),
	}
}

type marketJSON struct {
	ID     string `json:"id"`
	GPU    string `json:"gpu"`
	Region string `json:"region"`
}

type spotJSON struct {
	Price     *string `json:"price"`
	Ask       *string `json:"ask"`
	Supply    int64   `json:"supply"`
	Allocated int64   `json:"allocated"`
	Waiting   int64   `json:"waiting"`
}

type levelJSON struct {
	Price    string `json:"price"`
	Quantity int64  `json:"quantity"`
	Start    string `json:"start"`
	End      string `json:"end"`
}

type bookJSON struct {
	Market string      `json:"market"`
	Spot   spotJSON    `json:"spot"`
	Bids   []levelJSON `json:"bids"`
	Asks   []levelJSON `json:"asks"`
}

func renderSpot(s engine.SpotView) spotJSON {
	return spotJSON{
		Price: optPrice(s.Price, s.HasPrice), Ask: optPrice(s.Ask, s.HasAsk),
		Supply: s.Supply, Allocated: s.Allocated, Waiting: s.Waiting,
	}
}

func renderLevels(ls []engine.Level) []levelJSON {
	out := make([]levelJSON, len(ls))
	for i, l := range ls {
		out[i] = levelJSON{Price: l.Price.String(), Quantity: l.Quantity, Start: rfc3339(l.Start), End: rfc3339(l.End)}
	}
	return out
}

func renderBook(b engine.BookView) bookJSON {
	return bookJSON{Market: b.Market, Spot: renderSpot(b.Spot), Bids: renderLevels(b.Bids), Asks: renderLevels(b.Asks)}
}

type pageJSON[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

func cursorOf(id engine.ID) *string {
	if id.IsZero() {
		return nil
	}
	s := id.String()
	return &s
}
