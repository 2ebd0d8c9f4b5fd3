package storetest

import (
	"testing"
	"time"

	"chatd/persistence"
)

func conversationTests() []storeTest {
	return []storeTest{
		{"CreateFillsFields", testConvCreate},
		{"Unknown", testConvUnknown},
		{"UnknownOwner", testConvUnknownOwner},
		{"OwnerScoping", testConvOwnerScoping},
		{"MessageOwnerScoping", testMsgOwnerScoping},
		{"UpdatePatch", testConvUpdatePatch},
		{"UpdateIfTitle", testConvUpdateIfTitle},
		{"UpdateIfTitleRace", testConvUpdateIfTitleRace},
		{"Delete", testConvDelete},
		{"DeleteCutAfterMark", testConvDeleteCutAfterMark},
		{"ClientIDGenerated", testConvClientIDGenerated},
		{"ClientIDRepeated", testConvClientIDRepeated},
	}
}

func testConvCreate(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	u := mkUser(t, s, "creator")
	before := time.Now()
	c := persistence.Conversation{OwnerID: u.ID, Title: "Plans", Model: "gpt-test", SystemPrompt: "You are terse."}
	noErr(t, "CreateConversation", s.CreateConversation(ctx, &c))
	after := time.Now()
	if !persistence.ValidID(c.ID) {
		t.Fatalf("CreateConversation filled ID %q, want a valid id", c.ID)
	}
	checkRecent(t, "CreatedAt", c.CreatedAt, before, after)
	checkRecent(t, "UpdatedAt", c.UpdatedAt, before, after)
	if c.OwnerID != u.ID || c.Title != "Plans" || c.Model != "gpt-test" || c.SystemPrompt != "You are terse." {
		t.Fatalf("CreateConversation changed the given fields: %+v", c)
	}
	sameConv(t, getConv(t, s, u.ID, c.ID), c)

	// Empty fields are allowed and stay empty.
	empty := persistence.Conversation{OwnerID: u.ID}
	noErr(t, "CreateConversation(empty)", s.CreateConversation(ctx, &empty))
	sameConv(t, getConv(t, s, u.ID, empty.ID), empty)
	if empty.ID == c.ID {
		t.Fatalf("two conversations got the same id %s", c.ID)
	}
}

func testConvUnknown(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	u := mkUser(t, s, "owner")
	mkConv(t, s, u.ID, "exists")
	for _, id := range badIDs() {
		_, err := s.Conversation(ctx, u.ID, id)
		wantErr(t, "Conversation("+id+")", err, persistence.ErrNotFound)
		_, err = s.UpdateConversation(ctx, u.ID, id, persistence.ConversationPatch{Title: strPtr("x")})
		wantErr(t, "UpdateConversation("+id+")", err, persistence.ErrNotFound)
		wantErr(t, "DeleteConversation("+id+")", s.DeleteConversation(ctx, u.ID, id), persistence.ErrNotFound)
		_, err = s.Messages(ctx, u.ID, id)
		wantErr(t, "Messages("+id+")", err, persistence.ErrNotFound)
		m := persistence.Message{ConversationID: id, OwnerID: u.ID, Role: persistence.RoleUser, Content: "hi", Status: persistence.StatusComplete}
		wantErr(t, "InsertMessage into "+id, s.InsertMessage(ctx, &m), persistence.ErrNotFound)
	}
}

// testConvOwnerScoping checks that another owner sees A's records exactly
// like unknown ids and cannot change them through any method.
func testConvOwnerScoping(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	a, b := mkUser(t, s, "alice"), mkUser(t, s, "bob")
	conv := mkConv(t, s, a.ID, "alice secret plans")
	msg := mkMsg(t, s, conv, "", persistence.RoleUser, "alice private words")
	conv = getConv(t, s, a.ID, conv.ID)
	bConv := mkConv(t, s, b.ID, "bob's own")

	_, err := s.Conversation(ctx, b.ID, conv.ID)
	wantErr(t, "Conversation as another owner", err, persistence.ErrNotFound)
	_, err = s.UpdateConversation(ctx, b.ID, conv.ID, persistence.ConversationPatch{Title: strPtr("hijacked")})
	wantErr(t, "UpdateConversation as another owner", err, persistence.ErrNotFound)
	wantErr(t, "DeleteConversation as another owner", s.DeleteConversation(ctx, b.ID, conv.ID), persistence.ErrNotFound)
	_, err = s.Messages(ctx, b.ID, conv.ID)
	wantErr(t, "Messages as another owner", err, persistence.ErrNotFound)
	_, err = s.Message(ctx, b.ID, msg.ID)
	wantErr(t, "Message as another owner", err, persistence.ErrNotFound)
	_, err = s.MessageByClientID(ctx, b.ID, msg.ClientMessageID)
	wantErr(t, "MessageByClientID as another owner", err, persistence.ErrNotFound)
	intruder := persistence.Message{ConversationID: conv.ID, OwnerID: b.ID, Role: persistence.RoleUser, Content: "intrusion", Status: persistence.StatusComplete}
	wantErr(t, "InsertMessage into another owner's conversation", s.InsertMessage(ctx, &intruder), persistence.ErrNotFound)

	for _, q := range []string{"", "alice", "private"} {
		got := listAll(t, s, b.ID, q, 100)
		want := []string{bConv.ID}
		if q != "" {
			want = nil
		}
		sameIDs(t, "bob's list with q="+q, convIDs(got), want)
	}

	// Nothing of alice's changed.
	sameConv(t, getConv(t, s, a.ID, conv.ID), conv)
	ms, err := s.Messages(ctx, a.ID, conv.ID)
	noErr(t, "Messages", err)
	if len(ms) != 1 {
		t.Fatalf("alice's conversation has %d messages, want 1", len(ms))
	}
	sameMsg(t, ms[0], msg)
	sameIDs(t, "alice's list", convIDs(listAll(t, s, a.ID, "", 100)), []string{conv.ID})
}

