package app

import (
	"context"
	"net/http"
	"sync"
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
