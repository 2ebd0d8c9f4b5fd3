package auth

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// TestLoginRetryAfterIsTheLongestBlock: a login refused by one limit is
// told to wait for the longest of the blocks it would meet, not the
// first limit's alone. The failures per client address are checked
// first: an address whose window of failed logins (3 here) began earlier
// ends it minutes before its failures to one account (2 here), and a
// client told to come back then was refused again for the rest of the
// account's window. An account that address is not blocked for gets the
// address's wait.
func TestLoginRetryAfterIsTheLongestBlock(t *testing.T) {
	t.Parallel()
	const ip = "203.0.113.9"
	type step struct {
		at    time.Duration // since the first step
		email string
	}
	for _, tc := range []struct {
		name  string
		steps []step // wrong logins, each answered 401
		login string // then refused
		at    time.Duration
		want  string // its Retry-After
	}{
		{"the account's block ends after the address's", []step{{0, "b@example.com"}, {10 * time.Minute, "a@example.com"}, {10 * time.Minute, "a@example.com"}},
			"a@example.com", 11 * time.Minute, "840"},
		{"another account: the address's block", []step{{0, "b@example.com"}, {10 * time.Minute, "a@example.com"}, {10 * time.Minute, "a@example.com"}},
			"c@example.com", 11 * time.Minute, "240"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Unix(1_700_000_000, 0)
			var since atomic.Int64 // read by the server's goroutines
			now := func() time.Time { return start.Add(time.Duration(since.Load())) }
			e := newAccountsEnv(t, AccountOptions{MaxFailuresPerIP: 3, MaxFailuresPerAccount: 2, FailureWindow: 15 * time.Minute, Now: now})
			for i, s := range tc.steps {
				since.Store(int64(s.at))
				if status, code, _ := e.postFrom(ip, "/api/auth/login", map[string]string{"email": s.email, "password": "a wrong password"}); status != http.StatusUnauthorized {
					t.Fatalf("step %d: %d %s, want 401", i, status, code)
				}
			}
			since.Store(int64(tc.at))
			status, code, h := e.postFrom(ip, "/api/auth/login", map[string]string{"email": tc.login, "password": "a wrong password"})
			if status != http.StatusTooManyRequests || h.Get("Retry-After") != tc.want {
				t.Fatalf("login: %d %s, Retry-After %q; want 429, Retry-After %s", status, code, h.Get("Retry-After"), tc.want)
			}
		})
	}
}
