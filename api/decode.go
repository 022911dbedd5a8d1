package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/pricing"
)

// BodyLimit is the largest request body accepted (413 above it).
const BodyLimit = 1 << 20

// Limits the API enforces before the engine sees a request.
const (
	maxNameLen          = 100
	maxClientOrderIDLen = 64
	maxIdemKeyLen       = 255
	maxProviderLen      = 64
)

// decodeStrict decodes one JSON object from body into v: unknown fields,
// trailing data and type mismatches are rejected. fieldCode picks the code
// of a type mismatch in a given field.
func decodeStrict(body []byte, v any, fieldCode func(field string) string) *Problem {
	if len(bytes.TrimSpace(body)) == 0 {
		return problem(CodeMalformedJSON, "", "the request body is empty; a JSON object is expected")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonProblem(err, "", fieldCode)
	}
	if _, err := dec.Token(); err != io.EOF {
		return problem(CodeMalformedJSON, "", "unexpected data after the JSON object")
	}
	if key, dup := duplicateKey(body); dup {
		return problemf(CodeDuplicateKey, truncate(key, 64), "the key %q appears twice in one object (keys match regardless of case); send each once", truncate(key, 64))
	}
	return nil
}

// jsonProblem maps an encoding/json error; prefix is prepended to field
// names (for nested objects such as pegs).
func jsonProblem(err error, prefix string, fieldCode func(string) string) *Problem {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return problemf(CodeMalformedJSON, "", "malformed JSON: %v", err)
	case errors.As(err, &typ):
		field := joinField(prefix, typ.Field)
		if typ.Field == "" {
			return problemf(CodeInvalidValue, prefix, "expected a JSON object, got %s", typ.Value)
		}
		code := CodeInvalidValue
		if fieldCode != nil {
			code = fieldCode(field)
		}
		return problemf(code, field, "%s: expected %s, got JSON %s", field, jsonKind(typ.Type.Kind().String()), typ.Value)
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		field := joinField(prefix, name)
		return problemf(CodeUnknownField, field, "unknown field %q", field)
	}
	return problemf(CodeMalformedJSON, "", "malformed JSON: %v", err)
}

func jsonKind(k string) string {
	switch k {
	case "int64", "int", "uint64":
		return "an integer"
	case "string", "ptr":
		return "a string"
	case "slice":
		return "an array"
	case "struct", "map":
		return "an object"
	}
	return k
}

func joinField(prefix, f string) string {
	if prefix == "" {
		return f
	}
	if f == "" {
		return prefix
	}
	return prefix + "." + f
}

// fieldCodes maps a mistyped field to the code its validation failure
// would carry.
func fieldCodes(field string) string {
	switch {
	case field == "quantity" || field == "min_quantity":
		return engine.CodeInvalidQuantity
	case field == "amount":
		return engine.CodeInvalidAmount
	case field == "start" || field == "end" || field == "expires_at":
		return CodeInvalidTime
	case field == "type":
		return engine.CodeInvalidType
	case field == "market":
		return engine.CodeUnknownMarket
	case field == "name":
		return engine.CodeInvalidName
	case strings.HasPrefix(field, "roles"):
		return engine.CodeInvalidRole
	case field == "client_order_id":
		return CodeInvalidClientID
	case strings.Contains(field, "."):
		return engine.CodeInvalidPeg
	case strings.HasSuffix(field, "price") || strings.HasSuffix(field, "floor"):
		return engine.CodeInvalidPrice
	}
	return CodeInvalidValue
}

// checker validates inputs against the clock and the market catalogue.
type checker struct {
	now       time.Time
	hasMarket func(id string) bool
}

func (k checker) nowTicks() engine.Time { return engine.Time(k.now.UnixMilli()) }

func (k checker) market(p *string) (string, *Problem) {
	if p == nil {
		return "", problem(CodeMissingField, "market", "market is required")
	}
	if !engine.ValidMarketID(*p) || !k.hasMarket(*p) {
		return "", problemf(engine.CodeUnknownMarket, "market", "unknown market %q", truncate(*p, 64))
	}
	return *p, nil
}

