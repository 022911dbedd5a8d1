package engine

import "fmt"

// Config is what an operator chooses. It is part of the state (and of the
// snapshot and hash), so a replay uses the configuration it was made with.
type Config struct {
	// Markets this shard owns. Empty means the default catalogue.
	Markets []Market
	// FeeBps is the platform fee in basis points of every charge, paid by
	// the owner's side into FeeAccount. Default 0.
	FeeBps int64
	// RecentTrades is how many fills each market keeps for queries.
	RecentTrades int
}

// Account is a participant: a buyer, an owner or both.
type Account struct {
	ID        ID
	Name      string
	Roles     Role
	KeyHash   [32]byte
	Balance   Money
	Held      Money
	CreatedAt Time
	Seq       uint64

	// unposted is spot accrual settled into Balance but not yet posted as
	// ledger lines (negative for a buyer): Balance − unposted is the
	// balance after the account's last ledger line.
	unposted Money

	// open bids, in sequence order: a list through Bid.aPrev/aNext
	bidHead, bidTail uint32
	nBids            int
	listings         listingList     // active listings
	coids            map[string]*Bid // open bids by client_order_id
	dirty            uint64          // Engine.cmd when last touched
}

// Available is the balance not held for resting bids.
func (a *Account) Available() Money { return a.Balance - a.Held }

// Listing is an owner's offer of Quantity GPUs in every hour of [Start, End).
type Listing struct {
	ID         ID
	Seq        uint64
	Owner      ID
	Market     string
	Quantity   int64
	Start, End Time
	Reserve    Price
	ReservePeg Peg
	SpotFloor  Price // 0 = not offered to spot
	FloorPeg   Peg
	Status     ListingStatus
	CreatedAt  Time
	Fills      []*Fill
	SpotEarned Money

	m          *market
	sold       *soldHours
	spotUnits  int64 // offered to spot this hour
	inUse      int64 // units the clearing puts in use
	placed     int64 // units bids sit on (= inUse after every command)
	placements []*placement
	mark       uint64
	newInUse   int64
	bookKey    listingKey
	freeMask   uint64 // hours with a GPU free, by hour mod 64 (setFreeMask)
	keyFloor   Price  // the floor its supply entries are keyed by
	cutReason  string
	held       int64          // units kept by bids under notice (outside inUse)
	links      [3]listingLink // on the engine's, its owner's and its market's lists
	pend       int64          // placed units waiting for held units to leave
}

// Bid is a buyer's reserved or spot bid. Bids live in the engine's slab
// (see bidstore.go); what most resting bids lack (an expiry, a peg, a
// client order id, fills, a flexible window) lives in *bidExtra, so a
// plain resting bid stays small (TestRestingBidMemory).
type Bid struct {
	ID          ID
	Seq         uint64
	Buyer       ID
	Quantity    int64
	MinQuantity int64
	Filled      int64
	Start, End  Time
	Limit       Price
	CreatedAt   Time
	Hold        Money // still held for the unfilled part (reserved)

	m *market
	x *bidExtra // nil: none of its fields set

	// *spotBid holds what only a spot bid needs (nil for a reserved bid,
	// which is most of a resting book: this keeps a resting bid small).
	*spotBid

	h            uint32 // this bid's handle in the slab
	qPrev, qNext uint32 // its price level's queue (resting reserved bids)
	aPrev, aNext uint32 // its account's open bids; aNext links the free list
	heapIdx      int32  // position in the expiry heap; -1 when not in it

	Type        BidType
	Status      BidStatus
	closeReason reasonCode
	inBook      bool // in its market's resting book
}

// bidExtra is what only some bids carry.
type bidExtra struct {
	expiresAt     Time
	limitPeg      Peg // PegNone: a fixed limit
	clientOrderID string
	fills         []*Fill
	// flex is set (hours > 0) for a flexible reserved bid: one block of
	// flex.hours inside [flex.start, flex.end). Until its first fill
	// Start/End are those bounds; the first fill pins them to the block.
	flex flexBid
}

func (b *Bid) ext() *bidExtra {
	if b.x == nil {
		b.x = &bidExtra{}
	}
	return b.x
}

