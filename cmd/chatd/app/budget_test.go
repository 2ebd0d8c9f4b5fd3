package app

import (
	"net/http"
	"slices"
	"testing"

	"chatd/persistence"
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

// TestRetriedSendSpendsNoBudget: a send repeating a client message id
// already stored (a retry after a lost ack) creates nothing, and spends
// none of the user's budget of new conversations, on either transport:
// before, a WebSocket retry of a send that created its conversation spent
// it again, and with the budget used up was refused rate_limited instead
// of being answered with the conversation the first one created. (An SSE
// send never creates a conversation: its retries spend nothing either.)
func TestRetriedSendSpendsNoBudget(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{tweak: func(c *Config) { c.Limits.ConversationsPerMinute = 2 }})

	t.Run("websocket", func(t *testing.T) {
		u := e.register(t)
		cl := e.dial(t, u)
		send := func(id, clientID string) map[string]any {
			f := sendFrame(id, "", "a new chat [[fake tokens=2]]")
			f["clientMessageId"] = clientID
			return f
		}
		cl.write(send("first", "retried"))
		first := cl.expect("ack")
		cl.until(isDone(first.MessageID))
		for _, id := range []string{"retry", "again"} {
			cl.write(send(id, "retried"))
			f := cl.until(func(f frame) bool { return f.Type == "ack" || f.Type == "error" })
			if last := f[len(f)-1]; last.Type != "ack" || last.ConversationID != first.ConversationID || last.UserMessageID != first.UserMessageID {
				t.Fatalf("retry %s: %s, want the ack of the first send (%s)", id, last.raw, first.ConversationID)
			}
		}
		// The budget of two holds one more new conversation, and no more.
		cl.write(send("second", "another"))
		f := cl.until(func(f frame) bool { return string(f.ID) == `"second"` })
		second := f[len(f)-1]
		if second.Type != "ack" {
			t.Fatalf("a second new conversation: %s, want an ack", second.raw)
		}
		cl.until(isDone(second.MessageID))
		cl.write(send("third", "a-third"))
		f = cl.until(func(f frame) bool { return string(f.ID) == `"third"` })
		if last := f[len(f)-1]; last.Code != "rate_limited" {
			t.Fatalf("a third new conversation: %s, want rate_limited", last.raw)
		}
	})

	t.Run("sse", func(t *testing.T) {
		u := e.register(t)
		var conv struct {
			Conversation persistence.Conversation `json:"conversation"`
		}
		e.rest(t, u.Token, http.MethodPost, "/api/conversations", map[string]string{}, http.StatusCreated, &conv)
		path := "/api/conversations/" + conv.Conversation.ID + "/messages"
		body := `{"content":"hello [[fake tokens=2]]","clientMessageId":"retried"}`
		var acks []frame
		for range 3 {
			events, res := e.sse(t, u, http.MethodPost, path, body, nil)
			// The ack, after the conversation frames that may come first
			// (the first answer's title, made meanwhile).
			i := slices.IndexFunc(events, func(ev sseEvent) bool { return ev.data.Type != "conversation" })
			if res.StatusCode != http.StatusOK || i < 0 || events[i].data.Type != "ack" {
				t.Fatalf("send over SSE: %d %v", res.StatusCode, events)
			}
			acks = append(acks, events[i].data)
		}
		for _, a := range acks[1:] {
			if a.UserMessageID != acks[0].UserMessageID {
				t.Fatalf("a retry stored another message: %s after %s", a.raw, acks[0].raw)
			}
		}
		// One of the two new conversations is left.
		e.rest(t, u.Token, http.MethodPost, "/api/conversations", map[string]string{}, http.StatusCreated, nil)
		e.rest(t, u.Token, http.MethodPost, "/api/conversations", map[string]string{}, http.StatusTooManyRequests, nil)
	})
}

