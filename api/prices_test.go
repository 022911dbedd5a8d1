package api_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gpux/gpux/api"
	"github.com/gpux/gpux/client"
	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/pricing"
)

// priceRow is a /v1/prices row as raw JSON, with the fields this package
// adds beyond client.PriceRow.
type priceRow struct {
	Market    string `json:"market"`
	Region    string `json:"region"`
	Reference []struct {
		Provider     string  `json:"provider"`
		InstanceType string  `json:"instance_type"`
		USD          string  `json:"usd_per_gpu_hour"`
		PriceType    string  `json:"price_type"`
		AsOf         *string `json:"as_of"`
		Source       string  `json:"source"`
		Region       *string `json:"region"`
		Confidence   string  `json:"confidence"`
		SameRegion   *bool   `json:"same_region"`
		Stale        *bool   `json:"stale"`
	} `json:"reference"`
	Discount      map[string]*string `json:"discount_vs_reference"`
	DiscountSpot  map[string]*string `json:"discount_vs_spot"`
	DiscountCB    map[string]*string `json:"discount_vs_capacity_block"`
	DiscountBasis map[string]struct {
		OnDemand      *basisRow `json:"on_demand"`
		Spot          *basisRow `json:"spot"`
		CapacityBlock *basisRow `json:"capacity_block"`
	} `json:"discount_basis"`
}

type basisRow struct {
	InstanceType string `json:"instance_type"`
	Region       string `json:"region"`
	PriceType    string `json:"price_type"`
	SameRegion   bool   `json:"same_region"`
	Stale        bool   `json:"stale"`
}

func (e *env) prices() map[string]priceRow {
	e.tb.Helper()
	status, _, body := e.raw(http.MethodGet, "/v1/prices", "", nil)
	if status != http.StatusOK {
		e.tb.Fatalf("GET /v1/prices: %d %s", status, body)
	}
	var rows []priceRow
	if err := json.Unmarshal(body, &rows); err != nil {
		e.tb.Fatalf("prices: %v", err)
	}
	out := map[string]priceRow{}
	for _, r := range rows {
		out[r.Market] = r
	}
	return out
}

// TestPricesCoverEveryMarket: every catalogue market has every reference
// row of its GPU, with region, stale, as_of and source, the market's own
// region's rows first; discounts use the row the choice rule picks for the
// market's region and discount_basis names it.
func TestPricesCoverEveryMarket(t *testing.T) {
	e := newEnv(t, nil)
	rows := e.prices()
	table := pricing.Default()
	for _, m := range engine.Catalogue(engine.DefaultGPUs, engine.DefaultRegions) {
		r, ok := rows[m.ID]
		if !ok {
			t.Errorf("%s: no row", m.ID)
			continue
		}
		want := table.ForGPU(m.GPU)
		if len(r.Reference) != len(want) {
			t.Errorf("%s: %d reference rows, the data has %d", m.ID, len(r.Reference), len(want))
			continue
		}
		inRegion := true
		for i, ref := range r.Reference {
			if ref.Source == "" || ref.USD == "" || ref.PriceType == "" || ref.Region == nil || ref.Stale == nil || ref.SameRegion == nil || ref.AsOf == nil {
				t.Errorf("%s row %d: %+v lacks source, price, type, region, stale, same_region or as_of", m.ID, i, ref)
				continue
			}
			same := pricing.MarketRegion(*ref.Region) == m.Region
			if *ref.SameRegion != same {
				t.Errorf("%s row %d in %s: same_region %v, want %v", m.ID, i, *ref.Region, *ref.SameRegion, same)
			}
			if same && !inRegion {
				t.Errorf("%s row %d in %s: a same-region row after another region's", m.ID, i, *ref.Region)
			}
			inRegion = same
		}
		for _, provider := range table.Providers(m.GPU) {
			check := func(kind string, got map[string]*string, basis *basisRow) {
				t.Helper()
				chosen, has := table.Choose(m.GPU, provider, kind, m.Region)
				d, present := got[provider]
				if present != has || (present && d != nil) {
					t.Errorf("%s %s %s: discount %v (present %v), want present=%v and null with no market price", m.ID, provider, kind, d, present, has)
				}
				if has != (basis != nil) || has && (basis.InstanceType != chosen.InstanceType || basis.Region != chosen.Region || basis.PriceType != kind) {
					t.Errorf("%s %s %s: basis %+v, want %s in %s", m.ID, provider, kind, basis, chosen.InstanceType, chosen.Region)
				}
			}
			b := r.DiscountBasis[provider]
			check(pricing.PriceOnDemand, r.Discount, b.OnDemand)
			check(pricing.PriceSpot, r.DiscountSpot, b.Spot)
			check(pricing.PriceCapacityBlock, r.DiscountCB, b.CapacityBlock)
		}
	}
	// The eu-west H100 market compares Azure and GCP with their European rows.
	b := rows["h100-sxm.eu-west"].DiscountBasis
	if b["azure"].OnDemand.Region != "westeurope" || b["gcp"].OnDemand.Region != "europe-west4" || !b["gcp"].OnDemand.SameRegion {
		t.Errorf("h100-sxm.eu-west on-demand basis azure %+v gcp %+v, want westeurope and europe-west4", b["azure"].OnDemand, b["gcp"].OnDemand)
	}
	if cb := b["aws"].CapacityBlock; cb == nil || cb.Region != "eu-west-2" {
		t.Errorf("h100-sxm.eu-west aws capacity-block basis %+v, want eu-west-2", cb)
	}
}

