package api

import (
	"bytes"
	"encoding/json"
	"unicode"
	"unicode/utf8"
)

// duplicateKey reports the first key that appears twice in one object of
// the JSON text b, at any depth. encoding/json lets the last one win and
// matches keys without regard to case, so a proxy that checks the first
// "quantity" would be fooled by a second "QUANTITY": keys count as the
// same when encoding/json would treat them so (after unescaping, under
// its case folding).
//
// b should be valid JSON (decode it first: syntax errors are reported
// there, more precisely); on invalid input the answer is meaningless but
// the scan stays linear and bounded by len(b).
func duplicateKey(b []byte) (string, bool) {
	type object struct {
		small []string        // folded keys while few
		many  map[string]bool // folded keys past smallKeys
		isObj bool            // false: an array
	}
	const smallKeys = 16
	var stack []object
	expectKey := false
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '{':
			stack = append(stack, object{isObj: true})
			expectKey = true
		case '[':
			stack = append(stack, object{})
			expectKey = false
		case '}', ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			expectKey = false
		case ',':
			expectKey = len(stack) > 0 && stack[len(stack)-1].isObj
		case '"':
			end, escaped := stringEnd(b, i+1)
			if expectKey && len(stack) > 0 {
				raw := b[i+1 : end]
				key := string(raw)
				if escaped {
					_ = json.Unmarshal(b[i:min(end+1, len(b))], &key)
				}
				folded := string(foldKey([]byte(key)))
				o := &stack[len(stack)-1]
				if o.many != nil {
					if o.many[folded] {
						return key, true
					}
					o.many[folded] = true
				} else {
					for _, k := range o.small {
						if k == folded {
							return key, true
						}
					}
					o.small = append(o.small, folded)
					if len(o.small) > smallKeys {
						o.many = make(map[string]bool, 2*smallKeys)
						for _, k := range o.small {
							o.many[k] = true
						}
						o.small = nil
					}
				}
				expectKey = false
			}
			i = end
		}
	}
	return "", false
}

// stringEnd returns the index of the quote closing the string whose
// content starts at i (len(b) when unterminated), and whether it holds an
// escape.
func stringEnd(b []byte, i int) (int, bool) {
	escaped := false
	for i < len(b) {
		j := bytes.IndexAny(b[i:], `"\`)
		if j < 0 {
			return len(b), escaped
		}
		i += j
		if b[i] == '"' {
			return i, escaped
		}
		escaped = true
		i += 2 // the backslash and the character it escapes
	}
	return len(b), escaped
}

// foldKey folds a key as encoding/json does when it matches keys to
// fields: ASCII upper case, and every other rune to the smallest rune of
// its Unicode fold set.
func foldKey(in []byte) []byte {
	out := make([]byte, 0, len(in))
	for i := 0; i < len(in); {
		if c := in[i]; c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			out = append(out, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(in[i:])
		for {
			r2 := unicode.SimpleFold(r)
			if r2 <= r {
				r = r2
				break
			}
			r = r2
		}
		out = utf8.AppendRune(out, r)
		i += n
	}
	return out
}
