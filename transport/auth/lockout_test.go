package auth

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// callFrom is call from the client address ip (X-Forwarded-For, which the
// test router believes); it also returns the token of an answered session.
func (e *accountsEnv) callFrom(ip, method, path, token, body string) (int, string, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", ip)
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct {
		Token string
		Error struct{ Code, Message string }
	}
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out.Error.Code + " " + out.Error.Message, out.Token
}

// lockoutStep is one request of TestStrangersCannotLockTheOwnerOut.
type lockoutStep struct {
	from string // the client address
	do   string // guess (a wrong login), login, change (the password), delete, wrongChange
	want int
}

// guesses is n wrong logins from each of addrs, each answered want.
func guesses(n int, want int, addrs ...string) []lockoutStep {
	var steps []lockoutStep
	for _, addr := range addrs {
		for range n {
			steps = append(steps, lockoutStep{addr, "guess", want})
		}
	}
	return steps
}

// addresses is n IPv4 addresses of 192.0.2.0/24 and 198.18.0.0/15.
func addresses(n int) []string {
	addrs := make([]string, n)
	for i := range addrs {
		addrs[i] = fmt.Sprintf("198.18.%d.%d", i/250, i%250+1)
	}
	return addrs
}

// TestStrangersCannotLockTheOwnerOut: failed logins are limited per
// account and client address (CHATD_LOGIN_MAX_FAILURES_ACCOUNT, 5), so a
// stranger's five wrong passwords block the stranger's address for that
// account, not the owner at another: the owner signs in, changes the
// password and deletes the account from elsewhere. Guesses spread over
// many addresses still end in 429 for the account's logins past the
// account-wide bound (100), while its signed-in session can still change
// its password; strangers' failures fill none of the account's checks
// (30). Before, five wrong logins from one address answered 429 to every
// login, password change and deletion of the account, from anywhere, for
// the window: anyone could lock any account out with five requests.
func TestStrangersCannotLockTheOwnerOut(t *testing.T) {
	t.Parallel()
	const stranger, owner, ownerV6, strangerV6 = "203.0.113.9", "198.51.100.7", "2001:db8:1:3::1", "2001:db8:1:2::1"
	for _, tc := range []struct {
		name  string
		steps []lockoutStep
	}{
		{"the owner signs in from another address", slices.Concat(guesses(5, http.StatusUnauthorized, stranger),
			[]lockoutStep{{owner, "login", http.StatusOK}})},
		{"the owner changes the password from another address", slices.Concat(guesses(5, http.StatusUnauthorized, stranger),
			[]lockoutStep{{owner, "change", http.StatusOK}})},
		{"the owner deletes the account from another address", slices.Concat(guesses(5, http.StatusUnauthorized, stranger),
			[]lockoutStep{{owner, "delete", http.StatusNoContent}})},
		{"the stranger's address stays blocked for the account", slices.Concat(guesses(5, http.StatusUnauthorized, stranger),
			guesses(1, http.StatusTooManyRequests, stranger),
			[]lockoutStep{{stranger, "login", http.StatusTooManyRequests}, {stranger, "change", http.StatusTooManyRequests}})},
		{"an IPv6 client counts by its /64", slices.Concat(guesses(5, http.StatusUnauthorized, strangerV6),
			[]lockoutStep{{"2001:db8:1:2::ffff", "login", http.StatusTooManyRequests}, {ownerV6, "login", http.StatusOK}})},
		{"guesses from six addresses fill none of the account's checks", slices.Concat(guesses(5, http.StatusUnauthorized, addresses(6)...),
			[]lockoutStep{{owner, "login", http.StatusOK}, {owner, "change", http.StatusOK}})},
		{"a success forgets the failures from its own address only", slices.Concat(guesses(4, http.StatusUnauthorized, stranger, owner),
			[]lockoutStep{{owner, "login", http.StatusOK}},
			guesses(5, http.StatusUnauthorized, owner),
			guesses(1, http.StatusUnauthorized, stranger), guesses(1, http.StatusTooManyRequests, stranger))},
		{"guesses from 101 addresses end in 429 for the account", slices.Concat(guesses(1, http.StatusUnauthorized, addresses(100)...),
			guesses(1, http.StatusTooManyRequests, "192.0.2.200"),
			[]lockoutStep{{owner, "login", http.StatusTooManyRequests}, {owner, "change", http.StatusOK}})},
		{"a session's wrong current passwords block its address", slices.Concat(
			[]lockoutStep{{owner, "wrongChange", http.StatusUnauthorized}, {owner, "wrongChange", http.StatusUnauthorized},
				{owner, "wrongChange", http.StatusUnauthorized}, {owner, "wrongChange", http.StatusUnauthorized},
				{owner, "wrongChange", http.StatusUnauthorized}, {owner, "change", http.StatusTooManyRequests},
				{owner, "login", http.StatusTooManyRequests}, {stranger, "login", http.StatusOK}})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newAccountsEnv(t, AccountOptions{})
			const email, password = "victim@example.com", "the right password"
			token, _ := e.signUp(email, password)
			for i, s := range tc.steps {
				var status int
				var msg string
				switch s.do {
				case "guess", "login":
					p := password
					if s.do == "guess" {
						p = fmt.Sprintf("wrong guess %d", i)
					}
					status, msg, _ = e.postFrom(s.from, "/api/auth/login", map[string]string{"email": email, "password": p})
				case "change", "wrongChange":
					p := password
					if s.do == "wrongChange" {
						p = fmt.Sprintf("wrong current %d", i)
					}
					body, _ := json.Marshal(map[string]string{"currentPassword": p, "newPassword": password})
					var next string
					status, msg, next = e.callFrom(s.from, http.MethodPatch, "/api/auth/me", token, string(body))
					if status == http.StatusOK {
						token = next // the change revoked the one before
					}
				case "delete":
					status, msg, _ = e.callFrom(s.from, http.MethodDelete, "/api/auth/me", token, `{"password":"`+password+`"}`)
				}
				if status != s.want {
					t.Fatalf("step %d, %s from %s: %d %s, want %d", i, s.do, s.from, status, msg, s.want)
				}
			}
		})
	}
}

