package hub

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"chatd/hub/protocol"
	"chatd/llm"
	"chatd/persistence"
)

// scripts answers the nth request with the nth script, and any later
// one with the last.
func scripts(s ...func(context.Context, llm.Request, func(string)) (llm.Result, error)) func(context.Context, llm.Request, func(string)) (llm.Result, error) {
	var n atomic.Int32
	return func(ctx context.Context, req llm.Request, onDelta func(string)) (llm.Result, error) {
		i := min(int(n.Add(1))-1, len(s)-1)
		return s[i](ctx, req, onDelta)
	}
}

// TestCancelAnswer: a cancel that names an answer stops it only while it
// is the conversation's running answer; naming another (an earlier one,
// ended) or none running stops nothing and is no error, as a cancel
// without a name is; another user's conversation is not found either way.
func TestCancelAnswer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	feed := make(tap, 4) // buffered: a test whose answer stopped fails instead of hanging
	e := newEnv(t, Options{}, scripts(say("first"), feed.script))
	sub := newSub("u")
	first := e.send(t, sub, "one")
	if _, done := sub.textUntilDone(t, first.MessageID, 0); done.Status != "complete" {
		t.Fatalf("first answer: %+v", done)
	}
	second, err := e.h.Send(ctx, sub, "u", SendRequest{ConversationID: first.ConversationID, Content: "two"})
	if err != nil {
		t.Fatal(err)
	}
	feed <- "running "
	for _, name := range []string{first.MessageID, first.UserMessageID, persistence.NewID()} {
		if err := e.h.CancelAnswer(ctx, "u", first.ConversationID, name); err != nil {
			t.Fatalf("cancel of %s, not running: %v", name, err)
		}
	}
	var perr *protocol.Error
	if err := e.h.CancelAnswer(ctx, "intruder", first.ConversationID, second.MessageID); !errors.As(err, &perr) || perr.Code != protocol.CodeNotFound {
		t.Fatalf("another user's cancel: %v, want not_found", err)
	}
	feed <- "on"
	sub.waitText(t, second.MessageID, "running on") // the running answer was left alone
	if err := e.h.CancelAnswer(ctx, "u", first.ConversationID, second.MessageID); err != nil {
		t.Fatal(err)
	}
	if text, done := sub.textUntilDone(t, second.MessageID, int64(len("running on"))); text != "" || done.Status != "cancelled" {
		t.Fatalf("named answer ended %s with %q more, want cancelled", done.Status, text)
	}
	if err := e.h.CancelAnswer(ctx, "u", first.ConversationID, second.MessageID); err != nil {
		t.Fatalf("cancel of an ended answer: %v", err)
	}
}

// TestRegenerateRepeatedClientMessageID: a regenerate repeating a
// clientMessageId already used (its ack was lost) starts, stops and
// stores nothing: it is acked with the first one's ids and its
// connection follows that answer, while it runs and after it ended.
func TestRegenerateRepeatedClientMessageID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	feed := make(tap, 4) // buffered: a test whose answer stopped fails instead of hanging
	e := newEnv(t, Options{}, scripts(say("first"), feed.script))
	sub := newSub("u")
	sent := e.send(t, sub, "hi")
	if _, done := sub.textUntilDone(t, sent.MessageID, 0); done.Status != "complete" {
		t.Fatalf("first answer: %+v", done)
	}
	req := RegenerateRequest{ConversationID: sent.ConversationID, ClientMessageID: "regen-1"}
	first, err := e.h.Regenerate(ctx, sub, "u", req)
	if err != nil {
		t.Fatal(err)
	}
	feed <- "again "
	if m := e.stored(t, first.MessageID); m.ClientMessageID != "regen-1" {
		t.Fatalf("the new answer carries client id %q", m.ClientMessageID)
	}

	running := newSub("u")
	again, err := e.h.Regenerate(ctx, running, "u", req)
	if err != nil || again != asRepeat(first) {
		t.Fatalf("repeat while running: %+v %v, want %+v", again, err, asRepeat(first))
	}
	if ack := running.expect(t, protocol.TypeAck); ack.MessageID != first.MessageID || ack.UserMessageID != sent.UserMessageID {
		t.Fatalf("repeat acked %+v", ack)
	}
	feed <- "and again"
	close(feed)
	for _, s := range []*fakeSub{sub, running} {
		if text, done := s.textUntilDone(t, first.MessageID, 0); text != "again and again" || done.Status != "complete" {
			t.Fatalf("the first regenerate's answer ended %s with %q: stopped by its repeat?", done.Status, text)
		}
	}

	ended := newSub("u")
	if again, err := e.h.Regenerate(ctx, ended, "u", req); err != nil || again != asRepeat(first) {
		t.Fatalf("repeat after the end: %+v %v, want %+v", again, err, asRepeat(first))
	}
	ended.expect(t, protocol.TypeAck)
	if m := ended.expect(t, protocol.TypeMessage); m.Message.ID != first.MessageID || m.Message.Content != "again and again" {
		t.Fatalf("repeat after the end got %+v", m.Message)
	}
	if d := ended.expect(t, protocol.TypeDone); d.Status != "complete" {
		t.Fatalf("repeat after the end: done %+v", d)
	}
	if n := e.model.requestCount(); n != 2 {
		t.Fatalf("%d upstream requests, want 2: a repeat started an answer", n)
	}
	if msgs, _ := e.store.Messages(ctx, "u", sent.ConversationID); len(msgs) != 3 {
		t.Fatalf("%d messages stored, want 3", len(msgs))
	}
}

