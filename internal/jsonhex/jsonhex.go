// Package jsonhex reads the four hex digits of a JSON \uXXXX escape, for
// the scanners that look at JSON text without decoding it.
package jsonhex

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
