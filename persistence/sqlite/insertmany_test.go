package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"chatd/persistence"
)

// openForInsert opens a store with one user and one conversation.
func openForInsert(t *testing.T) (*Store, string, string) {
	t.Helper()
	ctx := context.Background()
	s, err := Open(ctx, Options{Path: filepath.Join(t.TempDir(), "chatd.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(ctx) })
	u := persistence.User{Email: "i@example.test", Name: "I", PasswordHash: "x"}
	if err := s.CreateUser(ctx, &u); err != nil {
		t.Fatal(err)
	}
	c := persistence.Conversation{OwnerID: u.ID, Model: "m"}
	if err := s.CreateConversation(ctx, &c); err != nil {
		t.Fatal(err)
	}
	return s, u.ID, c.ID
}

// TestInsertMessagesAllOrNone: a send's user message and answer row go in
// one call; either both are stored, in order, or (on any failure of
// either) neither is and the caller's messages are left unchanged.
func TestInsertMessagesAllOrNone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, owner, conv := openForInsert(t)
	taken := persistence.Message{ConversationID: conv, OwnerID: owner, Role: persistence.RoleUser,
		Content: "earlier", Status: persistence.StatusComplete, ClientMessageID: "taken"}
	if err := s.InsertMessage(ctx, &taken); err != nil {
		t.Fatal(err)
	}
	pair := func(clientID, answerConv, answerID string) (*persistence.Message, *persistence.Message) {
		user := &persistence.Message{ID: persistence.NewID(), ConversationID: conv, OwnerID: owner, Role: persistence.RoleUser,
			Content: "question", Status: persistence.StatusComplete, ClientMessageID: clientID}
		answer := &persistence.Message{ID: answerID, ConversationID: answerConv, OwnerID: owner, ParentID: user.ID,
			Role: persistence.RoleAssistant, Model: "m", Status: persistence.StatusStreaming}
		return user, answer
	}
	for _, tc := range []struct {
		name     string
		clientID string
		conv     string // of the answer
		answerID string
		want     error
	}{
		{name: "both stored", clientID: "fresh", conv: conv},
		{name: "the user message's client id is taken", clientID: "taken", conv: conv, want: persistence.ErrDuplicate},
		{name: "the answer's conversation is unknown", clientID: "second", conv: persistence.NewID(), want: persistence.ErrNotFound},
		{name: "the answer's id is taken", clientID: "third", conv: conv, answerID: taken.ID, want: persistence.ErrDuplicate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, err := s.Messages(ctx, owner, conv)
			if err != nil {
				t.Fatal(err)
			}
			user, answer := pair(tc.clientID, tc.conv, tc.answerID)
			userCopy, answerCopy := *user, *answer
			err = s.InsertMessages(ctx, user, answer)
			after, lerr := s.Messages(ctx, owner, conv)
			if lerr != nil {
				t.Fatal(lerr)
			}
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("InsertMessages = %v, want %v", err, tc.want)
				}
				if len(after) != len(before) {
					t.Fatalf("%d messages after a failed insert, want %d (nothing stored)", len(after), len(before))
				}
				if user.ID != userCopy.ID || !user.CreatedAt.IsZero() || answer.ID != answerCopy.ID || !answer.CreatedAt.IsZero() {
					t.Fatalf("a failed insert changed the caller's messages: %+v %+v", user, answer)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(after) != len(before)+2 || after[len(after)-2].ID != user.ID || after[len(after)-1].ID != answer.ID {
				t.Fatalf("stored %d messages (was %d), want the user message then the answer last", len(after), len(before))
			}
			if answer.ID == "" || answer.ClientMessageID == "" || !answer.CreatedAt.After(user.CreatedAt) {
				t.Fatalf("answer %+v not filled in after user %+v", answer, user)
			}
			c, err := s.Conversation(ctx, owner, conv)
			if err != nil || !c.UpdatedAt.Equal(answer.CreatedAt) {
				t.Fatalf("conversation updated at %v (%v), want the answer's %v", c.UpdatedAt, err, answer.CreatedAt)
			}
		})
	}
}

// TestInsertMessagesGroupedAllOrNone: pairs inserted concurrently (and so
// committed together by the group committer, which starts over with
// savepoints when one fails) stay all or none each: the pairs whose user
// message repeats a client id, and those whose answer names an unknown
// conversation (refused after their user message was inserted), are
// refused whole; every other pair is stored whole.
func TestInsertMessagesGroupedAllOrNone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, owner, conv := openForInsert(t)
	const n = 120
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			cid, answerConv := fmt.Sprint("client-", i), conv
			switch i % 4 {
			case 0:
				cid = "client-dup" // all but one of these are refused
			case 1:
				if i%8 == 1 {
					answerConv = persistence.NewID() // refused after the user message went in
				}
			}
			user := persistence.Message{ID: persistence.NewID(), ConversationID: conv, OwnerID: owner, Role: persistence.RoleUser,
				Content: fmt.Sprint("q", i), Status: persistence.StatusComplete, ClientMessageID: cid}
			answer := persistence.Message{ConversationID: answerConv, OwnerID: owner, ParentID: user.ID,
				Role: persistence.RoleAssistant, Model: "m", Status: persistence.StatusStreaming}
			errs[i] = s.InsertMessages(ctx, &user, &answer)
		})
	}
	wg.Wait()
	stored := 0
	for i, err := range errs {
		switch {
		case err == nil:
			stored++
		case errors.Is(err, persistence.ErrDuplicate) && i%4 == 0, errors.Is(err, persistence.ErrNotFound) && i%8 == 1:
		default:
			t.Errorf("pair %d: %v", i, err)
		}
	}
	msgs, err := s.Messages(ctx, owner, conv)
	if err != nil {
		t.Fatal(err)
	}
	wantStored := n - n/4 + 1 - n/8
	if stored != wantStored || len(msgs) != 2*stored {
		t.Fatalf("%d pairs stored, %d messages; want %d pairs, %d messages", stored, len(msgs), wantStored, 2*wantStored)
	}
	answers := map[string]bool{}
	for _, m := range msgs {
		if m.Role == persistence.RoleAssistant {
			answers[m.ParentID] = true
		}
	}
	for _, m := range msgs {
		if m.Role == persistence.RoleUser && !answers[m.ID] {
			t.Fatalf("user message %s stored without its answer", m.ID)
		}
	}
}

