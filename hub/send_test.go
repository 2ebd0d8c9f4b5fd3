package hub

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chatd/hub/protocol"
	"chatd/llm/fakeai"
	"chatd/llm/openai"
	"chatd/persistence"
	"chatd/persistence/batch"
	"chatd/persistence/counting"
	"chatd/persistence/sqlite"
)

// oneByOne hides a store's InsertMessages and ConversationWithMessages:
// the hub stores a send's two rows with two InsertMessage calls and reads
// the conversation and its messages apart, as with a store that has
// neither (MongoDB).
type oneByOne struct{ Store }

// upstreamSaw is what the store held when the upstream received a request.
type upstreamSaw struct {
	msgs   []persistence.Message
	writes counting.Counts
	err    error
}

// TestSendStoresBeforeUpstream: when the upstream (the fake OpenAI server,
// over HTTP) receives a send's request, the user message and the answer's
// row are committed (read back through the store's read connections).
// With the SQLite store both were stored in one write, after one read of
// the conversation with its messages, in which a repeat of the client
// message id would have been found: a burst of sends costs one write and
// one read each, its insert returning the conversation for the send's
// conversation frame (persistence.TouchingInserter); a store without
// InsertMessages, ConversationWithMessages and InsertTouching gets two
// writes and three reads (the conversation read again for that frame),
// still both rows before the request. A send that creates its conversation reads only the
// client message id: the new conversation has no messages to read.
func TestSendStoresBeforeUpstream(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		wrap    func(*counting.Store) Store
		newConv bool             // the send creates its conversation
		write   map[string]int64 // store writes by method when the request arrived
		reads   int64            // store reads by then
	}{
		// The send reads the conversation with its messages in one read,
		// and looks for its client message id among them.
		{"one write", func(s *counting.Store) Store { return s }, false, map[string]int64{"InsertMessages": 1}, 1},
		// A store without either: the conversation, then its messages;
		// and, one that does not return the conversation with its
		// inserts (persistence.TouchingInserter), the conversation again
		// for the send's conversation frame.
		{"a store without InsertMessages", func(s *counting.Store) Store { return oneByOne{s} }, false,
			map[string]int64{"InsertMessage": 2}, 3},
		// A new conversation has no messages to read.
		{"a new conversation", func(s *counting.Store) Store { return s }, true,
			map[string]int64{"CreateConversation": 1, "InsertMessages": 1}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st, user := sqliteWithUser(t, "s@example.test")
			conv := persistence.Conversation{OwnerID: user.ID, Model: fakeai.DefaultModels[0], Title: "t"}
			if err := st.CreateConversation(ctx, &conv); err != nil {
				t.Fatal(err)
			}
			cs := counting.Wrap(st)

			fake := fakeai.New(fakeai.Options{})
			saw := make(chan upstreamSaw, 1)
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasSuffix(r.URL.Path, "/chat/completions") {
					writes := cs.Writes()
					var msgs []persistence.Message
					m, err := st.MessageByClientID(r.Context(), user.ID, "c1")
					if err == nil {
						msgs, err = st.Messages(r.Context(), user.ID, m.ConversationID)
					}
					saw <- upstreamSaw{msgs: msgs, writes: writes, err: err}
				}
				fake.ServeHTTP(w, r)
			}))
			t.Cleanup(func() { fake.Close(); up.Close() })

			writer := batch.New(st, batch.Options{Interval: 5 * time.Millisecond})
			h := New(Options{Store: tc.wrap(cs), Writer: writer,
				Model: openai.New(openai.Options{BaseURL: up.URL + "/v1", MaxRetries: -1})})
			runHub(t, h, func(ctx context.Context) { _ = writer.Close(ctx) })

			sub := newSub(user.ID)
			req := SendRequest{ConversationID: conv.ID, Content: "a question", ClientMessageID: "c1"}
			if tc.newConv {
				req.ConversationID = ""
			}
			res, err := h.Send(ctx, sub, user.ID, req)
			if err != nil {
				t.Fatal(err)
			}
			if _, done := sub.textUntilDone(t, res.MessageID, 0); done.Status != "complete" {
				t.Fatalf("done %+v", done)
			}
			var got upstreamSaw
			select {
			case got = <-saw:
			default:
				t.Fatal("the upstream received no request")
			}
			if got.err != nil {
				t.Fatal(got.err)
			}
			if len(got.msgs) != 2 || got.msgs[0].ID != res.UserMessageID || got.msgs[0].Content != "a question" ||
				got.msgs[1].ID != res.MessageID || got.msgs[1].ParentID != res.UserMessageID ||
				got.msgs[1].Status != persistence.StatusStreaming {
				t.Fatalf("stored when the request went upstream: %+v; want the user message %s and its streaming answer %s",
					got.msgs, res.UserMessageID, res.MessageID)
			}
			for _, m := range []string{"CreateConversation", "InsertMessages", "InsertMessage"} {
				if got.writes.ByMethod[m] != tc.write[m] {
					t.Fatalf("store writes when the request went upstream: %v, want %v", got.writes.ByMethod, tc.write)
				}
			}
			if got.writes.Reads != tc.reads {
				t.Fatalf("store reads when the request went upstream: %d, want %d", got.writes.Reads, tc.reads)
			}
		})
	}
}

