package storetest

import (
	"testing"

	"chatd/persistence"
)

// testMsgInsertTouching: a store that returns the conversation with its
// inserts (persistence.TouchingInserter) returns it as stored after the
// insert: a rename stored before it is in it, and its UpdatedAt is the
// one the insert moved it to. An unknown conversation is ErrNotFound. The
// SQLite and MongoDB stores both implement it.
func testMsgInsertTouching(t *testing.T, s persistence.Store) {
	ti, ok := s.(persistence.TouchingInserter)
	if !ok {
		return // optional: the hub reads such a store's conversation again
	}
	ctx := testCtx(t)
	u := mkUser(t, s, "toucher")
	c := mkConv(t, s, u.ID, "before")
	renamed, err := s.UpdateConversation(ctx, u.ID, c.ID, persistence.ConversationPatch{Title: strPtr("after")})
	noErr(t, "UpdateConversation", err)
	user := persistence.Message{ConversationID: c.ID, OwnerID: u.ID, Role: persistence.RoleUser, Content: "hi",
		Status: persistence.StatusComplete}
	answer := persistence.Message{ConversationID: c.ID, OwnerID: u.ID, Role: persistence.RoleAssistant,
		Status: persistence.StatusStreaming}
	got, err := ti.InsertTouching(ctx, &user, &answer)
	noErr(t, "InsertTouching", err)
	if got.Title != "after" || !got.UpdatedAt.After(renamed.UpdatedAt) || got.UpdatedAt.Before(user.CreatedAt) {
		t.Fatalf("InsertTouching returned %+v, want the title after and UpdatedAt moved past %v, at least %v",
			got, renamed.UpdatedAt, user.CreatedAt)
	}
	sameConv(t, getConv(t, s, u.ID, c.ID), got)

	_, err = ti.InsertTouching(ctx, &persistence.Message{ConversationID: persistence.NewID(), OwnerID: u.ID,
		Role: persistence.RoleUser, Content: "x", Status: persistence.StatusComplete})
	wantErr(t, "InsertTouching into an unknown conversation", err, persistence.ErrNotFound)
}
