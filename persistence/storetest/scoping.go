package storetest

import (
	"testing"
	"time"

	"chatd/persistence"
)

// testMsgOwnerScoping: every owner-scoped read or write of messages,
// given another owner's ids, answers exactly as for an unknown id, and
// changes nothing of the other owner's.
func testMsgOwnerScoping(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	a, b := mkUser(t, s, "alice"), mkUser(t, s, "bob")
	conv := mkConv(t, s, a.ID, "alice's")
	first := mkMsg(t, s, conv, "", persistence.RoleUser, "alice's question")
	answer := mkStreaming(t, s, conv, first.ID, "alice's answer so far")
	bConv := mkConv(t, s, b.ID, "bob's")
	mkMsg(t, s, bConv, "", persistence.RoleUser, "bob's question")

	checks := []struct {
		name string
		call func(owner, conv, msg string) error
	}{
		{"MessagePage", func(owner, conv, _ string) error {
			_, err := s.MessagePage(ctx, owner, conv, persistence.PageQuery{})
			return err
		}},
		{"MessagePage before", func(owner, conv, msg string) error {
			_, err := s.MessagePage(ctx, owner, conv, persistence.PageQuery{Before: msg})
			return err
		}},
		{"MessageOutline", func(owner, conv, _ string) error {
			_, err := s.MessageOutline(ctx, owner, conv)
			return err
		}},
		{"ReadContent", func(owner, _, msg string) error {
			return s.ReadContent(ctx, owner, msg, func(string) error { return nil })
		}},
		{"InterruptMessage", func(owner, _, msg string) error {
			_, err := s.InterruptMessage(ctx, owner, msg, "stolen", time.Time{})
			return err
		}},
		{"SetOmittedMessages", func(owner, _, msg string) error {
			return s.SetOmittedMessages(ctx, owner, msg, 7)
		}},
		{"ReadConversation", func(owner, conv, _ string) error {
			_, _, err := persistence.ReadConversation(ctx, s, owner, conv)
			return err
		}},
	}
	for _, c := range checks {
		wantErr(t, c.name+" of an unknown id", c.call(b.ID, persistence.NewID(), persistence.NewID()), persistence.ErrNotFound)
		wantErr(t, c.name+" as another owner", c.call(b.ID, conv.ID, answer.ID), persistence.ErrNotFound)
		// bob's own conversation with alice's message id.
		if c.name == "MessagePage before" {
			wantErr(t, c.name+" of another owner's message in one's own conversation", c.call(b.ID, bConv.ID, answer.ID), persistence.ErrNotFound)
		}
	}
	_, err := s.ConversationByClientID(ctx, b.ID, conv.ClientID)
	wantErr(t, "ConversationByClientID as another owner", err, persistence.ErrNotFound)
	if ids, err := s.StreamingConversations(ctx, b.ID); err != nil || len(ids) != 0 {
		t.Fatalf("StreamingConversations of bob: %v, %v; want none", ids, err)
	}
	got := getMsg(t, s, a.ID, answer.ID)
	if got.Status != persistence.StatusStreaming || got.OmittedMessages != 0 || got.Error != "" || got.Content != answer.Content {
		t.Fatalf("alice's answer after bob's calls: %+v, want it unchanged", got)
	}
}
