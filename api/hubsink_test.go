package api

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/sequencer"
)

// leaderSequencer is fakeSequencer with a leadership the test sets.
type leaderSequencer struct {
	fakeSequencer
	leader atomic.Bool
}

func (l *leaderSequencer) Status() sequencer.Status {
	st := l.fakeSequencer.Status()
	st.Leader = l.leader.Load()
	return st
}

// recordingSink is a FeedSink that keeps what it is handed.
type recordingSink struct {
	mu   sync.Mutex
	msgs []FeedMessage
	lost int
}

func (r *recordingSink) Publish(m FeedMessage) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, m)
}

func (r *recordingSink) Lost() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lost++
}

// waitFor returns the first message of channel after the first skip ones.
func (r *recordingSink) waitFor(t *testing.T, channel string, skip int) FeedMessage {
	t.Helper()
	deadline := time.Now().Add(hubWait)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		n := 0
		for _, m := range r.msgs {
			if m.Channel == channel {
				if n == skip {
					r.mu.Unlock()
					return m
				}
				n++
			}
		}
		r.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("no message %d on %s", skip, channel)
	return FeedMessage{}
}

// TestHubSinkSeqs: with a sink the hub publishes channels nobody here
// subscribes to, and a node that becomes its shard's leader continues
// every channel past its seqs as a standby (a gap, never a step back);
// a hub that loses events tells the sink and skips a seq.
func TestHubSinkSeqs(t *testing.T) {
	seq := &leaderSequencer{fakeSequencer: fakeSequencer{e: engine.New(engine.Config{})}}
	sink := &recordingSink{}
	s := NewServer(Config{Sequencer: seq, FeedSink: sink, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	acct := engine.ID{9}
	submit := func(c engine.Command) {
		t.Helper()
		out, err := seq.Submit(context.Background(), c, nil)
		if err != nil || out.Err != nil {
			t.Fatalf("%v: %v %v", c.Kind, err, out.Err)
		}
		s.OnEvents(out.Events)
	}
	ch := "user:" + acct.String()
	// settled is the channel's seq once the hub has taken every batch
	// handed to it (a snapshot request is answered after the batch the
	// hub is applying).
	settled := func() uint64 {
		t.Helper()
		for len(s.hub.in) > 0 {
			time.Sleep(time.Millisecond)
		}
		reply := make(chan snapshotReply, 1)
		s.hub.request(hubReq{kind: reqSnapshot, channels: []string{userChannelName}, account: acct, reply: reply})
		r := <-reply
		var m struct{ Seq uint64 }
		if err := json.Unmarshal(r.frame, &m); err != nil {
			t.Fatalf("snapshot %s: %v", r.frame, err)
		}
		return m.Seq
	}
	// firstAfter is the first message of ch the sink got past seq.
	firstAfter := func(seq uint64) FeedMessage {
		t.Helper()
		for i := 0; ; i++ {
			if m := sink.waitFor(t, ch, i); m.Seq > seq {
				return m
			}
		}
	}
	submit(engine.Command{Kind: engine.CmdCreateAccount, Target: acct, Name: "a", Roles: engine.RoleBuyer})
	submit(engine.Command{Kind: engine.CmdDeposit, Target: acct, Amount: 100})
	if m := sink.waitFor(t, ch, 0); m.Seq <= 1<<40 { // a standby's hub counts too (its publisher drops)
		t.Errorf("first seq %d: want the hub's start time × 256", m.Seq)
	}
	standby := settled()

	seq.leader.Store(true)
	submit(engine.Command{Kind: engine.CmdDeposit, Target: acct, Amount: 100})
	if m := firstAfter(standby); m.Seq < standby+2 {
		t.Errorf("after becoming leader: seq %d after %d, want a gap", m.Seq, standby)
	}
	last := settled()

	s.hub.overflow.Store(true) // as publish does when its queue is full
	s.hub.request(hubReq{kind: reqJoin, cl: newTestClient(1)})
	lost := func() int {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		return sink.lost
	}
	for deadline := time.Now().Add(hubWait); lost() == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if got := lost(); got != 1 {
		t.Fatalf("after a reset: Lost called %d times, want once", got)
	}
	submit(engine.Command{Kind: engine.CmdDeposit, Target: acct, Amount: 100})
	if after := firstAfter(last); after.Seq < last+2 {
		t.Errorf("after a reset: seq %d after %d, want a gap", after.Seq, last)
	}
}
