package natsbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"chatd/hub"
)

// lockRetries bounds the retries of Acquire when its create is refused
// and the key then reads as free. That happens when the lock was released
// in between, and also while another instance's create of the key is in
// flight: the stream's leader refuses a write with an expected last
// sequence while another write to the same subject is in process
// (nats-server's "wrong last sequence constant", 10164), but serves reads
// from what it has applied so far. The retries wait lockRetryWait, doubled each time (about 0.5 s
// in all), for that create to land; without the waits three instances
// sending into one conversation at once on a loaded machine could all
// fail with "the lock keeps changing" instead of one running the answer
// and the others seeing it (TestLocks, 2 runs in 40 under load).
const lockRetries = 10

// lockRetryWait is the first wait between Acquire's retries.
const lockRetryWait = time.Millisecond

// Acquire implements hub.Bus: create-if-absent on the conversation's key.
func (b *Bus) Acquire(ctx context.Context, a hub.AnswerRef) (hub.AnswerRef, error) {
	if err := b.usable(); err != nil {
		return hub.AnswerRef{}, err
	}
	kv := b.res.Load().locks
	val, err := json.Marshal(a)
	if err != nil {
		return hub.AnswerRef{}, fmt.Errorf("natsbus: encode lock: %w", err)
	}
	ctx, cancel := opContext(ctx)
	defer cancel()
	key := token(a.ConversationID)
	pause := lockRetryWait
	for try := range lockRetries {
		if try > 0 {
			if wait(ctx, pause); ctx.Err() != nil {
				return hub.AnswerRef{}, unavailable("acquire lock of "+a.ConversationID, ctx.Err())
			}
			pause *= 2
		}
		_, err := kv.Create(ctx, key, val)
		if err == nil {
			b.held.add(a)
			return a, nil
		}
		if !errorsIsKV(err) {
			return hub.AnswerRef{}, unavailable("acquire lock of "+a.ConversationID, err)
		}
		holder, _, found, err := b.readLock(ctx, kv, key)
		if err != nil {
			return hub.AnswerRef{}, err
		}
		if found {
			return holder, fmt.Errorf("natsbus: conversation %s: %w by %s on %s",
				a.ConversationID, hub.ErrLockHeld, holder.MessageID, holder.Instance)
		}
		// Released between Create and Get, or another create in flight: try again.
	}
	return hub.AnswerRef{}, unavailable("acquire lock of "+a.ConversationID, errors.New("the lock keeps changing"))
}

// readLock reads a conversation's lock; found is false when nobody holds it.
// An unreadable lock is an error wrapping hub.ErrBusUnavailable.
func (b *Bus) readLock(ctx context.Context, kv jetstream.KeyValue, key string) (hub.AnswerRef, uint64, bool, error) {
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return hub.AnswerRef{}, 0, false, nil
	}
	if err != nil {
		return hub.AnswerRef{}, 0, false, unavailable("read lock "+key, err)
	}
	var ref hub.AnswerRef
	if err := json.Unmarshal(e.Value(), &ref); err != nil {
		// Nobody can say who holds it: the cluster cannot be used for
		// this conversation, as when the bus cannot be reached.
		return hub.AnswerRef{}, 0, false, unavailable("read lock "+key,
			fmt.Errorf("unreadable value at revision %d: %w", e.Revision(), err))
	}
	return ref, e.Revision(), true, nil
}

// Release implements hub.Bus: compare-and-delete by revision. The
// publishing state of a (its numbering, its acknowledgement subscription)
// and the record of its lock held here (heldLocks) are dropped first, whatever the lock and the connection: the hub
// publishes nothing more for a, whose done was published or which another
// instance claimed.
func (b *Bus) Release(ctx context.Context, a hub.AnswerRef) error {
	b.pubs.forget(a.MessageID)
	b.held.remove(a)
	if err := b.usable(); err != nil {
		return err
	}
	kv := b.res.Load().locks
	ctx, cancel := opContext(ctx)
	defer cancel()
	key := token(a.ConversationID)
	holder, rev, found, err := b.readLock(ctx, kv, key)
	if err != nil || !found || holder != a {
		return err
	}
	err = b.removeKey(ctx, kv, key, rev)
	if err == nil || errorsIsKV(err) {
		return nil // released, or taken over by someone else meanwhile
	}
	return unavailable("release lock of "+a.ConversationID, err)
}

