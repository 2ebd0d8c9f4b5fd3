package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"chatd/persistence"
	"chatd/persistence/sqlite"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func closeOnCleanup(t *testing.T, s *sqlite.Store) {
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
}

func TestOpenCreatesPrivateFiles(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "a", "b")
	path := filepath.Join(dir, "chatd.db")
	s := openAt(t, path)
	closeOnCleanup(t, s)
	if s.Path() != path {
		t.Fatalf("Path() = %q, want %q", s.Path(), path)
	}
	for name, want := range map[string]os.FileMode{dir: 0o700, path: 0o600} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Fatalf("%s has mode %v, want %v", name, got, want)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	if _, err := sqlite.Open(ctx, sqlite.Options{}); err == nil {
		t.Fatal("Open with an empty path succeeded")
	}
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(notDir, "chatd.db"), Logger: quietLogger()}); err == nil {
		t.Fatal("Open under a regular file succeeded")
	}
	garbage := filepath.Join(t.TempDir(), "garbage.db")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("not a database ", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := sqlite.Open(ctx, sqlite.Options{Path: garbage, Logger: quietLogger()}); err == nil {
		t.Fatal("Open of a file that is not a database succeeded")
	}
}

// TestSchemaVersion checks that Open records the schema version, that
// reopening applies nothing twice, and that a newer database is refused.
func TestSchemaVersion(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "chatd.db")
	for range 2 {
		s := openAt(t, path)
		if err := s.Close(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		if v := userVersion(t, path); v != sqlite.SchemaVersion() {
			t.Fatalf("user_version = %d, want %d", v, sqlite.SchemaVersion())
		}
	}
	setUserVersion(t, path, sqlite.SchemaVersion()+1)
	_, err := sqlite.Open(testCtx(t), sqlite.Options{Path: path, Logger: quietLogger()})
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open of a newer schema: err = %v, want a 'newer' error", err)
	}
}

func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func userVersion(t *testing.T, path string) int {
	t.Helper()
	var v int
	if err := rawDB(t, path).QueryRowContext(testCtx(t), "PRAGMA user_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func setUserVersion(t *testing.T, path string, v int) {
	t.Helper()
	if _, err := rawDB(t, path).ExecContext(testCtx(t), fmt.Sprintf("PRAGMA user_version = %d", v)); err != nil {
		t.Fatal(err)
	}
}

// TestCancelledContext checks that a cancelled call fails with the
// context's error and leaves the single writer connection usable.
func TestCancelledContext(t *testing.T) {
	t.Parallel()
	s := openAt(t, filepath.Join(t.TempDir(), "chatd.db"))
	closeOnCleanup(t, s)
	ctx := testCtx(t)
	u := persistence.User{Email: "c@example.test", Name: "c", PasswordHash: "h"}
	if err := s.CreateUser(ctx, &u); err != nil {
		t.Fatal(err)
	}
	c := persistence.Conversation{OwnerID: u.ID, Title: "t"}
	if err := s.CreateConversation(ctx, &c); err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	m := persistence.Message{ConversationID: c.ID, OwnerID: u.ID, Role: persistence.RoleUser, Content: "x", Status: persistence.StatusComplete}
	if err := s.InsertMessage(cancelled, &m); !errors.Is(err, context.Canceled) {
		t.Fatalf("InsertMessage with a cancelled context: %v", err)
	}
	if _, err := s.ApplyMessageUpdates(cancelled, []persistence.MessageUpdate{{ID: persistence.NewID(), Append: "x"}}); !errors.Is(err, context.Canceled) {
		t.Fatalf("ApplyMessageUpdates with a cancelled context: %v", err)
	}
	if _, err := s.ListConversations(cancelled, u.ID, persistence.ListQuery{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("ListConversations with a cancelled context: %v", err)
	}
	// Still usable.
	if err := s.InsertMessage(ctx, &m); err != nil {
		t.Fatalf("InsertMessage after a cancelled call: %v", err)
	}
	ms, err := s.Messages(ctx, u.ID, c.ID)
	if err != nil || len(ms) != 1 {
		t.Fatalf("Messages = %d, %v; want 1 message", len(ms), err)
	}
}

// TestConcurrencyNoLocks hammers one store from many goroutines (writes,
// streaming appends, reads, searches) with a tiny read pool, and a second
// store on the same file (as a second process would), and requires every
// call to succeed: no "database is locked" or "busy" errors.
func TestConcurrencyNoLocks(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "chatd.db")
	s := openAt(t, path)
	closeOnCleanup(t, s)
	ctx := testCtx(t)
	other, err := sqlite.Open(ctx, sqlite.Options{Path: path, Logger: quietLogger(), ReadConns: 1, SharedDir: true})
	if err != nil {
		t.Fatal(err)
	}
	closeOnCleanup(t, other)

	const workers, rounds = 8, 12
	var wg sync.WaitGroup
	errs := make(chan error, 2*workers)
	for w := range workers {
		store := persistence.Store(s)
		if w == workers-1 {
			store = other
		}
		wg.Add(2)
		go func() { defer wg.Done(); errs <- hammerWrites(ctx, store, w, rounds) }()
		go func() { defer wg.Done(); errs <- hammerReads(ctx, s, rounds*4) }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent call failed: %v", err)
		}
	}
	var convs, msgs int
	db := rawDB(t, path)
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM conversations").Scan(&convs); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM messages WHERE status = 'complete'").Scan(&msgs); err != nil {
		t.Fatal(err)
	}
	if convs != workers*rounds || msgs != 2*workers*rounds {
		t.Fatalf("stored %d conversations and %d complete messages, want %d and %d", convs, msgs, workers*rounds, 2*workers*rounds)
	}
}

