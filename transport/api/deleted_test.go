package api_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"chatd/hub/protocol"
	"chatd/persistence"
	"chatd/transport/api"
)

// changesLive is a Live that keeps the conversations it is told of.
type changesLive struct {
	api.NoLive
	mu      sync.Mutex
	changes map[string]persistence.Conversation // by action
}

func (l *changesLive) ConversationChanged(_, action string, c persistence.Conversation) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.changes[action] = c
}

func (l *changesLive) told(action string) (persistence.Conversation, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ok := l.changes[action]
	return c, ok
}

// TestDeletedToldByID: a deleted conversation is told to the user's tabs
// (and through the hub to the cluster's events stream) by its id alone:
// neither what Live is given nor the frame the hub makes of it holds the
// title or system prompt the user deleted. Its creation told them.
func TestDeletedToldByID(t *testing.T) {
	t.Parallel()
	live := &changesLive{changes: map[string]persistence.Conversation{}}
	e := newAPIEnv(t, api.ConversationOptions{Live: live})
	owner := e.user(t)
	const title, prompt = "a title to forget", "a system prompt to forget"
	c := persistence.Conversation{OwnerID: owner, Title: title, SystemPrompt: prompt}
	if err := e.store.CreateConversation(t.Context(), &c); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodDelete, e.srv.URL+"/api/conversations/"+c.ID, nil)
	req.Header.Set("X-User", owner)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %d, want 204", res.StatusCode)
	}
	told, ok := live.told(api.ActionDeleted)
	if !ok || told.ID != c.ID {
		t.Fatalf("tabs told of the deletion of %q (%v), want %s", told.ID, ok, c.ID)
	}
	if told.Title != "" || told.SystemPrompt != "" {
		t.Errorf("the deletion is told with title %q and system prompt %q", told.Title, told.SystemPrompt)
	}
	frame := string(protocol.Conversation(api.ActionDeleted, told).Data)
	if strings.Contains(frame, title) || strings.Contains(frame, prompt) || !strings.Contains(frame, c.ID) {
		t.Errorf("deleted frame %s: want the id, not the title or system prompt", frame)
	}
}
