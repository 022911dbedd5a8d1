package engine

import (
	"bytes"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"testing"
	"unsafe"
)

// steadyMarket drives a market whose open set stays near a fixed size
// while engine time moves on, as in production: listings a few hours
// ahead, reserved bids that fill, rest, expire or are cancelled, spot bids
// that come and go, a tick every 500 commands moving time a minute. Every kind of
// close happens, so whatever the engine failed to forget would grow.
type steadyMarket struct {
	e      *Engine
	r      *rand.Rand
	n      uint64
	now    Time
	buyer  ID
	owner  ID
	bids   []ID
	spots  []ID
	lists  []ID
	cmd    Command
	issued int
}

func newSteadyMarket(tb testing.TB) *steadyMarket {
	tb.Helper()
	s := &steadyMarket{e: New(Config{FeeBps: 20}), r: rand.New(rand.NewPCG(11, 12)), now: t0}
	s.buyer, s.owner = s.id(), s.id()
	s.e.Apply(&Command{Time: s.now, Kind: CmdCreateAccount, Target: s.buyer, Name: "b", Roles: RoleBuyer})
	s.e.Apply(&Command{Time: s.now, Kind: CmdCreateAccount, Target: s.owner, Name: "o", Roles: RoleOwner})
	s.e.Apply(&Command{Time: s.now, Kind: CmdDeposit, Target: s.buyer, Amount: MaxAmount})
	return s
}

func (s *steadyMarket) id() ID { s.n++; return testID(s.n) }

// take removes and returns a random id of ids.
func (s *steadyMarket) take(ids *[]ID) ID {
	i := s.r.IntN(len(*ids))
	id := (*ids)[i]
	(*ids)[i] = (*ids)[len(*ids)-1]
	*ids = (*ids)[:len(*ids)-1]
	return id
}

func (s *steadyMarket) step() {
	s.issued++
	r := s.r
	c := &s.cmd
	if s.issued%500 == 0 {
		s.now += Minute // engine time runs fast, so windows end and bids expire within the test
		*c = Command{Time: s.now, Kind: CmdTick}
		s.e.Apply(c)
		return
	}
	h := s.now.HourStart()
	switch x := r.IntN(20); {
	case x < 4 && len(s.lists) < 2000:
		start := h + Time(1+r.IntN(3))*Hour
		*c = Command{Time: s.now, Kind: CmdPlaceListing, Actor: s.owner, Target: s.id(), Market: mkt, Quantity: 1 + r.Int64N(8),
			Start: start, End: start + Time(1+r.IntN(4))*Hour, Price: Price(15000 + r.Int64N(10000)), SpotFloor: Price(10000 + r.Int64N(10000))}
		s.lists = append(s.lists, c.Target)
	case x < 11 && len(s.bids) < 5000:
		start := h + Time(1+r.IntN(3))*Hour
		*c = Command{Time: s.now, Kind: CmdPlaceBid, BidType: Reserved, Actor: s.buyer, Target: s.id(), Market: mkt, Quantity: 1 + r.Int64N(4),
			MinQuantity: 1, Start: start, End: start + Time(1+r.IntN(2))*Hour, Price: Price(10000 + r.Int64N(15000))}
		s.bids = append(s.bids, c.Target)
	case x < 14 && len(s.spots) < 500:
		*c = Command{Time: s.now, Kind: CmdPlaceBid, BidType: Spot, Actor: s.buyer, Target: s.id(), Market: mkt, Quantity: 1 + r.Int64N(3), Price: Price(5000 + r.Int64N(20000))}
		s.spots = append(s.spots, c.Target)
	case x < 17 && len(s.bids) > 0:
		*c = Command{Time: s.now, Kind: CmdCancelBid, Actor: s.buyer, Target: s.take(&s.bids)}
	case x < 19 && len(s.spots) > 0:
		*c = Command{Time: s.now, Kind: CmdCancelBid, Actor: s.buyer, Target: s.take(&s.spots)}
	case len(s.lists) > 0:
		*c = Command{Time: s.now, Kind: CmdCancelListing, Actor: s.owner, Target: s.take(&s.lists)}
	default:
		*c = Command{Time: s.now, Kind: CmdTick}
	}
	s.e.Apply(c)
}

