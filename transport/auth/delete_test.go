package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/crypto/bcrypt"

	"chatd/internal/syncbuf"
	"chatd/persistence"
	"chatd/persistence/sqlite"
)

// signUp registers an account and returns its token and id.
func (e *accountsEnv) signUp(email, password string) (token, id string) {
	e.t.Helper()
	return e.session(http.MethodPost, "/api/auth/register", "", map[string]string{"email": email, "password": password, "name": "N"}, http.StatusCreated)
}

// login signs in and returns the session's token and user id.
func (e *accountsEnv) login(email, password string) (token, id string) {
	e.t.Helper()
	return e.session(http.MethodPost, "/api/auth/login", "", map[string]string{"email": email, "password": password}, http.StatusOK)
}

// session sends body to path with method (and token, if any), which must
// answer want and a Session; it returns the session's token and user id.
func (e *accountsEnv) session(method, path, token string, body map[string]string, want int) (string, string) {
	e.t.Helper()
	data, _ := json.Marshal(body)
	req, err := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(data))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var s Session
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil || res.StatusCode != want {
		e.t.Fatalf("%s %s: %d %v", method, path, res.StatusCode, err)
	}
	return s.Token, s.User.ID
}

// call sends method path with token and a raw body and returns the status
// and the error code of an error answer.
func (e *accountsEnv) call(method, path, token, body string) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct{ Error struct{ Code string } }
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out.Error.Code
}

// TestDeleteAccountRefused: a deletion without the right password, or
// without a session, changes nothing and says why.
func TestDeleteAccountRefused(t *testing.T) {
	t.Parallel()
	e := newAccountsEnv(t, AccountOptions{MaxFailuresPerAccount: 3, MaxFailuresPerIP: 100,
		OnDeleting: func(context.Context, string) error { t.Error("OnDeleting called for a refused deletion"); return nil }})
	token, id := e.signUp("keep@example.com", "the right password")
	cases := []struct {
		name, token, body string
		status            int
		code              string
	}{
		{"no session", "", `{"password":"the right password"}`, http.StatusUnauthorized, "unauthorized"},
		{"no body", token, ``, http.StatusBadRequest, "bad_request"},
		{"not JSON", token, `password`, http.StatusBadRequest, "bad_request"},
		{"no password", token, `{}`, http.StatusBadRequest, "invalid_field"},
		{"password too long", token, `{"password":"` + strings.Repeat("x", 73) + `"}`, http.StatusBadRequest, "invalid_field"},
		{"wrong password", token, `{"password":"not the password"}`, http.StatusUnauthorized, "unauthorized"},
	}
	for _, tc := range cases {
		if status, code := e.call(http.MethodDelete, "/api/auth/me", tc.token, tc.body); status != tc.status || code != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, status, code, tc.status, tc.code)
		}
	}
	if u, err := e.store.UserByID(context.Background(), id); err != nil || u.TokenVersion != 0 {
		t.Fatalf("after refused deletions: %+v, %v; want the account as it was", u, err)
	}
	// Wrong passwords count as failed logins: the limit of the account's
	// failures from one address (3) holds for deletions and logins
	// together.
	for range 2 {
		e.call(http.MethodDelete, "/api/auth/me", token, `{"password":"another guess"}`)
	}
	if status, code := e.call(http.MethodDelete, "/api/auth/me", token, `{"password":"the right password"}`); status != http.StatusTooManyRequests {
		t.Fatalf("after 3 wrong passwords: %d %s, want 429", status, code)
	}
	if status, _, _ := e.post("/api/auth/login", map[string]string{"email": "keep@example.com", "password": "the right password"}); status != http.StatusTooManyRequests {
		t.Fatalf("login after 3 wrong deletion passwords: %d, want 429", status)
	}
}

