package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"modernc.org/sqlite"
)

// The search index lives in a database file of its own beside the store's
// (chatd-search.db for chatd.db), written by a goroutine of its own. The
// trigram index (FTS5) grows by merging its segments, and a merge step
// rewrites whole doclists: at a million messages a common trigram's list
// is megabytes, and a step that falls to a write held the only writer for
// tens to hundreds of milliseconds (docs/benchmarks.md, data growth). In
// its own file the index has its own write lock: its merges hold up
// nobody's message.
//
// The store's file keeps a queue, search_pending: triggers add a message's
// rowid (with a random tag and its owner) when it is inserted finished, when it finishes
// or its text changes after that, and when it is deleted. The indexer reads
// a batch of the queue with the messages' text, brings the index up to date
// for them in one transaction of the search file, then removes exactly those
// queue entries (same tag: an entry queued again meanwhile stays). A search
// reads the index for the indexed messages and checks the queued ones (and
// the streaming ones) directly, so it never misses a message the index has
// not reached yet. The index can always be rebuilt: a missing search file is
// created and every finished message queued, and so is one that does not
// match chatd.db (restored from a backup, another copy's: searchsource.go).

// searchFileSuffix names the search file: the store's path without its
// extension, plus this.
const searchFileSuffix = "-search.db"

// SearchPath returns the path of the search index's file for a store whose
// database is at path: chatd-search.db beside chatd.db. It can be deleted
// (with its -wal and -shm files) while the server is stopped; the next
// start rebuilds it, and removes those two if they were left behind.
func SearchPath(path string) string { return searchPath(path) }

// searchPath returns the search file's path for the store at path.
func searchPath(path string) string {
	return strings.TrimSuffix(path, filepath.Ext(path)) + searchFileSuffix
}

// searchParam carries the search file's path in a read connection's DSN:
// the connection hook attaches it as "search".
const searchParam = "_chatd_search"

// indexBatch is how many queued messages one indexer transaction takes.
const indexBatch = 256

// searchVersion is the search file's layout (its user_version). A file of
// another layout is deleted at start-up and rebuilt from the store: the
// index is derived data (version 1 kept each trigram's positions, version
// 2 did not record which state of chatd.db it matched, version 3 held the
// text lower-cased but not in NFC: fold).
const searchVersion = 4

// searchSchema is the search file's schema; user_version searchVersion
// once applied. message_fts holds the folded text (fold: NFC, then Go's
// strings.ToLower, as chatd_icontains compares) of every finished message,
// as trigrams, without a copy of the text (contentless) and without
// positions (detail = none): which messages hold a trigram, not where.
// A search asks for the messages that hold every trigram of the query
// (ftsTrigrams) and chatd_icontains confirms each, so positions would only
// have narrowed what it confirms, at twice the index's size and writes
// (docs/benchmarks.md, "The search index without positions"). requeue
// holds one row while the messages of a new index are still being queued
// (requeueAll): the first rowid not queued yet, and the last message's
// when the file was made (the triggers queue every message after it).
// Keys are searchKey: the
// owner's users rowid in the high bits and the message's rowid in the low
// 40, so that one user's entries are one rowid range, which a search reads
// alone (FTS5 seeks each trigram's list to the range) instead of every
// user's hits. indexed maps each indexed message to its key, so that an
// update or delete removes an entry only where there is one. source (one
// row) and inflight say which state of chatd.db's queue the index matches
// (searchsource.go).
const searchSchema = `
CREATE VIRTUAL TABLE message_fts USING fts5 (
	body, content = '', contentless_delete = 1, detail = none, tokenize = 'trigram case_sensitive 1'
);
CREATE TABLE indexed (msg INTEGER NOT NULL PRIMARY KEY, key INTEGER NOT NULL) STRICT;
CREATE TABLE requeue (next INTEGER NOT NULL, last INTEGER NOT NULL) STRICT;
CREATE TABLE source (
	step INTEGER NOT NULL, token INTEGER NOT NULL, prev_step INTEGER NOT NULL, prev_token INTEGER NOT NULL
) STRICT;
CREATE TABLE inflight (msg INTEGER NOT NULL PRIMARY KEY) STRICT;
PRAGMA user_version = 4;
`

