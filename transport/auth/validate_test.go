package auth

import (
	"net/http"
	"testing"
)

func TestValidEmail(t *testing.T) {
	t.Parallel()
	for email, want := range map[string]bool{
		"ada@example.com":                   true,
		"first.last+tag@sub.example.org":    true,
		"ada@localhost":                     false, // no dot in the domain
		"Ada <ada@example.com>":             false,
		"<ada@example.com>":                 false,
		"ada@example.com (comment)":         false,
		"ada":                               false,
		"":                                  false,
		"a@b.c" + string(make([]byte, 300)): false,
	} {
		if got := validEmail(email); got != want {
			t.Errorf("validEmail(%q) = %v, want %v", email, got, want)
		}
	}
}

func TestBearerToken(t *testing.T) {
	t.Parallel()
	for header, want := range map[string]string{
		"Bearer abc.def.ghi": "abc.def.ghi",
		"bearer  abc ":       "abc",
		"BEARER abc":         "abc",
		"Basic abc":          "",
		"Bearer":             "",
		"":                   "",
		"abc.def.ghi":        "",
		"Bearerabc.def.ghi":  "",
	} {
		h := http.Header{}
		if header != "" {
			h.Set("Authorization", header)
		}
		if got := BearerToken(h); got != want {
			t.Errorf("BearerToken(%q) = %q, want %q", header, got, want)
		}
	}
}

func TestTextRules(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{ // mixedScript
		"ada":          false,
		"ada.lovelace": false,
		"a1-b_2":       false,
		"\u0430da":     true, // Cyrillic а among Latin letters
		"иван":         false,
		"ひらがな漢字カタカナ":   false,
		"ελληνικά":     false,
		"abcλ":         true,
		"":             false,
	} {
		if got := mixedScript(s); got != want {
			t.Errorf("mixedScript(%q) = %v, want %v", s, got, want)
		}
	}
	for s, bad := range map[string]bool{ // textProblem
		"Ada Lovelace": false,
		"Zoë 👩‍💻":      false, // a zero-width joiner inside an emoji is fine
		"a\u202eb":     true,  // right-to-left override
		"a\u2067b":     true,  // right-to-left isolate
		"a\u200fb":     true,  // right-to-left mark
		"a\nb":         true,
		"a\u2028b":     true, // line separator
		"a\ufffdb":     true, // what invalid UTF-8 decodes to
		"a\xffb":       true,
	} {
		if got := textProblem(s) != ""; got != bad {
			t.Errorf("textProblem(%q) = %q, want a problem: %v", s, textProblem(s), bad)
		}
	}
	for in, want := range map[string]string{ // normalizeEmail
		" ＡDA@Example.COM ": "ada@example.com",
		"ﬁne@example.com":   "fine@example.com", // ligature
	} {
		if got := normalizeEmail(in); got != want {
			t.Errorf("normalizeEmail(%q) = %q, want %q", in, got, want)
		}
	}
}
