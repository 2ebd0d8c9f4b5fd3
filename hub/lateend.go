package hub

import (
	"context"
	"errors"
	"sync"
	"time"

	"chatd/persistence"
)

// lateEnds are the answers whose end could not be stored when that was
// learnt and that nothing else ends, left streaming (with their last
// checkpoint's text) but for a single instance's next start, or in a
// cluster (which has no start-up sweep) the sweep of answers left
// streaming (sweep.go), much later: an answer whose final update the writer dropped
// and that could not be marked interrupted then (generation.endLater,
// FinalDropped), and the row of an answer whose insert the store
// reported failed but may have written (unstarted; a cluster lock it held
// is given up at once, abortLock, not after this). One
// goroutine, sweepLate, marks them interrupted, each with its reason, one
// store call at a time; after a failure it waits (lateRetryBase,
// doubling up to lateRetryMax) before the next call, so a recovering
// database gets one call at a time, not one per answer. It runs while
// answers wait, and ends with the hub's background work (Shutdown, which
// does not wait for the answers). At most max answers (lateMax) wait:
// one past that is only logged, and stays streaming until the next start
// (in a cluster, until an instance's sweep of answers left streaming
// finds it), as do those still waiting at shutdown.
type lateEnds struct {
	mu      sync.Mutex
	waiting map[string]lateEnd // the answers waiting, by message id
	running bool               // sweepLate runs
	max     int                // 0: lateMax (tests lower it)
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

// lateEnd is an answer waiting in lateEnds: its owner, and the error
// stored with it as it is marked interrupted.
type lateEnd struct {
	owner, reason string
}

// endLater marks interrupted, in the background, answer id of owner whose
// final update was dropped (generation.endLater, FinalDropped). It
// reports whether it will, as endInBackground.
func (h *Hub) endLater(owner, id string) bool {
	return h.endInBackground(owner, id, droppedReason)
}

// endInBackground marks interrupted (lateEnds), with reason stored as its
// error, answer id of owner whose end nothing else stores. It reports
// whether it will: not when the store cannot end messages, nor once the
// hub's background work stopped at shutdown, nor past lateMax answers
// waiting (logged).
func (h *Hub) endInBackground(owner, id, reason string) bool {
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
	if _, queued := l.waiting[id]; !queued && len(l.waiting) >= limit {
		h.log.Error("too many answers whose end could not be stored wait to be marked interrupted: this one stays streaming until the next start (in a cluster, until a sweep of answers left streaming)",
			"message", id, "waiting", len(l.waiting))
		return false
	}
	end := lateEnd{owner: owner, reason: reason}
	if l.running {
		l.waiting[id] = end
		return true
	}
	if !h.spawn(&h.bg, func() { h.sweepLate(in) }) {
		return false
	}
	if l.waiting == nil {
		l.waiting = make(map[string]lateEnd)
	}
	l.waiting[id] = end
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
		id, end, ok := h.late.next()
		if !ok {
			return
		}
		err := h.interruptLate(in, id, end)
		if err == nil {
			h.late.remove(id)
			failures, wait = 0, lateRetryBase
			continue
		}
		if failures++; failures == 1 || failures%20 == 0 {
			h.log.Warn("store: marking interrupted an answer whose end could not be stored failed; retrying",
				"message", id, "attempt", failures, "waiting", h.late.len(), "err", err)
		}
		select {
		case <-h.busCtx.Done():
			h.log.Error("shutting down: answers whose end could not be stored stay streaming until the next start (in a cluster, until a sweep of answers left streaming)",
				"waiting", h.late.stop(), "err", err)
			return
		case <-after(wait):
		}
		wait = min(2*wait, lateRetryMax)
	}
}

// interruptLate marks answer id interrupted, its text as stored; a
// message gone (or never stored) is no failure.
func (h *Hub) interruptLate(in MessageInterrupter, id string, end lateEnd) error {
	ctx, cancel := context.WithTimeout(h.busCtx, lateCallTimeout)
	defer cancel()
	_, err := in.InterruptMessage(ctx, end.owner, id, end.reason, time.Now())
	if errors.Is(err, persistence.ErrNotFound) {
		return nil
	}
	return err
}

// next returns an answer waiting, or ok false, when none is, after which
// the sweep has ended (the next endLater starts another).
func (l *lateEnds) next() (id string, end lateEnd, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, end := range l.waiting {
		return id, end, true
	}
	l.running = false
	if l.idle != nil {
		l.idle()
	}
	return "", lateEnd{}, false
}

func (l *lateEnds) remove(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.waiting, id)
}

func (l *lateEnds) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.waiting)
}

// stop ends the sweep at shutdown and returns how many answers it leaves.
func (l *lateEnds) stop() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.running = false
	return len(l.waiting)
}
