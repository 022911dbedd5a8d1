package engine

import (
	"fmt"
	"math"
	"testing"
)

// TestOwnerEarningsCannotOverflow replays issue #9's report: eleven rich
// buyers each fill a large listing of one owner. Before money bounds, each
// buyer could hold 1e14 USD and the owner's earnings wrapped past int64 to
// a negative balance. Now the deposits that would take the exchange past
// MaxMoney are refused with amount_too_large, and no balance goes negative.
func TestOwnerEarningsCannotOverflow(t *testing.T) {
	h := newHarness(t, Config{FeeBps: 25})
	owner := h.account("owner", RoleOwner, "")
	const hours = 8000
	start := h.hour(1)
	var buyers []ID
	refused := 0
	for i := 0; i < 11; i++ {
		b := h.account(fmt.Sprint("buyer", i), RoleBuyer, "")
		buyers = append(buyers, b)
		// The old per-account cap: 100 deposits of the largest amount.
		for j := 0; j < 100; j++ {
			_, err := h.apply(Command{Kind: CmdDeposit, Target: b, Amount: MaxAmount})
			if err != nil {
				if e, ok := err.(*Error); !ok || e.Code != CodeAmountTooLarge {
					t.Fatalf("deposit %d/%d: got %v, want amount_too_large", i, j, err)
				}
				refused++
			}
		}
	}
	if refused == 0 {
		t.Fatal("no deposit was refused: the exchange holds more than MaxMoney")
	}
	for _, b := range buyers {
		h.listing(owner, mkt, MaxQuantity, start, start+hours*Hour, "100000", "")
		// Each buyer bids for as much as its balance holds at the top price.
		q := int64(h.balance(b).Available / (hours * MaxPrice))
		if q == 0 {
			continue
		}
		h.reserved(b, mkt, min(q, MaxQuantity), 1, start, start+hours*Hour, "100000")
	}
	tot := h.e.Totals()
	if tot.Balances != tot.Supply || tot.Supply > MaxMoney {
		t.Fatalf("totals %+v: not conserved or past MaxMoney %s", tot, MaxMoney)
	}
	for _, a := range h.e.accountOrder {
		if a.Balance < 0 || a.Balance > MaxMoney || a.Held < 0 || a.Held > a.Balance {
			t.Fatalf("account %s: balance %s held %s, want within [0, %s]", a.Name, a.Balance, a.Held, MaxMoney)
		}
	}
	if got := h.balance(owner).Balance; got == 0 {
		t.Fatal("the owner earned nothing: the scenario did not trade")
	}
}

// TestDepositAtTheBound fills the exchange to exactly MaxMoney; one tick
// more is refused with amount_too_large and changes nothing.
func TestDepositAtTheBound(t *testing.T) {
	h := newHarness(t, Config{})
	a := h.account("a", RoleBuyer, "")
	b := h.account("b", RoleBuyer, "")
	for i := 0; i < int(MaxMoney/MaxAmount); i++ {
		h.must(Command{Kind: CmdDeposit, Target: []ID{a, b}[i%2], Amount: MaxAmount})
	}
	if got := h.e.Totals().Supply; got != MaxMoney {
		t.Fatalf("supply %s, want %s", got, MaxMoney)
	}
	for _, amt := range []Money{1, MaxAmount} {
		before := stateHash(h.e)
		evs, err := h.apply(Command{Kind: CmdDeposit, Target: a, Amount: amt})
		if err == nil || err.(*Error).Code != CodeAmountTooLarge || err.(*Error).Field != "amount" {
			t.Fatalf("deposit %s past the bound: got %v, want amount_too_large on amount", amt, err)
		}
		if len(evs) != 1 || evs[0].Kind != EvRejected {
			t.Fatalf("events %v, want one rejection", evs)
		}
		if stateHash(h.e) != before {
			t.Fatalf("a refused deposit of %s changed the state", amt)
		}
	}
	// Money that leaves makes room again.
	h.must(Command{Kind: CmdWithdraw, Target: b, Amount: 1})
	h.must(Command{Kind: CmdDeposit, Target: a, Amount: 1})
}

