package hub

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"chatd/hub/protocol"
	"chatd/llm"
	"chatd/persistence"
)

// TestDroppedEndReportsKeptText: when the writer dropped an answer's final
// update and its unwritten text, and marking the answer interrupted fails
// too, nothing will store more than the last checkpoint: the done reports
// the text the store kept (its seq below what the tabs have, so they
// reload), where it reported the text streamed. When the interrupt landed
// and only its reply was lost, the done reports the stored state.
func TestDroppedEndReportsKeptText(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		lostReply  bool
		wantStatus persistence.Status
		wantError  *protocol.ErrorBody
	}{
		{"not ended", false, persistence.StatusError, errNotEnded},
		{"ended, its reply lost", true, persistence.StatusInterrupted,
			&protocol.ErrorBody{Code: protocol.CodeShutdown, Message: droppedReason}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var e *env
			e = newEnv(t, Options{}, func(_ context.Context, _ llm.Request, onDelta func(string)) (llm.Result, error) {
				onDelta("kept ")
				e.writer.mu.Lock()
				e.writer.dropText = true // the writer drops what follows
				e.writer.mu.Unlock()
				onDelta("lost")
				return llm.Result{FinishReason: "stop"}, nil
			})
			e.writer.finishErr = fmt.Errorf("batch: message: %w", persistence.ErrDropped)
			e.store.refuseInterrupt = errors.New("database is locked")
			e.store.loseInterruptReply = tc.lostReply
			sub := newSub("u")
			res := e.send(t, sub, "hi")
			var done frame
			for f := sub.next(t); ; f = sub.next(t) {
				if f.IsDone(res.MessageID) {
					done = decode(t, f)
					break
				}
			}
			if done.Status != string(tc.wantStatus) || done.Seq != int64(len("kept ")) ||
				done.Error == nil || *done.Error != *tc.wantError {
				t.Fatalf("done %+v (error %+v), want %s at %d bytes with %+v", done, done.Error, tc.wantStatus, len("kept "), tc.wantError)
			}
		})
	}
}

// TestDroppedEndEndedLater: an answer whose final update was dropped and
// that could not be marked interrupted at its end is marked so in the
// background once the store takes it, with the text it kept; it used to
// stay streaming until the next start (for ever in a cluster).
func TestDroppedEndEndedLater(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{}, say("kept"))
	e.writer.finishErr = fmt.Errorf("batch: message: %w", persistence.ErrDropped)
	e.store.refuseInterrupt = errors.New("database is locked")
	sub := newSub("u")
	res := e.send(t, sub, "hi")
	sub.textUntilDone(t, res.MessageID, 0)
	if m := e.stored(t, res.MessageID); m.Status != persistence.StatusStreaming {
		t.Fatalf("stored %s right after the done, want streaming (the interrupt failed)", m.Status)
	}
	e.store.mu.Lock()
	e.store.refuseInterrupt = nil // the database takes writes again
	e.store.mu.Unlock()
	deadline := time.Now().Add(waitTimeout)
	for {
		m := e.stored(t, res.MessageID)
		if m.Status == persistence.StatusInterrupted {
			if m.Content != "kept" || m.Error != droppedReason {
				t.Fatalf("stored %q (%q), want the kept text, interrupted (%q)", m.Content, m.Error, droppedReason)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %s after %s", m.Status, waitTimeout)
		}
		time.Sleep(2 * time.Millisecond) // polling the store, not synchronising
	}
}
