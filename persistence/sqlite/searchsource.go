package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
)

// Which chatd.db the index belongs to.
//
// The index lives in the search file, the queue of what it has yet to
// take in lives in chatd.db: the two agree only as a pair. A chatd.db
// restored from a backup beside the newer search file, or a search file
// kept from another copy of the data directory, holds an index that took
// in deletions and changes the restored queue no longer names: their
// messages would be missed by search for good.
//
// chatd.db's search_state holds a step and a random token; the indexer
// changes both in every transaction that takes entries off the queue or
// queues a step of a rebuild. The search file's source row holds the state
// chatd.db has once the search file's last change is matched there (step,
// token) and the state before it (prev_step, prev_token); inflight holds
// the messages the index took in since prev. The writes go in this order:
//
//   - a batch of the index commits in the search file first (source moves
//     to a new state, the batch's messages join inflight), then its entries
//     leave the queue in chatd.db, with the move to that state. A crash
//     between leaves chatd.db at prev with the batch's entries queued:
//     they are indexed again, which changes nothing.
//   - a step of a rebuild's requeue commits in chatd.db first (the entries
//     and a new state), then in the search file (its progress and that
//     state). A crash between leaves the search file behind chatd.db, and
//     it is rebuilt anew.
//
// At open (searchMismatch) the search file is kept when chatd.db's state
// is its step and token, or its prev with every inflight message still
// queued; otherwise it is deleted and rebuilt, and the log says why. A
// chatd.db at the state the index matched holds in its queue every message
// whose state the index has not taken in (the triggers queue them, and
// only the indexer takes entries off, changing the state as it does),
// whatever moment of that state it was copied at (sqlite3's .backup, a
// copy of the directory). Tokens are random, so two copies of one
// database part at the first step of either's indexer after the copy,
// even at equal steps; a database created anew has a token of its own.

// searchState is a state of chatd.db's search queue (its search_state).
type searchState struct{ step, token int64 }

// next returns the state after st, with a new random token.
func (st searchState) next() searchState {
	return searchState{step: st.step + 1, token: rand.Int64()}
}

// qSetSearchState moves chatd.db's search_state, in the transaction of the
// queue's change.
var qSetSearchState = writeQ(`UPDATE search_state SET step = ?, token = ? WHERE id = 1`)

// readSearchState reads chatd.db's search_state (at open, on the writer).
func (s *Store) readSearchState(ctx context.Context) (searchState, error) {
	var st searchState
	err := s.w.QueryRowContext(ctx, `SELECT step, token FROM search_state WHERE id = 1`).Scan(&st.step, &st.token)
	if err != nil {
		return st, fmt.Errorf("search index: read the queue's state: %w", err)
	}
	return st, nil
}

// searchMismatch returns why the search file does not match chatd.db,
// whose queue is at state db, or "" when it does.
func (s *Store) searchMismatch(ctx context.Context, db searchState) (string, error) {
	var cur, prev searchState
	err := s.sx.QueryRowContext(ctx, `SELECT step, token, prev_step, prev_token FROM source`).
		Scan(&cur.step, &cur.token, &prev.step, &prev.token)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "it names no state of chatd.db", nil
	case err != nil:
		return "", fmt.Errorf("search index %s: %w", s.searchPath, err)
	case cur == db:
		return "", nil
	case prev == db:
		queued, err := s.inflightQueued(ctx)
		if err != nil || queued {
			return "", err
		}
		return "it took in changes that chatd.db does not hold queued (chatd.db restored from a backup?)", nil
	case cur.step > db.step:
		return fmt.Sprintf("it is ahead of chatd.db (step %d, chatd.db at %d): chatd.db was restored from a backup, or lost its last writes", cur.step, db.step), nil
	case cur.step < db.step:
		return fmt.Sprintf("it is behind chatd.db (step %d, chatd.db at %d): a search file kept from a backup or another copy", cur.step, db.step), nil
	}
	return "it belongs to another chatd.db, or to another copy of this one", nil
}

// inflightQueued reports whether every message of the search file's
// inflight is in chatd.db's queue.
func (s *Store) inflightQueued(ctx context.Context) (bool, error) {
	rows, err := s.sx.QueryContext(ctx, `SELECT msg FROM inflight`)
	if err != nil {
		return false, fmt.Errorf("search index %s: %w", s.searchPath, err)
	}
	var msgs []int64
	for rows.Next() {
		var m int64
		if err := rows.Scan(&m); err != nil {
			rows.Close()
			return false, fmt.Errorf("search index %s: %w", s.searchPath, err)
		}
		msgs = append(msgs, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("search index %s: %w", s.searchPath, err)
	}
	for _, m := range msgs {
		var one int
		err := s.w.QueryRowContext(ctx, `SELECT 1 FROM search_pending WHERE msg = ?`, m).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("search index: read the queue: %w", err)
		}
	}
	return true, nil
}

// recordBatch notes, in the search file's transaction of a batch, that
// the batch's messages are taken in on the way from chatd.db's state cur
// to next. When the source row is at cur (the last batch's entries left
// the queue), inflight starts anew from cur; otherwise (the last batch's
// removal from the queue failed: the source's prev is cur) the batch's
// messages join those of the batches before it.
func recordBatch(ctx context.Context, tx *sql.Tx, cur, next searchState, batch []pendingMsg) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM inflight WHERE EXISTS (SELECT 1 FROM source WHERE step = ?1 AND token = ?2)`,
		cur.step, cur.token); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE source SET prev_step = step, prev_token = token WHERE step = ? AND token = ?`,
		cur.step, cur.token); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE source SET step = ?, token = ?`, next.step, next.token); err != nil {
		return err
	}
	st, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO inflight (msg) VALUES (?)`)
	if err != nil {
		return err
	}
	defer st.Close()
	for _, p := range batch {
		if _, err := st.ExecContext(ctx, p.msg); err != nil {
			return err
		}
	}
	return nil
}

// recordState sets the search file's source to chatd.db's state st, with
// nothing in flight, together with stmt (a requeue's progress, or nothing).
func (s *Store) recordState(ctx context.Context, st searchState, stmt string, args ...any) error {
	tx, err := s.sx.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if stmt != "" {
		if _, err := tx.ExecContext(ctx, stmt, args...); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM inflight`); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE source SET step = ?1, token = ?2, prev_step = ?1, prev_token = ?2`,
		st.step, st.token); err != nil {
		return err
	}
	return tx.Commit()
}
