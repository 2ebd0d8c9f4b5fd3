package sqlite

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"chatd/persistence"
)

// wantNotFound fails unless err is ErrNotFound; what names the call.
func wantNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("%s of a conversation being deleted: %v, want ErrNotFound", what, err)
	}
}

// checkConvGone fails unless f's conversation, being deleted, is gone for
// its owner: every read of it and of its message m (still stored) answers
// as for an unknown id, the list and its search leave it out (word is in
// each of its messages), and an update of it or a message sent into it is
// refused.
func checkConvGone(t *testing.T, f searchFixture, m persistence.Message, word string) {
	t.Helper()
	ctx, s, owner, id := context.Background(), f.s, f.user.ID, f.conv.ID
	_, err := s.Conversation(ctx, owner, id)
	wantNotFound(t, "Conversation", err)
	// (Or finds a new conversation that took its client id.)
	if c, err := s.ConversationByClientID(ctx, owner, f.conv.ClientID); err != nil || c.ID == id {
		wantNotFound(t, "ConversationByClientID", cmpErr(err, errors.New("found it")))
	}
	_, _, err = s.ConversationWithMessages(ctx, owner, id)
	wantNotFound(t, "ConversationWithMessages", err)
	_, err = s.Messages(ctx, owner, id)
	wantNotFound(t, "Messages", err)
	_, err = s.MessageOutline(ctx, owner, id)
	wantNotFound(t, "MessageOutline", err)
	_, err = s.MessagePage(ctx, owner, id, persistence.PageQuery{})
	wantNotFound(t, "MessagePage", err)
	_, err = s.MessagePage(ctx, owner, id, persistence.PageQuery{Before: m.ID})
	wantNotFound(t, "MessagePage before a message", err)
	_, err = s.Message(ctx, owner, m.ID)
	wantNotFound(t, "Message", err)
	_, err = s.MessageByClientID(ctx, owner, m.ClientMessageID)
	wantNotFound(t, "MessageByClientID", err)
	wantNotFound(t, "ReadContent", s.ReadContent(ctx, owner, m.ID, func(string) error { return nil }))
	title := "renamed"
	_, err = s.UpdateConversation(ctx, owner, id, persistence.ConversationPatch{Title: &title})
	wantNotFound(t, "UpdateConversation", err)
	sent := persistence.Message{ConversationID: id, OwnerID: owner, Role: persistence.RoleUser,
		Content: "a late " + word, Status: persistence.StatusComplete}
	wantNotFound(t, "InsertMessage", s.InsertMessage(ctx, &sent))
	wantNotFound(t, "a second DeleteConversation", s.DeleteConversation(ctx, owner, id))
	streaming, err := s.StreamingConversations(ctx, owner)
	if err != nil || slices.Contains(streaming, id) {
		t.Errorf("StreamingConversations = %v, %v; want it without the conversation being deleted", streaming, err)
	}
	for _, q := range []string{"", word} {
		page, err := s.ListConversations(ctx, owner, persistence.ListQuery{Search: q})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page.Conversations {
			if c.ID == id {
				t.Errorf("ListConversations (search %q) lists the conversation being deleted", q)
			}
		}
	}
}

