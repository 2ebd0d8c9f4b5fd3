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
// (é: e and a combining acute) is matched in either form. The database
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
// decomposed form is matched in its composed and its decomposed form
// alike (an alternation of the two), so a text stored in either normal
// form is found. A NUL is written as the escape \x00, which PCRE and
// Go's syntax read alike: a BSON regex is a C string, and the driver
// refused the search ("BSON regex values cannot contain null bytes").
func lowerRegex(lower string) bson.Regex {
	var b strings.Builder
	var it norm.Iter
	it.InitString(norm.NFC, lower)
	for !it.Done() {
		composed := string(it.Next())
		decomposed := norm.NFD.String(composed)
		if decomposed == composed {
			writeRunes(&b, composed)
			continue
		}
		b.WriteString("(?:")
		writeRunes(&b, composed)
		b.WriteByte('|')
		writeRunes(&b, decomposed)
		b.WriteByte(')')
	}
	return bson.Regex{Pattern: b.String()}
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
