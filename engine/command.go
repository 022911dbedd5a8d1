package engine

// Kind names a command.
type Kind uint8

// Command kinds.
const (
	CmdCreateAccount Kind = iota + 1
	CmdDeposit
	CmdWithdraw
	CmdPlaceListing
	CmdCancelListing
	CmdPlaceBid
	CmdCancelBid
	CmdTick
	CmdSetReferenceRates
)

var kindNames = [...]string{"", "create_account", "deposit", "withdraw", "place_listing", "cancel_listing", "place_bid", "cancel_bid", "tick", "set_reference_rates"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Command is one input to the engine. The sequencer stamps Seq, Time and any
// new id (Target for the object a command creates); the engine reads nothing
// else from the outside world. Fields a kind does not use stay zero.
type Command struct {
	Seq  uint64
	Time Time
	Kind Kind

	// Actor is the account issuing the command; zero for the operator
	// (admin key) and for ticks.
	Actor ID
	// Target is the new object's id (create account, place listing, place
	// bid) or the object acted on (deposit, withdraw, cancel).
	Target ID

	// Create account.
	Name    string
	Roles   Role
	KeyHash [32]byte

	// Deposit, withdraw.
	Amount Money

	// Listings and bids.
	Market        string
	BidType       BidType
	Quantity      int64
	MinQuantity   int64 // 0 = all-or-none (= Quantity)
	Start, End    Time
	ExpiresAt     Time  // 0 = none
	Price         Price // reserve price or limit price
	PricePeg      Peg
	SpotFloor     Price // 0 = not offered to spot
	SpotFloorPeg  Peg
	ClientOrderID string
	// DurationHours > 0 makes a reserved bid flexible: it fills one
	// contiguous block of that many hours inside [Start, End).
	DurationHours int64

	// IdemKey makes a create command idempotent per actor for 24 h: a
	// repeat with the same IdemHash answers with the first object; a
	// different IdemHash is rejected with idempotency_key_reused.
	IdemKey  string
	IdemHash [32]byte

	// Set reference rates.
	Rates []ReferenceRate
	// RatesTable is the whole reference table the rates came from (its
	// canonical CSV), opaque to the engine and kept with them, so the
	// table an admin installed outlives a restart; at most MaxRatesTable
	// bytes. Empty: none (the server's configured table applies).
	RatesTable []byte
}

// PegKind tells what a pegged price follows.
type PegKind uint8

// Peg kinds.
const (
	PegNone PegKind = iota
	PegReference
	PegSpot
)

// Peg makes a price follow a reference rate or the market's spot price.
// Reference: price = rate × (1 − Discount/10000). Spot: price = spot + Offset.
// Either is clamped to [Floor, Cap] where those are non-zero.
type Peg struct {
	Kind     PegKind
	Provider string
	Discount int64 // fraction in 1/10000 (0.40 = 4000)
	Offset   Price // may be negative
	Cap      Price // 0 = none
	Floor    Price // 0 = none
}

// ReferenceRate is one provider's on-demand price for one GPU, as the
// engine needs it for reference pegs.
type ReferenceRate struct {
	GPU      string
	Provider string
	Price    Price
}