// TestDeleteConversationInSteps: a conversation's deletion marks it, then
// deletes its messages in writes of at most Options.deleteStep each, and
// other writes commit between two of them (another user's send, and the
// owner's own into another conversation, made from the deletion's step
// hook with a short time limit): a conversation of many messages does not
// hold the only writer for the whole deletion. From the mark on it is
// gone for its owner (checkConvGone, after every step: its search finds
// nothing throughout) and its client id is free; in the end nothing of it
// is left (rows, the streaming answer's chunks, index entries), and
// everything else stays.
func TestDeleteConversationInSteps(t *testing.T) {
	t.Parallel()
	const step = 10
	ctx := context.Background()
	s := openTest(t, Options{deleteStep: step})
	kept := newSearchFixtureFor(t, s, "kept@example.test")
	kept.insert(t, "the okapi is shy", persistence.StatusComplete)
	doomed := newSearchFixtureFor(t, s, "owner@example.test")
	other := doomed
	other.conv = persistence.Conversation{OwnerID: doomed.user.ID, Model: "m"}
	if err := s.CreateConversation(ctx, &other.conv); err != nil {
		t.Fatal(err)
	}
	other.insert(t, "a numbat digs", persistence.StatusComplete)
	for i := range 35 {
		doomed.insert(t, fmt.Sprintf("wombat %d", i), persistence.StatusComplete)
	}
	last := doomed.insert(t, "", persistence.StatusStreaming) // the 36th, deleted last (oldest first)
	appendChunk(t, s, last.ID, "a wombat streams")
	waitIndexed(t, s)
	if !doomed.found(t, "wombat") {
		t.Fatal("the conversation is not found by its word before the delete")
	}
	left := func() int64 {
		return readInt(t, s, `SELECT count(*) FROM messages WHERE conversation_id = ?`, doomed.conv.ID)
	}

	before, steps, sends := left(), 0, 0
	hook := persistence.WithDeleteHook(ctx, func(done string) {
		switch done {
		case stepConvMarked:
			if n := left(); n != 36 {
				t.Errorf("%d messages left after the mark, want all 36", n)
			}
			// Its client id is free at once.
			again := persistence.Conversation{OwnerID: doomed.user.ID, Model: "m", ClientID: doomed.conv.ClientID}
			if err := s.CreateConversation(ctx, &again); err != nil || again.ID == doomed.conv.ID {
				t.Errorf("CreateConversation with the client id of a conversation being deleted: %+v, %v", again, err)
			}
		case stepConvMsgsDeleted:
			steps++
			now := left()
			if gone := before - now; gone > step || (gone == 0 && now > 0) {
				t.Errorf("a step deleted %d messages, %d left: want 1 to %d", gone, now, step)
			}
			before = now
		default:
			return
		}
		if left() > 0 {
			checkConvGone(t, doomed, last, "wombat")
		}
		// Other writes, between two steps: they commit at once.
		sendCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		for _, f := range []searchFixture{kept, other} {
			m := persistence.Message{ConversationID: f.conv.ID, OwnerID: f.user.ID, Role: persistence.RoleUser,
				Content: fmt.Sprintf("okapi send %d", sends), Status: persistence.StatusComplete}
			if err := s.InsertMessage(sendCtx, &m); err != nil {
				t.Errorf("a send after the step %q: %v", done, err)
			}
		}
		sends++
	})
	if err := s.DeleteConversation(hook, doomed.user.ID, doomed.conv.ID); err != nil {
		t.Fatal(err)
	}
	if steps != 4 {
		t.Errorf("the deletion took %d steps of messages, want 4 (36 by %d)", steps, step)
	}
	if n := readInt(t, s, `SELECT count(*) FROM conversations WHERE id = ?`, doomed.conv.ID); n != 0 || left() != 0 {
		t.Errorf("%d rows and %d messages of the conversation left", n, left())
	}
	if n := readInt(t, s, `SELECT count(*) FROM message_chunks`); n != 0 {
		t.Errorf("%d chunks left, want none", n)
	}
	for _, f := range []searchFixture{kept, other} {
		if n := readInt(t, s, `SELECT count(*) FROM messages WHERE conversation_id = ?`, f.conv.ID); n != int64(1+sends) {
			t.Errorf("%d messages in the conversation of %s kept, want %d", n, f.user.Email, 1+sends)
		}
	}
	wantIndexed(t, s, 2*(1+sends), "after the delete")
	if n := readInt(t, s, `SELECT count(*) FROM search.message_fts WHERE message_fts MATCH '`+ftsTrigrams("wombat")+`'`); n != 0 {
		t.Errorf("the index holds %d entries with the deleted conversation's word", n)
	}
	if !kept.found(t, "okapi") || !other.found(t, "numbat") || doomed.found(t, "wombat") {
		t.Error("after the delete, a conversation kept lost its hits, or the deleted one is found")
	}
}

