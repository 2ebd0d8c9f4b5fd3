package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"chatd/persistence"
)

// TestForeignIDsAnswerLikeUnknown audits every route and frame that takes
// a conversation id: user B's answer about user A's conversation, whether
// it is idle, has an answer running or was deleted, is exactly B's answer
// about an id that never existed (status and body, or frame, with the id
// itself written the same). Before, GET .../stream answered 404 while A's
// answer ran and 204 otherwise, telling B that A was generating.
func TestForeignIDsAnswerLikeUnknown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{tweak: func(c *Config) {
		c.Limits.FramesPerMinute, c.Limits.SendsPerMinute, c.Limits.ConversationsPerMinute = 1<<20, 1<<20, 1<<20
	}})
	alice, bob := e.register(t), e.register(t)
	a := e.dial(t, alice)
	idle := a.start("short [[fake tokens=3]]")
	a.until(isDone(idle.MessageID))
	a.write(sendFrame("run", "", "long [[fake tokens=100000 delay=50ms]]"))
	running := a.expect("ack")
	a.until(func(f frame) bool { return f.Type == "delta" && f.MessageID == running.MessageID })
	t.Cleanup(func() { a.write(map[string]any{"type": "cancel", "conversationId": running.ConversationID}) })
	var deleted struct{ Conversation persistence.Conversation }
	e.rest(t, alice.Token, http.MethodPost, "/api/conversations", map[string]string{"title": "gone"}, http.StatusCreated, &deleted)
	e.rest(t, alice.Token, http.MethodDelete, "/api/conversations/"+deleted.Conversation.ID, nil, http.StatusNoContent, nil)

	targets := map[string]string{
		"idle":    idle.ConversationID,
		"running": running.ConversationID,
		"deleted": deleted.Conversation.ID,
	}
	msg := idle.MessageID // one of alice's answers, named in the probes that take one
	b := e.dial(t, bob)
	probes := []struct {
		name string
		ask  func(conv string) string
	}{
		{"GET conversation", e.httpProbe(bob, "GET", "/api/conversations/%s", "", nil)},
		{"PATCH conversation", e.httpProbe(bob, "PATCH", "/api/conversations/%s", `{"title":"mine"}`, nil)},
		{"export json", e.httpProbe(bob, "GET", "/api/conversations/%s/export?format=json", "", nil)},
		{"export markdown", e.httpProbe(bob, "GET", "/api/conversations/%s/export", "", nil)},
		{"stream", e.httpProbe(bob, "GET", "/api/conversations/%s/stream", "", nil)},
		{"stream a message", e.httpProbe(bob, "GET", "/api/conversations/%s/stream?messageId="+msg+"&lastSeq=0", "", nil)},
		{"events", e.httpProbe(bob, "GET", "/api/events?conversationId=%s", "", nil)},
		{"REST send", e.httpProbe(bob, "POST", "/api/conversations/%s/messages", `{"content":"hi"}`, nil)},
		{"SSE send", e.httpProbe(bob, "POST", "/api/conversations/%s/messages", `{"content":"hi"}`, map[string]string{"Accept": "text/event-stream"})},
		{"regenerate", e.httpProbe(bob, "POST", "/api/conversations/%s/regenerate", "", map[string]string{"Accept": "text/event-stream"})},
		{"cancel", e.httpProbe(bob, "POST", "/api/conversations/%s/cancel", "", nil)},
		{"DELETE conversation", e.httpProbe(bob, "DELETE", "/api/conversations/%s", "", nil)},
		{"ws send", b.frameProbe(`{"type":"send","id":"p","conversationId":"%s","content":"hi"}`)},
		{"ws regenerate", b.frameProbe(`{"type":"regenerate","id":"p","conversationId":"%s"}`)},
		{"ws cancel", b.frameProbe(`{"type":"cancel","id":"p","conversationId":"%s"}`)},
		{"ws subscribe", b.frameProbe(`{"type":"subscribe","id":"p","conversationId":"%s"}`)},
		{"ws resume", b.frameProbe(`{"type":"subscribe","id":"p","conversationId":"%s","messageId":"` + msg + `","lastSeq":0}`)},
		{"ws unsubscribe", b.frameProbe(`{"type":"unsubscribe","id":"p","conversationId":"%s"}`)},
	}
	for _, p := range probes {
		unknown := p.ask(persistence.NewID())
		for state, conv := range targets {
			if got := p.ask(conv); got != unknown {
				t.Errorf("%s on alice's %s conversation:\n  %s\nbut on an unknown id:\n  %s", p.name, state, got, unknown)
			}
		}
	}
	if th := e.thread(t, alice, idle.ConversationID); th.Conversation.Title == "mine" || len(th.Messages) != 2 {
		t.Fatalf("bob's probes changed alice's conversation: %+v", th.Conversation)
	}
}

// httpProbe returns a probe asking path (with the id in place of %s) as u:
// the answer's status and body, the id written as ID.
func (e *env) httpProbe(u user, method, path, body string, header map[string]string) func(string) string {
	return func(conv string) string {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, method, e.srv.URL+fmt.Sprintf(path, conv), strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+u.Token)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return "error: " + err.Error()
		}
		defer res.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(res.Body, 1<<16))
		return fmt.Sprintf("%d %s %s", res.StatusCode, res.Header.Get("Content-Type"), strings.ReplaceAll(string(data), conv, "ID"))
	}
}

// frameProbe returns a probe sending frame (with the id in place of %s)
// and returning the first answer that is not a user-wide conversation
// frame, the id written as ID.
func (cl *client) frameProbe(frame string) func(string) string {
	return func(conv string) string {
		cl.write(fmt.Sprintf(frame, conv))
		f := cl.next()
		for f.Type == "conversation" {
			f = cl.next()
		}
		// A subscribe that succeeded would go on with more frames; none
		// may follow an answer about an id bob cannot see.
		select {
		case extra := <-cl.frames:
			return f.raw + " then " + extra.raw
		case <-time.After(20 * time.Millisecond):
		}
		return strings.ReplaceAll(f.raw, conv, "ID")
	}
}
