package hub

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"chatd/hub/protocol"
	"chatd/llm"
	"chatd/persistence"
)

// TestSendOrder: a send is acked, then the user message and the answer are
// announced, then deltas continue each other up to a done whose seq is the
// answer's length; the stored answer holds the same text.
func TestSendOrder(t *testing.T) {
	t.Parallel()
	pieces := []string{"Hello", ", ", "wörld", " 🙂", "!"}
	e := newEnv(t, Options{}, say(pieces...))
	sub := newSub("u")
	res := e.send(t, sub, "hi")

	ack := sub.expect(t, protocol.TypeAck)
	if ack.MessageID != res.MessageID || ack.UserMessageID != res.UserMessageID || ack.ConversationID != res.ConversationID {
		t.Fatalf("ack %+v does not name %+v", ack, res)
	}
	if m := sub.expect(t, protocol.TypeMessage).Message; m.ID != res.UserMessageID || m.Role != persistence.RoleUser {
		t.Fatalf("first message frame %+v, want the user message", m)
	}
	if m := sub.expect(t, protocol.TypeMessage).Message; m.ID != res.MessageID || m.Status != persistence.StatusStreaming {
		t.Fatalf("second message frame %+v, want the streaming answer", m)
	}
	text, done := sub.textUntilDone(t, res.MessageID, 0)
	if want := strings.Join(pieces, ""); text != want {
		t.Fatalf("deltas %q, want %q", text, want)
	}
	if done.Status != "complete" || done.FinishReason != "stop" || done.Error != nil {
		t.Fatalf("done %+v", done)
	}
	if m := e.stored(t, res.MessageID); m.Content != text || m.Status != persistence.StatusComplete {
		t.Fatalf("stored %q %s", m.Content, m.Status)
	}
}

// TestSendAnnouncesConversationFirst: a tab of the user gets a send's
// conversation frame (created, or updated for a send into an existing
// conversation) after the ack and the new messages and before any of the
// answer's deltas, however fast the answer: the conversation frame is
// delivered before the answer starts. Repeated, as the order once
// depended on which goroutine ran first.
func TestSendAnnouncesConversationFirst(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{}, say("fast"))
	sub := newSub("u")
	e.h.Register(sub)
	conversationID := ""
	for i := range 20 {
		res, err := e.h.Send(context.Background(), sub, "u", SendRequest{Content: "hi", ConversationID: conversationID})
		if err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
		sub.expect(t, protocol.TypeAck)
		sub.expect(t, protocol.TypeMessage)
		sub.expect(t, protocol.TypeMessage)
		want := map[bool]string{true: "created", false: "updated"}[conversationID == ""]
		if c := sub.expect(t, protocol.TypeConversation); c.Action != want || c.Conversation.ID != res.ConversationID {
			t.Fatalf("send %d: conversation frame %+v, want %s %s", i, c, want, res.ConversationID)
		}
		sub.textUntilDone(t, res.MessageID, 0)
		conversationID = map[bool]string{true: res.ConversationID, false: ""}[i%2 == 0]
	}
}

// TestSubscribeCatchesUp: a subscriber joining mid-answer gets the answer
// and all its text so far in one delta, then the same deltas as the others.
func TestSubscribeCatchesUp(t *testing.T) {
	t.Parallel()
	feed := make(tap)
	e := newEnv(t, Options{}, feed.script)
	first := newSub("u")
	res := e.send(t, first, "hi")
	feed <- "one "
	feed <- "two "
	for got := ""; got != "one two "; { // wait until the first subscriber saw it
		if f := first.next(t); f.Type == protocol.TypeDelta {
			got += decode(t, f).Text
		}
	}
	late := newSub("u")
	if err := e.h.Subscribe(context.Background(), late, "u", SubscribeRequest{ConversationID: res.ConversationID}); err != nil {
		t.Fatal(err)
	}
	late.expect(t, protocol.TypeAck)
	if m := late.expect(t, protocol.TypeMessage).Message; m.ID != res.MessageID {
		t.Fatalf("catch-up names %s, want %s", m.ID, res.MessageID)
	}
	feed <- "three"
	close(feed)
	text, _ := late.textUntilDone(t, res.MessageID, 0)
	if text != "one two three" {
		t.Fatalf("late subscriber got %q", text)
	}
	rest, _ := first.textUntilDone(t, res.MessageID, int64(len("one two ")))
	if rest != "three" {
		t.Fatalf("first subscriber got %q after the catch-up", rest)
	}
}