// ExpiresAt is when a resting reserved bid lapses (0: at its start).
func (b *Bid) ExpiresAt() Time {
	if b.x == nil {
		return 0
	}
	return b.x.expiresAt
}

// ClientOrderID is the buyer's own id for the bid ("" when none).
func (b *Bid) ClientOrderID() string {
	if b.x == nil {
		return ""
	}
	return b.x.clientOrderID
}

// Fills are the bid's reserved fills, oldest first.
func (b *Bid) Fills() []*Fill {
	if b.x == nil {
		return nil
	}
	return b.x.fills
}

// flex is the flexible window of a flexible reserved bid, nil otherwise.
func (b *Bid) flex() *flexBid {
	if b.x == nil || b.x.flex.hours == 0 {
		return nil
	}
	return &b.x.flex
}

// Market is the id of the bid's market.
func (b *Bid) Market() string { return b.m.ID }

// Reason is why the bid closed, as the API names it ("" when open).
func (b *Bid) Reason() string { return reasonNames[b.closeReason] }

func (b *Bid) key() bidKey { return bidKey{b.Limit, b.Seq} }

// reasonCode is a close reason in one byte (a string would be 16 bytes
// on every bid).
type reasonCode uint8

var reasonNames = [...]string{"", ReasonOutbid, ReasonReservationStarting, ReasonListingCancelled, ReasonHourBoundary, ReasonInsufficientFunds, ReasonCancelled}

func reasonOf(s string) (reasonCode, bool) {
	for i, n := range reasonNames {
		if n == s {
			return reasonCode(i), true
		}
	}
	return 0, false
}

func (b *Bid) setReason(s string) {
	c, ok := reasonOf(s)
	if !ok {
		panic("engine: unknown close reason " + s)
	}
	b.closeReason = c
}

type spotBid struct {
	Spent      Money // spot charges so far
	won        int64 // spot units won by the clearing (= allocated)
	placed     int64
	placements []*placement
	mark       uint64
	newWon     int64
	displaced  int64
	broke      bool
	reason     string
	noticed    int64     // units kept under notice
	notices    []*notice // this bid's entries of its market's notices, in the same order
	noticeEv   int64     // units put under notice by this recompute
	withdrawn  int64     // units whose notice this recompute withdrew
	pend       int64     // placed units not yet started (waiting for a notice)
}

// LimitPeg is what the bid's limit follows (the zero Peg: a fixed limit).
func (b *Bid) LimitPeg() Peg {
	if b.x == nil {
		return Peg{}
	}
	return b.x.limitPeg
}

// pegKind is LimitPeg().Kind without the copy.
func (b *Bid) pegKind() PegKind {
	if b.x == nil {
		return PegNone
	}
	return b.x.limitPeg.Kind
}

// Allocated is the number of GPUs a spot bid holds now (0 for reserved).
func (b *Bid) Allocated() int64 {
	if b.spotBid == nil {
		return 0
	}
	return b.won
}

// spent is what a spot bid has paid so far (0 for reserved).
func (b *Bid) spent() Money {
	if b.spotBid == nil {
		return 0
	}
	return b.Spent
}

// Hours is the length of a reserved bid's window in hours.
func (b *Bid) Hours() int64 {
	if f := b.flex(); f != nil {
		return f.hours
	}
	return int64((b.End - b.Start) / Hour)
}

// flexible reports whether a reserved bid still chooses its block.
func (b *Bid) flexible() bool {
	f := b.flex()
	return f != nil && b.End-b.Start > Time(f.hours)*Hour
}

type flexBid struct {
	hours      int64
	start, end Time
}

// expiryOf is when a resting reserved bid stops: when its (last possible)
// start is no longer in the future, or at expires_at if earlier.
func expiryOf(b *Bid) Time {
	if b.x == nil {
		return b.Start // a fixed window of whole hours: End − hours = Start
	}
	exp := b.End - Time(b.Hours())*Hour
	if b.x.expiresAt != 0 && b.x.expiresAt < exp {
		exp = b.x.expiresAt
	}
	return exp
}

