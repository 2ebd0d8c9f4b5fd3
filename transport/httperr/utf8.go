package httperr

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// notUTF8 is DecodeJSON's answer to a body that is not valid UTF-8: 400
// invalid_field naming the field whose string value holds the first
// invalid byte (its path of keys, dotted, as for a value of the wrong
// type), else (a bad byte in a key, or outside any string) 400 bad_request.
func notUTF8(body []byte) *Error {
	if field := fieldAt(body, firstInvalid(body)); field != "" {
		return InvalidField(field, "must be valid UTF-8")
	}
	return BadRequest("the body is not valid UTF-8")
}

// firstInvalid is the offset of the first byte of body that is not part of
// valid UTF-8, or len(body).
func firstInvalid(body []byte) int {
	for i := 0; i < len(body); {
		r, size := utf8.DecodeRune(body[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return len(body)
}

// maxFieldDepth bounds the nesting fieldAt follows (a body of a million
// '[' would otherwise cost it a level each).
const maxFieldDepth = 32

// jsonLevel is one open object or array while fieldAt walks a body.
type jsonLevel struct {
	object  bool
	wantKey bool   // an object expecting a key next
	key     string // an object's key of the value being read
}

// fieldAt returns the dotted path of keys of the string value of body that
// spans offset at, or "" when no string value does (the offset falls in a
// key, outside any string, or after a syntax error).
func fieldAt(body []byte, at int) string {
	dec := json.NewDecoder(bytes.NewReader(body))
	var stack []jsonLevel
	for {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		end := dec.InputOffset()
		top := len(stack) - 1
		isKey := top >= 0 && stack[top].object && stack[top].wantKey
		if s, ok := tok.(string); ok && isKey {
			if start <= int64(at) && int64(at) < end {
				return ""
			}
			stack[top].key, stack[top].wantKey = s, false
			continue
		}
		if _, ok := tok.(string); ok && start <= int64(at) && int64(at) < end {
			return path(stack)
		}
		if len(stack) >= maxFieldDepth {
			return "" // a field that deep is not named: the walk stays small
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, jsonLevel{object: true, wantKey: true})
			continue
		case json.Delim('['):
			stack = append(stack, jsonLevel{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:top]
		}
		if n := len(stack) - 1; n >= 0 && stack[n].object {
			stack[n].wantKey = true // a value ended: a key comes next
		}
	}
}

// path joins the keys of the objects on stack.
func path(stack []jsonLevel) string {
	var keys []string
	for _, l := range stack {
		if l.object {
			keys = append(keys, l.key)
		}
	}
	return strings.Join(keys, ".")
}
