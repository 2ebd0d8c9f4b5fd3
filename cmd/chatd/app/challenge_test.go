package app

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"chatd/persistence"
)

// TestUnauthorizedChallenge: every 401 chatd sends carries a Bearer
// WWW-Authenticate challenge (RFC 9110 11.6.1, RFC 6750 3): the REST API,
// the event streams and the WebSocket upgrade alike, naming
// error="invalid_token" when a token came and was no good, and no error
// when none came or a password was wrong.
func TestUnauthorizedChallenge(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	revoked := e.register(t)
	e.rest(t, revoked.Token, http.MethodPost, "/api/auth/logout", nil, http.StatusNoContent, nil)
	u := e.register(t)
	conv := persistence.NewID()

	tokens := []struct {
		name, token, wantError string
	}{
		{"no token", "", ""},
		{"a malformed token", "not.a.token", `error="invalid_token"`},
		{"a revoked token", revoked.Token, `error="invalid_token"`},
	}
	type request struct {
		name, method, path, body string
		events, ws               bool
	}
	requests := []request{
		{name: "me", method: http.MethodGet, path: "/api/auth/me"},
		{name: "list", method: http.MethodGet, path: "/api/conversations"},
		{name: "create", method: http.MethodPost, path: "/api/conversations", body: `{}`},
		{name: "events", method: http.MethodGet, path: "/api/events", events: true},
		{name: "stream", method: http.MethodGet, path: "/api/conversations/" + conv + "/stream", events: true},
		{name: "send over SSE", method: http.MethodPost, path: "/api/conversations/" + conv + "/messages", body: `{"content":"hi"}`, events: true},
		{name: "send answered 202", method: http.MethodPost, path: "/api/conversations/" + conv + "/messages", body: `{"content":"hi"}`},
		{name: "websocket", ws: true},
	}
	for _, tok := range tokens {
		for _, rq := range requests {
			t.Run(tok.name+"/"+rq.name, func(t *testing.T) {
				status, challenge := e.challenge(t, tok.token, rq.method, rq.path, rq.body, rq.events, rq.ws)
				checkChallenge(t, status, challenge, tok.wantError)
			})
		}
	}
	// Wrong passwords: a 401 whose challenge names no token error.
	for _, rq := range []struct{ name, token, method, path, body string }{
		{"login", "", http.MethodPost, "/api/auth/login", `{"email":"nobody@example.com","password":"a wrong guess"}`},
		{"password change", u.Token, http.MethodPatch, "/api/auth/me", `{"currentPassword":"a wrong guess","newPassword":"a new password"}`},
	} {
		t.Run("wrong password/"+rq.name, func(t *testing.T) {
			status, challenge := e.challenge(t, rq.token, rq.method, rq.path, rq.body, false, false)
			checkChallenge(t, status, challenge, "")
		})
	}
}

func checkChallenge(t *testing.T, status int, challenge, wantError string) {
	t.Helper()
	if status != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401", status)
	}
	if !strings.HasPrefix(challenge, `Bearer realm="chatd"`) {
		t.Fatalf("WWW-Authenticate %q, want a Bearer challenge of realm chatd", challenge)
	}
	if wantError == "" && strings.Contains(challenge, "error=") || wantError != "" && !strings.Contains(challenge, wantError) {
		t.Fatalf("WWW-Authenticate %q, want error %q", challenge, wantError)
	}
}

// challenge makes one request (a WebSocket upgrade with ws) and returns its
// status and WWW-Authenticate header.
func (e *env) challenge(t *testing.T, token, method, path, body string, events, ws bool) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	if ws {
		c, res, err := websocket.Dial(ctx, e.wsURL(), &websocket.DialOptions{HTTPHeader: h})
		if err == nil {
			c.CloseNow()
			t.Fatal("the upgrade succeeded")
		}
		if res == nil {
			t.Fatalf("dial: %v", err)
		}
		return res.StatusCode, res.Header.Get("WWW-Authenticate")
	}
	req, _ := http.NewRequestWithContext(ctx, method, e.srv.URL+path, bytes.NewReader([]byte(body)))
	req.Header = h
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if events {
		req.Header.Set("Accept", "text/event-stream")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	res.Body.Close()
	return res.StatusCode, res.Header.Get("WWW-Authenticate")
}
