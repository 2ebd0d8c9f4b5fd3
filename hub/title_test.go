package hub

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chatd/llm"
	"chatd/llm/fakeai"
	"chatd/llm/openai"
	"chatd/persistence"
)

// TestTitleOnlyAfterAUsableAnswer (issue 10, item 14): a conversation is
// named after a complete answer, with one more upstream request; a failed
// answer asks the upstream for nothing more.
func TestTitleOnlyAfterAUsableAnswer(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, prompt string
		wantStatus   string
		wantRequests int
		wantTitle    bool
	}{
		{"complete", "tell me about otters", "complete", 2, true},
		{"failed", "tell me about otters [[fake fault=500]]", "error", 1, false},
		{"failed mid-answer", "tell me about otters [[fake fault=error_mid after=2]]", "error", 1, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := fakeai.Start(t, fakeai.Options{})
			client := openai.New(openai.Options{BaseURL: srv.URL, MaxRetries: -1})
			e := &env{store: newMemStore()}
			e.writer = &memWriter{store: e.store}
			e.h = New(Options{Store: e.store, Writer: e.writer, Model: client,
				Titler: (&llm.Titler{Streamer: client}).TitleFor})
			go func() { _ = e.h.Run(t.Context()) }()

			sub := newSub("u")
			res := e.send(t, sub, tc.prompt)
			if _, done := sub.textUntilDone(t, res.MessageID, 0); done.Status != tc.wantStatus {
				t.Fatalf("answer ended %s (%+v), want %s", done.Status, done.Error, tc.wantStatus)
			}
			e.h.work.Wait() // the generation, then the title job it starts, if any
			t.Cleanup(func() { _ = e.h.Shutdown(context.Background()) })
			if n := len(srv.Recorded()); n != tc.wantRequests {
				t.Fatalf("%d upstream chat requests, want %d", n, tc.wantRequests)
			}
			conv, err := e.store.Conversation(context.Background(), "u", res.ConversationID)
			if err != nil {
				t.Fatal(err)
			}
			if (conv.Title != "") != tc.wantTitle {
				t.Fatalf("title %q, want one: %v", conv.Title, tc.wantTitle)
			}
		})
	}
}

// convReads counts the conversation reads that reach a store.
type convReads struct {
	Store
	n atomic.Int64
}

func (s *convReads) Conversation(ctx context.Context, ownerID, id string) (persistence.Conversation, error) {
	s.n.Add(1)
	return s.Store.Conversation(ctx, ownerID, id)
}

// TestTitleLooksOnlyAtUntitled: the end of an answer in a conversation
// that had a title when the answer started reads nothing more from the
// store and asks the upstream for no title; in one without a title the
// hub looks the conversation up (the user may have named it meanwhile)
// and names it.
func TestTitleLooksOnlyAtUntitled(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, title  string
		wantReads    bool
		wantRequests int
	}{
		{"titled", "named by its user", false, 1},
		{"untitled", "", true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			// The upstream holds the answer until the send's own reads are
			// counted out.
			fake := fakeai.New(fakeai.Options{})
			release := make(chan struct{})
			free := sync.OnceFunc(func() { close(release) })
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasSuffix(r.URL.Path, "/chat/completions") {
					<-release
				}
				fake.ServeHTTP(w, r)
			}))
			t.Cleanup(func() { free(); fake.Close(); up.Close() })
			client := openai.New(openai.Options{BaseURL: up.URL + "/v1", MaxRetries: -1})
			mem := newMemStore()
			conv := persistence.Conversation{OwnerID: "u", Model: fakeai.DefaultModels[0], Title: tc.title}
			if err := mem.CreateConversation(ctx, &conv); err != nil {
				t.Fatal(err)
			}
			st := &convReads{Store: mem}
			h := New(Options{Store: st, Writer: &memWriter{store: mem}, Model: client,
				Titler: (&llm.Titler{Streamer: client}).TitleFor})
			go func() { _ = h.Run(t.Context()) }()
			t.Cleanup(func() { _ = h.Shutdown(context.Background()) })

			sub := newSub("u")
			res, err := h.Send(ctx, sub, "u", SendRequest{ConversationID: conv.ID, Content: "tell me about otters"})
			if err != nil {
				t.Fatal(err)
			}
			st.n.Store(0) // what the send read
			free()
			if _, done := sub.textUntilDone(t, res.MessageID, 0); done.Status != "complete" {
				t.Fatalf("answer ended %+v", done)
			}
			h.work.Wait() // the generation, then the title job it starts, if any
			if reads := st.n.Load(); (reads > 0) != tc.wantReads {
				t.Errorf("%d conversation reads after the answer started, want some: %v", reads, tc.wantReads)
			}
			if n := len(fake.Recorded()); n != tc.wantRequests {
				t.Errorf("%d upstream chat requests, want %d", n, tc.wantRequests)
			}
			got, err := mem.Conversation(ctx, "u", conv.ID)
			if err != nil {
				t.Fatal(err)
			}
			if tc.title != "" && got.Title != tc.title || tc.title == "" && got.Title == "" {
				t.Errorf("title %q after the answer (was %q)", got.Title, tc.title)
			}
		})
	}
}

