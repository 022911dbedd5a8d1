package api_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gpux/gpux/api"
	"github.com/gpux/gpux/client"
)

// TestFeedSnapshotRoute: GET /v1/internal/feed/snapshot answers the admin key
// only, with the snapshot a subscriber gets (same seq, same data), and a
// precise problem for every bad channel.
func TestFeedSnapshotRoute(t *testing.T) {
	e := newEnv(t, nil)
	buyer := e.account("buyer", "10", client.RoleBuyer)
	const mk = "h100-sxm.us-east"
	r := subscribe(t, e.anon, "book:"+mk)
	sub := r.next(is(client.MsgSnapshot, "book:"+mk))
	path := func(ch string) string { return "/v1/internal/feed/snapshot?channel=" + url.QueryEscape(ch) }

	status, _, body := e.raw(http.MethodGet, path("book:"+mk), adminKey, nil)
	var got client.Message
	if err := json.Unmarshal(body, &got); status != http.StatusOK || err != nil {
		t.Fatalf("snapshot: %d %s %v", status, body, err)
	}
	if got.Type != client.MsgSnapshot || got.Channel != "book:"+mk || got.Seq != sub.Seq || string(compactJSON(t, got.Data)) != string(compactJSON(t, sub.Data)) {
		t.Errorf("snapshot: got %s, want the subscriber's %s", body, sub.Raw)
	}
	status, _, body = e.raw(http.MethodGet, path("user:"+buyer.id), adminKey, nil)
	if err := json.Unmarshal(body, &got); status != http.StatusOK || err != nil || got.Channel != "user" || !strings.Contains(string(got.Data), buyer.id) {
		t.Errorf("user snapshot: %d %s %v", status, body, err)
	}

	for _, tc := range []struct {
		name, path, key string
		status          int
		code            string
	}{
		{"no key", path("prices"), "", http.StatusUnauthorized, api.CodeUnauthorized},
		{"an account's key", path("prices"), buyer.key, http.StatusForbidden, "forbidden"},
		{"no channel", "/v1/internal/feed/snapshot", adminKey, http.StatusUnprocessableEntity, api.CodeMissingField},
		{"long channel", path("book:" + strings.Repeat("x", 200)), adminKey, http.StatusUnprocessableEntity, api.CodeInvalidValue},
		{"unknown market", path("book:nope.nowhere"), adminKey, http.StatusNotFound, "not_found"},
		{"not a channel", path("bogus"), adminKey, http.StatusNotFound, "not_found"},
		{"user without account", path("user"), adminKey, http.StatusUnprocessableEntity, api.CodeInvalidValue},
		{"user with a bad id", path("user:nope"), adminKey, http.StatusUnprocessableEntity, api.CodeInvalidValue},
		{"unknown account", path("user:00000000-0000-4000-8000-000000000001"), adminKey, http.StatusNotFound, "not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := e.raw(http.MethodGet, tc.path, tc.key, nil)
			var p struct {
				Code string `json:"code"`
			}
			_ = json.Unmarshal(body, &p)
			if status != tc.status || p.Code != tc.code {
				t.Errorf("got %d %s, want %d %s", status, body, tc.status, tc.code)
			}
		})
	}
}

func compactJSON(tb testing.TB, b []byte) []byte {
	tb.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		tb.Fatal(err)
	}
	out, _ := json.Marshal(v)
	return out
}
