package app

import (
	"bufio"
	"context"
	"net/http"
	"strings"
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
	// The token clock runs an hour minus two seconds behind: a one-hour
	// token then expires two seconds after it is issued, in real time (the
	// stream's timer), however long the registration, the conversation's
	// creation and the stream's opening take on a loaded machine: they
	// check it on the same clock, so they pass. (With a 2 s TTL on the real
	// clock, a stall of a second or two under -race expired the token
	// before the stream opened: 401.)
	e := newEnv(t, envOptions{tweak: func(c *Config) {
		c.Auth.TTL = time.Hour
		c.Auth.Now = func() time.Time { return time.Now().Add(-time.Hour + 2*time.Second) }
		c.Auth.Leeway = time.Millisecond
	}})
	u := e.register(t)
	var created struct{ Conversation persistence.Conversation }
	e.rest(t, u.Token, http.MethodPost, "/api/conversations", map[string]string{}, http.StatusCreated, &created)

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
