// Package persistence defines what the server stores (users, conversations,
// messages) and the small interfaces the rest of the server uses to store it.
//
// Two implementations live in sub-packages: persistence/sqlite (the embedded,
// zero-setup default) and persistence/mongo (production, MongoDB through the
// official driver). Both pass the same contract suite in persistence/storetest.
package persistence

import (
	"context"
	"errors"
	"time"
)

// Errors every store returns (possibly wrapped); compare with errors.Is.
var (
	// ErrNotFound means the record does not exist or is not owned by the caller.
	ErrNotFound = errors.New("not found")
	// ErrDuplicate means a unique key (user email, per-owner client message
	// id or client conversation id) is taken.
	ErrDuplicate = errors.New("duplicate")
	// ErrInvalidCursor means a pagination cursor could not be decoded.
	ErrInvalidCursor = errors.New("invalid cursor")
	// ErrCorrupt means the database answers but its data is damaged (SQLite
	// "database disk image is malformed"): restore it from a backup.
	ErrCorrupt = errors.New("database corrupted")
	// ErrUnavailable means the database cannot take the request now,
	// though nothing is wrong with the request or with the data: SQLite's
	// disk is full, another process holds its lock past the busy timeout,
	// or the file cannot be read or written (an I/O error). The same
	// request may succeed later: the API answers it 503 unavailable with
	// Retry-After, as a database that does not answer in time.
	ErrUnavailable = errors.New("database unavailable")
	// ErrNotStreaming means an update of a message was not applied because
	// the message is unknown or no longer streaming: another instance ended
	// it (see Messages.ApplyMessageUpdates). Read the message to learn its
	// stored state.
	ErrNotStreaming = errors.New("message not streaming")
	// ErrDropped means a message's update was given up and will never be
	// written (a batching writer over its bound, or a store that kept
	// rejecting the update): the message stays as last stored, still
	// streaming, until something ends it (Messages.InterruptMessage).
	ErrDropped = errors.New("message update dropped")
	// ErrUnknownOwner means a conversation was not created because no
	// user has its owner id: an unknown or malformed id, or an account
	// deleted (Users.DeleteUser) while the request that creates it was
	// under way. Nothing is stored. For the caller it means the session
	// has ended, as for a revoked token, not that something is missing.
	ErrUnknownOwner = errors.New("owner does not exist")
	// ErrConflict means a write conditioned on a record's state found
	// that state changed meanwhile (Users.ChangePassword, a
	// ConversationPatch with IfTitle): nothing was written.
	ErrConflict = errors.New("changed meanwhile")
	// ErrDeleting is part of the error of a Users.DeleteUser that failed
	// after marking the user as being deleted: the user is gone for every
	// read, and the store finishes the deletion on its own
	// (DeletionFinisher). The account is as good as deleted.
	ErrDeleting = errors.New("account deletion under way")
	// ErrLeaseLost means this process no longer holds the database's
	// single-process lease it took (the MongoDB store's TakeSoloLease):
	// another chatd took it over, and the two may interrupt each other's
	// answers. The store's Ping returns it from then on.
	ErrLeaseLost = errors.New("lost the single-process lease")
	// ErrLeaseLapsed comes with ErrLeaseLost while the lease has expired
	// unrenewed (the database did not answer the renewals) and no other
	// process is known to have taken it: the store fails Ping until a
	// renewal gets through, and then holds the lease again or finds it
	// taken.
	ErrLeaseLapsed = errors.New("the single-process lease expired unrenewed (the database did not answer its renewals)")
)

// Role is the author of a message.
type Role string

// Message roles.
const (
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
)

// Status is the lifecycle state of a message. User messages are always
// complete; assistant messages start streaming and end in one of the others.
type Status string

// Message statuses.
const (
	StatusStreaming   Status = "streaming"
	StatusComplete    Status = "complete"
	StatusCancelled   Status = "cancelled"
	StatusError       Status = "error"
	StatusInterrupted Status = "interrupted"
)

// An answer the server's restart ended is stored interrupted with these
// as its ErrorCode and Error: by the hub when it stops cleanly (its done
// frame says them too, the code being protocol.CodeShutdown), and by
// InterruptStreaming for the answers a crash left streaming (or a restored
// backup held streaming), so a reader is told why each stopped.
const (
	RestartErrorCode = "shutdown"
	RestartError     = "The server restarted while answering; the text so far is kept."
)