// TestSubscribeResumes: lastSeq resumes the running answer after that many
// bytes, whether messageId names it or not (protocol.md); a lastSeq outside
// the text, or inside a character, is refused with bad_seq. A resume that
// names no answer, or one named for a client that named none (Announce: GET
// .../stream), first gets the answer's message frame.
func TestSubscribeResumes(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"with messageId", "lastSeq only", "named for the client"} {
		named, announced := mode != "lastSeq only", mode != "with messageId"
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			feed := make(tap)
			e := newEnv(t, Options{}, feed.script)
			first := newSub("u")
			res := e.send(t, first, "hi")
			feed <- "héllo "
			for got := ""; got != "héllo "; {
				if f := first.next(t); f.Type == protocol.TypeDelta {
					got += decode(t, f).Text
				}
			}
			req := SubscribeRequest{ConversationID: res.ConversationID}
			if named {
				req.MessageID, req.Announce = res.MessageID, announced
			}
			for _, bad := range []int64{-1, 2, 100} { // 2 is inside "é"
				req.LastSeq = &bad
				var perr *protocol.Error
				if err := e.h.Subscribe(context.Background(), newSub("u"), "u", req); !errors.As(err, &perr) || perr.Code != protocol.CodeBadSeq {
					t.Fatalf("lastSeq %d: err %v, want bad_seq", bad, err)
				}
			}
			seq := int64(len("hé"))
			req.LastSeq = &seq
			sub := newSub("u")
			if err := e.h.Subscribe(context.Background(), sub, "u", req); err != nil {
				t.Fatal(err)
			}
			sub.expect(t, protocol.TypeAck)
			if announced {
				if m := sub.expect(t, protocol.TypeMessage).Message; m.ID != res.MessageID {
					t.Fatalf("resume names %s, want %s", m.ID, res.MessageID)
				}
			}
			close(feed)
			if text, _ := sub.textUntilDone(t, res.MessageID, seq); text != "llo " {
				t.Fatalf("resumed text %q, want %q", text, "llo ")
			}
		})
	}
}

// TestCancel: Cancel ends the answer for every subscriber as cancelled,
// with its text so far stored.
func TestCancel(t *testing.T) {
	t.Parallel()
	feed := make(tap)
	e := newEnv(t, Options{}, feed.script)
	sub := newSub("u")
	res := e.send(t, sub, "hi")
	feed <- "partial"
	if err := e.h.Cancel(context.Background(), "u", res.ConversationID); err != nil {
		t.Fatal(err)
	}
	text, done := sub.textUntilDone(t, res.MessageID, 0)
	if text != "partial" || done.Status != "cancelled" || done.Error != nil {
		t.Fatalf("cancelled answer %q, done %+v", text, done)
	}
	if m := e.stored(t, res.MessageID); m.Status != persistence.StatusCancelled || m.Content != "partial" {
		t.Fatalf("stored %+v", m)
	}
	if err := e.h.Cancel(context.Background(), "u", res.ConversationID); err != nil {
		t.Fatalf("second Cancel: %v", err)
	}
	var perr *protocol.Error
	if err := e.h.Cancel(context.Background(), "intruder", res.ConversationID); !errors.As(err, &perr) || perr.Code != protocol.CodeNotFound {
		t.Fatalf("another user's Cancel: %v, want not_found", err)
	}
}

// TestRegenerate: regenerating a running answer stops it (cancelled) and
// answers the same user message again as a sibling.
func TestRegenerate(t *testing.T) {
	t.Parallel()
	feed := make(tap)
	e := newEnv(t, Options{}, feed.script)
	sub := newSub("u")
	res := e.send(t, sub, "hi")
	feed <- "first try"
	regen := make(chan Result, 1)
	go func() {
		r, err := e.h.Regenerate(context.Background(), nil, "u", RegenerateRequest{ConversationID: res.ConversationID})
		if err != nil {
			t.Error(err)
		}
		regen <- r
	}()
	if _, done := sub.textUntilDone(t, res.MessageID, 0); done.Status != "cancelled" {
		t.Fatalf("superseded answer ended %s", done.Status)
	}
	r := <-regen
	feed <- "second try"
	close(feed)
	if text, done := sub.textUntilDone(t, r.MessageID, 0); text != "second try" || done.Status != "complete" {
		t.Fatalf("regenerated %q %s", text, done.Status)
	}
	old, answer := e.stored(t, res.MessageID), e.stored(t, r.MessageID)
	if answer.ParentID != res.UserMessageID || old.ParentID != res.UserMessageID || r.UserMessageID != res.UserMessageID {
		t.Fatalf("regenerated answer is not a sibling: old parent %s, new parent %s", old.ParentID, answer.ParentID)
	}
}

