package hub

import (
	"context"
	"sync"
	"testing"

	"chatd/hub/protocol"
	"chatd/llm"
	"chatd/persistence"
)

// readHookStore is a memStore whose next Messages, once armed, runs hook
// after it has read (the read is done; its reply comes late).
type readHookStore struct {
	*memStore
	mu   sync.Mutex
	hook func()
}

func (s *readHookStore) arm(hook func()) {
	s.mu.Lock()
	s.hook = hook
	s.mu.Unlock()
}

func (s *readHookStore) Messages(ctx context.Context, ownerID, convID string) ([]persistence.Message, error) {
	msgs, err := s.memStore.Messages(ctx, ownerID, convID)
	s.mu.Lock()
	hook := s.hook
	s.hook = nil
	s.mu.Unlock()
	if hook != nil {
		hook()
	}
	return msgs, err
}

// hookedHub runs a hub over a readHookStore, with script as the model.
func hookedHub(t *testing.T, script func(context.Context, llm.Request, func(string)) (llm.Result, error)) (*Hub, *readHookStore, persistence.Conversation) {
	t.Helper()
	mem := newMemStore()
	store := &readHookStore{memStore: mem}
	h := New(Options{Store: store, Writer: &memWriter{store: mem}, Model: &fakeModel{script: script}})
	runHub(t, h, nil)
	conv := persistence.Conversation{OwnerID: "u", Model: "fake"}
	if err := mem.CreateConversation(context.Background(), &conv); err != nil {
		t.Fatal(err)
	}
	return h, store, conv
}

// queued returns the frames sub holds now, without waiting.
func queued(sub *fakeSub) []*protocol.Frame {
	var fs []*protocol.Frame
	for {
		select {
		case f := <-sub.frames:
			fs = append(fs, f)
		default:
			return fs
		}
	}
}

// TestRepeatSendAfterAnswerEnded: a repeated send (the same client message
// id) that read the conversation while its answer streamed, the answer
// ending before it locked the conversation, gets the answer's stored
// state whole, its message and its done, by the time Send returns: not an
// ack naming an answer whose done never comes (an SSE send would wait for
// it forever).
func TestRepeatSendAfterAnswerEnded(t *testing.T) {
	ctx := context.Background()
	p := make(tap)
	h, store, conv := hookedHub(t, p.script)
	sub1 := newSub("u")
	req := SendRequest{ConversationID: conv.ID, Content: "hi", ClientMessageID: "c-1"}
	first, err := h.Send(ctx, sub1, "u", req)
	if err != nil {
		t.Fatal(err)
	}
	p <- "hello"
	read, proceed := make(chan struct{}), make(chan struct{})
	store.arm(func() { close(read); <-proceed })
	sub2 := newSub("u")
	type out struct {
		res Result
		err error
	}
	got := make(chan out, 1)
	go func() {
		res, err := h.Send(ctx, sub2, "u", req) // the retry of the same send
		got <- out{res, err}
	}()
	<-read // the retry read the answer as streaming
	close(p)
	if _, done := sub1.textUntilDone(t, first.MessageID, 0); done.Status != "complete" {
		t.Fatalf("the first tab's done: %+v", done)
	}
	close(proceed)
	o := <-got
	if o.err != nil || o.res.MessageID != first.MessageID {
		t.Fatalf("the repeated send: %+v, %v; want the first's answer %s", o.res, o.err, first.MessageID)
	}
	fs := queued(sub2)
	if len(fs) != 3 || fs[0].Type != protocol.TypeAck || fs[1].Type != protocol.TypeMessage || !fs[2].IsDone(first.MessageID) {
		t.Fatalf("the repeated send's tab got %s, want its ack, the answer's message and its done", dump(fs))
	}
	if d := decode(t, fs[2]); d.Status != "complete" || d.Seq != int64(len("hello")) {
		t.Fatalf("done %+v, want complete at %d", d, len("hello"))
	}
}

// TestRepeatSendWhileFirstIsStored: the same send (the same client
// message id) that comes while the first is still storing its messages (a
// slow database; the client retried after a reconnect) is answered as a
// repeated send, naming the first's answer, not refused with
// generation_running (which the web client shows as "not sent").
func TestRepeatSendWhileFirstIsStored(t *testing.T) {
	ctx := context.Background()
	h, store, conv := hookedHub(t, say("answer"))
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	store.beforeInsert = func(m *persistence.Message) {
		if m.Role == persistence.RoleUser {
			once.Do(func() { close(entered); <-release })
		}
	}
	req := SendRequest{ConversationID: conv.ID, Content: "hi", ClientMessageID: "c-1"}
	firstDone := make(chan Result, 1)
	go func() {
		res, err := h.Send(ctx, newSub("u"), "u", req)
		if err != nil {
			t.Error(err)
		}
		firstDone <- res
	}()
	<-entered // the first send is storing its messages
	read := make(chan struct{})
	store.arm(func() { close(read) })
	type out struct {
		res Result
		err error
	}
	got := make(chan out, 1)
	go func() {
		res, err := h.Send(ctx, newSub("u"), "u", req)
		got <- out{res, err}
	}()
	<-read // the repeat read the conversation without the first's messages
	close(release)
	first := <-firstDone
	o := <-got
	if o.err != nil || o.res.MessageID != first.MessageID || o.res.UserMessageID != first.UserMessageID {
		t.Fatalf("the repeated send: %+v, %v; want %+v", o.res, o.err, first)
	}
}

