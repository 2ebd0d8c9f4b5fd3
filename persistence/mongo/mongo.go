// Package mongo is the production persistence.Store, on MongoDB through the
// official Go driver (v2).
//
// Layout: one document per user (users), per conversation (conversations)
// and per message (messages); nothing grows inside a user or conversation
// document. Ids are persistence.NewID strings, which are ObjectID hex, stored
// as ObjectID _id values (12 bytes, sorted by creation time); owner_id,
// conversation_id and parent_id reference them the same way (a root
// message's parent_id is null). A message's text is stored as an array of
// chunks in content, with the words a chunk boundary cut in two kept in
// split_words for search, up to maxSplitRunes characters on each side of
// the cut (see ApplyMessageUpdates and ListConversations),
// and write_id is the id of the last bulk write that updated it (by which
// a failed write, one whose reply was lost included, learns which
// statements applied); an append is conditioned on how many chunks the
// content and reasoning arrays hold, so a statement and its retry do not
// both apply.
// Times are BSON dates, so the store keeps them in UTC at millisecond
// precision, from a clock that never repeats a value.
//
// The store uses only what both MongoDB and FerretDB v1 (the in-process test
// server, see persistence/ferret) support: no transactions, change streams,
// TTL or partial indexes, pipeline updates, or aggregation beyond $match and
// $group. Two features are used where the server has them, with a fallback
// where it has not (FerretDB v1): a text index that narrows searches
// (textindex.go) and $slice projections that read a long text in parts
// (ReadContent). Where FerretDB is detected (its buildInfo reply), message
// updates check the fence with a find by _id before writing, because
// FerretDB v1 reads the whole collection for any other filter (see
// ApplyMessageUpdates), and updates take in-process document locks,
// because its updates are not atomic (see docLocks; on MongoDB only
// ApplyMessageUpdates takes one, uncontended).
package mongo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"

	"chatd/persistence"
)

// Options configures Open.
type Options struct {
	// URI is a standard MongoDB connection string (mongodb:// or
	// mongodb+srv://, with any of its options: TLS, replicaSet, authSource...).
	// Required.
	URI string
	// Database is the database name; it defaults to the database in the URI
	// path, else "chatd".
	Database string
	// Logger receives the store's logs; it defaults to slog.Default().
	Logger *slog.Logger
	// ConnectTimeout bounds connecting and the first ping in Open; it
	// defaults to 10s. A connectTimeoutMS in the URI overrides it for the
	// driver's own connection attempts.
	ConnectTimeout time.Duration
	// Monitor, when set, sees every command the driver sends (tests and
	// benchmarks count writes with it).
	Monitor *event.CommandMonitor
	// ReadBackTimeout bounds the read that learns, after a failed bulk
	// write of message updates, which of its statements applied (every
	// attempt together, see ApplyMessageUpdates); it defaults to 5s.
	ReadBackTimeout time.Duration
	// UndoTimeout bounds taking back a create whose check after its
	// write failed (a message whose conversation is gone, a conversation
	// whose owner is gone: see undo.go), retries included; it defaults to
	// 10s.
	UndoTimeout time.Duration
	// DeletionSweep is how often the store looks for account and
	// conversation deletions that were cut off and finishes them
	// (FinishDeletions: one indexed read of users, one of conversations
	// and one of the small meta collection when there are none); it
	// defaults to 1 minute. Negative: never after Open's own look.
	DeletionSweep time.Duration
	// DeletionGrace is how long FinishDeletions (Open's look and the
	// sweep's, on any instance) leaves a user MarkUserDeleting marked,
	// whose deletion may still be ending their live work; it defaults to
	// persistence.DeletionGrace.
	DeletionGrace time.Duration
	// EmailRewriteTimeout bounds the one-time rewrite of stored emails in
	// their normal form, at the first Open of a release that has it
	// (normalizeEmailsOnce; not bounded by ConnectTimeout); it defaults
	// to 10 minutes.
	EmailRewriteTimeout time.Duration

	afterSweep func(n int, err error) // tests: called after each periodic look
	deleteStep int                    // tests: messages per delete of a conversation's deletion (0: deleteStep)
	// tests: an error it returns for an email fails that account's
	// rewrite in normalizeEmails as a write error would
	failEmailRewrite func(email string) error
	// tests: runs InsertMessage's insert of its document (insert) in
	// its place, with its context (nil: insert(ctx))
	insertMessage insertHook
}

