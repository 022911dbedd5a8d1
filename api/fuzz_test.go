package api

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gpux/gpux/engine"
)

func fuzzChecker() checker {
	markets := map[string]bool{}
	for _, m := range engine.Catalogue(engine.DefaultGPUs, engine.DefaultRegions) {
		markets[m.ID] = true
	}
	return checker{now: time.Date(2026, 11, 28, 20, 30, 0, 0, time.UTC), hasMarket: func(id string) bool { return markets[id] }}
}

// checkRejection asserts that a rejection is a well-formed 4xx problem.
func checkRejection(t *testing.T, p *Problem) {
	t.Helper()
	if p.Status < 400 || p.Status > 499 {
		t.Fatalf("rejection with status %d: %+v", p.Status, p)
	}
	if st, ok := statusOf[p.Code]; !ok || st != p.Status {
		t.Fatalf("code %q not in the status table (or status %d differs): %+v", p.Code, p.Status, p)
	}
	if p.Type == "" || p.Title == "" || p.Detail == "" {
		t.Fatalf("incomplete problem: %+v", p)
	}
}

var fuzzSeeds = []string{
	`{"type":"reserved","market":"h100-sxm.us-east","quantity":2,"start":"2026-11-29T00:00:00Z","end":"2026-11-29T04:00:00Z","limit_price":"2.50","min_quantity":1,"expires_at":"2026-11-28T23:00:00Z","client_order_id":"a"}`,
	`{"type":"spot","market":"h100-sxm.us-east","quantity":1,"limit_price":{"peg":"reference","provider":"aws","discount":"0.40","cap":"3.00"}}`,
	`{"type":"reserved","market":"h200.eu-west","quantity":1,"start":"2026-11-29T00:00:00Z","end":"2026-11-29T01:00:00Z","limit_price":{"peg":"spot","offset":"-0.10","floor":"1"}}`,
	`{"market":"l4.us-west","quantity":3,"start":"2026-11-28T20:00:00Z","end":"2026-12-01T00:00:00Z","reserve_price":"1.00","spot_price_floor":"0.5"}`,
	`{"market":"l4.us-west","quantity":3,"start":"2026-11-28T20:00:00Z","end":"2026-12-01T00:00:00Z","reserve_price":{"peg":"spot","offset":"0.05"},"spot_price_floor":{"peg":"reference","provider":"gcp","discount":"0.7"}}`,
	`{"type":`, `[]`, `null`, `""`, `{"quantity":1e400}`, `{"limit_price":{"peg":{}}}`, `{"start":"2026-11-29T00:00:00.5Z"}`,
}

func FuzzDecodeBid(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	k := fuzzChecker()
	f.Fuzz(func(t *testing.T, body []byte) {
		in, p := k.decodeBid(body)
		if p != nil {
			checkRejection(t, p)
			return
		}
		if _, dup := duplicateKey(body); dup {
			t.Fatalf("accepted a body with a duplicate key: %q", body)
		}
		c := in.command()
		if c.Quantity < 1 || c.Quantity > engine.MaxQuantity || (c.BidType != engine.Reserved && c.BidType != engine.Spot) {
			t.Fatalf("accepted an invalid bid: %+v", c)
		}
		if c.PricePeg.Kind == engine.PegNone && (c.Price <= 0 || c.Price > engine.MaxPrice) {
			t.Fatalf("accepted an invalid price: %+v", c)
		}
		if c.BidType == engine.Reserved && (c.Start%engine.Hour != 0 || c.End <= c.Start || c.MinQuantity > c.Quantity) {
			t.Fatalf("accepted an invalid window: %+v", c)
		}
		if c.BidType == engine.Spot && (c.Start != 0 || c.End != 0 || c.PricePeg.Kind == engine.PegSpot) {
			t.Fatalf("accepted an invalid spot bid: %+v", c)
		}
		_ = idemHash("POST", "/v1/bids", in)
	})
}

func FuzzDecodeListing(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	k := fuzzChecker()
	f.Fuzz(func(t *testing.T, body []byte) {
		in, p := k.decodeListing(body)
		if p != nil {
			checkRejection(t, p)
			return
		}
		c := in.command()
		if c.Quantity < 1 || c.Quantity > engine.MaxQuantity || c.Start%engine.Hour != 0 || c.End <= c.Start {
			t.Fatalf("accepted an invalid listing: %+v", c)
		}
		if c.SpotFloorPeg.Kind == engine.PegSpot {
			t.Fatalf("accepted a spot-pegged floor: %+v", c)
		}
		_ = idemHash("POST", "/v1/listings", in)
	})
}

