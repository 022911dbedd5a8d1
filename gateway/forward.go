package gateway

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/gpux/gpux/api"
)

// maxReply bounds an engine node's answer read into memory (the largest
// are pages of 1000 orders and CSV statements).
const maxReply = 64 << 20

// call is one request to an engine node.
type call struct {
	method string
	path   string // with the query string
	body   []byte
	auth   string // the Authorization header to send ("" = none)
	idem   string // Idempotency-Key ("" = none)
}

// reply is an engine node's answer.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// send runs c against the engine node at addr.
func (g *Server) send(ctx context.Context, addr string, c call) (reply, error) {
	var body io.Reader
	if c.body != nil {
		body = bytes.NewReader(c.body)
	}
	req, err := http.NewRequestWithContext(ctx, c.method, "http://"+addr+c.path, body)
	if err != nil {
		return reply{}, fmt.Errorf("build request: %w", err)
	}
	if c.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	if c.idem != "" {
		req.Header.Set("Idempotency-Key", c.idem)
	}
	if g.cfg.AdminKey != "" {
		req.Header.Set(api.GatewayHeader, g.cfg.AdminKey)
	}
	resp, err := g.http.Do(req)
	if err != nil {
		return reply{}, fmt.Errorf("%s %s at %s: %w", c.method, c.path, addr, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	if err != nil {
		return reply{}, fmt.Errorf("read answer of %s %s at %s: %w", c.method, c.path, addr, err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// write sends c to the leader of shard. Without a leader, or when the
// leader does not answer, it is 503 no_leader: the contract's one answer
// to a write while a shard has no leader (the outcome of a write that
// reached a leader that then failed is unknown; a retry with the same
// Idempotency-Key applies it at most once).
func (g *Server) write(ctx context.Context, shardName string, c call) (reply, *api.Problem) {
	t, p := g.topology(ctx)
	if p != nil {
		return reply{}, p
	}
	s := t.shards[shardName]
	if s == nil {
		return reply{}, api.NewProblem(api.CodeUnknownShard, "shard", fmt.Sprintf("no engine node of shard %q was ever started", shardName))
	}
	if s.Leader == "" {
		return reply{}, noLeader(shardName)
	}
	r, err := g.send(ctx, s.Leader, c)
	if err != nil {
		g.disc.invalidate()
		g.log.Warn("leader did not answer", "shard", shardName, "addr", s.Leader, "err", err)
		return reply{}, api.NewProblem(api.CodeNoLeader, "", fmt.Sprintf("the leader of shard %q did not answer; the outcome is unknown: retry with the same Idempotency-Key", shardName))
	}
	return r, nil
}

func noLeader(shard string) *api.Problem {
	return api.NewProblem(api.CodeNoLeader, "", fmt.Sprintf("shard %q has no leader right now: retry shortly", shard))
}

// read sends c to the leader of shard or, when it does not answer (or
// answers 503), to each live standby in turn.
func (g *Server) read(ctx context.Context, shardName string, c call) (reply, *api.Problem) {
	t, p := g.topology(ctx)
	if p != nil {
		return reply{}, p
	}
	s := t.shards[shardName]
	if s == nil {
		return reply{}, api.NewProblem(api.CodeUnknownShard, "shard", fmt.Sprintf("no engine node of shard %q was ever started", shardName))
	}
	var last reply
	for _, addr := range s.readers() {
		r, err := g.send(ctx, addr, c)
		if err != nil {
			g.disc.invalidate()
			continue
		}
		if r.status == http.StatusServiceUnavailable {
			last = r
			continue
		}
		return r, nil
	}
	if last.status != 0 {
		return last, nil
	}
	return reply{}, api.NewProblem(api.CodeNoLeader, "", fmt.Sprintf("no engine node of shard %q answers right now: retry shortly", shardName))
}

// topology is the current topology, or 503 when Redis cannot tell.
func (g *Server) topology(ctx context.Context) (*topology, *api.Problem) {
	t, err := g.disc.get(ctx, false)
	if err != nil {
		g.log.Warn("topology unavailable", "err", err)
		return nil, api.NewProblem(api.CodeUnavailable, "", "the shard registry cannot be read right now")
	}
	return t, nil
}

// relayed headers of an engine node's answer.
var relayed = []string{"Content-Type", "Retry-After", "Idempotency-Stored", "Content-Disposition", "Next-Cursor"}

// relay answers the client with an engine node's reply, unchanged.
func relay(c *fiber.Ctx, r reply) error {
	for _, h := range relayed {
		if v := r.header.Get(h); v != "" {
			c.Set(h, v)
		}
	}
	c.Status(r.status)
	return c.Send(r.body)
}

// pathAndQuery is the request's path and query string (a copy), as an
// engine node gets it.
func pathAndQuery(c *fiber.Ctx) string {
	p := c.Path()
	if q := c.Request().URI().QueryString(); len(q) > 0 {
		p += "?" + string(q)
	}
	return strings.Clone(p)
}

// clientCall is the client's own request, forwarded as it came.
func clientCall(c *fiber.Ctx) call {
	cl := call{method: c.Method(), path: pathAndQuery(c), auth: strings.Clone(c.Get(fiber.HeaderAuthorization)), idem: strings.Clone(c.Get("Idempotency-Key"))}
	if b := c.Body(); len(b) > 0 {
		cl.body = bytes.Clone(b)
	}
	return cl
}
