package hub

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"chatd/hub/protocol"
	"chatd/llm"
	"chatd/persistence"
)

// holdUnlessQuick answers a prompt ending in "quick" at once; any other
// answer runs until it is stopped.
func holdUnlessQuick(ctx context.Context, req llm.Request, onDelta func(string)) (llm.Result, error) {
	if strings.HasSuffix(req.Messages[len(req.Messages)-1].Content, "quick") {
		onDelta("done")
		return llm.Result{FinishReason: "stop"}, nil
	}
	<-ctx.Done()
	return llm.Result{}, context.Cause(ctx)
}

// rateLimited reports whether err is the refusal of a request past the
// user's answers at once.
func rateLimited(err error) bool {
	var pe *protocol.Error
	return errors.As(err, &pe) && pe.Code == protocol.CodeRateLimited
}

// conversationOf creates a conversation of user in e's store.
func (e *env) conversationOf(t *testing.T, user string) persistence.Conversation {
	t.Helper()
	c := persistence.Conversation{OwnerID: user, Model: "fake"}
	if err := e.store.CreateConversation(context.Background(), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// userMessages counts the stored user messages.
func (e *env) userMessages() int {
	e.store.mu.Lock()
	defer e.store.mu.Unlock()
	n := 0
	for _, m := range e.store.msgs {
		if m.Role == persistence.RoleUser {
			n++
		}
	}
	return n
}

// TestAnswersPerUserBounded: of many sends of one user at once, half into
// conversations of theirs and half creating one, MaxAnswersPerUser start
// and the others are refused with rate_limited, storing no message and
// leaving no conversation behind; another user's send still starts, and
// once one of the user's answers ends, the user's next send does. Every
// slot is given back once the answers end.
func TestAnswersPerUserBounded(t *testing.T) {
	t.Parallel()
	const bound, sends = 3, 24
	e := newEnv(t, Options{MaxAnswersPerUser: bound}, holdUnlessQuick)
	var existing []string
	for range sends / 2 {
		existing = append(existing, e.conversationOf(t, "u").ID)
	}
	ctx := context.Background()
	results := make([]Result, sends)
	errs := make([]error, sends)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range sends {
		wg.Go(func() {
			req := SendRequest{Content: fmt.Sprint("hold ", i), ClientMessageID: fmt.Sprint("k", i)}
			if i%2 == 0 {
				req.ConversationID = existing[i/2]
			}
			<-start
			results[i], errs[i] = e.h.Send(ctx, newSub("u"), "u", req)
		})
	}
	close(start)
	wg.Wait()
	var started []Result
	for i, err := range errs {
		switch {
		case err == nil:
			started = append(started, results[i])
		case !rateLimited(err):
			t.Fatalf("send %d: %v, want an answer or rate_limited", i, err)
		}
	}
	if len(started) != bound {
		t.Fatalf("%d of %d parallel sends started an answer, want %d", len(started), sends, bound)
	}
	if n := e.userMessages(); n != bound {
		t.Fatalf("%d user messages stored, want %d: a refused send stored its message", n, bound)
	}
	created := 0
	for _, r := range started {
		if !slices.Contains(existing, r.ConversationID) {
			created++
		}
	}
	if n := len(e.store.conversationIDs()); n != len(existing)+created {
		t.Fatalf("%d conversations stored, want %d and the %d that answer: a refused send left its conversation", n, len(existing), created)
	}

	other, err := e.h.Send(ctx, nil, "v", SendRequest{Content: "another user"})
	if err != nil {
		t.Fatalf("another user's send: %v", err)
	}
	free := slices.IndexFunc(existing, func(id string) bool {
		return !slices.ContainsFunc(started, func(r Result) bool { return r.ConversationID == id })
	})
	if _, err := e.h.Send(ctx, nil, "u", SendRequest{ConversationID: existing[free], Content: "one more"}); !rateLimited(err) {
		t.Fatalf("a send past the bound: %v, want rate_limited", err)
	}
	if err := e.h.Cancel(ctx, "u", started[0].ConversationID); err != nil {
		t.Fatal(err)
	}
	next, err := e.h.Send(ctx, nil, "u", SendRequest{ConversationID: started[0].ConversationID, Content: "after one ended"})
	if err != nil {
		t.Fatalf("a send once one answer ended: %v", err)
	}

	for _, id := range []string{next.ConversationID, started[1].ConversationID, started[2].ConversationID, other.ConversationID} {
		e.h.CancelConversation(map[bool]string{true: "v", false: "u"}[id == other.ConversationID], id)
	}
	if n, m := e.h.answers.count("u"), e.h.answers.count("v"); n != 0 || m != 0 {
		t.Fatalf("answers counted after they all ended: u %d, v %d", n, m)
	}
}

// TestAnswersPerUserRegenerate: a regenerate counts as a send does. At the
// bound, one replacing an answer running here starts (the stopped answer
// gives back its slot), one in a conversation with nothing running is
// refused with rate_limited and stores nothing, and the running answers go
// on. An answer that fails to start gives its slot back.
func TestAnswersPerUserRegenerate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{MaxAnswersPerUser: 2}, holdUnlessQuick)
	ctx := context.Background()
	sub := newSub("u")
	idle := e.send(t, sub, "quick")
	sub.textUntilDone(t, idle.MessageID, 0)
	a := e.send(t, nil, "hold a")
	b := e.send(t, nil, "hold b")

	_, err := e.h.Regenerate(ctx, nil, "u", RegenerateRequest{ConversationID: idle.ConversationID})
	if !rateLimited(err) {
		t.Fatalf("a regenerate past the bound: %v, want rate_limited", err)
	}
	if msgs, _ := e.store.Messages(ctx, "u", idle.ConversationID); len(msgs) != 2 {
		t.Fatalf("%d messages after a refused regenerate, want 2", len(msgs))
	}
	for _, r := range []Result{a, b} {
		if m := e.stored(t, r.MessageID); m.Status != persistence.StatusStreaming {
			t.Fatalf("answer %s %s after a refused regenerate, want streaming", r.MessageID, m.Status)
		}
	}
	again, err := e.h.Regenerate(ctx, nil, "u", RegenerateRequest{ConversationID: a.ConversationID})
	if err != nil {
		t.Fatalf("a regenerate replacing a running answer at the bound: %v", err)
	}
	if m := e.stored(t, a.MessageID); m.Status != persistence.StatusCancelled {
		t.Fatalf("replaced answer %s, want cancelled", m.Status)
	}
	if n := e.h.answers.count("u"); n != 2 {
		t.Fatalf("%d answers counted, want 2", n)
	}

	e.h.CancelConversation("u", again.ConversationID)
	e.store.mu.Lock()
	e.store.refuse = func(m *persistence.Message) error {
		if m.Role == persistence.RoleAssistant {
			return persistence.ErrNotFound
		}
		return nil
	}
	e.store.mu.Unlock()
	if _, err := e.h.Regenerate(ctx, nil, "u", RegenerateRequest{ConversationID: idle.ConversationID}); err == nil {
		t.Fatal("a regenerate whose answer's insert failed started")
	}
	if n := e.h.answers.count("u"); n != 1 {
		t.Fatalf("%d answers counted after an answer failed to start, want 1", n)
	}
}