func FuzzDecodeSmall(f *testing.F) {
	f.Add([]byte(`{"amount":"1.00"}`))
	f.Add([]byte(`{"name":"x","roles":["buyer","owner"]}`))
	f.Add([]byte(`{"name":"a\u202eb","roles":["buyer"]}`))
	f.Add([]byte("{\"name\":\"a\xffb\",\"roles\":[\"owner\"]}"))
	f.Add([]byte(`{"amount":"1","AMOUNT":"2"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if _, p := decodeAmount(body); p != nil {
			checkRejection(t, p)
		}
		in, p := decodeCreateAccount(body)
		if p != nil {
			checkRejection(t, p)
			return
		}
		if i, r := badNameRune(in.Name); i >= 0 || !utf8.ValidString(in.Name) || len(in.Name) > maxNameLen {
			t.Fatalf("accepted the name %q (%U at %d)", in.Name, r, i)
		}
		if _, dup := duplicateKey(body); dup {
			t.Fatalf("accepted a body with a duplicate key: %q", body)
		}
	})
}

// FuzzDecodeShards: the bodies only a sharded deployment sends (a deposit
// naming its shard, a transfer, the internal account route) are accepted
// only when every bound holds.
func FuzzDecodeShards(f *testing.F) {
	f.Add([]byte(`{"amount":"1.00","shard":"us-east"}`))
	f.Add([]byte(`{"from_shard":"main","to_shard":"us-east","amount":"2"}`))
	f.Add([]byte(`{"from_shard":"a","to_shard":"a","amount":"2"}`))
	f.Add([]byte(`{"name":"x","roles":["buyer"],"key_hash":"` + strings.Repeat("ab", 32) + `"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if amt, shard, p := DecodeMoneyMove(body); p != nil {
			checkRejection(t, p)
		} else if amt <= 0 || amt > engine.MaxAmount || len(shard) > maxShardLen {
			t.Fatalf("accepted amount %d shard %q", amt, shard)
		}
		if tr, p := DecodeTransfer(body); p != nil {
			checkRejection(t, p)
		} else if tr.From == tr.To || tr.From == "" || tr.To == "" || len(tr.From) > maxShardLen || len(tr.To) > maxShardLen || tr.Amount <= 0 || tr.Amount > engine.MaxAmount {
			t.Fatalf("accepted transfer %+v", tr)
		}
		if name, roles, _, p := DecodeProvision(body); p != nil {
			checkRejection(t, p)
		} else if i, _ := badNameRune(name); i >= 0 || len(name) > maxNameLen || roles == 0 {
			t.Fatalf("accepted account %q roles %v", name, roles)
		}
	})
}

// refDuplicateKey is duplicateKey written the slow, obvious way: walk the
// tokens of a valid JSON text, folding keys as encoding/json does.
func refDuplicateKey(b []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(b))
	var walk func() bool
	walk = func() bool {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			dup := false
			for dec.More() {
				k, _ := dec.Token()
				f := string(foldKey(nil, []byte(k.(string))))
				if seen[f] {
					dup = true
				}
				seen[f] = true
				if walk() {
					dup = true
				}
			}
			_, _ = dec.Token()
			return dup
		case json.Delim('['):
			dup := false
			for dec.More() {
				if walk() {
					dup = true
				}
			}
			_, _ = dec.Token()
			return dup
		}
		return false
	}
	return walk()
}

// FuzzDuplicateKey: on valid JSON the one-pass scanner agrees with the
// token walk; on anything it never panics.
func FuzzDuplicateKey(f *testing.F) {
	for _, s := range append(fuzzSeeds,
		`{"a":1,"A":2}`, `{"a":{"b":1,"b":2}}`, `[{"x":1},{"x":2}]`, `{"\u0061":1,"a":2}`,
		`{"a\"":1,"a":2}`, "{\"k\":1,\"\u212a\":2}", `{"a":"{\"a\":1,\"a\":2}"}`,
		// Past 16 keys an object's keys move to a map; nested objects
		// keep their own keys, and drop them when they close.
		`{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11,"l":12,"m":13,"n":14,"o":15,"p":16,"q":{"a":1,"r":2},"r":3,"A":4}`,
		`{"a":{"b":{"c":1},"c":2},"b":{"a":1,"c":{"a":1,"a":2}}}`,
		`[{"a":1,"b":{"a":2}},{"b":1,"a":{"b":1,"B":2}}]`) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, dup := duplicateKey(b)
		if !json.Valid(b) {
			return
		}
		if want := refDuplicateKey(b); dup != want {
			t.Fatalf("duplicateKey(%q): got %v, want %v", b, dup, want)
		}
	})
}

