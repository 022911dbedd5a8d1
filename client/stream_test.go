package client_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/gpux/gpux/client"
)

// TestStreamResubscribesOnGap plays a server that skips a seq: the stream
// must resubscribe that channel, drop the old subscription's leftovers,
// and carry on from the fresh snapshot, while another channel flows on.
func TestStreamResubscribesOnGap(t *testing.T) {
	srv, conns := wsServer(t)
	s, err := client.New(srv.URL).Stream(t.Context(), []string{"book:m", "trades:m"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	conn := accept(t, conns)
	expectOp(t, conn, `{"op":"subscribe","channels":["book:m","trades:m"]}`)

	msg := func(ch, typ string, seq int) string {
		return fmt.Sprintf(`{"channel":%q,"type":%q,"seq":%d,"data":{},"ts":"2026-12-01T08:00:00Z"}`, ch, typ, seq)
	}
	send(t, conn, msg("book:m", "update", 4))   // before its snapshot: dropped
	send(t, conn, msg("book:m", "snapshot", 4)) // returned
	send(t, conn, msg("trades:m", "snapshot", 1))
	send(t, conn, msg("book:m", "update", 5))
	send(t, conn, msg("book:m", "update", 5)) // duplicate: dropped
	send(t, conn, msg("trades:m", "update", 2))
	send(t, conn, msg("book:m", "update", 7)) // gap: 6 is missing

	type seen struct {
		Channel, Type string
		Seq           uint64
	}
	want := []seen{
		{"book:m", "snapshot", 4}, {"trades:m", "snapshot", 1}, {"book:m", "update", 5},
		{"trades:m", "update", 2}, {"book:m", client.MsgGap, 7},
	}
	for i, w := range want {
		m := nextStream(t, s)
		if got := (seen{m.Channel, m.Type, m.Seq}); got != w {
			t.Fatalf("message %d: got %+v, want %+v", i, got, w)
		}
	}
	expectOp(t, conn, `{"op":"unsubscribe","channels":["book:m"]}`)
	expectOp(t, conn, `{"op":"subscribe","channels":["book:m"]}`)
	send(t, conn, msg("book:m", "update", 8)) // the old subscription's: dropped
	send(t, conn, msg("trades:m", "update", 3))
	send(t, conn, msg("book:m", "snapshot", 8))
	send(t, conn, msg("book:m", "update", 9))
	for i, w := range []seen{{"trades:m", "update", 3}, {"book:m", "snapshot", 8}, {"book:m", "update", 9}} {
		m := nextStream(t, s)
		if got := (seen{m.Channel, m.Type, m.Seq}); got != w {
			t.Fatalf("after the gap, message %d: got %+v, want %+v", i, got, w)
		}
	}
	if got := s.Gaps(); got != 1 {
		t.Errorf("Gaps: got %d, want 1", got)
	}

	// An unsubscribed channel's stragglers never come out.
	if err := s.Unsubscribe([]string{"trades:m"}); err != nil {
		t.Fatal(err)
	}
	expectOp(t, conn, `{"op":"unsubscribe","channels":["trades:m"]}`)
	send(t, conn, msg("trades:m", "update", 4))
	send(t, conn, `{"type":"heartbeat","ts":"2026-12-01T08:00:15Z"}`)
	if m := nextStream(t, s); m.Type != client.MsgHeartbeat {
		t.Errorf("after unsubscribe: got %+v, want the heartbeat", m)
	}
}

func nextStream(tb testing.TB, s *client.Stream) client.Message {
	tb.Helper()
	m, err := s.Next(tb.Context())
	if err != nil {
		tb.Fatalf("Next: %v", err)
	}
	return m
}

// TestStreamRedials: when the server drops the connection, a stream made
// WithRedial dials again, resubscribes every channel (auth first for
// user), says so, and carries on from the new snapshots.
func TestStreamRedials(t *testing.T) {
	srv, conns := wsServer(t)
	s, err := client.New(srv.URL, client.WithAPIKey("k")).Stream(t.Context(), []string{"user", "book:m"}, client.WithRedial(3))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	conn := accept(t, conns)
	expectOp(t, conn, `{"op":"auth","key":"k"}`)
	expectOp(t, conn, `{"op":"subscribe","channels":["user","book:m"]}`)
	send(t, conn, `{"channel":"book:m","type":"snapshot","seq":3,"data":{},"ts":"2026-12-01T08:00:00Z"}`)
	if m := nextStream(t, s); m.Type != client.MsgSnapshot {
		t.Fatalf("got %+v, want the snapshot", m)
	}
	conn.Close() // the server goes away

	// Next notices, dials again and resubscribes.
	got := make(chan client.Message, 1)
	go func() {
		m, _ := s.Next(t.Context())
		got <- m
	}()
	conn = accept(t, conns)
	expectOp(t, conn, `{"op":"auth","key":"k"}`)
	expectOp(t, conn, `{"op":"subscribe","channels":["book:m","user"]}`)
	if m := <-got; m.Type != client.MsgReconnect || m.Detail == "" {
		t.Fatalf("got %+v, want a reconnect message saying why", m)
	}
	send(t, conn, `{"channel":"book:m","type":"update","seq":9,"data":{},"ts":"2026-12-01T08:00:01Z"}`) // before the snapshot: dropped
	send(t, conn, `{"channel":"book:m","type":"snapshot","seq":9,"data":{},"ts":"2026-12-01T08:00:01Z"}`)
	send(t, conn, `{"channel":"book:m","type":"update","seq":10,"data":{},"ts":"2026-12-01T08:00:02Z"}`)
	for _, want := range []uint64{9, 10} {
		if m := nextStream(t, s); m.Seq != want || m.Channel != "book:m" {
			t.Fatalf("after the redial: got %+v, want book:m seq %d", m, want)
		}
	}
	if s.Gaps() != 0 {
		t.Errorf("Gaps: got %d, want 0 (a redial is not a gap)", s.Gaps())
	}
}

// TestStreamGivesUp: with the server gone for good, Next returns an error
// after the allowed attempts; without WithRedial it returns at once.
func TestStreamGivesUp(t *testing.T) {
	for _, redial := range []int{0, 2} {
		srv, conns := wsServer(t)
		var opts []client.StreamOption
		if redial > 0 {
			opts = append(opts, client.WithRedial(redial))
		}
		s, err := client.New(srv.URL).Stream(t.Context(), []string{"prices"}, opts...)
		if err != nil {
			t.Fatal(err)
		}
		conn := accept(t, conns)
		expectOp(t, conn, `{"op":"subscribe","channels":["prices"]}`)
		srv.Listener.Close() // no new connections
		conn.Close()
		if m, err := s.Next(t.Context()); err == nil {
			t.Errorf("redial %d: got %+v, want an error", redial, m)
		} else if redial > 0 && !strings.Contains(err.Error(), "2 attempts") {
			t.Errorf("redial %d: got %v, want it to say the attempts failed", redial, err)
		}
		s.Close()
	}
}
