package client

import (
	"context"
	"fmt"
	"slices"
	"sync"
)

// MsgGap is a message Stream makes itself (the server never sends it): a
// channel skipped a seq, so Stream resubscribed it and drops its updates
// until the fresh snapshot arrives. Channel names the channel; Detail says
// which seq was expected and which came.
const MsgGap = "gap"

// Stream is a Feed that keeps every channel in sequence. Next returns a
// channel's snapshot and then only its updates in seq order: a duplicate
// or stale update is dropped, and a gap (seq jumps past last+1) makes the
// stream unsubscribe and subscribe the channel again, return a MsgGap
// message, and drop that channel's updates until its new snapshot. Other
// messages (heartbeat, auth, error, types it does not know) pass through.
//
// Like Feed, a Stream is safe for concurrent use and Next is meant for one
// reader. It does not redial a connection that ends: Next then returns
// the error, and the caller decides whether to subscribe again.
type Stream struct {
	feed *Feed

	mu    sync.Mutex
	last  map[string]uint64 // channel → seq of the last message returned
	fresh map[string]bool   // channel → a snapshot arrived since (re)subscribing
	gaps  int
}

// Stream dials the feed like Subscribe and keeps channels in sequence.
func (c *Client) Stream(ctx context.Context, channels []string) (*Stream, error) {
	f, err := c.Subscribe(ctx, nil)
	if err != nil {
		return nil, err
	}
	s := &Stream{feed: f, last: map[string]uint64{}, fresh: map[string]bool{}}
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
	s.mu.Unlock()
	return s.feed.Subscribe(channels)
}

// Unsubscribe removes channels; their later updates are dropped.
func (s *Stream) Unsubscribe(channels []string) error {
	s.mu.Lock()
	for _, ch := range channels {
		delete(s.fresh, ch)
		delete(s.last, ch)
	}
	s.mu.Unlock()
	return s.feed.Unsubscribe(channels)
}

// Gaps is how many times a channel was resubscribed after a gap.
func (s *Stream) Gaps() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gaps
}

// Close ends the stream (see Feed.Close).
func (s *Stream) Close() error { return s.feed.Close() }

// Next returns the next message in order; errors as Feed.Next, plus a
// failure to resubscribe after a gap.
func (s *Stream) Next(ctx context.Context) (Message, error) {
	for {
		m, err := s.feed.Next(ctx)
		if err != nil {
			return m, err
		}
		if m.Type != MsgSnapshot && m.Type != MsgUpdate {
			return m, nil
		}
		pass, gap := s.admit(m)
		if gap != "" {
			// Unsubscribe first so the server forgets the old position;
			// the snapshot that follows carries the current seq.
			if err := s.feed.Unsubscribe([]string{m.Channel}); err != nil {
				return Message{}, fmt.Errorf("gpux: resubscribe %s: %w", m.Channel, err)
			}
			if err := s.feed.Subscribe([]string{m.Channel}); err != nil {
				return Message{}, fmt.Errorf("gpux: resubscribe %s: %w", m.Channel, err)
			}
			return Message{Type: MsgGap, Channel: m.Channel, Seq: m.Seq, Detail: gap, TS: m.TS}, nil
		}
		if pass {
			return m, nil
		}
	}
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
