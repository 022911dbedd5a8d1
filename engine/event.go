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
	EvLedger      // one line of an account's statement: a money movement
	// EvBidClosed and EvListingClosed say the object can no longer change
	// and has left the engine; FinalBid / FinalListing hold its final
	// state for the read side, which answers for it from then on.
	EvBidClosed
	EvListingClosed
	// EvSpotPreempting: the clearing took Quantity GPUs from a running
	// bid; it keeps them until PreemptAt, paying Price (the clearing
	// price capped at its limit). EvSpotPreempted follows at the deadline
	// unless EvSpotPreemptionWithdrawn comes first.
	EvSpotPreempting
	EvSpotPreemptionWithdrawn
)

var eventNames = [...]string{"", "rejected", "account_created", "balance_changed", "listing_placed", "listing_cancelled", "listing_ended", "listing_repriced", "bid_placed", "bid_cancelled", "bid_expired", "bid_repriced", "filled", "spot_allocated", "spot_preempted", "spot_moved", "spot_released", "spot_price_changed", "idempotent_replay", "reference_rates_set", "hour_started", "ledger", "bid_closed", "listing_closed", "spot_preempting", "spot_preemption_withdrawn"}

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
	// Fill is the trade (EvFilled): the engine's own record, shared with
	// the bid's and the listing's fill lists, so readers must not change it.
	// A pointer keeps every event small: events are copied per command.
	Fill *Fill

	// Quantity is GPUs gained (allocated), lost (preempted, released) or
	// moved; Allocated is the bid's allocation after the event.
	Quantity  int64
	Allocated int64

	Price    Price // spot price, or a repriced order's new price
	HasPrice bool

	// Balance and Held after a balance change.
	Balance Money
	Held    Money

	// PreemptAt is when GPUs under notice leave (spot_preempting).
	PreemptAt Time

	Reason string
	Err    *Error

	// A ledger line (EvLedger): Accounts[0] is the account, Amount the
	// signed change of its balance, Balance the balance after this line
	// (the balance less spot accrual not posted yet, so the lines of one
	// account chain: each Balance is the previous plus Amount), Ref the
	// bid, listing or fill it is for.
	Ledger LedgerKind
	Amount Money
	Ref    ID

	FinalBid     *BidView     // EvBidClosed
	FinalListing *ListingView // EvListingClosed
}

// LedgerKind names what moved an account's balance.
type LedgerKind uint8

// Ledger kinds. Spot accrues every second into the balance, but is posted
// as lines per placement at least hourly (the first command of each hour),
// whenever the placement's units change and when the bid stops; what has
// accrued since is AccountView.Accrued.
const (
	LedgerDeposit         LedgerKind = iota + 1
	LedgerWithdrawal                 // negative
	LedgerReservedFill               // the buyer's charge for a fill (negative); Ref the fill
	LedgerReservedEarning            // the owner's part of a fill, less the fee; Ref the fill
	LedgerSpotCharge                 // the buyer's spot charge (negative); Ref the bid
	LedgerSpotEarning                // the owner's spot earning, less the fee; Ref the listing
	LedgerFee                        // the platform fee, to FeeAccount; Ref the fill or spot bid
)

var ledgerNames = [...]string{"", "deposit", "withdrawal", "reserved_fill", "reserved_earning", "spot_charge", "spot_earning", "fee"}

func (k LedgerKind) String() string {
	if int(k) < len(ledgerNames) {
		return ledgerNames[k]
	}
	return "unknown"
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
