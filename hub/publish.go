package hub

import (
	"context"
	"errors"
	"sync"
	"time"

	"chatd/hub/protocol"
)

// outbox holds the frames of one local answer until its publisher hands
// them to the bus. The generation pushes under conv.mu and never waits:
// bus I/O happens on the publisher's goroutine, so a slow or failed bus
// never slows the answer or its local tabs. It holds at most the frames of
// one answer (deltas are coalesced, and an answer is bounded by
// MaxDuration).
type outbox struct {
	ref  AnswerRef
	conv *conv         // the answer's conversation (busDrained)
	wake chan struct{} // buffered (1): frames wait
	// unconfirmed: the lock was not found naming the answer once its row
	// was stored (lockKept); the publisher checks it before the first frame.
	unconfirmed bool

	mu      sync.Mutex
	frames  []*protocol.Frame
	sending bool // the publisher holds taken frames not all published yet
	closed  bool // the publisher stopped: frames pushed now are dropped
}

// busy reports whether frames wait for the bus or are being published: a
// write in flight, so the generation coalesces what comes meanwhile
// (conv.busyLocked), and every tab, here or on another instance, gets
// the same deltas.
func (o *outbox) busy() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return !o.closed && (o.sending || len(o.frames) > 0)
}

// push queues f and reports whether it is the answer's last frame.
func (o *outbox) push(f *protocol.Frame) (last bool) {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return f.Type == protocol.TypeDone || f.Type == FrameAborted
	}
	o.frames = append(o.frames, f)
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
	return f.Type == protocol.TypeDone || f.Type == FrameAborted
}

// take returns the frames waiting; the outbox stays busy until sent.
func (o *outbox) take() []*protocol.Frame {
	o.mu.Lock()
	defer o.mu.Unlock()
	fs := o.frames
	o.frames = nil
	o.sending = len(fs) > 0
	return fs
}

// close says the publisher stopped before the answer's last frame (the
// answer was claimed by another instance, or bus work stopped): what is
// pushed from now on is dropped, and the outbox no longer counts as a
// write in flight, so the local tabs' text is not held back for it.
func (o *outbox) close() {
	o.mu.Lock()
	o.closed, o.sending, o.frames = true, false, nil
	o.mu.Unlock()
}

// sent says the frames of the last take were published.
func (o *outbox) sent() {
	o.mu.Lock()
	o.sending = false
	o.mu.Unlock()
}

// publishLocked starts publishing the answer c is about to run under the
// cluster lock it took (nothing with one instance); kept is lockKept's
// answer. c.mu is held; from here on every frame delivered in c goes to
// the bus too, up to the done.
func (h *Hub) publishLocked(c *conv, kept bool) {
	if c.lock == nil {
		return
	}
	o := &outbox{ref: *c.lock, conv: c, wake: make(chan struct{}, 1), unconfirmed: !kept}
	c.lock = nil
	if h.spawnPublisher(o.ref, func() { h.publish(o) }) {
		c.out = o
	}
}

// publish owns o: it publishes its frames in order, retrying failures,
// tells the other instances the answer started after its first frame,
// and releases the lock after the done frame.
func (h *Hub) publish(o *outbox) {
	p := &publisher{h: h, o: o, suspect: o.unconfirmed}
	defer p.calls.release()
	for {
		select {
		case <-o.wake:
		case <-h.busCtx.Done():
			o.close()
			return
		}
		for _, f := range mergeText(o.take()) {
			if !p.send(f) {
				o.close()
				h.busDrained(o) // text held back for the bus goes out
				return
			}
		}
		o.sent()
		h.busDrained(o)
	}
}

// busDrained sends the text of o's answer held back because the bus was
// still publishing (conv.busyLocked), now that it is not, rather than
// when the coalescing interval ends; as Drained does for a subscriber.
func (h *Hub) busDrained(o *outbox) {
	c := o.conv
	c.mu.Lock()
	if c.out == o {
		h.flushHeldLocked(c, time.Now())
	}
	c.mu.Unlock()
}

// publisher is the state of one answer's publish goroutine.
//
// Fencing: while this instance was cut off from the bus long enough for
// its lease to expire, another instance may have claimed the answer and
// ended it (FrameStored and done, see BusHandler.Orphaned). So after a
// failed call, and before the end of an answer whose final update the
// store refused (FrameStored, see generation.fenced), the publisher checks
// that the lock still names the answer; if it does not, the claimant
// published the answer's end, and this publisher stops without
// publishing anything: every answer gets one done across the cluster. It
// still calls Release, which leaves the claimant's lock alone, so that
// the bus drops what it kept to publish the answer.
type publisher struct {
	h       *Hub
	o       *outbox
	started bool // the answer's start was broadcast
	suspect bool // check the lock before the next frame
	calls   callContext
}

