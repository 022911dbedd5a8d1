// Package client is a typed Go client for the gpux HTTP API v1 and its
// websocket feed (see api/openapi.yaml).
//
// It owns the wire format only: request encoding, response decoding and
// the mapping of problem+json answers to *Error. It must not hold exchange
// logic, import any other gpux package, or depend on anything beyond the
// standard library and github.com/fasthttp/websocket (for the feed), so that
// the CLI, the load test and outside programs can use it freely.
//
// Every method takes a context first and is safe for concurrent use. A
// non-2xx answer comes back as *Error (see IsCode); transport failures come
// back wrapped with the method and path that failed. With WithRetry, 429
// and 503 answers are retried after their Retry-After, a POST with the
// same Idempotency-Key each time.
package client

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client talks to one gpux server as one account (or anonymously when it
// has no key). The zero value is not usable; call New.
type Client struct {
	base  *url.URL
	key   string
	hc    *http.Client
	retry RetryPolicy
}

// RetryPolicy retries answers that say "try again later": 429 (rate
// limited) and 503 (journal unavailable, not ready, shard without a
// leader). It waits the answer's Retry-After, or Backoff doubling per
// attempt when there is none; a wait longer than MaxWait, or the context
// ending, returns the last *Error at once. A POST without an
// Idempotency-Key gets a random one so that a retry can never create
// twice; every attempt of one call sends the same key and body.
type RetryPolicy struct {
	// MaxAttempts counts the first try; ≤ 1 means no retry.
	MaxAttempts int
	// MaxWait bounds one wait (default 30 s).
	MaxWait time.Duration
	// Backoff is the first wait when the answer has no Retry-After
	// (default 250 ms).
	Backoff time.Duration
}

// DefaultRetry is a policy for interactive tools: four attempts, at most
// 30 s per wait.
var DefaultRetry = RetryPolicy{MaxAttempts: 4, MaxWait: 30 * time.Second, Backoff: 250 * time.Millisecond}

// WithRetry turns retries on (they are off by default, so a caller that
// counts 429s, such as the load test, sees every one).
func WithRetry(p RetryPolicy) Option {
	return func(c *Client) {
		if p.MaxWait <= 0 {
			p.MaxWait = 30 * time.Second
		}
		if p.Backoff <= 0 {
			p.Backoff = 250 * time.Millisecond
		}
		c.retry = p
	}
}

// Option configures a Client in New.
type Option func(*Client)

// WithAPIKey makes the client send "Authorization: Bearer <key>".
func WithAPIKey(key string) Option {
	return func(c *Client) { c.key = key }
}

// WithHTTPClient replaces http.DefaultClient. When its Transport is an
// *http.Transport, the websocket dialer reuses its TLS config and proxy.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// New returns a client for the server at baseURL ("http://localhost:8080";
// a path prefix is kept, a trailing slash ignored). A baseURL that does not
// parse makes every call fail with that parse error.
func New(baseURL string, opts ...Option) *Client {
	c := &Client{hc: http.DefaultClient}
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err == nil {
		c.base = u
	} else {
		// Keep the raw text so the error surfaces on first use, not as a panic.
		c.base = &url.URL{Opaque: baseURL}
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// WithKey returns a copy of c that acts as the account owning key; c is
// unchanged. An empty key gives an anonymous client.
func (c *Client) WithKey(key string) *Client {
	cp := *c
	cp.key = key
	return &cp
}

// CallOption adjusts a single request.
type CallOption func(*callOptions)

type callOptions struct {
	idempotencyKey string
	shard          string
}

// WithShard names the shard whose wallet a deposit or withdrawal moves
// (the "shard" field). Needed through an API node of a deployment with
// several engine shards (422 "shard_required" without it); an engine node
// takes only its own shard (422 "wrong_shard"). Other calls ignore it.
func WithShard(shard string) CallOption {
	return func(o *callOptions) { o.shard = shard }
}

func shardOf(opts []CallOption) string {
	var o callOptions
	for _, f := range opts {
		f(&o)
	}
	return o.shard
}

// WithIdempotencyKey sends "Idempotency-Key: key" with a POST that creates
// something: repeating the call with the same key and body returns the
// first response and creates nothing new; the same key with another body
// fails with code "idempotency_key_reused". It overrides a request's own
// IdempotencyKey field.
func WithIdempotencyKey(key string) CallOption {
	return func(o *callOptions) { o.idempotencyKey = key }
}

// request describes one HTTP exchange for do.
type request struct {
	method string
	path   string // already escaped
	query  url.Values
	body   any // JSON-encoded when non-nil
	// rawBody, when non-nil, is sent as it is with Content-Type
	// contentType instead of body (a rates file).
	rawBody     []byte
	contentType string
	idem        string
	out         any // JSON-decoded from a 2xx answer when non-nil
	raw         *[]byte
	accept      string // default: JSON or problem+json
}

// pathf joins escaped path segments: pathf("/v1/bids/%s", id).
func pathf(format string, segs ...string) string {
	args := make([]any, len(segs))
	for i, s := range segs {
		args[i] = url.PathEscape(s)
	}
	return fmt.Sprintf(format, args...)
}

func (c *Client) endpoint(path string, q url.Values) (string, error) {
	if c.base == nil || c.base.Opaque != "" || c.base.Host == "" {
		return "", fmt.Errorf("gpux: invalid base URL %q", c.base.String())
	}
	u := *c.base
	// path is already escaped (ids may hold '/'), so set both forms.
	raw := strings.TrimRight(c.base.EscapedPath(), "/") + path
	p, err := url.PathUnescape(raw)
	if err != nil {
		return "", fmt.Errorf("gpux: path %q: %w", raw, err)
	}
	u.Path, u.RawPath = p, raw
	if len(q) > 0 {
		u.RawQuery = q.Encode()
	}
	return u.String(), nil
}

// do performs r, retrying by c.retry. Errors: *Error for a non-2xx
// answer, otherwise a transport or decoding error wrapped with the method
// and path.
func (c *Client) do(ctx context.Context, r request) error {
	op := r.method + " " + r.path
	target, err := c.endpoint(r.path, r.query)
	if err != nil {
		return err
	}
	body := r.rawBody
	if r.body != nil {
		if body, err = json.Marshal(r.body); err != nil {
			return fmt.Errorf("gpux: %s: encode request: %w", op, err)
		}
	}
	if r.method == http.MethodPost && r.idem == "" && c.retry.MaxAttempts > 1 {
		r.idem = rand.Text()
	}
	wait := c.retry.Backoff
	for attempt := 1; ; attempt++ {
		err := c.once(ctx, op, target, body, r)
		var e *Error
		if attempt >= c.retry.MaxAttempts || !errors.As(err, &e) ||
			(e.Status != http.StatusTooManyRequests && e.Status != http.StatusServiceUnavailable) {
			return err
		}
		d := wait
		if e.RetryAfter > 0 {
			d = e.RetryAfter
		}
		if d > c.retry.MaxWait {
			return err
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait *= 2
	}
}

// once performs one attempt of r.
func (c *Client) once(ctx context.Context, op, target string, body []byte, r request) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, target, rd)
	if err != nil {
		return fmt.Errorf("gpux: %s: %w", op, err)
	}
	req.Header.Set("Accept", cmp.Or(r.accept, "application/json, application/problem+json"))
	req.Header.Set("User-Agent", "gpux-client/1")
	if body != nil {
		req.Header.Set("Content-Type", cmp.Or(r.contentType, "application/json"))
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	if r.idem != "" {
		req.Header.Set("Idempotency-Key", r.idem)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("gpux: %s: %w", op, err)
	}
	defer func() {
		// Drain so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
	}()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return parseError(resp)
	}
	if r.raw != nil {
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return fmt.Errorf("gpux: %s: read response: %w", op, err)
		}
		*r.raw = b
		return nil
	}
	if r.out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(r.out); err != nil {
		return fmt.Errorf("gpux: %s: decode response: %w", op, err)
	}
	return nil
}

func idemKey(field string, opts []CallOption) string {
	o := callOptions{idempotencyKey: field}
	for _, f := range opts {
		f(&o)
	}
	return o.idempotencyKey
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func (q ListQuery) values() url.Values {
	v := url.Values{}
	if q.Status != "" {
		v.Set("status", q.Status)
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	return v
}
