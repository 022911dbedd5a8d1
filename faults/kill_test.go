package faults

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"testing"
	"time"

	"github.com/gpux/gpux/store/redistest"
)

// TestKill9UnderLoad kills gpuxd with SIGKILL at a random moment of a burst
// of mixed load, again and again, and after each kill rebuilds the state
// from Redis alone: every acknowledged command must be in the journal,
// money must be conserved to the tick, and the gpuxd started next must
// recover exactly the state a replay of the journal gives (seq and hash).
// Snapshots are taken every 20–120 commands, so kills land before,
// during and after snapshot writes and recovery uses snapshot + tail.
func TestKill9UnderLoad(t *testing.T) {
	cycles, burst, workers := 20, 400*time.Millisecond, 8
	if long() {
		cycles, burst, workers = 100, 3*time.Second, 16
	}
	srv := redistest.StartServer(t, "--appendonly", "yes", "--appendfsync", "always")
	shard := "kill9"
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := mrand.New(mrand.NewPCG(seed, 1))

	d := startGpuxd(t, srv.URL(), shard, "--snapshot-every", "100")
	l := setupLedger(t, d)
	var recoveries []recovery
	var total time.Duration
	for c := range cycles {
		ld := startLoad(l, d, workers, seed+uint64(c))
		// Kill somewhere in the burst, once some load is under way.
		time.Sleep(burst/4 + time.Duration(r.Int64N(int64(burst))))
		d.kill()
		ld.stop()
		a := audit(t, srv.URL(), shard, l)

		t0 := time.Now()
		d = startGpuxd(t, srv.URL(), shard, "--snapshot-every", fmt.Sprint(20+r.IntN(100)))
		total += time.Since(t0)
		sameState(t, d, a)
		recoveries = append(recoveries, d.recovered)
		if h, err := d.admin().Health(context.Background()); err != nil || h.LastSeq < a.seq || !h.Durable {
			t.Fatalf("cycle %d: /healthz after restart: %+v %v (journal at %d)", c, h, err, a.seq)
		}
	}
	// The last run ends gracefully, and that too must keep everything.
	if err := d.term(30 * time.Second); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, d.logs.String())
	}
	a := audit(t, srv.URL(), shard, l)

	var replayed, maxReplayed, fromSnapshot int
	var maxSecs float64
	for _, rc := range recoveries {
		if rc.SnapshotSeq > 0 {
			fromSnapshot++
		}
		replayed += rc.Replayed
		maxReplayed = max(maxReplayed, rc.Replayed)
		maxSecs = max(maxSecs, rc.Seconds)
	}
	t.Logf("%d kill -9 cycles, %d commands journaled in all; acknowledged: %s", cycles, a.seq, l.summary())
	t.Logf("recovery: %d of %d starts from a snapshot; %d commands replayed in all, at most %d in one start, longest %.3fs; gpuxd start to ready %.2fs on average",
		fromSnapshot, cycles, replayed, maxReplayed, maxSecs, total.Seconds()/float64(cycles))
}