// Final reports whether s ends a message's life (anything but streaming).
func (s Status) Final() bool { return s != StatusStreaming && s != "" }

// User is an account.
type User struct {
	ID string `json:"id"`
	// Email is stored lower-cased and unique; a store rewrites, when it
	// opens, each email not in emailform.Normalize's form into it (one
	// whose form another account holds stays as it was, logged).
	Email        string    `json:"email"`
	Name         string    `json:"name"`
	PasswordHash string    `json:"-"`
	TokenVersion int64     `json:"-"` // bumped on logout: older tokens stop working
	CreatedAt    time.Time `json:"createdAt"`
	UpdatedAt    time.Time `json:"updatedAt"`
}

// Conversation is one chat thread owned by one user.
type Conversation struct {
	ID           string  `json:"id"`
	OwnerID      string  `json:"-"`
	Title        string  `json:"title"`
	Model        string  `json:"model"`
	SystemPrompt string  `json:"systemPrompt"`
	Params       *Params `json:"params,omitempty"` // sampling parameters; nil (or unset fields): the model's defaults
	// ClientID is the creation's idempotency key: unique per owner,
	// generated when the creator gives none, never changed. A request
	// retried with the same key finds the conversation the first one
	// created (ConversationByClientID) instead of creating another.
	ClientID  string    `json:"-"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"` // moves forward with every new message
}

// Params are a conversation's sampling parameters. A nil (or empty) field
// means "the model's default"; the API validates ranges before they are
// stored (see docs/api.md).
type Params struct {
	Temperature *float64 `json:"temperature,omitempty"` // 0 to 2
	TopP        *float64 `json:"topP,omitempty"`        // above 0, at most 1
	MaxTokens   *int     `json:"maxTokens,omitempty"`   // longest answer, in tokens
	Stop        []string `json:"stop,omitempty"`        // up to 4 stop sequences
}

// IsZero reports whether p sets nothing (a nil p too).
func (p *Params) IsZero() bool {
	return p == nil || p.Temperature == nil && p.TopP == nil && p.MaxTokens == nil && len(p.Stop) == 0
}

// Usage is the token accounting an upstream model reported.
type Usage struct {
	PromptTokens     int `json:"promptTokens"`
	CompletionTokens int `json:"completionTokens"`
	TotalTokens      int `json:"totalTokens"`
}

// Message is one node of a conversation's message tree. Regenerating an
// answer or editing a user message creates a sibling: a message with the same
// ParentID. The root messages of a conversation have an empty ParentID.
type Message struct {
	ID              string    `json:"id"`
	ConversationID  string    `json:"conversationId"`
	OwnerID         string    `json:"-"`
	ParentID        string    `json:"parentId"`
	Role            Role      `json:"role"`
	Content         string    `json:"content"`
	Reasoning       string    `json:"reasoning,omitempty"` // the model's reasoning ("thinking"), never sent upstream again
	Model           string    `json:"model,omitempty"`
	Status          Status    `json:"status"`
	FinishReason    string    `json:"finishReason,omitempty"`
	Usage           *Usage    `json:"usage,omitempty"`
	Error           string    `json:"error,omitempty"`
	ErrorCode       string    `json:"errorCode,omitempty"`       // the done frame's error code (timeout, upstream_error...)
	OmittedMessages int       `json:"omittedMessages,omitempty"` // earlier messages left out of the prompt to fit the context window
	ClientMessageID string    `json:"clientMessageId"`           // unique per owner; generated when the client sends none
	CreatedAt       time.Time `json:"createdAt"`
	UpdatedAt       time.Time `json:"updatedAt"`
}

// MessageUpdate is one change to a stored message, as the batching writer
// hands it to a store. Zero fields mean "unchanged".
type MessageUpdate struct {
	ID           string
	Append       string // appended to Content; never rewrites what is stored
	Status       Status
	FinishReason string
	Usage        *Usage
	Error        string
	ErrorCode    string
	At           time.Time // becomes UpdatedAt
	// AppendReasoning is appended to Reasoning, like Append to Content.
	AppendReasoning string
	// OwnerID is the message's owner, for the batching writer's caller: a
	// final update the writer drops is reported with it (batch
	// Options.OnDropped), so that the message can be ended without a
	// lookup. Stores ignore it: ID names the message.
	OwnerID string
}

