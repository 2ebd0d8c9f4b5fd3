package batch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"chatd/persistence"
)

// write runs one bulk write and records its outcome in the stats, the
// metrics and, on failure, the log. It returns the ids the store skipped.
func (w *Writer) write(updates []persistence.MessageUpdate) ([]string, error) {
	ctx, cancel := context.WithTimeout(w.baseCtx, w.opts.WriteTimeout)
	defer cancel()
	start := time.Now()
	skipped, err := w.store.ApplyMessageUpdates(ctx, updates)
	latency := time.Since(start)
	failed := countFailed(updates, failedFunc(err))
	w.mu.Lock()
	w.stats.LastFlushLatency = latency
	w.lastErr = err
	if err != nil {
		w.stats.Failures++
	} else {
		w.stats.Flushes++
	}
	if failed < len(updates) {
		w.stats.Updates += uint64(len(updates) - failed)
		w.stats.Skipped += uint64(len(skipped))
	}
	w.mu.Unlock()
	if w.opts.Metrics != nil {
		w.opts.Metrics.Flushed(len(updates), latency, err)
	}
	if err != nil {
		w.log.Warn("persisting message updates failed; will retry", "updates", failed, "err", err)
	}
	if len(skipped) > 0 {
		w.log.Warn("message updates not applied: the messages are no longer streaming (ended elsewhere) or unknown",
			"messages", skipped)
	}
	return skipped, err
}

// countFailed is how many of updates failed.
func countFailed(updates []persistence.MessageUpdate, failed func(id string) bool) int {
	n := 0
	for _, u := range updates {
		if failed(u.ID) {
			n++
		}
	}
	return n
}

// rejectedFunc reports, for a bulk write that returned err, whether the
// store rejected the update of a message (see
// persistence.PartialUpdateError.Refused).
func rejectedFunc(err error) func(id string) bool {
	var partial *persistence.PartialUpdateError
	if errors.As(err, &partial) {
		return partial.Rejected
	}
	return func(string) bool { return false }
}

// failedFunc reports, for a bulk write that returned err, whether the
// update of a message did not apply: none on success, those a
// *persistence.PartialUpdateError names (the others applied), else all.
func failedFunc(err error) func(id string) bool {
	var partial *persistence.PartialUpdateError
	switch {
	case err == nil:
		return func(string) bool { return false }
	case errors.As(err, &partial):
		return partial.Failed
	default:
		return func(string) bool { return true }
	}
}

// commit applies the outcome of a bulk write to its entries. An update
// that applied moves its text out of the front of its entry's buffer, and
// a written final update releases its waiters and the entry. A failed
// update moves nothing: its text stays ahead of whatever was appended
// meanwhile, and is retried. When the store reports a partial failure,
// only the updates it names failed: the others applied and are not
// written again (a checkpoint would append its text twice). An entry the
// store skipped is fenced (see fenceLocked); one whose update the store
// rejected MaxRefusals times in a row is given up (see giveUpLocked).
func (w *Writer) commit(items []item, skipped []string, err error) {
	var fenced []string
	var drops []dropped
	defer func() {
		for _, id := range fenced {
			w.opts.OnFenced(id)
		}
		w.reportDropped(drops)
	}()
	failed, rejected := failedFunc(err), rejectedFunc(err)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.drainLocked() // text appended before an entry is released or fenced is judged before
	retrying := false
	defer func() {
		if err != nil && !retrying {
			w.lastErr = nil // every failed update was given up: nothing is being retried
		}
	}()
	for _, it := range items {
		e := it.e
		if failed(e.id) {
			e.lastErr = err
			if rejected(e.id) {
				e.refusals++
			}
			if e.refusals < w.opts.MaxRefusals {
				retrying = true
			} else if d := w.giveUpLocked(e, it.final, err); d != nil {
				drops = append(drops, *d)
			}
			continue
		}
		e.lastErr, e.refusals = nil, 0
		if slices.Contains(skipped, e.id) { // its text was not written either: fenceLocked drops it
			if w.fenceLocked(e, it.final) && w.opts.OnFenced != nil {
				fenced = append(fenced, e.id)
			}
			continue
		}
		e.text = shift(e.text, it.n)
		e.reasoning = shift(e.reasoning, it.rn)
		w.stats.PendingBytes -= it.n + it.rn
		if it.final {
			w.releaseFinalLocked(e, it.waiters)
		}
	}
	w.finals = removeReleased(w.finals)
}

