package sqlite

import (
	"context"
	"errors"
	"fmt"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// A damaged search file.
//
// The search file is derived data, so damage to it (a disk's bad sectors,
// a copy cut short, a file overwritten by hand) costs a rebuild, never an
// answer. At open, a search file that SQLite finds is not a database or
// is malformed is deleted and rebuilt as a missing one is (openSearch).
// While the store runs, the damage shows where the index is read or
// written: a search through it fails, and is answered by reading the
// user's messages instead (the scan a search makes while a new index is
// filled), or a batch of the indexer fails. Either marks the file damaged
// (ixDamaged, logged once as an error naming the file): searches scan,
// and the indexer empties the file in place and fills it again from the
// store (rebuildSearch). In place, because every read connection attaches
// the file: a file deleted and made anew would leave them reading the
// damaged one.

// damaged reports whether err is SQLite's "not a database" or "malformed".
func damaged(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff { // primary result code
	case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
		return true
	}
	return false
}

// searchFileErr marks the search file damaged when err, from a statement
// of the indexer on it, says it is, and returns err.
func (s *Store) searchFileErr(err error) error {
	if damaged(err) {
		s.searchDamaged(s.ixRebuilds.Load(), err)
	}
	return err
}

// searchDamaged marks the search file damaged, logging it the first time
// (until it is rebuilt), and tells the indexer, which rebuilds it.
// Searches read every message of the user meanwhile. gen is the count of
// rebuilds (ixRebuilds) when the read that failed began: a search that
// read the file as a rebuild began marks nothing.
func (s *Store) searchDamaged(gen int64, err error) {
	if s.ixRebuilds.Load() != gen {
		return
	}
	if s.ixDamaged.CompareAndSwap(false, true) {
		s.log.Error("search index: its file is damaged; searches read every message until it is rebuilt, which starts now",
			"path", s.searchPath, "err", err)
	}
	s.pokeIndexer()
}

// qLastMessage is the rowid of the store's last message (0 without one).
var qLastMessage = readQ(`SELECT coalesce(max(rowid), 0) FROM messages`)

// rebuildSearch empties the damaged search file in place (resetSearchFile)
// and makes a new index in it, as openSearch does in a new file: every
// message up to the last one now is queued by requeueAll, those after it
// by the triggers. requeueing is set before ixDamaged is cleared, so that
// searches go on scanning (list reads ixDamaged first); ixRebuilds counts
// the rebuild before the file is emptied, so that a search through the
// index that began before sees it once done, and is answered by a scan.
func (s *Store) rebuildSearch(ctx context.Context) error {
	s.ixRebuilds.Add(1)
	if err := s.resetSearchFile(ctx); err != nil {
		return fmt.Errorf("empty it: %w", err)
	}
	row, err := s.queryRow(ctx, qLastMessage)
	if err != nil {
		return err
	}
	var last int64
	if err := row.Scan(&last); err != nil {
		return fmt.Errorf("read the last message: %w", err)
	}
	if err := s.createSearch(ctx, last); err != nil {
		return fmt.Errorf("create: %w", err)
	}
	s.requeueNext.Store(1)
	s.requeueLast.Store(last)
	s.requeueing.Store(last > 0)
	s.ixDamaged.Store(false)
	s.log.Info("search index: the damaged file is emptied; every message is queued for the index again", "path", s.searchPath)
	return nil
}

// restorer is the driver connection's restore from another database
// (SQLite's backup API, copying into this connection's main database).
type restorer interface {
	NewRestore(srcURI string) (*sqlite.Backup, error)
}

// resetSearchFile replaces the search file's content with an empty
// database, through the indexer's connection: SQLite's backup API copies
// an empty in-memory database over it, writing its pages through the
// write-ahead log as any write does, so the read connections that attach
// the file see it empty at their next read; no damaged page is read. A
// file whose first page is damaged (not a database) cannot be reset so:
// the next start deletes it (openSearch).
func (s *Store) resetSearchFile(ctx context.Context) error {
	conn, err := s.sx.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		r, ok := dc.(restorer)
		if !ok {
			return errors.New("the driver's connection has no restore")
		}
		b, err := r.NewRestore(":memory:")
		if err != nil {
			return err
		}
		if _, err := b.Step(-1); err != nil {
			_ = b.Finish()
			return err
		}
		return b.Finish()
	})
}