// TestClientMessageIDOfAnotherKind: a regenerate naming a send's
// clientMessageId, or a send a regenerate's, is refused (invalid_field)
// and starts nothing.
func TestClientMessageIDOfAnotherKind(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, Options{}, say("answer"))
	sub := newSub("u")
	sent, err := e.h.Send(ctx, sub, "u", SendRequest{Content: "hi", ClientMessageID: "send-1"})
	if err != nil {
		t.Fatal(err)
	}
	sub.textUntilDone(t, sent.MessageID, 0)
	regen, err := e.h.Regenerate(ctx, sub, "u", RegenerateRequest{ConversationID: sent.ConversationID, ClientMessageID: "regen-1"})
	if err != nil {
		t.Fatal(err)
	}
	sub.textUntilDone(t, regen.MessageID, 0)
	var perr *protocol.Error
	_, err = e.h.Regenerate(ctx, sub, "u", RegenerateRequest{ConversationID: sent.ConversationID, ClientMessageID: "send-1"})
	if !errors.As(err, &perr) || perr.Code != protocol.CodeInvalidField {
		t.Fatalf("regenerate with a send's id: %v, want invalid_field", err)
	}
	for _, conv := range []string{sent.ConversationID, ""} {
		_, err = e.h.Send(ctx, sub, "u", SendRequest{ConversationID: conv, Content: "x", ClientMessageID: "regen-1"})
		if !errors.As(err, &perr) || perr.Code != protocol.CodeInvalidField {
			t.Fatalf("send (conversation %q) with a regenerate's id: %v, want invalid_field", conv, err)
		}
	}
	if n := e.model.requestCount(); n != 2 {
		t.Fatalf("%d upstream requests, want 2", n)
	}
}

// waitText reads s's frames until the deltas of messageID add up to want,
// failing if the answer ends first.
func (s *fakeSub) waitText(t *testing.T, messageID, want string) {
	t.Helper()
	text := ""
	for text != want {
		f := s.next(t)
		switch {
		case f.Type == protocol.TypeDelta && f.MessageID == messageID:
			text += decode(t, f).Text
		case f.IsDone(messageID):
			t.Fatalf("answer %s ended (%s) after %q, want %q first", messageID, decode(t, f).Status, text, want)
		}
	}
}

// TestClusterCancelAnswer: a cancel on B that names an answer stops the
// answer running on A only when it is that one: naming another (an earlier
// answer) stops nothing, naming it stops it for every tab.
func TestClusterCancelAnswer(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, "A", "B")
	a, b := tc.hubs[0], tc.hubs[1]
	conv := tc.conversation(t)
	onA := tc.follow(t, a, "a1", conv.ID)
	onB := tc.follow(t, b, "b1", conv.ID)
	res := tc.send(t, a, onA, conv.ID, "hi")
	run := a.model.next(t)
	run.say(t, "partial ")
	onB.waitText(t, res.MessageID, "partial ")
	ctx := context.Background()
	if err := b.CancelAnswer(ctx, tc.user.ID, conv.ID, res.UserMessageID); err != nil {
		t.Fatalf("cancel naming another message: %v", err)
	}
	run.say(t, "more") // fails the test if the request was aborted
	onB.waitText(t, res.MessageID, "partial more")
	if err := b.CancelAnswer(ctx, tc.user.ID, conv.ID, res.MessageID); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*tab{onA, onB} {
		if st := s.waitDone(t, res.MessageID); st != "cancelled" {
			t.Fatalf("tab %s: done %q", s.id, st)
		}
	}
}

