package storetest

import (
	"fmt"
	"testing"
	"time"

	"chatd/persistence"
)

func messageTests() []storeTest {
	return []storeTest{
		{"InsertFillsFields", testMsgInsertFills},
		{"InsertKeepsGivenIDs", testMsgInsertKeepsIDs},
		{"InsertMovesConversation", testMsgInsertMovesConversation},
		{"InsertTouching", testMsgInsertTouching},
		{"DuplicateClientID", testMsgDuplicateClientID},
		{"DuplicateID", testMsgDuplicateID},
		{"Unknown", testMsgUnknown},
		{"TreeOldestFirst", testMsgTree},
		{"LatestAnswer", testMsgLatestAnswer},
		{"RapidInsertOrder", testMsgRapidOrder},
		{"UsageRoundTrip", testMsgUsage},
		{"EmptyConversation", testMsgEmptyConversation},
		{"StreamingConversations", testMsgStreamingConversations},
		{"StreamingBefore", testMsgStreamingBefore},
	}
}

func testMsgInsertFills(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	u := mkUser(t, s, "writer")
	c := mkConv(t, s, u.ID, "conv")
	before := time.Now()
	m := persistence.Message{ConversationID: c.ID, OwnerID: u.ID, Role: persistence.RoleUser,
		Content: "Hello, world! ünïcødé 👋", Status: persistence.StatusComplete}
	noErr(t, "InsertMessage", s.InsertMessage(ctx, &m))
	after := time.Now()
	if !persistence.ValidID(m.ID) {
		t.Fatalf("InsertMessage filled ID %q, want a valid id", m.ID)
	}
	if m.ClientMessageID == "" {
		t.Fatalf("InsertMessage left ClientMessageID empty")
	}
	checkRecent(t, "CreatedAt", m.CreatedAt, before, after)
	checkRecent(t, "UpdatedAt", m.UpdatedAt, before, after)

	sameMsg(t, getMsg(t, s, u.ID, m.ID), m)
	byClient, err := s.MessageByClientID(ctx, u.ID, m.ClientMessageID)
	noErr(t, "MessageByClientID", err)
	sameMsg(t, byClient, m)

	// Every field round-trips, and generated client ids differ.
	full := persistence.Message{ConversationID: c.ID, OwnerID: u.ID, ParentID: m.ID, Role: persistence.RoleAssistant,
		Content: "partial", Model: "model-x", Status: persistence.StatusError, FinishReason: "length",
		Usage: &persistence.Usage{PromptTokens: 11, CompletionTokens: 22, TotalTokens: 33}, Error: "upstream 502"}
	noErr(t, "InsertMessage(full)", s.InsertMessage(ctx, &full))
	sameMsg(t, getMsg(t, s, u.ID, full.ID), full)
	if full.ClientMessageID == m.ClientMessageID {
		t.Fatalf("two generated client ids are equal: %q", m.ClientMessageID)
	}
}

func testMsgInsertKeepsIDs(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	u := mkUser(t, s, "ids")
	c := mkConv(t, s, u.ID, "conv")
	id := persistence.NewID()
	m := persistence.Message{ID: id, ClientMessageID: "client-given-1", ConversationID: c.ID, OwnerID: u.ID,
		Role: persistence.RoleUser, Content: "x", Status: persistence.StatusComplete}
	noErr(t, "InsertMessage", s.InsertMessage(ctx, &m))
	if m.ID != id || m.ClientMessageID != "client-given-1" {
		t.Fatalf("InsertMessage replaced given ids: %q %q", m.ID, m.ClientMessageID)
	}
	got, err := s.MessageByClientID(ctx, u.ID, "client-given-1")
	noErr(t, "MessageByClientID", err)
	sameMsg(t, got, m)
}

func testMsgInsertMovesConversation(t *testing.T, s persistence.Store) {
	u := mkUser(t, s, "mover")
	c := mkConv(t, s, u.ID, "conv")
	m := mkMsg(t, s, c, "", persistence.RoleUser, "hi")
	got := getConv(t, s, u.ID, c.ID)
	sameTime(t, "conversation UpdatedAt", got.UpdatedAt, m.CreatedAt)
	sameTime(t, "conversation CreatedAt", got.CreatedAt, c.CreatedAt)
	if !got.UpdatedAt.After(c.UpdatedAt) {
		t.Fatalf("conversation UpdatedAt %v did not move past %v", got.UpdatedAt, c.UpdatedAt)
	}
}

