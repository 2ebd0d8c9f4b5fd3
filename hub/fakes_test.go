package hub

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"chatd/hub/protocol"
	"chatd/llm"
	"chatd/persistence"
)

// waitTimeout bounds every wait of a hub test.
const waitTimeout = 10 * time.Second

// memStore is an in-memory Store. Hooks let a test stall or fail calls.
type memStore struct {
	mu    sync.Mutex
	convs map[string]persistence.Conversation
	msgs  []persistence.Message // insertion order
	// beforeInsert, when set, runs first in InsertMessage, without the lock.
	beforeInsert func(m *persistence.Message)
	// refuse, when set, fails the insert of a message it returns an error
	// for (and, all or none, of the messages inserted with it).
	refuse func(m *persistence.Message) error
	// refuseDelete, when set, is DeleteConversation's error.
	refuseDelete error
	// beforeDelete, when set, runs first in DeleteConversation, without the lock.
	beforeDelete func(id string)
	// refuseInterrupt, when set, is InterruptMessage's error.
	refuseInterrupt error
	// loseInterruptReply: InterruptMessage applies, then fails with
	// refuseInterrupt all the same (a reply lost).
	loseInterruptReply bool
	// beforeOmit, when set, runs first in SetOmittedMessages, without the
	// lock; an error it returns is the call's.
	beforeOmit func(ctx context.Context, id string) error
}

func newMemStore() *memStore {
	return &memStore{convs: make(map[string]persistence.Conversation)}
}

func (s *memStore) CreateConversation(_ context.Context, c *persistence.Conversation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.ID = persistence.NewID()
	c.CreatedAt, c.UpdatedAt = time.Now(), time.Now()
	s.convs[c.ID] = *c
	return nil
}

func (s *memStore) Conversation(_ context.Context, ownerID, id string) (persistence.Conversation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.convs[id]
	if !ok || c.OwnerID != ownerID {
		return persistence.Conversation{}, persistence.ErrNotFound
	}
	return c, nil
}

func (s *memStore) UpdateConversation(_ context.Context, ownerID, id string, p persistence.ConversationPatch) (persistence.Conversation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.convs[id]
	if !ok || c.OwnerID != ownerID {
		return c, persistence.ErrNotFound
	}
	if p.IfTitle != nil && c.Title != *p.IfTitle {
		return c, persistence.ErrConflict
	}
	if p.Title != nil {
		c.Title = *p.Title
	}
	if p.Model != nil {
		c.Model = *p.Model
	}
	if p.SystemPrompt != nil {
		c.SystemPrompt = *p.SystemPrompt
	}
	if p.Params != nil {
		c.Params = p.Params
	}
	s.convs[id] = c
	return c, nil
}

// DeleteConversation removes a conversation and its messages.
func (s *memStore) DeleteConversation(_ context.Context, ownerID, id string) error {
	if s.beforeDelete != nil {
		s.beforeDelete(id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refuseDelete != nil {
		return s.refuseDelete
	}
	if c, ok := s.convs[id]; !ok || c.OwnerID != ownerID {
		return persistence.ErrNotFound
	}
	delete(s.convs, id)
	s.msgs = slices.DeleteFunc(s.msgs, func(m persistence.Message) bool { return m.ConversationID == id })
	return nil
}

// conversationIDs returns the ids of every stored conversation.
func (s *memStore) conversationIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.convs))
	for id := range s.convs {
		ids = append(ids, id)
	}
	return ids
}

func (s *memStore) InsertMessage(ctx context.Context, m *persistence.Message) error {
	return s.InsertMessages(ctx, m)
}

