package hub

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chatd/hub/protocol"
	"chatd/llm"
	"chatd/persistence"
)

// laggingStore is a memStore read as through a replica that lags: once lag
// was called, the reads made without persistence.WithLatest answer from a
// copy of the store as it was then (a secondary that has not applied what
// came after), those made with it from the store itself (the primary), as
// the MongoDB store with readPreference=secondaryPreferred does.
// MessageByClientID always reads the store, as the MongoDB store's does.
// afterRead, when set, runs after each read of the replica or the store
// with the method's name, without a lock.
type laggingStore struct {
	*memStore
	afterRead func(method string)

	mu      sync.Mutex
	replica *memStore // nil: no lag
}

// lag freezes what the reads without persistence.WithLatest see from now on.
func (s *laggingStore) lag() {
	s.memStore.mu.Lock()
	r := &memStore{convs: maps.Clone(s.convs), msgs: slices.Clone(s.msgs)}
	s.memStore.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replica = r
}

// from is the copy a read made with ctx answers from.
func (s *laggingStore) from(ctx context.Context) *memStore {
	if persistence.Latest(ctx) {
		return s.memStore
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.replica != nil {
		return s.replica
	}
	return s.memStore
}

func (s *laggingStore) read(method string) {
	if s.afterRead != nil {
		s.afterRead(method)
	}
}

func (s *laggingStore) Conversation(ctx context.Context, ownerID, id string) (persistence.Conversation, error) {
	defer s.read("Conversation")
	return s.from(ctx).Conversation(ctx, ownerID, id)
}

func (s *laggingStore) Messages(ctx context.Context, ownerID, convID string) ([]persistence.Message, error) {
	defer s.read("Messages")
	return s.from(ctx).Messages(ctx, ownerID, convID)
}

func (s *laggingStore) LatestAnswer(ctx context.Context, ownerID, convID, parentID string) (persistence.Message, error) {
	defer s.read("LatestAnswer")
	return s.from(ctx).LatestAnswer(ctx, ownerID, convID, parentID)
}

func (s *laggingStore) Message(ctx context.Context, ownerID, id string) (persistence.Message, error) {
	defer s.read("Message")
	return s.from(ctx).Message(ctx, ownerID, id)
}

// newLaggingEnv is newEnv over a laggingStore (not lagging yet).
func newLaggingEnv(t *testing.T, opts Options, script func(context.Context, llm.Request, func(string)) (llm.Result, error)) (*env, *laggingStore) {
	t.Helper()
	e := &env{store: newMemStore(), model: &fakeModel{script: script}}
	e.writer = &memWriter{store: e.store}
	ls := &laggingStore{memStore: e.store}
	opts.Store, opts.Writer, opts.Model = ls, e.writer, e.model
	e.h = New(opts)
	runHub(t, e.h, nil)
	return e, ls
}

// mustConv creates a conversation of user "u" in s.
func mustConv(t *testing.T, s *memStore) persistence.Conversation {
	t.Helper()
	c := persistence.Conversation{OwnerID: "u", Model: "fake"}
	if err := s.CreateConversation(context.Background(), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestFailedCreateKeepsMessageTheReplicaLacks: a send that created its
// conversation and stored none of its messages removes it only while it is
// empty, and learns that from the latest state: a message another tab (on
// another instance) stored in it meanwhile, which a lagging replica does
// not have yet, keeps it. The read followed the URI's read preference: the
// conversation was deleted with the other tab's message.
func TestFailedCreateKeepsMessageTheReplicaLacks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e, ls := newLaggingEnv(t, Options{}, say("answer"))
	refused := errors.New("disk full")
	var other persistence.Message
	var once atomic.Bool
	e.store.beforeInsert = func(m *persistence.Message) {
		if m.Content != "lost" || once.Swap(true) {
			return
		}
		// The replica has the new conversation, not what follows.
		ls.lag()
		other = persistence.Message{ConversationID: m.ConversationID, OwnerID: "u", Role: persistence.RoleUser,
			Content: "kept", Status: persistence.StatusComplete}
		if err := e.store.InsertMessages(ctx, &other); err != nil {
			t.Error(err)
		}
	}
	e.store.refuse = func(m *persistence.Message) error {
		if m.Content == "lost" {
			return refused
		}
		return nil
	}
	if _, err := e.h.Send(ctx, nil, "u", SendRequest{Content: "lost"}); !errors.Is(err, refused) {
		t.Fatalf("Send = %v, want %v", err, refused)
	}
	if other.ID == "" {
		t.Fatal("the other tab's message was not stored")
	}
	if _, err := e.store.Message(ctx, "u", other.ID); err != nil {
		t.Fatalf("the other tab's message, stored in the failed send's conversation: %v", err)
	}
}

// TestSendAndRegenerateReadTheLatest: a send's history (the prompt sent
// upstream, the new message's parent) and a regenerate's (the answer to
// replace, its prompt) are read as the latest state, not from a replica
// lagging behind the exchange just before: that left the last exchange out
// of the prompt and stored the new message as a new root, and refused the
// regenerate of the answer just ended ("no answer to regenerate").
func TestSendAndRegenerateReadTheLatest(t *testing.T) {
	t.Parallel()
	for _, regenerate := range []bool{false, true} {
		name := "send"
		if regenerate {
			name = "regenerate"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			e, ls := newLaggingEnv(t, Options{}, say("a2"))
			conv := mustConv(t, e.store)
			ls.lag() // the replica has the conversation, not the exchange
			storeExchange(t, e.store, conv.ID, "c1")
			msgs, _ := e.store.Messages(ctx, "u", conv.ID)
			last := msgs[len(msgs)-1]
			sub := newSub("u")
			var res Result
			var err error
			if regenerate {
				res, err = e.h.Regenerate(ctx, sub, "u", RegenerateRequest{ConversationID: conv.ID})
			} else {
				res, err = e.h.Send(ctx, sub, "u", SendRequest{ConversationID: conv.ID, Content: "q2"})
			}
			if err != nil {
				t.Fatal(err)
			}
			sub.textUntilDone(t, res.MessageID, 0)
			want := []string{"lost", "found", "q2"}
			if regenerate {
				want = []string{"lost"}
			}
			if got := promptTexts(e.model); !slices.Equal(got, want) {
				t.Fatalf("prompt %q, want %q", got, want)
			}
			if !regenerate {
				if user := e.stored(t, res.UserMessageID); user.ParentID != last.ID {
					t.Fatalf("the new message's parent is %q, want the last answer %q", user.ParentID, last.ID)
				}
			}
		})
	}
}

// promptTexts returns the texts of the last request's messages.
func promptTexts(m *fakeModel) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, msg := range m.requests[len(m.requests)-1].Messages {
		if msg.Role != llm.RoleSystem {
			out = append(out, msg.Content)
		}
	}
	return out
}

