package sqlite

import (
	"chatd/internal/syncbuf"
	"context"
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"modernc.org/sqlite"

	"chatd/persistence"
)

// backupDB copies the database at src to dst with SQLite's online backup,
// as docs/deploy.md's `sqlite3 chatd.db ".backup '...'"` does, while the
// store may run.
func backupDB(t *testing.T, src, dst string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+src+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		b, err := dc.(interface {
			NewBackup(string) (*sqlite.Backup, error)
		}).NewBackup(dst)
		if err != nil {
			return err
		}
		if _, err := b.Step(-1); err != nil {
			return errors.Join(err, b.Finish())
		}
		return b.Finish()
	})
	if err != nil {
		t.Fatalf("backup %s: %v", src, err)
	}
}

// restoreDB puts the file at from in place of the stopped store's
// chatd.db at path (its -wal and -shm removed), leaving the search file
// as it is: the step docs/deploy.md asked for and nothing detected skipped.
func restoreDB(t *testing.T, from, path string) {
	t.Helper()
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Remove(path + suffix); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	copyFile(t, from, path)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// openLogged opens the store at path, its logs in logs; the test closes it.
func openLogged(t *testing.T, path string, logs io.Writer) *Store {
	t.Helper()
	s, err := Open(context.Background(), Options{Path: path, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func closeNow(t *testing.T, s *Store) {
	t.Helper()
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// searchHits returns the ids of the user's conversations a search for q finds, sorted.
func searchHits(t *testing.T, s *Store, owner, q string) []string {
	t.Helper()
	page, err := s.ListConversations(context.Background(), owner, persistence.ListQuery{Search: q, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range page.Conversations {
		ids = append(ids, c.ID)
	}
	slices.Sort(ids)
	return ids
}

// wantHits checks each query's hits, while the index is rebuilt and once
// it is whole.
func wantHits(t *testing.T, s *Store, owner string, want map[string][]string) {
	t.Helper()
	for _, when := range []string{"at open", "once indexed"} {
		if when == "once indexed" {
			waitIndexed(t, s)
		}
		for q, ids := range want {
			ids = slices.Sorted(slices.Values(ids))
			if got := searchHits(t, s, owner, q); !slices.Equal(got, ids) {
				t.Errorf("%s: search %q found %v, want %v", when, q, got, ids)
			}
		}
	}
}

// newConv creates another conversation of f's user.
func (f searchFixture) newConv(t *testing.T) persistence.Conversation {
	t.Helper()
	c := persistence.Conversation{OwnerID: f.user.ID, Model: "m"}
	if err := f.s.CreateConversation(context.Background(), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// insertIn inserts a complete message into conversation c of f's user.
func (f searchFixture) insertIn(t *testing.T, c persistence.Conversation, text string) {
	t.Helper()
	g := f
	g.conv = c
	g.insert(t, text, persistence.StatusComplete)
}

// TestSearchIndexAfterRestore: chatd.db restored from a backup (taken the
// documented way, while the store ran) beside the search file of the data
// as it went on (a conversation deleted, messages added) is told apart
// from it at open, the log says why, and the index is rebuilt: searches
// answer exactly as for the restored data, while it is rebuilt and after.
func TestSearchIndexAfterRestore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path, f := unmanagedFixture(t)
	kept, gone := f.conv, f.newConv(t)
	f.insertIn(t, kept, "an aardvark question")
	f.insertIn(t, gone, "the bison answer")
	waitIndexed(t, f.s)
	backup := filepath.Join(t.TempDir(), "chatd-backup.db")
	backupDB(t, path, backup)

	if err := f.s.DeleteConversation(ctx, f.user.ID, gone.ID); err != nil {
		t.Fatal(err)
	}
	f.insertIn(t, kept, "a civet, later")
	later := f.newConv(t)
	f.insertIn(t, later, "a dingo, later")
	waitIndexed(t, f.s)
	closeNow(t, f.s)

	restoreDB(t, backup, path)
	var logs syncbuf.Buffer
	s := openLogged(t, path, &logs)
	t.Cleanup(func() { closeNow(t, s) })
	if !strings.Contains(logs.String(), "rebuilding it, it does not match the database") {
		t.Errorf("no log of the rebuild; logs:\n%s", logs.String())
	}
	wantHits(t, s, f.user.ID, map[string][]string{
		"aardvark": {kept.ID}, "bison": {gone.ID}, "civet": nil, "dingo": nil, "answer": {gone.ID},
	})
	if n := indexed(t, s); n != 2 {
		t.Errorf("index holds %d messages, want the restored 2", n)
	}
}

// TestSearchIndexOfAnotherCopy: two copies of one data directory go
// their own ways; one's chatd.db beside the other's search file is told
// apart (same steps, other tokens) and rebuilt.
func TestSearchIndexOfAnotherCopy(t *testing.T) {
	t.Parallel()
	path, f := unmanagedFixture(t)
	f.insert(t, "an aardvark question", persistence.StatusComplete)
	waitIndexed(t, f.s)
	closeNow(t, f.s)
	copyPath := filepath.Join(t.TempDir(), "chatd.db")
	copyFile(t, path, copyPath)
	copyFile(t, searchPath(path), searchPath(copyPath))

	for _, p := range []struct{ path, text string }{{path, "the emu here"}, {copyPath, "the ferret there"}} {
		s := openLogged(t, p.path, io.Discard)
		g := f
		g.s = s
		g.insert(t, p.text, persistence.StatusComplete)
		waitIndexed(t, s)
		closeNow(t, s)
	}
	restoreDB(t, copyPath, path) // the copy's chatd.db, this directory's search file
	var logs syncbuf.Buffer
	s := openLogged(t, path, &logs)
	t.Cleanup(func() { closeNow(t, s) })
	if !strings.Contains(logs.String(), "another copy") {
		t.Errorf("no log of the rebuild naming another copy; logs:\n%s", logs.String())
	}
	wantHits(t, s, f.user.ID, map[string][]string{"aardvark": {f.conv.ID}, "ferret": {f.conv.ID}, "emu": nil})
}

// TestSearchIndexKeptWhenItMatches: a search file that matches chatd.db
// is kept at open, also one whose last batch was stored while taking its
// entries off chatd.db's queue failed (as in a crash between the two
// files' writes): those entries are still queued and indexed again.
func TestSearchIndexKeptWhenItMatches(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		clearFail bool
	}{
		{"clean restart", false},
		{"queue not cleared after the index's batch", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "chatd.db")
			var failing sync.Mutex // held: the queue's clearing fails
			opts := Options{Path: path, Logger: slog.New(slog.DiscardHandler), IndexQuiet: -1}
			if tc.clearFail {
				opts.clearFails = func() error {
					if failing.TryLock() {
						failing.Unlock()
						return nil
					}
					return errors.New("injected failure")
				}
			}
			s, err := Open(context.Background(), opts)
			if err != nil {
				t.Fatal(err)
			}
			f := newSearchFixture(t, s)
			f.insert(t, "an aardvark question", persistence.StatusComplete)
			waitIndexed(t, s)
			failing.Lock()
			f.insert(t, "the bison answer", persistence.StatusComplete)
			deadline := time.Now().Add(10 * time.Second)
			for indexed(t, s) != 2 { // the search file took it in
				if time.Now().After(deadline) {
					t.Fatal("the second message never reached the index")
				}
				time.Sleep(time.Millisecond) // polling a condition, with a deadline
			}
			closeNow(t, s)
			failing.Unlock()

			var logs syncbuf.Buffer
			s = openLogged(t, path, &logs)
			t.Cleanup(func() { closeNow(t, s) })
			if s.requeueing.Load() || strings.Contains(logs.String(), "rebuilding") {
				t.Errorf("a matching search file is rebuilt; logs:\n%s", logs.String())
			}
			wantHits(t, s, f.user.ID, map[string][]string{"aardvark": {f.conv.ID}, "bison": {f.conv.ID}, "okapi": nil})
			if n := indexed(t, s); n != 2 {
				t.Errorf("index holds %d messages, want 2", n)
			}
		})
	}
}

// TestSearchIndexAfterRestoreMidBatch: chatd.db restored from a backup
// taken at the queue state the search file's last batch started from,
// beside that search file, whose batch took in a deletion made after the
// backup (its entries never left the queue: a crash between the two
// files' writes): the restored queue does not hold the deleted message,
// so the search file is rebuilt, and the message is found.
func TestSearchIndexAfterRestoreMidBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "chatd.db")
	var failing sync.Mutex // held: the queue's clearing fails
	s, err := Open(ctx, Options{Path: path, Logger: slog.New(slog.DiscardHandler), IndexQuiet: -1,
		clearFails: func() error {
			if failing.TryLock() {
				failing.Unlock()
				return nil
			}
			return errors.New("injected failure")
		}})
	if err != nil {
		t.Fatal(err)
	}
	f := newSearchFixture(t, s)
	gone := f.newConv(t)
	f.insert(t, "an aardvark question", persistence.StatusComplete)
	f.insertIn(t, gone, "the bison answer")
	waitIndexed(t, s)
	backup := filepath.Join(t.TempDir(), "chatd-backup.db")
	backupDB(t, path, backup)
	failing.Lock()
	if err := s.DeleteConversation(ctx, f.user.ID, gone.ID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for indexed(t, s) != 1 { // the search file took the deletion in
		if time.Now().After(deadline) {
			t.Fatal("the deletion never reached the index")
		}
		time.Sleep(time.Millisecond) // polling a condition, with a deadline
	}
	closeNow(t, s)
	failing.Unlock()

	restoreDB(t, backup, path)
	var logs syncbuf.Buffer
	s = openLogged(t, path, &logs)
	t.Cleanup(func() { closeNow(t, s) })
	if !strings.Contains(logs.String(), "does not hold queued") {
		t.Errorf("no log of the rebuild; logs:\n%s", logs.String())
	}
	wantHits(t, s, f.user.ID, map[string][]string{"aardvark": {f.conv.ID}, "bison": {gone.ID}})
}

// TestSearchIndexAfterRestoreMidRequeue: a new search file's requeue
// (every message queued for it, a step at a time) got a step past the
// moment of a backup of chatd.db; restored beside it, the backup's queue
// lacks that step's entries, so the search file is rebuilt rather than
// resumed, and every message is found once indexed.
func TestSearchIndexAfterRestoreMidRequeue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path, f := unmanagedFixture(t)
	for _, text := range []string{"one ibex", "two ibexes", "three", "four"} {
		f.insert(t, text, persistence.StatusComplete)
	}
	waitIndexed(t, f.s) // nothing left in the queue
	closeNow(t, f.s)
	removeSearchFile(t, path)
	gate := make(chan struct{})
	s, err := Open(ctx, Options{Path: path, Logger: slog.New(slog.DiscardHandler), requeueStep: 2, requeueGate: gate})
	if err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(t.TempDir(), "chatd-backup.db")
	backupDB(t, path, backup)
	gate <- struct{}{} // one step: the first two messages
	gate <- struct{}{} // taken once the first step is recorded
	closeNow(t, s)

	restoreDB(t, backup, path)
	var logs syncbuf.Buffer
	s = openLogged(t, path, &logs)
	t.Cleanup(func() { closeNow(t, s) })
	if !strings.Contains(logs.String(), "ahead of chatd.db") {
		t.Errorf("no log of the rebuild; logs:\n%s", logs.String())
	}
	wantHits(t, s, f.user.ID, map[string][]string{"ibex": {f.conv.ID}, "two ibexes": {f.conv.ID}})
	if n := indexed(t, s); n != 4 {
		t.Errorf("index holds %d messages, want 4", n)
	}
}

// TestIndexerQueueClearIgnoresCancel: the indexer's statements in the
// group's transaction (taking a batch's entries off the queue) ignore the
// end of its context, as every statement of a group does (writeTx): a
// Close that ended it while one ran would interrupt the writer's
// connection, and SQLite would roll back the whole group, other callers'
// writes with it. Narrower than that race, deterministically: the context
// ends (Close's stop of the indexer) before the statements run, and they
// run all the same; with the context they are given, they fail at once
// and the entries stay queued.
func TestIndexerQueueClearIgnoresCancel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	armed := make(chan *Store, 1)
	s, err := Open(ctx, Options{Path: filepath.Join(t.TempDir(), "chatd.db"),
		Logger: slog.New(slog.DiscardHandler), IndexQuiet: -1,
		clearing: func(ixCtx context.Context) {
			select {
			case s := <-armed:
				s.ixStopOnce.Do(func() { close(s.ixStop) }) // as Close's stopIndexer does
				<-ixCtx.Done()
			default:
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeNow(t, s) })
	f := newSearchFixture(t, s)
	armed <- s
	f.insert(t, "an aardvark question", persistence.StatusComplete)
	select {
	case <-s.ixEnded:
	case <-time.After(30 * time.Second):
		t.Fatal("the indexer never took the message")
	}
	if len(armed) != 0 {
		t.Fatal("the indexer ended before its batch")
	}
	if n, err := s.SearchBacklog(ctx); err != nil || n != 0 {
		t.Fatalf("%d entries left queued (%v) by the batch its stop ended, want none", n, err)
	}
}
