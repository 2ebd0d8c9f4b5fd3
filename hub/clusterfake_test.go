package hub

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"chatd/hub/protocol"
	"chatd/llm"
	"chatd/persistence"
	"chatd/persistence/batch"
	"chatd/persistence/sqlite"
)

// This file is the test rig of the cluster tests: several hubs in one
// process, each with its own model and batching writer (as separate
// processes would have), sharing one real SQLite store (the shared
// database) and one MemCluster (the bus) with faults to inject.

// waitLimit bounds every wait of the cluster tests.
const waitLimit = 10 * time.Second

// scriptModel is a Model whose answers the test writes: every Stream call
// becomes a scriptRun the test feeds token by token.
type scriptModel struct {
	runs chan *scriptRun
}

// scriptRun is one upstream request in flight.
type scriptRun struct {
	req     llm.Request
	tokens  chan string   // the test sends tokens; closing it ends the answer (stop)
	aborted chan struct{} // closed when the request's context ended it
}

func newScriptModel() *scriptModel { return &scriptModel{runs: make(chan *scriptRun, 16)} }

func (m *scriptModel) Models(context.Context) ([]llm.ModelInfo, error) {
	return []llm.ModelInfo{{ID: "script", Name: "script", Default: true}}, nil
}

func (m *scriptModel) Stream(ctx context.Context, req llm.Request, onDelta func(string)) (llm.Result, error) {
	r := &scriptRun{req: req, tokens: make(chan string), aborted: make(chan struct{})}
	m.runs <- r
	for {
		select {
		case <-ctx.Done():
			close(r.aborted)
			return llm.Result{}, ctx.Err()
		case tok, ok := <-r.tokens:
			if !ok {
				return llm.Result{FinishReason: "stop"}, nil
			}
			if thought, ok := strings.CutPrefix(tok, "think:"); ok && req.OnReasoning != nil {
				req.OnReasoning(thought) // a token "think:x" is reasoning "x"
				continue
			}
			onDelta(tok)
		}
	}
}

// next returns the next upstream request this model received.
func (m *scriptModel) next(t *testing.T) *scriptRun {
	t.Helper()
	select {
	case r := <-m.runs:
		return r
	case <-time.After(waitLimit):
		t.Fatal("no upstream request came")
		return nil
	}
}

// say streams tokens into the run.
func (r *scriptRun) say(t *testing.T, tokens ...string) {
	t.Helper()
	for _, tok := range tokens {
		select {
		case r.tokens <- tok:
		case <-r.aborted:
			t.Fatalf("token %q: the request was aborted", tok)
		case <-time.After(waitLimit):
			t.Fatalf("token %q: the model stream does not read", tok)
		}
	}
}

// tab is a Subscriber that records what it is handed.
type tab struct {
	user, id string

	mu     sync.Mutex
	frames []*protocol.Frame
	closed protocol.CloseCode
	wake   chan struct{}
}

func newTab(user, id string) *tab { return &tab{user: user, id: id, wake: make(chan struct{}, 1)} }

func (s *tab) UserID() string       { return s.user }
func (s *tab) ConnectionID() string { return s.id }
func (s *tab) Deliver(f *protocol.Frame) {
	s.mu.Lock()
	s.frames = append(s.frames, f)
	s.mu.Unlock()
	s.poke()
}

func (s *tab) Close(code protocol.CloseCode, _ string) {
	s.mu.Lock()
	if s.closed == 0 {
		s.closed = code
	}
	s.mu.Unlock()
	s.poke()
}

func (s *tab) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *tab) snapshot() ([]*protocol.Frame, protocol.CloseCode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*protocol.Frame(nil), s.frames...), s.closed
}

// waitUntil waits until cond holds for the tab's frames and close code.
func (s *tab) waitUntil(t *testing.T, what string, cond func(frames []*protocol.Frame, closed protocol.CloseCode) bool) {
	t.Helper()
	waitWoken(t, s.wake, func() bool { return cond(s.snapshot()) }, func() string {
		frames, closed := s.snapshot()
		return fmt.Sprintf("tab %s: %s did not happen; closed %d, frames:\n%s", s.id, what, closed, dump(frames))
	})
}

