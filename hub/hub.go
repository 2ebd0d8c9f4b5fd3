package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"chatd/hub/protocol"
	"chatd/internal/waitctx"
	"chatd/llm"
	"chatd/persistence"
)

// Store is what the hub reads and writes directly; streaming text goes
// through the Writer instead.
type Store interface {
	CreateConversation(ctx context.Context, c *persistence.Conversation) error
	Conversation(ctx context.Context, ownerID, id string) (persistence.Conversation, error)
	UpdateConversation(ctx context.Context, ownerID, id string, p persistence.ConversationPatch) (persistence.Conversation, error)
	InsertMessage(ctx context.Context, m *persistence.Message) error
	Message(ctx context.Context, ownerID, id string) (persistence.Message, error)
	MessageByClientID(ctx context.Context, ownerID, clientMessageID string) (persistence.Message, error)
	Messages(ctx context.Context, ownerID, conversationID string) ([]persistence.Message, error)
	// LatestAnswer reads a repeated send's answer alone (repeatSend).
	LatestAnswer(ctx context.Context, ownerID, conversationID, parentID string) (persistence.Message, error)
	// DeleteConversation removes a conversation and its messages (a send's
	// new conversation in which it could store nothing).
	DeleteConversation(ctx context.Context, ownerID, id string) error
}

// Writer persists streaming answers in batches (persistence/batch).
type Writer interface {
	// Append queues more text of a message; it never blocks on the database.
	Append(id, text string)
	// AppendReasoning queues more reasoning of a message, like Append.
	AppendReasoning(id, text string)
	// Finish writes the final state of a message and returns once it is
	// durable. When ctx ends first, its error wraps ctx's and the update
	// stays queued, retried; any other error means it will not be written.
	Finish(ctx context.Context, u persistence.MessageUpdate) error
}

// Model streams answers and knows which models exist. A model a send or
// regenerate names by another name than its id is known when the Model is
// an llm.Resolver (the router: "upstream/name"); its id is used.
type Model interface {
	llm.Streamer
	llm.Catalog
}

// Titler names a conversation from its first exchange; it must always
// return something usable (falling back to the prompt's first words).
// model is the answer's model as the hub fits prompts into it (its window
// the one a refusal taught, when smaller: Hub.Models), so that the title
// request can keep within its bounds (llm.Titler.TitleFor).
type Titler func(ctx context.Context, model llm.ModelInfo, prompt, answer string) string

