// Package redistest gives tests a real Redis: the shared server at
// 127.0.0.1:6379 with an isolated, cleaned-up shard per test, a private
// redis-server process that a test may stop and restart at will, or a
// private Redis Cluster of such processes.
//
// Tests skip when Redis is not available, except under CI=true, where they
// fail instead. Nothing here ever stops, restarts or flushes the shared
// server; a test that needs an outage starts its own with StartServer.
package redistest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// SharedAddr is the address of the shared test Redis.
const SharedAddr = "127.0.0.1:6379"

// unavailable skips tb, or fails it under CI=true, where a missing Redis
// is a broken build rather than a developer laptop.
func unavailable(tb testing.TB, format string, args ...any) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf(format, args...)
	}
	tb.Skipf(format, args...)
}

// URL returns the URL of the shared test Redis, redis://127.0.0.1:6379/0,
// when it answers a PING within a second. Otherwise it skips the test (fails
// it under CI=true).
func URL(tb testing.TB) string {
	tb.Helper()
	if err := ping(SharedAddr, time.Second); err != nil {
		unavailable(tb, "redis not reachable at %s: %v", SharedAddr, err)
	}
	return "redis://" + SharedAddr + "/0"
}

// ping sends one PING on a fresh connection and expects PONG.
func ping(addr string, timeout time.Duration) error {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	if _, err := conn.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

// Shard returns a shard id unique to this test ("t-" and random hex) on
// the shared Redis (skipping like URL when it is unreachable) and deletes
// every key gpux:{<shard>}:* when the test ends.
func Shard(tb testing.TB) string {
	tb.Helper()
	return ShardAt(tb, URL(tb))
}

// ShardAt is Shard on the Redis at url.
func ShardAt(tb testing.TB, url string) string {
	tb.Helper()
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatalf("shard id: %v", err)
	}
	shard := "t-" + hex.EncodeToString(b[:])
	tb.Cleanup(func() {
		if err := DeleteShard(url, shard); err != nil {
			tb.Errorf("clean up shard %s: %v", shard, err)
		}
	})
	return shard
}

// DeleteShard deletes every key gpux:{<shard>}:* on the Redis at url.
func DeleteShard(url, shard string) error {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return err
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	// The test's own context is already cancelled when cleanups run.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	iter := rdb.Scan(ctx, 0, "gpux:{"+shard+"}:*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	for len(keys) > 0 {
		n := min(len(keys), 500)
		if err := rdb.Del(ctx, keys[:n]...).Err(); err != nil {
			return fmt.Errorf("del: %w", err)
		}
		keys = keys[n:]
	}
	return nil
}

// Server is a private redis-server process on a loopback port, owned by
// one test. Its methods are safe for concurrent use.
type Server struct {
	tb   testing.TB
	bin  string
	port int
	args []string
	log  string // path of the server's output, shown when it fails to start

	mu   sync.Mutex
	cmd  *exec.Cmd     // nil while stopped
	done chan struct{} // closed when cmd has exited
}

// StartServer starts a redis-server on a free 127.0.0.1 port, with its
// working directory in tb.TempDir() and persistence off (--save "" and
// --appendonly no) unless args set --save, --appendonly or --dir
// themselves, waits until it answers PING, and stops it when the test ends.
// It skips the test (fails it under CI=true) when redis-server is not
// installed.
func StartServer(tb testing.TB, args ...string) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		unavailable(tb, "redis-server not installed: %v", err)
	}
	port, err := freePort()
	if err != nil {
		tb.Fatalf("find a free port: %v", err)
	}
	dir := tb.TempDir()
	full := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--daemonize", "no"}
	defaults := [][]string{
		{"--save", ""},
		{"--appendonly", "no"},
		{"--dir", dir},
	}
	for _, d := range defaults {
		if !hasFlag(args, d[0]) {
			full = append(full, d...)
		}
	}
	full = append(full, args...)
	s := &Server{tb: tb, bin: bin, port: port, args: full, log: filepath.Join(dir, "redis-server.log")}
	tb.Cleanup(s.Stop)
	s.Start()
	return s
}