// ConversationPatch changes some fields of a conversation; nil means unchanged.
type ConversationPatch struct {
	Title        *string
	Model        *string
	SystemPrompt *string
	Params       *Params // replaces the whole set
	// IfTitle, when set, makes the patch conditional: it applies only if
	// the conversation's stored title is *IfTitle at the moment of the
	// write; otherwise nothing is written and UpdateConversation returns
	// ErrConflict (ErrNotFound still wins for an unknown id or another
	// owner's). The check and the write are one atomic step on SQLite and
	// MongoDB (a single-document update filtered on the title); on
	// FerretDB, whose updates are a read then a write, the store's lock
	// makes it atomic against the writes of the same process only. The hub
	// names an untitled conversation with IfTitle "" so that a rename by
	// its user meanwhile is never overwritten.
	IfTitle *string
}

// ListQuery selects a page of a user's conversations, newest (by UpdatedAt) first.
type ListQuery struct {
	Cursor string // opaque, from a previous page's NextCursor; "" is the first page
	Limit  int    // stores clamp it to 1..100; 0 means 30
	Search string // case-insensitive substring of the title or of any message's text
}

// ConversationPage is one page of conversations.
type ConversationPage struct {
	Conversations []Conversation
	NextCursor    string // "" on the last page
}

// Users stores accounts.
type Users interface {
	// CreateUser stores u, filling ID and timestamps; ErrDuplicate if the email is taken.
	CreateUser(ctx context.Context, u *User) error
	// UserByEmail finds a user by lower-cased email.
	UserByEmail(ctx context.Context, email string) (User, error)
	// UserByID finds a user by id.
	UserByID(ctx context.Context, id string) (User, error)
	// BumpTokenVersion increments the user's token version and returns the new one.
	BumpTokenVersion(ctx context.Context, id string) (int64, error)
	// ChangePassword replaces the user's password hash and increments
	// their token version in one atomic write, so every token issued
	// before it stops working; it returns the new token version. It
	// writes only while the token version is still fromVersion (the one
	// read when the current password was checked): ErrConflict, nothing
	// written, when another change or revocation came first. ErrNotFound
	// for an unknown or malformed id.
	ChangePassword(ctx context.Context, id, passwordHash string, fromVersion int64) (int64, error)
	// DeleteUser removes the user and every conversation and message they
	// own (answers still streaming included, with any pieces stored for them
	// and their search-index entries); ErrNotFound for an unknown or
	// malformed id, and then nothing changes. Its first write marks the user
	// as being deleted: from then on the user reads and writes above answer
	// ErrNotFound for them (no sign-in, no token check, no revocation), their
	// password hash is cleared and their token version moved, and their
	// email stays taken until everything is gone. Then the SQLite store
	// deletes all of it in one transaction; the MongoDB store, which has no
	// transactions, deletes the messages, the conversations, the user, and
	// the conversations and messages once more (see persistence/mongo). A
	// deletion cut off after the mark (ctx, the process's end, a failover)
	// is finished by the store itself (DeletionFinisher), never left as a
	// live account with part of its data gone. A conversation or message
	// created concurrently, by a request that passed its session check
	// before the deletion, is deleted too or refused (CreateConversation:
	// ErrUnknownOwner; InsertMessage: ErrNotFound): nothing of the user is
	// left once it returned.
	DeleteUser(ctx context.Context, id string) error
	// MarkUserDeleting marks the user as being deleted as DeleteUser's
	// first write does (every user read and write above answers
	// ErrNotFound for them, their token version moves, their email stays
	// taken) but removes nothing and keeps their password hash: for a
	// deletion that must end the user's live work before their data goes,
	// with no sign-in meanwhile. DeleteUser then removes them. Such a mark
	// is left by FinishDeletions until it is DeletionGrace old (the
	// deletion may still be ending the live work), then finished as a
	// deletion cut off. ErrNotFound for an unknown or malformed id, or a
	// user already marked.
	MarkUserDeleting(ctx context.Context, id string) error
	// UnmarkUserDeleting takes back a MarkUserDeleting whose deletion
	// stops before DeleteUser's mark: the user reads as before (their
	// token version stays moved: the sessions stay revoked). ErrNotFound
	// when the user is not so marked: unknown, not marked, or DeleteUser's
	// mark taken (their data may be going; it is never taken back).
	UnmarkUserDeleting(ctx context.Context, id string) error
}

