package sequencer

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/store"
	"github.com/gpux/gpux/store/redistest"
)

// depositCmd is a small command of realistic encoded size.
func depositCmd(target engine.ID) engine.Command {
	return engine.Command{Kind: engine.CmdDeposit, Target: target, Amount: 1}
}

// benchRedis returns the URL of the Redis the journal benchmarks use: the
// shared test Redis, or with GPUX_BENCH_APPENDFSYNC=always (or everysec) a
// private redis-server with an AOF fsynced that way, where the disk's
// latency is what pipelining must hide.
func benchRedis(b *testing.B) string {
	b.Helper()
	switch fs := os.Getenv("GPUX_BENCH_APPENDFSYNC"); fs {
	case "":
		return redistest.URL(b)
	case "always", "everysec", "no":
		return redistest.StartServer(b, "--appendonly", "yes", "--appendfsync", fs).URL()
	default:
		b.Fatalf("GPUX_BENCH_APPENDFSYNC=%q: always, everysec or no", fs)
		return ""
	}
}

// benchInFlight is Config.MaxInFlight for the benchmarks:
// GPUX_BENCH_INFLIGHT, or 0 (the default).
func benchInFlight() int {
	n, _ := strconv.Atoi(os.Getenv("GPUX_BENCH_INFLIGHT"))
	return n
}

// BenchmarkJournalThroughput compares commands/s through the sequencer
// (group commit, Redis journal) with raw pipelined XADD of the same
// payloads from go-redis, measured in the same run.
func BenchmarkJournalThroughput(b *testing.B) {
	url := benchRedis(b)
	const workers = 64
	b.Run("raw-xadd", func(b *testing.B) {
		shard := redistest.ShardAt(b, url)
		j, err := store.OpenRedis(context.Background(), url, shard)
		if err != nil {
			b.Fatal(err)
		}
		defer j.Close()
		c := engine.AppendCommand(nil, &engine.Command{Seq: 1, Time: 1, Kind: engine.CmdDeposit, Amount: 1})
		rdb := j.Client()
		key := fmt.Sprintf("gpux:{%s}:raw", shard)
		b.ResetTimer()
		for i := 0; i < b.N; i += workers {
			pipe := rdb.Pipeline()
			for k := 0; k < workers && i+k < b.N; k++ {
				pipe.Do(context.Background(), "XADD", key, "*", "d", c)
			}
			if _, err := pipe.Exec(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commands/s")
	})
	b.Run("sequencer", func(b *testing.B) {
		j, err := store.OpenRedis(context.Background(), url, redistest.ShardAt(b, url))
		if err != nil {
			b.Fatal(err)
		}
		defer j.Close()
		s := start(b, Config{Journal: j, MaxInFlight: benchInFlight()})
		acct := mustSubmit(b, s, engine.Command{Kind: engine.CmdCreateAccount, Name: "a", Roles: engine.RoleBuyer}).Events[0].Accounts[0]
		b.ResetTimer()
		var wg sync.WaitGroup
		per := (b.N + workers - 1) / workers
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < per; i++ {
					s.Submit(context.Background(), depositCmd(acct), nil)
				}
			}()
		}
		wg.Wait()
		b.ReportMetric(float64(per*workers)/b.Elapsed().Seconds(), "commands/s")
	})
}

