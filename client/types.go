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
	BidPreempting      = "preempting" // outbid, running out its notice
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
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Roles     []string  `json:"roles"`
	Balance   string    `json:"balance"`
	Held      string    `json:"held"`
	Available string    `json:"available"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	// Wallets is set through an API node: the account's money per shard,
	// which Balance, Held and Available sum.
	Wallets []Wallet `json:"wallets,omitempty"`
}

// Wallet is an account's money on one shard.
type Wallet struct {
	Shard     string `json:"shard"`
	Balance   string `json:"balance"`
	Held      string `json:"held"`
	Available string `json:"available"`
}

// TransferRequest moves Amount (a positive decimal) from the caller's
// wallet on FromShard to its wallet on ToShard.
type TransferRequest struct {
	FromShard      string `json:"from_shard"`
	ToShard        string `json:"to_shard"`
	Amount         string `json:"amount"`
	IdempotencyKey string `json:"-"`
}

// Transfer is a transfer between two wallets and how far it got.
type Transfer struct {
	ID        string  `json:"id"`
	FromShard string  `json:"from_shard"`
	ToShard   string  `json:"to_shard"`
	Amount    string  `json:"amount"`
	Status    string  `json:"status"`
	Code      *string `json:"code,omitempty"`
	CreatedAt string  `json:"created_at"`
}

// Market is one tradable GPU type in one region, e.g. "h100-sxm.us-east".
type Market struct {
	ID     string `json:"id"`
	GPU    string `json:"gpu"`
	Region string `json:"region"`
	// PreemptionNoticeSeconds is how long an outbid spot allocation keeps
	// its GPUs; nil from a server that does not send it.
	PreemptionNoticeSeconds *int `json:"preemption_notice_seconds,omitempty"`
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
	// DiscountVsSpot and DiscountVsCapacityBlock are the same against each
	// provider's spot and capacity-block rows.
	DiscountVsSpot          map[string]*string `json:"discount_vs_spot"`
	DiscountVsCapacityBlock map[string]*string `json:"discount_vs_capacity_block"`
	// DiscountBasis names each provider's row behind those discounts: the
	// on-demand rate to show next to DiscountVsReference is
	// DiscountBasis[provider].OnDemand.
	DiscountBasis map[string]DiscountBasis `json:"discount_basis"`
	// ForwardCurve is the best resting bid and ask per tenor × duration
	// bucket, only buckets with at least one order.
	ForwardCurve []CurvePoint `json:"forward_curve,omitempty"`
}

// Forward curve buckets: Tenor says when an order's window starts
// relative to now, Duration how long the window is.
const (
	Tenor24h       = "24h"
	Tenor7d        = "7d"
	Tenor30d       = "30d"
	TenorLater     = "later"
	DurationLE24h  = "le24h"
	DurationLE7d   = "le7d"
	DurationLonger = "longer"
)

// CurvePoint is one bucket of a forward curve: the best bid (highest) and
// best ask (lowest) with the GPUs at that price. A side without orders has
// a nil price and quantity 0.
type CurvePoint struct {
	Tenor       string  `json:"tenor"`
	Duration    string  `json:"duration"`
	BestBid     *string `json:"best_bid"`
	BidQuantity int64   `json:"bid_quantity"`
	BestAsk     *string `json:"best_ask"`
	AskQuantity int64   `json:"ask_quantity"`
}

// Reference is a cloud provider's published rate for a GPU.
type Reference struct {
	Provider      string `json:"provider"`
	InstanceType  string `json:"instance_type"`
	USDPerGPUHour string `json:"usd_per_gpu_hour"`
	PriceType     string `json:"price_type"`
	AsOf          string `json:"as_of"` // a date, YYYY-MM-DD; "" when the source is undated (null in JSON)
	Source        string `json:"source"`
	Region        string `json:"region"`     // the provider's own region name
	Confidence    string `json:"confidence"` // "high", "medium" or "low"
	// SameRegion: the provider's region is the market's region (always
	// false in a quote).
	SameRegion bool `json:"same_region"`
	// Stale: older than the server's staleness limit (judged at engine
	// time), or undated. Not omitted when false, so a re-encoded row (gpux
	// --json) says so as the server did.
	Stale bool `json:"stale"`
}

// ReferenceRatesSet answers a replacement of the reference-rate table.
type ReferenceRatesSet struct {
	Rates       int    `json:"rates"`        // rows of the table now in force
	EngineRates int    `json:"engine_rates"` // on-demand rates (GPU × provider) reference pegs now resolve against
	Hash        string `json:"hash"`         // hex SHA-256 of the table's canonical CSV (what ReferenceRates returns)
	Seq         uint64 `json:"seq"`          // the journaled set_reference_rates command
}

// DiscountBasis names, for one provider, the reference rows its discounts
// are computed against; nil where the provider has no row of that type.
type DiscountBasis struct {
	OnDemand      *Reference `json:"on_demand,omitempty"`
	Spot          *Reference `json:"spot,omitempty"`
	CapacityBlock *Reference `json:"capacity_block,omitempty"`
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
	Time      time.Time `json:"time,omitzero"` // engine time of the match
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
	Time      time.Time `json:"time,omitzero"` // engine time of the match
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
	// UnsoldQuantity is the GPUs of the hour under way not sold reserved.
	UnsoldQuantity int `json:"unsold_quantity"`
	// SpotSupply and SpotAllocated are the listing's GPUs offered to and
	// running spot in the hour under way.
	SpotSupply    int `json:"spot_supply"`
	SpotAllocated int `json:"spot_allocated"`
	// SpotEarned is what spot has paid the owner for this listing so far.
	SpotEarned   string    `json:"spot_earned"`
	SoldGPUHours int64     `json:"sold_gpu_hours"`
	Fills        []Fill    `json:"fills"`
	CreatedAt    time.Time `json:"created_at,omitzero"`
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
	// DurationHours makes a reserved bid flexible: it fills one contiguous
	// block of that many hours anywhere inside [Start, End).
	DurationHours int `json:"duration_hours,omitzero"`
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
	DurationHours  int        `json:"duration_hours,omitempty"`
	Status         string     `json:"status"`
	Reason         string     `json:"reason,omitempty"` // why a bid was rejected, expired or released
	FilledQuantity int        `json:"filled_quantity"`
	Allocated      int        `json:"allocated"`
	// Held is the money the bid still holds; Spent what it has paid.
	Held  string `json:"held"`
	Spent string `json:"spent"`
	// PreemptAt is set while an outbid spot allocation runs out its notice
	// (Status "preempting"); StartsAt while a spot bid waits for one.
	PreemptAt    *time.Time    `json:"preempt_at,omitempty"`
	StartsAt     *time.Time    `json:"starts_at,omitempty"`
	FillEstimate *FillEstimate `json:"fill_estimate,omitempty"`
	// FillEstimateSamples is set on a resting bid: the samples its
	// estimate's bucket holds, also while FillEstimate is nil (under 30).
	FillEstimateSamples *int      `json:"fill_estimate_samples,omitempty"`
	Fills               []Fill    `json:"fills"`
	CreatedAt           time.Time `json:"created_at,omitzero"`
}

// FillEstimate is how likely a resting bid is to fill, from the market's
// own history.
type FillEstimate struct {
	PFill1h       string `json:"p_fill_1h"`
	PFill24h      string `json:"p_fill_24h"`
	MedianSeconds *int64 `json:"median_seconds"`
	Samples       int64  `json:"samples"`
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
	Market      string    `json:"market"`
	Quantity    int       `json:"quantity"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	MinQuantity int       `json:"min_quantity,omitempty"`
	// DurationHours, BlockStart and BlockEnd answer a flexible quote: the
	// cheapest DurationHours-hour block inside [Start, End).
	DurationHours  int         `json:"duration_hours,omitempty"`
	BlockStart     *time.Time  `json:"block_start,omitempty"`
	BlockEnd       *time.Time  `json:"block_end,omitempty"`
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
	FillEstimate  *FillEstimate     `json:"fill_estimate,omitempty"`
	// FillEstimateSamples is the samples the estimate's bucket holds,
	// also while FillEstimate is nil (under 30).
	FillEstimateSamples int `json:"fill_estimate_samples"`
}