// Conversations stores conversations. Every method is scoped to an owner:
// another owner's id behaves exactly like an unknown id (ErrNotFound).
type Conversations interface {
	// CreateConversation stores c, filling ID, ClientID (when empty) and
	// timestamps, if a user with id c.OwnerID exists; else it stores
	// nothing and returns ErrUnknownOwner (see Users.DeleteUser for a
	// deletion running meanwhile). A ClientID the owner's stored
	// conversations already hold gives ErrDuplicate and stores nothing,
	// also for creations running at once: exactly one of them stores.
	CreateConversation(ctx context.Context, c *Conversation) error
	// ConversationByClientID returns the owner's conversation with that
	// ClientID; ErrNotFound when none has it.
	ConversationByClientID(ctx context.Context, ownerID, clientID string) (Conversation, error)
	// Conversation returns one conversation.
	Conversation(ctx context.Context, ownerID, id string) (Conversation, error)
	// ListConversations returns a page of the owner's conversations, newest first.
	ListConversations(ctx context.Context, ownerID string, q ListQuery) (ConversationPage, error)
	// UpdateConversation applies p and returns the result; UpdatedAt moves
	// forward, past the stored one whatever the clocks. With p.IfTitle set and the stored title another, it writes
	// nothing and returns ErrConflict.
	UpdateConversation(ctx context.Context, ownerID, id string, p ConversationPatch) (Conversation, error)
	// DeleteConversation removes the conversation and all its messages;
	// ErrNotFound for an unknown id, another owner's, or one already
	// being deleted. It first marks the conversation
	// (DeleteStepConversationMarked): from then on it is gone for every
	// read and write (its messages too, sends into it are ErrNotFound) and
	// its ClientID is free; then its messages go in bounded steps. Once
	// the mark is written it returns nil: a deletion cut off after it (its
	// context, the process's end) is finished by FinishDeletions.
	DeleteConversation(ctx context.Context, ownerID, id string) error
}

