// Package sqlite is the embedded, zero-setup persistence.Store: one SQLite
// file (WAL mode) through the pure-Go modernc.org/sqlite driver.
//
// Connections: every write goes through a single writer connection (SQLite
// allows one writer at a time, so queuing in Go is cheaper than lock retries
// and can never fail with "database is locked"); reads use a small pool of
// query-only connections that WAL lets run alongside the writer, and
// searches a pool of their own (Options.SearchConns).
//
// A streaming answer's checkpoints are stored as chunks beside its row,
// which takes them in when the answer ends (chunks.go): a checkpoint of many
// answers then writes a few pages instead of every answer's row.
//
// Timestamps are stored as integer Unix nanoseconds from a clock that never
// repeats a value within a store, so list and message order is exact even for
// records written in the same microsecond; it starts past the latest time
// stored, so a clock stepped back since the last run does not reorder.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"chatd/internal/lograte"
	"chatd/persistence"
)

// Options configures Open. Only Path is required.
type Options struct {
	// Path is the database file. Its directory is created (mode 0700) when
	// missing, and a new file is created with mode 0600. The server passes
	// <dataDir>/chatd.db. In-memory databases are not supported (the writer
	// and the readers must see the same file).
	Path string
	// Logger receives the store's logs; it defaults to slog.Default().
	Logger *slog.Logger
	// ReadConns is the number of pooled read connections; it defaults to 4.
	ReadConns int
	// SearchConns is the number of read connections kept for searches
	// (ListConversations with a Search), apart from ReadConns: a search
	// may read every message of its user (a query shorter than the
	// index's trigrams; seconds for a thousand long texts), and searches
	// waiting for one of these never hold the readers every other request
	// needs (the token check in front of each, lists, conversations). It
	// defaults to 2. Searches that cannot use the index (those scans) run
	// at most SearchConns-1 at once (1 with a single connection), the
	// others waiting without a connection: a few users' scans leave a
	// connection to the searches through the index, which take
	// milliseconds.
	SearchConns int
	// BusyTimeout is how long a statement waits for a lock held by another
	// process (a backup tool, a second server by mistake); it defaults to 5s.
	BusyTimeout time.Duration
	// CacheSizeKiB is SQLite's page cache per connection; it defaults to 8192 (8 MiB).
	CacheSizeKiB int
	// CheckpointInterval is the least time between two checkpoints of the
	// write-ahead log by the store's background checkpointer (checkpoint.go),
	// which keeps checkpoints off the commit path; it defaults to 1s. A
	// negative value turns the checkpointer off: the connection that
	// commits then checkpoints, as SQLite does by default, whenever the log
	// passes 1,000 pages.
	CheckpointInterval time.Duration
	// IndexQuiet is how long the store must have gone without a write
	// (other than the indexer's own) before the search indexer takes in
	// the messages queued for it (search.go); it defaults to 200ms. The
	// index's work (tokenizing and FTS5's merges: 0.7 to 5 ms of CPU per
	// message measured at a million messages, against about 0.25 ms for
	// the append itself) then competes with no burst of writes; a search
	// finds a queued message all the same. A negative value indexes at
	// once after every commit.
	IndexQuiet time.Duration
	// IndexMaxLag bounds how long queued messages wait for a quiet moment
	// while writes keep coming: past it the indexer takes in the whole
	// queue regardless; it defaults to 5s.
	IndexMaxLag time.Duration
	// SharedDir skips the lock file: by default Open holds an exclusive
	// lock on chatd.lock in the database's directory until Close, and fails
	// with ErrLocked (naming the directory and the other process) while
	// another process, or another Store, holds it. Tests that play a second
	// process on purpose set it.
	SharedDir bool
	// DeletionSweep is how often the store looks for account and
	// conversation deletions cut off after their mark (DeleteUser stopped
	// by its time limit, DeleteConversation by its request's end) and
	// finishes them (FinishDeletions: one read of each of two partial
	// indexes when there are none); it defaults to 1 minute. Open always looks once.
	// A negative value: never after Open.
	DeletionSweep time.Duration
	// DeletionGrace is how long FinishDeletions (Open's look and the
	// sweep's) leaves a user MarkUserDeleting marked, whose deletion may
	// still be ending their live work; it defaults to
	// persistence.DeletionGrace.
	DeletionGrace time.Duration

	// For tests of the deletion sweep: called after each periodic look
	// with what FinishDeletions returned.
	afterSweep func(n int, err error)
	// For tests of scrubLog: called with the file's path after each scrub
	// of a write-ahead log (chatd.db's or the search file's).
	scrubbed func(path string)
	// For tests of requeueAll: messages per step (0: requeueStep), and a
	// channel a step waits on before it starts (nil: none).
	requeueStep int
	requeueGate <-chan struct{}
	// For tests of account and conversation deletions: rows per write of
	// a deletion's bounded steps (0: deleteStep).
	deleteStep int
	// For tests of searchsource.go: when set, the transaction that takes
	// an index batch's entries off the queue fails with its error.
	clearFails func() error
	// For tests of the indexer: called with its context in the
	// transaction that takes an index batch's entries off the queue,
	// before its statements.
	clearing func(ctx context.Context)
	// For tests of the search pool: called while a search's rows are
	// open (its connection held), before they are read.
	searchRows func(ctx context.Context)
	// For tests of the scans' bound: called when a scan starts waiting
	// for a turn (Options.SearchConns).
	scanWaits func()
}

