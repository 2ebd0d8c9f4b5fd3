package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chatd/persistence"
	"chatd/transport/api"
)

// writeCounts counts the conversation writes that reach a store.
type writeCounts struct {
	api.ConversationStore
	updates, deletes atomic.Int64
}

func (s *writeCounts) UpdateConversation(ctx context.Context, ownerID, id string, p persistence.ConversationPatch) (persistence.Conversation, error) {
	s.updates.Add(1)
	return s.ConversationStore.UpdateConversation(ctx, ownerID, id, p)
}

func (s *writeCounts) DeleteConversation(ctx context.Context, ownerID, id string) error {
	s.deletes.Add(1)
	return s.ConversationStore.DeleteConversation(ctx, ownerID, id)
}

// edit answers method path with body as user: its status, Retry-After and error code.
func (e *apiEnv) edit(t *testing.T, method, user, path, body string) (status int, retryAfter, code string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), method, e.srv.URL+path, strings.NewReader(body))
	req.Header.Set("X-User", user)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var b struct{ Error struct{ Code string } }
	_ = json.Unmarshal(raw, &b) // a 204 has no body
	return res.StatusCode, res.Header.Get("Retry-After"), b.Error.Code
}

// TestEditRate: changes and deletions of a user's conversations past
// EditsPerMinute get 429 rate_limited with Retry-After before any store
// write, so the store writes stay at the budget; another user's are not
// held back; requests refused 400 spend none (testEditRefusals).
func TestEditRate(t *testing.T) {
	t.Parallel()
	const budget = 3
	prompt := strings.Repeat("p", 8000)
	cases := []struct {
		name, method, body string
		ok                 int
		writes             func(*writeCounts) int64
	}{
		{"PATCH", http.MethodPatch, fmt.Sprintf(`{"systemPrompt":%q}`, prompt), http.StatusOK,
			func(s *writeCounts) int64 { return s.updates.Load() }},
		{"DELETE", http.MethodDelete, "", http.StatusNoContent,
			func(s *writeCounts) int64 { return s.deletes.Load() }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var counts *writeCounts
			e := newAPIEnvWith(t, api.ConversationOptions{EditsPerMinute: budget}, func(s api.ConversationStore) api.ConversationStore {
				counts = &writeCounts{ConversationStore: s}
				return counts
			})
			user, other := e.user(t), e.user(t)
			for i := range budget + 2 {
				c, _ := e.conversation(t, user)
				status, retryAfter, code := e.edit(t, tc.method, user, "/api/conversations/"+c.ID, tc.body)
				if i < budget && status != tc.ok {
					t.Fatalf("%s %d: %d %s, want %d", tc.method, i, status, code, tc.ok)
				}
				if i >= budget && (status != http.StatusTooManyRequests || retryAfter == "" || code != "rate_limited") {
					t.Fatalf("%s %d past the budget: %d %s (Retry-After %q), want 429 rate_limited with Retry-After",
						tc.method, i, status, code, retryAfter)
				}
			}
			if n := tc.writes(counts); n != budget {
				t.Fatalf("%d store writes, want %d", n, budget)
			}
			c, _ := e.conversation(t, other)
			if status, _, code := e.edit(t, tc.method, other, "/api/conversations/"+c.ID, tc.body); status != tc.ok {
				t.Fatalf("another user's %s: %d %s", tc.method, status, code)
			}
		})
	}
	t.Run("refusals", func(t *testing.T) {
		t.Parallel()
		testEditRefusals(t)
	})
}

// testEditRefusals: a PATCH refused 400, for its body or for params its
// model does not take (checked against the stored conversation), spends
// none of the edits; one for a conversation the user does not have (404),
// another user's or an unknown id, with or without params, spends one,
// as does a DELETE of one: the two ids answer alike.
func testEditRefusals(t *testing.T) {
	const budget = 4
	e := newAPIEnv(t, api.ConversationOptions{EditsPerMinute: budget, Catalog: boundedCatalog{}})
	user, other := e.user(t), e.user(t)
	mine, _ := e.conversation(t, user)
	theirs, _ := e.conversation(t, other)
	small := "small"
	if _, err := e.store.UpdateConversation(t.Context(), user, mine.ID, persistence.ConversationPatch{Model: &small}); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{`{"params":{"maxTokens":50}}`, `{"model":"big","params":{"maxTokens":500}}`,
		`{"model":"no-such-model"}`, `{}`, `{"title":1}`} {
		for range budget + 1 {
			if status, _, code := e.edit(t, http.MethodPatch, user, "/api/conversations/"+mine.ID, body); status != http.StatusBadRequest {
				t.Fatalf("PATCH %s: %d %s, want 400", body, status, code)
			}
		}
	}
	for _, r := range []struct{ method, id, body string }{
		{http.MethodPatch, mine.ID, `{"params":{"maxTokens":5}}`},
		{http.MethodPatch, theirs.ID, `{"params":{"maxTokens":5}}`},
		{http.MethodPatch, persistence.NewID(), `{"title":"t"}`},
		{http.MethodDelete, theirs.ID, ""},
		{http.MethodPatch, mine.ID, `{"title":"past the budget"}`},
	} {
		want := http.StatusOK
		switch {
		case r.body == `{"title":"past the budget"}`:
			want = http.StatusTooManyRequests
		case r.id != mine.ID:
			want = http.StatusNotFound
		}
		if status, _, code := e.edit(t, r.method, user, "/api/conversations/"+r.id, r.body); status != want {
			t.Fatalf("%s %s %s: %d %s, want %d", r.method, r.id, r.body, status, code, want)
		}
	}
}

// TestEditRateShared: with a cluster's budgets, an edit the process
// allows also spends the user's cluster-wide budget of edits; the
// cluster's refusal is a 429 with its wait, and leaves the store alone.
func TestEditRateShared(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var asked []string
	shared := budgetsFunc(func(budget, user string, perMinute int) (time.Duration, bool, error) {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, fmt.Sprintf("%s %s %d", budget, user, perMinute))
		return 7 * time.Second, false, nil
	})
	var counts *writeCounts
	e := newAPIEnvWith(t, api.ConversationOptions{EditsPerMinute: 3, SharedEdits: shared}, func(s api.ConversationStore) api.ConversationStore {
		counts = &writeCounts{ConversationStore: s}
		return counts
	})
	user := e.user(t)
	c, _ := e.conversation(t, user)
	if status, retryAfter, _ := e.edit(t, http.MethodPatch, user, "/api/conversations/"+c.ID, `{"title":"t"}`); status != 429 || retryAfter != "7" {
		t.Fatalf("PATCH the cluster refuses: %d (Retry-After %q), want 429 (7)", status, retryAfter)
	}
	if n := counts.updates.Load(); n != 0 {
		t.Fatalf("%d store writes for a refused PATCH", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{api.BudgetEdits + " " + user + " 3"}; fmt.Sprint(asked) != fmt.Sprint(want) {
		t.Fatalf("the cluster was asked %v, want %v", asked, want)
	}
}
