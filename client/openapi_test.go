package client_test

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestOpenAPIDocument checks that api/openapi.yaml parses and describes
// every path of the API contract, and that its references resolve.
func TestOpenAPIDocument(t *testing.T) {
	b, err := os.ReadFile("../api/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("parse openapi.yaml: %v", err)
	}
	if got, want := doc["openapi"], "3.0.3"; got != want {
		t.Errorf("openapi: got %v, want %v", got, want)
	}
	paths, _ := doc["paths"].(map[string]any)

	want := map[string][]string{
		"/v1/accounts":                  {"post"},
		"/v1/accounts/{id}/deposits":    {"post"},
		"/v1/accounts/{id}/withdrawals": {"post"},
		"/v1/account":                   {"get"},
		"/v1/markets":                   {"get"},
		"/v1/markets/{market}/book":     {"get"},
		"/v1/markets/{market}/trades":   {"get"},
		"/v1/markets/{market}/quote":    {"get"},
		"/v1/markets/{market}/history":  {"get"},
		"/v1/prices":                    {"get"},
		"/v1/listings":                  {"post", "get"},
		"/v1/listings/{id}":             {"get", "delete"},
		"/v1/bids":                      {"post", "get"},
		"/v1/bids/{id}":                 {"get", "delete"},
		"/v1/ws":                        {"get"},
		"/healthz":                      {"get"},
		"/readyz":                       {"get"},
		"/metrics":                      {"get"},
		"/openapi.yaml":                 {"get"},
	}
	for path, methods := range want {
		item, ok := paths[path].(map[string]any)
		if !ok {
			t.Errorf("path %s: missing", path)
			continue
		}
		for _, m := range methods {
			if _, ok := item[m].(map[string]any); !ok {
				t.Errorf("%s %s: missing", strings.ToUpper(m), path)
			}
		}
	}

	schemas := dig(doc, "components", "schemas")
	for _, name := range []string{
		"Problem", "Account", "AccountCreated", "Market", "Book", "PriceRow", "Reference",
		"Listing", "Bid", "Fill", "Trade", "Quote", "Candle", "Price", "PegReference", "PegSpot",
		"ListingPage", "BidPage", "TradePage", "Health", "ListingRequest", "BidRequest",
	} {
		if _, ok := schemas[name]; !ok {
			t.Errorf("schema %s: missing", name)
		}
	}
	var kinds []string
	for _, alt := range dig(schemas, "Price")["oneOf"].([]any) {
		kinds = append(kinds, alt.(map[string]any)["$ref"].(string))
	}
	slices.Sort(kinds)
	if want := []string{"#/components/schemas/Decimal", "#/components/schemas/PegReference", "#/components/schemas/PegSpot"}; !slices.Equal(kinds, want) {
		t.Errorf("Price.oneOf: got %v, want %v", kinds, want)
	}

	for _, name := range []string{"TooManyRequests", "Unavailable"} {
		if dig(doc, "components", "responses", name, "headers", "Retry-After") == nil {
			t.Errorf("response %s: no Retry-After header", name)
		}
	}

	// A null value means an unquoted comma or colon broke a flow mapping.
	nulls(doc, "", func(path string) { t.Errorf("%s: null value (unquoted text in a flow mapping?)", path) })

	// Every $ref points at something that exists.
	walk(doc, func(ref string) {
		if !strings.HasPrefix(ref, "#/") {
			t.Errorf("$ref %s: not local", ref)
			return
		}
		var node any = doc
		for _, part := range strings.Split(ref[2:], "/") {
			m, ok := node.(map[string]any)
			if !ok {
				node = nil
				break
			}
			node = m[part]
		}
		if node == nil {
			t.Errorf("$ref %s: does not resolve", ref)
		}
	})
}

// dig follows keys through nested maps; nil when one is missing.
func dig(m map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		next, ok := m[k].(map[string]any)
		if !ok {
			return nil
		}
		m = next
	}
	return m
}

func walk(n any, ref func(string)) {
	switch v := n.(type) {
	case map[string]any:
		for k, c := range v {
			if s, ok := c.(string); ok && k == "$ref" {
				ref(s)
				continue
			}
			walk(c, ref)
		}
	case []any:
		for _, c := range v {
			walk(c, ref)
		}
	}
}

func nulls(n any, path string, report func(string)) {
	switch v := n.(type) {
	case nil:
		report(path)
	case map[string]any:
		for k, c := range v {
			nulls(c, path+"/"+k, report)
		}
	case []any:
		for i, c := range v {
			nulls(c, path+"/"+strconv.Itoa(i), report)
		}
	}
}
