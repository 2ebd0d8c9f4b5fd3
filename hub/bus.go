package hub

import (
	"context"
	"errors"
	"time"

	"chatd/hub/protocol"
	"chatd/persistence"
)

// Bus connects the hubs of several chatd instances so that they act as one:
// one running answer per conversation across the cluster, answers followed,
// stopped and resumed from any instance, user-wide events everywhere, and
// the answers of a dead instance ended by a live one.
//
// The hub talks only to this interface. NewLocalBus is the in-process
// implementation (one instance: today's behaviour, the default);
// hub/natsbus implements it over NATS JetStream. No engine type appears
// here. Every method is safe for concurrent use. Methods that take a ctx
// return when it ends; an error that means "the bus cannot be reached"
// wraps ErrBusUnavailable, and also ErrNotSent when the call was refused
// before anything was sent (so it certainly had no effect).
//
// What the hub does with it, in order, for one answer:
//
//  1. Acquire the conversation's lock naming the answer (its message id is
//     chosen before the message is inserted), then insert the message.
//  2. Publish the answer's frames in order from one goroutine: the
//     user's message frame (for a send), the answer's message frame, the
//     coalesced deltas, the done frame. After its first frame it
//     Broadcasts a UserEvent whose Started names the answer.
//  3. Release the lock after the done frame was published (or, when the
//     answer could not start, after a frame of type FrameAborted, or when
//     another instance claimed the answer).
//
// Other instances Follow the answer from its first frame to mirror it to
// their tabs, send Control to its instance to cancel or supersede it, and,
// when its instance's lease expires, Claim it and end it as interrupted.
type Bus interface {
	// InstanceID names this instance; it is unique in the cluster for the
	// life of the process (a restarted process gets a new one).
	InstanceID() string

	// Attach registers the hub's handler for what other instances send.
	// hub.New calls it once, before any other method. It must not block
	// or do I/O. Events that arrive before Attach may be dropped.
	Attach(h BusHandler)

	// Acquire takes the cluster-wide lock of a.ConversationID for the
	// answer a (a.Instance is this instance). It never waits for the lock:
	// when another answer holds it, it returns that holder and an error
	// wrapping ErrLockHeld (the hub answers generation_running); when the
	// bus cannot be reached it returns an error wrapping ErrBusUnavailable
	// (the hub answers unavailable and runs nothing, so an answer never
	// runs twice). Such an error also wraps ErrNotSent when the lock was
	// certainly not taken (refused before anything was sent, as while the
	// bus is down); without it the bus may have taken the lock and lost
	// its reply, and the hub gives the lock up in the background, once
	// the bus answers. The lock stays until Release or Claim; it has no
	// TTL of its own: it lives as long as its instance's lease (see
	// Orphaned).
	Acquire(ctx context.Context, a AnswerRef) (holder AnswerRef, err error)
	// Release deletes the lock of a.ConversationID if, and only if, it is
	// still held by exactly a (same instance and message id): a
	// compare-and-delete. Releasing a lock held by someone else, or not
	// held at all, does nothing and returns nil. It also says that this
	// instance publishes nothing more for a: the hub calls it after a's
	// last frame, and when its publisher stops because another instance
	// claimed a; the bus then drops whatever it keeps to publish a.
	Release(ctx context.Context, a AnswerRef) error
	// Running returns the answer holding the lock of a conversation;
	// ok is false when none does.
	Running(ctx context.Context, conversationID string) (a AnswerRef, ok bool, err error)
	// Claim takes over the lock of an orphaned answer: if the lock of
	// orphan.ConversationID is still held by exactly orphan and the lease
	// of orphan.Instance is still expired (or gone), checked when the
	// claim is made, the lock is replaced (compare-and-swap) by the same
	// answer held by this instance, which it returns. If the lock is not
	// held by orphan (another instance claimed it first, or it was
	// released), or the owner's lease was renewed since the orphan was
	// reported (its instance was cut off or slow and is back: it keeps
	// its answer), it returns an error wrapping ErrLockHeld. An
	// implementation that cannot check the lease and swap the lock in one
	// step says how long the gap between them is. Exactly one instance wins; the winner ends the answer
	// and Releases the returned ref. If the winner dies before that, its
	// own lease expires and the answer is orphaned again. A lock that
	// already names this instance for orphan's answer is returned as
	// claimed: an earlier attempt won it but its reply was lost (a
	// timeout, a leader change), and the retry must not take it for
	// another instance's win, which would leave the answer streaming
	// with nobody to end it. The hub runs one take-over per answer at a
	// time, so this never lets two of its own end one answer.
	Claim(ctx context.Context, orphan AnswerRef) (AnswerRef, error)

	// Publish appends f to the stream of answer a (keyed by a.MessageID:
	// f.MessageID is not always the answer's, the user's message frame of
	// a send travels in its answer's stream too). f carries Type,
	// ConversationID, MessageID, Seq and the encoded Data; ship all of
	// them, the receiver rebuilds an equal *protocol.Frame without
	// re-encoding. The hub calls it from one goroutine per answer, in
	// order, with coalesced deltas (tens per second at most, never one per
	// token), and retries a failed call itself, so Publish returns once f
	// is stored by the bus, or with an error (never a partial success
	// that reorders frames). An implementation may return from a delta or
	// reasoning frame that is not the answer's first once it is sent, if
	// it stores it before it sends the answer's next frame (and fails
	// that call otherwise); the answer's first frame and its end are
	// stored when Publish returns. A frame the bus can never carry (larger
	// than it takes) fails with an error wrapping ErrRefused, which the
	// hub does not retry. The stream of an answer ends with a frame of
	// type done or FrameAborted; the bus keeps it at least until a few
	// minutes after that (the implementation bounds its size and age).
	Publish(ctx context.Context, a AnswerRef, f *protocol.Frame) error
	// Follow calls fn, from one goroutine and in order, with every frame
	// published for answer a, from its first frame on (frames already
	// published first, then each new one as it comes). It returns nil
	// after fn was called with the done frame (or a FrameAborted frame),
	// ctx.Err() when ctx ends, and an error wrapping ErrBusUnavailable when
	// the bus fails (the hub then tells its tabs to reconnect). A stream
	// with no frame yet is waited for. fn must not block.
	Follow(ctx context.Context, a AnswerRef, fn func(*protocol.Frame)) error

	// Control asks the instance running answer a (a.Instance) to stop it;
	// that instance's BusHandler.Control is called. It returns once that
	// instance received it, or with an error (wrapping ErrBusUnavailable
	// when the bus or that instance cannot be reached, and also
	// ErrInstanceGone when the bus was reached but that instance is not
	// on it). It does not wait for the answer to end: Follow it to its
	// done frame for that.
	Control(ctx context.Context, a AnswerRef, kind ControlKind) error

	// Broadcast delivers ev to the BusHandler.UserEvent of every other
	// instance (never back to this one: the hub delivers its own events
	// locally before broadcasting them). Instances deliver what they
	// receive to their local connections and never broadcast it again.
	Broadcast(ctx context.Context, ev UserEvent) error

	// TakeJob claims the job named job for this instance, cluster-wide,
	// for at most ttl (at most JobTTLMax: longer is cut to it), for short
	// work one instance at a time should do (asking for a conversation's
	// title). It returns nil when taken, an error wrapping ErrLockHeld
	// while another instance's claim lasts, and one wrapping
	// ErrBusUnavailable when the bus cannot be reached. The caller claims
	// a job at most once at a time; taking it again renews it. A claim
	// outlives a dead instance by its ttl at most.
	TakeJob(ctx context.Context, job string, ttl time.Duration) error
	// EndJob ends this instance's claim of job, if it still has it: one
	// whose ttl passed may be another instance's now, and is left alone.
	EndJob(ctx context.Context, job string) error

	// Health returns nil when the bus is usable: connected, and this
	// instance's lease renewed (for /readyz, and so the hub can refuse new
	// answers quickly while it is not).
	Health(ctx context.Context) error
}

