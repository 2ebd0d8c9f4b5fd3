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
)

// addressChecksOptions are limits small enough to reach in a test: each
// account allows 2 checks, each address 3 failures and 6 checks.
var addressChecksOptions = AccountOptions{MaxFailuresPerAccount: 2, MaxChecksPerAccount: 2,
	MaxFailuresPerIP: 3, MaxChecksPerIP: 6, RegistrationsPerHourIP: 100}

// checkStep is one request of TestAddressChecksBounded: from an address,
// to the account of index account, a sign-in with its password (login), a
// wrong one (guess), or its session's password change with the right
// current password (change) or a wrong one (wrongChange).
type checkStep struct {
	from    string
	do      string
	account int
	want    int
}

// inTurn is a right sign-in from addr to each of accounts, in turn, each
// answered want.
func inTurn(addr string, want int, accounts ...int) []checkStep {
	var s []checkStep
	for _, i := range accounts {
		s = append(s, checkStep{addr, "login", i, want})
	}
	return s
}

// TestAddressChecksBounded: the password checks from one client address
// are bounded across accounts (MaxChecksPerIP, 6 here), right passwords
// included: an address signing in to many accounts in turn, each under
// its own bound of checks (2 here), is answered 429 with Retry-After ("too
// many sign-ins from this address") past it, wrong passwords and a
// session's current passwords count too, an IPv6 client counts by its
// /64, and another address still signs in. Before, a right password gave
// back its address's attempt and was bounded per account only: an
// address that had registered 240 accounts (ten an hour for a day)
// could check 240 x 30 passwords a window, about what two hashing slots
// do at the default cost, and everyone else's sign-in was answered 503.
func TestAddressChecksBounded(t *testing.T) {
	t.Parallel()
	const attacker, other = "203.0.113.9", "198.51.100.7"
	for _, tc := range []struct {
		name  string
		steps []checkStep
	}{
		{"right passwords to many accounts in turn", slices.Concat(inTurn(attacker, http.StatusOK, 0, 1, 2, 0, 1, 2),
			inTurn(attacker, http.StatusTooManyRequests, 3, 4), inTurn(other, http.StatusOK, 3, 4))},
		{"wrong passwords count too", slices.Concat([]checkStep{{attacker, "guess", 0, http.StatusUnauthorized},
			{attacker, "guess", 1, http.StatusUnauthorized}}, inTurn(attacker, http.StatusOK, 2, 3, 4, 2),
			inTurn(attacker, http.StatusTooManyRequests, 3), inTurn(other, http.StatusOK, 3))},
		{"a session's password checks count too", slices.Concat([]checkStep{{attacker, "change", 0, http.StatusOK},
			{attacker, "change", 1, http.StatusOK}, {attacker, "wrongChange", 2, http.StatusUnauthorized}},
			inTurn(attacker, http.StatusOK, 3, 4, 3), []checkStep{{attacker, "change", 4, http.StatusTooManyRequests}},
			inTurn(attacker, http.StatusTooManyRequests, 2), inTurn(other, http.StatusOK, 2))},
		{"an IPv6 client counts by its /64", slices.Concat(inTurn("2001:db8:1:2::1", http.StatusOK, 0, 1, 2),
			inTurn("2001:db8:1:2::ffff", http.StatusOK, 0, 1, 2), inTurn("2001:db8:1:2:5::1", http.StatusTooManyRequests, 3),
			inTurn("2001:db8:1:3::1", http.StatusOK, 3))},
		{"one account's checks stay its own bound", slices.Concat(inTurn(attacker, http.StatusOK, 0, 0),
			inTurn(attacker, http.StatusTooManyRequests, 0), inTurn(attacker, http.StatusOK, 1))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newAccountsEnv(t, addressChecksOptions)
			tokens := make([]string, 5)
			for i := range tokens {
				tokens[i], _ = e.signUp(accountEmail(i), "the right password")
			}
			for n, s := range tc.steps {
				var status int
				var msg string
				var h http.Header
				switch s.do {
				case "login", "guess":
					p := "the right password"
					if s.do == "guess" {
						p = fmt.Sprintf("wrong guess %d", n)
					}
					status, msg, h = e.postFrom(s.from, "/api/auth/login", map[string]string{"email": accountEmail(s.account), "password": p})
				case "change", "wrongChange":
					p := "the right password"
					if s.do == "wrongChange" {
						p = fmt.Sprintf("wrong current %d", n)
					}
					body, _ := json.Marshal(map[string]string{"currentPassword": p, "newPassword": "the right password"})
					var next string
					status, msg, next = e.callFrom(s.from, http.MethodPatch, "/api/auth/me", tokens[s.account], string(body))
					if status == http.StatusOK {
						tokens[s.account] = next // the change revoked the one before
					}
				}
				if status != s.want {
					t.Fatalf("step %d, %s of account %d from %s: %d %s, want %d", n, s.do, s.account, s.from, status, msg, s.want)
				}
				if status == http.StatusTooManyRequests && h != nil && h.Get("Retry-After") == "" {
					t.Fatalf("step %d: 429 without Retry-After", n)
				}
			}
		})
	}
}

