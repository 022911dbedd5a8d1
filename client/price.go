package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Peg kinds.
const (
	PegReference = "reference" // reference on-demand rate × (1 − Discount)
	PegSpot      = "spot"      // the market's spot price + Offset
)

// Price is a limit or reserve price: either a fixed decimal (Fixed, e.g.
// "2.39") or a peg (Peg), never both. In JSON a fixed price is a plain
// string and a peg an object:
//
//	"2.39"
//	{"peg":"reference","provider":"aws","discount":"0.40","cap":"3.00","floor":"1.00"}
//	{"peg":"spot","offset":"-0.10"}
//
// A listing's reserve_price and a reserved bid's limit_price take either
// peg kind; spot_price_floor takes a reference peg only (a spot peg there is
// rejected with code "invalid_peg").
type Price struct {
	Fixed string
	Peg   *Peg
}

// Peg prices an order relative to a moving rate. A reference peg resolves
// to the provider's on-demand rate × (1 − Discount); a spot peg to the
// market's spot price + Offset. Either is clamped to [Floor, Cap] where
// those are set. All numbers are decimal strings.
type Peg struct {
	Kind     string `json:"peg"`                // PegReference or PegSpot
	Provider string `json:"provider,omitempty"` // reference only, e.g. "aws"
	Discount string `json:"discount,omitempty"` // reference only, a fraction
	Offset   string `json:"offset,omitempty"`   // spot only, may be negative
	Cap      string `json:"cap,omitempty"`
	Floor    string `json:"floor,omitempty"`
}

// FixedPrice returns the fixed price p, e.g. FixedPrice("2.39").
func FixedPrice(p string) Price { return Price{Fixed: p} }

// ReferencePeg returns a price pegged to provider's on-demand rate less
// discount (a fraction: "0.40" is 40 % below). Set Peg.Cap/Peg.Floor to
// clamp it.
func ReferencePeg(provider, discount string) Price {
	return Price{Peg: &Peg{Kind: PegReference, Provider: provider, Discount: discount}}
}

// SpotPeg returns a price pegged to the market's spot price plus offset
// (which may be negative, e.g. "-0.10").
func SpotPeg(offset string) Price {
	return Price{Peg: &Peg{Kind: PegSpot, Offset: offset}}
}

// IsZero reports whether p is unset; such a field is left out of a request
// when tagged omitzero.
func (p Price) IsZero() bool { return p.Fixed == "" && p.Peg == nil }

// String returns the fixed price or a short form of the peg.
func (p Price) String() string {
	if p.Peg == nil {
		return p.Fixed
	}
	b, _ := json.Marshal(p.Peg)
	return string(b)
}

// MarshalJSON encodes a fixed price as a JSON string and a peg as an
// object; an unset price is null. Setting both is an error.
func (p Price) MarshalJSON() ([]byte, error) {
	switch {
	case p.Peg != nil && p.Fixed != "":
		return nil, errors.New("gpux: price has both Fixed and Peg set")
	case p.Peg != nil:
		return json.Marshal(p.Peg)
	case p.Fixed != "":
		return json.Marshal(p.Fixed)
	default:
		return []byte("null"), nil
	}
}

// UnmarshalJSON accepts a string (or, leniently, a JSON number) as a fixed
// price, an object as a peg, and null as unset. Unknown peg fields are
// ignored.
func (p *Price) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	*p = Price{}
	if len(b) == 0 || bytes.Equal(b, []byte("null")) {
		return nil
	}
	switch b[0] {
	case '"':
		return json.Unmarshal(b, &p.Fixed)
	case '{':
		var peg Peg
		if err := json.Unmarshal(b, &peg); err != nil {
			return err
		}
		p.Peg = &peg
		return nil
	default:
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("gpux: price must be a decimal string or a peg object, got %s", b)
		}
		p.Fixed = n.String()
		return nil
	}
}
