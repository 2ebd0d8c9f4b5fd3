package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"chatd/persistence"
)

// The one password of these tests in its two spellings: "é" as one code
// point (NFC) and as "e" and a combining acute accent (NFD).
const (
	pwNFC = "caf\u00e9 au lait"
	pwNFD = "cafe\u0301 au lait"
)

// plantUser stores a user whose hash is of password at cost, as an older
// server (a lower cost, a password not normalised) would have stored it.
func plantUser(t *testing.T, e *accountsEnv, email, password string, cost int) persistence.User {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		t.Fatal(err)
	}
	u := persistence.User{Email: email, Name: "N", PasswordHash: string(h)}
	if err := e.store.CreateUser(context.Background(), &u); err != nil {
		t.Fatal(err)
	}
	return u
}

// storedUser reads u again from the store.
func storedUser(t *testing.T, e *accountsEnv, u persistence.User) persistence.User {
	t.Helper()
	got, err := e.store.UserByID(context.Background(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestSignInRehashes: a sign-in whose password matched a hash at a lower
// bcrypt cost than configured, or of the password as typed where that is
// not its NFC form, stores a new hash of the NFC form at the configured
// cost (never lowering a higher one); every other sign-in leaves the hash
// as it is. No session ends (the token version stays), and the password
// then works in both spellings.
func TestSignInRehashes(t *testing.T) {
	t.Parallel()
	const configured = bcrypt.MinCost + 1
	cases := []struct {
		name       string
		stored     string // the password the planted hash is of
		storedCost int
		typed      string
		status     int
		rehashed   bool
		wantCost   int
	}{
		{"a lower cost is raised", pwNFC, bcrypt.MinCost, pwNFC, http.StatusOK, true, configured},
		{"the configured cost is kept", pwNFC, configured, pwNFC, http.StatusOK, false, configured},
		{"a higher cost is kept", pwNFC, configured + 1, pwNFC, http.StatusOK, false, configured + 1},
		{"an NFC hash signed in to in NFD is kept", pwNFC, configured, pwNFD, http.StatusOK, false, configured},
		{"an NFD hash is replaced by an NFC one", pwNFD, configured, pwNFD, http.StatusOK, true, configured},
		{"an NFD hash of a lower cost: NFC at the configured", pwNFD, bcrypt.MinCost, pwNFD, http.StatusOK, true, configured},
		{"an NFD hash of a higher cost: NFC at that cost", pwNFD, configured + 1, pwNFD, http.StatusOK, true, configured + 1},
		{"a wrong password changes nothing", pwNFC, bcrypt.MinCost, "not the password", http.StatusUnauthorized, false, bcrypt.MinCost},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newAccountsEnv(t, AccountOptions{BcryptCost: configured})
			u := plantUser(t, e, "planted@example.com", tc.stored, tc.storedCost)
			login := func(pw string) int {
				status, _, _ := e.post("/api/auth/login", map[string]string{"email": u.Email, "password": pw})
				return status
			}
			if got := login(tc.typed); got != tc.status {
				t.Fatalf("sign-in: %d, want %d", got, tc.status)
			}
			after := storedUser(t, e, u)
			if after.TokenVersion != u.TokenVersion {
				t.Fatalf("token version %d after the sign-in, want %d (no session ends)", after.TokenVersion, u.TokenVersion)
			}
			if changed := after.PasswordHash != u.PasswordHash; changed != tc.rehashed {
				t.Fatalf("hash replaced: %v, want %v", changed, tc.rehashed)
			}
			if cost, _ := bcrypt.Cost([]byte(after.PasswordHash)); cost != tc.wantCost {
				t.Fatalf("stored cost %d, want %d", cost, tc.wantCost)
			}
			if tc.rehashed && bcrypt.CompareHashAndPassword([]byte(after.PasswordHash), []byte(pwNFC)) != nil {
				t.Fatal("the new hash is not of the password's NFC form")
			}
			if tc.status != http.StatusOK {
				return
			}
			for _, pw := range []string{pwNFC, pwNFD} {
				if got := login(pw); got != http.StatusOK {
					t.Fatalf("sign-in with %+q afterwards: %d", pw, got)
				}
			}
		})
	}
}

// failingRehash is a store whose RehashPassword fails.
type failingRehash struct {
	AccountStore
}

func (failingRehash) RehashPassword(context.Context, string, string, string) error {
	return errors.New("disk full")
}

// lockedBuffer is a log destination safe for concurrent writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestSignInRehashFailureIsLogged: a new hash the store fails to write
// does not fail the sign-in; it is logged as a warning, and the old hash
// stays (the next sign-in tries again).
func TestSignInRehashFailureIsLogged(t *testing.T) {
	t.Parallel()
	var logs lockedBuffer
	base := newAccountsEnv(t, AccountOptions{})
	e := newAccountsEnvThrough(t, base.store, failingRehash{base.store}, AccountOptions{
		BcryptCost: bcrypt.MinCost + 1, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	u := plantUser(t, e, "planted@example.com", pwNFC, bcrypt.MinCost)
	if status, msg, _ := e.post("/api/auth/login", map[string]string{"email": u.Email, "password": pwNFC}); status != http.StatusOK {
		t.Fatalf("sign-in with a rehash failing: %d %s", status, msg)
	}
	if got := storedUser(t, e, u); got.PasswordHash != u.PasswordHash {
		t.Fatal("the hash changed though the store failed")
	}
	var rec struct{ Level, Msg, Err string }
	for line := range strings.Lines(logs.String()) {
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "password rehash not stored" {
			break
		}
	}
	if rec.Msg != "password rehash not stored" || rec.Level != "WARN" || !strings.Contains(rec.Err, "disk full") {
		t.Fatalf("no warning of the failed rehash in the log:\n%s", logs.String())
	}
}

// TestNewPasswordsHashedInNFC: a password chosen at sign-up or at a
// password change is hashed in its NFC form, so it is the same password
// whichever spelling a system sends; and it counts its characters in that
// form (8 NFC characters typed as 9 code points in NFD are not too few,
// 7 typed as 8 are).
func TestNewPasswordsHashedInNFC(t *testing.T) {
	t.Parallel()
	e := newAccountsEnv(t, AccountOptions{})
	token, id := e.signUp("nfd@example.com", pwNFD)
	u := storedUser(t, e, persistence.User{ID: id})
	if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(pwNFC)) != nil {
		t.Fatal("the sign-up's hash is not of the password's NFC form")
	}
	const newNFC, newNFD = "cr\u00e8me br\u00fbl\u00e9e", "cre\u0300me bru\u0302le\u0301e"
	body, _ := json.Marshal(map[string]string{"currentPassword": pwNFC, "newPassword": newNFD})
	if status, code := e.call(http.MethodPatch, "/api/auth/me", token, string(body)); status != http.StatusOK {
		t.Fatalf("password change: %d %s", status, code)
	}
	u = storedUser(t, e, u)
	if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(newNFC)) != nil {
		t.Fatal("the password change's hash is not of the new password's NFC form")
	}
	for _, tc := range []struct {
		email, password string
		status          int
	}{
		{"eight@example.com", "abcdefge\u0301", http.StatusCreated},   // 8 characters, 9 code points
		{"seven@example.com", "abcdefe\u0301", http.StatusBadRequest}, // 7 characters, 8 code points
	} {
		status, msg, _ := e.post("/api/auth/register", map[string]string{"email": tc.email, "password": tc.password, "name": "N"})
		if status != tc.status {
			t.Errorf("sign-up with %+q: %d %s, want %d", tc.password, status, msg, tc.status)
		}
	}
}

// TestDecomposedPasswordOverBytesSignsIn: a password whose NFC form is
// within 72 bytes but typed decomposed is longer (25 "é" as "e" and a
// combining accent: 75 bytes, 50 in NFC) registers, and then signs in
// and confirms a password change typed the same way. Before, sign-in and
// the current-password check applied the byte rule to the password as
// typed: 400 for a password registration had accepted. A password with
// no form within the rules is still refused.
func TestDecomposedPasswordOverBytesSignsIn(t *testing.T) {
	t.Parallel()
	e := newAccountsEnv(t, AccountOptions{})
	pw := strings.Repeat("e\u0301", 25)
	if len(pw) <= MaxPasswordBytes || len(normalizePassword(pw)) > MaxPasswordBytes {
		t.Fatalf("the password is %d bytes typed, %d in NFC", len(pw), len(normalizePassword(pw)))
	}
	e.signUp("long-nfd@example.com", pw)
	token, _ := e.login("long-nfd@example.com", pw)
	e.session(http.MethodPatch, "/api/auth/me", token, map[string]string{"currentPassword": pw, "newPassword": "a new password"}, http.StatusOK)
	e.login("long-nfd@example.com", "a new password")
	for _, bad := range []string{strings.Repeat("e\u0301", 40), "a password\x00"} {
		if status, code, _ := e.post("/api/auth/login", map[string]string{"email": "long-nfd@example.com", "password": bad}); status != http.StatusBadRequest {
			t.Errorf("sign-in with %q: %d %s, want 400", bad, status, code)
		}
	}
}
