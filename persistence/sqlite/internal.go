package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"chatd/persistence"
)

// Every statement the store runs is declared once with readQ, searchQ or
// writeQ and prepared when the store opens: a write transaction holds the
// only writer connection, so nothing may need to prepare on it while one
// is running.
var readQueries, searchQueries, writeQueries []string

// readQ registers q to be prepared on the read pool.
func readQ(q string) string { readQueries = append(readQueries, q); return q }

// searchQ registers q to be prepared on the searches' pool (Options.SearchConns).
func searchQ(q string) string { searchQueries = append(searchQueries, q); return q }

// writeQ registers q to be prepared on the writer.
func writeQ(q string) string { writeQueries = append(writeQueries, q); return q }

// stmtCache holds a pool's prepared statements; it is read-only once built.
type stmtCache struct {
	m map[string]*sql.Stmt
}

// prepareAll prepares every query on db.
func prepareAll(ctx context.Context, db *sql.DB, queries []string) (*stmtCache, error) {
	c := &stmtCache{m: make(map[string]*sql.Stmt, len(queries))}
	for _, q := range queries {
		st, err := db.PrepareContext(ctx, q)
		if err != nil {
			_ = c.close()
			return nil, fmt.Errorf("prepare %q: %w", q, err)
		}
		c.m[q] = st
	}
	return c, nil
}

// get returns the prepared statement for query.
func (c *stmtCache) get(query string) (*sql.Stmt, error) {
	st, ok := c.m[query]
	if !ok {
		return nil, fmt.Errorf("statement was not prepared: %q", query)
	}
	return st, nil
}

// close closes every statement.
func (c *stmtCache) close() error {
	var errs []error
	for _, st := range c.m {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}

// clock hands out strictly increasing Unix-nanosecond timestamps, so two
// writes never share a timestamp within one store. It follows the wall
// clock but starts past the latest time stored (startClock), and what must
// come after stored data (a message after its conversation's, a
// conversation's touch) is also taken past the stored time in the write's
// SQL, whoever wrote it (a process sharing the file, a write queued first).
type clock struct {
	mu   sync.Mutex
	last int64
}

// after makes every later result later than t.
func (c *clock) after(t int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last = max(c.last, t)
}

// qLatest is the latest time a conversation was written at (each is at or
// after its messages' CreatedAt) or a user: one probe of
// conversations_owner_updated per user, not a scan of every conversation.
const qLatest = `SELECT coalesce(max(max(updated_at, coalesce(
	(SELECT c.updated_at FROM conversations c WHERE c.owner_id = users.id ORDER BY c.updated_at DESC LIMIT 1), 0))), 0)
	FROM users`

// startClock starts the store's clock past the latest time stored, so that
// what this run writes sorts after what the last ones wrote though its
// clock was ahead (the host's clock stepped back since: before a time sync,
// by hand). A file it cannot read (damaged pages) still opens, as before
// the clock read it: the failure is logged, this run's times start from
// the clock, and /readyz reports the damage (the store's Ping); only a
// start that is being stopped (ctx ended) fails.
func (s *Store) startClock(ctx context.Context) error {
	var latest int64
	if err := s.w.QueryRowContext(ctx, qLatest).Scan(&latest); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("read the latest time stored: %w", err)
		}
		s.log.Error("the latest time stored could not be read: this run's times start from the clock, and may sort before the last run's if its clock was ahead", "err", err)
		return nil
	}
	s.clock.after(latest)
	s.warnAhead(latest, time.Now())
	return nil
}

// aheadWarning is how far the latest stored time may be past this host's
// clock at Open before it is logged: more than the drift NTP corrects.
const aheadWarning = time.Minute

// warnAhead logs a latest stored time more than aheadWarning past now. The
// clock follows it all the same: not following it would stamp new messages
// before their conversation's stored time and sort this run's activity
// below the stored one (the writes' SQL moves past the stored times anyway).
// So until the host's clock reaches it, every time this run stores is that
// time plus a few nanoseconds: the order of the writes is kept, but the
// times shown are wrong by that much.
func (s *Store) warnAhead(latest int64, now time.Time) {
	ahead := time.Duration(latest - now.UnixNano())
	if ahead <= aheadWarning {
		return
	}
	s.log.Warn("the latest time stored is ahead of this host's clock (a run whose clock was ahead wrote it): "+
		"until the clock reaches it, every time stored is stamped just past it, not at the real time",
		"ahead", ahead.Round(time.Second).String(), "latest", fromNanos(latest))
}

// now returns the current time in nanoseconds, later than any earlier result.
func (c *clock) now() int64 { return c.reserve(1) }

// reserve takes n (at least 1) consecutive timestamps, each later than any
// earlier result, and returns the last: the others are the n-1 before it.
func (c *clock) reserve(n int) int64 {
	t := time.Now().UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	if t < c.last+int64(n) {
		t = c.last + int64(n)
	}
	c.last = t
	return t
}

