package llm_test

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"chatd/llm"
)

// Emoji of several code points each.
const (
	scotland = "\U0001F3F4\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F" // black flag, tags "gbsct", cancel tag
	france   = "\U0001F1EB\U0001F1F7"                                                   // two regional indicators
	family   = "👨\u200d👩\u200d👧\u200d👦"                                                 // ZWJ sequence, 7 code points
	thumbs   = "👍\U0001F3FD"                                                            // skin-tone modifier
	keycap   = "#\ufe0f\u20e3"                                                          // variation selector, enclosing mark
	accented = "e\u0301"                                                                // combining acute accent
)

// TestTitleCutsWholeCharacters: a title cut within its first word (a
// word longer than the title) ends between two user-perceived characters,
// so that every title chatd makes passes its own TitleProblem check (the
// API refused a rename keeping a title that ended in a black flag and tags
// without their cancel tag) and holds no half of a flag. Both title
// functions, on words of emoji and letters of several code points.
func TestTitleCutsWholeCharacters(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, word string }{
		{"tag sequences after letters", "ab" + strings.Repeat(scotland, 7)},
		{"tag sequences", strings.Repeat(scotland, 12)},
		{"tag sequences after one letter", "a" + strings.Repeat(scotland, 12)},
		{"regional indicator flags", strings.Repeat(france, 31)},
		{"regional indicator flags after a letter", "x" + strings.Repeat(france, 31)},
		{"ZWJ sequences", strings.Repeat(family, 12)},
		{"ZWJ sequences after letters", "abc" + strings.Repeat(family, 12)},
		{"skin tones", "a" + strings.Repeat(thumbs, 40)},
		{"keycaps", "a" + strings.Repeat(keycap, 30)},
		{"combining marks", strings.Repeat(accented, 40)},
		{"mixed", "z" + strings.Repeat(france+scotland+family+thumbs+keycap+accented, 4)},
		// One user-perceived character longer than the title: cut by
		// code point, the tags without their cancel tag left out.
		{"one long tag sequence", "\U0001F3F4" + strings.Repeat("\U000E0061", 70) + "\U000E007F"},
		{"a letter under many marks", "a" + strings.Repeat("\u0301", 70)},
	}
	titles := []struct {
		name     string
		maxChars int
		title    func(string) string
	}{
		{"CleanTitle", 60, llm.CleanTitle},
		{"FallbackTitle", 50, llm.FallbackTitle},
	}
	for _, tc := range tests {
		for _, fn := range titles {
			t.Run(fn.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				in := tc.word + " more words"
				got := fn.title(in)
				if r, bad := llm.TitleProblem(got); bad {
					t.Errorf("%q holds %U, which the API refuses in a title", got, r)
				}
				if n := regionalIndicators(got); n%2 != 0 {
					t.Errorf("%q holds %d regional indicators: half a flag", got, n)
				}
				kept, cut := strings.CutSuffix(got, "…")
				if !cut || kept == "" || !strings.HasPrefix(in, kept) || utf8.RuneCountInString(got) > fn.maxChars {
					t.Errorf("%q: want a start of %q of at most %d characters, then …", got, in, fn.maxChars)
				}
			})
		}
	}
}

func regionalIndicators(s string) int {
	n := 0
	for _, r := range s {
		if unicode.Is(unicode.Regional_Indicator, r) {
			n++
		}
	}
	return n
}

func TestCutText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		s        string
		maxChars int
		want     string
	}{
		{"hello", 5, "hello"},
		{"hello", 3, "hel"},
		{"", 0, ""},
		{"ab" + scotland + scotland, 15, "ab" + scotland},
		{"ab" + scotland, 8, "ab"},
		{france + france + france, 5, france + france},
		{"x" + france + france, 4, "x" + france},
		{family + family, 13, family},
		// A first character longer than maxChars is cut by code point,
		// without tags outside a whole tag sequence.
		{family, 6, "👨\u200d👩\u200d👧\u200d"},
		{scotland, 5, "\U0001F3F4"},
		{"a\u0301\u0302\u0303", 2, "a\u0301"},
		{"a" + thumbs + thumbs, 4, "a" + thumbs},
		{keycap + keycap, 5, keycap},
		{accented + accented + "x", 3, accented},
		{"\u0600\u0661\u0669 x", 1, "\u0600"},
		{"\u0600\u0661\u0669 x", 3, "\u0600\u0661\u0669"},
		{"a\u200cb", 2, "a\u200c"},
	}
	for _, tc := range tests {
		if got := llm.CutText(tc.s, tc.maxChars); got != tc.want {
			t.Errorf("CutText(%q, %d) = %q, want %q", tc.s, tc.maxChars, got, tc.want)
		}
	}
}
