package faults

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/gpux/gpux/client"
	"github.com/gpux/gpux/internal/gpuxdtest"
)

// The catalogue the suite runs gpuxd with: small, so the auditor's fresh
// engine (no snapshot yet) is built the same way.
var (
	faultGPUs    = []string{"h100-sxm", "l4"}
	faultRegions = []string{"us-east"}
	faultMarkets = []string{"h100-sxm.us-east", "l4.us-east"}
)

const (
	adminKey = "faults-admin-key-0123456789abcdef"
	feeBps   = 250
)

// daemon is one gpuxd child process.
type daemon struct {
	*gpuxdtest.Proc
	tb   testing.TB
	addr string
	logs *gpuxdtest.Buffer
	// recovered is what the sequencer logged at the end of recovery.
	recovered recovery
	// final is the sequencer's "final state" log line at a graceful stop
	// (read it after the process exited).
	final finalState
}

// recovery is the sequencer's "recovered" log line.
type recovery struct {
	Seq         uint64  `json:"seq"`
	Hash        string  `json:"hash"`
	Replayed    int     `json:"replayed"`
	SnapshotSeq uint64  `json:"snapshot_seq"`
	Seconds     float64 `json:"seconds"`
}

// finalState is the sequencer's "final state" log line.
type finalState struct {
	Seq    uint64 `json:"seq"`
	Hash   string `json:"hash"`
	Leader bool   `json:"leader"`
	Token  uint64 `json:"token"`
}

// startGpuxd runs the gpuxd binary on a free loopback port against the
// Redis at redisURL and waits until it logs "ready". extra flags override
// the suite's defaults. The test's cleanup kills it if it still runs.
func startGpuxd(tb testing.TB, redisURL, shard string, extra ...string) *daemon {
	tb.Helper()
	args := []string{
		"--addr", "127.0.0.1:0", "--redis", redisURL, "--shard", shard,
		"--admin-key", adminKey, "--rate-limit", "0", "--log-format", "json",
		"--gpus", join(faultGPUs), "--regions", join(faultRegions),
		"--fee-bps", itoa(feeBps), "--shutdown-timeout", "20s",
	}
	d := &daemon{tb: tb}
	recovered := make(chan recovery, 1)
	d.Proc = gpuxdtest.Start(tb, gpuxdtest.Binary(tb), gpuxdtest.Options{
		Args: append(args, extra...),
		OnLine: func(line []byte) {
			var rec struct {
				Msg string `json:"msg"`
			}
			if json.Unmarshal(line, &rec) != nil {
				return
			}
			switch rec.Msg {
			case "recovered":
				var r recovery
				if json.Unmarshal(line, &r) == nil {
					select { // the first recovery is the start's; a reader must never block
					case recovered <- r:
					default:
					}
				}
			case "final state":
				json.Unmarshal(line, &d.final)
			}
		},
	})
	d.addr, d.logs = d.Proc.Addr, d.Proc.Logs
	if slices.Contains(extra, "api") { // --role api: an API node recovers nothing
		return d
	}
	select {
	case d.recovered = <-recovered:
	default:
		tb.Fatalf("gpuxd was ready without logging its recovery:\n%s", d.logs.String())
	}
	return d
}

// url is the daemon's base URL.
func (d *daemon) url() string { return "http://" + d.addr }

// admin returns a client with the admin key.
func (d *daemon) admin() *client.Client {
	return client.New(d.url(), client.WithAPIKey(adminKey), client.WithHTTPClient(httpClient()))
}

// kill sends SIGKILL and waits for the process to go.
func (d *daemon) kill() { d.tb.Helper(); d.Kill() }

// term sends SIGTERM and returns the process's exit error (nil = exit 0),
// failing the test if it has not exited within timeout.
func (d *daemon) term(timeout time.Duration) error { d.tb.Helper(); return d.Term(timeout) }
