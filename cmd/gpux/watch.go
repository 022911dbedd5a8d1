package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/gpux/gpux/client"
)

func (a *app) watch(ctx context.Context, g *globals, args []string) error {
	f := a.flags(g, "watch", "CHANNEL...", "Follow feed channels live until interrupted: prices, book:MARKET,\n"+
		"trades:MARKET, user (needs --api-key). A channel that skips a sequence\n"+
		"number is resubscribed for a fresh snapshot, and a lost connection is\n"+
		"dialled again (5 attempts), both noted on stderr. With --json every\n"+
		"message is printed as one JSON line.")
	count := f.Int("count", 0, "stop after this many snapshots and updates (0 = never)")
	chans, err := f.parse(args, 1, -1)
	if err != nil {
		return err
	}
	dialCtx, cancel := context.WithTimeout(ctx, g.timeout)
	s, err := g.client().Stream(dialCtx, chans, client.WithRedial(5))
	cancel()
	if err != nil {
		return err
	}
	defer s.Close()
	enc := json.NewEncoder(a.stdout)
	seen := 0
	for *count == 0 || seen < *count {
		m, err := s.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil // interrupted: a normal end
			}
			return fmt.Errorf("feed ended: %w", err)
		}
		switch m.Type {
		case client.MsgGap:
			fmt.Fprintf(a.stderr, "gpux: %s: %s\n", m.Channel, m.Detail)
		case client.MsgReconnect:
			fmt.Fprintf(a.stderr, "gpux: connection lost (%s); connected again, fresh snapshots follow\n", m.Detail)
		case client.MsgError:
			if g.json {
				printJSON(a.stdout, enc, m)
			}
			return cliError{fmt.Sprintf("feed error %s: %s", m.Code, m.Detail)}
		case client.MsgSnapshot, client.MsgUpdate:
			seen++
		}
		if g.json {
			if err := printJSON(a.stdout, enc, m); err != nil {
				return err
			}
			continue
		}
		if line := describe(m); line != "" {
			if _, err := io.WriteString(a.stdout, line+"\n"); err != nil {
				return err
			}
		}
	}
	return nil
}

// printJSON writes m as one JSON line: the server's own bytes when it
// sent it (compacted to one line, nothing dropped or renamed; a snapshot
// at seq 0 keeps "seq":0), else the client's encoding of the message it
// made itself (a gap or a reconnect).
func printJSON(w io.Writer, enc *json.Encoder, m client.Message) error {
	if m.Raw == nil {
		return enc.Encode(m)
	}
	var b bytes.Buffer
	if err := json.Compact(&b, m.Raw); err != nil {
		return fmt.Errorf("feed message: %w", err)
	}
	b.WriteByte('\n')
	_, err := w.Write(b.Bytes())
	return err
}

// describe renders one feed message as a line for a person; "" to skip
// (heartbeats, auth answers and types this version does not know).
func describe(m client.Message) string {
	head := fmt.Sprintf("%s %-24s %-8s #%d ", m.TS.UTC().Format("15:04:05.000"), m.Channel, m.Type, m.Seq)
	switch {
	case m.Type != client.MsgSnapshot && m.Type != client.MsgUpdate:
		return ""
	case m.Channel == "prices":
		return head + describePrices(m)
	case strings.HasPrefix(m.Channel, "book:"):
		var b client.Book
		if err := m.Decode(&b); err != nil {
			return head + string(m.Data)
		}
		s := b.Spot
		bid, ask := "-", "-"
		if len(b.Bids) > 0 {
			bid = fmt.Sprintf("%s×%d", b.Bids[0].Price, b.Bids[0].Quantity)
		}
		if len(b.Asks) > 0 {
			ask = fmt.Sprintf("%s×%d", b.Asks[0].Price, b.Asks[0].Quantity)
		}
		return head + fmt.Sprintf("spot %s ask %s supply %d allocated %d waiting %d | best bid %s best ask %s",
			opt(s.Price), opt(s.Ask), s.Supply, s.Allocated, s.Waiting, bid, ask)
	case strings.HasPrefix(m.Channel, "trades:"):
		if m.Type == client.MsgSnapshot {
			var ts []client.Trade
			if err := m.Decode(&ts); err != nil {
				return head + string(m.Data)
			}
			if len(ts) == 0 {
				return head + "no trades yet"
			}
			return head + fmt.Sprintf("%d recent trades, last %s", len(ts), trade(ts[0]))
		}
		var t client.Trade
		if err := m.Decode(&t); err != nil {
			return head + string(m.Data)
		}
		return head + trade(t)
	case m.Channel == "user" && m.Type == client.MsgUpdate:
		var u client.UserEvent
		if err := m.Decode(&u); err != nil {
			return head + string(m.Data)
		}
		return head + userEvent(u)
	case m.Channel == "user":
		var acc client.Account
		if err := m.Decode(&acc); err != nil {
			return head + string(m.Data)
		}
		return head + fmt.Sprintf("%s balance %s held %s available %s", acc.Name, acc.Balance, acc.Held, acc.Available)
	}
	return head + string(m.Data)
}

func trade(t client.Trade) string {
	return fmt.Sprintf("%d GPUs @ %s for %s → %s", t.Quantity, t.Price, when(t.Start), when(t.End))
}

// describePrices summarises a prices message: the markets it holds with a
// price (a snapshot has them all; an update may hold only those changed,
// either as a list or as {"markets": [...]}).
func describePrices(m client.Message) string {
	var rows []client.PriceRow
	if err := m.Decode(&rows); err != nil {
		var wrapped struct {
			Markets []client.PriceRow `json:"markets"`
		}
		if err := m.Decode(&wrapped); err != nil {
			return string(m.Data)
		}
		rows = wrapped.Markets
	}
	var parts []string
	for _, r := range rows {
		if r.SpotPrice == nil && r.LastTradePrice == nil {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s spot %s last %s", r.Market, opt(r.SpotPrice), opt(r.LastTradePrice)))
	}
	if len(parts) == 0 {
		return fmt.Sprintf("%d markets, none priced", len(rows))
	}
	return strings.Join(parts, "; ")
}

func userEvent(u client.UserEvent) string {
	var b strings.Builder
	b.WriteString(u.Event)
	if u.Market != "" {
		b.WriteString(" " + u.Market)
	}
	if u.BidID != "" {
		b.WriteString(" bid " + u.BidID)
	}
	if u.ListingID != "" {
		b.WriteString(" listing " + u.ListingID)
	}
	if u.Fill != nil {
		b.WriteString(": " + trade(*u.Fill))
	}
	if u.Allocated != nil {
		fmt.Fprintf(&b, " allocated %d", *u.Allocated)
	}
	if u.Price != nil {
		b.WriteString(" price " + *u.Price)
	}
	if u.Balance != nil {
		fmt.Fprintf(&b, " balance %s held %s available %s", *u.Balance, opt(u.Held), opt(u.Available))
	}
	if u.Reason != "" {
		b.WriteString(" (" + u.Reason + ")")
	}
	return b.String()
}

// sumAmounts adds statement amounts exactly.
func sumAmounts(lines []client.StatementLine) (string, error) {
	sum := decimal.Zero
	for _, l := range lines {
		d, err := decimal.NewFromString(l.Amount)
		if err != nil {
			return "", errors.New("amount " + l.Amount + " is not a decimal")
		}
		sum = sum.Add(d)
	}
	return sum.String(), nil
}
