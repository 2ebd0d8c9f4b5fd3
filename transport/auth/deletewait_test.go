package auth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"chatd/persistence"
)

// TestDeleteAccountAfterWaitRefused: once Wait was called (the server
// shuts down and is about to close the store), a deletion is refused with
// 503 unavailable and the account is left untouched, its session valid.
// Before, a deletion whose password check ended after Wait returned
// started its removal all the same, on a goroutine nobody waited for,
// which ran on against a store the server then closed.
func TestDeleteAccountAfterWaitRefused(t *testing.T) {
	t.Parallel()
	e := newAccountsEnv(t, AccountOptions{})
	token, id := e.signUp("late@example.com", "the right password")
	store := stallingStore{Store: e.store, stall: "DeleteUser", release: make(chan struct{})}
	t.Cleanup(func() { close(store.release) })
	// The bound only keeps a regression (a deletion started, stalled in
	// DeleteUser) from hanging; the refusal comes well within it.
	a, srv := stallingEnv(t, e, store, AccountOptions{RequestTimeout: 5 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	got := do(t, srv, http.MethodDelete, "/api/auth/me", token, `{"password":"the right password"}`)
	if got.status != http.StatusServiceUnavailable || !strings.Contains(got.body, `"unavailable"`) ||
		!strings.Contains(got.body, "shutting down") {
		t.Fatalf("a deletion after Wait: %+v, want 503 unavailable, shutting down", got)
	}
	if u, err := e.store.UserByID(context.Background(), id); err != nil || u.TokenVersion != 0 {
		t.Fatalf("the account after a refused deletion: %+v, %v; want it as it was", u, err)
	}
	if got := do(t, srv, http.MethodGet, "/api/auth/me", token, ""); got.status != http.StatusOK {
		t.Fatalf("the session after a refused deletion: %d, want 200", got.status)
	}
}

// enteringStore is a stallingStore that says when its stalled
// BumpTokenVersion was called.
type enteringStore struct {
	stallingStore
	entered chan struct{}
}

func (s enteringStore) BumpTokenVersion(ctx context.Context, id string) (int64, error) {
	close(s.entered)
	return s.stallingStore.BumpTokenVersion(ctx, id)
}

// TestWaitCoversDeletionBegun: a deletion whose password was checked
// before Wait was called, revoking the account's tokens as Wait begins,
// is waited for to its end. Before, Wait counted only removals already
// started, returned at once, and the removal then started after it.
func TestWaitCoversDeletionBegun(t *testing.T) {
	t.Parallel()
	e := newAccountsEnv(t, AccountOptions{})
	token, id := e.signUp("begun@example.com", "the right password")
	store := enteringStore{stallingStore: stallingStore{Store: e.store, stall: "BumpTokenVersion", release: make(chan struct{})},
		entered: make(chan struct{})}
	a, err := NewAccounts(store, e.accounts.authn, AccountOptions{BcryptCost: e.accounts.opts.BcryptCost})
	if err != nil {
		t.Fatal(err)
	}
	r := gin.New()
	a.Routes(r.Group("/api"))
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	release := sync.OnceFunc(func() { close(store.release) })
	t.Cleanup(release) // before srv.Close: a failed test leaves no request stalled
	answered := make(chan int, 1)
	go func() { answered <- deleteStatus(srv, token, "the right password") }()
	select {
	case <-store.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the deletion did not revoke the tokens")
	}
	short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := a.Wait(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait while a deletion revokes its tokens: %v, want it waiting (deadline exceeded)", err)
	}
	release()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.UserByID(context.Background(), id); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("the user once Wait returned: %v, want it gone", err)
	}
	if status := <-answered; status != http.StatusNoContent {
		t.Fatalf("the deletion: %d, want 204", status)
	}
}

// deleteStatus sends DELETE /api/auth/me with password to srv and returns
// the status (0 when the request failed).
func deleteStatus(srv *httptest.Server, token, password string) int {
	req, err := http.NewRequest(http.MethodDelete, srv.URL+"/api/auth/me", strings.NewReader(`{"password":"`+password+`"}`))
	if err != nil {
		return 0
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := srv.Client().Do(req)
	if err != nil {
		return 0
	}
	defer res.Body.Close()
	return res.StatusCode
}