// msgBits is how many low bits of a search key hold the message's rowid.
const msgBits = 40

// searchKey is message_fts's rowid for a message of the user with rowid owner.
func searchKey(owner, msg int64) int64 { return owner<<msgBits | msg }

var (
	qPendingBatch = readQ(`SELECT p.msg, p.tag, coalesce(m.status, ''), coalesce(m.content, ''), coalesce(u.rowid, 0)
		FROM search_pending p LEFT JOIN messages m ON m.rowid = p.msg LEFT JOIN users u ON u.id = m.owner_id
		ORDER BY p.msg LIMIT ?`)
	qPendingCount = readQ(`SELECT count(*) FROM search_pending`)
	// The queue and the messages from ?1 to ?2 a new index has not queued
	// yet, counted in one statement: one snapshot of both (SearchBacklog).
	qBacklogRequeue = readQ(`SELECT (SELECT count(*) FROM search_pending) + (SELECT count(*) FROM messages m
		WHERE rowid BETWEEN ? AND ? AND status != 'streaming' AND content != ''
		AND NOT EXISTS (SELECT 1 FROM search_pending p WHERE p.msg = m.rowid))`)
	qPendingDone = writeQ(`DELETE FROM search_pending WHERE msg = ? AND tag = ?`)
	// A step of requeueAll: the rowid of the requeueStep-th message from
	// ?1 on, below ?2 (none when fewer are left: the step runs to ?2),
	// then the finished ones from ?1 to that rowid queued.
	qRequeueUpTo = readQ(`SELECT rowid FROM messages WHERE rowid >= ? AND rowid < ? ORDER BY rowid LIMIT 1 OFFSET ?`)
	qRequeue     = writeQ(`INSERT OR REPLACE INTO search_pending (msg, tag, owner)
		SELECT rowid, random(), owner_id FROM messages
		WHERE rowid >= ?1 AND rowid <= ?2 AND status != 'streaming' AND content != ''`)
)

// requeueStep is how many messages a step of requeueAll reads: a write of
// about 30 ms here, so that a burst of sends at start-up waits for one
// step at most.
const requeueStep = 5000

func init() {
	sqlite.RegisterConnectionHook(attachSearch)
}

// attachSearch attaches the search file to a connection whose DSN names it.
func attachSearch(conn sqlite.ExecQuerierContext, dsn string) error {
	u, err := url.Parse(dsn)
	if err != nil {
		return nil // not one of ours
	}
	p := u.Query().Get(searchParam)
	if p == "" {
		return nil
	}
	if _, err := conn.ExecContext(context.Background(), "ATTACH DATABASE ? AS search", []driver.NamedValue{{Ordinal: 1, Value: p}}); err != nil {
		return fmt.Errorf("attach search index %s: %w", p, err)
	}
	return nil
}

// openSearch opens (creating when needed) the search file with the
// indexer's connection; when the file is new and the store holds
// messages, it records that they are to be queued for the index, which
// the indexer does (requeueAll). A file of another layout (searchVersion),
// or one that does not match chatd.db (searchMismatch: chatd.db restored
// from a backup, another copy's file), is deleted first: the index is
// derived, and is rebuilt from the store as for a missing file; so is a
// damaged one (SQLite finds it is not a database, or malformed), logged as
// an error naming it. It runs after the migrations and before the read
// pool opens.
func (s *Store) openSearch(ctx context.Context, opts Options) error {
	s.searchPath = searchPath(s.path)
	s.requeueStep, s.requeueGate, s.clearFails, s.clearing = opts.requeueStep, opts.requeueGate, opts.clearFails, opts.clearing
	var err error
	if s.ixState, err = s.readSearchState(ctx); err != nil {
		return err
	}
	if err := s.removeStaleSearchLog(); err != nil {
		return err
	}
	err = s.openSearchFile(ctx, opts)
	if !damaged(err) {
		return err
	}
	s.log.Error("search index: its file is damaged; deleting it and rebuilding the index from the database",
		"path", s.searchPath, "err", err)
	if err := s.removeSearchFile(); err != nil {
		return err
	}
	return s.openSearchFile(ctx, opts)
}