// fromNanos converts a stored timestamp to a UTC time.
func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

// toNanos converts t to a stored timestamp; the zero time is 0.
func toNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// mapErr translates driver errors to the persistence sentinel errors,
// keeping the driver's error in the chain (errors.As finds its code).
func mapErr(err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%w: %w", persistence.ErrDuplicate, err)
		}
		switch se.Code() & 0xff { // primary result code
		case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
			return fmt.Errorf("%w: %w", persistence.ErrCorrupt, err)
		}
	}
	if errors.Is(err, sql.ErrNoRows) {
		return persistence.ErrNotFound
	}
	return unavailable(err)
}

// unavailable wraps err with persistence.ErrUnavailable when it says the
// database cannot take writes now (cantWrite); it returns any other err
// as it is. Every write the committer runs returns through it (group.go),
// so a caller that does not map its error still has the sentinel.
func unavailable(err error) error {
	if !cantWrite(err) || errors.Is(err, persistence.ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", persistence.ErrUnavailable, err)
}

// cantWrite reports whether err is SQLite saying the database cannot take
// a write now, the request and the data being fine: the disk is full
// (SQLITE_FULL), another process holds the lock past the busy timeout
// (SQLITE_BUSY, SQLITE_LOCKED), or the file could not be read or written
// (SQLITE_IOERR).
func cantWrite(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_FULL, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR:
		return true
	}
	return false
}

// rowScanner is what *sql.Row and *sql.Rows have in common.
type rowScanner interface {
	Scan(dest ...any) error
}

// query runs a cached read statement.
func (s *Store) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := s.rStmts.get(q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// querySearch runs a cached statement of the searches' pool.
func (s *Store) querySearch(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := s.sStmts.get(q)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, args...)
	if err == nil && s.searchRows != nil {
		s.searchRows(ctx)
	}
	return rows, err
}

// queryStrings runs a cached read statement whose rows are one text
// column and returns them in order.
func (s *Store) queryStrings(ctx context.Context, q string, args ...any) ([]string, error) {
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// queryRow runs a cached read statement that returns one row.
func (s *Store) queryRow(ctx context.Context, q string, args ...any) (*sql.Row, error) {
	st, err := s.rStmts.get(q)
	if err != nil {
		return nil, err
	}
	return st.QueryRowContext(ctx, args...), nil
}

// writeRow runs a single write statement with RETURNING that yields one
// row, outside the group committer (a statement of its own commits when
// its row is read). A successful Scan of the row tells the checkpointer of
// the commit, as the committer does of its own (wrote): without it, a run
// of these writes alone (logouts, renames) left the log unchecked until
// some other write, or until the writer's own backstop checkpoint.
func (s *Store) writeRow(ctx context.Context, q string, args ...any) (rowScanner, error) {
	st, err := s.wStmts.get(q)
	if err != nil {
		return nil, err
	}
	return wroteRow{row: st.QueryRowContext(ctx, args...), s: s}, nil
}

// wroteRow is the row of writeRow's statement.
type wroteRow struct {
	row *sql.Row
	s   *Store
}

// Scan reads the row, which ends the statement and so commits its write
// (the row was returned: the write changed something), and then tells the
// checkpointer. Its outcome is noted for the probe (diskState.note): no
// row (sql.ErrNoRows) changed nothing, and says nothing of the disk.
func (r wroteRow) Scan(dest ...any) error {
	err := r.row.Scan(dest...)
	if !errors.Is(err, sql.ErrNoRows) {
		r.s.disk.note(err)
	}
	if err != nil {
		return err
	}
	r.s.wrote()
	return nil
}

// writeTx is a write transaction that reuses the writer's prepared statements.
//
// Its statements ignore the cancellation of the ctx they are given: they
// run on the group committer (group.go), which checked the caller's ctx
// before starting its transaction, inside a transaction shared with other
// callers, and take microseconds; a cancellable ctx would cost the driver
// a watcher goroutine per statement.
type writeTx struct {
	tx    *sql.Tx
	stmts *stmtCache
}

// exec runs q in the transaction and returns the number of changed rows.
func (t *writeTx) exec(ctx context.Context, q string, args ...any) (int64, error) {
	ctx = context.WithoutCancel(ctx)
	st, err := t.stmt(ctx, q)
	if err != nil {
		return 0, err
	}
	res, err := st.ExecContext(ctx, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// queryRow runs q (a statement with RETURNING, say) in the transaction.
func (t *writeTx) queryRow(ctx context.Context, q string, args ...any) (*sql.Row, error) {
	ctx = context.WithoutCancel(ctx)
	st, err := t.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryRowContext(ctx, args...), nil
}

// stmt returns the cached statement q bound to the transaction.
func (t *writeTx) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	st, err := t.stmts.get(q)
	if err != nil {
		return nil, err
	}
	return t.tx.StmtContext(context.WithoutCancel(ctx), st), nil
}
