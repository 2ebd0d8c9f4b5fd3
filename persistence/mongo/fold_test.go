package mongo

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// TestLowerRegex checks that a search's regex finds exactly the texts whose
// lower-cased form holds the lower-cased term (the SQLite store's rule),
// with Go's regexp, the engine FerretDB matches with; MongoDB's PCRE reads
// the same pattern (no option, character classes of literal runes).
func TestLowerRegex(t *testing.T) {
	t.Parallel()
	texts := []string{"İstanbul", "istanbul", "ISTANBUL", "ΟΔΟΣ", "οδος", "οδοσ", "300 \u212a", "300 k", "300 K",
		"straße", "STRASSE", "Ǆemal", "ǅemal", "ǆemal", `a.*(b`, `[x]-^y\z`, "ſ", "S", "ﬀ", "FF", "a\x00b", "A\x00B"}
	terms := []string{"istanbul", "İSTANBUL", "οδος", "ΟΔΟΣ", "k", "\u212a", "300 K", "straße", "ǆ", "Ǆ", "ǅ",
		`.*(`, `[x]-^y\`, "s", "ſ", "ff", "ﬀ", "-", "]", "^", "\x00", "A\x00b"}
	for _, term := range terms {
		lower := strings.ToLower(term)
		if strings.ContainsRune(lowerRegex(lower).Pattern, 0) {
			t.Errorf("term %q: the pattern holds a NUL, which no BSON regex can", term)
		}
		re, err := regexp.Compile(lowerRegex(lower).Pattern)
		if err != nil {
			t.Fatalf("term %q: pattern %q: %v", term, lowerRegex(lower).Pattern, err)
		}
		for _, text := range texts {
			want := strings.Contains(strings.ToLower(text), lower)
			if got := re.MatchString(text); got != want {
				t.Errorf("term %q (pattern %q) on %q: %v, want %v", term, re, text, got, want)
			}
		}
	}
	if opts := lowerRegex("k").Options; opts != "" {
		t.Errorf("options %q, want none: the database's case folding is not the rule", opts)
	}
}

// TestSearchPiecesBounded: a term of many words gives at most
// maxSearchWords piece clauses, each piece once, the longest kept in the
// term's order; a word longer than maxPieceRunes is asked for by its first
// and last maxPieceRunes characters, which lie inside one chunk or split
// word wherever the chunk boundaries cut it.
func TestSearchPiecesBounded(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("東", 10) + "京都大学の研究者たちは新しい発見" // 26 characters
	cases := []struct {
		term string
		want []string
	}{
		{"", nil},
		{" ", []string{" "}},
		{" \t  \t", []string{" ", "\t"}},
		{"one", []string{"one"}},
		{"a a a a a a a a a a a a", []string{"a"}},
		{"one two  three", []string{"one", "two", "three"}},
		{"a bb ccc dddd eeeee ffffff ggggggg hhhhhhhh iiiiiiiii jjjjjjjjjj k",
			[]string{"ccc", "dddd", "eeeee", "ffffff", "ggggggg", "hhhhhhhh", "iiiiiiiii", "jjjjjjjjjj"}},
		{strings.Repeat("x", maxPieceRunes), []string{strings.Repeat("x", maxPieceRunes)}},
		{strings.Repeat("x", maxPieceRunes+1), []string{strings.Repeat("x", maxPieceRunes)}},
		{long, []string{"東東東東東東東東東東京都大学の研究", "東京都大学の研究者たちは新しい発見"}},
		{"see " + long + " ok", []string{"see", "東東東東東東東東東東京都大学の研究", "東京都大学の研究者たちは新しい発見", "ok"}},
	}
	for _, tc := range cases {
		if got := searchPieces(tc.term); strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("searchPieces(%q) = %q, want %q", tc.term, got, tc.want)
		}
	}
	many := strings.TrimSpace(strings.Repeat("w ", 40)) + " " + strings.Repeat("x", 30)
	for i := range 60 {
		many += " " + strings.Repeat(string(rune('a'+i%26)), 1+i%7)
	}
	got := searchPieces(many)
	if len(got) != maxSearchWords {
		t.Fatalf("%d pieces of a term of %d characters, want %d", len(got), utf8.RuneCountInString(many), maxSearchWords)
	}
	if got[0] != strings.Repeat("x", maxPieceRunes) {
		t.Errorf("the longest word is not kept: %q", got)
	}
}

// TestLowerRegexNormalForms: a search's regex finds a text stored in
// either normal form, composed (NFC) or decomposed (NFD), for a folded
// term (fold, as ListConversations folds the query), in either case;
// before, a composed term missed every decomposed text.
func TestLowerRegexNormalForms(t *testing.T) {
	t.Parallel()
	cases := []struct {
		term, text string
		want       bool
	}{
		{"café", "Café", true},
		{"café", "Cafe\u0301", true},
		{"cafe\u0301", "CAFÉ", true},
		{"CAFE\u0301", "CAFE\u0301", true},
		{"crème brûlée", "cre\u0300me bru\u0302le\u0301e", true},
		{"ZOË", "zoe\u0308", true},
		{"à", "A\u0300", true},
		{"zoé", "Zoe\u0308", false},
		{"é", "e", false},
		{"e\u0301\u0323", "ẹ\u0301", true}, // two accents: composed in their canonical order
		// Mixed and reordered forms: the Windows Vietnamese keyboard writes
		// a precomposed vowel and a combining tone mark; NFD's marks may
		// come in either order (their combining classes differ).
		{"Việt", "Vi\u00ea\u0323t", true},
		{"Việt", "Vi\u1eb9\u0302t", true},
		{"Việt", "Vie\u0302\u0323t", true},
		{"Việt", "VIE\u0323\u0302T", true},
		{"Vi\u00ea\u0323t", "Việt", true},
		{"Việt", "Viêt", false},
		{"Việt", "Vie\u0302\u0302t", false},
		{"ǘ", "u\u0301\u0308", false}, // two accents of one class: their order is the text's
		{"ǘ", "ü\u0301", true},
		{"ᾢ", "ὠ\u0300\u0345", true},
		{"ᾢ", "ω\u0345\u0313\u0300", true},
		// Characters NFC replaces by another (equivalents), and a Hangul
		// syllable split before its final consonant, which NFC composes.
		{"\u6b04", "the \uf91d column", true}, // a CJK compatibility ideograph
		{"\uf91d", "the \u6b04 column", true},
		{"\u6d41", "\ufa97", true},       // one of three
		{"τι;", "τι\u037e", true},        // the Greek question mark
		{"a\u00b7b", "a\u0387b", true},   // the ano teleia
		{"x\u2002y", "x\u2000y", true},   // en quad, en space
		{"\u03acλλα", "\u1f71λλα", true}, // oxia, tonos
		{"\u1fb4", "\u1f71\u0345", true}, // oxia with a ypogegrammeni
		{"\u0386", "\u1fbb", true},       // upper case, oxia
		{"é", "e\u0341", true},           // the acute tone mark
		{"\uac01", "\uac00\u11a8", true}, // 각 as 가 and ᆨ
		{"\uac01", "\u1100\u1161\u11a8", true},
		{"\uac00", "\uac01", false},
		{"\u0915\u093c", "\u0958", true}, // क़: NFC keeps it apart
		{"\u0915\u093c\u0951", "\u0958\u0951", true},
		{"\u05e9\u05bc\u05c2", "\ufb2d", true}, // shin, dagesh, sin dot
		{"\u05e9\u05bc\u05c2", "\ufb49\u05c2", true},
		{"\u05e9\u05bc\u05c2", "\ufb2b\u05bc", true},
		{"\u05e9\u05bc", "\ufb2b", false},
	}
	for _, tc := range cases {
		term := fold(tc.term)
		re, err := regexp.Compile(lowerRegex(term).Pattern)
		if err != nil {
			t.Fatalf("term %q: pattern %q: %v", tc.term, lowerRegex(term).Pattern, err)
		}
		if got := re.MatchString(tc.text); got != tc.want {
			t.Errorf("term %q (pattern %q) on %q: %v, want %v", tc.term, re, tc.text, got, tc.want)
		}
		if tc.want && !strings.Contains(fold(tc.text), term) {
			t.Errorf("fold(%q) does not hold fold(%q): the case is wrong", tc.text, tc.term)
		}
	}
}

// TestWordPiecesDecomposed: a word's pieces are bounded in characters
// decomposed (NFD), as a message may store them: a word of maxPieceRunes
// composed characters with accents is asked for by pieces that fit a
// split word in either form.
func TestWordPiecesDecomposed(t *testing.T) {
	t.Parallel()
	word := strings.Repeat("é", maxPieceRunes)
	pieces := wordPieces(word)
	if len(pieces) != 2 {
		t.Fatalf("pieces of %q: %q, want its first and last", word, pieces)
	}
	for _, p := range pieces {
		if n := utf8.RuneCountInString(norm.NFD.String(p)); n > maxPieceRunes || n < maxPieceRunes-1 {
			t.Errorf("piece %q has %d characters decomposed, want %d or %d", p, n, maxPieceRunes-1, maxPieceRunes)
		}
	}
	if got := wordPieces(strings.Repeat("e", maxPieceRunes)); len(got) != 1 {
		t.Errorf("pieces of a plain word of %d letters: %q, want the word", maxPieceRunes, got)
	}
}

// TestLowerRegexBounded: a search's pattern for a term of the API's 200
// characters stays under MongoDB's bound (16,384 bytes, maxRegexBytes
// with a margin), the letters with the most spellings falling back to
// their composed and decomposed forms; a Vietnamese term of 200 letters
// keeps every spelling.
func TestLowerRegexBounded(t *testing.T) {
	t.Parallel()
	for _, letter := range []string{"ᾢ", "ệ", "á", "한", "x", "\x00", "\u6d41", "\u05e9\u05bc\u05c2", "\u0915\u093c"} {
		term := fold(strings.Repeat(letter, 200))
		p := lowerRegex(term).Pattern
		if len(p) > maxRegexBytes {
			t.Errorf("200 × %q: pattern of %d bytes, over %d", letter, len(p), maxRegexBytes)
		}
		if _, err := regexp.Compile(p); err != nil {
			t.Errorf("200 × %q: %v", letter, err)
		}
	}
	viet := fold(strings.Repeat("ệ", 200))
	mixed := strings.Repeat("\u00ea\u0323", 200)
	if !regexp.MustCompile(lowerRegex(viet).Pattern).MatchString(mixed) {
		t.Errorf("a Vietnamese term of 200 letters misses its mixed form")
	}
}

// TestEquivalentsBound: no character at or past maxDecomposing has a
// canonical decomposition, so equivalents, which stops there, holds every
// character NFC replaces.
func TestEquivalentsBound(t *testing.T) {
	t.Parallel()
	for r := rune(maxDecomposing); r <= utf8.MaxRune; r++ {
		if norm.NFC.PropertiesString(string(r)).Decomposition() != nil {
			t.Fatalf("%U decomposes, past maxDecomposing (%U)", r, maxDecomposing)
		}
	}
	if got := equivalents()["\u6b04"]; len(got) != 1 || got[0] != 0xf91d {
		t.Errorf("equivalents of U+6B04: %U, want U+F91D", got)
	}
}