// openSearchFile is openSearch once the queue's state is read: it opens
// the search file, checks its layout and source, creates what a new file
// needs and reads a rebuild's progress.
func (s *Store) openSearchFile(ctx context.Context, opts Options) error {
	version, err := s.openSearchConn(ctx, opts)
	if err != nil {
		return err
	}
	if version != 0 && version != searchVersion {
		s.log.Info("search index: rebuilding it in the current layout", "path", s.searchPath,
			"layout", version, "current", searchVersion)
		if version, err = s.recreateSearchFile(ctx, opts); err != nil {
			return err
		}
	}
	if version != 0 {
		why, err := s.searchMismatch(ctx, s.ixState)
		if err != nil {
			return err
		}
		if why != "" {
			s.log.Warn("search index: rebuilding it, it does not match the database", "reason", why, "path", s.searchPath)
			if version, err = s.recreateSearchFile(ctx, opts); err != nil {
				return err
			}
		}
	}
	if version == 0 {
		// A new file: whatever the store holds is not indexed yet. The
		// indexer queues it (requeueAll), up to the last message there
		// is now; the triggers queue those after it.
		var last int64
		if err := s.w.QueryRowContext(ctx, `SELECT coalesce(max(rowid), 0) FROM messages`).Scan(&last); err != nil {
			return fmt.Errorf("search index: %w", err)
		}
		if err := s.createSearch(ctx, last); err != nil {
			return fmt.Errorf("search index %s: create: %w", s.searchPath, err)
		}
	}
	var next, last int64
	switch err := s.sx.QueryRowContext(ctx, `SELECT next, last FROM requeue`).Scan(&next, &last); {
	case err == nil:
		s.requeueNext.Store(next)
		s.requeueLast.Store(last)
		s.requeueing.Store(true)
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("search index %s: %w", s.searchPath, err)
	}
	return nil
}

// removeStaleSearchLog removes the search file's -wal and -shm files when
// the file itself is missing (deleted by hand without them), with a log
// line, before a new file is made in its place: they belong to the file
// deleted, and none of its pages may reach the new one. (SQLite itself
// discards a write-ahead log beside an empty database file, which the
// new one is, but leaves the -shm; this does not rest on either.)
func (s *Store) removeStaleSearchLog() error {
	if _, err := os.Stat(s.searchPath); !errors.Is(err, fs.ErrNotExist) {
		return nil // there (or unreadable: opening it says why)
	}
	var removed []string
	for _, suffix := range []string{"-wal", "-shm"} {
		switch err := os.Remove(s.searchPath + suffix); {
		case err == nil:
			removed = append(removed, filepath.Base(s.searchPath+suffix))
		case !errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("search index: remove the stale %s: %w", s.searchPath+suffix, err)
		}
	}
	if len(removed) > 0 {
		s.log.Warn("search index: its file is missing but not its write-ahead log; removed the stale files before making a new index",
			"path", s.searchPath, "removed", removed)
	}
	return nil
}

// createSearch makes the schema of a new (empty) search file, matching
// chatd.db's state s.ixState, and when last (the store's last message) is
// not 0, the requeue row that has the indexer queue every message up to
// it, in one transaction: a crash part way must not leave a file with its
// layout and state but without the requeue row, which would be kept and
// never index what the store held.
func (s *Store) createSearch(ctx context.Context, last int64) error {
	schema := searchSchema + fmt.Sprintf("INSERT INTO source VALUES (%[1]d, %[2]d, %[1]d, %[2]d);",
		s.ixState.step, s.ixState.token)
	if last > 0 {
		schema += fmt.Sprintf("INSERT INTO requeue (next, last) VALUES (1, %d);", last)
	}
	tx, err := s.sx.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, schema); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// recreateSearchFile deletes the search file (with its -wal and -shm) and