// TestSendRefusedStoresNothing: when the answer's row cannot be stored,
// the user message is not stored either (they are one write), nothing
// goes upstream, and the conversation is free for the next send.
func TestSendRefusedStoresNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, Options{}, say("answer"))
	conv := persistence.Conversation{OwnerID: "u", Model: "fake"}
	if err := e.store.CreateConversation(ctx, &conv); err != nil {
		t.Fatal(err)
	}
	refused := errors.New("disk full")
	e.store.refuse = func(m *persistence.Message) error {
		if m.Role == persistence.RoleAssistant {
			return refused
		}
		return nil
	}
	sub := newSub("u")
	if _, err := e.h.Send(ctx, sub, "u", SendRequest{ConversationID: conv.ID, Content: "lost"}); !errors.Is(err, refused) {
		t.Fatalf("Send = %v, want %v", err, refused)
	}
	if msgs, _ := e.store.Messages(ctx, "u", conv.ID); len(msgs) != 0 {
		t.Fatalf("stored %+v after a refused send, want nothing", msgs)
	}
	if n := e.model.requestCount(); n != 0 {
		t.Fatalf("%d upstream requests after a refused send, want 0", n)
	}
	e.store.refuse = nil
	res, err := e.h.Send(ctx, sub, "u", SendRequest{ConversationID: conv.ID, Content: "kept"})
	if err != nil {
		t.Fatalf("the next send: %v", err)
	}
	if _, done := sub.textUntilDone(t, res.MessageID, 0); done.Status != "complete" {
		t.Fatalf("done %+v", done)
	}
	if msgs, _ := e.store.Messages(ctx, "u", conv.ID); len(msgs) != 2 || msgs[0].Content != "kept" {
		t.Fatalf("stored %+v, want the second send's two messages", msgs)
	}
}

