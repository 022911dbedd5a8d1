package api_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gpux/gpux/api"
	"github.com/gpux/gpux/client"
)

// state is everything a rejected request must leave unchanged.
type state struct {
	Buyer, Owner       client.Account
	Bids               []client.Bid
	Listings           []client.Listing
	BookH100, BookH200 client.Book
}

func snapshot(t *testing.T, e *env, buyer, owner party) state {
	t.Helper()
	var s state
	var err error
	if s.Buyer, err = buyer.Account(bg); err != nil {
		t.Fatal(err)
	}
	if s.Owner, err = owner.Account(bg); err != nil {
		t.Fatal(err)
	}
	bids, err := buyer.Bids(bg, client.ListQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	ls, err := owner.Listings(bg, client.ListQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	s.Bids, s.Listings = bids.Items, ls.Items
	s.BookH100, _ = e.anon.Book(bg, "h100-sxm.us-east")
	s.BookH200, _ = e.anon.Book(bg, "h200.us-east")
	return s
}

func TestValidation(t *testing.T) {
	e := newEnv(t, nil)
	owner := e.account("owner", "", client.RoleOwner)
	buyer := e.account("buyer", "100.00", client.RoleBuyer)
	if _, err := owner.PlaceListing(bg, client.ListingRequest{Market: "h100-sxm.us-east", Quantity: 4, Start: hour(0), End: hour(48), ReservePrice: client.FixedPrice("9.00"), SpotPriceFloor: client.FixedPrice("5.00")}); err != nil {
		t.Fatal(err)
	}
	if _, err := buyer.PlaceBid(bg, client.BidRequest{Type: client.BidReserved, Market: "h100-sxm.us-east", Quantity: 1, Start: hour(3), End: hour(4), LimitPrice: client.FixedPrice("1.00")}); err != nil {
		t.Fatal(err)
	}

	ts := func(h int) string { return hour(h).Format("2006-01-02T15:04:05Z") }
	bid := func(extra string) string {
		return `{"type":"reserved","market":"h100-sxm.us-east","quantity":1,"start":"` + ts(2) + `","end":"` + ts(4) + `","limit_price":"1.00"` + extra + `}`
	}
	bidWith := func(field, value string) string {
		m := map[string]any{}
		_ = json.Unmarshal([]byte(bid("")), &m)
		if value == "" {
			delete(m, field)
		} else {
			m[field] = json.RawMessage(value)
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	spot := func(extra string) string {
		return `{"type":"spot","market":"h100-sxm.us-east","quantity":1,"limit_price":"1.00"` + extra + `}`
	}
	listing := func(field, value string) string {
		m := map[string]any{"market": "h100-sxm.us-east", "quantity": 1, "start": ts(0), "end": ts(5), "reserve_price": "2.00"}
		if value == "" {
			delete(m, field)
		} else {
			m[field] = json.RawMessage(value)
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	q := func(s string) string { return `"` + s + `"` }

	type row struct {
		name, method, path, who, body string
		hdr                           []string
		status                        int
		code, field                   string
		engine                        bool // only the engine can tell: the command is journaled (and rejected)
	}
	rows := []row{
		// Bodies.
		{name: "malformed", path: "/v1/bids", body: `{"type":`, status: 400, code: "malformed_json", field: ""},
		{name: "empty body", path: "/v1/bids", body: ``, status: 400, code: "malformed_json", field: ""},
		{name: "trailing data", path: "/v1/bids", body: bid("") + `{}`, status: 400, code: "malformed_json", field: ""},
		{name: "not an object", path: "/v1/bids", body: `[1]`, status: 422, code: "invalid_value", field: ""},
		{name: "unknown field", path: "/v1/bids", body: bid(`,"colour":"red"`), status: 422, code: "unknown_field", field: "colour"},
		{name: "duplicate key", path: "/v1/bids", body: bid(`,"quantity":5`), status: 400, code: "duplicate_key", field: "quantity"},
		{name: "duplicate key other case", path: "/v1/bids", body: bid(`,"QUANTITY":5`), status: 400, code: "duplicate_key", field: "QUANTITY"},
		{name: "duplicate key escaped", path: "/v1/bids", body: bid(`,"\u0071uantity":5`), status: 400, code: "duplicate_key", field: "quantity"},
		{name: "duplicate key in a peg", path: "/v1/bids", body: bidWith("limit_price", `{"peg":"spot","offset":"0.1","offset":"-5"}`), status: 400, code: "duplicate_key", field: "offset"},
		{name: "duplicate listing key", path: "/v1/listings", who: "owner", body: listing("quantity", "1")[:len(listing("quantity", "1"))-1] + `,"reserve_price":"0.01"}`, status: 400, code: "duplicate_key", field: "reserve_price"},
		// Bid fields.
		{name: "missing type", path: "/v1/bids", body: bidWith("type", ""), status: 422, code: "missing_field", field: "type"},
		{name: "unknown type", path: "/v1/bids", body: bidWith("type", q("limit")), status: 422, code: "invalid_type", field: "type"},
		{name: "missing market", path: "/v1/bids", body: bidWith("market", ""), status: 422, code: "missing_field", field: "market"},
		{name: "unknown market", path: "/v1/bids", body: bidWith("market", q("h100-sxm.mars")), status: 422, code: "unknown_market", field: "market"},
		{name: "zero quantity", path: "/v1/bids", body: bidWith("quantity", "0"), status: 422, code: "invalid_quantity", field: "quantity"},
		{name: "huge quantity", path: "/v1/bids", body: bidWith("quantity", "100001"), status: 422, code: "invalid_quantity", field: "quantity"},
		{name: "fractional quantity", path: "/v1/bids", body: bidWith("quantity", "1.5"), status: 422, code: "invalid_quantity", field: "quantity"},
		{name: "string quantity", path: "/v1/bids", body: bidWith("quantity", q("2")), status: 422, code: "invalid_quantity", field: "quantity"},
		{name: "missing limit", path: "/v1/bids", body: bidWith("limit_price", ""), status: 422, code: "missing_field", field: "limit_price"},
		{name: "number price", path: "/v1/bids", body: bidWith("limit_price", "2.5"), status: 422, code: "invalid_price", field: "limit_price"},
		{name: "five places", path: "/v1/bids", body: bidWith("limit_price", q("2.12345")), status: 422, code: "invalid_price", field: "limit_price"},
		{name: "negative price", path: "/v1/bids", body: bidWith("limit_price", q("-1")), status: 422, code: "invalid_price", field: "limit_price"},
		{name: "zero price", path: "/v1/bids", body: bidWith("limit_price", q("0.00")), status: 422, code: "invalid_price", field: "limit_price"},
		{name: "exponent price", path: "/v1/bids", body: bidWith("limit_price", q("1e3")), status: 422, code: "invalid_price", field: "limit_price"},
		{name: "insane price", path: "/v1/bids", body: bidWith("limit_price", q("100000.0001")), status: 422, code: "invalid_price", field: "limit_price"},
		{name: "bad time", path: "/v1/bids", body: bidWith("start", q("tomorrow")), status: 422, code: "invalid_time", field: "start"},
		{name: "not whole hour", path: "/v1/bids", body: bidWith("start", q(hour(2).Add(30*60e9).Format("2006-01-02T15:04:05Z"))), status: 422, code: "invalid_window", field: "start"},
		{name: "start now", path: "/v1/bids", body: bidWith("start", q(ts(0))), status: 422, code: "invalid_window", field: "start"},
		{name: "start past", path: "/v1/bids", body: bidWith("start", q(ts(-5))), status: 422, code: "invalid_window", field: "start"},
		{name: "end before start", path: "/v1/bids", body: bidWith("end", q(ts(2))), status: 422, code: "invalid_window", field: "end"},
		{name: "end too far", path: "/v1/bids", body: bidWith("end", q(ts(367*24))), status: 422, code: "invalid_window", field: "end"},
		{name: "missing end", path: "/v1/bids", body: bidWith("end", ""), status: 422, code: "missing_field", field: "end"},
		{name: "min above quantity", path: "/v1/bids", body: bidWith("min_quantity", "2"), status: 422, code: "invalid_quantity", field: "min_quantity"},
		{name: "expired", path: "/v1/bids", body: bidWith("expires_at", q(ts(-1))), status: 422, code: "invalid_window", field: "expires_at"},
		{name: "long client id", path: "/v1/bids", body: bidWith("client_order_id", q(strings.Repeat("c", 65))), status: 422, code: "invalid_client_order_id", field: "client_order_id"},
		{name: "spot with window", path: "/v1/bids", body: spot(`,"start":"` + ts(2) + `"`), status: 422, code: "unknown_field", field: "start"},
		{name: "spot pegged to spot", path: "/v1/bids", body: `{"type":"spot","market":"h100-sxm.us-east","quantity":1,"limit_price":{"peg":"spot","offset":"0.10"}}`, status: 422, code: "invalid_peg", field: "limit_price"},
		{name: "peg kind", path: "/v1/bids", body: bidWith("limit_price", `{"peg":"moon"}`), status: 422, code: "invalid_peg", field: "limit_price.peg"},
		{name: "peg provider", path: "/v1/bids", body: bidWith("limit_price", `{"peg":"reference","discount":"0.4"}`), status: 422, code: "invalid_peg", field: "limit_price.provider"},
		{name: "peg discount", path: "/v1/bids", body: bidWith("limit_price", `{"peg":"reference","provider":"aws","discount":"1.5"}`), status: 422, code: "invalid_peg", field: "limit_price.discount"},
		{name: "peg unknown field", path: "/v1/bids", body: bidWith("limit_price", `{"peg":"reference","provider":"aws","discount":"0.4","x":1}`), status: 422, code: "unknown_field", field: "limit_price.x"},
		{name: "peg foreign field", path: "/v1/bids", body: bidWith("limit_price", `{"peg":"reference","provider":"aws","discount":"0.4","offset":"1"}`), status: 422, code: "unknown_field", field: "limit_price.offset"},
		{name: "peg floor above cap", path: "/v1/bids", body: bidWith("limit_price", `{"peg":"spot","offset":"0.1","cap":"1.00","floor":"2.00"}`), status: 422, code: "invalid_peg", field: "limit_price.floor"},
		{name: "peg number", path: "/v1/bids", body: bidWith("limit_price", `{"peg":"spot","offset":0.1}`), status: 422, code: "invalid_peg", field: "limit_price.offset"},
		{name: "insufficient funds", path: "/v1/bids", body: bidWith("quantity", "50"), status: 422, code: "insufficient_funds", field: "-", engine: true},
		{name: "unknown provider", path: "/v1/bids", body: bidWith("limit_price", `{"peg":"reference","provider":"nimbus","discount":"0.4"}`), status: 422, code: "invalid_peg", field: "limit_price", engine: true},
		{name: "long idempotency key", path: "/v1/bids", body: bid(""), hdr: []string{"Idempotency-Key", strings.Repeat("k", 256)}, status: 422, code: "invalid_idempotency_key", field: "Idempotency-Key"},
		// Listings.
		{name: "listing in the past", path: "/v1/listings", who: "owner", body: listing("start", q(ts(-1))), status: 422, code: "invalid_window", field: "start"},
		{name: "listing no reserve", path: "/v1/listings", who: "owner", body: listing("reserve_price", ""), status: 422, code: "missing_field", field: "reserve_price"},
		{name: "listing spot-pegged floor", path: "/v1/listings", who: "owner", body: listing("spot_price_floor", `{"peg":"spot","offset":"0"}`), status: 422, code: "invalid_peg", field: "spot_price_floor"},
		{name: "listing bad floor", path: "/v1/listings", who: "owner", body: listing("spot_price_floor", q("1.5.0")), status: 422, code: "invalid_price", field: "spot_price_floor"},
		{name: "listing whole hours", path: "/v1/listings", who: "owner", body: listing("end", q(hour(5).Add(1e9).Format("2006-01-02T15:04:05Z"))), status: 422, code: "invalid_window", field: "end"},
		{name: "listing unknown field", path: "/v1/listings", who: "owner", body: listing("type", q("spot")), status: 422, code: "unknown_field", field: "type"},
		// Accounts and money.
		{name: "admin role", path: "/v1/accounts", who: "admin", body: `{"name":"x","roles":["admin"]}`, status: 422, code: "invalid_role", field: "roles"},
		{name: "no roles", path: "/v1/accounts", who: "admin", body: `{"name":"x","roles":[]}`, status: 422, code: "invalid_role", field: "roles"},
		{name: "empty name", path: "/v1/accounts", who: "admin", body: `{"name":"","roles":["buyer"]}`, status: 422, code: "invalid_name", field: "name"},
		{name: "long name", path: "/v1/accounts", who: "admin", body: `{"name":"` + strings.Repeat("n", 101) + `","roles":["buyer"]}`, status: 422, code: "invalid_name", field: "name"},
		{name: "name with NUL", path: "/v1/accounts", who: "admin", body: `{"name":"ac\u0000me","roles":["buyer"]}`, status: 422, code: "invalid_name", field: "name"},
		{name: "name with a control char", path: "/v1/accounts", who: "admin", body: `{"name":"acme\u0007","roles":["buyer"]}`, status: 422, code: "invalid_name", field: "name"},
		{name: "name with a C1 control", path: "/v1/accounts", who: "admin", body: "{\"name\":\"acme\u0085x\",\"roles\":[\"buyer\"]}", status: 422, code: "invalid_name", field: "name"},
		{name: "name with a newline", path: "/v1/accounts", who: "admin", body: `{"name":"acme\nroot","roles":["buyer"]}`, status: 422, code: "invalid_name", field: "name"},
		{name: "name with U+202E", path: "/v1/accounts", who: "admin", body: "{\"name\":\"acme\u202egnp.exe\",\"roles\":[\"buyer\"]}", status: 422, code: "invalid_name", field: "name"},
		{name: "name with U+202A escaped", path: "/v1/accounts", who: "admin", body: `{"name":"acme\u202a","roles":["buyer"]}`, status: 422, code: "invalid_name", field: "name"},
		{name: "name with U+2067", path: "/v1/accounts", who: "admin", body: "{\"name\":\"\u2067acme\",\"roles\":[\"buyer\"]}", status: 422, code: "invalid_name", field: "name"},
		{name: "name with invalid UTF-8", path: "/v1/accounts", who: "admin", body: "{\"name\":\"acme\xff\xfe\",\"roles\":[\"buyer\"]}", status: 422, code: "invalid_name", field: "name"},
		{name: "name with a lone surrogate", path: "/v1/accounts", who: "admin", body: `{"name":"acme\ud800","roles":["buyer"]}`, status: 422, code: "invalid_name", field: "name"},
		{name: "duplicate name key", path: "/v1/accounts", who: "admin", body: `{"name":"a","roles":["buyer"],"name":"b"}`, status: 400, code: "duplicate_key", field: "name"},
		{name: "negative deposit", path: "/v1/accounts/" + buyer.id + "/deposits", who: "admin", body: `{"amount":"-5"}`, status: 422, code: "invalid_amount", field: "amount"},
		{name: "duplicate amount", path: "/v1/accounts/" + buyer.id + "/deposits", who: "admin", body: `{"amount":"1","amount":"1000"}`, status: 400, code: "duplicate_key", field: "amount"},
		{name: "zero deposit", path: "/v1/accounts/" + buyer.id + "/deposits", who: "admin", body: `{"amount":"0"}`, status: 422, code: "invalid_amount", field: "amount"},
		{name: "number deposit", path: "/v1/accounts/" + buyer.id + "/deposits", who: "admin", body: `{"amount":5}`, status: 422, code: "invalid_amount", field: "amount"},
		{name: "fine deposit", path: "/v1/accounts/" + buyer.id + "/deposits", who: "admin", body: `{"amount":"1.00001"}`, status: 422, code: "invalid_amount", field: "amount"},
		{name: "deposit nobody", path: "/v1/accounts/01a223c8-d8f4-7f00-b651-f8ec50cdcf2a/deposits", who: "admin", body: `{"amount":"5"}`, status: 404, code: "not_found", field: "id", engine: true},
		{name: "deposit bad id", path: "/v1/accounts/xyz/deposits", who: "admin", body: `{"amount":"5"}`, status: 404, code: "not_found", field: "id"},
		{name: "overdraw", path: "/v1/accounts/" + buyer.id + "/withdrawals", who: "admin", body: `{"amount":"5000"}`, status: 422, code: "insufficient_funds", field: "amount", engine: true},
		// Queries.
		{name: "limit zero", method: "GET", path: "/v1/bids?limit=0", status: 422, code: "invalid_limit", field: "limit"},
		{name: "limit huge", method: "GET", path: "/v1/bids?limit=1001", status: 422, code: "invalid_limit", field: "limit"},
		{name: "bad cursor", method: "GET", path: "/v1/bids?cursor=abc", status: 422, code: "invalid_cursor", field: "cursor"},
		{name: "bad status", method: "GET", path: "/v1/listings?status=sold", who: "owner", status: 422, code: "invalid_status", field: "status"},
		{name: "trades limit", method: "GET", path: "/v1/markets/h100-sxm.us-east/trades?limit=x", status: 422, code: "invalid_limit", field: "limit"},
		{name: "quote quantity", method: "GET", path: "/v1/markets/h100-sxm.us-east/quote?quantity=0&start=" + ts(1) + "&end=" + ts(2), status: 422, code: "invalid_quantity", field: "quantity"},
		{name: "quote no end", method: "GET", path: "/v1/markets/h100-sxm.us-east/quote?quantity=1&start=" + ts(1), status: 422, code: "missing_field", field: "end"},
		{name: "quote market", method: "GET", path: "/v1/markets/zz.zz/quote?quantity=1", status: 404, code: "not_found", field: "market"},
		{name: "history no interval", method: "GET", path: "/v1/markets/h100-sxm.us-east/history", status: 422, code: "missing_field", field: "interval"},
		{name: "cancel closed bid", method: "DELETE", path: "/v1/bids/00000000-0000-0000-0000-000000000000", status: 404, code: "not_found", field: "id", engine: true},
	}
	t.Run("too large", func(t *testing.T) {
		// The server answers from Content-Length alone and closes the
		// connection; send only the head so the answer cannot race with a
		// body the server will not read.
		before := snapshot(t, e, buyer, owner)
		conn, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /v1/bids HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", buyer.key, api.BodyLimit+1)
		_ = conn.SetReadDeadline(time.Now().Add(feedWait))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		wantProblem(t, resp.StatusCode, resp.Header, body, http.StatusRequestEntityTooLarge, "body_too_large", "")
		if after := snapshot(t, e, buyer, owner); !reflect.DeepEqual(before, after) {
			t.Errorf("state changed")
		}
	})

	keys := map[string]string{"": buyer.key, "buyer": buyer.key, "owner": owner.key, "admin": adminKey}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			method := r.method
			if method == "" {
				method = http.MethodPost
			}
			before := snapshot(t, e, buyer, owner)
			seq := e.seq.Status().LastSeq
			var body []byte
			if method != http.MethodGet {
				body = []byte(r.body)
			}
			status, hdr, resp := e.raw(method, r.path, keys[r.who], body, r.hdr...)
			wantProblem(t, status, hdr, resp, r.status, r.code, r.field)
			if !r.engine {
				if got := e.seq.Status().LastSeq; got != seq {
					t.Errorf("the request reached the engine: last seq %d → %d", seq, got)
				}
			}
			after := snapshot(t, e, buyer, owner)
			if !reflect.DeepEqual(before, after) {
				t.Errorf("state changed:\nbefore %s\nafter  %s", dump(before), dump(after))
			}
		})
	}
}

func dump(v any) string {
	b, _ := json.Marshal(v)
	return fmt.Sprintf("%.2000s", b)
}
