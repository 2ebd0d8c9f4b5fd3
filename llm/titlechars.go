package llm

import "unicode"

// The characters a conversation's title may hold, whoever names it: the
// API refuses a title with any other (transport/api), and a title the
// model makes, or one made from the prompt, leaves them out (titleText).

// Format characters (Unicode category Cf) a title may hold.
const (
	zwnj      = '\u200c' // zero-width non-joiner
	zwj       = '\u200d' // zero-width joiner
	blackFlag = '\U0001F3F4'
	cancelTag = '\U000E007F'
)

// TitleProblem returns the first character of t that a title may not
// hold, and whether there is one. A title is shown in lists beside other users' text, so it must not
// display as something else: the bidirectional controls (overrides such
// as U+202E, embeddings, isolates U+2066 to U+2069, and the marks LRM, RLM
// and ALM, refused in a user's name too) can reorder what follows them, and
// the other format characters are invisible (the zero-width space, the word
// joiner, the byte order mark, the soft hyphen, the tag characters) or hide
// text (the interlinear annotation characters): they are refused, as the
// line and paragraph separators are in a one-line title. Allowed are the
// format characters real text needs and that reorder or hide nothing: the
// zero-width non-joiner and joiner, which belong to the spelling of Persian
// and Indic words and join emoji sequences (woman, ZWJ, laptop: a woman
// technologist), anywhere, since emoji are no letters a context rule (as
// the sign-up's for emails) could ask for; the prepended concatenation
// marks of Arabic, Syriac and Kaithi (U+0600 to U+0605, ...), which are
// visible signs over the digits that follow; and tag characters only in an
// emoji tag sequence, a black flag followed by tags and the cancel tag (the
// flags of England, Scotland and Wales).
func TitleProblem(t string) (rune, bool) {
	rs := []rune(t)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		if r == blackFlag {
			i = flagTagsEnd(rs, i+1) - 1
			continue
		}
		if refusedInTitle(r) {
			return r, true
		}
	}
	return 0, false
}

// refusedInTitle reports whether a title may not hold r outside an emoji
// tag sequence (TitleProblem).
func refusedInTitle(r rune) bool {
	if unicode.In(r, unicode.Zl, unicode.Zp) {
		return true
	}
	return unicode.Is(unicode.Cf, r) && r != zwnj && r != zwj && !unicode.Is(unicode.Prepended_Concatenation_Mark, r)
}

// flagTagsEnd returns the index after the tags of an emoji tag sequence
// starting at rs[i] (tag characters U+E0020 to U+E007E ended by the cancel
// tag), or i when none starts there.
func flagTagsEnd(rs []rune, i int) int {
	j := i
	for j < len(rs) && rs[j] >= '\U000E0020' && rs[j] <= '\U000E007E' {
		j++
	}
	if j == i || j == len(rs) || rs[j] != cancelTag {
		return i
	}
	return j + 1
}

// titleText returns s without the characters TitleProblem refuses: line
// and paragraph separators become spaces, the others are left out.
func titleText(s string) string {
	rs := []rune(s)
	out := make([]rune, 0, len(rs))
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		if r == blackFlag {
			end := flagTagsEnd(rs, i+1)
			out = append(out, rs[i:end]...)
			i = end - 1
			continue
		}
		switch {
		case !refusedInTitle(r):
			out = append(out, r)
		case unicode.In(r, unicode.Zl, unicode.Zp):
			out = append(out, ' ')
		}
	}
	return string(out)
}

// PlainText returns s as text that displays as what it holds, the
// characters a title may hold: without invalid UTF-8, control characters
// other than white space (see printable) and the format characters
// TitleProblem refuses, line and paragraph separators made spaces. The
// titles chatd makes are cut from it, and llm/openai shows upstream error
// text through it.
func PlainText(s string) string {
	return titleText(printable(s))
}
