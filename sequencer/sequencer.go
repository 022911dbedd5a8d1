// Package sequencer runs one shard of the exchange: a single goroutine owns
// the engine, stamps each command with a sequence number, a time that never
// goes back and new ids, group-commits batches to the journal with several
// appends in flight, applies each batch once it is stored, in order, and
// only then releases responses and events. It also sends the ticks that
// move engine time, snapshots the engine and recovers it at start.
//
// The engine never runs ahead of the journal: a batch that could not be
// stored is not applied, nothing sent after it is acknowledged, and writes
// stop until the journal's tail has been re-verified against the engine and
// the journal takes writes again.
//
// With a shard lease (Config.Lease, gpuxd --role engine) several sequencers
// run the same shard on different nodes: the one holding the lease leads
// (sequences, with every journal write fenced by its token), the others are
// standbys that tail the journal into a warm engine, answer reads, refuse
// writes with ErrNotLeader, and take over when the lease lapses. See
// lease.go.
package sequencer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/store"
)

// Errors Submit returns instead of an outcome.
var (
	ErrUnavailable = errors.New("journal unavailable")
	ErrNotReady    = errors.New("recovering: not ready")
	ErrClosed      = errors.New("sequencer closed")
	// ErrNotLeader: this node does not hold its shard's lease (a standby,
	// or an owner that stepped down); the shard's leader takes writes.
	ErrNotLeader = errors.New("not the shard's leader")
)

// Config configures a Sequencer. Zero values take the documented defaults.
type Config struct {
	Journal store.Journal
	// Markets this shard owns; empty = the default catalogue.
	Markets []engine.Market
	FeeBps  int64
	// A snapshot is taken after SnapshotEvery commands (default 100,000) or
	// SnapshotInterval (default 5 min) with at least one new command.
	SnapshotEvery    int
	SnapshotInterval time.Duration
	// MaxBatch caps the commands per journal entry (default 512).
	MaxBatch int
	// TickInterval is the period of Tick commands (default 1 s); negative
	// disables automatic ticks and hour-boundary ticks (tests drive time).
	TickInterval time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// AppendTimeout bounds one journal append (default 2 s).
	AppendTimeout time.Duration
	// MaxInFlight caps the journal appends sent and not yet answered
	// (default 8). With a journal that is a store.Pipeliner they overlap;
	// otherwise each append completes before the next batch is formed.
	MaxInFlight int
	Logger      *slog.Logger
	// OnEvents receives each batch's events, on the sequencer goroutine,
	// after the batch is journaled and applied, just before its responses
	// are released.
	// The slice is valid only during the call; the hook must not block.
	OnEvents func(events []engine.Event)
	// OnBatch reports each committed batch's size and journal latency.
	OnBatch func(commands int, journalLatency time.Duration)
	// ReadSide, when set, is the read model that keeps what the engine
	// forgets (closed orders): see ReadSide. SetReadSide sets it later.
	ReadSide ReadSide
	// Lease, when set, is the shard's lease this sequencer contends for
	// with the shard's other engine nodes; the Journal must then be a
	// store.Fencer. Nil: this sequencer owns the shard alone and always
	// leads (--role all).
	Lease Lease
}

// ReadSide is a read model fed by OnEvents that stores what the engine no
// longer holds, so a snapshot (after which the journal is trimmed) must
// not get ahead of it. The sequencer:
//   - feeds Replay, during Recover, the events of every journaled command
//     after the snapshot it restored (the read side's writes must be
//     idempotent: those commands' events were observed before the crash,
//     or lost with its memory);
//   - saves no snapshot covering a sequence number above Durable;
//   - calls Flush before its final snapshot in Close.
type ReadSide interface {
	Replay(events []engine.Event)
	Durable() uint64
	Flush(ctx context.Context) error
}

// Outcome is what a command did: its sequence number, its events (a copy)
// and the engine's rejection, if any.
type Outcome struct {
	Seq    uint64
	Events []engine.Event
	Err    *engine.Error
}

// Status describes the sequencer for health checks.
type Status struct {
	Ready             bool
	Writable          bool
	Journal           string
	Durable           bool
	LastSeq           uint64
	RecoveredCommands int
	RecoverySeconds   float64
	LastSnapshotSeq   uint64
	// SnapshotPause is the longest time snapshotting stopped the sequencer
	// goroutine (the writes) since the previous snapshot was saved, and
	// MaxSnapshotPause since start. With a durable journal a follower
	// engine takes the snapshots and the pause is the hand-off of each
	// batch to it; otherwise it is the time to encode the whole state.
	SnapshotPause    time.Duration
	MaxSnapshotPause time.Duration
	// Leader reports that this sequencer takes writes for its shard: always
	// true without a lease (one node owns the shard, --role all); with a
	// lease, true while it holds it. FencingToken is the token of the
	// newest lease this node holds or has seen (0 without a lease).
	Leader       bool
	FencingToken uint64
}

