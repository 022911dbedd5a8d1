package client_test

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/gpux/gpux/client"
)

const ratesCSV = "provider,gpu_model,instance_type,gpus_per_instance,region,price_type,usd_per_instance_hour,usd_per_gpu_hour,as_of,source,confidence,note\n" +
	"AWS,H100 SXM 80GB,p5.48xlarge,8,us-east-1,on_demand,55.04,6.88,2026-07-01,https://aws,high,\n"

func TestReferenceRates(t *testing.T) {
	t.Run("get returns the CSV unchanged", func(t *testing.T) {
		srv := newFakeServer(t)
		srv.ContentType, srv.Body = "text/csv; charset=utf-8", ratesCSV
		got, err := client.New(srv.URL, client.WithAPIKey("adm")).ReferenceRates(t.Context())
		if err != nil || string(got) != ratesCSV {
			t.Fatalf("ReferenceRates: got %q, %v; want %q", got, err, ratesCSV)
		}
		r := srv.last(t)
		if r.Method != "GET" || r.Path != "/v1/admin/reference-rates" || r.Header.Get("Authorization") != "Bearer adm" ||
			!strings.HasPrefix(r.Header.Get("Accept"), "text/csv") {
			t.Errorf("request: got %s %s Authorization %q Accept %q", r.Method, r.Path, r.Header.Get("Authorization"), r.Header.Get("Accept"))
		}
	})
	t.Run("put sends the file as text/csv", func(t *testing.T) {
		srv := newFakeServer(t)
		srv.Body = `{"rates":1,"engine_rates":1,"hash":"ab12","seq":42}`
		got, err := client.New(srv.URL, client.WithAPIKey("adm")).SetReferenceRates(t.Context(), []byte(ratesCSV))
		if want := (client.ReferenceRatesSet{Rates: 1, EngineRates: 1, Hash: "ab12", Seq: 42}); err != nil || got != want {
			t.Fatalf("SetReferenceRates: got %+v, %v; want %+v", got, err, want)
		}
		r := srv.last(t)
		if r.Method != "PUT" || r.Path != "/v1/admin/reference-rates" || string(r.Body) != ratesCSV {
			t.Errorf("request: got %s %s body %q, want PUT of the file", r.Method, r.Path, r.Body)
		}
		if got, want := r.Header.Get("Content-Type"), "text/csv"; got != want {
			t.Errorf("Content-Type: got %q, want %q", got, want)
		}
	})
	t.Run("a refused file is the server's problem", func(t *testing.T) {
		srv := newFakeServer(t)
		srv.Status, srv.ContentType = http.StatusUnprocessableEntity, "application/problem+json"
		srv.Body = `{"status":422,"code":"invalid_value","field":"body","detail":"rates.csv line 2: price_type"}`
		_, err := client.New(srv.URL).SetReferenceRates(t.Context(), []byte("x\n"))
		var e *client.Error
		if !client.IsStatus(err, 422) || !strings.Contains(err.Error(), "line 2") || !errors.As(err, &e) || e.Field != "body" {
			t.Errorf("err: got %v, want the 422 naming line 2", err)
		}
	})
	t.Run("limit: a file over MaxRatesFile is refused without a request", func(t *testing.T) {
		srv := newFakeServer(t)
		c := client.New(srv.URL)
		big := bytes.Repeat([]byte("a"), client.MaxRatesFile+1)
		if _, err := c.SetReferenceRates(t.Context(), big); err == nil || !strings.Contains(err.Error(), "over the server's limit") {
			t.Errorf("err: got %v, want over the limit", err)
		}
		srv.Body = `{"rates":0,"engine_rates":0,"hash":"","seq":1}`
		if _, err := c.SetReferenceRates(t.Context(), big[:client.MaxRatesFile]); err != nil {
			t.Errorf("a file of exactly MaxRatesFile bytes: %v, want it sent", err)
		}
		srv.mu.Lock()
		n := len(srv.reqs)
		srv.mu.Unlock()
		if n != 1 {
			t.Errorf("requests: got %d, want 1 (only the file within the limit)", n)
		}
	})
}
