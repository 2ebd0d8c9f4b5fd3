package sqlite

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"chatd/persistence"
)

// TestGroupFullDiskKeepsTheCause: when a write of a group fills the
// database (a low max_page_count stands in for a full disk), SQLite rolls
// the group's whole transaction back by itself, and the committer's own
// rollback then fails (no transaction is active). Every write of the group
// is reported failed with the cause: the one that filled the database
// holds the driver's SQLITE_FULL, the other names it, and both wrap
// persistence.ErrUnavailable (the database cannot take writes). The rollback's
// failure ("SQL logic error") replaced every error, so logs, /readyz and
// failed sends did not say the disk was full.
func TestGroupFullDiskKeepsTheCause(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, owner, conv := openForInsert(t)
	answers := make([]persistence.Message, 2)
	for i := range answers {
		answers[i] = persistence.Message{ConversationID: conv, OwnerID: owner, Role: persistence.RoleAssistant,
			Model: "m", Status: persistence.StatusStreaming}
		if err := s.InsertMessage(ctx, &answers[i]); err != nil {
			t.Fatal(err)
		}
	}
	answer := answers[0]
	var pages int
	if err := s.w.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	setMaxPages(t, s, pages+2)
	release := holdCommitter(t, s)
	small := make(chan error, 1)
	go func() {
		_, err := s.ApplyMessageUpdates(ctx, []persistence.MessageUpdate{{ID: answer.ID, Append: "small"}})
		small <- err
	}()
	waitQueued(t, s, 1)
	large := make(chan error, 1)
	go func() {
		// A plain INSERT (no trigger, no SELECT): SQLite answers
		// SQLITE_FULL by rolling the whole transaction back.
		u := persistence.User{Email: "large@example.test", Name: strings.Repeat("a large name ", 64<<10), PasswordHash: "x"}
		large <- s.CreateUser(ctx, &u)
	}()
	waitQueued(t, s, 2)
	release()
	smallErr, largeErr := <-small, <-large
	var se *sqlite.Error
	if !errors.As(largeErr, &se) || se.Code()&0xff != sqlite3.SQLITE_FULL {
		t.Errorf("the write that filled the database: %v; want the driver's SQLITE_FULL", largeErr)
	}
	if smallErr == nil || !strings.Contains(smallErr.Error(), "database or disk is full") {
		t.Errorf("the other write of the group: %v; want it failed, naming the full database", smallErr)
	}
	// Both failed as the database could not take writes: 503, not 500.
	if !errors.Is(largeErr, persistence.ErrUnavailable) || !errors.Is(smallErr, persistence.ErrUnavailable) {
		t.Errorf("the group's errors: %v and %v; want both persistence.ErrUnavailable", largeErr, smallErr)
	}
	setMaxPages(t, s, 1<<30)
	if m, err := s.Message(ctx, owner, answer.ID); err != nil || m.Content != "" && smallErr != nil {
		t.Fatalf("answer after its append was reported failed: %q, %v; want it unchanged", m.Content, err)
	}
	if _, err := s.ApplyMessageUpdates(ctx, []persistence.MessageUpdate{{ID: answer.ID, Append: "again"}}); err != nil {
		t.Fatalf("a write once there is room: %v", err)
	}
}

// setMaxPages sets the writer's max_page_count (a connection's setting:
// the writer has exactly one).
func setMaxPages(t *testing.T, s *Store, n int) {
	t.Helper()
	if _, err := s.w.ExecContext(context.Background(), "PRAGMA max_page_count = "+strconv.Itoa(n)); err != nil {
		t.Fatal(err)
	}
}