func quantity(p *int64, field string, required bool) (int64, *Problem) {
	if p == nil {
		if required {
			return 0, problemf(CodeMissingField, field, "%s is required", field)
		}
		return 0, nil
	}
	if *p <= 0 || *p > engine.MaxQuantity {
		return 0, problemf(engine.CodeInvalidQuantity, field, "%s must be an integer between 1 and %d", field, engine.MaxQuantity)
	}
	return *p, nil
}

// parseTime parses an RFC 3339 time.
func parseTime(p *string, field string, required bool) (engine.Time, *Problem) {
	if p == nil {
		if required {
			return 0, problemf(CodeMissingField, field, "%s is required", field)
		}
		return 0, nil
	}
	t, err := time.Parse(time.RFC3339Nano, *p)
	if err != nil {
		return 0, problemf(CodeInvalidTime, field, "%s must be an RFC 3339 time such as 2026-12-01T08:00:00Z", field)
	}
	if t.Year() < 2000 || t.Year() > 9000 {
		return 0, problemf(CodeInvalidTime, field, "%s is out of range", field)
	}
	if t.Nanosecond()%int(time.Millisecond) != 0 {
		return 0, problemf(CodeInvalidTime, field, "%s has more than millisecond precision", field)
	}
	return engine.Time(t.UnixMilli()), nil
}

// window checks [start, end): whole hours, start before end, end at most
// MaxHorizon ahead; future demands start after now (reserved bids),
// otherwise start may be the hour under way (listings).
func (k checker) window(start, end engine.Time, future bool) *Problem {
	now := k.nowTicks()
	switch {
	case start%engine.Hour != 0:
		return problem(engine.CodeInvalidWindow, "start", "start must be a whole UTC hour")
	case end%engine.Hour != 0:
		return problem(engine.CodeInvalidWindow, "end", "end must be a whole UTC hour")
	case end <= start:
		return problem(engine.CodeInvalidWindow, "end", "end must be after start")
	case future && start <= now:
		return problem(engine.CodeInvalidWindow, "start", "start must be a whole hour in the future")
	case !future && start < now.HourStart():
		return problem(engine.CodeInvalidWindow, "start", "start must not be before the current hour")
	case end > now+engine.MaxHorizon:
		return problem(engine.CodeInvalidWindow, "end", "end must be at most 366 days ahead")
	}
	return nil
}

// parsePositivePrice parses a decimal price string: at most 4 places,
// positive, at most pricing.MaxPrice.
func parsePositivePrice(s, field string) (engine.Price, *Problem) {
	v, err := pricing.ParsePrice(s)
	if err != nil || v <= 0 {
		return 0, problemf(engine.CodeInvalidPrice, field, "%s must be a positive decimal string with at most 4 places, at most %s", field, pricing.FormatPrice(pricing.MaxPrice))
	}
	return engine.Price(v), nil
}

// parseSigned parses a decimal with an optional leading minus sign and at
// most 4 places into ticks.
func parseSigned(s string) (int64, bool) {
	neg := strings.HasPrefix(s, "-")
	v, err := engine.ParseTicks(strings.TrimPrefix(s, "-"))
	if err != nil {
		return 0, false
	}
	if neg {
		v = -v
	}
	return v, true
}

// pegKinds says which peg kinds a price field takes.
type pegKinds uint8

const (
	allowRef pegKinds = 1 << iota
	allowSpot
)

// priceSpec is a validated price field: a fixed price or a peg.
type priceSpec struct {
	Fixed engine.Price `json:"fixed,omitempty"`
	Peg   engine.Peg   `json:"peg"`
}

type pegJSON struct {
	Peg      *string `json:"peg"`
	Provider *string `json:"provider"`
	Discount *string `json:"discount"`
	Offset   *string `json:"offset"`
	Cap      *string `json:"cap"`
	Floor    *string `json:"floor"`
}

func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}

