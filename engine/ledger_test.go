package engine

import (
	"fmt"
	"testing"
)

// ledgerBook replays EvLedger lines per account and checks that they chain.
type ledgerBook struct {
	sum   map[ID]Money
	last  map[ID]Money
	kinds map[LedgerKind]int
}

func newLedgerBook() *ledgerBook {
	return &ledgerBook{sum: map[ID]Money{}, last: map[ID]Money{}, kinds: map[LedgerKind]int{}}
}

func (lb *ledgerBook) add(tb testing.TB, evs []Event) {
	tb.Helper()
	for _, ev := range evs {
		if ev.Kind != EvLedger {
			continue
		}
		a := ev.Accounts[0]
		if ev.Amount == 0 || ev.Ledger == 0 || ev.Ledger > LedgerFee {
			tb.Fatalf("ledger line %+v: zero amount or unknown kind", ev)
		}
		if got, want := ev.Balance, lb.last[a]+ev.Amount; got != want {
			tb.Fatalf("ledger line %s %s of %s: balance_after %s, want previous %s + amount = %s", ev.Ledger, ev.Amount, a, got, lb.last[a], want)
		}
		lb.sum[a] += ev.Amount
		lb.last[a] = ev.Balance
		lb.kinds[ev.Ledger]++
	}
}

// check compares every account's lines with its balance: the lines sum to
// the balance less what has accrued since (AccountView.Accrued).
func (lb *ledgerBook) check(tb testing.TB, e *Engine, posted bool) {
	tb.Helper()
	for _, a := range e.accountOrder {
		if got, want := lb.sum[a.ID], a.Balance-a.unposted; got != want {
			tb.Fatalf("account %s: ledger lines sum to %s, balance %s less accrued %s is %s", a.Name, got, a.Balance, a.unposted, want)
		}
		if posted && a.unposted != 0 {
			tb.Fatalf("account %s: %s accrued but not posted after an hour started", a.Name, a.unposted)
		}
	}
}

// TestPropertyLedgerSumsToBalance runs the random streams and checks after
// every command that each account's ledger lines chain and sum exactly to
// its balance (less unposted accrual), and that an hour's start posts
// every accrual.
func TestPropertyLedgerSumsToBalance(t *testing.T) {
	n := 6000
	if testing.Short() || raceEnabled {
		n = 1500
	}
	for _, seed := range propertySeeds {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			g := newGen(t, seed, Config{FeeBps: 125})
			lb := newLedgerBook()
			// The generator's set-up commands ran before the book existed:
			// replay them into a fresh engine to collect their lines.
			fresh := New(Config{FeeBps: 125})
			for i := range g.cmds {
				evs, _ := fresh.Apply(&g.cmds[i])
				lb.add(t, evs)
			}
			rolls := 0
			for i := 0; i < n; i++ {
				hourBefore := g.h.e.now.HourStart()
				g.step()
				tb := &seedTB{t, seed, i}
				lb.add(tb, g.h.e.events)
				rolled := g.h.e.now.HourStart() != hourBefore && g.cmds[len(g.cmds)-1].Kind == CmdTick
				if rolled {
					rolls++
				}
				lb.check(tb, g.h.e, rolled)
			}
			for _, k := range []LedgerKind{LedgerDeposit, LedgerWithdrawal, LedgerReservedFill, LedgerReservedEarning, LedgerSpotCharge, LedgerSpotEarning, LedgerFee} {
				if lb.kinds[k] == 0 {
					t.Errorf("no %s line in the run: the test misses a path", k)
				}
			}
			if rolls == 0 {
				t.Error("no hour started in the run")
			}
		})
	}
}

// TestSpotLedgerLines follows one spot bid: its charges are posted when an
// hour starts and when it stops, and the lines sum to what it spent.
func TestSpotLedgerLines(t *testing.T) {
	h := newHarness(t, Config{FeeBps: 1000})
	owner := h.account("own", RoleOwner, "")
	x := h.account("x", RoleBuyer, "1000")
	l := h.listing(owner, mkt, 4, h.hour(0), h.hour(10), "9.00", "2.00")
	bid, _ := h.spot(x, mkt, 2, "3.00") // 2 GPUs at 2.00: 4.00 an hour
	var lines []Event
	collect := func(evs []Event) {
		for _, ev := range evs {
			if ev.Kind == EvLedger && ev.Ledger >= LedgerSpotCharge {
				lines = append(lines, ev)
			}
		}
	}
	for i := 0; i < 80; i++ { // 80 minutes of ticks, across an hour
		collect(h.advance(60 * Second))
	}
	if len(lines) != 3 {
		t.Fatalf("after the hour started: %d spot lines, want 3 (charge, earning, fee): %+v", len(lines), lines)
	}
	collect(h.must(Command{Kind: CmdCancelBid, Actor: x, Target: bid}))
	if len(lines) != 6 {
		t.Fatalf("after the cancel: %d spot lines, want 6", len(lines))
	}
	var charged, earned, fees Money
	for _, ev := range lines {
		switch ev.Ledger {
		case LedgerSpotCharge:
			charged -= ev.Amount
			if ev.Ref != bid || ev.Accounts[0] != x {
				t.Errorf("charge line %+v: want ref the bid, account the buyer", ev)
			}
		case LedgerSpotEarning:
			earned += ev.Amount
			if ev.Ref != l || ev.Accounts[0] != owner {
				t.Errorf("earning line %+v: want ref the listing, account the owner", ev)
			}
		case LedgerFee:
			fees += ev.Amount
		}
	}
	b := h.bid(bid)
	if charged != b.Spent || charged != m(t, "5.3333") || earned+fees != charged || fees != m(t, "0.5333") {
		t.Fatalf("charged %s (spent %s, want 5.3333), earned %s, fees %s (want 0.5333)", charged, b.Spent, earned, fees)
	}
	if a := h.balance(x); a.Accrued != 0 || a.Balance != m(t, "1000")-charged {
		t.Fatalf("buyer %+v: want nothing accrued and balance 1000 - %s", a, charged)
	}
}
