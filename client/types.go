package client

import (
	"encoding/json"
	"time"
)

// Roles of an account.
const (
	RoleBuyer = "buyer"
	RoleOwner = "owner"
)

// Bid types.
const (
	BidReserved = "reserved"
	BidSpot     = "spot"
)

// Bid statuses.
const (
	BidResting         = "resting"
	BidFilled          = "filled"
	BidPartiallyFilled = "partially_filled"
	BidRunning         = "running"
	BidWaiting         = "waiting"
	BidCancelled       = "cancelled"
	BidExpired         = "expired"
	BidRejected        = "rejected"
)

// Listing statuses.
const (
	ListingActive    = "active"
	ListingCancelled = "cancelled"
	ListingEnded     = "ended"
)

// History intervals.
const (
	Interval1m = "1m"
	Interval1h = "1h"
	Interval1d = "1d"
)

// Response types below decode leniently: fields the server adds later are
// ignored. Money and prices are decimal strings; a nullable price is a
// *string (nil for JSON null).

// CreateAccountRequest is the body of POST /v1/accounts (admin only).
type CreateAccountRequest struct {
	Name  string   `json:"name"`
	Roles []string `json:"roles"` // RoleBuyer, RoleOwner or both
	// IdempotencyKey, when set, is sent as the Idempotency-Key header.
	IdempotencyKey string `json:"-"`
}

// AccountCreated answers POST /v1/accounts. APIKey is shown this once.
type AccountCreated struct {
	ID     string   `json:"id"`
	Name   string   `json:"name"`
	Roles  []string `json:"roles"`
	APIKey string   `json:"api_key"`
}

// Account is an account with its money; Available = Balance − Held.
type Account struct {
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	Roles     []string `json:"roles"`
	Balance   string   `json:"balance"`
	Held      string   `json:"held"`
	Available string   `json:"available"`
}

// Market is one tradable GPU type in one region, e.g. "h100-sxm.us-east".
type Market struct {
	ID     string `json:"id"`
	GPU    string `json:"gpu"`
	Region string `json:"region"`
}

// Book is the public order book of one market.
type Book struct {
	Market string  `json:"market"`
	Spot   Spot    `json:"spot"`
	Bids   []Level `json:"bids"` // resting reserved bids, best first
	Asks   []Level `json:"asks"` // unsold listing capacity, best first
}

// Spot is the state of a market's spot auction for the current hour.
type Spot struct {
	Price     *string `json:"price"` // clearing price; nil when nothing clears
	Ask       *string `json:"ask"`   // cheapest free floor; nil when none
	Supply    int     `json:"supply"`
	Allocated int     `json:"allocated"`
	Waiting   int     `json:"waiting"`
}

// Level is book depth aggregated by price and window.
type Level struct {
	Price    string    `json:"price"`
	Quantity int       `json:"quantity"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
}

// PriceRow is one market's line of GET /v1/prices.
type PriceRow struct {
	Market         string      `json:"market"`
	GPU            string      `json:"gpu"`
	Region         string      `json:"region"`
	SpotPrice      *string     `json:"spot_price"`
	LastTradePrice *string     `json:"last_trade_price"`
	VWAP24h        *string     `json:"vwap_24h"`
	BestAsk        *string     `json:"best_ask"`
	PriceBasis     *string     `json:"price_basis"`
	SpotSupply     int64       `json:"spot_supply"`
	SpotAllocated  int64       `json:"spot_allocated"`
	SpotWaiting    int64       `json:"spot_waiting"`
	Reference      []Reference `json:"reference"`
	// DiscountVsReference maps provider to 1 − market price / reference, a
	// fraction with 4 decimals; nil value when the market has no price, no
	// key for a provider without a reference row.
	DiscountVsReference map[string]*string `json:"discount_vs_reference"`
}

// Reference is a cloud provider's published rate for a GPU.
type Reference struct {
	Provider      string `json:"provider"`
	InstanceType  string `json:"instance_type"`
	USDPerGPUHour string `json:"usd_per_gpu_hour"`
	PriceType     string `json:"price_type"`
	AsOf          string `json:"as_of"` // a date, YYYY-MM-DD; "" when the source is undated (null in JSON)
	Source        string `json:"source"`
}

// Fill is one match of a bid against a listing, as carried in a bid's or
// listing's fills. Price is the maker's price.
type Fill struct {
	ID        string    `json:"id"`
	BidID     string    `json:"bid_id,omitempty"`
	ListingID string    `json:"listing_id,omitempty"`
	Quantity  int       `json:"quantity"`
	Price     string    `json:"price"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
}

