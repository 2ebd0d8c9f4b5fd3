package hub

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chatd/llm"
	"chatd/persistence"
)

// causeModel is a fakeModel whose answers stream until stopped, each
// sending its context's cause to causes; the first one, once stopped,
// waits for firstEnd to close before it returns (nil: it does not).
func causeModel(causes chan<- error, firstEnd <-chan struct{}) *fakeModel {
	var once sync.Once
	return &fakeModel{script: func(ctx context.Context, _ llm.Request, _ func(string)) (llm.Result, error) {
		<-ctx.Done()
		causes <- context.Cause(ctx)
		once.Do(func() {
			if firstEnd != nil {
				<-firstEnd
			}
		})
		return llm.Result{}, context.Cause(ctx)
	}}
}

// wantAllEnded fails unless nothing of user "u" runs in convID once a
// deletion (EndUser, or a conversation's told) returned: no answer, no
// slot held, and the upstream request of the latest answer ended by the
// deletion.
func wantAllEnded(t *testing.T, h *Hub, convID string, causes <-chan error) {
	t.Helper()
	if id := h.ActiveMessageID(convID); id != "" {
		t.Fatalf("after the deletion, answer %s still runs", id)
	}
	if n := h.answers.count("u"); n != 0 {
		t.Fatalf("%d answer slots held after the deletion, want 0", n)
	}
	select {
	case cause := <-causes:
		if !errors.Is(cause, errDeleting) {
			t.Fatalf("the upstream request ended with %v, want %v", cause, errDeleting)
		}
	default:
		t.Fatal("the upstream request still runs after the deletion")
	}
}

// TestAccountDeletionStopsAnswerStartedMeanwhile: EndUser ends every
// answer of the user on this instance, not only those of the
// conversations its snapshot lists: a send past its session check before
// the revoke that stored its answer after the snapshot was read, running
// or still being prepared when EndUser comes, is ended as a deletion's
// (no title asked) before EndUser returns, its answer slot given back.
func TestAccountDeletionStopsAnswerStartedMeanwhile(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		prepared bool // EndUser comes while the send has stored its row but not started its answer
	}{
		{name: "running"},
		{name: "being prepared", prepared: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			causes := make(chan error, 1)
			h, conv := raceDeletion(t, tc.prepared, nil, causes, func(h *Hub, _ *memStore, _ string) {
				h.EndUser("u", nil) // the snapshot, read before the insert, lists nothing
			})
			wantAllEnded(t, h, conv.ID, causes)
		})
	}
}

// heldReadStore is a memStore whose next read of a conversation's
// messages, once armed, says so (reading) and waits for release.
type heldReadStore struct {
	*memStore
	armed   atomic.Bool
	reading chan struct{}
	release chan struct{}
}

func (s *heldReadStore) Messages(ctx context.Context, ownerID, convID string) ([]persistence.Message, error) {
	if s.armed.CompareAndSwap(true, false) {
		close(s.reading)
		<-s.release
	}
	return s.memStore.Messages(ctx, ownerID, convID)
}

// TestAccountDeletionStopsRegenerateWokenByItsStop: the likeliest way
// into the race above. A regenerate waits for the answer it replaces to
// end while EndUser, whose snapshot lists that answer, stops it too;
// both wake, and the regenerate, reading the messages again, reserves
// and starts its answer after EndUser's stops (here: once EndUser
// returned). It is refused, the session ended, and nothing more goes
// upstream.
func TestAccountDeletionStopsRegenerateWokenByItsStop(t *testing.T) {
	t.Parallel()
	ms := newMemStore()
	store := &heldReadStore{memStore: ms, reading: make(chan struct{}), release: make(chan struct{})}
	causes, firstEnd := make(chan error, 2), make(chan struct{})
	model := causeModel(causes, firstEnd)
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
	regenerated := make(chan error, 1)
	go func() {
		_, err := h.Regenerate(context.Background(), nil, "u", RegenerateRequest{ConversationID: conv.ID, MessageID: first.MessageID})
		regenerated <- err
	}()
	select { // the regenerate read the conversation, stopped the first answer and waits for its end
	case cause := <-causes:
		if !errors.Is(cause, errSuperseded) {
			t.Fatalf("the first answer ended with %v, want %v", cause, errSuperseded)
		}
	case <-time.After(waitTimeout):
		t.Fatal("the regenerate did not stop the first answer")
	}
	store.armed.Store(true) // the regenerate's next read: once woken
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		h.EndUser("u", []string{conv.ID})
	}()
	close(firstEnd) // the first answer's done wakes both
	waitSignal(t, store.reading, "the regenerate woken")
	waitSignal(t, ended, "EndUser")
	close(store.release)

	if err := <-regenerated; !errors.Is(err, ErrSessionEnded) {
		t.Fatalf("Regenerate after EndUser: %v, want %v", err, ErrSessionEnded)
	}
	if id := h.ActiveMessageID(conv.ID); id != "" {
		t.Fatalf("after EndUser, answer %s runs", id)
	}
	if n := model.requestCount(); n != 1 {
		t.Fatalf("%d upstream requests, want 1 (the first answer's)", n)
	}
	if n := h.answers.count("u"); n != 0 {
		t.Fatalf("%d answer slots held after EndUser, want 0", n)
	}
}

// TestClusterAccountDeletionStopsAnswerElsewhere: EndUser's close ends
// the user's answer on the instance running it, though the deleter's
// snapshot did not list it (stored after it was read): no more of the
// user's prompt goes upstream once the account is being deleted.
func TestClusterAccountDeletionStopsAnswerElsewhere(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, "a", "b")
	a, b := tc.hubs[0], tc.hubs[1]
	conv := tc.conversation(t)
	s := tc.follow(t, a, "tab", conv.ID)
	res := tc.send(t, a, s, conv.ID, "hi")
	run := a.model.next(t)
	run.say(t, "kept ")

	b.EndUser(tc.user.ID, nil)
	select {
	case <-run.aborted:
	case <-time.After(waitLimit):
		t.Fatal("the answer still streams upstream after the account's deletion began")
	}
	tc.waitStored(t, res.MessageID, "the answer stored cancelled", func(m persistence.Message) bool {
		return m.Status == persistence.StatusCancelled
	})
}