// Options configure a Hub. Zero fields take the documented defaults.
type Options struct {
	Store  Store
	Writer Writer
	Model  Model
	// Titler names new conversations; nil leaves titles empty.
	Titler Titler
	// Metrics receives counters; nil records nothing.
	Metrics Metrics
	Logger  *slog.Logger
	// CoalesceInterval is the longest a delta waits to be merged with the
	// next ones; it defaults to 25ms. The first token of an answer is never held.
	CoalesceInterval time.Duration
	// CoalesceBytes sends the pending text at once when it grows past it; it defaults to 4096.
	CoalesceBytes int
	// CoalesceMinGap is the shortest pause after a delta that still lets
	// the next text go out at once when no subscriber is busy; text that
	// comes sooner (a fast model) is merged. It defaults to a fifth of
	// CoalesceInterval.
	CoalesceMinGap time.Duration
	// CoalesceStreams is how many answers streaming on this instance at
	// once widen coalescing: from that many on, every piece of text waits
	// (none goes out at once) until its delta carries two pieces per
	// CoalesceStreams answers, or at most a window that grows with their
	// number, CoalesceInterval x answers / CoalesceStreams, up to
	// CoalesceMaxInterval, so that each frame carries several tokens and a
	// busy server writes fewer frames. It defaults to 100 per GOMAXPROCS
	// (200 on two cores).
	CoalesceStreams int
	// CoalesceMaxInterval bounds the widened window; it defaults to
	// CoalesceInterval and a fifth more (30 ms to the default 25 ms; as
	// does a value below CoalesceInterval): the most a piece of text waits
	// by design under load stays well within the 50 ms a stream may lag
	// (twice the interval held 200 streams on two cores, this 400; see
	// docs/benchmarks.md, "Capacity: the widened window's bound").
	CoalesceMaxInterval time.Duration
	// MaxAnswersPerUser bounds the answers of one user running on this
	// instance at once (those being prepared count too); a send or
	// regenerate past it is refused with rate_limited, storing nothing.
	// Title requests count too, in a slot left free, which an answer takes
	// from them (answers.go).
	// Each instance of a cluster counts its own (an answer runs on the
	// instance that took its request). It defaults to
	// DefaultMaxAnswersPerUser.
	MaxAnswersPerUser int
	// MaxDuration bounds one answer; it defaults to 10 minutes.
	MaxDuration time.Duration
	// FinishTimeout bounds the final database write of an answer; it defaults to 10s.
	FinishTimeout time.Duration
	// HistoryBytes bounds the bytes of history a prompt may send to a
	// model whose context window is unknown (neither configured, listed
	// nor learned from a refusal); it defaults to DefaultHistoryBytes. A
	// model with a known window gets the history its window holds
	// (historyBound), up to MaxHistoryBytes.
	HistoryBytes int
	// MaxHistoryBytes bounds the bytes of history any prompt may send,
	// whatever the model's window: it bounds what a running answer keeps
	// of its conversation. It defaults to DefaultMaxHistoryBytes (a
	// window of a million tokens, by the estimate of 3 bytes a token).
	MaxHistoryBytes int
	// MaxAnswerBytes bounds the text of one answer, and apart from it
	// its reasoning: at that size the stream is stopped and the answer
	// stored complete with finish reason "length". It defaults to DefaultMaxAnswerBytes.
	MaxAnswerBytes int
	// HoleWait is how long a tab's mirror of an answer running on another
	// instance waits for the store's checkpoint to reach a hole in the
	// answer's frames on the bus (a frame the bus refused, or discarded)
	// before its followers are told to reconnect; it defaults to 3s,
	// several checkpoint intervals (persistence/batch Options.Interval).
	HoleWait time.Duration
	// LookupPause is how long a tab that began to follow a conversation
	// waits before it asks the bus again which answer runs there, when
	// the bus failed to say (a NATS reconnect, a leader election); each
	// later pause doubles, for lookupAttempts tries in all, within one
	// busTimeout. It defaults to 100ms.
	LookupPause time.Duration
	// LockCheckTimeout bounds how long an answer whose row was just stored
	// waits for the bus to say whether its conversation's lock still names
	// it (lockKept) while the bus cannot answer (a NATS reconnect, a
	// leader election): past it the answer ends unstarted, since an
	// instance cut off that long has lost its lease. It defaults to 15s,
	// above the bus's default lease TTL (10s).
	LockCheckTimeout time.Duration
	// SweepInterval is how often this instance sweeps for answers left
	// streaming that nothing will end (sweep.go), jittered by a quarter
	// either way; it defaults to a minute. A single process, which ends
	// them all at start, sweeps too: for those its start could not end
	// and those whose end it dropped since.
	SweepInterval time.Duration
	// SweepAge is how long an answer's row must have gone without a
	// checkpoint before the sweep looks at it (the bus then says whether
	// a live answer still owns it); it defaults to MaxDuration and
	// FinishTimeout and a minute more (11m10s), 5 minutes at least, so
	// that a live answer is never found that old, even one thinking
	// silently whose lock the bus lost.
	SweepAge time.Duration
	// Bus connects this hub to the other instances of a cluster; it
	// defaults to NewLocalBus() (one process: nothing is published). With
	// a Bus of several instances, Store must implement MessageInterrupter.
	Bus Bus
}