// insertHook runs, in tests, an insert in place of the store (see
// Options.insertMessage).
type insertHook func(ctx context.Context, insert func(context.Context) error) error

// Default option values.
const (
	DefaultDatabase        = "chatd"
	DefaultConnectTimeout  = 10 * time.Second
	DefaultReadBackTimeout = 5 * time.Second
	DefaultUndoTimeout     = 10 * time.Second
	DefaultDeletionSweep   = time.Minute
	// DefaultEmailRewriteTimeout: see Options.EmailRewriteTimeout.
	DefaultEmailRewriteTimeout = 10 * time.Minute
)

// Store is a persistence.Store on MongoDB. It is safe for concurrent use.
type Store struct {
	client          *mongo.Client
	users           *mongo.Collection               // always read from the primary: see newStore
	conversations   *mongo.Collection               // read as the URI says, or the primary for a ctx of persistence.WithLatest: see convsFor
	convsPrimary    *mongo.Collection               // conversations, read from the primary (ConversationByClientID, UpdateConversation's conflict, reads with persistence.WithLatest)
	messages        *mongo.Collection               // as conversations: see messagesFor
	messagesPrimary *mongo.Collection               // messages, read from the primary: for the reads a write depends on (the fence, the chunk counts, a read-back, InterruptMessage's answer, a deletion's streaming answers) and those with persistence.WithLatest
	meta            *mongo.Collection               // always read from the primary: see newStore
	leases          *mongo.Collection               // the single-process lease (solo.go), read from the primary
	lease           atomic.Pointer[soloLease]       // set by TakeSoloLease
	presence        atomic.Pointer[clusterPresence] // set by MarkClusterPresence
	log             *slog.Logger
	locks           docLocks      // see docLocks: FerretDB's updates are not atomic (taken there only)
	tails           tailCache     // trailing partial words of streaming messages
	unsure          unsureInserts // conversations a failed insert may have left a message in (unsure.go)
	insertHook      insertHook    // Options.insertMessage
	noSlice         atomic.Bool   // the server refused a $slice projection (FerretDB v1)
	textIndex       atomic.Bool   // searches may use the text index (set by Open, or by cleanUp once it built it)
	ferretDB        bool          // the server is FerretDB (set by Open): see ApplyMessageUpdates
	readBackTimeout time.Duration // Options.ReadBackTimeout
	undoTimeout     time.Duration // Options.UndoTimeout
	deleteStep      int           // messages per delete of a conversation's deletion (deleteconv.go)
	deletionGrace   time.Duration // Options.DeletionGrace: how long FinishDeletions leaves a MarkUserDeleting mark (markedUsers)
	emailsRewritten bool          // Open ran the rewrite of emails (normalizeEmailsOnce), for tests
	stopCleanUp     context.CancelFunc
	cleanedUp       chan struct{} // closed when Open's clean-up has ended (at once when there was none)
	startedUp       chan struct{} // closed when the clean-up's start-up work (what Open found) has ended
}

var _ persistence.Store = (*Store)(nil)