type request struct {
	cmd  engine.Command
	view func(*engine.Engine, *engine.Command)
	done chan result
}

type result struct {
	out Outcome
	err error
}

// Sequencer owns one engine. Create it with New, call Recover, then Run.
type Sequencer struct {
	cfg Config
	log *slog.Logger

	mu  sync.RWMutex // guards eng: written by the loop, read by Read
	eng *engine.Engine

	in     chan *request
	stop   chan struct{}
	done   chan struct{}
	closed atomic.Bool

	ready    atomic.Bool
	writable atomic.Bool

	// Owned by the loop goroutine.
	lastTime  engine.Time
	sinceSnap int
	lastSnap  time.Time
	flight    []*inflight // sent, unanswered, oldest first
	free      []*inflight
	// flightHigh is the most appends ever in flight at once (tests).
	flightHigh atomic.Int64
	// fol takes the snapshots when the journal is durable (nil otherwise).
	fol *follower
	// pauseSince is the longest snapshot pause since the last snapshot
	// was saved, in nanoseconds.
	pauseSince atomic.Int64
	snapBusy   atomic.Bool
	repairing  atomic.Bool

	statMu sync.Mutex
	stat   Status

	// Lease state (see lease.go). leading is true while the loop sequences
	// (always, without a lease); held is the token of the lease the lease
	// keeper holds (0: none); seen the newest token held or seen.
	leading   atomic.Bool
	held      atomic.Uint64
	seen      atomic.Uint64
	caughtUp  atomic.Bool   // a standby has tailed the journal: it may take the lease
	won       chan uint64   // keeper → loop: lease taken with this token
	lost      chan uint64   // keeper → loop: the lease of this token is lost
	leaseDone chan struct{} // closed when the keeper has stopped
	settled   chan struct{} // closed once a leased node knows whether it leads
	settle    sync.Once
	term      uint64 // the token the loop leads with (loop goroutine)
}