// DefaultMaxAnswerBytes is the default Options.MaxAnswerBytes (256 KiB).
const DefaultMaxAnswerBytes = 256 << 10

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Metrics == nil {
		o.Metrics = nopMetrics{}
	}
	if o.CoalesceInterval <= 0 {
		o.CoalesceInterval = 25 * time.Millisecond
	}
	if o.CoalesceMinGap <= 0 {
		o.CoalesceMinGap = o.CoalesceInterval / 5
	}
	if o.CoalesceStreams <= 0 {
		o.CoalesceStreams = 100 * runtime.GOMAXPROCS(0)
	}
	if o.CoalesceMaxInterval < o.CoalesceInterval {
		o.CoalesceMaxInterval = o.CoalesceInterval * 6 / 5
	}
	if o.CoalesceBytes <= 0 {
		o.CoalesceBytes = 4096
	}
	if o.MaxAnswersPerUser <= 0 {
		o.MaxAnswersPerUser = DefaultMaxAnswersPerUser
	}
	if o.MaxDuration <= 0 {
		o.MaxDuration = 10 * time.Minute
	}
	if o.FinishTimeout <= 0 {
		o.FinishTimeout = 10 * time.Second
	}
	if o.HistoryBytes <= 0 {
		o.HistoryBytes = DefaultHistoryBytes
	}
	if o.MaxHistoryBytes <= 0 {
		o.MaxHistoryBytes = DefaultMaxHistoryBytes
	}
	if o.MaxAnswerBytes <= 0 {
		o.MaxAnswerBytes = DefaultMaxAnswerBytes
	}
	if o.HoleWait <= 0 {
		o.HoleWait = 3 * time.Second
	}
	if o.LookupPause <= 0 {
		o.LookupPause = 100 * time.Millisecond
	}
	if o.LockCheckTimeout <= 0 {
		o.LockCheckTimeout = 15 * time.Second
	}
	if o.Bus == nil {
		o.Bus = NewLocalBus()
	}
	if o.SweepInterval <= 0 {
		o.SweepInterval = time.Minute
	}
	if o.SweepAge <= 0 {
		o.SweepAge = defaultSweepAge(*o)
	}
}

// Causes of a generation's end, read with context.Cause.
var (
	errCancelled = errors.New("cancelled by the user")
	// errDeleting: the user deletes the conversation (or the account). The
	// answer is stored cancelled, and nothing more goes upstream for it:
	// no title is asked for.
	errDeleting   = fmt.Errorf("the conversation is being deleted: %w", errCancelled)
	errSuperseded = errors.New("replaced by a regenerated answer")
	errShutdown   = errors.New("the server is shutting down")
	// errEndedElsewhere: the store says another instance ended the answer.
	errEndedElsewhere = errors.New("ended by another instance")
)

// Hub owns live generations and the subscribers that follow them.
type Hub struct {
	opts Options
	log  *slog.Logger

	base       context.Context // parent of every generation; cancelled by Shutdown
	cancelBase context.CancelCauseFunc
	work       sync.WaitGroup // generations and title jobs

	// Lock order: mu before any conv.mu; followMu is innermost.
	mu      sync.Mutex
	closing bool
	users   map[string]map[Subscriber]struct{}
	convs   map[string]*conv

	followMu sync.Mutex
	follows  map[Subscriber]map[string]*conv // what each subscriber follows

	flush  *flusher
	live   atomic.Int64 // generations running on this instance (coalescing widens with them)
	titles titleJobs    // conversations whose title is being asked for
	// answers bounds each user's answers running here (answers.go).
	answers *answerSlots
	// endedUsers are refused new answers, their account being deleted
	// (enduser.go).
	endedUsers endedUsers
	// windows are the context windows upstreams named refusing a prompt,
	// each for learnedWindowAge (refit.go).
	windows learnedWindows
	// caps are, per model, the budget of a prompt accepted after a
	// refusal that named no window (refit.go): later prompts fit in it,
	// for learnedWindowAge.
	caps learnedWindows
	// unsaved are the answers that ended here without their final state
	// stored, for a while (unsaved.go).
	unsaved unsavedEnds
	// late are the answers whose dropped end waits to be marked
	// interrupted (lateend.go).
	late lateEnds
	// sweep holds the test hooks of the sweep of answers left streaming
	// (sweep.go).
	sweep sweepHooks
	// convFrames keeps conversation frames that come after the
	// conversation's deletion from the tabs (convframes.go).
	convFrames convGate

	cluster // the other instances (cluster.go)
}

