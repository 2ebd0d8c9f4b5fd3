package api_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"chatd/persistence"
	"chatd/transport/api"
)

// laggingConvs is the routes' store read as through a replica that does
// not have the conversations marked missing yet: Conversation made
// without persistence.WithLatest answers ErrNotFound for them, as a
// MongoDB secondary lagging behind their creation would.
type laggingConvs struct {
	api.ConversationStore
	missing sync.Map // conversation id -> true
}

func (s *laggingConvs) Conversation(ctx context.Context, ownerID, id string) (persistence.Conversation, error) {
	if _, ok := s.missing.Load(id); ok && !persistence.Latest(ctx) {
		return persistence.Conversation{}, persistence.ErrNotFound
	}
	return s.ConversationStore.Conversation(ctx, ownerID, id)
}

// TestWritesReadTheLatest: the read that decides whether a DELETE or a
// PATCH of params applies (the conversation is the user's; its model, to
// check the params against) reads the latest state: from a replica
// lagging behind a conversation created a moment ago, both were refused
// 404 and nothing was written. So does a GET of the conversation, whose
// 404 the web client takes for a deletion.
func TestWritesReadTheLatest(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		method, body string
		want         int
	}{
		{http.MethodDelete, "", http.StatusNoContent},
		{http.MethodPatch, `{"params":{"temperature":0.5}}`, http.StatusOK},
		// Not a write, but its 404 makes the web client forget the
		// conversation: the tab that created it reads it at once.
		{http.MethodGet, "", http.StatusOK},
	} {
		t.Run(tc.method, func(t *testing.T) {
			t.Parallel()
			lag := &laggingConvs{}
			e := newAPIEnvWith(t, api.ConversationOptions{}, func(s api.ConversationStore) api.ConversationStore {
				lag.ConversationStore = s
				return lag
			})
			u := e.user(t)
			c, _ := e.conversation(t, u)
			lag.missing.Store(c.ID, true)
			if got := e.status(t, tc.method, u, "/api/conversations/"+c.ID, tc.body); got != tc.want {
				t.Fatalf("%s: %d, want %d", tc.method, got, tc.want)
			}
			stored, err := e.store.Conversation(t.Context(), u, c.ID)
			switch {
			case tc.method == http.MethodDelete && !errors.Is(err, persistence.ErrNotFound):
				t.Fatalf("after the DELETE: %+v, %v; want it gone", stored, err)
			case tc.method == http.MethodPatch && (err != nil || stored.Params.IsZero()):
				t.Fatalf("after the PATCH: %+v, %v; want its params", stored, err)
			}
		})
	}
}

// status answers method path with body as user, and returns the status.
func (e *apiEnv) status(t *testing.T, method, user, path, body string) int {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), method, e.srv.URL+path, strings.NewReader(body))
	req.Header.Set("X-User", user)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	return res.StatusCode
}
