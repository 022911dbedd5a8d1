package client_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/gpux/gpux/client"
)

func TestPriceJSON(t *testing.T) {
	capped := client.ReferencePeg("aws", "0.40")
	capped.Peg.Cap, capped.Peg.Floor = "3.00", "1.00"
	tests := []struct {
		name  string
		price client.Price
		json  string
	}{
		{"fixed", client.FixedPrice("2.39"), `"2.39"`},
		{"reference peg", client.ReferencePeg("gcp", "0.25"), `{"peg":"reference","provider":"gcp","discount":"0.25"}`},
		{"reference peg with cap and floor", capped, `{"peg":"reference","provider":"aws","discount":"0.40","cap":"3.00","floor":"1.00"}`},
		{"spot peg", client.SpotPeg("-0.10"), `{"peg":"spot","offset":"-0.10"}`},
		{"unset", client.Price{}, `null`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.price)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := string(b), tt.json; got != want {
				t.Errorf("marshal: got %s, want %s", got, want)
			}
			var back client.Price
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, tt.price) {
				t.Errorf("round trip: got %#v, want %#v", back, tt.price)
			}
		})
	}
}

func TestPriceUnmarshalLenient(t *testing.T) {
	tests := []struct {
		name string
		json string
		want client.Price
	}{
		{"number", `2.5`, client.FixedPrice("2.5")},
		{"unknown peg field", `{"peg":"spot","offset":"0.05","resolved":"2.10"}`, client.SpotPeg("0.05")},
		{"spaces", ` "1.00" `, client.FixedPrice("1.00")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got client.Price
			if err := json.Unmarshal([]byte(tt.json), &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestPriceErrors(t *testing.T) {
	if _, err := json.Marshal(client.Price{Fixed: "1", Peg: &client.Peg{Kind: client.PegSpot}}); err == nil {
		t.Error("marshal with Fixed and Peg: got nil error, want one")
	}
	var p client.Price
	for _, in := range []string{`true`, `[]`} {
		if err := json.Unmarshal([]byte(in), &p); err == nil {
			t.Errorf("unmarshal %s: got nil error, want one", in)
		}
	}
}

func TestPriceInStruct(t *testing.T) {
	req := client.BidRequest{Type: client.BidSpot, Market: "m", Quantity: 1, LimitPrice: client.SpotPeg("0.10")}
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"type":"spot","market":"m","quantity":1,"limit_price":{"peg":"spot","offset":"0.10"}}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