// opens a new one in its place; it returns openSearchConn's version (0).
func (s *Store) recreateSearchFile(ctx context.Context, opts Options) (int, error) {
	if err := s.removeSearchFile(); err != nil {
		return 0, err
	}
	return s.openSearchConn(ctx, opts)
}

// removeSearchFile closes the indexer's connection, when open, and
// deletes the search file with its -wal and -shm (at open only: the read
// pool, which attaches the file, is not open yet).
func (s *Store) removeSearchFile() error {
	if s.sx != nil {
		if err := s.sx.Close(); err != nil {
			return fmt.Errorf("search index %s: close: %w", s.searchPath, err)
		}
		s.sx = nil
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(s.searchPath + suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("search index: remove the old file: %w", err)
		}
	}
	return nil
}

// requeueAll queues, a step at a time and each in a quiet moment, every
// finished message of the store for a new index, recording in the search
// file's requeue row how far it got: after a restart it goes on from
// there (a step queued again is queued once: INSERT OR REPLACE). Until it
// is done, searches read every message of the user instead of the index
// (Store.requeueing), so that a start on a store of a million messages
// does not wait for their queueing (6.2 s here in one statement), and no
// search misses a message not queued yet. It returns false when the store
// is closing.
func (s *Store) requeueAll(ctx context.Context) (bool, error) {
	next := s.requeueNext.Load()
	start := time.Now()
	for {
		if !s.awaitQuiet(ctx, start) {
			return false, nil
		}
		if gate := s.requeueGate; gate != nil {
			select {
			case <-gate:
			case <-ctx.Done():
				return false, nil
			}
		}
		last, done := s.requeueLast.Load(), true
		row, err := s.queryRow(ctx, qRequeueUpTo, next, last, s.requeueStep-1)
		if err != nil {
			return true, fmt.Errorf("requeue: %w", err)
		}
		switch err := row.Scan(&last); {
		case err == nil:
			done = false
		case !errors.Is(err, sql.ErrNoRows):
			return true, fmt.Errorf("requeue: %w", err)
		}
		// chatd.db first, the search file's progress after: see searchsource.go.
		state := s.ixState.next()
		if err := s.writeBackground(ctx, func(tx *writeTx) error {
			if _, err := tx.exec(ctx, qRequeue, next, last); err != nil {
				return err
			}
			_, err := tx.exec(ctx, qSetSearchState, state.step, state.token)
			return err
		}); err != nil {
			return true, fmt.Errorf("requeue messages from %d: %w", next, err)
		}
		s.ixState = state
		if done {
			if err := s.recordState(ctx, state, `DELETE FROM requeue`); err != nil {
				return true, fmt.Errorf("requeue: %w", s.searchFileErr(err))
			}
			s.requeueing.Store(false)
			s.log.Info("search index: every message queued", "took", time.Since(start).Round(time.Millisecond).String())
			return true, nil
		}
		if err := s.recordState(ctx, state, `UPDATE requeue SET next = ?`, last+1); err != nil {
			return true, fmt.Errorf("requeue: %w", s.searchFileErr(err))
		}
		next = last + 1
		s.requeueNext.Store(next)
		start = time.Now() // each step waits for quiet anew, up to IndexMaxLag
	}
}

// openSearchConn opens the indexer's connection to the search file,
// creating the file when needed, and returns the file's layout version
// (0 for a new file).
func (s *Store) openSearchConn(ctx context.Context, opts Options) (int, error) {
	if err := prepareFile(s.searchPath); err != nil {
		return 0, fmt.Errorf("search index: %w", err)
	}
	var err error
	if s.sx, err = sql.Open("sqlite", dsn(s.searchPath, opts, roleIndexer)); err != nil {
		return 0, fmt.Errorf("search index: %w", err)
	}
	s.sx.SetMaxOpenConns(1)
	s.sx.SetMaxIdleConns(1)
	s.sx.SetConnMaxLifetime(0)
	s.sx.SetConnMaxIdleTime(0)
	var version int
	if err := s.sx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return 0, fmt.Errorf("search index %s: %w", s.searchPath, err)
	}
	return version, nil
}

