package hub

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"chatd/hub/protocol"
	"chatd/llm"
	"chatd/persistence"
	"chatd/persistence/batch"
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
// stay streaming until the next start (in a cluster, until the periodic
// sweep of answers left streaming).
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
	waitDroppedEnd(t, func() persistence.Message { return e.stored(t, res.MessageID) }, "kept")
}

// TestLateDroppedEndEnded: an answer whose Finish gave up waiting (its
// done said errNotStored, the writer still retrying) and whose final
// update the writer then dropped (batch Options.OnDropped, wired to
// FinalDropped) is marked interrupted once the store takes it, with the
// text it kept; a resume meanwhile gets errNotEnded. A drop reported
// while the Finish was returning is not missed: the done says errNotEnded.
// Before, nothing ended such an answer: it stayed streaming until the
// next start (for ever in a cluster). An answer the hub no longer
// remembers (more than unsavedMax others ended unsaved since, as in a
// long database outage) is marked interrupted all the same: the writer
// reports its owner. It used to stay streaming.
func TestLateDroppedEndEnded(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		during   bool // reported while the Finish was returning
		forgot   bool // the hub no longer remembers the answer (unsavedMax others ended unsaved since)
		wantDone *protocol.ErrorBody
	}{
		{"reported after the done", false, false, errNotStored},
		{"reported as Finish gave up", true, false, errNotEnded},
		{"reported once forgotten here", false, true, errNotStored},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, Options{}, say("kept"))
			e.writer.finishErr = notDurable{}
			e.store.refuseInterrupt = errors.New("database is locked")
			drop := fmt.Errorf("batch: message: update rejected 5 times: %w", persistence.ErrDropped)
			if tc.during {
				e.writer.failedFinish = func(id string) { e.h.FinalDropped(id, "u", drop) }
			}
			live := newSub("u")
			res := e.send(t, live, "hi")
			_, done := live.textUntilDone(t, res.MessageID, 0)
			if done.Error == nil || *done.Error != *tc.wantDone {
				t.Fatalf("done error %+v, want %+v", done.Error, tc.wantDone)
			}
			if tc.forgot {
				for i := range unsavedMax {
					e.h.unsaved.add(fmt.Sprint("other", i), errNotStored, time.Now())
				}
			}
			if !tc.during {
				e.h.FinalDropped(res.MessageID, "u", drop)
			}
			back := newSub("u")
			from := int64(0)
			if err := e.h.Subscribe(context.Background(), back, "u", SubscribeRequest{ConversationID: res.ConversationID,
				MessageID: res.MessageID, LastSeq: &from}); err != nil {
				t.Fatalf("resume: %v", err)
			}
			back.expect(t, protocol.TypeAck)
			if tc.forgot {
				// The stored text, and no done: nothing here says how it
				// ended (Subscribe delivered the resume before returning).
				back.expect(t, protocol.TypeDelta)
				back.quiet(t)
			} else if _, done := back.textUntilDone(t, res.MessageID, 0); done.Error == nil || *done.Error != *errNotEnded {
				t.Fatalf("resumed done error %+v, want %+v", done.Error, errNotEnded)
			}
			e.store.mu.Lock()
			e.store.refuseInterrupt = nil // the database takes writes again
			e.store.mu.Unlock()
			waitDroppedEnd(t, func() persistence.Message { return e.stored(t, res.MessageID) }, "kept")
		})
	}
}

// TestLateDroppedEndWithWriter is TestLateDroppedEndEnded through the
// batch writer wired as cmd/chatd/app wires it: the store fails every
// write, so the hub's Finish gives up (FinishTimeout) and the done says
// errNotStored; then it refuses the answer's update until the writer
// gives up on it, and the answer, which nothing else would end, is
// stored interrupted.
func TestLateDroppedEndWithWriter(t *testing.T) {
	t.Parallel()
	st := &failingUpdates{memStore: newMemStore()}
	var h *Hub
	writer := batch.New(st, batch.Options{Interval: time.Millisecond, RetryBase: time.Millisecond,
		RetryMax: 4 * time.Millisecond, MaxRefusals: 2,
		OnDropped: func(id, owner string, err error) { h.FinalDropped(id, owner, err) }})
	h = New(Options{Store: st, Writer: writer, Model: &fakeModel{script: say("lost")},
		FinishTimeout: 50 * time.Millisecond})
	runHub(t, h, func(ctx context.Context) { _ = writer.Close(ctx) })
	sub := newSub("u")
	res, err := h.Send(context.Background(), sub, "u", SendRequest{Content: "hi"})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if done := sub.doneOf(t, res.MessageID); done.Error == nil || *done.Error != *errNotStored || done.Seq != 0 {
		t.Fatalf("done at %d bytes with %+v, want nothing claimed (nothing is stored) with %+v", done.Seq, done.Error, errNotStored)
	}
	st.mu.Lock()
	st.refuse = true // the database now rejects the update: the writer gives up on it
	st.mu.Unlock()
	waitDroppedEnd(t, func() persistence.Message {
		m, err := st.Message(context.Background(), "u", res.MessageID)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}, "")
}