// waitWoken waits until cond holds, checking it again each time wake
// fires; after waitLimit it fails the test with what failed says.
func waitWoken(t *testing.T, wake <-chan struct{}, cond func() bool, failed func() string) {
	t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for !cond() {
		select {
		case <-wake:
		case <-deadline.C:
			t.Fatal(failed())
		}
	}
}

// waitText waits until the tab has text of answer id, checked as answer does.
func (s *tab) waitText(t *testing.T, id, text string) {
	t.Helper()
	s.waitUntil(t, fmt.Sprintf("text %q of %s", text, id), func(fs []*protocol.Frame, _ protocol.CloseCode) bool {
		got, _, err := answerOf(fs, id, 0)
		return err == nil && got == text
	})
}

// waitDone waits for the done frame of answer id and returns its status.
func (s *tab) waitDone(t *testing.T, id string) string {
	t.Helper()
	s.waitUntil(t, "done of "+id, func(fs []*protocol.Frame, _ protocol.CloseCode) bool {
		return countType(fs, id, protocol.TypeDone) > 0
	})
	frames, _ := s.snapshot()
	for _, f := range frames {
		if f.IsDone(id) {
			return field(t, f, "status")
		}
	}
	return ""
}

// answerOf rebuilds answer id from frames as a client does, from a cursor
// of from bytes: every delta must continue the text exactly (no gap, no
// duplicate), and at most one done may come, last, with the final seq.
func answerOf(frames []*protocol.Frame, id string, from int64) (text string, dones int, err error) {
	var b strings.Builder
	seq := from
	for _, f := range frames {
		if f.MessageID != id {
			continue
		}
		switch f.Type {
		case protocol.TypeDelta:
			if dones > 0 {
				return "", dones, fmt.Errorf("delta after done")
			}
			piece, derr := deltaText(f)
			if derr != nil {
				return "", dones, derr
			}
			if f.Seq != seq+int64(len(piece)) {
				return "", dones, fmt.Errorf("delta seq %d after %d with %d bytes: gap or duplicate", f.Seq, seq, len(piece))
			}
			b.WriteString(piece)
			seq = f.Seq
		case protocol.TypeDone:
			dones++
		}
	}
	return b.String(), dones, nil
}

func countType(frames []*protocol.Frame, id, typ string) int {
	n := 0
	for _, f := range frames {
		if f.Type == typ && (id == "" || f.MessageID == id) {
			n++
		}
	}
	return n
}

func dump(frames []*protocol.Frame) string {
	var b strings.Builder
	for _, f := range frames {
		fmt.Fprintf(&b, "  %s\n", f.Data)
	}
	return b.String()
}

// field reads a top-level string field of a frame's JSON.
func field(t *testing.T, f *protocol.Frame, name string) string {
	t.Helper()
	key := `"` + name + `":"`
	i := strings.Index(string(f.Data), key)
	if i < 0 {
		return ""
	}
	rest := string(f.Data[i+len(key):])
	return rest[:strings.IndexByte(rest, '"')]
}

// testCluster is n hubs sharing one store and one MemCluster.
type testCluster struct {
	mem   *MemCluster
	store *sqlite.Store
	hubs  []*testHub
	user  persistence.User
}

// testHub is one instance: its hub, model, writer and bus member.
type testHub struct {
	*Hub
	name   string
	model  *scriptModel
	writer *batch.Writer
	bus    *MemBus
	store  *gateStore
	// crashed: the test killed it; its shutdown at cleanup does not wait
	// to publish (a killed process would not).
	crashed bool
}

func newTestCluster(t *testing.T, names ...string) *testCluster {
	t.Helper()
	store, user := sqliteWithUser(t, "u-"+persistence.NewID()+"@example.test")
	tc := &testCluster{mem: NewMemCluster(), store: store, user: user}
	for _, name := range names {
		tc.hubs = append(tc.hubs, tc.start(t, name))
	}
	return tc
}

func (tc *testCluster) start(t *testing.T, name string) *testHub {
	t.Helper()
	return tc.startWith(t, name, nil, nil)
}

// startWith is start with the hub's bus wrapped by wrap and its options
// changed by opts (nil: as they are).
func (tc *testCluster) startWith(t *testing.T, name string, wrap func(*MemBus) Bus, opts func(*Options)) *testHub {
	t.Helper()
	return tc.startHooked(t, name, wrap, opts, nil)
}

