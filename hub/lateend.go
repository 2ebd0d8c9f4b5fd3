package hub

import (
	"context"
	"errors"
	"sync"
	"time"

	"chatd/persistence"
)

// lateEnds are the answers whose final update the writer dropped and that
// could not be marked interrupted when that was learnt (generation.endLater,
// FinalDropped): nothing else ends such an answer, left streaming with its
// last checkpoint's text, but a single instance's next start (a cluster
// has no start-up sweep). One goroutine, sweepLate, marks them
// interrupted, one store call at a time; after a failure it waits
// (lateRetryBase, doubling up to lateRetryMax) before the next call, so a
// recovering database gets one call at a time, not one per answer. It
// runs while answers wait, and ends with the hub's background work
// (Shutdown). At most max answers (lateMax) wait: one past that is only
// logged, and stays streaming until the next start (for ever in a
// cluster), as do those still waiting at shutdown.
type lateEnds struct {
	mu      sync.Mutex
	owners  map[string]string // the owner of each answer waiting, by message id
	running bool              // sweepLate runs
	max     int               // 0: lateMax (tests lower it)
	// Set by tests before any answer waits: after is the wait after a
	// failed call (time.After when nil); idle, when set, runs as a sweep
	// ends, having marked every answer (l.mu is held).
	after func(d time.Duration) <-chan time.Time
	idle  func()
}

const (
	// lateMax bounds the answers lateEnds holds (a message id and an
	// owner id each).
	lateMax = 10_000
	// lateRetryBase is the wait after a failed call, doubling with each
	// failure in a row up to lateRetryMax.
	lateRetryBase = 20 * time.Millisecond
	lateRetryMax  = 2 * time.Second
	// lateCallTimeout bounds one store call.
	lateCallTimeout = 5 * time.Second
)

// endLater marks interrupted, in the background, answer id of owner whose
// final update was dropped (generation.endLater, FinalDropped). It
// reports whether it will: not when the store cannot end messages, nor
// once the hub's background work stopped at shutdown, nor past lateMax
// answers waiting (logged).
func (h *Hub) endLater(owner, id string) bool {
	in, ok := h.opts.Store.(MessageInterrupter)
	if !ok {
		return false
	}
	l := &h.late
	l.mu.Lock()
	defer l.mu.Unlock()
	limit := l.max
	if limit == 0 {
		limit = lateMax
	}
	if _, queued := l.owners[id]; !queued && len(l.owners) >= limit {
		h.log.Error("too many answers whose end was dropped wait to be marked interrupted: this one stays streaming until the next start",
			"message", id, "waiting", len(l.owners))
		return false
	}
	if l.running {
		l.owners[id] = owner
		return true
	}
	if !h.spawn(&h.bg, func() { h.sweepLate(in) }) {
		return false
	}
	if l.owners == nil {
		l.owners = make(map[string]string)
	}
	l.owners[id] = owner
	l.running = true
	return true
}

// sweepLate marks interrupted the answers lateEnds holds until none is
// left, or the hub's background work stops; it owns its goroutine.
func (h *Hub) sweepLate(in MessageInterrupter) {
	wait := lateRetryBase
	after := h.late.after
	if after == nil {
		after = time.After
	}
	for failures := 0; ; {
		id, owner, ok := h.late.next()
		if !ok {
			return
		}
		err := h.interruptDropped(in, owner, id)
		if err == nil {
			h.late.remove(id)
			failures, wait = 0, lateRetryBase
			continue
		}
		if failures++; failures == 1 || failures%20 == 0 {
			h.log.Warn("store: marking interrupted an answer whose end was dropped failed; retrying",
				"message", id, "attempt", failures, "waiting", h.late.len(), "err", err)
		}
		select {
		case <-h.busCtx.Done():
			h.log.Error("shutting down: answers whose end was dropped stay streaming until the next start",
				"waiting", h.late.stop(), "err", err)
			return
		case <-after(wait):
		}
		wait = min(2*wait, lateRetryMax)
	}
}

// interruptDropped marks answer id of owner interrupted, its text the
// last checkpoint's; a message gone is no failure.
func (h *Hub) interruptDropped(in MessageInterrupter, owner, id string) error {
	ctx, cancel := context.WithTimeout(h.busCtx, lateCallTimeout)
	defer cancel()
	_, err := in.InterruptMessage(ctx, owner, id, droppedReason, time.Now())
	if errors.Is(err, persistence.ErrNotFound) {
		return nil
	}
	return err
}

// next returns an answer waiting, or ok false, when none is, after which
// the sweep has ended (the next endLater starts another).
func (l *lateEnds) next() (id, owner string, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, owner := range l.owners {
		return id, owner, true
	}
	l.running = false
	if l.idle != nil {
		l.idle()
	}
	return "", "", false
}

func (l *lateEnds) remove(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.owners, id)
}

func (l *lateEnds) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.owners)
}

// stop ends the sweep at shutdown and returns how many answers it leaves.
func (l *lateEnds) stop() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.running = false
	return len(l.owners)
}
