package api_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"chatd/persistence"
	"chatd/transport/api"
	"chatd/transport/auth"
)

// hangingStore is a conversation store that does not answer: every call
// waits for its context to end.
type hangingStore struct{ api.ConversationStore }

func (hangingStore) CreateConversation(ctx context.Context, _ *persistence.Conversation) error {
	<-ctx.Done()
	return ctx.Err()
}

func (hangingStore) Conversation(ctx context.Context, _, _ string) (persistence.Conversation, error) {
	<-ctx.Done()
	return persistence.Conversation{}, ctx.Err()
}

func (hangingStore) ListConversations(ctx context.Context, _ string, _ persistence.ListQuery) (persistence.ConversationPage, error) {
	<-ctx.Done()
	return persistence.ConversationPage{}, ctx.Err()
}

func (hangingStore) UpdateConversation(ctx context.Context, _, _ string, _ persistence.ConversationPatch) (persistence.Conversation, error) {
	<-ctx.Done()
	return persistence.Conversation{}, ctx.Err()
}

func (hangingStore) DeleteConversation(ctx context.Context, _, _ string) error {
	<-ctx.Done()
	return ctx.Err()
}

func (hangingStore) MessagePage(ctx context.Context, _, _ string, _ persistence.PageQuery) (persistence.MessagePage, error) {
	<-ctx.Done()
	return persistence.MessagePage{}, ctx.Err()
}

// TestRequestTimeout: every conversation route but the export gives up on
// a store that does not answer after RequestTimeout and answers 503
// unavailable with Retry-After, where it waited for as long as the store
// hung (here, until the client gave up).
func TestRequestTimeout(t *testing.T) {
	t.Parallel()
	quiet := slog.New(slog.DiscardHandler)
	gin.SetMode(gin.TestMode)
	r := gin.New()
	authed := r.Group("/api", func(c *gin.Context) { auth.SetIdentity(c, auth.Identity{UserID: persistence.NewID()}) })
	api.NewConversations(hangingStore{}, api.ConversationOptions{Logger: quiet, RequestTimeout: 20 * time.Millisecond}).Routes(authed)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	id := persistence.NewID()
	for _, tc := range []struct{ method, path, body string }{
		{http.MethodGet, "/api/conversations", ""},
		{http.MethodGet, "/api/conversations?q=x", ""},
		{http.MethodPost, "/api/conversations", `{"title":"t"}`},
		{http.MethodGet, "/api/conversations/" + id, ""},
		{http.MethodGet, "/api/conversations/" + id + "/messages", ""},
		{http.MethodPatch, "/api/conversations/" + id, `{"title":"t"}`},
		{http.MethodDelete, "/api/conversations/" + id, ""},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			t.Parallel()
			// The client's own bound only keeps a regression from hanging the test.
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("on a store that does not answer: %v", err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" || !strings.Contains(string(body), `"unavailable"`) {
				t.Fatalf("%d %s (Retry-After %q), want 503 unavailable with Retry-After", res.StatusCode, body, res.Header.Get("Retry-After"))
			}
		})
	}
}

// hangingLive is a hub whose bus does not answer: asking for the running
// answer waits for the caller's context to end. It records who asked.
type hangingLive struct {
	api.NoLive
	asked chan string
}

func (l hangingLive) ActiveAnswer(ctx context.Context, owner, _ string) string {
	l.asked <- owner
	select {
	case <-ctx.Done():
	case <-time.After(hubBusTimeout): // the hub's own bound
	}
	return ""
}

// hubBusTimeout stands for the hub's own bound on asking the bus (5 s in
// the hub), longer here: far from the request's bound, which a loaded
// machine may overrun by a second or two.
const hubBusTimeout = 10 * time.Second

// TestActiveAnswerBoundedByTheRequest: GET /api/conversations/:id asks the
// hub for the running answer with the request's context, so a bus that
// does not answer holds the request no longer than RequestTimeout (503),
// where the hub's own bound (5 s) held it whatever the request's; and it
// asks for the conversation's owner only.
func TestActiveAnswerBoundedByTheRequest(t *testing.T) {
	t.Parallel()
	live := hangingLive{asked: make(chan string, 1)}
	// The request's bound also covers the conversation's read before the
	// bus is asked: 2 s, room for a loaded machine.
	e := newAPIEnv(t, api.ConversationOptions{Live: live, RequestTimeout: 2 * time.Second})
	owner := e.user(t)
	c, _ := e.conversation(t, owner, "hello")
	start := time.Now()
	res, body := e.get(t, owner, "/api/conversations/"+c.ID)
	if took := time.Since(start); took >= hubBusTimeout {
		t.Fatalf("answered after %v: the request waited out the hub's own bound", took)
	}
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "unavailable") {
		t.Fatalf("answer %d %s, want 503 unavailable once the request's bound passed", res.StatusCode, body)
	}
	select {
	case got := <-live.asked:
		if got != owner {
			t.Fatalf("asked for the running answer of %q, want the owner %q", got, owner)
		}
	default: // it asks before it answers
		t.Fatal("the bus was never asked for the running answer")
	}
}