type placement struct {
	bid     *Bid
	listing *Listing
	units   int64
	pend    int64 // of units, not started: held by a bid under notice
	i0      int64 // market price integral when last settled
	rem     int64 // sub-tick remainder carried to the next settlement
	feeRem  int64 // fee remainder, in 1/10000 of a tick

	// Settled since the placement's last ledger lines (see postPlacement).
	charged, earned, fees Money
}

type listingKey struct {
	price Price
	seq   uint64
}

func cmpListingKey(a, b listingKey) int {
	switch {
	case a.price < b.price:
		return -1
	case a.price > b.price:
		return 1
	case a.seq < b.seq:
		return -1
	case a.seq > b.seq:
		return 1
	}
	return 0
}

type bidKey struct {
	price Price
	seq   uint64
}

// cmpBidKey orders bids by price descending, then oldest first.
func cmpBidKey(a, b bidKey) int {
	switch {
	case a.price > b.price:
		return -1
	case a.price < b.price:
		return 1
	case a.seq < b.seq:
		return -1
	case a.seq > b.seq:
		return 1
	}
	return 0
}

type market struct {
	Market
	listings listingBook // active listings with capacity, cheapest reserve first
	active   listingList // active listings, oldest first
	resting  restingBook // resting reserved bids, best first
	spot     spotBook
	trades   []Fill // ring of recent fills
	tradeN   int    // fills ever, for the ring position
	pegged   []*Bid // open bids with a pegged limit
	peggedL  []*Listing
}

// expiryHeap is a binary min-heap of resting bids by (expiry, seq); the
// expiry is computed from the bid (expiryOf), so an entry is one pointer.
// Typed rather than container/heap, so a push does not box its value.
type expiryHeap []*Bid

func (h expiryHeap) less(i, j int) bool {
	a, b := expiryOf(h[i]), expiryOf(h[j])
	if a != b {
		return a < b
	}
	return h[i].Seq < h[j].Seq
}

// swap exchanges two entries and keeps each bid's heapIdx true.
func (h expiryHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx = int32(i)
	h[j].heapIdx = int32(j)
}

func (h *expiryHeap) push(b *Bid) {
	*h = append(*h, b)
	b.heapIdx = int32(len(*h) - 1)
	h.up(len(*h) - 1)
}

func (h expiryHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(i, p) {
			break
		}
		h.swap(i, p)
		i = p
	}
}

func (h *expiryHeap) pop() *Bid {
	top := (*h)[0]
	h.remove(0)
	return top
}

// remove takes out the entry at i (a bid closed before it expired).
func (h *expiryHeap) remove(i int) {
	s := *h
	n := len(s) - 1
	s[i].heapIdx = -1
	if i != n {
		s[i] = s[n]
		s[i].heapIdx = int32(i)
	}
	s[n] = nil
	s = s[:n]
	*h = s
	if i < n {
		s.down(i)
		s.up(i)
	}
}

func (h expiryHeap) down(i int) {
	for {
		l, m := 2*i+1, i
		if l < len(h) && h.less(l, m) {
			m = l
		}
		if r := l + 1; r < len(h) && h.less(r, m) {
			m = r
		}
		if m == i {
			return
		}
		h.swap(i, m)
		i = m
	}
}

