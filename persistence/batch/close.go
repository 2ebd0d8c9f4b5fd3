package batch

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Close stops accepting text and final updates, writes everything pending
// (final updates, and all pending text, partial words included), and stops
// the flush goroutine. Call it after the hub has finished its generations.
//
// Failed writes are retried with backoff until ctx ends; then in-flight
// writes are cancelled, the rest is abandoned, waiting Finish calls return
// ErrClosed, and Close returns an error saying how many messages lost text.
// Close returns nil when everything was written. Calling it again waits for
// the first call and returns the same result.
func (w *Writer) Close(ctx context.Context) error {
	w.closeOnce.Do(func() {
		w.mu.Lock()
		w.drainLocked() // text appended before Close is written
		w.closed = true
		w.mu.Unlock()
		w.drainCtx = ctx
		stop := context.AfterFunc(ctx, w.cancelBase)
		close(w.stopC)
		<-w.doneC
		stop()
		w.cancelBase()
	})
	<-w.doneC
	return w.drainErr
}

// drain flushes everything, retrying with backoff until ctx ends, then
// abandons what is left.
func (w *Writer) drain(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for failures := 1; ; failures++ {
		err := w.flush(everything)
		if err == nil {
			w.abandon(nil)
			return nil
		}
		timer.Reset(w.backoff(failures))
		select {
		case <-timer.C:
		case <-ctx.Done():
			return w.abandon(errors.Join(ctx.Err(), err))
		}
	}
}

// abandon releases every entry left when the flush goroutine ends, and
// returns an error naming how many messages had unwritten updates (nil when
// cause is nil: what is left then is messages that never finished, whose
// text is all written). A final update no Finish waits for is reported to
// Options.OnDropped.
func (w *Writer) abandon(cause error) error {
	var drops []dropped
	defer func() { w.reportDropped(drops) }() // after the unlock
	w.mu.Lock()
	defer w.mu.Unlock()
	w.drainLocked() // closed: counted as dropped
	lost := 0
	for _, e := range w.entries {
		if len(e.text) > 0 || len(e.reasoning) > 0 || e.queued {
			lost++
		}
		err := fmt.Errorf("batch: final update of message %s: %w", e.id, ErrClosed)
		if e.orphanedLocked() {
			drops = append(drops, droppedFinal(e, err))
		}
		w.releaseLocked(e, err)
	}
	w.finals = nil
	if cause == nil {
		return nil
	}
	w.log.Error("persisting message updates: writer closed with unwritten updates", "messages", lost, "err", cause)
	return fmt.Errorf("batch: close: %d messages with unwritten updates: %w", lost, cause)
}