// BusHandler is what a Bus calls on its hub. Calls may come from several
// goroutines at once and must return quickly: the hub does any slow work
// (store writes, bus calls) on goroutines of its own.
type BusHandler interface {
	// UserEvent delivers an event another instance broadcast.
	UserEvent(ev UserEvent)
	// Control stops answer a, which this instance runs, for the reason kind.
	// An answer that already ended is ignored.
	Control(a AnswerRef, kind ControlKind)
	// Orphaned reports a running answer whose instance's lease expired.
	//
	// Liveness: every instance keeps a lease in the bus, renewed well
	// within its TTL (default 10s, configurable in the implementation);
	// an instance whose lease expired is dead for the cluster. Within
	// about one TTL after an instance's lease expires, the bus calls
	// Orphaned on at least one live instance (possibly several) for every
	// lock that instance still holds, including locks of answers that
	// were themselves being ended by a claim. It never reports a lock of
	// an instance whose lease is live, and never one of this instance.
	// After a bus outage, an instance's own lease is renewed before it
	// reports anything, so instances that were cut off together are not
	// declared dead by each other.
	//
	// The hub then Claims a (which fails if a's instance renewed its
	// lease meanwhile); the winner marks the message interrupted in
	// the store if it is still streaming (MessageInterrupter, keeping the
	// last checkpoint's text), publishes a FrameStored with the stored
	// text and then a done frame with status interrupted and the stored
	// text's length as seq, and Releases the lock. Nothing else ever marks interrupted an answer a
	// lock names (the periodic sweep of answers left streaming, sweep.go,
	// ends only rows older than any answer runs that no lock names): in a
	// cluster the start-up InterruptStreaming sweep must not run.
	//
	// Fencing: the instance whose lease expired may be alive and cut off
	// from the bus only (a network split), still streaming the answer to
	// its own tabs and writing it to the store. The store applies an
	// answer's updates only while it is streaming
	// (persistence.Messages.ApplyMessageUpdates), so its late checkpoints
	// and final update change nothing; it stops the answer at the first
	// refused write, ends its tabs with the stored status and the stored
	// text's length as seq, and publishes FrameStored and done only if
	// the lock still names its answer (it checks after any failed bus
	// call, and before the end of an answer the store refused): one done
	// per answer across the cluster.
	// Deltas it published before it knew may follow the claimant's done
	// in the stream; every follower stops at the first done.
	Orphaned(a AnswerRef)
}

