package api_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"chatd/persistence"
	"chatd/persistence/sqlite"
	"chatd/transport/api"
	"chatd/transport/auth"
)

// cutStore fails reading the text of one message, as a database that
// goes away in the middle of an export does.
type cutStore struct {
	*sqlite.Store
	failID string
}

func (s cutStore) ReadContent(ctx context.Context, owner, id string, fn func(string) error) error {
	if id == s.failID {
		return errors.New("sqlite: database is locked")
	}
	return s.Store.ReadContent(ctx, owner, id, fn)
}

// TestExportCutShortIsNotComplete: an export that fails after its first
// bytes were sent ends without the end of its chunked body, so the
// client's download fails instead of ending as if it were whole; one that
// fails before anything was sent answers a JSON error, not a download.
// Before, the handler returned normally either way and the client saved a
// truncated file (a JSON export missing its closing brackets, a Markdown
// export missing its last messages, or an empty one) as a complete
// download.
func TestExportCutShortIsNotComplete(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, api.ConversationOptions{})
	owner := e.user(t)
	c, ids := e.conversation(t, owner, "first question", strings.Repeat("a long first answer ", 4000), "second question", "lost answer")
	for _, tc := range []struct {
		name, format string
		fail         int // the message whose text cannot be read
		sent         bool
	}{
		{"json, cut after bytes were sent", "json", 3, true},
		{"markdown, cut after bytes were sent", "markdown", 3, true},
		{"json, failed before any byte", "json", 0, false},
		{"markdown, failed before any byte", "markdown", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := cutServer(t, cutStore{Store: e.store, failID: ids[tc.fail]})
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/api/conversations/"+c.ID+"/export?format="+tc.format, nil)
			req.Header.Set("X-User", owner)
			res, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body)
			if !tc.sent {
				if res.StatusCode != http.StatusInternalServerError || res.Header.Get("Content-Disposition") != "" ||
					!strings.Contains(string(body), `"code":"internal"`) || err != nil {
					t.Fatalf("export failing before any byte: %d %q %s (%v), want a 500 JSON error", res.StatusCode, res.Header.Get("Content-Disposition"), body, err)
				}
				return
			}
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d", res.StatusCode)
			}
			if err == nil {
				t.Fatalf("an export cut short downloaded as whole (%d bytes, no error)", len(body))
			}
			if !strings.Contains(string(body), "a long first answer") {
				t.Fatalf("the first bytes were not sent before the failure (%d bytes)", len(body))
			}
		})
	}
}

// cutServer serves the conversation routes over store.
func cutServer(t *testing.T, store api.ConversationStore) *httptest.Server {
	gin.SetMode(gin.TestMode)
	r := gin.New()
	authed := r.Group("/api", func(c *gin.Context) { auth.SetIdentity(c, auth.Identity{UserID: c.GetHeader("X-User")}) })
	api.NewConversations(store, api.ConversationOptions{Logger: slog.New(slog.DiscardHandler)}).Routes(authed)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv
}

// stallStore stops answering at one point of an export: every call there
// waits for its context to end, as a store on a stalled disk or in a
// database failover does.
type stallStore struct {
	*sqlite.Store
	at      string // "conversation", "outline", or "text" (of stallID, after its first piece)
	stallID string
}

func (s stallStore) Conversation(ctx context.Context, owner, id string) (persistence.Conversation, error) {
	if s.at == "conversation" {
		<-ctx.Done()
		return persistence.Conversation{}, ctx.Err()
	}
	return s.Store.Conversation(ctx, owner, id)
}

func (s stallStore) MessageOutline(ctx context.Context, owner, id string) ([]persistence.Message, error) {
	if s.at == "outline" {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return s.Store.MessageOutline(ctx, owner, id)
}

func (s stallStore) ReadContent(ctx context.Context, owner, id string, fn func(string) error) error {
	if s.at != "text" || id != s.stallID {
		return s.Store.ReadContent(ctx, owner, id, fn)
	}
	if err := fn("the first piece "); err != nil {
		return err
	}
	<-ctx.Done()
	return ctx.Err()
}

// TestExportStoreWaitsBounded: an export whose store stops answering
// gives up after the request timeout: 503 unavailable with Retry-After
// before any byte was sent, an aborted download after. Before, the export
// (left out of the request timeout, as it streams for as long as its
// reader takes it) waited for as long as the store hung, holding its
// connection: here until the client gave up.
func TestExportStoreWaitsBounded(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, api.ConversationOptions{})
	owner := e.user(t)
	c, ids := e.conversation(t, owner, "first question", strings.Repeat("a long first answer ", 4000), "second question", "stalled answer")
	for _, tc := range []struct {
		name, at, stallID string
		sent              bool
	}{
		{"the conversation", "conversation", "", false},
		{"the outline", "outline", "", false},
		{"the first text, between its pieces", "text", ids[0], false},
		{"the last text, after bytes were sent", "text", ids[3], true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			gin.SetMode(gin.TestMode)
			r := gin.New()
			authed := r.Group("/api", func(c *gin.Context) { auth.SetIdentity(c, auth.Identity{UserID: c.GetHeader("X-User")}) })
			// 3 s: the first bytes must go out within it (500 ms was short
			// for a loaded machine), and a stalled wait ends well within
			// the client's bound.
			api.NewConversations(stallStore{Store: e.store, at: tc.at, stallID: tc.stallID},
				api.ConversationOptions{Logger: slog.New(slog.DiscardHandler), RequestTimeout: 3 * time.Second}).Routes(authed)
			srv := httptest.NewServer(r)
			t.Cleanup(srv.Close)
			// The client's own bound only keeps the old behaviour from hanging the test.
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/api/conversations/"+c.ID+"/export?format=json", nil)
			req.Header.Set("X-User", owner)
			res, err := srv.Client().Do(req)
			if err != nil {
				t.Fatalf("export on a stalled store: %v", err)
			}
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body)
			if ctx.Err() != nil {
				t.Fatal("the export waited for as long as the store hung")
			}
			if !tc.sent {
				if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" ||
					!strings.Contains(string(body), `"code":"unavailable"`) || err != nil {
					t.Fatalf("%d %s (Retry-After %q, %v), want 503 unavailable with Retry-After", res.StatusCode, body, res.Header.Get("Retry-After"), err)
				}
				return
			}
			if res.StatusCode != http.StatusOK || err == nil || !strings.Contains(string(body), "a long first answer") {
				t.Fatalf("%d, %d bytes, read error %v: want the first bytes, then an aborted download", res.StatusCode, len(body), err)
			}
		})
	}
}