// TestUnsavedDoneClaimsWritten: the done of an answer whose Finish gave
// up waiting for its final write (errNotStored) claims only the text the
// writer had written (its last checkpoint), which the store keeps
// whatever becomes of the final update (retried, or dropped and the
// answer marked interrupted with that text): the tabs, which got more,
// reload. It claimed all the text streamed, which the store did not have.
func TestUnsavedDoneClaimsWritten(t *testing.T) {
	t.Parallel()
	st := &failingUpdates{memStore: newMemStore(), pass: true}
	checkpoint := st.appended("kept ")
	writer := batch.New(st, batch.Options{Interval: time.Millisecond, RetryBase: time.Millisecond, RetryMax: 4 * time.Millisecond})
	script := func(_ context.Context, _ llm.Request, onDelta func(string)) (llm.Result, error) {
		onDelta("kept ")
		if _, err := awaitID(checkpoint); err != nil {
			return llm.Result{}, err
		}
		st.mu.Lock()
		st.pass = false // the database fails from now on
		st.mu.Unlock()
		onDelta("lost")
		return llm.Result{FinishReason: "stop"}, nil
	}
	h := New(Options{Store: st, Writer: writer, Model: &fakeModel{script: script}, FinishTimeout: 50 * time.Millisecond})
	runHub(t, h, func(ctx context.Context) {
		st.mu.Lock()
		st.pass = true // the database is back: the writer drains
		st.mu.Unlock()
		_ = writer.Close(ctx)
	})
	sub := newSub("u")
	res, err := h.Send(context.Background(), sub, "u", SendRequest{Content: "hi"})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	done := sub.doneOf(t, res.MessageID)
	if done.Status != string(persistence.StatusError) || done.Error == nil || *done.Error != *errNotStored ||
		done.Seq != int64(len("kept ")) {
		t.Fatalf("done %s at %d bytes with %+v, want error at %d bytes (the checkpoint) with %+v",
			done.Status, done.Seq, done.Error, len("kept "), errNotStored)
	}
	if m, err := st.Message(context.Background(), "u", res.MessageID); err != nil || m.Content != "kept " {
		t.Fatalf("stored %q (%v), want the checkpoint", m.Content, err)
	}
}

// TestUnreadableEndClaimsWritten: when the writer will not store the
// answer's end (it gave up on the answer, the database rejecting its
// update, while Finish waited; or the store skipped it, another instance
// having ended the answer) and the hub can neither mark the answer
// interrupted nor read it back, the done claims only the text the writer
// had written (the checkpoint: all of it is stored), not the text
// streamed, and does not say the server keeps trying. Before, both
// claimed all the text streamed.
func TestUnreadableEndClaimsWritten(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		cut  func(st *failingUpdates, id string) error // after the checkpoint
	}{
		{"writer gave up", func(st *failingUpdates, _ string) error {
			st.mu.Lock()
			st.pass, st.refuse = false, true
			st.mu.Unlock()
			return nil
		}},
		{"ended elsewhere", func(st *failingUpdates, id string) error {
			_, err := st.memStore.InterruptMessage(context.Background(), "u", id, "taken over", time.Now())
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := &failingUpdates{memStore: newMemStore(), pass: true}
			checkpoint := st.appended("kept ")
			writer := batch.New(st, batch.Options{Interval: time.Millisecond, RetryBase: time.Millisecond,
				RetryMax: 4 * time.Millisecond, MaxRefusals: 2})
			script := func(_ context.Context, _ llm.Request, onDelta func(string)) (llm.Result, error) {
				onDelta("kept ")
				id, err := awaitID(checkpoint)
				if err != nil {
					return llm.Result{}, err
				}
				if err := tc.cut(st, id); err != nil {
					return llm.Result{}, err
				}
				st.mu.Lock()
				st.refuseInterrupt = errors.New("database is locked")
				st.readErr = errors.New("database unreachable")
				st.mu.Unlock()
				onDelta("lost")
				return llm.Result{FinishReason: "stop"}, nil
			}
			h := New(Options{Store: st, Writer: writer, Model: &fakeModel{script: script}, FinishTimeout: waitTimeout})
			runHub(t, h, func(ctx context.Context) { _ = writer.Close(ctx) })
			sub := newSub("u")
			res, err := h.Send(context.Background(), sub, "u", SendRequest{Content: "hi"})
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			done := sub.doneOf(t, res.MessageID)
			if done.Status != string(persistence.StatusError) || done.Error == nil || *done.Error != *errNotEnded ||
				done.Seq != int64(len("kept ")) {
				t.Fatalf("done %s at %d bytes with %+v, want error at %d bytes (the checkpoint) with %+v",
					done.Status, done.Seq, done.Error, len("kept "), errNotEnded)
			}
		})
	}
}