// Trade is a public fill of a market, from GET /v1/markets/{market}/trades
// and the data of a "trades:<market>" feed update. ID equals the Fill.ID in
// the bid's fills.
type Trade struct {
	ID        string    `json:"id"`
	BidID     string    `json:"bid_id"`
	ListingID string    `json:"listing_id"`
	Market    string    `json:"market"`
	Quantity  int       `json:"quantity"`
	Price     string    `json:"price"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
}

// ListingRequest is the body of POST /v1/listings. Start and End are whole
// hours (UTC is sent); Start may be the hour under way.
type ListingRequest struct {
	Market         string    `json:"market"`
	Quantity       int       `json:"quantity"`
	Start          time.Time `json:"start"`
	End            time.Time `json:"end"`
	ReservePrice   Price     `json:"reserve_price"`
	SpotPriceFloor Price     `json:"spot_price_floor,omitzero"` // may peg to a reference only
	// IdempotencyKey, when set, is sent as the Idempotency-Key header.
	IdempotencyKey string `json:"-"`
}

// Listing is an owner's offer of capacity. ReservePrice is the resolved
// price; ReservePricePeg is set when the listing was placed with a peg.
type Listing struct {
	ID                string    `json:"id"`
	Market            string    `json:"market"`
	Quantity          int       `json:"quantity"`
	Start             time.Time `json:"start"`
	End               time.Time `json:"end"`
	ReservePrice      string    `json:"reserve_price"`
	ReservePricePeg   *Peg      `json:"reserve_price_peg,omitempty"`
	SpotPriceFloor    *string   `json:"spot_price_floor"`
	SpotPriceFloorPeg *Peg      `json:"spot_price_floor_peg,omitempty"`
	Status            string    `json:"status"` // ListingActive, ListingCancelled, ListingEnded
	Fills             []Fill    `json:"fills"`
}

// BidRequest is the body of POST /v1/bids. A reserved bid (Type BidReserved)
// needs Start, End (whole hours, Start in the future) and may set
// MinQuantity and ExpiresAt; a spot bid (BidSpot) leaves them zero, and
// zero fields are not sent.
type BidRequest struct {
	Type          string    `json:"type"`
	Market        string    `json:"market"`
	Quantity      int       `json:"quantity"`
	Start         time.Time `json:"start,omitzero"`
	End           time.Time `json:"end,omitzero"`
	LimitPrice    Price     `json:"limit_price"`
	MinQuantity   int       `json:"min_quantity,omitzero"`
	ExpiresAt     time.Time `json:"expires_at,omitzero"`
	ClientOrderID string    `json:"client_order_id,omitempty"`
	// IdempotencyKey, when set, is sent as the Idempotency-Key header.
	IdempotencyKey string `json:"-"`
}

// Bid is a buyer's order. LimitPrice is the resolved price; LimitPricePeg
// is set when the bid was placed with a peg. FilledQuantity and Allocated
// count GPUs; a cancelled or released spot bid has Allocated 0.
type Bid struct {
	ID             string     `json:"id"`
	Type           string     `json:"type"`
	Market         string     `json:"market"`
	Quantity       int        `json:"quantity"`
	Start          *time.Time `json:"start,omitempty"`
	End            *time.Time `json:"end,omitempty"`
	LimitPrice     string     `json:"limit_price"`
	LimitPricePeg  *Peg       `json:"limit_price_peg,omitempty"`
	MinQuantity    int        `json:"min_quantity,omitempty"`
	ExpiresAt      *time.Time `json:"expires_at,omitempty"`
	ClientOrderID  string     `json:"client_order_id,omitempty"`
	Status         string     `json:"status"`
	FilledQuantity int        `json:"filled_quantity"`
	Allocated      int        `json:"allocated"`
	Fills          []Fill     `json:"fills"`
}

// ListQuery selects a page of a list endpoint. Zero fields are not sent
// (server defaults: all statuses, limit 100, first page).
type ListQuery struct {
	Status string
	Limit  int // 1..1000
	Cursor string
}

// Page is one page of a list, newest first. NextCursor is nil on the last
// page; pass it as ListQuery.Cursor for the next one.
type Page[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

// Quote is what buying Quantity GPUs over [Start, End) would cost against
// the current book, without placing anything.
type Quote struct {
	Market         string      `json:"market"`
	Quantity       int         `json:"quantity"`
	Start          time.Time   `json:"start"`
	End            time.Time   `json:"end"`
	Fills          []QuoteFill `json:"fills"`
	FilledQuantity int         `json:"filled_quantity"`
	TotalCost      string      `json:"total_cost"`
	AveragePrice   *string     `json:"average_price"` // nil when nothing fills
	MinQuantityMet bool        `json:"min_quantity_met"`
	Reference      []Reference `json:"reference"`
	// DiscountVsReference as in PriceRow, against AveragePrice.
	DiscountVsReference map[string]*string `json:"discount_vs_reference"`
	// ReferenceCost is what the filled GPU-hours would cost at each
	// provider's on-demand rate.
	ReferenceCost map[string]string `json:"reference_cost"`
}

// QuoteFill is one listing a quote would take from.
type QuoteFill struct {
	ListingID string `json:"listing_id"`
	Quantity  int    `json:"quantity"`
	Price     string `json:"price"`
}

// Candle is one interval of a market's trade history.
type Candle struct {
	Start  time.Time `json:"start"`
	Open   string    `json:"open"`
	High   string    `json:"high"`
	Low    string    `json:"low"`
	Close  string    `json:"close"`
	Volume int64     `json:"volume"` // GPU-hours traded
}

// Health answers GET /healthz.
type Health struct {
	Status            string  `json:"status"`
	Journal           string  `json:"journal"` // "redis" or "memory"
	Durable           bool    `json:"durable"`
	LastSeq           uint64  `json:"last_seq"`
	RecoveredCommands int64   `json:"recovered_commands"`
	RecoverySeconds   float64 `json:"recovery_seconds"`
}

// Feed message types.
const (
	MsgSnapshot  = "snapshot"
	MsgUpdate    = "update"
	MsgHeartbeat = "heartbeat"
	MsgAuth      = "auth"
	MsgError     = "error"
)

// Message is one server → client websocket message. Channel, Seq and Data
// are set for snapshots and updates; OK for "auth"; Code and Detail for
// "error". Heartbeats (Type "heartbeat", only TS set) are returned too, so
// a caller can watch liveness; callers must ignore types they do not know.
type Message struct {
	Channel string          `json:"channel,omitempty"`
	Type    string          `json:"type"`
	Seq     uint64          `json:"seq,omitempty"`
	Data    json.RawMessage `json:"data,omitempty"`
	TS      time.Time       `json:"ts,omitzero"`
	Code    string          `json:"code,omitempty"`
	Detail  string          `json:"detail,omitempty"`
	OK      bool            `json:"ok,omitempty"`
}

// Decode unmarshals m.Data into v, e.g. a Trade for a "trades:<market>"
// update.
func (m Message) Decode(v any) error { return json.Unmarshal(m.Data, v) }
