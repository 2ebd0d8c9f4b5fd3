package hub

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"chatd/hub/protocol"
	"chatd/llm"
	"chatd/persistence"
)

// TestSendAfterAnswerEndedRereads: a send that read the conversation while
// its answer streamed (stored streaming, "The answer is" so far), the
// answer ending before the send reserved the conversation, sends upstream
// the answer as it ended, not the text of its checkpoint, and its message
// follows the latest message: an exchange that ended in between too is
// not forked from. A conversation deleted in between is not found, and
// nothing is sent upstream.
func TestSendAfterAnswerEndedRereads(t *testing.T) {
	const (
		head  = "The answer is"
		tail  = " 42, and here is why."
		other = "Three."
	)
	type between func(t *testing.T, h *Hub, store *readHookStore, convID string) (latest string, turns []llm.Message)
	cases := []struct {
		name    string
		between between
		code    string // the send's refusal; "": it is answered
	}{
		{name: "answer ended", between: func(*testing.T, *Hub, *readHookStore, string) (string, []llm.Message) {
			return "", nil
		}},
		{name: "exchange ended after it", between: func(t *testing.T, h *Hub, _ *readHookStore, convID string) (string, []llm.Message) {
			sub := newSub("u")
			res, err := h.Send(context.Background(), sub, "u", SendRequest{ConversationID: convID, Content: "q3", ClientMessageID: "c-3"})
			if err != nil {
				t.Fatal(err)
			}
			if text, done := sub.textUntilDone(t, res.MessageID, 0); text != other || done.Status != "complete" {
				t.Fatalf("the exchange in between: %q, %+v", text, done)
			}
			return res.MessageID, []llm.Message{{Role: llm.RoleUser, Content: "q3"}, {Role: llm.RoleAssistant, Content: other}}
		}},
		{name: "conversation deleted", code: protocol.CodeNotFound,
			between: func(t *testing.T, _ *Hub, store *readHookStore, convID string) (string, []llm.Message) {
				if err := store.DeleteConversation(context.Background(), "u", convID); err != nil {
					t.Fatal(err)
				}
				return "", nil
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			p := make(tap)
			var calls atomic.Int32
			h, store, conv := hookedHub(t, func(ctx context.Context, req llm.Request, onDelta func(string)) (llm.Result, error) {
				if calls.Add(1) == 1 {
					return p.script(ctx, req, onDelta)
				}
				return say(other)(ctx, req, onDelta)
			})
			model := h.opts.Model.(*fakeModel)
			sub1 := newSub("u")
			first, err := h.Send(ctx, sub1, "u", SendRequest{ConversationID: conv.ID, Content: "q1", ClientMessageID: "c-1"})
			if err != nil {
				t.Fatal(err)
			}
			p <- head
			for f := sub1.next(t); f.Type != protocol.TypeDelta || f.MessageID != first.MessageID; f = sub1.next(t) {
			} // its text is stored (Append before the delta)
			read, proceed := make(chan struct{}), make(chan struct{})
			release := sync.OnceFunc(func() { close(proceed) })
			t.Cleanup(release) // before the hub stops: a send held here would keep it waiting
			store.arm(func() { close(read); <-proceed })
			type out struct {
				res Result
				err error
			}
			got := make(chan out, 1)
			sub2 := newSub("u")
			go func() {
				res, err := h.Send(ctx, sub2, "u", SendRequest{ConversationID: conv.ID, Content: "q2", ClientMessageID: "c-2"})
				got <- out{res, err}
			}()
			<-read // the second send read the answer streaming, with its head
			p <- tail
			close(p)
			if text, done := sub1.textUntilDone(t, first.MessageID, int64(len(head))); text != tail || done.Status != "complete" {
				t.Fatalf("the first answer's rest: %q, %+v", text, done)
			}
			latest, turns := tc.between(t, h, store, conv.ID)
			requests := model.requestCount()
			release()
			o := <-got
			if tc.code != "" {
				var perr *protocol.Error
				if !errors.As(o.err, &perr) || perr.Code != tc.code {
					t.Fatalf("the second send: %+v, %v; want %s", o.res, o.err, tc.code)
				}
				if n := model.requestCount(); n != requests {
					t.Fatalf("%d requests upstream after the refused send, want %d", n, requests)
				}
				return
			}
			if o.err != nil {
				t.Fatal(o.err)
			}
			sub2.textUntilDone(t, o.res.MessageID, 0) // its request went upstream
			if latest == "" {
				latest = first.MessageID
			}
			if user, err := store.Message(ctx, "u", o.res.UserMessageID); err != nil || user.ParentID != latest {
				t.Fatalf("the new message's parent is %q, want the latest message %q", user.ParentID, latest)
			}
			want := slices.Concat([]llm.Message{{Role: llm.RoleUser, Content: "q1"}, {Role: llm.RoleAssistant, Content: head + tail}},
				turns, []llm.Message{{Role: llm.RoleUser, Content: "q2"}})
			model.mu.Lock()
			sent := model.requests[len(model.requests)-1].Messages
			model.mu.Unlock()
			if !slices.Equal(sent, want) {
				t.Fatalf("the second send's prompt: %+v, want %+v", sent, want)
			}
		})
	}
}

