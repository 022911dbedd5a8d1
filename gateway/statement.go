package gateway

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/gpux/gpux/api"
)

// Limits of the merged statement (its page limits are api.StatementFormat's).
const (
	// maxStmtCursor bounds a merged statement's cursor: a shard's own
	// cursor is at most 128 characters, so this holds at least 14 shards
	// (and stays under the 8 KiB a request's line and headers may hold).
	maxStmtCursor = 4096
	// stmtCursorPrefix marks a merged statement's cursor (not an order
	// list's, not one shard's).
	stmtCursorPrefix = "s1."
)

// getStatement answers the caller's statement. ?shard= (or a deployment
// with one shard) is that wallet's statement as its engine node renders
// it; without it, with several shards, the lines of every wallet merged
// oldest first (mergedStatement).
func (g *Server) getStatement(c *fiber.Ctx) error {
	if _, p := requireAccount(c, 0); p != nil {
		return p
	}
	t, p := g.topology(c.UserContext())
	if p != nil {
		return p
	}
	if c.Query("shard") == "" && len(t.names) > 1 {
		return g.mergedStatement(c, t)
	}
	shard, p := g.pickShard(c.UserContext(), c.Query("shard"))
	if p != nil {
		return p
	}
	r, p := g.read(c.UserContext(), shard, clientCall(c))
	if p != nil {
		return p
	}
	if r.status == http.StatusUnauthorized {
		// The account has no wallet there yet: an empty statement.
		if c.Query("format") == "csv" {
			c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
			return c.Status(http.StatusOK).SendString("at,kind,amount,balance_after,ref\n")
		}
		return sendJSON(c, http.StatusOK, fiber.Map{"items": []any{}, "next_cursor": nil})
	}
	return relay(c, r)
}

// stmtLine is a statement line of the merged view: an engine node's line
// and the wallet (shard) it is of; balance_after is that wallet's.
type stmtLine struct {
	At           string `json:"at"`
	Kind         string `json:"kind"`
	Amount       string `json:"amount"`
	BalanceAfter string `json:"balance_after"`
	Ref          string `json:"ref"`
	Shard        string `json:"shard"`

	at time.Time
}

// stmtPos is a shard's position in a merged statement: its own cursor
// (C, "" for its first line) and how many lines after it were answered
// already (K, when a page took only part of what the shard sent), or
// done.
type stmtPos struct {
	C    string `json:"c,omitempty"`
	K    int    `json:"k,omitempty"`
	Done bool   `json:"d,omitempty"`
}

// stmtPage is what one shard sent for a merged page.
type stmtPage struct {
	pos   stmtPos // where the page starts (K already skipped)
	lines []stmtLine
	next  string // the shard's cursor after the page ("" = its last)
	fail  *reply // an answer to relay as it is (a 4xx, a 503)
	prob  *api.Problem
}

// mergedStatement answers the lines of every wallet of the caller, oldest
// first by at (each shard's own order kept; a tie goes to the shard first
// by name), in pages whose cursor holds every shard's position, as the
// merged order lists do. Each shard's lines are what its engine node
// answers for the same from and to, including the spot_accrued line that
// closes a period ending now, so the amounts of the whole period sum to
// the change of the summed balance of GET /v1/account. A transfer is the
// withdrawal on one wallet and the deposit on the other.
func (g *Server) mergedStatement(c *fiber.Ctx, t *topology) error {
	csvOut, limit, p := api.StatementFormat(c)
	if p != nil {
		return p
	}
	pos := map[string]stmtPos{}
	if v := c.Query("cursor"); v != "" {
		if len(v) > maxStmtCursor || !strings.HasPrefix(v, stmtCursorPrefix) {
			return invalidCursor()
		}
		b, err := base64.RawURLEncoding.DecodeString(v[len(stmtCursorPrefix):])
		if err != nil || json.Unmarshal(b, &pos) != nil {
			return invalidCursor()
		}
		for _, p := range pos {
			if p.K < 0 || p.K > api.StatementCSVLines {
				return invalidCursor()
			}
		}
	}
	base := url.Values{}
	for _, k := range []string{"from", "to"} {
		if v := c.Query(k); v != "" {
			base.Set(k, v)
		}
	}
	auth := strings.Clone(c.Get(fiber.HeaderAuthorization))
	ctx := c.UserContext()

	pages := make([]stmtPage, len(t.names))
	var wg sync.WaitGroup
	for i, n := range t.names {
		if pos[n].Done {
			pages[i] = stmtPage{pos: pos[n]}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pages[i] = g.statementPage(ctx, n, auth, base, pos[n], limit)
		}()
	}
	wg.Wait()
	var all []stmtLine
	for i := range pages {
		if p := pages[i].prob; p != nil {
			return p
		}
		if r := pages[i].fail; r != nil {
			return relay(c, *r)
		}
		all = append(all, pages[i].lines...)
	}
	all = mergeBy(all, func(l stmtLine) (string, time.Time) { return l.Shard, l.at }, func(a, b time.Time) bool { return a.Before(b) })
	taken := all
	if len(taken) > limit {
		taken = taken[:limit]
	}
	took := map[string]int{}
	for _, l := range taken {
		took[l.Shard]++
	}
	next := map[string]stmtPos{}
	open := false
	for i, n := range t.names {
		pg := pages[i]
		switch {
		case pg.pos.Done:
			next[n] = pg.pos
			continue
		case took[n] < len(pg.lines):
			next[n] = stmtPos{C: pg.pos.C, K: took[n]}
		case pg.next != "":
			next[n] = stmtPos{C: pg.next}
		default:
			next[n] = stmtPos{Done: true}
			continue
		}
		open = true
	}
	var cursor *string
	if open {
		b, _ := json.Marshal(next)
		s := stmtCursorPrefix + base64.RawURLEncoding.EncodeToString(b)
		cursor = &s
	}
	if taken == nil {
		taken = []stmtLine{}
	}
	if !csvOut {
		return sendJSON(c, http.StatusOK, struct {
			Items      []stmtLine `json:"items"`
			NextCursor *string    `json:"next_cursor"`
		}{taken, cursor})
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{"at", "kind", "amount", "balance_after", "ref", "shard"})
	for _, l := range taken {
		_ = w.Write([]string{l.At, l.Kind, l.Amount, l.BalanceAfter, l.Ref, l.Shard})
	}
	w.Flush()
	if cursor != nil {
		c.Set("Next-Cursor", *cursor)
	}
	c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	return c.Status(http.StatusOK).Send(buf.Bytes())
}

