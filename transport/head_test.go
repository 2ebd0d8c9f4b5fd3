package transport_test

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"chatd/transport"
	"chatd/transport/internal/hubtest"
	"chatd/transport/sse"
	"chatd/transport/ws"
)

// comparedHeaders are the headers a HEAD must answer as its GET does.
var comparedHeaders = []string{"Content-Type", "Cache-Control", "Content-Disposition", "X-Content-Type-Options",
	"Content-Security-Policy", "Allow", "WWW-Authenticate", "Upgrade", "Retry-After", "X-Accel-Buffering"}

// TestHeadOnEveryGetRoute: HEAD on every GET route of the router (the
// REST routes, /metrics, the event streams and the WebSocket route
// included) answers as the GET does, status and headers, without a body,
// signed in and not; an event stream answers its headers and holds no
// stream open. A 405 names HEAD wherever it names GET. Before, HEAD was a
// 405 (Allow: GET, POST) on every GET route but the health probes'.
func TestHeadOnEveryGetRoute(t *testing.T) {
	t.Parallel()
	live := hubtest.New()
	streams := sse.NewHandler(sse.Options{Hub: live})
	e := newEnv(t, envOptions{router: func(o *transport.RouterOptions) {
		o.Register = func(r transport.Routes) {
			streams.Routes(r.Authed)
			r.Engine.GET("/ws", gin.WrapH(ws.NewHandler(ws.Options{Hub: live,
				Authenticate: func(_ context.Context, token string) (ws.Identity, error) {
					return ws.Identity{UserID: token, ExpiresAt: time.Now().Add(time.Hour)}, nil
				},
				Recheck: func(context.Context, ws.Identity) error { return nil }})))
		}
	}})
	t.Cleanup(streams.Shutdown) // before the server's Close, which waits for a stream left open
	u := e.register("Header")
	conv := e.createConversation(u, "heads")
	live.AddConversation(conv.ID, u.id, "")
	var gets []string
	for _, r := range e.routes {
		if r.Method == http.MethodGet {
			gets = append(gets, strings.ReplaceAll(r.Path, ":id", conv.ID))
		}
	}
	if !slices.Contains(gets, "/api/events") || !slices.Contains(gets, "/ws") || len(gets) < 10 {
		t.Fatalf("GET routes %v: the live routes are missing", gets)
	}
	for _, path := range gets {
		for _, token := range []string{u.token, ""} {
			t.Run(path+", signed in: "+boolWord(token != ""), func(t *testing.T) {
				get := headOrGet(t, e, http.MethodGet, path, token)
				head := headOrGet(t, e, http.MethodHead, path, token)
				if head.status != get.status {
					t.Fatalf("HEAD %d, GET %d", head.status, get.status)
				}
				for _, h := range comparedHeaders {
					if g, hd := get.header.Values(h), head.header.Values(h); !slices.Equal(g, hd) {
						t.Errorf("%s: HEAD %q, GET %q", h, hd, g)
					}
				}
				if (get.header.Get("Content-Length") == "") != (head.header.Get("Content-Length") == "") ||
					path != "/metrics" && head.header.Get("Content-Length") != get.header.Get("Content-Length") {
					t.Errorf("Content-Length: HEAD %q, GET %q", head.header.Get("Content-Length"), get.header.Get("Content-Length"))
				}
				if len(head.body) != 0 {
					t.Errorf("HEAD has a body: %q", head.body)
				}
			})
		}
	}
	// The streams a HEAD opened, if any, are all closed: each answered its
	// headers and returned (a GET's stream ended with its request).
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if !live.WaitFor(ctx, func(h *hubtest.Hub) bool { return h.Count() == 0 }) {
		t.Fatal("an event stream is still open")
	}
	r := e.do("DELETE", "/api/models", u.token, nil)
	if expect(t, "DELETE /api/models", r, http.StatusMethodNotAllowed, "method_not_allowed"); r.header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("Allow %q, want GET, HEAD", r.header.Get("Allow"))
	}
}

func boolWord(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// headOrGet sends a GET or HEAD with token (none when "") and returns its
// answer; of an event stream, only the headers are read.
func headOrGet(t *testing.T, e *env, method, path, token string) response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res := sendWithToken(ctx, t, e, method, path, token)
	defer res.Body.Close()
	var data []byte
	var err error
	if !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") || method == http.MethodHead {
		data, err = io.ReadAll(res.Body)
		if err != nil {
			t.Fatalf("%s %s: read body: %v", method, path, err)
		}
	}
	return response{status: res.StatusCode, header: res.Header, body: data}
}

// sendWithToken sends a request with no body and token (none when "") to
// e's server within ctx; the caller closes the answer's body.
func sendWithToken(ctx context.Context, t *testing.T, e *env, method, path, token string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, e.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return res
}