// withDefaults returns o with zero fields set to their documented defaults.
func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.ReadConns <= 0 {
		o.ReadConns = 4
	}
	if o.SearchConns <= 0 {
		o.SearchConns = 2
	}
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = 5 * time.Second
	}
	if o.CacheSizeKiB <= 0 {
		o.CacheSizeKiB = 8192
	}
	if o.CheckpointInterval == 0 {
		o.CheckpointInterval = time.Second
	}
	if o.DeletionSweep == 0 {
		o.DeletionSweep = time.Minute
	}
	if o.DeletionGrace <= 0 {
		o.DeletionGrace = persistence.DeletionGrace
	}
	if o.IndexQuiet == 0 {
		o.IndexQuiet = DefaultIndexQuiet
	}
	if o.requeueStep <= 0 {
		o.requeueStep = requeueStep
	}
	if o.deleteStep <= 0 {
		o.deleteStep = deleteStep
	}
	if o.IndexMaxLag <= 0 {
		o.IndexMaxLag = 5 * time.Second
	}
	return o
}

var _ persistence.Store = (*Store)(nil)

// Store is the SQLite persistence.Store. It is safe for concurrent use.
type Store struct {
	log    *slog.Logger
	ioLog  *slog.Logger // log's, each failed read's line once per lograte.DefaultEvery (readErr)
	path   string
	w      *sql.DB // exactly one connection: every write
	r      *sql.DB // query-only pool: every read but searches
	rs     *sql.DB // query-only pool: searches (Options.SearchConns)
	wStmts *stmtCache
	rStmts *stmtCache
	sStmts *stmtCache // searchQueries, on rs
	clock  clock
	lock   *dirLock // nil with Options.SharedDir

	migratedFrom int // schema version found at Open
	// emailsRewritten says whether this Open ran the one-time rewrite of
	// stored emails in their normal form (normalizeEmails), for tests.
	emailsRewritten bool

	// The group committer (group.go): every write transaction.
	writes   chan *writeOp
	stop     chan struct{} // closed by Close
	stopOnce sync.Once
	stopped  chan struct{} // closed when the committer ended

	deleteStep int // Options.deleteStep: rows per write of a deletion's steps (deleteMarked, deleteMarkedConv)
	// Options.DeletionGrace: how long FinishDeletions leaves a
	// MarkUserDeleting mark (markedUsers)
	deletionGrace time.Duration

	// Scrubbing the logs after a finished deletion (scrub.go).
	busyTimeout time.Duration     // Options.BusyTimeout, which a scrub's connection gets back
	scrub       atomic.Bool       // chatd.db's log is to be scrubbed (by the checkpointer)
	ixScrub     bool              // the search file's log is to be scrubbed (the indexer's own)
	scrubbed    func(path string) // Options.scrubbed

	// The periodic deletion sweep (deletion.go); nil when off.
	sweepStop  context.CancelFunc
	sweepEnded chan struct{}

	// The background checkpointer (checkpoint.go); nil channels when off.
	ck         *sql.DB       // its own connection
	dirty      chan struct{} // (1) a commit happened since the last checkpoint
	ckStop     chan struct{} // closed by Close
	ckStopOnce sync.Once
	ckEnded    chan struct{} // closed when the checkpointer ended
	ckLog      atomic.Int64  // the last checkpoint's log size in pages, for tests
	ckDone     atomic.Int64  // and how many of them it had copied

	// The search index (search.go): its own file, connection and goroutine.
	searchPath  string
	sx          *sql.DB         // the indexer's connection to the search file
	requeueing  atomic.Bool     // a new index's messages are still being queued: searches scan (requeueAll)
	requeueNext atomic.Int64    // the first rowid requeueAll has not queued
	requeueLast atomic.Int64    // the last rowid it queues (set at open, or by a rebuild: rebuildSearch)
	requeueStep int             // Options.requeueStep
	requeueGate <-chan struct{} // Options.requeueGate
	ixState     searchState     // chatd.db's search_state: read at open, then the indexer's (searchsource.go)
	clearFails  func() error    // Options.clearFails
	ixPoke      chan struct{}   // (1) the queue may have grown
	ixStop      chan struct{}   // closed by Close
	ixStopOnce  sync.Once
	ixEnded     chan struct{} // closed when the indexer ended
	ixQuiet     time.Duration // Options.IndexQuiet
	ixMaxLag    time.Duration // Options.IndexMaxLag
	writing     atomic.Int64  // writes (other than the indexer's) queued or running
	lastWrite   atomic.Int64  // Unix nanoseconds when the last of them returned
	ixWaits     atomic.Int64  // how many times awaitQuiet began, for tests
	ixWaiting   atomic.Bool   // awaitQuiet is waiting, for tests
	ixDamaged   atomic.Bool   // the search file was found damaged: searches scan until the indexer rebuilds it (searchdamage.go)
	ixRebuilds  atomic.Int64  // how many rebuilds of a damaged search file the indexer began

	clearing   func(context.Context) // Options.clearing
	searchRows func(context.Context) // Options.searchRows
	scans      chan struct{}         // a slot per scan running: SearchConns-1 of them, at least 1 (scanTurn)
	scanWaits  func()                // Options.scanWaits

	disk diskState // the last write the disk refused, which fails ProbeWrite for a while (diskfull.go)
}

