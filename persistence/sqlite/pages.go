package sqlite

import (
	"context"
	"database/sql/driver"
	"fmt"
	"strings"
	"time"

	"modernc.org/sqlite"

	"chatd/persistence"
)

var (
	qMsgCreated = readQ(`SELECT created_at FROM messages WHERE id = ?1 AND conversation_id = ?2 AND owner_id = ?3
		AND ` + convLive("?2"))
	qMsgsNewest = readQ(`SELECT ` + readCols("messages", true) + ` FROM messages WHERE conversation_id = ?1 AND owner_id = ?2
		AND ` + convLive("?1") + ` ORDER BY created_at DESC, id DESC LIMIT ?3`)
	qMsgsBefore = readQ(`SELECT ` + readCols("messages", true) + ` FROM messages WHERE conversation_id = ?1 AND owner_id = ?2
		AND (created_at, id) < (?4, ?5) AND ` + convLive("?1") + ` ORDER BY created_at DESC, id DESC LIMIT ?3`)
	qMsgsOutline = readQ(`SELECT ` + readCols("messages", false) + ` FROM messages
		WHERE conversation_id = ?1 AND owner_id = ?2 AND ` + convLive("?1") + ` ORDER BY created_at, id`)
	qContent   = textReads("content")
	qReasoning = textReads("reasoning")
	qProbe     = writeQ(`INSERT INTO probe (id, at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at`)
)

// MessagePage returns the newest q.Limit messages created before q.Before
// (or the newest ones), oldest first, and whether older ones exist; fewer
// when their text passes q.MaxBytes (persistence.PageFill).
func (s *Store) MessagePage(ctx context.Context, ownerID, conversationID string, q persistence.PageQuery) (persistence.MessagePage, error) {
	page, err := s.messagePage(ctx, ownerID, conversationID, q)
	if err != nil {
		return page, fmt.Errorf("sqlite: page of conversation %s before %q: %w", conversationID, q.Before, err)
	}
	return page, nil
}

func (s *Store) messagePage(ctx context.Context, ownerID, conversationID string, q persistence.PageQuery) (persistence.MessagePage, error) {
	fill := persistence.NewPageFill(q)
	query, args := qMsgsNewest, []any{conversationID, ownerID, fill.Rows()}
	if q.Before != "" {
		row, err := s.queryRow(ctx, qMsgCreated, q.Before, conversationID, ownerID)
		if err != nil {
			return fill.Page(), err
		}
		var created int64
		if err := row.Scan(&created); err != nil {
			return fill.Page(), s.readErr(err)
		}
		query, args = qMsgsBefore, append(args, created, q.Before)
	}
	if err := s.fillPage(ctx, fill, query, args...); err != nil {
		return persistence.MessagePage{Messages: []persistence.Message{}}, err
	}
	page := fill.Page()
	if len(page.Messages) == 0 && q.Before == "" {
		if ok, err := s.convExists(ctx, ownerID, conversationID); err != nil || !ok {
			return page, cmpErr(err, persistence.ErrNotFound)
		}
	}
	return page, nil
}

// fillPage runs a read query returning messages, newest first, into
// fill until it is full: the rows after the one that filled it are not
// read (persistence.PageFill).
func (s *Store) fillPage(ctx context.Context, fill *persistence.PageFill, q string, args ...any) error {
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		m, err := scanMsg(rows)
		if err != nil {
			return s.readErr(err)
		}
		if !fill.Take(m) {
			break
		}
	}
	return s.readErr(rows.Err())
}

// MessageOutline returns the conversation's messages without their text and reasoning.
func (s *Store) MessageOutline(ctx context.Context, ownerID, conversationID string) ([]persistence.Message, error) {
	ms, err := s.scanMsgs(ctx, qMsgsOutline, conversationID, ownerID)
	if err == nil && len(ms) == 0 {
		var ok bool
		if ok, err = s.convExists(ctx, ownerID, conversationID); err == nil && !ok {
			err = persistence.ErrNotFound
		}
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: outline of conversation %s: %w", conversationID, err)
	}
	return ms, nil
}

// scanMsgs runs a read query returning messages.
func (s *Store) scanMsgs(ctx context.Context, q string, args ...any) ([]persistence.Message, error) {
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	ms, err := collectMsgs(rows)
	return ms, s.readErr(err)
}

// ReadContent hands fn the message's text in pieces of about
// persistence.ContentPieceBytes. The text's extent is read first: text
// appended meanwhile (a streaming answer) is left for the next read. A
// streaming answer's chunks are read about once each, however many
// pieces its text takes (textread.go).
func (s *Store) ReadContent(ctx context.Context, ownerID, id string, fn func(string) error) error {
	if err := s.readText(ctx, qContent, ownerID, id, fn); err != nil {
		return fmt.Errorf("sqlite: read text of message %s: %w", id, err)
	}
	return nil
}

// ReadReasoning hands fn the message's reasoning as ReadContent its text.
func (s *Store) ReadReasoning(ctx context.Context, ownerID, id string, fn func(string) error) error {
	if err := s.readText(ctx, qReasoning, ownerID, id, fn); err != nil {
		return fmt.Errorf("sqlite: read reasoning of message %s: %w", id, err)
	}
	return nil
}

// ProbeWrite rewrites one row of the probe table. While a write the disk
// refused (full, or failing) is recent and no write succeeded after it,
// it fails with that write's error instead, writing nothing: the probe's
// row is rewritten in place, which a nearly full disk still takes while
// it refuses every write that needs a new page (diskfull.go).
func (s *Store) ProbeWrite(ctx context.Context) error {
	if err := s.disk.failing(time.Now()); err != nil {
		return fmt.Errorf("sqlite: probe write: %w", err)
	}
	if _, err := s.exec(ctx, qProbe, s.clock.now()); err != nil {
		return fmt.Errorf("sqlite: probe write: %w", mapErr(err))
	}
	return nil
}

// cmpErr returns err, or fallback when err is nil.
func cmpErr(err, fallback error) error {
	if err != nil {
		return err
	}
	return fallback
}

func init() {
	sqlite.MustRegisterDeterministicScalarFunction("chatd_lower", 1, lowerFunc)
}

// lowerFunc is chatd_lower(text): strings.ToLower, the folding search
// compares with (see message_fts in schema.go).
func lowerFunc(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
	switch v := args[0].(type) {
	case string:
		return strings.ToLower(v), nil
	case []byte:
		return strings.ToLower(string(v)), nil
	}
	return "", nil
}