// InsertMessages stores ms all or none (persistence.MessagesInserter),
// filling ids that are empty.
func (s *memStore) InsertMessages(_ context.Context, ms ...*persistence.Message) error {
	for _, m := range ms {
		if s.beforeInsert != nil {
			s.beforeInsert(m)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, m := range ms {
		if _, ok := s.convs[m.ConversationID]; !ok {
			return persistence.ErrNotFound
		}
		if s.refuse != nil {
			if err := s.refuse(m); err != nil {
				return err
			}
		}
		for _, old := range append(slices.Clone(s.msgs), derefs(ms[:i])...) {
			if m.ClientMessageID != "" && old.OwnerID == m.OwnerID && old.ClientMessageID == m.ClientMessageID ||
				m.ID != "" && old.ID == m.ID {
				return persistence.ErrDuplicate
			}
		}
	}
	for _, m := range ms {
		if m.ID == "" {
			m.ID = persistence.NewID()
		}
		m.CreatedAt, m.UpdatedAt = time.Now(), time.Now()
		s.msgs = append(s.msgs, *m)
		if c := s.convs[m.ConversationID]; m.CreatedAt.After(c.UpdatedAt) {
			c.UpdatedAt = m.CreatedAt
			s.convs[m.ConversationID] = c
		}
	}
	return nil
}

// insertsThenReads is what a test store intercepting InsertMessages and
// wrapping one that implements persistence.TouchingInserter does for
// InsertTouching (else the wrapped store's, promoted, would bypass its
// InsertMessages): its own InsertMessages, then a read of the
// conversation.
type insertsThenReads interface {
	InsertMessages(ctx context.Context, ms ...*persistence.Message) error
	Conversation(ctx context.Context, ownerID, id string) (persistence.Conversation, error)
}

// insertThenRead is InsertTouching for s (insertsThenReads).
func insertThenRead(ctx context.Context, s insertsThenReads, ms []*persistence.Message) (persistence.Conversation, error) {
	if err := s.InsertMessages(ctx, ms...); err != nil {
		return persistence.Conversation{}, err
	}
	last := ms[len(ms)-1]
	return s.Conversation(ctx, last.OwnerID, last.ConversationID)
}

func derefs(ms []*persistence.Message) []persistence.Message {
	out := make([]persistence.Message, len(ms))
	for i, m := range ms {
		out[i] = *m
	}
	return out
}

func (s *memStore) Message(_ context.Context, ownerID, id string) (persistence.Message, error) {
	return s.find(func(m persistence.Message) bool { return m.ID == id && m.OwnerID == ownerID })
}

func (s *memStore) MessageByClientID(_ context.Context, ownerID, cid string) (persistence.Message, error) {
	return s.find(func(m persistence.Message) bool { return m.ClientMessageID == cid && m.OwnerID == ownerID })
}

func (s *memStore) find(match func(persistence.Message) bool) (persistence.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := slices.IndexFunc(s.msgs, match); i >= 0 {
		return s.msgs[i], nil
	}
	return persistence.Message{}, persistence.ErrNotFound
}

func (s *memStore) Messages(_ context.Context, ownerID, convID string) ([]persistence.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.convs[convID]; !ok || c.OwnerID != ownerID {
		return nil, persistence.ErrNotFound
	}
	var out []persistence.Message
	for _, m := range s.msgs {
		if m.ConversationID == convID {
			out = append(out, m)
		}
	}
	return out, nil
}

func (s *memStore) LatestAnswer(_ context.Context, ownerID, convID, parentID string) (persistence.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range slices.Backward(s.msgs) {
		if m.OwnerID == ownerID && m.ConversationID == convID && m.ParentID == parentID && m.Role == persistence.RoleAssistant {
			return m, nil
		}
	}
	return persistence.Message{}, persistence.ErrNotFound
}

// InterruptMessage implements MessageInterrupter.
func (s *memStore) InterruptMessage(_ context.Context, ownerID, id, reason string, at time.Time) (persistence.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refuseInterrupt != nil && !s.loseInterruptReply {
		return persistence.Message{}, s.refuseInterrupt
	}
	for i := range s.msgs {
		m := &s.msgs[i]
		if m.ID != id || m.OwnerID != ownerID {
			continue
		}
		if m.Status == persistence.StatusStreaming {
			m.Status, m.UpdatedAt = persistence.StatusInterrupted, at
			if reason != "" {
				m.Error = reason
			}
		}
		return *m, s.refuseInterrupt
	}
	return persistence.Message{}, persistence.ErrNotFound
}

// SetOmittedMessages implements OmittedRecorder.
func (s *memStore) SetOmittedMessages(ctx context.Context, ownerID, id string, n int) error {
	if s.beforeOmit != nil {
		if err := s.beforeOmit(ctx, id); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.msgs {
		if m := &s.msgs[i]; m.ID == id && m.OwnerID == ownerID {
			m.OmittedMessages = n
			return nil
		}
	}
	return persistence.ErrNotFound
}

// apply writes u as a store would.
func (s *memStore) apply(u persistence.MessageUpdate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.msgs {
		m := &s.msgs[i]
		if m.ID != u.ID {
			continue
		}
		m.Content += u.Append
		m.Reasoning += u.AppendReasoning
		if u.Status != "" {
			m.Status, m.FinishReason, m.Usage, m.Error, m.ErrorCode = u.Status, u.FinishReason, u.Usage, u.Error, u.ErrorCode
		}
	}
}

// notDurable is a Finish error of a writer that stopped waiting for the
// final update (its ctx ended) and keeps retrying it, as batch's
// NotDurableError is: memWriter wrote all the text already.
type notDurable struct{ unwrittenText int }

func (e notDurable) Error() string                    { return "final update not durable yet: database is locked" }
func (e notDurable) Unwrap() error                    { return context.DeadlineExceeded }
func (e notDurable) Unwritten() (text, reasoning int) { return e.unwrittenText, 0 }

// memWriter is a Writer over a memStore. Finish fails with finishErr when
// set; Finish calls after close are counted as late. afterFinish, when
// set, runs once a Finish is stored, before it returns.
type memWriter struct {
	store       *memStore
	afterFinish func()
	// failedFinish, when set, runs as a Finish that fails returns.
	failedFinish func(id string)

	mu        sync.Mutex
	finishErr error
	dropText  bool // Append and AppendReasoning store nothing (text a writer dropped)
	closed    bool
	late      int
	finals    []persistence.MessageUpdate
}

func (w *memWriter) Append(id, text string) {
	if !w.dropping() {
		w.store.apply(persistence.MessageUpdate{ID: id, Append: text})
	}
}

func (w *memWriter) dropping() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.dropText
}

func (w *memWriter) AppendReasoning(id, text string) {
	w.store.apply(persistence.MessageUpdate{ID: id, AppendReasoning: text})
}

func (w *memWriter) Finish(_ context.Context, u persistence.MessageUpdate) error {
	if err := w.finish(u); err != nil {
		if w.failedFinish != nil {
			w.failedFinish(u.ID)
		}
		return err
	}
	if w.afterFinish != nil {
		w.afterFinish()
	}
	return nil
}

func (w *memWriter) finish(u persistence.MessageUpdate) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		w.late++
		return errors.New("writer closed")
	}
	if w.finishErr != nil {
		return w.finishErr
	}
	w.finals = append(w.finals, u)
	w.store.apply(u)
	return nil
}

