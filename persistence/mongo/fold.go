package mongo

import (
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
	"golang.org/x/text/unicode/norm"
)

// A search compares both sides folded (fold: Unicode's composed normal
// form, NFC, then lower-cased rune by rune as Go's strings.ToLower does),
// as the SQLite store does, not with the database's case-insensitive
// matching: MongoDB's and FerretDB's "i" option fold cases, which takes
// σ, ς and Σ as one letter and does not take the dotted capital İ as an
// i, where lower-casing does the reverse. So the store folds the term and
// matches each of its runes with the runes that lower-case to it, spelled
// out in a character class, and asks for no option. The stored text is
// not normalised (documents keep what was sent, and those stored before
// are as they were): each letter of the term that has a decomposed form
// (é: e and a combining acute) is matched in each of its spellings
// (composed, decomposed, mixed: see lowerRegex), and each character with
// the characters NFC replaces by it (equivalents: a CJK compatibility
// ideograph, the Greek question mark for ';', the oxia accent for the
// tonos; a Hangul syllable also as its syllable without the final
// consonant and that consonant). The database
// then finds exactly the texts whose folded form holds the folded term,
// but for a term ending in a letter with no accent where the text puts a
// combining accent after it (decomposed): "cafe" is found in a decomposed
// "café" here, not by the SQLite store.

// fold is the form search compares texts in: NFC, then lower-cased. A
// text already in NFC, nearly every one, is checked without a copy
// (norm's quick check).
func fold(s string) string {
	return strings.ToLower(norm.NFC.String(s))
}

// upperVariants maps a rune to the other runes that unicode.ToLower takes
// to it ('k': 'K' and the Kelvin sign), each list sorted.
var upperVariants = sync.OnceValue(func() map[rune][]rune {
	m := map[rune][]rune{}
	for _, cr := range unicode.CaseRanges {
		for r := rune(cr.Lo); r <= rune(cr.Hi); r++ {
			if l := unicode.ToLower(r); l != r {
				m[l] = append(m[l], r)
			}
		}
	}
	for _, rs := range m {
		sort.Slice(rs, func(i, j int) bool { return rs[i] < rs[j] })
	}
	return m
})

// maxDecomposing is past the last character with a canonical
// decomposition (the CJK compatibility ideographs supplement ends at
// U+2FA1D); TestEquivalentsBound checks it.
const maxDecomposing = 0x2FA20

// equivalents maps a folded string to the characters, other than it, that
// fold to it: those NFC replaces by another character or sequence
// (U+F91D 欄 by U+6B04 欄, U+037E ; by ';', U+1F71 ά by U+03AC ά, U+0958
// क़ by क and a nukta), each list in code point order. Built at the first
// search (some 2,000 characters decompose; a few milliseconds).
var equivalents = sync.OnceValue(func() map[string][]rune {
	m := map[string][]rune{}
	for r := rune(0); r < maxDecomposing; r++ {
		s := string(r)
		if norm.NFC.PropertiesString(s).Decomposition() != nil && norm.NFC.String(s) != s {
			f := fold(s)
			m[f] = append(m[f], r)
		}
	}
	return m
})

// lowerRegex matches text whose folded form contains lower, a folded
// term (fold): a plain substring, never a pattern. A letter with a
// decomposed form is matched in every spelling of it (spellings): composed
// (NFC), decomposed (NFD), and the mixed or reordered forms between them
// (Vietnamese keyboards write ệ as ê and a combining dot below; a text may
// hold its two accents in either order), and with the characters NFC
// replaces by the letter or by part of it (equivalents), so a text stored
// in any of them is found; a Hangul syllable with a final consonant also
// as the syllable without it and the consonant's jamo, which NFC
// composes. A NUL is written as the escape \x00, which PCRE and Go's
// syntax read alike: a BSON regex is a C string, and the driver refused
// the search ("BSON regex values cannot contain null bytes").
//
// A term of the API's 200 characters gives a pattern of at most some
// 33 KB (each letter the Greek ᾢ, 9 spellings, its accents' classes with
// the tone marks NFC replaces by them): past maxRegexBytes, the pattern
// matches each letter in its short forms only (shortForms: its composed
// and decomposed forms, and what NFC replaces by it; some 7 KB at most),
// as a search did before mixed forms were spelled out. A Vietnamese or
// French term of 200 letters fits.
func lowerRegex(lower string) bson.Regex {
	if p := lowerPattern(lower, true); len(p) <= maxRegexBytes {
		return bson.Regex{Pattern: p}
	}
	return bson.Regex{Pattern: lowerPattern(lower, false)}
}