// init orders an unordered slice into a heap.
func (h expiryHeap) init() {
	for i := range h {
		h[i].heapIdx = int32(i)
	}
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

type idemKey struct {
	account ID
	key     string
}

type idemEntry struct {
	hash    [32]byte
	target  ID
	expires Time
	key     idemKey
}

// IdempotencyWindow is how long an idempotency key is remembered.
const IdempotencyWindow = 24 * Hour

// Engine is the exchange state machine. Use New; drive it with Apply from
// one goroutine.
type Engine struct {
	cfg Config
	seq uint64
	now Time

	accounts     map[ID]*Account
	accountOrder []*Account
	keys         map[[32]byte]*Account
	markets      map[string]*market
	marketOrder  []*market
	bids         *bidTable // open bids by id, in their slab
	listings     map[ID]*Listing
	listingOrder listingList // active listings, in sequence order
	expiries     expiryHeap
	idem         map[idemKey]*idemEntry
	idemQueue    []*idemEntry // in expiry order: expiries only grow
	rates        map[[2]string]Price
	ratesTable   string // the reference table the rates came from (CSV), "" = none
	fillCounter  uint64
	// supply is deposits less withdrawals: the sum of every balance,
	// bounded by MaxMoney.
	supply Money

	// quiet is set by ApplyReplay: no events are built.
	quiet bool

	// per-command scratch
	events     []Event
	dirty      []*Account // touched by this command, each once (Account.dirty)
	cmd        uint64     // commands applied by this value (marks dirty accounts)
	epoch      uint64
	cands      []candidate
	recheck    []*Bid
	spotL      []*Listing
	spotB      []*Bid
	flexStarts []Time

	// Final views of closed objects are carved from chunks: the read side
	// keeps each one, so they cannot be reused, but one allocation serves
	// viewChunk closes.
	bidViews     []BidView
	listingViews []ListingView
	fillCopies   []Fill // the fills of final views, carved the same way
	fillRecs     []Fill // the engine's fill records (newFill)
	// Retired listings, reused by the next placement with their sold-hours
	// buffer (see newListing).
	freeListings []*Listing
}

const viewChunk = 64

// newFill returns a zeroed fill record, carved fillChunk/4 to an
// allocation: a record is never changed or reused once made (the bid, the
// listing, the EvFilled event and the read side share it), so records are
// only ever added; a chunk is freed when none of its records is held.
func (e *Engine) newFill() *Fill {
	if len(e.fillRecs) == cap(e.fillRecs) {
		e.fillRecs = make([]Fill, 0, fillChunk/4)
	}
	e.fillRecs = e.fillRecs[:len(e.fillRecs)+1]
	return &e.fillRecs[len(e.fillRecs)-1]
}

// fillChunk is how many fills one allocation holds for final views; a
// view with more than a quarter of it gets its own.
const fillChunk = 128

// newFills returns n fills for a final view, capped at n so an append by
// the reader never writes into the next view's. Only a command may call
// it: it changes the engine (queries make their own, see Bid.view).
func (e *Engine) newFills(n int) []Fill {
	if n > fillChunk/4 {
		return make([]Fill, n)
	}
	if cap(e.fillCopies)-len(e.fillCopies) < n || e.fillCopies == nil {
		e.fillCopies = make([]Fill, 0, fillChunk)
	}
	i := len(e.fillCopies)
	e.fillCopies = e.fillCopies[:i+n]
	return e.fillCopies[i : i+n : i+n]
}

func (e *Engine) newBidView() *BidView {
	if len(e.bidViews) == cap(e.bidViews) {
		e.bidViews = make([]BidView, 0, viewChunk)
	}
	e.bidViews = e.bidViews[:len(e.bidViews)+1]
	return &e.bidViews[len(e.bidViews)-1]
}

func (e *Engine) newListingView() *ListingView {
	if len(e.listingViews) == cap(e.listingViews) {
		e.listingViews = make([]ListingView, 0, viewChunk)
	}
	e.listingViews = e.listingViews[:len(e.listingViews)+1]
	return &e.listingViews[len(e.listingViews)-1]
}

type candidate struct {
	l *Listing
	q int64
}

// New returns an empty engine for the configured markets, holding only the
// fee account. It panics when cfg.FeeBps is outside [0, 10000] (the
// server validates its flags; a fee above the charge has no meaning).
func New(cfg Config) *Engine {
	if cfg.FeeBps < 0 || cfg.FeeBps > 10000 {
		panic(fmt.Sprintf("engine: fee %d bps outside [0, 10000]", cfg.FeeBps))
	}
	if len(cfg.Markets) == 0 {
		cfg.Markets = Catalogue(DefaultGPUs, DefaultRegions)
	}
	if cfg.RecentTrades <= 0 {
		cfg.RecentTrades = 1000
	}
	e := &Engine{
		cfg:      cfg,
		accounts: map[ID]*Account{},
		keys:     map[[32]byte]*Account{},
		markets:  map[string]*market{},
		bids:     &bidTable{},
		listings: map[ID]*Listing{},
		idem:     map[idemKey]*idemEntry{},
		rates:    map[[2]string]Price{},
	}
	e.listingOrder.which = inEngine
	for _, mk := range cfg.Markets {
		m := &market{Market: mk, active: listingList{which: inMarket}}
		m.resting = newRestingBook(e.bids)
		m.spot.init()
		e.markets[mk.ID] = m
		e.marketOrder = append(e.marketOrder, m)
	}
	fee := &Account{ID: FeeAccount, Name: "platform-fees", Roles: RoleAdmin, coids: map[string]*Bid{}, listings: listingList{which: inAccount}}
	e.accounts[fee.ID] = fee
	e.accountOrder = append(e.accountOrder, fee)
	return e
}

// Seq is the sequence number of the last applied command.
func (e *Engine) Seq() uint64 { return e.seq }

// Now is the engine time of the last applied command.
func (e *Engine) Now() Time { return e.now }

// Apply executes one command and returns the events it caused. A rejected
// command changes nothing and yields one EvRejected event plus the *Error
// (nil when the command was applied; the same value the event carries).
// The returned slice is reused by the next Apply; copy what you keep.
func (e *Engine) Apply(c *Command) ([]Event, *Error) {
	e.events = e.events[:0]
	e.cmd++
	if c.Seq != 0 && c.Seq <= e.seq {
		err := errorf(CodeInvalidCommand, "seq", fmt.Sprintf("sequence %d is not after %d", c.Seq, e.seq))
		e.emit(Event{Kind: EvRejected, Err: err, Accounts: [2]ID{c.Actor}})
		return e.events, err
	}
	if c.Seq != 0 {
		e.seq = c.Seq
	} else {
		e.seq++
	}
	t := c.Time
	if t < e.now {
		t = e.now // time never goes back
	}
	if e.now != 0 && t.HourStart() > e.now.HourStart() {
		e.now = t
		e.rollHour()
	}
	e.now = t
	err := e.dispatch(c)
	if err != nil {
		e.emit(Event{Kind: EvRejected, Err: err, Accounts: [2]ID{c.Actor}, Market: c.Market, Bid: bidTarget(c), Listing: listingTarget(c)})
	}
	e.flushBalances()
	return e.events, err
}

// ApplyReplay applies c exactly as Apply does (same state, same hash, same
// error) but builds no events: recovery replays journaled commands whose
// events were delivered when they first ran, and nobody reads them again.
func (e *Engine) ApplyReplay(c *Command) *Error {
	e.quiet = true
	_, err := e.Apply(c)
	e.quiet = false
	e.events = e.events[:0]
	return err
}

func bidTarget(c *Command) ID {
	if c.Kind == CmdPlaceBid || c.Kind == CmdCancelBid {
		return c.Target
	}
	return ID{}
}

func listingTarget(c *Command) ID {
	if c.Kind == CmdPlaceListing || c.Kind == CmdCancelListing {
		return c.Target
	}
	return ID{}
}

// dispatch runs a command. Every branch validates completely before it
// changes anything, so a returned *Error means nothing changed.
func (e *Engine) dispatch(c *Command) *Error {
	switch c.Kind {
	case CmdCreateAccount:
		return e.createAccount(c)
	case CmdDeposit:
		return e.deposit(c)
	case CmdWithdraw:
		return e.withdraw(c)
	case CmdPlaceListing:
		return e.placeListing(c)
	case CmdCancelListing:
		return e.cancelListing(c)
	case CmdPlaceBid:
		return e.placeBid(c)
	case CmdCancelBid:
		return e.cancelBid(c)
	case CmdTick:
		e.tick()
		return nil
	case CmdSetReferenceRates:
		return e.setReferenceRates(c)
	}
	return errorf(CodeInvalidCommand, "kind", fmt.Sprintf("unknown command kind %d", c.Kind))
}

func (e *Engine) emit(ev Event) {
	if e.quiet {
		return
	}
	ev.Seq = e.seq
	ev.Time = e.now
	e.events = append(e.events, ev)
}

// touch marks an account whose balance changed; one EvBalanceChanged per
// account is emitted at the end of the command.
func (e *Engine) touch(a *Account) {
	if e.quiet {
		return
	}
	if a.dirty != e.cmd {
		a.dirty = e.cmd
		e.dirty = append(e.dirty, a)
	}
}

func (e *Engine) flushBalances() {
	for _, a := range e.dirty {
		e.emit(Event{Kind: EvBalanceChanged, Accounts: [2]ID{a.ID}, Balance: a.Balance, Held: a.Held})
	}
	e.dirty = e.dirty[:0]
}

func (e *Engine) actor(c *Command, role Role) (*Account, *Error) {
	a := e.accounts[c.Actor]
	if a == nil {
		return nil, errorf(CodeForbidden, "", "unknown account")
	}
	if !a.Roles.Has(role) {
		return nil, errorf(CodeForbidden, "", "the account lacks the "+role.Names()[0]+" role")
	}
	return a, nil
}

// ---- accounts and ledger ----

func (e *Engine) createAccount(c *Command) *Error {
	if found, err := e.checkIdem(c); found || err != nil {
		return err
	}
	if c.Name == "" || len(c.Name) > 100 {
		return errorf(CodeInvalidName, "name", "name must be 1 to 100 characters")
	}
	if c.Roles == 0 || c.Roles&^(RoleBuyer|RoleOwner|RoleAdmin) != 0 {
		return errorf(CodeInvalidRole, "roles", "roles must be buyer, owner or both")
	}
	if c.Target.IsZero() {
		return errorf(CodeInvalidCommand, "id", "missing account id")
	}
	if e.accounts[c.Target] != nil {
		return errorf(CodeDuplicateID, "id", "account id already exists")
	}
	if c.KeyHash != ([32]byte{}) && e.keys[c.KeyHash] != nil {
		return errorf(CodeDuplicateID, "api_key", "api key already in use")
	}
	a := &Account{ID: c.Target, Name: c.Name, Roles: c.Roles, KeyHash: c.KeyHash, CreatedAt: e.now, Seq: e.seq, coids: map[string]*Bid{}, listings: listingList{which: inAccount}}
	e.accounts[a.ID] = a
	e.accountOrder = append(e.accountOrder, a)
	if c.KeyHash != ([32]byte{}) {
		e.keys[c.KeyHash] = a
	}
	e.rememberIdem(c, a.ID)
	e.emit(Event{Kind: EvAccountCreated, Accounts: [2]ID{a.ID}})
	return nil
}

func (e *Engine) deposit(c *Command) *Error {
	if found, err := e.checkIdem(c); found || err != nil {
		return err
	}
	a := e.accounts[c.Target]
	if a == nil || a.ID == FeeAccount {
		return errorf(CodeNotFound, "id", "no such account")
	}
	if c.Amount <= 0 || c.Amount > MaxAmount {
		return errorf(CodeInvalidAmount, "amount", "amount must be positive and at most 1e12")
	}
	// The balance is part of the supply, so this bounds it too.
	supply, ok := addMoney(e.supply, c.Amount)
	if !ok {
		return errorf(CodeAmountTooLarge, "amount", fmt.Sprintf("the exchange holds at most %s in all; %s more would pass it", MaxMoney, c.Amount))
	}
	e.supply = supply
	credit(a, c.Amount)
	e.post(a, LedgerDeposit, c.Amount, ID{})
	e.touch(a)
	e.rememberIdem(c, a.ID)
	return nil
}

func (e *Engine) withdraw(c *Command) *Error {
	if found, err := e.checkIdem(c); found || err != nil {
		return err
	}
	a := e.accounts[c.Target]
	if a == nil {
		return errorf(CodeNotFound, "id", "no such account")
	}
	if !c.Actor.IsZero() && c.Actor != a.ID {
		return errorf(CodeNotFound, "id", "no such account")
	}
	if c.Amount <= 0 || c.Amount > MaxAmount {
		return errorf(CodeInvalidAmount, "amount", "amount must be positive and at most 1e12")
	}
	if c.Amount > a.Available() {
		return errorf(CodeInsufficientFunds, "amount", fmt.Sprintf("available %s is less than %s", a.Available(), c.Amount))
	}
	a.Balance -= c.Amount // ≤ available: never negative
	e.supply -= c.Amount
	e.post(a, LedgerWithdrawal, -c.Amount, ID{})
	e.touch(a)
	e.rememberIdem(c, a.ID)
	return nil
}

// pay moves a charge from buyer to owner less the platform fee. The caller
// ensures the buyer can pay. feeRem carries the fee's sub-tick remainder
// between the many small charges of one spot placement (nil: none).
func (e *Engine) pay(buyer, owner *Account, amt Money, feeRem *int64) Money {
	var rem int64
	if feeRem != nil {
		rem = *feeRem
	}
	fee, rem := feeOf(amt, e.cfg.FeeBps, rem)
	if feeRem != nil {
		*feeRem = rem
	}
	buyer.Balance -= amt // the caller checked amt ≤ available
	credit(owner, amt-fee)
	if fee != 0 {
		f := e.accounts[FeeAccount]
		credit(f, fee)
		e.touch(f)
	}
	e.touch(buyer)
	e.touch(owner)
	return fee
}

// post emits a ledger line for a balance change that has already been
// applied to a.Balance.
func (e *Engine) post(a *Account, kind LedgerKind, amt Money, ref ID) {
	e.emit(Event{Kind: EvLedger, Accounts: [2]ID{a.ID}, Ledger: kind, Amount: amt, Balance: a.Balance - a.unposted, Ref: ref})
}

// ---- idempotency ----

// checkIdem answers a repeated create or money movement: found reports
// that the key was used before by the same actor (zero: the operator) with
// the same body; the event names the first object. Keys are remembered for
// bids, listings, accounts, deposits and withdrawals, journaled with the
// command, so a retry after a crash or a 503 can never apply twice.
func (e *Engine) checkIdem(c *Command) (found bool, err *Error) {
	if c.IdemKey == "" {
		return false, nil
	}
	ent := e.idem[idemKey{c.Actor, c.IdemKey}]
	if ent == nil {
		return false, nil
	}
	if ent.hash != c.IdemHash {
		return true, errorf(CodeIdempotencyReused, "Idempotency-Key", "the key was used with a different request")
	}
	ev := Event{Kind: EvIdempotentReplay, Accounts: [2]ID{c.Actor}}
	switch c.Kind {
	case CmdPlaceBid:
		ev.Bid = ent.target
	case CmdPlaceListing:
		ev.Listing = ent.target
	default: // accounts, deposits, withdrawals: the account concerned
		ev.Accounts = [2]ID{ent.target, c.Actor}
	}
	e.emit(ev)
	return true, nil
}

func (e *Engine) rememberIdem(c *Command, target ID) {
	if c.IdemKey == "" {
		return
	}
	k := idemKey{c.Actor, c.IdemKey}
	ent := &idemEntry{hash: c.IdemHash, target: target, expires: e.now + IdempotencyWindow, key: k}
	e.idem[k] = ent
	e.idemQueue = append(e.idemQueue, ent)
}

// IdempotentTarget returns the object a key created, if remembered.
func (e *Engine) IdempotentTarget(account ID, key string) (ID, [32]byte, bool) {
	ent := e.idem[idemKey{account, key}]
	if ent == nil {
		return ID{}, [32]byte{}, false
	}
	return ent.target, ent.hash, true
}

// ---- time ----

func (e *Engine) tick() {
	for _, m := range e.marketOrder {
		e.settleMarket(m)
		// Notices whose deadline has come end; what waited for them starts.
		if len(m.spot.notices) > 0 && e.expireNotices(m) {
			e.recomputeSpot(m, ReasonOutbid)
		}
	}
	for len(e.expiries) > 0 && expiryOf(e.expiries[0]) <= e.now {
		if b := e.expiries.pop(); b.Status == BidResting || b.Status == BidPartiallyFilled {
			e.closeReserved(b, BidExpired)
			e.emit(Event{Kind: EvBidExpired, Accounts: [2]ID{b.Buyer}, Market: b.m.ID, Bid: b.ID})
			e.retireBid(b)
		}
	}
	for len(e.idemQueue) > 0 && e.idemQueue[0].expires <= e.now {
		ent := e.idemQueue[0]
		e.idemQueue = e.idemQueue[1:]
		if e.idem[ent.key] == ent {
			delete(e.idem, ent.key)
		}
	}
	e.repriceSpotPegs()
}

// rollHour runs at the first command of a new hour: listings whose window
// is over end, and each listing's spot supply becomes what the new hour
// leaves after reserved sales.
func (e *Engine) rollHour() {
	h := e.now.HourStart()
	for _, m := range e.marketOrder {
		m.spot.advance(e.now)
		var ended []*Listing
		for _, l := range m.active.all() {
			if l.End <= h {
				ended = append(ended, l)
				continue
			}
			units := int64(0)
			reason := ReasonHourBoundary
			if l.SpotFloor > 0 && l.Start <= h {
				sold := l.sold.Max(l.hourIndex(h), l.hourIndex(h)+1)
				units = l.Quantity - sold
				if sold > 0 {
					reason = ReasonReservationStarting
				}
			}
			if units != l.spotUnits {
				e.setSpotUnits(l, units, reason)
			}
		}
		// The hour's spot lines: every running placement settles and posts
		// before the new hour changes anything.
		e.postMarket(m)
		for _, l := range ended {
			e.endListing(l, ListingEnded, ReasonHourBoundary)
			e.emit(Event{Kind: EvListingEnded, Accounts: [2]ID{l.Owner}, Market: m.ID, Listing: l.ID})
		}
		e.recomputeSpot(m, ReasonHourBoundary)
		for _, l := range ended {
			e.retireListing(l)
		}
		// Books and feeds change with the hour even where nothing traded.
		e.emit(Event{Kind: EvHourStarted, Market: m.ID})
	}
}

func (l *Listing) hourIndex(t Time) int { return int((t - l.Start) / Hour) }

// retireBid takes a closed bid out of the engine. The event carries its
// final state to the read side, which answers for it from then on.
func (e *Engine) retireBid(b *Bid) {
	if !e.quiet {
		v := e.newBidView()
		*v = b.viewWith(e.newFills(len(b.Fills())))
		e.emit(Event{Kind: EvBidClosed, Accounts: [2]ID{b.Buyer}, Market: b.m.ID, Bid: b.ID, FinalBid: v})
	}
	e.bids.remove(b)
	e.bids.unlinkAccount(e.accounts[b.Buyer], b)
	if b.heapIdx >= 0 {
		e.expiries.remove(int(b.heapIdx))
	}
	e.bids.release(b)
}

// retireListing takes an ended or cancelled listing out of the engine, as
// retireBid does a bid. Its sold hours stand as fills held by the read side
// (and by the bids still open that bought them).
func (e *Engine) retireListing(l *Listing) {
	if !e.quiet {
		v := e.newListingView()
		*v = e.listingViewWith(l, e.newFills(len(l.Fills)))
		e.emit(Event{Kind: EvListingClosed, Accounts: [2]ID{l.Owner}, Market: l.Market, Listing: l.ID, FinalListing: v})
	}
	delete(e.listings, l.ID)
	e.listingOrder.remove(l)
	e.accounts[l.Owner].listings.remove(l)
	l.m.active.remove(l)
	// Nothing points at a retired listing any more (its placements and
	// notices ended with its spot units, its book entries went with
	// endListing), so the next placement reuses it.
	clear(l.Fills)
	clear(l.placements)
	e.freeListings = append(e.freeListings, l)
}

// newListing returns a zeroed listing with a sold-hours record for hours,
// reusing a retired listing and its buffers when there is one.
func (e *Engine) newListing(hours int) *Listing {
	n := len(e.freeListings)
	if n == 0 {
		return &Listing{sold: newSoldHours(hours)}
	}
	l := e.freeListings[n-1]
	e.freeListings[n-1] = nil
	e.freeListings = e.freeListings[:n-1]
	*l = Listing{sold: l.sold.reset(hours), Fills: l.Fills[:0], placements: l.placements[:0]}
	return l
}