// New returns a Hub. Call Run to start its delta flusher and Shutdown to
// end every generation.
func New(opts Options) *Hub {
	opts.setDefaults()
	base, cancel := context.WithCancelCause(context.Background())
	h := &Hub{
		opts:       opts,
		log:        opts.Logger,
		base:       base,
		cancelBase: cancel,
		users:      make(map[string]map[Subscriber]struct{}),
		follows:    make(map[Subscriber]map[string]*conv),
		convs:      make(map[string]*conv),
		flush:      newFlusher(opts.CoalesceInterval, opts.CoalesceMaxInterval),
		answers:    newAnswerSlots(opts.MaxAnswersPerUser),
		cluster:    newCluster(opts.Bus, opts.Metrics),
	}
	opts.Bus.Attach(busHandler{h})
	return h
}

// Run sends coalesced deltas when they are due until ctx ends. While no
// text waits it sleeps; otherwise it wakes every CoalesceInterval/8 (see
// flusher). It also sweeps for answers left streaming (sweep.go; a
// single process too) until ctx ends or Shutdown, and returns once that
// stopped.
func (h *Hub) Run(ctx context.Context) error {
	defer h.runSweep(ctx)()
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-h.flush.wake:
			t.Reset(h.flush.untilNext(time.Now()))
		case <-t.C:
			now := time.Now()
			if h.flush.tick(now) {
				t.Reset(h.flush.untilNext(now))
			}
		}
	}
}

// Shutdown stops accepting work, ends every running generation as
// interrupted (its text stored and its done frame sent) and waits for them,
// or for ctx.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	h.closing = true
	h.mu.Unlock()
	h.cancelBase(errShutdown)
	if err := waitctx.Wait(ctx, &h.work); err != nil {
		h.stopBusWork()
		return fmt.Errorf("wait for the running answers to end: %w", err)
	}
	err := h.waitPublished(ctx)
	h.stopBusWork()
	return err
}

// Register makes sub receive the user-wide frames of its user (conversations
// created, renamed or deleted). Call Detach when the connection ends.
func (h *Hub) Register(sub Subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	set := h.users[sub.UserID()]
	if set == nil {
		set = make(map[Subscriber]struct{})
		h.users[sub.UserID()] = set
	}
	set[sub] = struct{}{}
}

// Detach forgets sub everywhere: user-wide frames and every conversation it followed.
func (h *Hub) Detach(sub Subscriber) {
	h.mu.Lock()
	if set := h.users[sub.UserID()]; set != nil {
		delete(set, sub)
		if len(set) == 0 {
			delete(h.users, sub.UserID())
		}
	}
	h.mu.Unlock()
	h.followMu.Lock()
	followed := h.follows[sub]
	delete(h.follows, sub)
	h.followMu.Unlock()
	for _, c := range followed {
		h.unfollow(c, sub)
	}
}

// Connections returns how many subscribers a user has registered.
func (h *Hub) Connections(userID string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.users[userID])
}

// closeEverywhere closes userID's connections as c says, here and on
// every other instance.
func (h *Hub) closeEverywhere(userID string, c UserClose) {
	h.closeUserAs(userID, c)
	h.broadcast(UserEvent{UserID: userID, Close: &c})
}

// EndUser ends a user's live work before their account is deleted: every
// connection of the user, on every instance, is closed with 4401 and
// ReasonAccountDeleted, and the answers running in the user's conversations listed
// (those the store holds a streaming answer in) are stopped wherever they
// run, each waited for as CancelConversation does. Every title request
// running for the user is aborted, and none starts for titleTimeout (an
// answer that ended a moment before would start one after the abort and
// before the store deletes): here, including those of conversations not
// listed, and on the instances the close reaches (busHandler.UserEvent).
//
// Every answer of the user running or being prepared here, listed or
// not, is also ended with errDeleting and waited for (stopUser), and
// none starts here for endedUserRefusal; the instances the close reaches
// end theirs the same way, without waiting. A send or regenerate past
// its session check before the revoke that stored its answer after the
// snapshot (a regenerate woken by the stop of the listed answer) would
// otherwise stream on after the account is gone.
func (h *Hub) EndUser(userID string, conversations []string) {
	h.closeEverywhere(userID, UserClose{Code: protocol.CloseUnauthorized, Reason: protocol.ReasonAccountDeleted})
	h.haltUser(userID) // at once; waited for below
	for _, id := range conversations {
		h.CancelConversation(userID, id)
	}
	h.titles.abortUser(userID)
	h.stopUser(userID)
}