// New prepares a sequencer; it holds no engine until Recover.
func New(cfg Config) (*Sequencer, error) {
	if cfg.Journal == nil {
		return nil, errors.New("sequencer: no journal")
	}
	if cfg.SnapshotEvery <= 0 {
		cfg.SnapshotEvery = 100_000
	}
	if cfg.SnapshotInterval <= 0 {
		cfg.SnapshotInterval = 5 * time.Minute
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 512
	}
	if cfg.TickInterval == 0 {
		cfg.TickInterval = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 8
	}
	if cfg.AppendTimeout <= 0 {
		cfg.AppendTimeout = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Sequencer{
		cfg:       cfg,
		log:       cfg.Logger,
		in:        make(chan *request, 4*cfg.MaxBatch),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
		won:       make(chan uint64, 1),
		lost:      make(chan uint64, 1),
		leaseDone: make(chan struct{}),
		settled:   make(chan struct{}),
	}
	if cfg.Lease != nil {
		if _, ok := cfg.Journal.(store.Fencer); !ok {
			return nil, fmt.Errorf("sequencer: a lease needs a journal that can be fenced; %s cannot", cfg.Journal.Kind())
		}
	} else {
		s.leading.Store(true)
		s.settleNow()
		close(s.leaseDone)
	}
	s.stat.Journal = cfg.Journal.Kind()
	s.stat.Durable = cfg.Journal.Durable()
	return s, nil
}

// Recover loads the newest snapshot, verifies its hash, replays the journal
// after it and makes the sequencer ready.
func (s *Sequencer) Recover(ctx context.Context) error {
	start := time.Now()
	var eng *engine.Engine
	snap, ok, err := s.cfg.Journal.LoadSnapshot(ctx)
	if err != nil {
		return fmt.Errorf("recover: load snapshot: %w", err)
	}
	if ok {
		if got := engine.HashOf(snap.Data); got != snap.Hash {
			return fmt.Errorf("recover: snapshot at %d: hash %s, stored %s", snap.Seq, got, snap.Hash)
		}
		if eng, err = engine.Restore(snap.Data); err != nil {
			return fmt.Errorf("recover: %w", err)
		}
		if eng.Seq() != snap.Seq {
			return fmt.Errorf("recover: snapshot says seq %d, holds %d", snap.Seq, eng.Seq())
		}
	} else {
		eng = engine.New(engine.Config{Markets: s.cfg.Markets, FeeBps: s.cfg.FeeBps})
	}
	// The read side sees the recovered commands again: what they closed
	// may have been lost with the previous process before it was stored.
	// Snapshots wait for the read side, so everything closed up to the
	// snapshot is stored and the journal after it is all there.
	onReplay, flush := s.recoverInto()
	n, err := replay(ctx, s.cfg.Journal, eng, onReplay)
	if err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	flush()
	last, err := s.cfg.Journal.LastSeq(ctx)
	if err != nil {
		return fmt.Errorf("recover: journal tail: %w", err)
	}
	if last != eng.Seq() {
		return fmt.Errorf("recover: journal ends at %d but replay reached %d", last, eng.Seq())
	}
	if s.cfg.Journal.Durable() && s.cfg.Lease == nil {
		// (With a lease the follower starts when this node leads.)
		// The follower recovers its own engine from the same snapshot and
		// journal, on its own goroutine: the sequencer does not wait.
		var base []byte
		if ok {
			base = snap.Data
		}
		s.fol = newFollower(base, eng.Seq(), s.cfg.Journal, s.cfg, s.snapshotSaved)
		go s.fol.run()
	}
	s.mu.Lock()
	s.eng = eng
	s.mu.Unlock()
	s.lastTime = eng.Now()
	s.lastSnap = time.Now()
	s.statMu.Lock()
	s.stat.LastSeq = eng.Seq()
	s.stat.RecoveredCommands = n
	s.stat.RecoverySeconds = time.Since(start).Seconds()
	s.stat.LastSnapshotSeq = snap.Seq
	s.statMu.Unlock()
	s.log.Info("recovered", "snapshot_seq", snap.Seq, "replayed", n, "seq", eng.Seq(), "seconds", time.Since(start).Seconds(), "hash", eng.Hash())
	s.writable.Store(true)
	s.ready.Store(true)
	return nil
}

// Observe sets the hooks that receive each batch's events and figures,
// replacing Config.OnEvents and Config.OnBatch, so a consumer built after
// the sequencer (the API server) can attach itself. Call it before Run.
func (s *Sequencer) Observe(onEvents func([]engine.Event), onBatch func(commands int, journalLatency time.Duration)) {
	s.cfg.OnEvents, s.cfg.OnBatch = onEvents, onBatch
}

// SetReadSide sets Config.ReadSide. Call it before Recover.
func (s *Sequencer) SetReadSide(r ReadSide) { s.cfg.ReadSide = r }

// replayBatchEvents is how many events recovery hands the read side at
// once (one write each, not one per command).
const replayBatchEvents = 4096

// recoverInto returns the hook recovery's replay feeds (nil without a read
// side) and a flush for the events it still holds.
func (s *Sequencer) recoverInto() (func([]engine.Event), func()) {
	rs := s.cfg.ReadSide
	if rs == nil {
		return nil, func() {}
	}
	var buf []engine.Event
	flush := func() {
		if len(buf) > 0 {
			rs.Replay(buf)
			buf = buf[:0]
		}
	}
	return func(evs []engine.Event) {
		buf = append(buf, evs...)
		if len(buf) >= replayBatchEvents {
			flush()
		}
	}, flush
}

// waitReadSide waits until the read side has stored everything up to seq
// (a snapshot at seq may then be saved), or ctx ends or stop is closed.
func waitReadSide(ctx context.Context, rs ReadSide, seq uint64, stop <-chan struct{}) error {
	if rs == nil {
		return nil
	}
	for {
		d := rs.Durable()
		if d >= seq {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("read side stored up to %d, snapshot at %d: %w", d, seq, ctx.Err())
		case <-stop:
			return fmt.Errorf("read side stored up to %d, snapshot at %d: stopping", d, seq)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Replay applies every journaled command after the engine's sequence number
// and returns how many it applied. onEvents, when set, sees each command's
// events (tests compare them with what was produced live).
func Replay(ctx context.Context, j store.Journal, eng *engine.Engine, onEvents func([]engine.Event)) (int, error) {
	return replay(ctx, j, eng, onEvents)
}

func replay(ctx context.Context, j store.Journal, eng *engine.Engine, onEvents func([]engine.Event)) (int, error) {
	n := 0
	err := j.Replay(ctx, eng.Seq(), func(b store.Batch) error {
		k, err := applyBatch(eng, b, onEvents)
		n += k
		return err
	})
	if err != nil {
		return n, fmt.Errorf("replay journal after %d: %w", eng.Seq(), err)
	}
	return n, nil
}

// applyBatch applies the commands of a journaled batch that follow eng's
// sequence number and returns how many it applied. onEvents, when set,
// sees each command's events; otherwise they are not built.
func applyBatch(eng *engine.Engine, b store.Batch, onEvents func([]engine.Event)) (int, error) {
	n := 0
	for data := b.Data; len(data) > 0; {
		c, rest, err := engine.DecodeCommand(data)
		if err != nil {
			return n, fmt.Errorf("batch %d: %w", b.First, err)
		}
		data = rest
		if c.Seq <= eng.Seq() {
			continue
		}
		if c.Seq != eng.Seq()+1 {
			return n, fmt.Errorf("batch %d: command %d does not follow %d", b.First, c.Seq, eng.Seq())
		}
		if onEvents != nil {
			evs, _ := eng.Apply(&c)
			onEvents(evs)
		} else {
			eng.ApplyReplay(&c) // recovery: the events went out when the command first ran
		}
		n++
	}
	return n, nil
}

// Read runs fn with the engine under a read lock. The engine only ever
// holds journaled state. Before Recover has finished, fn gets a nil engine.
func (s *Sequencer) Read(fn func(e *engine.Engine)) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	fn(s.eng)
}

// Leader is Status().Leader without the status lock the sequencer takes
// on every batch: for callers that ask per message or batch.
func (s *Sequencer) Leader() bool { return s.leading.Load() }

// Status reports readiness, the journal and recovery figures.
func (s *Sequencer) Status() Status {
	s.statMu.Lock()
	defer s.statMu.Unlock()
	st := s.stat
	st.Ready = s.ready.Load()
	st.Leader = s.leading.Load()
	st.Writable = s.writable.Load() && !s.closed.Load() && st.Leader
	st.FencingToken = s.seen.Load()
	return st
}

// Submit sequences one command and waits for its outcome. view, when set,
// runs on the sequencer goroutine right after the command is applied, so
// it sees the state exactly after this command.
func (s *Sequencer) Submit(ctx context.Context, c engine.Command, view func(e *engine.Engine, c *engine.Command)) (Outcome, error) {
	switch {
	case s.closed.Load():
		return Outcome{}, ErrClosed
	case !s.ready.Load():
		return Outcome{}, ErrNotReady
	case !s.leading.Load():
		return Outcome{}, ErrNotLeader
	case !s.writable.Load():
		return Outcome{}, ErrUnavailable
	}
	r := &request{cmd: c, view: view, done: make(chan result, 1)}
	select {
	case s.in <- r:
	case <-ctx.Done():
		return Outcome{}, ctx.Err()
	case <-s.done:
		return Outcome{}, ErrClosed
	}
	select {
	case res := <-r.done:
		return res.out, res.err
	case <-ctx.Done():
		return Outcome{}, ctx.Err()
	case <-s.done:
		// The loop has stopped; a request it never took was never run.
		select {
		case res := <-r.done:
			return res.out, res.err
		default:
			return Outcome{}, ErrClosed
		}
	}
}

// Run is the sequencer loop. It returns when Close is called or ctx ends.
//
// Appends are pipelined: the loop stamps and sends batch after batch, up to
// MaxInFlight unanswered, and applies and answers each batch once the
// journal has stored it, strictly in sequence order. A failed append stops
// writes: it and every batch sent after it answer ErrUnavailable (their
// outcome is unknown), and repair waits for the journal to answer each of
// them before it reconciles the engine with the journal's tail.
//
// With a lease, Run alternates between standing by (tailing the journal)
// and leading (the loop above), and keeps the lease on its own goroutine.
func (s *Sequencer) Run(ctx context.Context) error {
	defer close(s.done)
	if s.cfg.Lease == nil {
		return s.lead(ctx)
	}
	go s.keepLease(ctx)
	for {
		if err := s.standby(ctx); !errors.Is(err, errPromoted) {
			return err
		}
		if err := s.lead(ctx); !errors.Is(err, errSteppedDown) {
			return err
		}
		s.stepDown()
	}
}

// lead sequences until Close, ctx, or (with a lease) until the lease is
// lost: then it stops taking commands, lets the batches in flight finish
// and returns errSteppedDown; an append refused as fenced returns it at
// once, failing that batch and every later one with ErrNotLeader.
func (s *Sequencer) lead(ctx context.Context) error {
	var lostC <-chan uint64
	if s.cfg.Lease != nil {
		lostC = s.lost
	}
	stepping := false
	var tick <-chan time.Time
	var hour *time.Timer
	var hourC <-chan time.Time
	if s.cfg.TickInterval > 0 {
		t := time.NewTicker(s.cfg.TickInterval)
		defer t.Stop()
		tick = t.C
		hour = time.NewTimer(s.untilNextHour())
		defer hour.Stop()
		hourC = hour.C
	}
	for {
		// A full window takes nothing new; ticks wait (a ticker drops the
		// ones missed, the hour timer keeps its value).
		in, tickC, hourCC := s.in, tick, hourC
		if len(s.flight) >= s.cfg.MaxInFlight || stepping {
			in, tickC, hourCC = nil, nil, nil
		}
		if stepping && len(s.flight) == 0 {
			return errSteppedDown
		}
		var oldest <-chan error
		if len(s.flight) > 0 {
			oldest = s.flight[0].done
		}
		var f *inflight
		var at engine.Time // a tick's exact time; 0 = the clock
		select {
		case <-ctx.Done():
			s.drain(ctx)
			return ctx.Err()
		case <-s.stop:
			s.drain(ctx)
			return nil
		case err := <-oldest:
			if s.complete(ctx, err) {
				return errSteppedDown
			}
			continue
		case tok := <-lostC:
			if tok == s.term && !stepping {
				// Batches in flight may still have been stored before the
				// new owner's token moved the fence: their answers decide.
				stepping = true
				s.leading.Store(false)
				s.log.Warn("lease lost: no new commands; finishing the batches in flight", "token", tok, "in_flight", len(s.flight))
			}
			continue
		case r := <-in:
			f = s.newInflight()
			f.reqs = append(f.reqs, r)
		case <-tickC:
			f = s.newInflight()
			f.reqs = append(f.reqs, &request{cmd: engine.Command{Kind: engine.CmdTick}})
		case now := <-hourCC:
			at = engine.Time(now.UnixMilli()).HourStart()
			hour.Reset(s.untilNextHour())
			f = s.newInflight()
			f.reqs = append(f.reqs, &request{cmd: engine.Command{Kind: engine.CmdTick}})
		}
	fill:
		for len(f.reqs) < s.cfg.MaxBatch {
			select {
			case r := <-s.in:
				f.reqs = append(f.reqs, r)
			default:
				break fill
			}
		}
		s.send(f, at)
	}
}

// inflight is one batch between its send and its answer.
type inflight struct {
	reqs []*request
	buf  []byte
	b    store.Batch
	sent time.Time
	done chan error
}

// newInflight returns an empty batch, reusing one whose append succeeded.
// Batches whose append failed are not reused: the journal may still be
// reading their bytes.
func (s *Sequencer) newInflight() *inflight {
	if n := len(s.free); n > 0 {
		f := s.free[n-1]
		s.free = s.free[:n-1]
		return f
	}
	return &inflight{reqs: make([]*request, 0, s.cfg.MaxBatch), done: make(chan error, 1)}
}

func (s *Sequencer) recycle(f *inflight) {
	clear(f.reqs)
	f.reqs, f.buf = f.reqs[:0], f.buf[:0]
	f.b = store.Batch{}
	s.free = append(s.free, f)
}

func (s *Sequencer) untilNextHour() time.Duration {
	now := s.cfg.Now()
	next := now.Truncate(time.Hour).Add(time.Hour)
	return next.Sub(now)
}

// drain runs every queued request after the loop stopped taking new ones,
// and waits for every batch in flight: nothing accepted is dropped.
func (s *Sequencer) drain(ctx context.Context) {
	for {
		if len(s.flight) < s.cfg.MaxInFlight {
			f := s.newInflight()
		fill:
			for len(f.reqs) < s.cfg.MaxBatch {
				select {
				case r := <-s.in:
					f.reqs = append(f.reqs, r)
				default:
					break fill
				}
			}
			if len(f.reqs) > 0 {
				s.send(f, 0)
				continue
			}
			s.recycle(f)
		}
		if len(s.flight) == 0 {
			return
		}
		if s.complete(ctx, <-s.flight[0].done) {
			return
		}
	}
}

func fail(batch []*request, err error) {
	for _, r := range batch {
		if r.done != nil {
			r.done <- result{err: err}
		}
	}
}

// send stamps one batch with the sequence numbers after the newest batch
// sent (or the engine's, with nothing in flight) and a time that never goes
// back, and starts its append.
func (s *Sequencer) send(f *inflight, at engine.Time) {
	if !s.leading.Load() {
		fail(f.reqs, ErrNotLeader)
		s.recycle(f)
		return
	}
	if !s.writable.Load() {
		fail(f.reqs, ErrUnavailable)
		s.recycle(f)
		return
	}
	now := engine.Time(s.cfg.Now().UnixMilli())
	if at != 0 {
		now = at
	}
	if now < s.lastTime {
		now = s.lastTime
	}
	var first uint64
	if n := len(s.flight); n > 0 {
		first = s.flight[n-1].b.Last + 1
	} else {
		s.mu.RLock()
		first = s.eng.Seq() + 1
		s.mu.RUnlock()
	}
	for i, r := range f.reqs {
		c := &r.cmd
		c.Seq = first + uint64(i)
		c.Time = now
		switch c.Kind {
		case engine.CmdCreateAccount, engine.CmdPlaceListing, engine.CmdPlaceBid:
			if c.Target.IsZero() {
				c.Target = engine.ID(uuid.Must(uuid.NewV7()))
			}
		}
		f.buf = engine.AppendCommand(f.buf, c)
	}
	// Later batches are stamped before this one is stored: they must not
	// go back in time even if this one fails.
	s.lastTime = now
	f.b = store.Batch{First: first, Last: first + uint64(len(f.reqs)) - 1, Data: f.buf}
	f.sent = time.Now()
	s.flight = append(s.flight, f)
	if n := int64(len(s.flight)); n > s.flightHigh.Load() {
		s.flightHigh.Store(n)
	}
	deadline := f.sent.Add(s.cfg.AppendTimeout)
	if p, ok := s.cfg.Journal.(store.Pipeliner); ok {
		done := f.done
		p.AppendAsync(f.b, deadline, func(err error) {
			if err != nil {
				// Stop writes now, not when the loop reaches this batch:
				// it may be busy with earlier batches (their observers
				// write to the same Redis), and meanwhile new writes
				// would queue and /readyz would say ready. A fenced
				// append also ends leadership: new writes hear
				// ErrNotLeader, not ErrUnavailable.
				if errors.Is(err, store.ErrFenced) {
					s.leading.Store(false)
				}
				s.writable.Store(false)
			}
			done <- err
		})
		return
	}
	actx, cancel := context.WithDeadline(context.Background(), deadline)
	f.done <- s.cfg.Journal.Append(actx, f.b)
	cancel()
}

// complete takes the answer to the oldest batch in flight: applies and
// answers it, or stops writes. It returns true when the append was fenced
// (another node holds the lease): that batch and every later one fail with
// ErrNotLeader, nothing of them is applied, and the caller steps down.
func (s *Sequencer) complete(ctx context.Context, err error) (fenced bool) {
	f := s.flight[0]
	s.flight[0] = nil
	s.flight = s.flight[1:]
	if len(s.flight) == 0 {
		s.flight = s.flight[:0:0]
	}
	if errors.Is(err, store.ErrFenced) {
		// Known outcome: not stored, and no later append with this token
		// can be (the fence only grows), so nothing after it is kept.
		s.leading.Store(false)
		s.log.Warn("journal append fenced: another node holds the lease; stepping down", "first", f.b.First, "token", s.term, "in_flight_after", len(s.flight))
		fail(f.reqs, ErrNotLeader)
		for _, g := range s.flight {
			fail(g.reqs, ErrNotLeader)
		}
		s.flight = s.flight[:0:0]
		return true
	}
	if err != nil {
		s.writable.Store(false)
		s.log.Error("journal append failed; writes stopped", "first", f.b.First, "last", f.b.Last, "in_flight_after", len(s.flight), "err", err)
		fail(f.reqs, fmt.Errorf("%w: %v", ErrUnavailable, err))
		// Every later batch was sent after this one and cannot be
		// acknowledged; it may still be stored, which repair sorts out
		// once the journal has answered it.
		unanswered := make([]<-chan error, 0, len(s.flight))
		for _, g := range s.flight {
			fail(g.reqs, fmt.Errorf("%w: an earlier append failed", ErrUnavailable))
			unanswered = append(unanswered, g.done)
		}
		s.flight = s.flight[:0:0]
		// Marked here, not in the goroutine: a promotion (lease.go) must
		// see a repair as soon as it is due.
		if s.repairing.CompareAndSwap(false, true) {
			go s.repair(ctx, unanswered)
		}
		return false
	}
	if s.cfg.OnBatch != nil {
		s.cfg.OnBatch(len(f.reqs), time.Since(f.sent))
	}
	s.apply(f.reqs, f.b.Data)
	s.recycle(f)
	return false
}

// notePause records a snapshot's stop of the sequencer goroutine.
func (s *Sequencer) notePause(d time.Duration) {
	if int64(d) > s.pauseSince.Load() {
		s.pauseSince.Store(int64(d))
	}
	s.statMu.Lock()
	s.stat.MaxSnapshotPause = max(s.stat.MaxSnapshotPause, d)
	s.statMu.Unlock()
}

// snapshotSaved updates the status once a snapshot is stored.
func (s *Sequencer) snapshotSaved(seq uint64) {
	p := time.Duration(s.pauseSince.Swap(0))
	s.statMu.Lock()
	s.stat.LastSnapshotSeq = seq
	s.stat.SnapshotPause = p
	s.statMu.Unlock()
}

// apply applies one journaled batch (its commands, encoded in data) and
// answers its requests.
func (s *Sequencer) apply(batch []*request, data []byte) {
	// One copy of the batch's events: each outcome holds its own
	// sub-slice, and the whole is what OnEvents sees.
	results := make([]result, len(batch))
	var all []engine.Event
	s.mu.Lock()
	for i, r := range batch {
		from := len(all)
		evs, _ := s.eng.Apply(&r.cmd)
		all = append(all, evs...)
		out := Outcome{Seq: r.cmd.Seq, Events: all[from:len(all):len(all)]}
		for _, ev := range evs {
			if ev.Kind == engine.EvRejected {
				out.Err = ev.Err
			}
		}
		if r.view != nil {
			r.view(s.eng, &r.cmd)
		}
		results[i] = result{out: out}
	}
	s.sinceSnap += len(batch)
	var snap *store.Snapshot
	var pause time.Duration
	if s.fol == nil && (s.sinceSnap >= s.cfg.SnapshotEvery || (s.sinceSnap > 0 && time.Since(s.lastSnap) >= s.cfg.SnapshotInterval)) && !s.snapBusy.Load() {
		ts := time.Now()
		data := s.eng.Snapshot()
		snap = &store.Snapshot{Seq: s.eng.Seq(), Hash: engine.HashOf(data), Data: data, TakenAt: s.cfg.Now()}
		pause = time.Since(ts)
		s.notePause(pause)
		s.sinceSnap = 0
		s.lastSnap = time.Now()
	}
	last := s.eng.Seq()
	s.mu.Unlock()

	s.statMu.Lock()
	s.stat.LastSeq = last
	s.statMu.Unlock()
	// Events go out first, so read models fed synchronously by the hook
	// (price indices) already show a command when its caller hears back;
	// both happen only after the batch is journaled.
	if s.cfg.OnEvents != nil && len(all) > 0 {
		s.cfg.OnEvents(all)
	}
	if s.fol != nil {
		// The follower snapshots; the sequencer only hands it the batch,
		// after the observers have returned (the read side has queued the
		// closed orders the engine has just forgotten), and the follower
		// waits for ReadSide.Durable before it stores a snapshot.
		ts := time.Now()
		s.fol.push(data)
		s.notePause(time.Since(ts))
	}
	for i, r := range batch {
		if r.done != nil {
			r.done <- results[i]
		}
	}
	if snap != nil {
		s.snapBusy.Store(true)
		go s.saveSnapshot(*snap)
	}
}

// saveSnapshot writes a snapshot off the sequencer goroutine; the store
// trims the journal it covers only after the snapshot is stored.
func (s *Sequencer) saveSnapshot(snap store.Snapshot) {
	defer s.snapBusy.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := waitReadSide(ctx, s.cfg.ReadSide, snap.Seq, nil); err != nil {
		s.log.Warn("snapshot not saved", "seq", snap.Seq, "err", err)
		return
	}
	if err := s.cfg.Journal.SaveSnapshot(ctx, snap); err != nil {
		s.log.Warn("snapshot not saved", "seq", snap.Seq, "err", err)
		return
	}
	s.snapshotSaved(snap.Seq)
	s.log.Info("snapshot saved", "seq", snap.Seq, "bytes", len(snap.Data))
}

// repair waits for the journal to answer again, then checks its tail: a
// batch whose append failed may still have been stored, in which case the
// engine applies it from the journal so it never lags or leads it. The
// caller has set repairing.
func (s *Sequencer) repair(ctx context.Context, unanswered []<-chan error) {
	// Cleared before writes resume, so a failure right after resuming
	// starts a new repair instead of finding this one still marked.
	done := func() { s.repairing.Store(false) }
	// Batches sent after the failed one may still land; the tail is only
	// worth reading once the journal has answered each (by its deadline).
	for _, done := range unanswered {
		<-done
	}
	backoff := 50 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			done()
			return
		case <-s.stop:
			done()
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
		cctx, cancel := context.WithTimeout(ctx, s.cfg.AppendTimeout)
		last, err := s.cfg.Journal.LastSeq(cctx)
		cancel()
		if err != nil {
			continue
		}
		s.mu.Lock()
		if last > s.eng.Seq() {
			// The failed batch landed after all: apply it from the journal.
			n, err := replay(ctx, s.cfg.Journal, s.eng, s.cfg.OnEvents)
			if err != nil {
				s.mu.Unlock()
				s.log.Error("journal tail does not match the engine; writes stay stopped", "err", err)
				continue
			}
			s.log.Warn("applied a batch whose append had reported failure", "commands", n)
		}
		seq := s.eng.Seq()
		ok := last == seq
		if ok {
			s.lastTime = max(s.lastTime, s.eng.Now())
		}
		s.mu.Unlock()
		if last < seq {
			// Redis came back without data it had acknowledged (no AOF, or
			// a lost disk): resuming would fork history. An operator decides.
			s.log.Error("journal is behind the engine: Redis lost acknowledged entries; writes stay stopped", "journal_seq", last, "engine_seq", seq)
		}
		if !ok {
			continue
		}
		// Reads answering is not enough: a Redis at maxmemory or with a
		// failing AOF answers LastSeq and refuses every append.
		cctx, cancel = context.WithTimeout(ctx, s.cfg.AppendTimeout)
		err = s.cfg.Journal.ProbeWrite(cctx)
		cancel()
		if err != nil {
			s.log.Debug("journal still refuses writes", "err", err)
			continue
		}
		s.log.Info("journal reachable again; writes resumed", "seq", seq)
		done()
		s.writable.Store(true)
		return
	}
}

// Close stops accepting commands, runs those already queued, and waits for
// the loop to finish (or ctx). A final snapshot is written when the
// journal is durable, so the next start replays little.
func (s *Sequencer) Close(ctx context.Context) error {
	if s.closed.Swap(true) {
		return nil
	}
	close(s.stop)
	select {
	case <-s.done:
	case <-ctx.Done():
		return fmt.Errorf("close sequencer: %w", ctx.Err())
	}
	select {
	case <-s.leaseDone:
	case <-ctx.Done():
		return fmt.Errorf("close sequencer: lease keeper: %w", ctx.Err())
	}
	// With a lease, the lease goes last: a standby takes over at once
	// instead of after the TTL, and only after the final snapshot.
	defer s.leaveLease(ctx)
	if s.fol != nil {
		if err := s.fol.close(ctx); err != nil {
			return fmt.Errorf("close sequencer: %w", err)
		}
	}
	if s.eng == nil || !s.cfg.Journal.Durable() || !s.writable.Load() || !s.leading.Load() {
		s.logFinal()
		return nil
	}
	// The read side stores what the last batches closed before the final
	// snapshot covers them; if it cannot, the next start replays them.
	if rs := s.cfg.ReadSide; rs != nil {
		if err := rs.Flush(ctx); err != nil {
			s.log.Warn("read side not flushed; no final snapshot", "err", err)
			return nil
		}
	}
	s.mu.RLock()
	data := s.eng.Snapshot()
	snap := store.Snapshot{Seq: s.eng.Seq(), Hash: engine.HashOf(data), Data: data, TakenAt: s.cfg.Now()}
	s.mu.RUnlock()
	for s.snapBusy.Load() {
		time.Sleep(10 * time.Millisecond)
	}
	s.log.Info("final state", "seq", snap.Seq, "hash", snap.Hash, "leader", true, "token", s.term)
	err := s.cfg.Journal.SaveSnapshot(ctx, snap)
	switch {
	case errors.Is(err, store.ErrFenced):
		// The lease lapsed while stopping and another node took over:
		// its snapshots cover this state.
		s.log.Warn("final snapshot fenced: another node holds the lease", "seq", snap.Seq)
	case err != nil && !errors.Is(err, store.ErrConflict):
		return fmt.Errorf("close sequencer: final snapshot: %w", err)
	}
	return nil
}

// logFinal logs the engine's sequence number and state hash at Close when
// no final snapshot is written (a standby, or writes stopped), so that an
// operator (and the fault tests) can compare it with a replay.
func (s *Sequencer) logFinal() {
	if s.eng == nil {
		return
	}
	s.mu.RLock()
	seq, hash := s.eng.Seq(), s.eng.Hash()
	s.mu.RUnlock()
	s.log.Info("final state", "seq", seq, "hash", hash, "leader", s.leading.Load(), "token", s.seen.Load())
}
