package storetest

import (
	"context"
	"reflect"
	"testing"

	"chatd/persistence"
)

func readConversationTests() []storeTest {
	return []storeTest{
		{"SameAsSeparateReads", testReadConvSame},
		{"EmptyConversation", testReadConvEmpty},
		{"NotFoundLikeUnknown", testReadConvNotFound},
	}
}

// readConv is ReadConversation through both doors a store may have: the
// store's own ConversationWithMessages when it has one (the SQLite store),
// and persistence.ReadConversation, which the hub calls. Both must agree.
func readConv(ctx context.Context, t *testing.T, s persistence.Store, owner, id string) (persistence.Conversation, []persistence.Message, error) {
	t.Helper()
	c, ms, err := persistence.ReadConversation(ctx, s, owner, id)
	if cr, ok := s.(persistence.ConversationReader); ok {
		c2, ms2, err2 := cr.ConversationWithMessages(ctx, owner, id)
		if (err == nil) != (err2 == nil) || !reflect.DeepEqual(c, c2) || !reflect.DeepEqual(ms, ms2) {
			t.Fatalf("ReadConversation = %+v, %+v, %v; the store's ConversationWithMessages = %+v, %+v, %v",
				c, ms, err, c2, ms2, err2)
		}
	}
	return c, ms, err
}

// testReadConvSame: the conversation and its messages (every branch, a
// streaming answer with checkpointed text, sampling parameters) read
// together are what Conversation and Messages return apart, and another
// conversation's messages stay out.
func testReadConvSame(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	u := mkUser(t, s, "reader")
	c := mkConv(t, s, u.ID, "read together")
	temp := 0.5
	c, err := s.UpdateConversation(ctx, u.ID, c.ID, persistence.ConversationPatch{Params: &persistence.Params{Temperature: &temp}})
	noErr(t, "UpdateConversation", err)
	other := mkConv(t, s, u.ID, "other")
	mkMsg(t, s, other, "", persistence.RoleUser, "elsewhere")
	q := mkMsg(t, s, c, "", persistence.RoleUser, "question")
	a := mkMsg(t, s, c, q.ID, persistence.RoleAssistant, "answer")
	mkMsg(t, s, c, q.ID, persistence.RoleAssistant, "regenerated answer")
	q2 := mkMsg(t, s, c, a.ID, persistence.RoleUser, "follow-up")
	live := mkStreaming(t, s, c, q2.ID, "streaming ")
	_, err = s.ApplyMessageUpdates(ctx, []persistence.MessageUpdate{{ID: live.ID, Append: "checkpointed"}})
	noErr(t, "ApplyMessageUpdates", err)

	wantConv := getConv(t, s, u.ID, c.ID)
	wantMsgs, err := s.Messages(ctx, u.ID, c.ID)
	noErr(t, "Messages", err)
	gotConv, gotMsgs, err := readConv(ctx, t, s, u.ID, c.ID)
	noErr(t, "ReadConversation", err)
	sameConv(t, gotConv, wantConv)
	if !reflect.DeepEqual(gotConv.Params, wantConv.Params) || gotConv.Params == nil {
		t.Fatalf("params = %+v, want %+v", gotConv.Params, wantConv.Params)
	}
	if len(gotMsgs) != 5 {
		t.Fatalf("read %d messages, want the conversation's 5", len(gotMsgs))
	}
	sameIDs(t, "messages", msgIDs(gotMsgs), msgIDs(wantMsgs))
	for i := range wantMsgs {
		sameMsg(t, gotMsgs[i], wantMsgs[i])
	}
	if got := gotMsgs[len(gotMsgs)-1].Content; got != "streaming checkpointed" {
		t.Fatalf("streaming answer's text = %q, want what it was checkpointed to", got)
	}
}

// testReadConvEmpty: a conversation without messages is found, with an
// empty (not nil) list.
func testReadConvEmpty(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	u := mkUser(t, s, "empty reader")
	c := mkConv(t, s, u.ID, "empty")
	got, ms, err := readConv(ctx, t, s, u.ID, c.ID)
	noErr(t, "ReadConversation", err)
	sameConv(t, got, c)
	if ms == nil || len(ms) != 0 {
		t.Fatalf("messages of a new conversation = %#v, want empty", ms)
	}
}

// testReadConvNotFound: another owner's conversation answers exactly as an
// unknown or malformed id, and as a deleted one: ErrNotFound and nothing
// else.
func testReadConvNotFound(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	owner, stranger := mkUser(t, s, "owner"), mkUser(t, s, "stranger")
	c := mkConv(t, s, owner.ID, "private")
	mkMsg(t, s, c, "", persistence.RoleUser, "secret")
	gone := mkConv(t, s, owner.ID, "deleted")
	mkMsg(t, s, gone, "", persistence.RoleUser, "deleted text")
	noErr(t, "DeleteConversation", s.DeleteConversation(ctx, owner.ID, gone.ID))
	cases := []struct{ what, owner, id string }{
		{"another owner's", stranger.ID, c.ID},
		{"a deleted", owner.ID, gone.ID},
	}
	for _, id := range badIDs() {
		cases = append(cases, struct{ what, owner, id string }{"unknown " + id, owner.ID, id})
	}
	for _, tc := range cases {
		got, ms, err := readConv(ctx, t, s, tc.owner, tc.id)
		wantErr(t, "ReadConversation of "+tc.what+" conversation", err, persistence.ErrNotFound)
		if !reflect.DeepEqual(got, persistence.Conversation{}) || ms != nil {
			t.Fatalf("%s conversation: read %+v and %d messages with the error, want nothing", tc.what, got, len(ms))
		}
	}
}