func (w *memWriter) close() (late int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	return w.late
}

// fakeModel streams what its script says and lists one model, with a
// context window of window tokens (0: unknown).
type fakeModel struct {
	script func(ctx context.Context, req llm.Request, onDelta func(string)) (llm.Result, error)
	window int

	mu       sync.Mutex
	requests []llm.Request
}

func (m *fakeModel) Models(context.Context) ([]llm.ModelInfo, error) {
	return []llm.ModelInfo{{ID: "fake", Default: true, ContextTokens: m.window}}, nil
}

func (m *fakeModel) Stream(ctx context.Context, req llm.Request, onDelta func(string)) (llm.Result, error) {
	m.mu.Lock()
	m.requests = append(m.requests, req)
	m.mu.Unlock()
	return m.script(ctx, req, onDelta)
}

// requestCount is the number of Stream calls so far.
func (m *fakeModel) requestCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.requests)
}

// say streams pieces, then ends with stop.
func say(pieces ...string) func(context.Context, llm.Request, func(string)) (llm.Result, error) {
	return func(ctx context.Context, _ llm.Request, onDelta func(string)) (llm.Result, error) {
		for _, p := range pieces {
			if ctx.Err() != nil {
				return llm.Result{}, context.Cause(ctx)
			}
			onDelta(p)
		}
		return llm.Result{FinishReason: "stop"}, nil
	}
}

// tap is a script the test feeds piece by piece; closing it ends the
// answer with stop, cancelling the answer ends the stream with its cause.
type tap chan string

func (p tap) script(ctx context.Context, _ llm.Request, onDelta func(string)) (llm.Result, error) {
	for {
		select {
		case s, ok := <-p:
			if !ok {
				return llm.Result{FinishReason: "stop"}, nil
			}
			onDelta(s)
		case <-ctx.Done():
			return llm.Result{}, context.Cause(ctx)
		}
	}
}

// fakeSub is a Subscriber that queues every frame for the test.
type fakeSub struct {
	user   string
	id     string
	frames chan *protocol.Frame
}

func newSub(user string) *fakeSub {
	return &fakeSub{user: user, id: persistence.NewID(), frames: make(chan *protocol.Frame, 4096)}
}

func (s *fakeSub) UserID() string                   { return s.user }
func (s *fakeSub) ConnectionID() string             { return s.id }
func (s *fakeSub) Close(protocol.CloseCode, string) {}
func (s *fakeSub) Deliver(f *protocol.Frame) {
	select {
	case s.frames <- f:
	default:
		panic("fakeSub: queue full")
	}
}

