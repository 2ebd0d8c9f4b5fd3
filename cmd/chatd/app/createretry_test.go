package app

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"chatd/persistence"
)

// TestCreateRetriedWithClientID: through the whole server, on both stores,
// a POST /api/conversations repeated with its clientId (a retry after a
// lost answer) answers 200 with the conversation the first one created,
// and creations sent at once with one key make one conversation; another
// user's identical key makes their own.
func TestCreateRetriedWithClientID(t *testing.T) {
	t.Parallel()
	for _, store := range []struct {
		name  string
		mongo bool
	}{{"sqlite", false}, {"mongo", true}} {
		t.Run(store.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{mongo: store.mongo})
			u, other := e.register(t), e.register(t)
			type answer struct {
				Conversation persistence.Conversation `json:"conversation"`
			}
			var first, again, theirs answer
			body := map[string]string{"title": "offline chat", "clientId": "tab-7/chat-1"}
			e.rest(t, u.Token, http.MethodPost, "/api/conversations", body, http.StatusCreated, &first)
			e.rest(t, u.Token, http.MethodPost, "/api/conversations", body, http.StatusOK, &again)
			if again.Conversation.ID != first.Conversation.ID {
				t.Fatalf("retry answered %s, want %s", again.Conversation.ID, first.Conversation.ID)
			}
			e.rest(t, other.Token, http.MethodPost, "/api/conversations", body, http.StatusCreated, &theirs)
			if theirs.Conversation.ID == first.Conversation.ID {
				t.Fatal("another user's identical key answered the first user's conversation")
			}

			const n = 6
			ids, statuses := make([]string, n), make([]int, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, e.srv.URL+"/api/conversations",
						strings.NewReader(`{"clientId":"burst"}`))
					req.Header.Set("Authorization", "Bearer "+u.Token)
					req.Header.Set("Content-Type", "application/json")
					res, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Error(err)
						return
					}
					defer res.Body.Close()
					var a answer
					_ = json.NewDecoder(res.Body).Decode(&a)
					ids[i], statuses[i] = a.Conversation.ID, res.StatusCode
				}()
			}
			wg.Wait()
			created := 0
			for i, id := range ids {
				if statuses[i] == http.StatusCreated {
					created++
				}
				if id == "" || id != ids[0] || statuses[i] != http.StatusCreated && statuses[i] != http.StatusOK {
					t.Fatalf("concurrent creations answered %v %v, want one conversation", statuses, ids)
				}
			}
			if created != 1 {
				t.Fatalf("concurrent creations answered %v, want one 201", statuses)
			}
			page, err := e.store.ListConversations(t.Context(), u.ID, persistence.ListQuery{})
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Conversations) != 2 {
				t.Fatalf("%d conversations stored, want 2", len(page.Conversations))
			}
		})
	}
}
