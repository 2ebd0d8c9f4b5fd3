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
	e := newEnv(t, envOptions{tweak: func(c *Config) {
		c.Auth.TTL = 2 * time.Second
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
