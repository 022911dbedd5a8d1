package engine

import (
	"math/rand/v2"
	"runtime"
	"testing"
)

// benchEngine makes an engine with one rich buyer and one owner.
func benchEngine(b *testing.B) (*Engine, ID, ID, *uint64) {
	b.Helper()
	e := New(Config{})
	var n uint64
	next := func() ID { n++; return testID(n) }
	buyer, owner := next(), next()
	e.Apply(&Command{Time: t0, Kind: CmdCreateAccount, Target: buyer, Name: "b", Roles: RoleBuyer})
	e.Apply(&Command{Time: t0, Kind: CmdCreateAccount, Target: owner, Name: "o", Roles: RoleOwner})
	e.Apply(&Command{Time: t0, Kind: CmdDeposit, Target: buyer, Amount: MaxAmount})
	return e, buyer, owner, &n
}

func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commands/s")
}

// BenchmarkPlainBook is the classic limit-order-book workload: every order
// shares one window, prices random-walk around a mid, a fifth of the
// commands cancel a resting order (all of them while more than 5,000
// orders are open, so the book stays near a steady size).
func BenchmarkPlainBook(b *testing.B) {
	e, buyer, owner, n := benchEngine(b)
	r := rand.New(rand.NewPCG(1, 2))
	start, end := t0.HourStart()+Hour, t0.HourStart()+2*Hour
	mid := int64(20000)
	open := make([]ID, 0, 1<<16)
	c := Command{Time: t0, Market: mkt, Start: start, End: end}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		*n++
		id := testID(*n)
		mid += r.Int64N(21) - 10
		x := r.IntN(10)
		if len(open) > 5000 {
			x = 9 // keep the book near a steady size, so ns/op does not depend on b.N
		}
		switch {
		case x < 4:
			c = Command{Time: t0, Kind: CmdPlaceListing, Actor: owner, Target: id, Market: mkt, Quantity: 1 + r.Int64N(10), Start: start, End: end, Price: Price(mid + r.Int64N(200) - 50)}
			open = append(open, id)
		case x < 8:
			c = Command{Time: t0, Kind: CmdPlaceBid, BidType: Reserved, Actor: buyer, Target: id, Market: mkt, Quantity: 1 + r.Int64N(10), MinQuantity: 1, Start: start, End: end, Price: Price(mid - r.Int64N(200) + 50)}
			open = append(open, id)
		default:
			if len(open) == 0 {
				continue
			}
			j := r.IntN(len(open))
			target := open[j]
			open[j] = open[len(open)-1]
			open = open[:len(open)-1]
			if e.bids.get(target) != nil {
				c = Command{Time: t0, Kind: CmdCancelBid, Actor: buyer, Target: target}
			} else {
				c = Command{Time: t0, Kind: CmdCancelListing, Actor: owner, Target: target}
			}
		}
		e.Apply(&c)
	}
	reportRate(b)
}

