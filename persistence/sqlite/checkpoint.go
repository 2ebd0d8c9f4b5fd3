package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Background checkpoints. SQLite's default moves the write-ahead log into
// the database file on the connection that commits, once the log passes
// 1,000 pages: the write that crosses the line waits for a checkpoint of
// the whole log. Instead, a goroutine owned by the store checkpoints the log
// from a connection of its own (PASSIVE: it never waits for, nor blocks,
// the writer or the readers) at most every Options.CheckpointInterval
// while writes happen (and after one that a reader's older snapshot held
// back, until the log is copied whole), and the writer checkpoints itself only when the log
// passes walBackstopPages, which under a sustained write load (where a
// passive checkpoint never catches the log's end) bounds the log's growth;
// the background checkpoints have then copied most of it already.

// walBackstopPages is the writer's own wal_autocheckpoint with background
// checkpoints on (64 MiB of 4 KiB pages, journal_size_limit's size).
const walBackstopPages = 16384

// startCheckpointer starts the background checkpointer when interval > 0.
func (s *Store) startCheckpointer(ctx context.Context, opts Options) error {
	if opts.CheckpointInterval <= 0 {
		return nil
	}
	var err error
	if s.ck, err = sql.Open("sqlite", dsn(s.path, opts, roleCheckpointer)); err != nil {
		return err
	}
	s.ck.SetMaxOpenConns(1)
	s.ck.SetMaxIdleConns(1)
	s.ck.SetConnMaxLifetime(0)
	s.ck.SetConnMaxIdleTime(0)
	if err := s.ck.PingContext(ctx); err != nil {
		return fmt.Errorf("checkpointer: %w", err)
	}
	s.dirty = make(chan struct{}, 1)
	s.ckStop = make(chan struct{})
	s.ckEnded = make(chan struct{})
	go s.checkpointLoop(opts.CheckpointInterval)
	return nil
}

// stopCheckpointer ends the checkpointer (after a checkpoint in progress).
func (s *Store) stopCheckpointer() {
	if s.ckStop == nil {
		return
	}
	s.ckStopOnce.Do(func() { close(s.ckStop) })
	<-s.ckEnded
}

// wrote tells the checkpointer that a transaction was committed.
func (s *Store) wrote() {
	if s.dirty == nil {
		return
	}
	select {
	case s.dirty <- struct{}{}:
	default: // already told
	}
}

// checkpointLoop waits for a commit, checkpoints, and rests for interval.
// A checkpoint that could not copy the whole log (a read transaction held
// an older snapshot: a backup's VACUUM INTO, a long search) is tried again
// after each rest until it does, commit or not: waiting for the next
// commit left the log un-checkpointed on a quiet server for as long as
// nothing was written.
func (s *Store) checkpointLoop(interval time.Duration) {
	defer close(s.ckEnded)
	rest := time.NewTimer(interval)
	defer rest.Stop()
	partial := false
	for {
		if !partial {
			select {
			case <-s.dirty:
			case <-s.ckStop:
				return
			}
		}
		logPages, donePages := s.checkpointOnce()
		partial = donePages < logPages
		s.scrubIfAsked()
		rest.Reset(interval)
		select {
		case <-rest.C:
		case <-s.ckStop:
			return
		}
	}
}

// checkpointOnce runs one passive checkpoint and returns the log's size
// and how much of it is now in the database file, in pages.
func (s *Store) checkpointOnce() (logPages, donePages int) {
	var busy int
	err := s.ck.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logPages, &donePages)
	if err != nil {
		s.log.Warn("background checkpoint failed", "err", err)
		return 0, 0
	}
	s.ckLog.Store(int64(logPages))
	s.ckDone.Store(int64(donePages))
	return logPages, donePages
}
