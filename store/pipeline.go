package store

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Pipeliner is a Journal that can stream appends: several batches in
// flight at once, stored in the order they were started. The sequencer
// uses it when the journal offers it and falls back to Append otherwise.
type Pipeliner interface {
	// AppendAsync starts appending b after every batch started before it
	// and returns without waiting. done is called exactly once, on another
	// goroutine or before AppendAsync returns: with nil once b is stored, or
	// an error with Append's meaning (ErrUnavailable: outcome unknown) by
	// deadline at the latest (after it only when the pipeline's own dial is
	// slower). done must not block. b.Data must stay unchanged until
	// then. A batch is stored only if it follows the newest stored batch
	// (First = its Last + 1, or the snapshot's Seq + 1 on an empty
	// stream); otherwise done gets an error wrapping ErrConflict. So when
	// one batch fails, every batch after it fails too until the caller
	// starts again from the journal's tail: the stream never gets a gap.
	// Unlike Append, a retry of a batch already stored is a conflict, not
	// a no-op.
	AppendAsync(b Batch, deadline time.Time, done func(error))
}

var _ Pipeliner = (*RedisJournal)(nil)

// appendNextScript appends a batch only if it follows the newest stored
// one: a pipelined batch must never land after a batch that failed.
//
// With a fencing token it first checks the shard's fence (see Fencer).
//
// KEYS[1] journal stream, KEYS[2] snapshot hash, KEYS[3] fence counter.
// ARGV: entry id "<First>-1", Last, data, First-1 (decimal), fencing token
// ("" = no check).
const appendNextSrc = `
if ARGV[5] ~= '' and redis.call('GET', KEYS[3]) ~= ARGV[5] then
  return redis.error_reply('GPUXFENCED journal fenced: token ' .. ARGV[5] .. ' is not the shard fence')
end
local prev = '0'
local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #top == 1 then
  local f = top[1][2]
  for i = 1, #f, 2 do
    if f[i] == 'l' then prev = f[i + 1] end
  end
else
  prev = redis.call('HGET', KEYS[2], 'seq') or '0'
end
if prev ~= ARGV[4] then
  return redis.error_reply('GPUXORDER journal ends at ' .. prev .. ', batch starts after ' .. ARGV[4])
end
return redis.call('XADD', KEYS[1], ARGV[1], 'l', ARGV[2], 'd', ARGV[3])
`

var appendNextScript = redis.NewScript(appendNextSrc)

// pipeline streams appendNextScript calls over one dedicated connection:
// one writer (the caller of AppendAsync, under mu) and one reader per
// connection, which matches replies to appends in order.
type pipeline struct {
	// opts returns the options of the Redis that holds the journal: the
	// client's own, or on a Cluster the master of the journal's slot,
	// looked up at each dial so that a moved slot is followed.
	opts func(ctx context.Context) (*redis.Options, error)
	j    *RedisJournal

	mu   sync.Mutex
	sess *session // nil or dead: dial on the next append
}

// session is one connection of the pipeline.
type session struct {
	conn    net.Conn
	w       *bufio.Writer
	pending chan *pendingAppend // written, reply not yet read
	dead    chan struct{}       // closed when the connection failed
	once    sync.Once
	err     error
}

type pendingAppend struct {
	first    uint64
	deadline time.Time
	done     func(error)
}

// maxPending bounds the appends one connection has in flight.
const maxPending = 1024

// AppendAsync streams b over the journal's pipeline connection. See
// Pipeliner. On a *redis.ClusterClient the connection goes to the master
// of the journal's slot (ClusterClient.MasterForKey); a journal built by
// NewRedisJournal on another kind of client has no pipeline and done gets
// an error.
func (j *RedisJournal) AppendAsync(b Batch, deadline time.Time, done func(error)) {
	if err := b.validate(); err != nil {
		done(fmt.Errorf("journal append %d: %w", b.First, err))
		return
	}
	p := j.pipe()
	if p == nil {
		done(errors.New("journal append: no pipeline for this client"))
		return
	}
	p.append(b, deadline, done)
}