// AnswerRef names a running answer as the cluster knows it: the value of a
// conversation's lock. Two refs are the same lock holder when all their
// fields are equal.
type AnswerRef struct {
	ConversationID string `json:"conversationId"`
	MessageID      string `json:"messageId"` // the assistant message being produced
	UserID         string `json:"userId"`    // the conversation's owner
	Instance       string `json:"instance"`  // the InstanceID running (or ending) it
}

// ControlKind is why an answer is stopped from another instance.
type ControlKind string

// Control kinds.
const (
	// ControlCancel stops the answer as cancelled by the user.
	ControlCancel ControlKind = "cancel"
	// ControlSupersede stops it because a regenerated answer replaces it;
	// the sender waits for its done frame before starting the new one.
	ControlSupersede ControlKind = "supersede"
	// ControlDelete stops it because the conversation (or the account) is
	// being deleted: it is stored cancelled, asks for no title, and a title
	// request its instance runs for the conversation is aborted. An
	// instance that predates this kind stops the answer as ControlCancel
	// (every kind but ControlSupersede is a cancel there), and may then
	// still ask for its title: a receiver treats a kind it does not know
	// as ControlCancel.
	ControlDelete ControlKind = "delete"
)

// UserEvent is an event for every connection of one user, on every
// instance. Exactly one of Frame, Close and Started is set.
type UserEvent struct {
	UserID string `json:"userId"`
	// Frame is a user-wide frame (a conversation created, updated,
	// deleted or titled) to hand to every connection of the user.
	Frame *protocol.Frame `json:"frame,omitempty"`
	// Close closes every connection of the user with Close.Code (logout,
	// account deletion: 4401).
	Close *UserClose `json:"close,omitempty"`
	// Started says a new answer began in one of the user's conversations;
	// instances whose tabs follow that conversation Follow it.
	Started *AnswerRef `json:"started,omitempty"`
	// Deleted names the conversation of the user whose deletion Frame
	// tells: an instance running a title request for it aborts it (the
	// instance that ran its last answer, however long ago it ended).
	Deleted string `json:"deleted,omitempty"`
}

