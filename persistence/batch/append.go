package batch

import (
	"context"
	"errors"
	"fmt"

	"chatd/persistence"
)

// Append queues text to be appended to message id. It never waits for the
// database: it only copies text into the message's pending buffer, which the
// flush goroutine writes at the next checkpoint. Empty text is ignored. Text
// is dropped (and counted in Stats.Dropped) after Close, after Finish for the
// same id, and when MaxPending is reached (see Writer).
func (w *Writer) Append(id, text string) {
	w.add(id, text, false)
}

// AppendReasoning queues text to be appended to message id's reasoning. It
// behaves exactly like Append (same entry, same checkpoints, same limits);
// reasoning is cut at any character boundary, as it is not searched.
func (w *Writer) AppendReasoning(id, text string) {
	w.add(id, text, true)
}

// add queues content or reasoning text of message id: it puts the piece
// in the inbox and, unless the flush loop already knows text waits, wakes
// it to schedule a checkpoint. The piece reaches its entry (and the checks
// of appendLocked) when the inbox is next drained.
func (w *Writer) add(id, text string, reasoning bool) {
	if id == "" || text == "" {
		return
	}
	st := &w.inbox[stripeOf(id)]
	st.mu.Lock()
	if len(st.pieces) == 0 {
		// Counted once per list filled, not per piece: a counter every
		// token of every answer adds to moves between the cores' caches.
		w.inboxLen.Add(1)
	}
	st.pieces = append(st.pieces, piece{id: id, text: text, reasoning: reasoning})
	st.mu.Unlock()
	if !w.armed.Load() && w.armed.CompareAndSwap(false, true) {
		signal(w.armC)
	}
}

// appendLocked adds text to id's entry. It returns why text was dropped
// when that is worth a log line (not for every piece of a refused message,
// nor after Close).
func (w *Writer) appendLocked(id, text string, reasoning bool) (dropped string) {
	e := w.entries[id]
	switch {
	case w.closed:
		w.stats.Dropped++
		return ""
	case e == nil:
		if e, dropped = w.admitLocked(id); e == nil {
			w.stats.Dropped++
			return dropped
		}
	case e.final != nil:
		w.stats.Dropped++
		return "appended after Finish"
	case e.fenced != nil || e.refused != nil:
		w.stats.Dropped++
		e.lostLocked().add(text, reasoning)
		return "" // logged once, when the store skipped or rejected it
	}
	if reasoning {
		e.reasoning = append(e.reasoning, text...)
	} else {
		e.text = append(e.text, text...)
	}
	w.stats.PendingBytes += len(text)
	return ""
}

// admitLocked starts tracking message id, or refuses when MaxPending messages
// are tracked; a refused message is remembered (up to MaxPending of them) so
// that the rest of its text is refused too, and the reason is returned on
// the first refusal only.
func (w *Writer) admitLocked(id string) (*entry, string) {
	if _, ok := w.rejected[id]; ok {
		return nil, ""
	}
	if len(w.entries) >= w.opts.MaxPending {
		if len(w.rejected) < w.opts.MaxPending {
			w.rejected[id] = struct{}{}
		}
		return nil, fmt.Sprintf("%d messages pending (MaxPending)", len(w.entries))
	}
	e := &entry{id: id}
	w.entries[id] = e
	return e, ""
}

// Finish records u as the final update of message u.ID (status, finish
// reason, usage, error; u.Append is added after all text appended so far),
// starts a flush at once and waits until the update is durable. u.At
// defaults to the time of the call.
//
// It returns nil once the store has written the update (and all of the
// message's text before it). If ctx ends first it returns an error wrapping
// ctx's error and the last store error; the update stays queued and is still
// written if the store recovers before Close gives up. It returns ErrClosed
// after Close, ErrOverloaded when the message's text was dropped or a new
// message cannot be tracked, and an error wrapping persistence.ErrNotStreaming
// when the store skipped the final update or an earlier checkpoint of the
// message: it is no longer streaming, and nothing more of it was written
// (see Writer); and a *UnwrittenError (wrapping ErrRefused, saying how much
// text was dropped) when the Writer gave up on the message because the
// store kept rejecting its update. A final update
// dropped after every Finish of its message returned when its ctx ended
// is reported to Options.OnDropped.
//
// ctx bounds only the wait: give it a deadline, and do not pass a context
// that is already cancelled (such as the one of a generation the user just
// stopped), or Finish returns at once without waiting for the write.
func (w *Writer) Finish(ctx context.Context, u persistence.MessageUpdate) error {
	if u.ID == "" {
		return errors.New("batch: finish: empty message id")
	}
	if u.At.IsZero() {
		u.At = w.opts.Now()
	}
	w.mu.Lock()
	done, err := w.finishLocked(u)
	w.mu.Unlock()
	if err != nil {
		return err
	}
	signal(w.kickC)
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return w.finishAbandoned(ctx, u.ID, done)
	}
}

