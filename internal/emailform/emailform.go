// Package emailform holds the one normal form of an email address that
// accounts are stored and looked up in. The account routes
// (transport/auth) normalise what a client sends with it, and the stores
// (persistence) rewrite, when they open, the emails stored by older
// releases into it, so both sides agree on it without the stores
// depending on the transport.
package emailform

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// Normalize is the form an email is stored and looked up in: trimmed,
// NFKC-normalised (fullwidth "ａ" is "a", ligatures are split), in lower
// case and case-folded (foldCase), so look-alike spellings of one address,
// and spellings strings.EqualFold takes for one, are one account.
func Normalize(s string) string {
	return norm.NFKC.String(foldCase(strings.ToLower(norm.NFKC.String(strings.TrimSpace(s)))))
}

// foldCase maps each letter of s to the lower case of its upper case
// when the two are one letter in Unicode's simple case folding (what
// strings.EqualFold compares): the Greek final sigma "ς" is "σ" (both are
// "Σ" in capitals), and the old Cyrillic variants "ᲂ" (narrow o) and "ᲃ"
// (wide es), which look like "о" and "с", are those. Lower case alone
// keeps them apart, as two accounts. A letter whose capital is the
// capital of another letter it does not fold with stays: the Turkish
// dotless "ı" is not an "i". Full case folding ("ß" as "ss") is not
// applied: strings.EqualFold does not either, and it would change how an
// address reads.
func foldCase(s string) string {
	return strings.Map(func(r rune) rune {
		c := unicode.ToLower(unicode.ToUpper(r))
		for f := unicode.SimpleFold(r); f != r && c != r; f = unicode.SimpleFold(f) {
			if f == c {
				return c
			}
		}
		return r
	}, s)
}
