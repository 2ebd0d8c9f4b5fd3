package app

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"chatd/transport/ws"
)

// TestUpgradeRefused: the real authenticator and origin check refuse bad
// requests before any upgrade, with a structured JSON error (the
// transport's own refusals, such as tokens in the query string, are tested
// in transport/ws).
func TestUpgradeRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	u := e.register(t)
	other, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": u.ID, "tv": 0,
		"exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(), "iss": "chatd", "aud": "chatd"}).
		SignedString([]byte(strings.Repeat("x", 32)))
	tests := []struct {
		name   string
		path   string
		header map[string]string
		status int
		code   string
	}{
		{"no token", "/ws", nil, 401, "unauthorized"},
		{"garbage token", "/ws", map[string]string{"Authorization": "Bearer not.a.jwt"}, 401, "unauthorized"},
		{"token signed with another secret", "/ws", map[string]string{"Authorization": "Bearer " + other}, 401, "unauthorized"},
		{"foreign origin", "/ws", map[string]string{"Authorization": "Bearer " + u.Token, "Origin": "https://evil.example"}, 403, "forbidden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.header {
				h.Set(k, v)
			}
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			url := "ws" + strings.TrimPrefix(e.srv.URL, "http") + tt.path
			c, res, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: h})
			if err == nil {
				c.CloseNow()
				t.Fatalf("upgrade accepted")
			}
			if res == nil || res.StatusCode != tt.status {
				t.Fatalf("status %v, want %d (%v)", res, tt.status, err)
			}
			var body struct {
				Error struct{ Code, Message string }
			}
			if err := json.NewDecoder(res.Body).Decode(&body); err != nil || body.Error.Code != tt.code || body.Error.Message == "" {
				t.Fatalf("body %+v (%v), want code %s", body, err, tt.code)
			}
		})
	}
	if n := e.fake.Requests(); n != 0 {
		t.Fatalf("upstream called %d times", n)
	}
}

// TestBrowserHandshake: a browser passes its token as a subprotocol and
// gets only the protocol name back; its own origin is accepted.
func TestBrowserHandshake(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	u := e.register(t)
	h := http.Header{}
	h.Set("Origin", e.srv.URL)
	cl := e.dialWith(t, &websocket.DialOptions{HTTPHeader: h, Subprotocols: []string{"chat.v1", "bearer." + u.Token}})
	if got := cl.c.Subprotocol(); got != "chat.v1" {
		t.Fatalf("negotiated subprotocol %q, want chat.v1", got)
	}
	cl.write(`{"type":"ping","id":"p"}`)
	cl.expect("pong")
}

// TestBadFrames: the configured invalid-frame limit and the default read
// limit reach the socket (every kind of invalid frame is tested in
// transport/ws): invalid frames are answered, one past the limit closes
// with 1008, a frame over the read limit with 1009, and nothing reaches
// the upstream.
func TestBadFrames(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{tweak: func(c *Config) { c.WS.MaxInvalidFrames = 2 }})
	u := e.register(t)
	cl := e.dial(t, u)
	for range 2 {
		cl.write(`{"type":"send","id":"d"}`)
		if f := cl.expect("error"); f.Code != "invalid_field" || string(f.ID) != `"d"` {
			t.Fatalf("invalid frame: %s", f.raw)
		}
	}
	cl.write("garbage")
	if got := cl.closeStatus(); got != websocket.StatusPolicyViolation {
		t.Fatalf("close status %d, want 1008", got)
	}

	big := e.dial(t, u)
	big.write(`{"type":"send","content":"` + strings.Repeat("y", ws.DefaultReadLimit) + `"}`)
	if got := big.closeStatus(); got != websocket.StatusMessageTooBig {
		t.Fatalf("close status %d, want 1009", got)
	}
	if n := e.fake.Requests(); n != 0 {
		t.Fatalf("upstream called %d times", n)
	}
}

