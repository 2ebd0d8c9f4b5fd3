package auth

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"chatd/persistence"
)

// TestChangePasswordRefused: a change without a session, with a missing
// or wrong current password or a new one registration would refuse
// changes nothing; a wrong current password counts as a failed login.
func TestChangePasswordRefused(t *testing.T) {
	t.Parallel()
	e := newAccountsEnv(t, AccountOptions{MaxFailuresPerAccount: 3, MaxFailuresPerIP: 100,
		OnPasswordChanged: func(string, int64) { t.Error("OnPasswordChanged called for a refused change") }})
	token, _ := e.signUp("same@example.com", "the right password")
	body := func(current, next string) string {
		b, _ := json.Marshal(map[string]string{"currentPassword": current, "newPassword": next})
		return string(b)
	}
	cases := []struct {
		name, token, body string
		status            int
		code              string
	}{
		{"no session", "", body("the right password", "a new password"), http.StatusUnauthorized, "unauthorized"},
		{"not JSON", token, `{`, http.StatusBadRequest, "bad_request"},
		{"no current password", token, body("", "a new password"), http.StatusBadRequest, "invalid_field"},
		{"new password too short", token, body("the right password", "short"), http.StatusBadRequest, "invalid_field"},
		{"new password too long", token, body("the right password", strings.Repeat("x", 73)), http.StatusBadRequest, "invalid_field"},
		{"new password with NUL", token, body("the right password", "nul \x00 inside"), http.StatusBadRequest, "invalid_field"},
		{"wrong current password", token, body("not the password", "a new password"), http.StatusUnauthorized, "unauthorized"},
	}
	for _, tc := range cases {
		if status, code := e.call(http.MethodPatch, "/api/auth/me", tc.token, tc.body); status != tc.status || code != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, status, code, tc.status, tc.code)
		}
	}
	if status, _ := e.call(http.MethodGet, "/api/auth/me", token, ""); status != http.StatusOK {
		t.Fatalf("the session after refused changes: %d", status)
	}
	for range 2 {
		e.call(http.MethodPatch, "/api/auth/me", token, body("another guess", "a new password"))
	}
	if status, _ := e.call(http.MethodPatch, "/api/auth/me", token, body("yet another", "a new password")); status != http.StatusTooManyRequests {
		t.Fatalf("after 3 wrong current passwords: %d, want 429", status)
	}
}

// TestChangePassword: the new password works and the old one not; every
// token issued before stops working, the caller's included, and the new
// session's does; OnPasswordChanged gets that session's token version.
func TestChangePassword(t *testing.T) {
	t.Parallel()
	var got atomic.Int64
	var e *accountsEnv
	e = newAccountsEnv(t, AccountOptions{OnPasswordChanged: func(userID string, version int64) {
		u, err := e.store.UserByID(context.Background(), userID)
		if err != nil || u.TokenVersion != version {
			t.Errorf("OnPasswordChanged(%s, %d): stored %+v, %v", userID, version, u, err)
		}
		got.Store(version)
	}})
	token, id := e.signUp("changing@example.com", "the old password")
	other, _ := e.login("changing@example.com", "the old password")

	fresh, _ := e.session(http.MethodPatch, "/api/auth/me", token,
		map[string]string{"currentPassword": "the old password", "newPassword": "the new password"}, http.StatusOK)
	if got.Load() != 1 {
		t.Fatalf("OnPasswordChanged got version %d, want 1", got.Load())
	}
	for name, tok := range map[string]string{"the caller's old token": token, "another session's token": other} {
		if status, _ := e.call(http.MethodGet, "/api/auth/me", tok, ""); status != http.StatusUnauthorized {
			t.Errorf("%s after the change: %d, want 401", name, status)
		}
	}
	if status, _ := e.call(http.MethodGet, "/api/auth/me", fresh, ""); status != http.StatusOK {
		t.Fatalf("the new session's token: %d", status)
	}
	if status, _, _ := e.post("/api/auth/login", map[string]string{"email": "changing@example.com", "password": "the old password"}); status != http.StatusUnauthorized {
		t.Fatalf("login with the old password: %d", status)
	}
	if _, again := e.login("changing@example.com", "the new password"); again != id {
		t.Fatalf("login with the new password: user %s, want %s", again, id)
	}
}

