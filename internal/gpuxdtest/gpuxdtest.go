// Package gpuxdtest runs the real gpuxd binary as a child process for the
// end-to-end, browser and fault tests: it builds cmd/gpuxd once per test
// binary and starts it on a loopback port, waiting for its "ready" log
// line. It is for tests only.
package gpuxdtest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
)

// Binary returns the path of a gpuxd built from this module, building it
// the first time a test of this binary asks. Call Cleanup from TestMain
// after the tests ran to remove it.
func Binary(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "gpuxd-test-"); buildErr != nil {
			return
		}
		buildBin = filepath.Join(buildDir, "gpuxd")
		out, err := exec.Command("go", "build", "-o", buildBin, "github.com/gpux/gpux/cmd/gpuxd").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("build gpuxd: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return buildBin
}

// Cleanup removes what Binary built.
func Cleanup() {
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
}

// Options says how to run gpuxd.
type Options struct {
	// Args are the command line; add "--addr 127.0.0.1:0" and
	// "--log-format json" (Start reads the ready line's address).
	Args []string
	// Env is the child's whole environment; nil: only PATH and HOME, so
	// nothing of the test's environment points gpuxd elsewhere.
	Env []string
	// Stdout receives the child's standard output (nil: discarded).
	Stdout io.Writer
	// OnLine, when set, sees every log line, in order, on the goroutine
	// that reads them.
	OnLine func(line []byte)
	// Graceful makes the test's cleanup stop a child still running with
	// SIGTERM, and SIGKILL only after 15 s; otherwise it is killed.
	Graceful bool
	// ReadyTimeout bounds the wait for "ready" (default 60 s).
	ReadyTimeout time.Duration
}

// Proc is a running (or exited) gpuxd.
type Proc struct {
	tb     testing.TB
	Cmd    *exec.Cmd
	Addr   string  // host:port from the "ready" line
	Logs   *Buffer // every log line
	exited chan struct{}
	err    error // Wait's, once exited is closed
}

// Start runs the gpuxd at bin with o and waits until it logs "ready". The
// test's cleanup stops it if it still runs.
func Start(tb testing.TB, bin string, o Options) *Proc {
	tb.Helper()
	cmd := exec.Command(bin, o.Args...)
	cmd.Env = o.Env
	if cmd.Env == nil {
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	}
	cmd.Stdout = o.Stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start gpuxd: %v", err)
	}
	p := &Proc{tb: tb, Cmd: cmd, Logs: &Buffer{}, exited: make(chan struct{})}
	ready := make(chan string, 1)
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			p.Logs.Write(append(line, '\n'))
			if o.OnLine != nil {
				o.OnLine(line)
			}
			var rec struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(line, &rec) == nil && rec.Msg == "ready" {
				select {
				case ready <- rec.Addr:
				default:
				}
			}
		}
	}()
	go func() {
		<-scanned // Wait must not close the pipe under the scanner
		p.err = cmd.Wait()
		close(p.exited)
	}()
	tb.Cleanup(func() {
		select {
		case <-p.exited:
			return
		default:
		}
		if o.Graceful {
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.exited:
				return
			case <-time.After(15 * time.Second):
			}
		}
		cmd.Process.Kill()
		<-p.exited
	})
	timeout := o.ReadyTimeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	select {
	case p.Addr = <-ready:
	case <-p.exited:
		tb.Fatalf("gpuxd exited before it was ready (%v):\n%s", p.err, p.Logs.String())
	case <-time.After(timeout):
		tb.Fatalf("gpuxd not ready within %v:\n%s", timeout, p.Logs.String())
	}
	return p
}

// URL is the base URL of the child's API.
func (p *Proc) URL() string { return "http://" + p.Addr }

// Exited is closed once the process has exited; Err then says how.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Err is the process's exit error (nil: exit 0); valid once Exited is
// closed.
func (p *Proc) Err() error { return p.err }

// Signal sends sig to the process.
func (p *Proc) Signal(sig os.Signal) error { return p.Cmd.Process.Signal(sig) }

// Kill sends SIGKILL and waits for the process to go.
func (p *Proc) Kill() {
	p.tb.Helper()
	if err := p.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.tb.Fatalf("kill gpuxd: %v", err)
	}
	<-p.exited
}

// Term sends SIGTERM and returns the exit error (nil: exit 0), failing the
// test if the process has not exited within timeout.
func (p *Proc) Term(timeout time.Duration) error {
	p.tb.Helper()
	if err := p.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.tb.Fatalf("SIGTERM gpuxd: %v", err)
	}
	select {
	case <-p.exited:
		return p.err
	case <-time.After(timeout):
		p.tb.Fatalf("gpuxd did not exit within %v of SIGTERM:\n%s", timeout, p.Logs.String())
		return nil
	}
}

// Buffer is a bytes.Buffer safe for one writer and concurrent readers.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