// accountEmail is the email of the test's account of index i.
func accountEmail(i int) string { return fmt.Sprintf("account%d@example.com", i) }

// TestParallelAddressChecksBounded: right passwords sent from one address
// in bursts of parallel sign-ins, to accounts in turn, each account under
// its own bound, check at most MaxChecksPerIP passwords in the window,
// each a 200 and the rest 429 ("too many sign-ins from this address",
// with Retry-After), on one instance and over two of a cluster sharing
// their limits (SharedWindows); another address then signs in. Each
// burst is as large as the address's failures (MaxFailuresPerIP, which
// also counts a right password while it is checked), so only the bound
// on checks can refuse. Before, every sign-in was answered 200.
func TestParallelAddressChecksBounded(t *testing.T) {
	t.Parallel()
	const (
		maxChecks = 10
		bursts    = 6
		burst     = 4 // MaxFailuresPerIP
		accounts  = 8 // each signed in to bursts*burst/accounts = 3 times, its bound
	)
	for _, tc := range []struct {
		name      string
		instances int
	}{
		{"one instance", 1},
		{"two instances of a cluster", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := AccountOptions{MaxFailuresPerAccount: 3, MaxChecksPerAccount: 3, MaxFailuresPerIP: burst,
				MaxChecksPerIP: maxChecks, RegistrationsPerHourIP: 100, MaxConcurrentHashes: burst}
			if tc.instances > 1 {
				opts.Shared = &memWindows{m: map[string]*window{}}
			}
			envs := []*accountsEnv{newAccountsEnv(t, opts)}
			for len(envs) < tc.instances {
				envs = append(envs, newAccountsEnvOn(t, envs[0].store, opts))
			}
			var checked atomic.Int32
			for _, e := range envs {
				e.accounts.passwords.checked = func() { checked.Add(1) }
			}
			for i := range accounts {
				envs[0].register(accountEmail(i), "the right password")
			}
			var mu sync.Mutex
			count := map[int]int{}
			for b := range bursts {
				var wg sync.WaitGroup
				for i := range burst {
					n := b*burst + i
					e := envs[n%len(envs)]
					wg.Go(func() {
						status, msg, h := e.postFrom("203.0.113.9", "/api/auth/login",
							map[string]string{"email": accountEmail(n % accounts), "password": "the right password"})
						if status == http.StatusTooManyRequests && (h.Get("Retry-After") == "" || !strings.Contains(msg, "from this address")) {
							t.Errorf("sign-in %d: 429 %q, Retry-After %q", n, msg, h.Get("Retry-After"))
						}
						mu.Lock()
						count[status]++
						mu.Unlock()
					})
				}
				wg.Wait()
			}
			if count[http.StatusOK] != maxChecks || int(checked.Load()) != maxChecks ||
				count[http.StatusTooManyRequests] != bursts*burst-maxChecks {
				t.Fatalf("answers %v, %d passwords checked: want %d checked, each a 200, the rest 429", count, checked.Load(), maxChecks)
			}
			for i, e := range envs { // to an account of its own: each has a check left
				if status, msg, _ := e.postFrom("198.51.100.7", "/api/auth/login",
					map[string]string{"email": accountEmail(i), "password": "the right password"}); status != http.StatusOK {
					t.Fatalf("another address's sign-in on instance %d: %d %s", i, status, msg)
				}
			}
		})
	}
}

// TestAddressChecksDefaults: the bound on an address's checks defaults
// to DefaultMaxChecksPerIP, and is raised to the address's failures and
// to one account's checks: it never refuses a failure the failures limit
// allows, nor the checks one account is allowed.
func TestAddressChecksDefaults(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts AccountOptions
		want int
	}{
		{"default", AccountOptions{}, DefaultMaxChecksPerIP},
		{"set", AccountOptions{MaxChecksPerIP: 500}, 500},
		{"raised to the address's failures", AccountOptions{MaxChecksPerIP: 10, MaxFailuresPerIP: 40}, 40},
		{"raised to one account's checks", AccountOptions{MaxChecksPerIP: 10, MaxChecksPerAccount: 1000}, 1000},
		{"raised to one account's failures", AccountOptions{MaxChecksPerIP: 1, MaxFailuresPerIP: 1, MaxFailuresPerAccount: 50}, 50},
	} {
		opts := tc.opts
		opts.setDefaults()
		if opts.MaxChecksPerIP != tc.want {
			t.Errorf("%s: MaxChecksPerIP %d, want %d", tc.name, opts.MaxChecksPerIP, tc.want)
		}
	}
}