// TestCatchUpReasoningCursor: a tab caught up mid-answer gets the reasoning
// so far, then the text so far; the reasoning frame's text cursor (part of
// its SSE id) is what the tab has of the text before the delta that
// follows (0 here), so that an EventSource reconnecting right after it
// does not skip that text.
func TestCatchUpReasoningCursor(t *testing.T) {
	ctx := context.Background()
	script := func(ctx context.Context, req llm.Request, onDelta func(string)) (llm.Result, error) {
		req.OnReasoning("think ")
		onDelta("Hello ")
		<-ctx.Done()
		return llm.Result{}, context.Cause(ctx)
	}
	e := newEnv(t, Options{}, script)
	sub1 := newSub("u")
	res := e.send(t, sub1, "q")
	for f := sub1.next(t); f.Type != protocol.TypeDelta || f.MessageID != res.MessageID; f = sub1.next(t) {
	} // the text and the reasoning so far were sent
	sub2 := newSub("u")
	if err := e.h.Subscribe(ctx, sub2, "u", SubscribeRequest{ConversationID: res.ConversationID}); err != nil {
		t.Fatal(err)
	}
	sub2.expect(t, protocol.TypeAck)
	sub2.expect(t, protocol.TypeMessage)
	r, d := sub2.next(t), sub2.next(t)
	if r.Type != protocol.TypeReasoning || d.Type != protocol.TypeDelta {
		t.Fatalf("the catch-up: %s then %s, want reasoning then delta", r.Type, d.Type)
	}
	if r.EventID() != "0/6" || d.Seq != int64(len("Hello ")) {
		t.Fatalf("the catch-up's reasoning frame has SSE id %q, its delta seq %d: want %q (no text sent before it), then %d",
			r.EventID(), d.Seq, "0/6", len("Hello "))
	}
	if err := e.h.Cancel(ctx, "u", res.ConversationID); err != nil {
		t.Fatal(err)
	}
}

// lostReplyStore applies InsertMessages, then reports the request's
// context ended (a reply lost on the way, the connection closed
// mid-request).
type lostReplyStore struct{ *memStore }

func (s *lostReplyStore) InsertMessages(ctx context.Context, ms ...*persistence.Message) error {
	if err := s.memStore.InsertMessages(ctx, ms...); err != nil {
		return err
	}
	return context.Canceled
}

func (s *lostReplyStore) InsertMessage(ctx context.Context, m *persistence.Message) error {
	return s.InsertMessages(ctx, m)
}

// TestUnstartedRowEnded: with one instance, a send whose messages the
// store wrote although it reported a failure is refused, and its answer's
// row, which nothing runs, is ended interrupted instead of staying
// streaming until the next start-up.
func TestUnstartedRowEnded(t *testing.T) {
	ctx := context.Background()
	mem := newMemStore()
	h := New(Options{Store: &lostReplyStore{mem}, Writer: &memWriter{store: mem}, Model: &fakeModel{script: say("x")}})
	runHub(t, h, nil)
	conv := persistence.Conversation{OwnerID: "u", Model: "fake"}
	if err := mem.CreateConversation(ctx, &conv); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Send(ctx, newSub("u"), "u", SendRequest{ConversationID: conv.ID, Content: "hi"}); err == nil {
		t.Fatal("the send whose reply was lost did not fail")
	}
	waitFor(t, "the answer's row to be ended", func() bool {
		msgs, _ := mem.Messages(ctx, "u", conv.ID)
		for _, m := range msgs {
			if m.Role == persistence.RoleAssistant {
				return m.Status == persistence.StatusInterrupted
			}
		}
		t.Fatal("no answer row was stored: the test tests nothing")
		return false
	})
}

// TestCancelWhileSendIsStored: a cancel that comes while a send is storing
// its messages (the conversation reserved, no answer running yet) stops
// the answer as it starts, instead of being acknowledged and lost.
func TestCancelWhileSendIsStored(t *testing.T) {
	ctx := context.Background()
	p := make(tap)
	e := newEnv(t, Options{}, p.script)
	conv := persistence.Conversation{OwnerID: "u", Model: "fake"}
	if err := e.store.CreateConversation(ctx, &conv); err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	e.store.beforeInsert = func(*persistence.Message) { once.Do(func() { close(entered); <-release }) }
	sub := newSub("u")
	resc := make(chan Result, 1)
	go func() {
		res, err := e.h.Send(ctx, sub, "u", SendRequest{ConversationID: conv.ID, Content: "hi"})
		if err != nil {
			t.Error(err)
		}
		resc <- res
	}()
	<-entered
	if err := e.h.Cancel(ctx, "u", conv.ID); err != nil {
		t.Fatal(err)
	}
	close(release)
	res := <-resc
	if _, done := sub.textUntilDone(t, res.MessageID, 0); done.Status != "cancelled" {
		t.Fatalf("a cancel acknowledged while the send was stored; the answer ended %q", done.Status)
	}
}
