package client

import (
	"testing"
	"time"
)

func TestWebsocketURL(t *testing.T) {
	tests := []struct {
		base, want string
		err        bool
	}{
		{base: "http://localhost:8080", want: "ws://localhost:8080/v1/ws"},
		{base: "https://gpux.example/api/", want: "wss://gpux.example/api/v1/ws"},
		{base: "ws://h:1", want: "ws://h:1/v1/ws"},
		{base: "ftp://h", err: true},
		{base: "localhost:8080", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.base, func(t *testing.T) {
			got, err := New(tt.base).wsURL()
			if tt.err {
				if err == nil {
					t.Errorf("got %q, want an error", got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v, want %q", got, err, tt.want)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"3", 3 * time.Second},
		{"0.5", 500 * time.Millisecond},
		{"-1", 0},
		{"Tue, 01 Dec 2026 08:00:10 GMT", 10 * time.Second},
		{"Tue, 01 Dec 2026 07:00:00 GMT", 0},
		{"soon", 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q): got %v, want %v", tt.in, got, tt.want)
		}
	}
}
