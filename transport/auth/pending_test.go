package auth

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// TestDeleteAccountRefusesSignInMeanwhile: while OnDeleting ends the
// account's live work, its right password signs in nowhere (401), so no
// session starts that the deletion would miss; a token one would have
// got does not open /me either.
func TestDeleteAccountRefusesSignInMeanwhile(t *testing.T) {
	t.Parallel()
	var e *accountsEnv
	var loginStatus, meStatus int
	e = newAccountsEnv(t, AccountOptions{OnDeleting: func(context.Context, string) error {
		var body string
		loginStatus, body, _ = e.post("/api/auth/login", map[string]string{"email": "leaving@example.com", "password": "the right password"})
		var s Session
		if json.Unmarshal([]byte(body), &s) == nil && s.Token != "" {
			meStatus, _ = e.call(http.MethodGet, "/api/auth/me", s.Token, "")
		}
		return nil
	}})
	token, _ := e.signUp("leaving@example.com", "the right password")
	if status, code := e.call(http.MethodDelete, "/api/auth/me", token, `{"password":"the right password"}`); status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", status, code)
	}
	if loginStatus != http.StatusUnauthorized {
		t.Fatalf("login while the deletion ends the live work: %d, want 401", loginStatus)
	}
	if meStatus != 0 && meStatus != http.StatusUnauthorized {
		t.Fatalf("/me with the token of that login: %d, want 401", meStatus)
	}
}

// TestPendingHashLapses: a pending hash (a deletion cut off before the
// store's mark by the process's end) refuses the password until its
// deadline, then signs in with it and is put back.
func TestPendingHashLapses(t *testing.T) {
	t.Parallel()
	e := newAccountsEnv(t, AccountOptions{})
	_, id := e.signUp("cut@example.com", "the right password")
	ctx := context.Background()
	login := func() int {
		status, _, _ := e.post("/api/auth/login", map[string]string{"email": "cut@example.com", "password": "the right password"})
		return status
	}
	for _, tc := range []struct {
		name     string
		deadline time.Time
		want     int
	}{
		{"pending", time.Now().Add(time.Hour), http.StatusUnauthorized},
		{"lapsed", time.Now().Add(-time.Second), http.StatusOK},
	} {
		u, err := e.store.UserByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.store.ChangePassword(ctx, id, pendingHash(u.PasswordHash, tc.deadline), u.TokenVersion); err != nil {
			t.Fatal(err)
		}
		if got := login(); got != tc.want {
			t.Fatalf("%s: login %d, want %d", tc.name, got, tc.want)
		}
	}
	if u, err := e.store.UserByID(ctx, id); err != nil || innerHash(u.PasswordHash) != u.PasswordHash {
		t.Fatalf("after the lapsed sign-in: %q, %v; want the hash put back", u.PasswordHash, err)
	}
}
