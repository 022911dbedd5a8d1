package history

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"sync"

	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/store"
)

// Statements keeps every account's statement: one line per engine.EvLedger
// event (deposit, withdrawal, reserved fill or earning, spot charge or
// earning, fee), in Redis through store.SeriesStore or in memory without
// Redis. Lines are history: they are kept forever and paged, never
// trimmed. It is safe for concurrent use.
//
// Each line is keyed by the command's sequence number and its place among
// that account's lines of the command, so storing a replayed batch again
// changes nothing.
type Statements struct {
	ss  store.SeriesStore
	log *slog.Logger

	// Lines not yet written (the store failed): served from here and
	// retried with the next batch, as Store does for closed orders.
	mu         sync.Mutex
	pending    map[string][]store.SeriesEntry // by series
	pendingLow map[string]uint64              // by series: the lowest sequence number among its pending lines
}

// Line is one statement line. Amount is the signed change of the
// balance; BalanceAfter the balance after it, spot accrual not yet posted
// left out (so the lines of an account chain: each BalanceAfter is the
// previous one plus Amount).
type Line struct {
	At           engine.Time
	Kind         engine.LedgerKind
	Amount       engine.Money
	BalanceAfter engine.Money
	Ref          engine.ID
	Pos          store.SeriesPos // where the line sits: a cursor after it
}

// lineData is a line as stored.
type lineData struct {
	Kind    engine.LedgerKind `json:"k"`
	Amount  engine.Money      `json:"a"`
	Balance engine.Money      `json:"b"`
	Ref     string            `json:"r,omitempty"` // "" for none
}

// NewStatements returns Statements on ss; nil ss keeps them in memory.
func NewStatements(ss store.SeriesStore, log *slog.Logger) *Statements {
	if ss == nil {
		ss = store.NewMemoryReadModels(store.ReadModelOptions{})
	}
	if log == nil {
		log = slog.Default()
	}
	return &Statements{ss: ss, log: log, pending: map[string][]store.SeriesEntry{}, pendingLow: map[string]uint64{}}
}

func statementSeries(account engine.ID) string { return "stmt:" + account.String() }

// lineKey orders an account's lines of one millisecond by command, then
// by their order within it.
func lineKey(seq uint64, n int) string {
	return fmt.Sprintf("%020d:%04d", seq, n)
}