// TestParallelGuessesBounded: a burst of wrong passwords sent at once
// checks no more passwords than the limit that applies allows, however
// it is spread: from one address (the account's failures from it, 5),
// from many (the account's from all, 100), and as a session's wrong
// current passwords from many (the account's checks, 30); the rest are
// answered 429.
func TestParallelGuessesBounded(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		addrs     []string
		each      int // requests per address
		session   bool
		maxChecks int32
	}{
		{"logins from one address", []string{"203.0.113.9"}, 20, false, 5},
		{"logins from many addresses", addresses(40), 5, false, 100},
		{"a session's checks from many addresses", addresses(20), 3, true, 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Waits for a hashing slot long enough that a loaded machine
			// answers no 503: what is counted is the checks, each a 401,
			// and the refusals, each a 429.
			e := newAccountsEnv(t, AccountOptions{MaxFailuresPerIP: 1000, HashQueueWait: 30 * time.Second, RequestTimeout: 30 * time.Second})
			token, _ := e.signUp("target@example.com", "the right password")
			var checked atomic.Int32
			e.accounts.passwords.checked = func() { checked.Add(1) }
			var mu sync.Mutex
			count := map[int]int{}
			var wg sync.WaitGroup
			start := make(chan struct{})
			for _, addr := range tc.addrs {
				for i := range tc.each {
					wg.Go(func() {
						<-start
						var status int
						guess := fmt.Sprintf("guess %s %d", addr, i)
						if tc.session {
							body, _ := json.Marshal(map[string]string{"currentPassword": guess, "newPassword": "a new password"})
							status, _, _ = e.callFrom(addr, http.MethodPatch, "/api/auth/me", token, string(body))
						} else {
							status, _, _ = e.postFrom(addr, "/api/auth/login", map[string]string{"email": "target@example.com", "password": guess})
						}
						mu.Lock()
						count[status]++
						mu.Unlock()
					})
				}
			}
			close(start)
			wg.Wait()
			n := len(tc.addrs) * tc.each
			if checked.Load() > tc.maxChecks || int32(count[http.StatusUnauthorized]) != checked.Load() ||
				count[http.StatusUnauthorized]+count[http.StatusTooManyRequests] != n {
				t.Fatalf("answers %v, %d passwords checked: want at most %d checked, each a 401, the rest 429", count, checked.Load(), tc.maxChecks)
			}
		})
	}
}

// TestSharedWindowsPerAddress: with a SharedWindows the failures per
// account and address hold for the cluster: a stranger's guesses spread
// over two instances block the stranger's address on both, and the
// owner signs in at another address on either.
func TestSharedWindowsPerAddress(t *testing.T) {
	t.Parallel()
	shared := &memWindows{m: map[string]*window{}}
	opts := AccountOptions{MaxFailuresPerAccount: 3, Shared: shared}
	a := newAccountsEnv(t, opts)
	b := newAccountsEnvOn(t, a.store, opts)
	a.register("target@example.com", "the right password")
	for i, s := range []struct {
		on       *accountsEnv
		from     string
		password string
		want     int
	}{
		{a, "203.0.113.9", "guess 1", http.StatusUnauthorized},
		{b, "203.0.113.9", "guess 2", http.StatusUnauthorized},
		{a, "203.0.113.9", "guess 3", http.StatusUnauthorized},
		{b, "203.0.113.9", "guess 4", http.StatusTooManyRequests},
		{b, "198.51.100.7", "the right password", http.StatusOK},
		{a, "198.51.100.7", "the right password", http.StatusOK},
		{a, "203.0.113.9", "the right password", http.StatusTooManyRequests},
	} {
		if status, msg, _ := s.on.postFrom(s.from, "/api/auth/login", map[string]string{"email": "target@example.com", "password": s.password}); status != s.want {
			t.Fatalf("step %d from %s: %d %s, want %d", i, s.from, status, msg, s.want)
		}
	}
}
