package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"chatd/persistence"
	"chatd/transport/api"
	"chatd/transport/limits"
)

// createAnswer is the answer to one POST or PATCH of a conversation.
type createAnswer struct {
	status int
	conv   persistence.Conversation
	code   string
	msg    string
}

// send answers method path with body as user.
func (e *apiEnv) send(t *testing.T, method, user, path, body string) createAnswer {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), method, e.srv.URL+path, strings.NewReader(body))
	req.Header.Set("X-User", user)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err) // Error, not Fatal: also called from goroutines
		return createAnswer{}
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var b struct {
		Conversation persistence.Conversation       `json:"conversation"`
		Error        struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Errorf("%s %s: %d %q: %v", method, path, res.StatusCode, raw, err)
	}
	return createAnswer{status: res.StatusCode, conv: b.Conversation, code: b.Error.Code, msg: b.Error.Message}
}

// stored is how many conversations user has.
func (e *apiEnv) stored(t *testing.T, user string) []persistence.Conversation {
	t.Helper()
	page, err := e.store.ListConversations(t.Context(), user, persistence.ListQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return page.Conversations
}

// TestCreateIdempotent: a creation repeated with its clientId (a retry
// after a lost answer) stores nothing and answers 200 with the first
// one's conversation, tabs told once; another user's identical key is
// theirs; without a key every creation is new.
func TestCreateIdempotent(t *testing.T) {
	t.Parallel()
	live := &recordingLive{}
	e := newAPIEnv(t, api.ConversationOptions{Live: live})
	alice, bob := e.user(t), e.user(t)

	first := e.send(t, http.MethodPost, alice, "/api/conversations", `{"title":"Plans","clientId":"new-chat-1"}`)
	if first.status != http.StatusCreated || first.conv.Title != "Plans" {
		t.Fatalf("create: %+v, want 201 with the title", first)
	}
	again := e.send(t, http.MethodPost, alice, "/api/conversations", `{"title":"Other","clientId":"new-chat-1"}`)
	if again.status != http.StatusOK || again.conv.ID != first.conv.ID || again.conv.Title != "Plans" {
		t.Fatalf("repeat: %+v, want 200 with the first conversation %s", again, first.conv.ID)
	}
	if n := len(e.stored(t, alice)); n != 1 {
		t.Fatalf("alice has %d conversations, want 1", n)
	}
	if told := live.told(); len(told) != 1 || told[0] != api.ActionCreated+" "+first.conv.ID {
		t.Fatalf("tabs told %v, want one creation", told)
	}

	theirs := e.send(t, http.MethodPost, bob, "/api/conversations", `{"clientId":"new-chat-1"}`)
	if theirs.status != http.StatusCreated || theirs.conv.ID == first.conv.ID {
		t.Fatalf("bob's create with alice's key: %+v, want 201 with a conversation of his own", theirs)
	}
	for range 2 {
		if a := e.send(t, http.MethodPost, bob, "/api/conversations", `{}`); a.status != http.StatusCreated {
			t.Fatalf("create without a key: %+v", a)
		}
	}
	if n := len(e.stored(t, bob)); n != 3 {
		t.Fatalf("bob has %d conversations, want 3", n)
	}
}

// TestCreateIdempotentConcurrent: creations sent at once with one key make
// one conversation, which every answer names.
func TestCreateIdempotentConcurrent(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, api.ConversationOptions{})
	u := e.user(t)
	const n = 8
	answers := make([]createAnswer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = e.send(t, http.MethodPost, u, "/api/conversations", `{"clientId":"burst"}`)
		}()
	}
	wg.Wait()
	created := 0
	for _, a := range answers {
		if a.status == http.StatusCreated {
			created++
		} else if a.status != http.StatusOK {
			t.Fatalf("answer %+v, want 201 or 200", a)
		}
		if a.conv.ID != answers[0].conv.ID {
			t.Fatalf("answers name %s and %s, want one conversation", a.conv.ID, answers[0].conv.ID)
		}
	}
	if stored := e.stored(t, u); created != 1 || len(stored) != 1 {
		t.Fatalf("%d answers 201 and %d conversations stored, want 1 and 1", created, len(stored))
	}
}