// TestRegenerateKeyOfAnotherConversation: a regenerate whose key a
// regenerate in another conversation used is answered with that answer
// and stops nothing: the answer running in its own conversation goes on.
func TestRegenerateKeyOfAnotherConversation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	feed := make(tap, 4)
	e := newEnv(t, Options{}, scripts(say("one"), say("again"), feed.script))
	sub := newSub("u")
	first := e.send(t, sub, "one")
	sub.textUntilDone(t, first.MessageID, 0)
	req := RegenerateRequest{ConversationID: first.ConversationID, ClientMessageID: "regen-1"}
	made, err := e.h.Regenerate(ctx, sub, "u", req)
	if err != nil {
		t.Fatal(err)
	}
	sub.textUntilDone(t, made.MessageID, 0)
	other := e.send(t, sub, "two") // runs
	feed <- "running "
	sub.waitText(t, other.MessageID, "running ")
	req.ConversationID = other.ConversationID
	if again, err := e.h.Regenerate(ctx, newSub("u"), "u", req); err != nil || again != asRepeat(made) {
		t.Fatalf("regenerate with another conversation's key: %+v %v, want %+v", again, err, asRepeat(made))
	}
	feed <- "on"
	sub.waitText(t, other.MessageID, "on")
	close(feed)
	if _, done := sub.textUntilDone(t, other.MessageID, int64(len("running on"))); done.Status != "complete" {
		t.Fatalf("the running answer ended %s", done.Status)
	}
}

// TestSendWithRunningRegenerateKey: a send naming the key of a regenerate
// whose answer is still running is refused invalid_field, as one after it
// ended is; it was answered generation_running, the key's refusal lost
// behind the running answer.
func TestSendWithRunningRegenerateKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	feed := make(tap)
	e := newEnv(t, Options{}, feed.script)
	sub := newSub("u")
	sent, err := e.h.Send(ctx, sub, "u", SendRequest{Content: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	feed <- "first"
	sub.waitText(t, sent.MessageID, "first")
	regen, err := e.h.Regenerate(ctx, sub, "u", RegenerateRequest{ConversationID: sent.ConversationID, ClientMessageID: "regen-1"})
	if err != nil {
		t.Fatal(err)
	}
	feed <- "second"
	sub.waitText(t, regen.MessageID, "second")
	var perr *protocol.Error
	_, err = e.h.Send(ctx, sub, "u", SendRequest{ConversationID: sent.ConversationID, Content: "x", ClientMessageID: "regen-1"})
	if !errors.As(err, &perr) || perr.Code != protocol.CodeInvalidField {
		t.Fatalf("send with a running regenerate's key: %v, want invalid_field", err)
	}
	close(feed)
	sub.textUntilDone(t, regen.MessageID, int64(len("second")))
}

// TestKeyStoredInAnotherConversation: a send or regenerate naming
// conversation B with a clientMessageId stored in A, which its transport
// found stored (Stored), inserts nothing: a key of its own kind is
// answered as a repeat of the request that stored it (naming A), the
// other kind's refused invalid_field. Before, the key was looked up in B
// only: each reserved B and inserted, and was answered only once the
// store refused the insert as a duplicate.
func TestKeyStoredInAnotherConversation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, Options{}, say("answer"))
	sub := newSub("u")
	a, err := e.h.Send(ctx, sub, "u", SendRequest{Content: "in A", ClientMessageID: "K"})
	if err != nil {
		t.Fatal(err)
	}
	sub.textUntilDone(t, a.MessageID, 0)
	regen, err := e.h.Regenerate(ctx, sub, "u", RegenerateRequest{ConversationID: a.ConversationID, ClientMessageID: "R"})
	if err != nil {
		t.Fatal(err)
	}
	sub.textUntilDone(t, regen.MessageID, 0)
	b := e.send(t, sub, "in B")
	sub.textUntilDone(t, b.MessageID, 0)
	var inserts atomic.Int32
	e.store.beforeInsert = func(*persistence.Message) { inserts.Add(1) }

	for _, tc := range []struct {
		name       string
		regenerate bool
		key        string
		stored     Stored
		want       Result // zero: refused invalid_field
	}{
		{"a send's key, sent again", false, "K", StoredSend, Result{ConversationID: a.ConversationID,
			UserMessageID: a.UserMessageID, MessageID: regen.MessageID, Repeated: true}},
		{"a regenerate's key, regenerated again", true, "R", StoredRegenerate, Result{ConversationID: a.ConversationID,
			UserMessageID: a.UserMessageID, MessageID: regen.MessageID, Repeated: true}},
		{"a send's key, regenerated", true, "K", StoredSend, Result{}},
		{"a regenerate's key, sent", false, "R", StoredRegenerate, Result{}},
	} {
		var res Result
		var err error
		if tc.regenerate {
			res, err = e.h.Regenerate(ctx, newSub("u"), "u", RegenerateRequest{ConversationID: b.ConversationID,
				ClientMessageID: tc.key, Stored: tc.stored})
		} else {
			res, err = e.h.Send(ctx, newSub("u"), "u", SendRequest{ConversationID: b.ConversationID, Content: "again",
				ClientMessageID: tc.key, Stored: tc.stored})
		}
		var perr *protocol.Error
		switch {
		case tc.want == Result{} && (!errors.As(err, &perr) || perr.Code != protocol.CodeInvalidField):
			t.Errorf("%s: %+v %v, want invalid_field", tc.name, res, err)
		case tc.want != Result{} && (err != nil || res != tc.want):
			t.Errorf("%s: %+v %v, want %+v", tc.name, res, err, tc.want)
		}
		if n := inserts.Swap(0); n != 0 {
			t.Errorf("%s: %d message inserts tried", tc.name, n)
		}
	}
}