// TestSupersedeReadsTheLatest: a regenerate of an answer still running
// stops it, then reads the messages again as the latest state: a replica
// lagging behind the send of that answer lacked it, and the regenerate was
// refused ("not found") after stopping it.
func TestSupersedeReadsTheLatest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	feed := make(tap)
	e, ls := newLaggingEnv(t, Options{}, feed.script)
	conv := mustConv(t, e.store)
	ls.lag()
	sub := newSub("u")
	res, err := e.h.Send(ctx, sub, "u", SendRequest{ConversationID: conv.ID, Content: "q"})
	if err != nil {
		t.Fatal(err)
	}
	feed <- "first "
	regen := make(chan error, 1)
	var again Result
	go func() {
		var err error
		again, err = e.h.Regenerate(ctx, nil, "u", RegenerateRequest{ConversationID: conv.ID, MessageID: res.MessageID})
		regen <- err
	}()
	if err := <-regen; err != nil { // it returns once the answer it stopped ended
		t.Fatalf("Regenerate: %v", err)
	}
	if _, done := sub.textUntilDone(t, res.MessageID, 0); done.Status != "cancelled" {
		t.Fatalf("superseded answer ended %s", done.Status)
	}
	close(feed)
	if _, done := sub.textUntilDone(t, again.MessageID, 0); done.Status != "complete" {
		t.Fatalf("regenerated answer ended %s", done.Status)
	}
}

