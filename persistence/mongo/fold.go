package mongo

import (
	"regexp"
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
// (composed, decomposed, mixed: see lowerRegex). The database
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

// lowerRegex matches text whose folded form contains lower, a folded
// term (fold): a plain substring, never a pattern. A letter with a
// decomposed form is matched in every spelling of it (spellings): composed
// (NFC), decomposed (NFD), and the mixed or reordered forms between them
// (Vietnamese keyboards write ệ as ê and a combining dot below; a text may
// hold its two accents in either order), so a text stored in any of them
// is found. A NUL is written as the escape \x00, which PCRE and Go's
// syntax read alike: a BSON regex is a C string, and the driver refused
// the search ("BSON regex values cannot contain null bytes").
//
// A term of the API's 200 characters gives a pattern of at most some
// 24 KB (each letter the Greek ᾢ, 9 spellings): past maxRegexBytes, the
// pattern matches each letter in its composed and its decomposed form
// only (some 5 KB at most), as a search did before mixed forms were
// spelled out. A Vietnamese or French term of 200 letters fits.
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
		forms := []string{composed, norm.NFD.String(composed)}
		if all {
			forms = spellings(composed)
		} else if forms[1] == composed {
			forms = forms[:1]
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

// maxSpelledMarks bounds the combining marks of a letter spelled out in
// every order (spellings): no precomposed letter has more than 4.
const maxSpelledMarks = 4

// spellings returns the strings canonically equivalent to seg, one
// composed segment of a term (a letter and the accents that follow it):
// each is a precomposed letter holding the base and some of the accents
// (or the base alone), then the other accents in any order that keeps
// the same text (accents of one combining class keep their order), seg
// first. A segment whose decomposition continues with anything but
// combining marks (a Hangul syllable's jamo), or with more than
// maxSpelledMarks of them, gives its composed and decomposed forms.
func spellings(seg string) []string {
	d := norm.NFD.String(seg)
	base, size := utf8.DecodeRuneInString(d)
	marks := []rune(d[size:])
	if len(marks) == 0 {
		return []string{seg}
	}
	simple := []string{seg, d}
	if len(marks) > maxSpelledMarks || norm.NFD.PropertiesString(string(base)).CCC() != 0 {
		return simple
	}
	for _, m := range marks {
		if norm.NFD.PropertiesString(string(m)).CCC() == 0 {
			return simple
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
		first := norm.NFC.String(string(head))
		if utf8.RuneCountInString(first) != 1 {
			continue // no precomposed letter holds these accents
		}
		permute(rest, 0, func(p []rune) {
			s := first + string(p)
			if !seen[s] && norm.NFD.String(s) == d {
				seen[s] = true
				out = append(out, s)
			}
		})
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

// writeRunes writes the pattern matching s, each rune as itself or any
// rune that lower-cases to it.
func writeRunes(b *strings.Builder, s string) {
	for _, r := range s {
		variants := upperVariants()[r]
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

// writeClassRune writes r as a member of a character class, escaped where
// it would mean something there (in PCRE and in Go's syntax alike).
func writeClassRune(b *strings.Builder, r rune) {
	if r < utf8.RuneSelf && strings.ContainsRune(`\]^-[`, r) {
		b.WriteByte('\\')
	}
	b.WriteRune(r)
}
