package api

import "testing"

func TestDuplicateKey(t *testing.T) {
	tests := []struct {
		name, in, want string
		dup            bool
	}{
		{"none", `{"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]}`, "", false},
		{"top level", `{"a":1,"a":2}`, "a", true},
		{"case", `{"quantity":1,"Quantity":2}`, "Quantity", true},
		{"kelvin sign folds to k", "{\"k\":1,\"\u212a\":2}", "\u212a", true},
		{"escaped", `{"a":1,"\u0061":2}`, "a", true},
		{"nested", `{"p":{"x":1,"y":2,"x":3}}`, "x", true},
		{"in an array", `[{"x":1},{"x":1,"x":2}]`, "x", true},
		{"key-like value", `{"a":"a","b":"a"}`, "", false},
		{"escaped quote in key", `{"a\"":1,"a":2}`, "", false},
		{"escaped quote dup", `{"a\"":1,"a\"":2}`, `a"`, true},
		{"sibling objects", `{"a":{"x":1},"b":{"x":1}}`, "", false},
		{"many keys", manyKeys(40, false), "", false},
		{"many keys dup", manyKeys(40, true), "k00", true},
		{"unterminated", `{"a":1,"b`, "", false},
		{"garbage", `}}]]"`, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, dup := duplicateKey([]byte(tt.in))
			if got != tt.want || dup != tt.dup {
				t.Errorf("duplicateKey(%s): got %q, %v; want %q, %v", tt.in, got, dup, tt.want, tt.dup)
			}
		})
	}
}

func manyKeys(n int, dup bool) string {
	s := "{"
	for i := range n {
		s += `"k` + string(rune('0'+i/10)) + string(rune('0'+i%10)) + `":1,`
	}
	if dup {
		s += `"k00":2,`
	}
	return s[:len(s)-1] + "}"
}

func TestParseFeedOp(t *testing.T) {
	tests := []struct {
		name, in string
		code     string
		channels int
	}{
		{"subscribe", `{"op":"subscribe","channels":["prices","prices","user"]}`, "", 2},
		{"duplicate op", `{"op":"auth","op":"subscribe","channels":["prices"]}`, CodeDuplicateKey, 0},
		{"not json", `{"op":`, CodeMalformedJSON, 0},
		{"no channels", `{"op":"subscribe"}`, CodeMissingField, 0},
		{"unknown op", `{"op":"publish"}`, CodeUnknownOp, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op, bad := parseFeedOp([]byte(tt.in))
			code := ""
			if bad != nil {
				code = bad.Code
			}
			if code != tt.code || len(op.channels) != tt.channels {
				t.Errorf("got %+v, %+v; want code %q and %d channels", op, bad, tt.code, tt.channels)
			}
		})
	}
}
