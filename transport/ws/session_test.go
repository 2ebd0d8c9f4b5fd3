package ws_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/coder/websocket"

	"chatd/hub"
	"chatd/hub/protocol"
	"chatd/persistence"
	"chatd/transport/internal/hubtest"
	"chatd/transport/ws"
)

// TestSessionNotConfirmedGetsNoHello: hello means "session confirmed".
// A connection whose session is not confirmed after its registration with
// the hub is closed with its code and reason and nothing else: no hello,
// and not the user-wide frame the hub delivered meanwhile (queued behind
// hello). A logout that landed after the upgrade's token check but before
// the registration (which the hub's close of the user's connections
// missed) closes it with 4401; a store that cannot confirm the session,
// with 1013 (try again later), as an SSE stream is refused 503 and a send
// answered unavailable then; a close from the hub before the check ended
// (a logout that found the connection registered), with the hub's code.
// In each case the hub forgets the connection and its slot is freed.
// Before, the client got hello (and the queued frames), then the close.
func TestSessionNotConfirmedGetsNoHello(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		setup  func(s *server)
		status websocket.StatusCode
		reason string
	}{
		{"revoked between the token check and the registration", func(s *server) {
			s.authenticated = s.revoke // signed out elsewhere at this very moment
		}, websocket.StatusCode(protocol.CloseUnauthorized), "signed out or account removed"},
		{"the store cannot confirm the session", func(s *server) {
			s.recheckErr = errors.New("load user u: connection refused")
		}, websocket.StatusTryAgainLater, ws.ReasonSessionUncheckable},
		{"closed by the hub before the check ended", func(s *server) {
			s.hub.OnRegister(func(sub hub.Subscriber) {
				sub.Deliver(protocol.Conversation("deleted", persistence.Conversation{ID: "c1", OwnerID: "u"}))
				sub.Close(protocol.CloseUnauthorized, "signed out")
			})
		}, websocket.StatusCode(protocol.CloseUnauthorized), "signed out"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t, serverOptions{})
			s.hub.OnRegister(func(sub hub.Subscriber) {
				// A user-wide frame from another tab, queued behind hello.
				sub.Deliver(protocol.Conversation("deleted", persistence.Conversation{ID: "c1", OwnerID: "u"}))
			})
			s.mu.Lock()
			tc.setup(s)
			s.mu.Unlock()
			cl := s.dial(dialOptions{user: "u"})
			if got := cl.closeStatus(); got != tc.status {
				t.Fatalf("close status %d, want %d (%v)", got, tc.status, cl.err)
			}
			if reason := cl.closeReason(); reason != tc.reason {
				t.Fatalf("close reason %q, want %q", reason, tc.reason)
			}
			select {
			case f := <-cl.frames:
				t.Fatalf("a connection whose session was not confirmed got %.200s before its close", f.raw)
			default:
			}
			s.waitHub("the connection to be detached", func(h *hubtest.Hub) bool { return h.Count() == 0 && h.Detached() == 1 })
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			if err := s.handler.Shutdown(ctx); err != nil {
				t.Fatalf("shutdown: %v", err)
			}
			if users := s.limits.ConnectedUsers(); len(users) != 0 {
				t.Fatalf("connection slots still taken by %v", users)
			}
		})
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

// TestHelloSaysSessionConfirmed: hello carries session "confirmed", so a
// client tells it from the hello of a server before the check-before-hello
// order (sent before its session check, and perhaps followed at once by a
// 4401), which has none.
func TestHelloSaysSessionConfirmed(t *testing.T) {
	t.Parallel()
	s := newServer(t, serverOptions{})
	cl := s.dial(dialOptions{user: "u"})
	if f := cl.expect("hello"); f.Session != protocol.SessionConfirmed {
		t.Fatalf("hello %s, want session %q", f.raw, protocol.SessionConfirmed)
	}
}
