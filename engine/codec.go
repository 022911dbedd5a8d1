package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// wbuf and rbuf are a small varint codec: compact, fast and byte-for-byte
// deterministic, which the snapshot hash and the journal rely on.
type wbuf struct{ b []byte }

func (w *wbuf) u(v uint64)   { w.b = binary.AppendUvarint(w.b, v) }
func (w *wbuf) i(v int64)    { w.b = binary.AppendVarint(w.b, v) }
func (w *wbuf) id(v ID)      { w.b = append(w.b, v[:]...) }
func (w *wbuf) h(v [32]byte) { w.b = append(w.b, v[:]...) }
func (w *wbuf) s(v string)   { w.u(uint64(len(v))); w.b = append(w.b, v...) }
func (w *wbuf) bool(v bool)  { w.b = append(w.b, boolByte(v)) }
func (w *wbuf) peg(p Peg) {
	w.u(uint64(p.Kind))
	w.s(p.Provider)
	w.i(p.Discount)
	w.i(int64(p.Offset))
	w.i(int64(p.Cap))
	w.i(int64(p.Floor))
}
func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

var errShort = errors.New("truncated")

type rbuf struct {
	b   []byte
	err error
}

func (r *rbuf) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.b = nil
}

func (r *rbuf) u() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(errShort)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *rbuf) i() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(errShort)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *rbuf) raw(n int) []byte {
	if len(r.b) < n {
		r.fail(errShort)
		return make([]byte, n)
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *rbuf) id() (v ID)      { copy(v[:], r.raw(16)); return }
func (r *rbuf) h() (v [32]byte) { copy(v[:], r.raw(32)); return }
func (r *rbuf) bool() bool      { return r.raw(1)[0] == 1 }

func (r *rbuf) s() string {
	n := r.u()
	if n > uint64(len(r.b)) {
		r.fail(errShort)
		return ""
	}
	return string(r.raw(int(n)))
}

func (r *rbuf) n(limit int) int {
	v := r.u()
	if v > uint64(limit) || v > uint64(len(r.b))+1 {
		r.fail(fmt.Errorf("count %d out of range", v))
		return 0
	}
	return int(v)
}

func (r *rbuf) peg() Peg {
	return Peg{Kind: PegKind(r.u()), Provider: r.s(), Discount: r.i(), Offset: Price(r.i()), Cap: Price(r.i()), Floor: Price(r.i())}
}

// commandVersion 2 adds DurationHours to place commands; version 1
// journals still decode (as DurationHours 0).
const commandVersion = 3 // 2: duration_hours; 3: the reference table with its rates

// AppendCommand appends c's encoding to dst. The encoding is versioned and
// deterministic; DecodeCommand reverses it.
func AppendCommand(dst []byte, c *Command) []byte {
	w := wbuf{dst}
	w.u(commandVersion)
	w.u(c.Seq)
	w.i(int64(c.Time))
	w.u(uint64(c.Kind))
	w.id(c.Actor)
	w.id(c.Target)
	switch c.Kind {
	case CmdCreateAccount:
		w.s(c.Name)
		w.u(uint64(c.Roles))
		w.h(c.KeyHash)
		w.s(c.IdemKey)
		w.h(c.IdemHash)
	case CmdDeposit, CmdWithdraw:
		w.i(int64(c.Amount))
		w.s(c.IdemKey)
		w.h(c.IdemHash)
	case CmdPlaceListing, CmdPlaceBid:
		w.s(c.Market)
		w.u(uint64(c.BidType))
		w.i(c.Quantity)
		w.i(c.MinQuantity)
		w.i(int64(c.Start))
		w.i(int64(c.End))
		w.i(int64(c.ExpiresAt))
		w.i(int64(c.Price))
		w.peg(c.PricePeg)
		w.i(int64(c.SpotFloor))
		w.peg(c.SpotFloorPeg)
		w.s(c.ClientOrderID)
		w.s(c.IdemKey)
		w.h(c.IdemHash)
		w.i(c.DurationHours)
	case CmdSetReferenceRates:
		w.u(uint64(len(c.Rates)))
		for _, r := range c.Rates {
			w.s(r.GPU)
			w.s(r.Provider)
			w.i(int64(r.Price))
		}
		w.s(string(c.RatesTable))
	}
	return w.b
}

// DecodeCommand decodes one command from the front of b and returns the
// rest of b.
func DecodeCommand(b []byte) (Command, []byte, error) {
	r := rbuf{b: b}
	var c Command
	v := r.u()
	if (v < 1 || v > commandVersion) && r.err == nil {
		return c, nil, fmt.Errorf("decode command: version %d unknown", v)
	}
	c.Seq = r.u()
	c.Time = Time(r.i())
	c.Kind = Kind(r.u())
	c.Actor = r.id()
	c.Target = r.id()
	switch c.Kind {
	case CmdCreateAccount:
		c.Name = r.s()
		c.Roles = Role(r.u())
		c.KeyHash = r.h()
		c.IdemKey = r.s()
		c.IdemHash = r.h()
	case CmdDeposit, CmdWithdraw:
		c.Amount = Money(r.i())
		c.IdemKey = r.s()
		c.IdemHash = r.h()
	case CmdPlaceListing, CmdPlaceBid:
		c.Market = r.s()
		c.BidType = BidType(r.u())
		c.Quantity = r.i()
		c.MinQuantity = r.i()
		c.Start = Time(r.i())
		c.End = Time(r.i())
		c.ExpiresAt = Time(r.i())
		c.Price = Price(r.i())
		c.PricePeg = r.peg()
		c.SpotFloor = Price(r.i())
		c.SpotFloorPeg = r.peg()
		c.ClientOrderID = r.s()
		c.IdemKey = r.s()
		c.IdemHash = r.h()
		if v >= 2 {
			c.DurationHours = r.i()
		}
	case CmdSetReferenceRates:
		n := r.n(1 << 16)
		for i := 0; i < n && r.err == nil; i++ {
			c.Rates = append(c.Rates, ReferenceRate{GPU: r.s(), Provider: r.s(), Price: Price(r.i())})
		}
		if v >= 3 {
			if t := r.s(); t != "" {
				c.RatesTable = []byte(t)
			}
		}
	}
	if r.err != nil {
		return Command{}, nil, fmt.Errorf("decode command: %w", r.err)
	}
	return c, r.b, nil
}
