package engine

// EventKind names an event.
type EventKind uint8

// Event kinds.
const (
	EvRejected EventKind = iota + 1
	EvAccountCreated
	EvBalanceChanged
	EvListingPlaced
	EvListingCancelled
	EvListingEnded
	EvListingRepriced
	EvBidPlaced
	EvBidCancelled
	EvBidExpired
	EvBidRepriced
	EvFilled
	EvSpotAllocated
	EvSpotPreempted
	EvSpotMoved
	EvSpotReleased
	EvSpotPriceChanged
	EvIdempotentReplay
	EvReferenceRatesSet
	EvHourStarted // per market, when a new hour's supply takes effect
)

var eventNames = [...]string{"", "rejected", "account_created", "balance_changed", "listing_placed", "listing_cancelled", "listing_ended", "listing_repriced", "bid_placed", "bid_cancelled", "bid_expired", "bid_repriced", "filled", "spot_allocated", "spot_preempted", "spot_moved", "spot_released", "spot_price_changed", "idempotent_replay", "reference_rates_set", "hour_started"}

func (k EventKind) String() string {
	if int(k) < len(eventNames) {
		return eventNames[k]
	}
	return "unknown"
}

// Preemption and release reasons.
const (
	ReasonOutbid              = "outbid"
	ReasonReservationStarting = "reservation_starting"
	ReasonListingCancelled    = "listing_cancelled"
	ReasonHourBoundary        = "hour_boundary"
	ReasonInsufficientFunds   = "insufficient_funds"
	ReasonCancelled           = "cancelled"
)

// Event is one change the engine made. Accounts lists the accounts it
// concerns (zero ids are unused slots), so a user feed can route it.
type Event struct {
	Kind     EventKind
	Seq      uint64 // the command's sequence number
	Time     Time
	Market   string
	Accounts [2]ID
	Bid      ID
	Listing  ID
	Fill     Fill

	// Quantity is GPUs gained (allocated), lost (preempted, released) or
	// moved; Allocated is the bid's allocation after the event.
	Quantity  int64
	Allocated int64

	Price    Price // spot price, or a repriced order's new price
	HasPrice bool

	// Balance and Held after a balance change.
	Balance Money
	Held    Money

	Reason string
	Err    *Error
}

// Fill is a reserved trade: Quantity GPUs for every hour of [Start, End) at
// Price per GPU-hour, priced at the maker's price.
type Fill struct {
	ID        ID
	Market    string
	BidID     ID
	ListingID ID
	Buyer     ID
	Owner     ID
	Quantity  int64
	Price     Price
	Start     Time
	End       Time
	Time      Time
	Fee       Money
}

// GPUHours is Quantity × hours of the window.
func (f Fill) GPUHours() int64 { return f.Quantity * int64((f.End-f.Start)/Hour) }

// Cost is what the buyer paid.
func (f Fill) Cost() Money { return Money(f.GPUHours()) * Money(f.Price) }