func heapAfterGC() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestMemoryStaysFlat applies N commands of a steady market, then N more,
// and checks the heap (after a GC) grew by less than 10 %: the engine
// keeps the live market, not its history. N is 300,000 (100,000 under
// -short), so the test stays inside CI's budget under -race;
// GPUX_SOAK_COMMANDS=10000000 measures from 1 M to 10 M (docs/BENCHMARKS.md).
func TestMemoryStaysFlat(t *testing.T) {
	first, total := 300_000, 600_000
	if testing.Short() || raceEnabled {
		first, total = 100_000, 200_000
	}
	if v := os.Getenv("GPUX_SOAK_COMMANDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 2_000_000 {
			t.Fatalf("GPUX_SOAK_COMMANDS=%q: want an integer of at least 2000000", v)
		}
		first, total = 1_000_000, n
	}
	s := newSteadyMarket(t)
	for s.issued < first {
		s.step()
	}
	h1, open1 := heapAfterGC(), s.e.bids.len()+len(s.e.listings)
	// The growth table of docs/BENCHMARKS.md, when the soak runs: heap
	// and snapshot size at 1 M, 2 M, 5 M... commands.
	for _, at := range []int{1_000_000, 2_000_000, 5_000_000, 10_000_000, 20_000_000} {
		if os.Getenv("GPUX_SOAK_COMMANDS") == "" || at > total {
			break
		}
		for s.issued < at {
			s.step()
		}
		t.Logf("growth: %d commands: heap %.1f MiB, snapshot %.2f MiB, %d orders open, engine time +%d h",
			at, float64(heapAfterGC())/(1<<20), float64(len(s.e.Snapshot()))/(1<<20), s.e.bids.len()+len(s.e.listings), (s.now-t0)/Hour)
	}
	for s.issued < total {
		s.step()
	}
	h2, open2 := heapAfterGC(), s.e.bids.len()+len(s.e.listings)
	snap := len(s.e.Snapshot())
	t.Logf("after %d commands: heap %.1f MiB, %d open; after %d: heap %.1f MiB, %d open, snapshot %.1f MiB, engine time +%v h",
		first, float64(h1)/(1<<20), open1, total, float64(h2)/(1<<20), open2, float64(snap)/(1<<20), (s.now-t0)/Hour)
	if float64(h2) > 1.1*float64(h1) {
		t.Fatalf("heap grew from %d to %d bytes (%.1f %%) between %d and %d commands with a steady open set",
			h1, h2, 100*(float64(h2)/float64(h1)-1), first, total)
	}
}

// TestIdempotencyKeysExpire: keys older than 24 h of engine time leave the
// engine (and its snapshot) at the next tick; until then a retry answers
// with the first object.
func TestIdempotencyKeysExpire(t *testing.T) {
	h := newHarness(t, Config{})
	buyer := h.account("b", RoleBuyer, "100")
	const key = "idem-key-0123456789"
	c := Command{Kind: CmdDeposit, Target: buyer, Amount: 1, IdemKey: key, IdemHash: [32]byte{1}}
	h.must(c)
	if !bytes.Contains(h.e.Snapshot(), []byte(key)) {
		t.Fatal("the snapshot does not hold the fresh key")
	}
	h.advance(IdempotencyWindow - Second)
	if _, _, ok := h.e.IdempotentTarget(ID{}, key); !ok {
		t.Fatal("the key was forgotten before 24 h")
	}
	h.advance(Second)
	if _, _, ok := h.e.IdempotentTarget(ID{}, key); ok || len(h.e.idem) != 0 || len(h.e.idemQueue) != 0 {
		t.Fatalf("after 24 h: key still known (%d in map, %d queued)", len(h.e.idem), len(h.e.idemQueue))
	}
	if bytes.Contains(h.e.Snapshot(), []byte(key)) {
		t.Fatal("the snapshot still holds the expired key")
	}
	// The key is free again: the same deposit applies a second time.
	h.must(c)
	if got := h.balance(buyer).Balance; got != m(t, "100")+2 {
		t.Fatalf("balance %s, want 100.0002", got)
	}
}