// TestShutdownInterrupts: Shutdown ends a running answer as interrupted
// (code shutdown, text kept), waits for it, and refuses new sends.
func TestShutdownInterrupts(t *testing.T) {
	t.Parallel()
	feed := make(tap)
	e := newEnv(t, Options{}, feed.script)
	sub := newSub("u")
	res := e.send(t, sub, "hi")
	feed <- "so far"
	if err := e.h.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	text, done := sub.textUntilDone(t, res.MessageID, 0)
	if text != "so far" || done.Status != "interrupted" || done.Error == nil || done.Error.Code != protocol.CodeShutdown {
		t.Fatalf("interrupted answer %q, done %+v", text, done)
	}
	if m := e.stored(t, res.MessageID); m.Status != persistence.StatusInterrupted || m.Content != "so far" {
		t.Fatalf("stored %+v", m)
	}
	var perr *protocol.Error
	if _, err := e.h.Send(context.Background(), nil, "u", SendRequest{Content: "late"}); !errors.As(err, &perr) || perr.Code != protocol.CodeUnavailable {
		t.Fatalf("Send after Shutdown: %v, want unavailable", err)
	}
}

// TestShutdownWaitsForSendInFlight (issue 10, item 16): a Send that passed
// the closing check before Shutdown began, and is still storing its user
// message, is waited for: Shutdown does not return while it runs, and its
// answer's final write reaches the writer before Shutdown returns (after
// which the batch writer is closed).
func TestShutdownWaitsForSendInFlight(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{}, say("never sent"))
	entered, release := make(chan struct{}), make(chan struct{})
	e.store.beforeInsert = func(m *persistence.Message) {
		if m.Role == persistence.RoleUser {
			close(entered)
			<-release
		}
	}
	sent := make(chan error, 1)
	go func() {
		_, err := e.h.Send(context.Background(), nil, "u", SendRequest{Content: "hi"})
		sent <- err
	}()
	<-entered
	// Shutdown must wait for the Send: with a context that ends soon, it
	// gives up with the context's error instead of returning nil at once.
	short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := e.h.Shutdown(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown with a Send in flight = %v, want it to wait (deadline exceeded)", err)
	} else if !strings.Contains(err.Error(), "wait for the running answers to end") {
		t.Fatalf("Shutdown's error %q does not name the step it gave up on", err)
	}
	close(release)
	if err := e.h.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if late := e.writer.close(); late != 0 {
		t.Fatalf("%d final writes after Shutdown returned", late)
	}
	if err := <-sent; err != nil {
		t.Fatalf("Send: %v", err)
	}
	if n := len(e.writer.finals); n != 1 || e.writer.finals[0].Status != persistence.StatusInterrupted {
		t.Fatalf("final writes %+v, want one interrupted answer", e.writer.finals)
	}
}

// TestDoneReportsUnstoredAnswer (issue 10, item 10): when the final write
// fails, done says error/unavailable, never complete.
func TestDoneReportsUnstoredAnswer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{}, say("a whole ", "answer"))
	e.writer.finishErr = notDurable{}
	sub := newSub("u")
	res := e.send(t, sub, "hi")
	text, done := sub.textUntilDone(t, res.MessageID, 0)
	if text != "a whole answer" {
		t.Fatalf("text %q", text)
	}
	if done.Status != "error" || done.Error == nil || done.Error.Code != protocol.CodeUnavailable {
		t.Fatalf("done after a failed final write: %+v (error %+v), want error/unavailable", done, done.Error)
	}
}

// TestDroppedFinalUpdateEndsAnswer: when the writer gives up on an
// answer's final update for good (persistence.ErrDropped: overloaded, or
// the store kept rejecting it), nothing would ever end the message, left
// streaming; the hub stores it interrupted with its text as last saved,
// and the done reports exactly that.
func TestDroppedFinalUpdateEndsAnswer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{}, say("a whole ", "answer"))
	e.writer.finishErr = fmt.Errorf("batch: message: %w", persistence.ErrDropped)
	sub := newSub("u")
	res := e.send(t, sub, "hi")
	_, done := sub.textUntilDone(t, res.MessageID, 0)
	m := e.stored(t, res.MessageID)
	if m.Status != persistence.StatusInterrupted || m.Error != droppedReason {
		t.Fatalf("stored %s (%q), want interrupted (%q)", m.Status, m.Error, droppedReason)
	}
	if done.Status != string(m.Status) || done.Seq != int64(len(m.Content)) || done.Error == nil || done.Error.Message != droppedReason {
		t.Fatalf("done %+v (error %+v), want the stored state: interrupted at %d bytes", done, done.Error, len(m.Content))
	}
}