// TestSendCreatingRefusedLeavesNothing: a send that creates its
// conversation and then cannot store its messages removes that
// conversation again and announces nothing (nothing of the failed send
// remains, not even in the list after a reload); so does one whose repeat,
// sent at the same instant, was stored first (it answers with the
// repeat's conversation). When the store refuses the removal too, the
// empty conversation stays and the failure is logged.
func TestSendCreatingRefusedLeavesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	refused := errors.New("disk full")
	tests := []struct {
		name         string
		refuseInsert bool  // the message insert fails
		repeatFirst  bool  // the same send is stored first, in another conversation
		refuseDelete error // the store cannot remove the conversation either
		wantErr      error
		wantLeft     int  // conversations left besides the repeat's
		wantLog      bool // the failed removal is logged
	}{
		{"insert refused", true, false, nil, refused, 0, false},
		{"repeat stored first", false, true, nil, nil, 0, false},
		{"removal refused too", true, false, refused, refused, 1, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			logs := &logBuffer{}
			e := newEnv(t, Options{Logger: slog.New(slog.NewTextHandler(logs, nil))}, say("answer"))
			e.store.refuseDelete = tc.refuseDelete
			if tc.refuseInsert {
				e.store.refuse = func(*persistence.Message) error { return refused }
			}
			repeat := persistence.Conversation{OwnerID: "u", Model: "fake"}
			if tc.repeatFirst {
				if err := e.store.CreateConversation(ctx, &repeat); err != nil {
					t.Fatal(err)
				}
				var stored atomic.Bool // storeExchange's inserts run this hook too
				e.store.beforeInsert = func(*persistence.Message) {
					if !stored.Swap(true) {
						storeExchange(t, e.store, repeat.ID, "c1")
					}
				}
			}
			sub := newSub("u")
			e.h.Register(sub)
			res, err := e.h.Send(ctx, sub, "u", SendRequest{Content: "lost", ClientMessageID: "c1"})
			if !errors.Is(err, tc.wantErr) || tc.wantErr != nil && err == nil {
				t.Fatalf("Send = %v, want %v", err, tc.wantErr)
			}
			if tc.repeatFirst && res.ConversationID != repeat.ID {
				t.Fatalf("the repeat answered with conversation %q, want %q", res.ConversationID, repeat.ID)
			}
			if res.Repeated != tc.repeatFirst {
				t.Fatalf("Result.Repeated = %v, want %v (the copy stored first makes this one a repeat)", res.Repeated, tc.repeatFirst)
			}
			left := slices.DeleteFunc(e.store.conversationIDs(), func(id string) bool { return id == repeat.ID })
			if len(left) != tc.wantLeft {
				t.Fatalf("%d conversations left by the failed send, want %d", len(left), tc.wantLeft)
			}
			for len(sub.frames) > 0 {
				if f := <-sub.frames; f.Type == protocol.TypeConversation {
					t.Fatalf("a failed send announced %s", f.Data)
				}
			}
			if n := e.model.requestCount(); n != 0 {
				t.Fatalf("%d upstream requests, want 0", n)
			}
			if logged := strings.Contains(logs.String(), "remove the conversation of a failed send"); logged != tc.wantLog {
				t.Fatalf("the failed removal logged: %v, want %v:\n%s", logged, tc.wantLog, logs.String())
			}
		})
	}
}

// logBuffer keeps what a logger wrote; it is safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// storeExchange stores a user message with client id cid and its
// complete answer in conversation convID of user "u".
func storeExchange(t *testing.T, s *memStore, convID, cid string) {
	t.Helper()
	user := persistence.Message{ConversationID: convID, OwnerID: "u", Role: persistence.RoleUser,
		Content: "lost", Status: persistence.StatusComplete, ClientMessageID: cid}
	if err := s.InsertMessages(context.Background(), &user); err != nil {
		t.Fatal(err)
	}
	answer := persistence.Message{ConversationID: convID, OwnerID: "u", ParentID: user.ID, Role: persistence.RoleAssistant,
		Content: "found", Status: persistence.StatusComplete}
	if err := s.InsertMessages(context.Background(), &answer); err != nil {
		t.Fatal(err)
	}
}

