package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"chatd/persistence"
)

// Group commit. Every write transaction of the store goes through one
// committer goroutine, which runs the transactions that callers queued
// while it was busy together in one database transaction (each in a
// savepoint of its own once one of them failed, see commitGroup): one
// caller's failure rolls back only its own changes, and a burst of
// concurrent writes (hundreds of users sending at the same instant) costs
// one commit instead of one each. A caller returns
// only once its changes are committed (or failed), exactly as with a
// transaction of its own.

// maxGroup bounds how many transactions are committed together.
const maxGroup = 64

// writeQueue is how many transactions may wait for the committer; more
// wait to be queued, in the order they came.
//
// A caller queues its transaction and waits for the outcome: it is woken
// once, when the group that held it was committed. (With a queue of no
// room, every caller was also woken when the committer took its
// transaction, only to wait again: under a burst of sends, 250 wake-ups
// that queue up for the CPU with everything else the burst runs.)
const writeQueue = 1024

var (
	qSavepoint  = writeQ(`SAVEPOINT grp`)
	qRelease    = writeQ(`RELEASE grp`)
	qRollbackTo = writeQ(`ROLLBACK TO grp`)
)

// writeOp is one caller's transaction waiting for the committer.
type writeOp struct {
	ctx  context.Context
	fn   func(tx *writeTx) error
	done chan error // buffered (1)
}

// errStoreClosed answers writes queued after Close.
var errStoreClosed = errors.New("sqlite: store closed")

// startCommitter starts the goroutine that runs every write transaction;
// stopCommitter ends it after the transactions already queued; a caller
// that queued one after the committer's last look is told errStoreClosed.
func (s *Store) startCommitter() {
	s.writes = make(chan *writeOp, writeQueue)
	s.stop = make(chan struct{})
	s.stopped = make(chan struct{})
	go s.commitLoop()
}

func (s *Store) stopCommitter() {
	if s.stop == nil {
		return
	}
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.stopped
}

// write runs fn in a write transaction and returns once it is committed or
// failed. fn runs on the committer's goroutine, possibly beside other
// callers' fns in the same database transaction, inside a savepoint of its
// own; it must only use tx and ctx.
//
// While it runs, and until it returned, the store counts as busy for the
// search indexer (awaitQuiet in search.go).
func (s *Store) write(ctx context.Context, fn func(tx *writeTx) error) error {
	s.writing.Add(1)
	defer func() {
		s.lastWrite.Store(time.Now().UnixNano()) // before the count drops: never idle with a stale time
		s.writing.Add(-1)
	}()
	return s.writeBackground(ctx, fn)
}

// writeBackground is write for the store's own background work (the
// search indexer's), which does not keep the indexer waiting for itself:
// it hands fn to the committer and waits for its outcome. An outcome
// saying that the database cannot take writes now (a full disk, a lock
// held by another process) wraps persistence.ErrUnavailable (unavailable).
// The outcome is noted for the probe (diskState.note).
func (s *Store) writeBackground(ctx context.Context, fn func(tx *writeTx) error) error {
	err := s.commitWrite(ctx, fn)
	s.disk.note(err)
	return unavailable(err)
}

// commitWrite queues fn for the committer and waits for its outcome.
func (s *Store) commitWrite(ctx context.Context, fn func(tx *writeTx) error) error {
	op := &writeOp{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case s.writes <- op:
	case <-s.stopped:
		return errStoreClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once queued, the op runs (or is skipped because ctx ended) and
	// reports; waiting for that keeps "returned" meaning "not pending".
	select {
	case err := <-op.done:
		return err
	case <-s.stopped:
		// The committer ended: it either reported op before it did, or
		// never took it and never will.
		select {
		case err := <-op.done:
			return err
		default:
			return errStoreClosed
		}
	}
}

// commitLoop is the committer: it takes a waiting transaction, every other
// one already waiting (up to maxGroup), and commits them together. Once
// stopped, it commits what is still queued before it ends.
func (s *Store) commitLoop() {
	defer close(s.stopped)
	group := make([]*writeOp, 0, maxGroup)
	for {
		select {
		case op := <-s.writes:
			group = append(group[:0], op)
		case <-s.stop:
			for s.commitQueued(group[:0]) {
			}
			return
		}
		s.commitGroup(takeQueued(s.writes, group))
		clear(group)
	}
}

// takeQueued appends to group the transactions waiting in q, up to maxGroup.
func takeQueued(q chan *writeOp, group []*writeOp) []*writeOp {
	for len(group) < maxGroup {
		select {
		case op := <-q:
			group = append(group, op)
		default:
			return group
		}
	}
	return group
}

// commitQueued commits a group of the transactions waiting, if any, and
// reports whether there was one.
func (s *Store) commitQueued(group []*writeOp) bool {
	group = takeQueued(s.writes, group)
	if len(group) == 0 {
		return false
	}
	s.commitGroup(group)
	clear(group)
	return true
}

// commitGroup runs group's transactions in one database transaction and
// reports each one's outcome. It first runs them one after the other
// without savepoints (two statements fewer each); only if one fails does
// it roll back and run them again, each in a savepoint of its own, so
// that the failure takes back only that transaction's changes. A
// transaction's fn may therefore run twice, after a rollback: it must
// set, not accumulate, what it reports to its caller.
func (s *Store) commitGroup(group []*writeOp) {
	errs := make([]error, len(group))
	tx, err := s.w.BeginTx(context.Background(), nil)
	if err != nil {
		for _, op := range group {
			op.done <- fmt.Errorf("begin: %w", err)
		}
		return
	}
	wtx := &writeTx{tx: tx, stmts: s.wStmts}
	failed := -1 // the transaction that failed, if one did
	for i, op := range group {
		if errs[i] = op.ctx.Err(); errs[i] != nil {
			continue
		}
		if errs[i] = op.fn(wtx); errs[i] != nil {
			failed = i
			break
		}
	}
	if failed >= 0 && len(group) == 1 {
		_ = tx.Rollback()
		group[0].done <- errs[0]
		return
	}
	if failed >= 0 {
		if tx = s.restartInSavepoints(tx, group, errs, failed); tx == nil {
			for i, op := range group {
				op.done <- errs[i]
			}
			return
		}
	}
	if err := tx.Commit(); err != nil {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = fmt.Errorf("commit: %w", err)
			}
		}
	} else {
		s.wrote()
		s.pokeIndexer()
	}
	for i, op := range group {
		op.done <- errs[i]
	}
}

