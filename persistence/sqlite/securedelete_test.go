package sqlite

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"chatd/persistence"
)

// TestDeletedTextLeavesFiles: once an account's or a conversation's
// deletion has finished, and the log scrubbed after it, none of its text
// (a long answer with overflow pages, an answer streamed in chunks and
// then finished), its title or the account's email is left in chatd.db,
// chatd-search.db or their write-ahead logs, neither while the store is
// open nor after Close. Before, the deleted rows' bytes stayed in free
// space of their pages, in free pages and in the logs' old frames.
// (The search index keeps no text, only trigram lists: a deleted
// message's trigrams stay in FTS5's segments, marked deleted, until a
// merge rewrites them; docs/deploy.md says so. This test scans for the
// text itself.)
func TestDeletedTextLeavesFiles(t *testing.T) {
	t.Parallel()
	const (
		email = "zq7doomedmail@example.test"
		title = "Qv9SecretTitle"
		text  = "Wx8SecretText "
		chunk = "Jk4SecretChunk "
	)
	cases := []struct {
		name       string
		checkpoint time.Duration // Options.CheckpointInterval
		del        func(ctx context.Context, s *Store, f searchFixture) error
		secrets    []string
	}{
		{"account", 0, func(ctx context.Context, s *Store, f searchFixture) error {
			return s.DeleteUser(ctx, f.user.ID)
		}, []string{email, title, text, chunk}},
		{"account without the checkpointer", -1, func(ctx context.Context, s *Store, f searchFixture) error {
			return s.DeleteUser(ctx, f.user.ID)
		}, []string{email, title, text, chunk}},
		{"conversation", 0, func(ctx context.Context, s *Store, f searchFixture) error {
			return s.DeleteConversation(ctx, f.user.ID, f.conv.ID)
		}, []string{title, text, chunk}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			path := filepath.Join(t.TempDir(), "chatd.db")
			scrubbed := make(chan string, 16)
			s, err := Open(ctx, Options{Path: path, IndexQuiet: -1, DeletionSweep: -1,
				CheckpointInterval: tc.checkpoint, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
				scrubbed: func(file string) { scrubbed <- file }})
			if err != nil {
				t.Fatal(err)
			}
			closed := false
			t.Cleanup(func() {
				if !closed {
					_ = s.Close(context.Background())
				}
			})
			kept := newSearchFixtureFor(t, s, "kept@example.test")
			kept.insert(t, "an ordinary answer", persistence.StatusComplete)
			doomed := newSearchFixtureFor(t, s, email)
			newTitle := title
			if _, err := s.UpdateConversation(ctx, doomed.user.ID, doomed.conv.ID, persistence.ConversationPatch{Title: &newTitle}); err != nil {
				t.Fatal(err)
			}
			doomed.insert(t, strings.Repeat(text, 400), persistence.StatusComplete) // overflow pages
			streamed := doomed.insert(t, "", persistence.StatusStreaming)
			for range 20 {
				appendChunk(t, s, streamed.ID, chunk)
			}
			if _, err := s.ApplyMessageUpdates(ctx, []persistence.MessageUpdate{{ID: streamed.ID, Status: persistence.StatusComplete}}); err != nil {
				t.Fatal(err)
			}
			waitIndexed(t, s)
			if n := indexed(t, s); n != 3 {
				t.Fatalf("indexed %d messages before the delete, want 3", n)
			}
			files := []string{path, path + "-wal", searchPath(path), searchPath(path) + "-wal"}
			if found := filesHolding(t, files, tc.secrets); len(found) == 0 {
				t.Fatal("no file holds the text before the delete: this test no longer checks what it means to")
			}

			if err := tc.del(ctx, s, doomed); err != nil {
				t.Fatal(err)
			}
			waitScrubbed(ctx, t, scrubbed, path, searchPath(path))
			for _, f := range filesHolding(t, files, tc.secrets) {
				t.Errorf("open, after the deletion: %s", f)
			}
			closed = true
			if err := s.Close(ctx); err != nil {
				t.Fatal(err)
			}
			for _, f := range filesHolding(t, files, tc.secrets) {
				t.Errorf("closed: %s", f)
			}
		})
	}
}

// waitScrubbed waits until the store reported a scrub of each of paths.
func waitScrubbed(ctx context.Context, t *testing.T, scrubbed <-chan string, paths ...string) {
	t.Helper()
	left := map[string]bool{}
	for _, p := range paths {
		left[p] = true
	}
	for len(left) > 0 {
		select {
		case p := <-scrubbed:
			delete(left, p)
		case <-ctx.Done():
			t.Fatalf("not scrubbed: %v", left)
		}
	}
}

// filesHolding returns "file: secret" for each of secrets found in the
// raw bytes of each of files (a missing file holds none).
func filesHolding(t *testing.T, files, secrets []string) []string {
	t.Helper()
	var found []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, sec := range secrets {
			if bytes.Contains(b, []byte(strings.TrimSpace(sec))) {
				found = append(found, filepath.Base(f)+" holds "+strings.TrimSpace(sec))
			}
		}
	}
	return found
}