// TestRetriedSendSpendsNoSendBudget: a send repeating a client message id
// already stored (the client resends after a reconnect) spends none of
// the user's sends per minute, on either transport: with a budget of one,
// spent by the first send, the retries are answered with what the first
// stored, and only a new send is refused. Before, each retry spent the
// budget again and was refused rate_limited (429 over SSE), so a flaky
// link could lock its user out of sending.
func TestRetriedSendSpendsNoSendBudget(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{tweak: func(c *Config) { c.Limits.SendsPerMinute = 4 }}) // a burst of one
	newConversation := func(t *testing.T, u user) string {
		var conv struct {
			Conversation persistence.Conversation `json:"conversation"`
		}
		e.rest(t, u.Token, http.MethodPost, "/api/conversations", map[string]string{}, http.StatusCreated, &conv)
		return conv.Conversation.ID
	}

	t.Run("websocket", func(t *testing.T) {
		u := e.register(t)
		conv := newConversation(t, u)
		cl := e.dial(t, u)
		send := func(id, clientID string) frame {
			f := sendFrame(id, conv, "hello [[fake tokens=2]]")
			f["clientMessageId"] = clientID
			cl.write(f)
			fs := cl.until(func(f frame) bool { return string(f.ID) == `"`+id+`"` })
			return fs[len(fs)-1]
		}
		first := send("first", "retried")
		if first.Type != "ack" {
			t.Fatalf("first send: %s", first.raw)
		}
		cl.until(isDone(first.MessageID))
		for _, id := range []string{"retry", "again"} {
			if f := send(id, "retried"); f.Type != "ack" || f.UserMessageID != first.UserMessageID {
				t.Fatalf("retry %s: %s, want the ack of the first send", id, f.raw)
			}
		}
		if f := send("new", "another"); f.Code != "rate_limited" {
			t.Fatalf("a new send with the budget spent: %s, want rate_limited", f.raw)
		}
	})

	t.Run("sse", func(t *testing.T) {
		u := e.register(t)
		path := "/api/conversations/" + newConversation(t, u) + "/messages"
		var first string
		for n := range 3 {
			events, res := e.sse(t, u, http.MethodPost, path, `{"content":"hello [[fake tokens=2]]","clientMessageId":"retried"}`, nil)
			i := slices.IndexFunc(events, func(ev sseEvent) bool { return ev.data.Type != "conversation" })
			if res.StatusCode != http.StatusOK || i < 0 || events[i].data.Type != "ack" {
				t.Fatalf("send %d over SSE: %d %v", n, res.StatusCode, events)
			}
			if first == "" {
				first = events[i].data.UserMessageID
			} else if events[i].data.UserMessageID != first {
				t.Fatalf("a retry stored another message: %s", events[i].data.raw)
			}
		}
		_, res := e.sse(t, u, http.MethodPost, path, `{"content":"hello","clientMessageId":"another"}`, nil)
		if res.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("a new send with the budget spent: %d, want 429", res.StatusCode)
		}
	})
}

// TestRepeatedCreationSpendsNoBudget: a POST /api/conversations repeating
// a clientId the user's conversations hold (a retry after a lost answer)
// spends none of the user's budget of new conversations: with a budget of
// two, the repeats are answered 200 with the first conversation, one more
// new conversation is made, and only the third new one is refused. Before,
// the budget was spent by a middleware that ran before the body was read,
// so the repeats used it up and were refused 429.
func TestRepeatedCreationSpendsNoBudget(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{tweak: func(c *Config) { c.Limits.ConversationsPerMinute = 2 }})
	u := e.register(t)
	var first, again struct {
		Conversation persistence.Conversation `json:"conversation"`
	}
	e.rest(t, u.Token, http.MethodPost, "/api/conversations", map[string]string{"clientId": "k"}, http.StatusCreated, &first)
	for range 3 {
		e.rest(t, u.Token, http.MethodPost, "/api/conversations", map[string]string{"clientId": "k"}, http.StatusOK, &again)
		if again.Conversation.ID != first.Conversation.ID {
			t.Fatalf("a repeat answered %s, want the first conversation %s", again.Conversation.ID, first.Conversation.ID)
		}
	}
	e.rest(t, u.Token, http.MethodPost, "/api/conversations", map[string]string{"clientId": "other"}, http.StatusCreated, nil)
	e.rest(t, u.Token, http.MethodPost, "/api/conversations", map[string]string{"clientId": "third"}, http.StatusTooManyRequests, nil)
	// With the budget spent, a repeat still finds its conversation.
	e.rest(t, u.Token, http.MethodPost, "/api/conversations", map[string]string{"clientId": "k"}, http.StatusOK, nil)
}
