package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"chatd/persistence"
)

// TestMigrateFromVersion1: a database written by the first schema opens
// with every message kept, error codes empty, its finished messages found
// by search at once and taken into the search index, and its streaming ones
// found without it.
func TestMigrateFromVersion1(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "chatd.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	stmts := []string{
		migrations[0],
		`PRAGMA user_version = 1`,
		`INSERT INTO conversations VALUES ('c00000000000000000000001', 'o00000000000000000000001', 'old', 'm', '', 1, 2)`,
		`INSERT INTO messages VALUES ('a00000000000000000000001', 'c00000000000000000000001', 'o00000000000000000000001', '',
			'assistant', 'The Pangolin is scaly', 'm', 'error', '', NULL, NULL, NULL, 'it failed', 'x1', 1, 1)`,
		`INSERT INTO messages VALUES ('a00000000000000000000002', 'c00000000000000000000001', 'o00000000000000000000001', '',
			'assistant', 'an axolotl streams', 'm', 'streaming', '', NULL, NULL, NULL, '', 'x2', 2, 2)`,
	}
	for _, q := range stmts {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

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
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM search.message_fts WHERE message_fts MATCH '"pangolin"'`).Scan(&indexed); err != nil || indexed != 1 {
		t.Fatalf("finished message in the index: %d, %v", indexed, err)
	}
}

// TestMigrateFromVersion2: a database written by the second schema (error
// codes, search index) opens with its messages and error codes kept, no
// reasoning, nothing omitted and no parameters, and takes all three.
func TestMigrateFromVersion2(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "chatd.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	const owner, convID, msgID = "o00000000000000000000001", "c00000000000000000000001", "a00000000000000000000001"
	stmts := []string{
		migrations[0],
		migrations[1],
		`PRAGMA user_version = 2`,
		`INSERT INTO conversations VALUES ('` + convID + `', '` + owner + `', 'old', 'm', '', 1, 2)`,
		`INSERT INTO messages VALUES ('` + msgID + `', '` + convID + `', '` + owner + `', '',
			'assistant', 'a quokka smiles', 'm', 'streaming', '', NULL, NULL, NULL, 'it failed', 'x1', 1, 1, 'timeout')`,
	}
	for _, q := range stmts {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

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
