package sequencer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/store"
	"github.com/gpux/gpux/store/redistest"
)

func openJournal(tb testing.TB, url, shard string) *store.RedisJournal {
	tb.Helper()
	j, err := store.OpenRedis(context.Background(), url, shard)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { j.Close() })
	return j
}

// start recovers and runs a sequencer; the cleanup closes it.
func start(tb testing.TB, cfg Config) *Sequencer {
	tb.Helper()
	if cfg.TickInterval == 0 {
		cfg.TickInterval = -1
	}
	if cfg.Logger == nil && !testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.Recover(context.Background()); err != nil {
		tb.Fatal(err)
	}
	go s.Run(context.Background())
	tb.Cleanup(func() { s.Close(context.Background()) })
	return s
}

func mustSubmit(tb testing.TB, s *Sequencer, c engine.Command) Outcome {
	tb.Helper()
	out, err := s.Submit(context.Background(), c, nil)
	if err != nil {
		tb.Fatalf("submit %s: %v", c.Kind, err)
	}
	if out.Err != nil {
		tb.Fatalf("submit %s: rejected: %v", c.Kind, out.Err)
	}
	return out
}

func hashOf(s *Sequencer) (h string) {
	s.Read(func(e *engine.Engine) { h = e.Hash() })
	return h
}

// workload submits a mixed stream from several goroutines.
func workload(tb testing.TB, s *Sequencer, n, workers int) {
	tb.Helper()
	owner := mustSubmit(tb, s, engine.Command{Kind: engine.CmdCreateAccount, Name: "owner", Roles: engine.RoleOwner}).Events[0].Accounts[0]
	buyer := mustSubmit(tb, s, engine.Command{Kind: engine.CmdCreateAccount, Name: "buyer", Roles: engine.RoleBuyer}).Events[0].Accounts[0]
	mustSubmit(tb, s, engine.Command{Kind: engine.CmdDeposit, Target: buyer, Amount: 1_000_000 * engine.TicksPerUSD})
	var now engine.Time
	s.Read(func(e *engine.Engine) { now = e.Now() })
	hour := now.HourStart()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 9))
			for i := 0; i < n/workers; i++ {
				var c engine.Command
				switch r.IntN(3) {
				case 0:
					c = engine.Command{Kind: engine.CmdPlaceListing, Actor: owner, Market: "h100-sxm.us-east", Quantity: 1 + r.Int64N(4),
						Start: hour, End: hour + engine.Time(2+r.IntN(20))*engine.Hour, Price: engine.Price(10000 + r.Int64N(20000)), SpotFloor: engine.Price(5000 + r.Int64N(20000))}
				case 1:
					c = engine.Command{Kind: engine.CmdPlaceBid, BidType: engine.Spot, Actor: buyer, Market: "h100-sxm.us-east", Quantity: 1 + r.Int64N(3), Price: engine.Price(5000 + r.Int64N(30000))}
				default:
					st := hour + engine.Time(1+r.IntN(5))*engine.Hour
					c = engine.Command{Kind: engine.CmdPlaceBid, BidType: engine.Reserved, Actor: buyer, Market: "h100-sxm.us-east", Quantity: 1 + r.Int64N(3),
						Start: st, End: st + engine.Time(1+r.IntN(4))*engine.Hour, Price: engine.Price(10000 + r.Int64N(20000))}
				}
				if _, err := s.Submit(context.Background(), c, nil); err != nil {
					tb.Errorf("submit: %v", err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
}

func TestRecoverEqualsLiveWithRedis(t *testing.T) {
	url := redistest.URL(t)
	shard := redistest.Shard(t)
	j := openJournal(t, url, shard)
	var live []engine.Event
	var mu sync.Mutex
	s := start(t, Config{Journal: j, SnapshotEvery: 150, OnEvents: func(evs []engine.Event) {
		mu.Lock()
		live = append(live, evs...)
		mu.Unlock()
	}})
	workload(t, s, 600, 4)
	want := hashOf(s)
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	// Recovery from snapshot + journal gives the same state.
	j2 := openJournal(t, url, shard)
	s2 := start(t, Config{Journal: j2})
	if got := hashOf(s2); got != want {
		t.Fatalf("recovered hash %s, want %s", got, want)
	}
	if st := s2.Status(); !st.Ready || st.LastSeq == 0 || !st.Durable || st.Journal != "redis" {
		t.Fatalf("status %+v", st)
	}
}

func TestReplayEqualsLive(t *testing.T) {
	j := store.NewMemoryJournal()
	var live []engine.Event
	s := start(t, Config{Journal: j, OnEvents: func(evs []engine.Event) { live = append(live, evs...) }})
	workload(t, s, 400, 3)
	s.Close(context.Background())
	var replayed []engine.Event
	eng := engine.New(engine.Config{})
	if _, err := Replay(context.Background(), j, eng, func(evs []engine.Event) { replayed = append(replayed, evs...) }); err != nil {
		t.Fatal(err)
	}
	if len(live) == 0 || !reflect.DeepEqual(live, replayed) {
		t.Fatalf("replayed %d events, live %d; they differ", len(replayed), len(live))
	}
	if eng.Hash() != hashOf(s) {
		t.Fatal("replayed state differs from live")
	}
}

func TestTimeNeverGoesBack(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC).UnixMilli())
	s := start(t, Config{Journal: store.NewMemoryJournal(), Now: func() time.Time { return time.UnixMilli(clock.Load()) }})
	a := mustSubmit(t, s, engine.Command{Kind: engine.CmdTick})
	clock.Add(-5000)
	b := mustSubmit(t, s, engine.Command{Kind: engine.CmdTick})
	if b.Seq != a.Seq+1 {
		t.Fatalf("seq %d after %d", b.Seq, a.Seq)
	}
	var now engine.Time
	s.Read(func(e *engine.Engine) { now = e.Now() })
	if now != engine.Time(clock.Load()+5000) {
		t.Fatalf("engine time %d went back", now)
	}
}