// maxRegexBytes bounds a search's pattern, with a margin: MongoDB (PCRE2,
// from 6.1) refuses a pattern longer than 16,384 bytes ("pattern string is
// longer than the limit set by the application", 51091); older releases'
// PCRE refused one past 32 KB ("Regular expression is too long").
const maxRegexBytes = 12 << 10

// lowerPattern is lowerRegex's pattern, each letter in all its spellings
// when all is set, else in its composed and decomposed forms.
func lowerPattern(lower string, all bool) string {
	var b strings.Builder
	var it norm.Iter
	it.InitString(norm.NFC, lower)
	for !it.Done() {
		composed := string(it.Next())
		forms := shortForms(composed)
		if all {
			forms = spellings(composed)
		}
		if len(forms) == 1 {
			writeRunes(&b, composed)
			continue
		}
		b.WriteString("(?:")
		for i, f := range forms {
			if i > 0 {
				b.WriteByte('|')
			}
			writeRunes(&b, f)
		}
		b.WriteByte(')')
	}
	return b.String()
}

// shortForms is seg, one composed segment of a term, in its composed and
// decomposed forms, the characters that stand for all of it
// (equivalents) and a Hangul syllable's split form (hangulSplit): the
// spellings of a pattern past maxRegexBytes.
func shortForms(seg string) []string {
	forms := []string{seg}
	if d := norm.NFD.String(seg); d != seg {
		forms = append(forms, d)
	}
	if utf8.RuneCountInString(seg) > 1 {
		for _, r := range equivalents()[seg] {
			forms = append(forms, string(r))
		}
	}
	if split, ok := hangulSplit(seg); ok {
		forms = append(forms, split)
	}
	return forms
}

// hangulSplit is seg, a Hangul syllable with a final consonant (각), as
// the syllable without it and the final consonant's jamo (가 and ᆨ),
// which NFC composes into seg; ok is false for any other segment.
func hangulSplit(seg string) (string, bool) {
	const sBase, tBase, tCount = 0xAC00, 0x11A7, 28
	r, size := utf8.DecodeRuneInString(seg)
	if size != len(seg) || !isHangulSyllable(r) || (r-sBase)%tCount == 0 {
		return "", false
	}
	t := (r - sBase) % tCount
	return string(r-t) + string(tBase+t), true
}

// maxSpelledMarks bounds the combining marks of a letter spelled out in
// every order (spellings): no precomposed letter has more than 4.
const maxSpelledMarks = 4

// spellings returns the strings canonically equivalent to seg, one
// composed segment of a term (a letter and the accents that follow it):
// each is a precomposed letter holding the base and some of the accents
// (or the base alone), then the other accents in any order that keeps
// the same text (accents of one combining class keep their order), seg
// first; a precomposed letter there is also any character NFC replaces by
// it or by the base and those accents (equivalents: U+0958 क़ for क and a
// nukta, which NFC keeps apart). A segment whose decomposition continues
// with anything but combining marks (a Hangul syllable's jamo), or with
// more than maxSpelledMarks of them, gives its short forms (shortForms).
// A character that NFC replaces by accents alone (U+0344, for a diaeresis
// and an acute) is not spelled out: a text holding one is not found.
func spellings(seg string) []string {
	d := norm.NFD.String(seg)
	base, size := utf8.DecodeRuneInString(d)
	marks := []rune(d[size:])
	if len(marks) == 0 {
		return []string{seg}
	}
	if len(marks) > maxSpelledMarks || norm.NFD.PropertiesString(string(base)).CCC() != 0 {
		return shortForms(seg)
	}
	for _, m := range marks {
		if norm.NFD.PropertiesString(string(m)).CCC() == 0 {
			return shortForms(seg)
		}
	}
	out := []string{seg}
	seen := map[string]bool{seg: true}
	for mask := 0; mask < 1<<len(marks); mask++ {
		head := []rune{base}
		var rest []rune
		for i, m := range marks {
			if mask&(1<<i) != 0 {
				head = append(head, m)
			} else {
				rest = append(rest, m)
			}
		}
		for _, first := range heads(head) {
			permute(rest, 0, func(p []rune) {
				s := first + string(p)
				if !seen[s] && norm.NFD.String(s) == d {
					seen[s] = true
					out = append(out, s)
				}
			})
		}
	}
	return out
}

