package sqlite

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// A nearly full disk refuses the writes that need a new page (a message's
// insert) while one that rewrites a page in place (the probe's upsert of
// its one row) still fits: the probe alone kept /readyz at 200 while every
// send failed. So the store remembers the last write the disk refused, and
// its probe fails while that failure is recent (diskHold), until a write
// succeeds after it. The probe writes nothing meanwhile (its success would
// prove nothing about the writes that fail), and nothing grows the database
// to test the disk.

// diskHold is how long a write the disk refused keeps the probe failing
// when no write succeeds after it: long enough to span the retries of the
// writes still pending (the batch writer's, every 5 s at most; the search
// indexer's, every minute at most), so a server that gets no requests
// while it is not ready stays so while its disk stays full, and becomes
// ready within a minute of the last refusal otherwise.
const diskHold = time.Minute

// diskState is the last write the disk refused.
type diskState struct {
	last atomic.Pointer[diskFailure]
	hold time.Duration // diskHold; tests shorten it
}

// diskFailure is a write the disk refused (or a read it failed), and when.
type diskFailure struct {
	err  error
	at   time.Time
	what string // "write" or "read"
}

// note records the outcome of a write: a write the disk refused (diskRefused)
// is remembered, a write that succeeded forgets it, any other failure (a
// constraint, a context's end) leaves it as it is.
func (d *diskState) note(err error) {
	switch {
	case err == nil:
		if f := d.last.Load(); f != nil {
			d.last.CompareAndSwap(f, nil)
		}
	case diskRefused(err):
		d.last.Store(&diskFailure{err: err, at: time.Now(), what: "write"})
	}
}

// noteRead records a read the disk failed (readFailed) as note records a
// write it refused: the probe fails with it until a write succeeds or it
// is hold old.
func (d *diskState) noteRead(err error) {
	d.last.Store(&diskFailure{err: err, at: time.Now(), what: "read"})
}

// failing returns the error of the write the disk refused less than
// hold before now with no write succeeding since, or nil.
func (d *diskState) failing(now time.Time) error {
	f := d.last.Load()
	if f == nil || now.Sub(f.at) >= d.hold {
		return nil
	}
	return fmt.Errorf("a %s %s ago failed, and no write succeeded since: %w", f.what, now.Sub(f.at).Round(time.Millisecond), unavailable(f.err))
}

// diskRefused reports whether err is SQLite saying the disk did not take a
// write: it is full (SQLITE_FULL) or failed (SQLITE_IOERR).
func diskRefused(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR:
		return true
	}
	return false
}

// readErr maps err, from a read, as mapErr does. A read the disk failed
// (SQLITE_IOERR; not a busy database, which is no fault of the disk) is
// also remembered as a write the disk refused is (diskState.noteRead), so
// that the probe and /readyz fail with it, and logged at error, at most
// once per lograte.DefaultEvery: the transports log the 503s it becomes
// at warn only, so a failing disk left nothing at CHATD_LOG_LEVEL=error.
func (s *Store) readErr(err error) error {
	if readFailed(err) {
		s.disk.noteRead(err)
		s.ioLog.Error("sqlite: a read failed on the disk; the server reports not ready", "err", err)
	}
	return mapErr(err)
}

// readFailed reports whether err is SQLite saying the disk failed a read
// (SQLITE_IOERR).
func readFailed(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_IOERR
}