func TestRedisOutage(t *testing.T) {
	srv := redistest.StartServer(t, "--appendonly", "yes", "--appendfsync", "always")
	j := openJournal(t, srv.URL(), "outage")
	s := start(t, Config{Journal: j, AppendTimeout: 500 * time.Millisecond})
	buyer := mustSubmit(t, s, engine.Command{Kind: engine.CmdCreateAccount, Name: "b", Roles: engine.RoleBuyer}).Events[0].Accounts[0]

	var acked atomic.Int64 // sum of acknowledged deposits, in ticks
	var failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int64(1); ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				t0 := time.Now()
				out, err := s.Submit(context.Background(), engine.Command{Kind: engine.CmdDeposit, Target: buyer, Amount: engine.Money(i)}, nil)
				switch {
				case err == nil && out.Err == nil:
					acked.Add(i)
				case errors.Is(err, ErrUnavailable):
					failed.Add(1)
					if d := time.Since(t0); d > 3*time.Second {
						t.Errorf("a write took %s to fail", d)
					}
					time.Sleep(5 * time.Millisecond)
				default:
					t.Errorf("unexpected outcome %v %v", out.Err, err)
					return
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	srv.Stop()
	deadline := time.Now().Add(5 * time.Second)
	for failed.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if failed.Load() == 0 {
		t.Fatal("no write failed while Redis was down")
	}
	if s.Status().Writable {
		t.Fatal("still writable with Redis down")
	}
	// Reads keep working.
	s.Read(func(e *engine.Engine) { e.Account(buyer) })
	srv.Start()
	deadline = time.Now().Add(15 * time.Second)
	for !s.Status().Writable && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !s.Status().Writable {
		t.Fatal("did not recover by itself after Redis returned")
	}
	before := acked.Load()
	for acked.Load() == before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	var balance engine.Money
	s.Read(func(e *engine.Engine) { a, _ := e.Account(buyer); balance = a.Balance })
	if balance < engine.Money(acked.Load()) {
		t.Fatalf("balance %d is less than the acknowledged deposits %d: an ack was lost", balance, acked.Load())
	}
	// The journal holds exactly the engine's state (no snapshot was taken,
	// so the whole history is in the stream).
	want := hashOf(s)
	eng := engine.New(engine.Config{})
	if _, err := Replay(context.Background(), j, eng, nil); err != nil {
		t.Fatal(err)
	}
	if eng.Hash() != want {
		var live engine.Totals
		var seq uint64
		s.Read(func(e *engine.Engine) { live = e.Totals(); seq = e.Seq() })
		t.Fatalf("journal replay differs from the live engine after the outage: replay seq %d %+v, live seq %d %+v", eng.Seq(), eng.Totals(), seq, live)
	}
}

// TestCrash runs the sequencer in a child process under concurrent load,
// with several journal appends in flight (the test checks the child got to
// more than one), kills it with SIGKILL at random moments, and checks from Redis alone that
// every acknowledged command survived, none was applied twice, and the
// recovered state equals a replay of exactly the journal.
func TestCrash(t *testing.T) {
	if os.Getenv("GPUX_CRASH_CHILD") != "" {
		crashChild()
		return
	}
	url := redistest.URL(t)
	for i, killAfter := range []time.Duration{150 * time.Millisecond, 400 * time.Millisecond, 900 * time.Millisecond} {
		t.Run(fmt.Sprint("kill-after-", killAfter), func(t *testing.T) {
			shard := redistest.Shard(t)
			cmd := exec.Command(os.Args[0], "-test.run=^TestCrash$")
			cmd.Env = append(os.Environ(), "GPUX_CRASH_CHILD=1", "GPUX_CRASH_URL="+url, "GPUX_CRASH_SHARD="+shard, fmt.Sprint("GPUX_CRASH_SNAP=", 50*(i+1)))
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = io.Discard
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Collect acknowledgements continuously so the child never
			// blocks on a full pipe.
			acked := map[string]bool{}
			inflight := 0 // most appends the child had in flight at once
			var mu sync.Mutex
			got := make(chan struct{}, 1)
			collected := make(chan struct{})
			go func() {
				defer close(collected)
				sc := bufio.NewScanner(out)
				for sc.Scan() {
					if n, ok := strings.CutPrefix(sc.Text(), "inflight "); ok {
						mu.Lock()
						inflight, _ = strconv.Atoi(n)
						mu.Unlock()
					}
					if id, ok := strings.CutPrefix(sc.Text(), "ack "); ok {
						mu.Lock()
						acked[id] = true
						mu.Unlock()
						select {
						case got <- struct{}{}:
						default:
						}
					}
				}
			}()
			select {
			case <-got:
			case <-time.After(20 * time.Second):
				cmd.Process.Kill()
				t.Fatal("the child acknowledged nothing in 20 s")
			}
			// A random moment around the planned one.
			time.Sleep(killAfter + time.Duration(rand.Int64N(int64(100*time.Millisecond))))
			cmd.Process.Signal(syscall.SIGKILL)
			<-collected
			cmd.Wait()
			if len(acked) == 0 {
				t.Fatal("the child acknowledged nothing")
			}
			if inflight < 2 {
				t.Fatalf("the child never had more than %d append in flight: the kill did not test pipelining", inflight)
			}

			j := openJournal(t, url, shard)
			s := start(t, Config{Journal: j})
			var missing []string
			var listings int
			s.Read(func(e *engine.Engine) {
				for id := range acked {
					eid, _ := engine.ParseID(id)
					if _, ok := e.Listing(eid); !ok {
						missing = append(missing, id)
					}
				}
				ls, _ := e.ListingsOf(crashOwner, "", 1_000_000, engine.ID{})
				listings = len(ls)
			})
			if len(missing) > 0 {
				t.Fatalf("%d of %d acknowledged commands are missing after recovery", len(missing), len(acked))
			}
			// Every journaled listing command applied exactly once: seqs are
			// contiguous and the listing count equals the commands.
			full, n := replayWholeJournal(t, j)
			if listings != n {
				t.Fatalf("recovered %d listings, journal holds %d listing commands", listings, n)
			}
			if full != "" && full != hashOf(s) {
				t.Fatal("recovered state differs from a replay of exactly the journal")
			}
			t.Logf("acknowledged %d, journaled %d listings; up to %d appends were in flight", len(acked), n, inflight)
		})
	}
}

var crashOwner = engine.ID{0: 0xc0, 15: 1}

// replayWholeJournal replays the stored snapshot plus journal into a fresh
// engine independently of the sequencer, counting listing commands.
func replayWholeJournal(tb testing.TB, j store.Journal) (hash string, listings int) {
	tb.Helper()
	ctx := context.Background()
	snap, ok, err := j.LoadSnapshot(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	eng := engine.New(engine.Config{})
	if ok {
		if eng, err = engine.Restore(snap.Data); err != nil {
			tb.Fatal(err)
		}
		ls, _ := eng.ListingsOf(crashOwner, "", 1_000_000, engine.ID{})
		listings = len(ls)
	}
	if _, err := Replay(ctx, j, eng, func(evs []engine.Event) {
		for _, ev := range evs {
			if ev.Kind == engine.EvListingPlaced {
				listings++
			}
		}
	}); err != nil {
		tb.Fatal(err)
	}
	return eng.Hash(), listings
}

func crashChild() {
	url, shard := os.Getenv("GPUX_CRASH_URL"), os.Getenv("GPUX_CRASH_SHARD")
	every, _ := strconv.Atoi(os.Getenv("GPUX_CRASH_SNAP"))
	j, err := store.OpenRedis(context.Background(), url, shard)
	if err != nil {
		panic(err)
	}
	s, _ := New(Config{Journal: j, SnapshotEvery: every, TickInterval: 20 * time.Millisecond})
	if err := s.Recover(context.Background()); err != nil {
		panic(err)
	}
	go s.Run(context.Background())
	w := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	s.Submit(context.Background(), engine.Command{Kind: engine.CmdCreateAccount, Target: crashOwner, Name: "o", Roles: engine.RoleOwner}, nil)
	var now engine.Time
	s.Read(func(e *engine.Engine) { now = e.Now() })
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				out, err := s.Submit(context.Background(), engine.Command{Kind: engine.CmdPlaceListing, Actor: crashOwner, Market: "l4.us-west",
					Quantity: 1, Start: now.HourStart() + engine.Hour, End: now.HourStart() + 3*engine.Hour, Price: 10000}, func(e *engine.Engine, c *engine.Command) {})
				if err != nil || out.Err != nil {
					continue
				}
				mu.Lock()
				fmt.Fprintf(w, "ack %s\ninflight %d\n", out.Events[0].Listing, s.flightHigh.Load())
				w.Flush()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}