// TestCutConvDeletionFinished: a conversation's deletion cut off after
// its mark or after a step of its messages (its context ended: a request
// gone, a shutdown) returns nil and leaves the marked row with what is
// left of its messages, which no read reaches; the next Open finishes it,
// and so does FinishDeletions (the periodic sweep's), which counts it.
// Nothing of it is left then, in the store or the search index, and a
// second look finds nothing.
func TestCutConvDeletionFinished(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		cut    string // the step after which the deletion is cut
		left   int64  // messages left after the cut
		reopen bool   // finished by the next Open, else by FinishDeletions
	}{
		{"after the mark, finished at the next open", stepConvMarked, 25, true},
		{"after a step, finished at the next open", stepConvMsgsDeleted, 15, true},
		{"after a step, finished by the sweep", stepConvMsgsDeleted, 15, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			opts := Options{Path: filepath.Join(t.TempDir(), "chatd.db"), DeletionSweep: -1, deleteStep: 10,
				Logger: slog.New(slog.DiscardHandler)}
			s, err := Open(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			first, closed := s, false
			t.Cleanup(func() {
				if !closed {
					_ = first.Close(ctx)
				}
			})
			kept := newSearchFixtureFor(t, s, "kept@example.test")
			kept.insert(t, "the okapi is shy", persistence.StatusComplete)
			doomed := newSearchFixtureFor(t, s, "owner@example.test")
			var m persistence.Message
			for i := range 25 {
				m = doomed.insert(t, fmt.Sprintf("wombat %d", i), persistence.StatusComplete)
			}
			cutCtx, cancel := context.WithCancel(ctx)
			defer cancel()
			cutCtx = persistence.WithDeleteHook(cutCtx, func(done string) {
				if done == tc.cut {
					cancel()
				}
			})
			if err := s.DeleteConversation(cutCtx, doomed.user.ID, doomed.conv.ID); err != nil {
				t.Fatalf("DeleteConversation cut after %q: %v, want nil (the mark is written)", tc.cut, err)
			}
			marked := `SELECT count(*) FROM conversations WHERE id = ? AND deleting_at IS NOT NULL`
			msgs := `SELECT count(*) FROM messages WHERE conversation_id = ?`
			if n, left := readInt(t, s, marked, doomed.conv.ID), readInt(t, s, msgs, doomed.conv.ID); n != 1 || left != tc.left {
				t.Fatalf("after the cut: %d marked rows, %d messages; want 1, %d", n, left, tc.left)
			}
			checkConvGone(t, doomed, m, "wombat")

			if tc.reopen {
				closed = true
				if err := first.Close(ctx); err != nil {
					t.Fatal(err)
				}
				s = openTest(t, opts)
			} else {
				if n, err := s.FinishDeletions(ctx); err != nil || n != 1 {
					t.Fatalf("FinishDeletions = %d, %v; want 1, nil", n, err)
				}
			}
			if n, left := readInt(t, s, `SELECT count(*) FROM conversations WHERE id = ?`, doomed.conv.ID),
				readInt(t, s, msgs, doomed.conv.ID); n != 0 || left != 0 {
				t.Errorf("once finished: %d rows, %d messages of the conversation left", n, left)
			}
			if n, err := s.FinishDeletions(ctx); err != nil || n != 0 {
				t.Errorf("a second FinishDeletions = %d, %v; want nothing left to finish", n, err)
			}
			wantIndexed(t, s, 1, "once finished (the okapi)")
			kept.s, doomed.s = s, s
			if !kept.found(t, "okapi") || doomed.found(t, "wombat") {
				t.Error("once finished, the conversation kept lost its hit, or the deleted one is found")
			}
		})
	}
}