// TestPricesFeedAfterTrade: the prices channel pushes an update once a
// trade sets a market's last price.
func TestPricesFeedAfterTrade(t *testing.T) {
	e := newEnv(t, nil)
	owner := e.account("owner", "", client.RoleOwner)
	buyer := e.account("buyer", "1000", client.RoleBuyer)
	feed := subscribe(t, e.anon, "prices")
	feed.next(is(client.MsgSnapshot, "prices"))
	if _, err := owner.PlaceListing(bg, client.ListingRequest{Market: "l4.us-west", Quantity: 2, Start: hour(0), End: hour(10), ReservePrice: client.FixedPrice("0.50")}); err != nil {
		t.Fatal(err)
	}
	if _, err := buyer.PlaceBid(bg, client.BidRequest{Type: client.BidReserved, Market: "l4.us-west", Quantity: 2, Start: hour(2), End: hour(4), LimitPrice: client.FixedPrice("0.60")}); err != nil {
		t.Fatal(err)
	}
	feed.next(func(m client.Message) bool {
		if m.Type != client.MsgUpdate || m.Channel != "prices" {
			return false
		}
		var up struct {
			Markets []client.PriceRow `json:"markets"` // an update holds the markets that changed
		}
		if err := json.Unmarshal(m.Data, &up); err != nil {
			t.Fatalf("prices update: %v", err)
		}
		for _, r := range up.Markets {
			if r.Market == "l4.us-west" && r.LastTradePrice != nil {
				if *r.LastTradePrice != "0.50" {
					t.Fatalf("last trade %s, want 0.50 (the listing is the maker)", *r.LastTradePrice)
				}
				return true
			}
		}
		return false
	})
}

const ratesHeader = "provider,gpu_model,instance_type,gpus_per_instance,region,price_type,usd_per_instance_hour,usd_per_gpu_hour,as_of,source,confidence,note\n"