// withDefaults returns o with every zero field set to its documented default.
func (o Options) withDefaults(parts uriParts) Options {
	if o.Database == "" {
		o.Database = parts.database
	}
	if o.Database == "" {
		o.Database = DefaultDatabase
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.ReadBackTimeout <= 0 {
		o.ReadBackTimeout = DefaultReadBackTimeout
	}
	if o.UndoTimeout <= 0 {
		o.UndoTimeout = DefaultUndoTimeout
	}
	if o.DeletionSweep == 0 {
		o.DeletionSweep = DefaultDeletionSweep
	}
	if o.DeletionGrace <= 0 {
		o.DeletionGrace = persistence.DeletionGrace
	}
	if o.EmailRewriteTimeout <= 0 {
		o.EmailRewriteTimeout = DefaultEmailRewriteTimeout
	}
	return o
}

// Open connects to MongoDB, checks that it answers within ConnectTimeout,
// creates the indexes (idempotently) and applies pending schema migrations,
// then starts in the background what is left to clean up and the periodic
// look for cut-off account deletions (cleanUp): Close stops it. Errors name the host(s) but never the password.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.URI == "" {
		return nil, errors.New("open mongodb store: empty URI")
	}
	parts := splitURI(opts.URI)
	opts = opts.withDefaults(parts)

	dialer := new(openDialer)
	client, err := connect(ctx, opts, parts, dialer)
	if err != nil {
		return nil, err
	}
	s := newStore(client, opts)
	fresh, buildText, err := s.setUp(ctx)
	var work cleanUpWork
	if err == nil {
		work, err = s.cleanUpToDo(ctx, fresh)
		work.textIndex = buildText
	}
	if err != nil {
		abandon(ctx, client, dialer)
		return nil, parts.redact(fmt.Errorf("open mongodb store on %s: %w", parts.hosts, err))
	}
	dialer.keep()
	// Last: the one-time rewrite has a bound of its own (EmailRewriteTimeout)
	// and fails nothing, so it must not spend what the steps before need
	// of ctx (bounded by CHATD_DB_CONNECT_TIMEOUT).
	s.normalizeEmailsOnce(ctx, opts)
	opts.Logger.Info("mongodb store opened", "hosts", parts.hosts, "database", opts.Database)
	if work.none() && opts.DeletionSweep < 0 {
		close(s.startedUp)
		close(s.cleanedUp)
		return s, nil
	}
	ctx, s.stopCleanUp = context.WithCancel(context.WithoutCancel(ctx))
	go func() {
		defer close(s.cleanedUp)
		s.cleanUp(ctx, work, opts)
	}()
	return s, nil
}

// connect creates the client, dialling through dialer, and pings the
// primary within ConnectTimeout.
func connect(ctx context.Context, opts Options, parts uriParts, dialer *openDialer) (*mongo.Client, error) {
	co := options.Client().
		SetAppName("chatd").
		SetConnectTimeout(opts.ConnectTimeout).
		SetDialer(dialer).
		ApplyURI(opts.URI) // after the defaults: the URI's own options win
	if opts.Monitor != nil {
		co.SetMonitor(opts.Monitor)
	}
	client, err := mongo.Connect(co)
	if err != nil {
		return nil, parts.redact(fmt.Errorf("connect to mongodb %s: %w", parts.hosts, err))
	}
	pingCtx, cancel := context.WithTimeout(ctx, opts.ConnectTimeout)
	defer cancel()
	if err := client.Ping(pingCtx, readpref.Primary()); err != nil {
		abandon(ctx, client, dialer)
		return nil, parts.redact(fmt.Errorf("mongodb %s did not answer a ping within %s: %w",
			parts.hosts, opts.ConnectTimeout, err))
	}
	return client, nil
}

// abandon disconnects the client of an open that failed, closing first the
// connections it dialled, so that the driver's wait for its monitor's check
// ends at once (see openDialer).
func abandon(ctx context.Context, client *mongo.Client, dialer *openDialer) {
	dialer.abandon()
	_ = client.Disconnect(context.WithoutCancel(ctx))
}