// restartInSavepoints rolls tx back, as group[failed] failed in it (with
// errs[failed]), and runs group's transactions again in a new one, each
// in a savepoint of its own, filling errs. It returns the new
// transaction, or nil when there is nothing to commit: every transaction
// of the group failed, with errs saying why.
//
// The rollback fails when SQLite rolled tx back by itself as the
// transaction failed (a statement without a statement journal that hit a
// full disk, an I/O error, no memory): "no transaction is active". The
// group then fails with that cause (see lose), not the rollback's error
// alone: that said "SQL logic error" where the disk was full.
//
// A savepoint statement that fails means the group's transaction may be
// gone: SQLite rolls a whole transaction back by itself after some errors
// (a full disk, an I/O error, no memory, an interrupt), and the
// ROLLBACK TO or RELEASE that follows then finds no savepoint. The
// transactions left are not run: a SAVEPOINT would open a transaction of
// its own, and its RELEASE commit it, outside the group, and the group's
// commit would then fail, reporting as failed writes that are stored
// (the batch writer, told so, appends a streamed text again). The group
// is rolled back and every transaction of it reported failed, those
// already run included: nothing of it is stored.
func (s *Store) restartInSavepoints(tx *sql.Tx, group []*writeOp, errs []error, failed int) *sql.Tx {
	if err := tx.Rollback(); err != nil {
		lose(errs, failed, fmt.Errorf("roll back the group: %w", err))
		return nil
	}
	tx, err := s.w.BeginTx(context.Background(), nil)
	if err != nil {
		lose(errs, failed, fmt.Errorf("begin: %w", err))
		return nil
	}
	wtx := &writeTx{tx: tx, stmts: s.wStmts}
	for i, op := range group {
		if errs[i] = op.ctx.Err(); errs[i] != nil {
			continue
		}
		var lost error
		if errs[i], lost = s.inSavepoint(op, wtx); lost == nil {
			continue
		}
		_ = tx.Rollback() // fails when SQLite rolled it back already
		lose(errs, i, fmt.Errorf("group transaction lost, rolled back: %w", lost))
		return nil
	}
	return tx
}

// lose fills errs for a group whose transaction is lost (lost says how)
// as its transaction i failed with errs[i], the cause (a full disk, an I/O
// error) if it is not nil: i fails with it and lost, and every transaction
// rolled back or never run fails with lost, naming the cause (only named:
// it is another write's, a sentinel of it would mislead its caller), but
// for a cause saying that the database cannot take writes now (cantWrite),
// which holds for all of them: they wrap persistence.ErrUnavailable. A
// transaction before i that failed keeps its own error.
func lose(errs []error, i int, lost error) {
	cause, others := errs[i], lost
	switch {
	case cantWrite(cause):
		others = fmt.Errorf("%w (%w), as another write of the group failed: %v", lost, persistence.ErrUnavailable, cause)
	case cause != nil:
		others = fmt.Errorf("%w, as another write of the group failed: %v", lost, cause)
	}
	errs[i] = errors.Join(cause, lost)
	for j := range errs {
		if j != i && (j > i || errs[j] == nil) { // rolled back, or never run
			errs[j] = others
		}
	}
}

// inSavepoint runs op's fn in a savepoint of the group's transaction,
// rolling back only its own changes when it fails. It returns fn's error,
// and apart from it the failure of a savepoint statement, after which the
// group's transaction cannot be trusted (see restartInSavepoints).
func (s *Store) inSavepoint(op *writeOp, wtx *writeTx) (err, savepointErr error) {
	ctx := context.Background() // the savepoint statements are the group's, not op's
	if _, serr := wtx.exec(ctx, qSavepoint); serr != nil {
		return nil, fmt.Errorf("savepoint: %w", serr)
	}
	if err = op.fn(wtx); err != nil {
		if _, serr := wtx.exec(ctx, qRollbackTo); serr != nil {
			return err, fmt.Errorf("rollback to savepoint: %w", serr)
		}
	}
	if _, serr := wtx.exec(ctx, qRelease); serr != nil {
		return err, fmt.Errorf("release savepoint: %w", serr)
	}
	return err, nil
}

// exec runs a single write statement as its own transaction (grouped with
// concurrent ones by the committer) and returns the number of changed rows.
func (s *Store) exec(ctx context.Context, q string, args ...any) (int64, error) {
	var n int64
	err := s.write(ctx, func(tx *writeTx) error {
		var err error
		n, err = tx.exec(ctx, q, args...)
		return err
	})
	return n, err
}