func hammerWrites(ctx context.Context, s persistence.Store, w, rounds int) error {
	u := persistence.User{Email: fmt.Sprintf("w%d@example.test", w), Name: "w", PasswordHash: "h"}
	if err := s.CreateUser(ctx, &u); err != nil {
		return err
	}
	for r := range rounds {
		c := persistence.Conversation{OwnerID: u.ID, Title: fmt.Sprintf("worker %d round %d", w, r)}
		if err := s.CreateConversation(ctx, &c); err != nil {
			return err
		}
		q := persistence.Message{ConversationID: c.ID, OwnerID: u.ID, Role: persistence.RoleUser, Content: "q", Status: persistence.StatusComplete}
		if err := s.InsertMessage(ctx, &q); err != nil {
			return err
		}
		a := persistence.Message{ConversationID: c.ID, OwnerID: u.ID, ParentID: q.ID, Role: persistence.RoleAssistant, Status: persistence.StatusStreaming}
		if err := s.InsertMessage(ctx, &a); err != nil {
			return err
		}
		for k := range 8 {
			up := persistence.MessageUpdate{ID: a.ID, Append: "token ", At: time.Now()}
			if k == 7 {
				up.Status = persistence.StatusComplete
			}
			if _, err := s.ApplyMessageUpdates(ctx, []persistence.MessageUpdate{up}); err != nil {
				return err
			}
		}
		if _, err := s.BumpTokenVersion(ctx, u.ID); err != nil {
			return err
		}
	}
	return nil
}

func hammerReads(ctx context.Context, s persistence.Store, n int) error {
	for i := range n {
		p, err := s.ListConversations(ctx, persistence.NewID(), persistence.ListQuery{})
		if err != nil {
			return err
		}
		if len(p.Conversations) != 0 {
			return fmt.Errorf("unknown owner listed %d conversations", len(p.Conversations))
		}
		u, err := s.UserByEmail(ctx, fmt.Sprintf("w%d@example.test", i%3))
		if errors.Is(err, persistence.ErrNotFound) {
			continue // not created yet
		}
		if err != nil {
			return err
		}
		p, err = s.ListConversations(ctx, u.ID, persistence.ListQuery{Limit: 5, Search: "token"})
		if err != nil {
			return err
		}
		for _, c := range p.Conversations {
			if _, err := s.Messages(ctx, u.ID, c.ID); err != nil {
				return err
			}
		}
	}
	return nil
}