// TestSpotAccrualPastEveryBound runs a spot bid at the top price through a
// long gap without ticks: the accrued charge is far beyond what the buyer
// has, and it pays exactly its available funds and is released.
func TestSpotAccrualPastEveryBound(t *testing.T) {
	h := newHarness(t, Config{FeeBps: 10000}) // the whole charge is fee
	owner := h.account("own", RoleOwner, "")
	x := h.account("x", RoleBuyer, "")
	// 5e16 ticks: less than the ~1.3e17 that 53 days (the saturated
	// integral) at the top price cost.
	for i := 0; i < 5; i++ {
		h.must(Command{Kind: CmdDeposit, Target: x, Amount: MaxAmount})
	}
	h.listing(owner, mkt, MaxQuantity, h.hour(0), h.hour(24*365), "100000", "100000")
	bid, _ := h.spot(x, mkt, MaxQuantity, "100000")
	if h.bid(bid).Allocated != MaxQuantity {
		t.Fatalf("allocated %d, want %d", h.bid(bid).Allocated, MaxQuantity)
	}
	avail := h.balance(x).Available
	// 300 days without a command: the integral saturates.
	h.now += 300 * Day
	h.advance(0)
	if got := h.balance(x).Balance; got != 0 {
		t.Fatalf("buyer balance %s after the gap, want 0 (paid all of %s)", got, avail)
	}
	if got := h.bid(bid); got.Status != BidCancelled || got.Reason != ReasonInsufficientFunds || got.Spent != avail {
		t.Fatalf("bid %s/%s spent %s, want cancelled/insufficient_funds having spent %s", got.Status, got.Reason, got.Spent, avail)
	}
	fee, _ := h.e.Account(FeeAccount)
	if fee.Balance != avail {
		t.Fatalf("fee account %s, want %s", fee.Balance, avail)
	}
	checkInvariants(t, h.e, true)
}

func TestMoneyArithmetic(t *testing.T) {
	tests := []struct {
		q, hours int64
		price    Price
		want     Money
		ok       bool
	}{
		{1, 1, 1, 1, true},
		{MaxQuantity, int64(MaxHorizon / Hour), MaxPrice, Money(MaxQuantity * int64(MaxHorizon/Hour) * MaxPrice), true},
		{MaxQuantity, 10_000, MaxPrice, MaxMoney, true},
		{MaxQuantity, 10_001, MaxPrice, 0, false},
		{math.MaxInt64, 2, 1, 0, false},
		{math.MaxInt64, math.MaxInt64, math.MaxInt64, 0, false},
		{1 << 32, 1 << 32, 1, 0, false},
		{-1, 1, 1, 0, false},
	}
	for _, tt := range tests {
		got, ok := mulMoney(tt.q, tt.hours, tt.price)
		if got != tt.want || ok != tt.ok {
			t.Errorf("mulMoney(%d, %d, %d) = %d, %v; want %d, %v", tt.q, tt.hours, tt.price, got, ok, tt.want, tt.ok)
		}
	}
	if _, ok := addMoney(MaxMoney, 1); ok {
		t.Error("addMoney(MaxMoney, 1) passed the bound")
	}
	if got := satAdd(MaxMoney-1, MaxMoney); got != MaxMoney {
		t.Errorf("satAdd = %s, want %s", got, MaxMoney)
	}
	for _, tt := range []struct {
		amt       Money
		bps, rem  int64
		fee       Money
		remainder int64
	}{
		{MaxMoney, 10000, 0, MaxMoney, 0},
		{MaxMoney, 25, 0, MaxMoney / 400, 0},
		{1, 25, 9990, 1, 15},
		{3, 1, 0, 0, 3},
	} {
		fee, rem := feeOf(tt.amt, tt.bps, tt.rem)
		if fee != tt.fee || rem != tt.remainder {
			t.Errorf("feeOf(%s, %d, %d) = %s, %d; want %s, %d", tt.amt, tt.bps, tt.rem, fee, rem, tt.fee, tt.remainder)
		}
	}
}

