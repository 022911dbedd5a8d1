package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// MsgGap is a message Stream makes itself (the server never sends it): a
// channel skipped a seq, so Stream resubscribed it and drops its updates
// until the fresh snapshot arrives. Channel names the channel; Detail says
// which seq was expected and which came.
const MsgGap = "gap"

// MsgReconnect is a message Stream makes itself after it lost the
// connection and dialled again (WithRedial): every channel starts over
// with a fresh snapshot. Detail says what ended the old connection.
const MsgReconnect = "reconnect"

// StreamOption configures Client.Stream.
type StreamOption func(*Stream)

// WithRedial makes a Stream dial again when its connection ends (the
// server restarted, or closed it for falling behind), up to attempts
// times in a row with a growing pause (0.25 s doubling to 5 s), and
// resubscribe every channel. Without it, Next returns the error.
func WithRedial(attempts int) StreamOption {
	return func(s *Stream) { s.redial = attempts }
}

// Stream is a Feed that keeps every channel in sequence. Next returns a
// channel's snapshot and then only its updates in seq order: a duplicate
// or stale update is dropped, and a gap (seq jumps past last+1) makes the
// stream unsubscribe and subscribe the channel again, return a MsgGap
// message, and drop that channel's updates until its new snapshot. Other
// messages (heartbeat, auth, error, types it does not know) pass through.
//
// Like Feed, a Stream is safe for concurrent use and Next is meant for one
// reader. Unless made WithRedial it does not dial again when the
// connection ends: Next then returns the error.
type Stream struct {
	c      *Client
	redial int

	mu     sync.Mutex
	feed   *Feed
	closed bool
	last   map[string]uint64 // channel → seq of the last message returned
	fresh  map[string]bool   // channel → a snapshot arrived since (re)subscribing
	gaps   int
}

// Stream dials the feed like Subscribe and keeps channels in sequence.
func (c *Client) Stream(ctx context.Context, channels []string, opts ...StreamOption) (*Stream, error) {
	f, err := c.Subscribe(ctx, nil)
	if err != nil {
		return nil, err
	}
	s := &Stream{c: c, feed: f, last: map[string]uint64{}, fresh: map[string]bool{}}
	for _, o := range opts {
		o(s)
	}
	if len(channels) > 0 {
		if err := s.Subscribe(channels); err != nil {
			f.Close()
			return nil, err
		}
	}
	return s, nil
}

// Subscribe adds channels; each starts with a snapshot.
func (s *Stream) Subscribe(channels []string) error {
	s.mu.Lock()
	for _, ch := range channels {
		s.fresh[ch] = false
	}
	f := s.feed
	s.mu.Unlock()
	return f.Subscribe(channels)
}

// Unsubscribe removes channels; their later updates are dropped.
func (s *Stream) Unsubscribe(channels []string) error {
	s.mu.Lock()
	for _, ch := range channels {
		delete(s.fresh, ch)
		delete(s.last, ch)
	}
	f := s.feed
	s.mu.Unlock()
	return f.Unsubscribe(channels)
}

// Gaps is how many times a channel was resubscribed after a gap.
func (s *Stream) Gaps() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gaps
}

// Close ends the stream (see Feed.Close).
func (s *Stream) Close() error {
	s.mu.Lock()
	s.closed = true
	f := s.feed
	s.mu.Unlock()
	return f.Close()
}

// Next returns the next message in order; errors as Feed.Next, plus a
// failure to resubscribe after a gap.
func (s *Stream) Next(ctx context.Context) (Message, error) {
	for {
		s.mu.Lock()
		f := s.feed
		s.mu.Unlock()
		m, err := f.Next(ctx)
		if err != nil {
			if s.redial <= 0 || ctx.Err() != nil || errors.Is(err, ErrClosed) {
				return m, err
			}
			if rerr := s.reconnect(ctx); rerr != nil {
				return Message{}, fmt.Errorf("%w; dialling again: %w", err, rerr)
			}
			return Message{Type: MsgReconnect, Detail: err.Error()}, nil
		}
		if m.Type != MsgSnapshot && m.Type != MsgUpdate {
			return m, nil
		}
		pass, gap := s.admit(m)
		if gap != "" {
			// Unsubscribe first so the server forgets the old position;
			// the snapshot that follows carries the current seq.
			if err := f.Unsubscribe([]string{m.Channel}); err != nil {
				return Message{}, fmt.Errorf("gpux: resubscribe %s: %w", m.Channel, err)
			}
			if err := f.Subscribe([]string{m.Channel}); err != nil {
				return Message{}, fmt.Errorf("gpux: resubscribe %s: %w", m.Channel, err)
			}
			return Message{Type: MsgGap, Channel: m.Channel, Seq: m.Seq, Detail: gap, TS: m.TS}, nil
		}
		if pass {
			return m, nil
		}
	}
}

// reconnect dials until it has a new connection with every channel
// subscribed again, or gives up after s.redial attempts.
func (s *Stream) reconnect(ctx context.Context) error {
	pause := 250 * time.Millisecond
	var err error
	for attempt := 0; attempt < s.redial; attempt++ {
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		pause = min(pause*2, 5*time.Second)
		var f *Feed
		if f, err = s.c.Subscribe(ctx, nil); err != nil {
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			f.Close()
			return ErrClosed
		}
		chans := make([]string, 0, len(s.fresh))
		for ch := range s.fresh {
			s.fresh[ch] = false // drop updates until the new snapshot
			chans = append(chans, ch)
		}
		slices.Sort(chans)
		s.feed = f
		s.mu.Unlock()
		if len(chans) == 0 {
			return nil
		}
		if err = f.Subscribe(chans); err == nil {
			return nil
		}
		f.Close()
	}
	return fmt.Errorf("%d attempts: %w", s.redial, err)
}

// admit decides what to do with a snapshot or update: pass it on, drop it
// (pass false, gap ""), or resubscribe (gap says why).
func (s *Stream) admit(m Message) (pass bool, gap string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fresh, subscribed := s.fresh[m.Channel]
	switch {
	case !subscribed:
		return false, "" // unsubscribed, or never asked for
	case m.Type == MsgSnapshot:
		s.fresh[m.Channel], s.last[m.Channel] = true, m.Seq
		return true, ""
	case !fresh:
		return false, "" // an update of the subscription being replaced
	case m.Seq <= s.last[m.Channel]:
		return false, "" // seen already
	case m.Seq == s.last[m.Channel]+1:
		s.last[m.Channel] = m.Seq
		return true, ""
	}
	gap = fmt.Sprintf("expected seq %d, got %d; resubscribed", s.last[m.Channel]+1, m.Seq)
	s.fresh[m.Channel] = false
	s.gaps++
	return false, gap
}

// Channels returns the channels the stream is subscribed to, sorted.
func (s *Stream) Channels() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.fresh))
	for ch := range s.fresh {
		out = append(out, ch)
	}
	slices.Sort(out)
	return out
}
