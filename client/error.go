package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Error is a non-2xx answer of the server, decoded from its
// application/problem+json body. Status is always set; Code is the stable
// machine-readable reason of a 422 ("insufficient_funds", "invalid_window",
// "idempotency_key_reused", "invalid_peg", ...) and may be empty for other
// statuses; Field names the offending input field, if any. RetryAfter is
// the Retry-After header of a 429 or 503 (zero when absent).
type Error struct {
	Status     int
	Type       string
	Title      string
	Code       string
	Detail     string
	Field      string
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "gpux: %d", e.Status)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	msg := e.Detail
	if msg == "" {
		msg = e.Title
	}
	if msg != "" {
		b.WriteString(": " + msg)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, " (field %s)", e.Field)
	}
	return b.String()
}

// IsCode reports whether err is, or wraps, an *Error with the given code.
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// IsStatus reports whether err is, or wraps, an *Error with the given HTTP
// status, e.g. IsStatus(err, http.StatusNotFound).
func IsStatus(err error, status int) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == status
}

// problem is the problem+json body.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Code   string `json:"code"`
	Detail string `json:"detail"`
	Field  string `json:"field"`
}

// parseError builds an *Error from a non-2xx response. A body that is not
// problem+json still gives an *Error: its text becomes Detail.
func parseError(resp *http.Response) *Error {
	e := &Error{
		Status:     resp.StatusCode,
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var p problem
	if err := json.Unmarshal(body, &p); err == nil {
		e.Type, e.Title, e.Code, e.Detail, e.Field = p.Type, p.Title, p.Code, p.Detail, p.Field
	} else {
		e.Detail = strings.TrimSpace(string(body))
	}
	if e.Title == "" {
		e.Title = http.StatusText(resp.StatusCode)
	}
	return e
}

// parseRetryAfter reads delay-seconds or an HTTP date; zero when absent or
// malformed.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
