package sse_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
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

// TestSendBodyAfterLogout: a send whose body is still arriving when the
// session is revoked (a logout during a slow upload, up to
// CHATD_BODY_READ_TIMEOUT) is refused with 401 once the body is read, as a
// send of a revoked session is, whether it streams or answers 202, and the
// hub gets no send. Before, the 202 send was never rechecked after its body
// and started an answer for the signed-out session.
func TestSendBodyAfterLogout(t *testing.T) {
	t.Parallel()
	conv := persistence.NewID()
	for _, tc := range []struct {
		name   string
		header []string
	}{
		{"event stream", []string{"Accept", "text/event-stream"}},
		{"202", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var loggedOut atomic.Bool
			recheck := func(context.Context, auth.Identity) error {
				if loggedOut.Load() {
					return fmt.Errorf("%w: token revoked", auth.ErrUnauthorized)
				}
				return nil
			}
			s := newServer(t, sse.Options{Recheck: recheck}, false)
			s.hub.AddConversation(conv, "u", "")
			pr, pw := io.Pipe()
			go func() {
				// The first Write returns once the server has taken the first
				// half in: the request passed authentication and its body is
				// on its way. The session is revoked before the rest comes.
				_, err := io.WriteString(pw, `{"content":`)
				loggedOut.Store(true)
				if err == nil {
					_, err = io.WriteString(pw, `"hi"}`)
				}
				pw.CloseWithError(err)
			}()
			res := s.requestBody("u", http.MethodPost, "/api/conversations/"+conv+"/messages", pr, tc.header...)
			if res.StatusCode != http.StatusUnauthorized {
				t.Fatalf("send whose body came after a logout: %d, want 401", res.StatusCode)
			}
			if n := s.hub.SendCount(); n != 0 {
				t.Fatalf("the hub got %d sends", n)
			}
		})
	}
}
