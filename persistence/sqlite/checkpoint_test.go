package sqlite

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"chatd/persistence"
)

// TestCheckpointer: with background checkpoints on (the default), the
// writer only checkpoints past the backstop, and the store's own
// connection moves the log into the database file after writes; with them
// off, the writer checkpoints at SQLite's default of 1,000 pages.
func TestCheckpointer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		interval time.Duration
		wantAuto int
	}{
		{"background", time.Millisecond, walBackstopPages},
		{"off", -1, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s, err := Open(ctx, Options{Path: filepath.Join(t.TempDir(), "chatd.db"), CheckpointInterval: tc.interval})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close(ctx)
			var auto int
			if err := s.w.QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&auto); err != nil {
				t.Fatal(err)
			}
			if auto != tc.wantAuto {
				t.Errorf("writer's wal_autocheckpoint = %d, want %d", auto, tc.wantAuto)
			}
			u := persistence.User{Email: "ck@example.test", Name: "C", PasswordHash: "x"}
			if err := s.CreateUser(ctx, &u); err != nil {
				t.Fatal(err)
			}
			c := persistence.Conversation{OwnerID: u.ID, Model: "m"}
			if err := s.CreateConversation(ctx, &c); err != nil {
				t.Fatal(err)
			}
			for range 20 {
				m := persistence.Message{ConversationID: c.ID, OwnerID: u.ID, Role: persistence.RoleUser,
					Content: strings.Repeat("some text ", 800), Status: persistence.StatusComplete}
				if err := s.InsertMessage(ctx, &m); err != nil {
					t.Fatal(err)
				}
			}
			if tc.interval < 0 {
				if s.ck != nil {
					t.Error("a checkpointer runs although CheckpointInterval is negative")
				}
				return
			}
			// The last write's signal leads to a checkpoint that copies
			// the whole log (nothing else writes).
			deadline := time.Now().Add(10 * time.Second)
			for s.ckLog.Load() == 0 || s.ckDone.Load() != s.ckLog.Load() {
				if time.Now().After(deadline) {
					t.Fatalf("no complete background checkpoint: last one copied %d of %d pages", s.ckDone.Load(), s.ckLog.Load())
				}
				time.Sleep(time.Millisecond) // polling a condition, with a deadline
			}
		})
	}
}

// waitIndexed waits until the search index has taken in every queued message.
func waitIndexed(t testing.TB, s *Store) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := s.SearchBacklog(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("search index backlog still %d", n)
		}
		time.Sleep(time.Millisecond) // polling a condition, with a deadline
	}
}

// TestSingleStatementWritesSignalCheckpointer: the writes that run as one
// statement outside the group committer (writeRow: a token revocation, a
// password change, a conversation's update) tell the checkpointer of
// their commit too, as the committer's do; before, a run of them alone
// left the log unchecked. The checkpointer is held in its rest (an
// interval of an hour) after its first checkpoint, so its signal stays
// pending for the test to see.
func TestSingleStatementWritesSignalCheckpointer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		write func(s *Store, f searchFixture) error
	}{
		{"BumpTokenVersion", func(s *Store, f searchFixture) error {
			_, err := s.BumpTokenVersion(ctx, f.user.ID)
			return err
		}},
		{"ChangePassword", func(s *Store, f searchFixture) error {
			_, err := s.ChangePassword(ctx, f.user.ID, "new", f.user.TokenVersion)
			return err
		}},
		{"UpdateConversation", func(s *Store, f searchFixture) error {
			title := "renamed"
			_, err := s.UpdateConversation(ctx, f.user.ID, f.conv.ID, persistence.ConversationPatch{Title: &title})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := openTest(t, Options{CheckpointInterval: time.Hour})
			f := newSearchFixtureFor(t, s, "ck@example.test")
			deadline := time.Now().Add(10 * time.Second)
			for s.ckLog.Load() == 0 { // the first checkpoint: then it rests an hour
				if time.Now().After(deadline) {
					t.Fatal("no first background checkpoint")
				}
				time.Sleep(time.Millisecond) // polling a condition, with a deadline
			}
			select {
			case <-s.dirty: // a signal of the fixture's writes, left for after the rest
			default:
			}
			if err := tc.write(s, f); err != nil {
				t.Fatal(err)
			}
			if len(s.dirty) != 1 {
				t.Errorf("%s committed without telling the checkpointer", tc.name)
			}
		})
	}
}

// TestCheckpointRetriesPastAReader: a commit made while a read transaction
// holds an older snapshot (a backup's VACUUM INTO, a long search) cannot
// be checkpointed past that reader; once the reader is gone the
// checkpointer completes the log by itself, without another write. Before,
// it waited for the next commit: on a quiet server the log stayed
// un-checkpointed for as long as nothing was written.
func TestCheckpointRetriesPastAReader(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openTest(t, Options{CheckpointInterval: 5 * time.Millisecond})
	f := newSearchFixtureFor(t, s, "ck@example.test")
	complete := func() bool { return s.ckLog.Load() > 0 && s.ckDone.Load() == s.ckLog.Load() }
	partial := func() bool { return s.ckDone.Load() < s.ckLog.Load() }
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("no %s checkpoint: the last one copied %d of %d pages", what, s.ckDone.Load(), s.ckLog.Load())
			}
			time.Sleep(time.Millisecond) // polling a condition, with a deadline
		}
	}
	waitFor("complete first", complete)

	rtx, err := s.r.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rtx.Rollback() }()
	var n int
	if err := rtx.QueryRowContext(ctx, `SELECT count(*) FROM users`).Scan(&n); err != nil { // the snapshot is taken
		t.Fatal(err)
	}
	// A write that queues nothing for the search indexer, whose own
	// commit would start another checkpoint.
	if _, err := s.BumpTokenVersion(ctx, f.user.ID); err != nil {
		t.Fatal(err)
	}
	waitFor("partial", partial) // held back by the reader's snapshot
	if err := rtx.Rollback(); err != nil {
		t.Fatal(err)
	}
	waitFor("complete", complete)
}