// TestDeleteAccount: with the password, the tokens are revoked and the
// user marked (no read finds them) before OnDeleting runs, the data goes
// after it, and the email is free again.
func TestDeleteAccount(t *testing.T) {
	t.Parallel()
	var e *accountsEnv
	var calls atomic.Int32
	e = newAccountsEnv(t, AccountOptions{OnDeleting: func(ctx context.Context, userID string) error {
		calls.Add(1)
		if _, err := e.store.UserByID(ctx, userID); !errors.Is(err, persistence.ErrNotFound) {
			t.Errorf("OnDeleting saw the user: %v; want them marked as being deleted (not found)", err)
		}
		return nil
	}})
	token, id := e.signUp("leaving@example.com", "the right password")
	otherToken, _ := e.signUp("staying@example.com", "another password")

	if status, code := e.call(http.MethodDelete, "/api/auth/me", token, `{"password":"the right password"}`); status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", status, code)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("OnDeleting called %d times", n)
	}
	if _, err := e.store.UserByID(context.Background(), id); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("the user after deletion: %v", err)
	}
	if status, _ := e.call(http.MethodGet, "/api/auth/me", token, ""); status != http.StatusUnauthorized {
		t.Fatalf("the deleted account's token: %d", status)
	}
	if status, _ := e.call(http.MethodDelete, "/api/auth/me", token, `{"password":"the right password"}`); status != http.StatusUnauthorized {
		t.Fatalf("deleting again with the old token: %d", status)
	}
	if status, _, _ := e.post("/api/auth/login", map[string]string{"email": "leaving@example.com", "password": "the right password"}); status != http.StatusUnauthorized {
		t.Fatalf("login to the deleted account: %d", status)
	}
	if status, _ := e.call(http.MethodGet, "/api/auth/me", otherToken, ""); status != http.StatusOK {
		t.Fatalf("another account after the deletion: %d", status)
	}
	e.register("leaving@example.com", "a new password")
}

// TestDeleteAccountStopsWhenLiveWorkCannotEnd: an error of OnDeleting
// keeps the data (signed out everywhere); a later deletion finishes it.
func TestDeleteAccountStopsWhenLiveWorkCannotEnd(t *testing.T) {
	t.Parallel()
	var fail atomic.Bool
	fail.Store(true)
	e := newAccountsEnv(t, AccountOptions{OnDeleting: func(context.Context, string) error {
		if fail.Load() {
			return errors.New("the bus is down")
		}
		return nil
	}})
	token, id := e.signUp("retry@example.com", "the right password")
	if status, code := e.call(http.MethodDelete, "/api/auth/me", token, `{"password":"the right password"}`); status != http.StatusInternalServerError {
		t.Fatalf("delete with OnDeleting failing: %d %s, want 500", status, code)
	}
	if u, err := e.store.UserByID(context.Background(), id); err != nil || u.TokenVersion != 2 { // moved by the revocation and by the mark taken back
		t.Fatalf("after the failed deletion: %+v, %v; want the account kept, its tokens revoked (version 2)", u, err)
	}
	fail.Store(false)
	token, _ = e.login("retry@example.com", "the right password")
	if status, code := e.call(http.MethodDelete, "/api/auth/me", token, `{"password":"the right password"}`); status != http.StatusNoContent {
		t.Fatalf("second deletion: %d %s", status, code)
	}
}

// TestDeleteAccountRefusesSignInMeanwhile: while OnDeleting ends the
// account's live work, its right password signs in nowhere (401, the
// answer of an unknown account), so no session starts that the
// deletion's snapshot of that work would miss. Before, the deletion only
// bumped the token version until DeleteUser's mark: the login got 200
// and a token /me accepted.
func TestDeleteAccountRefusesSignInMeanwhile(t *testing.T) {
	t.Parallel()
	var e *accountsEnv
	type answer struct {
		status int
		token  string
		err    string
	}
	login := func(email string) answer {
		data, _ := json.Marshal(map[string]string{"email": email, "password": "the right password"})
		res, err := e.srv.Client().Post(e.srv.URL+"/api/auth/login", "application/json", bytes.NewReader(data))
		if err != nil {
			return answer{err: err.Error()}
		}
		defer res.Body.Close()
		var out struct {
			Token string
			Error struct{ Code, Message string }
		}
		_ = json.NewDecoder(res.Body).Decode(&out)
		return answer{status: res.StatusCode, token: out.Token, err: out.Error.Code + " " + out.Error.Message}
	}
	var meanwhile, unknown answer
	meStatus := 0
	e = newAccountsEnv(t, AccountOptions{OnDeleting: func(context.Context, string) error {
		meanwhile, unknown = login("leaving@example.com"), login("nobody@example.com")
		if meanwhile.token != "" {
			meStatus, _ = e.call(http.MethodGet, "/api/auth/me", meanwhile.token, "")
		}
		return nil
	}})
	token, _ := e.signUp("leaving@example.com", "the right password")
	if status, code := e.call(http.MethodDelete, "/api/auth/me", token, `{"password":"the right password"}`); status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", status, code)
	}
	if meanwhile.status != http.StatusUnauthorized || meanwhile != unknown {
		t.Fatalf("login while the deletion ends the live work: %+v (its token on /me: %d), want %+v as for an unknown account",
			meanwhile, meStatus, unknown)
	}
}