// BenchmarkPlainBookNoFill is BenchmarkPlainBook where nothing crosses:
// bids rest below a fixed mid, listings above it, and a fifth of the
// commands cancel; it measures the resting path alone (place, cancel, the
// book walks), which allocates nothing per command (TestNoFillAllocs).
func BenchmarkPlainBookNoFill(b *testing.B) {
	e, buyer, owner, n := benchEngine(b)
	r := rand.New(rand.NewPCG(1, 2))
	start, end := t0.HourStart()+Hour, t0.HourStart()+2*Hour
	const mid = 20000
	open := make([]ID, 0, 1<<16)
	var c Command
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		*n++
		id := testID(*n)
		x := r.IntN(10)
		if len(open) > 5000 {
			x = 9
		}
		switch {
		case x < 4:
			c = Command{Time: t0, Kind: CmdPlaceListing, Actor: owner, Target: id, Market: mkt, Quantity: 1 + r.Int64N(10), Start: start, End: end, Price: Price(mid + 1 + r.Int64N(200))}
			open = append(open, id)
		case x < 8:
			c = Command{Time: t0, Kind: CmdPlaceBid, BidType: Reserved, Actor: buyer, Target: id, Market: mkt, Quantity: 1 + r.Int64N(10), MinQuantity: 1, Start: start, End: end, Price: Price(mid - r.Int64N(200))}
			open = append(open, id)
		default:
			if len(open) == 0 {
				continue
			}
			j := r.IntN(len(open))
			target := open[j]
			open[j] = open[len(open)-1]
			open = open[:len(open)-1]
			if e.bids.get(target) != nil {
				c = Command{Time: t0, Kind: CmdCancelBid, Actor: buyer, Target: target}
			} else {
				c = Command{Time: t0, Kind: CmdCancelListing, Actor: owner, Target: target}
			}
		}
		if _, err := e.Apply(&c); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

// BenchmarkReservedWindows places bids of 1–72 h windows over a 30-day
// horizon against 2,000 listings of random windows and prices; bids that
// rest are cancelled, oldest first, once more than 5,000 rest.
func BenchmarkReservedWindows(b *testing.B) {
	e, buyer, owner, n := benchEngine(b)
	r := rand.New(rand.NewPCG(3, 4))
	h0 := t0.HourStart() + Hour
	for i := 0; i < 2000; i++ {
		*n++
		s := h0 + Time(r.IntN(24*20))*Hour
		e.Apply(&Command{Time: t0, Kind: CmdPlaceListing, Actor: owner, Target: testID(*n), Market: mkt, Quantity: 1000,
			Start: s, End: s + Time(24*(1+r.IntN(10)))*Hour, Price: Price(15000 + r.Int64N(10000))})
	}
	var resting []ID
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if len(resting) > 5000 {
			// Cancel the oldest resting bid: the book stays near a steady
			// size, so ns/op does not depend on b.N.
			e.Apply(&Command{Time: t0, Kind: CmdCancelBid, Actor: buyer, Target: resting[0]})
			resting = resting[1:]
			continue
		}
		*n++
		s := h0 + Time(r.IntN(24*30))*Hour
		c := Command{Time: t0, Kind: CmdPlaceBid, BidType: Reserved, Actor: buyer, Target: testID(*n), Market: mkt,
			Quantity: 1 + r.Int64N(8), MinQuantity: 1, Start: s, End: s + Time(1+r.IntN(72))*Hour, Price: Price(15000 + r.Int64N(10000))}
		e.Apply(&c)
		if b := e.bids.get(c.Target); b != nil && b.Status.Open() {
			resting = append(resting, c.Target)
		}
	}
	reportRate(b)
}

// BenchmarkSpotChurn keeps 10,000 spot bidders on 5,000 GPUs of supply:
// each command cancels a random bidder or places a new bid, which preempts
// or is preempted.
func BenchmarkSpotChurn(b *testing.B) {
	e, buyer, owner, n := benchEngine(b)
	r := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 500; i++ {
		*n++
		e.Apply(&Command{Time: t0, Kind: CmdPlaceListing, Actor: owner, Target: testID(*n), Market: mkt, Quantity: 10,
			Start: t0.HourStart(), End: t0.HourStart() + 10*Hour, Price: 50000, SpotFloor: Price(5000 + r.Int64N(20000))})
	}
	bids := make([]ID, 0, 10000)
	for i := 0; i < 10000; i++ {
		*n++
		e.Apply(&Command{Time: t0, Kind: CmdPlaceBid, BidType: Spot, Actor: buyer, Target: testID(*n), Market: mkt, Quantity: 1, Price: Price(5000 + r.Int64N(30000))})
		bids = append(bids, testID(*n))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := r.IntN(len(bids))
		if i%2 == 0 {
			e.Apply(&Command{Time: t0, Kind: CmdCancelBid, Actor: buyer, Target: bids[j]})
		} else {
			*n++
			e.Apply(&Command{Time: t0, Kind: CmdPlaceBid, BidType: Spot, Actor: buyer, Target: testID(*n), Market: mkt, Quantity: 1 + r.Int64N(2), Price: Price(5000 + r.Int64N(30000))})
			bids[j] = testID(*n)
		}
	}
	reportRate(b)
}

