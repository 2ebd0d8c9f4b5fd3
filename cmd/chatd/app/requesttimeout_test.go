package app

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"chatd/persistence"
)

// hangingReads is a store whose conversation list (while list is set) and
// token-version reads (while check is set) wait for their context to end.
type hangingReads struct {
	persistence.Store
	list, check atomic.Bool
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
// on a store that does not answer, at the token check and in the handler:
// 503 unavailable with Retry-After, where the request waited for as long
// as the store hung.
func TestRequestTimeout(t *testing.T) {
	t.Parallel()
	var store *hangingReads
	e := newEnv(t, envOptions{tweak: func(c *Config) {
		store = &hangingReads{Store: c.Store}
		c.Store = store
		c.RequestTimeout = 50 * time.Millisecond
	}})
	u := e.register(t)
	for _, tc := range []struct {
		name string
		hang *atomic.Bool
	}{
		{"the handler's read", &store.list},
		{"the token check", &store.check},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.hang.Store(true)
			defer tc.hang.Store(false)
			h := e.rest(t, u.Token, http.MethodGet, "/api/conversations", nil, http.StatusServiceUnavailable, nil)
			if h.Get("Retry-After") == "" {
				t.Fatal("503 without Retry-After")
			}
		})
	}
	e.rest(t, u.Token, http.MethodGet, "/api/conversations", nil, http.StatusOK, nil)
}