// heads returns the single characters canonically equivalent to head, a
// letter and accents: the precomposed letter NFC makes of it, if any, and
// the characters NFC replaces by head composed (equivalents) when NFC
// leaves it in more than one.
func heads(head []rune) []string {
	first := norm.NFC.String(string(head))
	if utf8.RuneCountInString(first) == 1 {
		return []string{first}
	}
	var out []string
	for _, r := range equivalents()[strings.ToLower(first)] {
		if norm.NFD.String(string(r)) == norm.NFD.String(string(head)) {
			out = append(out, string(r))
		}
	}
	return out
}

// permute calls f with each ordering of rs[i:] after rs[:i].
func permute(rs []rune, i int, f func([]rune)) {
	if i >= len(rs) {
		f(rs)
		return
	}
	for j := i; j < len(rs); j++ {
		rs[i], rs[j] = rs[j], rs[i]
		permute(rs, i+1, f)
		rs[i], rs[j] = rs[j], rs[i]
	}
}

// writeRunes writes the pattern matching s, each rune as itself, any
// rune that lower-cases to it, or any NFC replaces by it or by one of
// those (equivalents).
func writeRunes(b *strings.Builder, s string) {
	for _, r := range s {
		variants := runeVariants(r)
		switch {
		case r == 0:
			b.WriteString(`\x00`)
			continue
		case len(variants) == 0:
			b.WriteString(regexp.QuoteMeta(string(r)))
			continue
		}
		b.WriteByte('[')
		writeClassRune(b, r)
		for _, v := range variants {
			writeClassRune(b, v)
		}
		b.WriteByte(']')
	}
}

// hasTypedOtherSpelling reports whether a text may well hold r as another
// character than r or one of its upper-case forms (equivalents), one that
// a keyboard or a program sends (U+0374, the Greek numeral sign, for
// U+02B9): not a compatibility character (rareSpelling), which the
// search finds too but nobody types.
func hasTypedOtherSpelling(r rune) bool {
	for _, x := range equivalents()[string(r)] {
		if !slices.Contains(upperVariants()[r], x) && !rareSpelling(x) {
			return true
		}
	}
	return false
}

// rareSpelling reports whether x is a character Unicode keeps only to
// round-trip older encodings, which NFC replaces by a common one: a CJK
// compatibility ideograph (U+F91D for 欄; 902 common characters, 不, 年,
// 了, have one) or the Greek prosgegrammeni U+1FBE (for ι).
func rareSpelling(x rune) bool {
	return 0xF900 <= x && x <= 0xFAFF || 0x2F800 <= x && x <= 0x2FA1F || x == 0x1FBE
}

// runeVariants are the runes other than r that fold to r: upperVariants
// and equivalents, sorted, without repeats.
func runeVariants(r rune) []rune {
	eq := equivalents()[string(r)]
	if len(eq) == 0 {
		return upperVariants()[r]
	}
	out := append(slices.Clone(upperVariants()[r]), eq...)
	slices.Sort(out)
	return slices.Compact(out)
}

// writeClassRune writes r as a member of a character class, escaped where
// it would mean something there (in PCRE and in Go's syntax alike).
func writeClassRune(b *strings.Builder, r rune) {
	if r < utf8.RuneSelf && strings.ContainsRune(`\]^-[`, r) {
		b.WriteByte('\\')
	}
	b.WriteRune(r)
}