func testConvUpdatePatch(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	u := mkUser(t, s, "patcher")
	orig := mkConv(t, s, u.ID, "Original")
	cases := []struct {
		name  string
		patch persistence.ConversationPatch
		apply func(c *persistence.Conversation)
	}{
		{"nothing", persistence.ConversationPatch{}, func(*persistence.Conversation) {}},
		{"title", persistence.ConversationPatch{Title: strPtr("Renamed")}, func(c *persistence.Conversation) { c.Title = "Renamed" }},
		{"model and prompt", persistence.ConversationPatch{Model: strPtr("other-model"), SystemPrompt: strPtr("Be verbose.")},
			func(c *persistence.Conversation) { c.Model, c.SystemPrompt = "other-model", "Be verbose." }},
		{"empty strings", persistence.ConversationPatch{Title: strPtr(""), SystemPrompt: strPtr("")},
			func(c *persistence.Conversation) { c.Title, c.SystemPrompt = "", "" }},
		{"unicode", persistence.ConversationPatch{Title: strPtr("Ünïcödé 标题 🚀")}, func(c *persistence.Conversation) { c.Title = "Ünïcödé 标题 🚀" }},
	}
	cur := orig
	for _, tc := range cases {
		got, err := s.UpdateConversation(ctx, u.ID, orig.ID, tc.patch)
		noErr(t, "UpdateConversation "+tc.name, err)
		want := cur
		tc.apply(&want)
		if !got.UpdatedAt.After(cur.UpdatedAt) {
			t.Fatalf("%s: UpdatedAt %v did not move past %v", tc.name, got.UpdatedAt, cur.UpdatedAt)
		}
		want.UpdatedAt = got.UpdatedAt
		sameConv(t, got, want)
		sameConv(t, getConv(t, s, u.ID, orig.ID), want)
		cur = want
	}
	sameTime(t, "CreatedAt after updates", cur.CreatedAt, orig.CreatedAt)
}

func testConvDelete(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	u := mkUser(t, s, "deleter")
	doomed := mkConv(t, s, u.ID, "doomed")
	kept := mkConv(t, s, u.ID, "kept")
	m1 := mkMsg(t, s, doomed, "", persistence.RoleUser, "question")
	m2 := mkStreaming(t, s, doomed, m1.ID, "partial answer")
	k1 := mkMsg(t, s, kept, "", persistence.RoleUser, "keep me")

	noErr(t, "DeleteConversation", s.DeleteConversation(ctx, u.ID, doomed.ID))

	_, err := s.Conversation(ctx, u.ID, doomed.ID)
	wantErr(t, "Conversation after delete", err, persistence.ErrNotFound)
	_, err = s.Messages(ctx, u.ID, doomed.ID)
	wantErr(t, "Messages after delete", err, persistence.ErrNotFound)
	for _, m := range []persistence.Message{m1, m2} {
		_, err = s.Message(ctx, u.ID, m.ID)
		wantErr(t, "Message after delete", err, persistence.ErrNotFound)
		_, err = s.MessageByClientID(ctx, u.ID, m.ClientMessageID)
		wantErr(t, "MessageByClientID after delete", err, persistence.ErrNotFound)
	}
	wantErr(t, "second DeleteConversation", s.DeleteConversation(ctx, u.ID, doomed.ID), persistence.ErrNotFound)
	n, err := s.InterruptStreaming(ctx)
	noErr(t, "InterruptStreaming", err)
	if n != 0 {
		t.Fatalf("InterruptStreaming after delete changed %d messages, want 0: the streaming message was not deleted", n)
	}

	// The deleted messages' client ids are free again.
	reuse := persistence.Message{ConversationID: kept.ID, OwnerID: u.ID, Role: persistence.RoleUser,
		Content: "reused id", Status: persistence.StatusComplete, ClientMessageID: m1.ClientMessageID}
	noErr(t, "InsertMessage reusing a deleted client id", s.InsertMessage(ctx, &reuse))

	ms, err := s.Messages(ctx, u.ID, kept.ID)
	noErr(t, "Messages(kept)", err)
	sameIDs(t, "kept messages", msgIDs(ms), []string{k1.ID, reuse.ID})
	sameIDs(t, "list after delete", convIDs(listAll(t, s, u.ID, "", 10)), []string{kept.ID})
	sameIDs(t, "search after delete", convIDs(listAll(t, s, u.ID, "question", 10)), nil)
}