// TestStaleRows: a row older than the limit is stale, judged at the
// engine's clock; the limit is the server's. Dates far in the past and the
// future keep the test independent of the wall clock.
func TestStaleRows(t *testing.T) {
	e := newEnv(t, nil)
	file := ratesHeader +
		"AWS,H100 SXM 80GB,old,8,us-east-1,on_demand,,6.00,2000-01-01,test,high,\n" +
		"AWS,H100 SXM 80GB,future,8,us-east-1,on_demand,,7.00,2999-01-01,test,high,\n"
	if status, _, body := e.raw(http.MethodPut, "/v1/admin/reference-rates", adminKey, []byte(file), "Content-Type", "text/csv"); status != http.StatusOK {
		t.Fatalf("PUT rates: %d %s", status, body)
	}
	stale := func() map[string]bool {
		t.Helper()
		out := map[string]bool{}
		for _, ref := range e.prices()["h100-sxm.us-east"].Reference {
			out[ref.InstanceType] = *ref.Stale
		}
		return out
	}
	if got := stale(); !got["old"] || got["future"] {
		t.Errorf("stale = %v, want old stale and future not", got)
	}
	// The newest dated row is the on-demand basis.
	if b := e.prices()["h100-sxm.us-east"].DiscountBasis["aws"].OnDemand; b == nil || b.InstanceType != "future" || b.Stale {
		t.Errorf("aws basis %+v, want the 2999 row, not stale", b)
	}
	e.srv.SetRatesStaleAfter(0) // off
	if got := stale(); got["old"] || got["future"] {
		t.Errorf("limit off: stale = %v, want none", got)
	}
}

// TestAdminReplacesReferenceRates, end to end: an admin PUTs a rates file;
// the engine's rates (pegs) come from a journaled command, /v1/prices and
// the prices feed show the new table at once, and GET returns it.
func TestAdminReplacesReferenceRates(t *testing.T) {
	e := newEnv(t, nil)
	feed := subscribe(t, e.anon, "prices")
	feed.next(is(client.MsgSnapshot, "prices"))

	file := ratesHeader +
		"AWS,H100 SXM 80GB,p5.48xlarge,8,eu-west-2,on_demand,40.00,5.00,2026-11-20,AWS Price List AmazonEC2 offer file (published 2026-11-20T00:00:00Z),high,\n" +
		"AWS,H100 SXM 80GB,p5.48xlarge,8,us-east-1,on_demand,32.00,4.00,2026-11-20,AWS Price List AmazonEC2 offer file (published 2026-11-20T00:00:00Z),high,\n" +
		"GCP,L4,g2-standard-4,1,us-west1,spot,,0.30,2026-11-21,gcp skus,medium,\n"
	status, _, body := e.raw(http.MethodPut, "/v1/admin/reference-rates", adminKey, []byte(file), "Content-Type", "text/csv; charset=utf-8")
	if status != http.StatusOK {
		t.Fatalf("PUT rates: %d %s", status, body)
	}
	var ans struct {
		Rates       int    `json:"rates"`
		EngineRates int    `json:"engine_rates"`
		Hash        string `json:"hash"`
		Seq         uint64 `json:"seq"`
	}
	if err := json.Unmarshal(body, &ans); err != nil || ans.Rates != 3 || ans.EngineRates != 1 || len(ans.Hash) != 64 || ans.Seq == 0 {
		t.Fatalf("PUT answer %s (%v), want 3 rates, 1 engine rate, a hash and a seq", body, err)
	}

	// The feed's next prices update already carries the new table.
	feed.next(func(m client.Message) bool {
		return m.Type == client.MsgUpdate && m.Channel == "prices" && bytes.Contains(m.Data, []byte("AWS Price List AmazonEC2 offer file"))
	})
	rows := e.prices()
	eu := rows["h100-sxm.eu-west"]
	if len(eu.Reference) != 2 || *eu.Reference[0].Region != "eu-west-2" || eu.DiscountBasis["aws"].OnDemand.Region != "eu-west-2" {
		t.Errorf("h100-sxm.eu-west after PUT: %+v", eu)
	}
	if _, ok := eu.Discount["azure"]; ok {
		t.Error("azure discount still present after a table without azure rows")
	}
	if b := rows["l4.us-west"].DiscountBasis["gcp"]; b.Spot == nil || b.OnDemand != nil || !b.Spot.SameRegion {
		t.Errorf("l4.us-west gcp basis %+v, want a same-region spot row and no on-demand", b)
	}

	// The engine took the on-demand rate (regionless pick: newest, then US East).
	var got []engine.ReferenceRate
	e.seq.Read(func(en *engine.Engine) { got = en.ReferenceRates() })
	if want := []engine.ReferenceRate{{GPU: "h100-sxm", Provider: "aws", Price: 40000}}; !slices.Equal(got, want) {
		t.Errorf("engine rates %v, want %v", got, want)
	}
	// A reference peg resolves against it: 40 % below 4.00.
	owner := e.account("owner", "", client.RoleOwner)
	l, err := owner.PlaceListing(bg, client.ListingRequest{Market: "h100-sxm.us-east", Quantity: 1, Start: hour(1), End: hour(3), ReservePrice: client.ReferencePeg("aws", "0.40")})
	if err != nil || l.ReservePrice != "2.40" {
		t.Fatalf("pegged listing %+v %v, want reserve 2.40", l, err)
	}

	// GET gives the table back in canonical form.
	status, hdr, body := e.raw(http.MethodGet, "/v1/admin/reference-rates", adminKey, nil)
	if status != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "text/csv") {
		t.Fatalf("GET rates: %d %s", status, hdr.Get("Content-Type"))
	}
	back, err := pricing.Load(bytes.NewReader(body))
	if err != nil || back.Hash() != ans.Hash {
		t.Fatalf("GET rates: %v, hash %s, want %s", err, back.Hash(), ans.Hash)
	}
}