// BenchmarkRestingBidMemory fills a book with 1,000,000 resting reserved
// bids and reports heap bytes per bid, plus the snapshot's size and time.
func BenchmarkRestingBidMemory(b *testing.B) {
	const bids = 1_000_000
	for i := 0; i < b.N; i++ {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		e, buyer, _, n := benchEngine(b)
		r := rand.New(rand.NewPCG(7, 8))
		h0 := t0.HourStart() + Hour
		for j := 0; j < bids; j++ {
			*n++
			s := h0 + Time(r.IntN(24*30))*Hour
			e.Apply(&Command{Time: t0, Kind: CmdPlaceBid, BidType: Reserved, Actor: buyer, Target: testID(*n), Market: mkt,
				Quantity: 1, Start: s, End: s + Hour, Price: Price(1000 + r.Int64N(10000))})
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/bids, "bytes/bid")
		b.StopTimer()
		snap := e.Snapshot()
		b.ReportMetric(float64(len(snap))/(1<<20), "snapshot-MiB")
		if _, err := Restore(snap); err != nil {
			b.Fatal(err)
		}
		runtime.KeepAlive(e)
		b.StartTimer()
	}
}

// BenchmarkSnapshot1M measures taking and restoring a snapshot of a book
// holding 1,000,000 resting bids.
func BenchmarkSnapshot1M(b *testing.B) {
	e, buyer, _, n := benchEngine(b)
	r := rand.New(rand.NewPCG(9, 10))
	h0 := t0.HourStart() + Hour
	for j := 0; j < 1_000_000; j++ {
		*n++
		s := h0 + Time(r.IntN(24*30))*Hour
		e.Apply(&Command{Time: t0, Kind: CmdPlaceBid, BidType: Reserved, Actor: buyer, Target: testID(*n), Market: mkt,
			Quantity: 1, Start: s, End: s + Hour, Price: Price(1000 + r.Int64N(10000))})
	}
	b.Run("take", func(b *testing.B) {
		var size int
		for i := 0; i < b.N; i++ {
			size = len(e.Snapshot())
		}
		b.ReportMetric(float64(size)/(1<<20), "MiB")
	})
	snap := e.Snapshot()
	b.Run("restore", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := Restore(snap); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkReplay applies one recorded steady-market stream of 50,000
// commands (every kind of order, fills, spot, ticks) to a fresh engine per
// iteration, with Apply ("live") and with ApplyReplay ("replay", no
// events): the ratio is what recovery gains.
func BenchmarkReplay(b *testing.B) {
	s := newSteadyMarket(b)
	cmds := []Command{
		{Time: t0, Kind: CmdCreateAccount, Target: s.buyer, Name: "b", Roles: RoleBuyer},
		{Time: t0, Kind: CmdCreateAccount, Target: s.owner, Name: "o", Roles: RoleOwner},
		{Time: t0, Kind: CmdDeposit, Target: s.buyer, Amount: MaxAmount},
	}
	for i := 0; i < 50_000; i++ {
		s.step()
		cmds = append(cmds, s.cmd)
	}
	for _, mode := range []string{"live", "replay"} {
		b.Run(mode, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				e := New(Config{FeeBps: 20})
				for j := range cmds {
					if mode == "live" {
						e.Apply(&cmds[j])
					} else {
						e.ApplyReplay(&cmds[j])
					}
				}
			}
			b.ReportMetric(float64(b.N*len(cmds))/b.Elapsed().Seconds(), "commands/s")
		})
	}
}

// BenchmarkFlexibleQuote quotes 8 GPUs for 12 hours inside windows of one
// day, one week and one month, over a book of 200 listings with random
// windows and prices; "fixed" is the same quote for one fixed 12-hour
// window, the baseline the flexible search is reported against (it
// evaluates the block at each breakpoint of the book inside the window).
func BenchmarkFlexibleQuote(b *testing.B) {
	e, _, owner, n := benchEngine(b)
	r := rand.New(rand.NewPCG(3, 4))
	h0 := t0.HourStart() + Hour
	for i := 0; i < 200; i++ {
		*n++
		s := h0 + Time(r.IntN(700))*Hour
		e.Apply(&Command{Time: t0, Kind: CmdPlaceListing, Actor: owner, Target: testID(*n), Market: mkt, Quantity: 1 + r.Int64N(8),
			Start: s, End: s + Time(6+r.IntN(72))*Hour, Price: Price(10000 + r.Int64N(30000))})
	}
	for _, c := range []struct {
		name  string
		hours int
	}{{"fixed", 0}, {"window=24h", 24}, {"window=168h", 168}, {"window=720h", 720}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if c.hours == 0 {
					e.Quote(mkt, 8, 0, h0+100*Hour, h0+112*Hour, 0)
				} else {
					e.QuoteBlock(mkt, 8, 0, h0, h0+Time(c.hours)*Hour, 12, 0)
				}
			}
		})
	}
}
