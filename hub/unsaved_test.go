package hub

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"chatd/hub/protocol"
	"chatd/persistence"
)

// TestResumeUnsavedEnd: a tab resuming an answer that ended here without
// its final state stored (the store still holds it streaming) gets the
// stored text past its cursor and a done that says what the live tabs'
// done said (error, unavailable), its seq the stored text's length. It
// used to get the text and no done, and waited for one until the answer
// was swept at the next start.
func TestResumeUnsavedEnd(t *testing.T) {
	t.Parallel()
	dropped := fmt.Errorf("batch: message: %w", persistence.ErrDropped)
	cases := []struct {
		name      string
		finishErr error
		interrupt error // InterruptMessage's error (a dropped update is ended as interrupted)
		from      int64
		want      *protocol.ErrorBody
	}{
		{"final write failing, from inside", notDurable{}, nil, int64(len("a whole ")), errNotStored},
		{"final write failing, from its end", notDurable{}, nil, int64(len("a whole answer")), errNotStored},
		{"final write dropped, not ended", dropped, errors.New("database is locked"), 0, errNotEnded},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, Options{}, say("a whole ", "answer"))
			e.writer.finishErr = tc.finishErr
			e.store.refuseInterrupt = tc.interrupt
			live := newSub("u")
			res := e.send(t, live, "hi")
			live.textUntilDone(t, res.MessageID, 0)
			stored := e.stored(t, res.MessageID)
			if stored.Status != persistence.StatusStreaming {
				t.Fatalf("stored %s, want the answer left streaming", stored.Status)
			}

			back := newSub("u")
			from := tc.from
			if err := e.h.Subscribe(context.Background(), back, "u", SubscribeRequest{ConversationID: res.ConversationID,
				MessageID: res.MessageID, LastSeq: &from}); err != nil {
				t.Fatalf("resume: %v", err)
			}
			back.expect(t, protocol.TypeAck)
			text, done := back.textUntilDone(t, res.MessageID, from)
			if got := stored.Content[from:]; text != got {
				t.Fatalf("resumed text %q, want the stored %q", text, got)
			}
			if done.Status != string(persistence.StatusError) || done.Seq != int64(len(stored.Content)) ||
				done.Error == nil || *done.Error != *tc.want {
				t.Fatalf("done %+v (error %+v), want error at %d bytes with %+v", done, done.Error, len(stored.Content), tc.want)
			}
			back.quiet(t)
		})
	}
}

// TestResumeUnsavedEndStoredFinal: once the store holds the answer's final
// state (the writer's retry landed), a resume gets that state, not the
// remembered failure.
func TestResumeUnsavedEndStoredFinal(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{}, say("a whole ", "answer"))
	e.writer.finishErr = notDurable{}
	live := newSub("u")
	res := e.send(t, live, "hi")
	live.textUntilDone(t, res.MessageID, 0)
	e.store.apply(persistence.MessageUpdate{ID: res.MessageID, Status: persistence.StatusComplete, FinishReason: "stop"})

	back := newSub("u")
	from := int64(len("a whole answer"))
	if err := e.h.Subscribe(context.Background(), back, "u", SubscribeRequest{ConversationID: res.ConversationID,
		MessageID: res.MessageID, LastSeq: &from}); err != nil {
		t.Fatalf("resume: %v", err)
	}
	back.expect(t, protocol.TypeAck)
	if done := back.expect(t, protocol.TypeDone); done.Status != string(persistence.StatusComplete) || done.Error != nil {
		t.Fatalf("done %+v (error %+v), want the stored complete", done, done.Error)
	}
}

// TestUnsavedEndsBounded: unsavedEnds keeps an answer for unsavedAge and
// at most unsavedMax answers, the oldest forgotten first, and never
// changes an answer the store holds final.
func TestUnsavedEndsBounded(t *testing.T) {
	t.Parallel()
	var u unsavedEnds
	t0 := time.Now()
	streaming := func(id string) persistence.Message {
		return persistence.Message{ID: id, Status: persistence.StatusStreaming, Content: "kept"}
	}
	for i := range unsavedMax + 1 {
		u.add(fmt.Sprint("m", i), errNotStored, t0.Add(time.Duration(i)*time.Millisecond))
	}
	now := t0.Add(time.Second)
	cases := []struct {
		name string
		m    persistence.Message
		at   time.Time
		ok   bool
	}{
		{"the oldest, past the count", streaming("m0"), now, false},
		{"the next", streaming("m1"), now, true},
		{"the newest", streaming(fmt.Sprint("m", unsavedMax)), now, true},
		{"unknown", streaming("other"), now, false},
		{"stored final", persistence.Message{ID: "m1", Status: persistence.StatusComplete}, now, false},
		{"the newest, past its age", streaming(fmt.Sprint("m", unsavedMax)), t0.Add(unsavedAge + 2*time.Second), false},
	}
	for _, tc := range cases {
		got, ok := u.end(tc.m, tc.at)
		if ok != tc.ok {
			t.Fatalf("%s: ended %v, want %v", tc.name, ok, tc.ok)
		}
		if ok && (got.Status != persistence.StatusError || got.ErrorCode != errNotStored.Code || got.Content != "kept") {
			t.Fatalf("%s: ended as %+v", tc.name, got)
		}
		if !ok && got != tc.m {
			t.Fatalf("%s: changed to %+v", tc.name, got)
		}
	}
	u.add("late", errNotStored, t0.Add(unsavedAge+2*time.Second))
	u.mu.Lock()
	n := len(u.ends)
	u.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d answers kept once all but the last are past their age, want 1", n)
	}
}

