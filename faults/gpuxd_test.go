package faults

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gpux/gpux/client"
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
	tb   testing.TB
	cmd  *exec.Cmd
	addr string
	// recovered is what the sequencer logged at the end of recovery.
	recovered recovery
	// final is the sequencer's "final state" log line at a graceful stop
	// (read it after the process exited).
	final   finalState
	logs    *syncBuffer
	exited  chan struct{}
	waitErr error
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
	args = append(args, extra...)
	cmd := exec.Command(gpuxdBin, args...)
	// Nothing from the test's environment may point gpuxd elsewhere.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stdout = nil
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start gpuxd: %v", err)
	}
	d := &daemon{tb: tb, cmd: cmd, logs: &syncBuffer{}, exited: make(chan struct{})}
	ready := make(chan string, 1)
	recovered := make(chan recovery, 1)
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			d.logs.Write(append(line, '\n'))
			var rec struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(line, &rec) != nil {
				continue
			}
			switch rec.Msg {
			case "recovered":
				var r recovery
				if json.Unmarshal(line, &r) == nil {
					recovered <- r
				}
			case "ready":
				ready <- rec.Addr
			case "final state":
				json.Unmarshal(line, &d.final)
			}
		}
	}()
	go func() {
		<-scanned // Wait must not close the pipe under the scanner
		d.waitErr = cmd.Wait()
		close(d.exited)
	}()
	tb.Cleanup(func() {
		select {
		case <-d.exited:
		default:
			cmd.Process.Kill()
			<-d.exited
		}
	})
	select {
	case d.addr = <-ready:
	case <-d.exited:
		tb.Fatalf("gpuxd exited before it was ready (%v):\n%s", d.waitErr, d.logs.String())
	case <-time.After(60 * time.Second):
		tb.Fatalf("gpuxd not ready within 60s:\n%s", d.logs.String())
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
func (d *daemon) kill() {
	d.tb.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		d.tb.Fatalf("kill gpuxd: %v", err)
	}
	<-d.exited
}

// term sends SIGTERM and returns the process's exit error (nil = exit 0),
// failing the test if it has not exited within timeout.
func (d *daemon) term(timeout time.Duration) error {
	d.tb.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		d.tb.Fatalf("SIGTERM gpuxd: %v", err)
	}
	select {
	case <-d.exited:
		return d.waitErr
	case <-time.After(timeout):
		d.tb.Fatalf("gpuxd did not exit within %v of SIGTERM:\n%s", timeout, d.logs.String())
		return nil
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