func hasFlag(args []string, flag string) bool {
	for _, a := range args {
		if a == flag {
			return true
		}
	}
	return false
}

// freePort asks the kernel for a free loopback port. Another process could
// take it before redis-server binds it; that is rare enough for tests.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL returns the server's redis:// URL, database 0. It stays the same
// across Stop and Start.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Start starts the server again (a no-op when it is running) on the same
// port with the same arguments, and waits up to 10s for it to answer PING.
func (s *Server) Start() {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return
	}
	logf, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.tb.Fatalf("redis-server log: %v", err)
	}
	defer logf.Close() // the child keeps its own descriptor
	cmd := exec.Command(s.bin, s.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		s.tb.Fatalf("start redis-server: %v", err)
	}
	done := make(chan struct{})
	var werr error
	go func() { werr = cmd.Wait(); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := ping(s.Addr(), 200*time.Millisecond)
		if err == nil {
			break
		}
		select {
		case <-done:
			out, _ := os.ReadFile(s.log)
			s.tb.Fatalf("redis-server on port %d exited (%v) before answering PING:\n%s", s.port, werr, out)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-done
			out, _ := os.ReadFile(s.log)
			s.tb.Fatalf("redis-server on port %d did not answer PING within 10s (%v):\n%s", s.port, err, out)
		}
	}
	s.cmd, s.done = cmd, done
}

// Stop kills the server (SIGKILL: no shutdown, no save, like a crash) and
// waits for it to exit. It is a no-op when the server is not running.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
	s.cmd, s.done = nil, nil
}

// Pause freezes the server (SIGSTOP): connections stay open but nothing is
// answered, the way a stalled or partitioned Redis behaves.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume unfreezes a paused server (SIGCONT).
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		s.tb.Fatalf("redis-server on port %d: %v: not running", s.port, sig)
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.tb.Fatalf("redis-server on port %d: %v: %v", s.port, sig, err)
	}
}

// Cluster is a Redis Cluster of private redis-server processes on
// loopback ports, masters only, owned by one test.
type Cluster struct {
	Nodes []*Server
}

// StartCluster starts masters redis-servers in cluster mode (each with its
// own directory and nodes.conf), joins them with redis-cli --cluster
// create (slots spread evenly, no replicas) and waits until every node
// reports cluster_state:ok. It skips the test (fails it under CI=true)
// when redis-server or a redis-cli with --cluster is not installed; the
// servers stop when the test ends.
func StartCluster(tb testing.TB, masters int) *Cluster {
	tb.Helper()
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		unavailable(tb, "redis-cli not installed: %v", err)
	}
	// redis-cli --cluster help exits 1 even where it works: its text says.
	if out, _ := exec.Command(cli, "--cluster", "help").CombinedOutput(); !strings.Contains(string(out), "create") {
		unavailable(tb, "redis-cli cannot create a cluster (redis-cli --cluster help): %s", out)
	}
	c := &Cluster{}
	args := []string{"--cluster", "create"}
	for range masters {
		s := StartServer(tb, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000")
		c.Nodes = append(c.Nodes, s)
		args = append(args, s.Addr())
	}
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		tb.Fatalf("redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, s := range c.Nodes {
		for {
			info, err := clusterInfo(s.Addr())
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("cluster node %s not ok within 30s: %v %s", s.Addr(), err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c
}

// clusterInfo returns CLUSTER INFO of the node at addr.
func clusterInfo(addr string) (string, error) {
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return rdb.ClusterInfo(ctx).Result()
}

// URL returns the cluster's redis+cluster:// URL naming every node.
func (c *Cluster) URL() string {
	return "redis+cluster://" + strings.Join(c.Addrs(), ",")
}

// Addrs returns the nodes' host:port addresses.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, s := range c.Nodes {
		addrs[i] = s.Addr()
	}
	return addrs
}
