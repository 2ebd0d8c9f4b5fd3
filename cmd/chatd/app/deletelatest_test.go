package app

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"chatd/persistence"
)

// latestStore records whether each StreamingConversations asked for the
// latest state (persistence.WithLatest).
type latestStore struct {
	persistence.Store
	mu     sync.Mutex
	latest []bool
}

func (s *latestStore) StreamingConversations(ctx context.Context, ownerID string) ([]string, error) {
	s.mu.Lock()
	s.latest = append(s.latest, persistence.Latest(ctx))
	s.mu.Unlock()
	return s.Store.StreamingConversations(ctx, ownerID)
}

func (s *latestStore) asked() []bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]bool(nil), s.latest...)
}

// TestDeleteAccountReadsAnswersOnThePrimary: the answers an account
// deletion stops are read with persistence.WithLatest, so a MongoDB
// reading from a lagging secondary (readPreference secondaryPreferred)
// never misses one started a moment before, which would then run on,
// its data being removed.
func TestDeleteAccountReadsAnswersOnThePrimary(t *testing.T) {
	t.Parallel()
	var store *latestStore
	e := newEnv(t, envOptions{tweak: func(c *Config) {
		store = &latestStore{Store: c.Store}
		c.Store = store
	}})
	u := e.register(t)
	e.rest(t, u.Token, http.MethodDelete, "/api/auth/me", map[string]string{"password": "correct horse battery"}, http.StatusNoContent, nil)
	got := store.asked()
	if len(got) != 1 || !got[0] {
		t.Fatalf("StreamingConversations asked for the latest state: %v, want [true]", got)
	}
}