// TestRestingBidMemory places 100,000 resting reserved bids (random
// prices over 10,000 ticks, one-hour windows over 30 days, as
// BenchmarkRestingBidMemory does with 1,000,000) and bounds the heap they
// take, measured after a GC: at most 200 bytes a bid, everything counted
// (the bid, its id index entry, price level, expiry heap entry, account
// list). A memory bound, not a timing.
func TestRestingBidMemory(t *testing.T) {
	const bids, bound = 100_000, 200
	r := rand.New(rand.NewPCG(7, 8))
	h0 := t0.HourStart() + Hour
	buyer := testID(1)
	var c Command
	before := heapAfterGC()
	e := New(Config{})
	e.Apply(&Command{Time: t0, Kind: CmdCreateAccount, Target: buyer, Name: "b", Roles: RoleBuyer})
	e.Apply(&Command{Time: t0, Kind: CmdDeposit, Target: buyer, Amount: MaxAmount})
	for j := 0; j < bids; j++ {
		s := h0 + Time(r.IntN(24*30))*Hour
		c = Command{Time: t0, Kind: CmdPlaceBid, BidType: Reserved, Actor: buyer, Target: testID(uint64(j) + 10), Market: mkt,
			Quantity: 1, Start: s, End: s + Hour, Price: Price(1000 + r.Int64N(10000))}
		if _, err := e.Apply(&c); err != nil {
			t.Fatalf("bid %d: %v", j, err)
		}
	}
	after := heapAfterGC()
	if e.bids.len() != bids {
		t.Fatalf("%d bids open, want %d", e.bids.len(), bids)
	}
	per := float64(int64(after)-int64(before)) / bids
	t.Logf("%.1f bytes of heap per resting bid (%d bids, Bid struct %d bytes)", per, bids, unsafe.Sizeof(Bid{}))
	if per > bound {
		t.Fatalf("a resting bid costs %.1f bytes of heap, want at most %d", per, bound)
	}
	runtime.KeepAlive(e)
}

// TestNoFillAllocs: placing and cancelling a bid and a listing that do not
// cross allocates nothing per command. The bid and listing come from free
// lists, the events go into the engine's reused buffer, and the final
// views of the closed bid and listing (which the read side keeps, so they
// are never reused) are carved from chunks of 64: under one allocation
// per command on average, which AllocsPerRun counts as 0.
func TestNoFillAllocs(t *testing.T) {
	for _, mode := range []string{"live", "replay"} {
		t.Run(mode, func(t *testing.T) {
			e := New(Config{FeeBps: 20})
			buyer, owner := testID(1), testID(2)
			e.Apply(&Command{Time: t0, Kind: CmdCreateAccount, Target: buyer, Name: "b", Roles: RoleBuyer})
			e.Apply(&Command{Time: t0, Kind: CmdCreateAccount, Target: owner, Name: "o", Roles: RoleOwner})
			e.Apply(&Command{Time: t0, Kind: CmdDeposit, Target: buyer, Amount: MaxAmount})
			start, end := t0.HourStart()+Hour, t0.HourStart()+2*Hour
			n := uint64(100)
			// A standing book, so the walks have something to pass over.
			for i := 0; i < 200; i++ {
				n++
				e.Apply(&Command{Time: t0, Kind: CmdPlaceBid, BidType: Reserved, Actor: buyer, Target: testID(n), Market: mkt, Quantity: 2, MinQuantity: 1, Start: start, End: end, Price: Price(10000 + i)})
				n++
				e.Apply(&Command{Time: t0, Kind: CmdPlaceListing, Actor: owner, Target: testID(n), Market: mkt, Quantity: 2, Start: start, End: end, Price: Price(20000 + i)})
			}
			apply := func(c *Command) {
				var err *Error
				if mode == "live" {
					_, err = e.Apply(c)
				} else {
					err = e.ApplyReplay(c)
				}
				if err != nil {
					t.Fatalf("%s: %v", c.Kind, err)
				}
			}
			var c Command
			round := func() {
				n++
				bid, listing := testID(n), testID(n+1<<40)
				c = Command{Time: t0, Kind: CmdPlaceBid, BidType: Reserved, Actor: buyer, Target: bid, Market: mkt, Quantity: 3, MinQuantity: 1, Start: start, End: end, Price: Price(10000 + n%300)}
				apply(&c)
				c = Command{Time: t0, Kind: CmdPlaceListing, Actor: owner, Target: listing, Market: mkt, Quantity: 3, Start: start, End: end, Price: Price(20000 + n%300)}
				apply(&c)
				c = Command{Time: t0, Kind: CmdCancelBid, Actor: buyer, Target: bid}
				apply(&c)
				c = Command{Time: t0, Kind: CmdCancelListing, Actor: owner, Target: listing}
				apply(&c)
			}
			for i := 0; i < 1000; i++ { // warm the free lists and scratch buffers
				round()
			}
			if got := testing.AllocsPerRun(2000, round); got != 0 {
				t.Fatalf("%v allocations per place+cancel round of a bid and a listing, want 0", got)
			}
		})
	}
}
