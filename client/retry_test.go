package client_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gpux/gpux/client"
)

// flaky answers the first len(statuses) requests with those statuses
// (and Retry-After), then 201, recording every request's Idempotency-Key.
type flaky struct {
	*httptest.Server
	mu       sync.Mutex
	statuses []int
	retry    string
	keys     []string
	bodies   []string
}

func newFlaky(tb testing.TB, retryAfter string, statuses ...int) *flaky {
	tb.Helper()
	f := &flaky{statuses: statuses, retry: retryAfter}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		n := len(f.keys)
		f.keys = append(f.keys, r.Header.Get("Idempotency-Key"))
		f.bodies = append(f.bodies, string(b))
		f.mu.Unlock()
		if n < len(f.statuses) {
			if f.retry != "" {
				w.Header().Set("Retry-After", f.retry)
			}
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(f.statuses[n])
			w.Write([]byte(`{"status":429,"code":"rate_limited","title":"slow down"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(`{"id":"b1","type":"spot","status":"running"}`))
	}))
	tb.Cleanup(f.Close)
	return f
}

func (f *flaky) seen() ([]string, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.keys...), append([]string(nil), f.bodies...)
}

func TestRetry(t *testing.T) {
	bid := client.BidRequest{Type: client.BidSpot, Market: "m", Quantity: 1, LimitPrice: client.FixedPrice("2.00")}
	fast := client.RetryPolicy{MaxAttempts: 3, MaxWait: time.Second, Backoff: time.Millisecond}

	t.Run("429 then 503 then success reuses one generated key", func(t *testing.T) {
		f := newFlaky(t, "0", http.StatusTooManyRequests, http.StatusServiceUnavailable)
		b, err := client.New(f.URL, client.WithRetry(fast)).PlaceBid(t.Context(), bid)
		if err != nil || b.ID != "b1" {
			t.Fatalf("PlaceBid: got %+v, %v; want b1", b, err)
		}
		keys, bodies := f.seen()
		if len(keys) != 3 || keys[0] == "" || keys[1] != keys[0] || keys[2] != keys[0] {
			t.Errorf("Idempotency-Keys: got %q, want three equal non-empty keys", keys)
		}
		if bodies[0] == "" || bodies[1] != bodies[0] || bodies[2] != bodies[0] {
			t.Errorf("bodies: got %q, want three equal bodies", bodies)
		}
	})
	t.Run("caller's key is kept", func(t *testing.T) {
		f := newFlaky(t, "0", http.StatusServiceUnavailable)
		if _, err := client.New(f.URL, client.WithRetry(fast)).PlaceBid(t.Context(), bid, client.WithIdempotencyKey("mine")); err != nil {
			t.Fatal(err)
		}
		if keys, _ := f.seen(); len(keys) != 2 || keys[0] != "mine" || keys[1] != "mine" {
			t.Errorf("Idempotency-Keys: got %q, want [mine mine]", keys)
		}
	})
	t.Run("attempts are bounded", func(t *testing.T) {
		f := newFlaky(t, "0", 429, 429, 429, 429)
		_, err := client.New(f.URL, client.WithRetry(fast)).PlaceBid(t.Context(), bid)
		if !client.IsStatus(err, http.StatusTooManyRequests) {
			t.Errorf("err: got %v, want the last 429", err)
		}
		if keys, _ := f.seen(); len(keys) != 3 {
			t.Errorf("requests: got %d, want 3 (MaxAttempts)", len(keys))
		}
	})
	t.Run("Retry-After beyond MaxWait gives up at once", func(t *testing.T) {
		f := newFlaky(t, "120", 503)
		_, err := client.New(f.URL, client.WithRetry(fast)).PlaceBid(t.Context(), bid)
		var e *client.Error
		if !errors.As(err, &e) || e.Status != 503 || e.RetryAfter != 120*time.Second {
			t.Errorf("err: got %v, want the 503 with Retry-After 120s", err)
		}
		if keys, _ := f.seen(); len(keys) != 1 {
			t.Errorf("requests: got %d, want 1", len(keys))
		}
	})
	t.Run("context ends the wait", func(t *testing.T) {
		// The Retry-After (an hour) is far beyond any test's run, so the
		// only way out of the wait is the context. cancel() happens once
		// the client has closed the first answer's body, i.e. after it
		// has parsed the 503 and before (or while) it waits, never while
		// the request is in flight, whatever the machine's load.
		f := newFlaky(t, "3600", 503, 503)
		ctx, cancel := context.WithCancel(t.Context())
		slow := client.RetryPolicy{MaxAttempts: 3, MaxWait: 2 * time.Hour}
		closed := make(chan struct{}, 1)
		hc := &http.Client{Transport: closeNotifier{http.DefaultTransport, closed}}
		done := make(chan error, 1)
		go func() {
			_, err := client.New(f.URL, client.WithRetry(slow), client.WithHTTPClient(hc)).PlaceBid(ctx, bid)
			done <- err
		}()
		<-closed
		cancel()
		if err := <-done; !client.IsStatus(err, 503) {
			t.Errorf("err: got %v, want the 503", err)
		}
		if keys, _ := f.seen(); len(keys) != 1 {
			t.Errorf("requests: got %d, want 1 (cancelled while waiting)", len(keys))
		}
	})
	t.Run("off by default, no key invented", func(t *testing.T) {
		f := newFlaky(t, "0", 429)
		_, err := client.New(f.URL).PlaceBid(t.Context(), bid)
		if !client.IsStatus(err, 429) {
			t.Errorf("err: got %v, want 429", err)
		}
		if keys, _ := f.seen(); len(keys) != 1 || keys[0] != "" {
			t.Errorf("Idempotency-Keys: got %q, want one empty", keys)
		}
	})
	t.Run("other errors are not retried", func(t *testing.T) {
		f := newFlaky(t, "0", 422)
		_, err := client.New(f.URL, client.WithRetry(fast)).PlaceBid(t.Context(), bid)
		if !client.IsStatus(err, 422) {
			t.Errorf("err: got %v, want 422", err)
		}
		if keys, _ := f.seen(); len(keys) != 1 {
			t.Errorf("requests: got %d, want 1", len(keys))
		}
	})
}

// closeNotifier is a transport that signals on closed each time a
// response body is closed, so a test can act right after the client has
// finished reading an answer.
type closeNotifier struct {
	rt     http.RoundTripper
	closed chan<- struct{}
}

func (c closeNotifier) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.rt.RoundTrip(r)
	if err == nil {
		resp.Body = notifyBody{resp.Body, c.closed}
	}
	return resp, err
}

type notifyBody struct {
	io.ReadCloser
	closed chan<- struct{}
}

func (b notifyBody) Close() error {
	err := b.ReadCloser.Close()
	select {
	case b.closed <- struct{}{}:
	default:
	}
	return err
}
