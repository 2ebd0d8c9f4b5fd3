// Package jsonhex reads and writes the hex digits of JSON \uXXXX escapes
// and decodes JSON string contents, for the scanners that look at JSON
// text without decoding it.
package jsonhex

import (
	"unicode/utf16"
	"unicode/utf8"
)

// Digits are the hex digits, lower case, that encoders of JSON text write
// in a \u00XX escape: Digits[c>>4] and Digits[c&0xf].
const Digits = "0123456789abcdef"

// Rune returns the UTF-16 code unit that the four hex digits h starts with
// stand for (either case). The caller has checked that they are hex digits.
func Rune(h []byte) rune {
	var r rune
	for _, c := range h[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c <= 'F':
			c -= 'A' - 10
		default:
			c -= 'a' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// AppendUnquoted appends s, the inside of a JSON string (without its
// quotes), decoded as encoding/json decodes it, to buf: an invalid UTF-8
// byte and a lone surrogate become U+FFFD. s is meant to be valid JSON; on
// other input (a truncated escape, say) it neither panics nor reads past
// s, and appends valid UTF-8, but what it appends is not specified.
func AppendUnquoted(buf, s []byte) []byte {
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == '\\' && i+1 < len(s) && s[i+1] == 'u' && i+6 <= len(s):
			r := Rune(s[i+2:])
			i += 6
			if utf16.IsSurrogate(r) {
				if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
					if dec := utf16.DecodeRune(r, Rune(s[i+2:])); dec != utf8.RuneError {
						buf = utf8.AppendRune(buf, dec)
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			buf = utf8.AppendRune(buf, r)
		case c == '\\' && i+1 < len(s):
			buf = append(buf, unescaped[s[i+1]])
			i += 2
		case c < utf8.RuneSelf:
			buf = append(buf, c)
			i++
		default:
			r, n := utf8.DecodeRune(s[i:])
			buf = utf8.AppendRune(buf, r)
			i += n
		}
	}
	return buf
}

// unescaped maps the byte after a backslash to the byte it stands for.
var unescaped = [256]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}
