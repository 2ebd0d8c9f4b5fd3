package transport_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"chatd/transport"
	"chatd/transport/internal/hubtest"
	"chatd/transport/limits"
	"chatd/transport/sse"
	"chatd/transport/ws"
)

// TestMalformedQueryRefused: a request to a route whose query string
// url.ParseQuery refuses (a bad percent escape, a ';' between pairs) is
// answered 400 bad_request in the JSON error shape before anything runs:
// an event stream with a malformed conversationId opens no stream and
// takes no connection slot. Before, gin's c.Query dropped such pairs
// silently: /api/events?conversationId=zz% opened a user-wide stream,
// ?q=50% listed every conversation, ?format=xml% exported Markdown. The
// web client's pages, whose query the server never reads, still load.
func TestMalformedQueryRefused(t *testing.T) {
	t.Parallel()
	live := hubtest.New()
	lim := limits.New(limits.Options{MaxConns: 1})
	streams := sse.NewHandler(sse.Options{Hub: live, Limits: lim})
	e := newEnv(t, envOptions{router: func(o *transport.RouterOptions) {
		o.Register = func(r transport.Routes) {
			streams.Routes(r.Authed)
			r.Engine.GET("/ws", gin.WrapH(ws.NewHandler(ws.Options{Hub: live, Limits: lim,
				Authenticate: func(_ context.Context, token string) (ws.Identity, error) {
					return ws.Identity{UserID: token, ExpiresAt: time.Now().Add(time.Hour)}, nil
				},
				Recheck: func(context.Context, ws.Identity) error { return nil }})))
		}
	}})
	t.Cleanup(streams.Shutdown) // before the server's Close, which waits for a stream left open
	u := e.register("Percent")
	conv := e.createConversation(u, "t1")
	live.AddConversation(conv.ID, u.id, "")
	c := "/api/conversations/" + conv.ID
	for _, tc := range []struct{ method, path, token, msg string }{
		{"GET", "/api/events?conversationId=zz%", u.token, `invalid escape "%"`},
		{"HEAD", "/api/events?conversationId=zz%", u.token, ""},
		{"GET", "/api/events?conversationId=" + conv.ID + ";x", u.token, "';' does not separate parameters"},
		{"GET", c + "/stream?lastSeq=-1%", u.token, ""},
		{"GET", c + "/stream?messageId=zz%", u.token, ""},
		{"POST", c + "/cancel?x=%zz", u.token, `invalid escape "%zz"`},
		{"GET", "/api/conversations?q=50%", u.token, ""},
		{"GET", "/api/conversations?q=t1;x", u.token, ""},
		{"GET", "/api/conversations?cursor=%zz", u.token, ""},
		{"GET", "/api/conversations?limit=0%", u.token, ""},
		{"GET", c + "/messages?before=zz%", u.token, ""},
		{"GET", c + "/export?format=xml%", u.token, ""},
		{"GET", "/api/conversations?q=50%", "", ""},          // refused before the token check
		{"GET", "/api/events?a=1;token=x", "", ""},           // a token in it is refused all the same
		{"GET", "/ws?conversationId=zz%", u.id, ""},          // before the upgrade
		{"GET", "/metrics?name[]=%zz", "", ""},               // every route
		{"GET", "/api/auth/me?x=%", u.token, ""},             // whether or not it reads a query
		{"GET", "/api/conversations?x=1&x=%G1", u.token, ""}, // wherever the bad pair is
		{"GET", "/api/conversations?" + strings.Repeat("x=1&", 10000) + "q=t1", u.token, "exceeded limit"},
	} {
		status, body, slotFree := queryRequest(t, e, lim, u.id, tc.method, tc.path, tc.token)
		if !slotFree {
			t.Errorf("%s %s: a connection slot is taken", tc.method, tc.path)
		}
		if status != http.StatusBadRequest {
			t.Errorf("%s %s: status %d, want 400: %.200s", tc.method, tc.path, status, body)
			continue
		}
		if tc.method == "HEAD" {
			continue
		}
		var b struct {
			Error struct{ Code, Message string }
		}
		if err := json.Unmarshal(body, &b); err != nil || b.Error.Code != "bad_request" ||
			!strings.HasPrefix(b.Error.Message, "malformed query string: ") || !strings.Contains(b.Error.Message, tc.msg) {
			t.Errorf("%s %s: %v %s, want bad_request, malformed query string: ...%s", tc.method, tc.path, err, body, tc.msg)
		}
	}
	if n := len(live.SubscribeRequests()); n != 0 {
		t.Errorf("the hub got %d subscribes", n)
	}
	for _, path := range []string{"/api/conversations?q=50%25", "/api/conversations?q=t1%3Bx&limit=5"} {
		if r := e.do("GET", path, u.token, nil); r.status != http.StatusOK {
			t.Errorf("GET %s (well formed): %d %s", path, r.status, r.body)
		}
	}
	if r := e.do("GET", "/c/"+conv.ID+"?utm=50%", "", nil); r.status != http.StatusOK {
		t.Errorf("a web client page with a malformed query: %d %s", r.status, r.body)
	}
	if status, body, _ := queryRequest(t, e, lim, u.id, "GET", "/api/events", u.token); status != http.StatusOK {
		t.Errorf("a well-formed event stream after them: %d %s", status, body)
	}
}

// queryRequest sends a request and answers its status, its body (up to
// 4 KiB: an event stream is not read to its end), and whether one more
// connection of user would fit while the answer is still open.
func queryRequest(t *testing.T, e *env, lim *limits.Users, user, method, path, token string) (int, []byte, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	res := sendWithToken(ctx, t, e, method, path, token)
	defer res.Body.Close()
	free := lim.AcquireConn(user)
	if free {
		lim.ReleaseConn(user)
	}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		return res.StatusCode, nil, free
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, 4<<10))
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return res.StatusCode, body, free
}