// Messages stores messages.
type Messages interface {
	// InsertMessage stores m, filling ID (when empty), ClientMessageID (when
	// empty) and timestamps, and moves the conversation's UpdatedAt to
	// m.CreatedAt. m.CreatedAt is after the conversation's stored UpdatedAt,
	// so after every message already in it, whatever the clocks (a stored
	// time written by a clock ahead of this one's is passed, not trusted to
	// be in the past). A ClientMessageID the owner already used gives
	// ErrDuplicate and stores nothing. A conversation being deleted, or
	// one whose owner is (MarkUserDeleting, DeleteUser), gives ErrNotFound
	// and keeps nothing: an account deletion's snapshot of the user's
	// running answers, read after its mark, then misses none.
	InsertMessage(ctx context.Context, m *Message) error
	// Message returns one message of the owner.
	Message(ctx context.Context, ownerID, id string) (Message, error)
	// MessageByClientID returns the owner's message with that client id.
	MessageByClientID(ctx context.Context, ownerID, clientMessageID string) (Message, error)
	// Messages returns every message of a conversation (all branches), oldest first.
	Messages(ctx context.Context, ownerID, conversationID string) ([]Message, error)
	// LatestAnswer returns the newest answer (RoleAssistant) to message
	// parentID in the owner's conversation, read alone: a repeated send
	// finds the answer it started without reading the conversation's
	// other messages. None (or another owner's, an unknown or a malformed
	// id) is ErrNotFound.
	LatestAnswer(ctx context.Context, ownerID, conversationID, parentID string) (Message, error)
	// MessagePage returns the newest q.Limit messages of a conversation
	// created before q.Before (all of them when Before is ""), oldest first,
	// and whether older ones exist; fewer when their text passes q.MaxBytes
	// (PageFill: at least one, and the store reads no further rows). A
	// Before that names no message of the conversation gives ErrNotFound.
	MessagePage(ctx context.Context, ownerID, conversationID string, q PageQuery) (MessagePage, error)
	// MessageOutline returns every message of a conversation like Messages,
	// but with empty Content and Reasoning: the tree of a large
	// conversation, in little memory (read the texts with ReadContent and
	// ReadReasoning).
	MessageOutline(ctx context.Context, ownerID, conversationID string) ([]Message, error)
	// ReadContent calls fn with the text of one of the owner's messages, in
	// order, in pieces of at most about ContentPieceBytes bytes (never
	// splitting a UTF-8 character), so a large answer is never held whole.
	// It calls fn not at all for an empty text.
	ReadContent(ctx context.Context, ownerID, id string, fn func(piece string) error) error
	// ReadReasoning calls fn with the reasoning of one of the owner's
	// messages as ReadContent with its text.
	ReadReasoning(ctx context.Context, ownerID, id string, fn func(piece string) error) error
	// ApplyMessageUpdates writes a batch of updates in one bulk operation
	// (unordered where the database allows).
	//
	// An update applies only while its message is still streaming (the
	// fence): once a message is final, nothing changes it any more, neither
	// a late checkpoint nor a second final update. That fences off an
	// instance cut from its cluster whose answer another instance already
	// ended (InterruptMessage), and makes a retried final update (the first
	// attempt applied, its reply was lost) change nothing instead of
	// appending its text twice. The fence does not stop a retried
	// checkpoint (its message is still streaming): it appends again, so a
	// store must not report an update failed that applied, its reply lost
	// or not.
	//
	// It returns the ids of the updates that did not apply, because their
	// message is unknown or no longer streaming (each id once, in no
	// particular order; nil when all applied; an id is returned when none
	// of its updates in the batch applied). On error, which updates
	// applied is unknown, and skipped is nil, unless the error is a
	// *PartialUpdateError: then only the updates of its IDs failed, every
	// other one applied or is in skipped, and a caller retries only the
	// failed ones (retrying all would append the others' text twice). A
	// store whose write is all or nothing never returns one. A caller
	// that finds its final update skipped reads the message to learn its
	// stored state.
	// The MongoDB store reads back which updates applied after any failed
	// bulk write, whether the server answered with write errors or its
	// reply was lost (a network error or timeout after sending, a primary
	// stepping down, ctx ending mid-write, a write concern error), and
	// returns nil or a *PartialUpdateError accordingly. It returns an
	// error that leaves it unknown only when that read fails too (the
	// server unreachable for seconds). Each of its checkpoints is
	// conditioned on the chunks its text follows, so that of an update
	// reported failed that the server still applies (after that read, or
	// when it failed too) and its retry, which repeats the text, the
	// second to arrive does not append it again (on FerretDB, only a late
	// update that lands before the retry; see persistence/mongo).
	// The MongoDB store infers the ids when its bulk write matched fewer
	// messages than it had updates (see persistence/mongo: it may count a
	// final update found already stored as applied), and on FerretDB,
	// whose updates are not atomic, the fence can be crossed by a write
	// racing InterruptMessage.
	ApplyMessageUpdates(ctx context.Context, updates []MessageUpdate) (skipped []string, err error)
	// InterruptStreaming marks every message still streaming as interrupted,
	// with RestartErrorCode and RestartError as its ErrorCode and Error (run
	// at start: those were left by a crash, or held by a restored backup),
	// and returns how many changed.
	InterruptStreaming(ctx context.Context) (int, error)
	// InterruptMessage marks the owner's message id interrupted, with
	// reason as its error (when not empty) and at as its UpdatedAt, if and
	// only if it is still streaming; its text stays as stored. It returns
	// the message as stored after the call, changed or not (ErrNotFound
	// for an unknown id, or one of a conversation being deleted, as
	// Message answers). In a cluster, the instance that took over the
	// answers of a dead one ends them with it.
	InterruptMessage(ctx context.Context, ownerID, id, reason string, at time.Time) (Message, error)
	// SetOmittedMessages sets the OmittedMessages of the owner's message
	// id while it is streaming: an answer whose prompt was fitted again
	// after the upstream refused it as too long leaves out more messages
	// than it was stored with. A message no longer streaming keeps its
	// count (nil: the answer ended first); ErrNotFound for an unknown id
	// or another owner's.
	SetOmittedMessages(ctx context.Context, ownerID, id string, n int) error
	// StreamingConversations returns the ids of the owner's conversations
	// that hold a message whose status is streaming, each once, in any
	// order; none for an unknown owner.
	StreamingConversations(ctx context.Context, ownerID string) ([]string, error)
	// StreamingBefore returns up to limit (clamped to 1..MaxPageLimit) of
	// the messages, of every owner, still streaming whose UpdatedAt (their
	// last checkpoint's) is before before, oldest first (by UpdatedAt,
	// then ID), from the one after after on (the last of the page before,
	// though it may have ended since; the zero value: from the oldest). An
	// after.ID that is not an id (malformed) is ErrNotFound; the hub's
	// sweep, which passes only the last of a page, never sends one, and
	// would end its pass on the error. A cluster's instances sweep with it
	// for answers nothing will end (hub.Options.SweepAge): few messages
	// stream at a time, and the stores find them by their status.
	StreamingBefore(ctx context.Context, before time.Time, after StreamingMessage, limit int) ([]StreamingMessage, error)
}

