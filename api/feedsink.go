package api

import (
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/gpux/gpux/engine"
)

// FeedMessage is one message a hub sent on a channel, as an engine node
// hands it to API nodes.
type FeedMessage struct {
	// Channel is the hub's name for the channel: "prices",
	// "book:<market>", "trades:<market>" or "user:<account id>" (clients
	// know the last as "user").
	Channel string
	// Seq is the channel's seq of this message (the same as in Frame).
	Seq uint64
	// Frame is the message exactly as subscribers get it:
	// {"channel","type":"update","seq","data","ts"}. It is never changed
	// after the hand-over.
	Frame []byte
}

// FeedSink takes what an engine node's hub sends, for API nodes to relay
// (package relay publishes it to Redis). With a sink the hub keeps every
// channel up to date (every book, every market's trades, prices, and the
// user channel of every account an event concerns), not only those with a
// subscriber here, so that a channel's seq is the same for every node
// that relays it.
//
// Both methods are called on the hub's goroutine and must not block: a
// sink that cannot keep up drops, and says so to its readers (a gap).
type FeedSink interface {
	// Publish hands over one message, in the order the hub sent them.
	Publish(m FeedMessage)
	// Lost says the hub itself dropped engine events (it fell behind):
	// every channel may have missed a change and readers must take fresh
	// snapshots. Every channel's seq skips one as well.
	Lost()
}

// ErrUnknownChannel is what a FeedSource returns for a channel its engine
// node does not have (an unknown market or account).
var ErrUnknownChannel = errors.New("unknown channel")

// FeedSnapshotPath is the engine nodes' internal route (admin key) that
// answers a channel's snapshot with its current seq: the relays on API
// nodes start every channel from it. API nodes do not serve it.
const FeedSnapshotPath = "/v1/internal/feed/snapshot"

type snapshotReply struct {
	frame        []byte
	code, detail string
}

// feedSnapshot answers GET /v1/internal/feed/snapshot?channel=<hub channel>:
// the snapshot a new subscriber of the channel would get now, with the
// channel's current seq, for an API node's relay (admin key only). The
// channel is named as in FeedMessage (user:<account id> for an account's
// user channel).
func (s *Server) feedSnapshot(c *fiber.Ctx) error {
	if p := requireAdmin(c); p != nil {
		return p
	}
	name := c.Query("channel")
	if name == "" {
		return problem(CodeMissingField, "channel", "channel is required")
	}
	if len(name) > maxChannelName {
		return problemf(CodeInvalidValue, "channel", "a channel name is at most %d bytes", maxChannelName)
	}
	var account engine.ID
	if id, ok := strings.CutPrefix(name, "user:"); ok {
		a, err := engine.ParseID(id)
		if err != nil || a.IsZero() {
			return problem(CodeInvalidValue, "channel", "user:<account id> names an account by its id")
		}
		name, account = userChannelName, a
	} else if name == userChannelName {
		return problem(CodeInvalidValue, "channel", "name the account: user:<account id>")
	}
	reply := make(chan snapshotReply, 1)
	if !s.hub.request(hubReq{kind: reqSnapshot, channels: []string{name}, account: account, reply: reply}) {
		return problem(CodeShuttingDown, "", "the feed is shutting down")
	}
	var r snapshotReply
	select {
	case r = <-reply:
	case <-s.hub.done:
		return problem(CodeShuttingDown, "", "the feed is shutting down")
	}
	if r.code != "" {
		return problemf(engine.CodeNotFound, "channel", "%s", r.detail)
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(r.frame)
}

// answerSnapshot renders a reqSnapshot's channel on the hub's goroutine,
// so its seq and the updates that follow it are in order.
func (h *hub) answerSnapshot(r hubReq) {
	name := r.channels[0]
	key, data, now, code, detail := h.snapshot(name, r.account)
	if code != "" {
		r.reply <- snapshotReply{code: code, detail: detail}
		return
	}
	c := h.ch(key)
	r.reply <- snapshotReply{frame: mustJSON(feedMsg{Channel: name, Type: "snapshot", Seq: c.seq, Data: data, TS: rfc3339ms(now)})}
}
