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

// TestGroupCommitIsolatesFailures: transactions committed together stay
// separate: one caller's failure (a duplicate client message id) rolls back
// only its own changes, and every other caller's changes are stored when
// its call returns.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, owner, convID := openForInsert(t)
	u, c := persistence.User{ID: owner}, persistence.Conversation{ID: convID}
	const n = 200
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("client-%d", i)
			if i%3 == 0 {
				id = "client-dup" // all but the first of these are duplicates
			}
			m := persistence.Message{ConversationID: c.ID, OwnerID: u.ID, Role: persistence.RoleUser,
				Content: fmt.Sprint("message ", i), Status: persistence.StatusComplete, ClientMessageID: id}
			errs[i] = s.InsertMessage(ctx, &m)
			if errs[i] == nil {
				if _, err := s.Message(ctx, u.ID, m.ID); err != nil {
					t.Errorf("message %d not readable after its insert returned: %v", i, err)
				}
			}
		})
	}
	wg.Wait()
	ok, dup := 0, 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, persistence.ErrDuplicate) && i%3 == 0:
			dup++
		default:
			t.Errorf("insert %d: %v", i, err)
		}
	}
	msgs, err := s.Messages(ctx, u.ID, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantDup := (n+2)/3 - 1
	if dup != wantDup || ok != n-wantDup || len(msgs) != ok {
		t.Fatalf("%d stored, %d inserts succeeded, %d duplicates refused; want %d, %d, %d",
			len(msgs), ok, dup, n-wantDup, n-wantDup, wantDup)
	}
}

// TestWriteAfterClose: a write after Close fails at once instead of waiting
// for a committer that is gone.
func TestWriteAfterClose(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Open(ctx, Options{Path: filepath.Join(t.TempDir(), "chatd.db")})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	u := persistence.User{Email: "late@example.test", Name: "L", PasswordHash: "x"}
	if err := s.CreateUser(ctx, &u); !errors.Is(err, errStoreClosed) {
		t.Fatalf("CreateUser after Close: %v, want %v", err, errStoreClosed)
	}
}

// TestGroupRerunReportsOnce: when a transaction of a group fails, the
// committer runs the group again in savepoints; what the others report
// is what one run found (ApplyMessageUpdates names each skipped id once),
// and their changes are stored once.
func TestGroupRerunReportsOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, owner, conv := openForInsert(t)
	const n = 60
	answers := make([]persistence.Message, n)
	for i := range answers {
		answers[i] = persistence.Message{ConversationID: conv, OwnerID: owner, Role: persistence.RoleAssistant,
			Model: "m", Status: persistence.StatusStreaming}
		if err := s.InsertMessage(ctx, &answers[i]); err != nil {
			t.Fatal(err)
		}
	}
	unknown := persistence.NewID()
	var wg sync.WaitGroup
	skipped := make([][]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			skipped[i], errs[i] = s.ApplyMessageUpdates(ctx, []persistence.MessageUpdate{
				{ID: answers[i].ID, Append: "x"}, {ID: unknown, Append: "y"}})
		})
		wg.Go(func() { // fails: every one of these repeats one client id
			m := persistence.Message{ConversationID: conv, OwnerID: owner, Role: persistence.RoleUser,
				Content: "q", Status: persistence.StatusComplete, ClientMessageID: "same"}
			_ = s.InsertMessage(ctx, &m)
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || len(skipped[i]) != 1 || skipped[i][0] != unknown {
			t.Fatalf("update %d: skipped %v, err %v; want only %s, once", i, skipped[i], errs[i], unknown)
		}
		m, err := s.Message(ctx, owner, answers[i].ID)
		if err != nil || m.Content != "x" {
			t.Fatalf("answer %d holds %q (%v), want the append applied once", i, m.Content, err)
		}
	}
}
