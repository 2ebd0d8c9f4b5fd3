package app

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"chatd/persistence"
)

// hangingReads is a store whose conversation list (while list is set),
// token-version reads (while check is set) and lookups by email (while
// email is set) wait for their context to end.
type hangingReads struct {
	persistence.Store
	list, check, email atomic.Bool
}

func (s *hangingReads) UserByEmail(ctx context.Context, email string) (persistence.User, error) {
	if s.email.Load() {
		<-ctx.Done()
		return persistence.User{}, ctx.Err()
	}
	return s.Store.UserByEmail(ctx, email)
}

func (s *hangingReads) ListConversations(ctx context.Context, owner string, q persistence.ListQuery) (persistence.ConversationPage, error) {
	if s.list.Load() {
		<-ctx.Done()
		return persistence.ConversationPage{}, ctx.Err()
	}
	return s.Store.ListConversations(ctx, owner, q)
}

func (s *hangingReads) UserByID(ctx context.Context, id string) (persistence.User, error) {
	if s.check.Load() {
		<-ctx.Done()
		return persistence.User{}, ctx.Err()
	}
	return s.Store.UserByID(ctx, id)
}

func (s *hangingReads) TokenVersion(ctx context.Context, id string) (int64, error) {
	if s.check.Load() {
		<-ctx.Done()
		return 0, ctx.Err()
	}
	return persistence.UserTokenVersion(ctx, s.Store, id)
}

// TestRequestTimeout: Config.RequestTimeout bounds a REST request's wait
// on a store that does not answer, at the token check and in the handler,
// the account routes' included (a sign-in's lookup, which before waited
// for as long as the store hung): 503 unavailable with Retry-After, where
// the request waited for as long as the store hung.
func TestRequestTimeout(t *testing.T) {
	t.Parallel()
	var store *hangingReads
	e := newEnv(t, envOptions{tweak: func(c *Config) {
		store = &hangingReads{Store: c.Store}
		c.Store = store
		// Long enough for the registration below, whose store write and
		// password hash run under the same bound (67 ms once under CI's
		// load with 50 ms; 1 s left a stall of a second or two under -race
		// little room); each hanging case waits it out.
		c.RequestTimeout = 3 * time.Second
	}})
	u := e.register(t)
	login := map[string]string{"email": "someone@example.com", "password": "a long password"}
	for _, tc := range []struct {
		name         string
		hang         *atomic.Bool
		method, path string
		body         any
	}{
		{"the handler's read", &store.list, http.MethodGet, "/api/conversations", nil},
		{"the token check", &store.check, http.MethodGet, "/api/conversations", nil},
		{"a sign-in's lookup", &store.email, http.MethodPost, "/api/auth/login", login},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.hang.Store(true)
			defer tc.hang.Store(false)
			start := time.Now()
			h := e.rest(t, u.Token, tc.method, tc.path, tc.body, http.StatusServiceUnavailable, nil)
			if took := time.Since(start); took > 20*time.Second {
				t.Fatalf("answered after %v: bounded by the default (30 s), not by Config.RequestTimeout", took)
			}
			if h.Get("Retry-After") == "" {
				t.Fatal("503 without Retry-After")
			}
		})
	}
	e.rest(t, u.Token, http.MethodGet, "/api/conversations", nil, http.StatusOK, nil)
}
