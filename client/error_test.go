package client_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/gpux/gpux/client"
)

func TestProblemDecoding(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		contentType string
		header      http.Header
		body        string
		want        client.Error
	}{
		{
			name:        "422 with code and field",
			status:      422,
			contentType: "application/problem+json",
			body:        `{"type":"https://gpux.dev/problems/insufficient-funds","title":"Insufficient funds","status":422,"code":"insufficient_funds","detail":"needs 84.00, has 10.00","field":"quantity"}`,
			want: client.Error{Status: 422, Type: "https://gpux.dev/problems/insufficient-funds", Title: "Insufficient funds",
				Code: "insufficient_funds", Detail: "needs 84.00, has 10.00", Field: "quantity"},
		},
		{
			name:        "429 with Retry-After seconds",
			status:      429,
			contentType: "application/problem+json",
			header:      http.Header{"Retry-After": {"2"}},
			body:        `{"type":"about:blank","title":"Too Many Requests","status":429,"code":"rate_limited"}`,
			want:        client.Error{Status: 429, Type: "about:blank", Title: "Too Many Requests", Code: "rate_limited", RetryAfter: 2 * time.Second},
		},
		{
			name:        "503 with Retry-After and no code",
			status:      503,
			contentType: "application/problem+json",
			header:      http.Header{"Retry-After": {"5"}},
			body:        `{"title":"Journal unavailable","status":503,"detail":"redis down"}`,
			want:        client.Error{Status: 503, Title: "Journal unavailable", Detail: "redis down", RetryAfter: 5 * time.Second},
		},
		{
			name:        "404 plain text body",
			status:      404,
			contentType: "text/plain",
			body:        "not found\n",
			want:        client.Error{Status: 404, Title: "Not Found", Detail: "not found"},
		},
		{
			name:        "401 empty body",
			status:      401,
			contentType: "application/problem+json",
			want:        client.Error{Status: 401, Title: "Unauthorized"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeServer(t)
			srv.Status, srv.ContentType, srv.Header, srv.Body = tt.status, tt.contentType, tt.header, tt.body
			_, err := client.New(srv.URL, client.WithAPIKey("k")).PlaceBid(t.Context(), client.BidRequest{Type: client.BidSpot})
			var e *client.Error
			if !errors.As(err, &e) {
				t.Fatalf("error: got %T %v, want *client.Error", err, err)
			}
			if *e != tt.want {
				t.Errorf("error:\n got %#v\nwant %#v", *e, tt.want)
			}
			if tt.want.Code != "" && !client.IsCode(err, tt.want.Code) {
				t.Errorf("IsCode(err, %q): got false, want true", tt.want.Code)
			}
			if !client.IsStatus(err, tt.status) {
				t.Errorf("IsStatus(err, %d): got false, want true", tt.status)
			}
		})
	}
}

func TestRetryAfterHTTPDate(t *testing.T) {
	srv := newFakeServer(t)
	srv.Status = 503
	srv.Header = http.Header{"Retry-After": {time.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat)}}
	err := client.New(srv.URL).Ready(t.Context())
	var e *client.Error
	if !errors.As(err, &e) {
		t.Fatalf("error: got %v, want *client.Error", err)
	}
	if e.RetryAfter < 25*time.Second || e.RetryAfter > 31*time.Second {
		t.Errorf("RetryAfter: got %v, want about 30s", e.RetryAfter)
	}
}

func TestIsCode(t *testing.T) {
	base := &client.Error{Status: 422, Code: "invalid_window"}
	tests := []struct {
		name string
		err  error
		code string
		want bool
	}{
		{"direct", base, "invalid_window", true},
		{"wrapped", fmt.Errorf("place bid: %w", base), "invalid_window", true},
		{"other code", base, "insufficient_funds", false},
		{"not an Error", errors.New("boom"), "invalid_window", false},
		{"nil", nil, "invalid_window", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := client.IsCode(tt.err, tt.code); got != tt.want {
				t.Errorf("IsCode: got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestErrorMessage(t *testing.T) {
	e := &client.Error{Status: 422, Code: "invalid_window", Detail: "end before start", Field: "end"}
	if got, want := e.Error(), "gpux: 422 invalid_window: end before start (field end)"; got != want {
		t.Errorf("Error(): got %q, want %q", got, want)
	}
}
