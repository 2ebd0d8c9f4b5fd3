package natsbus

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"chatd/hub"
)

// heldLocks are the conversation locks this instance holds for the
// answers it runs (taken by Acquire or Claim, until Release), so that it
// can put them back when JetStream lost them with its data (lost marks
// them, relock puts them back). Without that, another instance took the
// conversation's lock for a second answer while the first still ran, and
// nothing claimed the first if its instance then crashed.
type heldLocks struct {
	mu      sync.Mutex
	refs    map[string]hub.AnswerRef // by message id
	pending bool                     // lost: to be put back
}

func newHeldLocks() *heldLocks { return &heldLocks{refs: make(map[string]hub.AnswerRef)} }

// add records a lock taken.
func (h *heldLocks) add(a hub.AnswerRef) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.refs[a.MessageID] = a
}

// remove forgets a's lock, if it is the one held for its answer.
func (h *heldLocks) remove(a hub.AnswerRef) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.refs[a.MessageID] == a {
		delete(h.refs, a.MessageID)
	}
}

// holds reports whether a's lock is still held here.
func (h *heldLocks) holds(a hub.AnswerRef) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.refs[a.MessageID] == a
}

// lost marks every lock held as lost with JetStream's data.
func (h *heldLocks) lost() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pending = len(h.refs) > 0
}

// toPut is what relock puts back (nil: nothing lost).
func (h *heldLocks) toPut() []hub.AnswerRef {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.pending {
		return nil
	}
	refs := make([]hub.AnswerRef, 0, len(h.refs))
	for _, a := range h.refs {
		refs = append(refs, a)
	}
	return refs
}

// put ends a round of relock that put every lock back.
func (h *heldLocks) put() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pending = false
}

// relock puts back the locks this instance holds once JetStream lost
// them (judgeLoop calls it each round; a round that failed is tried again
// at the next). Each is created only where the conversation has no lock:
// one another instance took meanwhile for a second answer is left to it
// (warned of; both answers run to their end). A lock released while it
// was put back is removed again, by its revision.
func (b *Bus) relock(ctx context.Context) {
	refs := b.held.toPut()
	if refs == nil {
		return
	}
	kv := b.res.Load().locks
	for _, a := range refs {
		val, err := json.Marshal(a)
		if err != nil {
			continue
		}
		cctx, cancel := opContext(ctx)
		rev, err := kv.Create(cctx, token(a.ConversationID), val)
		switch {
		case err == nil && !b.held.holds(a):
			_ = b.removeKey(cctx, kv, token(a.ConversationID), rev) // released meanwhile
		case err == nil:
			b.log.Info("the lock of a running answer put back after NATS lost it", slog.String("message", a.MessageID),
				slog.String("conversation", a.ConversationID))
		case errorsIsKV(err) && b.stillLocked(cctx, kv, a):
			// Not lost (the events stream alone was made again): kept.
		case errorsIsKV(err):
			b.log.Warn("the lock of a running answer was taken by another answer while NATS lost it; both run to their end",
				slog.String("message", a.MessageID), slog.String("conversation", a.ConversationID))
		default:
			cancel()
			b.log.Warn("put back the lock of a running answer; retrying at the next renewal", slog.String("message", a.MessageID),
				slog.Any("err", err))
			return
		}
		cancel()
	}
	b.held.put()
}

// stillLocked reports whether the conversation's lock names a (false
// when it cannot be read).
func (b *Bus) stillLocked(ctx context.Context, kv jetstream.KeyValue, a hub.AnswerRef) bool {
	holder, _, found, err := b.readLock(ctx, kv, token(a.ConversationID))
	return err == nil && found && holder == a
}
