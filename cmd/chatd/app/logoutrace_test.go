package app

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/coder/websocket"

	"chatd/persistence/counting"
)

// hookStore runs hook (once, when armed) right after a token version was
// read: what a logout landing between a connection's authentication and
// its registration with the hub looks like.
type hookStore struct {
	*counting.Store
	armed atomic.Bool
	hook  func()
}

func (s *hookStore) TokenVersion(ctx context.Context, id string) (int64, error) {
	tv, err := s.Store.TokenVersion(ctx, id)
	if s.armed.CompareAndSwap(true, false) {
		s.hook()
	}
	return tv, err
}

// TestLogoutBeforeRegistration: a logout that lands after a live
// connection's token was checked but before the connection registered
// with the hub (whose logout closes only the connections it knows of)
// still ends it: the WebSocket closes with 4401 (with no frame before it,
// not even hello), the event stream is
// refused with 401. Before, both stayed open on the revoked session, with
// the user's frames, until auth.Watch's next tick (a minute by default).
func TestLogoutBeforeRegistration(t *testing.T) {
	t.Parallel()
	var hs *hookStore
	e := newEnv(t, envOptions{tweak: func(c *Config) {
		hs = &hookStore{Store: c.Store.(*counting.Store)}
		c.Store = hs
	}})
	// logoutDuringAuth makes u sign out on another device the moment the
	// next authentication has read u's token version.
	logoutDuringAuth := func(u user) {
		hs.hook = func() { e.rest(t, u.Token, http.MethodPost, "/api/auth/logout", nil, http.StatusNoContent, nil) }
		hs.armed.Store(true)
	}

	t.Run("websocket", func(t *testing.T) {
		u := e.register(t)
		logoutDuringAuth(u)
		h := http.Header{}
		h.Set("Authorization", "Bearer "+u.Token)
		tab := e.dialSilent(t, &websocket.DialOptions{HTTPHeader: h})
		if hs.armed.Load() {
			t.Fatal("the logout did not run during the authentication")
		}
		if got := tab.closeStatus(); got != websocket.StatusCode(4401) {
			t.Fatalf("socket of a session revoked before its registration closed with %d, want 4401", got)
		}
		// hello means the session was confirmed: a revoked one gets none.
		select {
		case f := <-tab.frames:
			t.Fatalf("socket of a revoked session got %s before its 4401", f.raw)
		default:
		}
	})
	t.Run("event stream", func(t *testing.T) {
		u := e.register(t)
		logoutDuringAuth(u)
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, e.srv.URL+"/api/events", nil)
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("Authorization", "Bearer "+u.Token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if hs.armed.Load() {
			t.Fatal("the logout did not run during the authentication")
		}
		if res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("event stream of a session revoked before its registration: %d, want 401", res.StatusCode)
		}
	})
}