// TestOtherUsersIDs: another user's conversation or message answers
// not_found, calls no upstream and stores nothing.
func TestOtherUsersIDs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	alice, bob := e.register(t), e.register(t)
	a := e.dial(t, alice)
	ack := a.start("private")
	a.until(isDone(ack.MessageID))
	a.until(func(f frame) bool { return f.Type == "conversation" && f.Conversation.Title != "" }) // the last write of that answer
	before := e.thread(t, alice, ack.ConversationID)
	requests := e.fake.Requests()
	writes := e.store.Writes().Writes

	b := e.dial(t, bob)
	frames := []map[string]any{
		{"type": "send", "id": "1", "conversationId": ack.ConversationID, "content": "hi"},
		{"type": "regenerate", "id": "2", "conversationId": ack.ConversationID},
		{"type": "cancel", "id": "3", "conversationId": ack.ConversationID},
		{"type": "subscribe", "id": "4", "conversationId": ack.ConversationID},
		{"type": "subscribe", "id": "5", "conversationId": ack.ConversationID, "messageId": ack.MessageID, "lastSeq": 0},
		{"type": "send", "id": "6", "conversationId": "0123456789abcdef01234567", "content": "hi"},
	}
	for _, f := range frames {
		b.write(f)
		got := b.expect("error")
		if got.Code != "not_found" {
			t.Fatalf("%v: %s", f, got.raw)
		}
	}
	// A send of bob's own naming alice's message as parent is refused too.
	b.write(map[string]any{"type": "send", "id": "7", "content": "hi", "parentMessageId": ack.MessageID})
	b.until(func(f frame) bool { return f.Type == "error" && f.Code == "not_found" })
	if e.fake.Requests() != requests {
		t.Fatalf("upstream called for another user's ids")
	}
	after := e.thread(t, alice, ack.ConversationID)
	if len(after.Messages) != len(before.Messages) {
		t.Fatalf("alice's conversation changed: %d -> %d messages", len(before.Messages), len(after.Messages))
	}
	// Nothing is stored for refused frames, not even the new conversation
	// bob's send would have created.
	if w := e.store.Writes().Writes - writes; w != 0 {
		t.Fatalf("%d writes for refused frames", w)
	}
	a.quiet(50 * time.Millisecond)
}

// TestLogoutClosesSockets: logging out closes every socket of the user
// with 4401 at once (within 10 s: without it, only the accounts' periodic
// check would, a minute later; 2 s was tight for a loaded machine's
// stalls under -race), and the old token no longer upgrades.
func TestLogoutClosesSockets(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	u, other := e.register(t), e.register(t)
	a, b, c := e.dial(t, u), e.dial(t, u), e.dial(t, other)
	start := time.Now()
	e.rest(t, u.Token, http.MethodPost, "/api/auth/logout", nil, http.StatusNoContent, nil)
	for _, cl := range []*client{a, b} {
		if got := cl.closeStatus(); got != 4401 {
			t.Fatalf("close status %d, want 4401", got)
		}
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("sockets closed after %s", d)
	}
	c.write(`{"type":"ping"}`)
	c.expect("pong")
	h := http.Header{}
	h.Set("Authorization", "Bearer "+u.Token)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if conn, res, err := websocket.Dial(ctx, e.wsURL(), &websocket.DialOptions{HTTPHeader: h}); err == nil || res.StatusCode != 401 {
		if conn != nil {
			conn.CloseNow()
		}
		t.Fatalf("revoked token upgraded: %v", err)
	}
}

// TestLimits: too many connections are closed with 1013 right after the
// upgrade (an event stream gets 429); too many sends per minute get
// rate_limited.
func TestLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{tweak: func(c *Config) {
		c.Limits.MaxConns = 2
		c.Limits.SendsPerMinute = 4 // a burst of 1
	}})
	u := e.register(t)
	a := e.dial(t, u)
	e.dial(t, u)
	e.wantTooManyConns(t, u)
	// SSE streams take the same slots.
	if _, res := e.sse(t, u, http.MethodGet, "/api/events", "", nil); res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("an event stream beyond the limit: %d", res.StatusCode)
	}
	ack := a.start("one")
	a.until(isDone(ack.MessageID))
	a.write(sendFrame("two", ack.ConversationID, "two"))
	if f := a.expect("error"); f.Code != "rate_limited" || string(f.ID) != `"two"` {
		t.Fatalf("second send: %s", f.raw)
	}
}

