package ws_test

import (
	"testing"

	"github.com/coder/websocket"

	"chatd/hub/protocol"
	"chatd/transport/internal/hubtest"
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
