package sse_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"chatd/hub"
	"chatd/hub/protocol"
	"chatd/persistence"
	"chatd/transport/auth"
	"chatd/transport/httperr"
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
			wantInvalidToken(t, res)
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

// wantInvalidToken fails unless res, a 401, carries the Bearer challenge
// of a token no longer good (RFC 6750 3), as every 401 must carry one
// (RFC 9110 11.6.1).
func wantInvalidToken(t *testing.T, res *http.Response) {
	t.Helper()
	if c := res.Header.Get("WWW-Authenticate"); !strings.HasPrefix(c, `Bearer realm="chatd"`) || !strings.Contains(c, `error="invalid_token"`) {
		t.Fatalf("401 with WWW-Authenticate %q, want a Bearer challenge saying invalid_token", c)
	}
}

// TestSessionEndedInHub: a send the hub refuses because the session ended
// meanwhile (hub.ErrSessionEnded: the account was deleted while it was
// handled) is a 401 with the challenge of a token no longer good, whether
// it streams or answers 202.
func TestSessionEndedInHub(t *testing.T) {
	t.Parallel()
	conv := persistence.NewID()
	for _, header := range [][]string{{"Accept", "text/event-stream"}, nil} {
		s := newServer(t, sse.Options{}, false)
		s.hub.AddConversation(conv, "u", "")
		s.hub.FailSends(hub.ErrSessionEnded)
		res := s.request("u", http.MethodPost, "/api/conversations/"+conv+"/messages", `{"content":"hi"}`, header...)
		if res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("send of a session the hub found ended (header %v): %d, want 401", header, res.StatusCode)
		}
		wantInvalidToken(t, res)
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
			wantInvalidToken(t, res)
			if n := s.hub.SendCount(); n != 0 {
				t.Fatalf("the hub got %d sends", n)
			}
		})
	}
}

// TestSessionUncheckable: a request whose session cannot be confirmed
// after its authentication (the store fails the check made once the stream
// is registered, or once a 202 send's body is read) is refused with 503
// unavailable and a JSON error, as a WebSocket send is refused
// `unavailable` then: no stream opens for a session that may have been
// signed out, no answer starts, the hub forgets the stream and its
// connection slot is free. Before, the stream opened (and the send
// started) whatever the check said.
func TestSessionUncheckable(t *testing.T) {
	t.Parallel()
	conv, msg := persistence.NewID(), persistence.NewID()
	stream := []string{"Accept", "text/event-stream"}
	for _, tc := range []struct {
		name, method, path, body string
		header                   []string
	}{
		{"events", http.MethodGet, "/api/events", "", nil},
		{"events of a conversation", http.MethodGet, "/api/events?conversationId=" + conv, "", nil},
		{"resume", http.MethodGet, "/api/conversations/" + conv + "/stream?messageId=" + msg + "&lastSeq=0", "", nil},
		{"send streamed", http.MethodPost, "/api/conversations/" + conv + "/messages", `{"content":"hi"}`, stream},
		{"send 202", http.MethodPost, "/api/conversations/" + conv + "/messages", `{"content":"hi"}`, nil},
		{"regenerate streamed", http.MethodPost, "/api/conversations/" + conv + "/regenerate", "", stream},
		{"regenerate 202", http.MethodPost, "/api/conversations/" + conv + "/regenerate", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			down := func(context.Context, auth.Identity) error {
				return errors.New("load user u: connection refused")
			}
			s := newServer(t, sse.Options{Recheck: down}, false)
			s.hub.AddConversation(conv, "u", "")
			res := s.request("u", tc.method, tc.path, tc.body, tc.header...)
			if res.StatusCode != http.StatusServiceUnavailable || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
				t.Fatalf("%s %s with the store down: %d %q, want 503 JSON", tc.method, tc.path, res.StatusCode, res.Header.Get("Content-Type"))
			}
			body, _ := io.ReadAll(res.Body)
			var e struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal(body, &e); err != nil || e.Error.Code != httperr.CodeUnavailable || e.Error.Message == "" {
				t.Fatalf("body %s (%v), want an unavailable error", body, err)
			}
			if res.Header.Get("Retry-After") == "" {
				t.Fatal("no Retry-After")
			}
			s.waitHub("every stream to be detached", func(h *hubtest.Hub) bool { return h.Count() == 0 })
			if n, m := s.hub.SendCount(), s.hub.SubscribeCount(); n+m != 0 {
				t.Fatalf("the hub got %d sends and %d subscribes", n, m)
			}
			if users := s.limits.ConnectedUsers(); len(users) != 0 {
				t.Fatalf("connection slots still taken by %v", users)
			}
		})
	}
}

// errDiskFull is a send the store could not take: its disk is full.
var errDiskFull = fmt.Errorf("store user message and answer: sqlite: commit: database or disk is full (13): %w", persistence.ErrUnavailable)