// startIndexer starts the goroutine that indexes queued messages.
func (s *Store) startIndexer(opts Options) {
	s.ixQuiet, s.ixMaxLag = opts.IndexQuiet, opts.IndexMaxLag
	s.ixPoke = make(chan struct{}, 1)
	s.ixStop = make(chan struct{})
	s.ixEnded = make(chan struct{})
	s.ixPoke <- struct{}{} // the queue may hold work from before
	go s.indexLoop()
}

// stopIndexer ends the indexer after the batch in progress.
func (s *Store) stopIndexer() {
	if s.ixStop == nil {
		return
	}
	s.ixStopOnce.Do(func() { close(s.ixStop) })
	<-s.ixEnded
}

// pokeIndexer tells the indexer that the queue may have grown.
func (s *Store) pokeIndexer() {
	if s.ixPoke == nil {
		return
	}
	select {
	case s.ixPoke <- struct{}{}:
	default:
	}
}

// indexLoop waits for a poke, then for a quiet moment (awaitQuiet), and
// indexes batches until the queue is empty (indexPass). After a failure
// it waits before trying again, a second after the first and twice as
// long after each next one, up to maxIndexRetry, and pokes meanwhile do
// not cut the wait short; a success ends the backoff. A pass that found
// the search file damaged is followed at once by the next, which
// rebuilds it (rebuildSearch).
func (s *Store) indexLoop() {
	defer close(s.ixEnded)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.ixStop:
			cancel()
		case <-ctx.Done():
		}
	}()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	fails := 0
	for {
		poke := s.ixPoke
		if fails > 0 {
			poke = nil // backing off
		}
		select {
		case <-poke:
		case <-retry.C:
		case <-ctx.Done():
			return
		}
		wasDamaged := s.ixDamaged.Load()
		err := s.indexPass(ctx, retry)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			fails = 0
			continue
		}
		delay := indexRetry(fails)
		if !wasDamaged && s.ixDamaged.Load() {
			delay = 0 // found damaged by this pass: rebuild it now
		}
		fails++
		s.log.Warn("search indexer failed; retrying", "err", err, "in", delay.String())
		retry.Reset(delay)
	}
}

// maxIndexRetry bounds the indexer's wait after failures (indexLoop).
const maxIndexRetry = time.Minute

// indexRetry is the indexer's wait after fails failures in a row (and one more).
func indexRetry(fails int) time.Duration {
	if fails >= 6 {
		return maxIndexRetry
	}
	return min(time.Second<<fails, maxIndexRetry)
}

// indexPass is one turn of the indexer: it rebuilds a damaged search file
// (rebuildSearch), goes on queueing a new index's messages (requeueAll),
// then indexes batches until the queue is empty. It returns nil when the
// store is closing.
func (s *Store) indexPass(ctx context.Context, retry *time.Timer) error {
	if s.ixDamaged.Load() {
		if err := s.rebuildSearch(ctx); err != nil {
			return fmt.Errorf("rebuild the damaged index %s: %w", s.searchPath, err)
		}
	}
	if s.requeueing.Load() {
		if ok, err := s.requeueAll(ctx); !ok || err != nil {
			return err
		}
	}
	since := time.Now() // the queue's oldest entry may be older: the lag is bounded from here
	for {
		if !s.awaitQuiet(ctx, since) {
			return nil
		}
		n, err := s.indexOnce(ctx)
		if err != nil {
			return err
		}
		if n < indexBatch {
			s.scrubSearchLog(ctx, retry)
			return nil
		}
	}
}

// scrubSearchLog scrubs the search file's log (scrub.go) when a batch
// dropped deleted messages since the last scrub; one that fails is tried
// again when retry fires, a second later.
func (s *Store) scrubSearchLog(ctx context.Context, retry *time.Timer) {
	if !s.ixScrub {
		return
	}
	if err := s.scrubLog(ctx, s.sx, s.searchPath); err != nil {
		s.log.Info("search index: scrubbing the write-ahead log after a deletion: trying again", "err", err)
		retry.Reset(time.Second)
		return
	}
	s.ixScrub = false
}