// FuzzFeedOp: every websocket message either answers a coded error or is
// an op within the per-connection limits.
func FuzzFeedOp(f *testing.F) {
	for _, s := range []string{
		`{"op":"subscribe","channels":["prices","book:h100-sxm.us-east","trades:h100-sxm.us-east","user"]}`,
		`{"op":"unsubscribe","channels":["prices","prices"]}`, `{"op":"auth","key":"gpux_x"}`,
		`{"op":"auth","op":"subscribe"}`, `{"op":"subscribe","channels":[]}`, `{"op":"subscribe","channels":"prices"}`,
		`{"op":7}`, `[]`, `null`, `{"op":"subscribe","channels":["a","b","c","d","e","f","g","h","i","j"]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		op, bad := parseFeedOp(b)
		if bad != nil {
			if bad.Type != "error" || bad.Code == "" || bad.Detail == "" {
				t.Fatalf("incomplete error %+v", bad)
			}
			return
		}
		if _, dup := duplicateKey(b); dup {
			t.Fatalf("accepted an op with a duplicate key: %q", b)
		}
		switch op.kind {
		case 0:
		case reqSubscribe, reqUnsubscribe:
			if n := len(op.channels); n < 1 || n > maxChannelsPer {
				t.Fatalf("accepted %d channels", n)
			}
			if len(dedupe(op.channels)) != len(op.channels) {
				t.Fatalf("channels not deduplicated: %q", op.channels)
			}
		default:
			t.Fatalf("unknown op kind %d", op.kind)
		}
	})
}

// FuzzDecodeBody: a Content-Encoding body never decodes past the limit.
func FuzzDecodeBody(f *testing.F) {
	var gz, zl bytes.Buffer
	w := gzip.NewWriter(&gz)
	_, _ = w.Write(bytes.Repeat([]byte(`{"a":1}`), 1000))
	_ = w.Close()
	z := zlib.NewWriter(&zl)
	_, _ = z.Write([]byte(`{"amount":"1.00"}`))
	_ = z.Close()
	f.Add("gzip", gz.Bytes())
	f.Add("deflate", zl.Bytes())
	f.Add("x-gzip", []byte{0x1f, 0x8b})
	f.Add("br", []byte("x"))
	const limit = 4096
	f.Fuzz(func(t *testing.T, coding string, raw []byte) {
		out, err := decodeLimited(coding, raw, limit)
		if len(out) > limit {
			t.Fatalf("decoded %d bytes past the %d limit", len(out), limit)
		}
		if err != nil && out != nil {
			t.Fatalf("bytes with an error: %v", err)
		}
	})
}

// fuzzServer is a server over an in-process engine with one buyer and one
// owner (keys "buyer" and "owner"), for requests through app.Test.
func fuzzServer(tb testing.TB) *Server {
	tb.Helper()
	fs := &fakeSequencer{e: engine.New(engine.Config{})}
	for i, name := range []string{"buyer", "owner"} {
		role := engine.RoleBuyer
		if name == "owner" {
			role = engine.RoleOwner
		}
		var id engine.ID
		id[15] = byte(i + 1)
		if _, err := fs.Submit(context.Background(), engine.Command{Kind: engine.CmdCreateAccount, Target: id, Name: name, Roles: role, KeyHash: sha256.Sum256([]byte(name))}, nil); err != nil {
			tb.Fatal(err)
		}
	}
	s := NewServer(Config{Sequencer: fs, AdminKey: "admin", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	tb.Cleanup(func() { s.Shutdown(context.Background()) })
	return s
}

// FuzzQuery: every query string of every GET endpoint that reads one
// answers 200 or a 4xx problem whose code is in the status table.
func FuzzQuery(f *testing.F) {
	for _, s := range []struct {
		path uint8
		q    string
	}{
		{0, "limit=10"}, {0, "limit=0"}, {0, "limit=99999999999999999999"}, {0, "status=resting&cursor=01a223c8-d8f4-7f00-b651-f8ec50cdcf2a"},
		{1, "status=active&limit=1000"}, {1, "cursor=xyz"}, {2, "limit=5&cursor=01A223C8-D8F4-7F00-B651-F8EC50CDCF2A"},
		{3, "quantity=1&start=2030-01-01T00:00:00Z&end=2030-01-01T02:00:00Z"}, {3, "quantity=-1&min_quantity=9"},
		{4, "interval=1h&kind=spot&from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z"}, {4, "interval=1m&to=1999-01-01T00:00:00Z"},
		{0, "limit=%00"}, {0, "limit=1&limit=2"}, {2, "cursor=%ff%fe"},
	} {
		f.Add(s.path, s.q)
	}
	paths := []struct{ path, key string }{
		{"/v1/bids", "buyer"}, {"/v1/listings", "owner"}, {"/v1/markets/h100-sxm.us-east/trades", ""},
		{"/v1/markets/h100-sxm.us-east/quote", ""}, {"/v1/markets/h100-sxm.us-east/history", ""},
	}
	s := fuzzServer(f)
	f.Fuzz(func(t *testing.T, which uint8, q string) {
		if strings.ContainsAny(q, " \r\n\t#") || len(q) > 2048 {
			t.Skip("not a query string a request line can carry")
		}
		p := paths[int(which)%len(paths)]
		req := httptest.NewRequest(http.MethodGet, "http://x"+p.path, nil)
		req.URL.RawQuery = q
		req.RequestURI = "" // app.Test writes RequestURI when set: use the URL's
		if p.key != "" {
			req.Header.Set("Authorization", "Bearer "+p.key)
		}
		resp, err := s.app.Test(req, -1)
		if err != nil {
			t.Fatalf("%s?%s: %v", p.path, q, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return
		}
		body, _ := io.ReadAll(resp.Body)
		var pr Problem
		if err := json.Unmarshal(body, &pr); err != nil || resp.Header.Get("Content-Type") != problemContentType {
			t.Fatalf("%s?%s: %d %q is not a problem", p.path, q, resp.StatusCode, body)
		}
		checkRejection(t, &pr)
	})
}