func testMsgDuplicateClientID(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	a, b := mkUser(t, s, "alice"), mkUser(t, s, "bob")
	c1, c2 := mkConv(t, s, a.ID, "one"), mkConv(t, s, a.ID, "two")
	first := persistence.Message{ConversationID: c1.ID, OwnerID: a.ID, Role: persistence.RoleUser,
		Content: "first", Status: persistence.StatusComplete, ClientMessageID: "cm-1"}
	noErr(t, "InsertMessage", s.InsertMessage(ctx, &first))
	c1 = getConv(t, s, a.ID, c1.ID)
	c2 = getConv(t, s, a.ID, c2.ID)

	for _, conv := range []persistence.Conversation{c1, c2} {
		dup := persistence.Message{ConversationID: conv.ID, OwnerID: a.ID, Role: persistence.RoleUser,
			Content: "retry", Status: persistence.StatusComplete, ClientMessageID: "cm-1"}
		wantErr(t, "InsertMessage with a used client id", s.InsertMessage(ctx, &dup), persistence.ErrDuplicate)
	}
	// Nothing was stored and no conversation moved.
	ms, err := s.Messages(ctx, a.ID, c1.ID)
	noErr(t, "Messages", err)
	sameIDs(t, "messages after duplicates", msgIDs(ms), []string{first.ID})
	sameMsg(t, ms[0], first)
	ms, err = s.Messages(ctx, a.ID, c2.ID)
	noErr(t, "Messages", err)
	sameIDs(t, "other conversation after duplicate", msgIDs(ms), nil)
	sameConv(t, getConv(t, s, a.ID, c1.ID), c1)
	sameConv(t, getConv(t, s, a.ID, c2.ID), c2)
	got, err := s.MessageByClientID(ctx, a.ID, "cm-1")
	noErr(t, "MessageByClientID", err)
	sameMsg(t, got, first)

	// Another owner may use the same client id.
	cb := mkConv(t, s, b.ID, "bob's")
	other := persistence.Message{ConversationID: cb.ID, OwnerID: b.ID, Role: persistence.RoleUser,
		Content: "bob's first", Status: persistence.StatusComplete, ClientMessageID: "cm-1"}
	noErr(t, "InsertMessage(same client id, other owner)", s.InsertMessage(ctx, &other))
	gotB, err := s.MessageByClientID(ctx, b.ID, "cm-1")
	noErr(t, "MessageByClientID(bob)", err)
	sameMsg(t, gotB, other)
	gotA, err := s.MessageByClientID(ctx, a.ID, "cm-1")
	noErr(t, "MessageByClientID(alice)", err)
	sameMsg(t, gotA, first)
}

func testMsgDuplicateID(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	u := mkUser(t, s, "dupid")
	c := mkConv(t, s, u.ID, "conv")
	m := mkMsg(t, s, c, "", persistence.RoleUser, "original")
	dup := persistence.Message{ID: m.ID, ConversationID: c.ID, OwnerID: u.ID, Role: persistence.RoleUser,
		Content: "impostor", Status: persistence.StatusComplete}
	wantErr(t, "InsertMessage with a used id", s.InsertMessage(ctx, &dup), persistence.ErrDuplicate)
	sameMsg(t, getMsg(t, s, u.ID, m.ID), m)
}

func testMsgUnknown(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	u := mkUser(t, s, "unknown")
	c := mkConv(t, s, u.ID, "conv")
	mkMsg(t, s, c, "", persistence.RoleUser, "exists")
	for _, id := range badIDs() {
		_, err := s.Message(ctx, u.ID, id)
		wantErr(t, "Message("+id+")", err, persistence.ErrNotFound)
	}
	_, err := s.MessageByClientID(ctx, u.ID, "never-used")
	wantErr(t, "MessageByClientID(unknown)", err, persistence.ErrNotFound)

	// A malformed ParentID names no message: ErrNotFound, nothing stored.
	// (A well-formed one is not looked up.)
	for _, parent := range badIDs()[1:] {
		if parent == "" {
			continue // no parent: a conversation's first message
		}
		m := persistence.Message{ConversationID: c.ID, OwnerID: u.ID, ParentID: parent, Role: persistence.RoleAssistant,
			Content: "orphan", Status: persistence.StatusComplete, ClientMessageID: "orphan-" + parent}
		wantErr(t, "InsertMessage with ParentID "+parent, s.InsertMessage(ctx, &m), persistence.ErrNotFound)
		_, err = s.MessageByClientID(ctx, u.ID, m.ClientMessageID)
		wantErr(t, "MessageByClientID of a message refused for its ParentID "+parent, err, persistence.ErrNotFound)
	}
}

func testMsgTree(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	u := mkUser(t, s, "brancher")
	c := mkConv(t, s, u.ID, "tree")
	other := mkConv(t, s, u.ID, "other")
	mkMsg(t, s, other, "", persistence.RoleUser, "elsewhere")

	q1 := mkMsg(t, s, c, "", persistence.RoleUser, "question")
	a1 := mkMsg(t, s, c, q1.ID, persistence.RoleAssistant, "answer")
	a1b := mkMsg(t, s, c, q1.ID, persistence.RoleAssistant, "regenerated answer")
	q2 := mkMsg(t, s, c, a1.ID, persistence.RoleUser, "follow-up")
	q2b := mkMsg(t, s, c, a1.ID, persistence.RoleUser, "edited follow-up")
	a2 := mkStreaming(t, s, c, q2b.ID, "streaming")
	root2 := mkMsg(t, s, c, "", persistence.RoleUser, "edited first question")
	want := []persistence.Message{q1, a1, a1b, q2, q2b, a2, root2}

	got, err := s.Messages(ctx, u.ID, c.ID)
	noErr(t, "Messages", err)
	sameIDs(t, "Messages order", msgIDs(got), msgIDs(want))
	checkMsgOrder(t, got)
	for i := range want {
		sameMsg(t, got[i], want[i])
	}
}