// TestCreateRepeatSpendsNoBudget: repeats of a creation whose clientId the
// user's conversations hold spend none of the user's budget of new
// conversations, while new creations sent at the same time still get no
// more than it: with a budget of three, one spent by the first creation,
// six repeats and ten new creations at once make exactly two more
// conversations, every repeat is answered 200 with the first one, the rest
// 429. Once the budget is spent a repeat still finds its conversation.
func TestCreateRepeatSpendsNoBudget(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, api.ConversationOptions{Creations: limits.New(limits.Options{ConversationsPerMinute: 3})})
	u := e.user(t)
	first := e.send(t, http.MethodPost, u, "/api/conversations", `{"clientId":"first"}`)
	if first.status != http.StatusCreated {
		t.Fatalf("create: %+v", first)
	}
	const repeats, fresh = 6, 10
	answers := make([]createAnswer, repeats+fresh)
	var wg sync.WaitGroup
	for i := range answers {
		body := `{"clientId":"first"}`
		if i >= repeats {
			body = fmt.Sprintf(`{"clientId":"new-%d"}`, i)
		}
		wg.Go(func() { answers[i] = e.send(t, http.MethodPost, u, "/api/conversations", body) })
	}
	wg.Wait()
	for _, a := range answers[:repeats] {
		if a.status != http.StatusOK || a.conv.ID != first.conv.ID {
			t.Fatalf("a repeat: %+v, want 200 with %s", a, first.conv.ID)
		}
	}
	count := map[int]int{}
	for _, a := range answers[repeats:] {
		count[a.status]++
		if a.status == http.StatusTooManyRequests && a.code != "rate_limited" {
			t.Fatalf("a refused creation: %+v", a)
		}
	}
	if count[http.StatusCreated] != 2 || count[http.StatusTooManyRequests] != fresh-2 {
		t.Fatalf("new creations answered %v, want 2 x 201 and %d x 429", count, fresh-2)
	}
	if n := len(e.stored(t, u)); n != 3 {
		t.Fatalf("%d conversations stored, want 3", n)
	}
	if a := e.send(t, http.MethodPost, u, "/api/conversations", `{"clientId":"first"}`); a.status != http.StatusOK || a.conv.ID != first.conv.ID {
		t.Fatalf("a repeat with the budget spent: %+v, want 200 with %s", a, first.conv.ID)
	}
}

// TestCreateClientIDRefused: a malformed clientId is refused naming it
// (and the character that is not allowed), nothing stored: longer than 64
// characters, or holding anything but visible ASCII (a single space was
// taken as a key before, and non-ASCII letters); PATCH has no clientId.
func TestCreateClientIDRefused(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, api.ConversationOptions{})
	u := e.user(t)
	cases := []struct{ name, body, code, char string }{
		{"too long", `{"clientId":"` + strings.Repeat("k", api.MaxClientIDChars+1) + `"}`, "invalid_field", ""},
		{"control character", `{"clientId":"a\u0007b"}`, "invalid_field", "U+0007"},
		{"not a string", `{"clientId":7}`, "invalid_field", ""},
		{"a single space", `{"clientId":" "}`, "invalid_field", "U+0020"},
		{"a space inside", `{"clientId":"new chat"}`, "invalid_field", "U+0020"},
		{"a tab", `{"clientId":"\tkey"}`, "invalid_field", "U+0009"},
		{"a non-ASCII letter", `{"clientId":"clé"}`, "invalid_field", "U+00E9"},
		{"a zero-width space", `{"clientId":"key\u200b"}`, "invalid_field", "U+200B"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := e.send(t, http.MethodPost, u, "/api/conversations", tc.body)
			if a.status != http.StatusBadRequest || a.code != tc.code || !strings.HasPrefix(a.msg, "clientId") || !strings.Contains(a.msg, tc.char) {
				t.Fatalf("create: %+v, want 400 %s naming clientId and %q", a, tc.code, tc.char)
			}
		})
	}
	for _, key := range []string{strings.Repeat("k", api.MaxClientIDChars), "0b8e8a4e-1f4c-4f0e-9a57-3c1d2b9e6f10", "0123456789abcdef0123456789abcdef"} {
		if a := e.send(t, http.MethodPost, u, "/api/conversations", `{"clientId":"`+key+`"}`); a.status != http.StatusCreated {
			t.Fatalf("create with clientId %q: %+v", key, a)
		}
	}
	if n := len(e.stored(t, u)); n != 3 {
		t.Fatalf("%d conversations stored, want 3", n)
	}
	c := e.stored(t, u)[0]
	if a := e.send(t, http.MethodPatch, u, "/api/conversations/"+c.ID, `{"clientId":"other"}`); a.status != http.StatusBadRequest {
		t.Fatalf("PATCH with a clientId: %+v, want 400", a)
	}
}

// TestCreateCopiesAtOnceSpendOnce: two creations with one new clientId
// sent at the same instant spend the user's budget of new conversations
// once: the second waits for the first to be stored, then finds its
// conversation and is answered 200 with it. Before, both found nothing,
// both spent, and one conversation was made.
func TestCreateCopiesAtOnceSpendOnce(t *testing.T) {
	t.Parallel()
	gate := &gatedCreates{entered: make(chan struct{}, 4), open: make(chan struct{})}
	budget := &countingBudget{second: make(chan struct{})}
	waited := make(chan struct{}, 4)
	e := newAPIEnvWith(t, api.ConversationOptions{Creations: budget},
		func(s api.ConversationStore) api.ConversationStore { gate.ConversationStore = s; return gate },
		func(h *api.Conversations) { api.OnCreationWait(h, func() { waited <- struct{}{} }) })
	defer gate.release()
	u := e.user(t)
	answers := make([]createAnswer, 2)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range answers {
		wg.Go(func() {
			<-start
			answers[i] = e.send(t, http.MethodPost, u, "/api/conversations", `{"clientId":"twice"}`)
		})
	}
	close(start)   // both at once
	<-gate.entered // one is being stored
	select {
	case <-waited: // the other waits for it
	case <-budget.second:
		t.Error("both creations spent the budget")
	}
	gate.release()
	wg.Wait()
	if n := budget.spent.Load(); n != 1 {
		t.Fatalf("the budget was spent %d times, want once", n)
	}
	got := map[int]int{}
	for _, a := range answers {
		got[a.status]++
		if a.conv.ID != answers[0].conv.ID || a.conv.ID == "" {
			t.Fatalf("answers %+v, want both naming one conversation", answers)
		}
	}
	if got[http.StatusCreated] != 1 || got[http.StatusOK] != 1 {
		t.Fatalf("answered %v, want one 201 and one 200", got)
	}
}

