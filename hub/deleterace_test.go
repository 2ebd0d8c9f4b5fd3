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

// heldInsertStore is a memStore whose inserts, once hold is set, are
// applied and then wait for release before they return: an answer's row
// stored just before a deletion, its send not yet running it.
type heldInsertStore struct {
	*memStore
	hold     bool
	inserted chan struct{} // closed once a held insert was applied
	release  chan struct{} // closed by the test to let it return
}

func (s *heldInsertStore) InsertMessage(ctx context.Context, m *persistence.Message) error {
	return s.InsertMessages(ctx, m)
}

func (s *heldInsertStore) InsertMessages(ctx context.Context, ms ...*persistence.Message) error {
	err := s.memStore.InsertMessages(ctx, ms...)
	if s.hold && err == nil {
		close(s.inserted)
		<-s.release
	}
	return err
}

// raceDeletion sends in a new conversation of user "u" (its tab sub, nil
// for none) whose model streams until stopped (causes gets the cause);
// prepared: the answer's insert is held once applied. Once the send has
// stored its answer (prepared) or returned, tell is called as a deletion
// would, in a goroutine; a prepared answer must be halted meanwhile, and
// is then let go. raceDeletion returns, once tell returned, the hub and
// the conversation.
func raceDeletion(t *testing.T, prepared bool, sub Subscriber, causes chan error, tell func(h *Hub, ms *memStore, convID string)) (*Hub, persistence.Conversation) {
	t.Helper()
	ms := newMemStore()
	store := &heldInsertStore{memStore: ms, hold: prepared, inserted: make(chan struct{}), release: make(chan struct{})}
	h := New(Options{Store: store, Writer: &memWriter{store: ms}, Model: causeModel(causes, nil), FinishTimeout: waitTimeout})
	runHub(t, h, nil)
	conv := persistence.Conversation{OwnerID: "u", Model: "fake"}
	if err := ms.CreateConversation(context.Background(), &conv); err != nil {
		t.Fatal(err)
	}
	if sub != nil {
		h.Register(sub)
		h.CancelConversation("u", conv.ID) // the API's order: nothing runs yet
	}
	sent := make(chan error, 1)
	go func() {
		_, err := h.Send(context.Background(), sub, "u", SendRequest{ConversationID: conv.ID, Content: "hi"})
		sent <- err
	}()
	if prepared {
		waitSignal(t, store.inserted, "the answer's insert")
	} else if err := <-sent; err != nil {
		t.Fatalf("Send: %v", err)
	}
	told := make(chan struct{})
	go func() {
		defer close(told)
		tell(h, ms, conv.ID)
	}()
	if prepared {
		waitFor(t, "the answer being prepared halted", func() bool { return halted(h, conv.ID) })
		close(store.release)
		if err := <-sent; err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	waitSignal(t, told, "the deletion told")
	return h, conv
}

// TestDeletionStopsAnswerStartedMeanwhile: an answer whose row was stored
// after the deleter's CancelConversation and before the store's delete (a
// send or regenerate in that moment) is ended with the deletion, running
// or still being prepared: once ConversationChanged told the deletion,
// nothing runs in the conversation, its upstream request ended as a
// deletion's (no title asked), its answer slot given back, and the tab
// got the answer's done before the deleted frame, as when
// CancelConversation stops it.
func TestDeletionStopsAnswerStartedMeanwhile(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		prepared bool // the deletion is told while the send has stored its row but not started its answer
	}{
		{name: "running"},
		{name: "being prepared", prepared: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			causes := make(chan error, 1)
			sub := newSub("u")
			h, conv := raceDeletion(t, tc.prepared, sub, causes, func(h *Hub, ms *memStore, convID string) {
				if err := ms.DeleteConversation(context.Background(), "u", convID); err != nil {
					t.Error(err)
				}
				h.ConversationChanged("u", protocol.ActionDeleted, persistence.Conversation{ID: convID})
			})
			wantAllEnded(t, h, conv.ID, causes)
			if got := doneThenDeleted(t, sub); got != "" {
				t.Fatal(got)
			}
		})
	}
}

// halted reports whether the answer being prepared in convID was halted.
func halted(h *Hub, convID string) bool {
	c := h.lookup(convID)
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.halt != nil
}

// doneThenDeleted reads sub's frames up to the deletion's and says what
// is wrong ("": nothing): the answer's done, cancelled, must come first.
func doneThenDeleted(t *testing.T, sub *fakeSub) string {
	t.Helper()
	done := ""
	for {
		f := sub.next(t)
		switch {
		case f.Type == protocol.TypeDone:
			done = decode(t, f).Status
		case protocol.ConversationAction(f) == protocol.ActionDeleted:
			if done != string(persistence.StatusCancelled) {
				return fmt.Sprintf("the deleted frame came after a done %q, want cancelled", done)
			}
			return ""
		}
	}
}

