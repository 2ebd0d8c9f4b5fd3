package hub

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chatd/llm"
	"chatd/persistence"
)

// titleOf is the stored title of the conversation convID of user "u".
func (e *env) titleOf(t *testing.T, convID string) string {
	t.Helper()
	c, err := e.store.Conversation(context.Background(), "u", convID)
	if err != nil {
		t.Fatal(err)
	}
	return c.Title
}

// TestTitleBorrowsAnAnswerSlot: a title request counts against its user's
// MaxAnswersPerUser, and gives its slot to the user's next send at once:
// the send is not refused, the title request is cut short (its title
// then falls back), and the answers and titles asked for at once stay
// within the bound.
func TestTitleBorrowsAnAnswerSlot(t *testing.T) {
	t.Parallel()
	asked := make(chan context.Context, 1)
	var calls atomic.Int64
	titler := func(ctx context.Context, _ llm.ModelInfo, _, _ string) string {
		if calls.Add(1) > 1 {
			return "Sea otters"
		}
		asked <- ctx
		<-ctx.Done() // a slow upstream: only its cut ends it
		return "cut short"
	}
	e := newEnv(t, Options{MaxAnswersPerUser: 1, Titler: titler}, holdUnlessQuick)
	sub := newSub("u")
	first := e.send(t, sub, "otters quick")
	if _, done := sub.textUntilDone(t, first.MessageID, 0); done.Status != "complete" {
		t.Fatalf("answer ended %+v", done)
	}
	var title context.Context
	select {
	case title = <-asked:
	case <-time.After(waitTimeout):
		t.Fatal("no title request after the first answer")
	}
	if n := e.h.answers.count("u"); n != 1 {
		t.Fatalf("%d answer slots counted while the title is asked for, want 1 (the title's)", n)
	}

	second, err := e.h.Send(context.Background(), sub, "u", SendRequest{Content: "and sea otters?"})
	if err != nil {
		t.Fatalf("send while a title holds the slot: %v", err)
	}
	select {
	case <-title.Done():
	case <-time.After(waitTimeout):
		t.Fatal("the title request goes on beside the send's answer")
	}
	waitFor(t, "the cut title stored", func() bool { return e.titleOf(t, first.ConversationID) == "cut short" })
	if n := e.h.answers.count("u"); n != 1 {
		t.Fatalf("%d answer slots counted with one answer running, want 1", n)
	}
	if err := e.h.CancelAnswer(context.Background(), "u", second.ConversationID, second.MessageID); err != nil {
		t.Fatal(err)
	}
	e.h.work.Wait()
	if n := e.h.answers.count("u"); n != 0 {
		t.Fatalf("%d answer slots counted after everything ended, want 0", n)
	}
}

// heldTitleRead holds the title job's read of one conversation (a read of
// the latest state) until released.
type heldTitleRead struct {
	Store
	mu      sync.Mutex
	convID  string
	entered chan struct{}
	release chan struct{}
}

func (s *heldTitleRead) hold(convID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.convID = convID
}

func (s *heldTitleRead) Conversation(ctx context.Context, ownerID, id string) (persistence.Conversation, error) {
	s.mu.Lock()
	held := id == s.convID && persistence.Latest(ctx)
	if held {
		s.convID = ""
	}
	s.mu.Unlock()
	if held {
		close(s.entered)
		<-s.release
	}
	return s.Store.Conversation(ctx, ownerID, id)
}

// TestTitleWithoutAFreeSlot: a title job finding its user's answer slots
// all taken by answers asks the model nothing and names the conversation
// after the prompt's first words.
func TestTitleWithoutAFreeSlot(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	titler := func(context.Context, llm.ModelInfo, string, string) string {
		calls.Add(1)
		return "Otters"
	}
	first, second := make(tap), make(tap)
	var streams atomic.Int64
	script := func(ctx context.Context, req llm.Request, onDelta func(string)) (llm.Result, error) {
		if streams.Add(1) == 1 {
			return first.script(ctx, req, onDelta)
		}
		return second.script(ctx, req, onDelta)
	}
	e := &env{store: newMemStore(), model: &fakeModel{script: script}}
	e.writer = &memWriter{store: e.store}
	st := &heldTitleRead{Store: e.store, entered: make(chan struct{}), release: make(chan struct{})}
	e.h = New(Options{Store: st, Writer: e.writer, Model: e.model, MaxAnswersPerUser: 1, Titler: titler})
	runHub(t, e.h, nil)
	defer close(second)

	sub := newSub("u")
	const prompt = "tell me about the otters of the river"
	res := e.send(t, sub, prompt)
	st.hold(res.ConversationID)
	close(first)
	if _, done := sub.textUntilDone(t, res.MessageID, 0); done.Status != "complete" {
		t.Fatalf("answer ended %+v", done)
	}
	select {
	case <-st.entered:
	case <-time.After(waitTimeout):
		t.Fatal("no title job after the answer")
	}
	e.send(t, sub, "and sea otters?") // its answer holds the user's one slot
	close(st.release)
	want := llm.FallbackTitle(prompt)
	waitFor(t, "the fallback title stored", func() bool { return e.titleOf(t, res.ConversationID) == want })
	if n := calls.Load(); n != 0 {
		t.Fatalf("%d title requests with no answer slot free, want 0", n)
	}
}
