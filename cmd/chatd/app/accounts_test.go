package app

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"chatd/persistence"
)

// removableStore is the store with accounts an operator removed (deleted
// or disabled in the database, outside this process): they are not found.
type removableStore struct {
	persistence.Store
	mu      sync.Mutex
	removed map[string]bool
}

func (s *removableStore) remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removed[id] = true
}

func (s *removableStore) UserByID(ctx context.Context, id string) (persistence.User, error) {
	s.mu.Lock()
	gone := s.removed[id]
	s.mu.Unlock()
	if gone {
		return persistence.User{}, persistence.ErrNotFound
	}
	return s.Store.UserByID(ctx, id)
}

// TestRemovedAccountLosesItsConnections: once an account is removed, a
// send on its open WebSocket is refused before anything is stored and the
// socket closes with 4401; the periodic check closes its idle sockets and
// event streams too, as logout does.
func TestRemovedAccountLosesItsConnections(t *testing.T) {
	t.Parallel()
	t.Run("send", func(t *testing.T) {
		t.Parallel()
		var store *removableStore
		e := newEnv(t, envOptions{tweak: func(c *Config) {
			store = &removableStore{Store: c.Store, removed: map[string]bool{}}
			c.Store, c.AccountCheckInterval = store, time.Hour
		}})
		u := e.register(t)
		cl := e.dial(t, u)
		writes := e.store.Writes().Writes
		store.remove(u.ID)
		cl.write(sendFrame("1", "", "hello"))
		if f := cl.expect("error"); f.Code != "unauthorized" {
			t.Fatalf("send after removal: %s", f.raw)
		}
		if got := cl.closeStatus(); got != 4401 {
			t.Fatalf("close status %d, want 4401", got)
		}
		if w := e.store.Writes().Writes - writes; w != 0 {
			t.Fatalf("%d writes for a removed account's send", w)
		}
	})
	t.Run("idle connections", func(t *testing.T) {
		t.Parallel()
		var store *removableStore
		e := newEnv(t, envOptions{tweak: func(c *Config) {
			store = &removableStore{Store: c.Store, removed: map[string]bool{}}
			c.Store, c.AccountCheckInterval = store, 20*time.Millisecond
		}})
		u, other := e.register(t), e.register(t)
		cl, stays := e.dial(t, u), e.dial(t, other)
		ended := make(chan *http.Response, 1)
		go func() {
			_, res := e.sse(t, u, http.MethodGet, "/api/events", "", nil)
			ended <- res
		}()
		waitFor(t, "the event stream to open", func() bool { return e.app.Hub().Connections(u.ID) == 2 })
		store.remove(u.ID)
		if got := cl.closeStatus(); got != websocket.StatusCode(4401) {
			t.Fatalf("close status %d, want 4401", got)
		}
		select {
		case res := <-ended:
			if res.StatusCode != http.StatusOK {
				t.Fatalf("event stream: %d", res.StatusCode)
			}
		case <-time.After(testTimeout):
			t.Fatal("the removed account's event stream is still open")
		}
		stays.write(`{"type":"ping"}`)
		stays.expect("pong")
	})
}

// checkedStore counts the account lookups (UserByID): after sign-in,
// only the periodic account check makes them.
type checkedStore struct {
	persistence.Store
	lookups atomic.Int64
}

func (s *checkedStore) UserByID(ctx context.Context, id string) (persistence.User, error) {
	s.lookups.Add(1)
	return s.Store.UserByID(ctx, id)
}

// TestRevokedSessionLosesItsConnections: a session revoked without this
// instance hearing of it (its token version bumped in the store, as a
// logout on an instance whose event was lost leaves it) has its idle
// WebSocket and event stream closed with 4401 by the periodic check,
// while a tab signed in again afterwards stays open.
func TestRevokedSessionLosesItsConnections(t *testing.T) {
	t.Parallel()
	var store *checkedStore
	e := newEnv(t, envOptions{tweak: func(c *Config) {
		store = &checkedStore{Store: c.Store}
		c.Store, c.AccountCheckInterval = store, 20*time.Millisecond
	}})
	u := e.register(t)
	var me struct {
		User struct {
			Email string `json:"email"`
		} `json:"user"`
	}
	e.rest(t, u.Token, http.MethodGet, "/api/auth/me", nil, http.StatusOK, &me)
	old := e.dial(t, u)
	ended := make(chan *http.Response, 1)
	go func() {
		_, res := e.sse(t, u, http.MethodGet, "/api/events", "", nil)
		ended <- res
	}()
	waitFor(t, "the event stream to open", func() bool { return e.app.Hub().Connections(u.ID) == 2 })

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if _, err := store.BumpTokenVersion(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	var login struct {
		Token string `json:"token"`
	}
	e.rest(t, "", http.MethodPost, "/api/auth/login",
		map[string]string{"email": me.User.Email, "password": "correct horse battery"}, http.StatusOK, &login)
	again := e.dial(t, user{ID: u.ID, Token: login.Token})

	if got := old.closeStatus(); got != websocket.StatusCode(4401) {
		t.Fatalf("the revoked session's socket: close status %d, want 4401", got)
	}
	select {
	case res := <-ended:
		if res.StatusCode != http.StatusOK {
			t.Fatalf("event stream: %d", res.StatusCode)
		}
	case <-time.After(testTimeout):
		t.Fatal("the revoked session's event stream is still open")
	}
	// Three checks after the new session's socket was in, it still answers.
	waitFor(t, "the revoked connections to be gone", func() bool { return e.app.Hub().Connections(u.ID) == 1 })
	checked := store.lookups.Load()
	waitFor(t, "three more account checks", func() bool { return store.lookups.Load() >= checked+3 })
	again.write(`{"type":"ping"}`)
	again.expect("pong")
}
