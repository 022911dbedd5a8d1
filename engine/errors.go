package engine

// Error is a rejection the caller can act on. Code is stable and
// machine-readable; Field names the offending input when there is one.
type Error struct {
	Code    string
	Field   string
	Message string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return e.Code + " (" + e.Field + "): " + e.Message
	}
	return e.Code + ": " + e.Message
}

// Stable error codes.
const (
	CodeInvalidQuantity      = "invalid_quantity"
	CodeInvalidPrice         = "invalid_price"
	CodeInvalidAmount        = "invalid_amount"
	CodeInvalidWindow        = "invalid_window"
	CodeInvalidName          = "invalid_name"
	CodeInvalidRole          = "invalid_role"
	CodeInvalidType          = "invalid_type"
	CodeInvalidPeg           = "invalid_peg"
	CodeUnknownMarket        = "unknown_market"
	CodeInsufficientFunds    = "insufficient_funds"
	CodeAmountTooLarge       = "amount_too_large" // the effect would pass a money bound (money.go)
	CodeNotFound             = "not_found"
	CodeForbidden            = "forbidden"
	CodeDuplicateClientOrder = "duplicate_client_order_id"
	CodeIdempotencyReused    = "idempotency_key_reused"
	CodeNotOpen              = "not_open"
	CodeDuplicateID          = "duplicate_id"
	CodeInvalidCommand       = "invalid_command"
)

func errorf(code, field, msg string) *Error {
	return &Error{Code: code, Field: field, Message: msg}
}
