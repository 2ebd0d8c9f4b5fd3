package auth

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/crypto/bcrypt"

	"chatd/persistence"
	"chatd/persistence/sqlite"
)

// stallingStore is a store whose method named stall does not answer: it
// waits for its context to end, or for release to close (then it does
// its work).
type stallingStore struct {
	*sqlite.Store
	stall   string
	release chan struct{}
}

func (s stallingStore) wait(ctx context.Context, method string) error {
	if method != s.stall {
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-s.release:
		return nil
	}
}

func (s stallingStore) CreateUser(ctx context.Context, u *persistence.User) error {
	if err := s.wait(ctx, "CreateUser"); err != nil {
		return err
	}
	return s.Store.CreateUser(ctx, u)
}

func (s stallingStore) UserByEmail(ctx context.Context, email string) (persistence.User, error) {
	if err := s.wait(ctx, "UserByEmail"); err != nil {
		return persistence.User{}, err
	}
	return s.Store.UserByEmail(ctx, email)
}

func (s stallingStore) UserByID(ctx context.Context, id string) (persistence.User, error) {
	if err := s.wait(ctx, "UserByID"); err != nil {
		return persistence.User{}, err
	}
	return s.Store.UserByID(ctx, id)
}

func (s stallingStore) BumpTokenVersion(ctx context.Context, id string) (int64, error) {
	if err := s.wait(ctx, "BumpTokenVersion"); err != nil {
		return 0, err
	}
	return s.Store.BumpTokenVersion(ctx, id)
}

func (s stallingStore) ChangePassword(ctx context.Context, id, hash string, from int64) (int64, error) {
	if err := s.wait(ctx, "ChangePassword"); err != nil {
		return 0, err
	}
	return s.Store.ChangePassword(ctx, id, hash, from)
}

func (s stallingStore) DeleteUser(ctx context.Context, id string) error {
	if err := s.wait(ctx, "DeleteUser"); err != nil {
		return err
	}
	return s.Store.DeleteUser(ctx, id)
}

// stallingEnv serves the account routes over e's store with method
// stalling, the token checks on e's store as it is.
func stallingEnv(t *testing.T, e *accountsEnv, store stallingStore, opts AccountOptions) (*Accounts, *httptest.Server) {
	t.Helper()
	opts.BcryptCost = bcrypt.MinCost
	a, err := NewAccounts(store, e.accounts.authn, opts)
	if err != nil {
		t.Fatal(err)
	}
	r := gin.New()
	a.Routes(r.Group("/api"))
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return a, srv
}

// answer is what a request of do got.
type answer struct {
	status     int
	retryAfter string
	body       string
}

// do sends method path with token and body to srv; the client's own bound
// only keeps a regression from hanging the test.
func do(t *testing.T, srv *httptest.Server, method, path, token, body string) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return answer{res.StatusCode, res.Header.Get("Retry-After"), string(data)}
}

// TestAccountRoutesBounded: each account route waits on a store that does
// not answer at most RequestTimeout (CHATD_REQUEST_TIMEOUT), then answers
// 503 unavailable with Retry-After, where before it waited for as long as
// the store hung (here, until the client gave up). A deletion whose
// revocation does not answer deletes nothing.
func TestAccountRoutesBounded(t *testing.T) {
	t.Parallel()
	e := newAccountsEnv(t, AccountOptions{})
	token, id := e.signUp("bounded@example.com", "the right password")
	for _, tc := range []struct {
		stall, method, path, body string
	}{
		{"CreateUser", http.MethodPost, "/api/auth/register", `{"email":"new@example.com","password":"a new password","name":"N"}`},
		{"UserByEmail", http.MethodPost, "/api/auth/login", `{"email":"bounded@example.com","password":"the right password"}`},
		{"UserByID", http.MethodGet, "/api/auth/me", ""},
		{"BumpTokenVersion", http.MethodPost, "/api/auth/logout", ""},
		{"ChangePassword", http.MethodPatch, "/api/auth/me", `{"currentPassword":"the right password","newPassword":"another password"}`},
		{"BumpTokenVersion", http.MethodDelete, "/api/auth/me", `{"password":"the right password"}`},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			store := stallingStore{Store: e.store, stall: tc.stall, release: make(chan struct{})}
			_, srv := stallingEnv(t, e, store, AccountOptions{RequestTimeout: 50 * time.Millisecond})
			got := do(t, srv, tc.method, tc.path, token, tc.body)
			if got.status != http.StatusServiceUnavailable || got.retryAfter == "" || !strings.Contains(got.body, `"unavailable"`) {
				t.Fatalf("answer %+v, want 503 unavailable with Retry-After", got)
			}
		})
	}
	if u, err := e.store.UserByID(context.Background(), id); err != nil || u.TokenVersion != 0 {
		t.Fatalf("the account after the refused requests: %+v, %v; want it as it was", u, err)
	}
}