// wholeReads is a store that counts the reads of a whole conversation with
// its texts (Messages, ConversationWithMessages) while armed.
type wholeReads struct {
	*memStore
	armed atomic.Bool
	reads atomic.Int32
}

func (s *wholeReads) Messages(ctx context.Context, ownerID, convID string) ([]persistence.Message, error) {
	if s.armed.Load() {
		s.reads.Add(1)
	}
	return s.memStore.Messages(ctx, ownerID, convID)
}

func (s *wholeReads) ConversationWithMessages(ctx context.Context, ownerID, id string) (persistence.Conversation, []persistence.Message, error) {
	if s.armed.Load() {
		s.reads.Add(1)
	}
	return persistence.ReadConversationApart(ctx, s.memStore, ownerID, id)
}

// TestRetryReadsNoWholeConversation: a send or regenerate whose key its
// transport found stored by the same kind of request (a retry, which
// spends none of the user's budgets) is answered without reading every
// message of a conversation with its text: its message is found by its
// key, its answer in the outline, then read alone, and the retry still
// gets that answer whole. Before, each retry read the whole conversation
// first (and a repeated send whose key was stored elsewhere read it
// again): a 5,000-exchange conversation cost 48 MB per retry.
func TestRetryReadsNoWholeConversation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &wholeReads{memStore: newMemStore()}
	h := New(Options{Store: store, Writer: &memWriter{store: store.memStore}, Model: &fakeModel{script: say("answer")}})
	runHub(t, h, nil)
	sub := newSub("u")
	a, err := h.Send(ctx, sub, "u", SendRequest{Content: "in A", ClientMessageID: "K"})
	if err != nil {
		t.Fatal(err)
	}
	sub.textUntilDone(t, a.MessageID, 0)
	regen, err := h.Regenerate(ctx, sub, "u", RegenerateRequest{ConversationID: a.ConversationID, ClientMessageID: "R"})
	if err != nil {
		t.Fatal(err)
	}
	sub.textUntilDone(t, regen.MessageID, 0)
	b, err := h.Send(ctx, sub, "u", SendRequest{Content: "in B"})
	if err != nil {
		t.Fatal(err)
	}
	sub.textUntilDone(t, b.MessageID, 0)
	store.armed.Store(true)

	want := Result{ConversationID: a.ConversationID, UserMessageID: a.UserMessageID, MessageID: regen.MessageID, Repeated: true}
	for _, tc := range []struct {
		name       string
		regenerate bool
		convID     string
		key        string
		stored     Stored
	}{
		{"a send, again in its conversation", false, a.ConversationID, "K", StoredSend},
		{"a send, again naming another conversation", false, b.ConversationID, "K", StoredSend},
		{"a send, again creating a conversation", false, "", "K", StoredSend},
		{"a regenerate, again in its conversation", true, a.ConversationID, "R", StoredRegenerate},
		{"a regenerate, again naming another conversation", true, b.ConversationID, "R", StoredRegenerate},
	} {
		retry := newSub("u")
		var res Result
		if tc.regenerate {
			res, err = h.Regenerate(ctx, retry, "u", RegenerateRequest{ConversationID: tc.convID,
				ClientMessageID: tc.key, Stored: tc.stored})
		} else {
			res, err = h.Send(ctx, retry, "u", SendRequest{ConversationID: tc.convID, Content: "again",
				ClientMessageID: tc.key, Stored: tc.stored})
		}
		if err != nil || res != want {
			t.Errorf("%s: %+v %v, want %+v", tc.name, res, err, want)
			continue
		}
		if n := store.reads.Swap(0); n != 0 {
			t.Errorf("%s: read the whole conversation %d times", tc.name, n)
		}
		retry.expect(t, protocol.TypeAck)
		if m := retry.expect(t, protocol.TypeMessage).Message; m.ID != regen.MessageID || m.Content != "answer" {
			t.Errorf("%s: sent the answer as %+v, want %s whole", tc.name, m, regen.MessageID)
		}
		retry.expect(t, protocol.TypeDone)
	}
}