// pipe returns the journal's pipeline, creating it on first use.
func (j *RedisJournal) pipe() *pipeline {
	j.pipeOnce.Do(func() {
		switch c := j.rdb.(type) {
		case *redis.Client:
			j.pipeline = &pipeline{opts: func(context.Context) (*redis.Options, error) { return c.Options(), nil }, j: j}
		case *redis.ClusterClient:
			j.pipeline = &pipeline{j: j, opts: func(ctx context.Context) (*redis.Options, error) {
				m, err := c.MasterForKey(ctx, j.journalKey)
				if err != nil {
					return nil, err
				}
				return m.Options(), nil
			}}
		}
	})
	return j.pipeline
}

func (p *pipeline) append(b Batch, deadline time.Time, done func(error)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.sess
	if s != nil && s.failed() {
		s = nil
	}
	if s == nil {
		var err error
		if s, err = p.dial(deadline); err != nil {
			done(fmt.Errorf("journal append %d: %w", b.First, err))
			return
		}
		p.sess = s
	}
	j := p.j
	writeCommand(s.w, "EVALSHA", appendNextScript.Hash(), "3", j.journalKey, j.snapshotKey, j.fenceKey,
		entryID(b.First), strconv.FormatUint(b.Last, 10), b.Data, strconv.FormatUint(b.First-1, 10), j.fenceArg())
	pa := &pendingAppend{first: b.First, deadline: deadline, done: done}
	s.conn.SetWriteDeadline(deadline)
	// Flush per append: the sequencer hands over whole batches, so this is
	// one write per batch, and the reply wait overlaps the next batch.
	if err := s.w.Flush(); err != nil {
		s.fail(wrapRedis("journal pipeline write", err))
		done(fmt.Errorf("journal append %d: %w", b.First, s.err))
		return
	}
	select {
	case s.pending <- pa:
	case <-s.dead:
		done(fmt.Errorf("journal append %d: %w", b.First, s.err))
		return
	}
	if s.failed() {
		// The reader may have drained before pa arrived: drain again, so
		// every append completes exactly once.
		s.drain()
	}
}

// close fails the current session, completing its pending appends.
func (p *pipeline) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sess != nil {
		p.sess.fail(fmt.Errorf("%w: journal closed", ErrUnavailable))
		p.sess = nil
	}
}

// dial opens a connection, authenticates, selects the database and loads
// the script, each bounded by deadline, then starts the reader.
func (p *pipeline) dial(deadline time.Time) (*session, error) {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	o, err := p.opts(ctx)
	cancel()
	if err != nil {
		return nil, wrapRedis("journal pipeline: find the journal's master", err)
	}
	d := net.Dialer{Timeout: max(time.Until(deadline), time.Millisecond)}
	var conn net.Conn
	if o.TLSConfig != nil {
		conn, err = tls.DialWithDialer(&d, "tcp", o.Addr, o.TLSConfig)
	} else {
		conn, err = d.Dial("tcp", o.Addr)
	}
	if err != nil {
		return nil, fmt.Errorf("journal pipeline dial %s: %w: %w", o.Addr, ErrUnavailable, err)
	}
	conn.SetDeadline(deadline)
	w, r := bufio.NewWriter(conn), bufio.NewReader(conn)
	var setup [][]any
	if o.Password != "" {
		if o.Username != "" {
			setup = append(setup, []any{"AUTH", o.Username, o.Password})
		} else {
			setup = append(setup, []any{"AUTH", o.Password})
		}
	}
	if o.DB != 0 {
		setup = append(setup, []any{"SELECT", strconv.Itoa(o.DB)})
	}
	setup = append(setup, []any{"SCRIPT", "LOAD", appendNextSrc})
	for _, c := range setup {
		writeCommand(w, c...)
	}
	if err := w.Flush(); err != nil {
		conn.Close()
		return nil, wrapRedis("journal pipeline setup", err)
	}
	for range setup {
		if _, err := readReply(r); err != nil {
			conn.Close()
			return nil, wrapRedis("journal pipeline setup", err)
		}
	}
	conn.SetDeadline(time.Time{})
	s := &session{conn: conn, w: w, pending: make(chan *pendingAppend, maxPending), dead: make(chan struct{})}
	go s.read(r)
	return s, nil
}

