package faults

import (
	"testing"
	"time"

	"github.com/gpux/gpux/store/redistest"
)

// TestSIGTERMUnderLoad stops gpuxd with SIGTERM in the middle of mixed
// load, several times: each time it must exit 0, every acknowledged command
// must be in the journal, money conserved, and the final snapshot must
// cover the whole journal, so the next start replays nothing.
func TestSIGTERMUnderLoad(t *testing.T) {
	cycles := 5
	if long() {
		cycles = 20
	}
	srv := redistest.StartServer(t, "--appendonly", "yes", "--appendfsync", "always")
	shard := "sigterm"
	d := startGpuxd(t, srv.URL(), shard, "--snapshot-every", "300")
	l := setupLedger(t, d)
	var stopSecs float64
	for c := range cycles {
		ld := startLoad(l, d, 8, uint64(time.Now().UnixNano()))
		waitAcks(t, l, ackCount(l)+100, 20*time.Second)
		t0 := time.Now()
		if err := d.term(30 * time.Second); err != nil {
			t.Fatalf("cycle %d: gpuxd exited with %v after SIGTERM, want 0:\n%s", c, err, d.logs.String())
		}
		stopSecs = max(stopSecs, time.Since(t0).Seconds())
		ld.stop()
		a := audit(t, srv.URL(), shard, l)
		d = startGpuxd(t, srv.URL(), shard, "--snapshot-every", "300")
		sameState(t, d, a)
		if d.recovered.Replayed != 0 || d.recovered.SnapshotSeq != a.seq {
			t.Errorf("cycle %d: after a graceful stop the snapshot is at %d and %d commands were replayed; want a final snapshot at %d",
				c, d.recovered.SnapshotSeq, d.recovered.Replayed, a.seq)
		}
	}
	if err := d.term(30 * time.Second); err != nil {
		t.Fatalf("final SIGTERM: %v", err)
	}
	t.Logf("%d SIGTERM cycles under load, slowest stop %.2fs; acknowledged: %s", cycles, stopSecs, l.summary())
}
