package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"chatd/persistence"
)

// TestMigrateFromVersion1: a database written by the first schema opens
// with every message kept, error codes empty, its finished messages found
// by search at once and taken into the search index, and its streaming ones
// found without it.
func TestMigrateFromVersion1(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	stmts := []string{
		migrations[0],
		`PRAGMA user_version = 1`,
		oldUser("o00000000000000000000001"),
		`INSERT INTO conversations VALUES ('c00000000000000000000001', 'o00000000000000000000001', 'old', 'm', '', 1, 2)`,
		`INSERT INTO messages VALUES ('a00000000000000000000001', 'c00000000000000000000001', 'o00000000000000000000001', '',
			'assistant', 'The Pangolin is scaly', 'm', 'error', '', NULL, NULL, NULL, 'it failed', 'x1', 1, 1)`,
		`INSERT INTO messages VALUES ('a00000000000000000000002', 'c00000000000000000000001', 'o00000000000000000000001', '',
			'assistant', 'an axolotl streams', 'm', 'streaming', '', NULL, NULL, NULL, '', 'x2', 2, 2)`,
	}
	path := oldDatabase(t, stmts)

	s := openTest(t, Options{Path: path})
	if s.migratedFrom != 1 {
		t.Fatalf("migrated from %d, want 1", s.migratedFrom)
	}
	m, err := s.Message(ctx, "o00000000000000000000001", "a00000000000000000000001")
	if err != nil || m.ErrorCode != "" || m.Error != "it failed" || m.Content != "The Pangolin is scaly" {
		t.Fatalf("old message after migration: %+v, %v", m, err)
	}
	for _, q := range []string{"pangolin", "AXOLOTL", "is sc"} {
		page, err := s.ListConversations(ctx, "o00000000000000000000001", persistence.ListQuery{Search: q})
		if err != nil || len(page.Conversations) != 1 {
			t.Fatalf("search %q after migration: %+v, %v", q, page, err)
		}
	}
	waitIndexed(t, s)
	var indexed int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM search.message_fts WHERE message_fts MATCH ?`, ftsTrigrams("pangolin")).Scan(&indexed); err != nil || indexed != 1 {
		t.Fatalf("finished message in the index: %d, %v", indexed, err)
	}
}

// TestMigrateFromVersion2: a database written by the second schema (error
// codes, search index) opens with its messages and error codes kept, no
// reasoning, nothing omitted and no parameters, and takes all three.
func TestMigrateFromVersion2(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const owner, convID, msgID = "o00000000000000000000001", "c00000000000000000000001", "a00000000000000000000001"
	stmts := []string{
		migrations[0],
		migrations[1],
		`PRAGMA user_version = 2`,
		oldUser(owner),
		`INSERT INTO conversations VALUES ('` + convID + `', '` + owner + `', 'old', 'm', '', 1, 2)`,
		`INSERT INTO messages VALUES ('` + msgID + `', '` + convID + `', '` + owner + `', '',
			'assistant', 'a quokka smiles', 'm', 'streaming', '', NULL, NULL, NULL, 'it failed', 'x1', 1, 1, 'timeout')`,
	}
	path := oldDatabase(t, stmts)

	s := openTest(t, Options{Path: path})
	if s.migratedFrom != 2 {
		t.Fatalf("migrated from %d, want 2", s.migratedFrom)
	}
	m, err := s.Message(ctx, owner, msgID)
	if err != nil || m.ErrorCode != "timeout" || m.Content != "a quokka smiles" || m.Reasoning != "" || m.OmittedMessages != 0 {
		t.Fatalf("old message after migration: %+v, %v", m, err)
	}
	c, err := s.Conversation(ctx, owner, convID)
	if err != nil || c.Params != nil {
		t.Fatalf("old conversation after migration: %+v, %v", c, err)
	}
	if page, err := s.ListConversations(ctx, owner, persistence.ListQuery{Search: "QUOKKA"}); err != nil || len(page.Conversations) != 1 {
		t.Fatalf("search after migration: %+v, %v", page, err)
	}

	// (Still streaming: a final message takes no more updates.)
	if skipped, err := s.ApplyMessageUpdates(ctx, []persistence.MessageUpdate{{ID: msgID, AppendReasoning: "thinking"}}); err != nil || skipped != nil {
		t.Fatalf("reasoning update: skipped %v, %v", skipped, err)
	}
	temp := 0.5
	if _, err := s.UpdateConversation(ctx, owner, convID, persistence.ConversationPatch{Params: &persistence.Params{Temperature: &temp}}); err != nil {
		t.Fatal(err)
	}
	m, err = s.Message(ctx, owner, msgID)
	if err != nil || m.Reasoning != "thinking" || m.ErrorCode != "timeout" {
		t.Fatalf("message after a reasoning update: %+v, %v", m, err)
	}
	c, err = s.Conversation(ctx, owner, convID)
	if err != nil || c.Params == nil || c.Params.Temperature == nil || *c.Params.Temperature != temp {
		t.Fatalf("conversation after setting parameters: %+v, %v", c, err)
	}
}

// TestMigrateFromVersion4: the index's queue entries of a database written
// by the fourth schema take their messages' owners, and a search while the
// index has not taken them in yet finds each owner's queued messages, and
// only the owner's; new entries name their owner too.
//
// That release wrote no search file the current one keeps (it names no
// state of chatd.db): the first open makes a new one and holds its rebuild
// (requeueGate), so that the queue is the migration's. The second open
// finds that file current (its rebuild's row removed, as once the rebuild
// is done) with its writer held up: searches read the migrated queue.
func TestMigrateFromVersion4(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	owners := []string{"o00000000000000000000001", "o00000000000000000000002"}
	convs := []string{"c00000000000000000000001", "c00000000000000000000002"}
	stmts := []string{migrations[0], migrations[1], migrations[2], migrations[3], `PRAGMA user_version = 4`}
	for i := range owners {
		stmts = append(stmts,
			oldUser(owners[i]),
			`INSERT INTO conversations (id, owner_id, title, model, system_prompt, created_at, updated_at)
				VALUES ('`+convs[i]+`', '`+owners[i]+`', 'old', 'm', '', 1, 2)`,
			`INSERT INTO messages (id, conversation_id, owner_id, parent_id, role, content, model, status,
				finish_reason, error, client_message_id, created_at, updated_at)
				VALUES ('a0000000000000000000000`+string(rune('1'+i))+`', '`+convs[i]+`', '`+owners[i]+`', '',
				'user', 'a quokka smiles', 'm', 'complete', '', '', 'x', 1, 1)`)
	}
	path := oldDatabase(t, stmts)
	queued := func(s *Store) map[string]int {
		t.Helper()
		rows, err := s.r.QueryContext(ctx, `SELECT p.owner, m.owner_id FROM search_pending p JOIN messages m ON m.rowid = p.msg`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		got := map[string]int{}
		for rows.Next() {
			var owner, msgOwner string
			if err := rows.Scan(&owner, &msgOwner); err != nil {
				t.Fatal(err)
			}
			if owner != msgOwner {
				t.Errorf("queue entry names owner %q for a message of %q", owner, msgOwner)
			}
			got[owner]++
		}
		return got
	}

	gate := make(chan struct{}) // never released: the rebuild queues nothing, the indexer indexes nothing
	s, err := Open(ctx, Options{Path: path, Logger: slog.New(slog.DiscardHandler), requeueGate: gate})
	if err != nil {
		t.Fatal(err)
	}
	if s.migratedFrom != 4 {
		t.Fatalf("migrated from %d, want 4", s.migratedFrom)
	}
	if got := queued(s); got[owners[0]] != 1 || got[owners[1]] != 1 || len(got) != 2 {
		t.Fatalf("queue after migration: %v, want one entry of each owner", got)
	}
	m := persistence.Message{ConversationID: convs[0], OwnerID: owners[0], Role: persistence.RoleUser,
		Content: "a second quokka", Status: persistence.StatusComplete}
	if err := s.InsertMessage(ctx, &m); err != nil {
		t.Fatal(err)
	}
	if got := queued(s); got[owners[0]] != 2 || got[owners[1]] != 1 || len(got) != 2 {
		t.Fatalf("queue after an insert: %v, want 2 and 1", got)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}

	sx, err := sql.Open("sqlite", searchPath(path))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sx.ExecContext(ctx, `DELETE FROM requeue`); err != nil {
		t.Fatal(err)
	}
	if err := sx.Close(); err != nil {
		t.Fatal(err)
	}
	hold := holdSearchFile(t, path)

	s = openTest(t, Options{Path: path})
	if s.requeueing.Load() {
		t.Fatal("the search file was rebuilt again: the searches below would not read the queue")
	}
	if got := queued(s); got[owners[0]] != 2 || got[owners[1]] != 1 || len(got) != 2 {
		t.Fatalf("queue after a restart with the index held up: %v, want 2 and 1", got)
	}
	for i, owner := range owners {
		page, err := s.ListConversations(ctx, owner, persistence.ListQuery{Search: "QUOKKA"})
		if err != nil || len(page.Conversations) != 1 || page.Conversations[0].ID != convs[i] {
			t.Fatalf("search of owner %d with the index held up: %+v, %v", i, page, err)
		}
	}
	if err := hold.Rollback(); err != nil {
		t.Fatal(err)
	}
	waitIndexed(t, s)
	for i, owner := range owners {
		page, err := s.ListConversations(ctx, owner, persistence.ListQuery{Search: "quokka smiles"})
		if err != nil || len(page.Conversations) != 1 || page.Conversations[0].ID != convs[i] {
			t.Fatalf("search of owner %d through the index: %+v, %v", i, page, err)
		}
	}
}

// TestMigrateFromVersion5: an answer left streaming in a database of the
// fifth schema (its text so far in its row) takes checkpoints as chunks
// after the migration, reads as row and chunks together, and the start-up
// sweep folds both into the row.
func TestMigrateFromVersion5(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const owner, convID, msgID = "o00000000000000000000001", "c00000000000000000000001", "a00000000000000000000001"
	stmts := append(slices.Clone(migrations[:5]), `PRAGMA user_version = 5`, oldUser(owner),
		`INSERT INTO conversations (id, owner_id, title, model, system_prompt, created_at, updated_at)
			VALUES ('`+convID+`', '`+owner+`', 'old', 'm', '', 1, 2)`,
		`INSERT INTO messages (id, conversation_id, owner_id, parent_id, role, content, model, status,
			finish_reason, error, client_message_id, created_at, updated_at, reasoning)
			VALUES ('`+msgID+`', '`+convID+`', '`+owner+`', '', 'assistant', 'so far, ', 'm', 'streaming', '', '', 'x', 1, 1, 'hm')`)
	path := oldDatabase(t, stmts)

	s := openTest(t, Options{Path: path})
	if s.migratedFrom != 5 {
		t.Fatalf("migrated from %d, want 5", s.migratedFrom)
	}
	at := time.Unix(0, 7).UTC()
	if skipped, err := s.ApplyMessageUpdates(ctx, []persistence.MessageUpdate{{ID: msgID, Append: "then more", AppendReasoning: "m", At: at}}); err != nil || skipped != nil {
		t.Fatalf("checkpoint after migration: skipped %v, %v", skipped, err)
	}
	m, err := s.Message(ctx, owner, msgID)
	if err != nil || m.Content != "so far, then more" || m.Reasoning != "hmm" || !m.UpdatedAt.Equal(at) {
		t.Fatalf("streaming answer after a checkpoint: %+v, %v", m, err)
	}
	if n, err := s.InterruptStreaming(ctx); err != nil || n != 1 {
		t.Fatalf("InterruptStreaming: %d, %v", n, err)
	}
	var content, reasoning string
	if err := s.w.QueryRowContext(ctx, `SELECT content, reasoning FROM messages WHERE id = ?`, msgID).Scan(&content, &reasoning); err != nil ||
		content != "so far, then more" || reasoning != "hmm" {
		t.Fatalf("row after the sweep: %q, %q, %v", content, reasoning, err)
	}
}

// TestMigrateFromVersion6: conversations of a database of the sixth schema
// whose owner is gone (left by a create that raced the account's
// deletion) are deleted with their messages, streaming ones and their
// chunks included, and leave the search index; every other user's
// conversations and messages stay.
func TestMigrateFromVersion6(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const kept, gone = "o00000000000000000000001", "o00000000000000000000002"
	stmts := append(slices.Clone(migrations[:6]), `PRAGMA user_version = 6`, oldUser(kept))
	for i, owner := range []string{kept, gone, gone} {
		conv := fmt.Sprintf("c0000000000000000000000%d", i+1)
		stmts = append(stmts,
			`INSERT INTO conversations (id, owner_id, title, model, system_prompt, created_at, updated_at)
				VALUES ('`+conv+`', '`+owner+`', 'old', 'm', '', 1, 2)`,
			`INSERT INTO messages (id, conversation_id, owner_id, parent_id, role, content, model, status,
				finish_reason, error, client_message_id, created_at, updated_at)
				VALUES ('a0000000000000000000000`+fmt.Sprint(i+1)+`', '`+conv+`', '`+owner+`', '',
				'user', 'a numbat digs', 'm', 'complete', '', '', 'x`+fmt.Sprint(i)+`', 1, 1)`,
			`INSERT INTO messages (id, conversation_id, owner_id, parent_id, role, content, model, status,
				finish_reason, error, client_message_id, created_at, updated_at)
				VALUES ('b0000000000000000000000`+fmt.Sprint(i+1)+`', '`+conv+`', '`+owner+`', '',
				'assistant', 'so far', 'm', 'streaming', '', '', 'y`+fmt.Sprint(i)+`', 2, 2)`,
			`INSERT INTO message_chunks (msg, at, content, reasoning)
				SELECT rowid, 3, ' and more', '' FROM messages WHERE id = 'b0000000000000000000000`+fmt.Sprint(i+1)+`'`)
	}
	path := oldDatabase(t, stmts)

	s := openTest(t, Options{Path: path})
	if s.migratedFrom != 6 {
		t.Fatalf("migrated from %d, want 6", s.migratedFrom)
	}
	counts := map[string]string{
		"conversations": `SELECT count(*) FROM conversations`,
		"messages":      `SELECT count(*) FROM messages`,
		"chunks":        `SELECT count(*) FROM message_chunks`,
		"gone's":        `SELECT count(*) FROM messages WHERE owner_id = '` + gone + `'`,
		"kept's":        `SELECT count(*) FROM messages WHERE owner_id = '` + kept + `'`,
		"kept's chunks": `SELECT count(*) FROM message_chunks c JOIN messages m ON m.rowid = c.msg WHERE m.owner_id = '` + kept + `'`,
	}
	want := map[string]int{"conversations": 1, "messages": 2, "chunks": 1, "gone's": 0, "kept's": 2, "kept's chunks": 1}
	for name, q := range counts {
		var n int
		if err := s.r.QueryRowContext(ctx, q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != want[name] {
			t.Errorf("%s after migration: %d, want %d", name, n, want[name])
		}
	}
	page, err := s.ListConversations(ctx, kept, persistence.ListQuery{Search: "numbat"})
	if err != nil || len(page.Conversations) != 1 {
		t.Fatalf("the kept user's search after migration: %+v, %v", page, err)
	}
	wantIndexed(t, s, 1, "after the migration (the kept user's finished message)")
}

// oldUser is the statement that inserts the user id into a database of
// any schema.
func oldUser(id string) string {
	return `INSERT INTO users (id, email, name, password_hash, created_at, updated_at)
		VALUES ('` + id + `', '` + id + `@example.test', 'U', 'x', 1, 1)`
}

// oldDatabase writes a database file by running stmts (an old schema and
// its rows) without the store, and returns its path.
func oldDatabase(t *testing.T, stmts []string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "chatd.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range stmts {
		if _, err := db.ExecContext(context.Background(), q); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestMigrateFromVersion7: a database of the seventh schema, beside the
// search file its release wrote (layout 2, which names no state of
// chatd.db, here with an entry for a message the store does not have),
// gets the search queue's state, and its search file is rebuilt in the
// current layout from the store: its messages are found, the stale entry
// is gone.
func TestMigrateFromVersion7(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const owner = "o00000000000000000000001"
	path := oldDatabase(t, append(slices.Clone(migrations[:7]), `PRAGMA user_version = 7`, oldUser(owner),
		`INSERT INTO conversations (id, owner_id, title, model, system_prompt, created_at, updated_at)
			VALUES ('c00000000000000000000001', '`+owner+`', 'old', 'm', '', 1, 2)`,
		`INSERT INTO messages (id, conversation_id, owner_id, parent_id, role, content, model, status,
			finish_reason, error, client_message_id, created_at, updated_at)
			VALUES ('a00000000000000000000001', 'c00000000000000000000001', '`+owner+`', '',
			'user', 'a numbat digs', 'm', 'complete', '', '', 'x1', 1, 1)`,
		`DELETE FROM search_pending`, // the old release's indexer took it in
	))
	old, err := sql.Open("sqlite", "file:"+searchPath(path))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.ExecContext(ctx, `PRAGMA journal_mode = WAL;
		CREATE VIRTUAL TABLE message_fts USING fts5 (
			body, content = '', contentless_delete = 1, detail = none, tokenize = 'trigram case_sensitive 1');
		CREATE TABLE indexed (msg INTEGER NOT NULL PRIMARY KEY, key INTEGER NOT NULL) STRICT;
		CREATE TABLE requeue (next INTEGER NOT NULL, last INTEGER NOT NULL) STRICT;
		INSERT INTO message_fts (rowid, body) VALUES ((1 << 40) | 1, 'a numbat digs');
		INSERT INTO message_fts (rowid, body) VALUES ((1 << 40) | 2, 'a stale numbat');
		INSERT INTO indexed (msg, key) VALUES (1, (1 << 40) | 1), (2, (1 << 40) | 2);
		PRAGMA user_version = 2;`); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	s := openTest(t, Options{Path: path})
	if s.migratedFrom != 7 {
		t.Fatalf("migrated from %d, want 7", s.migratedFrom)
	}
	var states int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM search_state`).Scan(&states); err != nil || states != 1 {
		t.Fatalf("search_state rows: %d, %v, want 1", states, err)
	}
	wantIndexed(t, s, 1, "after the upgrade (the store's one message)")
	var version int
	if err := s.r.QueryRowContext(ctx, `PRAGMA search.user_version`).Scan(&version); err != nil || version != searchVersion {
		t.Errorf("search file layout %d, %v, want %d", version, err, searchVersion)
	}
	page, err := s.ListConversations(ctx, owner, persistence.ListQuery{Search: "numbat d"})
	if err != nil || len(page.Conversations) != 1 {
		t.Fatalf("search after the upgrade: %+v, %v", page, err)
	}
}