func (s *session) failed() bool {
	select {
	case <-s.dead:
		return true
	default:
		return false
	}
}

// fail marks the session dead (first error wins) and closes its
// connection, which ends the reader.
func (s *session) fail(err error) {
	s.once.Do(func() {
		s.err = err
		close(s.dead)
		s.conn.Close()
	})
}

// read matches replies to pending appends in order until the connection
// fails; then it fails every pending append with the connection's error.
func (s *session) read(r *bufio.Reader) {
	for {
		var pa *pendingAppend
		select {
		case pa = <-s.pending:
		case <-s.dead:
			s.drain()
			return
		}
		s.conn.SetReadDeadline(pa.deadline)
		_, err := readReply(r)
		var rerr replyError
		switch {
		case err == nil:
			pa.done(nil)
		case errors.As(err, &rerr):
			// The server answered: the connection is fine, unless the
			// script cache was flushed (a new connection loads it again)
			// or, on a Cluster, MOVED or ASK says the slot lives elsewhere
			// now (the next dial looks its master up again). The session
			// is marked dead before the caller hears back, so an append
			// made right after the answer dials anew.
			if strings.HasPrefix(string(rerr), "NOSCRIPT") || strings.HasPrefix(string(rerr), "MOVED") || strings.HasPrefix(string(rerr), "ASK") {
				s.fail(fmt.Errorf("%w: journal pipeline: %s", ErrUnavailable, rerr))
				pa.done(classifyAppendReply(pa.first, rerr))
				s.drain()
				return
			}
			pa.done(classifyAppendReply(pa.first, rerr))
		default:
			s.fail(wrapRedis("journal pipeline read", err))
			pa.done(fmt.Errorf("journal append %d: %w", pa.first, s.err))
			s.drain()
			return
		}
	}
}

// drain fails every append still pending on a dead session.
func (s *session) drain() {
	for {
		select {
		case pa := <-s.pending:
			pa.done(fmt.Errorf("journal append %d: %w", pa.first, s.err))
		default:
			return
		}
	}
}

func classifyAppendReply(first uint64, e replyError) error {
	if strings.HasPrefix(string(e), "GPUXFENCED") {
		return fmt.Errorf("journal append %d: %w: %s", first, ErrFenced, e)
	}
	if strings.HasPrefix(string(e), "GPUXORDER") {
		return fmt.Errorf("journal append %d: %w: %s", first, ErrConflict, e)
	}
	return wrapRedis(fmt.Sprintf("journal append %d", first), e)
}

// replyError is an error reply of the server. It satisfies redis.Error, so
// wrapRedis classifies it like go-redis's own.
type replyError string

func (e replyError) Error() string { return string(e) }

// RedisError marks replyError as a server reply (see redis.Error).
func (replyError) RedisError() {}

// writeCommand writes one command as a RESP array of bulk strings. Its
// arguments are strings or byte slices.
func writeCommand(w *bufio.Writer, args ...any) {
	w.WriteByte('*')
	w.WriteString(strconv.Itoa(len(args)))
	w.WriteString("\r\n")
	for _, a := range args {
		var n int
		switch v := a.(type) {
		case string:
			n = len(v)
		case []byte:
			n = len(v)
		}
		w.WriteByte('$')
		w.WriteString(strconv.Itoa(n))
		w.WriteString("\r\n")
		switch v := a.(type) {
		case string:
			w.WriteString(v)
		case []byte:
			w.Write(v)
		}
		w.WriteString("\r\n")
	}
}

// readReply reads one RESP2 reply and returns it flattened to a string
// (nested arrays are read and dropped: the pipeline needs none), or a
// replyError for an error reply.
func readReply(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return "", fmt.Errorf("malformed reply %q", line)
	}
	line = line[:len(line)-2]
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", replyError(line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", fmt.Errorf("malformed bulk length %q", line)
		}
		if n < 0 {
			return "", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", fmt.Errorf("malformed array length %q", line)
		}
		for range max(n, 0) {
			if _, err := readReply(r); err != nil {
				var rerr replyError
				if !errors.As(err, &rerr) {
					return "", err
				}
			}
		}
		return "", nil
	}
	return "", fmt.Errorf("unknown reply type %q", line)
}
