package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"chatd/persistence"
)

// TestDeleteUserSearchIndex: a deleted user's messages leave the search
// index. Searches never find them, neither while their removal waits in
// the indexer's queue (the search file held, as by a long merge) nor once
// the indexer took it in, which leaves none of their text in the index;
// their streaming answer's chunks go with them. A user registered again
// with the email takes the deleted user's row, so the range of search
// keys of their stale entries, and their first message takes a deleted
// message's row: they find nothing of the deleted user's. Another user's
// hits stay.
func TestDeleteUserSearchIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "chatd.db")
	s := openTest(t, Options{Path: path})
	kept := newSearchFixtureFor(t, s, "kept@example.test")
	kept.insert(t, "the okapi is shy", persistence.StatusComplete)
	appendChunk(t, s, kept.insert(t, "", persistence.StatusStreaming).ID, "an okapi streams")
	doomed := newSearchFixtureFor(t, s, "doomed@example.test")
	doomed.insert(t, "the wombat burrows", persistence.StatusComplete)
	doomed.insert(t, "an okapi too", persistence.StatusComplete)
	appendChunk(t, s, doomed.insert(t, "", persistence.StatusStreaming).ID, "a wombat streams")
	waitIndexed(t, s)
	if n := indexed(t, s); n != 3 {
		t.Fatalf("indexed %d messages before the delete, want 3", n)
	}
	userRow, lastMsgRow := rowid(t, s, "users", doomed.user.ID), maxRowid(t, s, "messages")

	hold := holdSearchFile(t, path)
	if err := s.DeleteUser(ctx, doomed.user.ID); err != nil {
		t.Fatal(err)
	}
	again := newSearchFixtureFor(t, s, doomed.user.Email)
	m := again.insert(t, "nothing to see", persistence.StatusComplete)
	checkDeletedUserSearch(t, s, kept, again, "while the index lags")
	if n, err := s.SearchBacklog(ctx); err != nil || n == 0 {
		t.Fatalf("backlog = %d, %v with the search file held, want the deleted messages queued", n, err)
	}
	if rowid(t, s, "users", again.user.ID) != userRow || rowid(t, s, "messages", m.ID) > lastMsgRow {
		t.Fatal("the new user or message did not take a deleted row: this test no longer checks what it means to")
	}
	if err := hold.Rollback(); err != nil {
		t.Fatal(err)
	}
	waitIndexed(t, s)
	checkDeletedUserSearch(t, s, kept, again, "once indexed")
	if n := indexed(t, s); n != 2 {
		t.Errorf("indexed %d messages after the delete, want the 2 of the users left", n)
	}
	if n := readInt(t, s, `SELECT count(*) FROM search.message_fts WHERE message_fts MATCH '`+ftsTrigrams("wombat")+`'`); n != 0 {
		t.Errorf("the index holds %d entries with the deleted user's word", n)
	}
}

// checkDeletedUserSearch fails unless kept finds its okapi and no wombat,
// again (who took the deleted user's email) finds only its own message,
// and only kept's streaming answer has chunks left.
func checkDeletedUserSearch(t *testing.T, s *Store, kept, again searchFixture, when string) {
	t.Helper()
	if !kept.found(t, "okapi") || kept.found(t, "wombat") {
		t.Errorf("%s: the user kept lost a hit, or found the deleted user's", when)
	}
	if again.found(t, "wombat") || again.found(t, "okapi") || !again.found(t, "nothing") {
		t.Errorf("%s: the new user's search is wrong", when)
	}
	if n := readInt(t, s, `SELECT count(*) FROM message_chunks`); n != 1 {
		t.Errorf("%s: %d chunks stored, want the user kept's 1", when, n)
	}
}

// appendChunk appends text to a streaming message, stored as a chunk.
func appendChunk(t *testing.T, s *Store, id, text string) {
	t.Helper()
	skipped, err := s.ApplyMessageUpdates(context.Background(), []persistence.MessageUpdate{{ID: id, Append: text}})
	if err != nil || len(skipped) > 0 {
		t.Fatalf("append to %s: skipped %v, %v", id, skipped, err)
	}
}

// holdSearchFile holds the search file's write lock, as a merge of the
// index would, until the returned transaction ends (or the test does).
func holdSearchFile(t *testing.T, path string) *sql.Tx {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+searchPath(path)+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	tx, err := db.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback() })
	return tx
}

// rowid returns the rowid of the row of table with that id.
func rowid(t *testing.T, s *Store, table, id string) int64 {
	t.Helper()
	return readInt(t, s, `SELECT rowid FROM `+table+` WHERE id = ?`, id)
}

// maxRowid returns the largest rowid of table.
func maxRowid(t *testing.T, s *Store, table string) int64 {
	t.Helper()
	return readInt(t, s, `SELECT max(rowid) FROM `+table)
}

// readInt runs a query for one integer on the read pool, which sees the
// search file.
func readInt(t *testing.T, s *Store, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := s.r.QueryRowContext(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}