// TestTitleOncePerConversation: answers finishing in a conversation while
// its title is still being asked for (a slow title request) ask for no
// other; once that request ended without a title, the next answer asks
// again, and its title is the one rename.
func TestTitleOncePerConversation(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	asked := make(chan struct{}, 8)
	release := make(chan struct{})
	titler := func(ctx context.Context, _ llm.ModelInfo, _, _ string) string {
		if calls.Add(1) > 1 {
			return "Otters"
		}
		asked <- struct{}{}
		select { // the first request is slow, then fails
		case <-release:
		case <-ctx.Done():
		}
		return ""
	}
	e := newEnv(t, Options{Titler: titler}, say("Otters ", "are ", "weasels."))
	sub := newSub("u")
	e.h.Register(sub)
	answer := func(convID, content string) Result {
		t.Helper()
		res, err := e.h.Send(context.Background(), sub, "u", SendRequest{ConversationID: convID, Content: content})
		if err != nil {
			t.Fatal(err)
		}
		if _, done := sub.textUntilDone(t, res.MessageID, 0); done.Status != "complete" {
			t.Fatalf("answer ended %+v", done)
		}
		return res
	}
	conv := answer("", "tell me about otters").ConversationID
	select {
	case <-asked:
	case <-time.After(waitTimeout):
		t.Fatal("no title request after the first answer")
	}
	answer(conv, "and sea otters?")
	answer(conv, "and river otters?")
	// Every answer has ended, and has started its title job if it would.
	waitFor(t, "the answers' ends", func() bool { return e.h.live.Load() == 0 })
	close(release)
	e.h.work.Wait()
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d title requests while one ran, want 1", n)
	}
	answer(conv, "and giant otters?")
	e.h.work.Wait()
	renames := 0
	for len(sub.frames) > 0 {
		if f := decode(t, <-sub.frames); f.Type == "conversation" && f.Action == "updated" && f.Conversation.Title != "" {
			renames++
		}
	}
	if n := calls.Load(); n != 2 || renames != 1 {
		t.Fatalf("%d title requests and %d renames in all, want 2 and 1", n, renames)
	}
}

// renameBeforeWrite is a store on which the user renames a conversation
// (to title, when set) or deletes it (delete) at the last moment before
// the title job's write lands: after every read the job makes.
type renameBeforeWrite struct {
	Store
	title  string
	delete bool
	once   sync.Once
}

func (s *renameBeforeWrite) UpdateConversation(ctx context.Context, ownerID, id string, p persistence.ConversationPatch) (persistence.Conversation, error) {
	s.once.Do(func() {
		var err error
		switch {
		case s.delete:
			err = s.Store.DeleteConversation(ctx, ownerID, id)
		case s.title != "":
			_, err = s.Store.UpdateConversation(ctx, ownerID, id, persistence.ConversationPatch{Title: &s.title})
		}
		if err != nil {
			panic(err)
		}
	})
	return s.Store.UpdateConversation(ctx, ownerID, id, p)
}

