package auth

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"unicode"

	"golang.org/x/crypto/bcrypt"

	"chatd/persistence"
)

// TestNormalizeEmailFolds: spellings strings.EqualFold takes for one
// letter are one email (the Greek final sigma and σ; the old Cyrillic
// narrow o and о), and the form is stable; letters it tells apart stay
// apart (dotless ı, ß).
func TestNormalizeEmailFolds(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"ας@example.gr":        "ασ@example.gr",
		"ΑΣ@EXAMPLE.GR":        "ασ@example.gr",
		"οδυσσευς@ιθακη.gr":    "οδυσσευσ@ιθακη.gr",
		"ϲ@example.gr":         "σ@example.gr", // lunate sigma, NFKC's ς
		"\u1c82лег@example.ru": "олег@example.ru",
		"ılık@example.com":     "ılık@example.com",
		"straße@example.de":    "straße@example.de",
	} {
		got := normalizeEmail(in)
		if got != want {
			t.Errorf("normalizeEmail(%q) = %q, want %q", in, got, want)
		}
		if again := normalizeEmail(got); again != got {
			t.Errorf("normalizeEmail(%q) = %q, not stable", got, again)
		}
	}
	// Every letter against every letter it simply case-folds with.
	for r := rune(0); r <= unicode.MaxRune; r++ {
		a := normalizeEmail(string(r))
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if b := normalizeEmail(string(f)); a != b && strings.EqualFold(a, b) {
				t.Errorf("%U %q is %q but %U %q is %q", r, r, a, f, f, b)
			}
		}
	}
}

// TestEmailFoldedAccounts: an address spelt with a final sigma and with
// σ, or in capitals, is one account; an account stored before with a
// final sigma (NFKC-normalised and in lower case, not folded) still signs
// in, and its spelling cannot be registered again.
func TestEmailFoldedAccounts(t *testing.T) {
	t.Parallel()
	e := newAccountsEnv(t, AccountOptions{})
	e.register("ας@example.gr", "12345678")
	if status, msg, _ := e.post("/api/auth/register", map[string]string{"email": "ασ@example.gr", "password": "12345678", "name": "N"}); status != http.StatusConflict {
		t.Errorf("the σ spelling of a final sigma's address: %d %s, want 409", status, msg)
	}
	if status, msg, _ := e.post("/api/auth/login", map[string]string{"email": "ΑΣ@EXAMPLE.GR", "password": "12345678"}); status != http.StatusOK {
		t.Errorf("sign-in in capitals: %d %s", status, msg)
	}
	hash, _ := bcrypt.GenerateFromPassword([]byte("older password"), bcrypt.MinCost)
	older := persistence.User{Email: "ελενης1@example.gr", Name: "N", PasswordHash: string(hash)}
	if err := e.store.CreateUser(context.Background(), &older); err != nil {
		t.Fatal(err)
	}
	// Registering its spelling again is a conflict, not a second account
	// its sign-ins would find first.
	if status, msg, _ := e.post("/api/auth/register", map[string]string{"email": "ελενης1@example.gr", "password": "12345678", "name": "N"}); status != http.StatusConflict {
		t.Errorf("registering an older account's spelling again: %d %s, want 409", status, msg)
	}
	// As stored, and with a fullwidth digit (NFKC's "1").
	for _, email := range []string{"ελενης1@example.gr", "ελενης\uff11@example.gr"} {
		if status, msg, _ := e.post("/api/auth/login", map[string]string{"email": email, "password": "older password"}); status != http.StatusOK {
			t.Errorf("sign-in as %q of an account stored with a final sigma: %d %s", email, status, msg)
		}
	}
}
