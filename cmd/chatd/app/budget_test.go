package app

import (
	"net/http"
	"testing"
)

// TestConversationBudgetShared: POST /api/conversations and WebSocket
// sends that create a conversation spend one per-user budget.
func TestConversationBudgetShared(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{tweak: func(c *Config) { c.Limits.ConversationsPerMinute = 2 }})
	u, other := e.register(t), e.register(t)
	e.rest(t, u.Token, http.MethodPost, "/api/conversations", map[string]string{}, http.StatusCreated, nil)
	cl := e.dial(t, u)
	ack := cl.start("the second new conversation [[fake tokens=2]]")
	cl.until(isDone(ack.MessageID))
	cl.write(sendFrame("third", "", "a third"))
	if f := cl.expect("error"); f.Code != "rate_limited" || string(f.ID) != `"third"` {
		t.Fatalf("third new conversation over the socket: %s", f.raw)
	}
	h := e.rest(t, u.Token, http.MethodPost, "/api/conversations", map[string]string{}, http.StatusTooManyRequests, nil)
	if h.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	// Sends into an existing conversation and other users are not limited.
	cl.write(sendFrame("more", ack.ConversationID, "more [[fake tokens=2]]"))
	cl.until(func(f frame) bool { return f.Type == "ack" && string(f.ID) == `"more"` })
	e.rest(t, other.Token, http.MethodPost, "/api/conversations", map[string]string{}, http.StatusCreated, nil)
}