// readHookGate is an instance's store whose next read of a conversation
// with its messages, once armed, runs hook after it has read.
type readHookGate struct {
	*gateStore
	mu   sync.Mutex
	hook func()
}

func (s *readHookGate) arm(hook func()) {
	s.mu.Lock()
	s.hook = hook
	s.mu.Unlock()
}

func (s *readHookGate) ConversationWithMessages(ctx context.Context, ownerID, id string) (persistence.Conversation, []persistence.Message, error) {
	conv, msgs, err := s.gateStore.ConversationWithMessages(ctx, ownerID, id)
	s.mu.Lock()
	hook := s.hook
	s.hook = nil
	s.mu.Unlock()
	if hook != nil {
		hook()
	}
	return conv, msgs, err
}

// TestClusterSendAfterAnswerEndedRereads: a send on B that read the
// conversation while A's answer streamed (stored streaming, its text a
// checkpoint behind, maybe none), the answer ending and A releasing the
// lock (or B waiting for that, the answer stored ended) before B locked
// the conversation, sends upstream the answer as A ended it.
func TestClusterSendAfterAnswerEndedRereads(t *testing.T) {
	t.Parallel()
	cl := newTestCluster(t)
	a := cl.start(t, "A")
	var storeB *readHookGate
	b := cl.startWith(t, "B", nil, func(o *Options) { storeB = &readHookGate{gateStore: o.Store.(*gateStore)}; o.Store = storeB })
	conv := cl.conversation(t)
	tabA := cl.follow(t, a, "a1", conv.ID)
	tabB := cl.follow(t, b, "b1", conv.ID)
	first := cl.send(t, a, tabA, conv.ID, "first")
	run := a.model.next(t)
	run.say(t, "The answer is")
	read, proceed := make(chan struct{}), make(chan struct{})
	release := sync.OnceFunc(func() { close(proceed) })
	t.Cleanup(release)
	storeB.arm(func() { close(read); <-proceed })
	type out struct {
		res Result
		err error
	}
	got := make(chan out, 1)
	go func() {
		res, err := b.Send(context.Background(), tabB, cl.user.ID, SendRequest{ConversationID: conv.ID, Content: "second"})
		got <- out{res, err}
	}()
	<-read // B read the answer streaming
	run.say(t, " 42.")
	close(run.tokens)
	if st := tabB.waitDone(t, first.MessageID); st != "complete" {
		t.Fatalf("the first answer ended %q", st)
	}
	release()
	o := <-got
	if o.err != nil {
		t.Fatal(o.err)
	}
	next := b.model.next(t)
	close(next.tokens)
	want := []llm.Message{{Role: llm.RoleUser, Content: "first"}, {Role: llm.RoleAssistant, Content: "The answer is 42."},
		{Role: llm.RoleUser, Content: "second"}}
	if !slices.Equal(next.req.Messages, want) {
		t.Fatalf("B's prompt: %+v, want %+v", next.req.Messages, want)
	}
	if user := cl.message(t, o.res.UserMessageID); user.ParentID != first.MessageID {
		t.Fatalf("the new message's parent is %q, want the answer %q", user.ParentID, first.MessageID)
	}
	tabB.waitDone(t, o.res.MessageID)
}

// TestSendAfterOrphanedAnswer: a send into a conversation whose answer is
// stored streaming while nothing runs it (its instance died before its end
// was stored) reads the conversation again once it holds it, still finds
// it streaming, and goes on with the answer's stored text, waiting for
// nothing.
func TestSendAfterOrphanedAnswer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h, store, conv := hookedHub(t, say("ok"))
	user := persistence.Message{ConversationID: conv.ID, OwnerID: "u", Role: persistence.RoleUser, Content: "q1",
		Status: persistence.StatusComplete}
	if err := store.InsertMessage(ctx, &user); err != nil {
		t.Fatal(err)
	}
	orphan := persistence.Message{ConversationID: conv.ID, OwnerID: "u", ParentID: user.ID, Role: persistence.RoleAssistant,
		Content: "so far", Status: persistence.StatusStreaming}
	if err := store.InsertMessage(ctx, &orphan); err != nil {
		t.Fatal(err)
	}
	sub := newSub("u")
	res, err := h.Send(ctx, sub, "u", SendRequest{ConversationID: conv.ID, Content: "q2"})
	if err != nil {
		t.Fatal(err)
	}
	if text, done := sub.textUntilDone(t, res.MessageID, 0); text != "ok" || done.Status != "complete" {
		t.Fatalf("the answer: %q, %+v", text, done)
	}
	model := h.opts.Model.(*fakeModel)
	model.mu.Lock()
	sent := model.requests[len(model.requests)-1].Messages
	model.mu.Unlock()
	want := []llm.Message{{Role: llm.RoleUser, Content: "q1"}, {Role: llm.RoleAssistant, Content: "so far"}, {Role: llm.RoleUser, Content: "q2"}}
	if !slices.Equal(sent, want) {
		t.Fatalf("the prompt: %+v, want %+v", sent, want)
	}
	if m, err := store.Message(ctx, "u", res.UserMessageID); err != nil || m.ParentID != orphan.ID {
		t.Fatalf("the new message's parent is %q (%v), want the orphaned answer %q", m.ParentID, err, orphan.ID)
	}
}