// TestTitleLosesToARenameUpToTheWrite: a rename by the user that lands
// between the title job's reads and its write stays, and the owner's tabs
// hear of no title from the job; without a rename the job's title is
// stored and announced. Neither a rename nor a deletion meanwhile is
// logged as a failure.
func TestTitleLosesToARenameUpToTheWrite(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, rename, want string
		delete, announced  bool
	}{
		{"renamed meanwhile", "My otters", "My otters", false, false},
		{"deleted meanwhile", "", "", true, false},
		{"not renamed", "", "Otters", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mem := newMemStore()
			var logs strings.Builder
			var logMu sync.Mutex
			h := New(Options{Store: &renameBeforeWrite{Store: mem, title: tc.rename, delete: tc.delete}, Writer: &memWriter{store: mem},
				Model:  &fakeModel{script: say("Otters ", "are ", "weasels.")},
				Titler: func(context.Context, llm.ModelInfo, string, string) string { return "Otters" },
				Logger: slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logs}, &slog.HandlerOptions{Level: slog.LevelWarn}))})
			runHub(t, h, nil)
			sub := newSub("u")
			h.Register(sub)
			res, err := h.Send(context.Background(), sub, "u", SendRequest{Content: "tell me about otters"})
			if err != nil {
				t.Fatal(err)
			}
			if _, done := sub.textUntilDone(t, res.MessageID, 0); done.Status != "complete" {
				t.Fatalf("answer ended %+v", done)
			}
			h.work.Wait() // the generation, then its title job
			conv, err := mem.Conversation(context.Background(), "u", res.ConversationID)
			if err != nil && !tc.delete {
				t.Fatal(err)
			}
			if conv.Title != tc.want {
				t.Errorf("title %q, want %q", conv.Title, tc.want)
			}
			logMu.Lock()
			if strings.Contains(logs.String(), "title") {
				t.Errorf("the job logged a failure:\n%s", logs.String())
			}
			logMu.Unlock()
			announced := false
			for len(sub.frames) > 0 {
				if f := decode(t, <-sub.frames); f.Type == "conversation" && f.Conversation.Title == "Otters" {
					announced = true
				}
			}
			if announced != tc.announced {
				t.Errorf("the job's title announced: %v, want %v", announced, tc.announced)
			}
		})
	}
}