// QuoteQuery asks for a quote: Quantity GPUs over [Start, End) (zero times:
// the server's defaults), or, with DurationHours, the cheapest block of
// that many hours inside it; LimitPrice, when set, is the limit the fill
// estimate is for (default: the best ask).
type QuoteQuery struct {
	Quantity      int
	Start, End    time.Time
	DurationHours int
	LimitPrice    string
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

// History kinds: candles of reserved trades (volume in GPU-hours) or of
// the spot clearing price (volume 0).
const (
	KindTrades = "trades"
	KindSpot   = "spot"
)

// HistoryQuery selects candles. Interval is required; an empty Kind is
// KindTrades; a zero From or To is not sent (server default: the last
// 1000 intervals up to now).
type HistoryQuery struct {
	Interval string // Interval1m, Interval1h or Interval1d
	Kind     string // KindTrades or KindSpot
	From, To time.Time
}

// History is a market's candles, oldest first.
type History struct {
	Market   string   `json:"market"`
	Interval string   `json:"interval"`
	Kind     string   `json:"kind"`
	Candles  []Candle `json:"candles"`
}

// Health answers GET /healthz. Role, Shard, Leader and FencingToken are
// set by servers that run in roles (nil or zero otherwise).
type Health struct {
	Status                  string  `json:"status"`
	Ready                   bool    `json:"ready"`
	Writable                bool    `json:"writable"`
	Journal                 string  `json:"journal"` // "redis" or "memory"
	Durable                 bool    `json:"durable"`
	LastSeq                 uint64  `json:"last_seq"`
	RecoveredCommands       int64   `json:"recovered_commands"`
	RecoverySeconds         float64 `json:"recovery_seconds"`
	LastSnapshotSeq         uint64  `json:"last_snapshot_seq"`
	SnapshotPauseSeconds    float64 `json:"snapshot_pause_seconds"`
	MaxSnapshotPauseSeconds float64 `json:"max_snapshot_pause_seconds"`
	FeedClients             int64   `json:"feed_clients"`
	Warning                 string  `json:"warning,omitempty"`
	Role                    string  `json:"role,omitempty"`
	Shard                   *string `json:"shard,omitempty"`
	Leader                  *bool   `json:"leader,omitempty"`
	FencingToken            *int64  `json:"fencing_token,omitempty"`
}

// Statement line kinds (API.md Additions); a server may add others.
const (
	StatementDeposit     = "deposit"
	StatementWithdrawal  = "withdrawal"
	StatementReserved    = "reserved_fill"
	StatementSpotCharge  = "spot_charge"
	StatementSpotEarning = "spot_earning"
	StatementFee         = "fee"
	StatementSpotAccrued = "spot_accrued"
)

// StatementLine is one movement of an account's balance. The Amounts of a
// period sum exactly to the change of the balance over it.
type StatementLine struct {
	At           time.Time `json:"at"`
	Kind         string    `json:"kind"`
	Amount       string    `json:"amount"` // signed decimal: negative debits
	BalanceAfter string    `json:"balance_after"`
	Ref          string    `json:"ref"` // the bid, listing or deposit the line belongs to
	// Shard names the wallet in a statement an API node merged across
	// shards; empty otherwise.
	Shard string `json:"shard,omitempty"`
}

// StatementQuery selects statement lines in [From, To); zero times are
// not sent (server default). Limit and Cursor page as in ListQuery.
type StatementQuery struct {
	From, To time.Time
	Limit    int
	Cursor   string
	// Shard asks an API node for one wallet's statement; empty: every
	// wallet's lines merged (one shard: that one).
	Shard string
}

// UserEvent is the data of a "user" channel update: one event of the
// account (Event "filled", "spot_allocated", "balance_changed",
// "spot_preempting", ...). Fields not used by an event are zero.
type UserEvent struct {
	Event     string     `json:"event"`
	Market    string     `json:"market,omitempty"`
	BidID     string     `json:"bid_id,omitempty"`
	ListingID string     `json:"listing_id,omitempty"`
	Fill      *Trade     `json:"fill,omitempty"`
	Quantity  int        `json:"quantity,omitempty"`
	Allocated *int       `json:"allocated,omitempty"`
	Price     *string    `json:"price,omitempty"`
	Balance   *string    `json:"balance,omitempty"`
	Held      *string    `json:"held,omitempty"`
	Available *string    `json:"available,omitempty"`
	Reason    string     `json:"reason,omitempty"`
	PreemptAt *time.Time `json:"preempt_at,omitempty"`

	// A "ledger" event is one statement line (see StatementLine): what
	// moved the balance, by how much, the balance after and the id it
	// refers to.
	Kind         string     `json:"kind,omitempty"`
	Amount       string     `json:"amount,omitempty"`
	BalanceAfter string     `json:"balance_after,omitempty"`
	Ref          *string    `json:"ref,omitempty"`
	At           *time.Time `json:"at,omitempty"`
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
	// Raw is the message exactly as the server sent it, for a caller that
	// passes messages on (gpux watch --json): re-encoding a Message drops
	// what it has no field for and the zero values it omits, such as a
	// snapshot's "seq": 0. Nil for messages the client makes itself
	// (MsgGap, MsgReconnect).
	Raw json.RawMessage `json:"-"`
}

// Decode unmarshals m.Data into v, e.g. a Trade for a "trades:<market>"
// update.
func (m Message) Decode(v any) error { return json.Unmarshal(m.Data, v) }
