package app

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chatd/hub"
	"chatd/llm"
	"chatd/persistence"
)

// snapshotRaceStore holds, once armed, the next read of a conversation (a
// send's) until an account deletion read its snapshot of the user's
// running answers; the deletion then waits for the send's outcome (its
// inserts refused, or its answer gone upstream), up to quietAfterDelete,
// before it goes on with that snapshot (StreamingConversations returns):
// the send stored its answer after the snapshot, before EndUser.
type snapshotRaceStore struct {
	persistence.Store
	armed   atomic.Bool
	reading chan struct{} // closed as the held read begins
	release chan struct{} // closed once the snapshot was read
	once    sync.Once
	outcome chan string // the first of "refused: ..." and "streamed"

	mu  sync.Mutex
	got string // the outcome the deletion waited for
}

func (s *snapshotRaceStore) Conversation(ctx context.Context, ownerID, id string) (persistence.Conversation, error) {
	if s.armed.CompareAndSwap(true, false) {
		close(s.reading)
		<-s.release
	}
	return s.Store.Conversation(ctx, ownerID, id)
}

func (s *snapshotRaceStore) StreamingConversations(ctx context.Context, ownerID string) ([]string, error) {
	ids, err := s.Store.StreamingConversations(ctx, ownerID)
	s.once.Do(func() {
		close(s.release)
		got := "nothing stored"
		select {
		case got = <-s.outcome:
		case <-time.After(quietAfterDelete):
		}
		s.mu.Lock()
		s.got = got
		s.mu.Unlock()
	})
	return ids, err
}

func (s *snapshotRaceStore) InsertMessage(ctx context.Context, m *persistence.Message) error {
	err := s.Store.InsertMessage(ctx, m)
	if err != nil {
		s.tell(fmt.Sprintf("refused: %v", err))
	}
	return err
}

// tell records the send's outcome, the first one only.
func (s *snapshotRaceStore) tell(what string) {
	select {
	case s.outcome <- what:
	default:
	}
}

// streamTap is the model, calling on as each answer goes upstream.
type streamTap struct {
	hub.Model
	on func()
}

func (m streamTap) Stream(ctx context.Context, req llm.Request, onDelta func(string)) (llm.Result, error) {
	m.on()
	return m.Model.Stream(ctx, req, onDelta)
}

// quietAfterDelete is how long a send released by an account deletion
// is given to store its answer and send it upstream (a few milliseconds
// when it is not refused) before the deletion goes on.
const quietAfterDelete = 2 * time.Second

// TestDeleteAccountStopsAnswerStartedAfterItsSnapshot: a WebSocket send
// past its session check before the account's deletion, storing its
// answer after the deletion read its snapshot of the user's running
// answers, never runs on after the deletion: the store refuses its
// messages (the user is marked), so nothing goes upstream. It used to
// stream on after the 204, for a reasoning model its whole first-token
// wait, the deleted user's prompt processed upstream.
func TestDeleteAccountStopsAnswerStartedAfterItsSnapshot(t *testing.T) {
	t.Parallel()
	store := &snapshotRaceStore{reading: make(chan struct{}), release: make(chan struct{}), outcome: make(chan string, 1)}
	var streams atomic.Int64
	e := newEnv(t, envOptions{tweak: func(c *Config) {
		store.Store, c.Store = c.Store, store
		c.Model = streamTap{Model: c.Model, on: func() {
			if streams.Add(1) == 2 { // the held send's answer
				store.tell("streamed")
			}
		}}
	}})
	u := e.register(t)
	cl := e.dial(t, u)
	ack := cl.start("hello")
	cl.until(isDone(ack.MessageID))
	convID := ack.ConversationID
	waitFor(t, "the first answer's title", func() bool { // its job reads the conversation too
		c, err := e.store.Conversation(context.Background(), u.ID, convID)
		return err == nil && c.Title != ""
	})

	store.armed.Store(true)
	cl.write(sendFrame("s2", convID, "[[fake first_delay=60s]] my secret prompt"))
	select {
	case <-store.reading:
	case <-time.After(testTimeout):
		t.Fatal("the send did not read its conversation")
	}
	e.rest(t, u.Token, http.MethodDelete, "/api/auth/me", map[string]string{"password": "correct horse battery"}, http.StatusNoContent, nil)
	store.mu.Lock()
	got := store.got
	store.mu.Unlock()
	if id := e.app.Hub().ActiveMessageID(convID); id != "" {
		t.Fatalf("after the account's deletion, answer %s runs (%s)", id, got)
	}
	waitFor(t, "no request upstream", func() bool { return e.fake.ActiveStreams() == 0 })
	if n := streams.Load(); n != 1 {
		t.Fatalf("%d answers went upstream, want 1 (the first)", n)
	}
}