// TestDeleteAccountInParallel: the same deletion sent several times at
// once deletes the account once; every answer is 204 or, for a request
// that found the account already gone, 401; none fails.
func TestDeleteAccountInParallel(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	const n = 6
	// Each request counts a password attempt before its check, so a burst
	// of more than the account's limit gets 429s (TestParallelGuessesCheckAtMostTheLimit);
	// this test is about the deletions, so the limit lets all of them in.
	e := newAccountsEnv(t, AccountOptions{MaxFailuresPerAccount: n,
		OnDeleting: func(context.Context, string) error { calls.Add(1); return nil }})
	token, id := e.signUp("twice@example.com", "the right password")
	statuses := make(chan int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			status, _ := e.call(http.MethodDelete, "/api/auth/me", token, `{"password":"the right password"}`)
			statuses <- status
		})
	}
	close(start)
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	if count[http.StatusNoContent] == 0 || count[http.StatusNoContent]+count[http.StatusUnauthorized] != n {
		t.Fatalf("answers %v: want 204s, and 401s only for requests that found the account gone", count)
	}
	if _, err := e.store.UserByID(context.Background(), id); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("the user after the deletions: %v", err)
	}
}

// removedStore plays an account removed after the request's token was
// checked: its token version still reads, the user no longer does.
type removedStore struct{ *sqlite.Store }

func (removedStore) UserByID(context.Context, string) (persistence.User, error) {
	return persistence.User{}, persistence.ErrNotFound
}

func (removedStore) BumpTokenVersion(context.Context, string) (int64, error) {
	return 0, persistence.ErrNotFound
}