// parsePrice validates a price field: a decimal string or a peg object.
func parsePrice(raw json.RawMessage, field string, kinds pegKinds) (priceSpec, *Problem) {
	t := bytes.TrimSpace(raw)
	switch {
	case isNull(t):
		return priceSpec{}, problemf(CodeMissingField, field, "%s is required", field)
	case t[0] == '"':
		var s string
		if err := json.Unmarshal(t, &s); err != nil {
			return priceSpec{}, problemf(engine.CodeInvalidPrice, field, "%s: %v", field, err)
		}
		p, pr := parsePositivePrice(s, field)
		return priceSpec{Fixed: p}, pr
	case t[0] == '{':
		return parsePeg(t, field, kinds)
	}
	return priceSpec{}, problemf(engine.CodeInvalidPrice, field, "%s must be a decimal string such as \"2.39\" or a peg object", field)
}

func parsePeg(raw []byte, field string, kinds pegKinds) (priceSpec, *Problem) {
	var pj pegJSON
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&pj); err != nil {
		return priceSpec{}, jsonProblem(err, field, func(string) string { return engine.CodeInvalidPeg })
	}
	var peg engine.Peg
	unexpected := func(name string) *Problem {
		f := field + "." + name
		return problemf(CodeUnknownField, f, "%s is not a field of a %s peg", f, *pj.Peg)
	}
	if pj.Peg == nil {
		return priceSpec{}, problemf(CodeMissingField, field+".peg", "a peg object needs \"peg\": \"reference\" or \"spot\"")
	}
	switch *pj.Peg {
	case "reference":
		if kinds&allowRef == 0 {
			return priceSpec{}, problemf(engine.CodeInvalidPeg, field, "%s cannot be pegged to a reference rate", field)
		}
		if pj.Offset != nil {
			return priceSpec{}, unexpected("offset")
		}
		if pj.Provider == nil || *pj.Provider == "" || len(*pj.Provider) > maxProviderLen {
			return priceSpec{}, problemf(engine.CodeInvalidPeg, field+".provider", "a reference peg needs a provider such as \"aws\"")
		}
		if pj.Discount == nil {
			return priceSpec{}, problemf(engine.CodeInvalidPeg, field+".discount", "a reference peg needs a discount such as \"0.40\"")
		}
		d, ok := parseSigned(*pj.Discount)
		if !ok || d <= -engine.TicksPerUSD || d >= engine.TicksPerUSD {
			return priceSpec{}, problemf(engine.CodeInvalidPeg, field+".discount", "discount must be a decimal string between -1 and 1 (exclusive) with at most 4 places")
		}
		peg = engine.Peg{Kind: engine.PegReference, Provider: pricing.ProviderID(*pj.Provider), Discount: d}
		if peg.Provider == "" {
			return priceSpec{}, problemf(engine.CodeInvalidPeg, field+".provider", "a reference peg needs a provider such as \"aws\"")
		}
	case "spot":
		if kinds&allowSpot == 0 {
			return priceSpec{}, problemf(engine.CodeInvalidPeg, field, "%s cannot follow the spot price", field)
		}
		if pj.Provider != nil {
			return priceSpec{}, unexpected("provider")
		}
		if pj.Discount != nil {
			return priceSpec{}, unexpected("discount")
		}
		if pj.Offset == nil {
			return priceSpec{}, problemf(engine.CodeInvalidPeg, field+".offset", "a spot peg needs an offset such as \"-0.10\"")
		}
		o, ok := parseSigned(*pj.Offset)
		if !ok || o <= -engine.MaxPrice || o >= engine.MaxPrice {
			return priceSpec{}, problemf(engine.CodeInvalidPeg, field+".offset", "offset must be a decimal string with at most 4 places, less than 100000 in size")
		}
		peg = engine.Peg{Kind: engine.PegSpot, Offset: engine.Price(o)}
	default:
		return priceSpec{}, problemf(engine.CodeInvalidPeg, field+".peg", "peg must be \"reference\" or \"spot\"")
	}
	if pj.Cap != nil {
		c, pr := parsePositivePrice(*pj.Cap, field+".cap")
		if pr != nil {
			pr.Code, pr.Type = engine.CodeInvalidPeg, problemTypePrefix+engine.CodeInvalidPeg
			return priceSpec{}, pr
		}
		peg.Cap = c
	}
	if pj.Floor != nil {
		f, pr := parsePositivePrice(*pj.Floor, field+".floor")
		if pr != nil {
			pr.Code, pr.Type = engine.CodeInvalidPeg, problemTypePrefix+engine.CodeInvalidPeg
			return priceSpec{}, pr
		}
		peg.Floor = f
	}
	if peg.Cap != 0 && peg.Floor > peg.Cap {
		return priceSpec{}, problemf(engine.CodeInvalidPeg, field+".floor", "floor must not be above cap")
	}
	return priceSpec{Peg: peg}, nil
}

