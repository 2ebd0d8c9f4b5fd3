package auth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/crypto/bcrypt"

	"chatd/persistence"
	"chatd/persistence/sqlite"
)

// failingCreates is a store whose CreateUser, until pass is set, reports
// its arrival on entered, then fails: with the context's error once the
// client gave up (abandon), or at once with a failure of the store's own.
type failingCreates struct {
	*sqlite.Store
	abandon bool
	pass    bool
	entered chan struct{}
}

func (s *failingCreates) CreateUser(ctx context.Context, u *persistence.User) error {
	if s.pass {
		return s.Store.CreateUser(ctx, u)
	}
	s.entered <- struct{}{}
	if !s.abandon {
		return errors.New("disk I/O error")
	}
	<-ctx.Done()
	return ctx.Err()
}

// TestAbandonedSignUpCounts: a sign-up whose client leaves once its
// password was hashed still counts against the address's registrations,
// because its hash was done; only a failure of the server's own gives the
// attempt back. Before, every failure other than a taken email gave it
// back, so a client that closed its connection after each hash had no
// limit at all on the bcrypt runs it made the server do, enough to keep
// every hashing slot busy and everyone's sign-in answered 503.
func TestAbandonedSignUpCounts(t *testing.T) {
	t.Parallel()
	const limit = 2
	for _, tc := range []struct {
		name    string
		abandon bool
		want    int // the answer to a sign-up after limit failed ones
	}{
		{"the client left", true, http.StatusTooManyRequests},
		{"the store failed", false, http.StatusCreated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newAccountsEnv(t, AccountOptions{RegistrationsPerHourIP: limit})
			store := &failingCreates{Store: e.store, abandon: tc.abandon, entered: make(chan struct{})}
			a, err := NewAccounts(store, e.accounts.authn, AccountOptions{RegistrationsPerHourIP: limit, BcryptCost: bcrypt.MinCost})
			if err != nil {
				t.Fatal(err)
			}
			signUp := signUpFrom(a, "192.0.2.7:40000")
			for i := range limit {
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan int, 1)
				go func() { done <- signUp(ctx, "gone"+string(rune('a'+i))+"@example.com") }()
				<-store.entered // hashed; now storing
				if tc.abandon {
					cancel() // the client leaves while it is stored
				}
				status := <-done
				cancel()
				if status < 400 {
					t.Fatalf("failed sign-up %d answered %d", i, status)
				}
			}
			store.pass = true // the earlier sign-ups have returned (done)
			if got := signUp(t.Context(), "next@example.com"); got != tc.want {
				t.Fatalf("the sign-up after %d failed ones answered %d, want %d", limit, got, tc.want)
			}
		})
	}
}

