package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"chatd/persistence"
)

var (
	// qTouchConv finds no conversation being deleted, nor one whose owner
	// is (users.deleting_at: MarkUserDeleting, DeleteUser): a message
	// sent into one is refused (ErrNotFound) from its mark on, so its
	// deletion's steps have an end, and an account deletion's snapshot of
	// the user's running answers, read after its mark, misses none: an
	// answer stored before the mark is in it, one after is refused.
	// It moves the conversation past its stored time by ?1 (its new
	// messages' count), or to ?2 when later, and returns the conversation
	// so moved.
	qTouchConv = writeQ(`UPDATE conversations SET updated_at = max(updated_at + ?1, ?2)
	WHERE id = ?3 AND owner_id = ?4 AND deleting_at IS NULL
		AND EXISTS (SELECT 1 FROM users WHERE users.id = ?4 AND users.deleting_at IS NULL) RETURNING ` + convCols)
	qInsertMsg = writeQ(`INSERT INTO messages (` + msgCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	// Every read of messages skips those of a conversation being deleted
	// (convLive, msgConvLive): its messages go in steps after its mark.
	qMsgByID  = readQ(`SELECT ` + readCols("messages", true) + ` FROM messages WHERE id = ? AND owner_id = ? AND ` + msgConvLive("messages"))
	qMsgByCID = readQ(`SELECT ` + readCols("messages", true) + ` FROM messages WHERE owner_id = ? AND client_message_id = ? AND ` +
		msgConvLive("messages"))
	qMsgsConv = readQ(`SELECT ` + readCols("messages", true) + ` FROM messages WHERE conversation_id = ?1 AND owner_id = ?2
		AND ` + convLive("?1") + ` ORDER BY created_at, id`)
	qLatestAnswer = readQ(`SELECT ` + readCols("messages", true) + ` FROM messages WHERE conversation_id = ?1 AND owner_id = ?2
		AND parent_id = ?3 AND role = '` + string(persistence.RoleAssistant) + `' AND ` + convLive("?1") + `
		ORDER BY created_at DESC, id DESC LIMIT 1`)
	// qUpdateMsg applies one MessageUpdate that is not a chunk (chunks.go),
	// taking in the message's chunks first: ?1 id, ?2 append, ?3 status,
	// ?4 finish reason, ?5 has usage, ?6-?8 usage, ?9 error, ?10 at (0:
	// keep), ?11 error code, ?12 reasoning append. It returns the row's
	// rowid, whose chunks are then deleted.
	qUpdateMsg = writeQ(`UPDATE messages SET
		content = content || ` + chunkText("content", "messages.rowid") + ` || ?2,
		reasoning = reasoning || ` + chunkText("reasoning", "messages.rowid") + ` || ?12,
		status = CASE WHEN ?3 = '' THEN status ELSE ?3 END,
		finish_reason = CASE WHEN ?4 = '' THEN finish_reason ELSE ?4 END,
		prompt_tokens = CASE WHEN ?5 THEN ?6 ELSE prompt_tokens END,
		completion_tokens = CASE WHEN ?5 THEN ?7 ELSE completion_tokens END,
		total_tokens = CASE WHEN ?5 THEN ?8 ELSE total_tokens END,
		error = CASE WHEN ?9 = '' THEN error ELSE ?9 END,
		error_code = CASE WHEN ?11 = '' THEN error_code ELSE ?11 END,
		updated_at = CASE WHEN ?10 = 0 THEN ` + chunkAt("messages.rowid", "updated_at") + ` ELSE ?10 END
	WHERE id = ?1 AND status = 'streaming'
	RETURNING rowid`)
	// qInterrupt ends every streaming message, taking in its chunks
	// (qDropAllChunks then deletes them): ?1 at, ?2 error, ?3 error code.
	qInterrupt = writeQ(`UPDATE messages SET status = 'interrupted',
		content = content || ` + chunkText("content", "messages.rowid") + `,
		reasoning = reasoning || ` + chunkText("reasoning", "messages.rowid") + `, updated_at = ?1,
		error = ?2, error_code = ?3
	WHERE status = 'streaming'`)
	// qStreamingConvs finds the owner's streaming messages through the
	// partial index messages_streaming (unary +: not through the owner's
	// client id index, which holds every message of the owner).
	qStreamingConvs = readQ(`SELECT conversation_id FROM messages WHERE status = 'streaming' AND +owner_id = ? AND ` +
		msgConvLive("messages"))
	// qInterruptOne: ?1 id, ?2 owner, ?3 error ('' keeps it), ?4 at; it
	// takes in the message's chunks and returns its rowid.
	qInterruptOne = writeQ(`UPDATE messages SET status = 'interrupted',
		content = content || ` + chunkText("content", "messages.rowid") + `,
		reasoning = reasoning || ` + chunkText("reasoning", "messages.rowid") + `,
		error = CASE WHEN ?3 = '' THEN error ELSE ?3 END, updated_at = ?4
	WHERE id = ?1 AND owner_id = ?2 AND status = 'streaming'
	RETURNING rowid`)
	qSetOmitted = writeQ(`UPDATE messages SET omitted_messages = ?3
	WHERE id = ?1 AND owner_id = ?2 AND status = 'streaming'`)
)

// InsertMessage stores m, filling ID and ClientMessageID when empty and the
// timestamps always, and moves the conversation's UpdatedAt to m.CreatedAt,
// all in one transaction. ErrNotFound when the owner has no such
// conversation (or it, or the owner, is being deleted) or m.ParentID is malformed; ErrDuplicate (nothing stored) when the id or the owner's
// client message id is taken.
func (s *Store) InsertMessage(ctx context.Context, m *persistence.Message) error {
	return s.InsertMessages(ctx, m)
}

// InsertMessages stores ms in order in one transaction, each as
// InsertMessage does (each later than the one before); on any error
// nothing is stored and ms are left unchanged (persistence.MessagesInserter).
func (s *Store) InsertMessages(ctx context.Context, ms ...*persistence.Message) error {
	_, err := s.InsertTouching(ctx, ms...)
	return err
}

// InsertTouching is InsertMessages, and returns the conversation of the
// last of ms as the transaction left it (persistence.TouchingInserter):
// the touch that moves it forward reads it (RETURNING), no other query.
func (s *Store) InsertTouching(ctx context.Context, ms ...*persistence.Message) (persistence.Conversation, error) {
	var touched persistence.Conversation
	vs := make([]persistence.Message, len(ms))
	for i, m := range ms {
		v := *m
		if err := fillID(&v.ID); err != nil {
			return touched, fmt.Errorf("sqlite: insert message: %w", err)
		}
		if v.ParentID != "" && !persistence.ValidID(v.ParentID) {
			// It names no message (as on MongoDB, whose parent_id is an
			// ObjectID); a well-formed one is not looked up.
			return touched, fmt.Errorf("sqlite: insert message: parent message %q: %w", v.ParentID, persistence.ErrNotFound)
		}
		if v.ClientMessageID == "" {
			v.ClientMessageID = persistence.NewID()
		}
		vs[i] = v
	}
	failed := 0 // the message whose insert failed
	err := s.write(ctx, func(tx *writeTx) error {
		for i := range vs {
			failed = i
			if i != lastOfConv(vs, i) {
				continue
			}
			// One touch per conversation, which times its messages: a
			// send's two rows move it up once.
			c, err := s.touchConv(ctx, tx, vs, i)
			if err != nil {
				return err
			}
			if i == len(vs)-1 {
				touched = c
			}
		}
		for i, v := range vs {
			failed = i
			if err := insertRow(ctx, tx, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return persistence.Conversation{}, fmt.Errorf("sqlite: insert message into conversation %s: %w", vs[failed].ConversationID, mapErr(err))
	}
	for i, m := range ms {
		*m = vs[i]
	}
	return touched, nil
}

// lastOfConv returns the index of the last of vs in the conversation (and
// of the owner) of vs[i].
func lastOfConv(vs []persistence.Message, i int) int {
	last := i
	for j := i + 1; j < len(vs); j++ {
		if vs[j].ConversationID == vs[i].ConversationID && vs[j].OwnerID == vs[i].OwnerID {
			last = j
		}
	}
	return last
}

// touchConv times the messages of vs in the conversation of vs[last],
// their last there, and moves the conversation to the last one's time;
// ErrNotFound when the owner has no such conversation. Each is later than
// the one before and than the conversation's stored UpdatedAt, which is
// at or after every message stored in it: the touch takes it past that by
// their count when this process's clock is behind (a last run's clock, or
// another process's, was ahead; or another write of the conversation was
// queued first), so a message never sorts before those already there.
// It returns the conversation so moved.
func (s *Store) touchConv(ctx context.Context, tx *writeTx, vs []persistence.Message, last int) (persistence.Conversation, error) {
	var in []int // the conversation's messages in vs, in order
	for i := range last + 1 {
		if vs[i].ConversationID == vs[last].ConversationID && vs[i].OwnerID == vs[last].OwnerID {
			in = append(in, i)
		}
	}
	row, err := tx.queryRow(ctx, qTouchConv, len(in), s.clock.reserve(len(in)), vs[last].ConversationID, vs[last].OwnerID)
	if err != nil {
		return persistence.Conversation{}, err
	}
	c, err := scanConv(row)
	if errors.Is(err, sql.ErrNoRows) {
		return c, persistence.ErrNotFound
	}
	if err != nil {
		return c, err
	}
	at := toNanos(c.UpdatedAt)
	for k, i := range in {
		t := fromNanos(at - int64(len(in)-1-k))
		vs[i].CreatedAt, vs[i].UpdatedAt = t, t
	}
	return c, err
}

// insertRow inserts v's row, whose id and timestamps are set.
func insertRow(ctx context.Context, tx *writeTx, v persistence.Message) error {
	now := toNanos(v.CreatedAt)
	p, c, t := usageArgs(v.Usage)
	_, err := tx.exec(ctx, qInsertMsg, v.ID, v.ConversationID, v.OwnerID, v.ParentID, string(v.Role), v.Content,
		v.Model, string(v.Status), v.FinishReason, p, c, t, v.Error, v.ErrorCode, v.ClientMessageID, now, now,
		v.Reasoning, int64(v.OmittedMessages))
	return err
}

// Message returns one of the owner's messages.
func (s *Store) Message(ctx context.Context, ownerID, id string) (persistence.Message, error) {
	m, err := s.oneMsg(ctx, qMsgByID, id, ownerID)
	if err != nil {
		return m, fmt.Errorf("sqlite: message %s: %w", id, err)
	}
	return m, nil
}

// MessageByClientID returns the owner's message with that client id.
func (s *Store) MessageByClientID(ctx context.Context, ownerID, clientMessageID string) (persistence.Message, error) {
	m, err := s.oneMsg(ctx, qMsgByCID, ownerID, clientMessageID)
	if err != nil {
		return m, fmt.Errorf("sqlite: message by client id %q: %w", clientMessageID, err)
	}
	return m, nil
}

// LatestAnswer returns the newest answer to message parentID of the
// owner's conversation.
func (s *Store) LatestAnswer(ctx context.Context, ownerID, conversationID, parentID string) (persistence.Message, error) {
	m, err := s.oneMsg(ctx, qLatestAnswer, conversationID, ownerID, parentID)
	if err != nil {
		return m, fmt.Errorf("sqlite: latest answer to message %s: %w", parentID, err)
	}
	return m, nil
}

// oneMsg runs a query that returns at most one message.
func (s *Store) oneMsg(ctx context.Context, q string, args ...any) (persistence.Message, error) {
	row, err := s.queryRow(ctx, q, args...)
	if err != nil {
		return persistence.Message{}, err
	}
	m, err := scanMsg(row)
	return m, s.readErr(err)
}

// Messages returns every message of the owner's conversation (all
// branches), oldest first; ErrNotFound when the owner has no such conversation.
func (s *Store) Messages(ctx context.Context, ownerID, conversationID string) ([]persistence.Message, error) {
	ms, err := s.messages(ctx, ownerID, conversationID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: messages of conversation %s: %w", conversationID, err)
	}
	return ms, nil
}

func (s *Store) messages(ctx context.Context, ownerID, conversationID string) ([]persistence.Message, error) {
	ms, err := s.scanMsgs(ctx, qMsgsConv, conversationID, ownerID)
	if err != nil {
		return nil, err
	}
	if len(ms) > 0 {
		return ms, nil
	}
	ok, err := s.convExists(ctx, ownerID, conversationID)
	if err == nil && !ok {
		err = persistence.ErrNotFound
	}
	return ms, err
}

// collectMsgs reads every row of rows, a messages query, and closes it;
// the slice is empty, not nil, when there is none.
func collectMsgs(rows *sql.Rows) ([]persistence.Message, error) {
	defer rows.Close()
	ms := []persistence.Message{}
	for rows.Next() {
		m, err := scanMsg(rows)
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	return ms, rows.Err()
}

// ApplyMessageUpdates writes the batch in one transaction. An update
// that only appends to a streaming message becomes a chunk (chunks.go);
// any other takes the message's chunks into its row, with its own text
// appended (content = content || chunks || ?), and deletes them. Appends
// are never read and rewritten here. Each statement is conditional on the
// message still streaming, and its changed-row count says whether it
// applied: unknown ids and final messages are returned as skipped.
func (s *Store) ApplyMessageUpdates(ctx context.Context, updates []persistence.MessageUpdate) ([]string, error) {
	if len(updates) == 0 {
		return nil, nil
	}
	var skipped []string
	err := s.write(ctx, func(tx *writeTx) error {
		skipped = nil // the committer may run fn again (group.go)
		w := &updater{ctx: context.WithoutCancel(ctx), tx: tx}
		applied := make(map[string]bool, len(updates))
		for _, u := range updates {
			ok, err := w.apply(u)
			if err != nil {
				return fmt.Errorf("message %s: %w", u.ID, err)
			}
			applied[u.ID] = applied[u.ID] || ok
		}
		for id, ok := range applied {
			if !ok {
				skipped = append(skipped, id)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: apply %d message updates: %w", len(updates), err)
	}
	return skipped, nil
}

// InterruptStreaming marks every streaming message interrupted, with its
// chunks taken in and the restart as its error (persistence.RestartError),
// and returns how many changed.
func (s *Store) InterruptStreaming(ctx context.Context) (int, error) {
	var n int64
	at := s.clock.now()
	err := s.write(ctx, func(tx *writeTx) error {
		var err error
		if n, err = tx.exec(ctx, qInterrupt, at, persistence.RestartError, persistence.RestartErrorCode); err != nil {
			return err
		}
		_, err = tx.exec(ctx, qDropAllChunks) // every message that had chunks streamed
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: interrupt streaming messages: %w", err)
	}
	return int(n), nil
}

// InterruptMessage marks one message interrupted if it is still streaming
// and returns it as stored.
func (s *Store) InterruptMessage(ctx context.Context, ownerID, id, reason string, at time.Time) (persistence.Message, error) {
	if at.IsZero() {
		at = fromNanos(s.clock.now())
	}
	err := s.write(ctx, func(tx *writeTx) error {
		w := &updater{ctx: context.WithoutCancel(ctx), tx: tx}
		row, err := tx.queryRow(ctx, qInterruptOne, id, ownerID, reason, toNanos(at))
		if err != nil {
			return err
		}
		var rowid int64
		if err := row.Scan(&rowid); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return nil // unknown, or no longer streaming
			}
			return err
		}
		return w.dropChunks(rowid)
	})
	if err != nil {
		return persistence.Message{}, fmt.Errorf("sqlite: interrupt message %s: %w", id, err)
	}
	return s.Message(ctx, ownerID, id)
}

// SetOmittedMessages sets the omitted-message count of the owner's
// streaming message id (see persistence.Messages).
func (s *Store) SetOmittedMessages(ctx context.Context, ownerID, id string, n int) error {
	var changed int64
	err := s.write(ctx, func(tx *writeTx) error {
		var err error
		changed, err = tx.exec(ctx, qSetOmitted, id, ownerID, n)
		return err
	})
	if err == nil && changed == 0 {
		_, err = s.Message(ctx, ownerID, id) // ErrNotFound, or no longer streaming
	}
	if err != nil {
		return fmt.Errorf("sqlite: set omitted messages of %s: %w", id, err)
	}
	return nil
}

// StreamingConversations returns the ids of the owner's conversations with
// a streaming message, each once.
func (s *Store) StreamingConversations(ctx context.Context, ownerID string) ([]string, error) {
	ids, err := s.streamingConvs(ctx, ownerID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: streaming conversations of %s: %w", ownerID, err)
	}
	return ids, nil
}

// streamingConvs reads qStreamingConvs, dropping repeats in Go: an owner
// has few streaming messages, and SQL's DISTINCT would sort them.
func (s *Store) streamingConvs(ctx context.Context, ownerID string) ([]string, error) {
	all, err := s.queryStrings(ctx, qStreamingConvs, ownerID)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, id := range all {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// usageArgs returns the three usage columns, NULL for a nil usage.
func usageArgs(u *persistence.Usage) (p, c, t any) {
	if u == nil {
		return nil, nil, nil
	}
	return int64(u.PromptTokens), int64(u.CompletionTokens), int64(u.TotalTokens)
}

// scanMsg reads one message row in msgCols order.
func scanMsg(r rowScanner) (persistence.Message, error) {
	var m persistence.Message
	var role, status string
	var p, c, t sql.NullInt64
	var created, updated, omitted int64
	err := r.Scan(&m.ID, &m.ConversationID, &m.OwnerID, &m.ParentID, &role, &m.Content, &m.Model, &status,
		&m.FinishReason, &p, &c, &t, &m.Error, &m.ErrorCode, &m.ClientMessageID, &created, &updated, &m.Reasoning, &omitted)
	if err != nil {
		return persistence.Message{}, err
	}
	m.OmittedMessages = int(omitted)
	m.Role, m.Status = persistence.Role(role), persistence.Status(status)
	if p.Valid {
		m.Usage = &persistence.Usage{PromptTokens: int(p.Int64), CompletionTokens: int(c.Int64), TotalTokens: int(t.Int64)}
	}
	m.CreatedAt, m.UpdatedAt = fromNanos(created), fromNanos(updated)
	return m, nil
}
