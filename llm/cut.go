package llm

import "unicode"

// CutText returns the longest start of s that holds at most maxChars
// characters (code points) and ends between two user-perceived characters
// (see joined): a cut never leaves half a flag, a flag's tags without
// their cancel tag, an emoji sequence ending in its joiner, or a letter
// without its combining marks. It returns s when s is short enough. When
// the first user-perceived character alone is longer (a letter under
// dozens of marks, a flag with dozens of tags), it is cut by code point,
// without the tag characters that leaves outside an emoji tag sequence
// (titleText), which TitleProblem refuses.
func CutText(s string, maxChars int) string {
	rs := []rune(s)
	if len(rs) <= maxChars {
		return s
	}
	cut, ris := 0, 0 // ris: regional indicators in a row ending at rs[i-1]
	for i := 1; i <= maxChars; i++ {
		if unicode.Is(unicode.Regional_Indicator, rs[i-1]) {
			ris++
		} else {
			ris = 0
		}
		if !joined(rs[i-1], rs[i], ris) {
			cut = i
		}
	}
	if cut == 0 {
		return titleText(string(rs[:maxChars]))
	}
	return string(rs[:cut])
}

// joined reports whether r belongs to the user-perceived character
// (grapheme cluster) of prev, the last of ris regional indicators in a row
// (0 when prev is none). It is a short form of Unicode's extended grapheme
// cluster rules (UAX #29) for the text a title or message holds: regional
// indicators pair into flags; marks, variation selectors, emoji modifiers,
// tag characters (a flag's emoji tag sequence) and joiners extend what
// precedes them; whatever follows a zero-width joiner joins it (an emoji
// ZWJ sequence); and a prepended concatenation mark (U+0600) joins what
// follows it. It joins no Hangul jamo: precomposed syllables, which text
// holds, are one code point each.
func joined(prev, r rune, ris int) bool {
	switch {
	case unicode.Is(unicode.Regional_Indicator, r) && ris > 0:
		return ris%2 == 1
	case prev == zwj, unicode.Is(unicode.Prepended_Concatenation_Mark, prev):
		return true
	}
	return extends(r)
}

// extends reports whether r extends the character before it: Unicode's
// Grapheme_Extend (marks, variation selectors, the zero-width non-joiner,
// tag characters), spacing marks, the zero-width joiner and the emoji
// skin-tone modifiers.
func extends(r rune) bool {
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Mc, unicode.Other_Grapheme_Extend) ||
		r == zwj || r >= '\U0001F3FB' && r <= '\U0001F3FF'
}
