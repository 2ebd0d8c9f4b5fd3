package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Deleted text off the disk. The writer's and the indexer's connections
// delete with secure_delete on (dsn): a deleted row's bytes (a message's
// text, a title, an email, a streaming answer's chunks) are zeroed in its
// page, and a page left empty, an overflow page of a long text included,
// is zeroed before it joins the free list. (FAST, which zeroes only
// within pages that are written anyway, leaves the free pages as they
// were.) In WAL mode the zeroed pages reach the database file at a
// checkpoint, and the log keeps the pages as they were before in its
// older frames until they are written over. So once a deletion has
// finished (DeleteUser, a conversation's deletion, FinishDeletions), the
// log is scrubbed: checkpointed in full and truncated to nothing
// (wal_checkpoint(TRUNCATE)), by the checkpointer at its next turn
// (within Options.CheckpointInterval), or at once by the deletion itself
// when the checkpointer is off. The indexer scrubs the search file's log
// in the same way once it has taken in a batch that dropped deleted
// messages (search.go). A scrub that cannot finish within scrubBusy (a
// long read of the old frames) is tried again: at the checkpointer's next
// turn, the indexer's a second later, or at the next deletion when the
// checkpointer is off.

// scrubBusy bounds how long a scrub waits for the write lock and then for
// the readers of the log's old frames; writers wait for it about as long
// at most (it holds the write lock while it waits for readers).
const scrubBusy = 250 * time.Millisecond

// errScrubBusy: a scrub could not finish within scrubBusy.
var errScrubBusy = errors.New("the log is in use")

// deletionDone has chatd.db's log scrubbed after a finished deletion: by
// the checkpointer at its next turn, or now when the checkpointer is off.
func (s *Store) deletionDone(ctx context.Context) {
	if s.dirty == nil {
		if err := s.scrubLog(ctx, s.w, s.path); err != nil {
			s.log.Warn("scrubbing the write-ahead log after a deletion failed; the next deletion tries again", "err", err)
		}
		return
	}
	s.scrub.Store(true)
	s.wrote()
}

// scrubLog checkpoints the log of the database db (at path) in full and
// truncates it, waiting at most scrubBusy for the write lock and for
// readers, on a connection of db, whose busy timeout it then restores.
func (s *Store) scrubLog(ctx context.Context, db *sql.DB, path string) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("scrub %s: %w", path, err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", scrubBusy.Milliseconds())); err != nil {
		return fmt.Errorf("scrub %s: %w", path, err)
	}
	defer func() {
		restore := fmt.Sprintf("PRAGMA busy_timeout = %d", s.busyTimeout.Milliseconds())
		if _, err := conn.ExecContext(context.WithoutCancel(ctx), restore); err != nil {
			s.log.Warn("restoring a connection's busy timeout after a scrub failed", "path", path, "err", err)
		}
	}()
	var busy, logPages, done int
	if err := conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logPages, &done); err != nil {
		return fmt.Errorf("scrub %s: %w", path, err)
	}
	if busy != 0 {
		return fmt.Errorf("scrub %s: %w", path, errScrubBusy)
	}
	if s.scrubbed != nil {
		s.scrubbed(path)
	}
	return nil
}

// scrubIfAsked runs the scrub of chatd.db's log a deletion asked for, on
// the checkpointer's connection; one that fails is asked for again.
func (s *Store) scrubIfAsked() {
	if !s.scrub.Swap(false) {
		return
	}
	if err := s.scrubLog(context.Background(), s.ck, s.path); err != nil {
		s.log.Info("scrubbing the write-ahead log after a deletion: trying again at the next checkpoint", "err", err)
		s.scrub.Store(true)
		s.wrote()
	}
}