// overtakingStore changes the user's password itself (another request's
// change, landing first) right before the first ChangePassword it is
// asked for.
type overtakingStore struct {
	AccountStore
	hash string
	once sync.Once
}

func (s *overtakingStore) ChangePassword(ctx context.Context, id, passwordHash string, fromVersion int64) (int64, error) {
	var err error
	s.once.Do(func() { _, err = s.AccountStore.ChangePassword(ctx, id, s.hash, fromVersion) })
	if err != nil {
		return 0, err
	}
	return s.AccountStore.ChangePassword(ctx, id, passwordHash, fromVersion)
}

// TestChangePasswordOvertaken: of two password changes that both checked
// the current password before either wrote, the second to write is
// refused 409 conflict and changes nothing, so the first one's new
// session stays valid and its password is the account's. Before, both
// succeeded: the second revoked the session the first had just answered
// with, and the password the first client chose no longer worked.
func TestChangePasswordOvertaken(t *testing.T) {
	t.Parallel()
	e := newAccountsEnv(t, AccountOptions{})
	token, id := e.signUp("racing@example.com", "the old password")
	first, err := bcrypt.GenerateFromPassword([]byte("the first new password"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	e.accounts.store = &overtakingStore{AccountStore: e.store, hash: string(first)}
	body := map[string]string{"currentPassword": "the old password", "newPassword": "the second new password"}
	data, _ := json.Marshal(body)
	if status, code := e.call(http.MethodPatch, "/api/auth/me", token, string(data)); status != http.StatusConflict || code != "conflict" {
		t.Fatalf("the overtaken change: %d %s, want 409 conflict", status, code)
	}
	u, err := e.store.UserByID(context.Background(), id)
	if err != nil || u.PasswordHash != string(first) || u.TokenVersion != 1 {
		t.Fatalf("stored %+v (%v), want the first change's hash at token version 1", u, err)
	}
}

// loggedOutStore signs the user out everywhere (a logout landing, its
// token version bumped) at the first UserByID it is asked for: the
// change's own read of the user, after its token was checked.
type loggedOutStore struct {
	AccountStore
	once sync.Once
}

func (s *loggedOutStore) UserByID(ctx context.Context, id string) (persistence.User, error) {
	var err error
	s.once.Do(func() { _, err = s.AccountStore.BumpTokenVersion(ctx, id) })
	if err != nil {
		return persistence.User{}, err
	}
	return s.AccountStore.UserByID(ctx, id)
}

// TestChangePasswordAfterLogout: a logout everywhere that lands after a
// change's token was checked, before it reads the user, refuses the change
// 409 conflict, nothing changed. Before, the change compared the store's
// token version with the one it had just read there (the logout's), so it
// applied and answered a valid token to the session the logout had ended.
func TestChangePasswordAfterLogout(t *testing.T) {
	t.Parallel()
	e := newAccountsEnv(t, AccountOptions{
		OnPasswordChanged: func(string, int64) { t.Error("OnPasswordChanged called for a refused change") }})
	token, id := e.signUp("loggedout@example.com", "the old password")
	before, err := e.store.UserByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	e.accounts.store = &loggedOutStore{AccountStore: e.store}
	data, _ := json.Marshal(map[string]string{"currentPassword": "the old password", "newPassword": "a new password"})
	if status, code := e.call(http.MethodPatch, "/api/auth/me", token, string(data)); status != http.StatusConflict || code != "conflict" {
		t.Fatalf("the change the logout overtook: %d %s, want 409 conflict", status, code)
	}
	u, err := e.store.UserByID(context.Background(), id)
	if err != nil || u.PasswordHash != before.PasswordHash || u.TokenVersion != before.TokenVersion+1 {
		t.Fatalf("stored %+v (%v), want the old hash at the logout's token version %d", u, err, before.TokenVersion+1)
	}
}
