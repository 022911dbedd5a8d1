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
	// The folded keys of the open objects live back to back in one arena,
	// each object's after its parent's (an object's keys are dropped when
	// it closes), so a request body costs no allocation per key.
	type span struct{ start, end int }
	type object struct {
		first int             // the object's first key in spans
		arena int             // len(arena) when it opened
		many  map[string]bool // folded keys past smallKeys
		isObj bool            // false: an array
	}
	const smallKeys = 16
	var (
		stackBuf [8]object
		spanBuf  [32]span
		arenaBuf [512]byte
	)
	stack, spans, arena := stackBuf[:0], spanBuf[:0], arenaBuf[:0]
	expectKey := false
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '{':
			stack = append(stack, object{first: len(spans), arena: len(arena), isObj: true})
			expectKey = true
		case '[':
			stack = append(stack, object{first: len(spans), arena: len(arena)})
			expectKey = false
		case '}', ']':
			if len(stack) > 0 {
				o := stack[len(stack)-1]
				spans, arena = spans[:o.first], arena[:o.arena]
				stack = stack[:len(stack)-1]
			}
			expectKey = false
		case ',':
			expectKey = len(stack) > 0 && stack[len(stack)-1].isObj
		case '"':
			end, escaped := stringEnd(b, i+1)
			if expectKey && len(stack) > 0 {
				raw := b[i+1 : end]
				if escaped {
					var key string
					_ = json.Unmarshal(b[i:min(end+1, len(b))], &key)
					raw = []byte(key)
				}
				at := len(arena)
				arena = foldKey(arena, raw)
				folded := arena[at:]
				o := &stack[len(stack)-1]
				if o.many != nil {
					if o.many[string(folded)] {
						return string(raw), true
					}
					o.many[string(folded)] = true
				} else {
					for _, sp := range spans[o.first:] {
						if bytes.Equal(arena[sp.start:sp.end], folded) {
							return string(raw), true
						}
					}
					spans = append(spans, span{at, len(arena)})
					if len(spans)-o.first > smallKeys {
						o.many = make(map[string]bool, 2*smallKeys)
						for _, sp := range spans[o.first:] {
							o.many[string(arena[sp.start:sp.end])] = true
						}
						spans = spans[:o.first]
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

// foldKey appends in to out folded as encoding/json does when it matches
// keys to fields: ASCII upper case, and every other rune to the smallest
// rune of its Unicode fold set.
func foldKey(out, in []byte) []byte {
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
