package storetest

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"chatd/persistence"
)

// modelFeatureTests cover what reasoning models and per-conversation
// parameters added: reasoning text appended beside the content, the count
// of prompt messages left out, and sampling parameters on conversations.
func modelFeatureTests() []storeTest {
	return []storeTest{
		{"ReasoningAppendsApart", testReasoningAppends},
		{"ReasoningInsertedAndOmitted", testReasoningInserted},
		{"ParamsCreateAndPatch", testParamsRoundTrip},
	}
}

func testReasoningAppends(t *testing.T, s persistence.Store) {
	u, _, m := streamingFixture(t, s, "")
	var content, reasoning strings.Builder
	pieces := []struct{ text, reasoning string }{
		{"", "Let me think"}, {"", " about 🙂 "}, {"", "中文."}, {"The answer", ""}, {" is 42.", ""},
		{" Also", " (late thought)"},
	}
	for _, p := range pieces {
		content.WriteString(p.text)
		reasoning.WriteString(p.reasoning)
		apply(t, s, persistence.MessageUpdate{ID: m.ID, Append: p.text, AppendReasoning: p.reasoning, At: time.Now()})
	}
	// Two updates of one message in one batch keep their order.
	apply(t, s, persistence.MessageUpdate{ID: m.ID, AppendReasoning: " a"},
		persistence.MessageUpdate{ID: m.ID, AppendReasoning: "b", Status: persistence.StatusComplete})
	reasoning.WriteString(" ab")
	got := getMsg(t, s, u.ID, m.ID)
	if got.Content != content.String() || got.Reasoning != reasoning.String() {
		t.Fatalf("content %q reasoning %q, want %q and %q", got.Content, got.Reasoning, content.String(), reasoning.String())
	}
	if got.Status != persistence.StatusComplete {
		t.Fatalf("status %q, want complete", got.Status)
	}
}

func testReasoningInserted(t *testing.T, s persistence.Store) {
	u := mkUser(t, s, "reasoner")
	c := mkConv(t, s, u.ID, "reasoning")
	q := mkMsg(t, s, c, "", persistence.RoleUser, "question")
	m := persistence.Message{ConversationID: c.ID, OwnerID: u.ID, ParentID: q.ID, Role: persistence.RoleAssistant,
		Content: "answer", Reasoning: "thought", OmittedMessages: 7, Status: persistence.StatusComplete}
	noErr(t, "InsertMessage", s.InsertMessage(testCtx(t), &m))
	got := getMsg(t, s, u.ID, m.ID)
	sameMsg(t, got, m)
	plain := getMsg(t, s, u.ID, q.ID)
	if plain.Reasoning != "" || plain.OmittedMessages != 0 {
		t.Fatalf("a plain message reads back with reasoning %q, omitted %d", plain.Reasoning, plain.OmittedMessages)
	}
}

func testParamsRoundTrip(t *testing.T, s persistence.Store) {
	u := mkUser(t, s, "tuner")
	temp, topP, maxTok := 0.7, 0.9, 512
	want := &persistence.Params{Temperature: &temp, TopP: &topP, MaxTokens: &maxTok, Stop: []string{"\n\n", "END"}}
	c := persistence.Conversation{OwnerID: u.ID, Title: "tuned", Params: want}
	noErr(t, "CreateConversation", s.CreateConversation(testCtx(t), &c))
	if got := getConv(t, s, u.ID, c.ID); !reflect.DeepEqual(got.Params, want) {
		t.Fatalf("params read back %+v, want %+v", got.Params, want)
	}
	if got := mkConv(t, s, u.ID, "plain"); got.Params != nil {
		t.Fatalf("a conversation without params reads back %+v", got.Params)
	}

	zero := 0.0
	patch := &persistence.Params{Temperature: &zero}
	got, err := s.UpdateConversation(testCtx(t), u.ID, c.ID, persistence.ConversationPatch{Params: patch})
	noErr(t, "UpdateConversation", err)
	if !reflect.DeepEqual(got.Params, patch) || !reflect.DeepEqual(getConv(t, s, u.ID, c.ID).Params, patch) {
		t.Fatalf("after patch params %+v, want only temperature 0", got.Params)
	}
	title := "renamed"
	got, err = s.UpdateConversation(testCtx(t), u.ID, c.ID, persistence.ConversationPatch{Title: &title})
	noErr(t, "UpdateConversation", err)
	if !reflect.DeepEqual(got.Params, patch) {
		t.Fatalf("a title patch changed params to %+v", got.Params)
	}
	got, err = s.UpdateConversation(testCtx(t), u.ID, c.ID, persistence.ConversationPatch{Params: &persistence.Params{}})
	noErr(t, "UpdateConversation", err)
	if got.Params != nil || getConv(t, s, u.ID, c.ID).Params != nil {
		t.Fatalf("clearing params left %+v", got.Params)
	}
}
