package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"chatd/persistence"
)

// A streaming answer's text as chunks (schema migration 6). A checkpoint
// of a streaming answer (an update that only appends text or reasoning)
// inserts one row into message_chunks instead of rewriting the answer's
// row: SQLite rewrites a whole row, with every overflow page of its text
// so far, to append to it, so N answers streaming at once cost N rows per
// checkpoint, each written to the write-ahead log and then copied into the
// database. Chunks are inserted at the end of their table, whatever the
// answer, so a checkpoint of N answers writes about their new text's pages
// and a few pages of message_chunks_msg. Any other update of a streaming
// answer (its final one, an interrupt) folds its chunks back into the row,
// in order, in the same statement, and deletes them in the same
// transaction: only streaming answers have chunks.
//
// Every read of a message sees the row and its chunks as one: a streaming
// message's content and reasoning are the row's followed by its chunks',
// and its updated_at is the At of its last chunk that has one (what the
// row's would be had the chunk rewritten it), else the row's. Reads of a
// finished message skip the chunks altogether (CASE on the status).

// msgColNames are the message columns in scanMsg's order.
var msgColNames = []string{"id", "conversation_id", "owner_id", "parent_id", "role", "content", "model", "status",
	"finish_reason", "prompt_tokens", "completion_tokens", "total_tokens", "error", "error_code",
	"client_message_id", "created_at", "updated_at", "reasoning", "omitted_messages"}

// msgCols lists the message columns for INSERT.
var msgCols = strings.Join(msgColNames, ", ")

// chunkText is SQL for column col of the chunks of the message whose rowid
// is the SQL expression rowid, concatenated in order (empty when it has none).
func chunkText(col, rowid string) string {
	return `coalesce((SELECT group_concat(c.` + col + `, '' ORDER BY c.id) FROM message_chunks c WHERE c.msg = ` +
		rowid + `), '')`
}

// chunkAt is SQL for the At of the last chunk of the message whose rowid
// is rowid that has one, else the SQL expression fallback.
func chunkAt(rowid, fallback string) string {
	return `coalesce((SELECT c.at FROM message_chunks c WHERE c.msg = ` + rowid +
		` AND c.at != 0 ORDER BY c.id DESC LIMIT 1), ` + fallback + `)`
}

// liveCol is SQL for column col (content, reasoning or updated_at) of the
// messages row t as a read sees it: with its chunks while it streams.
func liveCol(t, col string) string {
	folded := t + "." + col + " || " + chunkText(col, t+".rowid")
	if col == "updated_at" {
		folded = chunkAt(t+".rowid", t+".updated_at")
	}
	return `CASE WHEN ` + t + `.status = 'streaming' THEN ` + folded + ` ELSE ` + t + `.` + col + ` END`
}

// readCols is msgCols as a read of the messages row t sees them (see
// liveCol); withTexts false reads an empty content and reasoning instead.
func readCols(t string, withTexts bool) string {
	cols := make([]string, len(msgColNames))
	for i, c := range msgColNames {
		switch {
		case (c == "content" || c == "reasoning") && !withTexts:
			cols[i] = "''"
		case c == "content" || c == "reasoning" || c == "updated_at":
			cols[i] = liveCol(t, c)
		default:
			cols[i] = t + "." + c
		}
	}
	return strings.Join(cols, ", ")
}

// isChunk reports whether u only appends (text, reasoning, a new At) to a
// streaming message: it then becomes a chunk instead of a row update.
func isChunk(u persistence.MessageUpdate) bool {
	return !u.Status.Final() && u.FinishReason == "" && u.Usage == nil && u.Error == "" && u.ErrorCode == "" &&
		(u.Append != "" || u.AppendReasoning != "")
}

var (
	// qAppendChunk stores an update for which isChunk holds, if its message
	// streams: ?1 id, ?2 at (0: none), ?3 text, ?4 reasoning.
	qAppendChunk = writeQ(`INSERT INTO message_chunks (msg, at, content, reasoning)
		SELECT rowid, ?2, ?3, ?4 FROM messages WHERE id = ?1 AND status = 'streaming'`)
	qDropChunks    = writeQ(`DELETE FROM message_chunks WHERE msg = ?`)
	qDropAllChunks = writeQ(`DELETE FROM message_chunks`)
)

// updater applies MessageUpdates in one write transaction, binding each
// statement to it on first use.
type updater struct {
	ctx              context.Context // not cancellable (writeTx)
	tx               *writeTx
	chunk, row, drop *sql.Stmt
}

// stmt returns *p, binding q to the transaction first when *p is nil.
func (w *updater) stmt(p **sql.Stmt, q string) (*sql.Stmt, error) {
	if *p == nil {
		st, err := w.tx.stmt(w.ctx, q)
		if err != nil {
			return nil, err
		}
		*p = st
	}
	return *p, nil
}

// apply applies u and reports whether it applied (its message streams).
func (w *updater) apply(u persistence.MessageUpdate) (bool, error) {
	if isChunk(u) {
		st, err := w.stmt(&w.chunk, qAppendChunk)
		if err != nil {
			return false, err
		}
		res, err := st.ExecContext(w.ctx, u.ID, toNanos(u.At), u.Append, u.AppendReasoning)
		if err != nil {
			return false, err
		}
		n, err := res.RowsAffected()
		return n > 0, err
	}
	st, err := w.stmt(&w.row, qUpdateMsg)
	if err != nil {
		return false, err
	}
	p, c, t := usageArgs(u.Usage)
	var rowid int64
	err = st.QueryRowContext(w.ctx, u.ID, u.Append, string(u.Status), u.FinishReason,
		u.Usage != nil, p, c, t, u.Error, toNanos(u.At), u.ErrorCode, u.AppendReasoning).Scan(&rowid)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil // unknown, or no longer streaming
	}
	if err != nil {
		return false, err
	}
	return true, w.dropChunks(rowid)
}

// dropChunks deletes the chunks of the message with that rowid, which
// its row has just taken in.
func (w *updater) dropChunks(rowid int64) error {
	st, err := w.stmt(&w.drop, qDropChunks)
	if err != nil {
		return err
	}
	_, err = st.ExecContext(w.ctx, rowid)
	return err
}