// statementPage reads up to limit lines of shard's statement from pos:
// first past the K lines already answered, then the page. It asks for CSV
// (every line, and the cursor in Next-Cursor), whatever the client wants.
func (g *Server) statementPage(ctx context.Context, shard, auth string, base url.Values, pos stmtPos, limit int) stmtPage {
	for pos.K > 0 {
		n := min(pos.K, api.MaxPageLimit)
		lines, next, fail, p := g.statementLines(ctx, shard, auth, base, pos.C, n)
		switch {
		case p != nil:
			return stmtPage{prob: p}
		case fail != nil:
			return stmtPage{fail: fail}
		case lines == nil:
			return stmtPage{pos: stmtPos{Done: true}} // no wallet there
		case len(lines) != n || next == "":
			// Lines once answered are kept: fewer now is not this cursor's shard.
			return stmtPage{prob: invalidCursor()}
		}
		pos = stmtPos{C: next, K: pos.K - n}
	}
	lines, next, fail, p := g.statementLines(ctx, shard, auth, base, pos.C, limit)
	return stmtPage{pos: pos, lines: lines, next: next, fail: fail, prob: p}
}

// statementLines is one CSV statement request to shard: its lines and
// Next-Cursor, or an answer to relay. An account without a wallet there
// has no lines.
func (g *Server) statementLines(ctx context.Context, shard, auth string, base url.Values, cursor string, limit int) ([]stmtLine, string, *reply, *api.Problem) {
	q := url.Values{"format": {"csv"}}
	for k, v := range base {
		q[k] = v
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	if limit <= api.MaxPageLimit {
		q.Set("limit", strconv.Itoa(limit))
	} // else: an engine node's CSV without a limit is api.StatementCSVLines
	r, p := g.read(ctx, shard, call{method: http.MethodGet, path: "/v1/account/statement?" + q.Encode(), auth: auth})
	switch {
	case p != nil:
		return nil, "", nil, p
	case r.status == http.StatusUnauthorized:
		return nil, "", nil, nil
	case r.status != http.StatusOK:
		return nil, "", &r, nil
	}
	rows, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
	if err != nil || len(rows) == 0 {
		g.log.Error("statement of shard", "shard", shard, "err", err)
		return nil, "", nil, api.NewProblem(api.CodeInternal, "", fmt.Sprintf("the statement of shard %q could not be read", shard))
	}
	lines := make([]stmtLine, 0, len(rows)-1)
	for _, row := range rows[1:] {
		if len(row) != 5 {
			return nil, "", nil, api.NewProblem(api.CodeInternal, "", fmt.Sprintf("the statement of shard %q could not be read", shard))
		}
		at, err := time.Parse(time.RFC3339Nano, row[0])
		if err != nil {
			return nil, "", nil, api.NewProblem(api.CodeInternal, "", fmt.Sprintf("the statement of shard %q has a bad time %q", shard, row[0]))
		}
		lines = append(lines, stmtLine{At: row[0], Kind: row[1], Amount: row[2], BalanceAfter: row[3], Ref: row[4], Shard: shard, at: at})
	}
	return lines, r.header.Get("Next-Cursor"), nil, nil
}