// UserClose is the close code and reason of a UserEvent that ends a user's connections.
type UserClose struct {
	Code   protocol.CloseCode `json:"code"`
	Reason string             `json:"reason"`
	// Before, when not 0, limits the close to the connections opened with
	// a session older than this token version (see Session), as after a
	// password change: those opened with its new token stay. (An instance
	// of an older version, which does not know the field, closes them all.)
	Before int64 `json:"before,omitempty"`
}

// FrameAborted is the type of a hub-internal frame that ends an answer's
// stream when the answer could not start (its message was never stored):
// followers stop following without telling their tabs anything. It never
// reaches a client.
const FrameAborted = "_aborted"

// FrameStored is the type of a hub-internal frame that an instance ending
// a dead instance's answer publishes just before its done: Seq is the
// stored text's length and Data ({"text": ...}) its last bytes, at most
// storedTailMax (all of it for most answers). Followers use it to catch
// up with text the dead instance stored but never published, so that
// their text equals the stored text when the done comes. It never reaches
// a client.
const FrameStored = "_stored"

// JobTTLMax is the longest claim Bus.TakeJob grants.
const JobTTLMax = time.Minute

// Errors of a Bus; compare with errors.Is.
var (
	// ErrBusUnavailable means the bus cannot be reached now.
	ErrBusUnavailable = errors.New("cluster bus unavailable")
	// ErrNotSent, always wrapped with ErrBusUnavailable, means the bus
	// refused the call before sending anything to its servers: it
	// certainly had no effect (an Acquire refused so took no lock). An
	// error with ErrBusUnavailable alone may come after the request was
	// sent and applied, its reply lost.
	ErrNotSent = errors.New("nothing was sent")
	// ErrInstanceGone, always wrapped with ErrBusUnavailable, means the
	// bus was reached but the instance a call was for is not on it (no
	// responders): it died (the take-over ends its answers once its lease
	// expires) or is reconnecting.
	ErrInstanceGone = errors.New("instance not on the bus")
	// ErrLockHeld means a conversation's lock is held by another answer
	// (or, for Claim, no longer by the orphan, or by an orphan whose
	// instance's lease is live again; for TakeJob, the job by another
	// instance).
	ErrLockHeld = errors.New("conversation lock held")
	// ErrRefused means the bus refused the call for good: calling again
	// cannot succeed (a frame larger than the bus carries), so the hub
	// does not retry it.
	ErrRefused = errors.New("refused by the cluster bus")
)

// MessageInterrupter is the store call that ends an orphaned answer. With a
// Bus of more than one instance, Options.Store must implement it
// (persistence/sqlite and persistence/mongo do, see
// persistence.Messages.InterruptMessage).
type MessageInterrupter interface {
	// InterruptMessage marks the owner's message id interrupted, with
	// reason as its error, if and only if it is still streaming (its text
	// is the last checkpoint's, unchanged), and returns the message as
	// stored after the call, changed or not.
	InterruptMessage(ctx context.Context, ownerID, id, reason string, at time.Time) (persistence.Message, error)
}