// TestPropertyMoneyEdges drives random streams with amounts at the edges:
// deposits of MaxAmount until the exchange is full, prices near MaxPrice,
// quantities near MaxQuantity, windows of thousands of hours, spot at the
// top price and gaps of days between ticks. After every command money is
// conserved to the tick and nothing passes MaxMoney; a rejected command
// leaves the state hash as it was.
func TestPropertyMoneyEdges(t *testing.T) {
	n := 1500
	if testing.Short() || raceEnabled {
		n = 800
	}
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			g := newGen(t, seed, Config{FeeBps: 9999})
			r := g.r
			big := func() int64 { return MaxQuantity - r.Int64N(10) }
			top := func() Price { return MaxPrice - Price(r.Int64N(3)) }
			tooLarge, fills, allocs := 0, 0, 0
			for i := 0; i < n; i++ {
				h := g.h
				mk := g.markets[r.IntN(len(g.markets))]
				var c Command
				switch x := r.IntN(20); {
				case x < 6:
					c = Command{Kind: CmdDeposit, Target: g.buyers[r.IntN(len(g.buyers))], Amount: MaxAmount - Money(r.Int64N(3))}
				case x < 7:
					start := h.now.HourStart() + Time(r.IntN(3))*Hour
					c = Command{Kind: CmdPlaceListing, Actor: g.owners[r.IntN(len(g.owners))], Target: h.newID(), Market: mk,
						Quantity: big(), Start: start, End: start + Time(1+r.IntN(8000))*Hour, Price: top(), SpotFloor: top()}
				case x < 11:
					start := h.now.HourStart() + Time(1+r.IntN(3))*Hour
					c = Command{Kind: CmdPlaceBid, BidType: Reserved, Actor: g.buyers[r.IntN(len(g.buyers))], Target: h.newID(), Market: mk,
						Quantity: 1 + r.Int64N(MaxQuantity), MinQuantity: 1, Start: start, End: start + Time(1+r.IntN(8000))*Hour, Price: top()}
				case x < 13:
					c = Command{Kind: CmdPlaceBid, BidType: Spot, Actor: g.buyers[r.IntN(len(g.buyers))], Target: h.newID(), Market: mk,
						Quantity: big(), Price: top()}
				case x < 15:
					b := g.buyers[r.IntN(len(g.buyers))]
					c = Command{Kind: CmdWithdraw, Actor: b, Target: b, Amount: MaxAmount - Money(r.Int64N(3))}
				default:
					h.now += Time(1+r.Int64N(int64(3*Day/Second))) * Second
					c = Command{Kind: CmdTick}
				}
				before := ""
				if c.Kind == CmdDeposit {
					before = stateHash(h.e)
				}
				c = g.run(c)
				evs := h.e.events
				fills += countKind(evs, EvFilled)
				allocs += countKind(evs, EvSpotAllocated)
				if len(evs) > 0 && evs[len(evs)-1].Kind == EvRejected && evs[len(evs)-1].Err.Code == CodeAmountTooLarge {
					tooLarge++
					if stateHash(h.e) != before {
						t.Fatalf("seed %d step %d: a refused %s changed the state", seed, i, c.Kind)
					}
				}
				checkMoney(&seedTB{t, seed, i}, h.e)
				if i == n-1 && !raceEnabled {
					// The full check walks every unit of supply: once.
					checkInvariants(&seedTB{t, seed, i}, h.e, true)
				}
			}
			if tooLarge == 0 || fills == 0 || allocs == 0 {
				t.Fatalf("seed %d: %d refusals, %d fills, %d spot allocations: the stream missed the edges", seed, tooLarge, fills, allocs)
			}
			t.Logf("%d refusals, %d fills, %d spot allocations", tooLarge, fills, allocs)
		})
	}
}

// stateHash is the state hash without the sequence number and time, which
// every command advances, rejected or not.
func stateHash(e *Engine) string {
	seq, now := e.seq, e.now
	e.seq, e.now = 0, 0
	defer func() { e.seq, e.now = seq, now }()
	return e.Hash()
}

// checkMoney is the ledger part of checkInvariants, cheap enough for every
// command of a stream with huge quantities: conservation to the tick,
// every balance, hold and open bid's hold within [0, MaxMoney].
func checkMoney(tb testing.TB, e *Engine) {
	tb.Helper()
	tot := e.Totals()
	if tot.Balances != tot.Supply || tot.Supply < 0 || tot.Supply > MaxMoney {
		tb.Fatalf("money not conserved or out of bounds: %+v", tot)
	}
	for _, a := range e.accountOrder {
		if a.Balance < 0 || a.Balance > MaxMoney || a.Held < 0 || a.Held > a.Balance {
			tb.Fatalf("account %s: balance %s held %s", a.Name, a.Balance, a.Held)
		}
	}
}
