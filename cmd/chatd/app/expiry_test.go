package app

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"chatd/persistence"
)

// TestSSEEndsAtTokenExpiry: an event stream ends when its token expires,
// with the closed event a WebSocket's 4401 close frame corresponds to.
// Before, it went on delivering the user's frames (a rename made in
// another session) after the token had expired.
func TestSSEEndsAtTokenExpiry(t *testing.T) {
	t.Parallel()
	// The token clock is set, as the stream opens, two seconds before the
	// token's expiry (a one-millisecond leeway): the stream is then
	// accepted for two seconds, in real time (the stream's timer),
	// however long the registration and the conversation's creation took
	// on a loaded machine. (With a 2 s TTL on the real clock, a stall of a
	// second or two under -race expired the token before the stream
	// opened: 401.)
	var offset atomic.Int64
	e := newEnv(t, envOptions{tweak: func(c *Config) {
		c.Auth.TTL = time.Hour
		c.Auth.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
		c.Auth.Leeway = time.Millisecond
	}})
	u := e.register(t)
	var created struct{ Conversation persistence.Conversation }
	e.rest(t, u.Token, http.MethodPost, "/api/conversations", map[string]string{}, http.StatusCreated, &created)
	offset.Store(int64(time.Until(tokenExpiry(t, u.Token).Add(-2 * time.Second))))

	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+"/api/events?conversationId="+created.Conversation.ID, nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+u.Token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/events: %d", res.StatusCode)
	}
	const want = `data: {"type":"closed","closeCode":4401,"reason":"token expired"}`
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, "data: ") && strings.Contains(l, `"closed"`) {
			if l != want {
				t.Fatalf("last event %s, want %s", l, want)
			}
			sc.Scan() // the blank line that ends the event
			if sc.Scan() {
				t.Fatalf("stream goes on after its closed event: %q", sc.Text())
			}
			return
		}
	}
	t.Fatalf("stream ended without a closed event: %v", sc.Err())
}

// TestLiveOpenWithinTheLeeway: a token past its expiry but within the
// leeway, which every request still accepts, opens a WebSocket and an
// event stream that stay open until the leeway ends too, then close with
// 4401 token expired. Before, their close timers were armed at the expiry
// alone: both closed at once (4401 right after the upgrade, a closed event
// before the subscribe's ack), and a client that reconnects spun.
func TestLiveOpenWithinTheLeeway(t *testing.T) {
	t.Parallel()
	// The token clock is moved: back an hour and two seconds while the
	// user registers (the one-hour token then expired two seconds before
	// it was issued, on the real clock), then, as each connection opens,
	// to a second past the token's expiry: the connection is accepted
	// for four seconds more (the five-second leeway), whatever the steps
	// before took on a loaded machine.
	var offset atomic.Int64
	offset.Store(int64(-time.Hour - 2*time.Second))
	e := newEnv(t, envOptions{tweak: func(c *Config) {
		c.Auth.TTL = time.Hour
		c.Auth.Leeway = 5 * time.Second
		c.Auth.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	}})
	u := e.register(t)
	var created struct{ Conversation persistence.Conversation }
	e.rest(t, u.Token, http.MethodPost, "/api/conversations", map[string]string{}, http.StatusCreated, &created)
	pastExpiry := func() {
		offset.Store(int64(time.Until(tokenExpiry(t, u.Token).Add(time.Second))))
	}

	pastExpiry()
	e.rest(t, u.Token, http.MethodGet, "/api/conversations", nil, http.StatusOK, nil)

	// Not parallel subtests: one could wait for the other's slot (-parallel)
	// past the leeway.
	pastExpiry()
	cl := e.dial(t, u) // before, the close could come before the hello
	cl.write(map[string]string{"type": "ping", "id": "1"})
	cl.expect("pong")
	if code, reason := cl.closeStatus(), cl.closeReason(); code != 4401 || reason != "token expired" {
		t.Fatalf("WebSocket closed with %d %q, want 4401 token expired", code, reason)
	}

	pastExpiry()
	evs, res := e.sse(t, u, http.MethodGet, "/api/events?conversationId="+created.Conversation.ID, "", nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/events: %d", res.StatusCode)
	}
	var names []string
	for _, ev := range evs {
		names = append(names, ev.name)
	}
	if len(evs) != 2 || evs[0].name != "ack" || evs[1].data.CloseCode != 4401 || evs[1].data.Reason != "token expired" {
		t.Fatalf("events %v, want an ack, then closed with 4401 token expired (last: %s)", names, evs[len(evs)-1].data.raw)
	}
}

// tokenExpiry is the exp claim of a token (its signature unchecked).
func tokenExpiry(t *testing.T, token string) time.Time {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a JWT", token)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Exp int64 `json:"exp"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	return time.Unix(c.Exp, 0)
}