func (p priceSpec) apply(price *engine.Price, peg *engine.Peg) {
	*price, *peg = p.Fixed, p.Peg
}

// ---- requests ----

type createAccountJSON struct {
	Name  *string  `json:"name"`
	Roles []string `json:"roles"`
}

type createAccountInput struct {
	Name  string
	Roles engine.Role
}

func decodeCreateAccount(body []byte) (createAccountInput, *Problem) {
	var r createAccountJSON
	if p := decodeStrict(body, &r, fieldCodes); p != nil {
		return createAccountInput{}, p
	}
	return r.validate()
}

func (r createAccountJSON) validate() (createAccountInput, *Problem) {
	if r.Name == nil {
		return createAccountInput{}, problem(CodeMissingField, "name", "name is required")
	}
	if n := len(*r.Name); n == 0 || n > maxNameLen || strings.TrimSpace(*r.Name) == "" {
		return createAccountInput{}, problemf(engine.CodeInvalidName, "name", "name must be 1 to %d characters", maxNameLen)
	}
	if i, r := badNameRune(*r.Name); i >= 0 {
		return createAccountInput{}, problemf(engine.CodeInvalidName, "name", "name must not hold control characters, bidi formatting or invalid UTF-8: %U at byte %d", r, i)
	}
	if len(r.Roles) == 0 {
		return createAccountInput{}, problem(engine.CodeInvalidRole, "roles", "roles must list buyer, owner or both")
	}
	var roles engine.Role
	for _, name := range r.Roles {
		switch name {
		case "buyer":
			roles |= engine.RoleBuyer
		case "owner":
			roles |= engine.RoleOwner
		default:
			return createAccountInput{}, problemf(engine.CodeInvalidRole, "roles", "unknown role %q: roles are buyer and owner", truncate(name, 32))
		}
	}
	return createAccountInput{Name: *r.Name, Roles: roles}, nil
}

type amountJSON struct {
	Amount *string `json:"amount"`
	// Shard names the wallet of a sharded deployment (optional).
	Shard *string `json:"shard"`
}

// maxShardLen bounds a shard name a client sends (names are regions:
// engine.ValidMarketID allows 32 characters).
const maxShardLen = 64

func decodeAmount(body []byte) (engine.Money, *Problem) {
	m, _, p := DecodeMoneyMove(body)
	return m, p
}

// DecodeMoneyMove validates the body of a deposit or withdrawal:
// {"amount", "shard"?}. shard is "" when absent. Codes: malformed_json,
// unknown_field, duplicate_key, missing_field (amount), invalid_amount,
// invalid_value (shard empty or over 64 bytes).
func DecodeMoneyMove(body []byte) (amount engine.Money, shard string, p *Problem) {
	var r amountJSON
	if p := decodeStrict(body, &r, fieldCodes); p != nil {
		return 0, "", p
	}
	if r.Amount == nil {
		return 0, "", problem(CodeMissingField, "amount", "amount is required")
	}
	v, err := engine.ParseTicks(*r.Amount)
	if err != nil || v <= 0 || v > engine.MaxAmount {
		return 0, "", problem(engine.CodeInvalidAmount, "amount", "amount must be a positive decimal string with at most 4 places, at most 1000000000000")
	}
	if r.Shard != nil {
		if n := len(*r.Shard); n == 0 || n > maxShardLen {
			return 0, "", problemf(CodeInvalidValue, "shard", "shard must be a shard name of 1 to %d bytes", maxShardLen)
		}
		shard = *r.Shard
	}
	return engine.Money(v), shard, nil
}