// TestDeleteAccountOutlivesRequest: once an account's tokens are revoked,
// the removal of its data is not cut by the request's bound: when it takes
// longer, the request is answered 202 (a body the client reads as a
// success), the account is signed out everywhere at once, and the removal
// runs on to its end (Wait waits for it), within DeleteTimeout. Before,
// the request waited for the removal as long as it took (here, until the
// client gave up).
func TestDeleteAccountOutlivesRequest(t *testing.T) {
	t.Parallel()
	e := newAccountsEnv(t, AccountOptions{})
	token, id := e.signUp("slow@example.com", "the right password")
	store := stallingStore{Store: e.store, stall: "DeleteUser", release: make(chan struct{})}
	// The bound covers the password check, the revocation and the first
	// mark before the wait: 200 ms was too short under -race on a loaded
	// machine (503), which can hold a goroutine for a second or two.
	a, srv := stallingEnv(t, e, store, AccountOptions{RequestTimeout: 4 * time.Second})
	got := do(t, srv, http.MethodDelete, "/api/auth/me", token, `{"password":"the right password"}`)
	if got.status != http.StatusAccepted || !json.Valid([]byte(got.body)) {
		t.Fatalf("answer %+v, want 202 with a JSON body", got)
	}
	if got := do(t, srv, http.MethodGet, "/api/auth/me", token, ""); got.status != http.StatusUnauthorized {
		t.Fatalf("the token while the deletion runs: %d, want 401", got.status)
	}
	close(store.release)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.UserByID(context.Background(), id); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("the user once the deletion ended: %v, want it gone", err)
	}
}

// TestDeleteAccountBoundedApart: a removal that does not end within
// DeleteTimeout stops; stuck before the store's first write (the mark,
// see TestDeleteAccountCutOff for a cut after it), the account is left
// whole and signed out, and the request that was answered 202 logs it;
// signing in and deleting again deletes it.
func TestDeleteAccountBoundedApart(t *testing.T) {
	t.Parallel()
	e := newAccountsEnv(t, AccountOptions{})
	token, id := e.signUp("stuck@example.com", "the right password")
	store := stallingStore{Store: e.store, stall: "DeleteUser", release: make(chan struct{})}
	// The request's bound covers the password check, the revocation and
	// the first mark (600 ms was short for a loaded machine); the removal's
	// ends after it, so that the request is answered 202 first.
	a, srv := stallingEnv(t, e, store, AccountOptions{RequestTimeout: 4 * time.Second, DeleteTimeout: 5 * time.Second})
	if got := do(t, srv, http.MethodDelete, "/api/auth/me", token, `{"password":"the right password"}`); got.status != http.StatusAccepted {
		t.Fatalf("answer %+v, want 202", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if u, err := e.store.UserByID(context.Background(), id); err != nil || u.TokenVersion != 2 { // moved by the revocation and by the mark taken back
		t.Fatalf("the account after a removal out of time: %+v, %v; want it whole, signed out (version 2)", u, err)
	}
	token, _ = e.login("stuck@example.com", "the right password")
	if status, code := e.call(http.MethodDelete, "/api/auth/me", token, `{"password":"the right password"}`); status != http.StatusNoContent {
		t.Fatalf("deleting again: %d %s", status, code)
	}
}