// ValidPos reports whether p could be a line's position (a cursor check).
func ValidPos(p store.SeriesPos) bool {
	k := p.Key
	if p.Score < 0 || len(k) != 25 || k[20] != ':' {
		return false
	}
	for i, c := range []byte(k) {
		if i != 20 && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// Observe stores the ledger lines among a batch's events. Unlike
// Store.Observe (which only queues) it blocks for the write (at most writeTimeout) and keeps
// what could not be written in memory, retried with the next batch.
func (s *Statements) Observe(evs []engine.Event) {
	type acctSeq struct {
		account engine.ID
		seq     uint64
	}
	var n map[acctSeq]int
	add := map[string][]store.SeriesEntry{}
	low := map[string]uint64{} // by series: the lowest sequence number of its lines in add
	var order []string
	for i := range evs {
		ev := &evs[i]
		if ev.Kind != engine.EvLedger {
			continue
		}
		if n == nil {
			n = map[acctSeq]int{}
		}
		k := acctSeq{ev.Accounts[0], ev.Seq}
		d := lineData{Kind: ev.Ledger, Amount: ev.Amount, Balance: ev.Balance}
		if !ev.Ref.IsZero() {
			d.Ref = ev.Ref.String()
		}
		data, _ := json.Marshal(d) // plain data: cannot fail
		series := statementSeries(ev.Accounts[0])
		if _, ok := add[series]; !ok {
			order = append(order, series)
			low[series] = ev.Seq
		}
		add[series] = append(add[series], store.SeriesEntry{Score: int64(ev.Time), Key: lineKey(ev.Seq, n[k]), Data: data})
		n[k]++
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(add) == 0 && len(s.pending) == 0 {
		return
	}
	for series, es := range s.pending {
		if _, ok := add[series]; !ok {
			order = append(order, series)
		}
		add[series] = append(es, add[series]...)
		if l, ok := low[series]; !ok || s.pendingLow[series] < l {
			low[series] = s.pendingLow[series]
		}
	}
	slices.Sort(order) // a stable write order, whatever the map's
	ctx, cancel := context.WithTimeout(context.Background(), timeoutFor(len(s.pending)))
	defer cancel()
	clear(s.pending)
	clear(s.pendingLow)
	for _, series := range order {
		if err := s.ss.AddSeries(ctx, series, add[series]); err != nil {
			s.log.Error("statement lines not stored yet; kept in memory", "series", series, "lines", len(add[series]), "err", err)
			s.pending[series] = add[series]
			s.pendingLow[series] = low[series]
		}
	}
}

// Durable is the highest sequence number a snapshot may cover as far as
// the lines observed so far go: math.MaxUint64 when every one is stored,
// else one less than the lowest sequence number among the lines that
// failed to store and wait in memory for the next write. A snapshot past
// it would trim commands whose lines only this process holds.
func (s *Statements) Durable() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := uint64(math.MaxUint64)
	for _, l := range s.pendingLow {
		d = min(d, l-1)
	}
	return d
}

// Lines returns up to limit of account's lines with from <= At < to,
// after the position after when it is not nil, oldest first.
func (s *Statements) Lines(ctx context.Context, account engine.ID, from, to engine.Time, after *store.SeriesPos, limit int) ([]Line, error) {
	series := statementSeries(account)
	es, err := s.ss.SeriesRange(ctx, series, int64(from), int64(to), after, limit)
	if err != nil {
		return nil, fmt.Errorf("statement of %s: %w", account, err)
	}
	s.mu.Lock()
	for _, e := range s.pending[series] {
		if e.Score >= int64(from) && e.Score < int64(to) && (after == nil || cmp.Or(cmp.Compare(e.Score, after.Score), cmp.Compare(e.Key, after.Key)) > 0) {
			es = append(es, e)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(es, func(a, b store.SeriesEntry) int {
		return cmp.Or(cmp.Compare(a.Score, b.Score), cmp.Compare(a.Key, b.Key))
	})
	es = slices.CompactFunc(es, func(a, b store.SeriesEntry) bool { return a.Score == b.Score && a.Key == b.Key })
	if len(es) > limit {
		es = es[:limit]
	}
	out := make([]Line, len(es))
	for i, e := range es {
		var d lineData
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return nil, fmt.Errorf("statement of %s: line %s: %w", account, e.Key, err)
		}
		out[i] = Line{At: engine.Time(e.Score), Kind: d.Kind, Amount: d.Amount, BalanceAfter: d.Balance, Pos: store.SeriesPos{Score: e.Score, Key: e.Key}}
		if d.Ref != "" {
			if out[i].Ref, err = engine.ParseID(d.Ref); err != nil {
				return nil, fmt.Errorf("statement of %s: line %s: ref: %w", account, e.Key, err)
			}
		}
	}
	return out, nil
}

// LastBalance returns the BalanceAfter of account's newest line (0 when
// it has none): with the engine's unposted accrual it must make the
// account's balance, which is how a reader checks that every line the
// engine has posted is stored.
func (s *Statements) LastBalance(ctx context.Context, account engine.ID) (engine.Money, error) {
	series := statementSeries(account)
	es, err := s.ss.SeriesNewest(ctx, series, 1)
	if err != nil {
		return 0, fmt.Errorf("statement of %s: %w", account, err)
	}
	s.mu.Lock()
	for _, e := range s.pending[series] {
		if len(es) == 0 || e.Score > es[0].Score || e.Score == es[0].Score && e.Key > es[0].Key {
			es = []store.SeriesEntry{e}
		}
	}
	s.mu.Unlock()
	if len(es) == 0 {
		return 0, nil
	}
	var d lineData
	if err := json.Unmarshal(es[0].Data, &d); err != nil {
		return 0, fmt.Errorf("statement of %s: line %s: %w", account, es[0].Key, err)
	}
	return d.Balance, nil
}

// FormatPos and ParsePos turn a position into cursor text and back.
func FormatPos(p store.SeriesPos) string { return strconv.FormatInt(p.Score, 10) + "." + p.Key }

// ParsePos parses FormatPos's text; ok false when it is not one.
func ParsePos(s string) (store.SeriesPos, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			score, err := strconv.ParseInt(s[:i], 10, 64)
			p := store.SeriesPos{Score: score, Key: s[i+1:]}
			return p, err == nil && ValidPos(p)
		}
	}
	return store.SeriesPos{}, false
}