// CloseRevoked closes, with 4401, this instance's connections of userID
// opened with a session older than current, the user's token version now:
// a logout whose event never reached this instance (one cut off from the
// cluster for longer than events are kept). Subscribers that do not
// implement Session are left alone. It returns how many it closed.
func (h *Hub) CloseRevoked(userID string, current int64) int {
	return h.closeUserWhere(userID, protocol.CloseUnauthorized, protocol.ReasonSignedOut, func(sub Subscriber) bool {
		s, ok := sub.(Session)
		return ok && s.TokenVersion() < current
	})
}

// CloseUser closes every connection of a user, on every instance: an
// account gone (a logout closes CloseSessionsBefore).
func (h *Hub) CloseUser(userID string) {
	h.closeEverywhere(userID, UserClose{Code: protocol.CloseUnauthorized, Reason: protocol.ReasonSignedOut})
}

// CloseSessionsBefore closes, on every instance, the connections of userID
// opened with a session older than version, with 4401 (ReasonSignedOut):
// what a password change does, version being the token version of the
// session it issued, whose connections stay, and a logout, version being
// the user's token version after it (0: every connection), so that its
// close reaching an instance late leaves the sessions signed in since. A
// connection that does not say its session (not a Session) is closed too.
func (h *Hub) CloseSessionsBefore(userID string, version int64) {
	h.closeEverywhere(userID, UserClose{Code: protocol.CloseUnauthorized, Reason: protocol.ReasonSignedOut, Before: version})
}

// closeUserAs closes this instance's connections of userID as c says.
func (h *Hub) closeUserAs(userID string, c UserClose) {
	h.closeUserWhere(userID, c.Code, c.Reason, func(sub Subscriber) bool {
		s, ok := sub.(Session)
		return c.Before == 0 || !ok || s.TokenVersion() < c.Before
	})
}

// closeUserWhere closes this instance's connections of userID that match,
// and returns how many.
func (h *Hub) closeUserWhere(userID string, code protocol.CloseCode, reason string, match func(Subscriber) bool) int {
	n := 0
	for _, sub := range h.userSubs(userID) {
		if match(sub) {
			sub.Close(code, reason)
			n++
		}
	}
	return n
}

// ConversationChanged tells every connection of the owner that a
// conversation was "created", "updated" or "deleted". A deletion, told
// once the store deleted the conversation, also aborts its title request,
// here as on every other instance (busHandler.UserEvent): one running may
// have read the conversation before the delete, and one begun after
// finds nothing to name.
//
// A deletion also ends, before its frame goes out, the answer of the
// conversation running here or being prepared (stopDeleted), and the
// other instances end theirs as its event reaches them: one that stored
// its row in the moment between the deleter's CancelConversation and
// the store's delete (a regenerate woken by the same done, a send) would
// otherwise stream on to its end for a conversation that is gone.
func (h *Hub) ConversationChanged(ownerID, action string, c persistence.Conversation) {
	f := protocol.Conversation(action, c)
	ev := UserEvent{UserID: ownerID, Frame: f}
	if action == protocol.ActionDeleted {
		h.stopDeleted(ownerID, c.ID)
		ev.Deleted = c.ID
		h.titles.abortOwned(c.ID, ownerID)
	}
	h.deliverConv(ownerID, c.ID, action, f)
	h.broadcast(ev)
}