// gatedCreates holds every CreateConversation until release.
type gatedCreates struct {
	api.ConversationStore
	entered chan struct{}
	open    chan struct{}
	once    sync.Once
}

func (g *gatedCreates) CreateConversation(ctx context.Context, c *persistence.Conversation) error {
	g.entered <- struct{}{}
	select {
	case <-g.open:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.ConversationStore.CreateConversation(ctx, c)
}

func (g *gatedCreates) release() { g.once.Do(func() { close(g.open) }) }

// countingBudget allows every creation and counts them; second is closed
// at the second.
type countingBudget struct {
	spent  atomic.Int32
	second chan struct{}
}

func (b *countingBudget) SpendConversation(string) (limits.Spent, *limits.Refusal) {
	if b.spent.Add(1) == 2 {
		close(b.second)
	}
	return limits.Spent{}, nil
}

// TestRefusedCreateSpendsNoBudget: a creation that creates nothing
// spends none of the user's budget of new conversations: refused for its
// parameters, or failed by the store. With a budget of one, the user's
// next creation is then stored. Before, the store's failure (and a
// parameter refused against the model) kept it spent: 429.
func TestRefusedCreateSpendsNoBudget(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		body   string
		fail   bool // the store fails the creation
		status int
	}{
		{"a store that fails", `{}`, true, http.StatusInternalServerError},
		{"too many tokens", `{"params":{"maxTokens":100000000}}`, false, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			failing := &failingCreates{}
			failing.fail.Store(tc.fail)
			e := newAPIEnvWith(t, api.ConversationOptions{Creations: limits.New(limits.Options{ConversationsPerMinute: 1})},
				func(s api.ConversationStore) api.ConversationStore { failing.ConversationStore = s; return failing })
			u := e.user(t)
			if a := e.send(t, http.MethodPost, u, "/api/conversations", tc.body); a.status != tc.status {
				t.Fatalf("create: %+v, want %d", a, tc.status)
			}
			failing.fail.Store(false)
			if a := e.send(t, http.MethodPost, u, "/api/conversations", `{}`); a.status != http.StatusCreated {
				t.Fatalf("the next creation: %+v, want 201", a)
			}
		})
	}
}

// failingCreates fails every CreateConversation while fail is set.
type failingCreates struct {
	api.ConversationStore
	fail atomic.Bool
}

func (f *failingCreates) CreateConversation(ctx context.Context, c *persistence.Conversation) error {
	if f.fail.Load() {
		return errors.New("disk full")
	}
	return f.ConversationStore.CreateConversation(ctx, c)
}

// TestWrongTypeNamesTheField: a value of the wrong JSON type is refused
// 400 invalid_field naming the field as the API spells it, alike in a
// creation and a change. Before, a creation named it with the Go struct
// its fields were embedded from: "fields.params.maxTokens".
func TestWrongTypeNamesTheField(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, api.ConversationOptions{})
	u := e.user(t)
	conv := e.send(t, http.MethodPost, u, "/api/conversations", `{}`).conv
	for _, tc := range []struct{ body, field string }{
		{`{"title":5}`, "title"},
		{`{"model":["demo"]}`, "model"},
		{`{"systemPrompt":{}}`, "systemPrompt"},
		{`{"params":[]}`, "params"},
		{`{"params":{"maxTokens":1.5}}`, "params.maxTokens"},
		{`{"params":{"temperature":"hot"}}`, "params.temperature"},
		{`{"params":{"stop":"END"}}`, "params.stop"},
	} {
		t.Run(tc.body, func(t *testing.T) {
			create := e.send(t, http.MethodPost, u, "/api/conversations", tc.body)
			change := e.send(t, http.MethodPatch, u, "/api/conversations/"+conv.ID, tc.body)
			for _, a := range []createAnswer{create, change} {
				if a.status != http.StatusBadRequest || a.code != "invalid_field" || !strings.HasPrefix(a.msg, tc.field+": ") {
					t.Fatalf("answer %+v, want 400 invalid_field whose message starts with %q", a, tc.field+": ")
				}
			}
		})
	}
	if n := len(e.stored(t, u)); n != 1 {
		t.Fatalf("%d conversations stored, want 1", n)
	}
}