// lockedWriter serialises writes to w (a test's log sink).
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestDeletionAsksNoTitle: deleting a conversation (CancelConversation,
// as DELETE /api/conversations/:id and account deletion call it) while its
// first answer streams stores the answer cancelled and asks the upstream
// for no title; a title request already running for a conversation being
// deleted is aborted. The answer's end started a title job that sent the
// user's prompt and the partial answer upstream, a paid request with text
// the user had just asked to delete. So does an answer ending as the
// deletion begins (its title job started after the abort, read the
// conversation before the store's delete and asked), or stopped while
// its send was prepared and then deleted (it ends cancelled, not by the
// deletion); the deletion's frame (ConversationChanged) aborts the title
// request running here.
func TestDeletionAsksNoTitle(t *testing.T) {
	t.Parallel()
	t.Run("answer streaming", func(t *testing.T) {
		t.Parallel()
		var calls atomic.Int64
		titler := func(context.Context, llm.ModelInfo, string, string) string { calls.Add(1); return "Otters" }
		pieces := make(tap, 1)
		e := newEnv(t, Options{Titler: titler}, pieces.script)
		sub := newSub("u")
		res := e.send(t, sub, "my secret prompt")
		pieces <- "partial answer"
		e.h.CancelConversation("u", res.ConversationID)
		if _, done := sub.textUntilDone(t, res.MessageID, 0); done.Status != "cancelled" {
			t.Fatalf("answer ended %+v, want cancelled", done)
		}
		e.h.work.Wait() // the generation, and the title job it would start
		if n := calls.Load(); n != 0 {
			t.Fatalf("%d title requests for a conversation being deleted, want 0", n)
		}
	})
	t.Run("title request running", func(t *testing.T) {
		t.Parallel()
		asked, aborted := make(chan struct{}), make(chan struct{})
		titler := func(ctx context.Context, _ llm.ModelInfo, _, _ string) string {
			close(asked)
			<-ctx.Done()
			close(aborted)
			return ""
		}
		e := newEnv(t, Options{Titler: titler}, say("Otters ", "are ", "weasels."))
		sub := newSub("u")
		res := e.send(t, sub, "tell me about otters")
		if _, done := sub.textUntilDone(t, res.MessageID, 0); done.Status != "complete" {
			t.Fatalf("answer ended %+v", done)
		}
		select {
		case <-asked:
		case <-time.After(waitTimeout):
			t.Fatal("no title request after the answer")
		}
		e.h.CancelConversation("u", res.ConversationID)
		select {
		case <-aborted:
		case <-time.After(waitTimeout):
			t.Fatal("the title request goes on for a conversation being deleted")
		}
	})
	t.Run("deleted as its answer ends", func(t *testing.T) {
		t.Parallel()
		// The DELETE begins once the answer's done went out and its
		// conversation let it go, before the answer's end looks at its title.
		deletionAsksNoTitle(t, func(e *env, convID string) { e.h.CancelConversation("u", convID) })
	})
	t.Run("stopped while being prepared, then deleted", func(t *testing.T) {
		t.Parallel()
		// The Stop's cause stays (the deletion's does not replace it), so the
		// answer ends cancelled, not by the deletion.
		deletionAsksNoTitleWhilePreparing(t)
	})
	t.Run("deletion told while a title request runs", func(t *testing.T) {
		t.Parallel()
		// The store's delete and its frame alone, as after a DELETE whose
		// CancelConversation came before the title job began.
		asked := make(chan context.Context, 1)
		titler := func(ctx context.Context, _ llm.ModelInfo, _, _ string) string { asked <- ctx; <-ctx.Done(); return "" }
		e := newEnv(t, Options{Titler: titler}, say("Otters ", "are ", "weasels."))
		sub := newSub("u")
		res := e.send(t, sub, "tell me about otters")
		if _, done := sub.textUntilDone(t, res.MessageID, 0); done.Status != "complete" {
			t.Fatalf("answer ended %+v", done)
		}
		var ctx context.Context
		select {
		case ctx = <-asked:
		case <-time.After(waitTimeout):
			t.Fatal("no title request after the answer")
		}
		deleteAndTell(t, e, res.ConversationID)
		if ctx.Err() == nil {
			t.Fatal("the title request goes on once the conversation's deletion was told")
		}
	})
}

// TestAccountDeletionAsksNoTitle: an account deleted (EndUser, then the
// store's delete) as an answer of the user ends, after its done went out
// and before its end looks at the title, asks the upstream for no title:
// the title job started after EndUser's abort, read the conversation
// before the store deleted it and sent the user's prompt upstream.
func TestAccountDeletionAsksNoTitle(t *testing.T) {
	t.Parallel()
	deletionAsksNoTitle(t, func(e *env, convID string) { e.h.EndUser("u", []string{convID}) })
}

// finishHook runs hook as an answer's end is recorded (GenerationFinished):
// after its done went out and its conversation let it go, before its end
// looks at the conversation's title (maybeTitle).
type finishHook struct {
	nopMetrics
	hook func()
}

func (m finishHook) GenerationFinished(string, string, string, time.Duration, int, time.Duration) {
	m.hook()
}

// deletionAsksNoTitle runs a first answer whose end begins a deletion
// (begin: CancelConversation, EndUser), then deletes the conversation and
// tells it, and checks that no title job started, that the upstream was
// asked for no title and that any title request's context was done once
// the deletion was told.
func deletionAsksNoTitle(t *testing.T, begin func(e *env, convID string)) {
	t.Helper()
	var calls atomic.Int64
	asked := make(chan context.Context, 1)
	titler := func(ctx context.Context, _ llm.ModelInfo, _, _ string) string {
		calls.Add(1)
		asked <- ctx
		<-ctx.Done()
		return ""
	}
	var e *env
	var convID atomic.Value
	pieces := make(tap, 1)
	e = newEnv(t, Options{Titler: titler, Metrics: finishHook{hook: func() { begin(e, convID.Load().(string)) }}}, pieces.script)
	sub := newSub("u")
	res := e.send(t, sub, "my secret prompt")
	convID.Store(res.ConversationID)
	close(pieces)
	if _, done := sub.textUntilDone(t, res.MessageID, 0); done.Status != "complete" {
		t.Fatalf("answer ended %+v", done)
	}
	waitFor(t, "the answer's end", func() bool { return e.h.live.Load() == 0 }) // maybeTitle ran
	e.h.titles.mu.Lock()
	_, started := e.h.titles.running[res.ConversationID]
	e.h.titles.mu.Unlock()
	if started {
		t.Error("a title job started for a conversation being deleted")
	}
	deleteAndTell(t, e, res.ConversationID)
	select {
	case ctx := <-asked:
		if ctx.Err() == nil {
			t.Error("the title request goes on once the conversation's deletion was told")
		}
	default:
	}
	idle := make(chan struct{})
	go func() { e.h.work.Wait(); close(idle) }() // the title job, if any
	select {
	case <-idle:
	case <-time.After(waitTimeout):
		t.Fatal("a title job goes on once the conversation's deletion was told")
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("%d title requests for a conversation being deleted, want 0", n)
	}
}

// deletionAsksNoTitleWhilePreparing stops a first answer while its send
// is being prepared (storing the user's message), begins the
// conversation's deletion (CancelConversation) and lets the send go on:
// its answer ends cancelled and starts no title job.
func deletionAsksNoTitleWhilePreparing(t *testing.T) {
	t.Helper()
	var calls atomic.Int64
	titler := func(context.Context, llm.ModelInfo, string, string) string { calls.Add(1); return "Otters" }
	e := newEnv(t, Options{Titler: titler}, say("Otters ", "are ", "weasels."))
	entered, release := make(chan string, 1), make(chan struct{})
	e.store.beforeInsert = func(m *persistence.Message) {
		if m.Role == persistence.RoleUser {
			entered <- m.ConversationID
			<-release
		}
	}
	sub := newSub("u")
	sent := make(chan Result, 1)
	go func() {
		res, err := e.h.Send(context.Background(), sub, "u", SendRequest{Content: "my secret prompt"})
		if err != nil {
			t.Error(err)
		}
		sent <- res
	}()
	convID := <-entered
	if err := e.h.Cancel(context.Background(), "u", convID); err != nil {
		t.Fatal(err)
	}
	c := e.h.lookup(convID)
	c.mu.Lock()
	halted := errors.Is(c.halt, errCancelled) && !errors.Is(c.halt, errDeleting)
	c.mu.Unlock()
	if !halted {
		t.Fatal("the Stop did not halt the answer being prepared")
	}
	e.h.CancelConversation("u", convID)
	close(release)
	res := <-sent
	if _, done := sub.textUntilDone(t, res.MessageID, 0); done.Status != "cancelled" {
		t.Fatalf("answer ended %+v, want cancelled", done)
	}
	waitFor(t, "the answer's end", func() bool { return e.h.live.Load() == 0 }) // maybeTitle ran
	e.h.work.Wait()
	if n := calls.Load(); n != 0 {
		t.Errorf("%d title requests for a conversation being deleted, want 0", n)
	}
	deleteAndTell(t, e, convID)
}

// deleteAndTell is the rest of a DELETE /api/conversations/:id once
// CancelConversation returned: the store deletes, the owner is told.
func deleteAndTell(t *testing.T, e *env, convID string) {
	t.Helper()
	if err := e.store.DeleteConversation(context.Background(), "u", convID); err != nil {
		t.Fatal(err)
	}
	e.h.ConversationChanged("u", "deleted", persistence.Conversation{ID: convID})
}
