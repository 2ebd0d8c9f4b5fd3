package app

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"chatd/persistence"
)

// TestOtherUsersIDsSSE is TestOtherUsersIDs for the SSE routes: bob naming
// alice's answer (as a send's parent, the answer to regenerate, cancel or
// resume, in the URL or as Last-Event-ID; ended or running), in his own
// conversation or in hers, is answered exactly as bob naming an id that
// never existed (status, type and body, the id written as ID), stops
// nothing, calls no upstream and stores nothing.
func TestOtherUsersIDsSSE(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{tweak: func(c *Config) {
		c.Limits.FramesPerMinute, c.Limits.SendsPerMinute, c.Limits.ConversationsPerMinute = 1<<20, 1<<20, 1<<20
	}})
	alice, bob := e.register(t), e.register(t)
	a := e.dial(t, alice)
	hers := a.start("private")
	a.until(isDone(hers.MessageID))
	a.until(func(f frame) bool { return f.Type == "conversation" && f.Conversation.Title != "" }) // the last write of that answer
	a.write(sendFrame("run", "", "long [[fake tokens=100000 delay=50ms]]"))
	running := a.expect("ack")
	a.until(func(f frame) bool { return f.Type == "delta" && f.MessageID == running.MessageID })
	t.Cleanup(func() { a.write(map[string]any{"type": "cancel", "conversationId": running.ConversationID}) })
	b := e.dial(t, bob)
	his := b.start("mine")
	b.until(isDone(his.MessageID))
	b.until(func(f frame) bool { return f.Type == "conversation" && f.Conversation.Title != "" })
	requests := e.fake.Requests()

	sse := map[string]string{"Accept": "text/event-stream"}
	probes := []struct {
		name, method, path, body string
		header                   map[string]string
	}{
		{"send with that parent", "POST", "/api/conversations/{conv}/messages", `{"content":"hi","parentMessageId":"{msg}"}`, sse},
		{"regenerate it", "POST", "/api/conversations/{conv}/regenerate", `{"messageId":"{msg}"}`, sse},
		{"cancel it", "POST", "/api/conversations/{conv}/cancel", `{"messageId":"{msg}"}`, nil},
		{"stream it", "GET", "/api/conversations/{conv}/stream?messageId={msg}&lastSeq=0", "", nil},
		{"stream it by Last-Event-ID", "GET", "/api/conversations/{conv}/stream", "", map[string]string{"Last-Event-ID": "{msg}:0"}},
		{"events resuming it", "GET", "/api/events?conversationId={conv}&messageId={msg}&lastSeq=0", "", nil},
		{"events resuming it by Last-Event-ID", "GET", "/api/events?conversationId={conv}", "", map[string]string{"Last-Event-ID": "{msg}:0"}},
		{"events resuming its end", "GET", "/api/events?conversationId={conv}", "", map[string]string{"Last-Event-ID": "{msg}:done"}},
	}
	convs := map[string]string{"his conversation": his.ConversationID, "her ended answer's": hers.ConversationID,
		"her running answer's": running.ConversationID}
	answers := map[string]string{"ended": hers.MessageID, "running": running.MessageID}
	for _, p := range probes {
		for where, conv := range convs {
			ask := func(msg string) string { return e.sseProbe(bob, p.method, p.path, p.body, p.header, conv, msg) }
			unknown := ask(persistence.NewID())
			for state, msg := range answers {
				if got := ask(msg); got != unknown {
					t.Errorf("%s, in %s, naming alice's %s answer:\n  %s\nbut naming an unknown id:\n  %s",
						p.name, where, state, got, unknown)
				}
			}
		}
	}
	if th := e.thread(t, alice, running.ConversationID); th.ActiveMessageID != running.MessageID {
		t.Errorf("alice's running answer stopped by bob's requests (active %q)", th.ActiveMessageID)
	}
	if n := e.fake.Requests(); n != requests {
		t.Errorf("upstream called %d times for another user's ids", n-requests)
	}
	// (Alice's running answer writes its checkpoints meanwhile: the
	// threads are compared instead of the store's write count.)
	for _, th := range []struct {
		who  user
		conv string
	}{{alice, hers.ConversationID}, {bob, his.ConversationID}} {
		if got := e.thread(t, th.who, th.conv); len(got.Messages) != 2 {
			t.Errorf("conversation %s has %d messages, want 2", th.conv, len(got.Messages))
		}
	}
}

// sseProbe asks path as u with {conv} and {msg} replaced in the path, body
// and header values, and returns the status, the content type and the
// body (of an event stream, its first event), msg written as ID.
func (e *env) sseProbe(u user, method, path, body string, header map[string]string, conv, msg string) string {
	fill := strings.NewReplacer("{conv}", conv, "{msg}", msg).Replace
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, e.srv.URL+fill(path), strings.NewReader(fill(body)))
	req.Header.Set("Authorization", "Bearer "+u.Token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, fill(v))
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "error: " + err.Error()
	}
	defer res.Body.Close()
	var b strings.Builder
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() && (sc.Text() != "" || b.Len() == 0) { // an event stream: its first event
		b.WriteString(sc.Text() + "\n")
	}
	return fmt.Sprintf("%d %s %s", res.StatusCode, res.Header.Get("Content-Type"), strings.ReplaceAll(b.String(), msg, "ID"))
}