// BenchmarkAckLatency offers a fixed load (open loop, 2,000 commands/s) and
// reports acknowledged-command latency percentiles: of one raw XADD per
// command from go-redis (the baseline), and of the sequencer.
func BenchmarkAckLatency(b *testing.B) {
	url := benchRedis(b)
	const rate = 2000
	openLoop := func(b *testing.B, do func()) {
		n := max(b.N, 2000)
		lat := make([]time.Duration, n)
		var wg sync.WaitGroup
		b.ResetTimer()
		begin := time.Now()
		for i := 0; i < n; i++ {
			due := begin.Add(time.Duration(i) * time.Second / rate)
			time.Sleep(time.Until(due))
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				do()
				lat[i] = time.Since(due) // from the intended send time: no coordinated omission
			}(i)
		}
		wg.Wait()
		slices.Sort(lat)
		b.ReportMetric(float64(lat[n/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[n*99/100].Microseconds()), "p99-µs")
	}
	b.Run("raw-xadd", func(b *testing.B) {
		shard := redistest.ShardAt(b, url)
		j, err := store.OpenRedis(context.Background(), url, shard)
		if err != nil {
			b.Fatal(err)
		}
		defer j.Close()
		c := engine.AppendCommand(nil, &engine.Command{Seq: 1, Time: 1, Kind: engine.CmdDeposit, Amount: 1})
		key := fmt.Sprintf("gpux:{%s}:raw", shard)
		openLoop(b, func() { j.Client().Do(context.Background(), "XADD", key, "*", "d", c) })
	})
	b.Run("sequencer", func(b *testing.B) {
		j, err := store.OpenRedis(context.Background(), url, redistest.ShardAt(b, url))
		if err != nil {
			b.Fatal(err)
		}
		defer j.Close()
		s := start(b, Config{Journal: j, MaxInFlight: benchInFlight()})
		acct := mustSubmit(b, s, engine.Command{Kind: engine.CmdCreateAccount, Name: "a", Roles: engine.RoleBuyer}).Events[0].Accounts[0]
		openLoop(b, func() { s.Submit(context.Background(), depositCmd(acct), nil) })
	})
}

// BenchmarkRecovery journals 1,000,000 commands (place/cancel spot and
// reserved bids, deposits) and measures replaying them into a new engine.
func BenchmarkRecovery(b *testing.B) {
	j := store.NewMemoryJournal()
	eng := engine.New(engine.Config{})
	const total = 1_000_000
	var buf []byte
	seq := uint64(0)
	batch := func(cs []engine.Command) {
		buf = buf[:0]
		for i := range cs {
			seq++
			cs[i].Seq = seq
			cs[i].Time = 1796083200000
			buf = engine.AppendCommand(buf, &cs[i])
			eng.Apply(&cs[i])
		}
		j.Append(context.Background(), store.Batch{First: seq - uint64(len(cs)) + 1, Last: seq, Data: slices.Clone(buf)})
	}
	owner, buyer := engine.ID{1}, engine.ID{2}
	batch([]engine.Command{{Kind: engine.CmdCreateAccount, Target: owner, Name: "o", Roles: engine.RoleOwner},
		{Kind: engine.CmdCreateAccount, Target: buyer, Name: "b", Roles: engine.RoleBuyer},
		{Kind: engine.CmdDeposit, Target: buyer, Amount: engine.MaxAmount}})
	h := engine.Time(1796083200000).HourStart()
	cs := make([]engine.Command, 0, 100)
	for i := 0; seq < total; i++ {
		id := engine.ID{0: 9, 8: byte(i >> 24), 9: byte(i >> 16), 10: byte(i >> 8), 11: byte(i)}
		switch i % 4 {
		case 0:
			cs = append(cs, engine.Command{Kind: engine.CmdPlaceListing, Actor: owner, Target: id, Market: "h100-sxm.us-east", Quantity: 2, Start: h, End: h + 5*engine.Hour, Price: engine.Price(20000 + i%500), SpotFloor: engine.Price(10000 + i%700)})
		case 1:
			cs = append(cs, engine.Command{Kind: engine.CmdPlaceBid, BidType: engine.Spot, Actor: buyer, Target: id, Market: "h100-sxm.us-east", Quantity: 1, Price: engine.Price(10000 + i%900)})
		case 2:
			cs = append(cs, engine.Command{Kind: engine.CmdPlaceBid, BidType: engine.Reserved, Actor: buyer, Target: id, Market: "h100-sxm.us-east", Quantity: 1, Start: h + engine.Hour, End: h + 3*engine.Hour, Price: engine.Price(15000 + i%900)})
		default:
			prev := engine.ID{0: 9, 8: byte((i - 2) >> 24), 9: byte((i - 2) >> 16), 10: byte((i - 2) >> 8), 11: byte(i - 2)}
			cs = append(cs, engine.Command{Kind: engine.CmdCancelBid, Actor: buyer, Target: prev})
		}
		if len(cs) == cap(cs) || seq+uint64(len(cs)) >= total {
			batch(cs)
			cs = cs[:0]
		}
	}
	want := eng.Hash()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		fresh := engine.New(engine.Config{})
		n, err := Replay(context.Background(), j, fresh, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if fresh.Hash() != want {
			b.Fatal("replay differs")
		}
		b.StartTimer()
		b.ReportMetric(float64(n)/b.Elapsed().Seconds()*float64(i+1), "commands/s")
	}
}