type listingJSON struct {
	Market         *string         `json:"market"`
	Quantity       *int64          `json:"quantity"`
	Start          *string         `json:"start"`
	End            *string         `json:"end"`
	ReservePrice   json.RawMessage `json:"reserve_price"`
	SpotPriceFloor json.RawMessage `json:"spot_price_floor"`
}

// listingInput is a validated listing request; its JSON form is the
// canonical body the idempotency hash covers.
type listingInput struct {
	Market    string
	Quantity  int64
	Start     engine.Time
	End       engine.Time
	Reserve   priceSpec
	SpotFloor *priceSpec
}

func (k checker) decodeListing(body []byte) (listingInput, *Problem) {
	var r listingJSON
	if p := decodeStrict(body, &r, fieldCodes); p != nil {
		return listingInput{}, p
	}
	var in listingInput
	var p *Problem
	if in.Market, p = k.market(r.Market); p != nil {
		return in, p
	}
	if in.Quantity, p = quantity(r.Quantity, "quantity", true); p != nil {
		return in, p
	}
	if in.Start, p = parseTime(r.Start, "start", true); p != nil {
		return in, p
	}
	if in.End, p = parseTime(r.End, "end", true); p != nil {
		return in, p
	}
	if p = k.window(in.Start, in.End, false); p != nil {
		return in, p
	}
	if in.Reserve, p = parsePrice(r.ReservePrice, "reserve_price", allowRef|allowSpot); p != nil {
		return in, p
	}
	if !isNull(r.SpotPriceFloor) {
		f, p := parsePrice(r.SpotPriceFloor, "spot_price_floor", allowRef)
		if p != nil {
			return in, p
		}
		in.SpotFloor = &f
	}
	return in, nil
}

func (in listingInput) command() engine.Command {
	c := engine.Command{Kind: engine.CmdPlaceListing, Market: in.Market, Quantity: in.Quantity, Start: in.Start, End: in.End}
	in.Reserve.apply(&c.Price, &c.PricePeg)
	if in.SpotFloor != nil {
		in.SpotFloor.apply(&c.SpotFloor, &c.SpotFloorPeg)
	}
	return c
}

type bidJSON struct {
	Type          *string         `json:"type"`
	Market        *string         `json:"market"`
	Quantity      *int64          `json:"quantity"`
	Start         *string         `json:"start"`
	End           *string         `json:"end"`
	LimitPrice    json.RawMessage `json:"limit_price"`
	MinQuantity   *int64          `json:"min_quantity"`
	ExpiresAt     *string         `json:"expires_at"`
	ClientOrderID *string         `json:"client_order_id"`
	DurationHours *int64          `json:"duration_hours"`
}

// bidInput is a validated bid request; its JSON form is the canonical body
// the idempotency hash covers.
type bidInput struct {
	Type          engine.BidType
	Market        string
	Quantity      int64
	Start, End    engine.Time
	Limit         priceSpec
	MinQuantity   int64
	ExpiresAt     engine.Time
	ClientOrderID string
	DurationHours int64 `json:",omitempty"` // flexible reserved bid; omitted keeps older hashes
}