// Open opens (creating when needed) the database at opts.Path, applies
// pending schema migrations, finishes the account and conversation
// deletions left cut off (FinishDeletions) and returns a ready store.
func Open(ctx context.Context, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	if opts.Path == "" {
		return nil, errors.New("sqlite: open: empty path")
	}
	path, err := filepath.Abs(opts.Path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", opts.Path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	s := &Store{log: opts.Logger.With("component", "sqlite"), path: path, deleteStep: opts.deleteStep, deletionGrace: opts.DeletionGrace,
		busyTimeout: opts.BusyTimeout, scrubbed: opts.scrubbed, searchRows: opts.searchRows,
		scans: make(chan struct{}, max(opts.SearchConns-1, 1)), scanWaits: opts.scanWaits}
	s.disk.hold = diskHold
	s.ioLog = lograte.Logger(s.log)
	if !opts.SharedDir {
		if s.lock, err = lockDir(filepath.Dir(path)); err != nil {
			return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
		}
	}
	if err := prepareFile(path); err != nil {
		_ = s.lock.unlock()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := s.openPools(ctx, opts); err != nil {
		_ = s.closePools()
		_ = s.lock.unlock()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	s.log.Info("sqlite store open", "path", path, "schema_version", SchemaVersion(),
		"migrated_from", s.migratedFrom, "read_conns", opts.ReadConns, "search_conns", opts.SearchConns)
	s.startDeletionSweep(opts)
	return s, nil
}

// prepareFile creates the directory (0700) and an empty database file
// (0600) so that SQLite, and its -wal and -shm files, inherit private modes.
func prepareFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	return f.Close()
}

// openPools opens the writer, migrates, then opens the read pool.
func (s *Store) openPools(ctx context.Context, opts Options) error {
	var err error
	if s.w, err = sql.Open("sqlite", dsn(s.path, opts, roleWriter)); err != nil {
		return err
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	s.w.SetConnMaxLifetime(0)
	s.w.SetConnMaxIdleTime(0)
	if err := s.w.PingContext(ctx); err != nil {
		return fmt.Errorf("writer: %w", err)
	}
	if err := s.migrate(ctx); err != nil {
		return err
	}
	if err := s.startClock(ctx); err != nil {
		return err
	}
	if err := s.openSearch(ctx, opts); err != nil {
		return err
	}
	if s.r, err = openReaders(ctx, s.path, opts, opts.ReadConns); err != nil {
		return fmt.Errorf("readers: %w", err)
	}
	if s.rs, err = openReaders(ctx, s.path, opts, opts.SearchConns); err != nil {
		return fmt.Errorf("search readers: %w", err)
	}
	if s.wStmts, err = prepareAll(ctx, s.w, writeQueries); err != nil {
		return fmt.Errorf("writer: %w", err)
	}
	if s.rStmts, err = prepareAll(ctx, s.r, readQueries); err != nil {
		return fmt.Errorf("readers: %w", err)
	}
	if s.sStmts, err = prepareAll(ctx, s.rs, searchQueries); err != nil {
		return fmt.Errorf("search readers: %w", err)
	}
	if err := s.startCheckpointer(ctx, opts); err != nil {
		return err
	}
	s.startCommitter()
	// Before the indexer starts, whose first pass then takes in what these
	// deletions queue. (After it, this look overlapped the indexer's first
	// pass, and TestIndexerWaitsForQuiet, which expects that pass over
	// before the first write, failed about one run in eight.)
	_, _ = s.finishAllDeletions(ctx) // logged
	s.startIndexer(opts)
	return nil
}

// openReaders opens a pool of n query-only connections (roleReader).
func openReaders(ctx context.Context, path string, opts Options, n int) (*sql.DB, error) {
	db, err := sql.Open("sqlite", dsn(path, opts, roleReader))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := db.PingContext(ctx); err != nil {
		return db, err
	}
	return db, nil
}

// DefaultIndexQuiet is Options.IndexQuiet's default (and that of chatd's
// CHATD_SEARCH_INDEX_QUIET).
const DefaultIndexQuiet = 200 * time.Millisecond

// What a connection is for.
const (
	roleWriter = iota
	roleReader
	roleCheckpointer
	roleIndexer // the search file's writer
)

// dsn builds the driver's URI for a connection of role: pragmas run on
// every new connection.
func dsn(path string, opts Options, role int) string {
	q := url.Values{}
	sync := "synchronous(NORMAL)"
	switch role {
	case roleWriter:
		// chatd answers a client once the write's commit returns (a send's
		// done "complete", a password change's 200 saying the other
		// sessions are signed out, a deletion's 204). With NORMAL a commit
		// in WAL mode writes the log's frames without syncing them, and
		// only the next checkpoint (a second or more later) did: a power
		// loss in between took back writes already acknowledged. FULL
		// syncs the log at every commit; the group committer (group.go)
		// and the batch writer keep commits few (docs/benchmarks.md,
		// "Commits synced").
		sync = "synchronous(FULL)"
	case roleIndexer:
		// The indexer takes entries off the queue in chatd.db once their
		// batch is committed in the search file. With NORMAL that commit
		// could be lost in a power failure while the queue's removal was
		// not: those messages would be missing from search for good. FULL
		// syncs each batch before.
		sync = "synchronous(FULL)"
	}
	pragmas := []string{
		fmt.Sprintf("busy_timeout(%d)", opts.BusyTimeout.Milliseconds()),
		"journal_mode(WAL)",
		sync,
		"foreign_keys(1)",
		fmt.Sprintf("cache_size(%d)", -opts.CacheSizeKiB),
		"temp_store(MEMORY)",
		"journal_size_limit(67108864)",
	}
	if role == roleWriter || role == roleIndexer {
		// A deleted row's bytes are zeroed in its page, and a page freed
		// is zeroed before it joins the free list (scrub.go).
		pragmas = append(pragmas, "secure_delete(1)")
	}
	switch role {
	case roleReader:
		pragmas = append(pragmas, "query_only(1)")
		q.Set(searchParam, searchPath(path))
	case roleWriter:
		q.Set("_txlock", "immediate")
		if opts.CheckpointInterval > 0 {
			pragmas = append(pragmas, fmt.Sprintf("wal_autocheckpoint(%d)", walBackstopPages))
		}
	case roleCheckpointer:
		pragmas = append(pragmas, "wal_autocheckpoint(0)")
	case roleIndexer:
		q.Set("_txlock", "immediate")
	}
	q["_pragma"] = pragmas
	u := url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}
	if u.Path != "" && u.Path[0] != '/' { // Windows drive letters
		u.Path = "/" + u.Path
	}
	return u.String()
}

// Ping checks that the writer and the readers answer. The searches'
// connections are left out: long searches may hold them all, by design
// (the other readers stay free), and a ping would wait for one of them,
// so a readiness check would fail while the store serves every request.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.w.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping writer: %w", err)
	}
	if err := s.r.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping readers: %w", err)
	}
	return nil
}

// Close lets SQLite refresh its query statistics and releases every
// connection; the last one checkpoints the WAL into the main file.
func (s *Store) Close(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, "PRAGMA optimize"); err != nil {
		s.log.Warn("optimize before close failed", "err", err)
	}
	err := s.closePools()
	if uerr := s.lock.unlock(); err == nil {
		err = uerr
	}
	if err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}

// closePools closes whatever openPools managed to open.
func (s *Store) closePools() error {
	s.stopDeletionSweep()
	s.stopIndexer()
	s.stopCommitter()
	s.stopCheckpointer()
	var errs []error
	for _, c := range []*stmtCache{s.wStmts, s.rStmts, s.sStmts} {
		if c != nil {
			errs = append(errs, c.close())
		}
	}
	for _, db := range []*sql.DB{s.sx, s.ck, s.rs, s.r, s.w} {
		if db != nil {
			errs = append(errs, db.Close())
		}
	}
	return errors.Join(errs...)
}

// Path returns the absolute path of the database file.
func (s *Store) Path() string { return s.path }
