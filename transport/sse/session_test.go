package sse_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"chatd/persistence"
	"chatd/transport/auth"
	"chatd/transport/internal/hubtest"
	"chatd/transport/sse"
)

// TestSessionEndedBeforeRegistration: a logout that lands after a
// request's authentication but before its stream is registered with the
// hub (which ends only the streams it knows of) is caught by the session
// check made after the registration: the request is refused with 401, the
// hub forgets the stream and no answer starts. Before, the stream stayed
// open on the revoked session until the accounts' periodic check.
func TestSessionEndedBeforeRegistration(t *testing.T) {
	t.Parallel()
	conv := persistence.NewID()
	for _, tc := range []struct {
		name, method, path, body string
	}{
		{"events", http.MethodGet, "/api/events", ""},
		{"send", http.MethodPost, "/api/conversations/" + conv + "/messages", `{"content":"hi"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			revoked := func(context.Context, auth.Identity) error {
				return fmt.Errorf("%w: token revoked", auth.ErrUnauthorized)
			}
			s := newServer(t, sse.Options{Recheck: revoked}, false)
			s.hub.AddConversation(conv, "u", "")
			res := s.request("u", tc.method, tc.path, tc.body, "Accept", "text/event-stream")
			if res.StatusCode != http.StatusUnauthorized {
				t.Fatalf("%s %s on a session revoked before registration: %d, want 401", tc.method, tc.path, res.StatusCode)
			}
			s.waitHub("the stream to be detached", func(h *hubtest.Hub) bool { return h.Count() == 0 && h.Detached() == 1 })
			if n := len(s.hub.Sends()); n != 0 {
				t.Fatalf("the hub got %d sends", n)
			}
			if users := s.limits.ConnectedUsers(); len(users) != 0 {
				t.Fatalf("connection slots still taken by %v", users)
			}
		})
	}
}
