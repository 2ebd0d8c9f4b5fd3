package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"log/slog"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
	"modernc.org/sqlite/vfs"

	"chatd/persistence"
)

// errorLines counts the lines logged at error.
type errorLines struct{ count atomic.Int32 }

func (*errorLines) Enabled(context.Context, slog.Level) bool { return true }
func (l *errorLines) WithAttrs([]slog.Attr) slog.Handler     { return l }
func (l *errorLines) WithGroup(string) slog.Handler          { return l }
func (l *errorLines) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		l.count.Add(1)
	}
	return nil
}

// unseekableFS serves its files without io.Seeker, so that modernc's
// read-only VFS fails every read of them with SQLITE_IOERR_READ: a disk
// failing reads, as the driver reports it.
type unseekableFS struct{ fstest.MapFS }

// unseekable is a file without Seek.
type unseekable struct{ fs.File }

func (f unseekableFS) Open(name string) (fs.File, error) {
	file, err := f.MapFS.Open(name)
	if err != nil {
		return nil, err
	}
	return unseekable{file}, nil
}

// readIOErr returns the driver's error of a read the disk failed: a query
// of a database whose every read fails (unseekableFS).
func readIOErr(t *testing.T) error {
	t.Helper()
	name, v, err := vfs.New(unseekableFS{fstest.MapFS{"chatd.db": {Data: make([]byte, 4096)}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	db, err := sql.Open("sqlite", "file:chatd.db?vfs="+name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	var n int
	err = db.QueryRow("SELECT count(*) FROM sqlite_master").Scan(&n)
	var se *sqlite.Error
	if !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_IOERR {
		t.Fatalf("a read of the failing disk: %v; want an SQLITE_IOERR", err)
	}
	return err
}

// TestReadIOErrFailsTheProbe: a read the disk failed (SQLITE_IOERR, a real
// driver error from a database whose reads all fail, handed to the store's
// mapping of read errors, readErr, since the store's own file cannot be
// made to fail its reads) is remembered as a write the disk refused is:
// the probe (what /readyz asks) fails with it until a write succeeds or
// it is diskHold old, and logged at error, once per lograte.DefaultEvery.
// Before, a failing disk that answered every load
// with SQLITE_IOERR left /readyz at 200, and only the transport's warnings
// said so.
func TestReadIOErrFailsTheProbe(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	log := &errorLines{}
	s := openTest(t, Options{IndexQuiet: time.Hour, IndexMaxLag: time.Hour, Logger: slog.New(log)})
	ioerr := readIOErr(t)
	for range 3 {
		if err := s.readErr(ioerr); !errors.Is(err, persistence.ErrUnavailable) {
			t.Fatalf("a read's SQLITE_IOERR mapped to %v; want persistence.ErrUnavailable", err)
		}
	}
	if n := log.count.Load(); n != 1 {
		t.Errorf("three reads the disk failed logged %d lines at error; want 1 (the rest within lograte.DefaultEvery left out)", n)
	}
	err := s.ProbeWrite(ctx)
	var se *sqlite.Error
	if !errors.Is(err, persistence.ErrUnavailable) || !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_IOERR {
		t.Fatalf("probe after a read the disk failed: %v; want its SQLITE_IOERR (persistence.ErrUnavailable)", err)
	}
	if err := s.disk.failing(time.Now().Add(diskHold)); err != nil {
		t.Errorf("the failure %s later: %v; want it forgotten", diskHold, err)
	}
}
