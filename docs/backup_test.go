package docs

import (
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"chatd/persistence"
	"chatd/persistence/sqlite"
)

// TestBackupWhileWriting runs deploy.md's SQLite backup line (through the
// sqlite3 shell, or its VACUUM INTO on a second connection without one)
// twice on the file of a store another goroutine writes to all along, as
// chatd's checkpoints do. Each run must end, and leave a backup that opens
// as a store and holds every message stored before it started, readable by
// its owner alone (mode 0600, as the live file: the line runs under root's
// usual umask 022 and must set its own). The
// shell's .backup, documented before, starts over at each commit of
// another connection between its steps: on this test's file (some 33 MB)
// written to without pause it had not ended after 20 s, where VACUUM INTO
// takes about one.
func TestBackupWhileWriting(t *testing.T) {
	t.Parallel()
	line := deployLine(t, "sqlite3", "VACUUM INTO")
	// Filling a 33 MB store, two backups beside a writer and two opens
	// that rebuild the backup's search index take some 30 s on a loaded
	// 2-core machine (CI beside other work ran out of testTimeout in the
	// last read): the bound is for a hang, not for speed.
	ctx, cancel := context.WithTimeout(context.Background(), 4*testTimeout)
	defer cancel()
	dir := t.TempDir()
	path := filepath.Join(dir, "chatd.db")
	backups := filepath.Join(dir, "backups")
	if err := os.Mkdir(backups, 0o700); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(ctx, sqlite.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close(context.Background()) }()
	a := newAccount(ctx, t, st, "kept@example.com")
	insert := func() error {
		m := persistence.Message{ConversationID: a.conv.ID, OwnerID: a.user.ID, Role: persistence.RoleUser,
			Content: strings.Repeat("a stored line of text ", 1000), Status: persistence.StatusComplete}
		return st.InsertMessage(ctx, &m)
	}
	for range 1500 { // some 33 MB: many of .backup's steps of 100 pages
		if err := insert(); err != nil {
			t.Fatal(err)
		}
	}

	writing, stop := context.WithCancel(ctx)
	var written atomic.Int64
	done := make(chan error, 1)
	go func() {
		for writing.Err() == nil {
			if err := insert(); err != nil && writing.Err() == nil {
				done <- err
				return
			}
			written.Add(1)
		}
		done <- nil
	}()
	line = strings.NewReplacer("/var/lib/chatd/chatd.db", path, "/var/backups/", backups+"/").Replace(line)
	for run := range 2 { // the second run replaces the first one's backup
		before := 2 + 1500 + written.Load()
		if backup(ctx, t, path, line) {
			fi, err := os.Stat(filepath.Join(backups, "chatd.db"))
			if err != nil {
				t.Fatal(err)
			}
			if m := fi.Mode().Perm(); m != 0o600 {
				t.Errorf("run %d: the backup has mode %#o, want 0600: it holds every password hash and conversation", run+1, m)
			}
		}
		if n := countMessages(ctx, t, filepath.Join(backups, "chatd.db"), a); n < before {
			t.Errorf("run %d: the backup holds %d messages, want at least the %d stored before it started", run+1, n, before)
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("the writes beside the backup: %v", err)
	}
	if written.Load() == 0 {
		t.Error("nothing was written while the backups ran")
	}
	if _, err := os.Stat(filepath.Join(backups, "chatd.db.new")); !os.IsNotExist(err) {
		t.Errorf("the backup's temporary file is left: %v", err)
	}
}

// backup runs deploy.md's backup line through bash with the sqlite3
// shell under umask 022, or its VACUUM INTO statement on a connection to
// path without it. It reports whether the line itself ran.
func backup(ctx context.Context, t *testing.T, path, line string) bool {
	t.Helper()
	if _, err := exec.LookPath("sqlite3"); err == nil {
		if out, err := exec.CommandContext(ctx, "bash", "-c", "umask 022\n"+line).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", line, err, out)
		}
		return true
	}
	t.Log("no sqlite3 shell: running VACUUM INTO on a second connection")
	start := strings.Index(line, "VACUUM INTO '")
	end := strings.Index(line[start+len("VACUUM INTO '"):], "'")
	target := line[start+len("VACUUM INTO '") : start+len("VACUUM INTO '")+end]
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	final := strings.TrimSuffix(target, ".new")
	_ = os.Remove(target)
	if _, err := db.ExecContext(ctx, "VACUUM INTO '"+target+"'"); err != nil {
		t.Fatalf("VACUUM INTO: %v", err)
	}
	if err := os.Rename(target, final); err != nil {
		t.Fatal(err)
	}
	return false
}

// countMessages opens the backup at path as a store and counts the
// messages of a's conversation.
func countMessages(ctx context.Context, t *testing.T, path string, a account) int64 {
	t.Helper()
	st, err := sqlite.Open(ctx, sqlite.Options{Path: path, DeletionSweep: -1})
	if err != nil {
		t.Fatalf("the backup does not open: %v", err)
	}
	defer func() { _ = st.Close(context.Background()) }()
	_, msgs, err := persistence.ReadConversation(ctx, st, a.user.ID, a.conv.ID)
	if err != nil {
		t.Fatalf("the backup's conversation: %v", err)
	}
	return int64(len(msgs))
}