// next returns the next frame, failing the test after waitTimeout.
func (s *fakeSub) next(t *testing.T) *protocol.Frame {
	t.Helper()
	select {
	case f := <-s.frames:
		return f
	case <-time.After(waitTimeout):
		t.Fatalf("no frame within %s", waitTimeout)
		return nil
	}
}

// expect returns the next frame, failing unless it has type typ.
func (s *fakeSub) expect(t *testing.T, typ string) frame {
	t.Helper()
	f := s.next(t)
	if f.Type != typ {
		t.Fatalf("got a %s frame %s, want %s", f.Type, f.Data, typ)
	}
	return decode(t, f)
}

// textUntilDone collects the delta text up to the done of messageID,
// checking that the deltas continue each other exactly.
func (s *fakeSub) textUntilDone(t *testing.T, messageID string, from int64) (string, frame) {
	t.Helper()
	text := ""
	for {
		f := s.next(t)
		switch {
		case f.Type == protocol.TypeDelta && f.MessageID == messageID:
			d := decode(t, f)
			if d.Seq != from+int64(len(text))+int64(len(d.Text)) {
				t.Fatalf("delta seq %d after %d bytes (from %d) of %d bytes: not contiguous", d.Seq, len(text), from, len(d.Text))
			}
			text += d.Text
		case f.IsDone(messageID):
			d := decode(t, f)
			if d.Seq != from+int64(len(text)) {
				t.Fatalf("done seq %d, want %d", d.Seq, from+int64(len(text)))
			}
			return text, d
		}
	}
}

// quiet fails if a frame is queued.
func (s *fakeSub) quiet(t *testing.T) {
	t.Helper()
	select {
	case f := <-s.frames:
		t.Fatalf("unexpected %s frame %s", f.Type, f.Data)
	default:
	}
}

// frame is a decoded server frame.
type frame struct {
	Type           string                   `json:"type"`
	ConversationID string                   `json:"conversationId"`
	MessageID      string                   `json:"messageId"`
	UserMessageID  string                   `json:"userMessageId"`
	Seq            int64                    `json:"seq"`
	Text           string                   `json:"text"`
	Status         string                   `json:"status"`
	FinishReason   string                   `json:"finishReason"`
	Error          *protocol.ErrorBody      `json:"error"`
	Message        persistence.Message      `json:"message"`
	Action         string                   `json:"action"`
	Conversation   persistence.Conversation `json:"conversation"`
	Code           string                   `json:"code"`
	Omitted        int                      `json:"omittedMessages"`
}

func decode(t *testing.T, f *protocol.Frame) frame {
	t.Helper()
	var d frame
	if err := json.Unmarshal(f.Data, &d); err != nil {
		t.Fatalf("decode %s: %v", f.Data, err)
	}
	return d
}

// env is a hub over the fakes.
type env struct {
	h      *Hub
	store  *memStore
	writer *memWriter
	model  *fakeModel
}

// newEnv starts a hub; opts.Store, Writer and Model are the fakes. The hub
// is shut down when the test ends.
func newEnv(t *testing.T, opts Options, script func(context.Context, llm.Request, func(string)) (llm.Result, error)) *env {
	t.Helper()
	e := &env{store: newMemStore(), model: &fakeModel{script: script}}
	e.writer = &memWriter{store: e.store}
	opts.Store, opts.Writer, opts.Model = e.store, e.writer, e.model
	e.h = New(opts)
	runHub(t, e.h, nil)
	return e
}

// runHub runs h until the test ends, then shuts it down, waits for Run to
// return and, when set, calls then (to close the hub's writer, say).
func runHub(t *testing.T, h *Hub, then func(context.Context)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = h.Run(ctx) }()
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), waitTimeout)
		defer scancel()
		_ = h.Shutdown(sctx)
		cancel()
		<-done
		if then != nil {
			then(sctx)
		}
	})
}

// send sends content in a new conversation of user "u" for sub.
func (e *env) send(t *testing.T, sub Subscriber, content string) Result {
	t.Helper()
	res, err := e.h.Send(context.Background(), sub, "u", SendRequest{Content: content})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	return res
}

// stored returns a stored message.
func (e *env) stored(t *testing.T, id string) persistence.Message {
	t.Helper()
	m, err := e.store.Message(context.Background(), "u", id)
	if err != nil {
		t.Fatalf("stored message %s: %v", id, err)
	}
	return m
}