// snapshotPauseBids is the resting-bid count of BenchmarkSnapshotPause;
// GPUX_BENCH_RESTING overrides it (e.g. 100000 for a quick run).
func snapshotPauseBids() int {
	if n, err := strconv.Atoi(os.Getenv("GPUX_BENCH_RESTING")); err == nil && n > 0 {
		return n
	}
	return 1_000_000
}

// BenchmarkSnapshotPause starts a sequencer on a state of 1,000,000
// resting reserved bids, submits deposits with a snapshot due every 2,000
// commands, and reports the longest time snapshotting stopped the
// sequencer: inline (the sequencer encodes the state itself, as it does
// for a journal that is not durable) against the follower engine (a
// durable journal), and the follower with no snapshot due as the control.
// All run on an in-memory journal, so Redis does not enter the figure.
func BenchmarkSnapshotPause(b *testing.B) {
	resting := snapshotPauseBids()
	eng := engine.New(engine.Config{})
	const t0 = engine.Time(1796083200000)
	h := t0.HourStart()
	buyer := engine.ID{2}
	seq := uint64(0)
	apply := func(c engine.Command) {
		seq++
		c.Seq, c.Time = seq, t0
		if _, err := eng.Apply(&c); err != nil {
			b.Fatalf("build state: %v", err)
		}
	}
	apply(engine.Command{Kind: engine.CmdCreateAccount, Target: buyer, Name: "b", Roles: engine.RoleBuyer})
	apply(engine.Command{Kind: engine.CmdDeposit, Target: buyer, Amount: engine.MaxAmount})
	for i := range resting {
		id := engine.ID{0: 9, 8: byte(i >> 24), 9: byte(i >> 16), 10: byte(i >> 8), 11: byte(i)}
		st := h + engine.Time(24+i%48)*engine.Hour
		apply(engine.Command{Kind: engine.CmdPlaceBid, BidType: engine.Reserved, Actor: buyer, Target: id, Market: "h100-sxm.us-east",
			Quantity: 1, Start: st, End: st + engine.Time(1+i%4)*engine.Hour, Price: engine.Price(10000 + i%5000)})
	}
	data := eng.Snapshot()
	snap := store.Snapshot{Seq: eng.Seq(), Hash: engine.HashOf(data), Data: data}
	b.Logf("state: %d resting bids, snapshot %d MiB", resting, len(data)>>20)
	eng = nil

	for _, mode := range []struct {
		name    string
		durable bool
		every   int
	}{
		{"inline", false, 2000},
		{"follower", true, 2000},
		// The control: the same hand-off to the follower, no snapshot
		// ever due. What it shows is the machine's own stalls.
		{"follower-no-snapshot", true, 1 << 30},
	} {
		b.Run(mode.name, func(b *testing.B) {
			mj := store.NewMemoryJournal()
			if err := mj.SaveSnapshot(context.Background(), snap); err != nil {
				b.Fatal(err)
			}
			var j store.Journal = mj
			if mode.durable {
				j = &durableMemory{mj}
			}
			s := start(b, Config{Journal: j, SnapshotEvery: mode.every, SnapshotInterval: time.Hour})
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				mustSubmit(b, s, depositCmd(buyer))
			}
			b.StopTimer()
			st := s.Status()
			b.ReportMetric(float64(st.MaxSnapshotPause.Microseconds())/1000, "max-pause-ms")
			b.ReportMetric(float64(st.LastSnapshotSeq), "last-snapshot-seq")
		})
	}
}

// durableMemory is a MemoryJournal that says it is durable, so the
// sequencer snapshots through its follower.
type durableMemory struct{ *store.MemoryJournal }

func (durableMemory) Durable() bool { return true }
