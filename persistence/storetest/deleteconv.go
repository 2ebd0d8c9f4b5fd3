package storetest

import (
	"context"
	"testing"
	"time"

	"chatd/persistence"
)

// testConvDeleteCutAfterMark: a DeleteConversation cut off right after
// its mark (its context cancelled there: a request's time limit, a
// shutdown) returns nil, and the conversation is gone for its owner from
// then on, though its messages may still be stored: every read of it and
// of its messages answers ErrNotFound (InterruptMessage too), the list and its search leave it
// out, a send into it or an update of it is refused, its client id can be
// taken by a new conversation at once. FinishDeletions then finishes it
// (at least one deletion finished, none left after), and the other
// conversations are untouched.
func testConvDeleteCutAfterMark(t *testing.T, s persistence.Store) {
	ctx, f := testCtx(t), finisher(t, s)
	u := mkUser(t, s, "cutter")
	kept := mkConv(t, s, u.ID, "kept")
	k1 := mkMsg(t, s, kept, "", persistence.RoleUser, "keep the ocelot")
	doomed := persistence.Conversation{OwnerID: u.ID, Title: "doomed", Model: "test-model", ClientID: "doomed-client-id"}
	noErr(t, "CreateConversation", s.CreateConversation(ctx, &doomed))
	q := mkMsg(t, s, doomed, "", persistence.RoleUser, "where is the pangolin")
	a := mkStreaming(t, s, doomed, q.ID, "")
	apply(t, s, persistence.MessageUpdate{ID: a.ID, Append: "The pangolin sleeps"})
	msgs := []persistence.Message{q, a}

	cut, cancel := context.WithCancel(ctx)
	defer cancel()
	var steps []string
	cut = persistence.WithDeleteHook(cut, func(step string) {
		steps = append(steps, step)
		if step == persistence.DeleteStepConversationMarked {
			cancel()
		}
	})
	noErr(t, "DeleteConversation cut after its mark", s.DeleteConversation(cut, u.ID, doomed.ID))
	if len(steps) == 0 || steps[0] != persistence.DeleteStepConversationMarked {
		t.Fatalf("DeleteConversation reported the steps %q, want %q first", steps, persistence.DeleteStepConversationMarked)
	}

	// listed: the owner's conversations, the doomed one left out.
	checkConvGone := func(when string, listed ...string) {
		t.Helper()
		_, err := s.Conversation(ctx, u.ID, doomed.ID)
		wantErr(t, "Conversation "+when, err, persistence.ErrNotFound)
		_, err = s.Messages(ctx, u.ID, doomed.ID)
		wantErr(t, "Messages "+when, err, persistence.ErrNotFound)
		_, err = s.MessagePage(ctx, u.ID, doomed.ID, persistence.PageQuery{})
		wantErr(t, "MessagePage "+when, err, persistence.ErrNotFound)
		_, err = s.MessageOutline(ctx, u.ID, doomed.ID)
		wantErr(t, "MessageOutline "+when, err, persistence.ErrNotFound)
		for _, m := range msgs {
			_, err = s.Message(ctx, u.ID, m.ID)
			wantErr(t, "Message "+when, err, persistence.ErrNotFound)
			_, err = s.MessageByClientID(ctx, u.ID, m.ClientMessageID)
			wantErr(t, "MessageByClientID "+when, err, persistence.ErrNotFound)
			err = s.ReadContent(ctx, u.ID, m.ID, func(string) error { return nil })
			wantErr(t, "ReadContent "+when, err, persistence.ErrNotFound)
			// The hub's sweep and takeover end an orphaned answer with it:
			// one whose conversation is gone is no answer to report.
			_, err = s.InterruptMessage(ctx, u.ID, m.ID, "taken over", time.Now())
			wantErr(t, "InterruptMessage "+when, err, persistence.ErrNotFound)
		}
		sameIDSet(t, "list "+when, convIDs(listAll(t, s, u.ID, "", 10)), listed)
		for _, search := range []string{"pangolin", "doomed"} {
			sameIDs(t, "search "+search+" "+when, convIDs(listAll(t, s, u.ID, search, 10)), nil)
		}
		streaming, err := s.StreamingConversations(ctx, u.ID)
		noErr(t, "StreamingConversations "+when, err)
		sameIDs(t, "streaming conversations "+when, streaming, nil)
	}
	checkConvGone("of a conversation being deleted", kept.ID)
	_, err := s.ConversationByClientID(ctx, u.ID, doomed.ClientID)
	wantErr(t, "ConversationByClientID of a conversation being deleted", err, persistence.ErrNotFound)

	title := "renamed"
	_, err = s.UpdateConversation(ctx, u.ID, doomed.ID, persistence.ConversationPatch{Title: &title})
	wantErr(t, "UpdateConversation of a conversation being deleted", err, persistence.ErrNotFound)
	late := persistence.Message{ConversationID: doomed.ID, OwnerID: u.ID, Role: persistence.RoleUser,
		Content: "sent into it", Status: persistence.StatusComplete}
	wantErr(t, "InsertMessage into a conversation being deleted", s.InsertMessage(ctx, &late), persistence.ErrNotFound)
	wantErr(t, "DeleteConversation of a conversation being deleted",
		s.DeleteConversation(ctx, u.ID, doomed.ID), persistence.ErrNotFound)

	again := persistence.Conversation{OwnerID: u.ID, Title: "again", Model: "test-model", ClientID: doomed.ClientID}
	noErr(t, "CreateConversation with the client id of a conversation being deleted", s.CreateConversation(ctx, &again))
	if again.ID == doomed.ID {
		t.Fatalf("the new conversation has the id of the one being deleted")
	}
	got, err := s.ConversationByClientID(ctx, u.ID, doomed.ClientID)
	noErr(t, "ConversationByClientID of the new conversation", err)
	sameConv(t, got, again)

	n, err := f.FinishDeletions(ctx)
	noErr(t, "FinishDeletions", err)
	if n < 1 {
		t.Fatalf("FinishDeletions finished %d deletions, want the conversation's", n)
	}
	checkConvGone("once its deletion is finished", kept.ID, again.ID)
	got, err = s.ConversationByClientID(ctx, u.ID, doomed.ClientID)
	noErr(t, "ConversationByClientID of the new conversation, the deletion finished", err)
	sameConv(t, got, again)
	if n, err := f.FinishDeletions(ctx); err != nil || n != 0 {
		t.Fatalf("second FinishDeletions = %d, %v; want nothing left to finish", n, err)
	}
	// Its messages are gone: their client ids are free again.
	for _, m := range msgs {
		reuse := persistence.Message{ConversationID: again.ID, OwnerID: u.ID, Role: persistence.RoleUser,
			Content: "reused id", Status: persistence.StatusComplete, ClientMessageID: m.ClientMessageID}
		noErr(t, "InsertMessage reusing a client id of the deleted conversation", s.InsertMessage(ctx, &reuse))
	}
	ms, err := s.Messages(ctx, u.ID, kept.ID)
	noErr(t, "Messages of the kept conversation", err)
	sameIDs(t, "messages of the kept conversation", msgIDs(ms), []string{k1.ID})
}