// stopDeleted ends with errDeleting the answer of ownerID's conversation
// convID that runs here, and halts one being prepared here as it starts
// (haltLocked), the store having deleted the conversation: an answer
// that stored its row just before the delete asks for nothing more
// upstream, nor for a title, and gives back its answer slot. Its final
// update finds the row gone, and its done reports its own end (see
// generation.fenced). It waits, up to FinishTimeout in all, until
// nothing runs or is being prepared in the conversation here (a
// reservation ends as its insert fails, or as its halted answer starts:
// that one is then waited for too), so that the deletion's frame follows
// the done, as when CancelConversation stopped the answer.
func (h *Hub) stopDeleted(ownerID, convID string) {
	ended := h.haltDeleted(ownerID, convID)
	if ended == nil {
		return // the common case: nothing runs in it
	}
	deadline := time.NewTimer(h.opts.FinishTimeout)
	defer deadline.Stop()
	for ; ended != nil; ended = h.haltDeleted(ownerID, convID) {
		select {
		case <-ended:
		case <-deadline.C:
			h.log.Warn("an answer of a deleted conversation did not end in time", "conversation", convID)
			return
		}
	}
}

// haltDeleted is one step of stopDeleted, and what another instance's
// deletion event does here (busHandler.UserEvent): it ends the answer
// running in the conversation, or halts the one being prepared, and
// returns what closes once that one ended (its done) or its reservation
// did; nil when nothing of ownerID runs or is being prepared in it here.
func (h *Hub) haltDeleted(ownerID, convID string) <-chan struct{} {
	return haltConv(h.lookup(convID), ownerID)
}

// haltConv ends with errDeleting the answer of ownerID running in c (nil:
// none), or halts the one being prepared, and returns what closes once
// that one ended or its reservation did; nil when nothing of ownerID runs
// or is being prepared in c.
func haltConv(c *conv, ownerID string) <-chan struct{} {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.owner != ownerID || c.dead:
		return nil
	case c.gen != nil:
		c.gen.cancel(errDeleting) // never blocks
		return c.gen.done
	case c.reservedLocked():
		c.halt = errDeleting // whatever stop came before: no title either
		return c.unreserved
	}
	return nil
}

func (h *Hub) deliverUser(userID string, f *protocol.Frame) {
	for _, sub := range h.userSubs(userID) {
		sub.Deliver(f)
	}
}

// ActiveMessageID returns the id of the answer running in a conversation, or "".
// Asking the bus of a cluster takes at most busTimeout (ActiveAnswer is
// bounded by its caller's context too).
func (h *Hub) ActiveMessageID(conversationID string) string {
	if c := h.lookup(conversationID); c != nil {
		c.mu.Lock()
		id := c.runningIDLocked()
		c.mu.Unlock()
		if id != "" {
			return id
		}
	}
	return h.remoteRunningID(h.base, conversationID, "")
}

// ActiveAnswer is ActiveMessageID for the conversation's owner only; for
// any other user it returns "", as for a conversation with nothing
// running, so a caller that has not checked ownership learns nothing of
// another user's conversation. An answer running on another instance
// counts when the bus names the same owner; asking the bus ends with ctx
// (and within busTimeout), and a bus that cannot say by then counts as
// nothing running.
//
// Another user's conversation this instance holds (followed, or its
// answer running here) asks the bus as an unknown id does, whose answer
// names its owner and so tells this caller nothing: were it answered at
// once, the time saved would tell a live conversation from an id that
// does not exist (ids are guessable).
func (h *Hub) ActiveAnswer(ctx context.Context, ownerID, conversationID string) string {
	if c := h.lookup(conversationID); c != nil {
		c.mu.Lock()
		owner, id := c.owner, c.runningIDLocked()
		c.mu.Unlock()
		if owner == ownerID && id != "" {
			return id
		}
	}
	return h.remoteRunningID(ctx, conversationID, ownerID) // checks the owner
}

