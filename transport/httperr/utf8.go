package httperr

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"

	"chatd/internal/jsonhex"
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

// LoneSurrogate reports whether the JSON text data holds a \u escape of
// half of a UTF-16 surrogate pair without its other half (a high half
// \ud800 to \udbff not followed by the escape of a low half \udc00 to
// \udfff, or a low half alone): encoding/json quietly decodes such an
// escape as U+FFFD, so the text that arrives is not the text sent, as
// with invalid UTF-8. field is the dotted path of keys of the string value
// holding the first such escape ("" when a key holds it, or a value nested
// deeper than fieldAt follows), problem what to tell the client.
func LoneSurrogate(data []byte) (field, problem string, bad bool) {
	at := loneSurrogate(data)
	if at < 0 {
		return "", "", false
	}
	return fieldAt(data, at), "must be valid text: " + string(data[at:at+6]) +
		" is half of a UTF-16 surrogate pair, without its other half", true
}

// notText is DecodeJSON's answer to a body LoneSurrogate finds: 400
// invalid_field naming the field, else (in a key, or a value nested past
// what fieldAt follows) 400 bad_request.
func notText(body []byte) *Error {
	field, problem, bad := LoneSurrogate(body)
	switch {
	case !bad:
		return nil
	case field != "":
		return InvalidField(field, problem)
	}
	return BadRequest("the body " + problem)
}

// loneSurrogate is the offset of the first escaped lone surrogate of data
// (see LoneSurrogate), or -1. It walks the strings of data: "\\ud800" is
// an escaped backslash and the text "ud800", and a malformed escape is
// skipped (the decoder refuses it).
func loneSurrogate(data []byte) int {
	inString := false
	for i := 0; i < len(data); i++ {
		switch c := data[i]; {
		case c == '"':
			inString = !inString
		case c != '\\' || !inString:
		case !isUnicodeEscape(data, i):
			i++ // the escaped character: \" or \\ among them
		default:
			r := unicodeEscape(data, i)
			switch {
			case r >= 0xd800 && r < 0xdc00 && isUnicodeEscape(data, i+6) && isLowSurrogate(unicodeEscape(data, i+6)):
				i += 11 // the pair
			case r >= 0xd800 && r < 0xe000:
				return i
			default:
				i += 5
			}
		}
	}
	return -1
}

// isUnicodeEscape reports whether data holds \uXXXX (four hex digits) at i.
func isUnicodeEscape(data []byte, i int) bool {
	if i+6 > len(data) || data[i] != '\\' || data[i+1] != 'u' {
		return false
	}
	for _, c := range data[i+2 : i+6] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// unicodeEscape is the code unit of the \uXXXX escape at data[i].
func unicodeEscape(data []byte, i int) rune { return jsonhex.Rune(data[i+2:]) }

func isLowSurrogate(r rune) bool { return r >= 0xdc00 && r < 0xe000 }