// newStore returns the store on client. Every read of users goes to the
// primary, whatever read preference the URI names (secondaryPreferred, to
// spread the reads of conversations and messages): each one decides a
// sign-in, a token check (a revoked token, an old password must not pass
// on a lagging secondary), or the outcome of a write (whether a deletion's
// mark landed, ChangePassword's conflict, CreateConversation's owner). So
// does every read of meta: the schema version (a migration to run, a
// schema too new to open), the clean-up's state and the deletion records.
func newStore(client *mongo.Client, opts Options) *Store {
	db := client.Database(opts.Database)
	return &Store{
		client:          client,
		users:           db.Collection("users", options.Collection().SetReadPreference(readpref.Primary())),
		conversations:   db.Collection("conversations"),
		convsPrimary:    db.Collection("conversations", options.Collection().SetReadPreference(readpref.Primary())),
		messages:        db.Collection("messages"),
		messagesPrimary: db.Collection("messages", options.Collection().SetReadPreference(readpref.Primary())),
		meta:            db.Collection("meta", options.Collection().SetReadPreference(readpref.Primary())),
		leases:          db.Collection("leases", options.Collection().SetReadPreference(readpref.Primary())),
		log:             opts.Logger,
		locks:           newDocLocks(),
		readBackTimeout: opts.ReadBackTimeout,
		undoTimeout:     opts.UndoTimeout,
		deleteStep:      cmp.Or(opts.deleteStep, deleteStep),
		deletionGrace:   opts.DeletionGrace,
		insertHook:      opts.insertMessage,
		stopCleanUp:     func() {},
		cleanedUp:       make(chan struct{}),
		startedUp:       make(chan struct{}),
	}
}

// convsFor is the conversations collection a read made with ctx uses:
// the primary when ctx asks for the latest state (persistence.WithLatest),
// else the read preference the URI names.
func (s *Store) convsFor(ctx context.Context) *mongo.Collection {
	if persistence.Latest(ctx) {
		return s.convsPrimary
	}
	return s.conversations
}

// messagesFor is convsFor for the messages collection.
func (s *Store) messagesFor(ctx context.Context) *mongo.Collection {
	if persistence.Latest(ctx) {
		return s.messagesPrimary
	}
	return s.messages
}

// Ping checks that the primary answers, and that this process still holds
// the single-process lease if it took it (TakeSoloLease).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.soloErr(); err != nil {
		return err
	}
	if err := s.client.Ping(ctx, readpref.Primary()); err != nil {
		return fmt.Errorf("ping mongodb: %w", err)
	}
	return nil
}

// Close stops the clean-up Open may have started, releases the
// single-process lease if taken (TakeSoloLease), deletes the cluster
// instance's presence if marked (MarkClusterPresence) and disconnects from
// MongoDB, waiting (within ctx) for operations in flight. The lease is
// released before the clean-up is waited for: a clean-up slow to end
// (an operation the server is slow to answer) would spend ctx, leave the
// lease stored and keep the next start waiting for it to expire. The
// clean-up, stopped first, does only what instances of a cluster do at
// once (finishing deletions, sweeping what they left), so a process
// taking the lease meanwhile does no harm.
func (s *Store) Close(ctx context.Context) error {
	s.stopCleanUp()
	released := errors.Join(s.releaseLease(ctx), s.releasePresence(ctx))
	select {
	case <-s.cleanedUp:
	case <-ctx.Done():
	}
	if err := s.client.Disconnect(ctx); err != nil {
		return errors.Join(released, fmt.Errorf("close mongodb store: %w", err))
	}
	return released
}

// mapErr turns driver errors into the persistence errors callers compare
// with errors.Is. A duplicate key error becomes ErrDuplicate alone: the
// server's message quotes the key, which may be an email address, and
// callers log errors. A network error (the connection to the server
// refused, reset or cut: a deployment down, a failover under way) wraps
// ErrUnavailable, the driver's error kept; a server that cannot be
// selected in time is already a context.DeadlineExceeded (the driver
// selects within the operation's context).
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, mongo.ErrNoDocuments):
		return persistence.ErrNotFound
	case mongo.IsDuplicateKeyError(err):
		return persistence.ErrDuplicate
	case mongo.IsNetworkError(err):
		return fmt.Errorf("%w: %w", persistence.ErrUnavailable, err)
	default:
		return err
	}
}