// TestSignInNeedsJSONType: a sign-up or sign-in without a Content-Type is
// refused (400), creating nothing and counting nothing, because a web
// page can make its visitors' browsers send such a body cross-site with
// no CORS preflight. Before, both were served (201, 401).
func TestSignInNeedsJSONType(t *testing.T) {
	t.Parallel()
	e := newAccountsEnv(t, AccountOptions{MaxFailuresPerAccount: 1, RegistrationsPerHourIP: 1})
	send := func(path, contentType, body string) int {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, e.srv.URL+path, strings.NewReader(body))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		res, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	signUp := `{"email":"ada@example.com","password":"analytical engine","name":"Ada"}`
	wrong := `{"email":"ada@example.com","password":"a wrong password"}`
	for _, tc := range []struct {
		name, path, contentType, body string
		want                          int
	}{
		{"sign-up without a type", "/api/auth/register", "", signUp, http.StatusBadRequest},
		{"sign-in without a type", "/api/auth/login", "", wrong, http.StatusBadRequest},
		{"sign-up as text", "/api/auth/register", "text/plain", signUp, http.StatusBadRequest},
		// Nothing above was counted: the one sign-up and the one failed
		// sign-in the limits allow are still there.
		{"sign-up as JSON", "/api/auth/register", "application/json", signUp, http.StatusCreated},
		{"sign-in as JSON", "/api/auth/login", "application/json; charset=utf-8", wrong, http.StatusUnauthorized},
	} {
		if got := send(tc.path, tc.contentType, tc.body); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestSuccessfulChecksAreBounded: right passwords sent at once for one
// account check at most MaxChecksPerAccount of them per window, the rest
// answered 429, and a password change's check counts too; another account
// is not affected. Before, a success gave its attempt back, so signing in
// with the right password was a bcrypt run without limit: enough of them
// at once held every hashing slot, and everyone's sign-in was answered 503.
func TestSuccessfulChecksAreBounded(t *testing.T) {
	t.Parallel()
	const limit, burst = 4, 12
	e := newAccountsEnv(t, AccountOptions{MaxChecksPerAccount: limit, MaxFailuresPerAccount: limit, MaxFailuresPerIP: 1000})
	e.register("ada@example.com", "analytical engine")
	e.register("bob@example.com", "difference engine")
	var checked atomic.Int32
	e.accounts.passwords.checked = func() { checked.Add(1) }

	var mu sync.Mutex
	count := map[int]int{}
	var wg sync.WaitGroup
	for range burst {
		wg.Go(func() {
			status, _, h := e.post("/api/auth/login", map[string]string{"email": "ada@example.com", "password": "analytical engine"})
			if status == http.StatusTooManyRequests && h.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
			mu.Lock()
			count[status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if count[http.StatusOK] != limit || count[http.StatusTooManyRequests] != burst-limit || checked.Load() != limit {
		t.Fatalf("answers %v, %d passwords checked: want %d x 200, %d x 429, %d checked", count, checked.Load(), limit, burst-limit, limit)
	}
	if status, msg, _ := e.post("/api/auth/login", map[string]string{"email": "bob@example.com", "password": "difference engine"}); status != http.StatusOK {
		t.Fatalf("another account's sign-in: %d %s", status, msg)
	}
	// The password change of a session opened before the burst checks a
	// password too: refused as well.
	e2 := newAccountsEnv(t, AccountOptions{MaxChecksPerAccount: 2, MaxFailuresPerAccount: 2, MaxFailuresPerIP: 1000})
	token, _ := e2.signUp("eve@example.com", "a long password")
	e2.login("eve@example.com", "a long password")
	e2.login("eve@example.com", "a long password")
	if status, _ := e2.call(http.MethodPatch, "/api/auth/me", token, `{"currentPassword":"a long password","newPassword":"another password"}`); status != http.StatusTooManyRequests {
		t.Fatalf("a password change past the checks: %d, want 429", status)
	}
}

// TestSignUpLeftWaitingToHashGivesBack: a sign-up whose client left while
// it waited for a turn to hash (every hashing slot busy) hashed nothing
// and gives its attempt back, unlike one abandoned after its hash
// (TestAbandonedSignUpCounts): under load, users who give up do not use up
// their address's sign-ups. Before, it was kept (429 for the next one).
func TestSignUpLeftWaitingToHashGivesBack(t *testing.T) {
	t.Parallel()
	e := newAccountsEnv(t, AccountOptions{RegistrationsPerHourIP: 1})
	a, err := NewAccounts(e.store, e.accounts.authn, AccountOptions{RegistrationsPerHourIP: 1,
		BcryptCost: bcrypt.MinCost, HashQueueWait: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	signUp := signUpFrom(a, "192.0.2.8:40000")
	for range cap(a.passwords.slots) { // every slot busy
		a.passwords.slots <- struct{}{}
	}
	gone, cancel := context.WithCancel(t.Context())
	cancel() // the client has left: the wait for a slot ends at once
	if status := signUp(gone, "gave-up@example.com"); status < 400 {
		t.Fatalf("the abandoned sign-up answered %d", status)
	}
	for range cap(a.passwords.slots) {
		<-a.passwords.slots
	}
	if got := signUp(t.Context(), "next@example.com"); got != http.StatusCreated {
		t.Fatalf("the sign-up after one abandoned before its hash answered %d, want 201", got)
	}
}

// TestChecksBoundAllowsTheFailures: the bound on an account's password
// checks never refuses a failed login the failures limit allows: an
// operator's CHATD_LOGIN_MAX_FAILURES_ACCOUNT above the checks' default
// (30) raises it. Before, the 31st failure of a limit of 35 was refused
// as too many sign-ins.
func TestChecksBoundAllowsTheFailures(t *testing.T) {
	t.Parallel()
	const failures = 35
	e := newAccountsEnv(t, AccountOptions{MaxFailuresPerAccount: failures, MaxFailuresPerIP: 1000})
	e.register("ada@example.com", "analytical engine")
	for i := range failures {
		if status, msg, _ := e.post("/api/auth/login", map[string]string{"email": "ada@example.com", "password": "a wrong password"}); status != http.StatusUnauthorized {
			t.Fatalf("failed login %d answered %d %s, want 401", i+1, status, msg)
		}
	}
	if status, _, _ := e.post("/api/auth/login", map[string]string{"email": "ada@example.com", "password": "a wrong password"}); status != http.StatusTooManyRequests {
		t.Fatalf("the login past the failures limit answered %d, want 429", status)
	}
}

// signUpFrom serves a's routes directly and returns a function that signs
// up email from the client address addr with ctx as the request's context
// (cancelled: a client that left), answering the status.
func signUpFrom(a *Accounts, addr string) func(ctx context.Context, email string) int {
	r := gin.New()
	a.Routes(r.Group("/api"))
	return func(ctx context.Context, email string) int {
		body := `{"email":"` + email + `","password":"12345678","name":"N"}`
		req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/api/auth/register", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.RemoteAddr = addr
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		return rec.Code
	}
}