// TestMigrateFromVersion8: the conversations of a database of the eighth
// schema, two of one owner, each get their own id as their client id (the
// unique index over owner and client id takes them), are found by it, and
// the owner's next creations with a key are idempotent.
func TestMigrateFromVersion8(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const owner = "o00000000000000000000001"
	conv := func(id string) string {
		return `INSERT INTO conversations (id, owner_id, title, model, system_prompt, created_at, updated_at)
			VALUES ('` + id + `', '` + owner + `', 'old', 'm', '', 1, 2)`
	}
	path := oldDatabase(t, append(slices.Clone(migrations[:8]), `PRAGMA user_version = 8`, oldUser(owner),
		conv("c00000000000000000000001"), conv("c00000000000000000000002")))

	s := openTest(t, Options{Path: path})
	if s.migratedFrom != 8 {
		t.Fatalf("migrated from %d, want 8", s.migratedFrom)
	}
	for _, id := range []string{"c00000000000000000000001", "c00000000000000000000002"} {
		c, err := s.ConversationByClientID(ctx, owner, id)
		if err != nil || c.ID != id || c.ClientID != id {
			t.Fatalf("ConversationByClientID(%s) after the upgrade: %+v, %v", id, c, err)
		}
	}
	first := persistence.Conversation{OwnerID: owner, ClientID: "k"}
	if err := s.CreateConversation(ctx, &first); err != nil {
		t.Fatalf("CreateConversation after the upgrade: %v", err)
	}
	again := persistence.Conversation{OwnerID: owner, ClientID: "k"}
	if err := s.CreateConversation(ctx, &again); !errors.Is(err, persistence.ErrDuplicate) {
		t.Fatalf("CreateConversation with the same key after the upgrade: %v, want ErrDuplicate", err)
	}
}