// TestUnsavedEndsReAdded: an answer added again (a mirror's done
// recorded, then its own end) moves to the back of the order: the count
// bound forgets the oldest other answer first, and the age bound still
// forgets the answers past their age behind it. It used to stay at its
// old place and be forgotten first.
func TestUnsavedEndsReAdded(t *testing.T) {
	t.Parallel()
	var u unsavedEnds
	t0 := time.Now()
	for i := range unsavedMax {
		u.add(fmt.Sprint("m", i), errNotStored, t0)
	}
	later := t0.Add(time.Minute)
	u.add("m0", errNotEnded, later)
	u.add("new", errNotStored, later) // one too many: the oldest other goes
	streaming := func(id string) persistence.Message {
		return persistence.Message{ID: id, Status: persistence.StatusStreaming}
	}
	for _, c := range []struct {
		id   string
		kept bool
	}{{"m0", true}, {"m1", false}, {"m2", true}, {"new", true}} {
		if _, ok := u.end(streaming(c.id), later); ok != c.kept {
			t.Errorf("%s kept %v, want %v", c.id, ok, c.kept)
		}
	}
	u.add("last", errNotStored, t0.Add(unsavedAge)) // the others added at t0 are past their age
	u.mu.Lock()
	n, order := len(u.ends), len(u.order)
	u.mu.Unlock()
	if n != 3 || order != 3 {
		t.Fatalf("%d answers kept (%d in order), want m0, new and last", n, order)
	}
}

// TestRepeatedSendUnsavedEnd: a send repeated (its ack lost) after its
// answer ended here without its end stored gets the answer as its done
// said: the message with the stored text, then a done with the same
// error, its seq the stored length. It used to get the ack and nothing.
func TestRepeatedSendUnsavedEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{}, say("a whole ", "answer"))
	e.writer.finishErr = notDurable{}
	live := newSub("u")
	req := SendRequest{Content: "hi", ClientMessageID: "send-1"}
	res, err := e.h.Send(context.Background(), live, "u", req)
	if err != nil {
		t.Fatal(err)
	}
	live.textUntilDone(t, res.MessageID, 0)
	stored := e.stored(t, res.MessageID)

	again := newSub("u")
	req.ConversationID = res.ConversationID
	rep, err := e.h.Send(context.Background(), again, "u", req)
	if err != nil || !rep.Repeated || rep.MessageID != res.MessageID {
		t.Fatalf("repeated send: %+v, %v", rep, err)
	}
	again.expect(t, protocol.TypeAck)
	if m := again.expect(t, protocol.TypeMessage); m.Message.ID != res.MessageID || m.Message.Content != stored.Content {
		t.Fatalf("message frame %+v, want the stored answer", m.Message)
	}
	done := again.expect(t, protocol.TypeDone)
	if done.Status != string(persistence.StatusError) || done.Seq != int64(len(stored.Content)) ||
		done.Error == nil || *done.Error != *errNotStored {
		t.Fatalf("done %+v (error %+v), want error at %d bytes with %+v", done, done.Error, len(stored.Content), errNotStored)
	}
}

