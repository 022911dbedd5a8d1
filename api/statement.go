package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/csv"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/history"
	"github.com/gpux/gpux/store"
)

// Statement limits.
const (
	// StatementCSVLines bounds one CSV answer without a limit; a longer period
	// answers its first StatementCSVLines lines and a Next-Cursor header.
	StatementCSVLines = 100_000
	// statementCatchUp bounds how long a statement waits for the lines of
	// batches the engine has applied but the read side is still writing.
	statementCatchUp = 2 * time.Second
)

// Statement line kind for spot accrued since the last posted line (only
// in a period that ends now).
const kindSpotAccrued = "spot_accrued"

type statementLineJSON struct {
	At           string `json:"at"`
	Kind         string `json:"kind"`
	Amount       string `json:"amount"`
	BalanceAfter string `json:"balance_after"`
	Ref          string `json:"ref"`
}

type statementJSON struct {
	Items      []statementLineJSON `json:"items"`
	NextCursor *string             `json:"next_cursor"`
}

// StatementFormat reads a statement request's format (json or csv) and
// limit: 1..1000 lines a page, or for CSV without a limit up to
// StatementCSVLines. API nodes merging wallets read them with it too.
func StatementFormat(c *fiber.Ctx) (csvOut bool, limit int, p *Problem) {
	switch c.Query("format") {
	case "", "json":
	case "csv":
		csvOut = true
	default:
		return false, 0, problem(CodeInvalidValue, "format", "format must be json or csv")
	}
	limit = defaultLimit
	if csvOut {
		limit = StatementCSVLines
	}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			return false, 0, problemf(CodeInvalidLimit, "limit", "limit must be an integer between 1 and %d", maxLimit)
		}
		limit = n
	}
	return csvOut, limit, nil
}

// getStatement answers GET /v1/account/statement?from=&to=&limit=&cursor=&format=:
// the caller's ledger lines with from <= at < to, oldest first. A period
// that ends now (no to, or a to after the engine's time) ends, on its last
// page, with a spot_accrued line holding what spot has accrued since the
// last posted line, so the amounts of the whole period sum to the change
// of the balance that GET /v1/account shows at the same engine time.
func (s *Server) getStatement(c *fiber.Ctx) error {
	a, p := requireAccount(c, 0)
	if p != nil {
		return p
	}
	from, p := parseTime(optString(c.Query("from")), "from", false)
	if p != nil {
		return p
	}
	to, p := parseTime(optString(c.Query("to")), "to", false)
	if p != nil {
		return p
	}
	if to != 0 && to <= from {
		return problem(CodeInvalidTime, "to", "to must be after from")
	}
	csvOut, limit, p := StatementFormat(c)
	if p != nil {
		return p
	}
	var after *store.SeriesPos
	if v := c.Query("cursor"); v != "" {
		pos, ok := parseStatementCursor(v)
		if !ok {
			return problem(CodeInvalidCursor, "cursor", "cursor must be the next_cursor of a previous page")
		}
		after = &pos
	}

	ctx, cancel := context.WithTimeout(c.UserContext(), statementCatchUp)
	defer cancel()
	st, p := s.statementState(ctx, a.ID)
	if p != nil {
		return p
	}
	endsNow := to == 0 || to > st.now
	if to == 0 {
		to = math.MaxInt64
	}
	var lines []history.Line
	for len(lines) < limit {
		want := min(limit-len(lines), maxLimit)
		page, err := s.statements.Lines(ctx, a.ID, from, to, after, want)
		if err != nil {
			return fromStore(err)
		}
		// Lines of batches after the engine state read are left for a
		// later request: the period then closes exactly at that state.
		kept := 0
		for _, l := range page {
			if lineSeq(l) > st.seq {
				break
			}
			kept++
		}
		lines = append(lines, page[:kept]...)
		if kept < len(page) || len(page) < want {
			break
		}
		after = &page[len(page)-1].Pos
	}
	var next *string
	full := len(lines) == limit
	if full {
		cur := formatStatementCursor(lines[len(lines)-1].Pos)
		next = &cur
	}
	items := make([]statementLineJSON, 0, len(lines)+1)
	for _, l := range lines {
		ref := ""
		if !l.Ref.IsZero() {
			ref = l.Ref.String()
		}
		items = append(items, statementLineJSON{At: rfc3339ms(l.At), Kind: l.Kind.String(), Amount: l.Amount.String(), BalanceAfter: l.BalanceAfter.String(), Ref: ref})
	}
	if endsNow && !full {
		items = append(items, statementLineJSON{At: rfc3339ms(st.now), Kind: kindSpotAccrued, Amount: st.accrued.String(), BalanceAfter: st.balance.String()})
	}
	if !csvOut {
		return sendJSON(c, http.StatusOK, statementJSON{Items: items, NextCursor: next})
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{"at", "kind", "amount", "balance_after", "ref"})
	for _, it := range items {
		_ = w.Write([]string{it.At, it.Kind, it.Amount, it.BalanceAfter, it.Ref})
	}
	w.Flush()
	if next != nil {
		c.Set("Next-Cursor", *next)
	}
	c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	return c.Status(http.StatusOK).Send(buf.Bytes())
}

// statementState is the engine's view of an account a statement closes
// at: its sequence number, time, balance and unposted spot accrual.
type statementState struct {
	seq              uint64
	now              engine.Time
	balance, accrued engine.Money
}

// statementState reads the engine and waits until the read side holds
// every line the engine has posted for the account (the newest stored
// line's balance_after equals balance − accrued). The observer writes a
// batch's lines right after the engine applies it, so this waits at most
// for one batch's write, unless the store is failing.
func (s *Server) statementState(ctx context.Context, account engine.ID) (statementState, *Problem) {
	for {
		var st statementState
		var ok bool
		s.read(func(e *engine.Engine) {
			var v engine.AccountView
			v, ok = e.Account(account)
			st = statementState{seq: e.Seq(), now: e.Now(), balance: v.Balance, accrued: v.Accrued}
		})
		if !ok {
			return st, problem(engine.CodeNotFound, "", "no such account")
		}
		last, err := s.statements.LastBalance(ctx, account)
		if errors.Is(err, store.ErrUnavailable) {
			return st, problem(CodeUnavailable, "", "the read models are unavailable; retry later")
		}
		if err != nil {
			return st, problem(CodeInternal, "", "internal error")
		}
		if last == st.balance-st.accrued {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, problem(CodeTimeout, "", "the statement is not caught up with the engine yet; retry")
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// fromStore maps a read-model failure to a problem: 503 when Redis is
// unavailable, else the error itself (a 500, logged).
func fromStore(err error) error {
	if errors.Is(err, store.ErrUnavailable) {
		return problem(CodeUnavailable, "", "the read models are unavailable; retry later")
	}
	return err
}

// lineSeq is the sequence number of the command that posted l (the first
// 20 digits of its key; see history.ValidPos).
func lineSeq(l history.Line) uint64 {
	n, _ := strconv.ParseUint(l.Pos.Key[:20], 10, 64)
	return n
}

func formatStatementCursor(p store.SeriesPos) string {
	return base64.RawURLEncoding.EncodeToString([]byte(history.FormatPos(p)))
}

func parseStatementCursor(s string) (store.SeriesPos, bool) {
	if len(s) > 128 {
		return store.SeriesPos{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return store.SeriesPos{}, false
	}
	return history.ParsePos(string(b))
}