// Bad requests change nothing.
func TestAdminReferenceRatesRejects(t *testing.T) {
	e := newEnv(t, nil)
	buyer := e.account("buyer", "", client.RoleBuyer)
	before := e.prices()
	good := ratesHeader + "AWS,H100 SXM 80GB,p5.48xlarge,8,us-east-1,on_demand,,4.00,2026-11-20,x,high,\n"
	tests := []struct {
		name, key, ctype string
		body             string
		status           int
		code             string
		detail           string
	}{
		{"no key", "", "text/csv", good, http.StatusUnauthorized, api.CodeUnauthorized, ""},
		{"account key", buyer.key, "text/csv", good, http.StatusForbidden, engine.CodeForbidden, ""},
		{"json", adminKey, "application/json", good, http.StatusUnsupportedMediaType, api.CodeUnsupportedMedia, ""},
		{"bad price", adminKey, "text/csv", ratesHeader + "AWS,H100 SXM 80GB,p5,8,us-east-1,on_demand,,abc,2026-11-20,x,high,\n",
			http.StatusUnprocessableEntity, api.CodeInvalidValue, `rates.csv line 2: usd_per_gpu_hour "abc": not a decimal`},
		{"truncated", adminKey, "text/csv", good[:len(good)/2], http.StatusUnprocessableEntity, api.CodeInvalidValue, "rates.csv line 1: header"},
		{"empty", adminKey, "text/csv", "", http.StatusUnprocessableEntity, api.CodeInvalidValue, "rates.csv: empty file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, hdr, body := e.raw(http.MethodPut, "/v1/admin/reference-rates", tt.key, []byte(tt.body), "Content-Type", tt.ctype)
			wantProblem(t, status, hdr, body, tt.status, tt.code, "-")
			var p problemBody
			_ = json.Unmarshal(body, &p)
			if !strings.Contains(p.Detail, tt.detail) {
				t.Errorf("detail %q, want it to contain %q", p.Detail, tt.detail)
			}
		})
	}
	t.Run("over the body limit", func(t *testing.T) {
		// The server answers from Content-Length alone and closes the
		// connection: send only the head, so the answer cannot race with a
		// body the server will not read.
		conn, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "PUT /v1/admin/reference-rates HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: text/csv\r\nContent-Length: %d\r\n\r\n", adminKey, api.BodyLimit+1)
		_ = conn.SetReadDeadline(time.Now().Add(feedWait))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		wantProblem(t, resp.StatusCode, resp.Header, body, http.StatusRequestEntityTooLarge, api.CodeBodyTooLarge, "-")
	})
	after := e.prices()
	a, _ := json.Marshal(before["h100-sxm.us-east"].Reference)
	b, _ := json.Marshal(after["h100-sxm.us-east"].Reference)
	if !bytes.Equal(a, b) {
		t.Error("a rejected PUT changed the reference rows")
	}
	if status, _, _ := e.raw(http.MethodGet, "/v1/admin/reference-rates", buyer.key, nil); status != http.StatusForbidden {
		t.Errorf("GET rates with an account key: %d, want 403", status)
	}
}