// StreamingMessage is a message still streaming as Messages.StreamingBefore
// returns it: enough to find its answer in a cluster and end it.
type StreamingMessage struct {
	ID             string
	ConversationID string
	OwnerID        string
	UpdatedAt      time.Time
}

// MessagesInserter is implemented by stores that can insert several
// messages in one transaction (the SQLite store). The hub stores a user's
// message and the row of its answer with one call, so that a burst of
// sends costs one write each instead of two; a store without it gets two
// InsertMessage calls.
type MessagesInserter interface {
	// InsertMessages stores ms in order, each as InsertMessage would (ids,
	// client ids and timestamps filled, each later than the one before;
	// the conversations' UpdatedAt moved forward), all or none: on any
	// error (ErrNotFound, ErrDuplicate, ...) nothing is stored and no
	// message is changed.
	InsertMessages(ctx context.Context, ms ...*Message) error
}

// TouchingInserter is implemented by stores whose message inserts can
// answer with the conversation as the write left it (its UpdatedAt moved
// forward), read in that write itself, so at no extra round trip: SQLite
// in the write's transaction (RETURNING), MongoDB from the update that
// moves the conversation forward. The hub announces that copy after a
// send, so a rename (or a title) stored between its read of the
// conversation and the insert is not undone in the tabs by a frame
// carrying the older copy with a newer UpdatedAt. A wrapper of such a
// store that intercepts InsertMessage or InsertMessages must intercept
// InsertTouching too (or hide it): embedded, the store's would bypass it.
type TouchingInserter interface {
	// InsertTouching stores ms as InsertMessages does on a
	// MessagesInserter (all or none), else as InsertMessage of each in
	// turn (stopping at the first failure), and returns the conversation
	// of the last of ms as the write storing it left it. A store that
	// cannot say after the messages were stored (a wrapper reading it
	// apart, whose read failed) returns the zero Conversation and nil:
	// the messages are stored, and the caller reads it again or does
	// without.
	InsertTouching(ctx context.Context, ms ...*Message) (Conversation, error)
}

// TokenVersionReader is implemented by stores that can read a user's
// token version alone (the SQLite store: one column of one row), which is
// all a session's recheck needs: a WebSocket checks its session this way
// before every send. Use UserTokenVersion, which falls back to UserByID.
// A wrapper of a store that changes what UserByID answers (a test playing
// a removed account) must change TokenVersion alike, or hide it.
type TokenVersionReader interface {
	// TokenVersion returns the user's current token version, as UserByID
	// would; ErrNotFound for an unknown or malformed id.
	TokenVersion(ctx context.Context, userID string) (int64, error)
}

// PasswordRehasher is implemented by stores that can replace a user's
// password hash with another hash of the same password (a higher bcrypt
// cost, a normalised form of it), which a sign-in does once the password
// it was given matched: unlike Users.ChangePassword it leaves the token
// version, and so every session, as it is.
type PasswordRehasher interface {
	// RehashPassword sets user id's password hash to newHash while it is
	// still oldHash: ErrConflict, nothing written, when the hash changed
	// meanwhile (a password change came first); ErrNotFound for an
	// unknown or malformed id or a user being deleted. The token version
	// and UpdatedAt do not change.
	RehashPassword(ctx context.Context, id, oldHash, newHash string) error
}

// UserFinder finds a user by id (Users.UserByID).
type UserFinder interface {
	UserByID(ctx context.Context, id string) (User, error)
}

// UserTokenVersion returns the user's current token version: through
// TokenVersionReader when s implements it, else from UserByID.
func UserTokenVersion(ctx context.Context, s UserFinder, userID string) (int64, error) {
	if tr, ok := s.(TokenVersionReader); ok {
		return tr.TokenVersion(ctx, userID)
	}
	u, err := s.UserByID(ctx, userID)
	if err != nil {
		return 0, err
	}
	return u.TokenVersion, nil
}