// TestClusterResumeUnsavedEnd: an instance whose tabs followed an answer
// running on another one, which ended it without its end stored (the
// database held the final write past FinishTimeout), answers a resume of
// it as that instance does: the stored text past the cursor and a done
// with the same error at the stored length. It used to answer the stored
// text and no done. A cursor past the stored text (the tab got text
// streamed after the last checkpoint, which the failing database did not
// take either) gets no text and that done, on both instances: it used to
// get bad_seq, and its client reloaded an answer stored streaming.
func TestClusterResumeUnsavedEnd(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t)
	a := tc.startWith(t, "A", nil, func(o *Options) { o.FinishTimeout = 50 * time.Millisecond })
	b := tc.start(t, "B")
	conv := tc.conversation(t)
	onA := tc.follow(t, a, "a1", conv.ID)
	onB := tc.follow(t, b, "b1", conv.ID)
	res := tc.send(t, a, onA, conv.ID, "hi")
	run := a.model.next(t)
	run.say(t, "one ")
	onB.waitText(t, res.MessageID, "one ")
	tc.waitStored(t, res.MessageID, "a checkpoint", func(m persistence.Message) bool { return m.Content == "one " })
	release := a.store.holdUpdates()
	t.Cleanup(release) // before the hubs' shutdown (cleanups run last first)
	run.say(t, "two")
	close(run.tokens)
	onB.waitDone(t, res.MessageID)
	stored := tc.message(t, res.MessageID)
	if stored.Status != persistence.StatusStreaming {
		t.Fatalf("stored %s, want the answer left streaming", stored.Status)
	}

	streamed := int64(len("one two"))
	cases := []struct {
		name string
		on   *testHub
		from int64
	}{
		{"on the mirror, from the start", b, 0},
		{"on the mirror, from the stored end", b, int64(len(stored.Content))},
		{"on the mirror, from inside the unsaved text", b, int64(len("one t"))},
		{"on the mirror, from the streamed end", b, streamed},
		{"on its own, from the start", a, 0},
		{"on its own, from the streamed end", a, streamed},
	}
	for i, c := range cases {
		back := newTab(tc.user.ID, fmt.Sprint("back", i))
		c.on.Register(back)
		t.Cleanup(func() { c.on.Detach(back) })
		from := c.from
		if err := c.on.Subscribe(context.Background(), back, tc.user.ID,
			SubscribeRequest{ConversationID: conv.ID, MessageID: res.MessageID, LastSeq: &from}); err != nil {
			t.Fatalf("%s: resume: %v", c.name, err)
		}
		frames, _ := back.snapshot()
		want := stored.Content[min(c.from, int64(len(stored.Content))):]
		text, dones, err := answerOf(frames, res.MessageID, min(c.from, int64(len(stored.Content))))
		if err != nil || text != want || dones != 1 {
			t.Fatalf("%s: resumed %q with %d dones (%v), want the stored %q and a done; frames:\n%s", c.name, text, dones, err, want, dump(frames))
		}
		last := frames[len(frames)-1]
		if field(t, last, "status") != string(persistence.StatusError) || !strings.Contains(string(last.Data), `"code":"unavailable"`) ||
			last.Seq != int64(len(stored.Content)) {
			t.Fatalf("%s: done %s, want error/unavailable at %d bytes", c.name, last.Data, len(stored.Content))
		}
	}
}

// TestUnsavedDone: a mirror records only the done of an answer whose end
// was not stored (error, unavailable).
func TestUnsavedDone(t *testing.T) {
	t.Parallel()
	m := persistence.Message{ID: "m", ConversationID: "c", Content: "text"}
	done := func(status persistence.Status, body *protocol.ErrorBody) *protocol.Frame {
		m := m
		m.Status = status
		return protocol.Done(m, body)
	}
	cases := []struct {
		name string
		f    *protocol.Frame
		want *protocol.ErrorBody
	}{
		{"not stored", done(persistence.StatusError, errNotStored), errNotStored},
		{"dropped, not ended", done(persistence.StatusError, errNotEnded), errNotEnded},
		{"complete", done(persistence.StatusComplete, nil), nil},
		{"upstream error", done(persistence.StatusError, &protocol.ErrorBody{Code: "upstream_error", Message: `"code":"unavailable"`}), nil},
		{"interrupted", done(persistence.StatusInterrupted, &protocol.ErrorBody{Code: protocol.CodeUnavailable, Message: "x"}), nil},
	}
	for _, tc := range cases {
		got, ok := unsavedDone(tc.f)
		if ok != (tc.want != nil) || ok && *got != *tc.want {
			t.Errorf("%s: %+v %v, want %+v", tc.name, got, ok, tc.want)
		}
	}
}

// TestUnsavedDoneSaysWhetherRetried: an unavailable done says the server
// keeps trying only when the writer keeps the final update and retries
// it (Finish stopped waiting: errNotStored); when the writer will not
// write it (closed, or any other refusal) it says to reload
// (errNotEnded), and claims only the text known written: none, as
// nothing says what was. Before, every such done said the server keeps
// trying, and claimed all the text streamed.
func TestUnsavedDoneSaysWhetherRetried(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		finishErr error
		want      *protocol.ErrorBody
		seq       int64
	}{
		{"kept queued", notDurable{unwrittenText: len("answer")}, errNotStored, int64(len("a whole "))},
		{"not kept", errors.New("batch writer closed"), errNotEnded, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, Options{}, say("a whole ", "answer"))
			e.writer.finishErr = tc.finishErr
			sub := newSub("u")
			res := e.send(t, sub, "hi")
			done := sub.doneOf(t, res.MessageID)
			if done.Status != string(persistence.StatusError) || done.Seq != tc.seq || done.Error == nil || *done.Error != *tc.want {
				t.Fatalf("done %s at %d bytes with %+v, want error at %d bytes with %+v", done.Status, done.Seq, done.Error, tc.seq, tc.want)
			}
			if says := strings.Contains(done.Error.Message, "keeps trying"); says != (tc.want == errNotStored) {
				t.Fatalf("done says %q", done.Error.Message)
			}
		})
	}
}
