package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"chatd/persistence"
)

// TestWritesTheDatabaseCannotTake: a write refused because the disk is
// full (SQLITE_FULL; a max_page_count reached stands in for it) or because
// another process holds the database's write lock past the busy timeout
// (SQLITE_BUSY) wraps persistence.ErrUnavailable, the driver's error kept
// in the chain, whether the store maps the error itself (a message's
// insert, a conversation's creation) or not (a message's interruption):
// the API answers it 503 unavailable with Retry-After. Before, these were
// plain driver errors, answered 500 internal.
func TestWritesTheDatabaseCannotTake(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		opts  Options
		block func(t *testing.T, s *Store) (unblock func())
		code  int // the driver's primary result code
	}{
		{"disk full", Options{}, fillDatabase, sqlite3.SQLITE_FULL},
		{"locked by another process", Options{BusyTimeout: 20 * time.Millisecond}, lockElsewhere, sqlite3.SQLITE_BUSY},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s, owner, conv := openWithConversation(t, tt.opts)
			answer := persistence.Message{ConversationID: conv, OwnerID: owner, Role: persistence.RoleAssistant,
				Model: "m", Status: persistence.StatusStreaming}
			if err := s.InsertMessage(ctx, &answer); err != nil {
				t.Fatal(err)
			}
			unblock := tt.block(t, s)
			large := strings.Repeat("a long message ", 8<<10)
			writes := map[string]func() error{
				"insert a message": func() error {
					m := persistence.Message{ConversationID: conv, OwnerID: owner, Role: persistence.RoleUser, Content: large}
					return s.InsertMessage(ctx, &m)
				},
				"create a conversation": func() error {
					c := persistence.Conversation{OwnerID: owner, Model: "m", SystemPrompt: large}
					return s.CreateConversation(ctx, &c)
				},
				"interrupt a message": func() error {
					_, err := s.InterruptMessage(ctx, owner, answer.ID, strings.Repeat("why ", 8<<10), time.Now())
					return err
				},
			}
			for what, write := range writes {
				err := write()
				var se *sqlite.Error
				if !errors.Is(err, persistence.ErrUnavailable) || !errors.As(err, &se) || se.Code()&0xff != tt.code {
					t.Errorf("%s: %v; want persistence.ErrUnavailable holding the driver's code %d", what, err, tt.code)
				}
			}
			unblock()
			for what, write := range writes {
				if err := write(); err != nil {
					t.Errorf("%s once the database takes writes again: %v", what, err)
				}
			}
		})
	}
}

// TestMapErrLeavesOtherErrors: mapErr wraps persistence.ErrUnavailable
// around the driver's errors that say the database cannot take a write
// now, and around no other: not a constraint, not a missing row, not a
// context's end.
func TestMapErrLeavesOtherErrors(t *testing.T) {
	t.Parallel()
	for _, err := range []error{sql.ErrNoRows, context.DeadlineExceeded, context.Canceled, errStoreClosed, errors.New("other")} {
		if got := mapErr(err); errors.Is(got, persistence.ErrUnavailable) {
			t.Errorf("mapErr(%v) = %v; want no ErrUnavailable", err, got)
		}
	}
}

// openWithConversation opens a store with opts and stores a user and a
// conversation of theirs.
func openWithConversation(t *testing.T, opts Options) (s *Store, owner, conv string) {
	t.Helper()
	ctx := context.Background()
	s = openTest(t, opts)
	u := persistence.User{Email: "u@example.test", Name: "U", PasswordHash: "x"}
	if err := s.CreateUser(ctx, &u); err != nil {
		t.Fatal(err)
	}
	c := persistence.Conversation{OwnerID: u.ID, Model: "m"}
	if err := s.CreateConversation(ctx, &c); err != nil {
		t.Fatal(err)
	}
	return s, u.ID, c.ID
}

// fillDatabase makes the writer's database full: no page may be added to
// it (max_page_count at its page count), as on a disk with no room left.
func fillDatabase(t *testing.T, s *Store) (unblock func()) {
	t.Helper()
	var pages int
	if err := s.w.QueryRowContext(context.Background(), "PRAGMA page_count").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	setMaxPages(t, s, pages)
	return func() { setMaxPages(t, s, 1<<30) }
}

// lockElsewhere holds s's database's write lock on a connection of its
// own, as another process (a backup tool, a second server) would.
func lockElsewhere(t *testing.T, s *Store) (unblock func()) {
	t.Helper()
	ctx := context.Background()
	db, err := sql.Open("sqlite", s.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	return func() {
		if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
			t.Fatal(err)
		}
		_ = conn.Close()
	}
}