// finishLocked merges u into its entry and queues the entry for the next
// flush; the returned channel receives the outcome.
func (w *Writer) finishLocked(u persistence.MessageUpdate) (<-chan error, error) {
	w.drainLocked() // the text appended before Finish goes first
	if w.closed {
		return nil, fmt.Errorf("batch: finish message %s: %w", u.ID, ErrClosed)
	}
	e := w.entries[u.ID]
	if err := e.lostLocked(); err != nil {
		err.add(u.Append, false)
		err.add(u.AppendReasoning, true)
		w.releaseLocked(e, nil)
		return nil, err
	}
	if e == nil {
		if _, ok := w.rejected[u.ID]; ok {
			delete(w.rejected, u.ID)
			return nil, fmt.Errorf("batch: finish message %s: its text was dropped: %w", u.ID, ErrOverloaded)
		}
		if e, _ = w.admitLocked(u.ID); e == nil {
			delete(w.rejected, u.ID)
			return nil, fmt.Errorf("batch: finish message %s: %w", u.ID, ErrOverloaded)
		}
	}
	e.text = append(e.text, u.Append...)
	e.reasoning = append(e.reasoning, u.AppendReasoning...)
	w.stats.PendingBytes += len(u.Append) + len(u.AppendReasoning)
	u.Append, u.AppendReasoning = "", ""
	e.final = mergeFinal(e.final, u)
	if !e.queued {
		e.queued = true
		w.finals = append(w.finals, e)
	}
	done := make(chan error, 1)
	e.waiters = append(e.waiters, done)
	return done, nil
}

// mergeFinal returns u, keeping the fields of an earlier final update (a
// second Finish of the same message) that u leaves zero.
func mergeFinal(prev *persistence.MessageUpdate, u persistence.MessageUpdate) *persistence.MessageUpdate {
	if prev != nil {
		if u.Status == "" {
			u.Status = prev.Status
		}
		if u.FinishReason == "" {
			u.FinishReason = prev.FinishReason
		}
		if u.Usage == nil {
			u.Usage = prev.Usage
		}
		if u.Error == "" {
			u.Error = prev.Error
		}
		if u.ErrorCode == "" {
			u.ErrorCode = prev.ErrorCode
		}
		if u.OwnerID == "" {
			u.OwnerID = prev.OwnerID
		}
	}
	return &u
}

// finishAbandoned builds Finish's error after ctx ended, unless the outcome
// arrived at the same moment.
func (w *Writer) finishAbandoned(ctx context.Context, id string, done <-chan error) error {
	select {
	case err := <-done:
		return err
	default:
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(done) > 0 { // the outcome is sent under w.mu: it came as ctx ended
		return <-done
	}
	e := w.entries[id] // this waiter is e's, and gone
	if e == nil {
		return fmt.Errorf("batch: final update of message %s not durable yet: %w", id, ctx.Err())
	}
	e.gone++
	return &NotDurableError{ID: id, Text: len(e.text), Reasoning: len(e.reasoning),
		err: errors.Join(ctx.Err(), e.lastErr)}
}

// NotDurableError is Finish's error when its ctx ended before the final
// update was durable; it wraps ctx's error and the last store error. The
// update stays queued (see Finish). Text and Reasoning are the bytes of
// the message's text and reasoning not yet written when Finish returned:
// all that came before them is stored, whatever becomes of the update.
type NotDurableError struct {
	ID              string
	Text, Reasoning int
	err             error
}

func (e *NotDurableError) Error() string {
	return fmt.Sprintf("batch: final update of message %s not durable yet (%d bytes of text unwritten): %v", e.ID, e.Text, e.err)
}

func (e *NotDurableError) Unwrap() error { return e.err }

// Unwritten returns Text and Reasoning, for callers that declare the
// method instead of importing this package.
func (e *NotDurableError) Unwritten() (text, reasoning int) { return e.Text, e.Reasoning }

// UnwrittenError is Finish's error when the Writer dropped the message's
// final update and its unwritten text: the Writer gave up on it because
// the store kept rejecting its update (it wraps ErrRefused and the store's
// last rejection), or the store skipped an update of it, no longer
// streaming (it wraps persistence.ErrNotStreaming; see Writer). Text and
// Reasoning are the bytes of the message's text and reasoning the Writer
// did not write: the last ones appended, the final update's own included.
// All that came before them is stored (unless the message was deleted).
type UnwrittenError struct {
	ID              string
	Text, Reasoning int
	err             error
}

func (e *UnwrittenError) Error() string {
	return fmt.Sprintf("%v (%d bytes of text dropped)", e.err, e.Text)
}

func (e *UnwrittenError) Unwrap() error { return e.err }

// Unwritten returns Text and Reasoning, as NotDurableError's does.
func (e *UnwrittenError) Unwritten() (text, reasoning int) { return e.Text, e.Reasoning }

// add counts text dropped after the Writer gave up on the message or the
// store skipped its update.
func (e *UnwrittenError) add(text string, reasoning bool) {
	if reasoning {
		e.Reasoning += len(text)
	} else {
		e.Text += len(text)
	}
}