// startHooked is startWith with hook (nil: none) called on the hub
// before it runs, to set its test hooks.
func (tc *testCluster) startHooked(t *testing.T, name string, wrap func(*MemBus) Bus, opts func(*Options), hook func(*Hub)) *testHub {
	t.Helper()
	th := &testHub{name: name, model: newScriptModel(), bus: tc.mem.Join(name), store: &gateStore{Store: tc.store}}
	th.writer = batch.New(th.store, batch.Options{Interval: 5 * time.Millisecond,
		OnFenced:  func(id string) { th.EndedElsewhere(id) }, // as cmd/chatd/app wires them
		OnDropped: func(id, owner string, err error) { th.FinalDropped(id, owner, err) }})
	var bus Bus = th.bus
	if wrap != nil {
		bus = wrap(th.bus)
	}
	o := Options{Store: th.store, Writer: th.writer, Model: th.model, Bus: bus,
		CoalesceInterval: 2 * time.Millisecond, FinishTimeout: 5 * time.Second,
		LockCheckTimeout: 3 * time.Second} // a cut-off instance's check ends within a test's patience
	if opts != nil {
		opts(&o)
	}
	th.Hub = New(o)
	if hook != nil {
		hook(th.Hub)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = th.Run(ctx)
	}()
	t.Cleanup(func() {
		grace := waitLimit
		if th.crashed {
			grace = 50 * time.Millisecond
		}
		sctx, scancel := context.WithTimeout(context.Background(), grace)
		defer scancel()
		_ = th.Shutdown(sctx)
		cancel()
		<-done
		wctx, wcancel := context.WithTimeout(context.Background(), waitLimit)
		defer wcancel()
		_ = th.writer.Close(wctx)
	})
	return th
}

// gateStore is the shared store as one instance sees it; with gate set,
// inserting an answer waits for it, so a test can act while an answer is
// being prepared.
type gateStore struct {
	*sqlite.Store
	mu      sync.Mutex
	gate    chan struct{} // closed by the test to let the insert go on
	waiting chan struct{} // closed when an answer insert waits at the gate
	// interrupts and updates, when set, make InterruptMessage and
	// ApplyMessageUpdates (checkpoints) wait until they are closed.
	interrupts, updates chan struct{}
	// failBulk makes ApplyMessageUpdates fail (failBulkWrites).
	failBulk bool
}

// errBulkRefused is the error of the bulk writes a gateStore fails.
var errBulkRefused = errors.New("database or disk is full (test)")

// failBulkWrites makes ApplyMessageUpdates fail, or work again: a store
// that takes no bulk write while its small writes (InterruptMessage) still
// fit, as a nearly full disk.
func (s *gateStore) failBulkWrites(fail bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failBulk = fail
}

// holdInterrupts makes InterruptMessage wait until the returned release is called.
func (s *gateStore) holdInterrupts() (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.interrupts = make(chan struct{})
	return sync.OnceFunc(func() { close(s.interrupts) })
}

// holdUpdates makes checkpoints wait until the returned release is called.
func (s *gateStore) holdUpdates() (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.updates = make(chan struct{})
	return sync.OnceFunc(func() { close(s.updates) })
}

func (s *gateStore) wait(gate *chan struct{}) {
	s.mu.Lock()
	g := *gate
	s.mu.Unlock()
	if g != nil {
		<-g
	}
}

func (s *gateStore) InterruptMessage(ctx context.Context, ownerID, id, reason string, at time.Time) (persistence.Message, error) {
	s.wait(&s.interrupts)
	return s.Store.InterruptMessage(ctx, ownerID, id, reason, at)
}

func (s *gateStore) ApplyMessageUpdates(ctx context.Context, updates []persistence.MessageUpdate) ([]string, error) {
	s.wait(&s.updates)
	s.mu.Lock()
	fail := s.failBulk
	s.mu.Unlock()
	if fail {
		return nil, errBulkRefused
	}
	return s.Store.ApplyMessageUpdates(ctx, updates)
}

// hold makes the next answer inserts wait until the returned release is called.
func (s *gateStore) hold() (waiting <-chan struct{}, release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate, s.waiting = make(chan struct{}), make(chan struct{})
	return s.waiting, func() { close(s.gate) }
}