// TestHubRefusalsSayWhenToRetry: a send the hub refuses as unavailable
// (the server shutting down, the cluster out of reach) or rate limited,
// or that the database could not take now (persistence.ErrUnavailable: a
// full disk), answers 503 or 429 with Retry-After, as every other 503 and
// 429 of the API, whether it streams or answers 202. Before, they had
// none, and a full disk was a 500 internal.
func TestHubRefusalsSayWhenToRetry(t *testing.T) {
	t.Parallel()
	conv := persistence.NewID()
	for _, tc := range []struct {
		name   string
		err    error
		status int
		header []string
	}{
		{"unavailable, streamed", protocol.Errorf(protocol.CodeUnavailable, "the server is shutting down"), http.StatusServiceUnavailable, []string{"Accept", "text/event-stream"}},
		{"unavailable, 202", protocol.Errorf(protocol.CodeUnavailable, "the server is shutting down"), http.StatusServiceUnavailable, nil},
		{"rate limited, 202", protocol.Errorf(protocol.CodeRateLimited, "too many answers"), http.StatusTooManyRequests, nil},
		{"the database cannot take the send, streamed", errDiskFull, http.StatusServiceUnavailable, []string{"Accept", "text/event-stream"}},
		{"the database cannot take the send, 202", errDiskFull, http.StatusServiceUnavailable, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t, sse.Options{}, false)
			s.hub.AddConversation(conv, "u", "")
			s.hub.FailSends(tc.err)
			res := s.request("u", http.MethodPost, "/api/conversations/"+conv+"/messages", `{"content":"hi"}`, tc.header...)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.status)
			}
			if res.Header.Get("Retry-After") == "" {
				t.Fatalf("%d without Retry-After", res.StatusCode)
			}
		})
	}
}

// TestSessionCheckBounded: a session check the store does not answer is
// given up after RequestTimeout (503 unavailable), as a WebSocket's is
// after its DispatchTimeout, freeing the stream's connection slot. Before,
// an event stream waited on the store for as long as it hung, holding one
// of the user's connection slots.
func TestSessionCheckBounded(t *testing.T) {
	t.Parallel()
	hang := func(ctx context.Context, _ auth.Identity) error {
		<-ctx.Done()
		return fmt.Errorf("load user u: %w", ctx.Err())
	}
	s := newServer(t, sse.Options{Recheck: hang, RequestTimeout: 50 * time.Millisecond}, false)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.srv.URL+"/api/events", nil)
	req.Header.Set("Authorization", "Bearer token-u")
	res, err := s.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("events with the store hanging: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("events with the store hanging: %d, want 503", res.StatusCode)
	}
	s.waitHub("the stream to be detached", func(h *hubtest.Hub) bool { return h.Count() == 0 && h.Detached() == 1 })
	if users := s.limits.ConnectedUsers(); len(users) != 0 {
		t.Fatalf("connection slots still taken by %v", users)
	}
}

// TestHubCallsBounded: a subscribe or cancel the hub cannot finish (its
// store does not answer) is given up after RequestTimeout with 503
// unavailable, as a WebSocket frame is after its DispatchTimeout, and the
// stream's connection slot is freed. Before, they ran on the request's
// context alone and waited for as long as the store hung (an event
// stream holding a connection slot all along).
func TestHubCallsBounded(t *testing.T) {
	t.Parallel()
	conv, msg := persistence.NewID(), persistence.NewID()
	for _, tc := range []struct{ name, method, path string }{
		{"events of a conversation", http.MethodGet, "/api/events?conversationId=" + conv},
		{"resume", http.MethodGet, "/api/conversations/" + conv + "/stream?messageId=" + msg},
		{"cancel", http.MethodPost, "/api/conversations/" + conv + "/cancel"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t, sse.Options{RequestTimeout: 50 * time.Millisecond}, false)
			s.hub.AddConversation(conv, "u", "")
			s.hub.Hang()
			ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, tc.method, s.srv.URL+tc.path, nil)
			req.Header.Set("Authorization", "Bearer token-u")
			res, err := s.srv.Client().Do(req)
			if err != nil {
				t.Fatalf("%s with the store hanging: %v", tc.name, err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
				t.Fatalf("%s with the store hanging: %d, want 503 with Retry-After", tc.name, res.StatusCode)
			}
			s.waitHub("every stream to be detached", func(h *hubtest.Hub) bool { return h.Count() == 0 })
			if users := s.limits.ConnectedUsers(); len(users) != 0 {
				t.Fatalf("connection slots still taken by %v", users)
			}
		})
	}
}

// TestRegenerateOptionalBody: a regenerate's body may be left out, also
// when it arrives chunked and empty (a fetch with a stream body, curl
// with Transfer-Encoding: chunked): before, only a Content-Length of 0
// counted as no body, and the chunked empty one was refused 400 "the
// body is empty".
func TestRegenerateOptionalBody(t *testing.T) {
	t.Parallel()
	s := newServer(t, sse.Options{}, false)
	conv := persistence.NewID()
	s.hub.AddConversation(conv, "u", "")
	path := "/api/conversations/" + conv + "/regenerate"
	for _, tc := range []struct {
		name   string
		body   io.Reader
		length int64
		want   int
	}{
		{"no body", nil, 0, http.StatusAccepted},
		{"chunked, empty", strings.NewReader(""), -1, http.StatusAccepted},
		{"chunked, an object", strings.NewReader(`{}`), -1, http.StatusAccepted},
		{"chunked, not JSON", strings.NewReader(`x`), -1, http.StatusBadRequest},
		{"chunked, a bad id", strings.NewReader(`{"messageId":"x"}`), -1, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, path, tc.body)
			req.Header.Set("Authorization", "Bearer token-u")
			if tc.length < 0 {
				req.ContentLength, req.TransferEncoding = -1, []string{"chunked"}
			}
			rec := httptest.NewRecorder()
			s.srv.Config.Handler.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("status %d (%s), want %d", rec.Code, rec.Body, tc.want)
			}
		})
	}
}
