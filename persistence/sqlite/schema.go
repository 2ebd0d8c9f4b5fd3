package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations are applied in order; PRAGMA user_version records how many
// have run. Never edit a released migration: append a new one.
var migrations = []string{
	// 1: users, conversations, messages.
	`
CREATE TABLE users (
	id            TEXT    NOT NULL PRIMARY KEY,
	email         TEXT    NOT NULL,
	name          TEXT    NOT NULL,
	password_hash TEXT    NOT NULL,
	token_version INTEGER NOT NULL DEFAULT 0,
	created_at    INTEGER NOT NULL, -- Unix nanoseconds, as every *_at column
	updated_at    INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX users_email ON users (email);

CREATE TABLE conversations (
	id            TEXT    NOT NULL PRIMARY KEY,
	owner_id      TEXT    NOT NULL,
	title         TEXT    NOT NULL,
	model         TEXT    NOT NULL,
	system_prompt TEXT    NOT NULL,
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX conversations_owner_updated ON conversations (owner_id, updated_at DESC, id DESC);

CREATE TABLE messages (
	id                TEXT    NOT NULL PRIMARY KEY,
	conversation_id   TEXT    NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	owner_id          TEXT    NOT NULL,
	parent_id         TEXT    NOT NULL,
	role              TEXT    NOT NULL,
	content           TEXT    NOT NULL,
	model             TEXT    NOT NULL,
	status            TEXT    NOT NULL,
	finish_reason     TEXT    NOT NULL,
	prompt_tokens     INTEGER, -- usage: all three NULL when none was reported
	completion_tokens INTEGER,
	total_tokens      INTEGER,
	error             TEXT    NOT NULL,
	client_message_id TEXT    NOT NULL,
	created_at        INTEGER NOT NULL,
	updated_at        INTEGER NOT NULL,
	CHECK ((prompt_tokens IS NULL) = (completion_tokens IS NULL)
	   AND (prompt_tokens IS NULL) = (total_tokens IS NULL))
) STRICT;
CREATE INDEX messages_conversation_created ON messages (conversation_id, created_at, id);
CREATE UNIQUE INDEX messages_owner_client_id ON messages (owner_id, client_message_id);
CREATE INDEX messages_streaming ON messages (status) WHERE status = 'streaming';
`,
	// 2: the error code of a failed answer; a table for write probes; the
	// search index. message_fts holds the lower-cased text (chatd_lower, Go's
	// strings.ToLower) of every message that is no longer streaming, as
	// trigrams, keyed by the message's rowid; it stores no copy of the text
	// (contentless). Triggers keep it in sync: a streaming answer is indexed
	// once, when its final update lands, not at every checkpoint. A tool
	// that writes messages must register chatd_lower (the sqlite3 shell
	// cannot: use chatd, or drop the triggers and rebuild the index).
	`
ALTER TABLE messages ADD COLUMN error_code TEXT NOT NULL DEFAULT '';

CREATE TABLE probe (
	id INTEGER NOT NULL PRIMARY KEY,
	at INTEGER NOT NULL
) STRICT;

CREATE VIRTUAL TABLE message_fts USING fts5 (
	body, content = '', contentless_delete = 1, tokenize = 'trigram case_sensitive 1'
);
CREATE TRIGGER message_fts_insert AFTER INSERT ON messages
WHEN new.status != 'streaming' AND new.content != '' BEGIN
	INSERT INTO message_fts (rowid, body) VALUES (new.rowid, chatd_lower(new.content));
END;
CREATE TRIGGER message_fts_update AFTER UPDATE OF status, content ON messages
WHEN new.status != 'streaming' AND (old.status = 'streaming' OR new.content != old.content) BEGIN
	DELETE FROM message_fts WHERE rowid = old.rowid;
	INSERT INTO message_fts (rowid, body) SELECT new.rowid, chatd_lower(new.content) WHERE new.content != '';
END;
CREATE TRIGGER message_fts_delete AFTER DELETE ON messages BEGIN
	DELETE FROM message_fts WHERE rowid = old.rowid;
END;
INSERT INTO message_fts (rowid, body)
	SELECT rowid, chatd_lower(content) FROM messages WHERE status != 'streaming' AND content != '';
`,
	// 3: a model's reasoning beside its answer, prompt messages left out to
	// fit the context window, and per-conversation sampling parameters
	// (JSON, '' when none are set).
	`
ALTER TABLE messages ADD COLUMN reasoning TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN omitted_messages INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN params TEXT NOT NULL DEFAULT '';
`,
	// 4: the search index moves to a file of its own (search.go), so its
	// merges never hold the store's write lock; this file keeps the queue
	// of messages the index has yet to take in. Opening the new search file
	// queues every finished message, so the old index is dropped here.
	// IF EXISTS: migration 2 tells a tool that writes messages to drop its
	// triggers; a database so changed migrates too (an edit of a released
	// migration that changes nothing for any database it already ran on).
	`
DROP TRIGGER IF EXISTS message_fts_insert;
DROP TRIGGER IF EXISTS message_fts_update;
DROP TRIGGER IF EXISTS message_fts_delete;
DROP TABLE IF EXISTS message_fts;

CREATE TABLE search_pending (
	msg INTEGER NOT NULL PRIMARY KEY, -- a messages rowid
	tag INTEGER NOT NULL              -- random, new each time the entry is queued
) STRICT;
CREATE TRIGGER search_pending_insert AFTER INSERT ON messages
WHEN new.status != 'streaming' AND new.content != '' BEGIN
	INSERT OR REPLACE INTO search_pending (msg, tag) VALUES (new.rowid, random());
END;
CREATE TRIGGER search_pending_update AFTER UPDATE OF status, content ON messages
WHEN new.status != 'streaming' AND (old.status = 'streaming' OR new.content != old.content) BEGIN
	INSERT OR REPLACE INTO search_pending (msg, tag) VALUES (new.rowid, random());
END;
CREATE TRIGGER search_pending_delete AFTER DELETE ON messages BEGIN
	INSERT OR REPLACE INTO search_pending (msg, tag) VALUES (old.rowid, random());
END;
`,
	// 5: each queue entry names its message's owner, indexed, so that a
	// search checks only the owner's queued messages, not every queued
	// message with its text (while the index lags behind a burst of writes,
	// thousands; docs/benchmarks.md, data growth). Entries queued before
	// take their owner from their message (a deleted one's has none left:
	// it matches nothing).
	`
ALTER TABLE search_pending ADD COLUMN owner TEXT NOT NULL DEFAULT '';
UPDATE search_pending SET owner = coalesce((SELECT owner_id FROM messages WHERE rowid = msg), '');
CREATE INDEX search_pending_owner ON search_pending (owner, msg);
DROP TRIGGER search_pending_insert;
DROP TRIGGER search_pending_update;
DROP TRIGGER search_pending_delete;
CREATE TRIGGER search_pending_insert AFTER INSERT ON messages
WHEN new.status != 'streaming' AND new.content != '' BEGIN
	INSERT OR REPLACE INTO search_pending (msg, tag, owner) VALUES (new.rowid, random(), new.owner_id);
END;
CREATE TRIGGER search_pending_update AFTER UPDATE OF status, content ON messages
WHEN new.status != 'streaming' AND (old.status = 'streaming' OR new.content != old.content) BEGIN
	INSERT OR REPLACE INTO search_pending (msg, tag, owner) VALUES (new.rowid, random(), new.owner_id);
END;
CREATE TRIGGER search_pending_delete AFTER DELETE ON messages BEGIN
	INSERT OR REPLACE INTO search_pending (msg, tag, owner) VALUES (old.rowid, random(), old.owner_id);
END;
`,
	// 6: a streaming answer's checkpoints append their text (and reasoning)
	// here instead of rewriting the answer's row (chunks.go): a checkpoint
	// of many answers then writes the table's last pages and a few pages of
	// its index, not one row (with its whole text so far) per answer. The
	// row takes its chunks back, in order, in the update that ends the
	// answer, which deletes them. Chunks are keyed in insertion order, so a
	// message's chunks are in id order; at is the update's At (0: none).
	// Deleting a streaming message deletes its chunks (a rowid can be
	// taken again by a later message).
	`
CREATE TABLE message_chunks (
	id        INTEGER NOT NULL PRIMARY KEY,
	msg       INTEGER NOT NULL, -- a messages rowid
	at        INTEGER NOT NULL,
	content   TEXT    NOT NULL,
	reasoning TEXT    NOT NULL
) STRICT;
CREATE INDEX message_chunks_msg ON message_chunks (msg);
CREATE TRIGGER message_chunks_delete AFTER DELETE ON messages
WHEN old.status = 'streaming' BEGIN
	DELETE FROM message_chunks WHERE msg = old.rowid;
END;
`,
	// 7: conversations whose owner is gone, and their messages, deleted.
	// Before this schema, a request that passed its session check just
	// before the account's deletion could create a conversation after
	// DeleteUser had run (now refused: persistence.ErrUnknownOwner), which
	// no one could reach. A message's owner is its
	// conversation's, so these are all such messages. It reads every
	// conversation once: 20 to 80 ms on the growth benchmark's store (a
	// million messages, 50,000 conversations, nothing to delete).
	`
DELETE FROM messages WHERE conversation_id IN (
	SELECT id FROM conversations WHERE owner_id NOT IN (SELECT id FROM users));
DELETE FROM conversations WHERE owner_id NOT IN (SELECT id FROM users);
`,
	// 8: the state of the search queue (search.go, "Which chatd.db the
	// index belongs to"): a step that grows by one, and a random token new
	// with each step, changed by every write of the indexer to the queue.
	// The search file records the step and token it matches, so that a
	// search file beside a chatd.db restored from a backup, or beside
	// another copy's chatd.db, is told apart and rebuilt.
	`
CREATE TABLE search_state (
	id    INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
	step  INTEGER NOT NULL,
	token INTEGER NOT NULL
) STRICT;
INSERT INTO search_state (id, step, token) VALUES (1, 0, random());
`,
	// 9: a conversation's idempotency key (persistence.Conversation.ClientID),
	// unique per owner, so that a creation retried with the same key finds
	// the first one's conversation instead of making a second. Every
	// conversation has one: those created before take their own id, which
	// no client can have sent for them.
	`
ALTER TABLE conversations ADD COLUMN client_id TEXT NOT NULL DEFAULT '';
UPDATE conversations SET client_id = id;
CREATE UNIQUE INDEX conversations_owner_client_id ON conversations (owner_id, client_id);
`,
	// 10: an account deletion marks the user first (deleting_at, in its
	// own write), so that one cut off before its transaction committed
	// leaves a user no read finds, which FinishDeletions deletes.
	`
ALTER TABLE users ADD COLUMN deleting_at INTEGER;
CREATE INDEX users_deleting ON users (deleting_at) WHERE deleting_at IS NOT NULL;
`,
	// 11: every stored email in its normal form (emailform.Normalize):
	// the work is Go's (goSteps), in this step's transaction.
	`SELECT 1;`,
	// 12: a conversation's deletion marks it first (deleting_at, in its
	// own write), then deletes its messages in bounded writes
	// (deleteconv.go): from the mark on no read finds it and no message
	// enters it, and one cut off between its writes is finished by
	// FinishDeletions. A conversation being deleted no longer holds its
	// client id: the unique index is rebuilt without such rows (one pass
	// over the conversations, as migration 9's).
	`
ALTER TABLE conversations ADD COLUMN deleting_at INTEGER;
CREATE INDEX conversations_deleting ON conversations (deleting_at) WHERE deleting_at IS NOT NULL;
DROP INDEX conversations_owner_client_id;
CREATE UNIQUE INDEX conversations_owner_client_id ON conversations (owner_id, client_id) WHERE deleting_at IS NULL;
`,
}

// goSteps are the migrations whose work is done in Go, after the SQL of
// the same number, in the same transaction: run once per database, and
// recorded only with everything they wrote.
var goSteps = map[int]func(s *Store, ctx context.Context, tx *sql.Tx) error{
	11: (*Store).normalizeEmails,
}

// SchemaVersion is the schema version this package writes (the number of migrations).
func SchemaVersion() int { return len(migrations) }

// migrate applies pending migrations in one transaction on the writer and
// records the version it found in s.migratedFrom.
func (s *Store) migrate(ctx context.Context) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var version int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("migrate: read schema version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("migrate: database schema version %d is newer than this program's %d: run the release that wrote it, or restore a backup taken before the upgrade (docs/deploy.md)", version, len(migrations))
	}
	for v := version; v < len(migrations); v++ {
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			return fmt.Errorf("migrate: to version %d: %w", v+1, err)
		}
		if step := goSteps[v+1]; step != nil {
			if err := step(s, ctx, tx); err != nil {
				return fmt.Errorf("migrate: to version %d: %w", v+1, err)
			}
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
			return fmt.Errorf("migrate: record version %d: %w", v+1, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	s.migratedFrom = version
	return nil
}
