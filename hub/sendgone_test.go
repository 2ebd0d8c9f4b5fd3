package hub

import (
	"context"
	"errors"
	"testing"

	"chatd/hub/protocol"
	"chatd/persistence"
)

// TestSendIntoConversationGone: a send or regenerate whose insert the
// store refuses because the conversation was deleted after the request
// read it (another tab or instance: persistence.ErrNotFound) is refused
// not_found, as when its read finds it gone; one refused because the
// account was deleted (persistence.ErrUnknownOwner) ends the session
// (ErrSessionEnded). Nothing is left reserved: the user's answers are
// counted down and a send into another conversation runs. Before, the
// store's error went to the transport as it was: a WebSocket frame
// answered internal (logged at ERROR), an SSE request 500.
func TestSendIntoConversationGone(t *testing.T) {
	t.Parallel()
	requests := []struct {
		name string
		do   func(e *env, convID string) error
	}{
		{"send", func(e *env, convID string) error {
			_, err := e.h.Send(context.Background(), newSub("u"), "u", SendRequest{ConversationID: convID, Content: "again"})
			return err
		}},
		{"regenerate", func(e *env, convID string) error {
			_, err := e.h.Regenerate(context.Background(), newSub("u"), "u", RegenerateRequest{ConversationID: convID})
			return err
		}},
	}
	gone := []struct {
		name     string
		arm      func(e *env) // before the request
		wantCode string
	}{
		{"conversation deleted", func(e *env) {
			e.store.beforeInsert = func(m *persistence.Message) {
				// A send's second message finds it deleted already.
				if err := e.store.DeleteConversation(context.Background(), "u", m.ConversationID); err != nil &&
					!errors.Is(err, persistence.ErrNotFound) {
					t.Error(err)
				}
			}
		}, protocol.CodeNotFound},
		{"account deleted", func(e *env) {
			e.store.mu.Lock()
			e.store.refuse = func(*persistence.Message) error { return persistence.ErrUnknownOwner }
			e.store.mu.Unlock()
		}, protocol.CodeUnauthorized},
	}
	for _, r := range requests {
		for _, g := range gone {
			t.Run(r.name+"/"+g.name, func(t *testing.T) {
				t.Parallel()
				e := newEnv(t, Options{}, say("answer"))
				sub := newSub("u")
				first := e.send(t, sub, "question")
				sub.textUntilDone(t, first.MessageID, 0)
				g.arm(e)
				err := r.do(e, first.ConversationID)
				var pe *protocol.Error
				if !errors.As(err, &pe) || pe.Code != g.wantCode {
					t.Fatalf("%s: %v, want a protocol error %s", r.name, err, g.wantCode)
				}
				if g.wantCode == protocol.CodeUnauthorized && !errors.Is(err, ErrSessionEnded) {
					t.Fatalf("%s: %v, want ErrSessionEnded", r.name, err)
				}
				if n := e.h.answers.count("u"); n != 0 {
					t.Fatalf("%d answers counted after the refusal, want 0", n)
				}
				e.store.beforeInsert = nil
				e.store.mu.Lock()
				e.store.refuse = nil
				e.store.mu.Unlock()
				next := e.send(t, sub, "elsewhere")
				sub.textUntilDone(t, next.MessageID, 0)
			})
		}
	}
}