// TestClusterDeletionStopsAnswerElsewhere: the deletion's event ends the
// conversation's answer on the instance running it, when the deleter's
// stop did not (the answer stored its row after it): no more text goes
// upstream for a conversation that is gone, and its tabs get a cancelled
// done.
func TestClusterDeletionStopsAnswerElsewhere(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, "a", "b")
	a, b := tc.hubs[0], tc.hubs[1]
	conv := tc.conversation(t)
	s := tc.follow(t, a, "tab", conv.ID)
	res := tc.send(t, a, s, conv.ID, "hi")
	run := a.model.next(t)
	run.say(t, "kept ")
	tc.waitStored(t, res.MessageID, "the text checkpointed", func(m persistence.Message) bool { return m.Content == "kept " })

	if err := tc.store.DeleteConversation(context.Background(), tc.user.ID, conv.ID); err != nil {
		t.Fatal(err)
	}
	b.ConversationChanged(tc.user.ID, protocol.ActionDeleted, persistence.Conversation{ID: conv.ID})
	select {
	case <-run.aborted:
	case <-time.After(waitLimit):
		t.Fatal("the answer still streams upstream after its conversation's deletion was told")
	}
	if st := s.waitDone(t, res.MessageID); st != string(persistence.StatusCancelled) {
		t.Fatalf("done %q, want cancelled", st)
	}
}

// TestDeletionStopsRegenerateWokenBySameDone: the likeliest way into the
// race above. A regenerate waits in supersede for the running answer's
// done while a deletion's CancelConversation waits for the same done;
// both wake, and the regenerate's reads and insert land before the
// deletion's write. Once the deletion is told, the regenerate's answer
// runs no more: its upstream request ended as a deletion's.
func TestDeletionStopsRegenerateWokenBySameDone(t *testing.T) {
	t.Parallel()
	ms := newMemStore()
	store := &heldInsertStore{memStore: ms, inserted: make(chan struct{}), release: make(chan struct{})}
	close(store.release) // an insert held only says that it landed
	causes := make(chan error, 2)
	model := &fakeModel{script: func(ctx context.Context, _ llm.Request, _ func(string)) (llm.Result, error) {
		<-ctx.Done()
		causes <- context.Cause(ctx)
		return llm.Result{}, context.Cause(ctx)
	}}
	h := New(Options{Store: store, Writer: &memWriter{store: ms}, Model: model, FinishTimeout: waitTimeout})
	runHub(t, h, nil)
	conv := persistence.Conversation{OwnerID: "u", Model: "fake"}
	if err := ms.CreateConversation(context.Background(), &conv); err != nil {
		t.Fatal(err)
	}
	first, err := h.Send(context.Background(), nil, "u", SendRequest{ConversationID: conv.ID, Content: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	store.hold = true // the regenerate's insert, the next one, says when it landed
	regenerated := make(chan error, 1)
	go func() {
		_, err := h.Regenerate(context.Background(), nil, "u", RegenerateRequest{ConversationID: conv.ID, MessageID: first.MessageID})
		regenerated <- err
	}()
	ms.beforeDelete = func(string) { waitSignal(t, store.inserted, "the regenerate's insert") } // it lands first

	// DELETE /api/conversations/:id, in its order.
	h.CancelConversation("u", conv.ID)
	if err := ms.DeleteConversation(context.Background(), "u", conv.ID); err != nil {
		t.Fatal(err)
	}
	h.ConversationChanged("u", protocol.ActionDeleted, persistence.Conversation{ID: conv.ID})

	if id := h.ActiveMessageID(conv.ID); id != "" {
		t.Fatalf("after the deletion was told, answer %s still runs", id)
	}
	if err := <-regenerated; err != nil {
		t.Fatalf("Regenerate: %v", err)
	}
	// The first answer's request ended first (the regenerate's began
	// after its done), stopped by whichever of the two came first.
	for i, want := range []error{nil, errDeleting} {
		select {
		case cause := <-causes:
			if want != nil && !errors.Is(cause, want) {
				t.Fatalf("the regenerated answer's upstream request ended with %v, want %v", cause, want)
			}
			if i == 0 && !errors.Is(cause, errCancelled) && !errors.Is(cause, errSuperseded) {
				t.Fatalf("the first answer's upstream request ended with %v, want a cancel", cause)
			}
		default:
			t.Fatal("an upstream request still runs after the deletion was told")
		}
	}
	if n := h.answers.count("u"); n != 0 {
		t.Fatalf("%d answer slots held after the deletion, want 0", n)
	}
}
