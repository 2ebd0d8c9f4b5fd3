package ws_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/coder/websocket"

	"chatd/hub/protocol"
	"chatd/persistence"
	"chatd/transport/internal/hubtest"
	"chatd/transport/ws"
)

// TestSessionEndedBeforeRegistration: a logout that lands after the
// upgrade's token check but before the connection is registered with the
// hub (which closes only the connections it knows of) still closes the
// connection with 4401: the session is checked once more after the
// registration. Before, the socket stayed open on the revoked session
// until the accounts' periodic check (a minute).
func TestSessionEndedBeforeRegistration(t *testing.T) {
	t.Parallel()
	s := newServer(t, serverOptions{})
	s.mu.Lock()
	s.authenticated = s.revoke // signed out elsewhere at this very moment
	s.mu.Unlock()
	cl := s.dial(dialOptions{user: "u"})
	cl.expect("hello")
	if got := cl.closeStatus(); got != websocket.StatusCode(protocol.CloseUnauthorized) {
		t.Fatalf("close status %d, want 4401 (%v)", got, cl.err)
	}
	if reason := cl.closeReason(); reason != "signed out or account removed" {
		t.Fatalf("close reason %q", reason)
	}
	s.waitHub("the connection to be detached", func(h *hubtest.Hub) bool { return h.Detached() == 1 })
}

// TestSessionUncheckableAtUpgrade: a connection whose session cannot be
// confirmed after its registration (the store fails the check) is closed
// with 1013 (try again later) right after hello, as an SSE stream is
// refused 503 and a send answered `unavailable` then: nothing is
// delivered to a session that may have been signed out in between. Its
// connection slot is freed and the hub forgets it. Before, the connection
// stayed open on the unchecked session.
func TestSessionUncheckableAtUpgrade(t *testing.T) {
	t.Parallel()
	s := newServer(t, serverOptions{})
	s.mu.Lock()
	s.recheckErr = errors.New("load user u: connection refused")
	s.mu.Unlock()
	cl := s.dial(dialOptions{user: "u"})
	cl.expect("hello")
	if got := cl.closeStatus(); got != websocket.StatusTryAgainLater {
		t.Fatalf("close status %d, want 1013 (%v)", got, cl.err)
	}
	if reason := cl.closeReason(); reason != "cannot check the session right now; reconnect" {
		t.Fatalf("close reason %q", reason)
	}
	s.waitHub("the connection to be detached", func(h *hubtest.Hub) bool { return h.Count() == 0 && h.Detached() == 1 })
	// Shutdown returns once every connection's goroutine has ended, its
	// slot released.
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := s.handler.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if users := s.limits.ConnectedUsers(); len(users) != 0 {
		t.Fatalf("connection slots still taken by %v", users)
	}
}

// TestHubCallOutOfTime: a frame the hub cannot finish within
// DispatchTimeout (its store does not answer) is answered `unavailable`,
// as a session the store cannot check is, and the connection stays open.
// Before, it was answered `internal` and logged as a server error.
func TestHubCallOutOfTime(t *testing.T) {
	t.Parallel()
	s := newServer(t, serverOptions{opts: ws.Options{DispatchTimeout: 50 * time.Millisecond}})
	conv := persistence.NewID()
	s.hub.AddConversation(conv, "u", "")
	s.hub.Hang()
	cl := s.dial(dialOptions{user: "u"})
	cl.expect("hello")
	for _, typ := range []string{"subscribe", "cancel"} {
		cl.write(fmt.Sprintf(`{"type":%q,"id":%q,"conversationId":%q}`, typ, typ, conv))
		f := cl.expect("error")
		if f.Code != "unavailable" || string(f.ID) != `"`+typ+`"` {
			t.Fatalf("%s out of time answered %s", typ, f.raw)
		}
	}
	cl.write(`{"type":"ping","id":"p"}`)
	cl.expect("pong")
}
