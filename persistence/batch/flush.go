package batch

import (
	"math/rand/v2"
	"time"

	"chatd/persistence"
)

// mode selects what a flush writes.
type mode int

const (
	finalsOnly  mode = iota // final updates (a Finish is waiting)
	checkpoints             // final updates, and text up to word boundaries
	everything              // final updates and all text (draining)
)

// item is one update of a bulk write and what it takes out of its entry.
type item struct {
	e     *entry
	n     int  // bytes of e.text written
	rn    int  // bytes of e.reasoning written
	final bool // carries e.final
	// waiters is how many Finish calls e.final answered when it was
	// collected (final items only).
	waiters int
}

// run is the flush goroutine: it writes final updates as soon as they come,
// checkpoints when the interval timer fires, retries after failures, and
// drains when Close is called.
func (w *Writer) run() {
	defer close(w.doneC)
	l := &loop{w: w, timer: time.NewTimer(time.Hour)}
	l.timer.Stop()
	defer l.timer.Stop()
	for {
		select {
		case <-w.stopC:
			w.drainErr = w.drain(w.drainCtx)
			return
		case <-w.armC:
			l.arm()
		case <-w.kickC:
			l.kick()
		case <-l.timer.C:
			l.tick()
		}
	}
}

// loop is the flush goroutine's state. One timer serves both the checkpoint
// interval and, after a failure, the retry backoff.
type loop struct {
	w        *Writer
	timer    *time.Timer
	timerOn  bool
	failures int // consecutive failed flushes; >0 means a retry is scheduled
}

// arm schedules a checkpoint, unless one (or a retry) already is.
func (l *loop) arm() {
	if !l.timerOn {
		l.schedule(l.w.opts.Interval)
	}
}

// kick writes waiting final updates at once, unless a retry is scheduled
// (which writes them too).
func (l *loop) kick() {
	if l.failures == 0 && l.w.flush(finalsOnly) != nil {
		l.failed()
	}
}

// tick runs a checkpoint (or a retry) and schedules the next one if text is
// still pending.
func (l *loop) tick() {
	l.timerOn = false
	if l.w.flush(checkpoints) != nil {
		l.failed()
		return
	}
	l.failures = 0
	if l.w.rearm() {
		l.schedule(l.w.opts.Interval)
	}
}

// failed schedules a retry after the backoff for one more failure.
func (l *loop) failed() {
	l.failures++
	l.schedule(l.w.backoff(l.failures))
}

func (l *loop) schedule(d time.Duration) {
	l.timer.Reset(d)
	l.timerOn = true
}

// rearm reports whether text still waits for a checkpoint, and records in
// w.armed that the loop knows it; when it returns false, the next Append
// wakes the loop. (An Append racing with it either is seen in the inbox
// here or finds armed false and wakes the loop.)
func (w *Writer) rearm() bool {
	w.mu.Lock()
	w.drainLocked()
	pending := w.stats.PendingBytes > 0
	w.mu.Unlock()
	if pending {
		return true
	}
	w.armed.Store(false)
	return w.inboxLen.Load() > 0 && w.armed.CompareAndSwap(false, true)
}

// backoff returns how long to wait after the given number of consecutive
// failures: RetryBase doubled per failure up to RetryMax, then a uniformly
// random duration between half of that and all of it.
func (w *Writer) backoff(failures int) time.Duration {
	d := w.opts.RetryBase
	for i := 1; i < failures && d < w.opts.RetryMax; i++ {
		d *= 2
	}
	d = min(d, w.opts.RetryMax)
	return d/2 + rand.N(d/2+1)
}

// flush writes what m selects, in bulk writes of at most MaxBatch updates,
// until nothing selected is left or a write fails.
func (w *Writer) flush(m mode) error {
	w.round++
	round := w.round
	for {
		items, updates := w.collect(m, round)
		if len(items) == 0 {
			return nil
		}
		skipped, err := w.write(updates)
		w.commit(items, skipped, err)
		if err != nil {
			return err
		}
	}
}

// collect takes the next bulk write out of the pending entries: final
// updates first, in Finish order, then (unless m is finalsOnly) the text of
// entries not yet written in this round.
func (w *Writer) collect(m mode, round uint64) ([]item, []persistence.MessageUpdate) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.drainLocked()
	var items []item
	var updates []persistence.MessageUpdate
	add := func(it item, u persistence.MessageUpdate) bool {
		items = append(items, it)
		updates = append(updates, u)
		return len(items) < w.opts.MaxBatch
	}
	for _, e := range w.finals {
		if !add(item{e: e, n: len(e.text), rn: len(e.reasoning), final: true, waiters: len(e.waiters)}, finalUpdate(e)) {
			return items, updates
		}
	}
	if m == finalsOnly {
		return items, updates
	}
	now := w.opts.Now()
	for _, e := range w.entries {
		if e.queued || e.round == round {
			continue
		}
		n, rn := w.cutLocked(e, m), reasoningCut(e.reasoning, m)
		if n == 0 && rn == 0 {
			continue
		}
		e.round = round
		u := persistence.MessageUpdate{ID: e.id, Append: string(e.text[:n]),
			AppendReasoning: string(e.reasoning[:rn]), At: now}
		if !add(item{e: e, n: n, rn: rn}, u) {
			break
		}
	}
	return items, updates
}

// cutLocked returns how much of e's pending text a flush in mode m writes.
func (w *Writer) cutLocked(e *entry, m mode) int {
	if m == everything {
		return len(e.text)
	}
	return checkpointCut(e.text, w.opts.MaxHoldBack)
}

// reasoningCut returns how much of pending reasoning a flush in mode m
// writes: whole characters (reasoning is not searched, so words may be cut).
func reasoningCut(reasoning []byte, m mode) int {
	if m == everything {
		return len(reasoning)
	}
	return completeLen(reasoning)
}

// finalUpdate is e's final update carrying all of e's pending text.
func finalUpdate(e *entry) persistence.MessageUpdate {
	u := *e.final
	u.Append = string(e.text)
	u.AppendReasoning = string(e.reasoning)
	return u
}
