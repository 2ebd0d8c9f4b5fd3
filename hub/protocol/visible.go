package protocol

import "unicode"

// brailleBlank is U+2800 BRAILLE PATTERN BLANK, a symbol that shows nothing.
const brailleBlank = '\u2800'

// HasVisible reports whether s holds a character that shows: any
// character but white space, controls (U+0085), format characters
// (U+200B, U+FEFF, U+00AD, tag characters), surrogates, the
// default-ignorable ones (the Hangul fillers U+115F, U+1160, U+3164 and
// U+FFA0, variation selectors, U+034F) and U+2800 braille blank. A send
// of those alone is refused (content is required). The rule names what
// does not show, so that a character newer than this build's Unicode
// tables (Go's are 15.0; browsers know 16 and 17: an Emoji 16 symbol)
// counts as showing, as it does in the client's lib/visible.ts, which
// applies the same rule before sending.
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
	return r != brailleBlank && !unicode.In(r, unicode.White_Space, unicode.Cc, unicode.Cf, unicode.Cs,
		unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector)
}