// writerChanges is the writer connection's total_changes(): the rows its
// statements (and their triggers) inserted, updated or deleted so far.
func writerChanges(t *testing.T, s *Store) int64 {
	t.Helper()
	var n int64
	if err := s.write(context.Background(), func(tx *writeTx) error {
		return tx.tx.QueryRow(`SELECT total_changes()`).Scan(&n)
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestInsertMessagesTouchesConversationOnce: a send's two rows move their
// conversation up with one update, not one per row, and leave it where
// two separate inserts leave it (at the later row's time).
func TestInsertMessagesTouchesConversationOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, owner, conv := openForInsert(t)
	send := func() (user, answer *persistence.Message) {
		user = &persistence.Message{ID: persistence.NewID(), ConversationID: conv, OwnerID: owner, Role: persistence.RoleUser,
			Content: "question", Status: persistence.StatusComplete}
		answer = &persistence.Message{ConversationID: conv, OwnerID: owner, ParentID: user.ID,
			Role: persistence.RoleAssistant, Model: "m", Status: persistence.StatusStreaming}
		return user, answer
	}
	c0 := writerChanges(t, s)
	user, answer := send()
	if err := s.InsertMessage(ctx, user); err != nil {
		t.Fatal(err)
	}
	if err := s.InsertMessage(ctx, answer); err != nil {
		t.Fatal(err)
	}
	c1 := writerChanges(t, s)
	user, answer = send()
	if err := s.InsertMessages(ctx, user, answer); err != nil {
		t.Fatal(err)
	}
	c2 := writerChanges(t, s)
	if two, one := c1-c0, c2-c1; one != two-1 {
		t.Fatalf("one write of both rows changed %d rows, two writes %d: want one update of the conversation fewer", one, two)
	}
	got, err := s.Conversation(ctx, owner, conv)
	if err != nil {
		t.Fatal(err)
	}
	if !got.UpdatedAt.Equal(answer.CreatedAt) {
		t.Fatalf("conversation updated at %v, want the answer's time %v", got.UpdatedAt, answer.CreatedAt)
	}
}