func (s *gateStore) InsertMessage(ctx context.Context, m *persistence.Message) error {
	s.gateAnswer(m)
	return s.Store.InsertMessage(ctx, m)
}

// InsertMessages is the send's one write of the user message and the answer.
func (s *gateStore) InsertMessages(ctx context.Context, ms ...*persistence.Message) error {
	for _, m := range ms {
		s.gateAnswer(m)
	}
	return s.Store.InsertMessages(ctx, ms...)
}

// InsertTouching is InsertMessages returning the conversation, as the
// hub stores a send (persistence.TouchingInserter).
func (s *gateStore) InsertTouching(ctx context.Context, ms ...*persistence.Message) (persistence.Conversation, error) {
	for _, m := range ms {
		s.gateAnswer(m)
	}
	return s.Store.InsertTouching(ctx, ms...)
}

// gateAnswer waits, when hold was called, before an answer's insert.
func (s *gateStore) gateAnswer(m *persistence.Message) {
	s.mu.Lock()
	gate, waiting := s.gate, s.waiting
	s.mu.Unlock()
	if gate != nil && m.Role == persistence.RoleAssistant {
		close(waiting)
		<-gate
	}
}

// conversation creates a conversation of the test user.
func (tc *testCluster) conversation(t *testing.T) persistence.Conversation {
	t.Helper()
	c := persistence.Conversation{OwnerID: tc.user.ID, Model: "script"}
	if err := tc.store.CreateConversation(context.Background(), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// follow opens a tab on h that follows conversation convID.
func (tc *testCluster) follow(t *testing.T, h *testHub, name, convID string) *tab {
	t.Helper()
	s := newTab(tc.user.ID, name)
	h.Register(s)
	t.Cleanup(func() { h.Detach(s) })
	if err := h.Subscribe(context.Background(), s, tc.user.ID, SubscribeRequest{ConversationID: convID}); err != nil {
		t.Fatalf("subscribe on %s: %v", h.name, err)
	}
	return s
}

// send asks h for an answer in convID from tab s.
func (tc *testCluster) send(t *testing.T, h *testHub, s Subscriber, convID, content string) Result {
	t.Helper()
	res, err := h.Send(context.Background(), s, tc.user.ID, SendRequest{ConversationID: convID, Content: content})
	if err != nil {
		t.Fatalf("send on %s: %v", h.name, err)
	}
	return res
}

// message reads a stored message.
// wantCancelled waits for every tab's done of answer id and wants each
// cancelled, and the answer stored cancelled with text.
func (tc *testCluster) wantCancelled(t *testing.T, id, text string, tabs ...*tab) {
	t.Helper()
	for _, s := range tabs {
		if st := s.waitDone(t, id); st != "cancelled" {
			t.Fatalf("tab %s: done %q, want cancelled", s.id, st)
		}
	}
	if m := tc.message(t, id); m.Status != persistence.StatusCancelled || m.Content != text {
		t.Fatalf("stored %q %q, want cancelled %q", m.Status, m.Content, text)
	}
}

func (tc *testCluster) message(t *testing.T, id string) persistence.Message {
	t.Helper()
	m, err := tc.store.Message(context.Background(), tc.user.ID, id)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// waitStored polls the store until cond holds for message id.
func (tc *testCluster) waitStored(t *testing.T, id, what string, cond func(persistence.Message) bool) persistence.Message {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		m := tc.message(t, id)
		if cond(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %s: %s did not happen: status %q content %q", id, what, m.Status, m.Content)
		}
		time.Sleep(2 * time.Millisecond) // polling the database, not synchronising
	}
}

// waitUnlocked waits until no answer holds the conversation's lock.
func (tc *testCluster) waitUnlocked(t *testing.T, convID string) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		a, held := tc.mem.Lock(convID)
		if !held {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("conversation %s still locked by %+v", convID, a)
		}
		time.Sleep(2 * time.Millisecond) // polling, not synchronising
	}
}

// errCode is the protocol error code of err, or "".
func errCode(err error) string {
	var perr *protocol.Error
	if errors.As(err, &perr) {
		return perr.Code
	}
	return ""
}
