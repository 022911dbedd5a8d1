package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/sequencer"
)

// Codes of the API's own rejections, in addition to the engine's codes
// (engine.Code*).
const (
	CodeMalformedJSON     = "malformed_json"
	CodeUnknownField      = "unknown_field"
	CodeMissingField      = "missing_field"
	CodeInvalidValue      = "invalid_value"
	CodeInvalidTime       = "invalid_time"
	CodeInvalidLimit      = "invalid_limit"
	CodeInvalidCursor     = "invalid_cursor"
	CodeInvalidStatus     = "invalid_status"
	CodeInvalidInterval   = "invalid_interval"
	CodeInvalidIdemKey    = "invalid_idempotency_key"
	CodeInvalidClientID   = "invalid_client_order_id"
	CodeBodyTooLarge      = "body_too_large"
	CodeUnauthorized      = "unauthorized"
	CodeRateLimited       = "rate_limited"
	CodeUnavailable       = "journal_unavailable"
	CodeNotReady          = "not_ready"
	CodeShuttingDown      = "shutting_down"
	CodeTimeout           = "timeout"
	CodeMethodNotAllowed  = "method_not_allowed"
	CodeUnsupportedMedia  = "unsupported_media_type"
	CodeInternal          = "internal"
	CodeUpgradeRequired   = "upgrade_required"
	CodeForbiddenOrigin   = "forbidden_origin"
	CodeBadRequest        = "bad_request"
	CodeInvalidEncoding   = "invalid_content_encoding"
	CodeHeaderTooLarge    = "header_too_large"
	CodeDuplicateKey      = "duplicate_key"
	CodeTooManyConns      = "too_many_connections"
	problemTypePrefix     = "https://gpux.dev/problems/"
	problemContentType    = "application/problem+json"
	defaultRetryAfterSecs = 1
)

// Codes of a sharded deployment (engine nodes and API nodes).
const (
	CodeNoLeader      = "no_leader"      // the shard has no leader right now: 503, retry
	CodeWrongShard    = "wrong_shard"    // an engine node was asked to act for another shard
	CodeUnknownShard  = "unknown_shard"  // no engine node of that shard was ever started
	CodeShardRequired = "shard_required" // several shards: a deposit or withdrawal must name one
	CodeSameShard     = "same_shard"     // a transfer from a shard to itself
)

// Codes of websocket errors, sent as {"type": "error", "code": ...} (or
// {"type": "auth", "ok": false, "code": ...}) and never as an HTTP status.
// The feed also uses CodeMalformedJSON, CodeDuplicateKey,
// CodeMissingField, CodeRateLimited and CodeUnauthorized.
const (
	CodeUnknownChannel       = "unknown_channel"
	CodeTooManyChannels      = "too_many_channels"
	CodeUnknownOp            = "unknown_op"
	CodeAlreadyAuthenticated = "already_authenticated"
)

// statusOf is the one table from a code to its HTTP status. A code that is
// not here is a bug and answers 500 (logged).
var statusOf = map[string]int{
	// Engine codes.
	engine.CodeInvalidQuantity:      http.StatusUnprocessableEntity,
	engine.CodeInvalidPrice:         http.StatusUnprocessableEntity,
	engine.CodeInvalidAmount:        http.StatusUnprocessableEntity,
	engine.CodeInvalidWindow:        http.StatusUnprocessableEntity,
	engine.CodeInvalidName:          http.StatusUnprocessableEntity,
	engine.CodeInvalidRole:          http.StatusUnprocessableEntity,
	engine.CodeInvalidType:          http.StatusUnprocessableEntity,
	engine.CodeInvalidPeg:           http.StatusUnprocessableEntity,
	engine.CodeUnknownMarket:        http.StatusUnprocessableEntity,
	engine.CodeInsufficientFunds:    http.StatusUnprocessableEntity,
	engine.CodeAmountTooLarge:       http.StatusUnprocessableEntity,
	engine.CodeNotFound:             http.StatusNotFound,
	engine.CodeForbidden:            http.StatusForbidden,
	engine.CodeDuplicateClientOrder: http.StatusUnprocessableEntity,
	engine.CodeIdempotencyReused:    http.StatusUnprocessableEntity,
	// Cancelling an order that is no longer open: 422, like every other
	// well-formed request that breaks a rule (the OpenAPI document lists
	// 422 for DELETE).
	engine.CodeNotOpen:        http.StatusUnprocessableEntity,
	engine.CodeDuplicateID:    http.StatusConflict,
	engine.CodeInvalidCommand: http.StatusUnprocessableEntity,

	// API codes.
	CodeMalformedJSON:    http.StatusBadRequest,
	CodeBadRequest:       http.StatusBadRequest,
	CodeUnknownField:     http.StatusUnprocessableEntity,
	CodeMissingField:     http.StatusUnprocessableEntity,
	CodeInvalidValue:     http.StatusUnprocessableEntity,
	CodeInvalidTime:      http.StatusUnprocessableEntity,
	CodeInvalidLimit:     http.StatusUnprocessableEntity,
	CodeInvalidCursor:    http.StatusUnprocessableEntity,
	CodeInvalidStatus:    http.StatusUnprocessableEntity,
	CodeInvalidInterval:  http.StatusUnprocessableEntity,
	CodeInvalidIdemKey:   http.StatusUnprocessableEntity,
	CodeInvalidClientID:  http.StatusUnprocessableEntity,
	CodeBodyTooLarge:     http.StatusRequestEntityTooLarge,
	CodeInvalidEncoding:  http.StatusBadRequest,
	CodeHeaderTooLarge:   http.StatusRequestHeaderFieldsTooLarge,
	CodeDuplicateKey:     http.StatusBadRequest,
	CodeUnauthorized:     http.StatusUnauthorized,
	CodeRateLimited:      http.StatusTooManyRequests,
	CodeTooManyConns:     http.StatusTooManyRequests,
	CodeUnavailable:      http.StatusServiceUnavailable,
	CodeNotReady:         http.StatusServiceUnavailable,
	CodeShuttingDown:     http.StatusServiceUnavailable,
	CodeTimeout:          http.StatusServiceUnavailable,
	CodeMethodNotAllowed: http.StatusMethodNotAllowed,
	CodeUnsupportedMedia: http.StatusUnsupportedMediaType,
	CodeUpgradeRequired:  http.StatusBadRequest,
	CodeForbiddenOrigin:  http.StatusForbidden,
	CodeInternal:         http.StatusInternalServerError,
	CodeNoLeader:         http.StatusServiceUnavailable,
	CodeWrongShard:       http.StatusUnprocessableEntity,
	CodeUnknownShard:     http.StatusUnprocessableEntity,
	CodeShardRequired:    http.StatusUnprocessableEntity,
	CodeSameShard:        http.StatusUnprocessableEntity,
}