// TestMigrateFromVersion11: the conversations of a database of the
// eleventh schema keep their messages and client ids (still unique per
// owner) and take the deletion mark of schema 12: one cut off after its
// mark is gone for its owner, its client id is free at once, and
// FinishDeletions deletes it with its messages.
func TestMigrateFromVersion11(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const owner = "o00000000000000000000001"
	convs := []string{"c00000000000000000000001", "c00000000000000000000002"}
	stmts := append(slices.Clone(migrations[:11]), `PRAGMA user_version = 11`, oldUser(owner))
	for i, id := range convs {
		stmts = append(stmts, `INSERT INTO conversations (id, owner_id, title, model, system_prompt, created_at, updated_at, client_id)
			VALUES ('`+id+`', '`+owner+`', 'old', 'm', '', 1, 2, 'k`+id+`')`,
			fmt.Sprintf(`INSERT INTO messages (id, conversation_id, owner_id, parent_id, role, content, model, status,
				finish_reason, error, client_message_id, created_at, updated_at)
				VALUES ('a0000000000000000000000%d', '%s', '%s', '', 'user', 'a numbat digs', 'm', 'complete', '', '', 'x%d', 1, 1)`,
				i+1, id, owner, i))
	}
	path := oldDatabase(t, stmts)

	s := openTest(t, Options{Path: path, DeletionSweep: -1})
	if s.migratedFrom != 11 {
		t.Fatalf("migrated from %d, want 11", s.migratedFrom)
	}
	for _, id := range convs {
		if _, ms, err := s.ConversationWithMessages(ctx, owner, id); err != nil || len(ms) != 1 {
			t.Fatalf("conversation %s after the upgrade: %d messages, %v", id, len(ms), err)
		}
	}
	dup := persistence.Conversation{OwnerID: owner, ClientID: "k" + convs[1]}
	if err := s.CreateConversation(ctx, &dup); !errors.Is(err, persistence.ErrDuplicate) {
		t.Fatalf("CreateConversation with a stored client id after the upgrade: %v, want ErrDuplicate", err)
	}

	cutCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	cutCtx = persistence.WithDeleteHook(cutCtx, func(step string) {
		if step == stepConvMarked {
			cancel()
		}
	})
	if err := s.DeleteConversation(cutCtx, owner, convs[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Conversation(ctx, owner, convs[0]); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("the conversation cut off after its mark: %v, want ErrNotFound", err)
	}
	reuse := persistence.Conversation{OwnerID: owner, ClientID: "k" + convs[0]}
	if err := s.CreateConversation(ctx, &reuse); err != nil {
		t.Fatalf("CreateConversation with the client id of a conversation being deleted: %v", err)
	}
	if n, err := s.FinishDeletions(ctx); err != nil || n != 1 {
		t.Fatalf("FinishDeletions = %d, %v; want 1, nil", n, err)
	}
	if n := readInt(t, s, `SELECT count(*) FROM messages WHERE conversation_id = ?`, convs[0]); n != 0 {
		t.Errorf("%d messages of the deleted conversation left", n)
	}
	page, err := s.ListConversations(ctx, owner, persistence.ListQuery{Search: "numbat"})
	if err != nil || len(page.Conversations) != 1 || page.Conversations[0].ID != convs[1] {
		t.Fatalf("search after the deletion: %+v, %v; want only %s", page, err, convs[1])
	}
}

// TestMigrateRefusesNewerSchema: a database a later release migrated is
// refused, untouched, with a message that names both versions and both
// ways out (the newer release again, or a backup from before it).
func TestMigrateRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	newer := len(migrations) + 1
	path := oldDatabase(t, append(slices.Clone(migrations), fmt.Sprintf(`PRAGMA user_version = %d`, newer)))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Open(ctx, Options{Path: path, Logger: slog.New(slog.DiscardHandler)})
	if err == nil {
		_ = s.Close(ctx)
		t.Fatal("Open accepted a schema version newer than it knows")
	}
	for _, want := range []string{fmt.Sprint(newer), fmt.Sprint(len(migrations)), "newer", "release that wrote it", "backup"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var version int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil || version != newer {
		t.Fatalf("schema version after the refusal: %d, %v; want %d", version, err, newer)
	}
}