// wantTooManyConns dials a WebSocket for u, which must be over its
// connection limit: it is upgraded, then closed with 1013 and the reason
// "too many connections" before any frame.
func (e *env) wantTooManyConns(t *testing.T, u user) {
	t.Helper()
	h := http.Header{}
	h.Set("Authorization", "Bearer "+u.Token)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, e.wsURL(), &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatalf("a connection over the limit is upgraded, then closed: %v", err)
	}
	defer conn.CloseNow()
	_, data, err := conn.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusTryAgainLater || !strings.Contains(err.Error(), "too many connections") {
		t.Fatalf("a connection over the limit: frame %s, err %v; want close 1013 too many connections", data, err)
	}
}

// TestConversationBudget: POST /api/conversations spends the configured
// per-user budget (the router shares the app's limits, not its defaults).
func TestConversationBudget(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{tweak: func(c *Config) { c.Limits.ConversationsPerMinute = 12 }})
	u := e.register(t)
	for i := 0; i < 12; i++ {
		e.rest(t, u.Token, http.MethodPost, "/api/conversations", map[string]string{"title": "t"}, http.StatusCreated, nil)
	}
	e.rest(t, u.Token, http.MethodPost, "/api/conversations", map[string]string{"title": "t"}, http.StatusTooManyRequests, nil)
}

// TestTokenExpiry closes a socket with 4401 when its token expires.
func TestTokenExpiry(t *testing.T) {
	t.Parallel()
	// The token clock is set, as the socket opens, a second before the
	// token's expiry (a one-millisecond leeway): the socket is accepted
	// for a second more, in real time, however long the registration
	// took on a loaded machine (the upgrade checks it on the same clock,
	// so it always passes).
	var offset atomic.Int64
	e := newEnv(t, envOptions{tweak: func(c *Config) {
		c.Auth.TTL = time.Hour
		c.Auth.Leeway = time.Millisecond
		c.Auth.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	}})
	u := e.register(t)
	offset.Store(int64(time.Until(tokenExpiry(t, u.Token).Add(-time.Second))))
	cl := e.dial(t, u)
	if got := cl.closeStatus(); got != 4401 {
		t.Fatalf("close status %d, want 4401", got)
	}
}

// TestSlowClient: a tab that stops reading is disconnected with 4408 when
// its queue fills up, while another tab keeps receiving every frame.
func TestSlowClient(t *testing.T) {
	t.Parallel()
	// The write timeout is long: the slow tab only reads again after the
	// whole flood, and must then get the 4408 close frame, not a cut.
	e := newEnv(t, envOptions{smallBuffers: true, tweak: func(c *Config) { c.WS.QueueSize = 16; c.WS.WriteTimeout = time.Minute }})
	u := e.register(t)
	fast := e.dial(t, u)
	h := http.Header{}
	h.Set("Authorization", "Bearer "+u.Token)
	slow := e.dialWith(t, &websocket.DialOptions{HTTPHeader: h, HTTPClient: smallReadBufferClient()})
	slow.paused.Store(true) // its reader stops: the kernel buffers fill, then the queue
	// Paced, so that the flood lasts many coalescing intervals: a busy tab
	// makes the hub merge deltas (adaptive coalescing), and an instant
	// flood would fit in fewer frames than the queue holds.
	ack := fast.start("flood [[fake tokens=3000 delay=1ms]]")
	slow.write(map[string]any{"type": "subscribe", "conversationId": ack.ConversationID})
	frames := live(fast.until(isDone(ack.MessageID)))
	text, done := answer(t, frames, ack.MessageID)
	if done.Status != "complete" || len(text) == 0 {
		t.Fatalf("fast tab: %s", done.raw)
	}
	close(slow.resume)
	slow.paused.Store(false)
	if got := slow.closeStatus(); got != 4408 {
		t.Fatalf("slow tab closed with %d, want 4408", got)
	}
}
