package storetest

import (
	"strings"
	"testing"

	"chatd/persistence"
)

// sharedWord is in the messages of every account testUserDelete makes.
const sharedWord = "capybara"

// account is a user with everything testUserDelete gives them, as stored:
// a chat whose question holds sharedWord, a finished answer, and an answer
// still streaming with appended text; a conversation with a long answer
// still streaming, appended in pieces; and word, a word no other account's
// messages hold, in all of them (never in a title).
type account struct {
	user  persistence.User
	word  string
	convs []persistence.Conversation
	msgs  map[string][]persistence.Message // by conversation id
}

// mkAccount creates an account named name whose messages hold word.
func mkAccount(t *testing.T, s persistence.Store, name, word string) account {
	t.Helper()
	u := mkUser(t, s, name)
	chat := mkConv(t, s, u.ID, name+" chat")
	q := mkMsg(t, s, chat, "", persistence.RoleUser, "tell me of the "+word+" and the "+sharedWord)
	done := mkStreaming(t, s, chat, q.ID, "")
	apply(t, s, persistence.MessageUpdate{ID: done.ID, Append: "The " + word + " digs. "})
	apply(t, s, persistence.MessageUpdate{ID: done.ID, Append: "It rests.", Status: persistence.StatusComplete, FinishReason: "stop"})
	live := mkStreaming(t, s, chat, q.ID, "")
	apply(t, s, persistence.MessageUpdate{ID: live.ID, Append: "Again, the " + word})
	apply(t, s, persistence.MessageUpdate{ID: live.ID, Append: " digs and"})

	long := mkConv(t, s, u.ID, name+" long")
	lq := mkMsg(t, s, long, "", persistence.RoleUser, "write at length")
	la := mkStreaming(t, s, long, lq.ID, "")
	chunk := strings.Repeat(word+" ", 64<<10/(len(word)+1)) // about 64 KB: few writes, for slow servers
	for n := 0; n < persistence.ContentPieceBytes+1000; n += len(chunk) {
		apply(t, s, persistence.MessageUpdate{ID: la.ID, Append: chunk})
	}
	return readAccount(t, s, u, word, chat.ID, long.ID)
}

// readAccount reads back the conversations ids of u and their messages.
func readAccount(t *testing.T, s persistence.Store, u persistence.User, word string, ids ...string) account {
	t.Helper()
	a := account{user: u, word: word, msgs: map[string][]persistence.Message{}}
	for _, id := range ids {
		a.convs = append(a.convs, getConv(t, s, u.ID, id))
		ms, err := s.Messages(testCtx(t), u.ID, id)
		noErr(t, "Messages", err)
		a.msgs[id] = ms
	}
	return a
}

// queries are the searches run over an account whose messages hold word:
// every conversation, those holding word (any case), those holding
// sharedWord.
func queries(word string) []string {
	return []string{"", word, strings.ToUpper(word), sharedWord}
}

// checkAccount fails unless a is stored exactly as it was read, and found
// by its searches: the deletion of another user left it alone.
func checkAccount(t *testing.T, s persistence.Store, a account) {
	t.Helper()
	got, err := s.UserByID(testCtx(t), a.user.ID)
	noErr(t, "UserByID of the user kept", err)
	sameUser(t, got, a.user)
	for _, c := range a.convs {
		sameConv(t, getConv(t, s, a.user.ID, c.ID), c)
		ms, err := s.Messages(testCtx(t), a.user.ID, c.ID)
		noErr(t, "Messages of the user kept", err)
		sameIDs(t, "messages of the user kept", msgIDs(ms), msgIDs(a.msgs[c.ID]))
		for i, m := range ms {
			sameMsg(t, m, a.msgs[c.ID][i])
		}
	}
	all := convIDs(a.convs)
	for _, q := range queries(a.word) {
		want := all
		if q == sharedWord {
			want = all[:1] // the chat
		}
		sameIDSet(t, "search "+q+" of the user kept", convIDs(listAll(t, s, a.user.ID, q, 1)), want)
	}
	streaming, err := s.StreamingConversations(testCtx(t), a.user.ID)
	noErr(t, "StreamingConversations of the user kept", err)
	sameIDSet(t, "streaming conversations of the user kept", streaming, all)
}