// TestRepeatSendReadsTheLatest: a repeated send, found by its client
// message id (on the primary), answers with the answer stored with it and
// that answer's state, read as the latest state: a replica lagging behind
// the first send answered the ack without the answer's id, and one lagging
// behind the answer's end, read once it was found to run nowhere, left the
// tab without its done.
func TestRepeatSendReadsTheLatest(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// endsBetween: the answer is stored streaming at the first read,
		// and ends (the replica lagging behind its end) before the
		// re-read of its state.
		endsBetween bool
	}{
		{"its answer", false},
		{"its answer's end", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			e, ls := newLaggingEnv(t, Options{}, say("unused"))
			conv := mustConv(t, e.store)
			if !tc.endsBetween {
				ls.lag() // the replica has the conversation, not the send
			}
			user := persistence.Message{ConversationID: conv.ID, OwnerID: "u", Role: persistence.RoleUser,
				Content: "q", Status: persistence.StatusComplete, ClientMessageID: "c1"}
			answer := persistence.Message{ConversationID: conv.ID, OwnerID: "u", Role: persistence.RoleAssistant,
				Content: "a", Status: persistence.StatusComplete}
			if tc.endsBetween {
				answer.Status = persistence.StatusStreaming
				var once sync.Once
				ls.afterRead = func(method string) {
					// The first read of the answer's state: the
					// conversation's messages, or (a repeat) the answer
					// alone.
					if method == "Messages" || method == "LatestAnswer" {
						once.Do(func() {
							ls.lag()
							e.store.apply(persistence.MessageUpdate{ID: answer.ID, Status: persistence.StatusComplete, FinishReason: "stop"})
						})
					}
				}
			}
			if err := e.store.InsertMessages(ctx, &user); err != nil {
				t.Fatal(err)
			}
			answer.ParentID = user.ID
			if err := e.store.InsertMessages(ctx, &answer); err != nil {
				t.Fatal(err)
			}
			sub := newSub("u")
			res, err := e.h.Send(ctx, sub, "u", SendRequest{Content: "q", ClientMessageID: "c1"})
			if err != nil {
				t.Fatal(err)
			}
			if res.MessageID != answer.ID {
				t.Fatalf("the repeat answered with answer %q, want %q", res.MessageID, answer.ID)
			}
			// A repeat delivers what it has before it returns.
			if n := len(sub.frames); n != 3 {
				t.Fatalf("%d frames delivered, want 3: the ack, the answer and its done", n)
			}
			sub.expect(t, protocol.TypeAck)
			sub.expect(t, protocol.TypeMessage)
			if done := sub.expect(t, protocol.TypeDone); done.Status != "complete" {
				t.Fatalf("done %+v", done)
			}
		})
	}
}

// TestTitleReadsTheLatest: the read that decides whether a conversation
// gets a title (it has none yet) is of the latest state: a replica lagging
// behind the conversation's creation did not find it, and it stayed
// unnamed.
func TestTitleReadsTheLatest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e, ls := newLaggingEnv(t, Options{Titler: func(context.Context, llm.ModelInfo, string, string) string { return "Otters" }},
		say("Otters are weasels."))
	ls.lag() // before the conversation is created
	sub := newSub("u")
	res := e.send(t, sub, "otters?")
	sub.textUntilDone(t, res.MessageID, 0)
	if err := e.h.Shutdown(ctx); err != nil { // waits for the title's job
		t.Fatal(err)
	}
	if c, err := e.store.Conversation(ctx, "u", res.ConversationID); err != nil || c.Title != "Otters" {
		t.Fatalf("title %q (%v), want Otters", c.Title, err)
	}
}

// TestFencedReadsTheLatest: an answer whose final update the store refused
// (persistence.ErrNotStreaming: another instance ended it meanwhile) reads
// the state it was ended in as the latest state, and its done reports it:
// a replica lagging behind that end still had it streaming, and the done
// reported the answer failed ("not stored").
func TestFencedReadsTheLatest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	feed := make(tap)
	e, ls := newLaggingEnv(t, Options{}, feed.script)
	sub := newSub("u")
	res := e.send(t, sub, "q")
	feed <- "partial"
	ls.lag() // the replica has the answer streaming
	if _, err := e.store.InterruptMessage(ctx, "u", res.MessageID, "taken over", time.Now()); err != nil {
		t.Fatal(err)
	}
	e.writer.mu.Lock()
	e.writer.finishErr = persistence.ErrNotStreaming
	e.writer.mu.Unlock()
	close(feed)
	if _, done := sub.textUntilDone(t, res.MessageID, 0); done.Status != string(persistence.StatusInterrupted) {
		t.Fatalf("done %+v, want the stored end (interrupted)", done)
	}
}

