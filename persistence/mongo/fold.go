package mongo

import (
	"regexp"
	"sort"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// A search compares both sides lower-cased rune by rune (Go's
// strings.ToLower), as the SQLite store does (chatd_lower), not with the
// database's case-insensitive matching: MongoDB's and FerretDB's "i"
// option fold cases, which takes σ, ς and Σ as one letter and does not
// take the dotted capital İ as an i, where lower-casing does the reverse.
// So the store lower-cases the term and matches each of its runes with
// the runes that lower-case to it, spelled out in a character class, and
// asks for no option: the database then finds exactly the texts whose
// lower-cased form holds the lower-cased term.

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

// lowerRegex matches text whose lower-cased form contains lower, a
// lower-cased term: a plain substring, never a pattern. A NUL is written
// as the escape \x00, which PCRE and Go's syntax read alike: a BSON regex
// is a C string, and the driver refused the search ("BSON regex values
// cannot contain null bytes").
func lowerRegex(lower string) bson.Regex {
	var b strings.Builder
	for _, r := range lower {
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
		writeClassRune(&b, r)
		for _, v := range variants {
			writeClassRune(&b, v)
		}
		b.WriteByte(']')
	}
	return bson.Regex{Pattern: b.String()}
}

// writeClassRune writes r as a member of a character class, escaped where
// it would mean something there (in PCRE and in Go's syntax alike).
func writeClassRune(b *strings.Builder, r rune) {
	if r < utf8.RuneSelf && strings.ContainsRune(`\]^-[`, r) {
		b.WriteByte('\\')
	}
	b.WriteRune(r)
}
