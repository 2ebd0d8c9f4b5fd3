package transport_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"chatd/transport"
	"chatd/transport/internal/hubtest"
	"chatd/transport/sse"
)

// TestTwoAuthorizationHeaders: a request carrying two Authorization
// headers is malformed (RFC 6750 3.1): it is answered 400 bad_request with
// a challenge naming invalid_request, whichever of them is good, on REST
// routes, the event streams and /metrics with its token; one header is
// taken as before. Before, the first header won: a good token followed by
// junk was let in, junk followed by a good token refused with 401.
func TestTwoAuthorizationHeaders(t *testing.T) {
	t.Parallel()
	live := hubtest.New()
	e := newEnv(t, envOptions{router: func(o *transport.RouterOptions) {
		o.Metrics.Token = "metrics-token"
		o.Metrics.Allow = nil
		o.Register = func(r transport.Routes) { sse.NewHandler(sse.Options{Hub: live}).Routes(r.Authed) }
	}})
	u := e.register("Twice")
	conv := e.createConversation(u, "twice")
	live.AddConversation(conv.ID, u.id, "")
	for _, route := range []struct {
		name, method, path, token string
		ok                        int
	}{
		{"REST", "GET", "/api/auth/me", u.token, http.StatusOK},
		{"event stream", "GET", "/api/events", u.token, http.StatusOK},
		{"resume", "GET", "/api/conversations/" + conv.ID + "/stream", u.token, http.StatusNoContent},
		{"send", "POST", "/api/conversations/" + conv.ID + "/messages", u.token, http.StatusAccepted},
		{"metrics", "GET", "/metrics", "metrics-token", http.StatusOK},
	} {
		for _, order := range []struct {
			name    string
			headers []string
			refused bool
		}{
			{"good alone", []string{"Bearer " + route.token}, false},
			{"good then junk", []string{"Bearer " + route.token, "Bearer junk"}, true},
			{"junk then good", []string{"Bearer junk", "Bearer " + route.token}, true},
			{"good twice", []string{"Bearer " + route.token, "Bearer " + route.token}, true},
		} {
			t.Run(route.name+", "+order.name, func(t *testing.T) {
				t.Parallel()
				status, header, body := twoAuthRequest(t, e, route.method, route.path, order.headers)
				if !order.refused {
					if status != route.ok {
						t.Fatalf("status %d, want %d: %s", status, route.ok, body)
					}
					return
				}
				if status != http.StatusBadRequest || !strings.Contains(body, `"code":"bad_request"`) {
					t.Fatalf("status %d %s, want 400 bad_request", status, body)
				}
				if c := header.Get("WWW-Authenticate"); !strings.HasPrefix(c, `Bearer realm="chatd", error="invalid_request"`) {
					t.Fatalf("WWW-Authenticate %q, want a Bearer challenge naming invalid_request", c)
				}
			})
		}
	}
}

// twoAuthRequest sends a request with each of auths as an Authorization
// line and returns the answer's status, headers and (at most 4 KiB of)
// body: an event stream that opens is not read to its end.
func twoAuthRequest(t *testing.T, e *env, method, path string, auths []string) (int, http.Header, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var body io.Reader
	if method == "POST" {
		body = strings.NewReader(`{"content":"hi"}`)
	}
	req, err := http.NewRequestWithContext(ctx, method, e.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range auths {
		req.Header.Add("Authorization", a)
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var data []byte
	if !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		data, _ = io.ReadAll(io.LimitReader(res.Body, 4<<10))
	}
	return res.StatusCode, res.Header, string(data)
}
