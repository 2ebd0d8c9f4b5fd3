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
