package app

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"chatd/hub/protocol"
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

// TestDeleteAccount: deleting an account with its password, while one of
// its answers streams and its tabs and event stream are open, stops the
// answer (the upstream request is aborted), closes every connection of
// the user with 4401, and leaves nothing of the user in the store, even
// after the stopped answer's last write; another user is untouched.
func TestDeleteAccount(t *testing.T) {
	t.Parallel()
	for _, store := range []string{"sqlite", "mongo"} {
		t.Run(store, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{mongo: store == "mongo"})
			u, other := e.register(t), e.register(t)
			a, b, stays := e.dial(t, u), e.dial(t, u), e.dial(t, other)
			first := a.start("a finished answer")
			a.until(isDone(first.MessageID))
			kept := stays.start("kept words")
			stays.until(isDone(kept.MessageID))
			ended := make(chan []sseEvent, 1)
			go func() {
				events, _ := e.sse(t, u, http.MethodGet, "/api/events", "", nil)
				ended <- events
			}()
			running := a.start("cut short [[fake tokens=4000 delay=10ms]]") // 40 s: still running at the deletion
			a.until(func(f frame) bool { return f.Type == "delta" })
			waitFor(t, "the event stream to open", func() bool { return e.app.Hub().Connections(u.ID) == 3 })

			e.rest(t, u.Token, http.MethodDelete, "/api/auth/me", map[string]string{"password": "correct horse battery"}, http.StatusNoContent, nil)
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			if err := e.fake.WaitAbort(ctx); err != nil {
				t.Fatalf("the running answer's upstream request was not aborted: %v", err)
			}
			for _, cl := range []*client{a, b} {
				if got := cl.closeStatus(); got != 4401 {
					t.Fatalf("close status %d, want 4401", got)
				}
				if got := cl.closeReason(); got != protocol.ReasonAccountDeleted {
					t.Fatalf("close reason %q, want %q", got, protocol.ReasonAccountDeleted)
				}
			}
			select {
			case events := <-ended:
				// Its last event says why, as the sockets' close does.
				if len(events) == 0 || events[len(events)-1].data.Type != protocol.TypeClosed ||
					events[len(events)-1].data.CloseCode != 4401 || events[len(events)-1].data.Reason != protocol.ReasonAccountDeleted {
					t.Fatalf("the event stream's events %+v, want a last closed 4401 %q", events, protocol.ReasonAccountDeleted)
				}
			case <-time.After(testTimeout):
				t.Fatal("the deleted account's event stream is still open")
			}
			if id := e.app.Hub().ActiveMessageID(running.ConversationID); id != "" {
				t.Fatalf("answer %s still running after the deletion answered", id)
			}
			checkGone(ctx, t, e.store, u.ID, []frame{first, running})
			if _, err := e.store.Message(ctx, other.ID, kept.MessageID); err != nil {
				t.Fatalf("another user's answer after the deletion: %v", err)
			}
			stays.write(`{"type":"ping"}`)
			stays.expect("pong")
			e.rest(t, u.Token, http.MethodGet, "/api/auth/me", nil, http.StatusUnauthorized, nil)
		})
	}
}

// TestDeleteAccountRacingCreate: a POST /api/conversations whose token
// was checked before the account's deletion, and whose store write comes
// after it (held by a slow store meanwhile), is refused as a revoked
// session is, 401 unauthorized, and leaves no conversation behind without
// an account; on both stores.
func TestDeleteAccountRacingCreate(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"sqlite", "mongo"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var store *slowStore
			e := newEnv(t, envOptions{mongo: name == "mongo", tweak: func(c *Config) {
				store = &slowStore{Store: c.Store, entered: make(chan struct{}, 1)}
				c.Store = store
			}})
			u := e.register(t)
			store.hold()
			type answer struct {
				status int
				body   string
				err    error
			}
			answered := make(chan answer, 1)
			go func() {
				req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/api/conversations", strings.NewReader(`{"title":"late"}`))
				req.Header.Set("Authorization", "Bearer "+u.Token)
				req.Header.Set("Content-Type", "application/json")
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					answered <- answer{err: err}
					return
				}
				defer res.Body.Close()
				data, err := io.ReadAll(res.Body)
				answered <- answer{status: res.StatusCode, body: string(data), err: err}
			}()
			<-store.entered // authenticated, not stored yet
			e.rest(t, u.Token, http.MethodDelete, "/api/auth/me", map[string]string{"password": "correct horse battery"}, http.StatusNoContent, nil)
			store.release()
			var got answer
			select {
			case got = <-answered:
			case <-time.After(testTimeout):
				t.Fatal("the create did not answer")
			}
			if got.err != nil || got.status != http.StatusUnauthorized || !strings.Contains(got.body, `"unauthorized"`) {
				t.Fatalf("create racing the deletion: %d %s, %v; want 401 unauthorized", got.status, got.body, got.err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			page, err := e.store.ListConversations(ctx, u.ID, persistence.ListQuery{})
			if err != nil || len(page.Conversations) != 0 {
				t.Fatalf("conversations of the deleted account: %+v, %v", page.Conversations, err)
			}
			checkGone(ctx, t, e.store, u.ID, nil)
		})
	}
}

// checkGone fails unless the store holds nothing of user userID: not the
// account, nor the conversations and messages of acks, nor a streaming
// answer.
func checkGone(ctx context.Context, t *testing.T, s persistence.Store, userID string, acks []frame) {
	t.Helper()
	if _, err := s.UserByID(ctx, userID); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("the deleted user: %v", err)
	}
	for _, ack := range acks {
		if _, err := s.Conversation(ctx, userID, ack.ConversationID); !errors.Is(err, persistence.ErrNotFound) {
			t.Fatalf("conversation %s of the deleted user: %v", ack.ConversationID, err)
		}
		if m, err := s.Message(ctx, userID, ack.MessageID); !errors.Is(err, persistence.ErrNotFound) {
			t.Fatalf("message %s of the deleted user: %+v, %v", ack.MessageID, m, err)
		}
	}
	if ids, err := s.StreamingConversations(ctx, userID); err != nil || len(ids) != 0 {
		t.Fatalf("streaming conversations of the deleted user: %v, %v", ids, err)
	}
}
