package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"

	"chatd/persistence"
)

// testConvUnknownOwner: CreateConversation for an owner id no user has (a
// well-formed unknown one, malformed ones, a deleted user's) is
// ErrUnknownOwner, stores nothing and leaves the conversation given as it
// was, with an id of its own or one the store would pick.
func testConvUnknownOwner(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	gone := mkUser(t, s, "gone")
	mkConv(t, s, gone.ID, "before the deletion")
	noErr(t, "DeleteUser", s.DeleteUser(ctx, gone.ID))
	kept := mkUser(t, s, "kept")
	cases := []struct{ name, owner string }{{"deleted user", gone.ID}}
	for _, id := range badIDs() {
		cases = append(cases, struct{ name, owner string }{"unknown id " + id, id})
	}
	for _, tc := range cases {
		for _, given := range []string{persistence.NewID(), ""} {
			c := persistence.Conversation{ID: given, OwnerID: tc.owner, Title: "orphan", Model: "test-model"}
			want := c
			err := s.CreateConversation(ctx, &c)
			wantErr(t, "CreateConversation for "+tc.name, err, persistence.ErrUnknownOwner)
			if !reflect.DeepEqual(c, want) {
				t.Fatalf("CreateConversation for %s changed the conversation to %+v", tc.name, c)
			}
			if given != "" {
				_, err := s.Conversation(ctx, tc.owner, given)
				wantErr(t, "Conversation refused for "+tc.name, err, persistence.ErrNotFound)
				m := persistence.Message{ConversationID: given, OwnerID: tc.owner, Role: persistence.RoleUser,
					Content: "hi", Status: persistence.StatusComplete}
				wantErr(t, "InsertMessage into a conversation refused", s.InsertMessage(ctx, &m), persistence.ErrNotFound)
			}
		}
		sameIDs(t, "conversations of "+tc.name, convIDs(listAll(t, s, tc.owner, "", 10)), nil)
	}
	mkConv(t, s, kept.ID, "a user's own") // the check refuses no one else
	if n := len(listAll(t, s, kept.ID, "", 10)); n != 1 {
		t.Fatalf("the user kept has %d conversations, want 1", n)
	}
}

// testUserDeleteRacingWrites: DeleteUser runs while workers create
// conversations for the user and store messages in them, as requests
// that passed their session check just before the deletion do (on this
// instance or another). Every create either succeeds or is refused with
// ErrUnknownOwner, and is always refused once DeleteUser returned; every
// message insert succeeds or is refused with ErrNotFound (its
// conversation is gone); nothing else happens. Afterwards nothing of the
// user is left, whatever succeeded, and another user is untouched.
func testUserDeleteRacingWrites(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	const workers = 8
	kept := mkUser(t, s, "kept")
	keptConv := mkConv(t, s, kept.ID, "kept")
	doomed := mkUser(t, s, "doomed")

	var deleted atomic.Bool // set once DeleteUser returned
	var started, done sync.WaitGroup
	started.Add(workers)
	logs := make([]raceLog, workers)
	for i := range workers {
		done.Go(func() { logs[i] = raceWriter(ctx, s, doomed.ID, i, sync.OnceFunc(started.Done), &deleted) })
	}
	started.Wait() // every worker stored a conversation with its messages
	err := s.DeleteUser(ctx, doomed.ID)
	deleted.Store(true)
	done.Wait()
	noErr(t, "DeleteUser while conversations are created", err)

	created := 0
	for i, l := range logs {
		if l.err != nil {
			t.Errorf("worker %d: %v", i, l.err)
		}
		created += l.created
		for _, id := range l.convs {
			_, err := s.Conversation(ctx, doomed.ID, id)
			wantErr(t, "Conversation after DeleteUser", err, persistence.ErrNotFound)
			_, err = s.Messages(ctx, doomed.ID, id)
			wantErr(t, "Messages after DeleteUser", err, persistence.ErrNotFound)
		}
		for _, m := range l.msgs {
			checkMsgGone(t, s, m)
		}
	}
	if created < workers {
		t.Fatalf("%d conversations created before the deletion, want at least %d", created, workers)
	}
	checkNothingListed(t, s, doomed.ID, "racing")
	sameConv(t, getConv(t, s, kept.ID, keptConv.ID), keptConv)
}

// raceLog is what one worker of testUserDeleteRacingWrites tried: every
// conversation and message it asked for (stored or refused), how many
// conversations were created, and the first outcome the contract forbids.
type raceLog struct {
	convs   []string
	msgs    []persistence.Message
	created int
	err     error
}

// raceWriter creates conversations of owner, each with a question and a
// streaming answer that receives text, until a create is refused; it calls
// started once its first conversation and messages are stored. The
// messages go in one InsertMessages call on every other round where the
// store has it, else one InsertMessage each, as the hub stores a send.
func raceWriter(ctx context.Context, s persistence.Store, owner string, worker int, started func(),
	deleted *atomic.Bool,
) (l raceLog) {
	defer started() // also when the first round fails
	for round := 0; ; round++ {
		after := deleted.Load()
		c := persistence.Conversation{ID: persistence.NewID(), OwnerID: owner,
			Title: fmt.Sprintf("racing %d.%d", worker, round), Model: "test-model"}
		l.convs = append(l.convs, c.ID)
		err := s.CreateConversation(ctx, &c)
		switch {
		case errors.Is(err, persistence.ErrUnknownOwner) && round == 0:
			l.err = errors.New("the first create was refused, before DeleteUser ran")
			return l
		case errors.Is(err, persistence.ErrUnknownOwner):
			return l
		case err != nil:
			l.err = fmt.Errorf("CreateConversation: %w, want success or ErrUnknownOwner", err)
			return l
		case after:
			l.err = errors.New("CreateConversation succeeded after DeleteUser returned")
			return l
		}
		l.created++
		if err := raceMessages(ctx, s, c, round%2 == 0, &l); err != nil {
			l.err = err
			return l
		}
		if round == 0 {
			started()
		}
	}
}

// raceMessages stores a question and a streaming answer in c, then
// appends to the answer; a refusal because c is gone is expected.
func raceMessages(ctx context.Context, s persistence.Store, c persistence.Conversation, together bool, l *raceLog) error {
	q := persistence.Message{ID: persistence.NewID(), ClientMessageID: persistence.NewID(), ConversationID: c.ID,
		OwnerID: c.OwnerID, Role: persistence.RoleUser, Content: "racing question", Status: persistence.StatusComplete}
	a := persistence.Message{ID: persistence.NewID(), ClientMessageID: persistence.NewID(), ConversationID: c.ID,
		OwnerID: c.OwnerID, ParentID: q.ID, Role: persistence.RoleAssistant, Model: "test-model",
		Status: persistence.StatusStreaming}
	l.msgs = append(l.msgs, q, a)
	var err error
	if mi, ok := s.(persistence.MessagesInserter); ok && together {
		err = mi.InsertMessages(ctx, &q, &a)
	} else if err = s.InsertMessage(ctx, &q); err == nil {
		err = s.InsertMessage(ctx, &a)
	}
	if errors.Is(err, persistence.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("InsertMessage: %w, want success or ErrNotFound", err)
	}
	up := persistence.MessageUpdate{ID: a.ID, Append: "racing answer"}
	if _, err := s.ApplyMessageUpdates(ctx, []persistence.MessageUpdate{up}); err != nil {
		return fmt.Errorf("ApplyMessageUpdates: %w", err)
	}
	return nil
}