func (k checker) decodeBid(body []byte) (bidInput, *Problem) {
	var r bidJSON
	if p := decodeStrict(body, &r, fieldCodes); p != nil {
		return bidInput{}, p
	}
	var in bidInput
	var p *Problem
	if r.Type == nil {
		return in, problem(CodeMissingField, "type", "type is required: reserved or spot")
	}
	switch *r.Type {
	case "reserved":
		in.Type = engine.Reserved
	case "spot":
		in.Type = engine.Spot
	default:
		return in, problemf(engine.CodeInvalidType, "type", "type must be reserved or spot, not %q", truncate(*r.Type, 32))
	}
	if in.Market, p = k.market(r.Market); p != nil {
		return in, p
	}
	if in.Quantity, p = quantity(r.Quantity, "quantity", true); p != nil {
		return in, p
	}
	if in.Type == engine.Spot {
		for _, f := range []struct {
			name string
			set  bool
		}{{"start", r.Start != nil}, {"end", r.End != nil}, {"min_quantity", r.MinQuantity != nil}, {"expires_at", r.ExpiresAt != nil}, {"duration_hours", r.DurationHours != nil}} {
			if f.set {
				return in, problemf(CodeUnknownField, f.name, "a spot bid has no %s", f.name)
			}
		}
		if in.Limit, p = parsePrice(r.LimitPrice, "limit_price", allowRef); p != nil {
			return in, p
		}
	} else {
		if in.Start, p = parseTime(r.Start, "start", true); p != nil {
			return in, p
		}
		if in.End, p = parseTime(r.End, "end", true); p != nil {
			return in, p
		}
		if p = k.window(in.Start, in.End, true); p != nil {
			return in, p
		}
		if in.Limit, p = parsePrice(r.LimitPrice, "limit_price", allowRef|allowSpot); p != nil {
			return in, p
		}
		if in.MinQuantity, p = quantity(r.MinQuantity, "min_quantity", false); p != nil {
			return in, p
		}
		if in.MinQuantity > in.Quantity {
			return in, problem(engine.CodeInvalidQuantity, "min_quantity", "min_quantity must not be above quantity")
		}
		if in.ExpiresAt, p = parseTime(r.ExpiresAt, "expires_at", false); p != nil {
			return in, p
		}
		if r.ExpiresAt != nil && in.ExpiresAt <= k.nowTicks() {
			return in, problem(engine.CodeInvalidWindow, "expires_at", "expires_at must be in the future")
		}
		if r.DurationHours != nil { // bounds (1 to the window, window ≤ 31 days) are the engine's
			if *r.DurationHours <= 0 {
				return in, problem(engine.CodeInvalidWindow, "duration_hours", "duration_hours must be at least 1")
			}
			in.DurationHours = *r.DurationHours
		}
	}
	if r.ClientOrderID != nil {
		id := *r.ClientOrderID
		if id == "" || len(id) > maxClientOrderIDLen {
			return in, problemf(CodeInvalidClientID, "client_order_id", "client_order_id must be 1 to %d characters", maxClientOrderIDLen)
		}
		in.ClientOrderID = id
	}
	return in, nil
}

func (in bidInput) command() engine.Command {
	c := engine.Command{
		Kind: engine.CmdPlaceBid, BidType: in.Type, Market: in.Market, Quantity: in.Quantity,
		Start: in.Start, End: in.End, MinQuantity: in.MinQuantity, ExpiresAt: in.ExpiresAt,
		ClientOrderID: in.ClientOrderID, DurationHours: in.DurationHours,
	}
	in.Limit.apply(&c.Price, &c.PricePeg)
	return c
}

// idemHash is the idempotency fingerprint of a request: method, path and
// the canonical form of the validated body, so formatting differences of
// the same request do not count as a different body.
func idemHash(method, path string, canonical any) [32]byte {
	b, _ := json.Marshal(canonical)
	h := sha256.New()
	h.Write([]byte(method))
	h.Write([]byte{' '})
	h.Write([]byte(path))
	h.Write([]byte{'\n'})
	h.Write(b)
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// badNameRune returns the byte offset and rune of the first character a
// name must not hold, or -1: control characters (C0, DEL, C1; NUL
// among them), bidi embeddings, overrides, isolates and marks (they make a
// name display as another: "acme\u202egnp.exe"), and U+FFFD, which is what
// invalid UTF-8 in a JSON string decodes to.
func badNameRune(s string) (int, rune) {
	for i, r := range s {
		switch {
		case r < 0x20, r >= 0x7f && r <= 0x9f:
		case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		case r == 0x200e, r == 0x200f, r == 0x061c:
		case r == utf8.RuneError:
		default:
			continue
		}
		return i, r
	}
	return -1, 0
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
