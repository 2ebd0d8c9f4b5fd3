package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

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

// TestDeleteUserInSteps: an account deletion deletes the user's messages,
// then conversations, in writes of at most Options.deleteStep rows each,
// and another user's write commits between two of them (a send, made
// from the deletion's step hook, with a short time limit): a user with
// many messages does not hold the only writer for the whole deletion.
// Everything of the deleted user goes (rows, streaming chunks, search
// index entries); the other user's data stays.
func TestDeleteUserInSteps(t *testing.T) {
	t.Parallel()
	const step = 10
	perConv := []int{20, 15}
	s := openTest(t, Options{deleteStep: step})
	kept := newSearchFixtureFor(t, s, "kept@example.test")
	kept.insert(t, "the okapi is shy", persistence.StatusComplete)
	doomed := newSearchFixtureFor(t, s, "doomed@example.test")
	second := persistence.Conversation{OwnerID: doomed.user.ID, Model: "m"}
	if err := s.CreateConversation(context.Background(), &second); err != nil {
		t.Fatal(err)
	}
	for i, conv := range []persistence.Conversation{doomed.conv, second} {
		f := doomed
		f.conv = conv
		for j := range perConv[i] {
			f.insert(t, fmt.Sprintf("wombat %d of %d", j, i), persistence.StatusComplete)
		}
	}
	appendChunk(t, s, doomed.insert(t, "", persistence.StatusStreaming).ID, "a wombat streams") // the 36th
	waitIndexed(t, s)
	left := func(q string) int64 { return readInt(t, s, q, doomed.user.ID) }
	const msgsLeft, convsLeft = `SELECT count(*) FROM messages WHERE owner_id = ?`, `SELECT count(*) FROM conversations WHERE owner_id = ?`
	before := map[string]int64{stepMsgsDeleted: left(msgsLeft), stepConvsDeleted: left(convsLeft)}
	if before[stepMsgsDeleted] != 36 || before[stepConvsDeleted] != 2 {
		t.Fatalf("the doomed user has %v before the delete", before)
	}

	steps := map[string]int{}
	keptSends := 1
	ctx := persistence.WithDeleteHook(context.Background(), func(done string) {
		q := map[string]string{stepMsgsDeleted: msgsLeft, stepConvsDeleted: convsLeft}[done]
		if q == "" {
			return
		}
		steps[done]++
		now := left(q)
		if gone := before[done] - now; gone > step || (gone == 0 && now > 0) {
			t.Errorf("a step of %q deleted %d rows, %d left: want 1 to %d", done, gone, now, step)
		}
		before[done] = now
		// Another user's send, between two steps: it commits at once.
		sendCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		m := persistence.Message{ConversationID: kept.conv.ID, OwnerID: kept.user.ID, Role: persistence.RoleUser,
			Content: fmt.Sprintf("okapi send %d", keptSends), Status: persistence.StatusComplete}
		if err := s.InsertMessage(sendCtx, &m); err != nil {
			t.Errorf("another user's send after a step of %q: %v", done, err)
			return
		}
		keptSends++
	})
	if err := s.DeleteUser(ctx, doomed.user.ID); err != nil {
		t.Fatal(err)
	}
	if steps[stepMsgsDeleted] != 4 || steps[stepConvsDeleted] != 1 {
		t.Errorf("the deletion took %v steps, want 4 of messages (36 by %d) and 1 of conversations", steps, step)
	}
	for q, what := range map[string]string{
		msgsLeft:  "messages",
		convsLeft: "conversations",
		`SELECT count(*) FROM users WHERE id = ?`:                                                     "user rows",
		`SELECT count(*) FROM search_pending WHERE owner = ? AND msg IN (SELECT rowid FROM messages)`: "queued entries of live rows",
	} {
		if n := left(q); n != 0 {
			t.Errorf("%d %s of the deleted user left", n, what)
		}
	}
	if n := readInt(t, s, `SELECT count(*) FROM message_chunks`); n != 0 {
		t.Errorf("%d chunks left, want none (the deleted user's streaming answer's)", n)
	}
	if n := readInt(t, s, `SELECT count(*) FROM messages WHERE owner_id = ?`, kept.user.ID); n != int64(keptSends) {
		t.Errorf("the user kept has %d messages, want %d", n, keptSends)
	}
	wantIndexed(t, s, keptSends, "after the delete")
	if !kept.found(t, "okapi") {
		t.Error("the user kept lost their hits")
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