// awaitQuiet waits until no write other than the indexer's own has been
// waiting or running for Options.IndexQuiet, or until Options.IndexMaxLag has
// passed since the indexer was poked at since, whichever comes first. The
// index's work, FTS5 merging its segments, costs several times what the
// write that queued a message did (docs/benchmarks.md, data growth): done
// at once it takes a core from every write of a burst; waiting for the
// burst's end, it takes the burst's messages in a few large transactions
// instead. It returns false when the store is closing.
func (s *Store) awaitQuiet(ctx context.Context, since time.Time) bool {
	if s.ixQuiet < 0 {
		return ctx.Err() == nil
	}
	s.ixWaits.Add(1)
	var t *time.Timer
	for {
		now := time.Now()
		idle := now.Sub(time.Unix(0, s.lastWrite.Load()))
		if s.writing.Load() > 0 {
			idle = 0 // a write is waiting or running (a slow one must not look like a pause)
		}
		lag := now.Sub(since)
		if idle >= s.ixQuiet || lag >= s.ixMaxLag {
			return ctx.Err() == nil
		}
		wait := min(s.ixQuiet-idle, s.ixMaxLag-lag)
		if t == nil {
			t = time.NewTimer(wait)
			defer t.Stop()
		} else {
			t.Reset(wait)
		}
		s.ixWaiting.Store(true)
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		s.ixWaiting.Store(false)
		if ctx.Err() != nil {
			return false
		}
	}
}

// pendingMsg is one queue entry with its message as stored now.
type pendingMsg struct {
	msg, tag        int64
	status, content string
	owner           int64 // the owner's users rowid; 0 without one (their range is 0's)
}