// Problem is an RFC 9457 problem: what every failed request answers. It is
// also the error type handlers return; the error handler renders it.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Code   string `json:"code"`
	Detail string `json:"detail"`
	Field  string `json:"field"` // "" when no single input is at fault

	retryAfter int // seconds; 0 = no Retry-After header
}

func (p *Problem) Error() string {
	if p.Field != "" {
		return fmt.Sprintf("%d %s (%s): %s", p.Status, p.Code, p.Field, p.Detail)
	}
	return fmt.Sprintf("%d %s: %s", p.Status, p.Code, p.Detail)
}

// problem builds the Problem of a code; the status comes from statusOf.
func problem(code, field, detail string) *Problem {
	st, ok := statusOf[code]
	if !ok {
		st = http.StatusInternalServerError
	}
	p := &Problem{Type: problemTypePrefix + code, Title: http.StatusText(st), Status: st, Code: code, Detail: detail, Field: field}
	if st == http.StatusServiceUnavailable {
		p.retryAfter = defaultRetryAfterSecs
	}
	return p
}

func problemf(code, field, format string, args ...any) *Problem {
	return problem(code, field, fmt.Sprintf(format, args...))
}

// fromEngine maps an engine rejection.
func fromEngine(e *engine.Error) *Problem { return problem(e.Code, e.Field, e.Message) }

// fromSubmit maps a Go error of Sequencer.Submit.
func fromSubmit(err error) *Problem {
	switch {
	case errors.Is(err, sequencer.ErrUnavailable):
		return problem(CodeUnavailable, "", "the journal is unavailable; the outcome is unknown: retry later with the same Idempotency-Key")
	case errors.Is(err, sequencer.ErrNotReady):
		return problem(CodeNotReady, "", "the exchange is still recovering")
	case errors.Is(err, sequencer.ErrNotLeader):
		return problem(CodeNoLeader, "", "this node does not lead its shard right now (a standby, or a leader that stepped down): retry, with the same Idempotency-Key")
	case errors.Is(err, sequencer.ErrClosed):
		return problem(CodeShuttingDown, "", "the exchange is shutting down")
	}
	return problem(CodeTimeout, "", "the command did not complete in time; its outcome is unknown, retry with the same Idempotency-Key")
}

// writeProblem renders p.
func writeProblem(c *fiber.Ctx, p *Problem) error {
	if p.retryAfter > 0 {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(p.retryAfter))
	}
	c.Status(p.Status)
	b, err := jsonMarshal(p)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, problemContentType)
	return c.Send(b)
}

// errorHandler renders every error a handler or Fiber itself returns.
func (s *Server) errorHandler(c *fiber.Ctx, err error) error { return renderError(s.log, c, err) }

// renderError renders err as problem+json; anything but a *Problem or a
// Fiber error is logged and answers 500.
func renderError(log *slog.Logger, c *fiber.Ctx, err error) error {
	var p *Problem
	var fe *fiber.Error
	switch {
	case errors.As(err, &p):
	case errors.As(err, &fe):
		switch fe.Code {
		case fiber.StatusNotFound:
			p = problem(engine.CodeNotFound, "", "no such route")
		case fiber.StatusMethodNotAllowed:
			p = problem(CodeMethodNotAllowed, "", "method not allowed")
		case fiber.StatusRequestEntityTooLarge:
			p = problemf(CodeBodyTooLarge, "", "the request body is over %d bytes", BodyLimit)
		case fiber.StatusRequestHeaderFieldsTooLarge:
			p = problemf(CodeHeaderTooLarge, "", "the request line and headers are over %d bytes", HeaderLimit)
		case fiber.StatusUpgradeRequired:
			p = problem(CodeUpgradeRequired, "", "not a websocket upgrade request")
		case fiber.StatusBadRequest:
			p = problem(CodeBadRequest, "", fe.Message)
		default:
			p = &Problem{Type: "about:blank", Title: http.StatusText(fe.Code), Status: fe.Code, Code: "http_" + strconv.Itoa(fe.Code), Detail: fe.Message}
		}
	default:
		log.Error("request failed", "method", c.Method(), "path", c.Path(), "err", err)
		p = problem(CodeInternal, "", "internal error")
	}
	if p.Status == http.StatusInternalServerError && p.Code != CodeInternal {
		log.Error("unmapped error code", "code", p.Code, "detail", p.Detail)
	}
	return writeProblem(c, p)
}
