package hub

import (
	"context"
	"errors"
	"testing"

	"chatd/hub/protocol"
	"chatd/persistence"
)

// TestSendParentMustBeAnAnswer: a send whose parentMessageId names a user
// message that was answered is refused invalid_field and stores nothing
// (two user turns in a row would go into the prompt); an answer is taken (a
// follow-up, an edit's parent), and so is a user message left without an
// answer (none stored), which a send without parentMessageId follows too,
// also once a message follows it (an edit of that one names it).
func TestSendParentMustBeAnAnswer(t *testing.T) {
	t.Parallel()
	feed := make(tap)
	close(feed) // every answer ends at once, empty
	e := newEnv(t, Options{}, feed.script)
	sub := newSub("u")
	first := e.send(t, sub, "hi")
	sub.textUntilDone(t, first.MessageID, 0)
	lone := &persistence.Message{ConversationID: first.ConversationID, OwnerID: "u", ParentID: first.MessageID,
		Role: persistence.RoleUser, Content: "unanswered", Status: persistence.StatusComplete}
	if err := e.store.InsertMessage(context.Background(), lone); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		ms, err := e.store.Messages(context.Background(), "u", first.ConversationID)
		if err != nil {
			t.Fatal(err)
		}
		return len(ms)
	}

	before := count()
	var perr *protocol.Error
	_, err := e.h.Send(context.Background(), sub, "u", SendRequest{ConversationID: first.ConversationID,
		Content: "again", ParentMessageID: &first.UserMessageID})
	if !errors.As(err, &perr) || perr.Code != protocol.CodeInvalidField || perr.Message != "parentMessageId must name an answer" {
		t.Fatalf("an answered user message as parent: %v, want invalid_field", err)
	}
	if n := count(); n != before {
		t.Fatalf("the refused send stored %d messages", n-before)
	}

	for _, parent := range []string{first.MessageID, lone.ID, lone.ID} {
		res, err := e.h.Send(context.Background(), sub, "u", SendRequest{ConversationID: first.ConversationID,
			Content: "follow-up", ParentMessageID: &parent})
		if err != nil {
			t.Fatalf("parent %s: %v", parent, err)
		}
		sub.textUntilDone(t, res.MessageID, 0)
		if got := e.stored(t, res.UserMessageID).ParentID; got != parent {
			t.Fatalf("the new message's parent is %s, want %s", got, parent)
		}
	}
}