// ConversationReader is implemented by stores that can read a
// conversation and its messages together (the SQLite store: one read
// transaction on one pooled connection; the MongoDB store: the messages,
// then the conversation's document, two ordered reads without the third
// that Messages makes to check the conversation). A send reads both before it
// stores anything; under a burst of sends every read waits for a
// connection, so one read instead of two (or three: Messages of a
// conversation without messages also checks that it exists) shortens
// that wait. Use ReadConversation, which falls back to the two calls.
type ConversationReader interface {
	// ConversationWithMessages returns what Conversation and Messages
	// return for the same owner and id, as of one state of the database
	// (MongoDB: a conversation found not being deleted after its messages
	// were read had none of them deleted yet): the conversation, and every
	// message of it (all branches,
	// oldest first; empty, not nil, when it has none). Another owner's,
	// an unknown or a malformed id is ErrNotFound, as for Conversation.
	ConversationWithMessages(ctx context.Context, ownerID, id string) (Conversation, []Message, error)
}

// ConversationStore is what ReadConversation needs from a store.
type ConversationStore interface {
	Conversation(ctx context.Context, ownerID, id string) (Conversation, error)
	Messages(ctx context.Context, ownerID, conversationID string) ([]Message, error)
}

// ReadConversation returns the owner's conversation and its messages:
// with one call when s implements ConversationReader, else Conversation
// then Messages (a conversation deleted between the two is ErrNotFound).
func ReadConversation(ctx context.Context, s ConversationStore, ownerID, id string) (Conversation, []Message, error) {
	if cr, ok := s.(ConversationReader); ok {
		return cr.ConversationWithMessages(ctx, ownerID, id)
	}
	return ReadConversationApart(ctx, s, ownerID, id)
}

// ReadConversationApart is ReadConversation's fallback: Conversation, then
// Messages. A wrapper of stores that implements ConversationReader uses it
// when the store it wraps does not.
func ReadConversationApart(ctx context.Context, s ConversationStore, ownerID, id string) (Conversation, []Message, error) {
	c, err := s.Conversation(ctx, ownerID, id)
	if err != nil {
		return Conversation{}, nil, err
	}
	ms, err := s.Messages(ctx, ownerID, id)
	if err != nil {
		return Conversation{}, nil, err
	}
	if ms == nil {
		ms = []Message{}
	}
	return c, ms, nil
}

// PageQuery selects a page of a conversation's messages.
type PageQuery struct {
	Before string // a message id: only older messages; "" is the newest page
	Limit  int    // stores clamp it to 1..MaxPageLimit; 0 means DefaultPageLimit
	// MaxBytes bounds the page's text (TextBytes of its messages); 0
	// means DefaultPageBytes. The newest message is always in the page,
	// whatever its size; a page cut short of Limit by it has HasMore set.
	MaxBytes int
}

// Limits of PageQuery.Limit.
const (
	DefaultPageLimit = 200
	MaxPageLimit     = 500
)

// ClampPageLimit maps 0 to DefaultPageLimit and clamps n to 1..MaxPageLimit.
func ClampPageLimit(n int) int {
	switch {
	case n == 0:
		return DefaultPageLimit
	case n < 1:
		return 1
	case n > MaxPageLimit:
		return MaxPageLimit
	}
	return n
}

// MessagePage is one page of a conversation's messages, oldest first.
type MessagePage struct {
	Messages []Message
	HasMore  bool // older messages exist
}

// ContentPieceBytes is about the largest piece ReadContent hands over.
const ContentPieceBytes = 256 << 10

// Store is everything the server persists, plus its lifecycle.
type Store interface {
	Users
	Conversations
	Messages
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// ProbeWrite makes one tiny durable write (for readiness checks): it
	// fails while the database cannot write (a full disk, a read-only or
	// corrupted file). A corrupted database gives an error wrapping ErrCorrupt.
	// SQLite's also fails, writing nothing, while a write its disk refused
	// (full, or failing) is recent and none succeeded since: a nearly full
	// disk still takes the probe's in-place rewrite while it refuses the
	// writes that need room.
	ProbeWrite(ctx context.Context) error
	// Close releases the store's resources.
	Close(ctx context.Context) error
}