// TestDroppedFinalUpdateNotEnded: when the answer whose final update was
// dropped cannot be ended either (the store fails), its done reports the
// error without claiming that the server keeps trying to save it, which
// it does not.
func TestDroppedFinalUpdateNotEnded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{}, say("a whole ", "answer"))
	e.writer.finishErr = fmt.Errorf("batch: message: %w", persistence.ErrDropped)
	e.store.refuseInterrupt = errors.New("database is locked")
	sub := newSub("u")
	res := e.send(t, sub, "hi")
	_, done := sub.textUntilDone(t, res.MessageID, 0)
	if done.Status != "error" || done.Error == nil || done.Error.Code != protocol.CodeUnavailable || strings.Contains(done.Error.Message, "keeps trying") {
		t.Fatalf("done %+v (error %+v), want error/unavailable, not saying the server keeps trying", done, done.Error)
	}
}

// TestAnswerSizeCap (issue 10, item 12): an answer stops at MaxAnswerBytes
// (on a character boundary) and is stored complete with finish reason
// length; the upstream stream is cancelled.
func TestAnswerSizeCap(t *testing.T) {
	t.Parallel()
	streamErr := make(chan error, 1)
	e := newEnv(t, Options{MaxAnswerBytes: 100}, func(ctx context.Context, _ llm.Request, onDelta func(string)) (llm.Result, error) {
		for range 1000 {
			if ctx.Err() != nil {
				streamErr <- context.Cause(ctx)
				return llm.Result{}, context.Cause(ctx)
			}
			onDelta("ab中") // 5 bytes: 100 is not a multiple of the piece
		}
		streamErr <- nil
		return llm.Result{FinishReason: "stop"}, nil
	})
	sub := newSub("u")
	res := e.send(t, sub, "write forever")
	text, done := sub.textUntilDone(t, res.MessageID, 0)
	if len(text) > 100 || len(text) < 96 || !utf8.ValidString(text) {
		t.Fatalf("capped text has %d bytes (valid UTF-8: %v)", len(text), utf8.ValidString(text))
	}
	if done.Status != "complete" || done.FinishReason != "length" {
		t.Fatalf("done %+v, want complete/length", done)
	}
	if m := e.stored(t, res.MessageID); m.Content != text || m.FinishReason != "length" {
		t.Fatalf("stored %d bytes, finish %q", len(m.Content), m.FinishReason)
	}
	if err := <-streamErr; !errors.Is(err, errTooLong) {
		t.Fatalf("stream ended with %v, want it cancelled by the cap", err)
	}
}

// TestResumedDoneKeepsErrorCode (issue 10, item 19): the done of a stored
// failed answer carries the code the live done had.
func TestResumedDoneKeepsErrorCode(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{}, func(_ context.Context, _ llm.Request, onDelta func(string)) (llm.Result, error) {
		onDelta("half")
		return llm.Result{}, &llm.Error{Kind: llm.KindTimeout, Message: "The model stopped answering."}
	})
	sub := newSub("u")
	res := e.send(t, sub, "hi")
	_, live := sub.textUntilDone(t, res.MessageID, 0)
	if live.Error == nil || live.Error.Code != "timeout" {
		t.Fatalf("live done %+v", live)
	}
	later := newSub("u")
	seq := int64(0)
	if err := e.h.Subscribe(context.Background(), later, "u", SubscribeRequest{ConversationID: res.ConversationID,
		MessageID: res.MessageID, LastSeq: &seq}); err != nil {
		t.Fatal(err)
	}
	later.expect(t, protocol.TypeAck)
	_, resumed := later.textUntilDone(t, res.MessageID, 0)
	if resumed.Error == nil || *resumed.Error != *live.Error || resumed.Status != "error" {
		t.Fatalf("resumed done error %+v, want %+v", resumed.Error, live.Error)
	}
}

// TestOtherUsersConversation: another user's conversation answers like an
// unknown one, and nothing is delivered.
func TestOtherUsersConversation(t *testing.T) {
	t.Parallel()
	feed := make(tap)
	e := newEnv(t, Options{}, feed.script)
	res := e.send(t, nil, "hi")
	intruder := newSub("intruder")
	for name, err := range map[string]error{
		"subscribe": e.h.Subscribe(context.Background(), intruder, "intruder", SubscribeRequest{ConversationID: res.ConversationID}),
		"unknown":   e.h.Subscribe(context.Background(), intruder, "intruder", SubscribeRequest{ConversationID: persistence.NewID()}),
	} {
		var perr *protocol.Error
		if !errors.As(err, &perr) || perr.Code != protocol.CodeNotFound {
			t.Fatalf("%s: %v, want not_found", name, err)
		}
	}
	close(feed)
	intruder.quiet(t)
}
