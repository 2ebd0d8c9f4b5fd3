package protocol

import "unicode"

// brailleBlank is U+2800 BRAILLE PATTERN BLANK, a symbol that shows nothing.
const brailleBlank = '\u2800'

// HasVisible reports whether s holds a character that shows: a letter,
// mark, number, punctuation, symbol or private-use character, other than
// the default-ignorable ones (the Hangul fillers U+115F, U+1160, U+3164
// and U+FFA0, variation selectors, U+034F) and U+2800 braille blank. White
// space, format characters (U+200B, U+FEFF) and controls (U+0085) alone
// show nothing: a send of them is refused (content is required). The
// client's lib/visible.ts applies the same rule before sending.
func HasVisible(s string) bool {
	for _, r := range s {
		if visible(r) {
			return true
		}
	}
	return false
}

// visible reports whether r alone shows (HasVisible).
func visible(r rune) bool {
	if r == brailleBlank || unicode.In(r, unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector) {
		return false
	}
	return unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Co)
}