// send publishes f, then broadcasts the start or releases the lock as
// due; false means stop: the answer ended, was claimed, or bus work stopped.
func (p *publisher) send(f *protocol.Frame) bool {
	h, ref := p.h, p.o.ref
	p.suspect = p.suspect || f.Type == FrameStored
	claimed := false
	if !h.retryIn("publish answer frame", &p.calls, func(ctx context.Context) error {
		if p.suspect {
			owned, err := h.owns(ctx, ref)
			if err != nil || !owned {
				claimed = err == nil
				return err
			}
		}
		err := h.bus.Publish(ctx, ref, f)
		p.suspect = err != nil
		return err
	}) {
		return false
	}
	if claimed {
		h.log.Warn("answer taken over by another instance while this one was cut off; it published the answer's end",
			"message", ref.MessageID, "conversation", ref.ConversationID)
		h.retry("release a claimed answer", func(ctx context.Context) error { return h.bus.Release(ctx, ref) })
		return false
	}
	if !p.started {
		p.started = true
		h.broadcast(UserEvent{UserID: ref.UserID, Started: &ref})
	}
	if f.Type == protocol.TypeDone || f.Type == FrameAborted {
		h.retry("release conversation lock", func(ctx context.Context) error { return h.bus.Release(ctx, ref) })
		return false
	}
	return true
}

// owns reports whether the lock of a's conversation still names exactly a.
func (h *Hub) owns(ctx context.Context, a AnswerRef) (bool, error) {
	cur, held, err := h.bus.Running(ctx, a.ConversationID)
	return held && cur == a, err
}

// errLockLost ends, before it goes upstream, an answer whose cluster lock
// lockKept did not find naming it once its row was stored.
var errLockLost = errors.New("the conversation's cluster lock was lost before the answer started")

// lockLostReason is the error stored with such an answer.
const lockLostReason = "This server stalled before the answer started and could not keep the conversation; nothing was asked of the model. Send it again."

// lockKept reports whether the cluster lock taken for c's reserved answer
// still names it, now that the answer's row is stored (true without a
// lock: one instance). This instance may have stalled between taking the
// lock and storing the row (its process or VM paused, the insert stuck
// while it was cut off from the bus) for longer than its lease: another
// instance then claimed the answer, found no row, told the followers
// that it never started, released the lock, and may have started another
// answer there since. The store fences an answer's writes only once a
// claim stored its end, which takes the row: a claim made after this
// check finds it, so only a lock lost before it is left to this check.
// A bus that cannot answer (a reconnect, a leader election) is asked
// again until Options.LockCheckTimeout: a short outage must not end a
// send whose lock is still its own, while an instance cut off past its
// lease TTL has lost it, so a bus still silent then counts as lost. Such
// an answer is ended as interrupted without going upstream (errLockLost),
// and its publisher checks the lock before its first frame
// (outbox.unconfirmed).
func (h *Hub) lockKept(ctx context.Context, c *conv) bool {
	c.mu.Lock()
	lock := c.lock
	c.mu.Unlock()
	if lock == nil {
		return true
	}
	owned, err := h.readOwned(context.WithoutCancel(ctx), *lock)
	switch {
	case err != nil:
		h.log.Warn("the bus did not say whether the conversation's lock is still this answer's: ending it unstarted",
			"conversation", lock.ConversationID, "message", lock.MessageID,
			"waited", h.opts.LockCheckTimeout.String(), "err", err)
	case !owned:
		h.log.Warn("the conversation's lock is not this answer's once its row was stored (this instance stalled, its lease expired): ending it unstarted",
			"conversation", lock.ConversationID, "message", lock.MessageID)
	}
	return err == nil && owned
}

// readOwned reads whether lock still holds its conversation, asking again
// after each failure (pauses from Options.LookupPause, doubling up to a
// second) until Options.LockCheckTimeout.
func (h *Hub) readOwned(ctx context.Context, lock AnswerRef) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, h.opts.LockCheckTimeout)
	defer cancel()
	pause := h.opts.LookupPause
	for {
		owned, err := h.owns(ctx, lock)
		if err == nil || ctx.Err() != nil || errors.Is(err, ErrRefused) {
			return owned, err
		}
		h.busm.BusCallFailed("confirm the conversation lock")
		if !sleep(ctx, pause) {
			return false, err
		}
		pause = min(2*pause, time.Second)
	}
}