func testMsgRapidOrder(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	u := mkUser(t, s, "rapid")
	c := mkConv(t, s, u.ID, "rapid")
	var want []string
	parent := ""
	for i := range 60 {
		role := persistence.RoleUser
		if i%2 == 1 {
			role = persistence.RoleAssistant
		}
		m := mkMsg(t, s, c, parent, role, fmt.Sprintf("message %d", i))
		parent = m.ID
		want = append(want, m.ID)
	}
	got, err := s.Messages(ctx, u.ID, c.ID)
	noErr(t, "Messages", err)
	checkMsgOrder(t, got)
	sameIDs(t, "messages inserted one after another", msgIDs(got), want)
}

func testMsgUsage(t *testing.T, s persistence.Store) {
	u := mkUser(t, s, "usage")
	c := mkConv(t, s, u.ID, "usage")
	cases := []struct {
		name  string
		usage *persistence.Usage
	}{
		{"nil", nil},
		{"set", &persistence.Usage{PromptTokens: 1, CompletionTokens: 2, TotalTokens: 3}},
		{"large", &persistence.Usage{PromptTokens: 1 << 30, CompletionTokens: 123456, TotalTokens: 1<<30 + 123456}},
	}
	for _, tc := range cases {
		m := persistence.Message{ConversationID: c.ID, OwnerID: u.ID, Role: persistence.RoleAssistant,
			Content: tc.name, Status: persistence.StatusComplete, Usage: tc.usage}
		noErr(t, "InsertMessage "+tc.name, s.InsertMessage(testCtx(t), &m))
		got := getMsg(t, s, u.ID, m.ID)
		if (got.Usage == nil) != (tc.usage == nil) || got.Usage != nil && *got.Usage != *tc.usage {
			t.Fatalf("%s: usage = %v, want %v", tc.name, got.Usage, tc.usage)
		}
	}
}

func testMsgEmptyConversation(t *testing.T, s persistence.Store) {
	u := mkUser(t, s, "empty")
	c := mkConv(t, s, u.ID, "empty")
	ms, err := s.Messages(testCtx(t), u.ID, c.ID)
	noErr(t, "Messages", err)
	if len(ms) != 0 {
		t.Fatalf("new conversation has %d messages", len(ms))
	}
}

// testMsgLatestAnswer checks LatestAnswer: the newest answer to a message
// (a regenerated one over the first), whole (a streaming one with its
// text so far), and none for a message without an answer, for another
// owner, another conversation, a bad id or a deleted conversation.
func testMsgLatestAnswer(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	u, other := mkUser(t, s, "asker"), mkUser(t, s, "other")
	c, c2 := mkConv(t, s, u.ID, "conv"), mkConv(t, s, u.ID, "another")
	q1 := mkMsg(t, s, c, "", persistence.RoleUser, "question")
	mkMsg(t, s, c, q1.ID, persistence.RoleAssistant, "first answer")
	a2 := mkMsg(t, s, c, q1.ID, persistence.RoleAssistant, "regenerated answer")
	q2 := mkMsg(t, s, c, a2.ID, persistence.RoleUser, "follow-up")
	mkMsg(t, s, c2, "", persistence.RoleUser, "elsewhere")
	got, err := s.LatestAnswer(ctx, u.ID, c.ID, q1.ID)
	noErr(t, "LatestAnswer", err)
	sameMsg(t, got, a2)
	running := mkStreaming(t, s, c, q2.ID, "so far")
	got, err = s.LatestAnswer(persistence.WithLatest(ctx), u.ID, c.ID, q2.ID)
	noErr(t, "LatestAnswer of a streaming answer", err)
	sameMsg(t, got, running)
	for _, tc := range []struct{ what, owner, conv, parent string }{
		{"a message answered by a user message", u.ID, c.ID, a2.ID},
		{"another owner's", other.ID, c.ID, q1.ID},
		{"in another conversation", u.ID, c2.ID, q1.ID},
		{"a bad owner", "not-an-id", c.ID, q1.ID},
		{"a bad conversation", u.ID, "not-an-id", q1.ID},
		{"a bad parent", u.ID, c.ID, "not-an-id"},
		{"an unknown parent", u.ID, c.ID, persistence.NewID()},
	} {
		_, err := s.LatestAnswer(ctx, tc.owner, tc.conv, tc.parent)
		wantErr(t, "LatestAnswer of "+tc.what, err, persistence.ErrNotFound)
	}
	noErr(t, "DeleteConversation", s.DeleteConversation(ctx, u.ID, c.ID))
	_, err = s.LatestAnswer(ctx, u.ID, c.ID, q1.ID)
	wantErr(t, "LatestAnswer in a deleted conversation", err, persistence.ErrNotFound)
}