// indexOnce brings the index up to date for one batch of the queue and
// returns the batch's size.
func (s *Store) indexOnce(ctx context.Context) (int, error) {
	rows, err := s.query(ctx, qPendingBatch, indexBatch)
	if err != nil {
		return 0, fmt.Errorf("read the queue: %w", err)
	}
	var batch []pendingMsg
	for rows.Next() {
		var p pendingMsg
		if err := rows.Scan(&p.msg, &p.tag, &p.status, &p.content, &p.owner); err != nil {
			rows.Close()
			return 0, fmt.Errorf("read the queue: %w", err)
		}
		batch = append(batch, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("read the queue: %w", err)
	}
	if len(batch) == 0 {
		return 0, nil
	}
	// The search file first, chatd.db's queue after: see searchsource.go.
	state := s.ixState.next()
	if err := s.indexBatch(ctx, batch, state); err != nil {
		return 0, s.searchFileErr(err)
	}
	err = s.writeBackground(ctx, func(tx *writeTx) error {
		if s.clearing != nil {
			s.clearing(ctx)
		}
		// In the group's transaction, beside other callers' writes, the
		// statements ignore ctx's end, as writeTx's own do: a Close
		// landing during one would interrupt the writer's connection, and
		// SQLite would roll the whole group back.
		run := context.WithoutCancel(ctx)
		st, err := tx.stmt(run, qPendingDone)
		if err != nil {
			return err
		}
		for _, p := range batch {
			if _, err := st.ExecContext(run, p.msg, p.tag); err != nil {
				return err
			}
		}
		if s.clearFails != nil {
			if err := s.clearFails(); err != nil {
				return err
			}
		}
		_, err = tx.exec(ctx, qSetSearchState, state.step, state.token)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("clear %d queue entries: %w", len(batch), err)
	}
	s.ixState = state
	return len(batch), nil
}

// indexBatch writes batch's entries into the search file in one
// transaction, which records them as taken in on the way to chatd.db's
// queue state next (recordBatch).
//
// The index's writes go in the order of their rowids (search keys), not of
// the queue: FTS5 writes the terms it holds out as a new segment whenever
// a rowid comes that is lower than the one before, and a queue of several
// users' messages (keys owner<<msgBits | msg) goes up and down at every
// change of user. In key order a batch is one segment, and FTS5 merges
// fewer (BenchmarkIndexBatch). The writes for one key keep their order.
// A batch that drops a deleted message has the search file's log
// scrubbed once the queue is empty (scrubSearchLog).
func (s *Store) indexBatch(ctx context.Context, batch []pendingMsg, next searchState) error {
	tx, err := s.sx.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("index: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	forget, err := tx.PrepareContext(ctx, `DELETE FROM indexed WHERE msg = ? RETURNING key`)
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	remember, err := tx.PrepareContext(ctx, `INSERT INTO indexed (msg, key) VALUES (?, ?)`)
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	// ftsWrite is a row of message_fts to insert with body, or to delete.
	type ftsWrite struct {
		key    int64
		insert bool
		body   string
	}
	writes := make([]ftsWrite, 0, len(batch))
	dropped := false // a deleted message left the index
	for _, p := range batch {
		var old int64
		err := forget.QueryRowContext(ctx, p.msg).Scan(&old)
		switch {
		case err == nil:
			writes = append(writes, ftsWrite{key: old})
			dropped = dropped || p.status == ""
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("index message %d: %w", p.msg, err)
		}
		if p.status == "" || p.status == "streaming" || p.content == "" {
			continue // deleted, streaming again, or nothing to find
		}
		key := searchKey(p.owner, p.msg)
		writes = append(writes, ftsWrite{key: key, insert: true, body: fold(p.content)})
		if _, err := remember.ExecContext(ctx, p.msg, key); err != nil {
			return fmt.Errorf("index message %d: %w", p.msg, err)
		}
	}
	slices.SortStableFunc(writes, func(a, b ftsWrite) int { return cmp.Compare(a.key, b.key) })
	del, err := tx.PrepareContext(ctx, `DELETE FROM message_fts WHERE rowid = ?`)
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	ins, err := tx.PrepareContext(ctx, `INSERT INTO message_fts (rowid, body) VALUES (?, ?)`)
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	for _, w := range writes {
		if w.insert {
			_, err = ins.ExecContext(ctx, w.key, w.body)
		} else {
			_, err = del.ExecContext(ctx, w.key)
		}
		if err != nil {
			return fmt.Errorf("index key %d: %w", w.key, err)
		}
	}
	if err := recordBatch(ctx, tx, s.ixState, next, batch); err != nil {
		return fmt.Errorf("index: record the batch: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("index: commit: %w", err)
	}
	s.ixScrub = s.ixScrub || dropped
	return nil
}

// SearchBacklog returns how many messages wait for the search index (they
// are found by search all the same, checked one by one), those a new
// index has not queued yet included. The growth benchmark waits for it to
// reach 0 before it times searches.
//
// The requeue's state is read first, then the queue and the messages not
// queued are counted in one statement: counted in two, a step of the
// requeue committed between them would move its messages out of the
// second count after the first was taken, and the backlog could read 0
// with messages not indexed (TestSearchIndexOldLayout failed so in CI).
// A step committed after the state was read is counted, never missed:
// requeueAll stores the next step and clears requeueing only after the
// step's commit.
func (s *Store) SearchBacklog(ctx context.Context) (int, error) {
	if s.ixDamaged.Load() { // read first: a rebuild sets requeueing before it clears this
		return s.backlogCount(ctx, qBacklogRequeue, 1, int64(math.MaxInt64))
	}
	if s.requeueing.Load() {
		return s.backlogCount(ctx, qBacklogRequeue, s.requeueNext.Load(), s.requeueLast.Load())
	}
	return s.backlogCount(ctx, qPendingCount)
}

// backlogCount runs a read query of SearchBacklog, which returns one count.
func (s *Store) backlogCount(ctx context.Context, q string, args ...any) (int, error) {
	row, err := s.queryRow(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("sqlite: search backlog: %w", err)
	}
	var n int
	if err := row.Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: search backlog: %w", err)
	}
	return n, nil
}
