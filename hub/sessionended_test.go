package hub

import (
	"context"
	"errors"
	"testing"

	"chatd/hub/protocol"
	"chatd/persistence"
	"chatd/persistence/batch"
)

// TestSendForDeletedAccount: a send that creates its conversation for a
// user the store no longer has (the account was deleted after the send's
// session check; the store refuses the conversation with
// persistence.ErrUnknownOwner) fails with ErrSessionEnded, code
// unauthorized, which the transports answer as a revoked session, never
// as an internal error. Nothing is stored, acked or announced, and
// nothing goes upstream. Over the SQLite store.
func TestSendForDeletedAccount(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, gone := sqliteWithUser(t, "gone@example.test")
	if err := st.DeleteUser(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	model := &fakeModel{script: say("never")}
	writer := batch.New(st, batch.Options{})
	h := New(Options{Store: st, Writer: writer, Model: model})
	runHub(t, h, func(ctx context.Context) { _ = writer.Close(ctx) })

	for _, tc := range []struct{ name, user string }{
		{"a deleted account", gone.ID},
		{"an id no account ever had", persistence.NewID()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sub := newSub(tc.user)
			h.Register(sub)
			defer h.Detach(sub)
			_, err := h.Send(ctx, sub, tc.user, SendRequest{Content: "after the deletion", ClientMessageID: "c1"})
			var pe *protocol.Error
			if !errors.Is(err, ErrSessionEnded) || !errors.As(err, &pe) || pe.Code != protocol.CodeUnauthorized {
				t.Fatalf("Send = %v, want ErrSessionEnded (code %s)", err, protocol.CodeUnauthorized)
			}
			page, err := st.ListConversations(ctx, tc.user, persistence.ListQuery{})
			if err != nil || len(page.Conversations) != 0 {
				t.Fatalf("conversations stored: %+v, %v; want none", page.Conversations, err)
			}
			if _, err := st.MessageByClientID(ctx, tc.user, "c1"); !errors.Is(err, persistence.ErrNotFound) {
				t.Fatalf("the user message: %v, want none stored", err)
			}
			sub.quiet(t)
		})
	}
	if n := model.requestCount(); n != 0 {
		t.Fatalf("%d upstream requests, want none", n)
	}
}
