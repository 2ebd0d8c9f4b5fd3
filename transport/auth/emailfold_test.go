package auth

import (
	"context"
	"database/sql"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"unicode"

	"golang.org/x/crypto/bcrypt"

	"chatd/persistence"
	"chatd/persistence/sqlite"
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

// TestOldFormAccountMigrated: an account an older release stored with a
// final sigma (lower case, not folded) is rewritten in its normal form
// at the first open of the release that rewrites (schema step 11), so
// registering the σ spelling answers 409 and the owner signs in in
// either spelling. Before, the σ spelling
// registered a second account, which the owner's sign-ins then found
// first and checked their password against: 401 for good.
func TestOldFormAccountMigrated(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "chatd.db")
	old, err := sqlite.Open(context.Background(), sqlite.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	hash, _ := bcrypt.GenerateFromPassword([]byte("older password"), bcrypt.MinCost)
	planted := persistence.User{Email: "νικος@example.gr", Name: "N", PasswordHash: string(hash)}
	if err := old.CreateUser(context.Background(), &planted); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	// As the release before the rewrite (schema step 11) left it: step
	// 12's conversation deletion mark taken out too.
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DROP INDEX conversations_deleting;
		DROP INDEX conversations_owner_client_id;
		ALTER TABLE conversations DROP COLUMN deleting_at;
		CREATE UNIQUE INDEX conversations_owner_client_id ON conversations (owner_id, client_id);
		PRAGMA user_version = 10`); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	store, err := sqlite.Open(context.Background(), sqlite.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close(context.Background()) })
	e := newAccountsEnvOn(t, store, AccountOptions{})
	for _, email := range []string{"νικοσ@example.gr", "ΝΙΚΟΣ@example.gr", "νικος@example.gr"} {
		if status, msg, _ := e.post("/api/auth/register", map[string]string{"email": email, "password": "12345678", "name": "M"}); status != http.StatusConflict {
			t.Errorf("registering %q over an account stored as νικος: %d %s, want 409", email, status, msg)
		}
	}
	for _, email := range []string{"νικος@example.gr", "νικοσ@example.gr"} {
		if _, id := e.login(email, "older password"); id != planted.ID {
			t.Errorf("sign-in as %q: user %s, want %s", email, id, planted.ID)
		}
	}
}

// TestCollidingAccountsSignInApart: two accounts whose emails have one
// normal form (one stored in an older form that the store could not
// rewrite, its normal form already taken) each sign in with their own
// password when their own spelling is typed: a sign-in checks the
// password against the account of every form of the email, not only the
// first found.
func TestCollidingAccountsSignInApart(t *testing.T) {
	t.Parallel()
	e := newAccountsEnv(t, AccountOptions{})
	hash, _ := bcrypt.GenerateFromPassword([]byte("older password"), bcrypt.MinCost)
	older := persistence.User{Email: "νικος@example.gr", Name: "N", PasswordHash: string(hash)}
	if err := e.store.CreateUser(context.Background(), &older); err != nil {
		t.Fatal(err)
	}
	newer := persistence.User{Email: "νικοσ@example.gr", Name: "M", PasswordHash: string(hash)}
	if err := e.store.CreateUser(context.Background(), &newer); err != nil {
		t.Fatal(err)
	}
	hash2, _ := bcrypt.GenerateFromPassword([]byte("newer password"), bcrypt.MinCost)
	if _, err := e.store.ChangePassword(context.Background(), newer.ID, string(hash2), 0); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ email, password, want string }{
		{"νικος@example.gr", "older password", older.ID},
		{"νικος@example.gr", "newer password", newer.ID}, // ς is σ too: its normal form's account comes first
		{"νικοσ@example.gr", "newer password", newer.ID},
	} {
		if _, id := e.login(c.email, c.password); id != c.want {
			t.Errorf("sign-in as %q with %q: user %s, want %s", c.email, c.password, id, c.want)
		}
	}
	if status, msg, _ := e.post("/api/auth/login", map[string]string{"email": "νικοσ@example.gr", "password": "older password"}); status != http.StatusUnauthorized {
		t.Errorf("the σ spelling with the ς account's password: %d %s, want 401", status, msg)
	}
}

// lookupCounter counts the store's lookups by email.
type lookupCounter struct {
	AccountStore
	n atomic.Int32
}

func (s *lookupCounter) UserByEmail(ctx context.Context, email string) (persistence.User, error) {
	s.n.Add(1)
	return s.AccountStore.UserByEmail(ctx, email)
}

// TestSignInLookupsSameForUnknownEmail: a sign-in looks an email up in
// every one of its forms, whether an account is found at the first or
// none at all, so the number of lookups tells nothing. Before, a known
// email stopped at the first.
func TestSignInLookupsSameForUnknownEmail(t *testing.T) {
	t.Parallel()
	store, err := sqlite.Open(context.Background(), sqlite.Options{Path: filepath.Join(t.TempDir(), "chatd.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close(context.Background()) })
	counter := &lookupCounter{AccountStore: store}
	e := newAccountsEnvThrough(t, store, counter, AccountOptions{})
	e.register("σ1@example.gr", "12345678")
	// Three forms: σ1, ς1 (not folded), ς１ (before NFKC).
	for _, email := range []string{"ς\uff11@example.gr", "ς\uff12@example.gr"} {
		counter.n.Store(0)
		e.post("/api/auth/login", map[string]string{"email": email, "password": "12345678"})
		if n := counter.n.Load(); n != 3 {
			t.Errorf("sign-in as %q: %d lookups, want 3", email, n)
		}
	}
}

// TestFailedSignInComparisonsSameForUnknownEmail: a wrong password costs
// the same bcrypt comparisons for an unknown email as for a known one,
// one per form of the password, however many forms the email has (they
// are looked up, not compared): an email of three forms is no dearer to
// check than one of one. Only a pair of accounts of one email (a
// collision left apart by the store's rewrite) costs one comparison per
// form and account, which tells that the pair exists (documented).
func TestFailedSignInComparisonsSameForUnknownEmail(t *testing.T) {
	t.Parallel()
	e := newAccountsEnv(t, AccountOptions{})
	var compared atomic.Int32
	e.accounts.passwords.compared = func(int) { compared.Add(1) }
	e.register("plain@example.com", "12345678")
	e.register("σ1@example.gr", "12345678")
	count := func(email, password string) int32 {
		t.Helper()
		compared.Store(0)
		u, matched, err := e.accounts.verify(context.Background(), email, password)
		if err != nil || matched != "" || u.ID != "" {
			t.Fatalf("verify %q: user %q, matched %q, %v: want a plain failure", email, u.ID, matched, err)
		}
		return compared.Load()
	}
	for _, c := range []struct {
		name, known, unknown string
		emailForms           int
	}{
		{"one email form", "plain@example.com", "nobody@example.com", 1},
		// ς1 (final sigma, fullwidth digit): σ1, ς1 and ς１.
		{"three email forms", "ς\uff11@example.gr", "ς\uff12@example.gr", 3},
	} {
		for _, pw := range []struct {
			name, password string
			forms          int
		}{
			{"one password form", "wrong password", 1},
			{"two password forms (NFD)", "wrong cafe\u0301", 2},
		} {
			if n := len(emailForms(c.known)); n != c.emailForms {
				t.Fatalf("%s: %q has %d forms, want %d", c.name, c.known, n, c.emailForms)
			}
			if n := len(passwordForms(pw.password)); n != pw.forms {
				t.Fatalf("%s: %q has %d forms, want %d", pw.name, pw.password, n, pw.forms)
			}
			known, unknown := count(c.known, pw.password), count(c.unknown, pw.password)
			if known != unknown || known != int32(pw.forms) {
				t.Errorf("%s, %s: %d comparisons for a known email, %d for an unknown one, want %d each",
					c.name, pw.name, known, unknown, pw.forms)
			}
		}
	}
	// A collision pair: an older-form account beside the normal one.
	hash, _ := bcrypt.GenerateFromPassword([]byte("older password"), bcrypt.MinCost)
	older := persistence.User{Email: "ς1@example.gr", Name: "N", PasswordHash: string(hash)}
	if err := e.store.CreateUser(context.Background(), &older); err != nil {
		t.Fatal(err)
	}
	if n := count("ς\uff11@example.gr", "wrong cafe\u0301"); n != 4 {
		t.Errorf("a collision pair: %d comparisons, want 2 accounts x 2 password forms", n)
	}
}