// removeKey removes key from kv if its revision is still rev, leaving a
// marker that expires after markerTTL (a plain delete's marker stays for
// good).
func (b *Bus) removeKey(ctx context.Context, kv jetstream.KeyValue, key string, rev uint64) error {
	return kv.Purge(ctx, key, jetstream.LastRevision(rev), jetstream.PurgeTTL(b.opts.markerTTL))
}

// Running implements hub.Bus.
func (b *Bus) Running(ctx context.Context, conversationID string) (hub.AnswerRef, bool, error) {
	if err := b.usable(); err != nil {
		return hub.AnswerRef{}, false, err
	}
	ctx, cancel := opContext(ctx)
	defer cancel()
	ref, _, found, err := b.readLock(ctx, b.res.Load().locks, token(conversationID))
	return ref, found, err
}

// Claim implements hub.Bus: compare-and-swap by revision, so exactly one
// instance takes an orphaned answer over, and only while the owner's lease
// is still expired (ownerLeaseExpired), so an owner that renewed it since
// the orphan was reported keeps its answer.
//
// The gap: JetStream KV has no write conditioned on another key (the
// leases and the locks are separate streams), so the lease is read after
// the lock and just before the swap, and a renewal that lands between
// that read and the swap (one round trip to the stream leader) still
// loses the owner its answer. Such an owner had not renewed for a whole
// TTL before it, which is what the store's fencing covers
// (hub.BusHandler.Orphaned): its answer ends interrupted everywhere, with
// one done.
func (b *Bus) Claim(ctx context.Context, orphan hub.AnswerRef) (hub.AnswerRef, error) {
	if err := b.usable(); err != nil {
		return hub.AnswerRef{}, err
	}
	kv := b.res.Load().locks
	ctx, cancel := opContext(ctx)
	defer cancel()
	key := token(orphan.ConversationID)
	holder, rev, found, err := b.readLock(ctx, kv, key)
	if err != nil {
		return hub.AnswerRef{}, err
	}
	mine := orphan
	mine.Instance = b.id
	if found && holder == mine {
		// An earlier attempt won it; its reply was lost (see hub.Bus.Claim).
		b.pubs.resume(orphan.MessageID)
		b.held.add(mine)
		return mine, nil
	}
	if !found || holder != orphan {
		return hub.AnswerRef{}, fmt.Errorf("natsbus: claim %s: %w", orphan.MessageID, hub.ErrLockHeld)
	}
	if expired, err := b.ownerLeaseExpired(ctx, orphan.Instance); err != nil || !expired {
		if err == nil {
			err = fmt.Errorf("natsbus: claim %s: %w: the lease of %s is live", orphan.MessageID, hub.ErrLockHeld, orphan.Instance)
		}
		return hub.AnswerRef{}, err
	}
	val, err := json.Marshal(mine)
	if err != nil {
		return hub.AnswerRef{}, fmt.Errorf("natsbus: encode lock: %w", err)
	}
	if _, err := kv.Update(ctx, key, val, rev); err != nil {
		if errorsIsKV(err) {
			return hub.AnswerRef{}, fmt.Errorf("natsbus: claim %s: %w", orphan.MessageID, hub.ErrLockHeld)
		}
		return hub.AnswerRef{}, unavailable("claim "+orphan.MessageID, err)
	}
	b.pubs.resume(orphan.MessageID) // its frames continue the dead instance's numbering
	b.held.add(mine)
	return mine, nil
}