// checkGone fails unless nothing of a can be read any more.
func checkGone(t *testing.T, s persistence.Store, a account) {
	t.Helper()
	ctx, id := testCtx(t), a.user.ID
	_, err := s.UserByID(ctx, id)
	wantErr(t, "UserByID after DeleteUser", err, persistence.ErrNotFound)
	_, err = s.UserByEmail(ctx, a.user.Email)
	wantErr(t, "UserByEmail after DeleteUser", err, persistence.ErrNotFound)
	_, err = tokenVersion(ctx, t, s, id)
	wantErr(t, "UserTokenVersion after DeleteUser", err, persistence.ErrNotFound)
	for _, c := range a.convs {
		_, err := s.Conversation(ctx, id, c.ID)
		wantErr(t, "Conversation after DeleteUser", err, persistence.ErrNotFound)
		_, err = s.Messages(ctx, id, c.ID)
		wantErr(t, "Messages after DeleteUser", err, persistence.ErrNotFound)
		for _, m := range a.msgs[c.ID] {
			checkMsgGone(t, s, m)
		}
	}
	checkNothingListed(t, s, id, a.word)
}

// checkNothingListed fails unless owner has no conversation, none found by
// the searches for word, and none streaming.
func checkNothingListed(t *testing.T, s persistence.Store, owner, word string) {
	t.Helper()
	for _, q := range queries(word) {
		sameIDs(t, "search "+q+" after DeleteUser", convIDs(listAll(t, s, owner, q, 10)), nil)
	}
	streaming, err := s.StreamingConversations(testCtx(t), owner)
	noErr(t, "StreamingConversations after DeleteUser", err)
	sameIDs(t, "streaming conversations after DeleteUser", streaming, nil)
}

// checkMsgGone fails unless m can no longer be read by any door.
func checkMsgGone(t *testing.T, s persistence.Store, m persistence.Message) {
	t.Helper()
	ctx := testCtx(t)
	_, err := s.Message(ctx, m.OwnerID, m.ID)
	wantErr(t, "Message after DeleteUser", err, persistence.ErrNotFound)
	_, err = s.MessageByClientID(ctx, m.OwnerID, m.ClientMessageID)
	wantErr(t, "MessageByClientID after DeleteUser", err, persistence.ErrNotFound)
	err = s.ReadContent(ctx, m.OwnerID, m.ID, func(string) error { return nil })
	wantErr(t, "ReadContent after DeleteUser", err, persistence.ErrNotFound)
}

// testUserDelete: DeleteUser removes the user, their conversations and
// messages (finished, streaming with appended text, long), so that no
// read or search finds them, a late update of their answer is skipped,
// and their email is free again; another user is untouched; a second
// DeleteUser is ErrNotFound.
func testUserDelete(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	kept := mkAccount(t, s, "kept", "quokka")
	doomed := mkAccount(t, s, "doomed", "wombat")
	checkAccount(t, s, doomed) // what is deleted is there to begin with

	noErr(t, "DeleteUser", s.DeleteUser(ctx, doomed.user.ID))
	checkGone(t, s, doomed)
	checkAccount(t, s, kept)

	var late []persistence.MessageUpdate
	for _, ms := range doomed.msgs {
		for _, m := range ms {
			late = append(late, persistence.MessageUpdate{ID: m.ID, Append: " late", Status: persistence.StatusComplete})
		}
	}
	skipped := applySkipping(t, s, late...)
	if len(skipped) != len(late) {
		t.Fatalf("updates of deleted messages: %d of %d skipped", len(skipped), len(late))
	}
	checkGone(t, s, doomed)

	again := persistence.User{Email: doomed.user.Email, Name: "again", PasswordHash: "h"}
	noErr(t, "CreateUser with a deleted user's email", s.CreateUser(ctx, &again))
	checkNothingListed(t, s, again.ID, doomed.word)
	wantErr(t, "second DeleteUser", s.DeleteUser(ctx, doomed.user.ID), persistence.ErrNotFound)
	checkAccount(t, s, kept)
	n, err := s.InterruptStreaming(ctx)
	noErr(t, "InterruptStreaming", err)
	if n != 2 {
		t.Fatalf("InterruptStreaming changed %d messages, want the kept user's 2", n)
	}
}

// testUserDeleteUnknown: DeleteUser of an unknown or malformed id, or of
// the id of a conversation or message rather than a user, is ErrNotFound
// and changes nothing; a user without conversations is deleted. (A
// conversation whose owner is no user cannot be made: see
// testConvUnknownOwner.)
func testUserDeleteUnknown(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	kept := mkAccount(t, s, "kept", "quokka")
	ids := append(badIDs(), kept.convs[0].ID, kept.msgs[kept.convs[0].ID][0].ID)
	for _, id := range ids {
		wantErr(t, "DeleteUser("+id+")", s.DeleteUser(ctx, id), persistence.ErrNotFound)
	}
	checkAccount(t, s, kept)

	empty := mkUser(t, s, "empty")
	noErr(t, "DeleteUser of a user without conversations", s.DeleteUser(ctx, empty.ID))
	checkGone(t, s, account{user: empty})
	checkAccount(t, s, kept)
}
