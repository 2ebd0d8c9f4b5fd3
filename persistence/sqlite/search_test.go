package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"chatd/internal/syncbuf"
	"chatd/persistence"
)

// searchFixture is a store with one user and one conversation.
type searchFixture struct {
	s    *Store
	user persistence.User
	conv persistence.Conversation
}

func newSearchFixture(t testing.TB, s *Store) searchFixture {
	t.Helper()
	return newSearchFixtureFor(t, s, "search@example.test")
}

// newSearchFixtureFor is newSearchFixture with a user of that email.
func newSearchFixtureFor(t testing.TB, s *Store, email string) searchFixture {
	t.Helper()
	ctx := context.Background()
	u := persistence.User{Email: email, Name: "S", PasswordHash: "x"}
	if err := s.CreateUser(ctx, &u); err != nil {
		t.Fatal(err)
	}
	c := persistence.Conversation{OwnerID: u.ID, Model: "m"}
	if err := s.CreateConversation(ctx, &c); err != nil {
		t.Fatal(err)
	}
	return searchFixture{s: s, user: u, conv: c}
}

func (f searchFixture) insert(t testing.TB, text string, status persistence.Status) persistence.Message {
	t.Helper()
	m := persistence.Message{ConversationID: f.conv.ID, OwnerID: f.user.ID, Role: persistence.RoleAssistant,
		Content: text, Status: status}
	if err := f.s.InsertMessage(context.Background(), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// found reports whether searching for q finds the fixture's conversation.
func (f searchFixture) found(t *testing.T, q string) bool {
	t.Helper()
	page, err := f.s.ListConversations(context.Background(), f.user.ID, persistence.ListQuery{Search: q})
	if err != nil {
		t.Fatal(err)
	}
	return len(page.Conversations) == 1
}

// unmanagedFixture opens a store in a new directory, for a test that
// closes it itself (to open it again), and returns its path and a search
// fixture on it.
func unmanagedFixture(t *testing.T) (string, searchFixture) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "chatd.db")
	s, err := Open(context.Background(), Options{Path: path, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return path, newSearchFixture(t, s)
}

// removeSearchFile deletes the search file of the store at path, with its
// -wal and -shm files, as an operator may while chatd is stopped.
func removeSearchFile(t *testing.T, path string) {
	t.Helper()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(searchPath(path) + suffix); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
}

// indexed returns how many messages the search file holds.
func indexed(t *testing.T, s *Store) int {
	t.Helper()
	var n int
	if err := s.r.QueryRowContext(context.Background(), `SELECT count(*) FROM search.indexed`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// wantIndexed waits for the search index to take in its backlog and
// checks that it then holds want messages; when says at what point.
func wantIndexed(t *testing.T, s *Store, want int, when string) {
	t.Helper()
	waitIndexed(t, s)
	if got := indexed(t, s); got != want {
		t.Errorf("index holds %d messages %s, want %d", got, when, want)
	}
}

// TestSearchIndexOwnFile: the search index lives in a file of its own,
// and a message is stored, and found by search, while that file's writer
// is held up (as by a long merge of the index); the index takes it in once
// the file is free again.
func TestSearchIndexOwnFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "chatd.db")
	// A write that waited for the search file's lock would wait the busy
	// timeout (30 s) for it; one that does not takes well under 10 s on a
	// loaded machine.
	f := newSearchFixture(t, openTest(t, Options{Path: path, BusyTimeout: 30 * time.Second}))
	if _, err := os.Stat(filepath.Join(filepath.Dir(path), "chatd-search.db")); err != nil {
		t.Fatalf("search file: %v", err)
	}

	// Hold the search file's write lock, as a merge of the index would.
	other, err := sql.Open("sqlite", "file:"+searchPath(path)+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	hold, err := other.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	f.insert(t, "The Okapi is shy", persistence.StatusComplete)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("insert took %v while the search file was locked", d)
	}
	if !f.found(t, "okapi") {
		t.Error("a message not yet indexed is not found")
	}
	if n, err := f.s.SearchBacklog(ctx); err != nil || n != 1 {
		t.Errorf("backlog = %d, %v while the index is locked, want 1", n, err)
	}
	if err := hold.Rollback(); err != nil {
		t.Fatal(err)
	}
	wantIndexed(t, f.s, 1, "once its file is free")
	if !f.found(t, "OKAPI") || f.found(t, "giraffe") {
		t.Error("search through the index is wrong")
	}
}

// TestSearchIndexFollowsChanges: a streaming answer enters the index when
// it ends, not before; deleted messages leave it; a search file that went
// missing is rebuilt from the store on the next open.
func TestSearchIndexFollowsChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path, f := unmanagedFixture(t)
	f.insert(t, "a narwhal question", persistence.StatusComplete)
	a := f.insert(t, "", persistence.StatusStreaming)
	if _, err := f.s.ApplyMessageUpdates(ctx, []persistence.MessageUpdate{{ID: a.ID, Append: "the Axolotl answer"}}); err != nil {
		t.Fatal(err)
	}
	wantIndexed(t, f.s, 1, "with an answer streaming")
	if !f.found(t, "axolotl") {
		t.Error("a streaming answer is not found")
	}
	if _, err := f.s.ApplyMessageUpdates(ctx, []persistence.MessageUpdate{{ID: a.ID, Status: persistence.StatusComplete}}); err != nil {
		t.Fatal(err)
	}
	wantIndexed(t, f.s, 2, "after the answer ended")
	if !f.found(t, "axolotl") || !f.found(t, "narwhal") {
		t.Error("indexed messages are not found")
	}

	// A missing search file is rebuilt.
	if err := f.s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	removeSearchFile(t, path)
	s := openTest(t, Options{Path: path})
	f.s = s
	if !f.found(t, "narwhal") {
		t.Error("not found right after the search file was recreated")
	}
	wantIndexed(t, s, 2, "after the rebuild")

	if err := s.DeleteConversation(ctx, f.user.ID, f.conv.ID); err != nil {
		t.Fatal(err)
	}
	wantIndexed(t, s, 0, "after their conversation was deleted")
}

// TestSearchFileMissingStaleLog: a search file deleted without its -wal
// and -shm files (here, as they were while the store ran, holding an
// entry of a conversation deleted since) has them removed, with a log
// line naming both, before a new file is made; the new index holds the
// store's messages and nothing of the old log.
func TestSearchFileMissingStaleLog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path, f := unmanagedFixture(t)
	for i := range 3 {
		f.insert(t, fmt.Sprintf("a narwhal %d", i), persistence.StatusComplete)
	}
	gone := f
	gone.conv = persistence.Conversation{OwnerID: f.user.ID, Model: "m"}
	if err := f.s.CreateConversation(ctx, &gone.conv); err != nil {
		t.Fatal(err)
	}
	gone.insert(t, "a stale okapi", persistence.StatusComplete)
	wantIndexed(t, f.s, 4, "before the log is kept")
	stale := map[string][]byte{}
	for _, suffix := range []string{"-wal", "-shm"} {
		b, err := os.ReadFile(searchPath(path) + suffix)
		if err != nil || len(b) == 0 {
			t.Fatalf("the search file's %s while the store runs: %d bytes, %v", suffix, len(b), err)
		}
		stale[suffix] = b
	}
	if err := f.s.DeleteConversation(ctx, f.user.ID, gone.conv.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	removeSearchFile(t, path)
	for suffix, b := range stale {
		if err := os.WriteFile(searchPath(path)+suffix, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	logs := &syncbuf.Buffer{}
	f.s = openTest(t, Options{Path: path, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	line := "removed the stale files before making a new index"
	if out := logs.String(); !strings.Contains(out, line) || !strings.Contains(out, "chatd-search.db-wal") ||
		!strings.Contains(out, "chatd-search.db-shm") {
		t.Errorf("no log line %q naming both files:\n%s", line, out)
	}
	wantIndexed(t, f.s, 3, "after the rebuild")
	if !f.found(t, "narwhal") || f.found(t, "okapi") {
		t.Error("after the rebuild, the store's messages are not found, or the deleted one is")
	}
	if n := readInt(t, f.s, `SELECT count(*) FROM search.message_fts WHERE message_fts MATCH '`+ftsTrigrams("okapi")+`'`); n != 0 {
		t.Errorf("the new index holds %d entries of the deleted message", n)
	}
}

// TestIndexerWaitsForQuiet: the search indexer takes in queued messages
// only once no write has been waiting or running for Options.IndexQuiet,
// or once Options.IndexMaxLag has passed while writes kept coming, so
// that a burst of writes does not share the machine with the index's
// merges; a queued message is found by search all the same, the
// indexer's own writes do not keep it waiting, and Close does not wait
// for a quiet moment.
func TestIndexerWaitsForQuiet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// waitFor polls cond until it holds, with a deadline.
	waitFor := func(t *testing.T, what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("still waiting for %s", what)
			}
			time.Sleep(time.Millisecond) // polling a condition, with a deadline
		}
	}
	backlog := func(t *testing.T, s *Store) int {
		t.Helper()
		n, err := s.SearchBacklog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	tests := []struct {
		name string
		opts Options
		run  func(t *testing.T, f searchFixture)
	}{
		{"waits while writes are recent", Options{IndexQuiet: time.Hour, IndexMaxLag: time.Hour},
			func(t *testing.T, f searchFixture) {
				f.insert(t, "a quokka", persistence.StatusComplete)
				// The fixture's writes and this one poked the indexer, which waits.
				waitFor(t, "the indexer to wait", f.s.ixWaiting.Load)
				if n := backlog(t, f.s); n != 1 {
					t.Errorf("backlog %d right after a write, want 1 (not indexed)", n)
				}
				if !f.found(t, "QUOKKA") || f.found(t, "wombat") {
					t.Error("search over the queued message is wrong")
				}
				start := time.Now()
				if err := f.s.Close(ctx); err != nil {
					t.Fatal(err)
				}
				if d := time.Since(start); d > 10*time.Second {
					t.Errorf("Close took %v with the indexer waiting for a quiet hour", d)
				}
			}},
		{"indexes after a quiet moment, its own write not counting", Options{IndexQuiet: 10 * time.Millisecond, IndexMaxLag: time.Hour},
			func(t *testing.T, f searchFixture) {
				f.insert(t, "a quokka", persistence.StatusComplete)
				last := f.s.lastWrite.Load()
				wantIndexed(t, f.s, 1, "after a quiet moment")
				if f.s.lastWrite.Load() != last || f.s.writing.Load() != 0 {
					t.Error("the indexer's own write counted as the store's")
				}
				if !f.found(t, "quokka") {
					t.Error("an indexed message is not found")
				}
			}},
		{"indexes past the lag bound while writes keep coming", Options{IndexQuiet: time.Hour, IndexMaxLag: 20 * time.Millisecond},
			func(t *testing.T, f searchFixture) {
				f.insert(t, "a quokka", persistence.StatusComplete)
				wctx, stop := context.WithCancel(ctx)
				done := make(chan struct{})
				go func() { // writes without a pause, until the index took the message in
					defer close(done)
					for wctx.Err() == nil {
						if err := f.s.ProbeWrite(wctx); err != nil && wctx.Err() == nil {
							t.Error(err)
							return
						}
					}
				}()
				waitIndexed(t, f.s)
				stop()
				<-done
				if got := indexed(t, f.s); got != 1 {
					t.Errorf("indexed %d messages, want 1", got)
				}
			}},
		{"a write in flight is not a pause", Options{IndexQuiet: 10 * time.Millisecond, IndexMaxLag: time.Hour},
			func(t *testing.T, f searchFixture) {
				f.s.writing.Add(1) // as a write that waits for, or holds, the writer
				waits := f.s.ixWaits.Load()
				got := make(chan bool, 1)
				actx, cancel := context.WithCancel(ctx)
				defer cancel()
				go func() { got <- f.s.awaitQuiet(actx, time.Now()) }()
				waitFor(t, "awaitQuiet to start", func() bool { return f.s.ixWaits.Load() > waits })
				select {
				case <-got:
					t.Fatal("awaitQuiet returned while a write was in flight")
				case <-time.After(5 * f.s.ixQuiet): // several quiet periods: the write still counts
				}
				f.s.lastWrite.Store(time.Now().UnixNano())
				f.s.writing.Add(-1)
				select {
				case ok := <-got:
					if !ok {
						t.Error("awaitQuiet = false with the store open")
					}
				case <-time.After(30 * time.Second):
					t.Fatal("awaitQuiet did not return after the write ended")
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := tt.opts
			opts.Path = filepath.Join(t.TempDir(), "chatd.db")
			opts.Logger = slog.New(slog.DiscardHandler)
			s, err := Open(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close(ctx) })
			tt.run(t, newSearchFixture(t, s))
		})
	}
}

// TestFTSTrigrams: the index's query for a needle is its trigrams, each
// once, or maxFTSTerms of them from its first to its last, quoted, joined
// by AND.
func TestFTSTrigrams(t *testing.T) {
	t.Parallel()
	cases := []struct{ needle, want string }{
		{"abc", `"abc"`},
		{"abcd", `"abc" AND "bcd"`},
		{"aaaaa", `"aaa"`},
		{"abcabc", `"abc" AND "bca" AND "cab"`},
		{`x"bc"`, `"x""b" AND """bc" AND "bc"""`},
		{"héllo", `"hél" AND "éll" AND "llo"`},
		{"a 🙂b", `"a 🙂" AND " 🙂b"`},
		{"abcdefghij", `"abc" AND "bcd" AND "cde" AND "def" AND "efg" AND "fgh" AND "ghi" AND "hij"`},
		{"abcdefghijk", `"abc" AND "bcd" AND "cde" AND "def" AND "efg" AND "fgh" AND "ghi" AND "ijk"`},
		{"abcdefghijklmnopqrstuvwxyz", `"abc" AND "def" AND "ghi" AND "jkl" AND "nop" AND "qrs" AND "tuv" AND "xyz"`},
		{"ab\x00cde", `"cde"`}, // FTS5 ends a string at a NUL: the trigrams holding one are left out
		{"a\x00b", ""},
	}
	for _, c := range cases {
		if got := ftsTrigrams(c.needle); got != c.want {
			t.Errorf("ftsTrigrams(%q) = %s, want %s", c.needle, got, c.want)
		}
	}
}

// TestFTSTrigramsLongNeedle: the query of a needle as long as a request
// line allows (64 KiB, most of its trigrams different) is built in time
// linear in its length: it took 1.9 s of CPU when each trigram was looked
// for among those kept (quadratic), a few milliseconds now. The bound
// leaves a margin of more than ten to a slow, shared machine under -race,
// and the fastest of a few runs counts: a loaded machine can hold one run
// for a second or two, never all of them.
func TestFTSTrigramsLongNeedle(t *testing.T) {
	t.Parallel()
	b := make([]byte, 64<<10)
	x := uint32(1)
	for i := range b {
		x = x*1664525 + 1013904223 // a fixed pseudo-random sequence
		b[i] = byte('a' + x>>24%26)
	}
	const bound, runs = 500 * time.Millisecond, 5
	var q string
	fastest := time.Duration(math.MaxInt64)
	for range runs {
		start := time.Now()
		q = ftsTrigrams(string(b))
		if fastest = min(fastest, time.Since(start)); fastest <= bound {
			break
		}
	}
	if fastest > bound {
		t.Errorf("ftsTrigrams of %d bytes took %v at the fastest of %d runs", len(b), fastest, runs)
	}
	if n := strings.Count(q, " AND "); n != maxFTSTerms-1 {
		t.Errorf("query of %d terms, want %d", n+1, maxFTSTerms)
	}
}

// TestSearchIndexTrigramsApart: the index, which keeps no positions,
// offers every message that holds the query's trigrams; one that holds
// them apart, or holds the trigrams the index is asked for of a long
// query and not the others, is not found.
func TestSearchIndexTrigramsApart(t *testing.T) {
	t.Parallel()
	f := newSearchFixture(t, openTest(t, Options{Path: filepath.Join(t.TempDir(), "chatd.db")}))
	f.insert(t, "Abcd xBCDE, \"quoted\" 🙂 émoji, and a needle longer than eighteen runes, a nul\x00inside", persistence.StatusComplete)
	waitIndexed(t, f.s)
	if got := indexed(t, f.s); got != 1 {
		t.Fatalf("indexed %d messages, want 1", got)
	}
	for _, c := range []struct {
		q    string
		want bool
	}{
		{"abcde", false}, // abc, bcd and cde are all there, apart
		{"xbcde", true},
		{"d xb", true},
		{`"quoted"`, true},
		{`"quotes"`, false},
		{"🙂 ÉMO", true},
		{"cdx", false},
		{"a needle longer than eighteen runes", true},
		{"a needle longer than eighteen ruins", false},
		{"a needle longer than eighteen rune", true},
		{"a needle shorter than eighteen runes", false}, // between the trigrams the index is asked for
		{"nul\x00ins", true},
		{"nul\x00out", false},
		{"l\x00i", true},
	} {
		if got := f.found(t, c.q); got != c.want {
			t.Errorf("search %q: found %v, want %v", c.q, got, c.want)
		}
	}
}

// TestSearchIndexOldLayout: a search file of the first layout (trigrams
// with their positions) is deleted at start-up and rebuilt from the store
// in the current one; messages are found meanwhile and after.
func TestSearchIndexOldLayout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path, f := unmanagedFixture(t)
	f.insert(t, "a pangolin question", persistence.StatusComplete)
	f.insert(t, "the Quokka answer", persistence.StatusComplete)
	waitIndexed(t, f.s)
	if err := f.s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// The first layout, as chatd wrote it: positions kept, user_version 1,
	// and an entry for a message that is not in the store.
	removeSearchFile(t, path)
	old, err := sql.Open("sqlite", "file:"+searchPath(path))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.ExecContext(ctx, `PRAGMA journal_mode = WAL;
		CREATE VIRTUAL TABLE message_fts USING fts5 (
			body, content = '', contentless_delete = 1, tokenize = 'trigram case_sensitive 1');
		CREATE TABLE indexed (msg INTEGER NOT NULL PRIMARY KEY, key INTEGER NOT NULL) STRICT;
		INSERT INTO message_fts (rowid, body) VALUES (12345, 'a stale pangolin');
		INSERT INTO indexed (msg, key) VALUES (12345, 12345);
		PRAGMA user_version = 1;`); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	s := openTest(t, Options{Path: path})
	f.s = s
	if !f.found(t, "pangolin") || !f.found(t, "QUOKKA") {
		t.Error("not found while the index is rebuilt")
	}
	waitIndexed(t, s)
	var version int
	var detail string
	if err := s.r.QueryRowContext(ctx, `PRAGMA search.user_version`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	if err := s.r.QueryRowContext(ctx, `SELECT sql FROM search.sqlite_schema WHERE name = 'message_fts'`).Scan(&detail); err != nil {
		t.Fatal(err)
	}
	if version != searchVersion || !strings.Contains(detail, "detail = none") {
		t.Errorf("search file layout %d (%s), want %d without positions", version, detail, searchVersion)
	}
	if got := indexed(t, s); got != 2 {
		t.Errorf("rebuilt index holds %d messages, want 2 (the old file's entry gone)", got)
	}
	if !f.found(t, "pangolin q") || !f.found(t, "quokka ANS") || f.found(t, "stale") {
		t.Error("search through the rebuilt index is wrong")
	}
}

// TestSearchIndexRequeue: a new search file on a store that holds
// messages is filled in the background, a step at a time, without holding
// up the start; meanwhile searches read every message of the user and find
// them all, the backlog counts the messages not yet queued, and a restart
// goes on from the step reached; then the index holds every message.
func TestSearchIndexRequeue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path, f := unmanagedFixture(t)
	for _, text := range []string{"one ibex", "two ibexes", "a streaming ibex", "three", "four", "five ibex"} {
		status := persistence.StatusComplete
		if strings.Contains(text, "streaming") {
			status = persistence.StatusStreaming
		}
		f.insert(t, text, status)
	}
	if err := f.s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	removeSearchFile(t, path)

	gate := make(chan struct{})
	second, err := Open(ctx, Options{Path: path, Logger: slog.New(slog.DiscardHandler), requeueStep: 2, requeueGate: gate})
	if err != nil {
		t.Fatal(err)
	}
	f.s = second
	if n, err := second.SearchBacklog(ctx); err != nil || n != 5 {
		t.Fatalf("backlog before any step = %d, %v, want the 5 finished messages", n, err)
	}
	found := func(want int) {
		t.Helper()
		page, err := f.s.ListConversations(ctx, f.user.ID, persistence.ListQuery{Search: "IBEX"})
		if err != nil || len(page.Conversations) != want {
			t.Fatalf("search: %+v, %v, want %d conversations", page, err, want)
		}
	}
	found(1)
	gate <- struct{}{} // one step: the first two messages
	gate <- struct{}{} // taken once the first step is done: the second waits on it
	if next := second.requeueNext.Load(); next < 3 {
		t.Fatalf("after a step, the next message to queue is %d, want past the first two", next)
	}
	found(1)
	if err := second.Close(ctx); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite", searchPath(path))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var next int64
	if err := raw.QueryRowContext(ctx, `SELECT next FROM requeue`).Scan(&next); err != nil || next < 3 {
		t.Fatalf("requeue row after a step and a restart: next %d, %v, want past the first two messages", next, err)
	}

	third := openTest(t, Options{Path: path})
	f.s = third
	waitIndexed(t, third)
	if third.requeueing.Load() {
		t.Error("still requeueing with an empty backlog")
	}
	if got := indexed(t, third); got != 5 {
		t.Errorf("index holds %d messages, want the 5 finished", got)
	}
	found(1)
	if !f.found(t, "two ibexes") || f.found(t, "six") {
		t.Error("search through the index is wrong")
	}
	var rows int
	if err := third.r.QueryRowContext(ctx, `SELECT count(*) FROM search.requeue`).Scan(&rows); err != nil || rows != 0 {
		t.Errorf("requeue rows once done: %d, %v", rows, err)
	}

	// A new file on a store without messages has nothing to requeue.
	empty := openTest(t, Options{})
	if empty.requeueing.Load() {
		t.Error("a new store requeues")
	}
}

// TestIndexBatchInKeyOrder: a batch of several users' messages, queued in
// an order whose search keys go up and down, with an indexed message
// queued again (as a rebuild's requeue may) and another user's
// conversation deleted, is written into the index as one segment (FTS5
// starts a new one at every key lower than the one before), and the index
// then holds every message once, the deleted ones not.
func TestIndexBatchInKeyOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openTest(t, Options{IndexQuiet: time.Hour, IndexMaxLag: time.Hour})
	users := []searchFixture{newSearchFixtureFor(t, s, "a@example.test"), newSearchFixtureFor(t, s, "b@example.test"),
		newSearchFixtureFor(t, s, "c@example.test")}
	gone := newSearchFixtureFor(t, s, "d@example.test") // the highest keys
	index := func() {
		t.Helper()
		if n, err := s.indexOnce(ctx); err != nil || n == 0 {
			t.Fatalf("indexOnce: %d, %v", n, err)
		}
		if n, err := s.SearchBacklog(ctx); err != nil || n != 0 {
			t.Fatalf("backlog after a batch: %d, %v", n, err)
		}
	}
	segments := func() int {
		t.Helper()
		var n int
		if err := s.sx.QueryRowContext(ctx, `SELECT count(DISTINCT segid) FROM message_fts_idx`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	again := users[2].insert(t, "an okapi twice", persistence.StatusComplete)
	gone.insert(t, "a quokka soon gone", persistence.StatusComplete)
	index()
	before := segments()

	// Users c, a, b, a, c, b, ...: keys (the owner's rowid high) down and up.
	order := []int{2, 0, 1, 0, 2, 1, 1, 0, 2}
	for i, u := range order {
		users[u].insert(t, fmt.Sprintf("word%dx of user %d", i, u), persistence.StatusComplete)
	}
	if _, err := s.w.ExecContext(ctx, `INSERT OR REPLACE INTO search_pending (msg, tag, owner)
		SELECT rowid, random(), owner_id FROM messages WHERE id = ?`, again.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteConversation(ctx, gone.user.ID, gone.conv.ID); err != nil {
		t.Fatal(err)
	}
	index()
	if got := segments(); got != before+1 {
		t.Errorf("index segments after one batch: %d, want %d (one more)", got, before+1)
	}
	for i, u := range order {
		for v := range users {
			if found := users[v].found(t, fmt.Sprintf("word%dx", i)); found != (u == v) {
				t.Errorf("user %d's search for message %d of user %d: found %v", v, i, u, found)
			}
		}
	}
	if !users[2].found(t, "okapi twice") {
		t.Error("the message queued again is not found")
	}
	var docs int
	if err := s.sx.QueryRowContext(ctx, `SELECT count(*) FROM message_fts_docsize`).Scan(&docs); err != nil {
		t.Fatal(err)
	}
	if got := indexed(t, s); got != len(order)+1 || docs != len(order)+1 {
		t.Errorf("index holds %d messages and %d documents, want %d: the new ones and the one queued again, not the deleted",
			got, docs, len(order)+1)
	}
}