// CancelConversation stops the running answer of a conversation, if the
// owner matches, and waits briefly for it to end (used before a delete).
// Nothing more goes upstream for the conversation from this instance, or
// from the one running the answer (ControlDelete): the answer asks for no
// title, and a title request already running there is aborted. A title
// request on a third instance, running no answer in the conversation (its
// last one ended there), is aborted by the deletion's conversation frame
// (UserEvent.Deleted) once the conversation is gone.
func (h *Hub) CancelConversation(ownerID, conversationID string) {
	_ = h.cancelAnswerFor(h.base, ownerID, conversationID, "", errDeleting) // logged; the deletion goes on
	if c := h.lookup(conversationID); c == nil || c.owner == ownerID {
		h.titles.abort(conversationID)
	}
}

// cancelAnswer stops the running answer of a conversation, if the owner
// matches and, when messageID is not "", only if that running answer is
// messageID (on this instance or another); it waits briefly for it to end.
// An answer still being prepared here is stopped as it starts only when no
// answer is named: a client learns an answer's id from its ack, sent once
// it runs, so a named one is never still being prepared. The wait for an
// answer of this instance ends early when ctx does (the request that
// asked is gone); the answer is stopped all the same. One on another
// instance is told to stop, and waited for, whatever ctx: the stop must
// reach it even when the request is gone. It returns an error
// (unavailable) only when that stop may not have reached it (stopRemote):
// the answer may run on, and the client asks again.
func (h *Hub) cancelAnswer(ctx context.Context, ownerID, conversationID, messageID string) error {
	return h.cancelAnswerFor(ctx, ownerID, conversationID, messageID, errCancelled)
}

// cancelAnswerFor is cancelAnswer with the cause the answer ends with
// here (errCancelled or one wrapping it).
func (h *Hub) cancelAnswerFor(ctx context.Context, ownerID, conversationID, messageID string, cause error) error {
	c := h.lookup(conversationID)
	if c != nil && c.owner != ownerID {
		return nil
	}
	var g *generation
	if c != nil {
		c.mu.Lock()
		g = c.gen
		if g == nil && messageID == "" && c.reservedLocked() && c.halt == nil {
			c.halt = cause // the answer being prepared is stopped as it starts
		}
		c.mu.Unlock()
	}
	if g == nil {
		return h.cancelRemote(conversationID, messageID, cause)
	}
	if messageID != "" && g.msg.ID != messageID {
		return nil // another answer runs: not the one the cancel names
	}
	g.cancel(cause)
	ctx, cancel := context.WithTimeout(ctx, h.opts.FinishTimeout)
	defer cancel()
	select {
	case <-g.done:
	case <-ctx.Done():
	}
	return nil
}

// cancelRemote is cancelAnswerFor for an answer that does not run here:
// it is stopped on the instance running it (stopRemote) and waited for,
// up to FinishTimeout. It returns stopRemote's error when the stop may not
// have reached that instance; when it did, an answer whose done did not
// come in time is only logged, as a local one is.
func (h *Hub) cancelRemote(conversationID, messageID string, cause error) error {
	kind := ControlCancel
	if errors.Is(cause, errDeleting) {
		kind = ControlDelete // its instance asks for no title either
	}
	ctx, cancel := context.WithTimeout(h.base, h.opts.FinishTimeout)
	defer cancel()
	err := h.stopRemote(ctx, conversationID, kind, messageID)
	if err == nil {
		return nil
	}
	h.log.Warn("cancel a remote answer", "conversation", conversationID, "err", err)
	if errors.As(err, new(stopUnsent)) {
		return err
	}
	return nil
}

func (h *Hub) userSubs(userID string) []Subscriber {
	h.mu.Lock()
	defer h.mu.Unlock()
	subs := make([]Subscriber, 0, len(h.users[userID]))
	for sub := range h.users[userID] {
		subs = append(subs, sub)
	}
	return subs
}

// enter counts a Send or Regenerate in h.work, unless the hub is closing;
// the caller calls h.work.Done when it returns. The check and the count
// are one critical section: Shutdown, which sets closing under h.mu before
// it waits, then waits for every request already past the check, so none
// can start an answer after the wait (and write to a closed batch writer).
func (h *Hub) enter() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return false
	}
	h.work.Add(1)
	return true
}

// isClosing reports whether Shutdown has begun.
func (h *Hub) isClosing() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closing
}