// appended returns a channel that gets the id of the message of the
// first update, passed through, that appended text, once it applied.
// Set it before the store is used.
func (s *failingUpdates) appended(text string) <-chan string {
	c := make(chan string, 1)
	var once sync.Once
	s.onApplied = func(u persistence.MessageUpdate) {
		if u.Append == text {
			once.Do(func() { c <- u.ID })
		}
	}
	return c
}

// awaitID waits for the id appended sends, for waitTimeout at most.
func awaitID(c <-chan string) (string, error) {
	select {
	case id := <-c:
		return id, nil
	case <-time.After(waitTimeout):
		return "", errors.New("the checkpoint was not written")
	}
}

// doneOf waits for the done of answer id, past its other frames.
func (s *fakeSub) doneOf(t *testing.T, id string) frame {
	t.Helper()
	for f := s.next(t); ; f = s.next(t) {
		if f.IsDone(id) {
			return decode(t, f)
		}
	}
}

// waitDroppedEnd waits until load returns the answer stored interrupted,
// as the hub marks a dropped end in the background, and checks that it
// kept text and says droppedReason. It polls the store (nothing tells
// the test when the background call lands), failing after waitTimeout.
func waitDroppedEnd(t *testing.T, load func() persistence.Message, text string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		m := load()
		if m.Status == persistence.StatusInterrupted {
			if m.Content != text || m.Error != droppedReason {
				t.Fatalf("stored %q (%q), want %q, interrupted (%q)", m.Content, m.Error, text, droppedReason)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %s after %s", m.Status, waitTimeout)
		}
		time.Sleep(2 * time.Millisecond) // polling the store, not synchronising
	}
}

// failingUpdates is a memStore that fails every update of a message: as
// a database that cannot be reached, or, once refuse is set, as one that
// rejects them (persistence.PartialUpdateError.Refused). While pass is
// set, it applies them, skipping those of messages no longer streaming
// (the fence), and tells onApplied of each applied. Once readErr is set,
// reading a message fails with it.
type failingUpdates struct {
	*memStore
	refuse    bool                            // under memStore.mu
	pass      bool                            // under memStore.mu: the updates apply, until it is unset
	readErr   error                           // under memStore.mu
	onApplied func(persistence.MessageUpdate) // set before use; called without the lock
}

func (s *failingUpdates) ApplyMessageUpdates(_ context.Context, updates []persistence.MessageUpdate) ([]string, error) {
	s.mu.Lock()
	pass, refuse := s.pass, s.refuse
	s.mu.Unlock()
	if pass {
		var skipped []string
		for _, u := range updates {
			if m, err := s.find(func(m persistence.Message) bool { return m.ID == u.ID }); err == nil && m.Status.Final() {
				skipped = append(skipped, u.ID)
				continue
			}
			s.apply(u)
			if s.onApplied != nil {
				s.onApplied(u)
			}
		}
		return skipped, nil
	}
	if !refuse {
		return nil, errors.New("database unreachable")
	}
	ids := make([]string, len(updates))
	for i, u := range updates {
		ids[i] = u.ID
	}
	return nil, &persistence.PartialUpdateError{IDs: ids, Refused: ids, Err: errors.New("rejected")}
}

func (s *failingUpdates) Message(ctx context.Context, ownerID, id string) (persistence.Message, error) {
	s.mu.Lock()
	err := s.readErr
	s.mu.Unlock()
	if err != nil {
		return persistence.Message{}, err
	}
	return s.memStore.Message(ctx, ownerID, id)
}