// TestSendRepeatedClientMessageID: a send whose clientMessageId was
// already stored starts nothing and stores nothing, and answers with what
// the first send created: found among the conversation's messages when it
// was sent into the same conversation, and through the store's refusal of
// the duplicate when it was sent into another.
func TestSendRepeatedClientMessageID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		otherConv bool // the repeat names another conversation of the user
	}{
		{"same conversation", false},
		{"another conversation", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			e := newEnv(t, Options{}, say("answer"))
			convs := make([]persistence.Conversation, 2)
			for i := range convs {
				convs[i] = persistence.Conversation{OwnerID: "u", Model: "fake"}
				if err := e.store.CreateConversation(ctx, &convs[i]); err != nil {
					t.Fatal(err)
				}
			}
			sub := newSub("u")
			req := SendRequest{ConversationID: convs[0].ID, Content: "once", ClientMessageID: "c-1"}
			first, err := e.h.Send(ctx, sub, "u", req)
			if err != nil {
				t.Fatal(err)
			}
			if _, done := sub.textUntilDone(t, first.MessageID, 0); done.Status != "complete" {
				t.Fatalf("done %+v", done)
			}
			if tc.otherConv {
				req.ConversationID = convs[1].ID
			}
			again, err := e.h.Send(ctx, newSub("u"), "u", req)
			if err != nil || again != asRepeat(first) {
				t.Fatalf("repeated send: %+v %v, want %+v", again, err, asRepeat(first))
			}
			if n := e.model.requestCount(); n != 1 {
				t.Fatalf("%d upstream requests, want 1: the repeat started an answer", n)
			}
			for i, c := range convs {
				msgs, err := e.store.Messages(ctx, "u", c.ID)
				if want := 2 * (1 - i); err != nil || len(msgs) != want {
					t.Fatalf("conversation %d holds %d messages (%v), want %d", i, len(msgs), err, want)
				}
			}
		})
	}
}

// sqliteWithUser opens a SQLite store in a temporary directory, closed at
// the test's end, with one user of that email.
func sqliteWithUser(t *testing.T, email string) (*sqlite.Store, persistence.User) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "chatd.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	user := persistence.User{Email: email, Name: "u", PasswordHash: "x"}
	if err := st.CreateUser(ctx, &user); err != nil {
		t.Fatal(err)
	}
	return st, user
}

// TestFailedCreateKeepsOtherTabsSend: a send that created its conversation
// and failed to store its message removes that conversation only while it
// is still empty. Another tab that found the new conversation (in the list
// after a reload) and sent into it once the failed send had given up its
// reservation, before the removal, keeps its message and its answer.
func TestFailedCreateKeepsOtherTabsSend(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, Options{}, say("answer"))
	refused := errors.New("disk full")
	e.store.refuse = func(m *persistence.Message) error {
		if m.Content == "lost" {
			return refused
		}
		return nil
	}
	other := newSub("u")
	e.h.Register(other)
	var kept Result
	var keptErr error
	var once sync.Once
	e.store.beforeDelete = func(id string) {
		once.Do(func() { // the other tab's send lands just before the removal
			kept, keptErr = e.h.Send(ctx, other, "u", SendRequest{ConversationID: id, Content: "kept"})
		})
	}
	if _, err := e.h.Send(ctx, nil, "u", SendRequest{Content: "lost", ClientMessageID: "c1"}); !errors.Is(err, refused) {
		t.Fatalf("Send = %v, want %v", err, refused)
	}
	if keptErr != nil {
		// Refusing the other send is fine too; then nothing may remain.
		if ids := e.store.conversationIDs(); len(ids) != 0 {
			t.Fatalf("other send refused (%v), yet %d conversations left", keptErr, len(ids))
		}
		return
	}
	if _, err := e.store.Conversation(ctx, "u", kept.ConversationID); err != nil {
		t.Fatalf("the conversation the other tab's send was stored in: %v", err)
	}
	if _, err := e.store.Message(ctx, "u", kept.UserMessageID); err != nil {
		t.Fatalf("the other tab's stored message: %v", err)
	}
}

// asRepeat is r as a repeated request is answered with it: Repeated.
func asRepeat(r Result) Result {
	r.Repeated = true
	return r
}