// TestRemovedAccountRequests: requests of an account deleted between the
// token's check and the handler's store call answer as for an account
// that is gone, not as a server failure: GET /api/auth/me 401 (the client
// signs in again), POST /api/auth/logout 204 (the session is over either
// way). Before, both were 500 internal errors, logged as such.
func TestRemovedAccountRequests(t *testing.T) {
	t.Parallel()
	e := newAccountsEnv(t, AccountOptions{})
	token, _ := e.signUp("gone@example.com", "the right password")
	a, err := NewAccounts(removedStore{e.store}, e.accounts.authn, AccountOptions{BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	r := gin.New()
	a.Routes(r.Group("/api"))
	gone := &accountsEnv{t: t, srv: httptest.NewServer(r)}
	t.Cleanup(gone.srv.Close)
	for _, tc := range []struct {
		method, path string
		status       int
		code         string
	}{
		{http.MethodGet, "/api/auth/me", http.StatusUnauthorized, "unauthorized"},
		{http.MethodPost, "/api/auth/logout", http.StatusNoContent, ""},
	} {
		if status, code := gone.call(tc.method, tc.path, token, ""); status != tc.status || code != tc.code {
			t.Errorf("%s %s of a removed account: %d %q, want %d %q", tc.method, tc.path, status, code, tc.status, tc.code)
		}
	}
}

// cutStore plays a store whose account deletions are cut off (their time
// limit, the process's end) right after the user is marked as being
// deleted.
type cutStore struct{ *sqlite.Store }

func (s cutStore) DeleteUser(ctx context.Context, id string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	return s.Store.DeleteUser(persistence.WithDeleteHook(ctx, func(step string) {
		if step == persistence.DeleteStepMarked {
			cancel()
		}
	}), id)
}

// TestDeleteAccountCutOff: a deletion the store cut off after marking the
// user answers 202 deleting, not an error: the account no longer signs
// in, its token is refused and its email is still taken, until the store
// finishes the deletion (FinishDeletions); then the email is free again.
func TestDeleteAccountCutOff(t *testing.T) {
	t.Parallel()
	e := newAccountsEnv(t, AccountOptions{})
	a, err := NewAccounts(cutStore{e.store}, e.accounts.authn, AccountOptions{BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	r := gin.New()
	a.Routes(r.Group("/api"))
	cut := &accountsEnv{t: t, srv: httptest.NewServer(r)}
	t.Cleanup(cut.srv.Close)
	token, _ := e.signUp("cut@example.com", "the right password")

	req, _ := http.NewRequest(http.MethodDelete, cut.srv.URL+"/api/auth/me", strings.NewReader(`{"password":"the right password"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := cut.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body struct{ Status string }
	_ = json.NewDecoder(res.Body).Decode(&body)
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted || body.Status != "deleting" {
		t.Fatalf("delete cut off after the mark: %d %+v, want 202 deleting", res.StatusCode, body)
	}
	if err := a.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := e.post("/api/auth/login", map[string]string{"email": "cut@example.com", "password": "the right password"}); status != http.StatusUnauthorized {
		t.Fatalf("login to the account being deleted: %d, want 401", status)
	}
	if status, _ := e.call(http.MethodGet, "/api/auth/me", token, ""); status != http.StatusUnauthorized {
		t.Fatalf("the token of the account being deleted: %d, want 401", status)
	}
	if status, _, _ := e.post("/api/auth/register", map[string]string{"email": "cut@example.com", "password": "a new password", "name": "N"}); status != http.StatusConflict {
		t.Fatalf("register with the email of the account being deleted: %d, want 409 until it is gone", status)
	}
	if _, err := e.store.FinishDeletions(t.Context()); err != nil { // or the store's own sweep did
		t.Fatal(err)
	}
	e.register("cut@example.com", "a new password")
}

// lostReplyStore plays a store whose account deletions fail on the
// mark's own write with an error that says nothing of a mark (a timeout,
// a dropped connection): when landed, the write was done all the same
// and only its reply was lost; else nothing was written.
type lostReplyStore struct {
	*sqlite.Store
	landed bool
}

func (s lostReplyStore) DeleteUser(ctx context.Context, id string) error {
	if s.landed {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		_ = s.Store.DeleteUser(persistence.WithDeleteHook(ctx, func(step string) {
			if step == persistence.DeleteStepMarked {
				cancel()
			}
		}), id)
	}
	return errors.New("read tcp 10.0.0.1:5432: connection reset by peer")
}

// TestDeleteAccountLostMarkReply: a deletion whose mark's write landed
// but whose reply was lost answers as a landed mark does, 202 deleting
// (signed out: no sign-in, the token refused; the store finishes it), not
// 500; only when the re-read shows the mark did not land is it 500, the
// account kept, signed out. Before, both answered 500.
func TestDeleteAccountLostMarkReply(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		landed bool
		status int
		body   string
	}{
		{"the mark landed", true, http.StatusAccepted, "deleting"},
		{"the mark did not land", false, http.StatusInternalServerError, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newAccountsEnv(t, AccountOptions{})
			a, err := NewAccounts(lostReplyStore{e.store, tc.landed}, e.accounts.authn, AccountOptions{BcryptCost: bcrypt.MinCost})
			if err != nil {
				t.Fatal(err)
			}
			r := gin.New()
			a.Routes(r.Group("/api"))
			lost := &accountsEnv{t: t, srv: httptest.NewServer(r)}
			t.Cleanup(lost.srv.Close)
			token, id := e.signUp("lost@example.com", "the right password")

			req, _ := http.NewRequest(http.MethodDelete, lost.srv.URL+"/api/auth/me", strings.NewReader(`{"password":"the right password"}`))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			res, err := lost.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body struct{ Status string }
			_ = json.NewDecoder(res.Body).Decode(&body)
			res.Body.Close()
			if res.StatusCode != tc.status || body.Status != tc.body {
				t.Fatalf("delete: %d %+v, want %d %q", res.StatusCode, body, tc.status, tc.body)
			}
			if err := a.Wait(t.Context()); err != nil {
				t.Fatal(err)
			}
			if status, _ := e.call(http.MethodGet, "/api/auth/me", token, ""); status != http.StatusUnauthorized {
				t.Fatalf("the token after the deletion: %d, want 401", status)
			}
			_, err = e.store.UserByID(t.Context(), id)
			if tc.landed {
				if status, _, _ := e.post("/api/auth/login", map[string]string{"email": "lost@example.com", "password": "the right password"}); status != http.StatusUnauthorized {
					t.Fatalf("login to the account being deleted: %d, want 401", status)
				}
				if !errors.Is(err, persistence.ErrNotFound) {
					t.Fatalf("the user after a landed mark: %v, want not found", err)
				}
				if _, err := e.store.FinishDeletions(t.Context()); err != nil {
					t.Fatal(err)
				}
				e.register("lost@example.com", "a new password")
				return
			}
			if err != nil {
				t.Fatalf("the user after a mark that did not land: %v, want kept", err)
			}
			e.login("lost@example.com", "the right password")
		})
	}
}

// unmarkFailStore plays a store whose taking back of a deletion's mark
// fails (a timeout, a dropped connection): when landed, the write was
// done all the same and only its reply was lost.
type unmarkFailStore struct {
	*sqlite.Store
	landed bool
}

func (s unmarkFailStore) UnmarkUserDeleting(ctx context.Context, id string) error {
	if s.landed {
		if err := s.Store.UnmarkUserDeleting(ctx, id); err != nil {
			return err
		}
	}
	return errors.New("read tcp 10.0.0.1:5432: connection reset by peer")
}

// TestDeleteAccountTakeBackFails: a deletion whose live work cannot end
// takes its mark back; when that fails, the account stays marked (no
// sign-in) and the answer says so, 202 deleting (the store finishes it
// once the mark is persistence.DeletionGrace old), never 500 'nothing
// deleted' over an account that no longer signs in; when only its reply
// was lost, the account is in place and the answer is the failure's.
func TestDeleteAccountTakeBackFails(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		landed bool
		status int
		login  int
	}{
		{"the taking back failed", false, http.StatusAccepted, http.StatusUnauthorized},
		{"its reply was lost", true, http.StatusInternalServerError, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newAccountsEnv(t, AccountOptions{})
			a, err := NewAccounts(unmarkFailStore{e.store, tc.landed}, e.accounts.authn, AccountOptions{BcryptCost: bcrypt.MinCost,
				OnDeleting: func(context.Context, string) error { return errors.New("the bus is down") }})
			if err != nil {
				t.Fatal(err)
			}
			r := gin.New()
			a.Routes(r.Group("/api"))
			failing := &accountsEnv{t: t, srv: httptest.NewServer(r)}
			t.Cleanup(failing.srv.Close)
			token, _ := e.signUp("back@example.com", "the right password")
			if status, code := failing.call(http.MethodDelete, "/api/auth/me", token, `{"password":"the right password"}`); status != tc.status {
				t.Fatalf("delete: %d %s, want %d", status, code, tc.status)
			}
			if err := a.Wait(t.Context()); err != nil {
				t.Fatal(err)
			}
			if status, _, _ := e.post("/api/auth/login", map[string]string{"email": "back@example.com", "password": "the right password"}); status != tc.login {
				t.Fatalf("login after the deletion: %d, want %d", status, tc.login)
			}
		})
	}
}

// TestDeleteAccountTakeBackPastGrace: a deletion that fails before
// DeleteUser's mark takes its first mark back only within what is left
// of the store's grace (takeBackWithin from the mark): later, a store's
// sweep may be finishing the deletion, and the mark is left to it (202
// deleting, no sign-in). Before, the taking back ran whenever the
// failure came (up to DeleteTimeout plus RequestTimeout after the mark),
// and brought back an account the sweep was removing.
func TestDeleteAccountTakeBackPastGrace(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		after  time.Duration // from the mark to the failure
		status int
		login  int
	}{
		{"within the grace", takeBackWithin - time.Second, http.StatusInternalServerError, http.StatusOK},
		{"past the grace", takeBackWithin, http.StatusAccepted, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var ahead atomic.Int64
			var logs syncbuf.Buffer
			e := newAccountsEnv(t, AccountOptions{
				Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
				Now:    func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) },
				OnDeleting: func(context.Context, string) error {
					ahead.Store(int64(tc.after))
					return errors.New("the bus is down")
				}})
			token, id := e.signUp("late@example.com", "the right password")
			if status, code := e.call(http.MethodDelete, "/api/auth/me", token, `{"password":"the right password"}`); status != tc.status {
				t.Fatalf("delete failing %v after its mark: %d %s, want %d", tc.after, status, code, tc.status)
			}
			if err := e.accounts.Wait(t.Context()); err != nil {
				t.Fatal(err)
			}
			if status, _, _ := e.post("/api/auth/login", map[string]string{"email": "late@example.com", "password": "the right password"}); status != tc.login {
				t.Fatalf("login after the deletion: %d, want %d", status, tc.login)
			}
			if _, err := e.store.UserByID(t.Context(), id); tc.login == http.StatusUnauthorized && !errors.Is(err, persistence.ErrNotFound) {
				t.Fatalf("the user after a failure past the grace: %v, want marked (not found)", err)
			}
			// The mark left to the sweep past the grace is the design, not
			// a failure to warn of.
			if strings.Contains(logs.String(), "level=WARN msg=\"taking back") {
				t.Errorf("logs warn of the taking back:\n%s", logs.String())
			}
		})
	}
}

// holdBumpStore holds the first BumpTokenVersion (before its write)
// until release is closed, after telling entered.
type holdBumpStore struct {
	*sqlite.Store
	calls            *atomic.Int32
	entered, release chan struct{}
}

func (s holdBumpStore) BumpTokenVersion(ctx context.Context, id string) (int64, error) {
	if s.calls.Add(1) == 1 {
		close(s.entered)
		select {
		case <-s.release:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return s.Store.BumpTokenVersion(ctx, id)
}

// TestDeleteAccountTwiceFirstFails: of two deletions sent together, the
// second checks the password before the first marks the account and
// revokes its tokens after (not found); then the first fails (its live
// work cannot end) and takes its mark back. No answer is 204 while the
// account stays: the second goes on to an outcome of its own (here it
// deletes the account). Before, the second answered 204 at once on its
// revocation's not found, the first 500, and the account signed in.
func TestDeleteAccountTwiceFirstFails(t *testing.T) {
	t.Parallel()
	e := newAccountsEnv(t, AccountOptions{})
	store := holdBumpStore{Store: e.store, calls: new(atomic.Int32), entered: make(chan struct{}), release: make(chan struct{})}
	secondAnswered := make(chan struct{})
	var deleting atomic.Int32
	two := newAccountsEnvThrough(t, e.store, store, AccountOptions{OnDeleting: func(ctx context.Context, _ string) error {
		if deleting.Add(1) > 1 {
			return nil // the second deletion's: its live work ends
		}
		close(store.release) // the first has marked the account: the second's revocation goes on
		select {
		case <-secondAnswered:
		case <-ctx.Done():
		}
		return errors.New("the bus is down")
	}})
	token, _ := e.signUp("twice@example.com", "the right password")
	second := make(chan int, 1)
	go func() {
		defer close(secondAnswered)
		status, _ := two.call(http.MethodDelete, "/api/auth/me", token, `{"password":"the right password"}`)
		second <- status
	}()
	<-store.entered
	first, _ := two.call(http.MethodDelete, "/api/auth/me", token, `{"password":"the right password"}`)
	answers := []int{first, <-second}
	if err := two.accounts.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	login, _, _ := e.post("/api/auth/login", map[string]string{"email": "twice@example.com", "password": "the right password"})
	if login == http.StatusOK && slices.Contains(answers, http.StatusNoContent) {
		t.Fatalf("answers %v (first, second) and the account still signs in: no 204 while it stays", answers)
	}
	if login != http.StatusUnauthorized {
		t.Fatalf("answers %v, then login %d: want the account deleted by the second", answers, login)
	}
}

// downStore plays a database that becomes unreachable at the first
// mark's write: the mark fails (when landed, its write was done all the
// same), and so do the taking back, every read after it and DeleteUser.
type downStore struct {
	*sqlite.Store
	landed bool
	down   *atomic.Bool
}

var errUnreachable = errors.New("dial tcp 10.0.0.1:27017: connect: connection refused")

func (s downStore) MarkUserDeleting(ctx context.Context, id string) error {
	s.down.Store(true)
	if s.landed {
		if err := s.Store.MarkUserDeleting(ctx, id); err != nil {
			return err
		}
	}
	return errUnreachable
}

func (s downStore) UnmarkUserDeleting(context.Context, string) error { return errUnreachable }

func (s downStore) DeleteUser(context.Context, string) error { return errUnreachable }

func (s downStore) UserByID(ctx context.Context, id string) (persistence.User, error) {
	if s.down.Load() {
		return persistence.User{}, errUnreachable
	}
	return s.Store.UserByID(ctx, id)
}

// TestDeleteAccountDatabaseDown: a deletion whose first mark fails with
// the database unreachable (the taking back and the re-read failing too)
// does not know whether the mark landed, and does not say the account is
// being deleted: 500, never 202 'deleting' over an account nothing may
// delete. Before, the unknown outcome counted as marked: 202, while the
// account (its mark not landed) was whole and signed in.
func TestDeleteAccountDatabaseDown(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		landed bool
		login  int // once the database is back
	}{
		{"the mark did not land", false, http.StatusOK},
		{"the mark landed", true, http.StatusUnauthorized}, // the store's sweep finishes it after the grace
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newAccountsEnv(t, AccountOptions{})
			store := downStore{Store: e.store, landed: tc.landed, down: new(atomic.Bool)}
			down := newAccountsEnvThrough(t, e.store, store, AccountOptions{})
			token, _ := e.signUp("down@example.com", "the right password")
			if status, code := down.call(http.MethodDelete, "/api/auth/me", token, `{"password":"the right password"}`); status != http.StatusInternalServerError {
				t.Fatalf("delete with the database unreachable: %d %s, want 500", status, code)
			}
			if err := down.accounts.Wait(t.Context()); err != nil {
				t.Fatal(err)
			}
			if status, _, _ := e.post("/api/auth/login", map[string]string{"email": "down@example.com", "password": "the right password"}); status != tc.login {
				t.Fatalf("login once the database is back: %d, want %d", status, tc.login)
			}
		})
	}
}

// lostMarkStore plays a store whose first mark (MarkUserDeleting) fails
// with an error that says nothing of the mark (a dropped connection):
// when landed, the write was done all the same and only its reply was
// lost; else nothing was written.
type lostMarkStore struct {
	*sqlite.Store
	landed bool
}

func (s lostMarkStore) MarkUserDeleting(ctx context.Context, id string) error {
	if s.landed {
		if err := s.Store.MarkUserDeleting(ctx, id); err != nil {
			return err
		}
	}
	return errors.New("read tcp 10.0.0.1:5432: connection reset by peer")
}

// TestDeleteAccountLostFirstMarkReply: a deletion whose first mark fails
// takes it back, whether it landed (its reply lost) or not, and answers
// the failure, 500, before ending any live work: the account is in
// place, signed out (its token version moved by the revocation, and by
// the mark when it landed), and its password signs in.
func TestDeleteAccountLostFirstMarkReply(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		landed  bool
		version int64
	}{
		{"the mark landed", true, 2},
		{"the mark did not land", false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newAccountsEnv(t, AccountOptions{})
			lost := newAccountsEnvThrough(t, e.store, lostMarkStore{e.store, tc.landed}, AccountOptions{
				OnDeleting: func(context.Context, string) error { t.Error("OnDeleting called after a failed mark"); return nil }})
			token, id := e.signUp("lost@example.com", "the right password")
			if status, code := lost.call(http.MethodDelete, "/api/auth/me", token, `{"password":"the right password"}`); status != http.StatusInternalServerError {
				t.Fatalf("delete with the mark's reply lost: %d %s, want 500", status, code)
			}
			if err := lost.accounts.Wait(t.Context()); err != nil {
				t.Fatal(err)
			}
			if u, err := e.store.UserByID(t.Context(), id); err != nil || u.TokenVersion != tc.version {
				t.Fatalf("the account after the failed mark: %+v, %v; want it in place, token version %d", u, err, tc.version)
			}
			if status, _ := e.call(http.MethodGet, "/api/auth/me", token, ""); status != http.StatusUnauthorized {
				t.Fatalf("the token after the deletion: %d, want 401 (revoked)", status)
			}
			e.login("lost@example.com", "the right password")
		})
	}
}