// fenceLocked handles an update of e the store did not apply: its message
// is no longer streaming (another instance ended it) or is gone. Its
// pending text (the skipped update's included) is dropped, as is all text
// appended to it from now on, and its Finish returns an *UnwrittenError
// wrapping persistence.ErrNotStreaming, counting that text, without
// writing anything: at once if the skipped update was the final one,
// else when Finish comes. It reports whether e stays tracked as fenced
// (its producer has not finished it yet).
func (w *Writer) fenceLocked(e *entry, final bool) bool {
	err := &UnwrittenError{ID: e.id, Text: len(e.text), Reasoning: len(e.reasoning),
		err: fmt.Errorf("batch: final update of message %s not applied: %w", e.id, persistence.ErrNotStreaming)}
	if final || e.queued {
		w.releaseLocked(e, err)
		return false
	}
	e.fenced = err
	w.stats.PendingBytes -= len(e.text) + len(e.reasoning)
	e.text, e.reasoning = nil, nil
	return true
}

// giveUpLocked gives up on e, whose update the store rejected
// MaxRefusals times in a row (err is the last rejection): writing it
// again unchanged would be rejected again, and retrying it for as long as
// the Writer runs would hold every other message's final update to the
// retry backoff and keep Err set. Its unwritten text is dropped, with an
// error log, and its Finish returns a *UnwrittenError (wrapping ErrRefused)
// that says how many bytes were dropped: at once
// when its final update was the one rejected or is queued, else when
// Finish comes (text appended meanwhile is dropped too). It returns the
// drop for Options.OnDropped when no Finish waits for the final update
// any more. The message
// stays as stored, streaming, until InterruptMessage or InterruptStreaming
// ends it (as one dropped at MaxPending does): the hub, told by Finish's
// error (a persistence.ErrDropped), marks it interrupted at once; else a
// single server's next start does.
func (w *Writer) giveUpLocked(e *entry, final bool, err error) *dropped {
	w.log.Error("persisting message updates: giving up on a message whose update the store keeps rejecting; its unwritten text is dropped",
		"message", e.id, "rejections", e.refusals, "dropped_bytes", len(e.text)+len(e.reasoning), "err", err)
	e.refused = &UnwrittenError{ID: e.id, Text: len(e.text), Reasoning: len(e.reasoning),
		err: fmt.Errorf("batch: message %s: update rejected %d times: %w (%w)", e.id, e.refusals, ErrRefused, err)}
	if final || e.queued {
		var d *dropped
		if e.orphanedLocked() {
			df := droppedFinal(e, e.refused)
			d = &df
		}
		w.releaseLocked(e, e.refused)
		return d
	}
	w.stats.PendingBytes -= len(e.text) + len(e.reasoning)
	e.text, e.reasoning = nil, nil
	return nil
}

// releaseFinalLocked releases e once its final update, collected when it
// answered its first n Finish calls, was written: those are told it is
// stored. A Finish that came while that write was in flight (its text or
// fields were not in it) is told its update was not applied, as the
// message was no longer streaming: the store would refuse it now.
func (w *Writer) releaseFinalLocked(e *entry, n int) {
	for _, c := range e.waiters[n:] {
		c <- fmt.Errorf("batch: final update of message %s not applied: it came while an earlier one was being written: %w",
			e.id, persistence.ErrNotStreaming)
	}
	e.waiters = e.waiters[:n]
	w.releaseLocked(e, nil)
}

// releaseLocked stops tracking e and tells its Finish callers the outcome.
func (w *Writer) releaseLocked(e *entry, err error) {
	for _, c := range e.waiters {
		c <- err // buffered, and each waiter receives once
	}
	e.waiters = nil
	e.queued = false
	w.stats.PendingBytes -= len(e.text) + len(e.reasoning)
	e.text, e.reasoning = nil, nil
	delete(w.entries, e.id)
}

// removeReleased drops the entries that are no longer queued from finals.
func removeReleased(finals []*entry) []*entry {
	kept := finals[:0]
	for _, e := range finals {
		if e.queued {
			kept = append(kept, e)
		}
	}
	clear(finals[len(kept):])
	return kept
}

// keepBuffer is the largest emptied text buffer an entry keeps for reuse;
// a larger one is released, so idle running answers hold little memory.
const keepBuffer = 4 << 10

// shift removes the first n bytes of text, reusing its buffer.
func shift(text []byte, n int) []byte {
	if n == len(text) && cap(text) > keepBuffer {
		return nil
	}
	return append(text[:0], text[n:]...)
}
