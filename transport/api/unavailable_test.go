package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"chatd/persistence"
	"chatd/transport/api"
)

// fullStore is a store whose writes and reads all fail as a database that
// cannot take them now does (a full disk: persistence.ErrUnavailable).
type fullStore struct{ api.ConversationStore }

var errFull = fmt.Errorf("sqlite: commit: database or disk is full (13): %w", persistence.ErrUnavailable)

func (fullStore) CreateConversation(context.Context, *persistence.Conversation) error {
	return fmt.Errorf("sqlite: create conversation: %w", errFull)
}

func (fullStore) Conversation(context.Context, string, string) (persistence.Conversation, error) {
	return persistence.Conversation{}, errFull
}

func (fullStore) UpdateConversation(context.Context, string, string, persistence.ConversationPatch) (persistence.Conversation, error) {
	return persistence.Conversation{}, errFull
}

func (fullStore) DeleteConversation(context.Context, string, string) error { return errFull }

// TestStoreUnavailableIs503: a request the database cannot take now (a
// full disk, a lock another process holds: persistence.ErrUnavailable)
// is answered as docs/api.md describes a database that cannot answer:
// 503 unavailable, with Retry-After, in the one error shape. Before, it
// was a 500 internal, logged at error for every request, without
// Retry-After.
func TestStoreUnavailableIs503(t *testing.T) {
	t.Parallel()
	e := newAPIEnvWith(t, api.ConversationOptions{}, func(s api.ConversationStore) api.ConversationStore {
		return fullStore{s}
	})
	user := e.user(t)
	id := persistence.NewID()
	for _, r := range []struct{ method, path, body string }{
		{http.MethodPost, "/api/conversations", `{"title":"Plans"}`},
		{http.MethodGet, "/api/conversations/" + id, ""},
		{http.MethodPatch, "/api/conversations/" + id, `{"title":"Other"}`},
		{http.MethodDelete, "/api/conversations/" + id, ""},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), r.method, e.srv.URL+r.path, strings.NewReader(r.body))
		req.Header.Set("X-User", user)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		var b struct {
			Error *struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(raw, &b); err != nil || b.Error == nil {
			t.Fatalf("%s %s: %d %q: not the error shape (%v)", r.method, r.path, res.StatusCode, raw, err)
		}
		if res.StatusCode != http.StatusServiceUnavailable || b.Error.Code != "unavailable" || res.Header.Get("Retry-After") != "1" {
			t.Errorf("%s %s: %d %q (Retry-After %q); want 503 unavailable with Retry-After: 1",
				r.method, r.path, res.StatusCode, raw, res.Header.Get("Retry-After"))
		}
		if strings.Contains(b.Error.Message, "disk") || strings.Contains(b.Error.Message, "sqlite") {
			t.Errorf("%s %s: message %q names the cause, which is for the log", r.method, r.path, b.Error.Message)
		}
	}
}