// TestResumeReadsTheLatest: resuming an answer that ended reads its stored
// state as the latest state, the final one stored before its done: from a
// replica lagging behind that end, a client cut just before the done got
// the answer still streaming, without its done, or had its cursor (past
// the text the replica had) refused.
func TestResumeReadsTheLatest(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		from int64 // the client's cursor
	}{
		{"from the start", 0},
		{"past the replica's text", int64(len("part, and the rest"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			feed := make(tap)
			e, ls := newLaggingEnv(t, Options{}, feed.script)
			sub := newSub("u")
			res := e.send(t, sub, "q")
			feed <- "part"
			ls.lag() // the replica has the answer streaming
			feed <- ", and the rest"
			close(feed)
			if text, done := sub.textUntilDone(t, res.MessageID, 0); text != "part, and the rest" || done.Status != "complete" {
				t.Fatalf("answer %q, done %+v", text, done)
			}
			again := newSub("u")
			from := tc.from
			err := e.h.Subscribe(ctx, again, "u", SubscribeRequest{ConversationID: res.ConversationID, MessageID: res.MessageID, LastSeq: &from})
			if err != nil {
				t.Fatalf("resume from %d: %v", from, err)
			}
			again.expect(t, protocol.TypeAck)
			if n := len(again.frames); n == 0 {
				t.Fatal("the resume delivered nothing after its ack: no done")
			}
			if text, done := again.textUntilDone(t, res.MessageID, from); text != "part, and the rest"[from:] || done.Status != "complete" {
				t.Fatalf("resumed %q, done %+v", text, done)
			}
		})
	}
}

// TestCancelReadsTheLatest: a cancel checks its conversation in the latest
// state: one created a moment ago (on another instance: not in this hub's
// memory), which a lagging replica does not have yet, is cancelled, not
// refused as not found; another user's is still not found.
func TestCancelReadsTheLatest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e, ls := newLaggingEnv(t, Options{}, say("answer"))
	ls.lag() // the replica has no conversation yet
	c := mustConv(t, e.store)
	if err := e.h.Cancel(ctx, "u", c.ID); err != nil {
		t.Fatalf("cancel of a conversation the replica lacks: %v", err)
	}
	if err := e.h.CancelAnswer(ctx, "u", c.ID, "m1"); err != nil {
		t.Fatalf("named cancel of a conversation the replica lacks: %v", err)
	}
	var perr *protocol.Error
	if err := e.h.Cancel(ctx, "someone else", c.ID); !errors.As(err, &perr) || perr.Code != protocol.CodeNotFound {
		t.Fatalf("another user's cancel: %v, want not_found", err)
	}
}

// TestSubscribeToNewConversationReadsTheLatest: a subscribe or a resume
// that does not find its conversation on the replica looks for it in the
// latest state before answering not_found: a tab cut right after its
// conversation was created (on another instance: not in this hub's
// memory), reconnecting within a replica's lag, is not told its
// conversation is gone; another user's is still not found.
func TestSubscribeToNewConversationReadsTheLatest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	from := int64(0)
	for _, tc := range []struct {
		name string
		req  func(convID string) SubscribeRequest
	}{
		{"subscribe", func(id string) SubscribeRequest { return SubscribeRequest{ConversationID: id} }},
		{"resume", func(id string) SubscribeRequest { return SubscribeRequest{ConversationID: id, LastSeq: &from} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, ls := newLaggingEnv(t, Options{}, say("answer"))
			ls.lag() // the replica has no conversation yet
			c := mustConv(t, e.store)
			var perr *protocol.Error
			if err := e.h.Subscribe(ctx, newSub("x"), "x", tc.req(c.ID)); !errors.As(err, &perr) || perr.Code != protocol.CodeNotFound {
				t.Fatalf("another user's %s: %v, want not_found", tc.name, err)
			}
			if err := e.h.Subscribe(ctx, newSub("u"), "u", tc.req(c.ID)); err != nil {
				t.Fatalf("%s of a conversation the replica lacks: %v", tc.name, err)
			}
		})
	}
}
